/* SPDX-License-Identifier: MIT */
/*
 * milter_stage.c - the conversation with a milter through the envelope:
 * the hooks connect, helo, auth (only to learn the mechanism), mail, rcpt
 * and data; the macros sent before each command; reading the milter's
 * answer and turning it into the hook's result (on_failure when the milter
 * is down, times out or breaks the protocol); abort and quit. Runs on the
 * event loop thread; every wait is asynchronous (SC_PENDING).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "milter_int.h"

/* ---- macros ---- */

/* Sent when the milter asked for no list of its own (Postfix's defaults,
 * less what satchel does not know). */
static const char *const default_macros[MS_COUNT] = {
	[MS_CONNECT] = ("j {daemon_name} {daemon_addr} v _ {client_addr} "
			"{client_name} {client_port}"),
	[MS_HELO] = "{tls_version}",
	[MS_MAIL] = "i {auth_type} {auth_authen} {mail_addr}",
	[MS_RCPT] = "i {rcpt_addr}",
	[MS_DATA] = "i",
	[MS_EOM] = "i",
	[MS_EOH] = "i",
};

static const char *const known_macros[] = {
	"j", "{daemon_name}", "{daemon_addr}", "{daemon_port}", "v", "_",
	"{client_addr}", "{client_name}", "{client_port}", "{client_ptr}",
	"{tls_version}", "i", "{auth_type}", "{auth_authen}", "{mail_addr}",
	"{rcpt_addr}", NULL
};

static void
addr_text(const struct sockaddr *sa, char *buf, size_t len, unsigned *port_r)
{
	buf[0] = '\0';
	*port_r = 0;
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, buf, (socklen_t)len);
		*port_r = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len);
		*port_r = ntohs(in6->sin6_port);
	}
}

/* macro_value - the value of a macro now, or NULL when unknown */
static const char *
macro_value(struct milter_sess *ms, const char *name, char *buf, size_t len,
	    const char *rcpt)
{
	struct sc_session *s = ms->s;
	unsigned port;

	if (strcmp(name, "j") == 0 || strcmp(name, "{daemon_name}") == 0)
		return sc_config_hostname();
	if (strcmp(name, "v") == 0)
		return "satchel";
	if (strcmp(name, "{client_addr}") == 0)
		return sc_session_client_ip(s);
	if (strcmp(name, "{client_name}") == 0 ||
	    strcmp(name, "{client_ptr}") == 0)
		return "unknown";	/* satchel does not look up PTRs */
	if (strcmp(name, "_") == 0) {
		snprintf(buf, len, "unknown [%s]", sc_session_client_ip(s));
		return buf;
	}
	if (strcmp(name, "{client_port}") == 0) {
		addr_text(sc_session_client_addr(s), buf, len, &port);
		snprintf(buf, len, "%u", port);
		return buf;
	}
	if (strcmp(name, "{daemon_addr}") == 0) {
		addr_text(sc_session_local_addr(s), buf, len, &port);
		return buf[0] ? buf : NULL;
	}
	if (strcmp(name, "{daemon_port}") == 0) {
		snprintf(buf, len, "%u", sc_session_local_port(s));
		return buf;
	}
	if (strcmp(name, "{tls_version}") == 0) {
		const char *desc;

		/* "TLS1.3 with cipher ..." -> "TLS1.3" */
		if (!sc_session_tls(s) ||
		    (desc = sc_conn_tls_desc(sc_session_conn(s))) == NULL)
			return NULL;
		snprintf(buf, len, "%.*s", (int)strcspn(desc, " "), desc);
		return buf;
	}
	if (strcmp(name, "i") == 0)
		return ms->queue_id;
	if (strcmp(name, "{auth_authen}") == 0)
		return sc_session_auth_user(s);
	if (strcmp(name, "{auth_type}") == 0)
		return sc_session_auth_user(s) != NULL ?
			(ms->auth_type ? ms->auth_type : "PLAIN") : NULL;
	if (strcmp(name, "{mail_addr}") == 0)
		return ms->mail_addr;
	if (strcmp(name, "{rcpt_addr}") == 0)
		return rcpt;
	return NULL;
}

/* macros_for - SMFIC_MACRO for command cmd with the stage's macros;
 * rcpt: the recipient for {rcpt_addr} (RCPT only) */
static void
macros_for(struct milter_sess *ms, char cmd, enum milter_stage st,
	   const char *rcpt)
{
	const char *list = ms->macros[st] ? ms->macros[st] :
		default_macros[st];
	bool any = false;

	milter_pkt_begin(&ms->out, SMFIC_MACRO);
	milter_pkt_bytes(&ms->out, &cmd, 1);
	for (size_t i = 0; known_macros[i] != NULL; i++) {
		char buf[256];
		const char *v;

		if (!milter_macro_wanted(list, known_macros[i]))
			continue;
		v = macro_value(ms, known_macros[i], buf, sizeof(buf), rcpt);
		if (v == NULL)
			continue;
		milter_pkt_str(&ms->out, known_macros[i]);
		milter_pkt_str(&ms->out, v);
		any = true;
	}
	if (!any) {
		/* nothing to say: take the packet back */
		ms->out.len = ms->out.start;
		return;
	}
	milter_pkt_end(&ms->out);
}

void
milter_macros(struct milter_sess *ms, char cmd, enum milter_stage st)
{
	macros_for(ms, cmd, st, NULL);
}

/* ---- results ---- */

/* result_of - what verdict v of the milter means for the hook; sets the
 * reply (only for a call still alive) */
static enum sc_result
result_of(struct milter_sess *ms, struct sc_hook_call *call,
	  enum milter_verdict v)
{
	bool live = call != NULL && !sc_hook_cancelled(call);
	enum sc_hook hook = call ? sc_hook_which(call) : SC_HOOK_MAIL;
	bool early = hook == SC_HOOK_CONNECT || hook == SC_HOOK_HELO;

	if (v == MV_FAILED) {
		switch (ms->mi->conf->on_failure) {
		case ONF_ACCEPT:
			return SC_CONT;
		case ONF_REJECT:
			v = MV_REJECT;
			break;
		default:
			v = MV_TEMPFAIL;
			break;
		}
		/* a failure before MAIL is told at MAIL, so the client gets
		 * a transaction's 451/550 and not a closed connection (as
		 * Postfix does) */
		if (early)
			return SC_CONT;
		ms->reply_code = 0;
	}
	switch (v) {
	case MV_REJECT:
		ms->mi->n_rejects++;
		if (live) {
			if (ms->reply_code >= 500)
				sc_reply_set(call, ms->reply_code,
					     ms->reply_esc[0] ? ms->reply_esc :
					     NULL, "%s", ms->reply_text ?
					     ms->reply_text : "");
			else
				sc_reply_set(call, hook == SC_HOOK_CONNECT ?
					     554 : 550, "5.7.1",
					     "Command rejected");
		}
		return SC_DENY;
	case MV_TEMPFAIL:
		if (live) {
			if (ms->reply_code >= 400 && ms->reply_code < 500)
				sc_reply_set(call, ms->reply_code,
					     ms->reply_esc[0] ? ms->reply_esc :
					     NULL, "%s", ms->reply_text ?
					     ms->reply_text : "");
			else
				sc_reply_set(call, 451, "4.7.1", "Service "
					     "unavailable - try again later");
		}
		return SC_DENYSOFT;
	case MV_SHUTDOWN:
		if (live)
			sc_reply_set(call, 421, "4.7.0", "%s Service "
				     "unavailable - closing connection",
				     sc_config_hostname());
		return SC_DENYSOFTDISCONNECT;
	default:
		return SC_CONT;
	}
}

/* finish - the stage has its verdict: a pending call is completed, a
 * callback still running keeps the result for its return */
static void
finish(struct milter_sess *ms, enum milter_verdict v)
{
	struct sc_hook_call *call = ms->call;
	enum sc_result res;

	ms->call = NULL;
	res = result_of(ms, call, v);
	if (ms->in_callback) {
		ms->sync_result = res;
		ms->sync_done = true;
		return;
	}
	if (call != NULL)
		sc_hook_done(call, res);
}

void
milter_finish_call(struct milter_sess *ms, enum milter_verdict v)
{
	finish(ms, v);
}

/* envelope_then - an answer to connect, helo, mail, rcpt or data */
static void
envelope_then(struct milter_sess *ms, enum milter_verdict v)
{
	char cmd = ms->pending_cmd;
	bool conn_stage = cmd == SMFIC_CONNECT || cmd == SMFIC_HELO;

	if (v == MV_ACCEPT) {
		if (conn_stage)
			ms->conn_accepted = true;
		else
			ms->msg_accepted = true;
	} else if (v == MV_DISCARD && !conn_stage) {
		ms->msg_discard = true;
		ms->msg_accepted = true;
	} else if (v == MV_REJECT || v == MV_TEMPFAIL) {
		if (!conn_stage && cmd != SMFIC_RCPT)
			ms->in_message = false;
		if (cmd == SMFIC_CONNECT) {
			/* the milter is done with this connection */
			ms->conn_accepted = true;
		}
	}
	finish(ms, v);
}

void
milter_stage_fail(struct milter_sess *ms, const char *why)
{
	ms->mi->n_failures++;
	sc_log_session(SC_LOG_WARNING, ms->s, "milter %s: %s: %s",
		       sc_instance_name(ms->mi->inst), ms->mi->conf->address,
		       why);
	ms->failed = MV_FAILED;
	ms->waiting = false;
	if (ms->mi->conf->on_failure == ONF_ACCEPT)
		ms->conn_accepted = true;
	if (ms->msg != NULL)
		milter_msg_free(ms);
	if (ms->call != NULL || ms->in_callback)
		finish(ms, MV_FAILED);
}

/* verdict_of - a final reply's meaning; -1 when r is not final */
static int
verdict_of(struct milter_sess *ms, const struct milter_reply *r)
{
	switch (r->cmd) {
	case SMFIR_CONTINUE:
		return MV_CONTINUE;
	case SMFIR_ACCEPT:
		return MV_ACCEPT;
	case SMFIR_DISCARD:
		return MV_DISCARD;
	case SMFIR_REJECT:
		ms->reply_code = 0;
		return MV_REJECT;
	case SMFIR_TEMPFAIL:
		ms->reply_code = 0;
		return MV_TEMPFAIL;
	case SMFIR_SHUTDOWN:
	case SMFIR_CONN_FAIL:
		return MV_SHUTDOWN;
	case SMFIR_REPLYCODE:
		ms->reply_code = r->code;
		snprintf(ms->reply_esc, sizeof(ms->reply_esc), "%s", r->esc);
		free(ms->reply_text);
		ms->reply_text = strdup(r->text);
		if (r->code == 421)
			return MV_SHUTDOWN;
		return r->code >= 500 ? MV_REJECT : MV_TEMPFAIL;
	default:
		return -1;
	}
}

bool
milter_stage_packet(struct milter_sess *ms, unsigned char *pkt, size_t len)
{
	struct milter_reply r;
	const char *error = NULL;
	int v;

	if (milter_reply_parse(pkt, len, &r, &error) != 0) {
		char why[128];

		snprintf(why, sizeof(why), "bad reply: %s", error);
		mconn_fail(ms, why);
		return false;
	}
	if (r.cmd == SMFIR_PROGRESS)
		return true;
	if (ms->pending_cmd == SMFIC_BODYEOB) {
		v = verdict_of(ms, &r);
		if (v < 0) {
			if (milter_msg_action(ms, &r) != 0)
				return false;
			return ms->waiting;
		}
	} else if (r.cmd == SMFIR_SKIP && ms->pending_cmd == SMFIC_BODY) {
		ms->skip_body = true;
		v = MV_CONTINUE;
	} else {
		v = verdict_of(ms, &r);
		if (v < 0) {
			char why[128];

			snprintf(why, sizeof(why), "unexpected %s in reply "
				 "to '%c'", milter_reply_name(r.cmd),
				 ms->pending_cmd);
			mconn_fail(ms, why);
			return false;
		}
	}
	ms->waiting = false;
	if (ms->then != NULL)
		ms->then(ms, (enum milter_verdict)v);
	return ms->waiting;
}

int
milter_negotiated(struct milter_sess *ms, const struct milter_reply *r)
{
	ms->actions = r->actions & MILTER_ACTIONS;
	/* steps we did not offer are ignored, as libmilter would not ask
	 * for them from an MTA that did not offer them */
	ms->protocol = r->protocol & MILTER_PROTO_OFFER;
	for (int i = 0; i < MS_COUNT; i++) {
		if (r->macros[i] == NULL)
			continue;
		ms->macros[i] = strdup(r->macros[i]);
		if (ms->macros[i] == NULL) {
			mconn_fail(ms, "out of memory");
			return -1;
		}
	}
	ms->state = MC_READY;
	ms->waiting = false;
	if (ms->build != NULL) {
		void (*build)(struct milter_sess *) = ms->build;

		ms->build = NULL;
		build(ms);
	}
	return 0;
}

/* ---- running a stage ---- */

/* send_or_skip - sends the packets built for cmd and waits for the
 * answer, unless the milter said it will not answer (nr_flag): then the
 * stage is done at once */
static void
send_and_wait(struct milter_sess *ms, char cmd, uint32_t nr_flag)
{
	ms->pending_cmd = cmd;
	if (ms->protocol & nr_flag) {
		mconn_flush(ms);
		if (ms->state != MC_CLOSED)
			ms->then(ms, MV_CONTINUE);
		return;
	}
	mconn_expect(ms, ms->mi->conf->timeouts.command);
}

/* milter_stage_run - runs build (which sends and waits) once the
 * connection is negotiated; returns the hook's result or SC_PENDING */
enum sc_result
milter_stage_run(struct milter_sess *ms, struct sc_hook_call *call,
		 void (*build)(struct milter_sess *), milter_stage_fn then)
{
	enum sc_result res = SC_PENDING;

	ms->call = call;
	ms->then = then;
	ms->in_callback = true;
	ms->sync_done = false;
	ms->depth++;
	if (ms->state == MC_CLOSED)
		finish(ms, MV_FAILED);
	else if (ms->state == MC_READY)
		build(ms);
	else {
		ms->build = build;
		mconn_open(ms);
	}
	ms->depth--;
	ms->in_callback = false;
	if (ms->sync_done)
		res = ms->sync_result;
	return res;
}

/* milter_stage_begin - the session's milter state when this instance should take
 * part in this hook at all (mode, acceptance, stickiness); sets *res_r
 * when the answer is known without the milter */
struct milter_sess *
milter_stage_begin(struct sc_hook_call *call, void *data, bool message_stage,
		   enum sc_result *res_r)
{
	struct milter_inst *mi = data;
	struct sc_session *s = sc_hook_session(call);
	struct milter_sess *ms;

	*res_r = SC_CONT;
	if (s == NULL)
		return NULL;
	ms = milter_sess_get(mi, s);
	if (ms == NULL) {
		*res_r = SC_DENYSOFT;
		sc_reply_set(call, 451, "4.3.0", "Error: out of memory");
		return NULL;
	}
	if (ms->skip)
		return NULL;
	if (ms->call != NULL) {
		/* the core stopped waiting for the last call (hook_timeout)
		 * and the client went on: the milter is out of step */
		mconn_fail(ms, "the hook timed out while waiting for the "
			   "milter");
	}
	if (ms->failed == MV_FAILED) {
		/* told once per command from MAIL on */
		if (sc_hook_which(call) != SC_HOOK_CONNECT &&
		    sc_hook_which(call) != SC_HOOK_HELO)
			*res_r = result_of(ms, call, MV_FAILED);
		return NULL;
	}
	if (ms->conn_accepted)
		return NULL;
	if (message_stage && ms->msg_accepted)
		return NULL;
	return ms;
}

static void
build_connect(struct milter_sess *ms)
{
	const struct sockaddr *sa = sc_session_client_addr(ms->s);
	char host[80], ip[64];
	unsigned port;
	char family = 'U';

	if (ms->protocol & SMFIP_NOCONNECT) {
		envelope_then(ms, MV_CONTINUE);
		return;
	}
	addr_text(sa, ip, sizeof(ip), &port);
	if (sa != NULL && sa->sa_family == AF_INET)
		family = '4';
	else if (sa != NULL && sa->sa_family == AF_INET6)
		family = '6';
	snprintf(host, sizeof(host), "[%s]", ip);
	macros_for(ms, SMFIC_CONNECT, MS_CONNECT, NULL);
	milter_pkt_begin(&ms->out, SMFIC_CONNECT);
	milter_pkt_str(&ms->out, host);
	milter_pkt_bytes(&ms->out, &family, 1);
	if (family != 'U') {
		milter_pkt_u16(&ms->out, (uint16_t)port);
		milter_pkt_str(&ms->out, ip);
	}
	milter_pkt_end(&ms->out);
	send_and_wait(ms, SMFIC_CONNECT, SMFIP_NR_CONN);
}

enum sc_result
milter_hook_connect(struct sc_hook_call *call, void *data)
{
	enum sc_result res;
	struct milter_sess *ms = milter_stage_begin(call, data, false, &res);

	if (ms == NULL)
		return res;
	ms->mi->n_sessions++;
	return milter_stage_run(ms, call, build_connect, envelope_then);
}

static void
build_helo(struct milter_sess *ms)
{
	const char *helo = ms->arg ? ms->arg : "";

	if (ms->protocol & SMFIP_NOHELO) {
		envelope_then(ms, MV_CONTINUE);
		return;
	}
	macros_for(ms, SMFIC_HELO, MS_HELO, NULL);
	milter_pkt_begin(&ms->out, SMFIC_HELO);
	milter_pkt_str(&ms->out, helo);
	milter_pkt_end(&ms->out);
	send_and_wait(ms, SMFIC_HELO, SMFIP_NR_HELO);
}

/* set_arg - keeps a copy of the command's argument for the builder,
 * which may run later (after negotiation) */
static int
set_arg(struct milter_sess *ms, const char *a, const char *params)
{
	free(ms->arg);
	free(ms->arg_params);
	ms->arg = strdup(a ? a : "");
	ms->arg_params = strdup(params ? params : "");
	return ms->arg && ms->arg_params ? 0 : -1;
}

enum sc_result
milter_hook_helo(struct sc_hook_call *call, void *data)
{
	enum sc_result res;
	struct milter_sess *ms = milter_stage_begin(call, data, false, &res);

	if (ms == NULL)
		return res;
	if (set_arg(ms, sc_hook_arg(call), NULL) != 0)
		return SC_CONT;
	return milter_stage_run(ms, call, build_helo, envelope_then);
}

enum sc_result
milter_hook_auth(struct sc_hook_call *call, void *data)
{
	const struct sc_auth_request *ar = sc_hook_arg(call);
	struct sc_session *s = sc_hook_session(call);
	struct milter_sess *ms;

	/* only remembers the mechanism for {auth_type}; the backends
	 * decide */
	if (s == NULL || ar == NULL || ar->mechanism == NULL)
		return SC_CONT;
	ms = milter_sess_get(data, s);
	if (ms != NULL && !ms->skip) {
		free(ms->auth_type);
		ms->auth_type = strdup(ar->mechanism);
	}
	return SC_CONT;
}

/* add_args - "<addr>" then each ESMTP parameter, NUL-terminated */
static void
add_args(struct milter_sess *ms)
{
	char *p = ms->arg_params, *tok, *save = NULL;
	size_t n = strlen(ms->arg);
	char *a = malloc(n + 3);

	if (a == NULL) {
		ms->out.oom = true;
		return;
	}
	snprintf(a, n + 3, "<%s>", ms->arg);
	milter_pkt_str(&ms->out, a);
	free(a);
	for (tok = strtok_r(p, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save))
		milter_pkt_str(&ms->out, tok);
}

static void
build_mail(struct milter_sess *ms)
{
	if (ms->in_message) {
		/* the last transaction ended without end of message */
		milter_pkt_begin(&ms->out, SMFIC_ABORT);
		milter_pkt_end(&ms->out);
	}
	ms->in_message = true;
	if (ms->protocol & SMFIP_NOMAIL) {
		mconn_flush(ms);
		if (ms->state != MC_CLOSED)
			envelope_then(ms, MV_CONTINUE);
		return;
	}
	macros_for(ms, SMFIC_MAIL, MS_MAIL, NULL);
	milter_pkt_begin(&ms->out, SMFIC_MAIL);
	add_args(ms);
	milter_pkt_end(&ms->out);
	send_and_wait(ms, SMFIC_MAIL, SMFIP_NR_MAIL);
}

enum sc_result
milter_hook_mail(struct sc_hook_call *call, void *data)
{
	const struct sc_mail_request *mr = sc_hook_arg(call);
	enum sc_result res;
	struct milter_sess *ms;

	ms = milter_stage_begin(call, data, false, &res);
	if (ms == NULL || mr == NULL)
		return res;
	/* a new message: what the last one's answers said is over */
	ms->msg_accepted = false;
	ms->msg_discard = false;
	ms->skip_body = false;
	free(ms->mail_addr);
	ms->mail_addr = strdup(mr->address);
	free(ms->queue_id);
	ms->queue_id = NULL;
	if (set_arg(ms, mr->address, mr->params) != 0 ||
	    ms->mail_addr == NULL) {
		sc_reply_set(call, 451, "4.3.0", "Error: out of memory");
		return SC_DENYSOFT;
	}
	return milter_stage_run(ms, call, build_mail, envelope_then);
}

static void
build_rcpt(struct milter_sess *ms)
{
	if (ms->protocol & SMFIP_NORCPT) {
		envelope_then(ms, MV_CONTINUE);
		return;
	}
	macros_for(ms, SMFIC_RCPT, MS_RCPT, ms->arg);
	milter_pkt_begin(&ms->out, SMFIC_RCPT);
	add_args(ms);
	milter_pkt_end(&ms->out);
	send_and_wait(ms, SMFIC_RCPT, SMFIP_NR_RCPT);
}

enum sc_result
milter_hook_rcpt(struct sc_hook_call *call, void *data)
{
	const struct sc_rcpt_request *rr = sc_hook_arg(call);
	enum sc_result res;
	struct milter_sess *ms;

	ms = milter_stage_begin(call, data, true, &res);
	if (ms == NULL || rr == NULL)
		return res;
	if (set_arg(ms, rr->address, rr->params) != 0) {
		sc_reply_set(call, 451, "4.3.0", "Error: out of memory");
		return SC_DENYSOFT;
	}
	return milter_stage_run(ms, call, build_rcpt, envelope_then);
}

static void
build_data(struct milter_sess *ms)
{
	if (ms->protocol & SMFIP_NODATA) {
		envelope_then(ms, MV_CONTINUE);
		return;
	}
	macros_for(ms, SMFIC_DATA, MS_DATA, NULL);
	milter_pkt_begin(&ms->out, SMFIC_DATA);
	milter_pkt_end(&ms->out);
	send_and_wait(ms, SMFIC_DATA, SMFIP_NR_DATA);
}

enum sc_result
milter_hook_data(struct sc_hook_call *call, void *data)
{
	enum sc_result res;
	struct milter_sess *ms = milter_stage_begin(call, data, true, &res);

	if (ms == NULL)
		return res;
	return milter_stage_run(ms, call, build_data, envelope_then);
}

/* ---- the end of the session ---- */

static void
sess_really_free(struct milter_sess *ms)
{
	mconn_close(ms, false);
	milter_msg_free(ms);
	for (int i = 0; i < MS_COUNT; i++)
		free(ms->macros[i]);
	free(ms->auth_type);
	free(ms->mail_addr);
	free(ms->queue_id);
	free(ms->reply_text);
	free(ms->arg);
	free(ms->arg_params);
	free(ms);
}

void
milter_sess_free(void *p)
{
	struct milter_sess *ms = p;
	struct sc_hook_call *call = ms->call;

	/* the session's pending calls are cancelled by now: release ours */
	ms->call = NULL;
	ms->s = NULL;
	ms->dead = true;
	if (call != NULL)
		sc_hook_done(call, SC_CONT);
	if (ms->state == MC_READY && ms->in_message) {
		milter_pkt_begin(&ms->out, SMFIC_ABORT);
		milter_pkt_end(&ms->out);
	}
	mconn_close(ms, true);
	if (ms->depth == 0)
		sess_really_free(ms);
}

void
milter_sess_unref(struct milter_sess *ms)
{
	if (ms->dead && ms->depth == 0)
		sess_really_free(ms);
}
