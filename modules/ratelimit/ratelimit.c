/* SPDX-License-Identifier: MIT */
/*
 * ratelimit - connection and message limits (the seed article's "421 Too
 * many concurrent SMTP connections", Exim's smtp_accept_max), per-IP and
 * per-sender rates and an AUTH failure lockout. Runs on the loop thread
 * only; every table is bounded whatever the number of client addresses.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <satchel/satchel.h>

struct rl_conf {
	uint64_t max_connections;
	uint64_t max_connections_per_ip;
	struct sc_rate connections_per_ip;
	struct sc_rate messages_per_sender;
	struct sc_rate auth_failures_per_ip;
	struct sc_cidr_list exempt;
	uint64_t ipv6_prefix;
	uint64_t max_tracked;
	struct sc_str_list protocols;
};

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
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* A token bucket: `tokens` refill at count per period_ms, capped at count. */
struct rl_bucket {
	double tokens;
	uint64_t stamp_ms;
};

enum rl_kind {
	RL_HIT_MAX_CONN = 0,
	RL_HIT_IP_CONN,
	RL_HIT_IP_RATE,
	RL_HIT_SENDER,
	RL_HIT_AUTH,
	RL_HIT_COUNT
};

static const char *const rl_kind_names[RL_HIT_COUNT] = {
	"max_connections", "max_connections_per_ip", "connections_per_ip",
	"messages_per_sender", "auth_failures_per_ip",
};

/* One client network (an IPv4 address or an IPv6 /prefix). */
struct rl_ip {
	unsigned char key[16];	/* v4 in the first 4 bytes, family tag */
	unsigned char family;	/* 0 = free slot                       */
	uint32_t concurrent;
	uint64_t last_seen_ms;
	uint64_t locked_until_ms;	/* AUTH lockout                   */
	uint64_t logged_until_ms[RL_HIT_COUNT];
	struct rl_bucket conn_rate;
	struct rl_bucket auth_fail;
};

/* One sender; only a 64-bit hash is kept, to bound memory. */
struct rl_sender {
	uint64_t hash;		/* 0 = free slot */
	uint64_t last_seen_ms;
	uint64_t logged_until_ms;
	struct rl_bucket msgs;
};

/*
 * The counters. They live outside the instance because a reload replaces
 * the instance while sessions counted by the old one are still open: the
 * new instance of the same name attaches to the same counters, so limits
 * stay exact across reloads (issue 7).
 */
struct rl_state {
	struct rl_state *next;
	char *name;
	unsigned refs;
	uint64_t max_tracked;		/* entries per table, at most     */
	uint64_t connections;
	uint64_t hits[RL_HIT_COUNT];
	uint64_t global_logged_until_ms;
	size_t ip_cap, ip_used;
	struct rl_ip *ips;
	size_t sender_cap, sender_used;
	struct rl_sender *senders;
	uint64_t hash_seed;
};

/* XXX: the one module-level variable: the list of counter sets by instance
 * name, which must survive the instance (see struct rl_state). A core API
 * for reload-surviving instance state would remove it. */
static struct rl_state *rl_states;

/* What a session remembers to undo its connection count at close. */
struct rl_session {
	struct rl_state *st;
	unsigned char key[16];
	unsigned char family;
	bool counted_ip;
};

struct rl_inst {
	struct sc_instance *inst;
	const struct rl_conf *conf;
	struct rl_state *st;
};

/* rl_bucket_take - refill b for rate at now; take one token if there is. */
static bool
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
static bool
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
static struct rl_ip *
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

/* rl_state_attach - the counters of instance name, created on first use. */
static struct rl_state *
rl_state_attach(const char *name, const struct rl_conf *conf,
		const char **error_r)
{
	struct rl_state *st;

	for (st = rl_states; st != NULL; st = st->next) {
		if (strcmp(st->name, name) == 0) {
			st->refs++;
			return st;
		}
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL)
		goto nomem;
	st->name = strdup(name);
	/* Twice the bound: the tables stay at most half full. */
	st->ip_cap = rl_pow2(conf->max_tracked * 2);
	st->sender_cap = st->ip_cap;
	st->ips = calloc(st->ip_cap, sizeof(*st->ips));
	st->senders = calloc(st->sender_cap, sizeof(*st->senders));
	if (st->name == NULL || st->ips == NULL || st->senders == NULL) {
		free(st->name);
		free(st->ips);
		free(st->senders);
		free(st);
		goto nomem;
	}
	st->max_tracked = conf->max_tracked;
	/* A secret seed: clients must not be able to aim at one window. */
	if (getrandom(&st->hash_seed, sizeof(st->hash_seed), 0) !=
	    (ssize_t)sizeof(st->hash_seed))
		st->hash_seed = (uint64_t)(uintptr_t)st ^ (uint64_t)time(NULL);
	st->refs = 1;
	st->next = rl_states;
	rl_states = st;
	return st;
nomem:
	*error_r = "ratelimit: out of memory";
	return NULL;
}

/* rl_state_release - drops a reference; the last one frees the counters. */
static void
rl_state_release(struct rl_state *st)
{
	if (--st->refs > 0)
		return;
	for (struct rl_state **pp = &rl_states; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	}
	free(st->ips);
	free(st->senders);
	free(st->name);
	free(st);
}

/* rl_log_once - logs a limit hit unless this key was logged this period. */
static void
rl_log_once(uint64_t *logged_until, uint64_t now, uint64_t period_ms,
	    const struct sc_session *s, const char *fmt, ...)
	SC_PRINTF(5, 6);

static void
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
	rl_state_release(st);
	free(rs);
}

/* rl_connect - the 421 limits, decided before TLS, DNS or anything else. */
static enum sc_result
rl_connect(struct sc_hook_call *call, void *data)
{
	struct rl_inst *ri = data;
	struct rl_state *st = ri->st;
	const struct rl_conf *conf = ri->conf;
	struct sc_session *s = sc_hook_session(call);
	uint64_t now = sc_now_ms();
	struct rl_session *rs;
	struct rl_ip *e = NULL;
	unsigned char key[16], family;
	const char *ip = sc_session_client_ip(s);

	if (!rl_protocol_limited(conf, s))
		return SC_CONT;
	if (conf->max_connections != 0 &&
	    st->connections >= conf->max_connections) {
		st->hits[RL_HIT_MAX_CONN]++;
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
	bool exempt = rl_exempt(conf, s);
	if (!exempt && rl_ip_key(sc_session_client_addr(s),
				 (unsigned)conf->ipv6_prefix, key, &family))
		e = rl_ip_find(st, key, family, now, true);
	if (e != NULL) {
		e->last_seen_ms = now;
		enum rl_kind hit = RL_HIT_COUNT;
		if (conf->max_connections_per_ip != 0 &&
		    e->concurrent >= conf->max_connections_per_ip)
			hit = RL_HIT_IP_CONN;
		else if (!rl_bucket_take(&e->conn_rate,
					 &conf->connections_per_ip, now))
			hit = RL_HIT_IP_RATE;
		if (hit != RL_HIT_COUNT) {
			st->hits[hit]++;
			rl_log_once(&e->logged_until_ms[hit], now,
				    conf->connections_per_ip.period_ms, s,
				    "%s limit hit by %s", rl_kind_names[hit],
				    ip);
			sc_reply_set(call, 421, "4.7.0", "Too many connections "
				     "from %s; please try again later", ip);
			return SC_DENYSOFTDISCONNECT;
		}
	}
	rs = calloc(1, sizeof(*rs));
	if (rs == NULL)
		return SC_CONT;	/* fail open: a limit, not a security check */
	rs->st = st;
	st->refs++;
	st->connections++;
	if (e != NULL) {
		e->concurrent++;
		memcpy(rs->key, key, 16);
		rs->family = family;
		rs->counted_ip = true;
	}
	if (sc_session_set_data(s, ri->inst, rs, rl_session_free) != 0) {
		rl_session_free(rs);
		return SC_CONT;
	}
	return SC_CONT;
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
	const char *sender = req->address[0] ? req->address : "<>";

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
	if (e == NULL)
		return SC_CONT;
	e->last_seen_ms = now;
	if (rl_bucket_take(&e->msgs, &conf->messages_per_sender, now))
		return SC_CONT;
	ri->st->hits[RL_HIT_SENDER]++;
	rl_log_once(&e->logged_until_ms, now, conf->messages_per_sender.period_ms,
		    s, "messages_per_sender limit hit by %s (%s)",
		    user ? user : sender, sc_session_client_ip(s));
	sc_reply_set(call, 450, "4.7.1", "<%s>: message rate exceeded; please "
		     "try again later", user ? user : req->address);
	return SC_DENYSOFT;
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

/* rl_auth - refuses AUTH from an address that is locked out. */
static enum sc_result
rl_auth(struct sc_hook_call *call, void *data)
{
	struct rl_inst *ri = data;
	struct sc_session *s = sc_hook_session(call);
	uint64_t now = sc_now_ms();

	if (s == NULL || rl_exempt(ri->conf, s))
		return SC_CONT;
	struct rl_ip *e = rl_session_ip(ri, s, now);
	if (e == NULL || now >= e->locked_until_ms)
		return SC_CONT;
	ri->st->hits[RL_HIT_AUTH]++;
	sc_reply_set(call, 454, "4.7.0", "Too many authentication failures "
		     "from %s; please try again later", sc_session_client_ip(s));
	return SC_DENYSOFT;
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

/* rl_format_ip - the textual form of a table key. */
static void
rl_format_ip(const struct rl_ip *e, unsigned prefix, char *buf, size_t len)
{
	if (e->family == 4) {
		inet_ntop(AF_INET, e->key, buf, (socklen_t)len);
		return;
	}
	char a[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, e->key, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, prefix);
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
		rl_format_ip(top[t], (unsigned)conf->ipv6_prefix, ip, sizeof(ip));
		rl_appendf(buf, len, &off, "top_client: %s %u/%llu\n", ip, top[t]->concurrent,
			  (unsigned long long)conf->max_connections_per_ip);
	}
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

static int
rl_instance_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct rl_inst *ri = data;

	ri->st = rl_state_attach(sc_instance_name(inst), ri->conf, error_r);
	if (ri->st == NULL)
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
	return 0;
}

static void
rl_instance_free(struct sc_instance *inst, void *data)
{
	struct rl_inst *ri = data;

	if (ri->st != NULL)
		rl_state_release(ri->st);
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
