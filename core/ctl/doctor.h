/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor.h - what the `satchelctl doctor` checks share: the run's
 * state, the report line, the DNS lookups, and the checks themselves (one
 * file each, run in turn by doctor.c). Private to satchelctl.
 */
#ifndef SC_CTL_DOCTOR_H
#define SC_CTL_DOCTOR_H

#include "confview.h"

#include <gnutls/gnutls.h>

#define DIAG_MAX_RR		32

struct ub_ctx;

struct doctor {
	const struct sc_main_config *cfg;
	struct ub_ctx *ub;
	char *ub_error;			/* why DNS checks cannot run */
	bool dns_dead;		/* a query timed out: stop asking */
	unsigned fails, warns;
	bool daemon_up;
	char *status;			/* the daemon's status reply */
	const struct lsn_list *ll;	/* the listeners; NULL: no memory */
	char **domains;			/* the DOMAIN arguments */
	int ndomains;
};

/* One check line: level 0 ok, 1 warn, 2 FAIL, 3 a hint line. */
void report(struct doctor *d, int level, const char *fmt, ...)
	SC_PRINTF(3, 4);

/* ---- DNS (doctor_dns.c) ---- */

/* Opens d->ub as the daemon would resolve; -1 with d->ub_error. */
int dns_open(struct doctor *d);

enum dq_status { DQ_OK, DQ_NODATA, DQ_NXDOMAIN, DQ_FAIL };

/* One answer: MX (pref, name), SRV (pref: the priority, port, name: the
 * target) or A/AAAA (addr) records. */
struct dq_answer {
	enum dq_status status;
	char error[160];
	size_t n;
	uint16_t pref[DIAG_MAX_RR];
	uint16_t port[DIAG_MAX_RR];
	char name[DIAG_MAX_RR][256];
};

#define DQ_SRV 33

/* Resolves name/type (SC_DNS_MX, _A, _AAAA, DQ_SRV) into a, within a
 * bound. */
void dq(struct doctor *d, const char *name, int type, struct dq_answer *a);

/* One MX host with its addresses. */
struct mxhost {
	uint16_t pref;
	char name[256];
	char addrs[256];		/* "127.0.0.1, ::1" or "" */
	bool here;
	bool resolved;
	char error[160];		/* a lookup failed (not NODATA) */
};

/* The A/AAAA of name into h; h->here when it is this machine. */
void host_lookup(struct doctor *d, const char *name, struct mxhost *h);
/* A hint line: the dig command that shows the record. */
void hint_dig(struct doctor *d, const char *type, const char *name);

/* ---- the checks, in the order doctor.c runs them ---- */

void doctor_domains(struct doctor *d);		/* doctor_mx.c */
void doctor_hostname(struct doctor *d);		/* doctor_hostname.c */
void doctor_cert(struct doctor *d);		/* doctor_tls.c */
/* Compares the certificate a TLS listener serves with crt, the file's
 * (doctor_served.c; called by doctor_cert). */
void doctor_served(struct doctor *d, gnutls_x509_crt_t crt,
		   const char *path);
void doctor_listeners(struct doctor *d);	/* doctor_listen.c */
void doctor_relay(struct doctor *d);		/* doctor_relay.c */
void doctor_limits(struct doctor *d);		/* doctor_limits.c */
void doctor_auth(struct doctor *d);		/* doctor_auth.c */
void doctor_srv(struct doctor *d);		/* doctor_srv.c */

#endif
