/* SPDX-License-Identifier: MIT */
/*
 * relay_route.c - where a job's mail goes: the next hop (ROUTE's choice, a
 * static route, the smarthost) or the domain's MX hosts in preference order,
 * the implicit MX (A/AAAA) when there is none, a null MX, this server among
 * the MX hosts (a loop, or a backup MX), the hosts' addresses (and TLSA
 * records for DANE), and connecting to them one after the other. Event
 * loop thread.
 */
#include "relay_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#define RELAY_MAX_HOSTS 10	/* MX hosts tried per attempt            */

/* split_hostport - "host:port", "[v6]:port", "host" into parts. 0 or -1. */
int
split_hostport(const char *text, char *host, size_t hlen, uint16_t *port,
	       uint16_t defport)
{
	const char *p = NULL;
	size_t n;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (end == NULL)
			return -1;
		n = (size_t)(end - text - 1);
		if (end[1] == ':')
			p = end + 2;
		else if (end[1] != '\0')
			return -1;
		text++;
	} else {
		const char *c = strrchr(text, ':');
		if (c != NULL && strchr(text, ':') != c)
			c = NULL;	/* a bare IPv6 address */
		n = c != NULL ? (size_t)(c - text) : strlen(text);
		if (c != NULL)
			p = c + 1;
	}
	if (n == 0 || n >= hlen)
		return -1;
	memcpy(host, text, n);
	host[n] = '\0';
	if (p != NULL) {
		char *end = NULL;
		errno = 0;
		unsigned long v = strtoul(p, &end, 10);
		if (errno != 0 || end == p || *end != '\0' || v == 0 ||
		    v > 65535)
			return -1;
		*port = (uint16_t)v;
	} else {
		*port = defport;
	}
	return 0;
}

bool
is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 ||
	       inet_pton(AF_INET6, s, buf) == 1;
}

/* job_next_address - connects to the address at (hi, ai), moving on to the
 * next host when a host's addresses are used up; when all are, the job
 * ends with the last error. */
void
job_next_address(struct relay_job *job)
{
	struct relay *r = job->r;

	if (job->st == JS_WAIT_SLOT)
		return;
	for (;;) {
		if (job->hi >= job->nhosts) {
			job_finish(job);
			return;
		}
		struct relay_host *h = &job->hosts[job->hi];
		if (h->self || job->ai >= h->naddr) {
			job->hi++;
			job->ai = 0;
			job->plaintext_only = false;
			continue;
		}
		/* DANE: a usable TLSA set needs a secure answer; a bogus or
		 * failed lookup means we cannot tell: try another host */
		job->dane = false;
		if (r->conf->tls == TLS_DANE) {
			if (h->st_tlsa == SC_DNS_BOGUS ||
			    h->st_tlsa == SC_DNS_TEMPFAIL) {
				job_set_error(job, SC_DENYSOFT, 451, "4.7.5",
					      "TLSA lookup for %s failed: "
					      "cannot decide on DANE",
					      h->name);
				job->hi++;
				job->ai = 0;
				continue;
			}
			job->dane = h->tlsa_secure && h->ntlsa > 0;
		}
		break;
	}
	struct relay_host *h = &job->hosts[job->hi];
	const char *addr = h->addr[job->ai];
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(addr, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(h->port);
		inet_pton(AF_INET6, addr, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(h->port);
		inet_pton(AF_INET, addr, &s4->sin_addr);
	}
	sfmt(job->peer, sizeof(job->peer), "%s[%s]", h->name, addr);
	if (job->slot == NULL && !dest_acquire(r, job)) {
		job->st = JS_WAIT_SLOT;
		return;
	}
	job->st = JS_CONNECTING;
	sc_log_debug("relay: %s: connecting to %s:%u",
		     sc_delivery_queue_id(job->batch->d), job->peer, h->port);
	job_ref(job);
	if (sc_conn_connect((struct sockaddr *)&ss, r->conf->connect_timeout,
			    job_connected, job) < 0) {
		job_unref(job);
		job_set_error(job, SC_DENYSOFT, 451, "4.4.1",
			      "cannot connect to %s", job->peer);
		job->ai++;
		job_next_address(job);
	}
}

/* ---- DNS ---- */

struct relay_dnsq {
	struct relay_job *job;
	size_t host;
	int type;
};

static void job_hosts_resolved(struct relay_job *job);

static void
job_addr_cb(const struct sc_dns_result *res, void *arg)
{
	struct relay_dnsq *q = arg;
	struct relay_job *job = q->job;
	struct relay_host *h = &job->hosts[q->host];

	if (!job->finished) {
		if (q->type == SC_DNS_TLSA) {
			h->st_tlsa = res->status;
			h->tlsa_secure = res->secure;
			for (size_t i = 0; res->status == SC_DNS_OK &&
			     i < res->n && h->ntlsa < RELAY_MAX_TLSA; i++) {
				unsigned char *p = malloc(res->rr[i].len);
				if (p == NULL)
					break;
				memcpy(p, res->rr[i].data, res->rr[i].len);
				h->tlsa[h->ntlsa] = p;
				h->tlsa_len[h->ntlsa++] = res->rr[i].len;
			}
		} else {
			if (q->type == SC_DNS_A)
				h->st_a = res->status;
			else
				h->st_aaaa = res->status;
			for (size_t i = 0; res->status == SC_DNS_OK &&
			     i < res->n && h->naddr < RELAY_MAX_ADDRS; i++) {
				if (res->rr[i].addr[0] == '\0')
					continue;
				sfmt(h->addr[h->naddr++],
					 sizeof(h->addr[0]), "%s",
					 res->rr[i].addr);
			}
			if (res->error != NULL)
				sfmt(h->dns_error, sizeof(h->dns_error),
					 "%s", res->error);
		}
	}
	free(q);
	if (--job->dns_pending == 0 && !job->finished)
		job_hosts_resolved(job);
	job_unref(job);
}

static int
job_lookup(struct relay_job *job, size_t host, const char *name, int type)
{
	struct relay_dnsq *q = malloc(sizeof(*q));

	if (q == NULL)
		return -1;
	q->job = job;
	q->host = host;
	q->type = type;
	job->dns_pending++;
	job_ref(job);
	if (sc_dns_resolve_inst(job->r->inst, name, type, job_addr_cb, q,
				NULL) < 0) {
		job->dns_pending--;
		job_unref(job);
		free(q);
		return -1;
	}
	return 0;
}

/* job_resolve_hosts - A, AAAA (and TLSA for dane) of every host, all at
 * once; job_hosts_resolved runs when the last answer is in. */
static void
job_resolve_hosts(struct relay_job *job)
{
	/* hold a reference: answers may arrive while we still submit */
	job_ref(job);
	job->dns_pending++;
	for (size_t i = 0; i < job->nhosts; i++) {
		struct relay_host *h = &job->hosts[i];
		if (is_ip_literal(h->name)) {
			sfmt(h->addr[0], sizeof(h->addr[0]), "%s",
				 h->name);
			h->naddr = 1;
			h->st_a = SC_DNS_OK;
			h->st_tlsa = SC_DNS_NODATA;
			continue;
		}
		h->st_a = h->st_aaaa = SC_DNS_TEMPFAIL;
		h->st_tlsa = SC_DNS_NODATA;
		if (job_lookup(job, i, h->name, SC_DNS_A) < 0 ||
		    job_lookup(job, i, h->name, SC_DNS_AAAA) < 0)
			sfmt(h->dns_error, sizeof(h->dns_error),
				 "cannot look up %s", h->name);
		if (job->r->conf->tls == TLS_DANE) {
			char tname[300];
			sfmt(tname, sizeof(tname), "_%u._tcp.%s",
				 h->port, h->name);
			h->st_tlsa = SC_DNS_TEMPFAIL;
			job_lookup(job, i, tname, SC_DNS_TLSA);
		}
	}
	if (--job->dns_pending == 0 && !job->finished)
		job_hosts_resolved(job);
	job_unref(job);
}

static int
addr_cmp_v4_first(const void *a, const void *b)
{
	bool a6 = strchr(a, ':') != NULL, b6 = strchr(b, ':') != NULL;

	return (int)a6 - (int)b6;
}

/* job_hosts_resolved - every address is known: apply the MX rules that
 * need them (this server among the MX hosts), then connect. */
static void
job_hosts_resolved(struct relay_job *job)
{
	bool any_addr = false, any_temp = false, all_nx = true;
	int self_pref = -1;

	for (size_t i = 0; i < job->nhosts; i++) {
		struct relay_host *h = &job->hosts[i];

		/* IPv4 first: deterministic, and what most MX hosts
		 * answer on reliably */
		qsort(h->addr, h->naddr, sizeof(h->addr[0]),
		      addr_cmp_v4_first);
		if (h->naddr > 0)
			any_addr = true;
		if (h->naddr == 0 && (h->st_a == SC_DNS_TEMPFAIL ||
				      h->st_a == SC_DNS_BOGUS ||
				      h->st_aaaa == SC_DNS_TEMPFAIL ||
				      h->st_aaaa == SC_DNS_BOGUS))
			any_temp = true;
		if (h->st_a != SC_DNS_NXDOMAIN || h->st_aaaa != SC_DNS_NXDOMAIN)
			all_nx = false;
		if (!job->mx_routing)
			continue;
		bool self = strcasecmp(h->name, relay_hostname()) == 0;
		for (size_t a = 0; !self && a < h->naddr; a++)
			self = sc_dns_is_local_address(h->addr[a]);
		if (self && (self_pref < 0 || h->pref < self_pref))
			self_pref = h->pref;
	}
	if (job->mx_routing && self_pref >= 0) {
		/* RFC 5321 5.1: only MX hosts more preferred than we are */
		bool better = false;
		for (size_t i = 0; i < job->nhosts; i++) {
			struct relay_host *h = &job->hosts[i];
			if (h->pref >= self_pref)
				h->self = true;
			else if (h->naddr > 0)
				better = true;
		}
		if (!better) {
			if (sc_config_domain_routing(job->domain) ==
			    SC_ROUTING_BACKUP) {
				job_fail_all(job, SC_DENYSOFT, 451, "4.4.0",
					     "no MX host of %s with a better "
					     "preference than this server is "
					     "reachable", job->domain);
			} else {
				job_fail_all(job, SC_DENY, 554, "5.4.6",
					     "mail for %s loops back to "
					     "myself", job->domain);
			}
			job_finish(job);
			return;
		}
	}
	if (!any_addr) {
		const char *why = job->hosts[0].dns_error[0] != '\0'
			? job->hosts[0].dns_error : "no A/AAAA record";
		if (any_temp)
			job_set_error(job, SC_DENYSOFT, 451, "4.4.3",
				      "cannot resolve the mail host of %s: "
				      "%s", job->domain, why);
		else if (job->implicit_mx)
			/* the domain exists but has neither MX nor
			 * address: nothing will change by waiting */
			job_set_error(job, SC_DENY, 550, "5.4.4",
				      "recipient domain %s has no MX and no "
				      "A/AAAA record", job->domain);
		else
			/* MX hosts without addresses: a broken zone that
			 * may be fixed; keep trying until max_queue_time */
			job_set_error(job, SC_DENYSOFT, 451, "4.4.4",
				      "no address for the mail host%s of %s%s",
				      job->nhosts > 1 ? "s" : "", job->domain,
				      all_nx ? " (host not found)" : "");
		job_finish(job);
		return;
	}
	job->hi = job->ai = 0;
	job_next_address(job);
}

static void
job_mx_cb(const struct sc_dns_result *res, void *arg)
{
	struct relay_job *job = arg;
	size_t n;

	if (job->finished) {
		job_unref(job);
		return;
	}
	switch (res->status) {
	case SC_DNS_OK:
		if (res->n == 1 && res->rr[0].pref == 0 &&
		    (res->rr[0].name[0] == '\0' ||
		     strcmp(res->rr[0].name, ".") == 0)) {
			job_fail_all(job, SC_DENY, 556, "5.1.10",
				     "recipient domain %s has a null MX "
				     "(RFC 7505) and accepts no mail",
				     job->domain);
			job_finish(job);
			break;
		}
		n = res->n < RELAY_MAX_HOSTS ? res->n : RELAY_MAX_HOSTS;
		job->hosts = calloc(n, sizeof(*job->hosts));
		if (job->hosts == NULL) {
			job_set_error(job, SC_DENYSOFT, 451, "4.3.0",
				      "out of memory");
			job_finish(job);
			break;
		}
		for (size_t i = 0; i < res->n && job->nhosts < n; i++) {
			const struct sc_dns_rr *rr = &res->rr[i];
			if (rr->name[0] == '\0' || strcmp(rr->name, ".") == 0)
				continue;	/* a null MX among others */
			struct relay_host *h = &job->hosts[job->nhosts++];
			sfmt(h->name, sizeof(h->name), "%s", rr->name);
			h->pref = rr->pref;
			h->port = (uint16_t)job->r->conf->port;
		}
		job->mx_routing = true;
		job_resolve_hosts(job);
		break;
	case SC_DNS_NODATA:
		/* no MX: the domain itself is the implicit MX (RFC 5321 5.1) */
		job->hosts = calloc(1, sizeof(*job->hosts));
		if (job->hosts == NULL) {
			job_finish(job);
			break;
		}
		job->nhosts = 1;
		sfmt(job->hosts[0].name, sizeof(job->hosts[0].name), "%s",
			 job->domain);
		job->hosts[0].pref = 0;
		job->hosts[0].port = (uint16_t)job->r->conf->port;
		job->mx_routing = true;
		job->implicit_mx = true;
		job_resolve_hosts(job);
		break;
	case SC_DNS_NXDOMAIN:
		job_fail_all(job, SC_DENY, 550, "5.1.2",
			     "recipient domain %s does not exist (DNS: "
			     "NXDOMAIN)", job->domain);
		job_finish(job);
		break;
	case SC_DNS_TEMPFAIL:
	case SC_DNS_BOGUS:
		job_set_error(job, SC_DENYSOFT, 451, "4.4.3",
			      "MX lookup for %s failed: %s", job->domain,
			      res->error != NULL ? res->error
						 : "temporary DNS error");
		job_finish(job);
		break;
	}
	job_unref(job);
}

/* job_start - picks the next hop: ROUTE's choice, a static route, the
 * smarthost, or the MX records of the domain. */
void
job_start(struct relay_job *job)
{
	struct relay *r = job->r;
	const char *hop = sc_delivery_nexthop(job->batch->d);
	char host[256];
	uint16_t port;

	job->reply_timer = sc_timer_new(job_reply_deadline, job);
	job->job_timer = sc_timer_new(job_total_deadline, job);
	if (job->reply_timer == NULL || job->job_timer == NULL) {
		job_set_error(job, SC_DENYSOFT, 451, "4.3.0",
			      "out of memory");
		job_finish(job);
		return;
	}
	if (r->conf->timeouts.total > 0)
		sc_timer_start(job->job_timer, r->conf->timeouts.total, 0);
	if (hop == NULL || hop[0] == '\0') {
		for (size_t i = 0; i < r->conf->routes.n; i++)
			if (strcasecmp(r->conf->routes.keys[i],
				       job->domain) == 0) {
				hop = r->conf->routes.values[i];
				break;
			}
	}
	if ((hop == NULL || hop[0] == '\0') && r->smarthost_host[0] != '\0') {
		sfmt(host, sizeof(host), "%s", r->smarthost_host);
		port = r->smarthost_port;
		job->use_auth = r->password != NULL;
	} else if (hop != NULL && hop[0] != '\0') {
		if (split_hostport(hop, host, sizeof(host), &port,
				   (uint16_t)r->conf->port) < 0) {
			job_fail_all(job, SC_DENYSOFT, 451, "4.3.5",
				     "bad next hop '%s' (want host:port)",
				     hop);
			job_finish(job);
			return;
		}
	} else {
		sfmt(job->dest_key, sizeof(job->dest_key), "mx:%s",
			 job->domain);
		job_ref(job);
		if (sc_dns_resolve_inst(r->inst, job->domain, SC_DNS_MX,
					job_mx_cb, job, NULL) < 0) {
			job_unref(job);
			job_set_error(job, SC_DENYSOFT, 451, "4.4.3",
				      "cannot look up the MX of %s",
				      job->domain);
			job_finish(job);
		}
		return;
	}
	sfmt(job->dest_key, sizeof(job->dest_key), "%s:%u", host, port);
	job->hosts = calloc(1, sizeof(*job->hosts));
	if (job->hosts == NULL) {
		job_finish(job);
		return;
	}
	job->nhosts = 1;
	sfmt(job->hosts[0].name, sizeof(job->hosts[0].name), "%s", host);
	job->hosts[0].port = port;
	job->hosts[0].pref = -1;
	job_resolve_hosts(job);
}
