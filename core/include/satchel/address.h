/* SPDX-License-Identifier: MIT */
/*
 * satchel/address.h - mail address syntax shared by all modules.
 */
#ifndef SATCHEL_ADDRESS_H
#define SATCHEL_ADDRESS_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sc_address {
	char local[65];		/* local part, unquoted                    */
	char domain[256];	/* lower-case, no trailing dot; "" for <>   */
	bool quoted;		/* the local part was a quoted string       */
};

/* Parses an RFC 5321 path body ("user@example.test", without < >).
 * Refuses source routes, bare local parts, bad domains; "" parses as
 * the null address. 0 or -1 with *error_r. */
SC_API int sc_address_parse(const char *text, struct sc_address *a,
			    const char **error_r);

/* True when the local part holds a relay trick (%, !, @ or a quoted
 * part naming another address). */
SC_API bool sc_address_is_routing_trick(const struct sc_address *a);

/* Formats local@domain into buf. Returns buf. */
SC_API char *sc_address_format(const struct sc_address *a, char *buf,
			       size_t len);

#ifdef __cplusplus
}
#endif

#endif
