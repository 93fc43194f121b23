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

enum sc_dns_status {
	SC_DNS_OK = 0,		/* records present                        */
	SC_DNS_NODATA,		/* the name exists, no record of the type  */
	SC_DNS_NXDOMAIN,	/* permanent: the name does not exist      */
	SC_DNS_TEMPFAIL,	/* SERVFAIL, timeout, network: try later   */
	SC_DNS_BOGUS,		/* DNSSEC validation failed               */
};

#define SC_DNS_A    1
#define SC_DNS_MX   15
#define SC_DNS_AAAA 28
#define SC_DNS_TLSA 52

struct sc_dns_rr {
	uint16_t type;
	uint32_t ttl;
	uint16_t pref;		/* MX preference                          */
	char name[256];		/* MX exchange (no trailing dot)          */
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

/* Looks up name/type; fn runs once on the loop with the result (valid
 * only during the call). 0 or -1. */
SC_API int sc_dns_resolve(const char *name, int type, sc_dns_fn fn,
			  void *arg);

/* Whether addr (textual) is one of this machine's own addresses. */
SC_API bool sc_dns_is_local_address(const char *addr);

#endif
