/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_auth.c - doctor's auth check: is there a backend that
 * lets anybody log in to send, and do its password files hold accounts?
 * satchelctl process.
 */
#include "doctor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* doctor_auth - can anybody log in to send? */
void
doctor_auth(struct doctor *d)
{
	char *paths[8];
	size_t np = auth_file_paths(d->cfg, paths, 8);
	bool pam = have_module(d->cfg, "auth_pam");

	if (np == 0 && !pam)
		report(d, 1, "auth: no auth backend enabled: nobody can log "
		       "in to send; add auth_file (satchelctl user add) or "
		       "auth_pam");
	for (size_t i = 0; i < np; i++) {
		size_t accounts = 0;
		int r = pwfile_has(paths[i], "", &accounts);

		if (r < 0 && errno != ENOENT)
			report(d, 2, "auth: cannot read %s: %s", paths[i],
			       strerror(errno));
		else if (r < 0 || accounts == 0)
			report(d, 1, "auth: %s has no accounts yet: add "
			       "one with satchelctl user add ADDR",
			       paths[i]);
		else
			report(d, 0, "auth: auth_file %s, %zu account%s",
			       paths[i], accounts, accounts == 1 ? "" : "s");
		free(paths[i]);
	}
	if (pam)
		report(d, 0, "auth: auth_pam (system accounts)");
}
