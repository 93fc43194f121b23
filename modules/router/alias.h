/* SPDX-License-Identifier: MIT */
/*
 * alias.h - the router's aliases file: parser and lookup. Pure code with no
 * satchel calls, so it runs on a pool thread (re-reads) and in the Check
 * test. Internal to the router module (hidden symbols).
 */
#ifndef ROUTER_ALIAS_H
#define ROUTER_ALIAS_H

#include <stddef.h>

struct alias_entry {
	char *local;		/* the alias local part, as written          */
	char *domain;		/* lower-case, or NULL: every local domain    */
	size_t target_count;
	char **targets;		/* "local" or "local@domain", as written      */
	unsigned line;		/* where it was defined, for messages         */
};

struct alias_table {
	size_t n;
	struct alias_entry *v;	/* sorted by (local, domain) for bsearch      */
};

/* alias_parse - parses an aliases file held in text (len bytes, need not be
 * NUL-terminated). name is used in messages. Returns 0 with *table_r, or -1
 * with *error_r malloc'd as "NAME:LINE: message". */
int alias_parse(const char *name, const char *text, size_t len,
		struct alias_table **table_r, char **error_r);

/* alias_lookup - the entry for local@domain: an exact local@domain entry
 * first, then a domain-less one when any_domain is true. Case-insensitive.
 * NULL when there is none. */
const struct alias_entry *alias_lookup(const struct alias_table *t,
				       const char *local, const char *domain,
				       int any_domain);

/* alias_table_free - frees t and sets *t to NULL. */
void alias_table_free(struct alias_table **t);

#endif
