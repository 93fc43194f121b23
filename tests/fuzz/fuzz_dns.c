/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_dns.c - DNS answer parsing (core/dns_answer.c): what a
 * DNS server (or anyone spoofing one) sends for the relay's MX, A, AAAA
 * and TLSA lookups, as libunbound hands it over: the rdata of each record
 * and, for MX, the whole answer packet whose compressed names are
 * expanded. Records that parse must be sane: MX names printable and
 * NUL-terminated, sorted by preference, addresses that parse back.
 *
 * Input: type selector, TTL byte, record count byte, then either the
 * answer packet (MX with packet) or length-prefixed rdata records.
 */
#include "core.h"
#include "dns_answer.h"
#include "fuzz.h"

#include <arpa/inet.h>
#include <string.h>

#define MAX_RECORDS 64

static void
check_records(int type, const struct sc_dns_rr *rr, size_t n)
{
	unsigned char buf[16];

	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(rr[i].type == type, "record type %u for a type %d "
			   "query", rr[i].type, type);
		if (type == SC_DNS_MX) {
			size_t l = strnlen(rr[i].name, sizeof(rr[i].name));

			FUZZ_CHECK(l > 0 && l < sizeof(rr[i].name),
				   "MX name empty or unterminated");
			for (size_t k = 0; k < l; k++)
				FUZZ_CHECK((unsigned char)rr[i].name[k] > 0x20
					   && (unsigned char)rr[i].name[k] <
					   0x7f, "control byte in MX name");
			FUZZ_CHECK(i == 0 || rr[i - 1].pref <= rr[i].pref,
				   "MX not sorted by preference");
		}
		if (type == SC_DNS_A)
			FUZZ_CHECK(inet_pton(AF_INET, rr[i].addr, buf) == 1,
				   "A record %s does not parse", rr[i].addr);
		if (type == SC_DNS_AAAA)
			FUZZ_CHECK(inet_pton(AF_INET6, rr[i].addr, buf) == 1,
				   "AAAA record %s does not parse",
				   rr[i].addr);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int types[] = { SC_DNS_MX, SC_DNS_MX, SC_DNS_A,
				     SC_DNS_AAAA, SC_DNS_TLSA };
	char *rdata[MAX_RECORDS + 1];
	int lens[MAX_RECORDS + 1];
	struct ub_result r;
	struct sc_dns_rr *rr = NULL;
	const char *err = NULL;
	size_t n = 0, count, off = 3;
	int sel, type;

	if (size < 3)
		return 0;
	sel = data[0] % 5;
	type = types[sel];
	count = data[2] % (MAX_RECORDS + 1);
	memset(&r, 0, sizeof(r));
	r.qtype = type;
	r.ttl = (int)(data[1]) - 16;	/* negative TTLs too */
	r.havedata = 1;
	r.data = rdata;
	r.len = lens;
	if (sel == 0) {
		/* MX from the answer packet: the rdata entries only say how
		 * many records libunbound counted */
		for (size_t i = 0; i < count; i++) {
			rdata[i] = (char *)"";
			lens[i] = 0;
		}
		r.answer_packet = (void *)(data + off);
		r.answer_len = (int)(size - off);
	} else {
		size_t i;

		for (i = 0; i < count && off < size; i++) {
			size_t l = data[off++];

			if (l > size - off)
				l = size - off;
			rdata[i] = (char *)(data + off);
			lens[i] = (int)l;
			off += l;
		}
		count = i;
	}
	rdata[count] = NULL;
	if (sc_dns_fill_records(type, &r, &rr, &n, &err) == 0) {
		FUZZ_CHECK(rr != NULL && n <= count, "%zu records from %zu",
			   n, count);
		check_records(type, rr, n);
		free(rr);
	} else {
		FUZZ_CHECK(err != NULL, "failure without a reason");
	}
	return 0;
}
