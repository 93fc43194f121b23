/* SPDX-License-Identifier: MIT */
/*
 * core/address.c - RFC 5321 path syntax (with RFC 6531 UTF-8), the relay
 * trick test and formatting. Pure functions, safe on any thread; used by
 * the smtp listener on the event loop for every MAIL and RCPT.
 */
#include "core.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* utf8_seq - length of the valid UTF-8 sequence at s (a non-ASCII lead
 * byte), 0 when it is malformed, overlong, a surrogate or past U+10FFFF */
static size_t
utf8_seq(const unsigned char *s)
{
	unsigned c = s[0];
	unsigned cp;
	size_t len, i;

	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* RFC 5322 atext, the characters of a dot-atom besides letters/digits */
static bool
is_atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c)
			      != NULL);
}

/* parse_local - the local part at *pp (dot-atom or quoted string) into
 * a->local, unquoted; leaves *pp at the '@' */
static int
parse_local(const char **pp, struct sc_address *a, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)*pp;
	const unsigned char *start = p;
	size_t out = 0, n;

	if (*p == '"') {
		a->quoted = true;
		p++;
		for (;;) {
			if (*p == '\0') {
				*error_r = "unterminated quoted local part";
				return -1;
			}
			if (*p == '"')
				break;
			if (*p == '\\') {
				p++;
				if (*p < 32 || *p > 126) {
					*error_r = "bad escape in quoted "
						   "local part";
					return -1;
				}
				n = 1;
			} else if (*p >= 0x80) {
				n = utf8_seq(p);
				if (n == 0) {
					*error_r = "invalid UTF-8 in local "
						   "part";
					return -1;
				}
			} else if (*p < 32 || *p == 127) {
				*error_r = "control character in local part";
				return -1;
			} else {
				n = 1;
			}
			if (out + n > 64) {
				*error_r = "local part longer than 64 octets";
				return -1;
			}
			memcpy(a->local + out, p, n);
			out += n;
			p += n;
		}
		p++;
	} else {
		while (*p != '@' && *p != '\0') {
			if (*p == '.') {
				if (p == start || p[1] == '.' || p[1] == '@' ||
				    p[1] == '\0') {
					*error_r = "misplaced '.' in local "
						   "part";
					return -1;
				}
				n = 1;
			} else if (*p >= 0x80) {
				n = utf8_seq(p);
				if (n == 0) {
					*error_r = "invalid UTF-8 in local "
						   "part";
					return -1;
				}
			} else if (is_atext(*p)) {
				n = 1;
			} else {
				*error_r = *p == '"' ? "misplaced '\"' in "
					   "local part" : "invalid character "
					   "in local part";
				return -1;
			}
			if (out + n > 64) {
				*error_r = "local part longer than 64 octets";
				return -1;
			}
			memcpy(a->local + out, p, n);
			out += n;
			p += n;
		}
		if (p == start) {
			*error_r = "empty local part";
			return -1;
		}
	}
	/* RFC 5321 4.5.3.1.1 counts the local part as written. */
	if ((size_t)(p - start) > 64) {
		*error_r = "local part longer than 64 octets";
		return -1;
	}
	a->local[out] = '\0';
	*pp = (const char *)p;
	return 0;
}

/* parse_literal - "[1.2.3.4]" or "[IPv6:...]" into a->domain */
static int
parse_literal(const char *p, struct sc_address *a, const char **error_r)
{
	unsigned char buf[16];
	char inner[64], text[INET6_ADDRSTRLEN];
	size_t len = strlen(p);

	if (len < 3 || p[len - 1] != ']' || len - 2 >= sizeof(inner)) {
		*error_r = "malformed address literal";
		return -1;
	}
	memcpy(inner, p + 1, len - 2);
	inner[len - 2] = '\0';
	if (inet_pton(AF_INET, inner, buf) == 1) {
		inet_ntop(AF_INET, buf, text, sizeof(text));
		snprintf(a->domain, sizeof(a->domain), "[%s]", text);
		return 0;
	}
	if (strncasecmp(inner, "IPv6:", 5) == 0 &&
	    inet_pton(AF_INET6, inner + 5, buf) == 1) {
		inet_ntop(AF_INET6, buf, text, sizeof(text));
		snprintf(a->domain, sizeof(a->domain), "[IPv6:%s]", text);
		return 0;
	}
	*error_r = "unsupported address literal (use [1.2.3.4] or "
		   "[IPv6:...])";
	return -1;
}

/* parse_domain - a dot-separated name with LDH (or UTF-8) labels */
static int
parse_domain(const char *text, struct sc_address *a, const char **error_r)
{
	const unsigned char *p = (const unsigned char *)text;
	size_t len = strlen(text), label = 0, out = 0, n;

	if (len == 0) {
		*error_r = "missing domain after '@'";
		return -1;
	}
	if (text[0] == '[')
		return parse_literal(text, a, error_r);
	/* One trailing dot (the root) is dropped: "example.test." */
	if (len > 1 && text[len - 1] == '.')
		len--;
	if (len > 255) {
		*error_r = "domain longer than 255 octets";
		return -1;
	}
	while ((size_t)((const char *)p - text) < len) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-') {
				*error_r = "malformed domain";
				return -1;
			}
			label = 0;
			a->domain[out++] = '.';
			p++;
			continue;
		}
		if (*p >= 0x80) {
			n = utf8_seq(p);
			if (n == 0 || (size_t)((const char *)p - text) + n >
				      len) {
				*error_r = "invalid UTF-8 in domain";
				return -1;
			}
		} else if (isalnum(*p) || (*p == '-' && label > 0)) {
			n = 1;
		} else {
			*error_r = *p == '-' ? "malformed domain" :
				   "invalid character in domain";
			return -1;
		}
		if (label + n > 63) {
			*error_r = "domain label longer than 63 octets";
			return -1;
		}
		memcpy(a->domain + out, p, n);
		if (n == 1)
			a->domain[out] = (char)tolower(*p);
		out += n;
		label += n;
		p += n;
	}
	if (label == 0 || p[-1] == '-') {
		*error_r = "malformed domain";
		return -1;
	}
	a->domain[out] = '\0';
	return 0;
}

int
sc_address_parse(const char *text, struct sc_address *a,
		 const char **error_r)
{
	const char *p = text;

	memset(a, 0, sizeof(*a));
	if (text == NULL) {
		*error_r = "missing address";
		return -1;
	}
	if (text[0] == '\0')
		return 0;	/* <> : the null sender */
	if (text[0] == '@') {
		/* Source routes (RFC 5321 4.1.1.3, a relay trick): refused
		 * outright rather than silently stripped. */
		*error_r = "source routes (<@host:user@domain>) are not "
			   "accepted";
		return -1;
	}
	if (parse_local(&p, a, error_r) < 0)
		goto fail;
	if (*p != '@') {
		*error_r = a->quoted ? "expected '@' after the quoted local "
			   "part" : "missing @domain";
		goto fail;
	}
	if (parse_domain(p + 1, a, error_r) < 0)
		goto fail;
	return 0;
fail:
	memset(a, 0, sizeof(*a));
	return -1;
}

bool
sc_address_is_routing_trick(const struct sc_address *a)
{
	/* user%remote@local (percent hack), remote!user@local (UUCP bang
	 * path), "user@remote"@local: all ask us to relay onwards. */
	return strpbrk(a->local, "%!@") != NULL;
}

/* needs_quotes - whether the local part must be written quoted */
static bool
needs_quotes(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (*p == '\0' || *p == '.')
		return true;
	for (; *p != '\0'; p++) {
		if (*p == '.' && (p[1] == '.' || p[1] == '\0'))
			return true;
		if (*p != '.' && *p < 0x80 && !is_atext(*p))
			return true;
	}
	return false;
}

char *
sc_address_format(const struct sc_address *a, char *buf, size_t len)
{
	size_t o = 0;
	const char *p;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (a->local[0] == '\0' && a->domain[0] == '\0' && !a->quoted)
		return buf;	/* the null address */
	if (!needs_quotes(a->local)) {
		snprintf(buf, len, "%s@%s", a->local, a->domain);
		return buf;
	}
	/* @UNSAFE: o < len - 1 holds before every store. */
	if (o + 1 < len)
		buf[o++] = '"';
	for (p = a->local; *p != '\0' && o + 1 < len; p++) {
		if (*p == '"' || *p == '\\') {
			if (o + 2 >= len)
				break;
			buf[o++] = '\\';
		}
		buf[o++] = *p;
	}
	if (o + 1 < len)
		buf[o++] = '"';
	buf[o] = '\0';
	snprintf(buf + o, len - o, "@%s", a->domain);
	return buf;
}
