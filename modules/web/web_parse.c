/* SPDX-License-Identifier: MIT */
/*
 * modules/web/web_parse.c - what the web module reads from clients itself
 * (HTTP is libmicrohttpd's): the mail address of an autoconfig query or an
 * Outlook autodiscover body; and the text buffer the pages are written
 * into, with XML and JSON escaping. Pure: no core calls, so
 * tests/fuzz/fuzz_web runs it alone. Any thread.
 */
#define WEB_PARSE_ONLY
#include "web_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the buffer ---- */

void
web_buf_add(struct web_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->s, cap);
		if (p == NULL) {
			b->failed = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
web_buf_puts(struct web_buf *b, const char *s)
{
	web_buf_add(b, s, strlen(s));
}

void
web_buf_printf(struct web_buf *b, const char *fmt, ...)
{
	char small[256], *big = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		web_buf_add(b, small, (size_t)n);
		return;
	}
	big = malloc((size_t)n + 1);
	if (big == NULL) {
		b->failed = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (n < 0) {
		free(big);
		b->failed = true;
		return;
	}
	web_buf_add(b, big, (size_t)n);
	free(big);
}

void
web_buf_xml(struct web_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': web_buf_puts(b, "&amp;"); break;
		case '<': web_buf_puts(b, "&lt;"); break;
		case '>': web_buf_puts(b, "&gt;"); break;
		case '"': web_buf_puts(b, "&quot;"); break;
		case '\'': web_buf_puts(b, "&#39;"); break;
		default: web_buf_add(b, s, 1); break;
		}
	}
}

void
web_buf_json(struct web_buf *b, const char *s)
{
	web_buf_add(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			web_buf_printf(b, "\\%c", *p);
		else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&')
			/* < > & escaped too: the JSON is safe to embed */
			web_buf_printf(b, "\\u%04x", *p);
		else
			web_buf_add(b, (const char *)p, 1);
	}
	web_buf_add(b, "\"", 1);
}

void
web_buf_free(struct web_buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* ---- addresses ---- */

int
web_address_clean(const char *in, size_t len, char *out, size_t outlen)
{
	size_t at = len, i;

	/* surrounding blanks, as a form field may carry */
	while (len > 0 && (in[0] == ' ' || in[0] == '\t' || in[0] == '\r' ||
			   in[0] == '\n')) {
		in++;
		len--;
	}
	while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\t' ||
			   in[len - 1] == '\r' || in[len - 1] == '\n'))
		len--;
	if (len == 0 || len > 254 || len + 1 > outlen)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= 0x20 || c == 0x7f || c == '"' || c == '<' ||
		    c == '>' || c == '\\' || c == '(' || c == ')' ||
		    c == ',' || c == ';' || c == '[' || c == ']')
			return -1;
		if (c == '@') {
			if (at != len)
				return -1;	/* one @ only */
			at = i;
		}
	}
	if (at == len || at == 0 || at > 64 || at + 1 >= len ||
	    in[at + 1] == '.' || in[len - 1] == '.')
		return -1;
	for (i = at + 1; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c >= 0x80))
			return -1;
		if (c == '.' && in[i - 1] == '.')
			return -1;
	}
	memcpy(out, in, len);
	out[len] = '\0';
	for (i = at + 1; i < len; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
	return 0;
}

/* find_ci - the first case-insensitive occurrence of needle in hay[0..len) */
static const char *
find_ci(const char *hay, size_t len, const char *needle)
{
	size_t n = strlen(needle);

	for (size_t i = 0; n <= len && i <= len - n; i++)
		if (strncasecmp(hay + i, needle, n) == 0)
			return hay + i;
	return NULL;
}

int
web_autodiscover_address(const char *body, size_t len, char *out,
			 size_t outlen)
{
	static const char open[] = "<EMailAddress>";
	static const char close[] = "</EMailAddress>";
	const char *s, *e;

	/* Outlook sends a small POX document; the address is the text of
	 * its one EMailAddress element. Nothing else in it matters, so no
	 * XML parser: the element text is checked as an address, which
	 * leaves no room for markup or entities. */
	s = find_ci(body, len, open);
	if (s == NULL)
		return -1;
	s += sizeof(open) - 1;
	e = find_ci(s, len - (size_t)(s - body), close);
	if (e == NULL)
		return -1;
	return web_address_clean(s, (size_t)(e - s), out, outlen);
}
