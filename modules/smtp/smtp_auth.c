/* SPDX-License-Identifier: MIT */
/*
 * smtp_auth.c - AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN
 * mechanisms, the SASL exchange, the auth hook and its verdict (with the
 * delay that doubles per failure), and wiping the secrets once used.
 *
 * Runs on the event loop thread, like the rest of the module.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <satchel/satchel.h>

#include "smtp_int.h"

/* smtp_wipe_free - frees a secret after overwriting it. */
void
smtp_wipe_free(char **p)
{
	if (*p != NULL) {
		volatile char *v = *p;
		while (*v)
			*v++ = 0;
		free(*p);
		*p = NULL;
	}
}

static void auth_fail_timer(struct sc_timer *t, void *arg);

static void
auth_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	struct sc_event ev;
	const char *user;

	memset(&ev, 0, sizeof(ev));
	ev.session = ss->s;
	ev.protocol = "smtp";
	ev.client_ip = sc_session_client_ip(ss->s);
	smtp_enter_state(ss, S_READY);
	if (out->result == SC_OK) {
		user = out->auth_user ? out->auth_user : ss->auth_user;
		sc_session_set_auth_user(ss->s, user);
		sc_log_session(SC_LOG_INFO, ss->s, "smtp: %s login of %s from "
			       "%s", ss->auth_mech, user,
			       sc_session_client_ip(ss->s));
		ev.type = SC_EVENT_LOGIN;
		ev.user = sc_session_auth_user(ss->s);
		smtp_wipe_free(&ss->auth_pass);
		sc_event_emit(&ev);
		smtp_reply(ss, 235, "2.7.0", "Authentication successful");
		return;
	}
	if (out->result == SC_DENYSOFT || out->result == SC_DENYSOFTDISCONNECT
	    || out->result == SC_DENYDISCONNECT) {
		smtp_wipe_free(&ss->auth_pass);
		smtp_reply_outcome(ss, out, 454, "4.7.0", "Temporary "
				   "authentication failure");
		return;
	}
	/* DENY or nobody knew the user: a failure, answered after a delay
	 * that doubles with each failure of this session */
	sc_log_session(SC_LOG_NOTICE, ss->s, "smtp: %s authentication of %s "
		       "from %s failed", ss->auth_mech, ss->auth_user,
		       sc_session_client_ip(ss->s));
	ev.type = SC_EVENT_AUTH_FAILED;
	ev.user = ss->auth_user;
	sc_event_emit(&ev);
	smtp_wipe_free(&ss->auth_pass);
	{
		uint64_t delay = ss->conf->auth_failure_delay;
		unsigned shift = ss->auth_failures < 3 ? ss->auth_failures : 3;

		ss->auth_failures++;
		delay <<= shift;
		if (delay == 0) {
			smtp_reply(ss, 535, "5.7.8", "Authentication "
				   "credentials invalid");
			return;
		}
		if (ss->timer == NULL)
			ss->timer = sc_timer_new(auth_fail_timer, ss);
		if (ss->timer == NULL) {
			smtp_reply(ss, 535, "5.7.8", "Authentication "
				   "credentials invalid");
			return;
		}
		smtp_ss_pause(ss);
		sc_timer_start(ss->timer, delay, 0);
	}
}

static void
auth_fail_timer(struct sc_timer *t, void *arg)
{
	struct smtp_session *ss = arg;

	(void)t;
	smtp_ss_enter(ss);
	ss->pending = false;
	smtp_reply(ss, 535, "5.7.8", "Authentication credentials invalid");
	smtp_ss_resume(ss);
	smtp_ss_leave(ss);
}

static void
auth_run(struct smtp_session *ss)
{
	ss->areq.protocol = "smtp";
	ss->areq.mechanism = ss->auth_mech;
	ss->areq.user = ss->auth_user;
	ss->areq.password = ss->auth_pass;
	ss->areq.client_ip = sc_session_client_ip(ss->s);
	smtp_run_hook(ss, SC_HOOK_AUTH, &ss->areq, auth_then);
}

/* auth_plain - "authzid NUL authcid NUL passwd" (RFC 4616). */
static void
auth_plain(struct smtp_session *ss, const char *b64)
{
	size_t len;
	char *raw = sc_base64_decode(b64, &len);
	const char *authz = NULL, *user = NULL, *pass = NULL;

	if (raw == NULL) {
		smtp_enter_state(ss, S_READY);
		smtp_reply(ss, 501, "5.5.2", "Cannot decode response");
		return;
	}
	if (sc_sasl_plain_split(raw, len, &authz, &user, &pass) < 0) {
		explicit_bzero(raw, len);
		free(raw);
		smtp_enter_state(ss, S_READY);
		smtp_reply(ss, 501, "5.5.2", "Invalid PLAIN response");
		return;
	}
	if (*authz && strcmp(authz, user) != 0) {
		/* acting for someone else is not supported: a failure */
		smtp_wipe_free(&ss->auth_user);
		smtp_wipe_free(&ss->auth_pass);
		ss->auth_user = strdup(user);
		ss->auth_pass = strdup("");
		explicit_bzero(raw, len);
		free(raw);
		if (ss->auth_user == NULL || ss->auth_pass == NULL) {
			smtp_enter_state(ss, S_READY);
			smtp_reply(ss, 454, "4.7.0", "Temporary authentication "
				   "failure");
			return;
		}
		{
			struct sc_hook_outcome out;

			memset(&out, 0, sizeof(out));
			out.result = SC_DENY;
			auth_then(ss, &out);
		}
		return;
	}
	smtp_wipe_free(&ss->auth_user);
	smtp_wipe_free(&ss->auth_pass);
	ss->auth_user = strdup(user);
	ss->auth_pass = strdup(pass);
	explicit_bzero(raw, len);
	free(raw);
	if (ss->auth_user == NULL || ss->auth_pass == NULL) {
		smtp_enter_state(ss, S_READY);
		smtp_reply(ss, 454, "4.7.0", "Temporary authentication "
			   "failure");
		return;
	}
	auth_run(ss);
}

void
smtp_cmd_auth(struct smtp_session *ss, char *args)
{
	char *mech = args, *init = NULL, *sp = strchr(args, ' ');

	if (!ss->esmtp) {
		smtp_reply(ss, 503, "5.5.1", "Error: send EHLO first");
		return;
	}
	if (sc_session_auth_user(ss->s) != NULL) {
		smtp_reply(ss, 503, "5.5.1", "Error: already authenticated");
		return;
	}
	if (sp != NULL) {
		*sp = '\0';
		init = sp + 1;
		while (*init == ' ')
			init++;
		if (strchr(init, ' ') != NULL) {
			smtp_reply(ss, 501, "5.5.4", "Syntax: AUTH mechanism "
				   "[initial-response]");
			return;
		}
	}
	if (ss->lc->tls != TLS_NONE && !sc_conn_tls_active(ss->c)) {
		smtp_reply(ss, 538, "5.7.11", "Encryption required for "
			   "requested authentication mechanism");
		return;
	}
	free(ss->auth_mech);
	if (strcasecmp(mech, "PLAIN") == 0)
		ss->auth_mech = strdup("PLAIN");
	else if (strcasecmp(mech, "LOGIN") == 0)
		ss->auth_mech = strdup("LOGIN");
	else {
		ss->auth_mech = NULL;
		smtp_reply(ss, 504, "5.5.4", "Unrecognized authentication "
			   "mechanism");
		return;
	}
	if (ss->auth_mech == NULL) {
		smtp_reply(ss, 451, "4.3.0", "Error: out of memory");
		return;
	}
	if (init != NULL && strcmp(init, "*") == 0) {
		smtp_reply(ss, 501, "5.0.0", "Authentication cancelled");
		return;
	}
	if (strcmp(ss->auth_mech, "PLAIN") == 0) {
		if (init != NULL && *init) {
			auth_plain(ss, init);
			return;
		}
		smtp_enter_state(ss, S_AUTH_PLAIN);
		smtp_reply(ss, 334, NULL, " ");
		return;
	}
	/* LOGIN: the initial response is the user name */
	if (init != NULL && *init) {
		size_t len;
		char *u = sc_base64_decode(init, &len);

		if (u == NULL) {
			smtp_reply(ss, 501, "5.5.2", "Cannot decode response");
			return;
		}
		smtp_wipe_free(&ss->auth_user);
		ss->auth_user = u;
		smtp_enter_state(ss, S_AUTH_PASS);
		smtp_reply(ss, 334, NULL, "UGFzc3dvcmQ6");
		return;
	}
	smtp_enter_state(ss, S_AUTH_USER);
	smtp_reply(ss, 334, NULL, "VXNlcm5hbWU6");
}

/* smtp_auth_line - a SASL response line in one of the AUTH states. */
void
smtp_auth_line(struct smtp_session *ss, char *line)
{
	size_t len;
	char *dec = NULL;

	if (strcmp(line, "*") == 0) {
		smtp_enter_state(ss, S_READY);
		smtp_wipe_free(&ss->auth_user);
		smtp_reply(ss, 501, "5.0.0", "Authentication cancelled");
		return;
	}
	if (ss->state == S_AUTH_PLAIN) {
		auth_plain(ss, line);
		return;
	}
	dec = sc_base64_decode(line, &len);
	if (dec == NULL || strlen(dec) != len) {
		if (dec != NULL)
			explicit_bzero(dec, len);
		free(dec);
		smtp_wipe_free(&ss->auth_user);
		smtp_enter_state(ss, S_READY);
		smtp_reply(ss, 501, "5.5.2", "Cannot decode response");
		return;
	}
	if (ss->state == S_AUTH_USER) {
		smtp_wipe_free(&ss->auth_user);
		ss->auth_user = dec;
		smtp_enter_state(ss, S_AUTH_PASS);
		smtp_reply(ss, 334, NULL, "UGFzc3dvcmQ6");
		return;
	}
	smtp_wipe_free(&ss->auth_pass);
	ss->auth_pass = dec;
	auth_run(ss);
}

