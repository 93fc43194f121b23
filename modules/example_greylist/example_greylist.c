/* SPDX-License-Identifier: MIT */
/*
 * modules/example_greylist/example_greylist.c - the sample module of the
 * satchel SDK: greylisting on the RCPT hook. Copy it to start your own.
 *
 * The first attempt of a (client IP, sender, recipient) triple is deferred
 * with 451 4.7.1; a retry after `delay` passes, and the triple is then
 * remembered as good. Memory is bounded by `max_entries` (least recently
 * used entries go first). Everything runs on the loop thread.
 */

/*
 * A module includes only the installed headers: <satchel/satchel.h> is the
 * whole API. Everything is static except the descriptor SC_MODULE() makes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <satchel/satchel.h>

/* ---- 1. The config: a struct and the key table that fills it ---- */

/* The core parses the plugins.d file into this struct (types, defaults,
 * required keys) before any module code runs, and frees it for us. */
struct gl_conf {
	uint64_t delay_ms;		/* `delay`: 5m                     */
	uint64_t retry_window_ms;	/* `retry_window`: 4h              */
	uint64_t pass_ttl_ms;		/* `pass_ttl`: 7d                  */
	uint64_t max_entries;		/* `max_entries`: 10000            */
	struct sc_cidr_list exempt;	/* `exempt`: []                    */
};

static const struct sc_config_key gl_keys[] = {
	{ "delay", SC_KEY_DURATION, offsetof(struct gl_conf, delay_ms),
	  "5m", 0, "how long a new triple is deferred", NULL, NULL, 0 },
	{ "retry_window", SC_KEY_DURATION,
	  offsetof(struct gl_conf, retry_window_ms), "4h", 0,
	  "how long after the delay a retry is still accepted", NULL, NULL,
	  0 },
	{ "pass_ttl", SC_KEY_DURATION, offsetof(struct gl_conf, pass_ttl_ms),
	  "7d", 0, "how long a triple that passed stays known", NULL, NULL,
	  0 },
	{ "max_entries", SC_KEY_UINT, offsetof(struct gl_conf, max_entries),
	  "10000", 0, "bound on remembered triples (oldest dropped first)",
	  NULL, NULL, 0 },
	{ "exempt", SC_KEY_CIDR_LIST, offsetof(struct gl_conf, exempt), NULL,
	  0, "client networks never greylisted", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* ---- 2. The instance state: no globals, one struct per plugins.d file */

struct gl_entry {
	struct gl_entry *hnext;		/* hash chain                      */
	struct gl_entry *older, *newer;	/* LRU list                        */
	uint64_t hash;
	uint64_t first_ms;		/* first attempt                   */
	uint64_t last_ms;		/* last attempt                    */
	bool passed;
	char key[];			/* "ip sender rcpt", lower-case    */
};

struct gl {
	struct sc_instance *inst;
	const struct gl_conf *conf;
	struct gl_entry **buckets;
	size_t nbuckets;
	size_t count;
	struct gl_entry *oldest, *newest;
	uint64_t seed;			/* hash seed: no crafted collisions */
	struct sc_timer *expire_timer;
	/* counters for `satchelctl status` */
	uint64_t deferred, passed, evicted, expired;
};

/* ---- 3. A small bounded table (hash + LRU list) ---- */

static uint64_t
gl_hash(const struct gl *gl, const char *key)
{
	uint64_t h = 14695981039346656037ull ^ gl->seed;	/* FNV-1a */

	for (; *key != '\0'; key++) {
		h ^= (unsigned char)*key;
		h *= 1099511628211ull;
	}
	return h;
}

static void
lru_unlink(struct gl *gl, struct gl_entry *e)
{
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		gl->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		gl->newest = e->older;
	e->older = e->newer = NULL;
}

static void
lru_push(struct gl *gl, struct gl_entry *e)
{
	e->older = gl->newest;
	e->newer = NULL;
	if (gl->newest != NULL)
		gl->newest->newer = e;
	else
		gl->oldest = e;
	gl->newest = e;
}

/* gl_remove - unlink e from its bucket and the LRU list, and free it */
static void
gl_remove(struct gl *gl, struct gl_entry *e)
{
	struct gl_entry **pp = &gl->buckets[e->hash % gl->nbuckets];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(gl, e);
	gl->count--;
	free(e);
}

static struct gl_entry *
gl_find(struct gl *gl, const char *key, uint64_t hash)
{
	for (struct gl_entry *e = gl->buckets[hash % gl->nbuckets]; e != NULL;
	     e = e->hnext) {
		if (e->hash == hash && strcmp(e->key, key) == 0)
			return e;
	}
	return NULL;
}

/* gl_insert - a new entry; at the bound, the least recently used goes.
 * This is what keeps memory flat when a spammer cycles through addresses */
static struct gl_entry *
gl_insert(struct gl *gl, const char *key, uint64_t hash, uint64_t now)
{
	size_t len = strlen(key);
	struct gl_entry *e;

	while (gl->count >= gl->conf->max_entries && gl->oldest != NULL) {
		gl_remove(gl, gl->oldest);
		gl->evicted++;
	}
	e = calloc(1, sizeof(*e) + len + 1);
	if (e == NULL)
		return NULL;
	memcpy(e->key, key, len + 1);
	e->hash = hash;
	e->first_ms = e->last_ms = now;
	e->hnext = gl->buckets[hash % gl->nbuckets];
	gl->buckets[hash % gl->nbuckets] = e;
	lru_push(gl, e);
	gl->count++;
	return e;
}

/* gl_stale - is e past its useful life at now? */
static bool
gl_stale(const struct gl *gl, const struct gl_entry *e, uint64_t now)
{
	if (e->passed)
		return now - e->last_ms > gl->conf->pass_ttl_ms;
	return now - e->first_ms > gl->conf->delay_ms +
		gl->conf->retry_window_ms;
}

/* gl_expire - a periodic sweep from the oldest end of the LRU list */
static void
gl_expire(struct sc_timer *t, void *arg)
{
	struct gl *gl = arg;
	uint64_t now = sc_now_ms();
	struct gl_entry *e, *next;

	(void)t;
	for (e = gl->oldest; e != NULL; e = next) {
		next = e->newer;
		if (gl_stale(gl, e, now)) {
			gl_remove(gl, e);
			gl->expired++;
		}
	}
}

/* ---- 4. The hook callback: decide, or say CONT ---- */

/*
 * gl_rcpt - RCPT hook. Returns CONT (no opinion: the next module, e.g. the
 * router, decides) or DENYSOFT with a 4xx reply. Never OK: accepting a
 * recipient is not a greylister's business.
 */
static enum sc_result
gl_rcpt(struct sc_hook_call *call, void *data)
{
	struct gl *gl = data;
	struct sc_session *s = sc_hook_session(call);
	const struct sc_rcpt_request *req = sc_hook_arg(call);
	uint64_t now = sc_now_ms(), hash;
	struct gl_entry *e;
	char key[600];

	if (s == NULL || req == NULL)
		return SC_CONT;
	/* Our own users and trusted networks are never delayed. */
	if (sc_session_auth_user(s) != NULL || sc_session_relay_allowed(s) ||
	    sc_cidr_list_match(&gl->conf->exempt, sc_session_client_addr(s)))
		return SC_CONT;

	snprintf(key, sizeof(key), "%s %s %s", sc_session_client_ip(s),
		 req->mail_from != NULL ? req->mail_from : "",
		 req->address);
	for (char *p = key; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	hash = gl_hash(gl, key);

	e = gl_find(gl, key, hash);
	if (e != NULL && gl_stale(gl, e, now)) {
		gl_remove(gl, e);	/* came back too late: start over */
		e = NULL;
	}
	if (e == NULL) {
		e = gl_insert(gl, key, hash, now);
		if (e == NULL)
			return SC_CONT;	/* out of memory: fail open */
		sc_log_session(SC_LOG_INFO, s, "%s: greylisted %s",
			       sc_instance_name(gl->inst), key);
	}
	e->last_ms = now;
	lru_unlink(gl, e);
	lru_push(gl, e);
	if (e->passed)
		return SC_CONT;
	if (now - e->first_ms >= gl->conf->delay_ms) {
		e->passed = true;
		gl->passed++;
		sc_log_session(SC_LOG_INFO, s, "%s: passed %s",
			       sc_instance_name(gl->inst), key);
		return SC_CONT;
	}
	gl->deferred++;
	/* The reply text never contains the code: the core checks that
	 * 451 fits DENYSOFT and formats the line. */
	sc_reply_set(call, 451, "4.7.1", "Greylisted, please try again in %llu "
		     "seconds", (unsigned long long)
		     ((gl->conf->delay_ms - (now - e->first_ms) + 999) / 1000));
	return SC_DENYSOFT;
}

/* ---- 5. Status for `satchelctl status` ---- */

static size_t
gl_status(char *buf, size_t len, void *data)
{
	struct gl *gl = data;
	int n;

	n = snprintf(buf, len, "entries: %zu of %llu\ndeferred: %llu\n"
		     "passed: %llu\nevicted: %llu\nexpired: %llu",
		     gl->count, (unsigned long long)gl->conf->max_entries,
		     (unsigned long long)gl->deferred,
		     (unsigned long long)gl->passed,
		     (unsigned long long)gl->evicted,
		     (unsigned long long)gl->expired);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

/* ---- 6. The lifecycle ---- */

/* gl_new - before the privilege drop: check the config, allocate. No hooks
 * yet (they go in instance_start). Errors are returned, never exit(). */
static int
gl_new(struct sc_instance *inst, const void *config, void **data_r,
       const char **error_r)
{
	const struct gl_conf *conf = config;
	struct gl *gl;

	if (conf->max_entries == 0) {
		*error_r = "max_entries must be at least 1";
		return -1;
	}
	gl = calloc(1, sizeof(*gl));
	if (gl == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	gl->inst = inst;
	gl->conf = conf;
	/* about one bucket per entry, capped: the table never resizes */
	gl->nbuckets = conf->max_entries < 65536 ?
		(size_t)conf->max_entries : 65536;
	gl->buckets = calloc(gl->nbuckets, sizeof(*gl->buckets));
	if (gl->buckets == NULL) {
		free(gl);
		*error_r = "out of memory";
		return -1;
	}
	if (getrandom(&gl->seed, sizeof(gl->seed), GRND_NONBLOCK) !=
	    sizeof(gl->seed))
		gl->seed = (uint64_t)(uintptr_t)gl ^ sc_now_ms();
	*data_r = gl;
	return 0;
}

/* gl_start - after the privilege drop: register the hook and timers */
static int
gl_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct gl *gl = data;
	uint64_t sweep = gl->conf->delay_ms < 60000 ? 1000 : 60000;

	/* The policy phase: before the router, which ends the chain with OK
	 * for a known user, whatever the plugins.d file names. A policy
	 * callback cannot accept, and gl_rcpt never does. */
	if (sc_hook_register_phase(inst, SC_HOOK_RCPT, SC_PHASE_POLICY,
				   gl_rcpt, gl) < 0 ||
	    sc_status_register(inst, gl_status, gl) < 0) {
		*error_r = "cannot register the rcpt hook";
		return -1;
	}
	gl->expire_timer = sc_timer_new(gl_expire, gl);
	if (gl->expire_timer == NULL) {
		*error_r = "cannot create the expiry timer";
		return -1;
	}
	sc_timer_start(gl->expire_timer, sweep, sweep);
	return 0;
}

/* gl_free - teardown (reverse file order); free everything we took */
static void
gl_free(struct sc_instance *inst, void *data)
{
	struct gl *gl = data;

	(void)inst;
	sc_timer_free(&gl->expire_timer);
	while (gl->oldest != NULL)
		gl_remove(gl, gl->oldest);
	free(gl->buckets);
	free(gl);
}

/* ---- 7. The descriptor: the module's only exported symbol ---- */

SC_MODULE(example_greylist,
	.version = "1.0",
	.description = "sample module: greylisting on RCPT",
	.keys = gl_keys,
	.config_size = sizeof(struct gl_conf),
	.instance_new = gl_new,
	.instance_start = gl_start,
	.instance_free = gl_free,
);
