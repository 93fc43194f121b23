/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_milter.c - the milter module's wire format
 * (modules/milter/milter_proto.c): what a milter sends is split into
 * packets (milter_frame) and each one parsed (milter_reply_parse), as the
 * module does with every byte from the socket.
 *
 * Input: the byte stream from a milter. Checks: a frame lies inside the
 * input and is never longer than MILTER_PACKET_MAX; every string the
 * parser returns lies inside its packet and ends there; reply codes are
 * 4xx/5xx with an enhanced code of the same class; header names are
 * printable without ':'; a header value never starts a new field or ends
 * the header block; addresses carry no brackets, blanks or controls; a
 * header edit built again with milter_pkt_* parses to the same values.
 */
#include "fuzz.h"
#include "milter_proto.h"

#include <string.h>

static void
check_in(const unsigned char *pkt, size_t len, const char *s,
	 const char *what)
{
	if (s == NULL)
		return;
	FUZZ_CHECK((const unsigned char *)s >= pkt &&
		   (const unsigned char *)s < pkt + len,
		   "%s outside its packet", what);
	FUZZ_CHECK(memchr(s, '\0', (size_t)(pkt + len -
					  (const unsigned char *)s)) != NULL,
		   "%s does not end inside its packet", what);
}

static void
check_value(const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\r')
			FUZZ_CHECK(v[1] == '\n', "bare CR in a header value");
		if (*v == '\n')
			FUZZ_CHECK(v[1] == ' ' || v[1] == '\t',
				   "a line break that starts a new field");
	}
}

/* rebuild - a header edit packed again parses to the same values */
static void
rebuild(const struct milter_reply *r)
{
	struct milter_buf b;
	struct milter_reply r2;
	const char *error = NULL;
	size_t total;

	memset(&b, 0, sizeof(b));
	milter_pkt_begin(&b, r->cmd);
	if (r->cmd != SMFIR_ADDHEADER)
		milter_pkt_u32(&b, r->index);
	milter_pkt_str(&b, r->name);
	milter_pkt_str(&b, r->value);
	milter_pkt_end(&b);
	FUZZ_CHECK(!b.oom, "out of memory");
	FUZZ_CHECK(milter_frame(b.p, b.len, &total) == 1 && total == b.len,
		   "own packet not framed");
	FUZZ_CHECK(milter_reply_parse(b.p + 4, b.len - 4, &r2, &error) == 0,
		   "own packet refused: %s", error);
	FUZZ_CHECK(r2.cmd == r->cmd && r2.index == r->index &&
		   strcmp(r2.name, r->name) == 0 &&
		   strcmp(r2.value, r->value) == 0, "round trip changed it");
	milter_buf_free(&b);
}

static void
check_reply(unsigned char *pkt, size_t len)
{
	struct milter_reply r;
	const char *error = NULL;

	if (milter_reply_parse(pkt, len, &r, &error) != 0) {
		FUZZ_CHECK(error != NULL && *error != '\0', "no error text");
		return;
	}
	FUZZ_CHECK(r.cmd == (char)pkt[0], "code changed");
	check_in(pkt, len, r.name, "name");
	check_in(pkt, len, r.value, "value");
	check_in(pkt, len, r.addr, "address");
	check_in(pkt, len, r.args, "args");
	check_in(pkt, len, r.text, "text");
	for (int i = 0; i < MS_COUNT; i++)
		check_in(pkt, len, r.macros[i], "macro list");
	if (r.data != NULL)
		FUZZ_CHECK(r.data >= pkt && r.data + r.len == pkt + len,
			   "body chunk outside its packet");
	switch (r.cmd) {
	case SMFIR_REPLYCODE:
		FUZZ_CHECK(r.code >= 400 && r.code <= 599, "code %d", r.code);
		FUZZ_CHECK(r.esc[0] == '\0' || r.esc[0] == '0' + r.code / 100,
			   "enhanced code %s of another class", r.esc);
		for (const char *t = r.text; *t; t++)
			FUZZ_CHECK((unsigned char)*t >= 32 && *t != 127,
				   "control byte in the reply text");
		break;
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		FUZZ_CHECK(r.name[0] != '\0', "empty field name");
		for (const char *n = r.name; *n; n++)
			FUZZ_CHECK((unsigned char)*n > 32 &&
				   (unsigned char)*n < 127 && *n != ':',
				   "bad byte in a field name");
		check_value(r.value);
		rebuild(&r);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_CHGFROM:
		FUZZ_CHECK(r.cmd == SMFIR_CHGFROM || r.addr[0] != '\0',
			   "empty recipient");
		for (const char *a = r.addr; *a; a++)
			FUZZ_CHECK((unsigned char)*a > 32 && *a != 127 &&
				   *a != '<' && *a != '>',
				   "bad byte in an address");
		break;
	case SMFIR_SETSYMLIST:
		FUZZ_CHECK(r.stage < MS_COUNT, "stage %u", r.stage);
		/* the names as the module looks them up */
		(void)milter_macro_wanted(r.macros[r.stage], "{auth_type}");
		(void)milter_macro_wanted(r.macros[r.stage], "i");
		break;
	default:
		break;
	}
	(void)milter_reply_name(r.cmd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *buf = malloc(size ? size : 1);
	size_t off = 0;

	if (buf == NULL)
		abort();
	memcpy(buf, data, size);
	while (off < size) {
		size_t total = 0;
		int r = milter_frame(buf + off, size - off, &total);

		if (r <= 0)
			break;
		FUZZ_CHECK(total >= 5 && total <= size - off &&
			   total <= MILTER_PACKET_MAX + 4, "frame of %zu",
			   total);
		check_reply(buf + off + 4, total - 4);
		off += total;
	}
	free(buf);
	return 0;
}
