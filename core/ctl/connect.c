/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/connect.c - `satchelctl connect ADDR [--json]`: the mail client
 * settings of an account (like cPanel's Connect Devices), from the
 * listeners and auth backends of the loaded config. satchelctl process,
 * single-threaded.
 */
#include "confview.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* json_str - s as a JSON string literal */
static void
json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

static const char *
tls_words(enum lsn_tls t)
{
	switch (t) {
	case LSN_IMPLICIT: return "SSL/TLS (implicit)";
	case LSN_STARTTLS: return "STARTTLS";
	case LSN_NONE: break;
	}
	return "no encryption: not recommended";
}

static const char *
tls_key(enum lsn_tls t)
{
	switch (t) {
	case LSN_IMPLICIT: return "implicit";
	case LSN_STARTTLS: return "starttls";
	case LSN_NONE: break;
	}
	return "none";
}

/* lsn_pick - indexes of the listeners matching kind (0 pop3, 1
 * submission, 2 mx), recommended first: implicit TLS, STARTTLS, none;
 * config order within each */
static size_t
lsn_pick(const struct lsn_list *ll, int kind, size_t *idx)
{
	static const enum lsn_tls order[] = {
		LSN_IMPLICIT, LSN_STARTTLS, LSN_NONE
	};
	size_t n = 0;

	for (size_t o = 0; o < 3; o++) {
		for (size_t i = 0; i < ll->n; i++) {
			const struct lsn *l = &ll->v[i];
			int k = strcmp(l->proto, "pop3") == 0 ? 0 :
				l->submission ? 1 : 2;

			if (k == kind && (kind == 2 || l->tls == order[o]))
				idx[n++] = i;
		}
		if (kind == 2)
			break;
	}
	return n;
}

/* connect_print_text - the Connect Devices page */
/* The enabled pop_before_smtp instance, as connect tells it. */
struct pbs_view {
	const struct sc_inst_conf *ic;	/* NULL: not loaded */
	const char *window;
	bool mx, submission;		/* its `listeners` */
};

/* pbs_find - the first enabled pop_before_smtp instance, with its window
 * and listener modes (the module's defaults: 30m, [mx]) */
static void
pbs_find(const struct sc_main_config *cfg, struct pbs_view *v)
{
	const struct sc_ynode *l;

	memset(v, 0, sizeof(*v));
	for (size_t i = 0; i < cfg->inst_count && v->ic == NULL; i++)
		if (inst_enabled(&cfg->insts[i], "pop_before_smtp"))
			v->ic = &cfg->insts[i];
	if (v->ic == NULL)
		return;
	v->window = ystr(v->ic->root, "window");
	if (v->window == NULL)
		v->window = "30m";
	l = sc_ynode_get(v->ic->root, "listeners");
	if (l == NULL || l->type != SC_YSEQ) {
		v->mx = true;
		return;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (l->items[i]->type != SC_YSCALAR)
			continue;
		if (strcmp(l->items[i]->scalar, "mx") == 0)
			v->mx = true;
		else if (strcmp(l->items[i]->scalar, "submission") == 0)
			v->submission = true;
	}
}

/* pbs_print_text - POP-before-SMTP, when the module is loaded */
static void
pbs_print_text(const struct pbs_view *v)
{
	if (v->ic == NULL)
		return;
	printf("POP-before-SMTP: on (%s): for %s after a POP3 or IMAP "
	       "login, mail clients at the same address may send without "
	       "authentication on the %s listeners%s\n", v->ic->file,
	       v->window, v->mx && v->submission ? "mx and submission" :
	       v->submission ? "submission" : "mx",
	       v->submission ? "" : "; the submission listeners still "
	       "require authentication");
}

static void
connect_print_text(const struct sc_main_config *cfg, const char *addr,
		   const char *account_note, const struct lsn_list *ll)
{
	static const char *const titles[] = {
		"Incoming (POP3): ", "Outgoing (SMTP): "
	};
	struct pbs_view pbs;
	size_t idx[64], n;

	printf("Account:        %s%s\n", addr, account_note);
	printf("User name:      %s\n", addr);
	for (int kind = 0; kind < 2; kind++) {
		n = lsn_pick(ll, kind, idx);
		if (n == 0) {
			printf("%snone: no %s listener is configured "
			       "(add one to %s)\n", titles[kind],
			       kind == 0 ? "pop3" : "submission",
			       kind == 0 ? "a plugins.d file with "
			       "`module: pop3`" : "the `listen` list of the "
			       "smtp module, `mode: submission`");
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			const struct lsn *l = &ll->v[idx[i]];

			printf("%s%s port %u, %s%s%s%s\n",
			       i == 0 ? titles[kind] : "                 ",
			       cfg->hostname, l->port, tls_words(l->tls),
			       kind == 1 ? ", authentication required" : "",
			       l->loopback ? " (only reachable from this "
			       "machine)" : "",
			       i == 0 && l->tls != LSN_NONE ?
			       "   [recommended]" : "");
		}
	}
	n = lsn_pick(ll, 2, idx);
	for (size_t i = 0; i < n; i++)
		printf("%s%s port %u: for other mail servers, not for "
		       "mail clients\n", i == 0 ? "Not for clients: " :
		       "                 ", cfg->hostname,
		       ll->v[idx[i]].port);
	pbs_find(cfg, &pbs);
	pbs_print_text(&pbs);
}

/* connect_print_json - the same for tools */
static void
connect_print_json(const struct sc_main_config *cfg, const char *addr,
		   int exists, const char *pam_user,
		   const struct lsn_list *ll)
{
	static const char *const keys[] = {
		"incoming", "outgoing", "not_for_clients"
	};
	struct pbs_view pbs;
	size_t idx[64], n;

	printf("{\"account\": ");
	json_str(stdout, addr);
	printf(", \"username\": ");
	json_str(stdout, addr);
	printf(", \"account_exists\": %s", exists > 0 ? "true" :
	       exists == 0 ? "false" : "null");
	printf(", \"pam_user\": ");
	if (pam_user != NULL)
		json_str(stdout, pam_user);
	else
		printf("null");
	for (int kind = 0; kind < 3; kind++) {
		n = lsn_pick(ll, kind, idx);
		printf(", \"%s\": [", keys[kind]);
		for (size_t i = 0; i < n; i++) {
			const struct lsn *l = &ll->v[idx[i]];

			printf("%s{\"protocol\": \"%s\", \"host\": ",
			       i ? ", " : "", kind == 0 ? "pop3" : "smtp");
			json_str(stdout, cfg->hostname);
			printf(", \"port\": %u, \"security\": \"%s\", "
			       "\"authentication\": %s, \"recommended\": %s, "
			       "\"loopback_only\": %s, \"listen\": ",
			       l->port, tls_key(l->tls),
			       kind == 1 ? "true" : "false",
			       kind < 2 && i == 0 && l->tls != LSN_NONE ?
			       "true" : "false",
			       l->loopback ? "true" : "false");
			json_str(stdout, l->addr.text);
			printf("}");
		}
		printf("]");
	}
	pbs_find(cfg, &pbs);
	printf(", \"pop_before_smtp\": ");
	if (pbs.ic == NULL) {
		printf("null");
	} else {
		printf("{\"window\": ");
		json_str(stdout, pbs.window);
		printf(", \"listeners\": [%s%s%s]}",
		       pbs.mx ? "\"mx\"" : "",
		       pbs.mx && pbs.submission ? ", " : "",
		       pbs.submission ? "\"submission\"" : "");
	}
	printf("}\n");
}

/* sc_ctl_connect_main - see satchelctl.h */
int
sc_ctl_connect_main(const struct sc_main_config *cfg, int argc, char **argv)
{
	const char *arg = NULL;
	char addr[256], *paths[8], *note = NULL, pam_user[256];
	const char *domain;
	struct lsn_list *ll;
	bool json = false, pam, bad = false;
	int exists = -1;
	size_t np;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (arg == NULL && argv[i][0] != '-')
			arg = argv[i];
		else
			bad = true;
	}
	if (arg == NULL || bad) {
		fprintf(stderr, "usage: satchelctl connect ADDR [--json]\n");
		return 2;
	}
	if (snprintf(addr, sizeof(addr), "%s", arg) >= (int)sizeof(addr) ||
	    !addr_normalise(addr)) {
		fprintf(stderr, "satchelctl: '%s' is not an address of the "
			"form user@domain\n", arg);
		return 1;
	}
	domain = strchr(addr, '@') + 1;
	if (domain_find(cfg, domain) == NULL) {
		fprintf(stderr, "satchelctl: domain '%s' is not configured "
			"in %s; configured domains:", domain, cfg->file);
		if (cfg->domain_count == 0)
			fprintf(stderr, " (none)");
		for (size_t i = 0; i < cfg->domain_count; i++)
			fprintf(stderr, "%s %s", i ? "," : "",
				cfg->domains[i].name);
		fprintf(stderr, "\n");
		return 1;
	}

	/* Does the account exist? The password files can say; PAM
	 * accounts cannot be listed, so name the system account. */
	np = auth_file_paths(cfg, paths, sizeof(paths) / sizeof(paths[0]));
	for (size_t i = 0; i < np; i++) {
		int r = pwfile_has(paths[i], addr, NULL);

		if (r > 0)
			exists = 1;
		else if (r == 0 && exists < 0)
			exists = 0;
		else if (r < 0 && errno == ENOENT && exists < 0)
			exists = 0;
	}
	pam = false;
	for (size_t i = 0; i < cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &cfg->insts[i];
		const char *strip;

		if (!inst_enabled(ic, "auth_pam"))
			continue;
		strip = ystr(ic->root, "strip_domain");
		pam = true;
		if (strip != NULL && (strcmp(strip, "false") == 0 ||
				      strcmp(strip, "no") == 0))
			snprintf(pam_user, sizeof(pam_user), "%s", addr);
		else
			snprintf(pam_user, sizeof(pam_user), "%.*s",
				 (int)(domain - 1 - addr), addr);
		break;
	}
	if (exists > 0) {
		note = strdup("");
	} else if (pam) {
		if (asprintf(&note, "  (PAM: the system account %s)",
			     pam_user) < 0)
			note = NULL;
	} else if (np == 0) {
		note = strdup("  (no auth backend is configured: nobody can "
			      "log in)");
	} else {
		if (asprintf(&note, "  (no such account in %s: create it "
			     "with `satchelctl user add %s`)", paths[0],
			     addr) < 0)
			note = NULL;
	}
	ll = calloc(1, sizeof(*ll));
	if (note == NULL || ll == NULL) {
		fprintf(stderr, "satchelctl: out of memory\n");
		free(note);
		free(ll);
		for (size_t i = 0; i < np; i++)
			free(paths[i]);
		return 1;
	}
	lsn_collect(cfg, ll);
	if (json)
		connect_print_json(cfg, addr, exists > 0 ? 1 : pam ? -1 :
				   exists, pam ? pam_user : NULL, ll);
	else
		connect_print_text(cfg, addr, note, ll);
	free(note);
	free(ll);
	for (size_t i = 0; i < np; i++)
		free(paths[i]);
	return 0;
}
