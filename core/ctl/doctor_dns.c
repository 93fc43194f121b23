/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_dns.c - doctor's DNS lookups: a libunbound resolver set
 * up as the daemon's (core/dns.c), synchronous queries with a bounded
 * wait, and the A/AAAA of a host checked against this machine's
 * addresses. satchelctl process; libunbound's own thread answers.
 */
#include "doctor.h"

#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unbound.h>

/* One DNS query may take this long (a dead forwarder must not hang us). */
#define DIAG_DNS_TIMEOUT_MS	8000

/* dns_server_split - a dns.servers entry ("ip", "ip:port", "[v6]:port"
 * or a bare v6 address) into host and port ("" when none). 0 or -1. */
static int
dns_server_split(const char *s, char host[INET6_ADDRSTRLEN + 1],
		 char port[8])
{
	const char *p = NULL;
	size_t hl;

	if (s[0] == '[') {
		const char *e = strchr(s, ']');
		hl = e != NULL ? (size_t)(e - s - 1) : 0;
		if (e != NULL && e[1] == ':')
			p = e + 2;
		s++;
	} else {
		const char *c = strchr(s, ':');
		if (c != NULL && strchr(c + 1, ':') == NULL) {
			hl = (size_t)(c - s);
			p = c + 1;
		} else {
			hl = strlen(s);
		}
	}
	if (hl == 0 || hl > INET6_ADDRSTRLEN ||
	    (p != NULL && (strlen(p) == 0 || strlen(p) > 5)))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	snprintf(port, 8, "%s", p != NULL ? p : "");
	return 0;
}

/* dns_open - a resolver like core/dns.c's: dns.servers as forwarders
 * (else resolv.conf), loopback servers allowed, and the RFC 6761 names'
 * built-in empty zones removed so a local server's records are seen */
int
dns_open(struct doctor *d)
{
	const struct sc_main_config *cfg = d->cfg;
	static const char *const zones[] = {
		"test.", "example.", "invalid.", "localhost.", NULL
	};
	struct ub_ctx *ub = ub_ctx_create();
	int err;

	if (ub == NULL) {
		d->ub_error = strdup("cannot create the resolver");
		return -1;
	}
	/* a thread: ub_fd() then tells when an answer is in, so every
	 * wait is bounded by our own timeout */
	if ((err = ub_ctx_async(ub, 1)) != 0)
		goto fail;
	for (size_t i = 0; i < cfg->dns_servers.n; i++) {
		char host[INET6_ADDRSTRLEN + 1], port[8];
		char fwd[INET6_ADDRSTRLEN + 16];

		if (dns_server_split(cfg->dns_servers.v[i], host, port) < 0) {
			if (asprintf(&d->ub_error, "bad dns.servers entry "
				     "'%s'", cfg->dns_servers.v[i]) < 0)
				d->ub_error = NULL;
			ub_ctx_delete(ub);
			return -1;
		}
		if (port[0] != '\0')
			snprintf(fwd, sizeof(fwd), "%s@%s", host, port);
		else
			snprintf(fwd, sizeof(fwd), "%s", host);
		if ((err = ub_ctx_set_fwd(ub, fwd)) != 0)
			goto fail;
	}
	/* no resolv.conf: unbound resolves from the root itself, as the
	 * daemon does (core/dns.c) */
	if (cfg->dns_servers.n == 0)
		(void)ub_ctx_resolvconf(ub, NULL);
	ub_ctx_set_option(ub, "do-not-query-localhost:", "no");
	for (size_t i = 0; zones[i] != NULL; i++)
		ub_ctx_zone_remove(ub, zones[i]);
	d->ub = ub;
	return 0;
fail:
	if (asprintf(&d->ub_error, "resolver setup: %s",
		     ub_strerror(err)) < 0)
		d->ub_error = NULL;
	ub_ctx_delete(ub);
	return -1;
}

struct dns_wait {
	bool done;
	int err;
	struct ub_result *res;
};

static void
dns_cb(void *arg, int err, struct ub_result *res)
{
	struct dns_wait *w = arg;

	w->done = true;
	w->err = err;
	w->res = res;
}

/* rdata_name - the uncompressed wire name at data[*off] as text; "." for
 * the root. 0 or -1. */
static int
rdata_name(const unsigned char *data, size_t len, size_t off, char *out,
	   size_t outlen)
{
	size_t o = 0;

	for (;;) {
		unsigned c;

		if (off >= len)
			return -1;
		c = data[off];
		if (c == 0)
			break;
		/* libunbound hands out names uncompressed: anything else
		 * is malformed */
		if ((c & 0xc0) != 0 || off + 1 + c > len ||
		    o + c + 2 > outlen)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (unsigned i = 0; i < c; i++) {
			unsigned char ch = data[off + 1 + i];
			if (ch <= 0x20 || ch >= 0x7f || ch == '.')
				return -1;
			out[o++] = (char)ch;
		}
		off += 1 + c;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return 0;
}

/* dq - resolves name/type synchronously within DIAG_DNS_TIMEOUT_MS */
void
dq(struct doctor *d, const char *name, int type, struct dq_answer *a)
{
	struct dns_wait w = { 0 };
	struct timespec t0, t1;
	int id, err;

	memset(a, 0, sizeof(*a));
	a->status = DQ_FAIL;
	if (d->ub == NULL) {
		snprintf(a->error, sizeof(a->error), "%s",
			 d->ub_error ? d->ub_error : "no resolver");
		return;
	}
	if (d->dns_dead) {
		/* one timeout per run is enough to wait for */
		snprintf(a->error, sizeof(a->error), "the DNS server did "
			 "not answer an earlier query");
		return;
	}
	err = ub_resolve_async(d->ub, name, type, 1, &w, dns_cb, &id);
	if (err != 0) {
		snprintf(a->error, sizeof(a->error), "%s", ub_strerror(err));
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!w.done) {
		struct pollfd pfd = { .fd = ub_fd(d->ub), .events = POLLIN };
		long left;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = DIAG_DNS_TIMEOUT_MS - ((t1.tv_sec - t0.tv_sec) * 1000 +
					      (t1.tv_nsec - t0.tv_nsec) /
					      1000000);
		if (left <= 0) {
			ub_cancel(d->ub, id);
			d->dns_dead = true;
			snprintf(a->error, sizeof(a->error), "no answer "
				 "within %d s", DIAG_DNS_TIMEOUT_MS / 1000);
			return;
		}
		if (poll(&pfd, 1, (int)left) > 0)
			ub_process(d->ub);
	}
	if (w.err != 0 || w.res == NULL) {
		snprintf(a->error, sizeof(a->error), "%s",
			 ub_strerror(w.err));
		ub_resolve_free(w.res);
		return;
	}
	if (w.res->rcode == 3 || w.res->nxdomain) {
		a->status = DQ_NXDOMAIN;
	} else if (w.res->rcode != 0) {
		snprintf(a->error, sizeof(a->error), "the DNS server "
			 "answered %s (rcode %d)", w.res->rcode == 2 ?
			 "SERVFAIL" : w.res->rcode == 5 ? "REFUSED" : "an "
			 "error", w.res->rcode);
	} else if (!w.res->havedata) {
		a->status = DQ_NODATA;
	} else {
		a->status = DQ_OK;
		for (size_t i = 0; w.res->data[i] != NULL &&
			     a->n < DIAG_MAX_RR; i++) {
			const unsigned char *p =
				(const unsigned char *)w.res->data[i];
			size_t l = (size_t)w.res->len[i];
			int af = type == SC_DNS_A ? AF_INET : AF_INET6;

			if (type == DQ_SRV) {
				/* priority, weight, port, target (RFC 2782) */
				if (l < 7 || rdata_name(p, l, 6,
							a->name[a->n],
							256) < 0)
					continue;
				a->pref[a->n] = (uint16_t)(p[0] << 8 | p[1]);
				a->port[a->n++] = (uint16_t)(p[4] << 8 | p[5]);
			} else if (type == SC_DNS_MX) {
				if (l < 3 || rdata_name(p, l, 2,
							a->name[a->n],
							256) < 0)
					continue;
				a->pref[a->n++] = (uint16_t)(p[0] << 8 | p[1]);
			} else if (l == (af == AF_INET ? 4u : 16u)) {
				inet_ntop(af, p, a->name[a->n++], 256);
			}
		}
		if (a->n == 0)
			a->status = DQ_NODATA;
	}
	ub_resolve_free(w.res);
}

/* host_lookup - the A/AAAA of name into h; h->here when name is this
 * server's hostname or one address is this machine's (exact match of
 * the interface addresses: 127.0.0.2 is another host) */
void
host_lookup(struct doctor *d, const char *name, struct mxhost *h)
{
	static const int types[] = { SC_DNS_A, SC_DNS_AAAA };
	struct dq_answer *a = malloc(sizeof(*a));
	size_t off = 0;

	snprintf(h->name, sizeof(h->name), "%s", name);
	h->addrs[0] = '\0';
	h->here = d->cfg->hostname != NULL &&
		strcasecmp(name, d->cfg->hostname) == 0;
	h->resolved = false;
	h->error[0] = '\0';
	if (a == NULL)
		return;
	for (size_t t = 0; t < 2; t++) {
		dq(d, name, types[t], a);
		if (a->status == DQ_FAIL && h->error[0] == '\0')
			snprintf(h->error, sizeof(h->error), "%s", a->error);
		if (a->status != DQ_OK)
			continue;
		h->resolved = true;
		for (size_t i = 0; i < a->n; i++) {
			int n = snprintf(h->addrs + off,
					 sizeof(h->addrs) - off, "%s%s",
					 off ? ", " : "", a->name[i]);
			if (n > 0 && (size_t)n < sizeof(h->addrs) - off)
				off += (size_t)n;
			if (sc_dns_is_local_address(a->name[i]))
				h->here = true;
		}
	}
	free(a);
}

/* hint_dig - the dig command that shows the record, asking the resolver
 * the daemon uses */
void
hint_dig(struct doctor *d, const char *type, const char *name)
{
	const struct sc_str_list *sv = &d->cfg->dns_servers;
	char host[INET6_ADDRSTRLEN + 1], port[8];

	/* ask what the daemon asks: its first forwarder, not the system's
	 * resolver, which may see other records */
	if (sv->n > 0 && dns_server_split(sv->v[0], host, port) == 0) {
		if (port[0] != '\0' && strcmp(port, "53") != 0)
			report(d, 3, "check: dig @%s -p %s %s %s", host, port,
			       type, name);
		else
			report(d, 3, "check: dig @%s %s %s", host, type, name);
		return;
	}
	report(d, 3, "check: dig %s %s", type, name);
}
