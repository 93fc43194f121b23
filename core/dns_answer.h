/* SPDX-License-Identifier: MIT */
/*
 * core/dns_answer.h - DNS answer parsing (dns_answer.c), shared by dns.c
 * and the fuzz target. Internal to the core.
 */
#ifndef SC_DNS_ANSWER_H
#define SC_DNS_ANSWER_H

#include <unbound.h>
#include <satchel/dns.h>

/* Turns the data of an unbound result of the given type into a malloc'd
 * rr[] (*n_r records; MX sorted by preference; rr[i].data points into r).
 * 0, or -1 with *error_r when the answer cannot be parsed. */
SC_INTERNAL int sc_dns_fill_records(int type, struct ub_result *r,
				    struct sc_dns_rr **rr_r, size_t *n_r,
				    const char **error_r);

#endif
