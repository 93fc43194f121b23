/* SPDX-License-Identifier: MIT */
/*
 * core/config_keys.c - typed key parsing against a module's sc_config_key
 * table (nginx ngx_command_t, Dovecot setting_define); the value parsers
 * are in config_values.c. Pure functions over node trees: callable from
 * any thread, used on the main thread.
 */
#include "core.h"
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_map_at(const struct sc_ynode *map,
			const struct sc_ynode *where, const char *prefix,
			const char *base_dir, const struct sc_config_key *keys,
			const char *const *skip, bool ignore_unknown,
			unsigned char *base, char **error_r);
static void free_keys(const struct sc_config_key *keys, unsigned char *base);

/* ---- helpers for the key parser ---- */

/* got_what - "'text'", "a list" or "a map" for "expected X, got Y" */
static const char *
got_what(const struct sc_ynode *n, char *buf, size_t len)
{
	if (n->type == SC_YSEQ)
		return "a list";
	if (n->type == SC_YMAP)
		return "a map";
	if (sc_ynode_is_null(n))
		return "nothing";
	if (strlen(n->scalar) > 60)
		snprintf(buf, len, "'%.57s...'", n->scalar);
	else
		snprintf(buf, len, "'%s'", n->scalar);
	return buf;
}

static void
expected(char **error_r, const struct sc_ynode *n, const char *path,
	 const char *what)
{
	char buf[80];

	sc_config_error(error_r, n, "%s: expected %s, got %s", path, what,
			got_what(n, buf, sizeof(buf)));
}

/* edit_distance - Levenshtein distance, for "did you mean" */
static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[65], prev, tmp;

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = prev + (tolower((unsigned char)a[i - 1])
					      != tolower((unsigned char)
							 b[j - 1]));

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

/* suggest - the closest known key to name, or NULL when none is close */
static const char *
suggest(const char *name, const struct sc_config_key *keys,
	const char *const *skip)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, d, limit, i;

	limit = strlen(name) <= 4 ? 1 : 2;
	for (i = 0; keys != NULL && keys[i].name != NULL; i++) {
		d = edit_distance(name, keys[i].name);
		if (d < best_d) {
			best_d = d;
			best = keys[i].name;
		}
	}
	for (i = 0; skip != NULL && skip[i] != NULL; i++) {
		d = edit_distance(name, skip[i]);
		if (d < best_d) {
			best_d = d;
			best = skip[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

static void
join_path(char *buf, size_t len, const char *prefix, const char *name)
{
	if (prefix == NULL || prefix[0] == '\0')
		snprintf(buf, len, "%s", name);
	else
		snprintf(buf, len, "%s.%s", prefix, name);
}

static bool
in_list(const char *const *list, const char *name)
{
	size_t i;

	for (i = 0; list != NULL && list[i] != NULL; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

static bool
is_scalar_type(enum sc_key_type t)
{
	return t != SC_KEY_CIDR_LIST && t != SC_KEY_STR_LIST &&
	       t != SC_KEY_DURATION_LIST && t != SC_KEY_STR_MAP &&
	       t != SC_KEY_OBJECT && t != SC_KEY_LIST;
}

/* enum_index - position of value in "a|b|c", or -1 */
static int
enum_index(const char *values, const char *value)
{
	size_t vlen = strlen(value);
	const char *p = values;
	int i = 0;

	while (p != NULL && *p != '\0') {
		const char *bar = strchr(p, '|');
		size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);

		if (len == vlen && strncmp(p, value, len) == 0)
			return i;
		i++;
		p = bar != NULL ? bar + 1 : NULL;
	}
	return -1;
}

/* list_items - a sequence's items; a single scalar counts as a list of
 * one ("relay_networks: 10.0.0.0/8"), null as an empty list */
static int
list_items(const struct sc_ynode *n, const char *path,
	   const struct sc_ynode *const **items_r, size_t *n_r,
	   const struct sc_ynode **one, char **error_r)
{
	if (sc_ynode_is_null(n)) {
		*items_r = NULL;
		*n_r = 0;
		return 0;
	}
	if (n->type == SC_YSCALAR) {
		one[0] = n;
		*items_r = one;
		*n_r = 1;
		return 0;
	}
	if (n->type != SC_YSEQ) {
		expected(error_r, n, path, "a list");
		return -1;
	}
	*items_r = (const struct sc_ynode *const *)n->items;
	*n_r = n->n;
	return 0;
}

/* A list of scalars parsed item by item into a new array: the loop
 * STR_LIST, DURATION_LIST and CIDR_LIST share. */
struct scalar_list {
	size_t elem_size;
	const char *what;	/* for "expected ..." errors              */
	/* parses s into slot: 0, -1 (a wrong value) or -2 (no memory) */
	int (*parse)(const char *s, void *slot);
};

static int
item_str(const char *s, void *slot)
{
	char *copy = strdup(s);

	*(char **)slot = copy;
	return copy != NULL ? 0 : -2;
}

static int
item_duration(const char *s, void *slot)
{
	return sc_parse_duration(s, slot) < 0 ? -1 : 0;
}

static int
item_cidr(const char *s, void *slot)
{
	return sc_cidr_parse(s, slot) < 0 ? -1 : 0;
}

static const struct scalar_list str_items = {
	sizeof(char *), "a string", item_str,
};
static const struct scalar_list duration_items = {
	sizeof(uint64_t), "a duration such as 30s, 5m, 2h or 5d",
	item_duration,
};
static const struct scalar_list cidr_items = {
	sizeof(struct sc_cidr), "an IP address or CIDR such as 192.0.2.0/24 "
	"or 2001:db8::/32", item_cidr,
};

/* parse_scalar_list - n (a list, one scalar, or null) into a new array
 * *v_r; *n_r counts the items parsed, also on an error, so the caller's
 * free_keys releases exactly those. */
static int
parse_scalar_list(const struct sc_ynode *n, const char *path,
		  const struct scalar_list *kind, void **v_r, size_t *n_r,
		  char **error_r)
{
	const struct sc_ynode *const *items, *one[1];
	char ipath[300];
	unsigned char *v;
	size_t count;

	*v_r = NULL;
	*n_r = 0;
	if (list_items(n, path, &items, &count, one, error_r) < 0)
		return -1;
	if (count == 0)
		return 0;
	v = calloc(count, kind->elem_size);
	if (v == NULL)
		goto nomem;
	*v_r = v;
	for (size_t i = 0; i < count; i++) {
		int r = -1;

		if (items[i]->type == SC_YSCALAR)
			r = kind->parse(items[i]->scalar,
					v + i * kind->elem_size);
		if (r == -2)
			goto nomem;
		if (r < 0) {
			snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
			expected(error_r, items[i], ipath, kind->what);
			return -1;
		}
		(*n_r)++;
	}
	return 0;
nomem:
	sc_config_error(error_r, n, "%s: out of memory", path);
	return -1;
}

/* set_value - parses node n for key into field (base + offset) */
static int
set_value(const struct sc_config_key *key, const struct sc_ynode *n,
	  const char *path, const char *base_dir, unsigned char *field,
	  char **error_r)
{
	char ipath[300];
	size_t i;
	const char *s;
	char *dup;
	int idx;

	if (key->type < SC_KEY_STR || key->type > SC_KEY_LIST) {
		sc_config_error(error_r, n, "%s: unknown key type %d in the "
				"module's key table", path, (int)key->type);
		return -1;
	}
	if (is_scalar_type(key->type) && n->type != SC_YSCALAR) {
		static const char *const what[] = {
			[SC_KEY_STR] = "a string",
			[SC_KEY_PATH] = "a path",
			[SC_KEY_BOOL] = "true or false",
			[SC_KEY_UINT] = "a number",
			[SC_KEY_SIZE] = "a size such as 512K, 50M or 1G",
			[SC_KEY_DURATION] = "a duration such as 30s, 5m, 2h "
					    "or 5d",
			[SC_KEY_RATE] = "a rate such as 60/1m",
			[SC_KEY_ENUM] = "a single value",
			[SC_KEY_ADDRESS] = "an address such as 127.0.0.1:25 "
					   "or [::1]:25",
		};
		if (key->type == SC_KEY_ENUM) {
			char buf[200];

			snprintf(buf, sizeof(buf), "one of %s",
				 key->enum_values);
			expected(error_r, n, path, buf);
		} else {
			expected(error_r, n, path, what[key->type]);
		}
		return -1;
	}
	s = n->scalar;
	switch (key->type) {
	case SC_KEY_STR:
	case SC_KEY_PATH:
		if (key->type == SC_KEY_PATH && s[0] == '\0') {
			expected(error_r, n, path, "a path");
			return -1;
		}
		dup = key->type == SC_KEY_PATH ?
		      sc_config_path_join(base_dir, s) : strdup(s);
		if (dup == NULL)
			goto nomem;
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	case SC_KEY_BOOL:
		if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 ||
		    strcasecmp(s, "on") == 0) {
			*(bool *)field = true;
		} else if (strcasecmp(s, "false") == 0 ||
			   strcasecmp(s, "no") == 0 ||
			   strcasecmp(s, "off") == 0) {
			*(bool *)field = false;
		} else {
			expected(error_r, n, path, "true or false");
			return -1;
		}
		return 0;
	case SC_KEY_UINT: {
		const char *end;

		if (sc_config_parse_u64(s, (uint64_t *)field, &end) < 0 ||
		    *end != '\0') {
			expected(error_r, n, path, "a non-negative whole "
				 "number");
			return -1;
		}
		return 0;
	}
	case SC_KEY_SIZE:
		if (sc_parse_size(s, (uint64_t *)field) < 0) {
			expected(error_r, n, path, "a size such as 512K, 50M "
				 "or 1G (or plain bytes)");
			return -1;
		}
		return 0;
	case SC_KEY_DURATION:
		if (sc_parse_duration(s, (uint64_t *)field) < 0) {
			expected(error_r, n, path, "a duration such as 30s, "
				 "5m, 2h or 5d");
			return -1;
		}
		return 0;
	case SC_KEY_RATE:
		if (sc_parse_rate(s, (struct sc_rate *)field) < 0) {
			expected(error_r, n, path, "a rate such as 60/1m "
				 "(count/duration)");
			return -1;
		}
		return 0;
	case SC_KEY_ENUM:
		idx = enum_index(key->enum_values, s);
		if (idx < 0) {
			char buf[200];

			snprintf(buf, sizeof(buf), "one of %s",
				 key->enum_values);
			expected(error_r, n, path, buf);
			return -1;
		}
		*(int *)field = idx;
		return 0;
	case SC_KEY_ADDRESS:
		if (sc_parse_sockaddr(s, (struct sc_sockaddr *)field) < 0) {
			expected(error_r, n, path, "an address such as "
				 "127.0.0.1:25, [::1]:25 or *:25");
			return -1;
		}
		return 0;
	case SC_KEY_CIDR_LIST: {
		struct sc_cidr_list *l = (struct sc_cidr_list *)field;
		void *v;
		int r;

		free(l->v);
		r = parse_scalar_list(n, path, &cidr_items, &v, &l->n,
				      error_r);
		l->v = v;
		return r;
	}
	case SC_KEY_STR_LIST: {
		struct sc_str_list *l = (struct sc_str_list *)field;
		void *v;
		int r;

		r = parse_scalar_list(n, path, &str_items, &v, &l->n,
				      error_r);
		l->v = v;
		return r;
	}
	case SC_KEY_DURATION_LIST: {
		struct sc_u64_list *l = (struct sc_u64_list *)field;
		void *v;
		int r;

		r = parse_scalar_list(n, path, &duration_items, &v, &l->n,
				      error_r);
		l->v = v;
		return r;
	}
	case SC_KEY_STR_MAP: {
		struct sc_str_map *m = (struct sc_str_map *)field;

		if (sc_ynode_is_null(n))
			return 0;
		if (n->type != SC_YMAP) {
			expected(error_r, n, path, "a map (key: value)");
			return -1;
		}
		if (n->n == 0)
			return 0;
		m->keys = calloc(n->n, sizeof(*m->keys));
		m->values = calloc(n->n, sizeof(*m->values));
		if (m->keys == NULL || m->values == NULL)
			goto nomem;
		for (i = 0; i < n->n; i++) {
			join_path(ipath, sizeof(ipath), path,
				  n->keys[i]->scalar);
			if (n->items[i]->type != SC_YSCALAR ||
			    sc_ynode_is_null(n->items[i])) {
				expected(error_r, n->items[i], ipath,
					 "a string");
				return -1;
			}
			m->keys[i] = strdup(n->keys[i]->scalar);
			m->values[i] = strdup(n->items[i]->scalar);
			m->n++;
			if (m->keys[i] == NULL || m->values[i] == NULL)
				goto nomem;
		}
		return 0;
	}
	case SC_KEY_OBJECT:
		if (sc_ynode_is_null(n))
			return parse_map_at(NULL, n, path, base_dir, key->sub,
					    NULL, false, field, error_r);
		if (n->type != SC_YMAP) {
			expected(error_r, n, path, "a map (key: value)");
			return -1;
		}
		return parse_map_at(n, n, path, base_dir, key->sub, NULL,
				    false, field, error_r);
	case SC_KEY_LIST: {
		struct sc_list *l = (struct sc_list *)field;

		if (sc_ynode_is_null(n))
			return 0;
		if (n->type != SC_YSEQ) {
			expected(error_r, n, path, "a list");
			return -1;
		}
		if (n->n == 0 || key->sub_size == 0)
			return 0;
		l->v = calloc(n->n, key->sub_size);
		if (l->v == NULL)
			goto nomem;
		/* n is set first so a failure frees every element. */
		l->n = n->n;
		for (i = 0; i < n->n; i++) {
			const struct sc_ynode *it = n->items[i];

			snprintf(ipath, sizeof(ipath), "%s[%zu]", path, i);
			if (it->type != SC_YMAP) {
				expected(error_r, it, ipath, "a map "
					 "(key: value)");
				return -1;
			}
			if (parse_map_at(it, it, ipath, base_dir, key->sub,
					 NULL, false,
					 (unsigned char *)l->v +
					 i * key->sub_size, error_r) < 0)
				return -1;
		}
		return 0;
	}
	}
	sc_config_error(error_r, n, "%s: unknown key type %d in the module's "
			"key table", path, (int)key->type);
	return -1;
nomem:
	sc_config_error(error_r, n, "%s: out of memory", path);
	return -1;
}

/* set_default - applies key->def, written as YAML, through set_value */
static int
set_default(const struct sc_config_key *key, const struct sc_ynode *where,
	    const char *path, const char *base_dir, unsigned char *field,
	    char **error_r)
{
	struct sc_ydoc *doc = NULL;
	struct sc_ynode literal;
	char name[320], *err = NULL;
	int ret;

	snprintf(name, sizeof(name), "<default of %s>", path);
	if (sc_yaml_parse_string(key->def, name, &doc, &err) == 0) {
		if (doc->root == NULL && !is_scalar_type(key->type)) {
			sc_ydoc_free(doc);	/* "" = empty */
			return 0;
		}
		if (doc->root != NULL &&
		    (doc->root->type == SC_YSCALAR ||
		     !is_scalar_type(key->type))) {
			ret = set_value(key, doc->root, path, base_dir, field,
					error_r);
			sc_ydoc_free(doc);
			return ret;
		}
		sc_ydoc_free(doc);
	}
	if (!is_scalar_type(key->type)) {
		sc_config_error(error_r, where, "%s: the module's default "
				"'%s' is not valid YAML: %s", path, key->def,
				err != NULL ? err : "?");
		free(err);
		return -1;
	}
	free(err);
	/* "*:25" or "%d/%u" are not valid plain YAML scalars; a scalar
	 * key's default is then taken literally, as its author meant. */
	memset(&literal, 0, sizeof(literal));
	literal.type = SC_YSCALAR;
	literal.file = name;
	literal.line = literal.col = 1;
	literal.scalar = (char *)key->def;
	literal.quoted = true;
	return set_value(key, &literal, path, base_dir, field, error_r);
}

/* map_key - the key node of name in map (for errors about its value) */
static const struct sc_ynode *
map_key(const struct sc_ynode *map, const char *name)
{
	size_t i;

	for (i = 0; map != NULL && i < map->n; i++)
		if (strcmp(map->keys[i]->scalar, name) == 0)
			return map->keys[i];
	return map;
}

/* parse_map_at - walks map (may be NULL: defaults only) against keys;
 * where is the node missing-key errors point at */
static int
parse_map_at(const struct sc_ynode *map, const struct sc_ynode *where,
	     const char *prefix, const char *base_dir,
	     const struct sc_config_key *keys, const char *const *skip,
	     bool ignore_unknown, unsigned char *base, char **error_r)
{
	char path[300];
	const struct sc_config_key *k;
	const struct sc_ynode *v;
	const char *hint;
	size_t i;

	for (i = 0; map != NULL && i < map->n; i++) {
		const char *name = map->keys[i]->scalar;

		if (in_list(skip, name))
			continue;
		for (k = keys; k != NULL && k->name != NULL; k++)
			if (strcmp(k->name, name) == 0)
				break;
		if (k != NULL && k->name != NULL)
			continue;
		if (ignore_unknown)
			continue;
		join_path(path, sizeof(path), prefix, name);
		hint = suggest(name, keys, skip);
		if (hint != NULL)
			sc_config_error(error_r, map->keys[i], "unknown key "
					"'%s' (did you mean '%s'?)", path,
					hint);
		else
			sc_config_error(error_r, map->keys[i], "unknown key "
					"'%s'", path);
		return -1;
	}
	for (k = keys; k != NULL && k->name != NULL; k++) {
		unsigned char *field = base + k->offset;

		join_path(path, sizeof(path), prefix, k->name);
		v = sc_ynode_get(map, k->name);
		if (v != NULL && !sc_ynode_is_null(v)) {
			if (set_value(k, v, path, base_dir, field,
				      error_r) < 0 ||
			    sc_config_key_constraints(k, v, path, field,
						      error_r) < 0)
				return -1;
		} else if ((k->flags & SC_KEY_REQUIRED) != 0) {
			sc_config_error(error_r, v != NULL ?
					map_key(map, k->name) : where,
					"missing required key '%s'", path);
			return -1;
		} else if (k->type == SC_KEY_OBJECT) {
			if (parse_map_at(NULL, v != NULL ? v : where, path,
					 base_dir, k->sub, NULL, false, field,
					 error_r) < 0)
				return -1;
		} else if (k->def != NULL) {
			if (set_default(k, v != NULL ? v : where, path,
					base_dir, field, error_r) < 0)
				return -1;
		}
	}
	return 0;
}

int
sc_config_parse_map(const struct sc_ynode *map, const char *prefix,
		    const char *base_dir, const struct sc_config_key *keys,
		    const char *const *skip, bool ignore_unknown, void *out,
		    char **error_r)
{
	if (parse_map_at(map, map, prefix, base_dir, keys, skip,
			 ignore_unknown, out, error_r) < 0) {
		free_keys(keys, out);
		return -1;
	}
	return 0;
}

int
sc_config_parse_keys(const struct sc_inst_conf *ic,
		     const struct sc_config_key *keys, void *out,
		     char **error_r)
{
	char *dir;
	int ret;

	*error_r = NULL;
	if (ic->root == NULL || ic->root->type != SC_YMAP) {
		sc_config_error(error_r, ic->root, "%s: expected a map of "
				"settings", ic->file);
		return -1;
	}
	dir = sc_config_dirname(ic->file);
	if (dir == NULL) {
		sc_config_error(error_r, ic->root, "out of memory");
		return -1;
	}
	ret = sc_config_parse_map(ic->root, NULL, dir, keys,
				  sc_config_reserved_keys(),
				  false, out, error_r);
	free(dir);
	return ret;
}

/* free_keys - frees what set_value allocated below base, and zeroes it */
static void
free_keys(const struct sc_config_key *keys, unsigned char *base)
{
	const struct sc_config_key *k;
	size_t i;

	for (k = keys; k != NULL && k->name != NULL; k++) {
		unsigned char *field = base + k->offset;

		switch (k->type) {
		case SC_KEY_STR:
		case SC_KEY_PATH:
			free(*(char **)field);
			*(char **)field = NULL;
			break;
		case SC_KEY_CIDR_LIST: {
			struct sc_cidr_list *l = (struct sc_cidr_list *)field;

			free(l->v);
			memset(l, 0, sizeof(*l));
			break;
		}
		case SC_KEY_STR_LIST: {
			struct sc_str_list *l = (struct sc_str_list *)field;

			for (i = 0; i < l->n; i++)
				free(l->v[i]);
			free(l->v);
			memset(l, 0, sizeof(*l));
			break;
		}
		case SC_KEY_DURATION_LIST: {
			struct sc_u64_list *l = (struct sc_u64_list *)field;

			free(l->v);
			memset(l, 0, sizeof(*l));
			break;
		}
		case SC_KEY_STR_MAP: {
			struct sc_str_map *m = (struct sc_str_map *)field;

			for (i = 0; i < m->n; i++) {
				free(m->keys[i]);
				free(m->values[i]);
			}
			free(m->keys);
			free(m->values);
			memset(m, 0, sizeof(*m));
			break;
		}
		case SC_KEY_OBJECT:
			free_keys(k->sub, field);
			break;
		case SC_KEY_LIST: {
			struct sc_list *l = (struct sc_list *)field;

			for (i = 0; l->v != NULL && i < l->n; i++)
				free_keys(k->sub, (unsigned char *)l->v +
					  i * k->sub_size);
			free(l->v);
			memset(l, 0, sizeof(*l));
			break;
		}
		default:
			break;
		}
	}
}

void
sc_config_free_keys(const struct sc_config_key *keys, void *out)
{
	if (out != NULL)
		free_keys(keys, out);
}

/* sc_config_domain_valid - RFC 1035 labels (letters, digits, hyphens,
 * 1-63 octets, no hyphen at either end), UTF-8 allowed for IDN, at most
 * 253 octets */
bool
sc_config_domain_valid(const char *name)
{
	size_t len = strlen(name), label = 0, i;

	if (len == 0 || len > 253)
		return false;
	for (i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || name[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (label == 0 && c == '-')
			return false;
		if (!isalnum(c) && c != '-' && c < 0x80)
			return false;
		label++;
	}
	return true;
}
