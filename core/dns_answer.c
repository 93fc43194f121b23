/* SPDX-License-Identifier: MIT */
/*
 * core/dns_answer.c - turns libunbound's answers into struct sc_dns_rr:
 * A/AAAA/TLSA rdata as it is, MX and PTR names expanded from the wire
 * format (compressed against the whole answer packet), MX sorted by
 * preference.
 * Pure code on what a DNS server sent, so the fuzz target
 * (tests/fuzz/fuzz_dns.c) runs it without a resolver.
 */
#include "core.h"
#include "dns_answer.h"

#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>


/* dns_name_read - expands the (maybe compressed) name at *off of pkt into
 * out ("mx.example.test", "." for the root); advances *off past it.
 * 0 or -1 on a malformed name. */
static int
dns_name_read(const unsigned char *pkt, size_t len, size_t *off, char *out,
	      size_t outlen)
{
	size_t pos = *off, o = 0;
	bool jumped = false;
	unsigned hops = 0;

	for (;;) {
		if (pos >= len)
			return -1;
		unsigned c = pkt[pos];
		if (c == 0) {
			if (!jumped)
				*off = pos + 1;
			break;
		}
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++hops > 64)
				return -1;
			if (!jumped)
				*off = pos + 2;
			jumped = true;
			pos = ((c & 0x3f) << 8) | pkt[pos + 1];
			continue;
		}
		if ((c & 0xc0) != 0 || pos + 1 + c > len)
			return -1;
		/* @UNSAFE: label, dot and NUL must fit */
		if (o + c + 2 > outlen)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (unsigned i = 0; i < c; i++) {
			unsigned char ch = pkt[pos + 1 + i];
			/* a dot or control byte inside a label would make
			 * the text ambiguous: refuse such names */
			if (ch == '.' || ch <= 0x20 || ch >= 0x7f)
				return -1;
			out[o++] = (char)ch;
		}
		pos += 1 + c;
	}
	if (o == 0) {
		if (outlen < 2)
			return -1;
		out[o++] = '.';
	}
	out[o] = '\0';
	return 0;
}

/* dns_parse_name_packet - fills rr[] with the records of type (MX or
 * PTR: the ones whose rdata holds a name) of the answer section of pkt,
 * names decompressed against the whole packet. Returns the count, or -1
 * when the packet is malformed. */
static int
dns_parse_name_packet(int rtype, const unsigned char *pkt, size_t len,
		      struct sc_dns_rr *rr, size_t max, uint32_t ttl)
{
	char tmp[256];
	size_t off = 12, n = 0;

	if (len < 12)
		return -1;
	unsigned qd = (pkt[4] << 8) | pkt[5];
	unsigned an = (pkt[6] << 8) | pkt[7];
	for (unsigned i = 0; i < qd; i++) {
		if (dns_name_read(pkt, len, &off, tmp, sizeof(tmp)) < 0 ||
		    off + 4 > len)
			return -1;
		off += 4;
	}
	for (unsigned i = 0; i < an; i++) {
		if (dns_name_read(pkt, len, &off, tmp, sizeof(tmp)) < 0 ||
		    off + 10 > len)
			return -1;
		unsigned type = (pkt[off] << 8) | pkt[off + 1];
		unsigned rdlen = (pkt[off + 8] << 8) | pkt[off + 9];
		off += 10;
		if (off + rdlen > len)
			return -1;
		if ((int)type == rtype && n < max) {
			/* MX: preference, then the name; PTR: the name */
			size_t skip = rtype == SC_DNS_MX ? 2 : 0;
			size_t noff = off + skip;
			if (rdlen < skip + 1 ||
			    dns_name_read(pkt, len, &noff, rr[n].name,
					  sizeof(rr[n].name)) < 0 ||
			    noff > off + rdlen)
				return -1;
			rr[n].type = (uint16_t)rtype;
			rr[n].ttl = ttl;
			if (rtype == SC_DNS_MX)
				rr[n].pref = (uint16_t)((pkt[off] << 8) |
							pkt[off + 1]);
			rr[n].data = pkt + off;
			rr[n].len = rdlen;
			n++;
		}
		off += rdlen;
	}
	return (int)n;
}

static int
dns_mx_cmp(const void *a, const void *b)
{
	const struct sc_dns_rr *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	/* equal preference: keep a stable, deterministic order */
	return strcmp(x->name, y->name);
}

int
sc_dns_fill_records(int type, struct ub_result *r, struct sc_dns_rr **rr_r,
		 size_t *n_r, const char **error_r)
{
	struct sc_dns_rr *rr;
	size_t count = 0, n = 0;

	while (r->data[count] != NULL)
		count++;
	rr = calloc(count == 0 ? 1 : count, sizeof(*rr));
	if (rr == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	uint32_t ttl = r->ttl < 0 ? 0 : (uint32_t)r->ttl;
	if ((type == SC_DNS_MX || type == SC_DNS_PTR) &&
	    r->answer_packet != NULL) {
		int got = dns_parse_name_packet(type, r->answer_packet,
						(size_t)r->answer_len, rr,
						count, ttl);
		if (got < 0) {
			free(rr);
			*error_r = type == SC_DNS_MX ? "malformed MX answer" :
				"malformed PTR answer";
			return -1;
		}
		n = (size_t)got;
	} else {
		for (size_t i = 0; i < count; i++) {
			const unsigned char *d =
				(const unsigned char *)r->data[i];
			size_t len = (size_t)r->len[i];
			struct sc_dns_rr *x = &rr[n];

			x->type = (uint16_t)type;
			x->ttl = ttl;
			x->data = d;
			x->len = len;
			if (type == SC_DNS_A && len == 4) {
				inet_ntop(AF_INET, d, x->addr,
					  sizeof(x->addr));
			} else if (type == SC_DNS_AAAA && len == 16) {
				inet_ntop(AF_INET6, d, x->addr,
					  sizeof(x->addr));
			} else if (type == SC_DNS_MX) {
				/* no packet: rdata names are uncompressed */
				size_t off = 2;
				if (len < 3 ||
				    dns_name_read(d, len, &off, x->name,
						  sizeof(x->name)) < 0)
					continue;
				x->pref = (uint16_t)((d[0] << 8) | d[1]);
			} else if (type == SC_DNS_PTR) {
				size_t off = 0;
				if (dns_name_read(d, len, &off, x->name,
						  sizeof(x->name)) < 0)
					continue;
			} else if (type == SC_DNS_A || type == SC_DNS_AAAA) {
				continue;	/* wrong length: skip it */
			}
			n++;
		}
	}
	if (type == SC_DNS_MX)
		qsort(rr, n, sizeof(*rr), dns_mx_cmp);
	*rr_r = rr;
	*n_r = n;
	return 0;
}
