/* SPDX-License-Identifier: MIT */
/*
 * core/config_int.h - what the config files share beyond core.h: config.c
 * (the main config and its includes) uses config_yaml.c (files into node
 * trees); config_keys.c and module.c use config_check.c (constraints,
 * reserved names, the modules' validate callbacks).
 */
#ifndef SATCHEL_CONFIG_INT_H
#define SATCHEL_CONFIG_INT_H

#include "core.h"

/* "FILE:LINE:COL: message" (LINE and COL left out when 0) into a malloc'd
 * *error_r */
SC_INTERNAL void sc_config_ferror(char **error_r, const char *file,
				  unsigned line, unsigned col,
				  const char *fmt, ...) SC_PRINTF(5, 6);
/* path made absolute against the working directory (malloc'd), or NULL */
SC_INTERNAL char *sc_config_path_absolute(const char *path);
/* the last component of path */
SC_INTERNAL const char *sc_config_path_base(const char *path);
/* Reads path (absolute) into a new doc after the owner, mode and size
 * checks. 0, or -1 with *error_r. */
SC_INTERNAL int sc_yaml_load_file(const char *path, struct sc_ydoc **doc_r,
				  char **error_r);
/* The document's top-level map (an empty file: an empty map at 1:1), or
 * NULL with *error_r. */
SC_INTERNAL const struct sc_ynode *sc_yaml_root_map(struct sc_ydoc *doc,
						    char **error_r);


/* ---- config_values.c ---- */

/* decimal digits only, with overflow check: 0, or -1; *end_r gets the
 * first non-digit */
SC_INTERNAL int sc_config_parse_u64(const char *s, uint64_t *v_r,
				    const char **end_r);

/* ---- config_check.c: after a module's values parsed ---- */

/* The names the core keeps in every plugins.d file (NULL-terminated). */
SC_INTERNAL const char *const *sc_config_reserved_keys(void);
/* -1 with *error_r (malloc'd; NULL: out of memory) when a module's key
 * table declares a reserved name, else 0. */
SC_INTERNAL int sc_config_keys_reserved_check(const struct sc_config_key *keys,
					      char **error_r);
/* The key's constraints (SC_KEY_NONEMPTY, SC_KEY_HOSTNAME, range) on the
 * value parsed from n into field. 0, or -1 with a FILE:LINE:COL error. */
SC_INTERNAL int sc_config_key_constraints(const struct sc_config_key *key,
					  const struct sc_ynode *n,
					  const char *path, const void *field,
					  char **error_r);
/* Runs mod's validate callback on the parsed config of ic. 0, or -1 with
 * *error_r (FILE:LINE:COL: ...). */
SC_INTERNAL int sc_config_validate(const struct sc_inst_conf *ic,
				   const struct sc_module *mod,
				   const void *config, char **error_r);

#endif
