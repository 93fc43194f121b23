/* SPDX-License-Identifier: MIT */
/*
 * ratelimit - connection and message limits (the seed article's "421 Too
 * many concurrent SMTP connections", Exim's smtp_accept_max), per-IP and
 * per-sender rates and an AUTH failure lockout. Runs on the loop thread
 * only; every table is bounded whatever the number of client addresses.
 */
#include <arpa/inet.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "ratelimit_int.h"

static const struct sc_config_key rl_keys[] = {
	{ "max_connections", SC_KEY_UINT,
	  offsetof(struct rl_conf, max_connections), "100", 0,
	  "server-wide concurrent connections (Exim's smtp_accept_max); 0 = off",
	  NULL, NULL, 0 },
	{ "max_connections_per_ip", SC_KEY_UINT,
	  offsetof(struct rl_conf, max_connections_per_ip), "20", 0,
	  "concurrent connections from one client address; 0 = off",
	  NULL, NULL, 0 },
	{ "connections_per_ip", SC_KEY_RATE,
	  offsetof(struct rl_conf, connections_per_ip), "60/1m", 0,
	  "new connections from one client address per period", NULL, NULL, 0 },
	{ "messages_per_sender", SC_KEY_RATE,
	  offsetof(struct rl_conf, messages_per_sender), "500/1h", 0,
	  "messages per authenticated user, else per MAIL FROM address",
	  NULL, NULL, 0 },
	{ "auth_failures_per_ip", SC_KEY_RATE,
	  offsetof(struct rl_conf, auth_failures_per_ip), "10/10m", 0,
	  "failed logins before the address is locked out of AUTH for the period",
	  NULL, NULL, 0 },
	{ "exempt", SC_KEY_CIDR_LIST, offsetof(struct rl_conf, exempt), NULL, 0,
	  "client networks the per-IP, sender and AUTH limits never apply to",
	  NULL, NULL, 0 },
	{ "ipv6_prefix", SC_KEY_UINT, offsetof(struct rl_conf, ipv6_prefix),
	  "64", 0, "IPv6 clients are counted per network of this prefix length",
	  NULL, NULL, 0 },
	{ "max_tracked", SC_KEY_UINT, offsetof(struct rl_conf, max_tracked),
	  "65536", 0,
	  "bound on the client addresses and senders remembered (memory bound)",
	  NULL, NULL, 0 },
	{ "protocols", SC_KEY_STR_LIST, offsetof(struct rl_conf, protocols),
	  "[smtp]", 0, "listener protocols whose connections are limited",
	  NULL, NULL, 0 },
	{ "store", SC_KEY_STR, offsetof(struct rl_conf, store), NULL, 0,
	  "redis://HOST:PORT/DB or unix:/PATH: share the per-IP, sender and "
	  "AUTH limits with every satcheld using that store", NULL, NULL, 0 },
	{ "store_password_file", SC_KEY_PATH,
	  offsetof(struct rl_conf, store_password_file), NULL, 0,
	  "file whose first line is the store's password", NULL, NULL, 0 },
	{ "store_failure", SC_KEY_ENUM, offsetof(struct rl_conf, store_failure),
	  "local", 0, "store down or slow: local (decide from this host's "
	  "counts) or tempfail (4xx)", "local|tempfail", NULL, 0 },
	{ "store_timeout", SC_KEY_DURATION,
	  offsetof(struct rl_conf, store_timeout), "200ms", 0,
	  "how long a check waits for the store", NULL, NULL, 0 },
	{ "store_prefix", SC_KEY_STR, offsetof(struct rl_conf, store_prefix),
	  NULL, 0, "prefix of the store keys (default satchel:NAME: with "
	  "the instance name)", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

const char *const rl_kind_names[RL_HIT_COUNT] = {
	"max_connections", "max_connections_per_ip", "connections_per_ip",
	"messages_per_sender", "auth_failures_per_ip",
};

/* rl_bucket_take - refill b for rate at now; take one token if there is. */
bool
rl_bucket_take(struct rl_bucket *b, const struct sc_rate *rate, uint64_t now)
{
	if (rate->count == 0 || rate->period_ms == 0)
		return true;
	if (b->stamp_ms == 0) {
		b->tokens = (double)rate->count;
	} else if (now > b->stamp_ms) {
		b->tokens += (double)(now - b->stamp_ms) *
			(double)rate->count / (double)rate->period_ms;
		if (b->tokens > (double)rate->count)
			b->tokens = (double)rate->count;
	}
	b->stamp_ms = now;
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

/* rl_hash - FNV-1a over data, seeded per process. */
static uint64_t
rl_hash(uint64_t seed, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 1469598103934665603ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ULL;
	}
	return h ? h : 1;
}

/* rl_ip_key - the table key of a client address (IPv6 masked to prefix). */
bool
rl_ip_key(const struct sockaddr *sa, unsigned prefix, unsigned char key[16],
	  unsigned char *family_r)
{
	memset(key, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family_r = 4;
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		memcpy(key, a->s6_addr + 12, 4);
		*family_r = 4;
		return true;
	}
	memcpy(key, a->s6_addr, 16);
	if (prefix > 128)
		prefix = 128;
	for (unsigned bit = prefix; bit < 128; bit++)
		key[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
	*family_r = 6;
	return true;
}

/* Every key lives within RL_WINDOW slots of its hash position; lookups
 * scan the whole window, so entries can be replaced in place without
 * tombstones. */
#define RL_WINDOW 32

/*
 * rl_ip_find - the entry of key; with create, made when missing. When the
 * table holds max_tracked entries, the least recently seen idle entry of
 * the window is reused, so an attacker cycling through addresses cannot
 * grow it. NULL when the window has only busy entries (the caller then
 * skips per-IP accounting; max_connections still bounds those).
 */
struct rl_ip *
rl_ip_find(struct rl_state *st, const unsigned char key[16],
	   unsigned char family, uint64_t now, bool create)
{
	size_t mask = st->ip_cap - 1;
	size_t start = rl_hash(st->hash_seed, key, 16) & mask;
	struct rl_ip *empty = NULL, *victim = NULL;

	for (size_t i = 0; i < RL_WINDOW && i < st->ip_cap; i++) {
		struct rl_ip *e = &st->ips[(start + i) & mask];

		if (e->family == family && memcmp(e->key, key, 16) == 0)
			return e;
		if (e->family == 0) {
			if (empty == NULL)
				empty = e;
		} else if (e->concurrent == 0 && (victim == NULL ||
			   e->last_seen_ms < victim->last_seen_ms)) {
			victim = e;
		}
	}
	if (!create)
		return NULL;
	if (empty != NULL && st->ip_used < st->max_tracked) {
		victim = empty;
		st->ip_used++;
	}
	if (victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	memcpy(victim->key, key, 16);
	victim->family = family;
	victim->last_seen_ms = now;
	return victim;
}

/* rl_sender_find - like rl_ip_find, for sender hashes (always creates). */
static struct rl_sender *
rl_sender_find(struct rl_state *st, uint64_t hash, uint64_t now)
{
	size_t mask = st->sender_cap - 1;
	struct rl_sender *empty = NULL, *victim = NULL;

	for (size_t i = 0; i < RL_WINDOW && i < st->sender_cap; i++) {
		struct rl_sender *e = &st->senders[(hash + i) & mask];

		if (e->hash == hash)
			return e;
		if (e->hash == 0) {
			if (empty == NULL)
				empty = e;
		} else if (victim == NULL ||
			   e->last_seen_ms < victim->last_seen_ms) {
			victim = e;
		}
	}
	if (empty != NULL && st->sender_used < st->max_tracked) {
		victim = empty;
		st->sender_used++;
	}
	if (victim == NULL)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->hash = hash;
	victim->last_seen_ms = now;
	return victim;
}

/* rl_pow2 - the smallest power of two >= n (n >= 1). */
static size_t
rl_pow2(uint64_t n)
{
	size_t p = 16;

	while (p < n && p < ((size_t)1 << 40))
		p <<= 1;
	return p;
}

/* rl_state_free - the last instance holding the counters went. */
static void
rl_state_free(void *p)
{
	struct rl_state *st = p;

	free(st->ips);
	free(st->senders);
	free(st);
}

/* rl_state_attach - the counters of the instance before this one (a
 * reload), else new ones. */
static struct rl_state *
rl_state_attach(struct sc_instance *inst, const struct rl_conf *conf,
		const char **error_r)
{
	struct rl_state *st = sc_instance_state_get(inst);
	uint64_t id;

	if (st != NULL)
		return st;
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto nomem;
	/* Twice the bound: the tables stay at most half full. */
	st->ip_cap = rl_pow2(conf->max_tracked * 2);
	st->sender_cap = st->ip_cap;
	st->ips = calloc(st->ip_cap, sizeof(*st->ips));
	st->senders = calloc(st->sender_cap, sizeof(*st->senders));
	if (st->ips == NULL || st->senders == NULL)
		goto nomem;
	st->max_tracked = conf->max_tracked;
	/* A secret seed: clients must not be able to aim at one window. */
	if (getrandom(&st->hash_seed, sizeof(st->hash_seed), 0) !=
	    (ssize_t)sizeof(st->hash_seed))
		st->hash_seed = (uint64_t)(uintptr_t)st ^ (uint64_t)time(NULL);
	/* Names this process' leases in a store shared with other hosts. */
	if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
		id = st->hash_seed * 31 + (uint64_t)getpid();
	snprintf(st->host_id, sizeof(st->host_id), "%016llx",
		 (unsigned long long)id);
	if (sc_instance_state_put(inst, st, rl_state_free) < 0)
		goto nomem;
	return st;
nomem:
	if (st != NULL)
		rl_state_free(st);
	*error_r = "ratelimit: out of memory";
	return NULL;
}

/* rl_log_once - logs a limit hit unless this key was logged this period. */
void
rl_log_once(uint64_t *logged_until, uint64_t now, uint64_t period_ms,
	    const struct sc_session *s, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (now < *logged_until)
		return;
	*logged_until = now + (period_ms ? period_ms : 60000);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	sc_log_session(SC_LOG_NOTICE, s, "ratelimit: %s", msg);
}

static bool
rl_protocol_limited(const struct rl_conf *conf, const struct sc_session *s)
{
	const char *proto = sc_session_protocol(s);

	for (size_t i = 0; i < conf->protocols.n; i++)
		if (strcmp(conf->protocols.v[i], proto) == 0)
			return true;
	return false;
}

static bool
rl_exempt(const struct rl_conf *conf, const struct sc_session *s)
{
	return sc_cidr_list_match(&conf->exempt, sc_session_client_addr(s));
}

/* rl_session_free - session end: give back the connection it counted. */
static void
rl_session_free(void *p)
{
	struct rl_session *rs = p;
	struct rl_state *st = rs->st;

	if (st->connections > 0)
		st->connections--;
	if (rs->counted_ip) {
		struct rl_ip *e = rl_ip_find(st, rs->key, rs->family,
					     sc_now_ms(), false);
		if (e != NULL && e->concurrent > 0)
			e->concurrent--;
	}
	rl_store_session_end(rs);
	free(rs);
}

void
rl_count_session(struct rl_inst *ri, struct sc_session *s,
		 const unsigned char key[16], unsigned char family,
		 bool per_ip, const char *holder, const char *lease_key)
{
	struct rl_state *st = ri->st;
	struct rl_session *rs = calloc(1, sizeof(*rs));
	struct rl_ip *e = NULL;

	if (rs == NULL)
		return;	/* fail open: a limit, not a security check */
	rs->st = st;
	rs->ri = ri;
	st->connections++;
	if (per_ip)
		e = rl_ip_find(st, key, family, sc_now_ms(), true);
	if (e != NULL) {
		e->concurrent++;
		memcpy(rs->key, key, 16);
		rs->family = family;
		rs->counted_ip = true;
	}
	if (holder != NULL) {
		snprintf(rs->holder, sizeof(rs->holder), "%s", holder);
		snprintf(rs->lease_key, sizeof(rs->lease_key), "%s",
			 lease_key);
		rs->next = st->leased;
		if (st->leased != NULL)
			st->leased->prev = rs;
		st->leased = rs;
	}
	if (sc_session_set_data(s, ri->inst, rs, rl_session_free) != 0)
		rl_session_free(rs);
}

void
rl_key_text(const unsigned char key[16], unsigned char family,
	    unsigned prefix, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];

	if (family == 4) {
		inet_ntop(AF_INET, key, buf, (socklen_t)len);
		return;
	}
	inet_ntop(AF_INET6, key, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, prefix);
}

/* rl_hit - counts a refusal: in the state (`satchelctl status`) and in
 * satchel_limit_hits_total{limit} (the web module's /metrics) */
static void
rl_hit(struct rl_inst *ri, enum rl_kind kind)
{
	ri->st->hits[kind]++;
	sc_metric_add(ri->m_hits, rl_kind_names[kind], 1);
}

enum sc_result
rl_refuse_ip(struct sc_hook_call *call, struct rl_inst *ri,
	     struct sc_session *s, enum rl_kind hit,
	     const unsigned char key[16], unsigned char family)
{
	const char *ip = sc_session_client_ip(s);
	uint64_t now = sc_now_ms();
	struct rl_ip *e = rl_ip_find(ri->st, key, family, now, false);
	uint64_t dummy = 0;

	rl_hit(ri, hit);
	rl_log_once(e != NULL ? &e->logged_until_ms[hit] : &dummy, now,
		    ri->conf->connections_per_ip.period_ms, s,
		    "%s limit hit by %s", rl_kind_names[hit], ip);
	sc_reply_set(call, 421, "4.7.0", "Too many connections from %s; "
		     "please try again later", ip);
	return SC_DENYSOFTDISCONNECT;
}

/* rl_connect - the 421 limits, decided before TLS, DNS or anything else.
 * max_connections is this host's alone (it guards this host's memory);
 * with a store the per-IP limits are every host's. */
static enum sc_result
rl_connect(struct sc_hook_call *call, void *data)
{
	struct rl_inst *ri = data;
	struct rl_state *st = ri->st;
	const struct rl_conf *conf = ri->conf;
	struct sc_session *s = sc_hook_session(call);
	uint64_t now = sc_now_ms();
	struct rl_ip *e = NULL;
	unsigned char key[16], family;
	const char *ip = sc_session_client_ip(s);
	enum rl_kind hit = RL_HIT_COUNT;

	if (!rl_protocol_limited(conf, s))
		return SC_CONT;
	if (conf->max_connections != 0 &&
	    st->connections >= conf->max_connections) {
		rl_hit(ri, RL_HIT_MAX_CONN);
		rl_log_once(&st->global_logged_until_ms, now, 60000, s,
			    "max_connections (%llu) reached; refusing %s "
			    "(logged once a minute; raise max_connections if "
			    "this is normal load)",
			    (unsigned long long)conf->max_connections, ip);
		sc_reply_set(call, 421, "4.7.0", "%s Too many concurrent SMTP "
			     "connections; please try again later",
			     sc_config_hostname());
		return SC_DENYSOFTDISCONNECT;
	}
	if (rl_exempt(conf, s) ||
	    !rl_ip_key(sc_session_client_addr(s), (unsigned)conf->ipv6_prefix,
		       key, &family)) {
		rl_count_session(ri, s, NULL, 0, false, NULL, NULL);
		return SC_CONT;
	}
	/* the in-process verdict: the decision without a store, the
	 * fallback with one (store_failure: local) */
	e = rl_ip_find(st, key, family, now, true);
	if (e != NULL) {
		e->last_seen_ms = now;
		if (conf->max_connections_per_ip != 0 &&
		    e->concurrent >= conf->max_connections_per_ip)
			hit = RL_HIT_IP_CONN;
		else if (!rl_bucket_take(&e->conn_rate,
					 &conf->connections_per_ip, now))
			hit = RL_HIT_IP_RATE;
	}
	if (ri->store != NULL)
		return rl_store_connect(call, ri, s, key, family, hit);
	if (hit != RL_HIT_COUNT)
		return rl_refuse_ip(call, ri, s, hit, key, family);
	rl_count_session(ri, s, key, family, e != NULL, NULL, NULL);
	return SC_CONT;
}

enum sc_result
rl_refuse_sender(struct sc_hook_call *call, struct rl_inst *ri,
		 struct sc_session *s, const char *key, const char *who)
{
	uint64_t now = sc_now_ms(), none = 0;
	struct rl_sender *e = rl_sender_find(ri->st,
		rl_hash(ri->st->hash_seed, key, strlen(key)), now);

	rl_hit(ri, RL_HIT_SENDER);
	rl_log_once(e != NULL ? &e->logged_until_ms : &none, now,
		    ri->conf->messages_per_sender.period_ms, s,
		    "messages_per_sender limit hit by %s (%s)",
		    who[0] != '\0' ? who : "<>", sc_session_client_ip(s));
	sc_reply_set(call, 450, "4.7.1", "<%s>: message rate exceeded; please "
		     "try again later", who);
	return SC_DENYSOFT;
}

/* rl_mail - messages_per_sender, keyed by the login, else MAIL FROM. */
static enum sc_result
rl_mail(struct sc_hook_call *call, void *data)
{
	struct rl_inst *ri = data;
	const struct rl_conf *conf = ri->conf;
	struct sc_session *s = sc_hook_session(call);
	const struct sc_mail_request *req = sc_hook_arg(call);
	uint64_t now = sc_now_ms();
	char key[600];
	const char *user = sc_session_auth_user(s);
	bool over;

	if (conf->messages_per_sender.count == 0 || rl_exempt(conf, s))
		return SC_CONT;
	if (user != NULL)
		snprintf(key, sizeof(key), "auth:%s", user);
	else if (req->address[0])
		snprintf(key, sizeof(key), "from:%s", req->address);
	else	/* bounces: per client address, not one shared bucket */
		snprintf(key, sizeof(key), "null:%s", sc_session_client_ip(s));
	for (char *p = key; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	struct rl_sender *e = rl_sender_find(ri->st,
		rl_hash(ri->st->hash_seed, key, strlen(key)), now);
	if (e != NULL)
		e->last_seen_ms = now;
	over = e != NULL && !rl_bucket_take(&e->msgs,
					    &conf->messages_per_sender, now);
	if (ri->store != NULL)
		return rl_store_mail(call, ri, s, key, user ? user :
				     req->address, over);
	if (!over)
		return SC_CONT;
	return rl_refuse_sender(call, ri, s, key, user ? user : req->address);
}

static struct rl_ip *
rl_session_ip(struct rl_inst *ri, const struct sc_session *s, uint64_t now)
{
	unsigned char key[16], family;

	if (!rl_ip_key(sc_session_client_addr(s),
		       (unsigned)ri->conf->ipv6_prefix, key, &family))
		return NULL;
	return rl_ip_find(ri->st, key, family, now, true);
}

enum sc_result
rl_refuse_auth(struct sc_hook_call *call, struct rl_inst *ri,
	       struct sc_session *s)
{
	rl_hit(ri, RL_HIT_AUTH);
	sc_reply_set(call, 454, "4.7.0", "Too many authentication failures "
		     "from %s; please try again later", sc_session_client_ip(s));
	return SC_DENYSOFT;
}

/* rl_auth - refuses AUTH from an address that is locked out. */
static enum sc_result
rl_auth(struct sc_hook_call *call, void *data)
{
	struct rl_inst *ri = data;
	struct sc_session *s = sc_hook_session(call);
	uint64_t now = sc_now_ms();
	bool locked;

	if (s == NULL || rl_exempt(ri->conf, s))
		return SC_CONT;
	struct rl_ip *e = rl_session_ip(ri, s, now);
	locked = e != NULL && now < e->locked_until_ms;
	if (ri->store != NULL)
		return rl_store_auth(call, ri, s, locked);
	if (!locked)
		return SC_CONT;
	return rl_refuse_auth(call, ri, s);
}

/* rl_auth_failed - counts a failure; locks the address out when over. */
static void
rl_auth_failed(const struct sc_event *ev, void *data)
{
	struct rl_inst *ri = data;
	const struct rl_conf *conf = ri->conf;
	uint64_t now = sc_now_ms();

	if (ev->session == NULL || conf->auth_failures_per_ip.count == 0 ||
	    rl_exempt(conf, ev->session))
		return;
	if (ri->store != NULL)
		rl_store_auth_failed(ri, ev->session);
	struct rl_ip *e = rl_session_ip(ri, ev->session, now);
	if (e == NULL)
		return;
	e->last_seen_ms = now;
	/* The Nth failure within the period locks the address out. */
	if (rl_bucket_take(&e->auth_fail, &conf->auth_failures_per_ip, now) &&
	    e->auth_fail.tokens >= 1.0)
		return;
	e->locked_until_ms = now + conf->auth_failures_per_ip.period_ms;
	rl_log_once(&e->logged_until_ms[RL_HIT_AUTH], now,
		    conf->auth_failures_per_ip.period_ms, ev->session,
		    "auth_failures_per_ip: %s locked out of AUTH for %llus",
		    ev->client_ip ? ev->client_ip : "?",
		    (unsigned long long)(conf->auth_failures_per_ip.period_ms /
					 1000));
}

/* rl_appendf - appends to buf (len bytes, *off used), truncating quietly. */
static void
rl_appendf(char *buf, size_t len, size_t *off, const char *fmt, ...)
	SC_PRINTF(4, 5);

static void
rl_appendf(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off + 1 >= len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, len - *off, fmt, ap);
	va_end(ap);
	if (n > 0)
		*off += (size_t)n < len - *off ? (size_t)n : len - *off - 1;
}

/* rl_status - for `satchelctl status`: use against limits, top clients. */
static size_t
rl_status(char *buf, size_t len, void *data)
{
	struct rl_inst *ri = data;
	const struct rl_state *st = ri->st;
	const struct rl_conf *conf = ri->conf;
	size_t off = 0;
	const struct rl_ip *top[5] = { NULL };

	rl_appendf(buf, len, &off, "connections: %llu/%llu (max_connections)\n",
		  (unsigned long long)st->connections,
		  (unsigned long long)conf->max_connections);
	rl_appendf(buf, len, &off, "tracked_clients: %zu (bound %llu)\n", st->ip_used,
		  (unsigned long long)conf->max_tracked);
	rl_appendf(buf, len, &off, "tracked_senders: %zu (bound %llu)\n", st->sender_used,
		  (unsigned long long)conf->max_tracked);
	rl_appendf(buf, len, &off, "limit_hits:");
	for (int k = 0; k < RL_HIT_COUNT; k++)
		rl_appendf(buf, len, &off, " %s=%llu", rl_kind_names[k],
			  (unsigned long long)st->hits[k]);
	rl_appendf(buf, len, &off, "\n");
	for (size_t i = 0; i < st->ip_cap; i++) {
		const struct rl_ip *e = &st->ips[i];
		if (e->family == 0 || e->concurrent == 0)
			continue;
		for (int t = 0; t < 5; t++) {
			if (top[t] == NULL || e->concurrent > top[t]->concurrent) {
				memmove(&top[t + 1], &top[t],
					(size_t)(4 - t) * sizeof(top[0]));
				top[t] = e;
				break;
			}
		}
	}
	for (int t = 0; t < 5 && top[t] != NULL; t++) {
		char ip[INET6_ADDRSTRLEN + 8];
		rl_key_text(top[t]->key, top[t]->family,
			    (unsigned)conf->ipv6_prefix, ip, sizeof(ip));
		rl_appendf(buf, len, &off, "top_client: %s %u/%llu\n", ip, top[t]->concurrent,
			  (unsigned long long)conf->max_connections_per_ip);
	}
	off += rl_store_status(ri, buf + off, len - off);
	return off;
}

static int
rl_instance_new(struct sc_instance *inst, const void *config, void **data_r,
		const char **error_r)
{
	const struct rl_conf *conf = config;
	struct rl_inst *ri;

	if (conf->max_tracked < 16 || conf->max_tracked > 16777216) {
		*error_r = "max_tracked: must be between 16 and 16777216";
		return -1;
	}
	if (conf->ipv6_prefix > 128) {
		*error_r = "ipv6_prefix: must be between 0 and 128";
		return -1;
	}
	if (conf->store != NULL && sc_store_url_check(conf->store, error_r) < 0)
		return -1;
	if (conf->store_timeout == 0 || conf->store_timeout > 10000) {
		*error_r = "store_timeout: must be between 1ms and 10s";
		return -1;
	}
	ri = calloc(1, sizeof(*ri));
	if (ri == NULL) {
		*error_r = "ratelimit: out of memory";
		return -1;
	}
	ri->inst = inst;
	ri->conf = conf;
	*data_r = ri;
	return 0;
}

/* rl_limit_gauge - satchel_connections_limit: max_connections, +Inf when
 * 0 (no limit); the last ratelimit instance read wins */
static void
rl_limit_gauge(struct sc_metric *m, void *data)
{
	const struct rl_inst *ri = data;

	sc_metric_set(m, NULL, ri->conf->max_connections != 0 ?
		      (double)ri->conf->max_connections : HUGE_VAL);
}

/* rl_metrics - the families the web module shows: the core names them
 * (their type and label are fixed), ratelimit fills them; every limit
 * appears from the start, at 0 */
static void
rl_metrics(struct sc_instance *inst, struct rl_inst *ri)
{
	ri->m_hits = sc_metric_counter_new(inst, "satchel_limit_hits_total",
		"connections, messages or logins a limit refused", "limit");
	for (int k = 0; k < RL_HIT_COUNT; k++)
		sc_metric_add(ri->m_hits, rl_kind_names[k], 0);
	ri->m_limit = sc_metric_gauge_fn_new(inst, "satchel_connections_limit",
		"the server-wide connection limit (ratelimit's "
		"max_connections; +Inf: none)", NULL, rl_limit_gauge, ri);
}

static int
rl_instance_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct rl_inst *ri = data;

	ri->st = rl_state_attach(inst, ri->conf, error_r);
	if (ri->st == NULL || rl_store_start(ri, error_r) < 0)
		return -1;
	/* The policy phase: every limit runs before the modules that
	 * decide (auth_file's OK to the right password would otherwise
	 * let a locked-out address in when its file sorts first), and the
	 * connection is counted whatever accepts it later. */
	if (sc_hook_register_phase(inst, SC_HOOK_CONNECT, SC_PHASE_POLICY,
				   rl_connect, ri) != 0 ||
	    sc_hook_register_phase(inst, SC_HOOK_MAIL, SC_PHASE_POLICY,
				   rl_mail, ri) != 0 ||
	    sc_hook_register_phase(inst, SC_HOOK_AUTH, SC_PHASE_POLICY,
				   rl_auth, ri) != 0 ||
	    sc_event_subscribe(inst, SC_EVENT_AUTH_FAILED, rl_auth_failed,
			       ri) != 0 ||
	    sc_status_register(inst, rl_status, ri) != 0) {
		*error_r = "ratelimit: cannot register hooks";
		return -1;
	}
	rl_metrics(inst, ri);
	return 0;
}

static void
rl_instance_free(struct sc_instance *inst, void *data)
{
	struct rl_inst *ri = data;

	rl_store_stop(ri);
	free(ri);
}

SC_MODULE(ratelimit,
	.version = "1.0",
	.description = "connection limits (421), per-IP, per-sender and AUTH "
		       "failure limits",
	.keys = rl_keys,
	.config_size = sizeof(struct rl_conf),
	.instance_new = rl_instance_new,
	.instance_start = rl_instance_start,
	.instance_free = rl_instance_free,
);
