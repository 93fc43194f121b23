/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_address.c - core/address.c: RFC 5321 path parsing and
 * formatting. Whatever parses must format into something that parses
 * back to the same address (the smtp module stores the formatted form and
 * the relay sends it on), and the relay-trick verdict must not change.
 */
#include "core.h"
#include "fuzz.h"

#include <ctype.h>
#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size, 1024);
	struct sc_address a, b;
	const char *err = NULL;
	char buf[1024], small[16];

	if (sc_address_parse(text, &a, &err) != 0) {
		FUZZ_CHECK(err != NULL && *err, "no error text for <%s>",
			   text);
		free(text);
		return 0;
	}
	FUZZ_CHECK(strlen(a.local) <= 64, "local part of %zu octets",
		   strlen(a.local));
	FUZZ_CHECK(text[0] == '\0' || a.domain[0] != '\0',
		   "<%s> parsed without a domain", text);
	/* names are lower-case ("[IPv6:...]" literals keep their tag) */
	for (const char *p = a.domain; *p && a.domain[0] != '['; p++)
		FUZZ_CHECK(!isupper((unsigned char)*p),
			   "domain %s not lower-case", a.domain);
	sc_address_format(&a, buf, sizeof(buf));
	FUZZ_CHECK(strlen(buf) < 400, "formatted <%s> does not fit the "
		   "400 bytes the smtp module gives it", buf);
	err = NULL;
	FUZZ_CHECK(sc_address_parse(buf, &b, &err) == 0,
		   "<%s> parsed, its formatted form <%s> does not: %s",
		   text, buf, err ? err : "?");
	FUZZ_CHECK(strcmp(a.local, b.local) == 0 &&
		   strcmp(a.domain, b.domain) == 0,
		   "<%s> formats as <%s>, which parses to another address",
		   text, buf);
	FUZZ_CHECK(sc_address_is_routing_trick(&a) ==
		   sc_address_is_routing_trick(&b),
		   "the relay-trick verdict of <%s> changed after formatting",
		   text);
	/* a short buffer truncates but stays a string */
	sc_address_format(&a, small, sizeof(small));
	FUZZ_CHECK(memchr(small, '\0', sizeof(small)) != NULL,
		   "unterminated truncated format");
	free(text);
	return 0;
}
