/* SPDX-License-Identifier: MIT */
/*
 * milter_proto.c - the milter wire format: building packets (4-byte
 * length, command byte, payload) and parsing what a milter answers. Pure
 * code, no core calls, so tests/fuzz/fuzz_milter runs it alone. Runs on
 * the event loop thread.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"

/* ---- building packets ---- */

void
milter_buf_free(struct milter_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
milter_buf_consume(struct milter_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

/* buf_reserve - room for n more bytes; latches oom */
static bool
buf_reserve(struct milter_buf *b, size_t n)
{
	size_t cap;
	unsigned char *p;

	if (b->oom)
		return false;
	if (b->len + n <= b->cap)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap < b->len + n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void
milter_pkt_bytes(struct milter_buf *b, const void *p, size_t n)
{
	if (n == 0 || !buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void
milter_pkt_begin(struct milter_buf *b, char cmd)
{
	static const unsigned char zero[4];

	b->start = b->len;
	milter_pkt_bytes(b, zero, sizeof(zero));
	milter_pkt_bytes(b, &cmd, 1);
}

void
milter_pkt_str(struct milter_buf *b, const char *s)
{
	milter_pkt_bytes(b, s, strlen(s) + 1);
}

void
milter_pkt_u32(struct milter_buf *b, uint32_t v)
{
	v = htonl(v);
	milter_pkt_bytes(b, &v, sizeof(v));
}

void
milter_pkt_u16(struct milter_buf *b, uint16_t v)
{
	v = htons(v);
	milter_pkt_bytes(b, &v, sizeof(v));
}

void
milter_pkt_end(struct milter_buf *b)
{
	uint32_t n;

	if (b->oom || b->len < b->start + 5)
		return;
	n = htonl((uint32_t)(b->len - b->start - 4));
	memcpy(b->p + b->start, &n, sizeof(n));
}

/* ---- reading packets ---- */

int
milter_frame(const unsigned char *buf, size_t len, size_t *total_r)
{
	uint32_t n;

	if (len < 4)
		return 0;
	memcpy(&n, buf, sizeof(n));
	n = ntohl(n);
	if (n == 0 || n > MILTER_PACKET_MAX)
		return -1;
	if (len - 4 < n)
		return 0;
	*total_r = (size_t)n + 4;
	return 1;
}

/* A cursor over a payload. */
struct cur {
	unsigned char *p, *end;
};

/* take_str - a NUL-terminated string inside the payload, or NULL */
static char *
take_str(struct cur *c)
{
	unsigned char *nul;
	char *s;

	if (c->p >= c->end)
		return NULL;
	nul = memchr(c->p, '\0', (size_t)(c->end - c->p));
	if (nul == NULL)
		return NULL;
	s = (char *)c->p;
	c->p = nul + 1;
	return s;
}

static bool
take_u32(struct cur *c, uint32_t *v)
{
	if (c->end - c->p < 4)
		return false;
	memcpy(v, c->p, 4);
	*v = ntohl(*v);
	c->p += 4;
	return true;
}

/* header_name_ok - RFC 5322 field name: printable, no colon or space */
static bool
header_name_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= 32 || ch >= 127 || ch == ':')
			return false;
	}
	return true;
}

/* header_value_ok - no NUL (implied), no bare CR, and every line break
 * followed by white space (a folded line), so an edit can never start a
 * new header field or end the header block */
static bool
header_value_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\r' && s[1] != '\n')
			return false;
		if (*s == '\n' && s[1] != ' ' && s[1] != '\t')
			return false;
	}
	return true;
}

/* strip_brackets - "<a@b>" or " a@b " to "a@b", in place; "<>" to "" */
static char *
strip_brackets(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	if (n >= 2 && s[0] == '<' && s[n - 1] == '>') {
		s[n - 1] = '\0';
		s++;
	}
	return s;
}

/* addr_ok - an envelope address we may pass on: no controls, spaces or
 * brackets left (a milter cannot smuggle ESMTP parameters in) */
static bool
addr_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch <= 32 || ch == 127 || ch == '<' || ch == '>')
			return false;
	}
	return true;
}

/* parse_replycode - "550 5.7.1 text" (the first line of a multi-line
 * reply counts); the text loses control characters */
static int
parse_replycode(char *s, struct milter_reply *r, const char **error_r)
{
	char *p, *q;
	size_t n;

	if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    !isdigit((unsigned char)s[2]) ||
	    (s[3] != ' ' && s[3] != '-' && s[3] != '\0')) {
		*error_r = "reply code: not NNN text";
		return -1;
	}
	r->code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (r->code < 400 || r->code > 599) {
		*error_r = "reply code: not 4xx or 5xx";
		return -1;
	}
	p = s[3] == '\0' ? s + 3 : s + 4;
	/* an enhanced status code of the same class, if any */
	r->esc[0] = '\0';
	if (p[0] == s[0] && p[1] == '.') {
		q = p + 2;
		n = 0;
		while (isdigit((unsigned char)q[n]) && n < 3)
			n++;
		if (n > 0 && q[n] == '.') {
			size_t m = 0;

			q += n + 1;
			while (isdigit((unsigned char)q[m]) && m < 3)
				m++;
			if (m > 0 && (q[m] == ' ' || q[m] == '\0' ||
				      q[m] == '\r' || q[m] == '\n')) {
				size_t len = (size_t)(q + m - p);

				memcpy(r->esc, p, len);
				r->esc[len] = '\0';
				p = q + m;
				if (*p == ' ')
					p++;
			}
		}
	}
	/* the first line only */
	q = p + strcspn(p, "\r\n");
	*q = '\0';
	for (q = p; *q != '\0'; q++)
		if ((unsigned char)*q < 32 || (unsigned char)*q == 127)
			*q = ' ';
	r->text = p;
	return 0;
}

/* parse_optneg - version, actions, protocol steps, then optional macro
 * lists: (stage, "names") pairs */
static int
parse_optneg(struct cur *c, struct milter_reply *r, const char **error_r)
{
	if (!take_u32(c, &r->version) || !take_u32(c, &r->actions) ||
	    !take_u32(c, &r->protocol)) {
		*error_r = "option negotiation: short packet";
		return -1;
	}
	if (r->version < 2) {
		*error_r = "option negotiation: protocol version below 2";
		return -1;
	}
	while (c->p < c->end) {
		uint32_t stage;
		char *list;

		if (!take_u32(c, &stage) || (list = take_str(c)) == NULL) {
			*error_r = "option negotiation: bad macro list";
			return -1;
		}
		if (stage < MS_COUNT)
			r->macros[stage] = list;
	}
	return 0;
}

int
milter_reply_parse(unsigned char *pkt, size_t len, struct milter_reply *r,
		   const char **error_r)
{
	struct cur c;
	char *s;

	memset(r, 0, sizeof(*r));
	if (len < 1) {
		*error_r = "empty packet";
		return -1;
	}
	r->cmd = (char)pkt[0];
	c.p = pkt + 1;
	c.end = pkt + len;
	switch (r->cmd) {
	case SMFIR_ACCEPT:
	case SMFIR_CONTINUE:
	case SMFIR_DISCARD:
	case SMFIR_REJECT:
	case SMFIR_TEMPFAIL:
	case SMFIR_PROGRESS:
	case SMFIR_SKIP:
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		/* no payload; trailing bytes are tolerated, as libmilter
		 * sends none and Postfix ignores them */
		return 0;
	case SMFIR_OPTNEG:
		return parse_optneg(&c, r, error_r);
	case SMFIR_REPLYCODE:
		if ((s = take_str(&c)) == NULL) {
			*error_r = "reply code: unterminated";
			return -1;
		}
		return parse_replycode(s, r, error_r);
	case SMFIR_INSHEADER:
	case SMFIR_CHGHEADER:
		if (!take_u32(&c, &r->index)) {
			*error_r = "header edit: no index";
			return -1;
		}
		/* FALLTHROUGH */
	case SMFIR_ADDHEADER:
		r->name = take_str(&c);
		r->value = take_str(&c);
		if (r->name == NULL || r->value == NULL) {
			*error_r = "header edit: unterminated name or value";
			return -1;
		}
		if (!header_name_ok(r->name)) {
			*error_r = "header edit: bad field name";
			return -1;
		}
		if (!header_value_ok(r->value)) {
			*error_r = "header edit: bad line break in value";
			return -1;
		}
		return 0;
	case SMFIR_ADDRCPT:
	case SMFIR_DELRCPT:
	case SMFIR_ADDRCPT_PAR:
	case SMFIR_CHGFROM:
		if ((s = take_str(&c)) == NULL) {
			*error_r = "envelope edit: unterminated address";
			return -1;
		}
		r->addr = strip_brackets(s);
		if (!addr_ok(r->addr) ||
		    (r->addr[0] == '\0' && r->cmd != SMFIR_CHGFROM)) {
			*error_r = "envelope edit: bad address";
			return -1;
		}
		if (r->cmd != SMFIR_ADDRCPT && r->cmd != SMFIR_DELRCPT)
			r->args = take_str(&c);	/* optional */
		return 0;
	case SMFIR_QUARANTINE:
		if ((s = take_str(&c)) == NULL) {
			*error_r = "quarantine: unterminated reason";
			return -1;
		}
		for (char *q = s; *q != '\0'; q++)
			if ((unsigned char)*q < 32 || (unsigned char)*q == 127)
				*q = ' ';
		r->text = s;
		return 0;
	case SMFIR_REPLBODY:
		r->data = c.p;
		r->len = (size_t)(c.end - c.p);
		return 0;
	case SMFIR_SETSYMLIST:
		if (!take_u32(&c, &r->stage) || (s = take_str(&c)) == NULL ||
		    r->stage >= MS_COUNT) {
			*error_r = "macro list: bad stage or list";
			return -1;
		}
		r->macros[r->stage] = s;
		return 0;
	default:
		*error_r = "unknown reply code";
		return -1;
	}
}

bool
milter_macro_wanted(const char *list, const char *name)
{
	size_t nlen = strlen(name);
	const char *bare = name;
	size_t blen = nlen;

	if (nlen > 2 && name[0] == '{') {
		bare = name + 1;
		blen = nlen - 2;
	}
	while (*list != '\0') {
		size_t n;

		list += strspn(list, " \t,");
		n = strcspn(list, " \t,");
		if (n == 0)
			break;
		if ((n == nlen && memcmp(list, name, n) == 0) ||
		    (n == blen && memcmp(list, bare, n) == 0))
			return true;
		list += n;
	}
	return false;
}

const char *
milter_reply_name(char cmd)
{
	switch (cmd) {
	case SMFIR_ADDRCPT: return "addrcpt";
	case SMFIR_DELRCPT: return "delrcpt";
	case SMFIR_ADDRCPT_PAR: return "addrcpt_par";
	case SMFIR_SHUTDOWN: return "shutdown";
	case SMFIR_ACCEPT: return "accept";
	case SMFIR_REPLBODY: return "replbody";
	case SMFIR_CONTINUE: return "continue";
	case SMFIR_DISCARD: return "discard";
	case SMFIR_CHGFROM: return "chgfrom";
	case SMFIR_CONN_FAIL: return "conn_fail";
	case SMFIR_ADDHEADER: return "addheader";
	case SMFIR_INSHEADER: return "insheader";
	case SMFIR_SETSYMLIST: return "setsymlist";
	case SMFIR_CHGHEADER: return "chgheader";
	case SMFIR_PROGRESS: return "progress";
	case SMFIR_QUARANTINE: return "quarantine";
	case SMFIR_REJECT: return "reject";
	case SMFIR_SKIP: return "skip";
	case SMFIR_TEMPFAIL: return "tempfail";
	case SMFIR_REPLYCODE: return "replycode";
	case SMFIR_OPTNEG: return "optneg";
	default: return "unknown";
	}
}
