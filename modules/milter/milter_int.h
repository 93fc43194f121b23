/* SPDX-License-Identifier: MIT */
/*
 * milter_int.h - the milter module's private header: configuration,
 * instance, and the per-session state (one milter connection per SMTP
 * session and instance), shared by the module's files. Internal to the
 * module, never installed. Everything runs on the event loop thread.
 */
#ifndef MILTER_INT_H
#define MILTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <satchel/satchel.h>

#include "milter_proto.h"

enum milter_on_failure { ONF_TEMPFAIL = 0, ONF_ACCEPT, ONF_REJECT };

struct milter_timeouts {
	uint64_t connect;
	uint64_t command;
	uint64_t eom;
};

struct milter_conf {
	char *address;
	struct sc_str_list modes;
	int on_failure;
	struct milter_timeouts timeouts;
};

struct milter_inst {
	struct sc_instance *inst;
	const struct milter_conf *conf;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	bool mode_mx, mode_submission;
	/* counters for `satchelctl status` */
	uint64_t n_sessions, n_failures, n_rejects, n_edits;
};

/* What one stage's answer means for the hook. */
enum milter_verdict {
	MV_CONTINUE = 0,	/* go on                                    */
	MV_ACCEPT,		/* no more events (session or message)       */
	MV_DISCARD,		/* accept the message, deliver it nowhere    */
	MV_REJECT,
	MV_TEMPFAIL,
	MV_SHUTDOWN,		/* 421 and close                            */
	MV_FAILED,		/* down, protocol error, timeout: on_failure */
};

struct milter_sess;
struct milter_msg;
/* Called once a stage has its answer (or failed). */
typedef void (*milter_stage_fn)(struct milter_sess *ms,
				enum milter_verdict v);

/* The connection's state. */
enum mconn_state {
	MC_NONE = 0,		/* not opened yet                           */
	MC_CONNECTING,		/* connect() in progress                    */
	MC_NEGOTIATING,		/* OPTNEG sent                              */
	MC_READY,		/* negotiated; commands may go               */
	MC_CLOSED,		/* failed or done; never reopened            */
};

struct milter_sess {
	struct milter_inst *mi;
	struct sc_session *s;		/* NULL once the session ended      */
	unsigned depth;		/* loop callbacks running on it              */
	bool dead;		/* the session ended: free at depth 0        */
	/* the connection (milter_conn.c) */
	enum mconn_state state;
	int fd;
	struct sc_fd_watch *watch;
	struct sc_timer *timer;
	struct milter_buf out;
	unsigned char *in;
	size_t in_len, in_cap;
	bool waiting;		/* a reply is expected                       */
	uint64_t wait_ms;	/* its timeout (re-armed by progress)        */
	/* negotiated */
	uint32_t actions, protocol;
	char *macros[MS_COUNT];	/* lists the milter asked for, or NULL      */
	/* where the session is */
	bool skip;		/* not one of our modes: never talks         */
	struct sc_hook_call *call;	/* the hook call waiting, or NULL    */
	milter_stage_fn then;	/* what to do with the next final reply     */
	void (*build)(struct milter_sess *);	/* runs once negotiated     */
	bool in_callback;	/* inside the hook callback (not PENDING yet) */
	bool sync_done;		/* ...and the stage finished in it           */
	enum sc_result sync_result;
	char *arg, *arg_params;	/* the command's argument, for build         */
	char pending_cmd;	/* the command whose reply is awaited        */
	bool conn_accepted;	/* accept at connect/helo: silent from now   */
	bool msg_accepted;	/* accept in a message: silent until the next */
	bool msg_discard;	/* discard: the message goes nowhere         */
	bool in_message;	/* MAIL sent, EOM not yet answered           */
	bool skip_body;		/* SMFIR_SKIP                                */
	enum milter_verdict failed;	/* sticky failure (MV_FAILED or none) */
	char *auth_type;	/* the AUTH mechanism, for {auth_type}       */
	char *mail_addr;	/* for {mail_addr}                           */
	char *queue_id;		/* for i                                     */
	/* the last final reply */
	int reply_code;
	char reply_esc[16];
	char *reply_text;
	/* the message stage (milter_message.c) */
	struct milter_msg *msg;
	unsigned msg_gen;
};

/* ---- milter.c ---- */

/* milter_sess_get - the session's state for this instance, created on
 * first use; NULL when out of memory. */
struct milter_sess *milter_sess_get(struct milter_inst *mi,
				    struct sc_session *s);

/* ---- milter_conn.c: the socket to the milter ---- */

/* mconn_parse_address - "unix:/path", "local:/path", "inet:host:port",
 * "inet:port@host", "inet6:[v6]:port" into a sockaddr (names resolved now,
 * at start). 0, or -1 with *error_r (static text). */
int mconn_parse_address(const char *text, struct sockaddr_storage *ss,
			socklen_t *len_r, const char **error_r);
/* mconn_flush - writes what was built in ms->out (what does not fit now
 * goes out when the socket is writable). */
void mconn_flush(struct milter_sess *ms);
/* mconn_fail - closes the connection for good and fails the stage. */
void mconn_fail(struct milter_sess *ms, const char *why);
/* mconn_expect - waits (timeout_ms) for a reply; packets go to
 * milter_stage_packet(). Opens and negotiates the connection first if
 * needed. */
void mconn_expect(struct milter_sess *ms, uint64_t timeout_ms);
/* mconn_open - connects and negotiates (if not done yet). */
void mconn_open(struct milter_sess *ms);
/* mconn_close - QUIT (when ready and polite) and close; stops waiting. */
void mconn_close(struct milter_sess *ms, bool quit);

/* ---- milter_stage.c: the conversation ---- */

/* milter_stage_packet - one packet from the milter while waiting. Returns
 * true to keep waiting (progress, an action before the final reply). */
bool milter_stage_packet(struct milter_sess *ms, unsigned char *pkt,
			 size_t len);
/* milter_stage_fail - the connection failed (why: for the log). */
void milter_stage_fail(struct milter_sess *ms, const char *why);
/* milter_negotiated - OPTNEG's answer arrived (parsed in r). 0 or -1. */
int milter_negotiated(struct milter_sess *ms, const struct milter_reply *r);
/* milter_macros - appends SMFIC_MACRO for command cmd (stage st). */
void milter_macros(struct milter_sess *ms, char cmd, enum milter_stage st);
/* milter_finish_call - ends the pending hook call with verdict v. */
void milter_finish_call(struct milter_sess *ms, enum milter_verdict v);
/* milter_stage_begin - the session's state when the milter takes part
 * in this hook (mode, acceptance, an earlier failure); NULL with *res_r
 * the answer otherwise. */
struct milter_sess *milter_stage_begin(struct sc_hook_call *call,
				       void *data, bool message_stage,
				       enum sc_result *res_r);
/* milter_stage_run - runs build (it sends and waits; then gets the final
 * answer) once negotiated: the hook's result, or SC_PENDING. */
enum sc_result milter_stage_run(struct milter_sess *ms,
				struct sc_hook_call *call,
				void (*build)(struct milter_sess *),
				milter_stage_fn then);
/* milter_hook_* - the hook callbacks (registered by milter.c). */
enum sc_result milter_hook_connect(struct sc_hook_call *call, void *data);
enum sc_result milter_hook_helo(struct sc_hook_call *call, void *data);
enum sc_result milter_hook_auth(struct sc_hook_call *call, void *data);
enum sc_result milter_hook_mail(struct sc_hook_call *call, void *data);
enum sc_result milter_hook_rcpt(struct sc_hook_call *call, void *data);
enum sc_result milter_hook_data(struct sc_hook_call *call, void *data);
/* milter_sess_free - session end: abort/quit and free (a data slot's
 * free_fn); while a loop callback runs on it, freeing waits for
 * milter_sess_unref. */
void milter_sess_free(void *p);
/* milter_sess_unref - at the end of a loop callback: frees a dead one. */
void milter_sess_unref(struct milter_sess *ms);

/* ---- milter_message.c: headers, body, end of message, edits ---- */

enum sc_result milter_hook_data_post(struct sc_hook_call *call, void *data);
/* milter_msg_action - a modification action at end of message. 0 or -1
 * (a protocol error). */
int milter_msg_action(struct milter_sess *ms, const struct milter_reply *r);
/* milter_msg_free - drops the message stage's state. */
void milter_msg_free(struct milter_sess *ms);

#endif
