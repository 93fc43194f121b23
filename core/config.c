/* SPDX-License-Identifier: MIT */
/*
 * core/config.c - satchel.yaml and its plugins.d includes: the main config
 * keys, include globs, the reserved per-instance keys and the file rules of
 * design.md D, on the node trees of config_yaml.c.
 * Runs on the main thread (start-up, satcheld -t, reload, satchelctl).
 */
#include "core.h"
#include "config_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct sc_main_config *current_config;

/* ---- the main config ---- */

struct main_raw {
	char *hostname;
	char *state_dir;
	char *module_dir;
	char *user;
	struct { int level; } log;
	struct { char *certificate, *key; } tls;
	struct { struct sc_str_list servers; } dns;
	uint64_t shutdown_grace;
	uint64_t delay_warning;
};

static const struct sc_config_key log_keys[] = {
	{ "level", SC_KEY_ENUM, 0, "info", 0, "log level",
	  "debug|info|notice|warning|error", NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static const struct sc_config_key tls_keys[] = {
	{ "certificate", SC_KEY_PATH, 0, NULL, 0,
	  "PEM certificate chain", NULL, NULL, 0 },
	{ "key", SC_KEY_PATH, sizeof(char *), NULL, 0,
	  "PEM private key", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static const struct sc_config_key dns_keys[] = {
	{ "servers", SC_KEY_STR_LIST, 0, NULL, 0,
	  "resolvers to forward to (ip or ip:port)", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static const struct sc_config_key main_keys[] = {
	{ "hostname", SC_KEY_STR, offsetof(struct main_raw, hostname), NULL,
	  0, "banner and EHLO name", NULL, NULL, 0 },
	{ "state_dir", SC_KEY_PATH, offsetof(struct main_raw, state_dir),
	  SC_STATEDIR, 0, "queue and module state", NULL, NULL, 0 },
	{ "module_dir", SC_KEY_PATH, offsetof(struct main_raw, module_dir),
	  SC_MODULEDIR, 0, "where NAME.so modules are", NULL, NULL, 0 },
	{ "user", SC_KEY_STR, offsetof(struct main_raw, user), "satchel", 0,
	  "user to drop to when started as root", NULL, NULL, 0 },
	{ "log", SC_KEY_OBJECT, offsetof(struct main_raw, log), NULL, 0,
	  "logging", NULL, log_keys, 0 },
	{ "tls", SC_KEY_OBJECT, offsetof(struct main_raw, tls), NULL, 0,
	  "certificate and key for every TLS listener", NULL, tls_keys, 0 },
	{ "dns", SC_KEY_OBJECT, offsetof(struct main_raw, dns), NULL, 0,
	  "resolver settings", NULL, dns_keys, 0 },
	{ "shutdown_grace", SC_KEY_DURATION,
	  offsetof(struct main_raw, shutdown_grace), "30s", 0,
	  "how long SIGTERM waits for sessions", NULL, NULL, 0 },
	{ "delay_warning", SC_KEY_DURATION,
	  offsetof(struct main_raw, delay_warning), "4h", 0,
	  "queued this long, a sender who asked (NOTIFY=DELAY) hears "
	  "of the delay; 0 never", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static const char *const main_skip[] = { "domains", "include", NULL };

static const char *const routing_names[] = {
	"none", "local", "backup", "remote", "auto"
};

/* routing is an index into "local|backup|remote|auto": enum - 1 */
struct domain_raw { int routing; };
static const struct sc_config_key domain_keys[] = {
	{ "routing", SC_KEY_ENUM, 0, "local", 0,
	  "who delivers the domain's mail", "local|backup|remote|auto",
	  NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* default_hostname - the machine's FQDN: gethostname, then the canonical
 * name from getaddrinfo (/etc/hosts first on a normal nsswitch).
 * XXX: on a reload this runs on the loop and may wait for DNS; only when
 * hostname is not configured, which the shipped config documents. */
static char *
default_hostname(void)
{
	struct addrinfo hints, *res = NULL;
	char name[256];
	char *out = NULL;

	if (gethostname(name, sizeof(name) - 1) < 0)
		return strdup("localhost");
	name[sizeof(name) - 1] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_flags = AI_CANONNAME;
	if (strchr(name, '.') == NULL &&
	    getaddrinfo(name, NULL, &hints, &res) == 0 && res != NULL &&
	    res->ai_canonname != NULL && res->ai_canonname[0] != '\0')
		out = strdup(res->ai_canonname);
	if (res != NULL)
		freeaddrinfo(res);
	return out != NULL ? out : strdup(name);
}

/* check_dns_server - "ip", "ip:port" or "[v6]:port" */
static bool
check_dns_server(const char *s)
{
	struct sc_sockaddr sa;
	unsigned char buf[16];
	char *tmp;
	bool ok;

	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return true;
	if (sc_parse_sockaddr(s, &sa) < 0 || s[0] == '*')
		return false;
	/* A hostname would need DNS to find DNS. */
	tmp = strdup(s);
	if (tmp == NULL)
		return false;
	*strrchr(tmp, ':') = '\0';
	ok = tmp[0] == '[' || inet_pton(AF_INET, tmp, buf) == 1;
	free(tmp);
	return ok;
}

/* user_is_root - whether name is an account with uid 0 (root by any
 * name): dropping to it keeps every privilege */
static bool
user_is_root(const char *name)
{
	struct passwd pw, *pwp = NULL;
	char buf[16384];

	if (strcmp(name, "root") == 0)
		return true;
	return getpwnam_r(name, &pw, buf, sizeof(buf), &pwp) == 0 &&
		pwp != NULL && pw.pw_uid == 0;
}

/* parse_domains - domains: {name: {routing: R}} (or name: R) */
static int
parse_domains(struct sc_main_config *cfg, const struct sc_ynode *node,
	      const char *dir, char **error_r)
{
	size_t i, j;

	if (sc_ynode_is_null(node))
		return 0;
	if (node->type != SC_YMAP) {
		sc_config_error(error_r, node, "domains: expected a map of "
				"domain: {routing: local|backup|remote|auto}");
		return -1;
	}
	cfg->domains = calloc(node->n, sizeof(*cfg->domains));
	if (node->n > 0 && cfg->domains == NULL) {
		sc_config_error(error_r, node, "out of memory");
		return -1;
	}
	for (i = 0; i < node->n; i++) {
		const struct sc_ynode *k = node->keys[i], *v = node->items[i];
		struct domain_raw raw = { 0 };
		char prefix[300];
		char *name;
		size_t len;

		name = strdup(k->scalar);
		if (name == NULL) {
			sc_config_error(error_r, k, "out of memory");
			return -1;
		}
		for (j = 0; name[j] != '\0'; j++)
			name[j] = (char)tolower((unsigned char)name[j]);
		len = strlen(name);
		if (len > 1 && name[len - 1] == '.')
			name[len - 1] = '\0';
		cfg->domains[cfg->domain_count].name = name;
		cfg->domain_count++;
		if (!sc_config_domain_valid(name)) {
			sc_config_error(error_r, k, "domains: '%s' is not a "
					"valid domain name", k->scalar);
			return -1;
		}
		for (j = 0; j + 1 < cfg->domain_count; j++) {
			if (strcmp(cfg->domains[j].name, name) != 0)
				continue;
			sc_config_error(error_r, k, "domains: '%s' is listed "
					"twice (first at line %u)", name,
					node->keys[j]->line);
			return -1;
		}
		snprintf(prefix, sizeof(prefix), "domains.%s", name);
		if (sc_ynode_is_null(v)) {
			/* a bare "example.test:" is a local domain */
		} else if (v->type == SC_YSCALAR) {
			/* shorthand: "example.test: local" */
			raw.routing = -1;
			for (j = 1; j < 5; j++)
				if (strcmp(v->scalar, routing_names[j]) == 0)
					raw.routing = (int)j - 1;
			if (raw.routing < 0) {
				sc_config_error(error_r, v, "%s.routing: "
						"expected one of local|backup|"
						"remote|auto, got '%s'",
						prefix, v->scalar);
				return -1;
			}
		} else if (sc_config_parse_map(v, prefix, dir, domain_keys,
					       NULL, false, &raw,
					       error_r) < 0) {
			return -1;
		}
		cfg->domains[i].routing =
			(enum sc_routing)(raw.routing + 1);
	}
	return 0;
}

/* default_domain - without a `domains:` key the server is the final
 * destination for its own name only, as Postfix's mydestination=$myhostname
 * and Debian's Postfix and Exim defaults: user@host.example.test works
 * out of the box, mail for example.test itself still goes to its MX. A
 * name without a dot (or localhost) is no mail domain: none then. */
static int
default_domain(struct sc_main_config *cfg, char **error_r)
{
	const char *h = cfg->hostname;

	if (strchr(h, '.') == NULL || strncasecmp(h, "localhost.", 10) == 0 ||
	    !sc_config_domain_valid(h))
		return 0;
	cfg->domains = calloc(1, sizeof(*cfg->domains));
	if (cfg->domains != NULL)
		cfg->domains[0].name = strdup(h);
	if (cfg->domains == NULL || cfg->domains[0].name == NULL) {
		sc_config_error(error_r, NULL, "out of memory");
		return -1;
	}
	for (char *p = cfg->domains[0].name; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	cfg->domains[0].routing = SC_ROUTING_LOCAL;
	cfg->domain_count = 1;
	return 0;
}

/* plugin_name_ok - design.md D: only [0-9A-Za-z._-]+\.yaml is read, so
 * package manager leftovers (.dpkg-old, ~, .rpmnew) never load */
static bool
plugin_name_ok(const char *name)
{
	size_t len = strlen(name), i;

	if (len <= 5 || strcmp(name + len - 5, ".yaml") != 0)
		return false;
	for (i = 0; i < len - 5; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '.' &&
		    name[i] != '_' && name[i] != '-')
			return false;
	return true;
}

static bool
ident_ok(const char *s, bool allow_punct)
{
	size_t i;

	if (s[0] == '\0' || strlen(s) > 64)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '_')
			continue;
		if (allow_punct && (isalnum(c) || c == '-' || c == '.'))
			continue;
		return false;
	}
	return true;
}

struct inst_raw {
	char *module;
	char *name;
	bool enabled;
	uint64_t hook_timeout;
};

static const struct sc_config_key inst_keys[] = {
	{ "module", SC_KEY_STR, offsetof(struct inst_raw, module), NULL,
	  SC_KEY_REQUIRED, "the module this file configures", NULL, NULL, 0 },
	{ "name", SC_KEY_STR, offsetof(struct inst_raw, name), NULL, 0,
	  "instance name in logs (default: the file stem)", NULL, NULL, 0 },
	{ "enabled", SC_KEY_BOOL, offsetof(struct inst_raw, enabled), "true",
	  0, "false: ship the file switched off", NULL, NULL, 0 },
	{ "hook_timeout", SC_KEY_DURATION,
	  offsetof(struct inst_raw, hook_timeout), "30s", 0,
	  "limit for one hook callback", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* load_instance - one plugins.d file into a new cfg->insts entry */
static int
load_instance(struct sc_main_config *cfg, const char *path, char **error_r)
{
	struct sc_ydoc *doc;
	const struct sc_ynode *root;
	struct sc_inst_conf *ic, *insts;
	struct inst_raw raw;
	const char *base;
	size_t i;

	if (sc_yaml_load_file(path, &doc, error_r) < 0)
		return -1;
	doc->next = cfg->yaml_docs;
	cfg->yaml_docs = doc;
	root = sc_yaml_root_map(doc, error_r);
	if (root == NULL)
		return -1;
	memset(&raw, 0, sizeof(raw));
	if (sc_config_parse_map(root, NULL, NULL, inst_keys, NULL, true,
				&raw, error_r) < 0)
		return -1;
	if (!ident_ok(raw.module, false)) {
		sc_config_error(error_r, sc_ynode_get(root, "module"),
				"module: '%s' is not a module name "
				"(lower-case letters, digits and _)",
				raw.module);
		sc_config_free_keys(inst_keys, &raw);
		return -1;
	}
	if (raw.name == NULL) {
		base = sc_config_path_base(path);
		raw.name = strndup(base, strlen(base) - 5);
		if (raw.name == NULL) {
			sc_config_error(error_r, NULL, "out of memory");
			sc_config_free_keys(inst_keys, &raw);
			return -1;
		}
	} else if (!ident_ok(raw.name, true)) {
		sc_config_error(error_r, sc_ynode_get(root, "name"),
				"name: '%s' is not a valid instance name "
				"(letters, digits, '.', '_' and '-')",
				raw.name);
		sc_config_free_keys(inst_keys, &raw);
		return -1;
	}
	for (i = 0; i < cfg->inst_count; i++) {
		const struct sc_ynode *where;

		if (strcmp(cfg->insts[i].name, raw.name) != 0)
			continue;
		where = sc_ynode_get(root, "name");
		if (where != NULL)
			sc_config_error(error_r, where, "instance name '%s' "
					"is already used by %s", raw.name,
					cfg->insts[i].file);
		else
			sc_config_ferror(error_r, path, 0, 0, "instance name "
					 "'%s' is already used by %s; set "
					 "'name:' to tell them apart",
					 raw.name, cfg->insts[i].file);
		sc_config_free_keys(inst_keys, &raw);
		return -1;
	}
	insts = reallocarray(cfg->insts, cfg->inst_count + 1, sizeof(*insts));
	if (insts == NULL) {
		sc_config_error(error_r, NULL, "out of memory");
		sc_config_free_keys(inst_keys, &raw);
		return -1;
	}
	cfg->insts = insts;
	ic = &insts[cfg->inst_count];
	memset(ic, 0, sizeof(*ic));
	ic->file = strdup(path);
	if (ic->file == NULL) {
		sc_config_error(error_r, NULL, "out of memory");
		sc_config_free_keys(inst_keys, &raw);
		return -1;
	}
	ic->module = raw.module;
	ic->name = raw.name;
	ic->enabled = raw.enabled;
	ic->hook_timeout_ms = raw.hook_timeout;
	ic->root = doc->root;
	cfg->inst_count++;
	return 0;
}

static bool
has_glob_magic(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* glob_error - a missing directory is an empty match; an unreadable one
 * aborts the glob, so a permission mistake never drops plugins silently */
static int
glob_error(const char *epath, int eerrno)
{
	return eerrno != ENOENT && eerrno != ENOTDIR;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* include_pattern - loads the files one include glob matches, sorted
 * bytewise (not by locale) so the hook order never depends on LANG */
static int
include_pattern(struct sc_main_config *cfg, const struct sc_ynode *pat,
		const char *dir, char **error_r)
{
	glob_t g;
	char *full;
	size_t i, j;
	bool magic;
	int ret = -1, rc;

	if (pat->type != SC_YSCALAR || pat->scalar[0] == '\0') {
		sc_config_error(error_r, pat, "include: expected a file name "
				"or glob such as plugins.d/*.yaml");
		return -1;
	}
	full = sc_config_path_join(dir, pat->scalar);
	if (full == NULL) {
		sc_config_error(error_r, pat, "out of memory");
		return -1;
	}
	magic = has_glob_magic(pat->scalar);
	memset(&g, 0, sizeof(g));
	rc = glob(full, 0, glob_error, &g);
	if (rc == GLOB_NOMATCH) {
		if (magic) {
			ret = 0;
		} else {
			sc_config_error(error_r, pat, "include: %s: %s", full,
					strerror(ENOENT));
		}
		goto out;
	}
	if (rc != 0) {
		sc_config_error(error_r, pat, "include: cannot read %s: %s",
				full, rc == GLOB_NOSPACE ? "out of memory" :
				"a directory is not readable");
		goto out;
	}
	qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), cmp_str);
	for (i = 0; i < g.gl_pathc; i++) {
		const char *p = g.gl_pathv[i];
		bool seen = false;

		if (!plugin_name_ok(sc_config_path_base(p))) {
			if (magic)
				continue;
			sc_config_error(error_r, pat, "include: %s: only "
					"files named [0-9A-Za-z._-]+.yaml "
					"are read", p);
			goto out;
		}
		/* Two globs naming one file load it once; a glob that
		 * catches satchel.yaml itself does not make it a module. */
		seen = strcmp(p, cfg->file) == 0;
		for (j = 0; j < cfg->inst_count && !seen; j++)
			seen = strcmp(cfg->insts[j].file, p) == 0;
		if (!seen && load_instance(cfg, p, error_r) < 0)
			goto out;
	}
	ret = 0;
out:
	globfree(&g);
	free(full);
	return ret;
}

/* parse_main - the keys of satchel.yaml itself */
static int
parse_main(struct sc_main_config *cfg, const struct sc_ynode *root,
	   const char *dir, char **error_r)
{
	const struct sc_ynode *tls, *dns, *inc;
	struct main_raw raw;
	size_t i;

	memset(&raw, 0, sizeof(raw));
	if (sc_config_parse_map(root, NULL, dir, main_keys, main_skip, false,
				&raw, error_r) < 0)
		return -1;
	if (raw.hostname != NULL && !sc_config_domain_valid(raw.hostname)) {
		sc_config_error(error_r, sc_ynode_get(root, "hostname"),
				"hostname: '%s' is not a valid host name",
				raw.hostname);
		goto fail;
	}
	if (raw.user != NULL && raw.user[0] != '\0' &&
	    user_is_root(raw.user)) {
		const struct sc_ynode *at = sc_ynode_get(root, "user");
#define USER_ROOT_MSG "user: '%s' has uid 0: satcheld would keep every " \
	"privilege after binding its ports; create a system user for it " \
	"(adduser --system --group satchel) and set `user: satchel`, or, " \
	"when satcheld is not started as root, set `user: \"\"`"
		if (at != NULL)
			sc_config_error(error_r, at, USER_ROOT_MSG, raw.user);
		else
			sc_config_ferror(error_r, cfg->file, 0, 0,
					 USER_ROOT_MSG, raw.user);
#undef USER_ROOT_MSG
		goto fail;
	}
	tls = sc_ynode_get(root, "tls");
	if ((raw.tls.certificate == NULL) != (raw.tls.key == NULL)) {
		sc_config_error(error_r, tls, "tls: give both certificate "
				"and key, or neither (to use a generated "
				"certificate)");
		goto fail;
	}
	dns = sc_ynode_get(sc_ynode_get(root, "dns"), "servers");
	for (i = 0; i < raw.dns.servers.n; i++) {
		const struct sc_ynode *at = dns;

		if (at != NULL && at->type == SC_YSEQ && i < at->n)
			at = at->items[i];
		if (!check_dns_server(raw.dns.servers.v[i])) {
			sc_config_error(error_r, at, "dns.servers[%zu]: "
					"expected an IP address with an "
					"optional port (127.0.0.1:5353, "
					"[::1]:53), got '%s'", i,
					raw.dns.servers.v[i]);
			goto fail;
		}
	}
	cfg->hostname = raw.hostname != NULL ? raw.hostname :
			default_hostname();
	raw.hostname = NULL;
	cfg->state_dir = raw.state_dir;
	cfg->module_dir = raw.module_dir;
	cfg->user = raw.user != NULL ? raw.user : strdup("");
	cfg->log_level = raw.log.level;
	cfg->tls_certificate = raw.tls.certificate;
	cfg->tls_key = raw.tls.key;
	cfg->dns_servers = raw.dns.servers;
	cfg->shutdown_grace_ms = raw.shutdown_grace;
	cfg->delay_warning_ms = raw.delay_warning;
	memset(&raw, 0, sizeof(raw));
	if (cfg->hostname == NULL || cfg->user == NULL) {
		sc_config_error(error_r, NULL, "out of memory");
		return -1;
	}

	if (sc_ynode_get(root, "domains") == NULL) {
		if (default_domain(cfg, error_r) < 0)
			return -1;
	} else if (parse_domains(cfg, sc_ynode_get(root, "domains"), dir,
				 error_r) < 0) {
		return -1;
	}
	inc = sc_ynode_get(root, "include");
	if (sc_ynode_is_null(inc))
		return 0;
	if (inc->type == SC_YSCALAR)
		return include_pattern(cfg, inc, dir, error_r);
	if (inc->type != SC_YSEQ) {
		sc_config_error(error_r, inc, "include: expected a glob or a "
				"list of globs");
		return -1;
	}
	for (i = 0; i < inc->n; i++)
		if (include_pattern(cfg, inc->items[i], dir, error_r) < 0)
			return -1;
	return 0;
fail:
	sc_config_free_keys(main_keys, &raw);
	return -1;
}

int
sc_main_config_load(const char *path, struct sc_main_config **cfg_r,
		    char **error_r)
{
	struct sc_main_config *cfg;
	struct sc_ydoc *doc;
	const struct sc_ynode *root;
	char *dir = NULL;

	*error_r = NULL;
	cfg = calloc(1, sizeof(*cfg));
	if (cfg == NULL || (cfg->file = sc_config_path_absolute(path)) == NULL ||
	    (dir = sc_config_dirname(cfg->file)) == NULL) {
		sc_config_ferror(error_r, path, 0, 0, "cannot make the "
				 "path absolute: %s", strerror(errno));
		goto fail;
	}
	if (sc_yaml_load_file(cfg->file, &doc, error_r) < 0)
		goto fail;
	cfg->yaml_docs = doc;
	root = sc_yaml_root_map(doc, error_r);
	if (root == NULL || parse_main(cfg, root, dir, error_r) < 0)
		goto fail;
	free(dir);
	*cfg_r = cfg;
	return 0;
fail:
	if (*error_r == NULL)
		sc_config_error(error_r, NULL, "%s: out of memory", path);
	free(dir);
	sc_main_config_free(&cfg);
	return -1;
}

void
sc_main_config_free(struct sc_main_config **cfgp)
{
	struct sc_main_config *cfg = *cfgp;
	size_t i;

	if (cfg == NULL)
		return;
	*cfgp = NULL;
	if (current_config == cfg)
		current_config = NULL;
	free(cfg->file);
	free(cfg->hostname);
	free(cfg->state_dir);
	free(cfg->module_dir);
	free(cfg->user);
	free(cfg->tls_certificate);
	free(cfg->tls_key);
	for (i = 0; i < cfg->dns_servers.n; i++)
		free(cfg->dns_servers.v[i]);
	free(cfg->dns_servers.v);
	for (i = 0; i < cfg->domain_count; i++)
		free(cfg->domains[i].name);
	free(cfg->domains);
	for (i = 0; i < cfg->inst_count; i++) {
		free(cfg->insts[i].file);
		free(cfg->insts[i].module);
		free(cfg->insts[i].name);
	}
	free(cfg->insts);
	sc_ydoc_free(cfg->yaml_docs);
	free(cfg);
}

/* ---- the current config, for the public getters ---- */

void
sc_config_set_current(const struct sc_main_config *cfg)
{
	current_config = cfg;
}

const char *
sc_config_hostname(void)
{
	return current_config != NULL ? current_config->hostname :
	       "localhost";
}

const char *
sc_config_state_dir(void)
{
	return current_config != NULL ? current_config->state_dir :
	       SC_STATEDIR;
}

const char *
sc_config_user(void)
{
	return current_config != NULL ? current_config->user : "";
}

/* sc_config_delay_warning_ms - see core.h */
uint64_t
sc_config_delay_warning_ms(void)
{
	return current_config != NULL ? current_config->delay_warning_ms :
		SC_DELAY_WARNING_MS;
}

enum sc_routing
sc_config_domain_routing(const char *domain)
{
	const struct sc_main_config *cfg = current_config;
	size_t i, len;

	if (cfg == NULL || domain == NULL)
		return SC_ROUTING_NONE;
	len = strlen(domain);
	if (len > 1 && domain[len - 1] == '.')
		len--;
	for (i = 0; i < cfg->domain_count; i++)
		if (strlen(cfg->domains[i].name) == len &&
		    strncasecmp(cfg->domains[i].name, domain, len) == 0)
			return cfg->domains[i].routing;
	return SC_ROUTING_NONE;
}

const char *
sc_config_domain(size_t index)
{
	const struct sc_main_config *cfg = current_config;

	if (cfg == NULL || index >= cfg->domain_count)
		return NULL;
	return cfg->domains[index].name;
}

const char *
sc_routing_name(enum sc_routing r)
{
	if ((unsigned)r >= sizeof(routing_names) / sizeof(routing_names[0]))
		return "none";
	return routing_names[r];
}
