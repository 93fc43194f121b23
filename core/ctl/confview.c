/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/confview.c - what `connect` and `doctor` read from the loaded
 * config (the YAML trees of the plugins.d files): enabled instances, the
 * listeners of smtp and pop3, the auth_file password files and the
 * accounts in them, the configured domains. satchelctl process,
 * single-threaded.
 */
#include "confview.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* ystr - the scalar value of key in map, or NULL */
const char *
ystr(const struct sc_ynode *map, const char *key)
{
	const struct sc_ynode *n;

	if (map == NULL || map->type != SC_YMAP)
		return NULL;
	n = sc_ynode_get(map, key);
	if (n == NULL || n->type != SC_YSCALAR || sc_ynode_is_null(n))
		return NULL;
	return n->scalar;
}

/* inst_enabled - is ic an enabled instance of module? */
bool
inst_enabled(const struct sc_inst_conf *ic, const char *module)
{
	return ic->enabled && ic->module != NULL &&
		strcmp(ic->module, module) == 0 && ic->root != NULL &&
		ic->root->type == SC_YMAP;
}

bool
have_module(const struct sc_main_config *cfg, const char *module)
{
	for (size_t i = 0; i < cfg->inst_count; i++)
		if (inst_enabled(&cfg->insts[i], module))
			return true;
	return false;
}

static bool
sa_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)ss;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return s6->sin6_addr.s6_addr[12] == 127;
		return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
	}
	return false;
}

static bool
sa_wildcard(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)ss)
			->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
			&((const struct sockaddr_in6 *)(const void *)ss)
			->sin6_addr);
	return false;
}

static unsigned
sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)ss)
			     ->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)ss)
			     ->sin6_port);
	return 0;
}

/* lsn_collect - the `listen` entries of every enabled smtp and pop3
 * instance, in file order. Entries that do not parse are skipped (check
 * reports them). */
void
lsn_collect(const struct sc_main_config *cfg, struct lsn_list *out)
{
	static const char *const protos[] = { "smtp", "pop3" };

	out->n = 0;
	for (size_t i = 0; i < cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &cfg->insts[i];
		const struct sc_ynode *list;
		const char *proto = NULL;

		for (size_t p = 0; p < 2; p++)
			if (inst_enabled(ic, protos[p]))
				proto = protos[p];
		if (proto == NULL)
			continue;
		list = sc_ynode_get(ic->root, "listen");
		if (list == NULL || list->type != SC_YSEQ)
			continue;
		for (size_t k = 0; k < list->n &&
			     out->n < sizeof(out->v) / sizeof(out->v[0]); k++) {
			const struct sc_ynode *m = list->items[k];
			const char *a = ystr(m, "address");
			const char *mode = ystr(m, "mode");
			const char *tls = ystr(m, "tls");
			struct lsn *l = &out->v[out->n];

			memset(l, 0, sizeof(*l));
			if (a == NULL || sc_parse_sockaddr(a, &l->addr) < 0)
				continue;
			l->proto = proto;
			l->ic = ic;
			l->submission = strcmp(proto, "smtp") == 0 &&
				mode != NULL && strcmp(mode, "submission") == 0;
			l->tls = LSN_STARTTLS;
			if (tls != NULL && strcmp(tls, "none") == 0)
				l->tls = LSN_NONE;
			else if (tls != NULL && strcmp(tls, "implicit") == 0)
				l->tls = LSN_IMPLICIT;
			l->port = sa_port(&l->addr.ss);
			l->loopback = sa_loopback(&l->addr.ss);
			l->wildcard = sa_wildcard(&l->addr.ss);
			out->n++;
		}
	}
}

/* auth_file_paths - the password file of every enabled auth_file instance
 * (malloc'd strings, n_r of them, at most max); relative paths are taken
 * against the plugins.d file's directory, as the key parser does */
size_t
auth_file_paths(const struct sc_main_config *cfg, char **out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->inst_count && n < max; i++) {
		const struct sc_inst_conf *ic = &cfg->insts[i];
		const char *path;
		char *dir;

		if (!inst_enabled(ic, "auth_file"))
			continue;
		path = ystr(ic->root, "path");
		if (path == NULL || *path == '\0')
			continue;
		dir = sc_config_dirname(ic->file);
		out[n] = dir != NULL ? sc_config_path_join(dir, path) : NULL;
		free(dir);
		if (out[n] != NULL)
			n++;
	}
	return n;
}

/* pwfile_has - 1 when the password file at path has a line for addr, 0
 * when not, -1 when it cannot be read (errno set) */
int
pwfile_has(const char *path, const char *addr, size_t *accounts_r)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0, alen = strlen(addr), accounts = 0;
	ssize_t len;
	int found = 0;

	if (f == NULL)
		return -1;
	while ((len = getline(&line, &cap, f)) > 0) {
		const char *p = line;
		const char *colon;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\0')
			continue;
		colon = strchr(p, ':');
		if (colon == NULL)
			continue;
		accounts++;
		if ((size_t)(colon - p) == alen &&
		    strncasecmp(p, addr, alen) == 0)
			found = 1;
	}
	free(line);
	fclose(f);
	if (accounts_r != NULL)
		*accounts_r = accounts;
	return found;
}

/* addr_normalise - checks ADDR's shape and lower-cases it in place */
bool
addr_normalise(char *addr)
{
	char *at = strchr(addr, '@');

	if (at == NULL || at == addr || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || strlen(addr) > 254 ||
	    at - addr > 64)
		return false;
	for (char *p = addr; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c >= 0x7f || c == ':' || c == '"' ||
		    c == '\\' || c == '<' || c == '>' || c == ',' ||
		    c == ';')
			return false;
		*p = (char)tolower(c);
	}
	return true;
}

const struct sc_domain_conf *
domain_find(const struct sc_main_config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->domain_count; i++)
		if (strcasecmp(cfg->domains[i].name, domain) == 0)
			return &cfg->domains[i];
	return NULL;
}
