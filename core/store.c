/* SPDX-License-Identifier: MIT */
/*
 * core/store.c - the shared key-value store for modules (satchel/store.h):
 * store URLs, handles bound to instances, and operations - their commands,
 * timeouts, cancellation and the delivery of answers to module callbacks.
 *
 * Loop thread only. An operation is counted as a job of its instance
 * (sc_gen_job_begin), so a retired generation stays until its answers are
 * delivered; every answer is delivered from the operation's own timer,
 * never from inside hiredis or the caller. The connections themselves
 * are core/store_redis.c's.
 */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define STORE_TIMEOUT_DEFAULT_MS 200
#define STORE_PASSWORD_MAX	 512

/* An opened store: satchel/store.h's struct sc_store. */
struct sc_store {
	struct sc_store *prev, *next;	/* ctx->handles */
	struct store_ctx *ctx;
	struct sc_instance *inst;
	struct store_conn *conn;
	uint64_t timeout_ms;
	char url[sizeof(((struct store_url *)0)->text)];
};

/* How an operation reads the store's answer. */
struct store_op_kind {
	const char *name;		/* for logs */
	void (*answer)(struct sc_store_op *op, const struct store_answer *a);
};

/* ---- URLs ---- */

/* parse_uint - digits of s (up to end) as a number <= max. 0 or -1. */
static int
parse_uint(const char *s, const char *end, unsigned long max,
	   unsigned *out)
{
	unsigned long v = 0;

	if (s == end)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > max)
			return -1;
	}
	*out = (unsigned)v;
	return 0;
}

int
store_url_parse(const char *url, struct store_url *u, const char **error_r)
{
	const char *p, *host, *host_end, *end;

	memset(u, 0, sizeof(*u));
	if (url == NULL || *url == '\0') {
		*error_r = "empty store URL";
		return -1;
	}
	if (strchr(url, '@') != NULL) {
		*error_r = "a password in the store URL: put it in a file "
			   "(store_password_file) instead";
		return -1;
	}
	if (strncmp(url, "unix:", 5) == 0) {
		p = url + 5;
		end = strchr(p, '?');
		if (end == NULL)
			end = p + strlen(p);
		if (*p != '/' || (size_t)(end - p) >= sizeof(u->path)) {
			*error_r = "unix: needs an absolute socket path "
				   "(unix:/run/redis/redis.sock)";
			return -1;
		}
		if (*end == '?' && (strncmp(end, "?db=", 4) != 0 ||
				    parse_uint(end + 4, end + strlen(end),
					       INT32_MAX, &u->db) < 0)) {
			*error_r = "unix: only ?db=N may follow the path";
			return -1;
		}
		u->is_unix = true;
		memcpy(u->path, p, (size_t)(end - p));
		if (u->db != 0)
			snprintf(u->text, sizeof(u->text), "unix:%s?db=%u",
				 u->path, u->db);
		else
			snprintf(u->text, sizeof(u->text), "unix:%s", u->path);
		return 0;
	}
	if (strncmp(url, "redis://", 8) != 0) {
		*error_r = "not a store URL: redis://HOST[:PORT][/DB] or "
			   "unix:/PATH";
		return -1;
	}
	host = url + 8;
	if (*host == '[') {
		host++;
		host_end = strchr(host, ']');
		if (host_end == NULL) {
			*error_r = "redis://[IPv6 address: no closing ]";
			return -1;
		}
		p = host_end + 1;
	} else {
		host_end = host + strcspn(host, ":/");
		p = host_end;
	}
	if (host_end == host || (size_t)(host_end - host) >=
	    sizeof(u->host)) {
		*error_r = "redis:// needs a host (redis://127.0.0.1:6379/0)";
		return -1;
	}
	memcpy(u->host, host, (size_t)(host_end - host));
	if (strspn(u->host, "abcdefghijklmnopqrstuvwxyz"
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:") !=
	    strlen(u->host)) {
		*error_r = "redis://: the host is not a name or an address";
		return -1;
	}
	u->port = 6379;
	if (*p == ':') {
		end = p + 1 + strcspn(p + 1, "/");
		if (parse_uint(p + 1, end, 65535, &u->port) < 0 ||
		    u->port == 0) {
			*error_r = "redis://: the port is not a number from 1 "
				   "to 65535";
			return -1;
		}
		p = end;
	}
	if (*p == '/' && p[1] != '\0') {
		if (parse_uint(p + 1, p + strlen(p), INT32_MAX, &u->db) < 0) {
			*error_r = "redis://: the database (/DB) is not a "
				   "number";
			return -1;
		}
	} else if (*p != '\0' && strcmp(p, "/") != 0) {
		*error_r = "redis://: unexpected text after the host";
		return -1;
	}
	snprintf(u->text, sizeof(u->text), strchr(u->host, ':') != NULL ?
		 "redis://[%s]:%u/%u" : "redis://%s:%u/%u", u->host, u->port,
		 u->db);
	return 0;
}

int
sc_store_url_check(const char *url, const char **error_r)
{
	struct store_url u;
	const char *err = NULL;

	if (store_url_parse(url, &u, &err) < 0) {
		if (error_r != NULL)
			*error_r = err;
		return -1;
	}
	return 0;
}

/* ---- the service ---- */

static struct store_ctx *
ctx_get(void)
{
	if (sc_core == NULL)
		return NULL;
	if (sc_core->stores == NULL)
		sc_core->stores = calloc(1, sizeof(struct store_ctx));
	return sc_core->stores;
}

/* store_ctx_maybe_free - when nothing is left, the service goes too (so a
 * loop can be closed after the last handle) */
void
store_ctx_maybe_free(struct store_ctx *ctx)
{
	if (ctx == NULL || ctx->busy > 0 || ctx->conns != NULL ||
	    ctx->handles != NULL || ctx->ops != NULL)
		return;
	if (sc_core != NULL && sc_core->stores == ctx)
		sc_core->stores = NULL;
	free(ctx);
}

/* read_password - the first line of path, malloc'd. 0 or -1. */
static int
read_password(const char *path, char **pw_r, const char **error_r)
{
	char buf[STORE_PASSWORD_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t len;
	int fd;

	*pw_r = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		sc_log_error("store: cannot read the password file %s: %s",
			     path, strerror(errno));
		*error_r = "store_password_file: cannot read it";
		return -1;
	}
	if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH) != 0)
		sc_log_warning("store: %s is readable by everyone; "
			       "chmod o-r it", path);
	do {
		n = read(fd, buf, sizeof(buf) - 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0) {
		*error_r = "store_password_file: cannot read it";
		return -1;
	}
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 0 || len > STORE_PASSWORD_MAX) {
		explicit_bzero(buf, sizeof(buf));
		*error_r = len == 0 ? "store_password_file: the first line is "
			   "empty" : "store_password_file: the password is "
			   "too long";
		return -1;
	}
	*pw_r = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (*pw_r == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

struct sc_store *
sc_store_open(struct sc_instance *inst, const char *url,
	      const char *password_file, uint64_t timeout_ms,
	      const char **error_r)
{
	struct store_ctx *ctx;
	struct sc_store *st;
	struct store_url u;
	char *password = NULL;
	const char *err = NULL;

	if (store_url_parse(url, &u, &err) < 0)
		goto fail;
	if (password_file != NULL && *password_file != '\0' &&
	    read_password(password_file, &password, &err) < 0)
		goto fail;
	ctx = ctx_get();
	st = calloc(1, sizeof(*st));
	if (ctx == NULL || st == NULL) {
		free(st);
		err = "out of memory";
		goto fail;
	}
	st->ctx = ctx;
	st->inst = inst;
	st->timeout_ms = timeout_ms != 0 ? timeout_ms :
		STORE_TIMEOUT_DEFAULT_MS;
	snprintf(st->url, sizeof(st->url), "%s", u.text);
	/* A request unanswered for twice the longest timeout (and at least
	 * a second) means the connection hangs. */
	st->conn = store_conn_get(ctx, &u, password,
				  st->timeout_ms * 2 > 1000 ?
				  st->timeout_ms * 2 : 1000);
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
		password = NULL;
	}
	if (st->conn == NULL) {
		free(st);
		store_ctx_maybe_free(ctx);
		err = "out of memory";
		goto fail;
	}
	st->next = ctx->handles;
	if (ctx->handles != NULL)
		ctx->handles->prev = st;
	ctx->handles = st;
	return st;
fail:
	if (password != NULL) {
		explicit_bzero(password, strlen(password));
		free(password);
	}
	if (error_r != NULL)
		*error_r = err;
	return NULL;
}

bool
sc_store_up(const struct sc_store *st)
{
	return st != NULL && store_conn_up(st->conn);
}

const char *
sc_store_url(const struct sc_store *st)
{
	return st != NULL ? st->url : "";
}

/* ---- operations ---- */

static void
op_fail(struct sc_store_op *op, const char *fmt, ...) SC_PRINTF(2, 3);

static void
op_fail(struct sc_store_op *op, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(op->error, sizeof(op->error), fmt, ap);
	va_end(ap);
	memset(&op->res, 0, sizeof(op->res));
	op->res.status = SC_STORE_FAIL;
	op->res.error = op->error;
	op->finished = true;
}

static void
op_unlink(struct sc_store_op *op)
{
	struct store_ctx *ctx = op->ctx;

	if (op->prev != NULL)
		op->prev->next = op->next;
	else if (ctx->ops == op)
		ctx->ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
}

/* op_deliver - the end of every operation: fn (unless cancelled), then
 * the job ends - last, as it may tear down the generation fn came from */
static void
op_deliver(struct sc_store_op *op)
{
	struct sc_instance *inst = op->inst;
	struct store_ctx *ctx = op->ctx;

	op->delivering = true;
	op_unlink(op);
	if (!op->cancelled && op->fn != NULL)
		op->fn(&op->res, op->arg);
	sc_timer_free(&op->timer);
	free(op->data);
	op->data = NULL;
	if (!op->sent)
		free(op);	/* else store_op_answer frees it */
	store_ctx_maybe_free(ctx);
	if (inst != NULL)
		sc_gen_job_end(inst);
}

/* op_timer - the timeout, or the delivery of an answer that came */
static void
op_timer(struct sc_timer *t, void *arg)
{
	struct sc_store_op *op = arg;

	(void)t;
	if (!op->finished) {
		op_fail(op, "%s: timed out after %" PRIu64 " ms",
			op->kind->name, op->st != NULL ? op->st->timeout_ms :
			(uint64_t)0);
		sc_log_debug("store: %s", op->error);
	}
	op_deliver(op);
}

void
store_op_answer(struct sc_store_op *op, const struct store_answer *a)
{
	op->sent = false;
	if (op->delivering) {
		free(op);	/* delivered (timed out) meanwhile */
		return;
	}
	if (op->finished)
		return;		/* cancelled: its delivery is due anyway */
	if (a->type == STORE_R_NONE)
		op_fail(op, "%s: %s", op->kind->name,
			a->error != NULL ? a->error : "no answer");
	else if (a->type == STORE_R_ERROR)
		op_fail(op, "%s: the store says: %.*s", op->kind->name,
			(int)(a->len > 100 ? 100 : a->len), a->str);
	else
		op->kind->answer(op, a);
	if (!op->finished)
		op_fail(op, "%s: unexpected answer from the store",
			op->kind->name);
	sc_timer_start(op->timer, 0, 0);
}

/* op_start - the common part of every operation */
static int
op_start(struct sc_store *st, const struct store_op_kind *kind, int argc,
	 const char **argv, const size_t *lens, sc_store_fn fn, void *arg,
	 struct sc_store_op **op_r)
{
	struct store_ctx *ctx;
	struct sc_store_op *op;

	if (op_r != NULL)
		*op_r = NULL;
	if (st == NULL || st->ctx->stopping ||
	    !sc_gen_job_allowed(st->inst, "store operation"))
		return -1;
	ctx = st->ctx;
	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return -1;
	op->timer = sc_timer_new(op_timer, op);
	if (op->timer == NULL) {
		free(op);
		return -1;
	}
	op->ctx = ctx;
	op->st = st;
	op->inst = st->inst;
	op->kind = kind;
	op->fn = fn;
	op->arg = arg;
	op->next = ctx->ops;
	if (ctx->ops != NULL)
		ctx->ops->prev = op;
	ctx->ops = op;
	if (store_conn_send(st->conn, op, argc, argv, lens) == 0) {
		op->sent = true;
		sc_timer_start(op->timer, st->timeout_ms, 0);
	} else {
		/* op->error says why; delivered on the next loop turn */
		char why[sizeof(op->error)];

		memcpy(why, op->error, sizeof(why));
		op_fail(op, "%s: %s", kind->name, why);
		sc_timer_start(op->timer, 0, 0);
	}
	if (st->inst != NULL)
		sc_gen_job_begin(st->inst);
	if (op_r != NULL)
		*op_r = op;
	return 0;
}

void
sc_store_cancel(struct sc_store_op *op)
{
	if (op == NULL || op->delivering || op->cancelled)
		return;
	op->cancelled = true;
	op->finished = true;
	sc_timer_start(op->timer, 0, 0);
}

void
sc_store_close(struct sc_store **stp)
{
	struct sc_store *st;
	struct store_ctx *ctx;

	if (stp == NULL || *stp == NULL)
		return;
	st = *stp;
	*stp = NULL;
	ctx = st->ctx;
	for (struct sc_store_op *op = ctx->ops; op != NULL; op = op->next) {
		if (op->st == st) {
			sc_store_cancel(op);
			op->st = NULL;
		}
	}
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		ctx->handles = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	/* the last connection's free may free ctx: hold it until done */
	ctx->busy++;
	store_conn_put(st->conn);
	free(st);
	ctx->busy--;
	store_ctx_maybe_free(ctx);
}

/* sc_store_stop - the daemon stops: every pending operation is answered
 * now (SC_STORE_FAIL), so generations waiting for them can go */
void
sc_store_stop(void)
{
	struct store_ctx *ctx = sc_core != NULL ? sc_core->stores : NULL;

	if (ctx == NULL)
		return;
	ctx->stopping = true;
	ctx->busy++;
	store_conn_stop_all(ctx);
	while (ctx->ops != NULL) {
		struct sc_store_op *op = ctx->ops;

		if (!op->finished)
			op_fail(op, "%s: the daemon stops", op->kind->name);
		op_deliver(op);
	}
	ctx->busy--;
	store_ctx_maybe_free(ctx);
}

/* ---- the operations and their answers ---- */

/* key_ok - a key within the limit */
static bool
key_ok(const char *key)
{
	return key != NULL && *key != '\0' &&
		strlen(key) <= SC_STORE_KEY_MAX;
}

static void
answer_int(struct sc_store_op *op, const struct store_answer *a)
{
	if (a->type != STORE_R_INT)
		return;
	op->res.status = SC_STORE_OK;
	op->res.value = a->integer;
	op->finished = true;
}

static void
answer_get(struct sc_store_op *op, const struct store_answer *a)
{
	if (a->type == STORE_R_NIL) {
		op->res.status = SC_STORE_MISSING;
		op->finished = true;
		return;
	}
	if (a->type != STORE_R_STR || a->len > SC_STORE_VALUE_MAX)
		return;
	op->data = malloc(a->len + 1);
	if (op->data == NULL) {
		op_fail(op, "get: out of memory");
		return;
	}
	memcpy(op->data, a->str, a->len);
	op->data[a->len] = '\0';
	op->res.status = SC_STORE_OK;
	op->res.data = op->data;
	op->res.len = a->len;
	op->finished = true;
}

static void
answer_status(struct sc_store_op *op, const struct store_answer *a)
{
	if (a->type != STORE_R_STATUS)
		return;
	op->res.status = SC_STORE_OK;
	op->finished = true;
}

/* the lease script's answer: holders, or minus the holders when full */
static void
answer_take(struct sc_store_op *op, const struct store_answer *a)
{
	if (a->type != STORE_R_INT || a->integer == 0)
		return;
	op->res.status = a->integer > 0 ? SC_STORE_OK : SC_STORE_LIMIT;
	op->res.value = a->integer > 0 ? a->integer : -a->integer;
	op->finished = true;
}

static void
answer_renew(struct sc_store_op *op, const struct store_answer *a)
{
	if (a->type != STORE_R_INT || (a->integer != 0 && a->integer != 1))
		return;
	op->res.status = a->integer == 1 ? SC_STORE_OK : SC_STORE_MISSING;
	op->finished = true;
}

static const struct store_op_kind kind_incr = { "incr", answer_int };
static const struct store_op_kind kind_get = { "get", answer_get };
static const struct store_op_kind kind_set = { "set", answer_status };
static const struct store_op_kind kind_del = { "del", answer_int };
static const struct store_op_kind kind_take = { "lease_take", answer_take };
static const struct store_op_kind kind_renew = { "lease_renew",
						 answer_renew };
static const struct store_op_kind kind_drop = { "lease_drop", answer_int };

/*
 * The scripts. Each runs atomically in the store. The counter gets its
 * expiry with its first increment, so a key is never left without one
 * (also one some other client made without). Leases are a sorted set of
 * holders scored by the store's clock (TIME) at which each runs out; the
 * set itself expires with its last lease. redis.replicate_commands lets
 * Redis before 5 replicate a script that read the clock (later versions
 * always do, and keep the function as a no-op).
 */
static const char script_incr[] =
	"local n = redis.call('INCR', KEYS[1]) "
	"local ttl = tonumber(ARGV[1]) "
	"if ttl > 0 and (n == 1 or redis.call('PTTL', KEYS[1]) < 0) then "
	"redis.call('PEXPIRE', KEYS[1], ttl) end "
	"return n";

#define SCRIPT_NOW \
	"if redis.replicate_commands then redis.replicate_commands() end " \
	"local t = redis.call('TIME') " \
	"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
#define SCRIPT_EXPIRE \
	"if redis.call('PTTL', KEYS[1]) < lease then " \
	"redis.call('PEXPIRE', KEYS[1], lease) end "

static const char script_take[] =
	SCRIPT_NOW
	"local limit = tonumber(ARGV[2]) "
	"local lease = tonumber(ARGV[3]) "
	"redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) "
	"local n = redis.call('ZCARD', KEYS[1]) "
	"if redis.call('ZSCORE', KEYS[1], ARGV[1]) then n = n - 1 "
	"elseif limit > 0 and n >= limit then return -n end "
	"redis.call('ZADD', KEYS[1], now + lease, ARGV[1]) "
	SCRIPT_EXPIRE
	"return n + 1";

static const char script_renew[] =
	SCRIPT_NOW
	"local lease = tonumber(ARGV[2]) "
	"local s = redis.call('ZSCORE', KEYS[1], ARGV[1]) "
	"if not s or tonumber(s) <= now then return 0 end "
	"redis.call('ZADD', KEYS[1], now + lease, ARGV[1]) "
	SCRIPT_EXPIRE
	"return 1";

/* u64 - the decimal text of v in buf */
static const char *
u64(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

int
sc_store_incr(struct sc_store *st, const char *key, uint64_t ttl_ms,
	      sc_store_fn fn, void *arg, struct sc_store_op **op_r)
{
	char ttl[24];
	const char *argv[] = { "EVAL", script_incr, "1", key,
			       u64(ttl, sizeof(ttl), ttl_ms) };

	if (!key_ok(key))
		return -1;
	return op_start(st, &kind_incr, 5, argv, NULL, fn, arg, op_r);
}

int
sc_store_get(struct sc_store *st, const char *key, sc_store_fn fn,
	     void *arg, struct sc_store_op **op_r)
{
	const char *argv[] = { "GET", key };

	if (!key_ok(key))
		return -1;
	return op_start(st, &kind_get, 2, argv, NULL, fn, arg, op_r);
}

int
sc_store_set(struct sc_store *st, const char *key, const void *value,
	     size_t len, uint64_t ttl_ms, sc_store_fn fn, void *arg,
	     struct sc_store_op **op_r)
{
	char ttl[24];
	const char *argv[] = { "SET", key, value, "PX",
			       u64(ttl, sizeof(ttl), ttl_ms) };
	size_t lens[] = { 3, key != NULL ? strlen(key) : 0, len, 2,
			  strlen(ttl) };

	if (!key_ok(key) || (value == NULL && len > 0) ||
	    len > SC_STORE_VALUE_MAX)
		return -1;
	if (value == NULL)
		argv[2] = "";
	return op_start(st, &kind_set, ttl_ms > 0 ? 5 : 3, argv, lens, fn,
			arg, op_r);
}

int
sc_store_del(struct sc_store *st, const char *key, sc_store_fn fn,
	     void *arg, struct sc_store_op **op_r)
{
	const char *argv[] = { "DEL", key };

	if (!key_ok(key))
		return -1;
	return op_start(st, &kind_del, 2, argv, NULL, fn, arg, op_r);
}

/* holder_ok - a holder name: printable, bounded */
static bool
holder_ok(const char *holder)
{
	return holder != NULL && *holder != '\0' && strlen(holder) <= 128;
}

int
sc_store_lease_take(struct sc_store *st, const char *key, const char *holder,
		    uint64_t limit, uint64_t lease_ms, sc_store_fn fn,
		    void *arg, struct sc_store_op **op_r)
{
	char lim[24], lease[24];
	const char *argv[] = { "EVAL", script_take, "1", key, holder,
			       u64(lim, sizeof(lim), limit),
			       u64(lease, sizeof(lease), lease_ms) };

	if (!key_ok(key) || !holder_ok(holder) || lease_ms == 0)
		return -1;
	return op_start(st, &kind_take, 7, argv, NULL, fn, arg, op_r);
}

int
sc_store_lease_renew(struct sc_store *st, const char *key,
		     const char *holder, uint64_t lease_ms, sc_store_fn fn,
		     void *arg, struct sc_store_op **op_r)
{
	char lease[24];
	const char *argv[] = { "EVAL", script_renew, "1", key, holder,
			       u64(lease, sizeof(lease), lease_ms) };

	if (!key_ok(key) || !holder_ok(holder) || lease_ms == 0)
		return -1;
	return op_start(st, &kind_renew, 6, argv, NULL, fn, arg, op_r);
}

int
sc_store_lease_drop(struct sc_store *st, const char *key, const char *holder,
		    sc_store_fn fn, void *arg, struct sc_store_op **op_r)
{
	const char *argv[] = { "ZREM", key, holder };

	if (!key_ok(key) || !holder_ok(holder))
		return -1;
	return op_start(st, &kind_drop, 3, argv, NULL, fn, arg, op_r);
}
