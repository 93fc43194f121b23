/* SPDX-License-Identifier: MIT */
/*
 * core/config_yaml.c - YAML files into node trees: libyaml events into
 * sc_ynode trees that keep FILE:LINE:COL, the "FILE:LINE:COL: message"
 * errors, the path helpers, and the safety checks a config file passes
 * before it is read (owner, mode, size). Main thread (start-up, -t,
 * reload, satchelctl).
 */
#include "core.h"
#include "config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper nesting than this is no config anyone writes by hand; the limit
 * keeps the recursive walkers far from the stack's end. */
#define SC_YAML_MAX_DEPTH 32
/* A config file bigger than this is a mistake (or an attack on -t). */
#define SC_CONFIG_MAX_SIZE (4u * 1024 * 1024)

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

void
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

/* sc_config_path_absolute - path made absolute against the working
 * directory, so the result stays right after the daemon changes directory */
char *
sc_config_path_absolute(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	return sc_config_path_join(cwd, path);
}

const char *
sc_config_path_base(const char *path)
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

/* sc_yaml_load_file - reads path (absolute) into a new doc after the
 * ownership and mode checks */
int
sc_yaml_load_file(const char *path, struct sc_ydoc **doc_r, char **error_r)
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

/* sc_yaml_root_map - the document's top-level map; an empty file counts as
 * an empty map at 1:1 (allocated into the doc) */
const struct sc_ynode *
sc_yaml_root_map(struct sc_ydoc *doc, char **error_r)
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
