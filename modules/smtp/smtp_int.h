/* SPDX-License-Identifier: MIT */
/*
 * smtp_int.h - the smtp module's private header: the configuration, the
 * instance, the session and its mail transaction, shared by the module's
 * files. Internal to the module (built with hidden visibility), never
 * installed. Functions one file offers the others carry the smtp_ prefix:
 * tests/fuzz/fuzz_smtp links the module's files with a fake core whose
 * own names (tx_free, ...) they must not meet.
 */
#ifndef SMTP_INT_H
#define SMTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <satchel/satchel.h>

enum smtp_mode { MODE_MX = 0, MODE_SUBMISSION };
enum smtp_tls { TLS_NONE = 0, TLS_STARTTLS, TLS_IMPLICIT };

struct smtp_listen_conf {
	struct sc_sockaddr address;
	int mode;
	int tls;
};

struct smtp_timeouts {
	uint64_t command;
	uint64_t data;
};

struct smtp_conf {
	struct sc_list listen;
	uint64_t max_message_size;
	uint64_t max_recipients;
	struct smtp_timeouts timeouts;
	struct sc_cidr_list relay_networks;
	bool enforce_sender;
	char *banner;
	uint64_t auth_failure_delay;
};

struct smtp_inst;

struct smtp_listener {
	struct smtp_inst *si;
	const struct smtp_listen_conf *lc;
};

struct smtp_rdns_cache;

struct smtp_inst {
	struct sc_instance *inst;
	const struct smtp_conf *conf;
	size_t listener_count;
	struct smtp_listener *listeners;
	struct smtp_rdns_cache *rdns;	/* client names (smtp_rdns.c) */
};

enum smtp_rdns_state { RDNS_DONE = 0, RDNS_PENDING };

enum smtp_state {
	S_CONNECT = 0,	/* connect hook running                      */
	S_TLS,		/* TLS handshake running                     */
	S_HELO,		/* waiting for HELO/EHLO                     */
	S_READY,	/* commands (a transaction may be open)      */
	S_AUTH_PLAIN,	/* AUTH PLAIN: waiting for the response      */
	S_AUTH_USER,	/* AUTH LOGIN: waiting for the user name     */
	S_AUTH_PASS,	/* AUTH LOGIN: waiting for the password      */
	S_DATA,		/* DATA: receiving text lines                */
	S_BDAT,		/* BDAT: receiving a chunk of n bytes        */
	S_QUIT,		/* closing                                   */
};

struct smtp_rcpt {
	char *address;
	char *params;
};

/* One mail transaction: MAIL .. end of data (or RSET). */
struct smtp_tx {
	/* the envelope (smtp_envelope.c) */
	char *sender;
	char *mail_params;
	bool smtputf8;
	size_t rcpt_count, rcpt_alloc;
	struct smtp_rcpt *rcpts;
	/* from here on the message path's own (smtp_message.c); the other
	 * files read only data_started */
	struct sc_env_rcpt *env_rcpts;

	struct sc_queue_tx *qtx;	/* open while receiving data     */
	bool data_started;		/* DATA hook passed, qtx begun   */
	uint64_t size;			/* message bytes (no Received:)  */
	bool too_big;
	bool line_too_long;
	bool write_failed;
	bool prev_bare_lf;		/* last DATA line ended in LF    */
	/* BDAT */
	bool bdat;			/* this tx uses BDAT             */
	bool throwaway;			/* eats one chunk, then freed    */
	bool bdat_cr;			/* chunk data ended in a CR      */
	bool bdat_failed;		/* discard chunks until RSET     */
	bool bdat_last;
	uint64_t bdat_remaining;
	uint64_t bdat_chunk;
	int bdat_code;			/* reply for a discarded chunk   */
	char bdat_esc[16];
	char *bdat_text;
	/* header scanner */
	bool in_headers;
	bool at_bol;
	size_t hdr_len;			/* bytes of this line seen       */
	char hdr_start[10];
	size_t header_count;
	size_t received_count;
	/* what the DATA_POST hooks left, for the log line */
	size_t final_rcpts;
	char *final_sender;
	/* write buffer */
	size_t wlen;
	char *wbuf;
};

struct smtp_session;
typedef void (*smtp_then_fn)(struct smtp_session *ss,
			     const struct sc_hook_outcome *out);

struct smtp_session {
	struct smtp_inst *si;
	const struct smtp_conf *conf;
	const struct smtp_listen_conf *lc;
	struct sc_session *s;
	struct sc_conn *c;
	enum smtp_state state;
	bool esmtp;
	bool pending;		/* hook/commit/timer outstanding     */
	bool in_process;
	bool closing;
	bool eof;
	bool greeted;		/* the 220 banner was sent           */
	unsigned depth;		/* entry-point nesting, for closing  */
	unsigned errors;	/* bad commands in a row             */
	unsigned auth_failures;
	smtp_then_fn then;	/* continuation of the pending hook  */
	struct smtp_tx *tx;
	/* held_tx and committing: the message path's (smtp_message.c) */
	struct smtp_tx *held_tx;	/* real tx while a throw-away one
					 * eats a chunk sent before RCPT */
	bool committing;	/* tx->qtx handed to the queue       */
	struct sc_timer *timer;
	/* pending hook arguments (must outlive an async chain) */
	struct sc_mail_request mreq;
	struct sc_sender_request sreq;
	struct sc_rcpt_request rreq;
	struct sc_auth_request areq;
	struct sc_data_request dreq;
	char *arg_address;	/* MAIL/RCPT address being checked   */
	char *arg_local;
	char *arg_domain;
	char *arg_params;
	char *helo_arg;
	enum sc_routing arg_routing;
	char *auth_mech;
	char *auth_user;
	char *auth_pass;
	/* relay hook (smtp_envelope.c): a submission session let in at
	 * MAIL without AUTH (its MAIL arguments kept while the hook runs),
	 * whether the RCPT being checked relays, and who allowed it */
	bool relay_session_ok;
	bool rcpt_relayed;
	char *mail_args;
	char relay_note[256];
	/* the client's confirmed name (smtp_rdns.c) */
	enum smtp_rdns_state rdns_state;
	struct sc_dns_query *rdns_query;
	char rdns_name[256];
};

/* ---- the client's name (smtp_rdns.c) ---- */

/* smtp_rdns_start - at connect: the cached name, or a PTR lookup then a
 * forward lookup of its name, in the background. */
void smtp_rdns_start(struct smtp_session *ss);
/* smtp_rdns_name - the forward-confirmed name, or "unknown" (none, or
 * not known yet). */
const char *smtp_rdns_name(const struct smtp_session *ss);
/* smtp_rdns_stop - the session ends: cancels a lookup still running. */
void smtp_rdns_stop(struct smtp_session *ss);
/* The per-instance cache. 0 or -1 (out of memory). */
int smtp_rdns_cache_new(struct smtp_inst *si);
void smtp_rdns_cache_free(struct smtp_inst *si);

/* ---- the session (smtp_session.c) ---- */

/* smtp_reply - sends one reply line (a 421 closes the session; too many
 * 500-504 in a row end it). */
void smtp_reply(struct smtp_session *ss, int code, const char *esc,
		const char *fmt, ...) SC_PRINTF(4, 5);
/* smtp_reply_outcome - answers with a hook's verdict, or the default
 * given. */
void smtp_reply_outcome(struct smtp_session *ss,
			const struct sc_hook_outcome *out, int defcode,
			const char *defesc, const char *deftext);
/* smtp_ss_enter, smtp_ss_leave - bracket every entry point from the core
 * (a callback): the outermost smtp_ss_leave frees a closing session. */
void smtp_ss_enter(struct smtp_session *ss);
void smtp_ss_leave(struct smtp_session *ss);
/* smtp_ss_close_soon - stops reading; the session ends once the
 * outermost entry point returns. */
void smtp_ss_close_soon(struct smtp_session *ss);
/* smtp_ss_pause, smtp_ss_resume - stop reading while a step is
 * outstanding, then go on with what the client pipelined meanwhile. */
void smtp_ss_pause(struct smtp_session *ss);
void smtp_ss_resume(struct smtp_session *ss);
/* smtp_enter_state - the one place states (and their timeouts) change. */
void smtp_enter_state(struct smtp_session *ss, enum smtp_state st);
/* smtp_run_hook - runs a hook chain, then then(ss, outcome); arg must live
 * in ss until then. */
void smtp_run_hook(struct smtp_session *ss, enum sc_hook hook,
		   const void *arg, smtp_then_fn then);
/* smtp_emit - an event of the session (sc_event_emit) with what the
 * session knows (client, login) and the given fields (may be NULL). */
void smtp_emit(struct smtp_session *ss, enum sc_event_type type,
	       const char *sender, const char *rcpt, const char *text);
/* smtp_accept - a listener's new connection (arg: its smtp_listener). */
void smtp_accept(struct sc_session *s, void *arg);
/* smtp_tls_done - the end of a TLS handshake (implicit TLS or
 * STARTTLS): the greeting, or a fresh start that wants EHLO again. */
void smtp_tls_done(struct sc_conn *c, bool ok, const char *error,
		   void *arg);

/* ---- the command table (smtp_command.c) ---- */

/* smtp_command - one command line (NUL-terminated copy, len bytes): the
 * table's generic checks, then the command's own function. */
void smtp_command(struct smtp_session *ss, char *line, size_t len);

/* ---- the envelope (smtp_envelope.c) ---- */

/* smtp_cmd_mail, smtp_cmd_rcpt - the MAIL and RCPT commands. */
void smtp_cmd_mail(struct smtp_session *ss, char *args);
void smtp_cmd_rcpt(struct smtp_session *ss, char *args);

/* ---- the message path (smtp_message.c) ---- */

/* smtp_cmd_data, smtp_cmd_bdat - the DATA and BDAT commands. */
void smtp_cmd_data(struct smtp_session *ss, char *args);
void smtp_cmd_bdat(struct smtp_session *ss, char *args);
/* smtp_data_step, smtp_bdat_step - take the input of S_DATA (one line) or
 * S_BDAT (chunk bytes): 1 = progress, 0 = wait for more. */
int smtp_data_step(struct smtp_session *ss);
int smtp_bdat_step(struct smtp_session *ss);
/* smtp_tx_free - frees a transaction (a queue file it has open is the
 * caller's concern) and sets *txp to NULL. */
void smtp_tx_free(struct smtp_tx **txp);
/* smtp_tx_reset - ends the session's transaction, aborting a queue file
 * still being written. */
void smtp_tx_reset(struct smtp_session *ss);
/* smtp_tx_session_end - frees the transactions of a session going away,
 * discarding a message still being written. */
void smtp_tx_session_end(struct smtp_session *ss);

/* ---- AUTH (smtp_auth.c) ---- */

/* smtp_cmd_auth - the AUTH command. */
void smtp_cmd_auth(struct smtp_session *ss, char *args);
/* smtp_auth_line - a SASL response line in one of the S_AUTH_* states. */
void smtp_auth_line(struct smtp_session *ss, char *line);
/* smtp_wipe_free - overwrites a secret string, frees it, sets *p to
 * NULL. */
void smtp_wipe_free(char **p);

#endif
