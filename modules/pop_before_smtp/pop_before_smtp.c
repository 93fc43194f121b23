/* SPDX-License-Identifier: MIT */
/*
 * pop_before_smtp - lets an IP relay for a while after a POP3/IMAP login:
 * the table in memory, the hooks and the instance's life (its file and
 * the feed: pop_before_smtp_file.c; sharing through a store:
 * pop_before_smtp_store.c).
 * Event and hook callbacks and timers run on the event loop; the table
 * file is read once at the start, and written once at teardown, on the
 * loop.
 */
#define _GNU_SOURCE	/* asprintf */
#include "pop_before_smtp_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PBS_FEED_POLL_MS	1000
#define PBS_PURGE_MS		60000

static const struct sc_config_key pbs_keys[] = {
	{ .name = "window", .type = SC_KEY_DURATION,
	  .offset = offsetof(struct pbs_conf, window), .def = "30m",
	  .doc = "how long after a login the client IP may relay" },
	{ .name = "feed", .type = SC_KEY_PATH,
	  .offset = offsetof(struct pbs_conf, feed),
	  .doc = "file other servers append logged-in IPs to, one a line" },
	{ .name = "max_entries", .type = SC_KEY_UINT,
	  .offset = offsetof(struct pbs_conf, max_entries), .def = "10000",
	  .doc = "table size bound; when full the oldest entry is dropped" },
	{ .name = "store", .type = SC_KEY_STR,
	  .offset = offsetof(struct pbs_conf, store),
	  .doc = "redis://HOST:PORT/DB or unix:/PATH: logins seen by any "
		 "satcheld using that store open relay on every one" },
	{ .name = "store_password_file", .type = SC_KEY_PATH,
	  .offset = offsetof(struct pbs_conf, store_password_file),
	  .doc = "file whose first line is the store's password" },
	{ .name = "store_failure", .type = SC_KEY_ENUM,
	  .offset = offsetof(struct pbs_conf, store_failure), .def = "local",
	  .enum_values = "local|tempfail",
	  .doc = "store down or slow: local (this host's logins only) or "
		 "tempfail (451)" },
	{ .name = "store_timeout", .type = SC_KEY_DURATION,
	  .offset = offsetof(struct pbs_conf, store_timeout), .def = "200ms",
	  .doc = "how long a relay check waits for the store" },
	{ .name = "store_prefix", .type = SC_KEY_STR,
	  .offset = offsetof(struct pbs_conf, store_prefix),
	  .doc = "prefix of the store keys (default satchel:NAME: with the "
		 "instance name)" },
	{ .name = "listeners", .type = SC_KEY_STR_LIST,
	  .offset = offsetof(struct pbs_conf, listeners), .def = "[mx]",
	  .doc = "the smtp listener modes it lets clients send through "
		 "without AUTH: mx, submission" },
	{ .name = NULL }
};

int64_t
pbs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
pbs_ip_parse(const char *text, struct pbs_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, text, ip->a) == 1) {
		ip->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, ip->a) == 1) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		/* ::ffff:a.b.c.d is the v4 client it stands for */
		if (memcmp(ip->a, mapped, 12) == 0) {
			memmove(ip->a, ip->a + 12, 4);
			memset(ip->a + 4, 0, 12);
			ip->family = AF_INET;
		} else {
			ip->family = AF_INET6;
		}
		return 0;
	}
	return -1;
}

void
pbs_ip_format(const struct pbs_ip *ip, char *buf, size_t len)
{
	if (inet_ntop(ip->family, ip->a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

static size_t
pbs_ip_hash(const struct pbs_inst *pd, const struct pbs_ip *ip)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ ip->a[i]) * 16777619u;
	h ^= (uint32_t)ip->family;
	return h & (pd->nbuckets - 1);
}

static struct pbs_ent **
pbs_find(struct pbs_inst *pd, const struct pbs_ip *ip)
{
	struct pbs_ent **ep = &pd->buckets[pbs_ip_hash(pd, ip)];

	for (; *ep != NULL; ep = &(*ep)->hnext)
		if ((*ep)->ip.family == ip->family &&
		    memcmp((*ep)->ip.a, ip->a, 16) == 0)
			return ep;
	return ep;
}

static void
pbs_list_unlink(struct pbs_inst *pd, struct pbs_ent *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		pd->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		pd->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
pbs_list_append(struct pbs_inst *pd, struct pbs_ent *e)
{
	e->prev = pd->tail;
	e->next = NULL;
	if (pd->tail != NULL)
		pd->tail->next = e;
	else
		pd->head = e;
	pd->tail = e;
}

/* pbs_remove - drop the entry *ep points at (a hash chain link) */
static void
pbs_remove(struct pbs_inst *pd, struct pbs_ent **ep)
{
	struct pbs_ent *e = *ep;

	*ep = e->hnext;
	pbs_list_unlink(pd, e);
	free(e);
	pd->count--;
}

/* pbs_record - ip may relay until expires. Keeps the later expiry when
 * the IP is known; drops the oldest entry when the table is full. */
bool
pbs_record(struct pbs_inst *pd, const struct pbs_ip *ip, int64_t expires)
{
	struct pbs_ent **ep = pbs_find(pd, ip), *e;

	if (*ep != NULL) {
		e = *ep;
		if (e->expires >= expires)
			return false;
		e->expires = expires;
		pbs_list_unlink(pd, e);
		pbs_list_append(pd, e);
		return true;
	}
	if (pd->count >= pd->max_entries) {
		struct pbs_ent *old = pd->head;
		char txt[INET6_ADDRSTRLEN];

		pbs_ip_format(&old->ip, txt, sizeof(txt));
		sc_log_notice("pop_before_smtp: table full (%" PRIu64
			      " entries): dropping %s", pd->max_entries, txt);
		pbs_remove(pd, pbs_find(pd, &old->ip));
		ep = pbs_find(pd, ip);
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return false;
	e->ip = *ip;
	e->expires = expires;
	*ep = e;
	pbs_list_append(pd, e);
	pd->count++;
	return true;
}

/* pbs_purge - drop every expired entry */
static void
pbs_purge(struct pbs_inst *pd)
{
	int64_t now = pbs_now();
	struct pbs_ent *e, *n;

	for (e = pd->head; e != NULL; e = n) {
		n = e->next;
		if (e->expires <= now)
			pbs_remove(pd, pbs_find(pd, &e->ip));
	}
}

void
pbs_inst_unref(struct pbs_inst *pd)
{
	if (--pd->refs > 0)
		return;
	while (pd->head != NULL)
		pbs_remove(pd, pbs_find(pd, &pd->head->ip));
	free(pd->buckets);
	free(pd->feed);
	free(pd->table_path);
	free(pd->lock_path);
	free(pd);
}

static void
pbs_purge_timer(struct sc_timer *t, void *arg)
{
	(void)t;
	pbs_purge(arg);
}

/* ---- hooks and events ---- */

/* pbs_login - a POP3 (or IMAP) login: the client IP may relay */
static void
pbs_login(const struct sc_event *ev, void *data)
{
	struct pbs_inst *pd = data;
	struct pbs_ip ip;

	if (ev->protocol == NULL || ev->client_ip == NULL ||
	    (strcmp(ev->protocol, "pop3") != 0 &&
	     strcmp(ev->protocol, "imap") != 0))
		return;
	if (pbs_ip_parse(ev->client_ip, &ip) < 0)
		return;
	if (pbs_record(pd, &ip, pbs_now() + (int64_t)pd->window)) {
		sc_log_session(SC_LOG_DEBUG, ev->session,
			       "pop_before_smtp: %s may relay for %" PRIu64
			       "s (%s login of %s)", ev->client_ip,
			       pd->window / 1000, ev->protocol,
			       ev->user != NULL ? ev->user : "?");
		pbs_save_schedule(pd);
	}
	if (pd->store != NULL)
		pbs_store_login(pd, &ip);
}

void
pbs_allowed(struct pbs_inst *pd, struct sc_hook_call *call, const char *ip,
	    const char *rcpt, int64_t login_ms)
{
	char when[64] = "on a host sharing the store";

	if (login_ms > 0) {
		time_t t = (time_t)(login_ms / 1000);
		struct tm tm;

		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(when, sizeof(when), "at %Y-%m-%dT%H:%M:%SZ",
			     &tm) == 0)
			snprintf(when, sizeof(when), "recently");
	}
	pd->allowed++;
	sc_log_session(SC_LOG_INFO, sc_hook_session(call), "pop_before_smtp: "
		       "relay allowed for %s to %s (login %s, within the last "
		       "%" PRIu64 "s)", ip, rcpt, when, pd->window / 1000);
	/* what the client, and doctor's relay probe, read in the 250 */
	sc_reply_set(call, 250, "2.1.5", "relay allowed by pop_before_smtp "
		     "for %s (POP login %s)", ip, when);
}

/* pbs_mode_on - does `listeners` take the session's listener? A session
 * without a mode (another protocol module) counts as mx. */
static bool
pbs_mode_on(const struct pbs_inst *pd, struct sc_session *s)
{
	const char *mode = sc_session_mode(s);

	if (mode != NULL && strcmp(mode, "submission") == 0)
		return pd->mode_submission;
	return pd->mode_mx;
}

/* pbs_check - OK for a session whose IP logged in recently; rcpt is what
 * the log line names ("any" for a whole submission session) */
static enum sc_result
pbs_check(struct pbs_inst *pd, struct sc_hook_call *call, const char *rcpt)
{
	struct sc_session *s = sc_hook_session(call);
	struct pbs_ent **ep, *e;
	const char *ipt;
	struct pbs_ip ip;

	if (s == NULL || !pbs_mode_on(pd, s) ||
	    (ipt = sc_session_client_ip(s)) == NULL ||
	    pbs_ip_parse(ipt, &ip) < 0)
		return SC_CONT;
	ep = pbs_find(pd, &ip);
	e = *ep;
	if (e != NULL && e->expires <= pbs_now()) {
		pbs_remove(pd, ep);	/* lazy expiry */
		e = NULL;
	}
	if (e == NULL)
		return pd->store != NULL ?
			pbs_store_relay(pd, call, &ip, rcpt) : SC_CONT;
	pbs_allowed(pd, call, ipt, rcpt, e->expires - (int64_t)pd->window);
	return SC_OK;
}

/* pbs_relay - SC_HOOK_RELAY: this recipient, for an IP with a recent
 * login */
static enum sc_result
pbs_relay(struct sc_hook_call *call, void *data)
{
	const struct sc_rcpt_request *rq = sc_hook_arg(call);

	if (rq == NULL || rq->address == NULL)
		return SC_CONT;
	return pbs_check(data, call, rq->address);
}

/* pbs_submit - SC_HOOK_SUBMIT: a whole session on a submission listener
 * (`listeners` names submission) */
static enum sc_result
pbs_submit(struct sc_hook_call *call, void *data)
{
	return pbs_check(data, call, "any");
}

static size_t
pbs_status(char *buf, size_t len, void *data)
{
	struct pbs_inst *pd = data;
	int n;

	n = snprintf(buf, len, "pop_before_smtp entries: %zu/%" PRIu64 "\n"
		     "pop_before_smtp relays allowed: %" PRIu64 "%s%s%s%s",
		     pd->count, pd->max_entries, pd->allowed,
		     pd->store != NULL ? "\npop_before_smtp store: " : "",
		     pd->store != NULL ? sc_store_url(pd->store) : "",
		     pd->store == NULL ? "" : sc_store_up(pd->store) ?
		     " up" : " down", "");
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

/* ---- instance lifecycle ---- */

static int
pbs_instance_new(struct sc_instance *inst, const void *config,
		 void **data_r, const char **error_r)
{
	const struct pbs_conf *conf = config;
	struct pbs_inst *pd;

	(void)inst;
	if (conf->window == 0) {
		*error_r = "window: must be longer than 0s";
		return -1;
	}
	if (conf->max_entries == 0) {
		*error_r = "max_entries: must be at least 1";
		return -1;
	}
	if (conf->store != NULL && sc_store_url_check(conf->store, error_r) < 0)
		return -1;
	if (conf->listeners.n == 0) {
		*error_r = "listeners: name at least one of mx, submission";
		return -1;
	}
	for (size_t i = 0; i < conf->listeners.n; i++)
		if (strcmp(conf->listeners.v[i], "mx") != 0 &&
		    strcmp(conf->listeners.v[i], "submission") != 0) {
			*error_r = "listeners: each must be mx or submission";
			return -1;
		}
	if (conf->store_timeout == 0 || conf->store_timeout > 10000) {
		*error_r = "store_timeout: must be between 1ms and 10s";
		return -1;
	}
	pd = calloc(1, sizeof(*pd));
	if (pd == NULL)
		goto nomem;
	pd->refs = 1;
	pd->inst = inst;
	pd->conf = conf;
	pd->window = conf->window;
	pd->max_entries = conf->max_entries;
	for (size_t i = 0; i < conf->listeners.n; i++) {
		if (strcmp(conf->listeners.v[i], "mx") == 0)
			pd->mode_mx = true;
		else
			pd->mode_submission = true;
	}
	/* buckets: a power of two near max_entries, capped */
	pd->nbuckets = 64;
	while (pd->nbuckets < pd->max_entries && pd->nbuckets < (1u << 20))
		pd->nbuckets <<= 1;
	pd->buckets = calloc(pd->nbuckets, sizeof(*pd->buckets));
	if (pd->buckets == NULL)
		goto nomem;
	if (conf->feed != NULL && *conf->feed != '\0' &&
	    (pd->feed = strdup(conf->feed)) == NULL)
		goto nomem;
	*data_r = pd;
	return 0;
nomem:
	if (pd != NULL)
		pbs_inst_unref(pd);
	*error_r = "out of memory";
	return -1;
}

static int
pbs_instance_start(struct sc_instance *inst, void *data,
		   const char **error_r)
{
	struct pbs_inst *pd = data;
	const char *dir = sc_instance_state_dir(inst);
	struct pbs_rec *recs;
	struct stat st;
	size_t n;

	if (dir == NULL) {
		*error_r = "cannot create the state directory";
		return -1;
	}
	if (asprintf(&pd->table_path, "%s/table", dir) < 0) {
		pd->table_path = NULL;
		goto nomem;
	}
	if (asprintf(&pd->lock_path, "%s/table.lock", dir) < 0) {
		pd->lock_path = NULL;
		goto nomem;
	}
	/* XXX: a small blocking read at start-up, before any session runs;
	 * the table is bounded by max_entries lines */
	if (pbs_table_read(pd->table_path, pbs_now(), &recs, &n) < 0) {
		sc_log_warning("pop_before_smtp: cannot read %s: %s; "
			       "starting empty", pd->table_path,
			       strerror(errno));
	} else {
		pbs_merge(pd, recs, n);
		free(recs);
		if (stat(pd->table_path, &st) == 0) {
			pd->table_ino = st.st_ino;
			pd->table_mtime = st.st_mtim;
		}
		sc_log_debug("pop_before_smtp: %zu entries loaded from %s",
			     pd->count, pd->table_path);
	}
	if (pd->feed != NULL && stat(pd->feed, &st) == 0) {
		/* follow from its current end */
		pd->feed_known = true;
		pd->feed_dev = st.st_dev;
		pd->feed_ino = st.st_ino;
		pd->feed_off = (uint64_t)st.st_size;
	}
	/* else: created later, so everything in it is new (feed_known
	 * false makes the first poll read it from the start) */
	pd->save_timer = sc_timer_new(pbs_save_timer, pd);
	pd->purge_timer = sc_timer_new(pbs_purge_timer, pd);
	pd->poll_timer = sc_timer_new(pbs_poll_timer, pd);
	if (pd->save_timer == NULL || pd->purge_timer == NULL ||
	    pd->poll_timer == NULL)
		goto nomem;
	sc_timer_start(pd->purge_timer, PBS_PURGE_MS, PBS_PURGE_MS);
	sc_timer_start(pd->poll_timer, PBS_FEED_POLL_MS, PBS_FEED_POLL_MS);
	if (sc_event_subscribe(inst, SC_EVENT_LOGIN, pbs_login, pd) < 0 ||
	    sc_hook_register(inst, SC_HOOK_RELAY, pbs_relay, pd) < 0 ||
	    (pd->mode_submission &&
	     sc_hook_register(inst, SC_HOOK_SUBMIT, pbs_submit, pd) < 0)) {
		*error_r = "cannot register the relay hooks";
		return -1;
	}
	(void)sc_status_register(inst, pbs_status, pd);
	return pbs_store_start(pd, error_r);
nomem:
	*error_r = "out of memory";
	return -1;
}

static void
pbs_instance_free(struct sc_instance *inst, void *data)
{
	struct pbs_inst *pd = data;

	(void)inst;
	sc_store_close(&pd->store);
	sc_timer_free(&pd->save_timer);
	sc_timer_free(&pd->purge_timer);
	sc_timer_free(&pd->poll_timer);
	if (pd->dirty && pd->table_path != NULL) {
		struct pbs_rec *recs, *merged;
		size_t n, nm;

		/* XXX: a blocking write on the loop, once, at reload or
		 * shutdown: logins of the last second must survive a
		 * restart, and a pool job may not run anymore */
		recs = pbs_snapshot(pd, &n);
		if (recs != NULL &&
		    pbs_table_write(pd->table_path, pd->lock_path, recs, n,
				    pd->max_entries, &merged, &nm) == 0)
			free(merged);
		else
			sc_log_error("pop_before_smtp: cannot write %s: %s",
				     pd->table_path, strerror(errno));
		free(recs);
	}
	pd->dead = true;
	pbs_inst_unref(pd);
}

SC_MODULE(pop_before_smtp,
	.version = "1.0",
	.description = "relay for IPs that logged in to POP3 (or IMAP) "
		       "recently",
	.keys = pbs_keys,
	.config_size = sizeof(struct pbs_conf),
	.instance_new = pbs_instance_new,
	.instance_start = pbs_instance_start,
	.instance_free = pbs_instance_free,
);
