/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_web.c - what the web module reads from clients itself
 * (modules/web/web_parse.c; HTTP is libmicrohttpd's): the emailaddress
 * query value and the EMailAddress of an Outlook autodiscover body, and
 * the XML/JSON escaping every answer puts them through.
 *
 * Input: an autodiscover request body, also taken whole as a query value.
 * Checks: reads stay inside the input (it is not NUL-terminated); an
 * accepted address has one '@', a non-empty local part of at most 64
 * bytes and a lower-case domain of letters, digits, '-', '.' and UTF-8
 * bytes, no blank, control, quote, bracket or backslash, at most 254
 * bytes, and cleans to itself again; escaped for XML it holds no markup
 * and unescapes to itself; as JSON, no raw control character or quote.
 */
#include "fuzz.h"
#define WEB_PARSE_ONLY
#include "web_int.h"

#include <string.h>

static void
check_address(const char *a)
{
	size_t len = strlen(a);
	const char *at = strchr(a, '@');
	char again[300];

	FUZZ_CHECK(len > 0 && len <= 254, "length %zu", len);
	FUZZ_CHECK(at != NULL && strchr(at + 1, '@') == NULL, "one @: %s", a);
	FUZZ_CHECK(at > a && at - a <= 64, "local part: %s", a);
	for (const unsigned char *p = (const unsigned char *)a; *p; p++)
		FUZZ_CHECK(*p > 0x20 && *p != 0x7f && !strchr("\"<>\\()[],;",
							      *p),
			   "byte 0x%02x in %s", *p, a);
	for (const char *p = at + 1; *p; p++)
		FUZZ_CHECK(!(*p >= 'A' && *p <= 'Z'), "upper case domain %s",
			   a);
	FUZZ_CHECK(web_address_clean(a, len, again, sizeof(again)) == 0 &&
		   strcmp(again, a) == 0, "not stable: %s", a);
}

/* unxml - the XML escaping undone */
static void
check_xml(const char *a)
{
	struct web_buf b = { 0 };
	struct web_buf u = { 0 };

	web_buf_xml(&b, a);
	FUZZ_CHECK(!b.failed, "out of memory");
	if (b.s == NULL)
		return;
	FUZZ_CHECK(strpbrk(b.s, "<>\"'") == NULL, "markup left: %s", b.s);
	for (const char *p = b.s; *p; ) {
		static const struct { const char *e; char c; } ents[] = {
			{ "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' },
			{ "&quot;", '"' }, { "&#39;", '\'' },
		};
		size_t i;

		for (i = 0; i < 5; i++)
			if (strncmp(p, ents[i].e, strlen(ents[i].e)) == 0)
				break;
		if (i < 5) {
			web_buf_add(&u, &ents[i].c, 1);
			p += strlen(ents[i].e);
		} else {
			FUZZ_CHECK(*p != '&', "a bare & in %s", b.s);
			web_buf_add(&u, p, 1);
			p++;
		}
	}
	FUZZ_CHECK(u.s != NULL && strcmp(u.s, a) == 0, "XML round trip");
	web_buf_free(&b);
	web_buf_free(&u);
}

static void
check_json(const char *a)
{
	struct web_buf b = { 0 };

	web_buf_json(&b, a);
	FUZZ_CHECK(!b.failed && b.len >= 2 && b.s[0] == '"' &&
		   b.s[b.len - 1] == '"', "not a JSON string");
	for (size_t i = 1; i + 1 < b.len; i++) {
		FUZZ_CHECK((unsigned char)b.s[i] >= 0x20, "raw control");
		if (b.s[i] == '\\')
			i++;	/* the escaped character */
		else
			FUZZ_CHECK(b.s[i] != '"', "raw quote in %s", b.s);
	}
	web_buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[300];
	char *copy;

	if (size > 64 * 1024)
		return 0;
	/* exactly size bytes, no terminator: an over-read is caught */
	copy = malloc(size ? size : 1);
	if (copy == NULL)
		abort();
	if (size)
		memcpy(copy, data, size);
	if (web_autodiscover_address(copy, size, out, sizeof(out)) == 0) {
		check_address(out);
		check_xml(out);
		check_json(out);
	}
	if (web_address_clean(copy, size, out, sizeof(out)) == 0)
		check_address(out);
	/* the escaping, on anything (as a C string: a prefix) */
	char *s = fuzz_strndup(data, size, 4096);
	check_xml(s);
	check_json(s);
	free(s);
	free(copy);
	return 0;
}
