/* SPDX-License-Identifier: MIT */
/*
 * pop3_auth.c - the AUTHORIZATION state, on the event loop thread: USER and
 * PASS, AUTH PLAIN (RFC 5034, initial response or its own line), the AUTH
 * hook chain that checks the credentials, the growing delay after a
 * failure, and the login itself: the mailbox is locked and scanned (a pool
 * job, pop3_maildir.c) before the session enters TRANSACTION.
 */
#define _GNU_SOURCE	/* explicit_bzero */
#include "pop3_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void
pop_scan_done(void *arg)
{
	struct pop_job *j = arg;
	struct pop_sess *ps = j->ps;
	struct sc_event ev;
	size_t i;

	if (ps->s == NULL)
		goto out;
	if (j->err != 0) {
		sc_log_session(SC_LOG_ERROR, ps->s, "pop3: scan %s: %s",
			       j->mbox, strerror(j->err));
		pop_unlock(ps);
		free(ps->login);
		ps->login = NULL;
		pop_reply(ps, "-ERR [SYS/TEMP] Cannot open mailbox");
		pop_resume(ps);
		goto out;
	}
	ps->msgs = calloc(j->nent ? j->nent : 1, sizeof(*ps->msgs));
	if (ps->msgs == NULL) {
		pop_unlock(ps);
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		pop_resume(ps);
		goto out;
	}
	for (i = 0; i < j->nent; i++) {
		ps->msgs[i].name = j->ents[i].name;
		j->ents[i].name = NULL;
		ps->msgs[i].vsize = j->ents[i].vsize;
		pop_make_uid(strchr(ps->msgs[i].name, '/') + 1,
			     ps->msgs[i].uid);
	}
	ps->nmsg = j->nent;
	ps->state = POP_TRANSACTION;
	ps->pd->logins++;
	sc_session_set_auth_user(ps->s, ps->login);
	sc_log_session(SC_LOG_INFO, ps->s,
		       "pop3: login user=%s ip=%s messages=%zu",
		       ps->login, sc_session_client_ip(ps->s), ps->nmsg);
	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_LOGIN;
	ev.session = ps->s;
	ev.protocol = "pop3";
	ev.client_ip = sc_session_client_ip(ps->s);
	ev.user = ps->login;
	sc_event_emit(&ev);
	if (ps->s == NULL)
		goto out;
	pop_reply(ps, "+OK Logged in.");
	pop_resume(ps);
out:
	pop_job_free(j);
	pop_sess_unref(ps);
}

/* pop_login - credentials are valid: lock and scan the mailbox */
static void
pop_login(struct pop_sess *ps, const char *user)
{
	char mbox[PATH_MAX];
	struct pop_lock *l;
	struct pop_job *j;

	if (sc_mailbox_path(user, mbox, sizeof(mbox)) < 0) {
		sc_log_session(SC_LOG_WARNING, ps->s,
			       "pop3: no mailbox path for %s", user);
		pop_reply(ps, "-ERR [SYS/TEMP] Mailbox unavailable");
		pop_resume(ps);
		return;
	}
	for (l = ps->pd->locks; l != NULL; l = l->next) {
		if (strcmp(l->mbox, mbox) == 0) {
			sc_log_session(SC_LOG_INFO, ps->s,
				       "pop3: %s is in use", user);
			pop_reply(ps, "-ERR [IN-USE] Mailbox is locked by "
				  "another session");
			pop_resume(ps);
			return;
		}
	}
	l = calloc(1, sizeof(*l));
	j = calloc(1, sizeof(*j));
	if (l == NULL || j == NULL || (l->mbox = strdup(mbox)) == NULL ||
	    (j->mbox = strdup(mbox)) == NULL ||
	    (ps->mbox = strdup(mbox)) == NULL ||
	    (ps->login = strdup(user)) == NULL)
		goto nomem;
	l->next = ps->pd->locks;
	ps->pd->locks = l;
	j->ps = ps;
	j->pd = ps->pd;
	ps->refs++;
	if (sc_work_submit_inst(ps->pd->inst, pop_job_scan,
				pop_scan_done, j) < 0) {
		ps->refs--;
		pop_unlock(ps);
		l = NULL;
		goto nomem;
	}
	return;
nomem:
	if (l != NULL)
		free(l->mbox);
	free(l);
	if (j != NULL)
		pop_job_free(j);
	free(ps->mbox);
	ps->mbox = NULL;
	free(ps->login);
	ps->login = NULL;
	pop_reply(ps, "-ERR [SYS/TEMP] Internal error");
	pop_resume(ps);
}

void
pop_fail_delay_done(struct sc_timer *t, void *arg)
{
	struct pop_sess *ps = arg;

	(void)t;
	pop_reply(ps, "-ERR [AUTH] Authentication failed");
	if (ps->auth_failures >= ps->pd->max_failures) {
		sc_log_session(SC_LOG_INFO, ps->s,
			       "pop3: too many authentication failures");
		pop_close(ps);
		return;
	}
	pop_resume(ps);
}

/* pop_auth_done - the AUTH hook chain answered */
static void
pop_auth_done(struct sc_session *s, const struct sc_hook_outcome *out,
	      void *arg)
{
	struct pop_sess *ps = arg;
	const char *text = out->reply.text;
	struct sc_event ev;

	(void)s;
	pop_free_secret(&ps->req_pass);
	ps->req.password = NULL;
	switch (out->result) {
	case SC_OK:
		pop_login(ps, out->auth_user != NULL ? out->auth_user :
			  ps->req_user);
		return;
	case SC_DENYSOFT:
		pop_reply(ps, "-ERR [SYS/TEMP] %s", text != NULL ? text :
			  "Temporary authentication failure, try again later");
		pop_resume(ps);
		return;
	case SC_DENYSOFTDISCONNECT:
	case SC_DENYDISCONNECT:
		pop_reply(ps, "-ERR %s %s",
			  out->result == SC_DENYDISCONNECT ? "[AUTH]" :
			  "[SYS/TEMP]", text != NULL ? text :
			  "Authentication refused");
		pop_close(ps);
		return;
	default:
		break;
	}
	/* CONT (nobody knows the user) or DENY (wrong password) */
	ps->auth_failures++;
	ps->pd->failures++;
	sc_log_session(SC_LOG_INFO, ps->s,
		       "pop3: authentication failed user=%s ip=%s",
		       ps->req_user, sc_session_client_ip(ps->s));
	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_AUTH_FAILED;
	ev.session = ps->s;
	ev.protocol = "pop3";
	ev.client_ip = sc_session_client_ip(ps->s);
	ev.user = ps->req_user;
	sc_event_emit(&ev);
	if (ps->s == NULL)
		return;
	/* a delay that grows per failure slows down password guessing */
	sc_timer_start(ps->delay_timer,
		       ps->pd->fail_delay * ps->auth_failures, 0);
}

/* pop_auth_start - hand user/password to the AUTH hook (auth_file,
 * auth_pam, ...), exactly as the smtp listener does. Takes pass. */
static void
pop_auth_start(struct pop_sess *ps, const char *mech, const char *user,
	       char *pass)
{
	free(ps->req_user);
	pop_free_secret(&ps->req_pass);
	ps->req_user = strdup(user);
	ps->req_pass = pass;
	ps->req_mech = mech;
	if (ps->req_user == NULL) {
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	memset(&ps->req, 0, sizeof(ps->req));
	ps->req.protocol = "pop3";
	ps->req.mechanism = mech;
	ps->req.user = ps->req_user;
	ps->req.password = ps->req_pass;
	ps->req.client_ip = sc_session_client_ip(ps->s);
	pop_pause(ps);
	if (sc_hook_run(ps->s, SC_HOOK_AUTH, &ps->req, pop_auth_done,
			ps) < 0) {
		pop_reply(ps, "-ERR [SYS/TEMP] Internal error");
		pop_resume(ps);
	}
}

/* pop_sasl_plain - decode an AUTH PLAIN response (RFC 4616) and log in */
void
pop_sasl_plain(struct pop_sess *ps, const char *b64)
{
	const char *authz = NULL, *authc = NULL, *pass = NULL;
	char *raw = NULL, *pw = NULL;
	size_t len;

	if (strcmp(b64, "*") == 0) {
		pop_reply(ps, "-ERR Authentication cancelled.");
		return;
	}
	if ((raw = sc_base64_decode(b64, &len)) == NULL) {
		pop_reply(ps, "-ERR Invalid base64 data in AUTH response");
		return;
	}
	if (sc_sasl_plain_split(raw, len, &authz, &authc, &pass) < 0) {
		explicit_bzero(raw, len);
		free(raw);
		pop_reply(ps, "-ERR Invalid AUTH PLAIN response");
		return;
	}
	if (*authz != '\0' && strcmp(authz, authc) != 0) {
		explicit_bzero(raw, len);
		free(raw);
		pop_reply(ps, "-ERR [AUTH] Authentication failed");
		return;
	}
	pw = strdup(pass);
	if (pw == NULL) {
		explicit_bzero(raw, len);
		free(raw);
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	pop_auth_start(ps, "PLAIN", authc, pw);
	explicit_bzero(raw, len);
	free(raw);
}

void
pop_cmd_user(struct pop_sess *ps, const char *arg)
{
	if (!pop_plaintext_ok(ps)) {
		pop_reply(ps, "-ERR Plaintext authentication disallowed on "
			  "non-secure connections");
		return;
	}
	if (*arg == '\0') {
		pop_reply(ps, "-ERR USER needs a user name");
		return;
	}
	free(ps->user);
	ps->user = strdup(arg);
	if (ps->user == NULL) {
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	pop_reply(ps, "+OK");
}

void
pop_cmd_pass(struct pop_sess *ps, const char *arg)
{
	char *pw;

	if (!pop_plaintext_ok(ps)) {
		pop_reply(ps, "-ERR Plaintext authentication disallowed on "
			  "non-secure connections");
		return;
	}
	if (ps->user == NULL) {
		pop_reply(ps, "-ERR No user name given: USER first");
		return;
	}
	pw = strdup(arg);
	if (pw == NULL) {
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	pop_auth_start(ps, "USER", ps->user, pw);
	free(ps->user);
	ps->user = NULL;
}

void
pop_cmd_auth(struct pop_sess *ps, const char *arg)
{
	char mech[32];
	const char *ir;
	size_t n = strcspn(arg, " ");

	if (*arg == '\0') {
		/* RFC 1734 style: list the mechanisms */
		pop_reply(ps, "+OK");
		if (pop_plaintext_ok(ps))
			pop_reply(ps, "PLAIN");
		pop_reply(ps, ".");
		return;
	}
	if (n >= sizeof(mech) || strncasecmp(arg, "PLAIN", n) != 0 ||
	    n != 5) {
		pop_reply(ps, "-ERR Unsupported authentication mechanism.");
		return;
	}
	if (!pop_plaintext_ok(ps)) {
		pop_reply(ps, "-ERR Plaintext authentication disallowed on "
			  "non-secure connections");
		return;
	}
	ir = arg + n;
	while (*ir == ' ')
		ir++;
	if (*ir == '\0') {
		ps->sasl_wait = true;
		pop_reply(ps, "+ ");
		return;
	}
	pop_sasl_plain(ps, ir);
}
