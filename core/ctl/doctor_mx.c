/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_mx.c - doctor's domain check: the MX records of each
 * domain (or its A/AAAA, when it has none) against the routing the config
 * gives it: mail that would not arrive, or would loop back here; and the
 * routing traps `check` and `reload` warn about in the same words.
 * satchelctl process.
 */
#include "doctor.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unbound.h>

/* mxhost_cmp - by preference; the name orders equal ones, so the output
 * does not depend on the DNS server's order */
static int
mxhost_cmp(const void *a, const void *b)
{
	const struct mxhost *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcasecmp(x->name, y->name);
}

/* best_mx_here - is this machine among the best-preference MX hosts of
 * domain (or its own address, without MX)? false when DNS cannot tell */
static bool
best_mx_here(struct doctor *d, const char *domain)
{
	struct dq_answer *a = malloc(sizeof(*a));
	struct mxhost *h = malloc(sizeof(*h));
	uint16_t best = 0xffff;
	bool here = false;

	if (a == NULL || h == NULL)
		goto out;
	dq(d, domain, SC_DNS_MX, a);
	if (a->status == DQ_NODATA) {
		/* RFC 5321 5.1: the domain's own address is its MX */
		host_lookup(d, domain, h);
		here = h->here;
		goto out;
	}
	if (a->status != DQ_OK)
		goto out;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->name[i], ".") != 0 && a->pref[i] < best)
			best = a->pref[i];
	for (size_t i = 0; i < a->n && !here; i++) {
		if (strcmp(a->name[i], ".") == 0 || a->pref[i] != best)
			continue;
		host_lookup(d, a->name[i], h);
		here = h->here;
	}
out:
	free(a);
	free(h);
	return here;
}

/* sc_ctl_route_traps - see satchelctl.h */
unsigned
sc_ctl_route_traps(const struct sc_main_config *cfg, FILE *out)
{
	struct doctor d;
	unsigned warns = 0;
	char trap[512];

	if (cfg->domain_count == 0) {
		fprintf(out, "warn domains: none configured in %s: this "
			"server accepts mail for no domain\n", cfg->file);
		return 1;
	}
	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	for (size_t i = 0; i < cfg->domain_count; i++) {
		const struct sc_domain_conf *dc = &cfg->domains[i];

		if (dc->routing != SC_ROUTING_REMOTE &&
		    dc->routing != SC_ROUTING_BACKUP)
			continue;
		/* the resolver only when a domain needs it; a dead server
		 * costs one bounded wait (dq), then every lookup stops */
		if (d.ub == NULL && d.ub_error == NULL && dns_open(&d) < 0) {
			fprintf(out, "warn dns: %s: routing not checked "
				"against the MX records\n", d.ub_error ?
				d.ub_error : "out of memory");
			warns++;
			break;
		}
		if (!best_mx_here(&d, dc->name))
			continue;
		fprintf(out, "warn %s\n", sc_routing_trap_text(dc->name,
			dc->routing, trap, sizeof(trap)));
		warns++;
	}
	if (d.ub != NULL)
		ub_ctx_delete(d.ub);
	free(d.ub_error);
	return warns;
}

/* doctor_domain - MX records of domain against its routing */
static void
doctor_domain(struct doctor *d, const char *domain)
{
	const struct sc_domain_conf *dc = domain_find(d->cfg, domain);
	enum sc_routing routing = dc != NULL ? dc->routing :
		SC_ROUTING_REMOTE;
	const char *rname = sc_routing_name(routing);
	const char *me = d->cfg->hostname;
	struct dq_answer *a = malloc(sizeof(*a));
	struct mxhost *hosts = calloc(DIAG_MAX_RR, sizeof(*hosts));
	size_t n = 0;
	bool any_here = false, best_here = false, null_mx = false;
	bool fallback = false;
	uint16_t best = 0xffff;
	char list[1024], trap[512];
	size_t off = 0;

	if (a == NULL || hosts == NULL) {
		report(d, 2, "dns %s: out of memory", domain);
		goto out;
	}
	if (dc == NULL)
		report(d, 1, "domain %s: not configured in %s (mail for it "
		       "is relayed to its MX like any other domain)",
		       domain, d->cfg->file);
	dq(d, domain, SC_DNS_MX, a);
	if (a->status == DQ_FAIL) {
		report(d, 1, "mx %s: cannot look up the MX records: %s; "
		       "check dns.servers in %s or the system resolver",
		       domain, a->error, d->cfg->file);
		hint_dig(d, "MX", domain);
		goto out;
	}
	if (a->status == DQ_NXDOMAIN) {
		report(d, routing == SC_ROUTING_REMOTE ? 1 : 2,
		       "mx %s: the domain does not exist in DNS "
		       "(NXDOMAIN): nobody can send mail to it; publish an "
		       "MX record pointing at %s", domain, me);
		hint_dig(d, "MX", domain);
		goto out;
	}
	if (a->status == DQ_OK && a->n == 1 &&
	    strcmp(a->name[0], ".") == 0) {
		null_mx = true;
	} else if (a->status == DQ_OK) {
		for (size_t i = 0; i < a->n; i++) {
			if (strcmp(a->name[i], ".") == 0)
				continue;
			hosts[n].pref = a->pref[i];
			host_lookup(d, a->name[i], &hosts[n]);
			n++;
		}
	} else {
		/* RFC 5321 5.1: no MX means the domain's own A/AAAA */
		fallback = true;
		host_lookup(d, domain, &hosts[0]);
		if (!hosts[0].resolved && hosts[0].error[0] != '\0') {
			report(d, 1, "mx %s: no MX record, and the A/AAAA "
			       "lookup failed: %s", domain, hosts[0].error);
			hint_dig(d, "MX", domain);
			goto out;
		}
		if (hosts[0].resolved || hosts[0].here)
			n = 1;
	}
	qsort(hosts, n, sizeof(*hosts), mxhost_cmp);
	for (size_t i = 0; i < n; i++)
		if (hosts[i].pref < best)
			best = hosts[i].pref;
	for (size_t i = 0; i < n; i++) {
		int w;

		any_here |= hosts[i].here;
		if (hosts[i].pref == best)
			best_here |= hosts[i].here;
		if (fallback)
			w = snprintf(list + off, sizeof(list) - off, "%s (%s)",
				     hosts[i].name, hosts[i].addrs[0] ?
				     hosts[i].addrs : "no address");
		else
			w = snprintf(list + off, sizeof(list) - off,
				     "%s%s %u (%s)", i ? ", " : "",
				     hosts[i].name, hosts[i].pref,
				     hosts[i].addrs[0] ? hosts[i].addrs :
				     "no A/AAAA record");
		if (w > 0 && (size_t)w < sizeof(list) - off)
			off += (size_t)w;
	}
	list[off] = '\0';

	if (null_mx) {
		report(d, routing == SC_ROUTING_REMOTE ? 0 : 1,
		       "mx %s: null MX (RFC 7505): the domain accepts no "
		       "mail%s", domain, routing == SC_ROUTING_REMOTE ?
		       "; mail to it bounces at once" :
		       routing == SC_ROUTING_AUTO ?
		       ", so routing auto resolves to remote and mail to "
		       "it bounces: remove the null MX and point an MX at "
		       "this server, or drop the domain" : "");
		if (routing == SC_ROUTING_LOCAL ||
		    routing == SC_ROUTING_BACKUP)
			report(d, 1, "routing %s: %s, but the null MX tells "
			       "every sender not to send mail: replace it "
			       "with an MX pointing at %s", domain, rname,
			       me);
		hint_dig(d, "MX", domain);
		goto out;
	}
	if (n == 0) {
		report(d, routing == SC_ROUTING_REMOTE ? 1 : 2,
		       "mx %s: no MX record and no A/AAAA record: nobody "
		       "can send mail to it; publish an MX record "
		       "pointing at %s", domain, me);
		hint_dig(d, "MX", domain);
		hint_dig(d, "A", domain);
		goto out;
	}
	if (fallback)
		report(d, 1, "mx %s: no MX record; senders fall back to "
		       "the domain's own address %s: publish an MX record "
		       "(pointing at %s for local mail)", domain, list, me);
	else
		report(d, 0, "mx %s: %s", domain, list);
	for (size_t i = 0; i < n; i++)
		if (!hosts[i].resolved && hosts[i].error[0] != '\0')
			report(d, 1, "mx %s: cannot look up MX host %s: %s",
			       domain, hosts[i].name, hosts[i].error);
		else if (!hosts[i].resolved && !hosts[i].here)
			report(d, 1, "mx %s: MX host %s has no A/AAAA "
			       "record: senders cannot reach it; publish "
			       "one", domain, hosts[i].name);

	switch (routing) {
	case SC_ROUTING_LOCAL:
		if (any_here)
			report(d, 0, "routing %s: local, and the MX points "
			       "here", domain);
		else
			report(d, 1, "routing %s: mail for %s goes to %s, "
			       "not here: set routing: remote, or point the "
			       "MX at %s", domain, domain, hosts[0].name, me);
		break;
	case SC_ROUTING_REMOTE:
		if (best_here)
			report(d, 2, "%s", sc_routing_trap_text(domain,
			       routing, trap, sizeof(trap)));
		else
			report(d, 0, "routing %s: remote, mail is relayed "
			       "to %s", domain, hosts[0].name);
		break;
	case SC_ROUTING_BACKUP:
		if (!any_here)
			report(d, 1, "routing %s: backup, but this server "
			       "(%s) is not among the MX hosts: add an MX "
			       "for %s with a higher preference number than "
			       "the primary, or set routing: remote",
			       domain, me, me);
		else if (best_here)
			report(d, 1, "%s", sc_routing_trap_text(domain,
			       routing, trap, sizeof(trap)));
		else
			report(d, 0, "routing %s: backup, this server is a "
			       "lower-preference MX", domain);
		break;
	case SC_ROUTING_AUTO:
		report(d, 0, "routing %s: auto resolves to %s now (best "
		       "MX %s %s this server)", domain,
		       best_here ? "local" : "remote", hosts[0].name,
		       best_here ? "is" : "is not");
		break;
	case SC_ROUTING_NONE:
		break;
	}
	hint_dig(d, "MX", domain);
	for (size_t i = 0; i < n; i++)
		hint_dig(d, "A", hosts[i].name);
out:
	free(a);
	free(hosts);
}

/* doctor_domains - the domains named on the command line, else every
 * configured one */
void
doctor_domains(struct doctor *d)
{
	const struct sc_main_config *cfg = d->cfg;

	if (d->ndomains > 0) {
		for (int i = 0; i < d->ndomains; i++) {
			char dom[256];
			size_t l;

			snprintf(dom, sizeof(dom), "%s", d->domains[i]);
			for (char *p = dom; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			l = strlen(dom);
			if (l > 0 && dom[l - 1] == '.')
				dom[l - 1] = '\0';
			doctor_domain(d, dom);
		}
	} else {
		if (cfg->domain_count == 0)
			report(d, 1, "domains: none configured in %s: this "
			       "server accepts mail for no domain",
			       cfg->file);
		for (size_t i = 0; i < cfg->domain_count; i++)
			doctor_domain(d, cfg->domains[i].name);
	}
}
