/* SPDX-License-Identifier: MIT */
/*
 * core/config_values.c - the value parsers behind the typed keys: sizes,
 * durations, rates, socket addresses and CIDR lists (parse and match).
 * Pure functions: callable from any thread.
 */
#include "core.h"
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* sc_config_parse_u64 - decimal digits only, with overflow check; *end_r gets the
 * first non-digit */
int
sc_config_parse_u64(const char *s, uint64_t *v_r, const char **end_r)
{
	uint64_t v = 0;
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*v_r = v;
	*end_r = p;
	return 0;
}

static int
mul_u64(uint64_t a, uint64_t b, uint64_t *r)
{
	if (b != 0 && a > UINT64_MAX / b)
		return -1;
	*r = a * b;
	return 0;
}

int
sc_parse_size(const char *text, uint64_t *bytes_r)
{
	uint64_t v, mult = 1;
	const char *p;

	if (text == NULL || sc_config_parse_u64(text, &v, &p) < 0)
		return -1;
	switch (*p) {
	case 'k': case 'K': mult = 1024ull; p++; break;
	case 'm': case 'M': mult = 1024ull * 1024; p++; break;
	case 'g': case 'G': mult = 1024ull * 1024 * 1024; p++; break;
	case 't': case 'T': mult = 1024ull * 1024 * 1024 * 1024; p++; break;
	default: break;
	}
	/* "50MB" and "50MiB" mean what "50M" means; a bare "B" is bytes. */
	if (mult > 1 && (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0))
		p += strlen(p);
	else if (mult == 1 && strcmp(p, "B") == 0)
		p++;
	if (*p != '\0' || mul_u64(v, mult, bytes_r) < 0)
		return -1;
	return 0;
}

/* duration_unit - milliseconds per unit at *p, advancing *p; 0 if none */
static uint64_t
duration_unit(const char **pp)
{
	const char *p = *pp;

	if (p[0] == 'm' && p[1] == 's') {
		*pp = p + 2;
		return 1;
	}
	*pp = p + 1;
	switch (*p) {
	case 's': return 1000ull;
	case 'm': return 60ull * 1000;
	case 'h': return 3600ull * 1000;
	case 'd': return 86400ull * 1000;
	case 'w': return 7ull * 86400 * 1000;
	default: *pp = p; return 0;
	}
}

int
sc_parse_duration(const char *text, uint64_t *ms_r)
{
	uint64_t total = 0, v, unit, part;
	const char *p;

	if (text == NULL || sc_config_parse_u64(text, &v, &p) < 0)
		return -1;
	if (*p == '\0')		/* a plain number is seconds */
		return mul_u64(v, 1000, ms_r);
	/* "30s", "5m", or a sum such as "1h30m" */
	for (;;) {
		unit = duration_unit(&p);
		if (unit == 0 || mul_u64(v, unit, &part) < 0 ||
		    total > UINT64_MAX - part)
			return -1;
		total += part;
		if (*p == '\0')
			break;
		if (sc_config_parse_u64(p, &v, &p) < 0)
			return -1;
	}
	*ms_r = total;
	return 0;
}

int
sc_parse_rate(const char *text, struct sc_rate *rate_r)
{
	uint64_t count, period;
	const char *p, *q;
	char unit[4];

	if (text == NULL || sc_config_parse_u64(text, &count, &p) < 0 ||
	    *p != '/')
		return -1;
	p++;
	if (isdigit((unsigned char)*p)) {
		if (sc_parse_duration(p, &period) < 0)
			return -1;
	} else {
		/* "60/m" = "60/1m" */
		if (strlen(p) > 2)
			return -1;
		snprintf(unit, sizeof(unit), "%s", p);
		q = unit;
		period = duration_unit(&q);
		if (period == 0 || *q != '\0')
			return -1;
	}
	if (period == 0)
		return -1;
	rate_r->count = count;
	rate_r->period_ms = period;
	return 0;
}

/* parse_port - "0".."65535" */
static int
parse_port(const char *s, unsigned *port_r)
{
	uint64_t v;
	const char *end;

	if (sc_config_parse_u64(s, &v, &end) < 0 || *end != '\0' || v > 65535 ||
	    end - s > 5)
		return -1;
	*port_r = (unsigned)v;
	return 0;
}

int
sc_parse_sockaddr(const char *text, struct sc_sockaddr *out)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
	char host[64], buf[INET6_ADDRSTRLEN];
	const char *colon, *end;
	unsigned port;
	size_t hlen;
	bool bracket;

	if (text == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	bracket = text[0] == '[';
	if (bracket) {
		end = strchr(text, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		hlen = (size_t)(end - text - 1);
		colon = end + 1;
		text++;
	} else {
		colon = strrchr(text, ':');
		/* a bare IPv6 address needs brackets to carry a port */
		if (colon == NULL || memchr(text, ':',
					    (size_t)(colon - text)) != NULL)
			return -1;
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= sizeof(host) ||
	    parse_port(colon + 1, &port) < 0)
		return -1;
	memcpy(host, text, hlen);
	host[hlen] = '\0';

	if (strcmp(host, "*") == 0 && !bracket) {
		/* All addresses: the v6 wildcard, which Linux makes dual
		 * stack unless net.ipv6.bindv6only is set. */
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_any;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
		snprintf(out->text, sizeof(out->text), "*:%u", port);
		return 0;
	}
	if (strcasecmp(host, "localhost") == 0 && !bracket)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (!bracket && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		out->len = sizeof(*sin);
		inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
		snprintf(out->text, sizeof(out->text), "%s:%u", buf, port);
		return 0;
	}
	if (bracket && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		out->len = sizeof(*sin6);
		inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
		snprintf(out->text, sizeof(out->text), "[%s]:%u", buf, port);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -1;
}

int
sc_cidr_parse(const char *text, struct sc_cidr *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash;
	uint64_t prefix;
	const char *end;
	unsigned max, i;
	size_t len;

	if (text == NULL)
		return -1;
	memset(out, 0, sizeof(*out));
	slash = strchr(text, '/');
	len = slash != NULL ? (size_t)(slash - text) : strlen(text);
	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, text, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	prefix = max;
	if (slash != NULL &&
	    (sc_config_parse_u64(slash + 1, &prefix, &end) < 0 ||
	     *end != '\0' || prefix > max || end - slash > 4)) {
		memset(out, 0, sizeof(*out));
		return -1;
	}
	out->prefix = (unsigned)prefix;
	/* 10.1.2.3/8 means 10.0.0.0/8: clear the host bits. */
	for (i = 0; i < max / 8; i++) {
		if (i * 8 >= prefix)
			out->addr[i] = 0;
		else if (i * 8 + 8 > prefix)
			out->addr[i] &= (unsigned char)(0xff00u >>
							(prefix - i * 8));
	}
	return 0;
}

/* prefix_match - the first bits bits of a and b agree */
static bool
prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff00u >> rest);
	return (a[whole] & mask) == (b[whole] & mask);
}

bool
sc_cidr_list_match(const struct sc_cidr_list *list,
		   const struct sockaddr *addr)
{
	static const unsigned char mapped[12] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
	};
	unsigned char v4[4], v6[16];
	bool has4 = false, has6 = false;
	size_t i;

	if (list == NULL || addr == NULL)
		return false;
	if (addr->sa_family == AF_INET) {
		memcpy(v4, &((const struct sockaddr_in *)addr)->sin_addr, 4);
		has4 = true;
	} else if (addr->sa_family == AF_INET6) {
		memcpy(v6, &((const struct sockaddr_in6 *)addr)->sin6_addr,
		       16);
		has6 = true;
		if (memcmp(v6, mapped, 12) == 0) {
			memcpy(v4, v6 + 12, 4);
			has4 = true;
		}
	} else {
		return false;
	}
	/* A v4 client also matches ::ffff:0:0/96-style v6 entries. */
	if (has4 && !has6) {
		memcpy(v6, mapped, 12);
		memcpy(v6 + 12, v4, 4);
		has6 = true;
	}
	for (i = 0; i < list->n; i++) {
		const struct sc_cidr *c = &list->v[i];

		if (c->family == AF_INET && has4 &&
		    prefix_match(c->addr, v4, c->prefix))
			return true;
		if (c->family == AF_INET6 && has6 &&
		    prefix_match(c->addr, v6, c->prefix))
			return true;
	}
	return false;
}

