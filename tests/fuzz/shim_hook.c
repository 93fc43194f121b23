/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/shim_hook.c - the fake core's hook chains: registered callbacks, then
 * the scripted verdict of "the other modules"; outcomes and default
 * replies as core/hook.c builds them, and every argument checked against
 * hook.h. See shim.h.
 */

#include "shim_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- hooks (core/hook.c's rules) ---- */

int
sc_hook_register(struct sc_instance *inst, enum sc_hook hook, sc_hook_fn fn,
		 void *data)
{
	FUZZ_CHECK(hook < SC_HOOK_COUNT, "hook %d", hook);
	FUZZ_CHECK(shim.nhooks < 32, "too many hooks");
	shim.hooks[shim.nhooks++] = (struct hook_reg){ hook, inst, fn, data };
	return 0;
}

const char *
sc_hook_name(enum sc_hook hook)
{
	static const char *const names[] = { "connect", "helo", "auth", "mail",
		"rcpt", "relay", "data", "data_post", "route", "account",
		"sender", "submit" };

	return hook < SC_HOOK_COUNT ? names[hook] : "?";
}

const char *
sc_result_name(enum sc_result r)
{
	static const char *const names[] = { "CONT", "OK", "DENY",
		"DENYSOFT", "DENYDISCONNECT", "DENYSOFTDISCONNECT",
		"PENDING" };

	return r <= SC_PENDING ? names[r] : "?";
}

/* check_arg - the hook argument as hook.h describes it, read in full: an
 * argument freed while its chain is pending shows up here */
static void
check_arg(enum sc_hook hook, const void *arg)
{
	switch (hook) {
	case SC_HOOK_CONNECT:
	case SC_HOOK_DATA:
	case SC_HOOK_SUBMIT:
		FUZZ_CHECK(arg == NULL, "hook %d with an argument", hook);
		break;
	case SC_HOOK_HELO:
		FUZZ_CHECK(arg != NULL, "HELO without a name");
		str_ok(arg);
		break;
	case SC_HOOK_AUTH: {
		const struct sc_auth_request *r = arg;

		FUZZ_CHECK(r != NULL && r->mechanism != NULL &&
			   r->user != NULL && r->password != NULL,
			   "incomplete AUTH request");
		str_ok(r->protocol);
		str_ok(r->mechanism);
		str_ok(r->user);
		str_ok(r->password);
		str_ok(r->client_ip);
		break;
	}
	case SC_HOOK_MAIL: {
		const struct sc_mail_request *r = arg;

		FUZZ_CHECK(r != NULL && r->address != NULL &&
			   r->params != NULL, "incomplete MAIL request");
		str_ok(r->address);
		str_ok(r->params);
		break;
	}
	case SC_HOOK_RCPT:
	case SC_HOOK_RELAY: {
		const struct sc_rcpt_request *r = arg;

		FUZZ_CHECK(r != NULL && r->address != NULL &&
			   r->local_part != NULL && r->domain != NULL &&
			   r->params != NULL && r->mail_from != NULL,
			   "incomplete RCPT request");
		str_ok(r->address);
		str_ok(r->local_part);
		str_ok(r->params);
		str_ok(r->mail_from);
		FUZZ_CHECK(str_ok(r->domain) > 0, "RCPT without a domain");
		for (const char *p = r->domain; *p && *p != '['; p++)
			FUZZ_CHECK(*p < 'A' || *p > 'Z', "RCPT domain %s not "
				   "lower-case", r->domain);
		break;
	}
	case SC_HOOK_DATA_POST: {
		const struct sc_data_request *r = arg;

		FUZZ_CHECK(r != NULL, "DATA_POST without a request");
		str_ok(r->queue_id_hint);
		break;
	}
	case SC_HOOK_ROUTE: {
		const struct sc_route_request *r = arg;

		str_ok(r->queue_id);
		str_ok(r->sender);
		str_ok(r->rcpt);
		str_ok(r->domain);
		break;
	}
	case SC_HOOK_ACCOUNT: {
		const struct sc_account_request *r = arg;

		FUZZ_CHECK(r != NULL && r->address != NULL,
			   "ACCOUNT without an address");
		str_ok(r->address);
		str_ok(r->local_part);
		str_ok(r->domain);
		break;
	}
	case SC_HOOK_SENDER: {
		const struct sc_sender_request *r = arg;

		FUZZ_CHECK(r != NULL && r->address != NULL &&
			   r->user != NULL, "incomplete SENDER request");
		str_ok(r->address);
		str_ok(r->local_part);
		str_ok(r->domain);
		str_ok(r->user);
		break;
	}
	default:
		FUZZ_CHECK(false, "hook %d", hook);
	}
}

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

static void
call_free(struct sc_hook_call *call)
{
	free(call->text);
	free(call->auth_user);
	free(call);
}

static void
chain_free(struct chain *ch)
{
	for (struct chain **pp = &shim.chains; *pp != NULL;
	     pp = &(*pp)->link)
		if (*pp == ch) {
			*pp = ch->link;
			break;
		}
	free(ch->reply_text);
	free(ch->auth_user);
	free(ch->route_kind);
	free(ch->route_nexthop);
	for (size_t i = 0; i < ch->nexpand; i++)
		free(ch->expand[i]);
	free(ch->expand);
	free(ch);
}

/* chain_finish - the outcome as core/hook.c's run_finish builds it: the
 * deciding call's reply when its class fits, else a default one */
static void
chain_finish(struct chain *ch, struct sc_hook_call *call, enum sc_result r)
{
	struct sc_hook_outcome out;

	FUZZ_CHECK(r != SC_PENDING && r <= SC_PENDING, "final result %d", r);
	if (ch->cancelled) {
		chain_free(ch);
		return;
	}
	check_arg(ch->hook, ch->arg);
	memset(&out, 0, sizeof(out));
	if (call != NULL && call->code != 0 && r != SC_CONT &&
	    reply_class_ok(r, call->code)) {
		out.reply.code = call->code;
		memcpy(out.reply.esc, call->esc, sizeof(out.reply.esc));
		ch->reply_text = call->text;
		call->text = NULL;
		out.reply.text = ch->reply_text ? ch->reply_text : "";
	}
	if (out.reply.code == 421 && r == SC_DENYSOFT)
		r = SC_DENYSOFTDISCONNECT;
	if (out.reply.code == 0 && r != SC_OK && r != SC_CONT) {
		bool soft = r == SC_DENYSOFT || r == SC_DENYSOFTDISCONNECT;

		out.reply.code = r == SC_DENYSOFTDISCONNECT ? 421 :
				 soft ? 451 : 550;
		snprintf(out.reply.esc, sizeof(out.reply.esc), "%s",
			 soft ? "4.7.1" : "5.7.1");
		out.reply.text = "Rejected by policy (fuzz default)";
	}
	out.result = r;
	out.instance = "50-fuzz";
	if (call != NULL) {
		ch->auth_user = call->auth_user;
		call->auth_user = NULL;
		out.auth_user = ch->auth_user;
	}
	if (ch->hook == SC_HOOK_MAIL && ch->s != NULL)
		ch->s->mail_ok = r == SC_OK || r == SC_CONT;
	if (ch->hook == SC_HOOK_AUTH && r == SC_OK && out.auth_user == NULL)
		out.auth_user = ((const struct sc_auth_request *)ch->arg)->user;
	out.route_kind = ch->route_kind;
	out.route_nexthop = ch->route_nexthop;
	out.expand_count = ch->nexpand;
	out.expand = (const char *const *)ch->expand;
	if (ch->done != NULL)
		ch->done(ch->s, &out, ch->cbarg);
	chain_free(ch);
}

/* scripted - the verdict of "the other modules": a script byte picks the
 * result, whether it comes now or later, and whether it has a reply (a
 * text with % in it, which must never reach a format string) */
static void
chain_scripted(struct chain *ch)
{
	static const enum sc_result results[8] = { SC_CONT, SC_OK, SC_DENY,
		SC_DENYSOFT, SC_OK, SC_CONT, SC_DENYDISCONNECT,
		SC_DENYSOFTDISCONNECT };
	uint8_t d = shim_byte();
	struct sc_hook_call *call = xcalloc(1, sizeof(*call));
	enum sc_result r = results[d & 7];

	call->chain = ch;
	call->scripted = true;
	if (d & 16) {
		int code = r == SC_OK || r == SC_CONT ? 250 :
			   r == SC_DENYSOFT ? (d & 32 ? 421 : 450) :
			   r == SC_DENYSOFTDISCONNECT ? 421 : 550;

		call->code = code;
		snprintf(call->esc, sizeof(call->esc), "%d.7.%d", code / 100,
			 d >> 6);
		call->text = xstrdup("scripted %s%n reply");
	}
	if (ch->hook == SC_HOOK_AUTH && r == SC_OK && (d & 32))
		call->auth_user = xstrdup("canonical@example.test");
	if (d & 8) {
		struct ev *e = ev_add(EV_HOOK_DONE);

		call->pending = true;
		ch->cur = call;
		e->call = call;
		e->result = r;
		return;
	}
	chain_finish(ch, call, r);
	call_free(call);
}

/* chain_step - runs registered callbacks from ch->next on until one
 * decides or goes PENDING; then the scripted verdict, if on */
static void
chain_step(struct chain *ch)
{
	while (ch->next < shim.nhooks) {
		struct hook_reg *h = &shim.hooks[ch->next++];
		struct sc_hook_call *call;
		enum sc_result r;

		if (h->hook != ch->hook)
			continue;
		call = xcalloc(1, sizeof(*call));
		call->chain = ch;
		ch->cur = call;
		r = h->fn(call, h->data);
		if (r == SC_PENDING) {
			call->pending = true;
			return;
		}
		ch->cur = NULL;
		if (r != SC_CONT) {
			chain_finish(ch, call, r);
			call_free(call);
			return;
		}
		call_free(call);
	}
	if (shim.script_hooks) {
		chain_scripted(ch);
		return;
	}
	chain_finish(ch, NULL, SC_CONT);
}

int
sc_hook_run(struct sc_session *s, enum sc_hook hook, const void *arg,
	    sc_hook_done_fn done, void *cbarg)
{
	struct chain *ch;

	FUZZ_CHECK(hook < SC_HOOK_COUNT, "hook %d", hook);
	FUZZ_CHECK(s == NULL || !s->closing, "a hook run on a closed session");
	check_arg(hook, arg);
	if (hook == SC_HOOK_MAIL && s != NULL)
		s->mail_ok = false;	/* until this chain says yes */
	/* now and then the core is out of memory */
	if (shim.script_hooks && shim.script_pos < shim.script_len &&
	    shim.script[shim.script_pos] == 0xff) {
		shim.script_pos++;
		return -1;
	}
	ch = xcalloc(1, sizeof(*ch));
	ch->s = s;
	ch->hook = hook;
	ch->arg = arg;
	ch->done = done;
	ch->cbarg = cbarg;
	ch->link = shim.chains;
	shim.chains = ch;
	chain_step(ch);
	return 0;
}

void
sc_hook_done(struct sc_hook_call *call, enum sc_result result)
{
	struct chain *ch = call->chain;

	FUZZ_CHECK(call->pending, "sc_hook_done for a call that did not "
		   "return SC_PENDING");
	FUZZ_CHECK(!call->done, "sc_hook_done called twice");
	FUZZ_CHECK(result != SC_PENDING, "sc_hook_done with SC_PENDING");
	call->done = true;
	ch->cur = NULL;
	if (ch->cancelled) {
		call_free(call);
		chain_free(ch);
		return;
	}
	if (result == SC_CONT) {
		call_free(call);
		chain_step(ch);
		return;
	}
	chain_finish(ch, call, result);
	call_free(call);
}

bool
sc_hook_cancelled(struct sc_hook_call *call)
{
	return call->chain->cancelled;
}

struct sc_session *
sc_hook_session(struct sc_hook_call *call)
{
	return call->chain->cancelled ? NULL : call->chain->s;
}

const void *
sc_hook_arg(struct sc_hook_call *call)
{
	return call->chain->cancelled ? NULL : call->chain->arg;
}

enum sc_hook
sc_hook_which(struct sc_hook_call *call)
{
	return call->chain->hook;
}

void
sc_reply_set(struct sc_hook_call *call, int code, const char *esc,
	     const char *fmt, ...)
{
	va_list ap;
	char *text = NULL;

	if (call->chain->cancelled || code < 200 || code > 599)
		return;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		abort();
	va_end(ap);
	for (char *p = text; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	free(call->text);
	call->text = text;
	call->code = code;
	snprintf(call->esc, sizeof(call->esc), "%s", esc ? esc : "");
}

void
sc_route_set(struct sc_hook_call *call, const char *kind, const char *nexthop)
{
	struct chain *ch = call->chain;

	FUZZ_CHECK(ch->hook == SC_HOOK_ROUTE, "sc_route_set outside ROUTE");
	free(ch->route_kind);
	free(ch->route_nexthop);
	ch->route_kind = xstrdup(kind);
	ch->route_nexthop = nexthop ? xstrdup(nexthop) : NULL;
}

void
sc_route_expand(struct sc_hook_call *call, const char *address)
{
	struct chain *ch = call->chain;

	FUZZ_CHECK(ch->hook == SC_HOOK_ROUTE, "sc_route_expand outside "
		   "ROUTE");
	ch->expand = realloc(ch->expand, (ch->nexpand + 1) *
			     sizeof(*ch->expand));
	if (ch->expand == NULL)
		abort();
	ch->expand[ch->nexpand++] = xstrdup(address);
}

void
sc_auth_set_user(struct sc_hook_call *call, const char *user)
{
	FUZZ_CHECK(call->chain->hook == SC_HOOK_AUTH,
		   "sc_auth_set_user outside AUTH");
	free(call->auth_user);
	call->auth_user = xstrdup(user);
}

struct chain_result {
	bool done;
	enum sc_result r;
};

static void
chain_result_done(struct sc_session *s, const struct sc_hook_outcome *out,
		  void *arg)
{
	struct chain_result *cr = arg;

	(void)s;
	cr->done = true;
	cr->r = out->result;
}

enum sc_result
shim_run_chain(enum sc_hook hook, const void *arg)
{
	struct chain_result cr = { false, SC_CONT };

	FUZZ_CHECK(sc_hook_run(NULL, hook, arg, chain_result_done, &cr) == 0,
		   "sc_hook_run failed");
	if (!cr.done)
		shim_run(false);
	FUZZ_CHECK(cr.done, "a %s chain never finished", sc_hook_name(hook));
	return cr.r;
}

