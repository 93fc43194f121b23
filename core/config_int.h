/* SPDX-License-Identifier: MIT */
/*
 * core/config_int.h - what config.c (the main config and its includes)
 * uses of config_yaml.c (files into node trees) beyond core.h.
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

#endif
