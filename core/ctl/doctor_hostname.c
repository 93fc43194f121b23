/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_hostname.c - doctor's hostname check: `hostname:` should
 * resolve to an address of this machine. satchelctl process.
 */
#include "doctor.h"

#include <stdio.h>
#include <string.h>

/* doctor_hostname - hostname should resolve to this machine */
void
doctor_hostname(struct doctor *d)
{
	struct mxhost h;
	const char *me = d->cfg->hostname;

	memset(&h, 0, sizeof(h));
	host_lookup(d, me, &h);
	/* host_lookup counts the name itself as here: ask the addresses */
	h.here = false;
	for (char *p = h.addrs; *p != '\0';) {
		char one[64];
		size_t l = strcspn(p, ",");

		snprintf(one, sizeof(one), "%.*s", (int)l, p);
		if (sc_dns_is_local_address(one))
			h.here = true;
		p += l;
		while (*p == ',' || *p == ' ')
			p++;
	}
	if (!h.resolved && h.error[0] != '\0')
		report(d, 1, "hostname %s: cannot look it up: %s", me,
		       h.error);
	else if (!h.resolved)
		report(d, 1, "hostname %s: no A/AAAA record: other servers "
		       "and mail clients cannot find this server; publish "
		       "an A record for it", me);
	else if (!h.here)
		report(d, 1, "hostname %s: resolves to %s, which is not an "
		       "address of this machine: fix its A/AAAA record, or "
		       "set hostname: in %s to this server's name", me,
		       h.addrs, d->cfg->file);
	else
		report(d, 0, "hostname %s: resolves to %s (this machine)",
		       me, h.addrs);
	hint_dig(d, "A", me);
}
