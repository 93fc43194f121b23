/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/asuser.c - satchelctl works in state_dir as the daemon's user.
 *
 * state_dir belongs to `user:`, who can plant links there: queue/active
 * pointing at a root directory, tls/cert.pem at a root-only file, ctl.sock
 * at another service's socket. satchelctl run as root must not follow
 * them. So while it opens, reads, unlinks or connects to anything below
 * state_dir it takes the user's effective uid, gid and groups (what the
 * daemon runs with, so it sees what the daemon sees), and it returns to
 * root for what needs root: the config, auth_file's password file, a
 * configured TLS key. The real and saved uid stay 0 meanwhile, so the
 * user can neither signal nor trace the process (and the kernel marks it
 * not dumpable). Postfix's local delivery switches the same way.
 * satchelctl process; glibc applies the ids to every thread (libunbound's).
 */
#include "satchelctl.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* sc_ctl_as_user - see satchelctl.h */
int
sc_ctl_as_user(const struct sc_main_config *cfg, struct sc_ctl_as *as,
	       char **error_r)
{
	struct passwd pw, *pwp = NULL;
	char buf[16384];
	int r;

	memset(as, 0, sizeof(*as));
	*error_r = NULL;
	/* not root (the user itself, an admin's own config), or no user:
	 * nobody else owns state_dir */
	if (geteuid() != 0 || cfg->user == NULL || cfg->user[0] == '\0')
		return 0;
	r = getpwnam_r(cfg->user, &pw, buf, sizeof(buf), &pwp);
	if (r != 0 || pwp == NULL) {
		if (asprintf(error_r, "the user \"%s\" (the `user:` key) %s",
			     cfg->user, r != 0 ? strerror(r) :
			     "does not exist") < 0)
			*error_r = NULL;
		return -1;
	}
	if (pw.pw_uid == 0)		/* the config check refuses it */
		return 0;
	as->egid = getegid();
	as->ngroups = getgroups(0, NULL);
	as->groups = malloc((size_t)(as->ngroups > 0 ? as->ngroups : 1) *
			    sizeof(*as->groups));
	if (as->ngroups < 0 || as->groups == NULL ||
	    getgroups(as->ngroups, as->groups) != as->ngroups) {
		free(as->groups);
		as->groups = NULL;
		*error_r = strdup("cannot read root's groups");
		return -1;
	}
	as->switched = true;
	/* groups and gid first: with the user's euid they cannot be set;
	 * initgroups gives the groups the daemon has (core/main.c) */
	if (initgroups(pw.pw_name, pw.pw_gid) < 0 ||
	    setegid(pw.pw_gid) < 0 || seteuid(pw.pw_uid) < 0) {
		int e = errno;

		sc_ctl_as_root(as);
		if (asprintf(error_r, "cannot become %s: %s", cfg->user,
			     strerror(e)) < 0)
			*error_r = NULL;
		return -1;
	}
	return 0;
}

/* sc_ctl_as_root - see satchelctl.h */
void
sc_ctl_as_root(struct sc_ctl_as *as)
{
	if (!as->switched)
		return;
	/* going on half switched would do root's work with the user's
	 * rights, or the user's with root's groups: stop */
	if (seteuid(0) < 0 || setegid(as->egid) < 0 ||
	    setgroups((size_t)as->ngroups, as->groups) < 0) {
		fprintf(stderr, "satchelctl: cannot return to root: %s\n",
			strerror(errno));
		abort();
	}
	free(as->groups);
	memset(as, 0, sizeof(*as));
}
