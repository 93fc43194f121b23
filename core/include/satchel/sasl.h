/* SPDX-License-Identifier: MIT */
/*
 * satchel/sasl.h - base64 and SASL PLAIN, shared by the protocol modules
 * (SMTP AUTH, POP3 AUTH, the relay's smarthost login) so each does not
 * carry its own decoder. Pure functions: any thread.
 */
#ifndef SATCHEL_SASL_H
#define SATCHEL_SASL_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Decodes RFC 4648 base64 (no whitespace, padding required) into a new
 * NUL-terminated buffer; *len_r gets the decoded length (the data may hold
 * NULs, as PLAIN responses do). The lone "=" of an empty SASL response
 * (RFC 4954) decodes to "". NULL on bad input or no memory. The caller frees
 * it; for secrets, clear it first (explicit_bzero). Since ABI 1.1. */
SC_API char *sc_base64_decode(const char *in, size_t *len_r);

/* Encodes len bytes of in as base64 into out (olen bytes, NUL added).
 * Returns the encoded length, or -1 when out is too small. Since ABI 1.1. */
SC_API int sc_base64_encode(const void *in, size_t len, char *out,
			    size_t olen);

/* Splits a decoded SASL PLAIN response "authzid NUL authcid NUL passwd"
 * (RFC 4616) held in buf (len bytes, as from sc_base64_decode). Sets the
 * three pointers into buf (authzid may be ""). -1 when the response is
 * malformed: fewer than two NULs, a NUL inside the password, or an empty
 * authcid. Since ABI 1.1. */
SC_API int sc_sasl_plain_split(const char *buf, size_t len,
			       const char **authzid_r, const char **authcid_r,
			       const char **passwd_r);

#ifdef __cplusplus
}
#endif

#endif
