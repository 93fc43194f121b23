/* SPDX-License-Identifier: MIT */
/*
 * core/config_check.c - the checks a module's config passes after its
 * values parsed (config_keys.c): the key table's constraints (non-empty,
 * host names, ranges), the names the core reserves in every plugins.d
 * file, and the module's own validate callback with the
 * sc_config_check_error() it reports through. Main thread (start-up,
 * satcheld -t, reload, satchelctl check).
 */
#include "core.h"
#include "config_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The keys every plugins.d file may carry next to the module's own. */
static const char *const reserved_keys[] = {
	"module", "name", "enabled", "hook_timeout", NULL
};

struct sc_config_check {
	const struct sc_inst_conf *ic;
	char *error;			/* the first report                  */
};

const char *const *
sc_config_reserved_keys(void)
{
	return reserved_keys;
}

/* sc_config_keys_reserved_check - see config_int.h */
int
sc_config_keys_reserved_check(const struct sc_config_key *keys,
			      char **error_r)
{
	for (const struct sc_config_key *k = keys; k != NULL &&
	     k->name != NULL; k++) {
		for (size_t i = 0; reserved_keys[i] != NULL; i++) {
			if (strcmp(k->name, reserved_keys[i]) != 0)
				continue;
			if (asprintf(error_r, "its key table declares \"%s\", "
				     "a name the core keeps for itself in "
				     "every plugins.d file (module, name, "
				     "enabled, hook_timeout): rename the "
				     "module's key", k->name) < 0)
				*error_r = NULL;
			return -1;
		}
	}
	return 0;
}

/* ---- constraints ---- */

/* hostname_ok - dot-separated labels of letters, digits and hyphens */
static bool
hostname_ok(const char *s)
{
	size_t total = strlen(s), label = 0;

	if (total == 0 || total > 253)
		return false;
	for (const char *p = s; ; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return false;
			if (*p == '\0')
				return true;
			label = 0;
			continue;
		}
		if (label == 0 && *p == '-')
			return false;
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
		label++;
	}
}

/* range_value - one side of a range in the key's syntax */
static int
range_value(enum sc_key_type type, const char *text, uint64_t *v_r)
{
	char *end;

	switch (type) {
	case SC_KEY_UINT:
		if (text[0] < '0' || text[0] > '9')
			return -1;
		errno = 0;
		*v_r = strtoull(text, &end, 10);
		return errno == 0 && *end == '\0' ? 0 : -1;
	case SC_KEY_SIZE:
		return sc_parse_size(text, v_r);
	case SC_KEY_DURATION:
	case SC_KEY_DURATION_LIST:
		return sc_parse_duration(text, v_r);
	default:
		return -1;
	}
}

/* range_check - v within the key's range (enum_values "MIN..MAX", a side
 * may be empty) */
static int
range_check(const struct sc_config_key *key, const struct sc_ynode *n,
	    const char *path, uint64_t v, char **error_r)
{
	const char *dots = strstr(key->enum_values, "..");
	char lo[64], hi[64];
	uint64_t min = 0, max = UINT64_MAX;
	size_t lo_len;

	lo_len = dots != NULL ? (size_t)(dots - key->enum_values) : 0;
	if (dots == NULL || lo_len >= sizeof(lo) ||
	    strlen(dots + 2) >= sizeof(hi)) {
		sc_config_error(error_r, n, "%s: the module's range \"%s\" "
				"is not MIN..MAX", path, key->enum_values);
		return -1;
	}
	memcpy(lo, key->enum_values, lo_len);
	lo[lo_len] = '\0';
	snprintf(hi, sizeof(hi), "%s", dots + 2);
	if ((lo[0] != '\0' && range_value(key->type, lo, &min) < 0) ||
	    (hi[0] != '\0' && range_value(key->type, hi, &max) < 0)) {
		sc_config_error(error_r, n, "%s: the module's range \"%s\" "
				"is not MIN..MAX", path, key->enum_values);
		return -1;
	}
	if (v < min) {
		sc_config_error(error_r, n, "%s: '%s' is below the least "
				"allowed value, %s", path, n->scalar, lo);
		return -1;
	}
	if (v > max) {
		sc_config_error(error_r, n, "%s: '%s' is above the greatest "
				"allowed value, %s", path, n->scalar, hi);
		return -1;
	}
	return 0;
}

/* sc_config_key_constraints - see config_int.h */
int
sc_config_key_constraints(const struct sc_config_key *key,
			  const struct sc_ynode *n, const char *path,
			  const void *field, char **error_r)
{
	if ((key->flags & SC_KEY_NONEMPTY) != 0) {
		bool empty = n->type == SC_YSCALAR ?
			     n->scalar == NULL || n->scalar[0] == '\0' :
			     n->n == 0;

		if (empty) {
			sc_config_error(error_r, n, "%s: must not be empty",
					path);
			return -1;
		}
	}
	if ((key->flags & SC_KEY_HOSTNAME) != 0) {
		if (key->type == SC_KEY_STR && !hostname_ok(n->scalar)) {
			sc_config_error(error_r, n, "%s: '%s' is not a host "
					"name", path, n->scalar);
			return -1;
		}
		for (size_t i = 0; key->type == SC_KEY_STR_LIST &&
		     n->type == SC_YSEQ && i < n->n; i++) {
			const struct sc_ynode *it = n->items[i];

			if (it->type != SC_YSCALAR || hostname_ok(it->scalar))
				continue;
			sc_config_error(error_r, it, "%s: '%s' is not a host "
					"name", path, it->scalar);
			return -1;
		}
	}
	if (key->enum_values == NULL)
		return 0;
	switch (key->type) {
	case SC_KEY_UINT:
	case SC_KEY_SIZE:
	case SC_KEY_DURATION:
		return range_check(key, n, path, *(const uint64_t *)field,
				   error_r);
	case SC_KEY_DURATION_LIST: {
		const struct sc_u64_list *l = field;

		for (size_t i = 0; i < l->n && n->type == SC_YSEQ &&
		     i < n->n; i++)
			if (range_check(key, n->items[i], path, l->v[i],
					error_r) < 0)
				return -1;
		return 0;
	}
	default:
		return 0;
	}
}

/* ---- the module's validate callback ---- */

/* key_node - the node a dotted path names in the file (the key's own
 * node for a map entry, so the error points at the key), or NULL */
static const struct sc_ynode *
key_node(const struct sc_ynode *root, const char *key)
{
	const struct sc_ynode *n = root, *at = NULL;
	char part[128];

	while (key != NULL && *key != '\0' && n != NULL) {
		const char *dot = strchr(key, '.');
		size_t len = dot != NULL ? (size_t)(dot - key) : strlen(key);
		char *end;

		if (len >= sizeof(part))
			return NULL;
		memcpy(part, key, len);
		part[len] = '\0';
		key = dot != NULL ? dot + 1 : NULL;
		if (n->type == SC_YMAP) {
			size_t i;

			for (i = 0; i < n->n; i++)
				if (strcmp(n->keys[i]->scalar, part) == 0)
					break;
			if (i == n->n)
				return NULL;
			at = n->keys[i];
			n = n->items[i];
		} else if (n->type == SC_YSEQ) {
			unsigned long idx = strtoul(part, &end, 10);

			if (part[0] == '\0' || *end != '\0' || idx >= n->n)
				return NULL;
			at = n = n->items[idx];
		} else {
			return NULL;
		}
	}
	return at;
}

int
sc_config_check_error(struct sc_config_check *check, const char *key,
		      const char *fmt, ...)
{
	const struct sc_ynode *n;
	char msg[1024];
	va_list ap;

	if (check == NULL || check->error != NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = key_node(check->ic->root, key);
	if (n == NULL)
		n = check->ic->root;
	if (key != NULL && key[0] != '\0')
		sc_config_error(&check->error, n, "%s: %s", key, msg);
	else
		sc_config_error(&check->error, n, "%s", msg);
	if (check->error == NULL)	/* out of memory: still an error */
		check->error = strdup("");
	return -1;
}

/* sc_config_validate - see config_int.h */
int
sc_config_validate(const struct sc_inst_conf *ic,
		   const struct sc_module *mod, const void *config,
		   char **error_r)
{
	struct sc_config_check check = { .ic = ic, .error = NULL };
	int r;

	*error_r = NULL;
	/* a module built for ABI 1.1 had a reserved (NULL) slot here */
	if (mod->abi_minor < 2 || mod->validate == NULL)
		return 0;
	r = mod->validate(config, &check);
	if (r == 0 && check.error == NULL)
		return 0;
	if (check.error != NULL && check.error[0] != '\0') {
		*error_r = check.error;
		return -1;
	}
	free(check.error);
	if (asprintf(error_r, "%s: module %s refused the configuration "
		     "without saying why", ic->file, mod->name) < 0)
		*error_r = NULL;
	return -1;
}
