/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_journal.c - core/queue_journal.c's segment parser, as
 * a restart reads the queue journal after a crash or disk trouble.
 *
 * The input is parsed twice: as a segment image itself (checks: the
 * parse never reads past the image, every record it reports lies inside
 * it, ids are hex, a DONE has no payload), and as a recipe for a segment
 * with a valid header and records whose checksums are right unless the
 * recipe breaks one (a flipped byte, a wrong nonce, a bad type or id):
 * the parser must report exactly the records before the first broken
 * one, and end where that one starts.
 *
 * Recipe: byte 0 bit 0 = build; 16 bytes gen and nonce; then records:
 * a control byte (bits 0-1 type: 1 ACCEPT, 2 DONE, else invalid; 0x20
 * raw id bytes; 0x40 wrong nonce; 0x80 flip a byte), 16 id bytes, a
 * 2-byte payload length, the payload.
 */
#include "queue_journal.h"
#include "fuzz.h"

#include <string.h>

struct seen {
	const unsigned char *buf;
	size_t len, n;
};

static int
rec(void *arg, int type, const char *id, const unsigned char *r,
    const unsigned char *payload, uint32_t len)
{
	struct seen *s = arg;

	FUZZ_CHECK(type == SC_JOURNAL_ACCEPT || type == SC_JOURNAL_DONE,
		   "type %d", type);
	FUZZ_CHECK(r >= s->buf + SC_JOURNAL_HDR_SIZE &&
		   payload == r + SC_JOURNAL_REC_HDR &&
		   (const char *)r + 16 == id, "record out of place");
	FUZZ_CHECK((size_t)(payload - s->buf) + len <= s->len,
		   "payload past the end");
	FUZZ_CHECK(type == SC_JOURNAL_ACCEPT || len == 0, "DONE with data");
	for (int i = 0; i < 16; i++)
		FUZZ_CHECK((id[i] >= '0' && id[i] <= '9') ||
			   (id[i] >= 'a' && id[i] <= 'f'), "id not hex");
	s->n++;
	return 0;
}

static void
put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = { data, size, 0 };
	unsigned char *buf;
	uint64_t gen, nonce, g2;
	size_t in, out, good = 0, good_end;
	bool broken = false;
	long end;

	end = sc_journal_parse(data, size, rec, &s, &gen);
	FUZZ_CHECK(end < 0 || ((size_t)end >= SC_JOURNAL_HDR_SIZE &&
			       (size_t)end <= size), "end %ld of %zu", end,
		   size);
	if (size < 17 || !(data[0] & 1))
		return 0;
	memcpy(&gen, data + 1, 8);
	memcpy(&nonce, data + 9, 8);
	/* every record grows by at most its header over its recipe */
	buf = calloc(1, SC_JOURNAL_HDR_SIZE + size * 3 + 64);
	if (buf == NULL)
		abort();
	sc_journal_header(buf, gen, nonce);
	out = good_end = SC_JOURNAL_HDR_SIZE;
	in = 17;
	while (size - in >= 19) {
		unsigned ctl = data[in];
		uint32_t type = ctl & 3, len = data[in + 17] |
			(uint32_t)data[in + 18] << 8, crc;
		uint64_t n = ctl & 0x40 ? nonce ^ 1 : nonce;
		unsigned char *r = buf + out;
		bool ok = type == SC_JOURNAL_ACCEPT || type == SC_JOURNAL_DONE;

		if (len > size - in - 19)
			len = (uint32_t)(size - in - 19);
		put32(r, 0x4c4e524au);
		put32(r + 4, type);
		memcpy(r + 8, &n, 8);
		for (int i = 0; i < 16; i++)
			r[16 + i] = ctl & 0x20 ? data[in + 1 + i] :
				(unsigned char)"0123456789abcdef"[data[in + 1 + i] & 15];
		put32(r + 32, len);
		memcpy(r + 40, data + in + 19, len);
		crc = sc_journal_crc32c(sc_journal_crc32c(0, r, 36), r + 40, len);
		put32(r + 36, crc);
		if (ctl & 0x80)
			r[(data[in + 1] + len) % (40 + len)] ^= 0xff;
		if (ctl & 0x20) {
			for (int i = 0; i < 16; i++)
				ok = ok && ((r[16 + i] >= '0' && r[16 + i] <= '9') ||
					    (r[16 + i] >= 'a' && r[16 + i] <= 'f'));
		}
		ok = ok && !(ctl & 0xc0) && (type != SC_JOURNAL_DONE || len == 0);
		out += 40 + len;
		in += 19 + len;
		if (!broken && ok) {
			good++;
			good_end = out;
		}
		broken = broken || !ok;
	}
	s = (struct seen){ buf, out, 0 };
	end = sc_journal_parse(buf, out, rec, &s, &g2);
	FUZZ_CHECK(end >= 0 && g2 == gen, "a valid header refused");
	FUZZ_CHECK(s.n == good && (size_t)end == good_end,
		   "%zu records ending at %ld, wanted %zu ending at %zu", s.n,
		   end, good, good_end);
	free(buf);
	return 0;
}
