/* SPDX-License-Identifier: MIT */
/*
 * core/hook.c - hook chains: ordered policy callbacks that decide.
 *
 * A run walks the chain of one hook: POLICY callbacks, then NORMAL ones,
 * each in plugins.d file order (module.c keeps the array in that order); a
 * callback may answer at once or return SC_PENDING and finish with
 * sc_hook_done(). The core enforces Haraka's rules: one completion per
 * call, a per-call timeout, cancellation when the session goes away or the
 * chain ends without the call. Loop thread only.
 */
#include "core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOOK_TIMEOUT_DEFAULT_MS 30000

enum call_state {
	CALL_RUNNING,		/* inside the callback                    */
	CALL_PENDING,		/* returned SC_PENDING, not yet completed  */
	CALL_DONE,		/* completed                              */
};

struct sc_hook_call {
	struct sc_hook_call *next;	/* the run's list of calls         */
	struct sc_hook_run *run;
	struct sc_instance *inst;
	enum sc_hook hook;
	enum sc_hook_phase phase;
	enum call_state state;
	bool early_done;		/* sc_hook_done inside the callback */
	enum sc_result early_result;
	bool timed_out;
	bool cancelled;			/* can no longer change the outcome */
	struct sc_timer *timer;
	/* what the callback set */
	int code;
	char esc[16];
	char *text;
	char *route_kind;
	char *route_nexthop;
	char **expand;
	size_t expand_count;
	char *auth_user;
};

struct sc_hook_run {
	struct sc_session *s;		/* NULL outside a session, and once
					 * finished or cancelled: the session
					 * may be freed after that          */
	struct sc_gen *gen;		/* referenced                       */
	enum sc_hook hook;
	const void *arg;
	sc_hook_done_fn done;
	void *cbarg;
	size_t index;			/* next chain entry                 */
	struct sc_hook_call *calls;
	size_t outstanding;		/* calls PENDING at the module      */
	bool in_callback;
	bool finished;
	bool cancelled;
	bool reaping;
	struct sc_timer *reaper;
	char *text;			/* the outcome's reply text         */
};

static const char *const hook_names[SC_HOOK_COUNT] = {
	[SC_HOOK_CONNECT] = "connect",
	[SC_HOOK_HELO] = "helo",
	[SC_HOOK_AUTH] = "auth",
	[SC_HOOK_MAIL] = "mail",
	[SC_HOOK_RCPT] = "rcpt",
	[SC_HOOK_RELAY] = "relay",
	[SC_HOOK_DATA] = "data",
	[SC_HOOK_DATA_POST] = "data_post",
	[SC_HOOK_ROUTE] = "route",
	[SC_HOOK_ACCOUNT] = "account",
	[SC_HOOK_SENDER] = "sender",
	[SC_HOOK_SUBMIT] = "submit",
};

static const char *const result_names[] = {
	[SC_CONT] = "CONT",
	[SC_OK] = "OK",
	[SC_DENY] = "DENY",
	[SC_DENYSOFT] = "DENYSOFT",
	[SC_DENYDISCONNECT] = "DENYDISCONNECT",
	[SC_DENYSOFTDISCONNECT] = "DENYSOFTDISCONNECT",
	[SC_PENDING] = "PENDING",
};

const char *
sc_hook_name(enum sc_hook hook)
{
	if ((unsigned)hook >= SC_HOOK_COUNT)
		return "unknown";
	return hook_names[hook];
}

const char *
sc_result_name(enum sc_result r)
{
	if ((unsigned)r > SC_PENDING)
		return "INVALID";
	return result_names[r];
}

static void run_advance(struct sc_hook_run *run);

/* ---- freeing ---- */

static void
call_free(struct sc_hook_call *call)
{
	sc_timer_free(&call->timer);
	free(call->text);
	free(call->route_kind);
	free(call->route_nexthop);
	for (size_t i = 0; i < call->expand_count; i++)
		free(call->expand[i]);
	free(call->expand);
	free(call->auth_user);
	free(call);
}

static void
run_free(struct sc_hook_run *run)
{
	while (run->calls != NULL) {
		struct sc_hook_call *call = run->calls;
		run->calls = call->next;
		call_free(call);
	}
	sc_timer_free(&run->reaper);
	sc_gen_unref(&run->gen);
	free(run->text);
	free(run);
}

static void
run_reap(struct sc_timer *t, void *arg)
{
	(void)t;
	run_free(arg);
}

/*
 * run_maybe_free - release a run nobody needs any more. The free happens
 * on the next loop turn, not now: a module that completes a call twice in
 * a row then hits a live object and gets the "completed twice" log line
 * instead of a use after free.
 * XXX: a second completion later than that cannot be detected.
 */
static void
run_maybe_free(struct sc_hook_run *run)
{
	if (!(run->finished || run->cancelled) || run->outstanding > 0 ||
	    run->in_callback || run->reaping)
		return;
	run->reaping = true;
	run->reaper = sc_timer_new(run_reap, run);
	if (run->reaper == NULL) {
		run_free(run);
		return;
	}
	sc_timer_start(run->reaper, 0, 0);
}

/* ---- outcome ---- */

struct default_reply {
	int code;
	const char *esc;
	const char *text;
};

/* default_reply - the reply of a final result no callback worded */
static struct default_reply
default_reply(enum sc_hook hook, enum sc_result r)
{
	struct default_reply d = { 0, "", NULL };

	switch (r) {
	case SC_DENY:
		if (hook == SC_HOOK_AUTH)
			d = (struct default_reply){ 535, "5.7.8",
				"Authentication credentials invalid" };
		else if (hook == SC_HOOK_CONNECT || hook == SC_HOOK_DATA ||
			 hook == SC_HOOK_DATA_POST)
			d = (struct default_reply){ 554, "5.7.1",
				"Transaction rejected by policy" };
		else
			d = (struct default_reply){ 550, "5.7.1",
				"Rejected by policy" };
		break;
	case SC_DENYSOFT:
		if (hook == SC_HOOK_AUTH)
			d = (struct default_reply){ 454, "4.7.0",
				"Temporary authentication failure" };
		else
			d = (struct default_reply){ 451, "4.7.1",
				"Temporarily rejected; please try again "
				"later" };
		break;
	case SC_DENYDISCONNECT:
		d = (struct default_reply){ 554, "5.7.1",
			"Rejected by policy; closing connection" };
		break;
	case SC_DENYSOFTDISCONNECT:
		d = (struct default_reply){ 421, "4.7.0",
			"Service not available; closing connection" };
		break;
	default:
		break;
	}
	return d;
}

/* reply_class_ok - does the reply code fit the verdict? */
static bool
reply_class_ok(enum sc_result r, int code)
{
	switch (r) {
	case SC_OK:
		return code >= 200 && code < 400;
	case SC_DENY:
	case SC_DENYDISCONNECT:
		return code >= 500 && code < 600;
	case SC_DENYSOFT:
	case SC_DENYSOFTDISCONNECT:
		return code >= 400 && code < 500;
	default:
		return false;
	}
}

/*
 * run_finish - end the chain with result r, decided by call (NULL when the
 * chain ran out), and tell the caller. reply_* override the call's reply
 * (the timeout).
 */
static void
run_finish(struct sc_hook_run *run, struct sc_hook_call *call,
	   enum sc_result r, const struct default_reply *forced)
{
	struct sc_hook_outcome out;
	struct sc_session *s = run->s;

	memset(&out, 0, sizeof(out));
	run->finished = true;
	if (s != NULL)
		sc_session_del_run(s, run);
	/* The session no longer knows this run, so nothing would tell it
	 * when the session goes: forget it now. A call still pending (one
	 * that timed out) can change nothing anymore: cancel it, so its
	 * module sees sc_hook_cancelled() and no session. */
	run->s = NULL;
	for (struct sc_hook_call *c = run->calls; c != NULL; c = c->next) {
		if (c->state == CALL_PENDING) {
			c->cancelled = true;
			sc_timer_free(&c->timer);
		}
	}

	if (forced != NULL) {
		out.reply.code = forced->code;
		snprintf(out.reply.esc, sizeof(out.reply.esc), "%s",
			 forced->esc);
		out.reply.text = forced->text;
	} else if (call != NULL && call->code != 0 && r != SC_CONT) {
		if (reply_class_ok(r, call->code)) {
			out.reply.code = call->code;
			memcpy(out.reply.esc, call->esc, sizeof(out.reply.esc));
			run->text = call->text;
			call->text = NULL;
			out.reply.text = run->text != NULL ? run->text : "";
		} else {
			sc_log_session(SC_LOG_WARNING, s,
				       "hook %s: %s answered %s with reply "
				       "%d; the class does not match, using "
				       "the default reply",
				       sc_hook_name(run->hook),
				       sc_instance_name(call->inst),
				       sc_result_name(r), call->code);
		}
	}
	/* 421 means "closing the channel" (RFC 5321 3.8). */
	if (out.reply.code == 421 && r == SC_DENYSOFT)
		r = SC_DENYSOFTDISCONNECT;
	if (out.reply.code == 0 && r != SC_OK && r != SC_CONT) {
		struct default_reply d = default_reply(run->hook, r);
		out.reply.code = d.code;
		snprintf(out.reply.esc, sizeof(out.reply.esc), "%s", d.esc);
		out.reply.text = d.text;
	}
	out.result = r;
	if (call != NULL) {
		out.instance = sc_instance_name(call->inst);
		out.route_kind = call->route_kind;
		out.route_nexthop = call->route_nexthop;
		out.expand_count = call->expand_count;
		out.expand = (const char *const *)call->expand;
		out.auth_user = call->auth_user;
	}
	if (run->hook == SC_HOOK_AUTH && r == SC_OK && out.auth_user == NULL &&
	    run->arg != NULL)
		out.auth_user = ((const struct sc_auth_request *)
				 run->arg)->user;
	sc_log_session(SC_LOG_DEBUG, s, "hook %s: %s%s%s",
		       sc_hook_name(run->hook), sc_result_name(r),
		       out.instance ? " by " : "",
		       out.instance ? out.instance : "");
	if (run->done != NULL)
		run->done(s, &out, run->cbarg);
	run_maybe_free(run);
}

/*
 * run_step - apply the final result r of call; true when the chain goes on
 * to the next callback.
 */
static bool
run_step(struct sc_hook_run *run, struct sc_hook_call *call, enum sc_result r)
{
	if ((unsigned)r > SC_DENYSOFTDISCONNECT) {
		sc_log_session(SC_LOG_ERROR, run->s,
			       "hook %s: %s returned invalid result %d; "
			       "deferring", sc_hook_name(run->hook),
			       sc_instance_name(call->inst), (int)r);
		call->code = 0;
		r = SC_DENYSOFT;
	}
	if (r == SC_CONT && call->expand_count > 0)
		r = SC_OK;	/* sc_route_expand() ends the chain */
	if (r == SC_OK && call->phase == SC_PHASE_POLICY) {
		/* Accepting is for the backends (hook.h): a policy module
		 * must not log users in or open relaying by mistake. */
		sc_log_session(SC_LOG_ERROR, run->s,
			       "hook %s: %s answered OK in the policy phase, "
			       "which cannot accept; counted as CONT (a "
			       "module bug)", sc_hook_name(run->hook),
			       sc_instance_name(call->inst));
		r = SC_CONT;
	}
	sc_log_session(SC_LOG_DEBUG, run->s, "hook %s: %s -> %s",
		       sc_hook_name(run->hook), sc_instance_name(call->inst),
		       sc_result_name(r));
	if (r == SC_CONT)
		return true;
	run_finish(run, call, r, NULL);
	return false;
}

/* call_timeout - the callback did not complete in time: the chain ends as
 * a temporary failure; the late completion will be ignored */
static void
call_timeout(struct sc_timer *t, void *arg)
{
	struct sc_hook_call *call = arg;
	struct sc_hook_run *run = call->run;
	static const struct default_reply timeout_reply = {
		451, "4.4.3", "Timeout in a policy check; please try again "
		"later"
	};

	(void)t;
	sc_timer_free(&call->timer);
	call->timed_out = true;
	if (run->finished || run->cancelled)
		return;
	sc_log_session(SC_LOG_WARNING, run->s,
		       "hook %s: %s did not answer within %llu ms; deferring",
		       sc_hook_name(run->hook), sc_instance_name(call->inst),
		       (unsigned long long)(call->inst->conf != NULL &&
			 call->inst->conf->hook_timeout_ms ?
			 call->inst->conf->hook_timeout_ms :
			 HOOK_TIMEOUT_DEFAULT_MS));
	run_finish(run, call, SC_DENYSOFT, &timeout_reply);
}

/* run_advance - call the chain from run->index until a callback decides,
 * goes pending, or the chain ends */
static void
run_advance(struct sc_hook_run *run)
{
	for (;;) {
		const struct sc_hook_entry *e;
		struct sc_hook_call *call;
		enum sc_result r;

		if (run->gen == NULL ||
		    run->index >= run->gen->hook_count[run->hook]) {
			run_finish(run, NULL, SC_CONT, NULL);
			return;
		}
		e = &run->gen->hooks[run->hook][run->index];
		call = calloc(1, sizeof(*call));
		if (call == NULL) {
			static const struct default_reply oom = {
				451, "4.3.0", "Out of memory; please try "
				"again later"
			};
			run_finish(run, NULL, SC_DENYSOFT, &oom);
			return;
		}
		call->run = run;
		call->inst = e->inst;
		call->hook = run->hook;
		call->phase = e->phase;
		call->state = CALL_RUNNING;
		call->next = run->calls;
		run->calls = call;

		run->in_callback = true;
		r = e->fn(call, e->data);
		run->in_callback = false;

		if (r == SC_PENDING && !call->early_done) {
			call->state = CALL_PENDING;
			run->outstanding++;
		} else {
			if (r != SC_PENDING && call->early_done) {
				sc_log_session(SC_LOG_WARNING, run->s,
					       "hook %s: %s completed a call "
					       "twice; the second completion "
					       "(%s) is ignored",
					       sc_hook_name(run->hook),
					       sc_instance_name(call->inst),
					       sc_result_name(r));
			}
			if (call->early_done)
				r = call->early_result;
			call->state = CALL_DONE;
		}
		if (run->cancelled) {
			/* The session closed inside the callback. */
			if (call->state == CALL_PENDING)
				call->cancelled = true;
			run_maybe_free(run);
			return;
		}
		if (call->state == CALL_PENDING) {
			uint64_t ms = call->inst->conf != NULL ?
				call->inst->conf->hook_timeout_ms : 0;
			call->timer = sc_timer_new(call_timeout, call);
			if (call->timer != NULL)
				sc_timer_start(call->timer, ms ? ms :
					       HOOK_TIMEOUT_DEFAULT_MS, 0);
			return;
		}
		if (!run_step(run, call, r))
			return;
		run->index++;
	}
}

int
sc_hook_run(struct sc_session *s, enum sc_hook hook, const void *arg,
	    sc_hook_done_fn done, void *cbarg)
{
	struct sc_hook_run *run;

	if ((unsigned)hook >= SC_HOOK_COUNT)
		return -1;
	run = calloc(1, sizeof(*run));
	if (run == NULL)
		return -1;
	run->s = s;
	run->hook = hook;
	run->arg = arg;
	run->done = done;
	run->cbarg = cbarg;
	run->gen = s != NULL ? sc_session_gen(s) : NULL;
	if (run->gen == NULL && sc_core != NULL)
		run->gen = sc_core->gen;
	if (run->gen != NULL)
		sc_gen_ref(run->gen);
	if (s != NULL)
		sc_session_add_run(s, run);
	run_advance(run);
	return 0;
}

/* sc_hook_run_cancel - the session is going away: never call done, ignore
 * late completions (session.c has already forgotten the run) */
void
sc_hook_run_cancel(struct sc_hook_run *run)
{
	if (run == NULL || run->cancelled || run->finished)
		return;
	run->cancelled = true;
	run->s = NULL;
	for (struct sc_hook_call *c = run->calls; c != NULL; c = c->next) {
		if (c->state == CALL_PENDING) {
			c->cancelled = true;
			sc_timer_free(&c->timer);
		}
	}
	run_maybe_free(run);
}

void
sc_hook_done(struct sc_hook_call *call, enum sc_result result)
{
	struct sc_hook_run *run;

	if (call == NULL)
		return;
	run = call->run;
	switch (call->state) {
	case CALL_RUNNING:
		if (call->early_done) {
			sc_log_session(SC_LOG_WARNING, run->s,
				       "hook %s: %s completed a call twice; "
				       "the second completion is ignored",
				       sc_hook_name(call->hook),
				       sc_instance_name(call->inst));
			return;
		}
		call->early_done = true;
		call->early_result = result;
		return;
	case CALL_DONE:
		sc_log_session(SC_LOG_WARNING, run->s,
			       "hook %s: %s completed a call twice; the "
			       "second completion is ignored",
			       sc_hook_name(call->hook),
			       sc_instance_name(call->inst));
		return;
	case CALL_PENDING:
		break;
	}
	call->state = CALL_DONE;
	sc_timer_free(&call->timer);
	run->outstanding--;
	if (call->timed_out || call->cancelled || run->cancelled ||
	    run->finished) {
		/* run->s is NULL here: the session may be gone */
		sc_log_session(SC_LOG_DEBUG, run->s,
			       "hook %s: late completion from %s ignored",
			       sc_hook_name(call->hook),
			       sc_instance_name(call->inst));
		run_maybe_free(run);
		return;
	}
	if (result == SC_PENDING) {
		sc_log_session(SC_LOG_ERROR, run->s,
			       "hook %s: %s completed with PENDING; deferring",
			       sc_hook_name(call->hook),
			       sc_instance_name(call->inst));
		call->code = 0;
		result = SC_DENYSOFT;
	}
	if (run_step(run, call, result)) {
		run->index++;
		run_advance(run);
	}
}

bool
sc_hook_cancelled(struct sc_hook_call *call)
{
	return call == NULL || call->cancelled || call->run->cancelled;
}

struct sc_session *
sc_hook_session(struct sc_hook_call *call)
{
	if (sc_hook_cancelled(call))
		return NULL;
	return call->run->s;
}

/* sc_hook_arg - the caller's argument, while the chain still waits for
 * this call: once the done callback ran (a timeout) the caller may have
 * freed it, so a late call gets NULL rather than a dangling pointer */
const void *
sc_hook_arg(struct sc_hook_call *call)
{
	if (sc_hook_cancelled(call) || call->run->finished)
		return NULL;
	return call->run->arg;
}

enum sc_hook
sc_hook_which(struct sc_hook_call *call)
{
	return call->hook;
}

/* call_open - may this call still change its outcome? */
static bool
call_open(const struct sc_hook_call *call)
{
	return call != NULL && call->state != CALL_DONE && !call->timed_out &&
		!call->cancelled && !call->run->cancelled &&
		!call->run->finished;
}

void
sc_reply_set(struct sc_hook_call *call, int code, const char *esc,
	     const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	if (!call_open(call))
		return;
	if (code < 200 || code > 599) {
		sc_log_warning("hook %s: %s set invalid reply code %d; ignored",
			       sc_hook_name(call->hook),
			       sc_instance_name(call->inst), code);
		return;
	}
	if (fmt != NULL) {
		va_start(ap, fmt);
		if (vasprintf(&text, fmt, ap) < 0)
			text = NULL;
		va_end(ap);
		/* A reply is one line: no CR/LF may reach the client. */
		for (char *p = text; p != NULL && *p != '\0'; p++) {
			if (*p == '\r' || *p == '\n')
				*p = ' ';
		}
	}
	free(call->text);
	call->text = text;
	call->code = code;
	snprintf(call->esc, sizeof(call->esc), "%s", esc != NULL ? esc : "");
}

void
sc_route_set(struct sc_hook_call *call, const char *kind, const char *nexthop)
{
	char *k, *n = NULL;

	if (!call_open(call) || call->hook != SC_HOOK_ROUTE || kind == NULL)
		return;
	k = strdup(kind);
	if (nexthop != NULL)
		n = strdup(nexthop);
	if (k == NULL || (nexthop != NULL && n == NULL)) {
		free(k);
		free(n);
		return;
	}
	free(call->route_kind);
	free(call->route_nexthop);
	call->route_kind = k;
	call->route_nexthop = n;
}

void
sc_route_expand(struct sc_hook_call *call, const char *address)
{
	char **v, *a;

	if (!call_open(call) || call->hook != SC_HOOK_ROUTE || address == NULL)
		return;
	a = strdup(address);
	v = realloc(call->expand, (call->expand_count + 2) * sizeof(*v));
	if (a == NULL || v == NULL) {
		free(a);
		if (v != NULL)
			call->expand = v;
		return;
	}
	call->expand = v;
	v[call->expand_count++] = a;
	v[call->expand_count] = NULL;
}

void
sc_auth_set_user(struct sc_hook_call *call, const char *user)
{
	char *u;

	if (!call_open(call) || call->hook != SC_HOOK_AUTH || user == NULL)
		return;
	u = strdup(user);
	if (u == NULL)
		return;
	free(call->auth_user);
	call->auth_user = u;
}
