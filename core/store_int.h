/* SPDX-License-Identifier: MIT */
/*
 * core/store_int.h - between core/store.c (the public satchel/store.h:
 * handles, operations, their timeouts and callbacks) and
 * core/store_redis.c (connections to a Redis server through hiredis).
 * Loop thread only. Never installed.
 */
#ifndef SC_STORE_INT_H
#define SC_STORE_INT_H

#include "core.h"

#include <satchel/store.h>

/* A parsed store URL. */
struct store_url {
	char text[600];		/* normalised, for logs and sc_store_url */
	bool is_unix;
	char host[256];		/* TCP: a name or a numeric address */
	unsigned port;
	char path[256];		/* unix: the socket */
	unsigned db;
};

/* store.c: parses url into *u. 0, or -1 with a static *error_r. */
int store_url_parse(const char *url, struct store_url *u,
		    const char **error_r);

/* What the store answered, decoded: the part an operation needs. */
enum store_reply_type {
	STORE_R_NONE = 0,	/* no answer (connection lost, stopping)   */
	STORE_R_INT,
	STORE_R_STR,		/* a bulk string                            */
	STORE_R_STATUS,		/* "+OK"                                    */
	STORE_R_NIL,
	STORE_R_ERROR,		/* "-ERR ...": str holds the text           */
	STORE_R_OTHER,		/* an array or a RESP3 type: never expected */
};

struct store_answer {
	enum store_reply_type type;
	long long integer;
	const char *str;	/* STR, STATUS, ERROR */
	size_t len;
	const char *error;	/* NONE: why there is no answer */
};

struct store_conn;
struct store_op_kind;

/* One operation (satchel/store.h's struct sc_store_op). */
struct sc_store_op {
	struct store_ctx *ctx;
	struct sc_store_op *prev, *next;	/* ctx->ops */
	struct sc_store *st;		/* the handle; NULL once it closed  */
	struct sc_instance *inst;	/* whose job it is (counted)        */
	struct sc_timer *timer;		/* timeout, then delivery            */
	const struct store_op_kind *kind;
	sc_store_fn fn;
	void *arg;
	bool sent;		/* the connection holds it: store_op_answer
				   comes exactly once                    */
	bool finished;		/* res is set; delivery is due           */
	bool cancelled;
	bool delivering;	/* fn runs, or ran                       */
	struct sc_store_result res;
	char *data;		/* get: the value, owned                  */
	char error[160];
};

/* The process' store service (sc_core->stores). */
struct store_ctx {
	struct store_conn *conns;
	struct sc_store *handles;
	struct sc_store_op *ops;	/* started, not yet delivered */
	bool stopping;			/* sc_store_stop: no new operations */
	unsigned busy;			/* sc_store_stop runs: keep ctx      */
};

/* ---- store_redis.c ---- */

/* The connection to u with password (NULL: none), shared: an existing one
 * or a new one, which starts connecting. stall_ms: how long requests may
 * wait for any answer before the connection is dropped as hung (the
 * connection keeps the longest asked for). NULL when out of memory. */
struct store_conn *store_conn_get(struct store_ctx *ctx,
				  const struct store_url *u,
				  const char *password, uint64_t stall_ms);
/* Drops a reference; the last one closes the connection (answering its
 * requests with STORE_R_NONE) and frees it. */
void store_conn_put(struct store_conn *c);
bool store_conn_up(const struct store_conn *c);
/* Sends a command for op (pipelined). 0: store_op_answer(op, ...) will be
 * called exactly once, later, never from inside this call. -1: not sent
 * (the store is known to be down, too many requests wait, no memory);
 * op->error says why. */
int store_conn_send(struct store_conn *c, struct sc_store_op *op, int argc,
		    const char **argv, const size_t *lens);
/* Closes every connection now (the daemon stops): their requests are
 * answered with STORE_R_NONE; no reconnecting from here on. */
void store_conn_stop_all(struct store_ctx *ctx);

/* ---- store.c ---- */

/* Frees ctx (and forgets it in sc_core) once it holds nothing. */
void store_ctx_maybe_free(struct store_ctx *ctx);
/* The answer for a sent op; called from inside hiredis, so it must not
 * call module code: it records the result for delivery on the loop. */
void store_op_answer(struct sc_store_op *op, const struct store_answer *a);

#endif
