/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_sasl.c - core/sasl.c: base64 and SASL PLAIN, which the
 * smtp and pop3 modules run on every AUTH line before anyone is
 * authenticated. Checks both round trips (bytes -> base64 -> bytes, and
 * accepted base64 -> bytes -> canonical base64 -> the same bytes) and
 * that a PLAIN split points inside the buffer at the three fields.
 */
#include "core.h"
#include "fuzz.h"

#include <string.h>

static void
check_plain(const char *buf, size_t len)
{
	const char *z, *c, *p;

	if (sc_sasl_plain_split(buf, len, &z, &c, &p) != 0)
		return;
	FUZZ_CHECK(z == buf, "authzid does not start the buffer");
	FUZZ_CHECK(c > z && c < buf + len && p > c && p <= buf + len,
		   "fields outside the buffer");
	FUZZ_CHECK(*c != '\0', "empty authcid accepted");
	/* buf need not be terminated: the password runs to its end */
	FUZZ_CHECK(c == z + strlen(z) + 1 && p == c + strlen(c) + 1,
		   "fields not separated by single NULs");
	FUZZ_CHECK(strnlen(p, (size_t)(buf + len - p)) ==
		   (size_t)(buf + len - p), "a NUL inside the password");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_strndup(data, size, 16384);
	size_t len, len2, enc_cap = (size + 2) / 3 * 4 + 1;
	char *dec, *dec2, *enc = malloc(enc_cap), *re;
	int n;

	if (enc == NULL)
		abort();
	/* bytes -> base64 -> the same bytes */
	n = sc_base64_encode(data, size, enc, enc_cap);
	FUZZ_CHECK(n >= 0 && (size_t)n == enc_cap - 1,
		   "encoding %zu bytes gave %d", size, n);
	FUZZ_CHECK(sc_base64_encode(data, size, enc, enc_cap - 1) == -1,
		   "a buffer one byte short was accepted");
	dec = sc_base64_decode(enc, &len);
	FUZZ_CHECK(dec != NULL, "own encoding refused");
	FUZZ_CHECK(len == size && memcmp(dec, data, size) == 0,
		   "round trip changed the bytes");
	FUZZ_CHECK(dec[len] == '\0', "decoded data not terminated");
	free(dec);
	free(enc);

	/* the input as a client's base64 */
	dec = sc_base64_decode(text, &len);
	if (dec != NULL) {
		size_t cap = (len + 2) / 3 * 4 + 1;

		FUZZ_CHECK(dec[len] == '\0', "decoded data not terminated");
		re = malloc(cap);
		if (re == NULL)
			abort();
		FUZZ_CHECK(sc_base64_encode(dec, len, re, cap) >= 0,
			   "re-encoding failed");
		dec2 = sc_base64_decode(re, &len2);
		FUZZ_CHECK(dec2 != NULL && len2 == len &&
			   memcmp(dec, dec2, len) == 0,
			   "canonical form decodes differently");
		check_plain(dec, len);
		free(dec2);
		free(re);
		free(dec);
	}
	/* the raw bytes as a decoded PLAIN response */
	check_plain((const char *)data, size);
	free(text);
	return 0;
}
