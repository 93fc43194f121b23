/* SPDX-License-Identifier: MIT */
/*
 * core/store_redis.c - connections to a Redis (or Valkey) server for the
 * store (core/store.c): hiredis' asynchronous client on satchel's loop
 * through sc_fd_watch and sc_timer, the handshake (AUTH, SELECT), the
 * reconnection with backoff, and the bounds that keep a broken or hostile
 * server from hurting the daemon.
 *
 * Loop thread only, except the name lookup of a redis://NAME host, which
 * runs on the pool. One connection per store URL and password serves
 * every handle of the process; requests are pipelined on it.
 */
#include "store_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#define CONN_TICK_MS		250	/* watchdog while connected      */
#define CONN_BACKOFF_MIN_MS	100
#define CONN_BACKOFF_MAX_MS	5000
#define CONN_LOG_EVERY_MS	60000	/* "still down" at most this often */
#define CONN_INFLIGHT_MAX	10000	/* requests waiting for answers   */
/* Our answers are a number or a short string: more unparsed bytes than
 * this, or an array longer than ARRAY_MAX, is not an answer to us. */
#define CONN_READ_MAX		(SC_STORE_VALUE_MAX + 65536)
#define CONN_ARRAY_MAX		16

enum conn_state {
	CONN_DOWN = 0,		/* waiting to reconnect                    */
	CONN_RESOLVING,		/* looking the host name up on the pool    */
	CONN_CONNECTING,	/* connect and handshake sent, no PONG yet */
	CONN_UP,
};

struct store_conn {
	struct store_conn *next;	/* ctx->conns */
	struct store_ctx *ctx;
	unsigned refs;			/* handles, and a pending name lookup */
	struct store_url url;
	char *password;			/* wiped when freed */
	enum conn_state state;
	redisAsyncContext *ac;		/* NULL once hiredis let go of it  */
	struct sc_fd_watch *watch;
	unsigned events;		/* asked of the watch              */
	struct sc_timer *timer;		/* backoff when down, else watchdog */
	bool closing;			/* freed or stopping: no reconnect */
	bool drop_due;			/* the handshake failed            */
	bool ever_up;
	unsigned inflight;		/* sent, not answered              */
	uint64_t progress_ms;		/* the last answer (or first send) */
	uint64_t started_ms;		/* this connection attempt         */
	uint64_t stall_ms;		/* unanswered this long: hung      */
	uint64_t backoff_ms;
	uint64_t down_since_ms;
	uint64_t logged_ms;		/* the last "cannot connect" log   */
	unsigned failures;		/* attempts since the last time up */
	char why[160];			/* why the last one ended          */
};

/* The handshake, in order; PING's answer marks the connection up. */
enum hs_step { HS_AUTH, HS_SELECT, HS_PING };
static const char *const hs_names[] = { "AUTH", "SELECT", "PING" };

static void conn_connect(struct store_conn *c);
static void conn_failed(struct store_conn *c, const char *why);
static void conn_drop(struct store_conn *c, const char *why);

/* ---- answers: our own reply objects, bounded ---- */

/*
 * hiredis builds each answer through these functions, so what it hands us
 * is ours to check. They refuse (NULL: hiredis drops the connection as
 * out of memory) an answer nobody waits for - hiredis would assert() on
 * one that is not an error - and arrays larger than we ever ask for.
 */
struct rreply {
	int type;			/* REDIS_REPLY_* */
	long long integer;
	char *str;
	size_t len;
	size_t n;
	struct rreply **elem;
};

static void
rreply_free(void *p)
{
	struct rreply *r = p;

	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		rreply_free(r->elem[i]);
	free(r->elem);
	free(r->str);
	free(r);
}

/* rreply_new - a reply for task, linked into its parent array */
static struct rreply *
rreply_new(const redisReadTask *task, int type)
{
	struct rreply *r, *parent;

	if (task->parent == NULL) {
		const redisAsyncContext *ac = task->privdata;

		if (ac == NULL || ac->replies.head == NULL)
			return NULL;	/* unasked for */
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return NULL;
	r->type = type;
	if (task->parent != NULL) {
		parent = task->parent->obj;
		if (parent == NULL || task->idx < 0 ||
		    (size_t)task->idx >= parent->n) {
			free(r);
			return NULL;
		}
		parent->elem[task->idx] = r;
	}
	return r;
}

static void *
rreply_string(const redisReadTask *task, char *str, size_t len)
{
	struct rreply *r;

	if (len > CONN_READ_MAX)
		return NULL;
	r = rreply_new(task, task->type);
	if (r == NULL)
		return NULL;
	r->str = malloc(len + 1);
	if (r->str == NULL) {
		if (task->parent != NULL)
			((struct rreply *)task->parent->obj)->elem[task->idx] =
				NULL;
		free(r);
		return NULL;
	}
	memcpy(r->str, str, len);
	r->str[len] = '\0';
	r->len = len;
	return r;
}

#if HIREDIS_MAJOR >= 1
static void *
rreply_array(const redisReadTask *task, size_t elements)
#else
static void *
rreply_array(const redisReadTask *task, int elements)
#endif
{
	struct rreply *r;

	if (elements < 0 || (size_t)elements > CONN_ARRAY_MAX)
		return NULL;
	r = rreply_new(task, task->type);
	if (r == NULL)
		return NULL;
	if (elements > 0) {
		r->elem = calloc((size_t)elements, sizeof(*r->elem));
		if (r->elem == NULL) {
			if (task->parent != NULL)
				((struct rreply *)task->parent->obj)->
					elem[task->idx] = NULL;
			free(r);
			return NULL;
		}
		r->n = (size_t)elements;
	}
	return r;
}

static void *
rreply_integer(const redisReadTask *task, long long v)
{
	struct rreply *r = rreply_new(task, REDIS_REPLY_INTEGER);

	if (r != NULL)
		r->integer = v;
	return r;
}

static void *
rreply_nil(const redisReadTask *task)
{
	return rreply_new(task, REDIS_REPLY_NIL);
}

#if HIREDIS_MAJOR >= 1
/* RESP3 types: we speak RESP2, so a server sending these is broken */
static void *
rreply_double(const redisReadTask *task, double d, char *s, size_t len)
{
	(void)task; (void)d; (void)s; (void)len;
	return NULL;
}

static void *
rreply_bool(const redisReadTask *task, int b)
{
	(void)task; (void)b;
	return NULL;
}
#endif

static const redisReplyObjectFunctions rreply_fns = {
	.createString = rreply_string,
	.createArray = rreply_array,
	.createInteger = rreply_integer,
#if HIREDIS_MAJOR >= 1
	.createDouble = rreply_double,
	.createBool = rreply_bool,
#endif
	.createNil = rreply_nil,
	.freeObject = rreply_free,
};

/* rreply_answer - the part of r an operation reads */
static void
rreply_answer(const struct rreply *r, struct store_answer *a)
{
	memset(a, 0, sizeof(*a));
	switch (r->type) {
	case REDIS_REPLY_INTEGER:
		a->type = STORE_R_INT;
		a->integer = r->integer;
		return;
	case REDIS_REPLY_STRING:
		a->type = STORE_R_STR;
		break;
	case REDIS_REPLY_STATUS:
		a->type = STORE_R_STATUS;
		break;
	case REDIS_REPLY_ERROR:
		a->type = STORE_R_ERROR;
		break;
	case REDIS_REPLY_NIL:
		a->type = STORE_R_NIL;
		return;
	default:
		a->type = STORE_R_OTHER;
		return;
	}
	a->str = r->str != NULL ? r->str : "";
	a->len = r->len;
}

/* ---- the event loop adapter (hiredis' ev hooks on sc_fd_watch) ---- */

static void
conn_watch(struct store_conn *c, unsigned events)
{
	c->events = events;
	if (c->watch != NULL && sc_fd_watch_set(c->watch, events) < 0)
		sc_log_error("store %s: cannot watch the socket",
			     c->url.text);
}

static void
ev_add_read(void *p)
{
	struct store_conn *c = p;

	conn_watch(c, c->events | SC_FD_READ);
}

static void
ev_del_read(void *p)
{
	struct store_conn *c = p;

	conn_watch(c, c->events & ~SC_FD_READ);
}

static void
ev_add_write(void *p)
{
	struct store_conn *c = p;

	conn_watch(c, c->events | SC_FD_WRITE);
}

static void
ev_del_write(void *p)
{
	struct store_conn *c = p;

	conn_watch(c, c->events & ~SC_FD_WRITE);
}

/* ev_cleanup - hiredis frees the context: the watch goes before the
 * socket is closed (right after this returns) */
static void
ev_cleanup(void *p)
{
	struct store_conn *c = p;

	sc_fd_watch_free(&c->watch);
	c->events = 0;
	c->ac = NULL;
}

/* conn_io - the socket is ready. A reply too large for us is a broken
 * server: drop it before hiredis buffers more of it. */
static void
conn_io(struct sc_fd_watch *w, unsigned events, void *arg)
{
	struct store_conn *c = arg;

	(void)w;
	if (c->ac == NULL)
		return;
	if (events & (SC_FD_READ | SC_FD_ERROR)) {
		const redisReader *r = c->ac->c.reader;

		if (r != NULL && r->len - r->pos > CONN_READ_MAX) {
			conn_drop(c, "an answer larger than any we ask for: "
				  "not a store we can use");
			return;
		}
		redisAsyncHandleRead(c->ac);
	}
	if (c->ac != NULL && (events & SC_FD_WRITE))
		redisAsyncHandleWrite(c->ac);
}

/* ---- connection state ---- */

/* conn_progress - an answer came */
static void
conn_progress(struct store_conn *c)
{
	if (c->inflight > 0)
		c->inflight--;
	c->progress_ms = sc_now_ms();
}

/* conn_drop - ends the connection now (hung, or its handshake failed);
 * its requests are answered with NONE and a reconnect is scheduled */
static void
conn_drop(struct store_conn *c, const char *why)
{
	redisAsyncContext *ac = c->ac;

	snprintf(c->why, sizeof(c->why), "%s", why);
	c->drop_due = false;
	/* DOWN first: the disconnect callback then leaves it to us */
	c->state = CONN_DOWN;
	if (ac != NULL)
		redisAsyncFree(ac);	/* answers NONE to what is pending */
	conn_failed(c, NULL);
}

/* conn_failed - the connection or the attempt ended: schedule the next
 * one with backoff, and say so (at most once a minute while down) */
static void
conn_failed(struct store_conn *c, const char *why)
{
	uint64_t now = sc_now_ms(), delay;
	uint32_t jitter = 0;

	if (why != NULL)
		snprintf(c->why, sizeof(c->why), "%s", why);
	c->ac = NULL;
	c->state = CONN_DOWN;
	c->inflight = 0;
	if (c->closing)
		return;
	if (c->down_since_ms == 0)
		c->down_since_ms = now;
	c->failures++;
	if (c->ever_up && c->failures == 1) {
		sc_log_warning("store %s: connection lost: %s; reconnecting",
			       c->url.text, c->why);
		c->logged_ms = now;
	} else if (c->logged_ms == 0 || now - c->logged_ms >=
		   CONN_LOG_EVERY_MS) {
		sc_log_warning("store %s: cannot connect: %s (retrying with "
			       "backoff; logged once a minute)", c->url.text,
			       c->why);
		c->logged_ms = now;
	}
	/* up to a quarter more, so hosts that lost the store together do
	 * not come back in step */
	if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) < 0)
		jitter = (uint32_t)now;
	delay = c->backoff_ms + jitter % (c->backoff_ms / 4 + 1);
	c->backoff_ms = c->backoff_ms * 2 > CONN_BACKOFF_MAX_MS ?
		CONN_BACKOFF_MAX_MS : c->backoff_ms * 2;
	sc_timer_start(c->timer, delay, 0);
}

/* conn_ready - the handshake's PING was answered */
static void
conn_ready(struct store_conn *c)
{
	uint64_t now = sc_now_ms();

	if (!c->ever_up)
		sc_log_info("store %s: connected", c->url.text);
	else if (c->down_since_ms != 0)
		sc_log_notice("store %s: connected again after %" PRIu64
			      " s", c->url.text,
			      (now - c->down_since_ms) / 1000);
	c->state = CONN_UP;
	c->ever_up = true;
	c->failures = 0;
	c->down_since_ms = 0;
	c->logged_ms = 0;
	c->backoff_ms = CONN_BACKOFF_MIN_MS;
	c->why[0] = '\0';
}

static void
conn_connected(const redisAsyncContext *ac, int status)
{
	struct store_conn *c = ac->data;

	if (status == REDIS_OK)
		return;		/* up once the handshake is answered */
	/* hiredis frees the context right after this returns */
	conn_failed(c, ac->errstr[0] != '\0' ? ac->errstr :
		    "cannot connect");
}

static void
conn_disconnected(const redisAsyncContext *ac, int status)
{
	struct store_conn *c = ac->data;

	if (c->state == CONN_DOWN)
		return;		/* we dropped it; conn_drop goes on */
	conn_failed(c, status == REDIS_OK ? "closed" :
		    ac->errstr[0] != '\0' ? ac->errstr :
		    "closed by the store");
}

/* conn_hs_answer - an answer to the handshake */
static void
conn_hs_answer(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_conn *c = ac->data;
	const struct rreply *r = reply;
	enum hs_step step = (enum hs_step)(uintptr_t)privdata;

	if (r == NULL)
		return;		/* the connection ends; conn_failed says why */
	conn_progress(c);
	if (r->type == REDIS_REPLY_ERROR ||
	    (step != HS_PING && r->type != REDIS_REPLY_STATUS)) {
		if (c->drop_due)
			return;	/* the first refusal says why */
		/* dropped from the watchdog, not from inside hiredis */
		snprintf(c->why, sizeof(c->why), "%s refused: %.100s",
			 hs_names[step], r->str != NULL ? r->str :
			 "unexpected answer");
		c->drop_due = true;
		sc_timer_start(c->timer, 0, CONN_TICK_MS);
		return;
	}
	if (step == HS_PING && !c->drop_due)
		conn_ready(c);
}

/* conn_op_answer - an answer to an operation's command */
static void
conn_op_answer(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct store_conn *c = ac->data;
	struct store_answer a;

	if (reply != NULL) {
		conn_progress(c);
		rreply_answer(reply, &a);
	} else {
		memset(&a, 0, sizeof(a));
		a.type = STORE_R_NONE;
		a.error = c->why[0] != '\0' ? c->why :
			ac->errstr[0] != '\0' ? ac->errstr :
			"the connection to the store ended";
	}
	store_op_answer(privdata, &a);
}

/* conn_send_hs - queues one handshake command */
static int
conn_send_hs(struct store_conn *c, enum hs_step step, int argc,
	     const char **argv)
{
	size_t lens[2];

	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	if (redisAsyncCommandArgv(c->ac, conn_hs_answer,
				  (void *)(uintptr_t)step, argc, argv,
				  lens) != REDIS_OK)
		return -1;
	c->inflight++;
	return 0;
}

/* conn_open - connects to addr (NULL for the unix socket) */
static void
conn_open(struct store_conn *c, const char *addr)
{
	redisAsyncContext *ac;
	char db[16];

	ac = c->url.is_unix ? redisAsyncConnectUnix(c->url.path) :
		redisAsyncConnect(addr, (int)c->url.port);
	if (ac == NULL) {
		conn_failed(c, "out of memory");
		return;
	}
	if (ac->err) {
		char why[sizeof(c->why)];

		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		conn_failed(c, why);
		return;
	}
	(void)fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
	c->watch = sc_fd_watch_new(ac->c.fd, conn_io, c);
	if (c->watch == NULL) {
		redisAsyncFree(ac);
		conn_failed(c, "cannot watch the socket");
		return;
	}
	ac->data = c;
	ac->ev.data = c;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	/* hiredis never writes through fn */
	ac->c.reader->fn = (redisReplyObjectFunctions *)&rreply_fns;
	ac->c.reader->privdata = ac;
	redisAsyncSetConnectCallback(ac, conn_connected);
	redisAsyncSetDisconnectCallback(ac, conn_disconnected);
	c->ac = ac;
	c->state = CONN_CONNECTING;
	c->inflight = 0;
	c->progress_ms = sc_now_ms();
	snprintf(db, sizeof(db), "%u", c->url.db);
	if ((c->password != NULL &&
	     conn_send_hs(c, HS_AUTH, 2,
			  (const char *[]){ "AUTH", c->password }) < 0) ||
	    (c->url.db != 0 &&
	     conn_send_hs(c, HS_SELECT, 2,
			  (const char *[]){ "SELECT", db }) < 0) ||
	    conn_send_hs(c, HS_PING, 1, (const char *[]){ "PING" }) < 0) {
		conn_drop(c, "cannot queue the handshake");
		return;
	}
	sc_timer_start(c->timer, CONN_TICK_MS, CONN_TICK_MS);
}

/* ---- looking up a host name (pool) ---- */

struct resolve_job {
	struct store_conn *c;
	char host[256];
	char addr[INET6_ADDRSTRLEN];
	int err;
};

static void
resolve_work(void *arg)
{
	struct resolve_job *j = arg;
	struct addrinfo hints, *res = NULL;
	const void *a;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	j->err = getaddrinfo(j->host, NULL, &hints, &res);
	if (j->err != 0 || res == NULL) {
		if (j->err == 0)
			j->err = EAI_NONAME;
		return;
	}
	a = res->ai_family == AF_INET6 ?
		(const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr :
		(const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
	if (inet_ntop(res->ai_family, a, j->addr, sizeof(j->addr)) == NULL)
		j->err = EAI_FAIL;
	freeaddrinfo(res);
}

static void
resolve_done(void *arg)
{
	struct resolve_job *j = arg;
	struct store_conn *c = j->c;

	if (!c->closing && c->refs > 1) {
		if (j->err != 0) {
			char why[sizeof(c->why)];

			snprintf(why, sizeof(why), "cannot look up %.80s: %.60s",
				 j->host, gai_strerror(j->err));
			conn_failed(c, why);
		} else {
			conn_open(c, j->addr);
		}
	}
	free(j);
	store_conn_put(c);	/* the job's reference */
}

static void
conn_resolve(struct store_conn *c)
{
	struct resolve_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		conn_failed(c, "out of memory");
		return;
	}
	j->c = c;
	snprintf(j->host, sizeof(j->host), "%s", c->url.host);
	c->refs++;
	c->state = CONN_RESOLVING;
	if (sc_work_submit(resolve_work, resolve_done, j) < 0) {
		c->refs--;
		free(j);
		conn_failed(c, "cannot look the host up");
	}
}

static bool
host_numeric(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 ||
		inet_pton(AF_INET6, host, buf) == 1;
}

static void
conn_connect(struct store_conn *c)
{
	c->why[0] = '\0';
	c->drop_due = false;
	c->started_ms = sc_now_ms();
	if (!c->url.is_unix && !host_numeric(c->url.host))
		conn_resolve(c);
	else
		conn_open(c, c->url.is_unix ? NULL : c->url.host);
}

/* conn_tick - reconnect after the backoff; while connecting or up, the
 * watchdog: an attempt or a request without an answer for stall_ms means
 * the store (or the path to it) hangs */
static void
conn_tick(struct sc_timer *t, void *arg)
{
	struct store_conn *c = arg;
	uint64_t now = sc_now_ms();
	char why[96];

	(void)t;
	switch (c->state) {
	case CONN_DOWN:
		if (!c->closing)
			conn_connect(c);
		return;
	case CONN_RESOLVING:
		return;
	case CONN_CONNECTING:
	case CONN_UP:
		break;
	}
	if (c->drop_due) {
		char saved[sizeof(c->why)];

		memcpy(saved, c->why, sizeof(saved));
		conn_drop(c, saved);
	} else if (c->state == CONN_CONNECTING &&
		   now - c->started_ms >= c->stall_ms) {
		snprintf(why, sizeof(why), "no answer to the handshake within "
			 "%" PRIu64 " ms", c->stall_ms);
		conn_drop(c, why);
	} else if (c->inflight > 0 && now - c->progress_ms >= c->stall_ms) {
		snprintf(why, sizeof(why), "no answer for %" PRIu64 " ms",
			 c->stall_ms);
		conn_drop(c, why);
	}
}

/* ---- the interface for store.c ---- */

struct store_conn *
store_conn_get(struct store_ctx *ctx, const struct store_url *u,
	       const char *password, uint64_t stall_ms)
{
	struct store_conn *c;

	for (c = ctx->conns; c != NULL; c = c->next) {
		if (c->closing || strcmp(c->url.text, u->text) != 0 ||
		    (c->password == NULL) != (password == NULL) ||
		    (password != NULL && strcmp(c->password, password) != 0))
			continue;
		c->refs++;
		if (stall_ms > c->stall_ms)
			c->stall_ms = stall_ms;
		return c;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->timer = sc_timer_new(conn_tick, c);
	if (c->timer == NULL || (password != NULL &&
				 (c->password = strdup(password)) == NULL)) {
		sc_timer_free(&c->timer);
		free(c);
		return NULL;
	}
	c->ctx = ctx;
	c->url = *u;
	c->refs = 1;
	c->stall_ms = stall_ms;
	c->backoff_ms = CONN_BACKOFF_MIN_MS;
	c->next = ctx->conns;
	ctx->conns = c;
	conn_connect(c);
	return c;
}

bool
store_conn_up(const struct store_conn *c)
{
	return c != NULL && c->state == CONN_UP;
}

int
store_conn_send(struct store_conn *c, struct sc_store_op *op, int argc,
		const char **argv, const size_t *lens)
{
	size_t l[8];

	if (c->closing) {
		snprintf(op->error, sizeof(op->error), "the daemon stops");
		return -1;
	}
	if (c->ac == NULL || (c->state != CONN_CONNECTING &&
			      c->state != CONN_UP)) {
		snprintf(op->error, sizeof(op->error), "the store is down (%.120s)",
			 c->why[0] != '\0' ? c->why : "not connected yet");
		return -1;
	}
	if (c->inflight >= CONN_INFLIGHT_MAX) {
		snprintf(op->error, sizeof(op->error), "%u requests wait for "
			 "the store already", c->inflight);
		return -1;
	}
	if (argc > (int)(sizeof(l) / sizeof(l[0])))
		return -1;
	for (int i = 0; i < argc; i++)
		l[i] = lens != NULL ? lens[i] : strlen(argv[i]);
	if (redisAsyncCommandArgv(c->ac, conn_op_answer, op, argc, argv,
				  l) != REDIS_OK) {
		snprintf(op->error, sizeof(op->error), "cannot send: %s",
			 c->ac->errstr[0] != '\0' ? c->ac->errstr :
			 "the connection ends");
		return -1;
	}
	if (c->inflight++ == 0)
		c->progress_ms = sc_now_ms();
	return 0;
}

/* conn_free - the last reference went */
static void
conn_free(struct store_conn *c)
{
	struct store_ctx *ctx = c->ctx;

	c->closing = true;
	if (c->ac != NULL) {
		snprintf(c->why, sizeof(c->why), "the store was closed");
		redisAsyncFree(c->ac);
	}
	sc_timer_free(&c->timer);
	for (struct store_conn **pp = &ctx->conns; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	if (c->password != NULL) {
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
	}
	free(c);
	store_ctx_maybe_free(ctx);
}

void
store_conn_put(struct store_conn *c)
{
	if (c != NULL && --c->refs == 0)
		conn_free(c);
}

void
store_conn_stop_all(struct store_ctx *ctx)
{
	for (struct store_conn *c = ctx->conns; c != NULL; c = c->next) {
		c->closing = true;
		sc_timer_stop(c->timer);
		if (c->ac == NULL)
			continue;
		/* what is queued (lease drops of the sessions that just
		 * ended) goes out first, as far as the socket takes it */
		if (c->state == CONN_UP)
			redisAsyncHandleWrite(c->ac);
		c->state = CONN_DOWN;
		if (c->ac != NULL) {
			snprintf(c->why, sizeof(c->why), "the daemon stops");
			redisAsyncFree(c->ac);
		}
	}
}
