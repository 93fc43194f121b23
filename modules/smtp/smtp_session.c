/* SPDX-License-Identifier: MIT */
/*
 * smtp_session.c - the SMTP session and its state machine: accept, the
 * connect hook, implicit TLS and the greeting, replies, timeouts, the
 * entry-point bracket (closing only from the outermost frame), pausing
 * for a hook and resuming with what the client pipelined, the state
 * changes, the input loop that hands each line to the command table, the
 * SASL exchange, DATA or BDAT, and freeing the session.
 *
 * Runs entirely on the event loop thread. One command table and one
 * smtp_enter_state() drive every session (after OpenSMTPD's
 * smtp_session.c); policy comes from the hook chains.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <satchel/satchel.h>

#include "smtp_int.h"

#define SMTP_AUTH_MAX	12288	/* RFC 4954 4: AUTH lines may be long  */
#define SMTP_MAX_ERRORS	10	/* bad commands in a row, then 421     */

/* ---- output ---- */

/* smtp_reply - sends one reply line; counts protocol errors in a row and ends
 * the session after too many (unknown commands, binary junk). */
void
smtp_reply(struct smtp_session *ss, int code, const char *esc, const char *fmt,
	   ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* a reply must be one line of text: never echo a CR/LF or other
	 * control byte a client (or a hook) put into it */
	for (char *p = text; *p; p++)
		if (*p == '\r' || *p == '\n' || *p == '\t')
			*p = ' ';
		else if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	if (esc != NULL && *esc)
		sc_conn_printf(ss->c, "%d %s %s\r\n", code, esc, text);
	else
		sc_conn_printf(ss->c, "%d %s\r\n", code, text);
	if (sc_log_enabled(SC_LOG_DEBUG))
		sc_log_session(SC_LOG_DEBUG, ss->s, "smtp >>> %d%s%s %s",
			       code, esc ? " " : "", esc ? esc : "", text);
	if (code == 421) {
		smtp_ss_close_soon(ss);
		return;
	}
	if (code >= 500 && code <= 504) {
		if (++ss->errors >= SMTP_MAX_ERRORS) {
			sc_log_session(SC_LOG_NOTICE, ss->s, "smtp: too many "
				       "errors from %s, closing",
				       sc_session_client_ip(ss->s));
			smtp_reply(ss, 421, "4.7.0", "%s Error: too many "
				   "errors", sc_config_hostname());
		}
	} else if (code < 400)
		ss->errors = 0;
}

/* smtp_reply_outcome - answers with a hook's verdict: its own reply when set,
 * otherwise a default for the result. DISCONNECT results close. */
void
smtp_reply_outcome(struct smtp_session *ss, const struct sc_hook_outcome *out,
		   int defcode, const char *defesc, const char *deftext)
{
	int code = out->reply.code;
	const char *esc = out->reply.esc[0] ? out->reply.esc : NULL;
	const char *text = out->reply.text;

	if (code == 0) {
		switch (out->result) {
		case SC_DENYSOFT:
			code = 450; esc = "4.7.1"; text = "Try again later";
			break;
		case SC_DENYDISCONNECT:
			code = 554; esc = "5.7.1"; text = "Rejected";
			break;
		case SC_DENYSOFTDISCONNECT:
			code = 421; esc = "4.7.0";
			text = "Service not available, closing channel";
			break;
		default:
			code = defcode; esc = defesc; text = deftext;
			break;
		}
	}
	if (text == NULL)
		text = deftext;
	smtp_reply(ss, code, esc, "%s", text);
	if (out->result == SC_DENYDISCONNECT ||
	    out->result == SC_DENYSOFTDISCONNECT)
		smtp_ss_close_soon(ss);
}

/* ---- session plumbing: entry points, pausing, closing ---- */

static void ss_process(struct smtp_session *ss);

void
smtp_ss_enter(struct smtp_session *ss)
{
	ss->depth++;
}

/* smtp_ss_leave - the end of every entry point: the outermost one closes the
 * session when asked to, so no frame touches freed memory. */
void
smtp_ss_leave(struct smtp_session *ss)
{
	if (--ss->depth == 0 && ss->closing)
		sc_session_close(ss->s);	/* frees ss */
}

void
smtp_ss_close_soon(struct smtp_session *ss)
{
	ss->closing = true;
	ss->state = S_QUIT;
	sc_conn_read_stop(ss->c);
}

static uint64_t
ss_timeout(const struct smtp_session *ss)
{
	if (ss->state == S_DATA || ss->state == S_BDAT)
		return ss->conf->timeouts.data;
	return ss->conf->timeouts.command;
}

/* smtp_ss_pause - stops reading while a hook, timer or commit is pending, so
 * pipelined commands wait in the input buffer in order. */
void
smtp_ss_pause(struct smtp_session *ss)
{
	ss->pending = true;
	sc_conn_read_stop(ss->c);
	sc_conn_set_timeout(ss->c, 0);
}

/* smtp_ss_resume - the pending step finished: read on, and run what the client
 * pipelined meanwhile. */
void
smtp_ss_resume(struct smtp_session *ss)
{
	ss->pending = false;
	if (ss->closing)
		return;
	sc_conn_set_timeout(ss->c, ss_timeout(ss));
	sc_conn_read_start(ss->c);
	ss_process(ss);
}

/* smtp_enter_state - the one place states change (timeouts follow them). */
void
smtp_enter_state(struct smtp_session *ss, enum smtp_state st)
{
	if (ss->state == st)
		return;
	ss->state = st;
	if (!ss->pending && !ss->closing)
		sc_conn_set_timeout(ss->c, ss_timeout(ss));
}

static void
ss_hook_done(struct sc_session *s, const struct sc_hook_outcome *out,
	     void *arg)
{
	struct smtp_session *ss = arg;
	smtp_then_fn then = ss->then;

	(void)s;
	smtp_ss_enter(ss);
	ss->then = NULL;
	ss->pending = false;
	then(ss, out);
	if (!ss->pending)
		smtp_ss_resume(ss);
	smtp_ss_leave(ss);
}

/* smtp_run_hook - runs a hook chain and continues with then(); the arg must
 * live in ss until then. */
void
smtp_run_hook(struct smtp_session *ss, enum sc_hook hook, const void *arg,
	      smtp_then_fn then)
{
	ss->then = then;
	smtp_ss_pause(ss);
	if (sc_hook_run(ss->s, hook, arg, ss_hook_done, ss) != 0) {
		/* the core could not run the chain (out of memory): a
		 * temporary refusal through the same continuation, so the
		 * command ends as after any refusal (BDAT still reads and
		 * drops its chunk, MAIL drops its transaction) */
		struct sc_hook_outcome out;

		memset(&out, 0, sizeof(out));
		out.result = SC_DENYSOFT;
		out.reply.code = 451;
		snprintf(out.reply.esc, sizeof(out.reply.esc), "4.3.0");
		out.reply.text = "Error: internal error";
		ss_hook_done(ss->s, &out, ss);
	}
}

static void
ss_free(void *arg)
{
	struct smtp_session *ss = arg;

	smtp_tx_session_end(ss);
	if (ss->timer != NULL)
		sc_timer_free(&ss->timer);
	free(ss->arg_address);
	free(ss->arg_local);
	free(ss->arg_domain);
	free(ss->arg_params);
	free(ss->helo_arg);
	smtp_rdns_stop(ss);
	free(ss->auth_mech);
	free(ss->mail_args);
	smtp_wipe_free(&ss->auth_user);
	smtp_wipe_free(&ss->auth_pass);
	free(ss);
}

/* ---- greeting ---- */

static void
send_banner(struct smtp_session *ss)
{
	const char *b = ss->conf->banner;

	smtp_reply(ss, 220, NULL, "%s %s", sc_config_hostname(),
		   b != NULL && *b ? b : "ESMTP satchel");
	ss->greeted = true;
	smtp_enter_state(ss, S_HELO);
}

void
smtp_tls_done(struct sc_conn *c, bool ok, const char *error, void *arg)
{
	struct smtp_session *ss = arg;

	(void)c;
	smtp_ss_enter(ss);
	if (!ok) {
		sc_log_session(SC_LOG_INFO, ss->s, "smtp: TLS handshake with "
			       "%s failed: %s", sc_session_client_ip(ss->s),
			       error ? error : "unknown error");
		smtp_ss_close_soon(ss);
		smtp_ss_leave(ss);
		return;
	}
	sc_log_session(SC_LOG_DEBUG, ss->s, "smtp: TLS up: %s",
		       sc_conn_tls_desc(ss->c) ? sc_conn_tls_desc(ss->c) : "");
	ss->pending = false;
	if (!ss->greeted) {
		/* implicit TLS: the greeting comes after the handshake */
		send_banner(ss);
	} else {
		/* STARTTLS (RFC 3207 4.2): forget everything the client said
		 * before, it must EHLO again */
		smtp_tx_reset(ss);
		ss->esmtp = false;
		sc_session_set_helo(ss->s, NULL);
		smtp_enter_state(ss, S_HELO);
	}
	smtp_ss_resume(ss);
	smtp_ss_leave(ss);
}

void
smtp_emit(struct smtp_session *ss, enum sc_event_type type,
	  const char *sender, const char *rcpt, const char *text)
{
	struct sc_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.type = type;
	ev.session = ss->s;
	ev.protocol = "smtp";
	ev.client_ip = sc_session_client_ip(ss->s);
	ev.user = sc_session_auth_user(ss->s);
	ev.sender = sender;
	ev.rcpt = rcpt;
	ev.text = text;
	sc_event_emit(&ev);
}

static void
connect_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	if (out->result != SC_CONT && out->result != SC_OK) {
		sc_log_session(SC_LOG_INFO, ss->s, "smtp: connection from %s "
			       "refused by %s", sc_session_client_ip(ss->s),
			       out->instance ? out->instance : "a hook");
		smtp_reply_outcome(ss, out, 554, "5.7.1",
				   "Connection refused");
		smtp_ss_close_soon(ss);
		return;
	}
	smtp_emit(ss, SC_EVENT_CONNECT, NULL, NULL, NULL);
	if (ss->lc->tls == TLS_IMPLICIT) {
		smtp_enter_state(ss, S_TLS);
		smtp_ss_pause(ss);
		if (sc_conn_starttls(ss->c, smtp_tls_done, ss) != 0) {
			sc_log_session(SC_LOG_WARNING, ss->s, "smtp: cannot "
				       "start TLS");
			ss->pending = false;
			smtp_ss_close_soon(ss);
		}
		sc_conn_set_timeout(ss->c, ss->conf->timeouts.command);
		return;
	}
	send_banner(ss);
}

static void
ss_conn_event(struct sc_conn *c, enum sc_conn_event ev, void *arg)
{
	struct smtp_session *ss = arg;

	(void)c;
	smtp_ss_enter(ss);
	switch (ev) {
	case SC_CONN_DATA:
		ss_process(ss);
		break;
	case SC_CONN_EOF:
		/* answer what is still buffered (a pipelined QUIT after the
		 * final dot), then close */
		ss->eof = true;
		if (ss->state == S_DATA || ss->state == S_BDAT)
			sc_log_session(SC_LOG_INFO, ss->s, "smtp: %s vanished "
				       "during message data",
				       sc_session_client_ip(ss->s));
		if (!ss->pending)
			ss_process(ss);
		break;
	case SC_CONN_ERROR:
		smtp_ss_close_soon(ss);
		break;
	case SC_CONN_TIMEOUT:
		if (ss->state == S_TLS) {
			/* a stalled handshake: no plaintext reply is
			 * possible any more */
			sc_log_session(SC_LOG_INFO, ss->s, "smtp: TLS "
				       "handshake timeout from %s",
				       sc_session_client_ip(ss->s));
			smtp_ss_close_soon(ss);
			break;
		}
		if (ss->pending)
			break;
		sc_log_session(SC_LOG_INFO, ss->s, "smtp: timeout from %s",
			       sc_session_client_ip(ss->s));
		smtp_reply(ss, 421, "4.4.2", "%s Error: timeout exceeded",
			   sc_config_hostname());
		smtp_ss_close_soon(ss);
		break;
	case SC_CONN_DRAINED:
		break;
	}
	smtp_ss_leave(ss);
}

/* smtp_accept - a new connection: run the connect hook before anything
 * else (before the TLS handshake too), so a 421 costs almost nothing. */
void
smtp_accept(struct sc_session *s, void *arg)
{
	struct smtp_listener *l = arg;
	struct smtp_session *ss = calloc(1, sizeof(*ss));

	if (ss == NULL) {
		sc_session_close(s);
		return;
	}
	ss->si = l->si;
	ss->conf = l->si->conf;
	ss->lc = l->lc;
	ss->s = s;
	ss->c = sc_session_conn(s);
	ss->state = S_CONNECT;
	if (sc_session_set_data(s, l->si->inst, ss, ss_free) != 0) {
		free(ss);
		sc_session_close(s);
		return;
	}
	sc_session_set_relay_allowed(s, sc_cidr_list_match(
		&ss->conf->relay_networks, sc_session_client_addr(s)));
	sc_session_set_mode(s, ss->lc->mode == MODE_SUBMISSION ?
			    "submission" : "mx");
	sc_conn_set_handler(ss->c, ss_conn_event, ss);
	sc_log_session(SC_LOG_INFO, s, "smtp: connect from %s to port %u",
		       sc_session_client_ip(s), sc_session_local_port(s));
	smtp_rdns_start(ss);	/* in the background: the greeting waits not */
	smtp_ss_enter(ss);
	smtp_run_hook(ss, SC_HOOK_CONNECT, NULL, connect_then);
	smtp_ss_leave(ss);
}

/* ---- the input loop ---- */

/* line_step - one command or SASL line. 1 = progress, 0 = wait. An AUTH
 * command (its initial response) or SASL line is wiped from our copy and
 * from the connection's input once handled. */
static int
line_step(struct smtp_session *ss)
{
	const char *line = NULL;
	size_t len;
	char *copy;
	bool sasl = ss->state == S_AUTH_PLAIN || ss->state == S_AUTH_USER ||
		    ss->state == S_AUTH_PASS;
	int r = sc_conn_getline(ss->c, SMTP_AUTH_MAX, &line, &len, NULL);

	if (r == 0)
		return 0;
	if (r < 0) {
		/* the dropped bytes may have been an AUTH line */
		sc_conn_wipe_input(ss->c);
		if (sasl) {
			smtp_enter_state(ss, S_READY);
			smtp_wipe_free(&ss->auth_user);
		}
		smtp_reply(ss, 500, "5.5.2", "Error: line too long");
		return 1;
	}
	copy = malloc(len + 1);
	if (copy == NULL) {
		sc_conn_wipe_input(ss->c);
		smtp_reply(ss, 451, "4.3.0", "Error: out of memory");
		smtp_ss_close_soon(ss);
		return 1;
	}
	memcpy(copy, line, len);
	copy[len] = '\0';
	if (sasl) {
		smtp_auth_line(ss, copy);
	} else {
		/* "AUTH PLAIN <initial-response>", however malformed */
		sasl = len >= 4 && strncasecmp(copy, "AUTH", 4) == 0;
		smtp_command(ss, copy, len);
	}
	if (sasl) {
		explicit_bzero(copy, len);
		sc_conn_wipe_input(ss->c);
	}
	free(copy);
	return 1;
}

/* ss_process - works through buffered input until it runs out, a hook
 * is pending, or the session is closing. Not re-entered: a hook that
 * completes at once returns here and the loop goes on. */
static void
ss_process(struct smtp_session *ss)
{
	if (ss->in_process)
		return;
	ss->in_process = true;
	while (!ss->pending && !ss->closing) {
		int r;

		switch (ss->state) {
		case S_CONNECT:
		case S_TLS:
		case S_QUIT:
			r = 0;
			break;
		case S_DATA:
			r = smtp_data_step(ss);
			break;
		case S_BDAT:
			r = smtp_bdat_step(ss);
			break;
		default:
			r = line_step(ss);
			break;
		}
		if (r == 0)
			break;
	}
	ss->in_process = false;
	if (ss->eof && !ss->pending && !ss->closing)
		smtp_ss_close_soon(ss);
}
