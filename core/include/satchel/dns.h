/* SPDX-License-Identifier: MIT */
/*
 * satchel/dns.h - asynchronous DNS (libunbound) on the event loop.
 *
 * Uses dns.servers of the main config when set (forwarders), otherwise the
 * system resolver configuration. Answers are cached for their TTL by
 * libunbound.
 */
#ifndef SATCHEL_DNS_H
#define SATCHEL_DNS_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sc_dns_status {
	SC_DNS_OK = 0,		/* records present                        */
	SC_DNS_NODATA,		/* the name exists, no record of the type  */
	SC_DNS_NXDOMAIN,	/* permanent: the name does not exist      */
	SC_DNS_TEMPFAIL,	/* SERVFAIL, timeout, network: try later   */
	SC_DNS_BOGUS,		/* DNSSEC validation failed               */
};

/* Record types. A, AAAA, MX and PTR are decoded into struct sc_dns_rr;
 * any other type (TLSA, TXT, ...) comes as raw rdata only. */
#define SC_DNS_A    1
#define SC_DNS_PTR  12	/* name: the reverse name ("4.3.2.1.in-addr.arpa",
			   nibbles under ip6.arpa); rr->name holds the
			   target. Since ABI 1.2. */
#define SC_DNS_MX   15
#define SC_DNS_AAAA 28
#define SC_DNS_TLSA 52

/* The longest a lookup waits for its answer: after this, fn gets
 * SC_DNS_TEMPFAIL ("timed out"), whatever libunbound is still trying.
 * Since ABI 1.2 (the bound itself was always there). */
#define SC_DNS_TIMEOUT_MS 20000

struct sc_dns_rr {
	uint16_t type;
	uint32_t ttl;
	uint16_t pref;		/* MX preference                          */
	char name[256];		/* MX exchange, PTR target (no trailing
				   dot; "." for the root, i.e. null MX)   */
	char addr[46];		/* A/AAAA, textual                        */
	const unsigned char *data; /* raw rdata                            */
	size_t len;
};

struct sc_dns_result {
	enum sc_dns_status status;
	bool secure;		/* DNSSEC validated                        */
	size_t n;
	const struct sc_dns_rr *rr; /* MX sorted by preference             */
	const char *error;	/* for TEMPFAIL/BOGUS, or NULL            */
};

typedef void (*sc_dns_fn)(const struct sc_dns_result *res, void *arg);

/* A lookup in progress (opaque). Since ABI 1.2. */
struct sc_dns_query;

/*
 * Looks up name/type for instance inst. Since ABI 1.2.
 *
 * When fn runs: exactly once, unless the lookup is cancelled first; never
 * before this call has returned (not even for a cached answer); always on
 * the loop thread; at the latest SC_DNS_TIMEOUT_MS (20 s) after the call,
 * with SC_DNS_TEMPFAIL then. It also gets TEMPFAIL at once when the
 * resolver shuts down (the daemon stops). res and what it points to are
 * valid only during fn.
 *
 * Lifetime (as sc_work_submit_inst): the lookup belongs to inst. The core
 * neither frees inst (instance_free) nor unloads its module until fn has
 * run or the lookup was cancelled, so fn may use the instance's data even
 * when a reload retired it meanwhile - a lookup started from a timer is
 * safe. Lookups may be started until instance_free is called, not from
 * instance_free itself (-1 then). inst NULL: bound to no instance (see
 * sc_dns_resolve).
 *
 * *query_r (when query_r is not NULL) gets a handle for sc_dns_cancel(),
 * valid until fn starts running or sc_dns_cancel() returns; forget it in
 * fn. 0, or -1 (fn will not run, *query_r is NULL).
 */
SC_API int sc_dns_resolve_inst(struct sc_instance *inst, const char *name,
			       int type, sc_dns_fn fn, void *arg,
			       struct sc_dns_query **query_r);

/* Cancels a lookup: fn never runs for it (it may run no more from the
 * moment this is called). A NULL query is ignored; so is a call from
 * inside the query's own fn. Since ABI 1.2. */
SC_API void sc_dns_cancel(struct sc_dns_query *query);

/* sc_dns_resolve_inst(NULL, name, type, fn, arg, NULL): the same timing,
 * but bound to no instance and without a cancel handle, so a reload may
 * free the instance and unload the module before fn runs. For the core
 * and tools; module code should use sc_dns_resolve_inst. 0 or -1. */
SC_API int sc_dns_resolve(const char *name, int type, sc_dns_fn fn,
			  void *arg);

/* Whether addr (textual) is one of this machine's own addresses. */
SC_API bool sc_dns_is_local_address(const char *addr);

#ifdef __cplusplus
}
#endif

#endif
