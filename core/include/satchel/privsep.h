/* SPDX-License-Identifier: MIT */
/*
 * satchel/privsep.h - what needs root: requests to the small privileged
 * helper, and directories root makes for the daemon's user.
 *
 * satcheld forks one helper before it drops privileges; the helper does
 * nothing but PAM authentication (pam_unix can only check the calling
 * user's own password once we run unprivileged). Requests travel over a
 * socketpair; answers arrive on the loop.
 */
#ifndef SATCHEL_PRIVSEP_H
#define SATCHEL_PRIVSEP_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sc_pam_status {
	SC_PAM_OK = 0,		/* authenticated                               */
	SC_PAM_DENIED,		/* wrong password / unknown user / expired      */
	SC_PAM_ERROR,		/* the helper or PAM failed: a temporary error  */
};

/* done(arg, status, reason): reason is PAM's message for the log (never
 * shown to clients), valid during the call. */
typedef void (*sc_pam_fn)(void *arg, enum sc_pam_status status,
			  const char *reason);

/* Authenticates user/password against PAM service in the helper. done runs
 * once on the loop. 0 or -1 (no helper running). A denial is delivered only
 * after PAM's fail delay (pam_fail_delay(3): pam_unix asks for about 2 s;
 * 2 s when PAM names none, at most 10 s), counted on a timer - the loop
 * and the helper serve others meanwhile; success and errors come at once.
 * The request belongs to no instance and cannot be cancelled: make it
 * while a hook call is pending (auth_pam does), which keeps the module
 * loaded until that call's sc_hook_done(). */
SC_API int sc_pam_authenticate(const char *service, const char *user,
			       const char *password, sc_pam_fn done,
			       void *arg);

/*
 * Directories for the daemon's user, made by root: for instance_new, which
 * runs as root before the privilege drop (maildir's base directory). When
 * satcheld runs as root and will drop to `user:`, the missing directories
 * of the absolute path are made, parents 0755 root, the last one with mode
 * and owned by the user; an existing one is left as it is. The path is
 * resolved one component at a time: a symlink is followed only where the
 * user cannot have planted it, and at a directory the user can change the
 * walk stops - what lies beyond is the user's to make after the drop.
 * Otherwise (no drop, or after it) nothing is done. 1 when the directory
 * was made, 0 when nothing was done, -1 with errno. Since ABI 1.2.
 */
SC_API int sc_dir_for_user(const char *path, mode_t mode);

#ifdef __cplusplus
}
#endif

#endif
