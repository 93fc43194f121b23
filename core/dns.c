/* SPDX-License-Identifier: MIT */
/*
 * core/dns.c - asynchronous DNS (libunbound) on the event loop.
 *
 * Runs on the loop thread. libunbound resolves in its own thread
 * (ub_ctx_async) and signals finished queries on ub_fd(), which a uv_poll
 * watches; ub_process() then runs our callbacks on the loop thread - never
 * inside ub_resolve_async, so a caller's callback never runs before its
 * sc_dns_resolve_inst returned. A lookup of an instance counts as one of
 * its jobs (module.c), like sc_work_submit_inst's pool jobs.
 */
#include "core.h"
#include "dns_answer.h"

#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unbound.h>

/* Our own bound on a query (SC_DNS_TIMEOUT_MS): libunbound's retries can
 * take minutes when a forwarder is down, and a delivery attempt must not
 * wait that long. */
#define DNS_QUERY_TIMEOUT_MS SC_DNS_TIMEOUT_MS
/* How long the interface address list is trusted (addresses change). */
#define DNS_LOCAL_CACHE_MS 5000
#define DNS_ROOT_KEY "/usr/share/dns/root.key"

/* One lookup; the handle modules get (struct sc_dns_query is opaque to
 * them). Freed when its timer handle has closed. */
struct sc_dns_query {
	struct sc_dns_query *prev, *next;	/* ctx->queries or ->cancelled */
	struct dns_ctx *ctx;	/* NULL once unlinked for good         */
	struct sc_instance *inst; /* owner whose job is still counted  */
	sc_dns_fn fn;
	void *arg;
	int type;
	int async_id;
	bool submitted;		/* async_id is valid */
	bool finishing;		/* fn is running or ran                */
	bool cancelled;		/* sc_dns_cancel: fn never runs        */
	uv_timer_t timer;
	char *name;
};

struct dns_ctx {
	struct ub_ctx *ub;
	uv_poll_t *poll;	/* heap: freed in its close callback */
	struct sc_dns_query *queries;	/* pending                     */
	struct sc_dns_query *cancelled;	/* closing; job still counted  */
	size_t pending;
	char *servers_key;	/* the dns.servers it was built for */
};

struct dns_local {
	size_t n;
	struct sockaddr_storage *addrs;
	uint64_t fetched_ms;
	bool valid;
};

/* The resolver and the local-address cache. One per process, like the
 * loop they belong to. */
static struct dns_ctx *dns_cur;
static struct dns_local dns_local;
static bool dns_stopping;	/* sc_dns_deinit in progress */

static uv_loop_t *
dns_loop(void)
{
	if (sc_core != NULL && sc_core->loop != NULL)
		return sc_core->loop;
	return uv_default_loop();
}

static uint64_t
dns_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- queries ---- */

/* dns_list_unlink - takes q out of the list headed by *head */
static void
dns_list_unlink(struct sc_dns_query **head, struct sc_dns_query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		*head = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void
dns_list_push(struct sc_dns_query **head, struct sc_dns_query *q)
{
	q->prev = NULL;
	q->next = *head;
	if (q->next != NULL)
		q->next->prev = q;
	*head = q;
}

/* dns_query_unpend - q is no longer pending at ctx */
static void
dns_query_unpend(struct dns_ctx *ctx, struct sc_dns_query *q)
{
	dns_list_unlink(&ctx->queries, q);
	ctx->pending--;
	if (ctx->pending == 0 && ctx->poll != NULL)
		uv_unref((uv_handle_t *)ctx->poll);
	uv_timer_stop(&q->timer);
}

/* dns_query_timer_closed - the last step of every query; a cancelled one
 * ends its owner's job here, from the loop rather than from inside the
 * module's sc_dns_cancel call (the job end may tear the instance down) */
static void
dns_query_timer_closed(uv_handle_t *h)
{
	struct sc_dns_query *q = h->data;
	struct sc_instance *inst = q->inst;

	if (q->ctx != NULL)
		dns_list_unlink(&q->ctx->cancelled, q);
	free(q->name);
	free(q);
	if (inst != NULL)
		sc_gen_job_end(inst);
}

/* dns_query_finish - unlinks q, runs its callback with res, ends its
 * owner's job and frees it. The callback may start new queries (or even
 * reconfigure). */
static void
dns_query_finish(struct sc_dns_query *q, const struct sc_dns_result *res)
{
	struct sc_instance *inst = q->inst;

	dns_query_unpend(q->ctx, q);
	q->ctx = NULL;
	q->inst = NULL;
	q->finishing = true;
	q->fn(res, q->arg);
	uv_close((uv_handle_t *)&q->timer, dns_query_timer_closed);
	/* last: this may tear down the retired generation fn came from */
	if (inst != NULL)
		sc_gen_job_end(inst);
}

static void
dns_query_fail(struct sc_dns_query *q, enum sc_dns_status status,
	       const char *error)
{
	struct sc_dns_result res = {
		.status = status, .error = error,
	};

	dns_query_finish(q, &res);
}

static const char *
dns_rcode_name(int rcode)
{
	switch (rcode) {
	case 1: return "FORMERR";
	case 2: return "SERVFAIL";
	case 4: return "NOTIMP";
	case 5: return "REFUSED";
	default: return "error";
	}
}

/* dns_ub_callback - libunbound's completion, called from ub_process() on
 * the loop thread. Maps the result onto enum sc_dns_status. */
static void
dns_ub_callback(void *arg, int err, struct ub_result *r)
{
	struct sc_dns_query *q = arg;
	struct sc_dns_result res = { .status = SC_DNS_OK };
	struct sc_dns_rr *rr = NULL;
	char errbuf[160];

	q->submitted = false;
	if (err != 0) {
		snprintf(errbuf, sizeof(errbuf), "DNS lookup of %s failed: %s",
			 q->name, ub_strerror(err));
		dns_query_fail(q, SC_DNS_TEMPFAIL, errbuf);
		if (r != NULL)
			ub_resolve_free(r);
		return;
	}
	res.secure = r->secure != 0;
	if (r->bogus) {
		snprintf(errbuf, sizeof(errbuf),
			 "DNSSEC validation of %s failed: %s", q->name,
			 r->why_bogus != NULL ? r->why_bogus : "bogus");
		res.status = SC_DNS_BOGUS;
		res.error = errbuf;
	} else if (r->nxdomain || r->rcode == 3) {
		res.status = SC_DNS_NXDOMAIN;
	} else if (r->rcode != 0) {
		snprintf(errbuf, sizeof(errbuf), "DNS lookup of %s: %s",
			 q->name, dns_rcode_name(r->rcode));
		res.status = SC_DNS_TEMPFAIL;
		res.error = errbuf;
	} else if (!r->havedata) {
		res.status = SC_DNS_NODATA;
	} else {
		const char *perr = NULL;
		if (sc_dns_fill_records(q->type, r, &rr, &res.n, &perr) < 0) {
			snprintf(errbuf, sizeof(errbuf),
				 "DNS lookup of %s: %s", q->name, perr);
			res.status = SC_DNS_TEMPFAIL;
			res.error = errbuf;
		} else if (res.n == 0) {
			res.status = SC_DNS_NODATA;
		}
		res.rr = rr;
	}
	sc_log_debug("dns: %s type %d: status %d, %zu records%s", q->name,
		     q->type, (int)res.status, res.n,
		     res.secure ? " (secure)" : "");
	dns_query_finish(q, &res);
	free(rr);
	ub_resolve_free(r);
}

static void
dns_query_timeout(uv_timer_t *t)
{
	struct sc_dns_query *q = t->data;
	char errbuf[160];

	if (q->submitted) {
		ub_cancel(q->ctx->ub, q->async_id);
		q->submitted = false;
	}
	snprintf(errbuf, sizeof(errbuf), "DNS lookup of %s timed out",
		 q->name);
	dns_query_fail(q, SC_DNS_TEMPFAIL, errbuf);
}

static void
dns_poll_cb(uv_poll_t *p, int status, int events)
{
	(void)events;
	struct dns_ctx *ctx = p->data;
	int err;

	if (status < 0) {
		sc_log_error("dns: poll: %s", uv_strerror(status));
		return;
	}
	/* ub_process runs callbacks, which may tear down ctx on a
	 * reconfigure; ctx stays valid until this returns because
	 * deletion waits for the poll handle to close. */
	err = ub_process(ctx->ub);
	if (err != 0)
		sc_log_error("dns: %s", ub_strerror(err));
}

/* ---- context ---- */

static void
dns_poll_closed(uv_handle_t *h)
{
	free(h);
}

/* dns_servers_key - one string for a server list, to notice changes. */
static char *
dns_servers_key(const struct sc_main_config *cfg)
{
	size_t len = 1;
	char *key;

	if (cfg != NULL)
		for (size_t i = 0; i < cfg->dns_servers.n; i++)
			len += strlen(cfg->dns_servers.v[i]) + 1;
	key = malloc(len);
	if (key == NULL)
		return NULL;
	key[0] = '\0';
	if (cfg != NULL)
		for (size_t i = 0; i < cfg->dns_servers.n; i++) {
			strcat(key, cfg->dns_servers.v[i]);
			strcat(key, " ");
		}
	return key;
}

/* dns_fwd_string - "127.0.0.1:5353" / "[::1]:53" / "::1" into unbound's
 * "ip@port" form; sets *loopback when it points at this host. 0 or -1. */
static int
dns_fwd_string(const char *text, char *out, size_t outlen, bool *loopback)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL;
	unsigned char bin[16];
	size_t hl;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');
		if (end == NULL)
			return -1;
		hl = (size_t)(end - text - 1);
		if (end[1] == ':')
			port = end + 2;
		else if (end[1] != '\0')
			return -1;
		text++;
	} else {
		const char *colon = strchr(text, ':');
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			hl = (size_t)(colon - text);	/* v4:port */
			port = colon + 1;
		} else {
			hl = strlen(text);		/* v4 or bare v6 */
		}
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, text, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, bin) == 1)
		*loopback = bin[0] == 127;
	else if (inet_pton(AF_INET6, host, bin) == 1)
		*loopback = memcmp(bin, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1",
				   16) == 0;
	else
		return -1;
	if (port != NULL) {
		char *end;
		errno = 0;
		unsigned long p = strtoul(port, &end, 10);
		if (errno != 0 || *end != '\0' || p == 0 || p > 65535)
			return -1;
		snprintf(out, outlen, "%s@%lu", host, p);
	} else {
		snprintf(out, outlen, "%s", host);
	}
	return 0;
}

static int
dns_ub_fail(struct ub_ctx *ub, const char *what, int err, char **error_r)
{
	if (error_r != NULL &&
	    asprintf(error_r, "dns: %s: %s", what, ub_strerror(err)) < 0)
		*error_r = NULL;
	ub_ctx_delete(ub);
	return -1;
}

/* dns_ctx_new - a libunbound context for cfg's servers, watched on the
 * loop. 0 or -1 with a malloc'd *error_r. */
static int
dns_ctx_new(const struct sc_main_config *cfg, struct dns_ctx **ctx_r,
	    char **error_r)
{
	struct ub_ctx *ub;
	struct dns_ctx *ctx;
	bool any_loopback = false;
	int err;

	ub = ub_ctx_create();
	if (ub == NULL) {
		if (error_r != NULL)
			*error_r = strdup("dns: cannot create the resolver");
		return -1;
	}
	/* a thread, not a forked process: the fd carries results back */
	if ((err = ub_ctx_async(ub, 1)) != 0)
		return dns_ub_fail(ub, "async mode", err, error_r);
	if (cfg != NULL && cfg->dns_servers.n > 0) {
		for (size_t i = 0; i < cfg->dns_servers.n; i++) {
			char fwd[INET6_ADDRSTRLEN + 8];
			bool lo = false;

			if (dns_fwd_string(cfg->dns_servers.v[i], fwd,
					   sizeof(fwd), &lo) < 0) {
				if (error_r != NULL &&
				    asprintf(error_r,
					     "dns: bad server address '%s' "
					     "(want ip, ip:port or [ip6]:port)",
					     cfg->dns_servers.v[i]) < 0)
					*error_r = NULL;
				ub_ctx_delete(ub);
				return -1;
			}
			any_loopback |= lo;
			if ((err = ub_ctx_set_fwd(ub, fwd)) != 0)
				return dns_ub_fail(ub, fwd, err, error_r);
		}
	} else if ((err = ub_ctx_resolvconf(ub, NULL)) != 0) {
		/* no resolv.conf: unbound then resolves from the root
		 * itself, which is still correct */
		sc_log_warning("dns: /etc/resolv.conf: %s; resolving "
			       "without forwarders", ub_strerror(err));
	}
	/* a resolver on 127.0.0.1 (dnsmasq, systemd-resolved, a test
	 * server) is refused by unbound's default */
	if (any_loopback || cfg == NULL || cfg->dns_servers.n == 0)
		ub_ctx_set_option(ub, "do-not-query-localhost:", "no");
	/*
	 * DNSSEC: with the root trust anchor libunbound validates itself, so
	 * `secure` is true only for really signed answers (DANE needs it).
	 * The special-use names of RFC 6761 (test, example, invalid,
	 * localhost) and the reverse zones of the documentation networks
	 * (RFC 5737, RFC 3849) have no signed delegation and no real data:
	 * mark them insecure so answers under them are insecure rather than
	 * bogus, and keep unbound's built-in empty zones for them from
	 * hiding the records of a local server.
	 */
	if (access(DNS_ROOT_KEY, R_OK) == 0) {
		/* a plain anchor file: RFC 5011 updates would need the
		 * (read-only, package-owned) file to be writable */
		if ((err = ub_ctx_add_ta_file(ub, DNS_ROOT_KEY)) != 0)
			sc_log_warning("dns: trust anchor %s: %s",
				       DNS_ROOT_KEY, ub_strerror(err));
	}
	static const char *const special[] = {
		"test.", "example.", "invalid.", "localhost.",
		"2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
		"113.0.203.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.", NULL
	};
	/* the built-in empty zones among them (localhost is real data) */
	static const char *const unhide[] = {
		"test.", "invalid.", "2.0.192.in-addr.arpa.",
		"100.51.198.in-addr.arpa.", "113.0.203.in-addr.arpa.",
		"8.b.d.0.1.0.0.2.ip6.arpa.", NULL
	};
	for (size_t i = 0; special[i] != NULL; i++)
		ub_ctx_set_option(ub, "domain-insecure:", special[i]);
	/* last: removing a zone finalizes the options ("local-zone:
	 * nodefault" through set_option has no effect in libunbound) */
	for (size_t i = 0; unhide[i] != NULL; i++)
		ub_ctx_zone_remove(ub, unhide[i]);

	ctx = calloc(1, sizeof(*ctx));
	if (ctx == NULL || (ctx->poll = malloc(sizeof(*ctx->poll))) == NULL) {
		free(ctx);
		ub_ctx_delete(ub);
		if (error_r != NULL)
			*error_r = strdup("dns: out of memory");
		return -1;
	}
	ctx->ub = ub;
	ctx->servers_key = dns_servers_key(cfg);
	if ((err = uv_poll_init(dns_loop(), ctx->poll, ub_fd(ub))) != 0) {
		if (error_r != NULL &&
		    asprintf(error_r, "dns: watching the resolver: %s",
			     uv_strerror(err)) < 0)
			*error_r = NULL;
		free(ctx->poll);
		free(ctx->servers_key);
		free(ctx);
		ub_ctx_delete(ub);
		return -1;
	}
	ctx->poll->data = ctx;
	uv_poll_start(ctx->poll, UV_READABLE, dns_poll_cb);
	/* only pending queries keep the loop alive */
	uv_unref((uv_handle_t *)ctx->poll);
	*ctx_r = ctx;
	return 0;
}

/* dns_ctx_settle - fails every pending query of ctx (TEMPFAIL) and ends
 * the jobs of cancelled ones whose handles have not closed yet, so a
 * generation waiting for them goes now, while the rest of the core is
 * still up. Callbacks may start new queries (refused while stopping). */
static void
dns_ctx_settle(struct dns_ctx *ctx)
{
	while (ctx->queries != NULL) {
		struct sc_dns_query *q = ctx->queries;

		if (q->submitted) {
			ub_cancel(ctx->ub, q->async_id);
			q->submitted = false;
		}
		dns_query_fail(q, SC_DNS_TEMPFAIL,
			       "DNS resolver shut down or reconfigured");
	}
	while (ctx->cancelled != NULL) {
		struct sc_dns_query *q = ctx->cancelled;
		struct sc_instance *inst = q->inst;

		dns_list_unlink(&ctx->cancelled, q);
		q->ctx = NULL;
		q->inst = NULL;
		if (inst != NULL)
			sc_gen_job_end(inst);
	}
}

/* dns_ctx_free - settles every query of ctx and frees it. */
static void
dns_ctx_free(struct dns_ctx *ctx)
{
	dns_ctx_settle(ctx);
	/* stop polling before the fd goes away with the context */
	uv_poll_stop(ctx->poll);
	uv_close((uv_handle_t *)ctx->poll, dns_poll_closed);
	ub_ctx_delete(ctx->ub);
	free(ctx->servers_key);
	free(ctx);
}

int
sc_dns_init(const struct sc_main_config *cfg, char **error_r)
{
	struct dns_ctx *ctx;
	char *key;

	if (error_r != NULL)
		*error_r = NULL;
	/* a reload with the same servers keeps the context and its cache */
	if (dns_cur != NULL) {
		key = dns_servers_key(cfg);
		if (key != NULL && strcmp(key, dns_cur->servers_key) == 0) {
			free(key);
			return 0;
		}
		free(key);
	}
	if (dns_ctx_new(cfg, &ctx, error_r) < 0)
		return -1;
	/* switch first: callbacks of the old context's failed queries may
	 * resolve again, and must land on the new one */
	struct dns_ctx *old = dns_cur;
	dns_cur = ctx;
	if (old != NULL)
		dns_ctx_free(old);
	if (cfg != NULL && cfg->dns_servers.n > 0)
		sc_log_debug("dns: forwarding to %s", ctx->servers_key);
	return 0;
}

void
sc_dns_stop(void)
{
	dns_stopping = true;
	if (dns_cur != NULL)
		dns_ctx_settle(dns_cur);
}

void
sc_dns_deinit(void)
{
	if (dns_cur != NULL) {
		struct dns_ctx *ctx = dns_cur;

		dns_stopping = true;
		dns_cur = NULL;
		dns_ctx_free(ctx);
		dns_stopping = false;
	}
	free(dns_local.addrs);
	memset(&dns_local, 0, sizeof(dns_local));
}

int
sc_dns_resolve_inst(struct sc_instance *inst, const char *name, int type,
		    sc_dns_fn fn, void *arg, struct sc_dns_query **query_r)
{
	struct sc_dns_query *q;
	struct dns_ctx *ctx;
	int err;

	if (query_r != NULL)
		*query_r = NULL;
	if (name == NULL || fn == NULL || name[0] == '\0' || dns_stopping ||
	    !sc_gen_job_allowed(inst, "DNS lookup"))
		return -1;
	/* satchelctl and tests may resolve without sc_dns_init: use the
	 * system resolver then */
	if (dns_cur == NULL && sc_dns_init(NULL, NULL) < 0)
		return -1;
	ctx = dns_cur;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -1;
	q->name = strdup(name);
	if (q->name == NULL) {
		free(q);
		return -1;
	}
	q->ctx = ctx;
	q->fn = fn;
	q->arg = arg;
	q->type = type;
	uv_timer_init(dns_loop(), &q->timer);
	q->timer.data = q;
	dns_list_push(&ctx->queries, q);
	if (ctx->pending++ == 0)
		uv_ref((uv_handle_t *)ctx->poll);
	q->submitted = true;
	err = ub_resolve_async(ctx->ub, name, type, 1 /* IN */, q,
			       dns_ub_callback, &q->async_id);
	if (err != 0) {
		sc_log_error("dns: resolving %s: %s", name, ub_strerror(err));
		q->submitted = false;
		/* unlink without calling back: the caller sees -1 */
		dns_query_unpend(ctx, q);
		q->ctx = NULL;
		uv_close((uv_handle_t *)&q->timer, dns_query_timer_closed);
		return -1;
	}
	/* Counted only now: nothing can call back before we return
	 * (answers come through ub_process on the loop), and a failure
	 * above must not end a job - that could tear the generation down
	 * under the caller. */
	if (inst != NULL && inst->gen != NULL) {
		q->inst = inst;
		sc_gen_job_begin(inst);
	}
	uv_timer_start(&q->timer, dns_query_timeout, DNS_QUERY_TIMEOUT_MS, 0);
	if (query_r != NULL)
		*query_r = q;
	return 0;
}

int
sc_dns_resolve(const char *name, int type, sc_dns_fn fn, void *arg)
{
	return sc_dns_resolve_inst(NULL, name, type, fn, arg, NULL);
}

/* sc_dns_cancel - fn will not run; the job of the owner ends when the
 * timer handle has closed (dns_query_timer_closed) */
void
sc_dns_cancel(struct sc_dns_query *q)
{
	struct dns_ctx *ctx;

	if (q == NULL || q->finishing || q->cancelled || q->ctx == NULL)
		return;
	ctx = q->ctx;
	q->cancelled = true;
	if (q->submitted) {
		/* libunbound then never calls dns_ub_callback for it */
		ub_cancel(ctx->ub, q->async_id);
		q->submitted = false;
	}
	dns_query_unpend(ctx, q);
	dns_list_push(&ctx->cancelled, q);
	sc_log_debug("dns: %s type %d: cancelled", q->name, q->type);
	uv_close((uv_handle_t *)&q->timer, dns_query_timer_closed);
}

/* ---- local addresses ---- */

/* dns_parse_addr - textual address (maybe [bracketed], v4-mapped) into a
 * normalised sockaddr. 0 or -1. */
static int
dns_parse_addr(const char *text, struct sockaddr_storage *ss)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(text);
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	if (len >= sizeof(buf))
		return -1;
	if (text[0] == '[' && len > 2 && text[len - 1] == ']') {
		memcpy(buf, text + 1, len - 2);
		buf[len - 2] = '\0';
	} else {
		memcpy(buf, text, len + 1);
	}
	char *pct = strchr(buf, '%');	/* fe80::1%eth0 */
	if (pct != NULL)
		*pct = '\0';
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			struct in_addr a4;
			memcpy(&a4, &s6->sin6_addr.s6_addr[12], 4);
			memset(ss, 0, sizeof(*ss));
			s4->sin_family = AF_INET;
			s4->sin_addr = a4;
		}
		return 0;
	}
	return -1;
}

static bool
dns_addr_equal(const struct sockaddr_storage *a,
	       const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
			      &((const struct sockaddr_in *)b)->sin_addr,
			      4) == 0;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

/* dns_local_refresh - re-reads the interface addresses when the cached
 * list is older than DNS_LOCAL_CACHE_MS. Keeps the old list on error. */
static void
dns_local_refresh(void)
{
	struct ifaddrs *ifa, *i;
	struct sockaddr_storage *addrs;
	size_t n = 0, cap = 0;
	uint64_t now = dns_mono_ms();

	if (dns_local.valid && now - dns_local.fetched_ms < DNS_LOCAL_CACHE_MS)
		return;
	if (getifaddrs(&ifa) < 0) {
		sc_log_warning("dns: getifaddrs: %s", strerror(errno));
		return;
	}
	for (i = ifa; i != NULL; i = i->ifa_next)
		if (i->ifa_addr != NULL &&
		    (i->ifa_addr->sa_family == AF_INET ||
		     i->ifa_addr->sa_family == AF_INET6))
			cap++;
	addrs = calloc(cap == 0 ? 1 : cap, sizeof(*addrs));
	if (addrs == NULL) {
		freeifaddrs(ifa);
		return;
	}
	for (i = ifa; i != NULL; i = i->ifa_next) {
		if (i->ifa_addr == NULL)
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			memcpy(&addrs[n++], i->ifa_addr,
			       sizeof(struct sockaddr_in));
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			memcpy(&addrs[n++], i->ifa_addr,
			       sizeof(struct sockaddr_in6));
		}
	}
	freeifaddrs(ifa);
	free(dns_local.addrs);
	dns_local.addrs = addrs;
	dns_local.n = n;
	dns_local.fetched_ms = now;
	dns_local.valid = true;
}

SC_API bool
sc_dns_is_local_address(const char *addr)
{
	struct sockaddr_storage ss;

	if (addr == NULL || dns_parse_addr(addr, &ss) < 0)
		return false;
	dns_local_refresh();
	/* the exact address, not the interface's subnet: 127.0.0.2 is
	 * another host for us even though lo carries 127.0.0.0/8 */
	for (size_t i = 0; i < dns_local.n; i++)
		if (dns_addr_equal(&ss, &dns_local.addrs[i]))
			return true;
	return false;
}
