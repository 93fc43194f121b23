/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_alias.c - the router's aliases file parser
 * (modules/router/alias.c, pure code linked as it is). A file either loads
 * or gives one "NAME:LINE: message" error; every loaded entry must be found
 * again by the lookup the router uses, with at least one target.
 */
#include "alias.h"
#include "fuzz.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct alias_table *t = NULL;
	char *error = NULL;

	if (alias_parse("aliases", (const char *)data, size, &t, &error) != 0) {
		FUZZ_CHECK(t == NULL, "a table with an error");
		FUZZ_CHECK(error != NULL && strncmp(error, "aliases:", 8) == 0,
			   "error without FILE:LINE: %s", error ? error : "");
		free(error);
		return 0;
	}
	FUZZ_CHECK(t != NULL && error == NULL, "no table and no error");
	for (size_t i = 0; i < t->n; i++) {
		const struct alias_entry *e = &t->v[i], *f;

		FUZZ_CHECK(e->local != NULL && e->target_count > 0,
			   "entry %zu without alias or targets", i);
		for (size_t k = 0; k < e->target_count; k++)
			FUZZ_CHECK(e->targets[k] != NULL &&
				   e->targets[k][0] != '\0',
				   "empty target of %s", e->local);
		f = alias_lookup(t, e->local, e->domain, e->domain == NULL);
		FUZZ_CHECK(f == e, "alias %s%s%s (line %u) not found by lookup",
			   e->local, e->domain ? "@" : "",
			   e->domain ? e->domain : "", e->line);
	}
	alias_lookup(t, "postmaster", "example.test", 1);
	alias_table_free(&t);
	FUZZ_CHECK(t == NULL, "alias_table_free left the pointer");
	return 0;
}
