/* SPDX-License-Identifier: MIT */
/*
 * core/queue_int.h - what the queue runner's three files share: the
 * messages and recipients in memory, attempts, deliveries and the
 * runner's state. Internal to the core; loop thread only, except where a
 * comment says a field is touched from the pool.
 *
 *   queue_runner.c   scheduling and retry: messages in memory, the runner
 *                    loop and its timer, limits, the retry schedule, flush
 *   queue_dispatch.c dispatch to drivers: attempts, the ROUTE hook, alias
 *                    expansion, deliveries (sc_delivery_*), their records
 *   queue_dsn.c      bounces and DSNs (RFC 3464), delay notices
 *   queue_index.c    the messages' indexes: list, by id, heap of due times
 */
#ifndef SC_QUEUE_INT_H
#define SC_QUEUE_INT_H

#include "core.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

/* A delivery group over a limit (sc_runner_slot_take) waits this long in
 * memory, unrecorded. */
#define THROTTLE_MS	1000

enum rstate { R_PENDING = 0, R_DELIVERED, R_FAILED, R_EXPANDED };

struct qrcpt {
	char *addr;
	char *params;
	char *orcpt;		/* the original address, for expansions   */
	enum rstate state;
	unsigned attempts;
	unsigned depth;
	uint64_t next_ms;	/* wall clock                              */
	char *reply;		/* last reply                              */
	bool delay_notified;
	/* NOTIFY=SUCCESS: "delivered" or "relayed" once it is (an S
	 * record), for the success DSN; NULL otherwise */
	const char *success;
	bool routing;		/* in the current attempt                  */
	const char *kind;	/* chosen by the route (static strings)    */
	char *nexthop;
	bool self;		/* the copy of an alias naming itself      */
	bool slot_wait;		/* waits for a local slot: due again at
				 * the next release, not THROTTLE_MS later */
};

struct qmsg {
	struct qmsg *next, *prev;	/* sc_runner.msgs                  */
	struct qmsg *hnext;	/* its bucket in sc_runner.buckets         */
	size_t heap_i;		/* in sc_runner.heap, or SIZE_MAX          */
	uint64_t due_ms;	/* its key there (queue_index.c)           */
	struct qmsg *wnext, *wprev;	/* sc_runner.waiters              */
	bool waiting;		/* in sc_runner.waiters                    */
	char id[17];
	char *path;
	time_t arrival;
	char *sender, *params, *auth, *client, *helo;
	uint64_t size, data_off;
	size_t received;
	size_t n, cap;
	struct qrcpt *r;
	bool busy;		/* an attempt, a DSN or a record write     */
	bool deleted;
	bool dsn_sent;		/* a B record: the failure DSN went out   */
	char *quarantine;	/* a Q record: held, never delivered      */
	uint64_t finish_ms;	/* a DSN failed: try again then           */
};

struct attempt;

/* One append of records to a message's file, on the pool. An attempt has
 * at most one at a time, so its records reach the file in order. */
struct recw {
	uv_work_t work;
	struct attempt *a;
	char *path;
	char *buf;
	bool sync;		/* fdatasync after the write               */
	atomic_bool finished;	/* set by the pool thread after the write  */
};

struct attempt {
	struct attempt *next;	/* sc_runner.attempts                      */
	struct qmsg *m;
	struct sc_gen *gen;
	bool routing_phase;	/* counted in sc_runner.routing            */
	bool ended;		/* every delivery answered                 */
	bool finishing;		/* fin is queued                           */
	bool remove;		/* fin removes the delivered message's file
				 * (set on the loop before, cleared by fin
				 * when the unlink failed)                 */
	uv_work_t fin;		/* the finish, always from a loop callback */
	size_t routes;		/* route calls outstanding (+1 guard)      */
	size_t deliveries;	/* deliveries outstanding (+1 guard)       */
	struct recw *writing;	/* the append in flight                    */
	char *records;		/* not yet handed to an append             */
	size_t rec_len, rec_cap;
	/* records holds a result that must be durable before the message
	 * is removed: a "delivered" of a driver that is not idempotent
	 * (sc_delivery_idempotent), or anything but D and S records */
	bool rec_sync;
	/* delay notices to send: indexes */
	size_t *delay;
	size_t delay_n;
};

struct dres {
	enum sc_result result;
	bool set;
	bool relayed;		/* the next hop took no DSN request        */
	char *reply;
};

struct sc_delivery {
	struct attempt *a;
	const struct sc_delivery_driver *drv;
	const char *nexthop;
	bool local;		/* counted in sc_runner.local, else in
				 * sc_runner.remote                        */
	bool idempotent;	/* sc_delivery_idempotent()                */
	char *dest;		/* the remote destination it counts for    */
	size_t n;
	size_t *idx;
	struct dres *res;
};

struct dest;

/* The runner: process-wide, loop thread only (defined in queue_runner.c). */
struct sc_runner_state {
	bool init;
	bool started;
	uv_timer_t timer;
	struct qmsg *msgs;	/* every message in memory                 */
	size_t nmsgs;
	struct qmsg **buckets;	/* by queue id (queue_index.c)             */
	size_t nbuckets;	/* 0 or a power of two                     */
	struct qmsg **heap;	/* min-heap by due_ms: the messages that
				 * are not busy, quarantined or deleted    */
	size_t heap_n, heap_cap;
	struct attempt *attempts;
	size_t in_flight;	/* attempts                                */
	size_t routing;		/* attempts routing                        */
	size_t local, remote;	/* deliveries                              */
	/* messages whose recipients may have slot_wait set, oldest
	 * first (queue_index.c) */
	struct qmsg *waiters, *waiters_tail;
	struct dest *dests;
	size_t ndests;
	uint64_t rescan_ms;	/* 0, or when to look at active/ again    */
};
SC_INTERNAL extern struct sc_runner_state sc_runner;

/* ---- small helpers of the three files ---- */

static inline uint64_t
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static inline uv_loop_t *
run_loop(void)
{
	return sc_core != NULL && sc_core->loop != NULL ? sc_core->loop :
		uv_default_loop();
}

static inline char *
xstrdup(const char *s)
{
	return strdup(s != NULL ? s : "");
}

static inline void
set_str(char **p, const char *v)
{
	free(*p);
	*p = xstrdup(v);
}

/* one_line - a reply fit for a record line */
static inline char *
one_line(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; p != NULL && *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return d;
}

/* ---- queue_index.c ---- */

/* Lists m (all messages, by id) and schedules it. */
SC_INTERNAL void sc_runner_msg_list(struct qmsg *m);
/* Takes m off every index (a no-op when it is not listed). */
SC_INTERNAL void sc_runner_msg_unlist(struct qmsg *m);
SC_INTERNAL struct qmsg *sc_runner_msg_find(const char *id);
/* Keys m again in the heap by its earliest due time, or takes it out
 * while it is busy, quarantined or deleted. Called whenever its
 * recipients may have changed outside an attempt, and when it stops
 * being busy. */
SC_INTERNAL void sc_runner_msg_sched(struct qmsg *m);
/* Queues m among the messages waiting for a local slot (once) or takes
 * it off that queue. */
SC_INTERNAL void sc_runner_waiter_add(struct qmsg *m);
SC_INTERNAL void sc_runner_waiter_remove(struct qmsg *m);
/* The message due first, NULL when none is scheduled. */
SC_INTERNAL struct qmsg *sc_runner_heap_top(void);
SC_INTERNAL void sc_runner_heap_remove(struct qmsg *m);
/* Frees the indexes once no message is left. */
SC_INTERNAL void sc_runner_index_free(void);

/* ---- queue_runner.c ---- */

/* Messages in memory: a new recipient (NULL when out of memory), freeing
 * (unlisted first). */
SC_INTERNAL struct qrcpt *sc_runner_msg_add_rcpt(struct qmsg *m,
						 const char *addr,
						 const char *params);
SC_INTERNAL void sc_runner_msg_free(struct qmsg *m);
/* Runs the runner from the loop, never recursively. */
SC_INTERNAL void sc_runner_kick(void);
/* Schedules recipient i's next try on drv's retry schedule (the default
 * one without drv), or fails it once the message is too old. */
SC_INTERNAL void sc_runner_rcpt_deferred(struct attempt *a, size_t i,
					 const char *reply,
					 const struct sc_delivery_driver *drv);
/* Counts delivery d in the limits of its kind and destination key; false
 * when it is over one (it then waits THROTTLE_MS). Released when it is
 * over. */
SC_INTERNAL bool sc_runner_slot_take(struct sc_delivery *d, const char *kind,
				     const char *key);
SC_INTERNAL void sc_runner_slot_release(struct sc_delivery *d);

/* ---- queue_dispatch.c ---- */

/* Routes every due recipient of m and delivers them; false, m untouched,
 * when out of memory (m may be gone once it returns true). */
SC_INTERNAL bool sc_runner_attempt_start(struct qmsg *m, uint64_t now);
/* Adds a record line to the attempt's pending records. */
SC_INTERNAL void sc_runner_rec_add(struct attempt *a, const char *fmt, ...)
	SC_PRINTF(2, 3);
/* Writes the attempt's pending records on this thread (at stop). */
SC_INTERNAL void sc_runner_rec_write_now(struct attempt *a);
/* Emits an event about recipient r of m. */
SC_INTERNAL void sc_runner_emit(enum sc_event_type type, struct qmsg *m,
				struct qrcpt *r, const char *text);
/* Recipient i failed for good: recorded, logged, emitted. */
SC_INTERNAL void sc_runner_rcpt_failed(struct attempt *a, size_t i,
				       const char *reply);

/* ---- queue_dsn.c ---- */

/* Does the NOTIFY= of a recipient's params allow reporting what? */
SC_INTERNAL bool sc_runner_notify_allows(const char *params,
					 const char *what);
/* Length of a leading "NNN " or "NNN x.y.z " reply code, else 0. */
SC_INTERNAL size_t sc_runner_reply_code_len(const char *s);
/* Every recipient of m is final: bounces the failed ones and removes the
 * message. */
SC_INTERNAL void sc_runner_msg_finish(struct qmsg *m);
/* Queues a delay notice for the recipients idx[0..n) of m. */
SC_INTERNAL void sc_runner_dsn_delay(struct qmsg *m, const size_t *idx,
				     size_t n);

#endif
