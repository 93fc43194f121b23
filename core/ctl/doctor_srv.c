/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_srv.c - doctor's RFC 6186 check: the SRV records mail
 * clients look up (_submissions._tcp, _submission._tcp, _pop3s._tcp,
 * _pop3._tcp) of each local domain against the configured listeners and
 * `hostname:`. None published is fine (they are optional); a record that
 * sends clients elsewhere, or to a port nothing listens on, is a warning.
 * satchelctl process.
 */
#include "doctor.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

struct srv_service {
	const char *label;	/* "_submission._tcp"                    */
	const char *proto;	/* listener protocol                     */
	bool submission;	/* smtp: mode submission                 */
	bool implicit;		/* TLS from the first byte               */
	const char *what;	/* for the report                        */
};

static const struct srv_service services[] = {
	{ "_submissions._tcp", "smtp", true, true,
	  "submission with implicit TLS (RFC 8314)" },
	{ "_submission._tcp", "smtp", true, false, "submission" },
	{ "_pop3s._tcp", "pop3", false, true, "POP3 with implicit TLS" },
	{ "_pop3._tcp", "pop3", false, false, "POP3" },
};

/* ports - the ports of the listeners of service s; their count */
static size_t
ports(const struct doctor *d, const struct srv_service *s, unsigned *out,
      size_t max)
{
	size_t n = 0;

	for (size_t i = 0; d->ll != NULL && i < d->ll->n && n < max; i++) {
		const struct lsn *l = &d->ll->v[i];

		if (strcmp(l->proto, s->proto) != 0 ||
		    (strcmp(s->proto, "smtp") == 0 &&
		     l->submission != s->submission) ||
		    (l->tls == LSN_IMPLICIT) != s->implicit)
			continue;
		out[n++] = l->port;
	}
	return n;
}

static bool
same_host(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 1 && a[la - 1] == '.')
		la--;
	if (lb > 1 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* srv_one - one service of one domain */
static void
srv_one(struct doctor *d, const char *domain, const struct srv_service *s)
{
	const char *me = d->cfg->hostname;
	unsigned p[16];
	size_t np = ports(d, s, p, 16);
	char name[320];
	struct dq_answer a;
	bool bad = false;

	snprintf(name, sizeof(name), "%s.%s", s->label, domain);
	dq(d, name, DQ_SRV, &a);
	if (a.status == DQ_FAIL) {
		report(d, 1, "srv %s: cannot look it up: %s", name, a.error);
		return;
	}
	if (a.status != DQ_OK) {
		if (np == 0)
			return;		/* nothing offered, nothing published */
		report(d, 0, "srv %s: none published (optional: RFC 6186 "
		       "lets clients find %s on port %u)", name, s->what,
		       p[0]);
		report(d, 3, "publish: %s. 3600 IN SRV 0 1 %u %s.", name,
		       p[0], me);
		return;
	}
	if (a.n == 1 && strcmp(a.name[0], ".") == 0) {
		if (np > 0)
			report(d, 1, "srv %s: says %s is not offered here "
			       "(target \".\"), but it listens on port %u",
			       name, s->what, p[0]);
		else
			report(d, 0, "srv %s: \".\": not offered, and not "
			       "configured", name);
		hint_dig(d, "SRV", name);
		return;
	}
	for (size_t i = 0; i < a.n; i++) {
		bool port_ok = false;

		for (size_t j = 0; j < np; j++)
			port_ok |= p[j] == a.port[i];
		if (!same_host(a.name[i], me)) {
			report(d, 1, "srv %s: sends clients to %s, not to "
			       "this server (%s)", name, a.name[i], me);
			bad = true;
		} else if (!port_ok) {
			report(d, 1, "srv %s: port %u, but %s", name,
			       a.port[i], np == 0 ? "no such listener is "
			       "configured" : "the configured listeners use "
			       "other ports");
			bad = true;
		}
	}
	if (!bad)
		report(d, 0, "srv %s: %s port %u", name, a.name[0],
		       a.port[0]);
	else
		hint_dig(d, "SRV", name);
}

/* doctor_srv - the SRV records of the domains whose mail is read here */
void
doctor_srv(struct doctor *d)
{
	const struct sc_main_config *cfg = d->cfg;

	for (size_t i = 0; i < cfg->domain_count; i++) {
		const char *dom = cfg->domains[i].name;
		bool named = d->ndomains == 0;

		for (int j = 0; j < d->ndomains; j++)
			named |= same_host(d->domains[j], dom);
		if (!named || (cfg->domains[i].routing != SC_ROUTING_LOCAL &&
			       cfg->domains[i].routing != SC_ROUTING_AUTO))
			continue;
		for (size_t k = 0; k < sizeof(services) / sizeof(services[0]);
		     k++)
			srv_one(d, dom, &services[k]);
	}
}
