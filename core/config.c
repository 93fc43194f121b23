/* SPDX-License-Identifier: MIT */
/*
 * core/config.c - satchel.yaml and its plugins.d includes: libyaml events
 * into node trees that keep FILE:LINE:COL, the main config keys, include
 * globs, the reserved per-instance keys and the file rules of design.md D.
 * Runs on the main thread (start-up, satcheld -t, reload, satchelctl).
 */
#include "core.h"

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

/* Deeper nesting than this is no config anyone writes by hand; the limit
 * keeps the recursive walkers far from the stack's end. */
#define SC_YAML_MAX_DEPTH 32
/* A config file bigger than this is a mistake (or an attack on -t). */
#define SC_CONFIG_MAX_SIZE (4u * 1024 * 1024)

static const struct sc_main_config *current_config;

/* ---- errors ---- */

/* sc_config_verror - "FILE:LINE:COL: message" into a malloc'd *error_r */
static void
sc_config_verror(char **error_r, const char *file, unsigned line,
		 unsigned col, const char *fmt, va_list ap)
{
	char msg[1024];
	char *out;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (error_r == NULL)
		return;
	if (file == NULL)
		out = strdup(msg);
	else if (line == 0)
		out = (asprintf(&out, "%s: %s", file, msg) < 0) ? NULL : out;
	else
		out = (asprintf(&out, "%s:%u:%u: %s", file, line, col,
				msg) < 0) ? NULL : out;
	*error_r = out;
}

static void SC_PRINTF(5, 6)
sc_config_ferror(char **error_r, const char *file, unsigned line,
		 unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	sc_config_verror(error_r, file, line, col, fmt, ap);
	va_end(ap);
}

/* sc_config_error - error at node n's position (n may be NULL) */
void
sc_config_error(char **error_r, const struct sc_ynode *n, const char *fmt,
		...)
{
	va_list ap;

	va_start(ap, fmt);
	if (n == NULL)
		sc_config_verror(error_r, NULL, 0, 0, fmt, ap);
	else
		sc_config_verror(error_r, n->file, n->line, n->col, fmt, ap);
	va_end(ap);
}

/* ---- paths ---- */

/* sc_config_path_join - path made absolute against dir (malloc'd) */
char *
sc_config_path_join(const char *dir, const char *path)
{
	char *out;

	while (path[0] == '.' && path[1] == '/')
		path += 2;
	if (path[0] == '/' || dir == NULL || dir[0] == '\0')
		return strdup(path);
	if (strcmp(path, ".") == 0 || path[0] == '\0')
		return strdup(dir);
	if (asprintf(&out, "%s%s%s", dir,
		     dir[strlen(dir) - 1] == '/' ? "" : "/", path) < 0)
		return NULL;
	return out;
}

/* sc_config_dirname - the directory part of path, "." when none */
char *
sc_config_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

/* absolute_path - path made absolute against the working directory, so
 * the result stays right after the daemon changes directory */
static char *
absolute_path(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	return sc_config_path_join(cwd, path);
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash == NULL ? path : slash + 1;
}

/* ---- nodes ---- */

bool
sc_ynode_is_null(const struct sc_ynode *n)
{
	if (n == NULL)
		return true;
	if (n->type != SC_YSCALAR || n->quoted)
		return false;
	return n->scalar[0] == '\0' || strcmp(n->scalar, "~") == 0 ||
	       strcmp(n->scalar, "null") == 0 ||
	       strcmp(n->scalar, "Null") == 0 ||
	       strcmp(n->scalar, "NULL") == 0;
}

/* sc_ynode_get - the value of key in map, or NULL */
const struct sc_ynode *
sc_ynode_get(const struct sc_ynode *map, const char *key)
{
	size_t i;

	if (map == NULL || map->type != SC_YMAP)
		return NULL;
	for (i = 0; i < map->n; i++)
		if (strcmp(map->keys[i]->scalar, key) == 0)
			return map->items[i];
	return NULL;
}

/* ynode_free - frees n and everything below it (iterative on the spine
 * would be nicer; depth is capped at SC_YAML_MAX_DEPTH instead) */
static void
ynode_free(struct sc_ynode *n)
{
	size_t i;

	if (n == NULL)
		return;
	for (i = 0; i < n->n; i++) {
		ynode_free(n->items[i]);
		if (n->keys != NULL)
			ynode_free(n->keys[i]);
	}
	free(n->items);
	free(n->keys);
	free(n->scalar);
	free(n);
}

void
sc_ydoc_free(struct sc_ydoc *doc)
{
	struct sc_ydoc *next;

	for (; doc != NULL; doc = next) {
		next = doc->next;
		ynode_free(doc->root);
		free(doc->file);
		free(doc);
	}
}

/* ---- the YAML reader ---- */

struct ybuild_level {
	struct sc_ynode *node;
	size_t cap;
	struct sc_ynode *pending_key;	/* MAP: key waiting for its value */
};

struct ybuild {
	const char *file;
	struct ybuild_level stack[SC_YAML_MAX_DEPTH];
	size_t depth;
	struct sc_ynode *root;
};

static struct sc_ynode *
ynode_new(const char *file, enum sc_ynode_type type, const yaml_mark_t *m)
{
	struct sc_ynode *n = calloc(1, sizeof(*n));

	if (n == NULL)
		return NULL;
	n->type = type;
	n->file = file;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	return n;
}

/* ybuild_add - attaches n below the innermost open container; on error n
 * is freed and *error_r set */
static int
ybuild_add(struct ybuild *b, struct sc_ynode *n, char **error_r)
{
	struct ybuild_level *lv;
	struct sc_ynode *c;
	size_t i;

	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	lv = &b->stack[b->depth - 1];
	c = lv->node;
	if (c->type == SC_YMAP && lv->pending_key == NULL) {
		if (n->type != SC_YSCALAR) {
			sc_config_error(error_r, n,
					"a key must be a plain name, not %s",
					n->type == SC_YMAP ? "a map" :
					"a list");
			ynode_free(n);
			return -1;
		}
		for (i = 0; i < c->n; i++) {
			if (strcmp(c->keys[i]->scalar, n->scalar) != 0)
				continue;
			sc_config_error(error_r, n,
					"duplicate key '%s' (first at "
					"line %u)", n->scalar,
					c->keys[i]->line);
			ynode_free(n);
			return -1;
		}
		lv->pending_key = n;
		return 0;
	}
	if (c->n == lv->cap) {
		size_t cap = lv->cap == 0 ? 4 : lv->cap * 2;
		struct sc_ynode **items, **keys;

		items = reallocarray(c->items, cap, sizeof(*items));
		if (items == NULL)
			goto nomem;
		c->items = items;
		if (c->type == SC_YMAP) {
			keys = reallocarray(c->keys, cap, sizeof(*keys));
			if (keys == NULL)
				goto nomem;
			c->keys = keys;
		}
		lv->cap = cap;
	}
	if (c->type == SC_YMAP) {
		c->keys[c->n] = lv->pending_key;
		lv->pending_key = NULL;
	}
	c->items[c->n++] = n;
	return 0;
nomem:
	sc_config_error(error_r, n, "out of memory");
	ynode_free(n);
	return -1;
}

/* yaml_read - runs the libyaml parser over p into *root_r */
static int
yaml_read(yaml_parser_t *p, const char *file, struct sc_ynode **root_r,
	  char **error_r)
{
	struct ybuild b;
	yaml_event_t ev;
	struct sc_ynode *n;
	unsigned docs = 0;
	bool done = false;
	int ret = -1;

	memset(&b, 0, sizeof(b));
	b.file = file;
	while (!done) {
		if (!yaml_parser_parse(p, &ev)) {
			const char *ctx = p->context;

			sc_config_ferror(error_r, file,
					 (unsigned)p->problem_mark.line + 1,
					 (unsigned)p->problem_mark.column + 1,
					 "YAML syntax error: %s%s%s%s",
					 p->problem != NULL ? p->problem :
					 "unknown problem",
					 ctx != NULL ? " (" : "",
					 ctx != NULL ? ctx : "",
					 ctx != NULL ? ")" : "");
			goto out;
		}
		n = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (docs++ > 0) {
				sc_config_ferror(error_r, file,
					(unsigned)ev.start_mark.line + 1,
					(unsigned)ev.start_mark.column + 1,
					"only one YAML document per file "
					"is allowed");
				goto out_ev;
			}
			break;
		case YAML_ALIAS_EVENT:
			sc_config_ferror(error_r, file,
					 (unsigned)ev.start_mark.line + 1,
					 (unsigned)ev.start_mark.column + 1,
					 "YAML aliases (*%s) are not supported;"
					 " write the value out",
					 (const char *)ev.data.alias.anchor);
			goto out_ev;
		case YAML_SCALAR_EVENT:
			if (memchr(ev.data.scalar.value, '\0',
				   ev.data.scalar.length) != NULL) {
				sc_config_ferror(error_r, file,
					(unsigned)ev.start_mark.line + 1,
					(unsigned)ev.start_mark.column + 1,
					"a NUL character is not allowed in a "
					"value");
				goto out_ev;
			}
			n = ynode_new(file, SC_YSCALAR, &ev.start_mark);
			if (n == NULL ||
			    (n->scalar = strndup((const char *)
						 ev.data.scalar.value,
						 ev.data.scalar.length)) ==
			    NULL)
				goto nomem;
			n->quoted = ev.data.scalar.style !=
				    YAML_PLAIN_SCALAR_STYLE;
			if (ybuild_add(&b, n, error_r) < 0)
				goto out_ev;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (b.depth == SC_YAML_MAX_DEPTH) {
				sc_config_ferror(error_r, file,
					(unsigned)ev.start_mark.line + 1,
					(unsigned)ev.start_mark.column + 1,
					"nested deeper than %d levels",
					SC_YAML_MAX_DEPTH);
				goto out_ev;
			}
			n = ynode_new(file, ev.type == YAML_MAPPING_START_EVENT
				      ? SC_YMAP : SC_YSEQ, &ev.start_mark);
			if (n == NULL)
				goto nomem;
			if (ybuild_add(&b, n, error_r) < 0)
				goto out_ev;
			b.stack[b.depth].node = n;
			b.stack[b.depth].cap = 0;
			b.stack[b.depth].pending_key = NULL;
			b.depth++;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (b.depth > 0)
				b.depth--;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	*root_r = b.root;
	b.root = NULL;
	ret = 0;
	goto out;
nomem:
	free(n);
	sc_config_ferror(error_r, file, 0, 0, "out of memory");
out_ev:
	yaml_event_delete(&ev);
out:
	/* A pending key is not attached to its map yet: free it apart. */
	while (b.depth > 0)
		ynode_free(b.stack[--b.depth].pending_key);
	ynode_free(b.root);
	return ret;
}

/* sc_yaml_parse_string - parses text (named name in errors) into *doc_r */
int
sc_yaml_parse_string(const char *text, const char *name,
		     struct sc_ydoc **doc_r, char **error_r)
{
	struct sc_ydoc *doc;
	yaml_parser_t p;
	int ret;

	doc = calloc(1, sizeof(*doc));
	if (doc == NULL || (doc->file = strdup(name)) == NULL) {
		free(doc);
		sc_config_error(error_r, NULL, "out of memory");
		return -1;
	}
	if (!yaml_parser_initialize(&p)) {
		sc_ydoc_free(doc);
		sc_config_error(error_r, NULL, "out of memory");
		return -1;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text,
				     strlen(text));
	ret = yaml_read(&p, doc->file, &doc->root, error_r);
	yaml_parser_delete(&p);
	if (ret < 0) {
		sc_ydoc_free(doc);
		return -1;
	}
	*doc_r = doc;
	return 0;
}

/* check_file_safe - the Postfix dynamicmaps rule: a config file that
 * someone other than root (or us) can change would let them load code
 * into the daemon, so refuse it and say how to fix it */
static int
check_file_safe(int fd, const char *path, char **error_r)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		sc_config_ferror(error_r, path, 0, 0, "cannot stat: %s",
				 strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		sc_config_ferror(error_r, path, 0, 0,
				 "not a regular file");
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		sc_config_ferror(error_r, path, 0, 0,
				 "owned by uid %u; a config file must be "
				 "owned by root or uid %u (fix: chown root "
				 "%s)", (unsigned)st.st_uid,
				 (unsigned)geteuid(), path);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		sc_config_ferror(error_r, path, 0, 0,
				 "writable by group or others; a config file "
				 "must not be (fix: chmod go-w %s)", path);
		return -1;
	}
	if ((uint64_t)st.st_size > SC_CONFIG_MAX_SIZE) {
		sc_config_ferror(error_r, path, 0, 0,
				 "too big for a config file (%lld bytes)",
				 (long long)st.st_size);
		return -1;
	}
	return 0;
}

/* yaml_load_file - reads path (absolute) into a new doc after the
 * ownership and mode checks */
static int
yaml_load_file(const char *path, struct sc_ydoc **doc_r, char **error_r)
{
	struct sc_ydoc *doc;
	yaml_parser_t p;
	FILE *fp;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		sc_config_ferror(error_r, path, 0, 0, "cannot open: %s",
				 strerror(errno));
		return -1;
	}
	if (check_file_safe(fd, path, error_r) < 0) {
		close(fd);
		return -1;
	}
	fp = fdopen(fd, "r");
	if (fp == NULL) {
		close(fd);
		sc_config_ferror(error_r, path, 0, 0, "cannot open: %s",
				 strerror(errno));
		return -1;
	}
	doc = calloc(1, sizeof(*doc));
	if (doc == NULL || (doc->file = strdup(path)) == NULL ||
	    !yaml_parser_initialize(&p)) {
		if (doc != NULL)
			free(doc->file);
		free(doc);
		fclose(fp);
		sc_config_error(error_r, NULL, "out of memory");
		return -1;
	}
	yaml_parser_set_input_file(&p, fp);
	ret = yaml_read(&p, doc->file, &doc->root, error_r);
	yaml_parser_delete(&p);
	fclose(fp);
	if (ret < 0) {
		sc_ydoc_free(doc);
		return -1;
	}
	*doc_r = doc;
	return 0;
}

/* doc_root_map - the document's top-level map; an empty file counts as
 * an empty map at 1:1 (allocated into the doc) */
static const struct sc_ynode *
doc_root_map(struct sc_ydoc *doc, char **error_r)
{
	if (doc->root == NULL || sc_ynode_is_null(doc->root)) {
		yaml_mark_t m = { 0, 0, 0 };
		struct sc_ynode *n = ynode_new(doc->file, SC_YMAP, &m);

		if (n == NULL) {
			sc_config_error(error_r, NULL, "out of memory");
			return NULL;
		}
		ynode_free(doc->root);
		doc->root = n;
	}
	if (doc->root->type != SC_YMAP) {
		sc_config_error(error_r, doc->root,
				"expected a map of settings (key: value) at "
				"the top level, got %s",
				doc->root->type == SC_YSEQ ? "a list" :
				"a single value");
		return NULL;
	}
	return doc->root;
}

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

	if (yaml_load_file(path, &doc, error_r) < 0)
		return -1;
	doc->next = cfg->yaml_docs;
	cfg->yaml_docs = doc;
	root = doc_root_map(doc, error_r);
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
		base = base_name(path);
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

		if (!plugin_name_ok(base_name(p))) {
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
	if (cfg == NULL || (cfg->file = absolute_path(path)) == NULL ||
	    (dir = sc_config_dirname(cfg->file)) == NULL) {
		sc_config_ferror(error_r, path, 0, 0, "cannot make the "
				 "path absolute: %s", strerror(errno));
		goto fail;
	}
	if (yaml_load_file(cfg->file, &doc, error_r) < 0)
		goto fail;
	cfg->yaml_docs = doc;
	root = doc_root_map(doc, error_r);
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
