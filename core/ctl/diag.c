/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/diag.c - `satchelctl connect ADDR` (the mail client settings of
 * an account, like cPanel's Connect Devices) and `satchelctl doctor`
 * (checks for the usual faults: DNS vs routing, certificate, listeners,
 * open relay, connection limits, auth). Runs in the satchelctl process:
 * single-threaded, blocking calls with bounded waits are fine here.
 */
#include "satchelctl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <unbound.h>

/* One DNS query may take this long (a dead forwarder must not hang us). */
#define DIAG_DNS_TIMEOUT_MS	8000
/* One SMTP reply in the open-relay probe. */
#define DIAG_SMTP_TIMEOUT_MS	10000
#define DIAG_MAX_RR		32
#define DIAG_CERT_WARN_DAYS	14
#define DIAG_PWFILE_MAX		(64u * 1024 * 1024)

/* ---- config helpers (the YAML trees of the plugins.d files) ---- */

/* ystr - the scalar value of key in map, or NULL */
static const char *
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
static bool
inst_enabled(const struct sc_inst_conf *ic, const char *module)
{
	return ic->enabled && ic->module != NULL &&
		strcmp(ic->module, module) == 0 && ic->root != NULL &&
		ic->root->type == SC_YMAP;
}

static bool
have_module(const struct sc_main_config *cfg, const char *module)
{
	for (size_t i = 0; i < cfg->inst_count; i++)
		if (inst_enabled(&cfg->insts[i], module))
			return true;
	return false;
}

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
static void
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
static size_t
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
static int
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
static bool
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

static const struct sc_domain_conf *
domain_find(const struct sc_main_config *cfg, const char *domain)
{
	for (size_t i = 0; i < cfg->domain_count; i++)
		if (strcasecmp(cfg->domains[i].name, domain) == 0)
			return &cfg->domains[i];
	return NULL;
}

/* ---- satchelctl connect ---- */

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
static void
connect_print_text(const struct sc_main_config *cfg, const char *addr,
		   const char *account_note, const struct lsn_list *ll)
{
	static const char *const titles[] = {
		"Incoming (POP3): ", "Outgoing (SMTP): "
	};
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

/* ---- satchelctl doctor ---- */

struct doctor {
	const struct sc_main_config *cfg;
	struct ub_ctx *ub;
	char *ub_error;			/* why DNS checks cannot run */
	bool dns_dead;		/* a query timed out: stop asking */
	unsigned fails, warns;
	bool daemon_up;
	char *status;			/* the daemon's status reply */
};

static void
report(struct doctor *d, int level, const char *fmt, ...) SC_PRINTF(3, 4);

/* report - one check line: level 0 ok, 1 warn, 2 FAIL, 3 a hint line */
static void
report(struct doctor *d, int level, const char *fmt, ...)
{
	static const char *const words[] = { "ok  ", "warn", "FAIL", "    " };
	va_list ap;

	if (level == 1)
		d->warns++;
	else if (level == 2)
		d->fails++;
	fputs(words[level], stdout);
	fputc(' ', stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* dns_open - a resolver like core/dns.c's: dns.servers as forwarders
 * (else resolv.conf), loopback servers allowed, and the RFC 6761 names'
 * built-in empty zones removed so a local server's records are seen */
static int
dns_open(struct doctor *d)
{
	const struct sc_main_config *cfg = d->cfg;
	static const char *const zones[] = {
		"test.", "example.", "invalid.", "localhost.", NULL
	};
	struct ub_ctx *ub = ub_ctx_create();
	int err;

	if (ub == NULL) {
		d->ub_error = strdup("cannot create the resolver");
		return -1;
	}
	/* a thread: ub_fd() then tells when an answer is in, so every
	 * wait is bounded by our own timeout */
	if ((err = ub_ctx_async(ub, 1)) != 0)
		goto fail;
	for (size_t i = 0; i < cfg->dns_servers.n; i++) {
		const char *s = cfg->dns_servers.v[i];
		char host[INET6_ADDRSTRLEN + 1], fwd[INET6_ADDRSTRLEN + 8];
		const char *port = NULL;
		size_t hl;

		if (s[0] == '[') {
			const char *e = strchr(s, ']');
			hl = e != NULL ? (size_t)(e - s - 1) : 0;
			if (e != NULL && e[1] == ':')
				port = e + 2;
			s++;
		} else {
			const char *c = strchr(s, ':');
			if (c != NULL && strchr(c + 1, ':') == NULL) {
				hl = (size_t)(c - s);
				port = c + 1;
			} else {
				hl = strlen(s);
			}
		}
		if (hl == 0 || hl >= sizeof(host)) {
			if (asprintf(&d->ub_error, "bad dns.servers entry "
				     "'%s'", cfg->dns_servers.v[i]) < 0)
				d->ub_error = NULL;
			ub_ctx_delete(ub);
			return -1;
		}
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (port != NULL)
			snprintf(fwd, sizeof(fwd), "%s@%s", host, port);
		else
			snprintf(fwd, sizeof(fwd), "%s", host);
		if ((err = ub_ctx_set_fwd(ub, fwd)) != 0)
			goto fail;
	}
	/* no resolv.conf: unbound resolves from the root itself, as the
	 * daemon does (core/dns.c) */
	if (cfg->dns_servers.n == 0)
		(void)ub_ctx_resolvconf(ub, NULL);
	ub_ctx_set_option(ub, "do-not-query-localhost:", "no");
	for (size_t i = 0; zones[i] != NULL; i++)
		ub_ctx_zone_remove(ub, zones[i]);
	d->ub = ub;
	return 0;
fail:
	if (asprintf(&d->ub_error, "resolver setup: %s",
		     ub_strerror(err)) < 0)
		d->ub_error = NULL;
	ub_ctx_delete(ub);
	return -1;
}

struct dns_wait {
	bool done;
	int err;
	struct ub_result *res;
};

static void
dns_cb(void *arg, int err, struct ub_result *res)
{
	struct dns_wait *w = arg;

	w->done = true;
	w->err = err;
	w->res = res;
}

enum dq_status { DQ_OK, DQ_NODATA, DQ_NXDOMAIN, DQ_FAIL };

/* One answer: MX (pref, name) or A/AAAA (addr) records. */
struct dq_answer {
	enum dq_status status;
	char error[160];
	size_t n;
	uint16_t pref[DIAG_MAX_RR];
	char name[DIAG_MAX_RR][256];
};

/* rdata_name - the uncompressed wire name at data[*off] as text; "." for
 * the root. 0 or -1. */
static int
rdata_name(const unsigned char *data, size_t len, size_t off, char *out,
	   size_t outlen)
{
	size_t o = 0;

	for (;;) {
		unsigned c;

		if (off >= len)
			return -1;
		c = data[off];
		if (c == 0)
			break;
		/* libunbound hands out names uncompressed: anything else
		 * is malformed */
		if ((c & 0xc0) != 0 || off + 1 + c > len ||
		    o + c + 2 > outlen)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (unsigned i = 0; i < c; i++) {
			unsigned char ch = data[off + 1 + i];
			if (ch <= 0x20 || ch >= 0x7f || ch == '.')
				return -1;
			out[o++] = (char)ch;
		}
		off += 1 + c;
	}
	if (o == 0)
		out[o++] = '.';
	out[o] = '\0';
	return 0;
}

/* dq - resolves name/type synchronously within DIAG_DNS_TIMEOUT_MS */
static void
dq(struct doctor *d, const char *name, int type, struct dq_answer *a)
{
	struct dns_wait w = { 0 };
	struct timespec t0, t1;
	int id, err;

	memset(a, 0, sizeof(*a));
	a->status = DQ_FAIL;
	if (d->ub == NULL) {
		snprintf(a->error, sizeof(a->error), "%s",
			 d->ub_error ? d->ub_error : "no resolver");
		return;
	}
	if (d->dns_dead) {
		/* one timeout per run is enough to wait for */
		snprintf(a->error, sizeof(a->error), "the DNS server did "
			 "not answer an earlier query");
		return;
	}
	err = ub_resolve_async(d->ub, name, type, 1, &w, dns_cb, &id);
	if (err != 0) {
		snprintf(a->error, sizeof(a->error), "%s", ub_strerror(err));
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!w.done) {
		struct pollfd pfd = { .fd = ub_fd(d->ub), .events = POLLIN };
		long left;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = DIAG_DNS_TIMEOUT_MS - ((t1.tv_sec - t0.tv_sec) * 1000 +
					      (t1.tv_nsec - t0.tv_nsec) /
					      1000000);
		if (left <= 0) {
			ub_cancel(d->ub, id);
			d->dns_dead = true;
			snprintf(a->error, sizeof(a->error), "no answer "
				 "within %d s", DIAG_DNS_TIMEOUT_MS / 1000);
			return;
		}
		if (poll(&pfd, 1, (int)left) > 0)
			ub_process(d->ub);
	}
	if (w.err != 0 || w.res == NULL) {
		snprintf(a->error, sizeof(a->error), "%s",
			 ub_strerror(w.err));
		ub_resolve_free(w.res);
		return;
	}
	if (w.res->rcode == 3 || w.res->nxdomain) {
		a->status = DQ_NXDOMAIN;
	} else if (w.res->rcode != 0) {
		snprintf(a->error, sizeof(a->error), "the DNS server "
			 "answered %s (rcode %d)", w.res->rcode == 2 ?
			 "SERVFAIL" : w.res->rcode == 5 ? "REFUSED" : "an "
			 "error", w.res->rcode);
	} else if (!w.res->havedata) {
		a->status = DQ_NODATA;
	} else {
		a->status = DQ_OK;
		for (size_t i = 0; w.res->data[i] != NULL &&
			     a->n < DIAG_MAX_RR; i++) {
			const unsigned char *p =
				(const unsigned char *)w.res->data[i];
			size_t l = (size_t)w.res->len[i];
			int af = type == SC_DNS_A ? AF_INET : AF_INET6;

			if (type == SC_DNS_MX) {
				if (l < 3 || rdata_name(p, l, 2,
							a->name[a->n],
							256) < 0)
					continue;
				a->pref[a->n++] = (uint16_t)(p[0] << 8 | p[1]);
			} else if (l == (af == AF_INET ? 4u : 16u)) {
				inet_ntop(af, p, a->name[a->n++], 256);
			}
		}
		if (a->n == 0)
			a->status = DQ_NODATA;
	}
	ub_resolve_free(w.res);
}

/* One MX host with its addresses. */
struct mxhost {
	uint16_t pref;
	char name[256];
	char addrs[256];		/* "127.0.0.1, ::1" or "" */
	bool here;
	bool resolved;
	char error[160];		/* a lookup failed (not NODATA) */
};

/* mxhost_cmp - by preference; the name orders equal ones, so the output
 * does not depend on the DNS server's order */
static int
mxhost_cmp(const void *a, const void *b)
{
	const struct mxhost *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcasecmp(x->name, y->name);
}

/* host_lookup - the A/AAAA of name into h; h->here when name is this
 * server's hostname or one address is this machine's (exact match of
 * the interface addresses: 127.0.0.2 is another host) */
static void
host_lookup(struct doctor *d, const char *name, struct mxhost *h)
{
	static const int types[] = { SC_DNS_A, SC_DNS_AAAA };
	struct dq_answer *a = malloc(sizeof(*a));
	size_t off = 0;

	snprintf(h->name, sizeof(h->name), "%s", name);
	h->addrs[0] = '\0';
	h->here = d->cfg->hostname != NULL &&
		strcasecmp(name, d->cfg->hostname) == 0;
	h->resolved = false;
	h->error[0] = '\0';
	if (a == NULL)
		return;
	for (size_t t = 0; t < 2; t++) {
		dq(d, name, types[t], a);
		if (a->status == DQ_FAIL && h->error[0] == '\0')
			snprintf(h->error, sizeof(h->error), "%s", a->error);
		if (a->status != DQ_OK)
			continue;
		h->resolved = true;
		for (size_t i = 0; i < a->n; i++) {
			int n = snprintf(h->addrs + off,
					 sizeof(h->addrs) - off, "%s%s",
					 off ? ", " : "", a->name[i]);
			if (n > 0 && (size_t)n < sizeof(h->addrs) - off)
				off += (size_t)n;
			if (sc_dns_is_local_address(a->name[i]))
				h->here = true;
		}
	}
	free(a);
}

static void
hint_dig(struct doctor *d, const char *type, const char *name)
{
	report(d, 3, "check: dig %s %s", type, name);
}

/* doctor_domain - MX records of domain against its routing */
static void
doctor_domain(struct doctor *d, const char *domain)
{
	const struct sc_domain_conf *dc = domain_find(d->cfg, domain);
	enum sc_routing routing = dc != NULL ? dc->routing :
		SC_ROUTING_REMOTE;
	const char *rname = sc_routing_name(routing);
	const char *me = d->cfg->hostname;
	struct dq_answer *a = malloc(sizeof(*a));
	struct mxhost *hosts = calloc(DIAG_MAX_RR, sizeof(*hosts));
	size_t n = 0;
	bool any_here = false, best_here = false, null_mx = false;
	bool fallback = false;
	uint16_t best = 0xffff;
	char list[1024];
	size_t off = 0;

	if (a == NULL || hosts == NULL) {
		report(d, 2, "dns %s: out of memory", domain);
		goto out;
	}
	if (dc == NULL)
		report(d, 1, "domain %s: not configured in %s (mail for it "
		       "is relayed to its MX like any other domain)",
		       domain, d->cfg->file);
	dq(d, domain, SC_DNS_MX, a);
	if (a->status == DQ_FAIL) {
		report(d, 1, "mx %s: cannot look up the MX records: %s; "
		       "check dns.servers in %s or the system resolver",
		       domain, a->error, d->cfg->file);
		hint_dig(d, "MX", domain);
		goto out;
	}
	if (a->status == DQ_NXDOMAIN) {
		report(d, routing == SC_ROUTING_REMOTE ? 1 : 2,
		       "mx %s: the domain does not exist in DNS "
		       "(NXDOMAIN): nobody can send mail to it; publish an "
		       "MX record pointing at %s", domain, me);
		hint_dig(d, "MX", domain);
		goto out;
	}
	if (a->status == DQ_OK && a->n == 1 &&
	    strcmp(a->name[0], ".") == 0) {
		null_mx = true;
	} else if (a->status == DQ_OK) {
		for (size_t i = 0; i < a->n; i++) {
			if (strcmp(a->name[i], ".") == 0)
				continue;
			hosts[n].pref = a->pref[i];
			host_lookup(d, a->name[i], &hosts[n]);
			n++;
		}
	} else {
		/* RFC 5321 5.1: no MX means the domain's own A/AAAA */
		fallback = true;
		host_lookup(d, domain, &hosts[0]);
		if (!hosts[0].resolved && hosts[0].error[0] != '\0') {
			report(d, 1, "mx %s: no MX record, and the A/AAAA "
			       "lookup failed: %s", domain, hosts[0].error);
			hint_dig(d, "MX", domain);
			goto out;
		}
		if (hosts[0].resolved || hosts[0].here)
			n = 1;
	}
	qsort(hosts, n, sizeof(*hosts), mxhost_cmp);
	for (size_t i = 0; i < n; i++)
		if (hosts[i].pref < best)
			best = hosts[i].pref;
	for (size_t i = 0; i < n; i++) {
		int w;

		any_here |= hosts[i].here;
		if (hosts[i].pref == best)
			best_here |= hosts[i].here;
		if (fallback)
			w = snprintf(list + off, sizeof(list) - off, "%s (%s)",
				     hosts[i].name, hosts[i].addrs[0] ?
				     hosts[i].addrs : "no address");
		else
			w = snprintf(list + off, sizeof(list) - off,
				     "%s%s %u (%s)", i ? ", " : "",
				     hosts[i].name, hosts[i].pref,
				     hosts[i].addrs[0] ? hosts[i].addrs :
				     "no A/AAAA record");
		if (w > 0 && (size_t)w < sizeof(list) - off)
			off += (size_t)w;
	}
	list[off] = '\0';

	if (null_mx) {
		report(d, routing == SC_ROUTING_REMOTE ? 0 : 1,
		       "mx %s: null MX (RFC 7505): the domain accepts no "
		       "mail%s", domain, routing == SC_ROUTING_REMOTE ?
		       "; mail to it bounces at once" :
		       routing == SC_ROUTING_AUTO ?
		       ", so routing auto resolves to remote and mail to "
		       "it bounces: remove the null MX and point an MX at "
		       "this server, or drop the domain" : "");
		if (routing == SC_ROUTING_LOCAL ||
		    routing == SC_ROUTING_BACKUP)
			report(d, 1, "routing %s: %s, but the null MX tells "
			       "every sender not to send mail: replace it "
			       "with an MX pointing at %s", domain, rname,
			       me);
		hint_dig(d, "MX", domain);
		goto out;
	}
	if (n == 0) {
		report(d, routing == SC_ROUTING_REMOTE ? 1 : 2,
		       "mx %s: no MX record and no A/AAAA record: nobody "
		       "can send mail to it; publish an MX record "
		       "pointing at %s", domain, me);
		hint_dig(d, "MX", domain);
		hint_dig(d, "A", domain);
		goto out;
	}
	if (fallback)
		report(d, 1, "mx %s: no MX record; senders fall back to "
		       "the domain's own address %s: publish an MX record "
		       "(pointing at %s for local mail)", domain, list, me);
	else
		report(d, 0, "mx %s: %s", domain, list);
	for (size_t i = 0; i < n; i++)
		if (!hosts[i].resolved && hosts[i].error[0] != '\0')
			report(d, 1, "mx %s: cannot look up MX host %s: %s",
			       domain, hosts[i].name, hosts[i].error);
		else if (!hosts[i].resolved && !hosts[i].here)
			report(d, 1, "mx %s: MX host %s has no A/AAAA "
			       "record: senders cannot reach it; publish "
			       "one", domain, hosts[i].name);

	switch (routing) {
	case SC_ROUTING_LOCAL:
		if (any_here)
			report(d, 0, "routing %s: local, and the MX points "
			       "here", domain);
		else
			report(d, 1, "routing %s: mail for %s goes to %s, "
			       "not here: set routing: remote, or point the "
			       "MX at %s", domain, domain, hosts[0].name, me);
		break;
	case SC_ROUTING_REMOTE:
		if (best_here)
			report(d, 2, "routing %s: mail for %s would loop "
			       "back to myself (5.4.6): set routing: local "
			       "or auto", domain, domain);
		else
			report(d, 0, "routing %s: remote, mail is relayed "
			       "to %s", domain, hosts[0].name);
		break;
	case SC_ROUTING_BACKUP:
		if (!any_here)
			report(d, 1, "routing %s: backup, but this server "
			       "(%s) is not among the MX hosts: add an MX "
			       "for %s with a higher preference number than "
			       "the primary, or set routing: remote",
			       domain, me, me);
		else if (best_here)
			report(d, 1, "routing %s: backup, but this server "
			       "is the best MX: there is no primary to "
			       "relay to; set routing: local, or give the "
			       "primary a lower preference number", domain);
		else
			report(d, 0, "routing %s: backup, this server is a "
			       "lower-preference MX", domain);
		break;
	case SC_ROUTING_AUTO:
		report(d, 0, "routing %s: auto resolves to %s now (best "
		       "MX %s %s this server)", domain,
		       best_here ? "local" : "remote", hosts[0].name,
		       best_here ? "is" : "is not");
		break;
	case SC_ROUTING_NONE:
		break;
	}
	hint_dig(d, "MX", domain);
	for (size_t i = 0; i < n; i++)
		hint_dig(d, "A", hosts[i].name);
out:
	free(a);
	free(hosts);
}

/* doctor_hostname - hostname should resolve to this machine */
static void
doctor_hostname(struct doctor *d)
{
	struct mxhost h;
	const char *me = d->cfg->hostname;

	memset(&h, 0, sizeof(h));
	host_lookup(d, me, &h);
	/* host_lookup counts the name itself as here: ask the addresses */
	h.here = false;
	for (char *p = h.addrs; *p != '\0';) {
		char one[64];
		size_t l = strcspn(p, ",");

		snprintf(one, sizeof(one), "%.*s", (int)l, p);
		if (sc_dns_is_local_address(one))
			h.here = true;
		p += l;
		while (*p == ',' || *p == ' ')
			p++;
	}
	if (!h.resolved && h.error[0] != '\0')
		report(d, 1, "hostname %s: cannot look it up: %s", me,
		       h.error);
	else if (!h.resolved)
		report(d, 1, "hostname %s: no A/AAAA record: other servers "
		       "and mail clients cannot find this server; publish "
		       "an A record for it", me);
	else if (!h.here)
		report(d, 1, "hostname %s: resolves to %s, which is not an "
		       "address of this machine: fix its A/AAAA record, or "
		       "set hostname: in %s to this server's name", me,
		       h.addrs, d->cfg->file);
	else
		report(d, 0, "hostname %s: resolves to %s (this machine)",
		       me, h.addrs);
	hint_dig(d, "A", me);
}

/* read_file - a whole small file, malloc'd; NULL with errno */
static char *
read_file(const char *path, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > 4 * 1024 * 1024) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf != NULL && off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	if (buf != NULL) {
		buf[off] = '\0';
		*len_r = off;
	}
	return buf;
}

/* doctor_cert - the certificate clients will see */
static void
doctor_cert(struct doctor *d)
{
	const struct sc_main_config *cfg = d->cfg;
	char path[4096], keypath[4096];
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrt = 0;
	gnutls_datum_t datum;
	size_t len = 0;
	char *pem;
	bool generated = cfg->tls_certificate == NULL ||
		cfg->tls_certificate[0] == '\0';
	time_t now = time(NULL), exp, act;
	int r;

	if (generated) {
		snprintf(path, sizeof(path), "%s/tls/cert.pem",
			 cfg->state_dir);
		snprintf(keypath, sizeof(keypath), "%s/tls/key.pem",
			 cfg->state_dir);
	} else {
		snprintf(path, sizeof(path), "%s", cfg->tls_certificate);
		snprintf(keypath, sizeof(keypath), "%s",
			 cfg->tls_key != NULL && cfg->tls_key[0] ?
			 cfg->tls_key : cfg->tls_certificate);
	}
	pem = read_file(path, &len);
	if (pem == NULL) {
		if (generated && errno == ENOENT)
			report(d, 1, "tls: no certificate yet: satcheld "
			       "generates a self-signed one for %s at its "
			       "first start (clients will warn); set "
			       "tls.certificate and tls.key in %s to a real "
			       "one", cfg->hostname, cfg->file);
		else
			report(d, 2, "tls: cannot read the certificate %s: "
			       "%s", path, strerror(errno));
		return;
	}
	if (access(keypath, R_OK) != 0)
		report(d, 2, "tls: cannot read the key %s: %s", keypath,
		       strerror(errno));
	datum.data = (unsigned char *)pem;
	datum.size = (unsigned)len;
	r = gnutls_x509_crt_list_import2(&crts, &ncrt, &datum,
					 GNUTLS_X509_FMT_PEM, 0);
	free(pem);
	if (r < 0 || ncrt == 0) {
		report(d, 2, "tls: %s is not a PEM certificate: %s", path,
		       r < 0 ? gnutls_strerror(r) : "empty");
		if (r >= 0)
			gnutls_free(crts);
		return;
	}
	exp = gnutls_x509_crt_get_expiration_time(crts[0]);
	act = gnutls_x509_crt_get_activation_time(crts[0]);
	if (exp != (time_t)-1 && exp < now)
		report(d, 2, "tls: the certificate %s expired %ld days ago: "
		       "renew it", path, (long)((now - exp) / 86400));
	else if (act != (time_t)-1 && act > now)
		report(d, 2, "tls: the certificate %s is not valid for "
		       "another %ld days: check the clock, or the "
		       "certificate", path, (long)((act - now) / 86400 + 1));
	else if (exp != (time_t)-1 &&
		 exp - now < DIAG_CERT_WARN_DAYS * 86400)
		report(d, 1, "tls: the certificate %s expires in %ld "
		       "days: renew it soon", path,
		       (long)((exp - now) / 86400));
	else
		report(d, 0, "tls: certificate %s valid for %ld more days",
		       path, (long)((exp - now) / 86400));
	if (!gnutls_x509_crt_check_hostname(crts[0], cfg->hostname))
		report(d, 1, "tls: the certificate does not name %s: "
		       "clients will warn; get one whose subjectAltName "
		       "includes it", cfg->hostname);
	if (gnutls_x509_crt_check_issuer(crts[0], crts[0]) == 1)
		report(d, 1, "tls: the certificate is self-signed: "
		       "clients will warn; use one from a CA (Let's "
		       "Encrypt) via tls.certificate and tls.key in %s",
		       cfg->file);
	for (unsigned i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
}

/* doctor_listeners - auth over clear text, and where clients send */
static void
doctor_listeners(struct doctor *d, const struct lsn_list *ll)
{
	bool submission = false, any_smtp = false;

	for (size_t i = 0; i < ll->n; i++) {
		const struct lsn *l = &ll->v[i];
		bool client = l->submission || strcmp(l->proto, "pop3") == 0;

		any_smtp |= strcmp(l->proto, "smtp") == 0;
		submission |= l->submission;
		if (l->tls != LSN_NONE)
			continue;
		if (client && !l->loopback)
			report(d, 2, "listen %s %s (%s): tls: none on a "
			       "network address: passwords would travel in "
			       "clear; set tls: starttls or implicit in %s",
			       l->proto, l->addr.text, l->submission ?
			       "submission" : l->proto, l->ic->file);
		else if (client)
			report(d, 0, "listen %s %s: tls: none, but only "
			       "reachable from this machine", l->proto,
			       l->addr.text);
		else if (!l->loopback)
			report(d, 1, "listen smtp %s (mx): tls: none: other "
			       "servers cannot encrypt mail to you; set "
			       "tls: starttls in %s", l->addr.text,
			       l->ic->file);
	}
	if (!any_smtp)
		report(d, 1, "listen: no smtp listener is enabled: this "
		       "server receives no mail");
	if (!submission)
		report(d, 1, "listen: no submission listener: mail "
		       "clients need port 587 (starttls) or 465 "
		       "(implicit); add one with mode: submission to the "
		       "smtp module's listen list");
	else
		report(d, 0, "listen: %zu listener%s, mail clients can "
		       "submit (see satchelctl connect ADDR)", ll->n,
		       ll->n == 1 ? "" : "s");
}

/* cidr_private - is c inside a private, loopback or link-local range? */
static bool
cidr_private(const struct sc_cidr *c)
{
	static const char *const ranges[] = {
		"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
		"127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10",
		"fc00::/7", "fe80::/10", "::1/128", NULL
	};

	for (size_t i = 0; ranges[i] != NULL; i++) {
		struct sc_cidr r;
		unsigned bits;

		if (sc_cidr_parse(ranges[i], &r) < 0 ||
		    r.family != c->family || c->prefix < r.prefix)
			continue;
		bits = r.prefix;
		if (memcmp(r.addr, c->addr, bits / 8) != 0)
			continue;
		if (bits % 8 != 0) {
			unsigned char m =
				(unsigned char)(0xff << (8 - bits % 8));
			if ((r.addr[bits / 8] & m) != (c->addr[bits / 8] & m))
				continue;
		}
		return true;
	}
	return false;
}

/* relay_cidrs - the relay_networks of an smtp instance, parsed */
static size_t
relay_cidrs(const struct sc_inst_conf *ic, struct sc_cidr *out, size_t max,
	    const char **texts)
{
	const struct sc_ynode *l = sc_ynode_get(ic->root, "relay_networks");
	size_t n = 0;

	if (l == NULL || l->type != SC_YSEQ)
		return 0;
	for (size_t i = 0; i < l->n && n < max; i++) {
		if (l->items[i]->type != SC_YSCALAR ||
		    sc_cidr_parse(l->items[i]->scalar, &out[n]) < 0)
			continue;
		texts[n++] = l->items[i]->scalar;
	}
	return n;
}

/* smtp_reply - reads one (multi-line) reply; its code, and the last
 * line's text in buf; -1 on timeout or close */
static int
smtp_reply(int fd, char *buf, size_t size, char *in, size_t *inlen)
{
	for (;;) {
		char *nl = memchr(in, '\n', *inlen);

		if (nl != NULL) {
			size_t l = (size_t)(nl - in);
			int code = -1;
			bool last;

			if (l > 0 && in[l - 1] == '\r')
				in[l - 1] = '\0';
			in[l] = '\0';
			last = l < 4 || in[3] != '-';
			if (l >= 3 && isdigit((unsigned char)in[0]) &&
			    isdigit((unsigned char)in[1]) &&
			    isdigit((unsigned char)in[2]))
				code = atoi(in);
			snprintf(buf, size, "%s", in);
			memmove(in, nl + 1, *inlen - l - 1);
			*inlen -= l + 1;
			if (code < 0)
				return -1;
			if (last)
				return code;
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (*inlen >= 4095 ||
		    poll(&pfd, 1, DIAG_SMTP_TIMEOUT_MS) <= 0)
			return -1;
		r = read(fd, in + *inlen, 4095 - *inlen);
		if (r <= 0)
			return -1;
		*inlen += (size_t)r;
	}
}

/* smtp_cmd - sends line, returns the reply code (-1 on failure) */
static int
smtp_cmd(int fd, const char *line, char *buf, size_t size, char *in,
	 size_t *inlen)
{
	size_t l = strlen(line);

	if (write(fd, line, l) != (ssize_t)l || write(fd, "\r\n", 2) != 2)
		return -1;
	return smtp_reply(fd, buf, size, in, inlen);
}

/* relay_probe - tries to relay through the mx listener l without AUTH;
 * reports the outcome. relay is the instance's relay_networks. */
static void
relay_probe(struct doctor *d, const struct lsn *l,
	    const struct sc_cidr_list *relay)
{
	struct sockaddr_storage ss = l->addr.ss, me;
	socklen_t slen = sizeof(me);
	char buf[512], in[4096], ip[INET6_ADDRSTRLEN];
	size_t inlen = 0;
	int fd, code, flags;

	/* a wildcard listener is reachable on loopback */
	if (l->wildcard && ss.ss_family == AF_INET)
		((struct sockaddr_in *)(void *)&ss)->sin_addr.s_addr =
			htonl(INADDR_LOOPBACK);
	else if (l->wildcard)
		((struct sockaddr_in6 *)(void *)&ss)->sin6_addr =
			in6addr_loopback;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		report(d, 1, "relay (live): socket: %s", strerror(errno));
		return;
	}
	/* a bounded connect */
	flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&ss, l->addr.len) < 0 &&
	    errno == EINPROGRESS) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		int err = ETIMEDOUT;
		socklen_t el = sizeof(err);

		if (poll(&pfd, 1, DIAG_SMTP_TIMEOUT_MS) == 1)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		errno = err;
	} else {
		errno = 0;
	}
	if (errno != 0) {
		report(d, 1, "relay (live): cannot connect to the mx "
		       "listener %s: %s", l->addr.text, strerror(errno));
		close(fd);
		return;
	}
	fcntl(fd, F_SETFL, flags);
	if (getsockname(fd, (struct sockaddr *)&me, &slen) == 0 &&
	    sc_cidr_list_match(relay, (struct sockaddr *)&me)) {
		if (me.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)
					     &me)->sin_addr, ip, sizeof(ip));
		else
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)
					      &me)->sin6_addr, ip, sizeof(ip));
		report(d, 0, "relay (live): not tried: this machine's "
		       "address %s is in relay_networks, so it may relay "
		       "by design", ip);
		close(fd);
		return;
	}
	code = smtp_reply(fd, buf, sizeof(buf), in, &inlen);
	if (code != 220) {
		report(d, 1, "relay (live): %s did not greet with 220: %s",
		       l->addr.text, code < 0 ? "no answer" : buf);
		close(fd);
		return;
	}
	code = smtp_cmd(fd, "EHLO doctor.invalid", buf, sizeof(buf), in,
			&inlen);
	if (code == 250)
		code = smtp_cmd(fd, "MAIL FROM:<doctor@example.invalid>",
				buf, sizeof(buf), in, &inlen);
	if (code != 250) {
		report(d, 1, "relay (live): %s refused EHLO/MAIL, so the "
		       "relay test could not run: %s", l->addr.text,
		       code < 0 ? "no answer" : buf);
		close(fd);
		return;
	}
	code = smtp_cmd(fd, "RCPT TO:<doctor@example.invalid>", buf,
			sizeof(buf), in, &inlen);
	if (code == 550 && strstr(buf, "5.7.1") != NULL)
		report(d, 0, "relay (live): %s refuses to relay without "
		       "authentication (%s)", l->addr.text, buf);
	else if (code >= 200 && code < 300)
		report(d, 2, "relay (live): %s accepted RCPT to a foreign "
		       "domain without authentication: OPEN RELAY, "
		       "spammers will use it; remove wide ranges from "
		       "relay_networks and the modules that allow it",
		       l->addr.text);
	else
		report(d, 1, "relay (live): %s answered RCPT to a foreign "
		       "domain with %s, expected 550 5.7.1",
		       l->addr.text, code < 0 ? "nothing" : buf);
	smtp_cmd(fd, "QUIT", buf, sizeof(buf), in, &inlen);
	close(fd);
}

/* doctor_relay - relay_networks, then a live probe of the first mx
 * listener of the daemon */
static void
doctor_relay(struct doctor *d, const struct lsn_list *ll)
{
	const struct lsn *mx = NULL;
	struct sc_cidr cidrs[64];
	const char *texts[64];
	struct sc_cidr_list relay = { 0, cidrs };
	bool bad = false;

	for (size_t i = 0; i < d->cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &d->cfg->insts[i];
		size_t n;

		if (!inst_enabled(ic, "smtp"))
			continue;
		n = relay_cidrs(ic, cidrs, 64, texts);
		for (size_t k = 0; k < n; k++) {
			const struct sc_cidr *c = &cidrs[k];
			bool v4 = c->family == AF_INET;

			if (c->prefix == 0) {
				report(d, 2, "relay_networks: %s in %s lets "
				       "the whole internet relay: OPEN "
				       "RELAY; list only your own networks",
				       texts[k], ic->file);
				bad = true;
			} else if (!cidr_private(c) &&
				   c->prefix < (v4 ? 24u : 48u)) {
				report(d, 2, "relay_networks: %s in %s is a "
				       "wide public range: everyone in it may "
				       "relay; narrow it to your own hosts",
				       texts[k], ic->file);
				bad = true;
			}
		}
	}
	if (!bad)
		report(d, 0, "relay_networks: only private or narrow "
		       "ranges");
	if (!d->daemon_up) {
		report(d, 1, "relay (live): satcheld is not running: the "
		       "open relay test needs it; start it and run doctor "
		       "again");
		return;
	}
	for (size_t i = 0; i < ll->n && mx == NULL; i++)
		if (strcmp(ll->v[i].proto, "smtp") == 0 &&
		    !ll->v[i].submission && ll->v[i].tls != LSN_IMPLICIT)
			mx = &ll->v[i];
	if (mx == NULL) {
		report(d, 0, "relay (live): no mx listener to test");
		return;
	}
	relay.n = relay_cidrs(mx->ic, cidrs, 64, texts);
	relay_probe(d, mx, &relay);
}

/* status_value - the value of "key: value" in the status lines of
 * instance inst, into out; false when absent */
static bool
status_value(const char *status, const char *inst, const char *key,
	     char *out, size_t size)
{
	char head[300];
	const char *p;
	size_t hl;

	snprintf(head, sizeof(head), "%s:\n", inst);
	hl = strlen(head);
	for (p = status; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 :
		     NULL)
		if (strncmp(p, head, hl) == 0)
			break;
	if (p == NULL || *p == '\0')
		return false;
	p += hl;
	while (*p == ' ') {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		const char *q = p;

		while (*q == ' ')
			q++;
		if (strncmp(q, key, strlen(key)) == 0 &&
		    q[strlen(key)] == ':') {
			q += strlen(key) + 1;
			while (*q == ' ')
				q++;
			snprintf(out, size, "%.*s", (int)(p + l - q), q);
			return true;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return false;
}

/* doctor_limits - connection headroom of every ratelimit instance */
static void
doctor_limits(struct doctor *d)
{
	bool any = false;

	for (size_t i = 0; i < d->cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &d->cfg->insts[i];
		const char *conf_max;
		char conn[128], hits[512];
		unsigned long long cur, max;
		const char *mc;

		if (!inst_enabled(ic, "ratelimit"))
			continue;
		any = true;
		conf_max = ystr(ic->root, "max_connections");
		if (!d->daemon_up || d->status == NULL ||
		    !status_value(d->status, ic->name, "connections", conn,
				  sizeof(conn)) ||
		    sscanf(conn, "%llu/%llu", &cur, &max) != 2) {
			report(d, 0, "limits %s: max_connections %s "
			       "(current use unknown: %s)", ic->name,
			       conf_max ? conf_max : "100 (default)",
			       d->daemon_up ? "no status from the daemon" :
			       "satcheld is not running");
			continue;
		}
		if (max > 0 && cur * 10 > max * 8)
			report(d, 1, "limits %s: connections %llu/%llu "
			       "(max_connections): over 80%% in use; raise "
			       "max_connections in %s, watching the "
			       "server's memory", ic->name, cur, max,
			       ic->file);
		else
			report(d, 0, "limits %s: connections %llu/%llu "
			       "(max_connections), %llu%% headroom",
			       ic->name, cur, max, max ?
			       (max - cur) * 100 / max : 0);
		if (!status_value(d->status, ic->name, "limit_hits", hits,
				  sizeof(hits)))
			continue;
		report(d, 3, "limit hits since start: %s", hits);
		mc = strstr(hits, "max_connections=");
		if (mc != NULL && strtoull(mc + 16, NULL, 10) > 0)
			report(d, 1, "limits %s: the server-wide limit was "
			       "hit %llu times: clients got \"421 Too many "
			       "concurrent SMTP connections\"; if the "
			       "server is busy, not attacked, raise "
			       "max_connections in %s, watching memory "
			       "(too high a limit can exhaust it)", ic->name,
			       strtoull(mc + 16, NULL, 10), ic->file);
	}
	if (!any)
		report(d, 1, "limits: no connection limit: a flood can "
		       "exhaust memory; add plugins.d/70-ratelimit.yaml "
		       "with `module: ratelimit` (max_connections: 100)");
}

/* doctor_auth - can anybody log in to send? */
static void
doctor_auth(struct doctor *d)
{
	char *paths[8];
	size_t np = auth_file_paths(d->cfg, paths, 8);
	bool pam = have_module(d->cfg, "auth_pam");

	if (np == 0 && !pam)
		report(d, 1, "auth: no auth backend enabled: nobody can log "
		       "in to send; add auth_file (satchelctl user add) or "
		       "auth_pam");
	for (size_t i = 0; i < np; i++) {
		size_t accounts = 0;
		int r = pwfile_has(paths[i], "", &accounts);

		if (r < 0 && errno != ENOENT)
			report(d, 2, "auth: cannot read %s: %s", paths[i],
			       strerror(errno));
		else if (r < 0 || accounts == 0)
			report(d, 1, "auth: %s has no accounts yet: add "
			       "one with satchelctl user add ADDR",
			       paths[i]);
		else
			report(d, 0, "auth: auth_file %s, %zu account%s",
			       paths[i], accounts, accounts == 1 ? "" : "s");
		free(paths[i]);
	}
	if (pam)
		report(d, 0, "auth: auth_pam (system accounts)");
}

/* sc_ctl_doctor_main - see satchelctl.h */
int
sc_ctl_doctor_main(const char *path, int argc, char **argv)
{
	struct sc_main_config *cfg = NULL, *check_cfg = NULL;
	struct doctor d;
	struct sc_gen *gen = NULL;
	struct lsn_list *ll;
	char *err = NULL, *reply = NULL;

	memset(&d, 0, sizeof(d));
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-') {
			fprintf(stderr, "usage: satchelctl doctor "
				"[DOMAIN...]\n");
			return 2;
		}
	/* the config, as `check` sees it; the rest needs it valid */
	if (sc_main_config_load(path, &check_cfg, &err) < 0) {
		report(&d, 2, "config: %s", err ? err : "cannot load");
		free(err);
		return 1;
	}
	sc_log_set_level(SC_LOG_WARNING);
	sc_config_set_current(check_cfg);
	if (sc_gen_build(check_cfg, true, &gen, &err) < 0) {
		sc_config_set_current(NULL);
		report(&d, 2, "config: %s", err ? err : "invalid");
		free(err);
		return 1;
	}
	report(&d, 0, "config: %s valid (%zu module instance%s)",
	       gen->cfg->file, gen->inst_count,
	       gen->inst_count == 1 ? "" : "s");
	sc_config_set_current(NULL);
	sc_gen_unref(&gen);
	if (sc_main_config_load(path, &cfg, &err) < 0) {
		report(&d, 2, "config: %s", err ? err : "cannot load");
		free(err);
		return 1;
	}
	sc_config_set_current(cfg);
	d.cfg = cfg;

	if (sc_ctl_request(cfg, "status", &reply) == 0) {
		d.daemon_up = true;
		d.status = reply;
		report(&d, 0, "daemon: satcheld is running");
	} else {
		report(&d, 1, "daemon: not reachable (%s): live checks are "
		       "skipped", reply ? reply : "no reply");
		free(reply);
	}

	if (dns_open(&d) < 0)
		report(&d, 1, "dns: %s: DNS checks cannot run",
		       d.ub_error ? d.ub_error : "out of memory");
	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			char dom[256];
			size_t l;

			snprintf(dom, sizeof(dom), "%s", argv[i]);
			for (char *p = dom; *p; p++)
				*p = (char)tolower((unsigned char)*p);
			l = strlen(dom);
			if (l > 0 && dom[l - 1] == '.')
				dom[l - 1] = '\0';
			doctor_domain(&d, dom);
		}
	} else {
		if (cfg->domain_count == 0)
			report(&d, 1, "domains: none configured in %s: this "
			       "server accepts mail for no domain",
			       cfg->file);
		for (size_t i = 0; i < cfg->domain_count; i++)
			doctor_domain(&d, cfg->domains[i].name);
	}
	doctor_hostname(&d);
	doctor_cert(&d);
	ll = calloc(1, sizeof(*ll));
	if (ll != NULL) {
		lsn_collect(cfg, ll);
		doctor_listeners(&d, ll);
		doctor_relay(&d, ll);
		free(ll);
	}
	doctor_limits(&d);
	doctor_auth(&d);

	printf("%u problem%s (FAIL), %u warning%s\n", d.fails,
	       d.fails == 1 ? "" : "s", d.warns, d.warns == 1 ? "" : "s");
	if (d.ub != NULL)
		ub_ctx_delete(d.ub);
	free(d.ub_error);
	free(d.status);
	sc_config_set_current(NULL);
	sc_main_config_free(&cfg);
	return d.fails > 0 ? 1 : 0;
}
