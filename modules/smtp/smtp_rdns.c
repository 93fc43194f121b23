/* SPDX-License-Identifier: MIT */
/*
 * smtp_rdns.c - the client's name for our Received: line: a PTR lookup of
 * its address confirmed by a forward (A/AAAA) lookup of the name, as
 * Postfix does ("forward-confirmed reverse DNS"). Started at connect,
 * asynchronous on the event loop; nothing waits for it: a message whose
 * DATA comes before the answer says "unknown", as does a name that does
 * not lead back to the address. Each lookup is bounded by the core's
 * SC_DNS_TIMEOUT_MS; outcomes are cached per address for a while in a
 * small per-instance table. Event loop thread only.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <satchel/satchel.h>

#include "smtp_int.h"

#define RDNS_CACHE_SLOTS	256		/* direct-mapped, per instance */
#define RDNS_CACHE_MS		(10 * 60 * 1000)	/* a name, or none     */

/* One cached outcome: name "" = no confirmed name. */
struct rdns_slot {
	char ip[INET6_ADDRSTRLEN];
	char name[256];
	uint64_t expires;	/* sc_now_ms(); 0 = empty slot */
};

struct smtp_rdns_cache {
	struct rdns_slot slot[RDNS_CACHE_SLOTS];
};

static struct rdns_slot *
rdns_slot(struct smtp_inst *si, const char *ip)
{
	uint32_t h = 2166136261u;

	for (const char *p = ip; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &si->rdns->slot[h % RDNS_CACHE_SLOTS];
}

static void
rdns_remember(struct smtp_inst *si, const char *ip, const char *name)
{
	struct rdns_slot *sl;

	if (si->rdns == NULL)
		return;
	sl = rdns_slot(si, ip);
	snprintf(sl->ip, sizeof(sl->ip), "%s", ip);
	snprintf(sl->name, sizeof(sl->name), "%s", name);
	sl->expires = sc_now_ms() + RDNS_CACHE_MS;
}

/* rdns_done - the lookup's outcome for this session (and the cache) */
static void
rdns_done(struct smtp_session *ss, const char *name, bool cache)
{
	ss->rdns_state = RDNS_DONE;
	if (name != ss->rdns_name)	/* the confirmed one is there */
		snprintf(ss->rdns_name, sizeof(ss->rdns_name), "%s", name);
	if (cache)
		rdns_remember(ss->si, sc_session_client_ip(ss->s), name);
	sc_log_session(SC_LOG_DEBUG, ss->s, "smtp: client name of %s: %s%s",
		       sc_session_client_ip(ss->s), name[0] ? name : "unknown",
		       name[0] ? " (PTR confirmed)" :
		       " (no PTR that leads back to the address)");
}

/* same_addr - textual addresses a and b name the same address */
static bool
same_addr(const char *a, const char *b)
{
	unsigned char x[16], y[16];
	int fam = strchr(a, ':') != NULL ? AF_INET6 : AF_INET;

	if ((strchr(b, ':') != NULL ? AF_INET6 : AF_INET) != fam)
		return false;
	return inet_pton(fam, a, x) == 1 && inet_pton(fam, b, y) == 1 &&
	       memcmp(x, y, fam == AF_INET ? 4 : 16) == 0;
}

static void
rdns_forward_answer(const struct sc_dns_result *res, void *arg)
{
	struct smtp_session *ss = arg;
	const char *ip = sc_session_client_ip(ss->s);

	ss->rdns_query = NULL;
	if (res->status == SC_DNS_OK)
		for (size_t i = 0; i < res->n; i++)
			if (same_addr(res->rr[i].addr, ip)) {
				rdns_done(ss, ss->rdns_name, true);
				return;
			}
	/* a temporary failure is not cached: the next connection asks
	 * again */
	rdns_done(ss, "", res->status != SC_DNS_TEMPFAIL);
}

static void
rdns_ptr_answer(const struct sc_dns_result *res, void *arg)
{
	struct smtp_session *ss = arg;
	const char *ip = sc_session_client_ip(ss->s);
	const char *name = NULL;

	ss->rdns_query = NULL;
	for (size_t i = 0; res->status == SC_DNS_OK && i < res->n; i++)
		if (res->rr[i].type == SC_DNS_PTR &&
		    strcmp(res->rr[i].name, ".") != 0 && res->rr[i].name[0]) {
			name = res->rr[i].name;	/* the first one, as Postfix */
			break;
		}
	if (name == NULL) {
		rdns_done(ss, "", res->status != SC_DNS_TEMPFAIL);
		return;
	}
	snprintf(ss->rdns_name, sizeof(ss->rdns_name), "%s", name);
	if (sc_dns_resolve_inst(ss->si->inst, name,
				strchr(ip, ':') != NULL ? SC_DNS_AAAA :
				SC_DNS_A, rdns_forward_answer, ss,
				&ss->rdns_query) != 0)
		rdns_done(ss, "", false);
}

/* reverse_name - "4.3.2.1.in-addr.arpa" or the ip6.arpa nibbles; -1 when
 * ip is no address */
static int
reverse_name(const char *ip, char *buf, size_t len)
{
	unsigned char a[16];
	size_t o = 0;

	if (inet_pton(AF_INET, ip, a) == 1) {
		snprintf(buf, len, "%u.%u.%u.%u.in-addr.arpa", a[3], a[2],
			 a[1], a[0]);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, a) != 1 || len < 73)
		return -1;
	for (int i = 15; i >= 0; i--) {
		static const char hex[] = "0123456789abcdef";

		buf[o++] = hex[a[i] & 0xf];
		buf[o++] = '.';
		buf[o++] = hex[a[i] >> 4];
		buf[o++] = '.';
	}
	snprintf(buf + o, len - o, "ip6.arpa");
	return 0;
}

void
smtp_rdns_start(struct smtp_session *ss)
{
	const char *ip = sc_session_client_ip(ss->s);
	struct rdns_slot *sl;
	char rev[80];

	ss->rdns_state = RDNS_DONE;
	ss->rdns_name[0] = '\0';
	if (ip == NULL || reverse_name(ip, rev, sizeof(rev)) != 0)
		return;
	if (ss->si->rdns != NULL) {
		sl = rdns_slot(ss->si, ip);
		if (sl->expires > sc_now_ms() && strcmp(sl->ip, ip) == 0) {
			snprintf(ss->rdns_name, sizeof(ss->rdns_name), "%s",
				 sl->name);
			return;
		}
	}
	ss->rdns_state = RDNS_PENDING;
	if (sc_dns_resolve_inst(ss->si->inst, rev, SC_DNS_PTR,
				rdns_ptr_answer, ss, &ss->rdns_query) != 0)
		ss->rdns_state = RDNS_DONE;
}

const char *
smtp_rdns_name(const struct smtp_session *ss)
{
	return ss->rdns_state == RDNS_DONE && ss->rdns_name[0] != '\0' ?
	       ss->rdns_name : "unknown";
}

void
smtp_rdns_stop(struct smtp_session *ss)
{
	sc_dns_cancel(ss->rdns_query);
	ss->rdns_query = NULL;
}

int
smtp_rdns_cache_new(struct smtp_inst *si)
{
	si->rdns = calloc(1, sizeof(*si->rdns));
	return si->rdns != NULL ? 0 : -1;
}

void
smtp_rdns_cache_free(struct smtp_inst *si)
{
	free(si->rdns);
	si->rdns = NULL;
}
