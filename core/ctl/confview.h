/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/confview.h - the loaded config as `connect` and `doctor` read
 * it: the enabled instances of the plugins.d files, their listeners and
 * password files, the configured domains. Private to satchelctl.
 */
#ifndef SC_CTL_CONFVIEW_H
#define SC_CTL_CONFVIEW_H

#include "satchelctl.h"

enum lsn_tls { LSN_NONE, LSN_STARTTLS, LSN_IMPLICIT };

/* One configured listener of an smtp or pop3 instance. */
struct lsn {
	const char *proto;		/* "smtp" or "pop3" */
	bool submission;		/* smtp mode: submission */
	enum lsn_tls tls;
	struct sc_sockaddr addr;
	unsigned port;
	bool loopback;
	bool wildcard;
	const struct sc_inst_conf *ic;
};

struct lsn_list {
	size_t n;
	struct lsn v[64];
};

/* The scalar value of key in the YAML map, or NULL. */
const char *ystr(const struct sc_ynode *map, const char *key);
/* Is ic an enabled instance of module (with a map for its keys)? */
bool inst_enabled(const struct sc_inst_conf *ic, const char *module);
/* Has cfg an enabled instance of module? */
bool have_module(const struct sc_main_config *cfg, const char *module);
/* The listeners of the enabled smtp and pop3 instances, in file order. */
void lsn_collect(const struct sc_main_config *cfg, struct lsn_list *out);
/* The password files of the enabled auth_file instances (malloc'd, at
 * most max); returns how many. */
size_t auth_file_paths(const struct sc_main_config *cfg, char **out,
		       size_t max);
/* 1: the password file at path has a line for addr, 0: not, -1: cannot
 * be read (errno set); *accounts_r (when not NULL) counts its entries. */
int pwfile_has(const char *path, const char *addr, size_t *accounts_r);
/* Checks user@domain's shape and lower-cases it in place. */
bool addr_normalise(char *addr);
/* The `domains:` entry of domain, or NULL. */
const struct sc_domain_conf *domain_find(const struct sc_main_config *cfg,
					 const char *domain);

#endif
