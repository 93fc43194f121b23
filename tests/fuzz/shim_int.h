/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/shim_int.h - what the parts of the fake core share (shim.c:
 * the loop, instances, events, timers; shim_net.c: connections and
 * sessions; shim_hook.c: hook chains; shim_queue.c: the queue, deliveries,
 * DNS). Not for the targets: they use shim.h.
 */
#ifndef SATCHEL_FUZZ_SHIM_INT_H
#define SATCHEL_FUZZ_SHIM_INT_H

#include "shim.h"

#define IN_CAP		(64 * 1024)	/* core/net_int.h CONN_INPUT_CAP  */
#define OUT_KEEP	(1024 * 1024)	/* client output kept for checks  */
#define QUEUE_KEEP	(4 * 1024 * 1024)
#define MAX_STEPS	200000		/* a livelock, not a busy module  */
#define MAX_SLOTS	8

/* ---- the loop's queue of callbacks ---- */

enum ev_kind {
	EV_HOOK_DONE,		/* a scripted PENDING verdict arrives      */
	EV_CHAIN_DONE,		/* a chain finished: its done callback     */
	EV_WORK,		/* a pool job: work, then done             */
	EV_TLS,			/* a handshake ends                        */
	EV_CONNECT,		/* an outbound connect completes           */
	EV_COMMIT,		/* a queue commit is durable (or failed)   */
	EV_DNS,			/* a DNS answer                            */
};

struct ev {
	struct ev *next;
	enum ev_kind kind;
	struct sc_session *s;		/* cancelled when s closes         */
	struct sc_conn *c;		/* cancelled when c closes         */
	struct sc_hook_call *call;
	struct chain *chain;
	enum sc_result result;
	sc_work_fn work, done;
	void *arg;
	sc_conn_tls_fn tls_done;
	sc_connect_fn connect_done;
	bool ok;
	struct sc_queue_tx *tx;
	sc_dns_fn dns_fn;
	char *name;
	int type;
};

/* ---- the objects ---- */

/* struct sc_instance is core.h's: mh->mod and conf->name are used. */

struct sc_conn {
	struct sc_conn *next;
	struct sc_session *s;		/* inbound: its session            */
	bool outbound;
	sc_conn_fn fn;
	void *arg;
	char *in;			/* exactly in_cap bytes: ASan    */
	size_t in_len, in_cap;		/* sees a read past the input    */
	bool want_read, announce, eof, eof_sent, closing;
	bool discarding;
	size_t discarded;
	char *line;
	size_t line_cap;
	uint64_t timeout_ms;
	bool tls, tls_pending;
	size_t unflushed;		/* written, not yet "sent"         */
	struct shim_client *client;	/* inbound: where output goes      */
	char *out;			/* outbound: output not yet taken  */
	size_t out_len, out_cap;
	char peer[64];
};

struct slot {
	const struct sc_instance *inst;
	void *data;
	void (*free_fn)(void *);
};

struct sc_session {
	struct sc_session *next;
	char id[16];
	char protocol[16];
	char client_ip[64];
	struct sockaddr_storage client, local;
	struct sc_conn *conn;
	char *helo, *auth_user;
	bool relay_allowed, busy, closing;
	bool mail_ok;			/* the last MAIL chain said OK/CONT */
	struct slot slots[MAX_SLOTS];
	struct sc_queue_tx *tx;		/* commit pending                  */
};

struct sc_hook_call {
	struct chain *chain;
	struct sc_hook_call *next;	/* all calls, for shim_end          */
	bool pending, done, cancelled, scripted;
	int code;
	char esc[16];
	char *text;
	char *auth_user;
};

struct chain {
	struct sc_session *s;
	enum sc_hook hook;
	const void *arg;
	sc_hook_done_fn done;
	void *cbarg;
	size_t next;			/* next registered callback        */
	struct sc_hook_call *cur;	/* the call deciding now           */
	bool cancelled;
	bool in_run;			/* inside sc_hook_run              */
	struct sc_reply reply;
	char *reply_text;
	char *auth_user;
	char *route_kind, *route_nexthop;
	char **expand;
	size_t nexpand;
	struct chain *link;		/* all chains, for cleanup          */
};

struct hook_reg {
	enum sc_hook hook;
	struct sc_instance *inst;
	sc_hook_fn fn;
	void *data;
};

struct event_reg {
	enum sc_event_type type;
	sc_event_fn fn;
	void *data;
};

struct sc_timer {
	struct sc_timer *next;
	sc_timer_fn fn;
	void *arg;
	bool armed, fired;
	uint64_t due, repeat;
};

struct sc_queue_tx {
	struct sc_session *s;
	char id[17];
	char *data;
	size_t len;
	uint64_t size;
	bool failed;
	sc_queue_commit_fn done;
	void *arg;
	size_t nrcpt;
	char *sender;
	bool finished;		/* sc_message_finish was called      */
};

struct sc_delivery {
	struct sc_delivery *next;
	char id[17];
	char *sender, *params, *nexthop;
	size_t n;
	char **rcpt, **rparams;
	bool *result_set;
	int memfd;
	size_t len;
};

struct listener {
	struct sc_instance *inst;
	sc_accept_fn fn;
	void *arg;
	char protocol[16];
};

struct driver_reg {
	const struct sc_delivery_driver *drv;
	void *data;
};

struct shim_state {
	const uint8_t *script;
	size_t script_len, script_pos;
	struct ev *evs, **evs_tail;
	struct sc_conn *conns;
	struct sc_session *sessions;
	struct sc_timer *timers;
	struct chain *chains;
	struct sc_delivery *deliveries;
	struct listener listeners[16];
	size_t nlisteners;
	struct hook_reg hooks[32];
	size_t nhooks;
	struct event_reg events[32];
	size_t nevents;
	struct driver_reg drivers[4];
	size_t ndrivers;
	bool script_hooks;
	uint64_t now;
	unsigned serial;
	size_t committed;
	char mailbox[512];
	struct sc_main_config *cfg;
};

/* The one fake core of the process. */
extern struct shim_state shim;

void *xcalloc(size_t n, size_t size);
char *xstrdup(const char *s);
/* Reads the whole string: a dangling pointer shows up here. */
size_t str_ok(const char *s);
/* Queues a callback for the loop. */
struct ev *ev_add(enum ev_kind kind);
void ev_free(struct ev *e);
/* After events were unlinked from the middle of the queue. */
void ev_relink_tail(void);

/* shim_net.c */
struct sc_conn *conn_new(void);
/* Frees c and cancels its callbacks (a handshake in progress). */
void conn_destroy(struct sc_conn *c);
bool conn_live(const struct sc_conn *c);
/* One connection's pending announce or flush; false when none. */
bool conn_step(void);

/* shim_queue.c */
void tx_free(struct sc_queue_tx *tx);
/* Runs a queued DNS query's callback with a scripted answer. */
void dns_answer(struct ev *e);

#endif
