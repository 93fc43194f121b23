/* SPDX-License-Identifier: MIT */
/*
 * pop3_session.c - one POP3 session on the event loop thread: accept, the
 * connect hook and the greeting, STLS and implicit TLS, CAPA, the input
 * loop (pipelined lines, paused while an asynchronous step runs), the
 * command table with the states each command is valid in, replies, and
 * the session's reference count (the session slot plus each pending job).
 */
#define _GNU_SOURCE	/* explicit_bzero */
#include "pop3_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void pop_input(struct pop_sess *ps);

/* pop_reply - queue one response line (CRLF added) */
void
pop_reply(struct pop_sess *ps, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (ps->s == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 3)
		n = sizeof(buf) - 3;
	/* one line of text: no CR/LF from a hook's text, no control byte
	 * a client sent echoed back */
	for (int i = 0; i < n; i++)
		if (buf[i] == '\r' || buf[i] == '\n' || buf[i] == '\t')
			buf[i] = ' ';
		else if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	buf[n++] = '\r';
	buf[n++] = '\n';
	sc_conn_write(ps->c, buf, (size_t)n);
}

void
pop_free_secret(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

void
pop_sess_unref(struct pop_sess *ps)
{
	size_t i;

	if (--ps->refs > 0)
		return;
	pop_unlock(ps);
	sc_timer_free(&ps->delay_timer);
	sc_timer_free(&ps->stall_timer);
	pop_xfer_free(&ps->xfer);
	for (i = 0; i < ps->nmsg; i++)
		free(ps->msgs[i].name);
	free(ps->msgs);
	free(ps->user);
	free(ps->login);
	free(ps->req_user);
	pop_free_secret(&ps->req_pass);
	pop_inst_unref(ps->pd);
	free(ps);
}

/* pop_sess_gone - session data destructor: the core closed the session */
static void
pop_sess_gone(void *arg)
{
	struct pop_sess *ps = arg;

	ps->s = NULL;
	ps->c = NULL;
	sc_timer_free(&ps->delay_timer);
	sc_timer_free(&ps->stall_timer);
	pop_sess_unref(ps);
}

void
pop_close(struct pop_sess *ps)
{
	if (ps->s != NULL)
		sc_session_close(ps->s);	/* runs pop_sess_gone */
}

/* pop_pause - an asynchronous step starts: stop reading commands */
void
pop_pause(struct pop_sess *ps)
{
	ps->busy = true;
	if (ps->c != NULL)
		sc_conn_read_stop(ps->c);
}

/* pop_resume - the step finished: go on with pipelined commands */
void
pop_resume(struct pop_sess *ps)
{
	ps->busy = false;
	if (ps->s == NULL)
		return;
	sc_conn_read_start(ps->c);
	pop_input(ps);
}

bool
pop_plaintext_ok(const struct pop_sess *ps)
{
	return ps->tls == POP_TLS_NONE || sc_conn_tls_active(ps->c);
}

static void
pop_cmd_capa(struct pop_sess *ps, const char *arg)
{
	(void)arg;
	pop_reply(ps, "+OK Capability list follows");
	pop_reply(ps, "TOP");
	if (ps->state == POP_AUTHORIZATION) {
		pop_reply(ps, "USER");
		if (pop_plaintext_ok(ps))
			pop_reply(ps, "SASL PLAIN");
		if (ps->tls == POP_TLS_STARTTLS && !sc_conn_tls_active(ps->c))
			pop_reply(ps, "STLS");
	}
	pop_reply(ps, "UIDL");
	pop_reply(ps, "RESP-CODES");
	pop_reply(ps, "AUTH-RESP-CODE");
	pop_reply(ps, "PIPELINING");
	pop_reply(ps, "EXPIRE NEVER");
	pop_reply(ps, "IMPLEMENTATION satchel");
	pop_reply(ps, ".");
}

static void
pop_tls_done(struct sc_conn *c, bool ok, const char *error, void *arg)
{
	struct pop_sess *ps = arg;
	const char *desc;

	(void)c;
	if (!ok) {
		sc_log_session(SC_LOG_INFO, ps->s, "pop3: TLS failed: %s",
			       error != NULL ? error : "?");
		pop_close(ps);
		return;
	}
	desc = sc_conn_tls_desc(ps->c);
	sc_log_session(SC_LOG_DEBUG, ps->s, "pop3: %s",
		       desc != NULL ? desc : "TLS");
	if (!ps->greeted) {
		ps->greeted = true;
		pop_reply(ps, "+OK %s POP3 server ready", sc_config_hostname());
	}
	pop_resume(ps);
}

static void
pop_cmd_stls(struct pop_sess *ps, const char *arg)
{
	(void)arg;
	if (ps->tls != POP_TLS_STARTTLS || sc_conn_tls_active(ps->c)) {
		pop_reply(ps, sc_conn_tls_active(ps->c) ?
			  "-ERR TLS is already active" :
			  "-ERR STLS is not offered on this port");
		return;
	}
	pop_reply(ps, "+OK Begin TLS negotiation now.");
	pop_pause(ps);
	if (sc_conn_starttls(ps->c, pop_tls_done, ps) < 0) {
		sc_log_session(SC_LOG_ERROR, ps->s, "pop3: STLS failed");
		pop_close(ps);
	}
}

#define ST_AUTH  (1u << POP_AUTHORIZATION)
#define ST_TRANS (1u << POP_TRANSACTION)

static const struct pop_cmd {
	const char *verb;
	unsigned states;
	void (*fn)(struct pop_sess *ps, const char *arg);
} pop_cmds[] = {
	{ "CAPA", ST_AUTH | ST_TRANS, pop_cmd_capa },
	{ "STLS", ST_AUTH, pop_cmd_stls },
	{ "USER", ST_AUTH, pop_cmd_user },
	{ "PASS", ST_AUTH, pop_cmd_pass },
	{ "AUTH", ST_AUTH, pop_cmd_auth },
	{ "STAT", ST_TRANS, pop_cmd_stat },
	{ "LIST", ST_TRANS, pop_cmd_list },
	{ "UIDL", ST_TRANS, pop_cmd_uidl },
	{ "RETR", ST_TRANS, pop_cmd_retr },
	{ "TOP", ST_TRANS, pop_cmd_top },
	{ "DELE", ST_TRANS, pop_cmd_dele },
	{ "RSET", ST_TRANS, pop_cmd_rset },
	{ "NOOP", ST_TRANS, pop_cmd_noop },
	{ "QUIT", ST_AUTH | ST_TRANS, pop_cmd_quit },
};

/* pop_command - dispatch one command line */
static void
pop_command(struct pop_sess *ps, char *line)
{
	size_t n = strcspn(line, " "), i;
	char *arg = line + n;

	if (*arg == ' ')
		*arg++ = '\0';
	for (i = 0; i < sizeof(pop_cmds) / sizeof(pop_cmds[0]); i++) {
		const struct pop_cmd *c = &pop_cmds[i];

		if (strcasecmp(line, c->verb) != 0)
			continue;
		if ((c->states & (1u << ps->state)) == 0) {
			pop_reply(ps, ps->state == POP_AUTHORIZATION ?
				  "-ERR Unknown command in AUTHORIZATION "
				  "state: log in first" :
				  "-ERR Command not valid in this state");
			return;
		}
		/* PASS may hold spaces; the others take trimmed words */
		if (c->fn != pop_cmd_pass) {
			size_t l = strlen(arg);
			while (l > 0 && arg[l - 1] == ' ')
				arg[--l] = '\0';
		}
		c->fn(ps, arg);
		return;
	}
	pop_reply(ps, "-ERR Unknown command.");
}

/* pop_input - run the buffered command lines until one goes async */
static void
pop_input(struct pop_sess *ps)
{
	if (ps->in_input)
		return;
	ps->in_input = true;
	ps->refs++;
	while (ps->s != NULL && !ps->busy) {
		size_t max = ps->sasl_wait ? POP_SASL_MAX : POP_LINE_MAX;
		char buf[POP_SASL_MAX + 1];
		const char *line = NULL;
		size_t len;
		/* before login every line may carry a password (PASS, AUTH
		 * PLAIN and its response): wipe it from the connection's
		 * input once handled */
		bool secret = ps->sasl_wait || ps->state == POP_AUTHORIZATION;
		int r;

		r = sc_conn_getline(ps->c, max, &line, &len, NULL);
		if (r == 0)
			break;
		if (r < 0) {
			ps->sasl_wait = false;
			pop_reply(ps, "-ERR Line too long");
		} else if (memchr(line, '\0', len) != NULL) {
			ps->sasl_wait = false;
			pop_reply(ps, "-ERR Invalid NUL in command");
		} else {
			memcpy(buf, line, len);
			buf[len] = '\0';
			if (ps->sasl_wait) {
				ps->sasl_wait = false;
				pop_sasl_plain(ps, buf);
			} else {
				pop_command(ps, buf);
			}
			explicit_bzero(buf, len);
		}
		if (secret && ps->c != NULL)	/* NULL: the session closed */
			sc_conn_wipe_input(ps->c);
	}
	ps->in_input = false;
	pop_sess_unref(ps);
}

static void
pop_conn_event(struct sc_conn *c, enum sc_conn_event ev, void *arg)
{
	struct pop_sess *ps = arg;

	(void)c;
	if (ps->s == NULL)
		return;
	switch (ev) {
	case SC_CONN_DATA:
		pop_input(ps);
		break;
	case SC_CONN_EOF:
	case SC_CONN_ERROR:
		/* a dropped connection deletes nothing (RFC 1939 6) */
		pop_close(ps);
		break;
	case SC_CONN_TIMEOUT:
		pop_reply(ps, "-ERR Disconnected for inactivity.");
		pop_close(ps);
		break;
	case SC_CONN_DRAINED:
		pop_xfer_drained(ps);
		break;
	}
}

static void
pop_connect_done(struct sc_session *s, const struct sc_hook_outcome *out,
		 void *arg)
{
	struct pop_sess *ps = arg;
	struct sc_event ev;

	(void)s;
	if (out->result != SC_CONT && out->result != SC_OK) {
		sc_log_session(SC_LOG_INFO, ps->s, "pop3: connection from %s "
			       "refused by %s", sc_session_client_ip(ps->s),
			       out->instance ? out->instance : "a hook");
		pop_reply(ps, "-ERR [SYS/TEMP] %s", out->reply.text != NULL ?
			  out->reply.text : "Connection refused");
		pop_close(ps);
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_CONNECT;
	ev.session = ps->s;
	ev.protocol = "pop3";
	ev.client_ip = sc_session_client_ip(ps->s);
	sc_event_emit(&ev);
	if (ps->s == NULL)
		return;
	if (ps->tls == POP_TLS_IMPLICIT) {
		if (sc_conn_starttls(ps->c, pop_tls_done, ps) < 0)
			pop_close(ps);
		return;
	}
	ps->greeted = true;
	pop_reply(ps, "+OK %s POP3 server ready", sc_config_hostname());
	pop_resume(ps);
}

/* pop_accept - a new connection: set up the session, ask the connect
 * hook (rate limits), then greet (after the handshake on implicit TLS) */
void
pop_accept(struct sc_session *s, void *arg)
{
	struct pop_listener *l = arg;
	struct pop_inst *pd = l->pd;
	struct pop_sess *ps = calloc(1, sizeof(*ps));

	if (ps == NULL) {
		sc_session_close(s);
		return;
	}
	ps->refs = 1;
	ps->pd = pd;
	pd->refs++;
	ps->s = s;
	ps->c = sc_session_conn(s);
	ps->tls = l->tls;
	ps->state = POP_AUTHORIZATION;
	ps->delay_timer = sc_timer_new(pop_fail_delay_done, ps);
	ps->stall_timer = sc_timer_new(pop_stall_timeout, ps);
	if (ps->delay_timer == NULL || ps->stall_timer == NULL ||
	    sc_session_set_data(s, pd->inst, ps, pop_sess_gone) < 0) {
		pop_sess_gone(ps);
		sc_session_close(s);
		return;
	}
	sc_conn_set_handler(ps->c, pop_conn_event, ps);
	sc_conn_set_timeout(ps->c, pd->cmd_timeout);
	sc_log_session(SC_LOG_INFO, s, "pop3: connect from %s to port %u",
		       sc_session_client_ip(s), sc_session_local_port(s));
	pop_pause(ps);
	if (sc_hook_run(s, SC_HOOK_CONNECT, NULL, pop_connect_done, ps) < 0)
		pop_close(ps);
}
