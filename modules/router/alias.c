/* SPDX-License-Identifier: MIT */
/*
 * alias.c - parser and lookup for the router's aliases file
 * (`alias: target, target` lines, `#` comments). Runs on whatever thread
 * calls it: the loop at start-up, a pool thread on re-reads, the unit test.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "alias.h"

/* Mirrors RFC 5321 4.5.3.1: local part 64, domain 255. */
#define ALIAS_LOCAL_MAX 64
#define ALIAS_DOMAIN_MAX 255

static void
entry_free(struct alias_entry *e)
{
	free(e->local);
	free(e->domain);
	for (size_t i = 0; i < e->target_count; i++)
		free(e->targets[i]);
	free(e->targets);
}

void
alias_table_free(struct alias_table **t)
{
	if (*t == NULL)
		return;
	for (size_t i = 0; i < (*t)->n; i++)
		entry_free(&(*t)->v[i]);
	free((*t)->v);
	free(*t);
	*t = NULL;
}

static char *
fmt_error(const char *name, unsigned line, const char *fmt, ...)
{
	char msg[512], *out;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (asprintf(&out, "%s:%u: %s", name, line, msg) < 0)
		return NULL;
	return out;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* has_bad_char - true when s holds whitespace, controls or characters that
 * have no place in a plain address (and would let a file name or a pipe
 * in). */
static int
has_bad_char(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == 0x7f || strchr("<>\"(),:;[]\\", c))
			return 1;
	}
	return 0;
}

/* check_address - validates "local" or "local@domain"; NULL when fine, else
 * a static reason. */
static const char *
check_address(const char *s)
{
	const char *at = strchr(s, '@');

	if (*s == '\0')
		return "empty address";
	if (*s == '|' || *s == '/')
		return "pipes and files are not supported";
	if (has_bad_char(s))
		return "invalid character in address";
	if (at == NULL)
		return strlen(s) > ALIAS_LOCAL_MAX ? "local part too long" :
		    NULL;
	if (strchr(at + 1, '@') != NULL)
		return "more than one @ in address";
	if (at == s)
		return "empty local part";
	if (at[1] == '\0')
		return "empty domain";
	if ((size_t)(at - s) > ALIAS_LOCAL_MAX)
		return "local part too long";
	if (strlen(at + 1) > ALIAS_DOMAIN_MAX)
		return "domain too long";
	return NULL;
}

static void
lower(char *s)
{
	for (; *s != '\0'; s++)
		*s = (char)tolower((unsigned char)*s);
}

static int
entry_cmp(const void *a, const void *b)
{
	const struct alias_entry *x = a, *y = b;
	int r = strcasecmp(x->local, y->local);

	if (r != 0)
		return r;
	/* domain-less entries sort first */
	if (x->domain == NULL || y->domain == NULL)
		return (x->domain != NULL) - (y->domain != NULL);
	return strcmp(x->domain, y->domain);
}

/* lower_target - lower-cases the domain of a target, keeps its local part */
static void
lower_target(char *t)
{
	char *at = strchr(t, '@');

	if (at != NULL)
		lower(at + 1);
}

/* parse_line - fills e from one non-empty line (modified in place).
 * NULL on success, else a static reason. Allocation failure: "out of
 * memory". */
static const char *
parse_line(char *line, struct alias_entry *e)
{
	char *colon, *key, *rest, *tok, *save = NULL, *at;
	const char *why;

	colon = strchr(line, ':');
	if (colon == NULL)
		return "missing ':' after the alias";
	*colon = '\0';
	key = trim(line);
	rest = colon + 1;
	if (*key == '\0')
		return "missing alias before ':'";
	if ((why = check_address(key)) != NULL)
		return why;
	at = strchr(key, '@');
	if (at != NULL) {
		*at = '\0';
		if ((e->domain = strdup(at + 1)) == NULL)
			return "out of memory";
		lower(e->domain);
	}
	if ((e->local = strdup(key)) == NULL)
		return "out of memory";
	for (tok = strtok_r(rest, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char **nt;

		tok = trim(tok);
		if (*tok == '\0')
			continue;
		if ((why = check_address(tok)) != NULL)
			return why;
		nt = realloc(e->targets, (e->target_count + 1) * sizeof(*nt));
		if (nt == NULL)
			return "out of memory";
		e->targets = nt;
		if ((nt[e->target_count] = strdup(tok)) == NULL)
			return "out of memory";
		lower_target(nt[e->target_count]);
		e->target_count++;
	}
	if (e->target_count == 0)
		return "alias without a target";
	return NULL;
}

/* strip_comment - cuts a `#` comment: at the line start or after blanks, so
 * a '#' inside an address survives. */
static void
strip_comment(char *line)
{
	for (char *p = line; *p != '\0'; p++) {
		if (*p == '#' && (p == line || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

int
alias_parse(const char *name, const char *text, size_t len,
	    struct alias_table **table_r, char **error_r)
{
	struct alias_table *t;
	size_t cap = 0, pos = 0;
	unsigned lineno = 0;
	char *line = NULL;

	*table_r = NULL;
	*error_r = NULL;
	if (memchr(text, '\0', len) != NULL) {
		*error_r = fmt_error(name, 0, "NUL byte in file");
		return -1;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto oom;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = (nl != NULL ? (size_t)(nl - text) : len) - pos;
		struct alias_entry e = { 0 };
		const char *why;
		char *l;

		lineno++;
		free(line);
		if ((line = strndup(text + pos, ll)) == NULL)
			goto oom;
		pos += ll + (nl != NULL);
		strip_comment(line);
		l = trim(line);
		if (*l == '\0')
			continue;
		e.line = lineno;
		if ((why = parse_line(l, &e)) != NULL) {
			entry_free(&e);
			*error_r = fmt_error(name, lineno, "%s", why);
			goto fail;
		}
		if (t->n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct alias_entry *nv;

			nv = realloc(t->v, ncap * sizeof(*nv));
			if (nv == NULL) {
				entry_free(&e);
				goto oom;
			}
			t->v = nv;
			cap = ncap;
		}
		t->v[t->n++] = e;
	}
	free(line);
	line = NULL;
	if (t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), entry_cmp);
	for (size_t i = 1; i < t->n; i++) {
		const struct alias_entry *a = &t->v[i - 1], *b = &t->v[i];

		if (entry_cmp(a, b) == 0) {
			const struct alias_entry *later =
			    a->line < b->line ? b : a;
			unsigned first = a->line < b->line ? a->line : b->line;

			*error_r = fmt_error(name, later->line,
			    "duplicate alias %s%s%s (first on line %u)",
			    later->local, later->domain ? "@" : "",
			    later->domain ? later->domain : "", first);
			goto fail;
		}
	}
	*table_r = t;
	return 0;
oom:
	*error_r = fmt_error(name, lineno, "out of memory");
fail:
	free(line);
	alias_table_free(&t);
	return -1;
}

const struct alias_entry *
alias_lookup(const struct alias_table *t, const char *local,
	     const char *domain, int any_domain)
{
	struct alias_entry key = { 0 };
	const struct alias_entry *e;
	char dom[ALIAS_DOMAIN_MAX + 1];

	if (t == NULL || t->n == 0)
		return NULL;
	key.local = (char *)local;
	if (domain != NULL && strlen(domain) < sizeof(dom)) {
		strcpy(dom, domain);
		lower(dom);
		key.domain = dom;
		e = bsearch(&key, t->v, t->n, sizeof(*t->v), entry_cmp);
		if (e != NULL)
			return e;
	}
	if (!any_domain)
		return NULL;
	key.domain = NULL;
	return bsearch(&key, t->v, t->n, sizeof(*t->v), entry_cmp);
}
