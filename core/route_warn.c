/* SPDX-License-Identifier: MIT */
/*
 * core/route_warn.c - routing traps: a `remote` or `backup` domain whose
 * best MX is this machine (mail for it would loop back here, or a backup
 * has no primary to relay to). The words doctor, `satchelctl check` and
 * `reload` print (sc_routing_trap_text), and the daemon's own look after
 * start and each reload: the MX and A/AAAA lookups through core/dns.c
 * (each bounded by SC_DNS_TIMEOUT_MS), a warning logged per trap. Loop
 * thread.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* sc_routing_trap_text - see core.h */
const char *
sc_routing_trap_text(const char *domain, enum sc_routing routing, char *buf,
		     size_t len)
{
	if (routing == SC_ROUTING_REMOTE)
		snprintf(buf, len, "routing %s: mail for %s would loop back "
			 "to myself (5.4.6): set routing: local or auto",
			 domain, domain);
	else
		snprintf(buf, len, "routing %s: backup, but this server is "
			 "the best MX: there is no primary to relay to; set "
			 "routing: local, or give the primary a lower "
			 "preference number", domain);
	return buf;
}

/* One domain being looked at: its MX, then the best hosts' addresses. */
struct rw_domain {
	char *name;
	char *hostname;		/* this server's, when the look began      */
	enum sc_routing routing;
	size_t pending;		/* lookups outstanding                     */
	bool here;		/* a best MX host is this machine          */
};

static void
rw_free(struct rw_domain *w)
{
	free(w->name);
	free(w->hostname);
	free(w);
}

/* rw_settle - one lookup less; after the last, the verdict */
static void
rw_settle(struct rw_domain *w)
{
	char text[512];

	if (--w->pending > 0)
		return;
	if (w->here)
		sc_log_warning("%s", sc_routing_trap_text(w->name, w->routing,
							  text, sizeof(text)));
	rw_free(w);
}

static void
rw_addr_done(const struct sc_dns_result *res, void *arg)
{
	struct rw_domain *w = arg;

	if (res->status == SC_DNS_OK)
		for (size_t i = 0; i < res->n; i++)
			if (sc_dns_is_local_address(res->rr[i].addr))
				w->here = true;
	rw_settle(w);
}

/* rw_lookup_host - the A and AAAA of host, counted in w->pending */
static void
rw_lookup_host(struct rw_domain *w, const char *host)
{
	static const int types[] = { SC_DNS_A, SC_DNS_AAAA };

	if (strcasecmp(host, w->hostname) == 0) {
		w->here = true;
		return;
	}
	for (size_t t = 0; t < 2; t++) {
		w->pending++;
		if (sc_dns_resolve(host, types[t], rw_addr_done, w) < 0)
			w->pending--;	/* stopping: no answer will come */
	}
}

static void
rw_mx_done(const struct sc_dns_result *res, void *arg)
{
	struct rw_domain *w = arg;

	w->pending++;		/* a guard while the hosts are asked */
	if (res->status == SC_DNS_NODATA) {
		/* RFC 5321 5.1: no MX, the domain's own address */
		rw_lookup_host(w, w->name);
	} else if (res->status == SC_DNS_OK && res->n > 0 &&
		   strcmp(res->rr[0].name, ".") != 0) {
		/* sorted by preference: the best ones come first */
		for (size_t i = 0; i < res->n &&
			     res->rr[i].pref == res->rr[0].pref; i++)
			rw_lookup_host(w, res->rr[i].name);
	}
	w->pending--;
	rw_settle(w);
}

/* sc_route_warn_start - see core.h */
void
sc_route_warn_start(const struct sc_main_config *cfg)
{
	for (size_t i = 0; i < cfg->domain_count; i++) {
		const struct sc_domain_conf *dc = &cfg->domains[i];
		struct rw_domain *w;

		if (dc->routing != SC_ROUTING_REMOTE &&
		    dc->routing != SC_ROUTING_BACKUP)
			continue;
		w = calloc(1, sizeof(*w));
		if (w == NULL)
			return;
		w->name = strdup(dc->name);
		w->hostname = strdup(cfg->hostname);
		w->routing = dc->routing;
		w->pending = 1;
		if (w->name == NULL || w->hostname == NULL ||
		    sc_dns_resolve(w->name, SC_DNS_MX, rw_mx_done, w) < 0) {
			rw_free(w);
			continue;
		}
	}
}
