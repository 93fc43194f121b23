/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_listen.c - doctor's listener check: passwords over
 * clear text (tls: none on a network address), mail servers that cannot
 * encrypt to us, and whether mail clients have a submission port at all.
 * satchelctl process.
 */
#include "doctor.h"

#include <string.h>

/* doctor_listeners - auth over clear text, and where clients send */
void
doctor_listeners(struct doctor *d)
{
	const struct lsn_list *ll = d->ll;
	bool submission = false, any_smtp = false;

	if (ll == NULL)
		return;

	for (size_t i = 0; i < ll->n; i++) {
		const struct lsn *l = &ll->v[i];
		bool client = l->submission || strcmp(l->proto, "pop3") == 0;

		any_smtp |= strcmp(l->proto, "smtp") == 0;
		submission |= l->submission;
		if (l->tls != LSN_NONE)
			continue;
		if (client && !l->loopback)
			report(d, 2, "listen %s %s (%s): tls: none on a "
			       "network address: passwords would travel in "
			       "clear; set tls: starttls or implicit in %s",
			       l->proto, l->addr.text, l->submission ?
			       "submission" : l->proto, l->ic->file);
		else if (client)
			report(d, 0, "listen %s %s: tls: none, but only "
			       "reachable from this machine", l->proto,
			       l->addr.text);
		else if (!l->loopback)
			report(d, 1, "listen smtp %s (mx): tls: none: other "
			       "servers cannot encrypt mail to you; set "
			       "tls: starttls in %s", l->addr.text,
			       l->ic->file);
	}
	if (!any_smtp)
		report(d, 1, "listen: no smtp listener is enabled: this "
		       "server receives no mail");
	if (!submission)
		report(d, 1, "listen: no submission listener: mail "
		       "clients need port 587 (starttls) or 465 "
		       "(implicit); add one with mode: submission to the "
		       "smtp module's listen list");
	else
		report(d, 0, "listen: %zu listener%s, mail clients can "
		       "submit (see satchelctl connect ADDR)", ll->n,
		       ll->n == 1 ? "" : "s");
}
