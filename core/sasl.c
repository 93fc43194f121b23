/* SPDX-License-Identifier: MIT */
/*
 * core/sasl.c - base64 (RFC 4648) and SASL PLAIN (RFC 4616) for modules.
 * Pure functions, callable from any thread.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* b64_value - the 6-bit value of a base64 character, or -1 */
static int
b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

char *
sc_base64_decode(const char *in, size_t *len_r)
{
	size_t n = strlen(in), o = 0, pad = 0;
	unsigned acc = 0, bits = 0;
	char *out;

	if (strcmp(in, "=") == 0)
		n = 0;	/* RFC 4954: "=" is an empty response */
	if (n % 4 != 0)
		return NULL;
	out = malloc(n / 4 * 3 + 1);	/* @UNSAFE: 3 bytes per 4 chars */
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)in[i];
		int v;

		if (ch == '=' && i + 2 >= n) {
			pad++;
			continue;
		}
		v = b64_value(ch);
		if (v < 0 || pad > 0) {
			explicit_bzero(out, o);	/* part of a secret */
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}

int
sc_base64_encode(const void *in, size_t len, char *out, size_t olen)
{
	const unsigned char *p = in;
	size_t need = (len + 2) / 3 * 4, o = 0;

	if (olen < need + 1)
		return -1;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)p[i] << 16;

		if (i + 1 < len)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return (int)o;
}

int
sc_sasl_plain_split(const char *buf, size_t len, const char **authzid_r,
		    const char **authcid_r, const char **passwd_r)
{
	size_t zl = strnlen(buf, len), cl;

	if (zl >= len)
		return -1;
	cl = strnlen(buf + zl + 1, len - zl - 1);
	if (zl + 1 + cl >= len || cl == 0)
		return -1;
	/* the password runs to the end: a NUL inside it is malformed */
	if (strnlen(buf + zl + cl + 2, len - zl - cl - 2) !=
	    len - zl - cl - 2)
		return -1;
	*authzid_r = buf;
	*authcid_r = buf + zl + 1;
	*passwd_r = buf + zl + cl + 2;
	return 0;
}
