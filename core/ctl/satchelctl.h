/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/satchelctl.h - what the satchelctl command files share. Never
 * installed.
 */
#ifndef SC_SATCHELCTL_H
#define SC_SATCHELCTL_H

#include "core.h"

#include <stdio.h>
#include <sys/types.h>

/* Root's ids while satchelctl works as the daemon's user (asuser.c). */
struct sc_ctl_as {
	bool switched;		/* sc_ctl_as_root has ids to restore */
	gid_t egid;
	int ngroups;
	gid_t *groups;
};

/* Before anything below state_dir is opened, read, unlinked or connected
 * to: when run as root and cfg names a `user:`, takes that user's
 * effective uid, gid and groups (the daemon's user owns state_dir and may
 * have planted links there); otherwise changes nothing. 0, or -1 with
 * *error_r (malloc'd; NULL: out of memory) and nothing changed. Every call
 * is undone with sc_ctl_as_root(); a call while switched changes nothing. */
int sc_ctl_as_user(const struct sc_main_config *cfg, struct sc_ctl_as *as,
		   char **error_r);
/* Back to root's ids after sc_ctl_as_user(); aborts if that fails. */
void sc_ctl_as_root(struct sc_ctl_as *as);

/* Sends one request line to the running daemon's control socket
 * (state_dir/ctl.sock) and returns its reply text (malloc'd, without the
 * final status line) in *reply_r. 0 = the daemon answered OK, 1 = it
 * answered an error (reply holds it), -1 = no daemon reachable (*reply_r
 * says why). Implemented in request.c. */
int sc_ctl_request(const struct sc_main_config *cfg, const char *line,
		   char **reply_r);

/* `satchelctl modules [--keys]` (modules.c): the modules in module_dir;
 * with cfg (may be NULL) the hooks of the running daemon's instances,
 * with keys their config keys. Returns the process exit code. */
int sc_ctl_modules(const struct sc_main_config *cfg, const char *module_dir,
		   bool keys);

/* `satchelctl user add|passwd|del|list ...` (user.c); argv[0] is
 * "user". Returns the process exit code. */
int sc_ctl_user_main(const struct sc_main_config *cfg, int argc, char **argv);

/* `satchelctl queue list|show|flush|delete ...` (queue.c); argv[0] is
 * "queue". Returns the process exit code. */
int sc_ctl_queue_main(const struct sc_main_config *cfg, int argc, char **argv);

/* `satchelctl connect ADDR [--json]` (connect.c); argv[0] is "connect".
 * Prints the mail client settings of the account. Returns the exit code. */
int sc_ctl_connect_main(const struct sc_main_config *cfg, int argc,
			char **argv);

/* `satchelctl doctor [DOMAIN...]` (doctor.c); argv[0] is "doctor". Loads
 * the config at path itself, so an invalid one is reported as a check.
 * Returns the exit code: 0 when no check FAILed, 1 otherwise. */
int sc_ctl_doctor_main(const char *path, int argc, char **argv);
/* check and reload (doctor_mx.c): "warn ..." lines on out, in doctor's
 * words, for no domain at all and for each remote or backup domain whose
 * best MX is this machine (DNS through dns.servers, each query bounded);
 * the number of warnings. */
unsigned sc_ctl_route_traps(const struct sc_main_config *cfg, FILE *out);

#endif
