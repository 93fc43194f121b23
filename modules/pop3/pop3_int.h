/* SPDX-License-Identifier: MIT */
/*
 * pop3_int.h - what the pop3 module's files share (module-private, never
 * installed): the limits, the instance and session state, the pool job
 * that scans or expunges a mailbox, and the functions one file calls in
 * another. The map:
 *   pop3.c          configuration, instance lifecycle, status lines
 *   pop3_session.c  a session: accept, greeting, TLS, CAPA, the input
 *                   loop, the command table and its state checks, replies
 *   pop3_auth.c     AUTHORIZATION: USER/PASS, AUTH PLAIN, the AUTH hook,
 *                   failure delays, login (lock + scan -> TRANSACTION)
 *   pop3_trans.c    TRANSACTION commands and QUIT (the UPDATE state)
 *   pop3_retr.c     RETR/TOP streaming with back-pressure
 *   pop3_maildir.c  the mailbox: the lock, scans of new/ and cur/, UIDL,
 *                   CRLF sizes, message files, expunge
 * Everything runs on the event loop thread except the pool jobs, which
 * say so.
 */
#ifndef SATCHEL_POP3_INT_H
#define SATCHEL_POP3_INT_H

#include <satchel/satchel.h>

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POP_LINE_MAX	1024	/* RFC 2449 says 255; AUTH lines are longer */
#define POP_SASL_MAX	8192	/* a base64 AUTH PLAIN response */
#define POP_CHUNK	65536	/* bytes read from a message per work item */
#define POP_OUT_HIGH	262144	/* pause RETR while this much is unsent */
#define POP_UID_MAX	70	/* RFC 1939: 1 to 70 characters */
#define POP_CACHE_MAX	100000	/* size cache entries before it is reset */

enum pop_tls { POP_TLS_NONE = 0, POP_TLS_STARTTLS, POP_TLS_IMPLICIT };

/* ---- instance and session state ---- */

struct pop_inst;

struct pop_listener {
	struct pop_inst *pd;
	int tls;
};

/* A mailbox held by a session in TRANSACTION/UPDATE state. */
struct pop_lock {
	struct pop_lock *next;
	char *mbox;
};

/* Size cache entry: computing the CRLF size means reading the file, so
 * it is done once per message and process. */
struct pop_cache_ent {
	struct pop_cache_ent *next;
	uint64_t st_size;
	int64_t mtime;
	uint64_t vsize;
	char key[];		/* mailbox path '/' uid */
};

#define POP_CACHE_BUCKETS 4096

/*
 * Instance data. Reference counted: sessions (and through them their
 * pool jobs) hold a reference. The core frees the instance only after
 * every job's done ran (sc_work_submit_inst). Nothing here points into
 * the core-owned config once instance_new returned.
 */
struct pop_inst {
	unsigned refs;
	struct sc_instance *inst;	/* NULL after instance_free */
	uint64_t cmd_timeout;
	uint64_t fail_delay;
	uint64_t max_failures;
	size_t listener_count;
	struct pop_listener *listeners;
	struct pop_lock *locks;
	uint64_t logins, failures;
	pthread_mutex_t cache_mutex;	/* the cache is used by pool threads */
	struct pop_cache_ent *cache[POP_CACHE_BUCKETS];
	size_t cache_count;
};

struct pop_msg {
	char *name;		/* relative to the mailbox: "cur/NAME" */
	char uid[POP_UID_MAX + 1];
	uint64_t vsize;		/* octets with CRLF line ends */
	bool deleted;
};

enum pop_state { POP_AUTHORIZATION, POP_TRANSACTION, POP_UPDATE };

struct pop_xfer;

struct pop_sess {
	unsigned refs;		/* the session slot + each pending job */
	struct pop_inst *pd;
	struct sc_session *s;	/* NULL once the core closed the session */
	struct sc_conn *c;
	int tls;		/* listener's enum pop_tls */
	enum pop_state state;
	bool busy;		/* an async step runs; input is paused */
	bool in_input;
	bool sasl_wait;		/* AUTH PLAIN waits for the response line */
	bool greeted;
	char *user;		/* USER argument */
	char *mbox;		/* locked mailbox path */
	char *login;		/* canonical user once logged in */
	unsigned auth_failures;
	struct sc_timer *delay_timer;
	struct sc_timer *stall_timer;
	/* the AUTH hook argument and the strings it points to */
	struct sc_auth_request req;
	char *req_user, *req_pass;
	const char *req_mech;
	size_t nmsg;
	struct pop_msg *msgs;
	struct pop_xfer *xfer;
};

/* ---- pool jobs on a mailbox ---- */

struct pop_scan_ent {
	char *name;		/* "cur/NAME" */
	int64_t mtime;
	uint64_t vsize;
};

/* One pool job of a session; kind tells which fields are used. */
struct pop_job {
	struct pop_sess *ps;
	struct pop_inst *pd;
	char *mbox;
	/* scan */
	struct pop_scan_ent *ents;
	size_t nent;
	/* update */
	size_t ndel;
	char **del;		/* "cur/NAME" of messages to remove */
	size_t failed;
	int err;
};

/* ---- pop3.c ---- */

/* drops a reference; the last one frees the instance */
void pop_inst_unref(struct pop_inst *pd);

/* ---- pop3_session.c ---- */

/* the listener's accept callback (sc_listen_open) */
void pop_accept(struct sc_session *s, void *arg);
/* queues one response line (CRLF added) */
void pop_reply(struct pop_sess *ps, const char *fmt, ...) SC_PRINTF(2, 3);
void pop_free_secret(char **p);
void pop_sess_unref(struct pop_sess *ps);
void pop_close(struct pop_sess *ps);
void pop_pause(struct pop_sess *ps);
void pop_resume(struct pop_sess *ps);
bool pop_plaintext_ok(const struct pop_sess *ps);

/* ---- pop3_auth.c: AUTHORIZATION commands ---- */

void pop_cmd_user(struct pop_sess *ps, const char *arg);
void pop_cmd_pass(struct pop_sess *ps, const char *arg);
void pop_cmd_auth(struct pop_sess *ps, const char *arg);
/* the AUTH PLAIN response line after "+ " */
void pop_sasl_plain(struct pop_sess *ps, const char *b64);
/* the delay_timer callback: answers a failed login */
void pop_fail_delay_done(struct sc_timer *t, void *arg);

/* ---- pop3_trans.c: TRANSACTION commands and QUIT ---- */

void pop_cmd_stat(struct pop_sess *ps, const char *arg);
void pop_cmd_list(struct pop_sess *ps, const char *arg);
void pop_cmd_uidl(struct pop_sess *ps, const char *arg);
void pop_cmd_retr(struct pop_sess *ps, const char *arg);
void pop_cmd_top(struct pop_sess *ps, const char *arg);
void pop_cmd_dele(struct pop_sess *ps, const char *arg);
void pop_cmd_rset(struct pop_sess *ps, const char *arg);
void pop_cmd_noop(struct pop_sess *ps, const char *arg);
void pop_cmd_quit(struct pop_sess *ps, const char *arg);

/* ---- pop3_retr.c: RETR/TOP streaming ---- */

void pop_retr_start(struct pop_sess *ps, struct pop_msg *m, bool top,
		    uint64_t lines);
/* SC_CONN_DRAINED: a transfer waiting for the client goes on */
void pop_xfer_drained(struct pop_sess *ps);
/* the stall_timer callback: the client stopped reading */
void pop_stall_timeout(struct sc_timer *t, void *arg);
void pop_xfer_free(struct pop_xfer **xp);

/* ---- pop3_maildir.c: the mailbox ---- */

void pop_unlock(struct pop_sess *ps);
/* the UIDL of a Maildir base name into uid[POP_UID_MAX + 1] */
void pop_make_uid(const char *name, char *uid);
/* pool: the mailbox listing into j->ents, or j->err */
void pop_job_scan(void *arg);
/* pool: removes j->del and syncs the directories; j->failed counts */
void pop_job_update(void *arg);
void pop_job_free(struct pop_job *j);
/* pool: opens mbox/rel, or the file the message has been renamed to */
int pop_open_msg(const char *mbox, const char *rel);

#endif
