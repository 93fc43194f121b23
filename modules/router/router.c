/* SPDX-License-Identifier: MIT */
/*
 * router - local vs remote routing per recipient. At RCPT it refuses
 * unknown mailboxes of local domains (550 5.1.1); in the queue runner's
 * ROUTE hook it expands aliases and picks local or remote delivery (auto
 * domains from DNS, loops by Received: count). Runs on the loop thread;
 * the aliases file is re-read on the thread pool when it changes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <satchel/satchel.h>

#include "alias.h"

/* RFC 5321 6.3: a message with this many Received: headers is looping. */
#define ROUTER_MAX_RECEIVED 100
/* How often the aliases file's mtime is polled. */
#define ROUTER_POLL_MS 2000
/* A bigger aliases file is refused: it is surely a mistake. */
#define ROUTER_ALIASES_MAX (16u * 1024 * 1024)

struct router_conf {
	char *aliases;
	struct sc_str_list postmaster;
};

static const struct sc_config_key router_keys[] = {
	{ "aliases", SC_KEY_PATH, offsetof(struct router_conf, aliases), NULL,
	  0, "aliases file: `alias: target, target` lines, re-read on change",
	  NULL, NULL, 0 },
	{ "postmaster", SC_KEY_STR_LIST,
	  offsetof(struct router_conf, postmaster), NULL, 0,
	  "where postmaster@ of a local domain without such mailbox goes",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* What identifies one version of the aliases file. */
struct file_id {
	bool present;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct reload;

/* The instance; reference-counted because pending hook calls and a
 * re-read in flight may outlive instance_free (a reload). */
struct router {
	unsigned refs;
	bool gone;			/* instance_free ran             */
	struct sc_instance *inst;	/* only while !gone              */
	char *name;			/* instance name, for logs       */
	char *aliases_path;		/* NULL: no aliases              */
	struct alias_table *aliases;
	struct file_id aliases_id;
	struct sc_str_list postmaster;	/* copy: outlives the config     */
	struct sc_timer *timer;
	struct reload *reload;		/* re-read in flight             */
};

static struct router *
router_ref(struct router *r)
{
	r->refs++;
	return r;
}

static void
router_unref(struct router **rp)
{
	struct router *r = *rp;

	*rp = NULL;
	if (r == NULL || --r->refs > 0)
		return;
	alias_table_free(&r->aliases);
	for (size_t i = 0; i < r->postmaster.n; i++)
		free(r->postmaster.v[i]);
	free(r->postmaster.v);
	free(r->aliases_path);
	free(r->name);
	free(r);
}

/* ---- reading the aliases file (any thread: plain libc only) ---- */

static bool
file_id_equal(const struct file_id *a, const struct file_id *b)
{
	if (a->present != b->present)
		return false;
	if (!a->present)
		return true;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	    a->mtime.tv_sec == b->mtime.tv_sec &&
	    a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* aliases_read - stats path into *id and, unless it equals *old (when old
 * is not NULL), reads and parses it into *table_r. A missing file gives an
 * empty table. Returns 1 when a new table was read, 0 when unchanged, -1
 * with *error_r malloc'd. */
static int
aliases_read(const char *path, const struct file_id *old, struct file_id *id,
	     struct alias_table **table_r, char **error_r)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, ret = -1;

	*table_r = NULL;
	*error_r = NULL;
	memset(id, 0, sizeof(*id));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno != ENOENT) {
			if (asprintf(error_r, "%s: %s", path,
				     strerror(errno)) < 0)
				*error_r = NULL;
			return -1;
		}
		if (old != NULL && file_id_equal(old, id))
			return 0;
		return alias_parse(path, "", 0, table_r, error_r) == 0 ? 1 :
		    -1;
	}
	if (fstat(fd, &st) < 0)
		goto sys_error;
	id->present = true;
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->size = st.st_size;
	id->mtime = st.st_mtim;
	if (old != NULL && file_id_equal(old, id)) {
		close(fd);
		return 0;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > ROUTER_ALIASES_MAX) {
		if (asprintf(error_r, "%s: not a regular file below 16M",
			     path) < 0)
			*error_r = NULL;
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
		goto sys_error;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto sys_error;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ret = alias_parse(path, buf, len, table_r, error_r) == 0 ? 1 : -1;
	goto out;
sys_error:
	if (asprintf(error_r, "%s: %s", path, strerror(errno)) < 0)
		*error_r = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

/* One re-read on the thread pool. */
struct reload {
	struct router *r;		/* a reference                   */
	char *path;
	struct file_id old, id;
	int result;			/* of aliases_read               */
	struct alias_table *table;
	char *error;
};

static void
reload_work(void *arg)
{
	struct reload *rl = arg;

	rl->result = aliases_read(rl->path, &rl->old, &rl->id, &rl->table,
				  &rl->error);
}

/* reload_done - installs the new table on the loop, or keeps the old one
 * with a log line when the new file does not parse. */
static void
reload_done(void *arg)
{
	struct reload *rl = arg;
	struct router *r = rl->r;

	r->reload = NULL;
	if (r->gone) {
		/* the instance went away meanwhile: drop the result */
	} else if (rl->result > 0) {
		alias_table_free(&r->aliases);
		r->aliases = rl->table;
		rl->table = NULL;
		r->aliases_id = rl->id;
		sc_log_info("router %s: aliases %s %s: %zu entries",
			    r->name, rl->path,
			    rl->id.present ? "reloaded" : "removed",
			    r->aliases->n);
	} else if (rl->result < 0) {
		/* Remember the bad version so it is reported once, not
		 * every poll. */
		r->aliases_id = rl->id;
		sc_log_error("router %s: %s; keeping the previous aliases",
			     r->name,
			     rl->error ? rl->error : "out of memory");
	}
	alias_table_free(&rl->table);
	free(rl->error);
	free(rl->path);
	router_unref(&rl->r);
	free(rl);
}

/* reload_tick - the 2 s poll: one re-read at a time. The stat runs on the
 * pool too, since the file may sit on a slow or hung filesystem. */
static void
reload_tick(struct sc_timer *t, void *arg)
{
	struct router *r = arg;
	struct reload *rl;

	(void)t;
	if (r->reload != NULL || r->aliases_path == NULL)
		return;
	if ((rl = calloc(1, sizeof(*rl))) == NULL)
		return;
	if ((rl->path = strdup(r->aliases_path)) == NULL) {
		free(rl);
		return;
	}
	rl->old = r->aliases_id;
	rl->r = router_ref(r);
	if (sc_work_submit_inst(r->inst, reload_work, reload_done, rl) < 0) {
		router_unref(&rl->r);
		free(rl->path);
		free(rl);
		return;
	}
	r->reload = rl;
}

/* ---- hook calls ---- */

/* One RCPT or ROUTE call that may go asynchronous (account lookup, DNS).
 * The hook function returns the result itself when everything answered
 * at once, and SC_PENDING otherwise; finish() knows which applies. */
struct rctx {
	struct router *r;		/* a reference                   */
	struct sc_hook_call *call;
	bool returned_pending;		/* finish with sc_hook_done      */
	bool finished;
	enum sc_result result;
	enum sc_hook hook;
	bool is_auto;			/* the domain routes `auto`      */
	char *rcpt;
	char *local;
	char *domain;
	struct sc_account_request areq;
	int dns_type;			/* A or AAAA lookup in flight    */
	char *host;			/* the host whose A/AAAA decides */
};

static void
rctx_free(struct rctx *c)
{
	router_unref(&c->r);
	free(c->rcpt);
	free(c->local);
	free(c->domain);
	free(c->host);
	free(c);
}

static struct rctx *
rctx_new(struct router *r, struct sc_hook_call *call, const char *rcpt,
	 const char *local, const char *domain)
{
	struct rctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->r = router_ref(r);
	c->call = call;
	c->hook = sc_hook_which(call);
	c->rcpt = strdup(rcpt);
	c->local = strdup(local);
	c->domain = strdup(domain);
	if (c->rcpt == NULL || c->local == NULL || c->domain == NULL) {
		rctx_free(c);
		return NULL;
	}
	c->areq.address = c->rcpt;
	c->areq.local_part = c->local;
	c->areq.domain = c->domain;
	return c;
}

/* finish - the final result of c's call: handed to the core now when the
 * hook already returned SC_PENDING, else kept for the hook to return. */
static void
finish(struct rctx *c, enum sc_result res)
{
	if (c->returned_pending) {
		sc_hook_done(c->call, res);
		rctx_free(c);
		return;
	}
	c->finished = true;
	c->result = res;
}

/* settle - what the hook function returns after starting c's work. */
static enum sc_result
settle(struct rctx *c)
{
	enum sc_result res;

	if (!c->finished) {
		c->returned_pending = true;
		return SC_PENDING;
	}
	res = c->result;
	rctx_free(c);
	return res;
}

/* account_lookup - asks the mailbox owners (auth backends, maildir's
 * mailboxes) whether c's address exists; done gets the outcome.
 * Runs outside the session (s = NULL) so that done is always called, even
 * when the client goes away, and our own pending call gets released. */
static int
account_lookup(struct rctx *c, sc_hook_done_fn done)
{
	return sc_hook_run(NULL, SC_HOOK_ACCOUNT, &c->areq, done, c);
}

static bool
is_postmaster(const char *local)
{
	return strcasecmp(local, "postmaster") == 0;
}

/* rcpt_account_done - the account chain's verdict for RCPT: an existing
 * mailbox is accepted, an unknown one refused (local) or left to the
 * next callback (auto: the mail may well be for another server). */
static void
rcpt_account_done(struct sc_session *s, const struct sc_hook_outcome *out,
		  void *arg)
{
	struct rctx *c = arg;

	(void)s;
	switch (out->result) {
	case SC_OK:
		finish(c, SC_OK);
		return;
	case SC_DENYSOFT:
	case SC_DENYSOFTDISCONNECT:
		sc_reply_set(c->call, 451, "4.3.0",
			     "<%s>: mailbox lookup failed; try again later",
			     c->rcpt);
		finish(c, SC_DENYSOFT);
		return;
	default:
		break;
	}
	if (c->is_auto) {
		finish(c, SC_CONT);
		return;
	}
	sc_reply_set(c->call, 550, "5.1.1", "<%s>: no such user here",
		     c->rcpt);
	finish(c, SC_DENY);
}

/* router_rcpt - RCPT: decides for local (and auto) domains only; the smtp
 * module has applied the relay policy to the others already. */
static enum sc_result
router_rcpt(struct sc_hook_call *call, void *data)
{
	struct router *r = data;
	const struct sc_rcpt_request *req = sc_hook_arg(call);
	enum sc_routing rt;
	struct rctx *c;

	if (req == NULL || req->domain == NULL || req->local_part == NULL)
		return SC_CONT;
	rt = sc_config_domain_routing(req->domain);
	if (rt != SC_ROUTING_LOCAL && rt != SC_ROUTING_AUTO)
		return SC_CONT;
	if (alias_lookup(r->aliases, req->local_part, req->domain, 1) != NULL)
		return SC_OK;
	/* RFC 5321 4.5.1: postmaster must always be accepted. */
	if (is_postmaster(req->local_part))
		return SC_OK;
	c = rctx_new(r, call, req->address, req->local_part, req->domain);
	if (c == NULL)
		goto tempfail;
	c->is_auto = rt == SC_ROUTING_AUTO;
	if (account_lookup(c, rcpt_account_done) < 0) {
		rctx_free(c);
		goto tempfail;
	}
	return settle(c);
tempfail:
	sc_reply_set(call, 451, "4.3.0", "Temporary local problem");
	return SC_DENYSOFT;
}

/* router_sender - enforce_sender: the authenticated user may send as an
 * alias that delivers to them (`sales: alice, bob` lets alice and bob send
 * as sales@). The account itself is checked by the smtp module. */
static enum sc_result
router_sender(struct sc_hook_call *call, void *data)
{
	struct router *r = data;
	const struct sc_sender_request *req = sc_hook_arg(call);
	const struct alias_entry *e;
	enum sc_routing rt;
	char buf[600];

	if (req == NULL || req->user == NULL || req->domain == NULL)
		return SC_CONT;
	rt = sc_config_domain_routing(req->domain);
	if (rt != SC_ROUTING_LOCAL && rt != SC_ROUTING_AUTO)
		return SC_CONT;
	e = alias_lookup(r->aliases, req->local_part, req->domain, 1);
	if (e == NULL)
		return SC_CONT;
	for (size_t i = 0; i < e->target_count; i++) {
		const char *t = e->targets[i];

		if (strchr(t, '@') == NULL) {
			snprintf(buf, sizeof(buf), "%s@%s", t, req->domain);
			t = buf;
		}
		if (strcasecmp(t, req->user) == 0)
			return SC_OK;
	}
	return SC_CONT;
}

/* expand_one - routes c's recipient to target; a target without a domain
 * stays in the recipient's domain. */
static void
expand_one(struct rctx *c, const char *target)
{
	char buf[64 + 1 + 255 + 1];

	if (strchr(target, '@') == NULL) {
		snprintf(buf, sizeof(buf), "%s@%s", target, c->domain);
		target = buf;
	}
	sc_route_expand(c->call, target);
}

/* route_pm_account_done - postmaster@ of a local domain: its own mailbox
 * when it exists, else the `postmaster:` addresses. */
static void
route_pm_account_done(struct sc_session *s, const struct sc_hook_outcome *out,
		      void *arg)
{
	struct rctx *c = arg;

	(void)s;
	if (out->result == SC_OK) {
		sc_route_set(c->call, SC_DELIVERY_LOCAL, NULL);
		finish(c, SC_OK);
		return;
	}
	if (out->result == SC_DENYSOFT ||
	    out->result == SC_DENYSOFTDISCONNECT) {
		sc_reply_set(c->call, 451, "4.3.0",
			     "<%s>: mailbox lookup failed", c->rcpt);
		finish(c, SC_DENYSOFT);
		return;
	}
	sc_log_info("router %s: %s has no mailbox: delivering to postmaster:",
		    c->r->name, c->rcpt);
	for (size_t i = 0; i < c->r->postmaster.n; i++)
		expand_one(c, c->r->postmaster.v[i]);
	finish(c, SC_OK);
}

/* route_local - the recipient is ours: aliases expand, postmaster may go to
 * the `postmaster:` addresses, everything else to the LOCAL driver. */
static void
route_local(struct rctx *c)
{
	const struct alias_entry *e;
	size_t expanded = 0;

	e = alias_lookup(c->r->aliases, c->local, c->domain, 1);
	if (e != NULL) {
		for (size_t i = 0; i < e->target_count; i++) {
			const char *t = e->targets[i];
			const char *at = strchr(t, '@');
			bool self;

			/* A target naming the alias itself ("alice: alice,
			 * bob") would expand forever; deliver it here. */
			self = at == NULL ?
			    strcasecmp(t, c->local) == 0 :
			    strcasecmp(t, c->rcpt) == 0;
			if (self)
				continue;
			expand_one(c, t);
			expanded++;
		}
		if (expanded == e->target_count) {
			finish(c, SC_OK);
			return;
		}
		/* The self target: local delivery of the recipient itself,
		 * next to the expansion (the queue runner keeps both). */
		sc_route_set(c->call, SC_DELIVERY_LOCAL, NULL);
		finish(c, SC_OK);
		return;
	}
	if (is_postmaster(c->local) && c->r->postmaster.n > 0) {
		if (account_lookup(c, route_pm_account_done) < 0) {
			sc_reply_set(c->call, 451, "4.3.0",
				     "Temporary local problem");
			finish(c, SC_DENYSOFT);
		}
		return;
	}
	sc_route_set(c->call, SC_DELIVERY_LOCAL, NULL);
	finish(c, SC_OK);
}

static void
route_remote(struct rctx *c)
{
	sc_route_set(c->call, SC_DELIVERY_REMOTE, NULL);
	finish(c, SC_OK);
}

static void auto_addr_done(const struct sc_dns_result *res, void *arg);

/* auto_resolve_host - looks up the A (then AAAA) records of c->host. */
static void
auto_resolve_host(struct rctx *c, int type)
{
	c->dns_type = type;
	if (sc_dns_resolve_inst(c->r->inst, c->host, type, auto_addr_done, c,
				NULL) < 0) {
		sc_reply_set(c->call, 451, "4.4.3",
			     "cannot look up %s", c->host);
		finish(c, SC_DENYSOFT);
	}
}

static bool
is_cancelled(struct rctx *c)
{
	if (!sc_hook_cancelled(c->call))
		return false;
	finish(c, SC_DENYSOFT);
	return true;
}

/* auto_addr_done - c->host is ours when one of its addresses is one of
 * this machine's. */
static void
auto_addr_done(const struct sc_dns_result *res, void *arg)
{
	struct rctx *c = arg;

	if (is_cancelled(c))
		return;
	switch (res->status) {
	case SC_DNS_OK:
		for (size_t i = 0; i < res->n; i++) {
			if (res->rr[i].addr[0] != '\0' &&
			    sc_dns_is_local_address(res->rr[i].addr)) {
				sc_log_debug("router: %s: %s is %s, ours: "
					     "local delivery", c->rcpt,
					     c->host, res->rr[i].addr);
				route_local(c);
				return;
			}
		}
		break;
	case SC_DNS_NODATA:
	case SC_DNS_NXDOMAIN:
		break;
	default:
		sc_reply_set(c->call, 451, "4.4.3",
			     "address lookup for %s failed: %s", c->host,
			     res->error ? res->error : "temporary DNS error");
		finish(c, SC_DENYSOFT);
		return;
	}
	if (c->dns_type == SC_DNS_A) {
		auto_resolve_host(c, SC_DNS_AAAA);
		return;
	}
	sc_log_debug("router: %s: %s is not this server: remote delivery",
		     c->rcpt, c->host);
	route_remote(c);
}

/* auto_mx_done - the best MX decides; no MX: the domain's own address. */
static void
auto_mx_done(const struct sc_dns_result *res, void *arg)
{
	struct rctx *c = arg;
	const char *best;

	if (is_cancelled(c))
		return;
	switch (res->status) {
	case SC_DNS_OK:
		if (res->n == 0) {
			best = c->domain;
			break;
		}
		best = res->rr[0].name;
		/* RFC 7505 null MX: no mail at all; the relay bounces it. */
		if (best[0] == '\0' || strcmp(best, ".") == 0) {
			route_remote(c);
			return;
		}
		if (strcasecmp(best, sc_config_hostname()) == 0) {
			sc_log_debug("router: %s: MX %s is our hostname: "
				     "local delivery", c->rcpt, best);
			route_local(c);
			return;
		}
		break;
	case SC_DNS_NODATA:
		best = c->domain;
		break;
	case SC_DNS_NXDOMAIN:
		sc_reply_set(c->call, 550, "5.1.2",
			     "<%s>: domain %s does not exist", c->rcpt,
			     c->domain);
		finish(c, SC_DENY);
		return;
	default:
		sc_reply_set(c->call, 451, "4.4.3",
			     "MX lookup for %s failed: %s", c->domain,
			     res->error ? res->error : "temporary DNS error");
		finish(c, SC_DENYSOFT);
		return;
	}
	if ((c->host = strdup(best)) == NULL) {
		sc_reply_set(c->call, 451, "4.3.0", "Temporary local problem");
		finish(c, SC_DENYSOFT);
		return;
	}
	auto_resolve_host(c, SC_DNS_A);
}

/* router_route - ROUTE (queue runner, per recipient). */
static enum sc_result
router_route(struct sc_hook_call *call, void *data)
{
	struct router *r = data;
	const struct sc_route_request *req = sc_hook_arg(call);
	const char *at, *domain;
	char local[65];
	enum sc_routing rt;
	struct rctx *c;

	if (req == NULL || req->rcpt == NULL)
		return SC_CONT;
	at = strrchr(req->rcpt, '@');
	domain = req->domain != NULL ? req->domain : at ? at + 1 : "";
	if (req->received_count > ROUTER_MAX_RECEIVED) {
		sc_reply_set(call, 554, "5.4.6",
			     "mail for %s loops back to myself", domain);
		return SC_DENY;
	}
	rt = sc_config_domain_routing(domain);
	if (rt != SC_ROUTING_LOCAL && rt != SC_ROUTING_AUTO) {
		/* remote, backup (the relay module keeps to the MX hosts
		 * better than ours) and unlisted domains */
		sc_route_set(call, SC_DELIVERY_REMOTE, NULL);
		return SC_OK;
	}
	if (at == NULL || (size_t)(at - req->rcpt) >= sizeof(local)) {
		sc_reply_set(call, 550, "5.1.3", "<%s>: bad recipient address",
			     req->rcpt);
		return SC_DENY;
	}
	memcpy(local, req->rcpt, (size_t)(at - req->rcpt));
	local[at - req->rcpt] = '\0';
	if ((c = rctx_new(r, call, req->rcpt, local, domain)) == NULL) {
		sc_reply_set(call, 451, "4.3.0", "Temporary local problem");
		return SC_DENYSOFT;
	}
	if (rt == SC_ROUTING_LOCAL) {
		route_local(c);
		return settle(c);
	}
	c->is_auto = true;
	if (sc_dns_resolve_inst(r->inst, domain, SC_DNS_MX, auto_mx_done, c,
				NULL) < 0) {
		sc_reply_set(call, 451, "4.4.3", "cannot look up MX of %s",
			     domain);
		finish(c, SC_DENYSOFT);
	}
	return settle(c);
}

/* ---- status and lifecycle ---- */

static size_t
router_status(char *buf, size_t len, void *data)
{
	struct router *r = data;
	int n;

	n = snprintf(buf, len, "aliases: %zu%s%s",
		     r->aliases != NULL ? r->aliases->n : 0,
		     r->aliases_path != NULL ? " from " : "",
		     r->aliases_path != NULL ? r->aliases_path : "");
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len > 0 ? len - 1 : 0;
}

/* router_instance_new - copies the config and reads the aliases file once,
 * so that a broken file stops the start-up with a clear message. */
static int
router_instance_new(struct sc_instance *inst, const void *config,
		    void **data_r, const char **error_r)
{
	const struct router_conf *conf = config;
	struct router *r;
	char *error = NULL;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto oom;
	r->refs = 1;
	r->inst = inst;
	if ((r->name = strdup(sc_instance_name(inst))) == NULL)
		goto oom;
	if (conf->postmaster.n > 0) {
		r->postmaster.v = calloc(conf->postmaster.n, sizeof(char *));
		if (r->postmaster.v == NULL)
			goto oom;
		for (size_t i = 0; i < conf->postmaster.n; i++) {
			const char *p = conf->postmaster.v[i];

			if (*p == '\0' || strchr(p, ' ') != NULL ||
			    is_postmaster(p)) {
				*error_r = "router: postmaster: needs "
				    "addresses other than postmaster";
				router_unref(&r);
				return -1;
			}
			if ((r->postmaster.v[i] = strdup(p)) == NULL)
				goto oom;
			r->postmaster.n++;
		}
	}
	if (conf->aliases != NULL && conf->aliases[0] != '\0') {
		if ((r->aliases_path = strdup(conf->aliases)) == NULL)
			goto oom;
		if (aliases_read(r->aliases_path, NULL, &r->aliases_id,
				 &r->aliases, &error) < 0) {
			/* error_r must be a static string: the detail goes
			 * to the log. */
			sc_log_error("router %s: %s", sc_instance_name(inst),
				     error ? error : "out of memory");
			free(error);
			*error_r = "router: cannot load the aliases file "
			    "(the error is logged above)";
			router_unref(&r);
			return -1;
		}
		if (!r->aliases_id.present)
			sc_log_warning("router %s: aliases file %s does not "
				       "exist (yet)", sc_instance_name(inst),
				       r->aliases_path);
	}
	*data_r = r;
	return 0;
oom:
	router_unref(&r);
	*error_r = "router: out of memory";
	return -1;
}

static int
router_instance_start(struct sc_instance *inst, void *data,
		      const char **error_r)
{
	struct router *r = data;

	if (sc_hook_register(inst, SC_HOOK_RCPT, router_rcpt, r) < 0 ||
	    sc_hook_register(inst, SC_HOOK_SENDER, router_sender, r) < 0 ||
	    sc_hook_register(inst, SC_HOOK_ROUTE, router_route, r) < 0) {
		*error_r = "router: cannot register hooks";
		return -1;
	}
	(void)sc_status_register(inst, router_status, r);
	if (r->aliases_path != NULL) {
		if ((r->timer = sc_timer_new(reload_tick, r)) == NULL) {
			*error_r = "router: cannot create the aliases timer";
			return -1;
		}
		sc_timer_start(r->timer, ROUTER_POLL_MS, ROUTER_POLL_MS);
	}
	return 0;
}

static void
router_instance_free(struct sc_instance *inst, void *data)
{
	struct router *r = data;

	(void)inst;
	if (r == NULL)
		return;
	r->gone = true;
	if (r->timer != NULL)
		sc_timer_free(&r->timer);
	router_unref(&r);
}

static const char *const router_depends[] = { NULL };

SC_MODULE(router,
	.version = SC_VERSION,
	.description = "local vs remote routing per recipient, aliases",
	.depends = router_depends,
	.keys = router_keys,
	.config_size = sizeof(struct router_conf),
	.instance_new = router_instance_new,
	.instance_start = router_instance_start,
	.instance_free = router_instance_free,
);
