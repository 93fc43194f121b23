/* SPDX-License-Identifier: MIT */
/*
 * tests/check_hook.c - Check suite for hook chains (core/hook.c) and the
 * session/event plumbing they rely on: ordering, phases, every result
 * code, reply checks, async completion, double completion, timeouts,
 * cancellation.
 * Runs a real libuv loop on the test's thread; no modules are loaded: the
 * test builds a generation by hand and registers its own callbacks.
 */
#include "core.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NINST 3

/* A test instance's behaviour, set per test. */
struct fake {
	char name;			/* 'a', 'b', 'c' in the trace     */
	enum sc_result result;		/* what the callback returns      */
	int code;			/* reply to set, 0 = none         */
	const char *esc, *text;
	bool complete_early;		/* sc_hook_done before returning   */
	enum sc_result later;		/* PENDING: complete with this     */
	uint64_t later_ms;		/* ... after this long (0 = never) */
	int done_twice;			/* complete again after n ms       */
	struct sc_hook_call *call;	/* the pending call                */
};

static struct {
	struct sc_core core;
	struct sc_gen gen;
	struct sc_instance insts[NINST];
	struct sc_inst_conf confs[NINST];
	struct fake fakes[NINST];
	char trace[64];
	int done_calls;
	struct sc_hook_outcome out;	/* copied in the done callback     */
	char out_text[256];
	char out_instance[64];
	int events;
} t;

static void
trace_add(char c)
{
	size_t n = strlen(t.trace);

	if (n + 1 < sizeof(t.trace)) {
		t.trace[n] = c;
		t.trace[n + 1] = '\0';
	}
}

static void
complete_later(struct sc_timer *timer, void *arg)
{
	struct fake *f = arg;

	sc_timer_free(&timer);
	sc_hook_done(f->call, f->later);
	if (f->done_twice)
		sc_hook_done(f->call, SC_DENY);	/* must be ignored */
}

static enum sc_result
fake_cb(struct sc_hook_call *call, void *data)
{
	struct fake *f = data;

	trace_add(f->name);
	ck_assert_int_eq(sc_hook_which(call), SC_HOOK_RCPT);
	if (f->code != 0)
		sc_reply_set(call, f->code, f->esc, "%s", f->text);
	if (f->complete_early) {
		sc_hook_done(call, f->later);
		return SC_PENDING;
	}
	if (f->result == SC_PENDING) {
		f->call = call;
		if (f->later_ms > 0) {
			struct sc_timer *tm = sc_timer_new(complete_later, f);
			ck_assert_ptr_nonnull(tm);
			sc_timer_start(tm, f->later_ms, 0);
		}
	}
	return f->result;
}

static void
done_cb(struct sc_session *s, const struct sc_hook_outcome *out, void *arg)
{
	(void)s;
	ck_assert_ptr_eq(arg, &t);
	t.done_calls++;
	t.out = *out;
	snprintf(t.out_text, sizeof(t.out_text), "%s",
		 out->reply.text ? out->reply.text : "(null)");
	snprintf(t.out_instance, sizeof(t.out_instance), "%s",
		 out->instance ? out->instance : "(none)");
}

static void
on_event(const struct sc_event *ev, void *data)
{
	(void)data;
	if (ev->type == SC_EVENT_DISCONNECT)
		t.events++;
}

static void
setup(void)
{
	memset(&t, 0, sizeof(t));
	t.core.loop = uv_default_loop();
	sc_core = &t.core;
	/* A generation that is never released by refcount: it is not the
	 * loader's, so the test frees its arrays itself. */
	t.gen.refcount = 1000;
	t.gen.serial = 1;
	t.gen.inst_count = NINST;
	t.gen.insts = t.insts;
	t.core.gen = &t.gen;
	for (int i = 0; i < NINST; i++) {
		static char *names[NINST] = { "10-a", "20-b", "30-c" };
		t.confs[i].name = names[i];
		t.confs[i].module = "fake";
		t.confs[i].file = "plugins.d/fake.yaml";
		t.confs[i].enabled = true;
		t.insts[i].gen = &t.gen;
		t.insts[i].conf = &t.confs[i];
		t.insts[i].slot = (size_t)i;
		t.fakes[i].name = (char)('a' + i);
		t.fakes[i].result = SC_CONT;
		ck_assert_int_eq(sc_hook_register(&t.insts[i], SC_HOOK_RCPT,
						  fake_cb, &t.fakes[i]), 0);
	}
	ck_assert_int_eq(sc_event_subscribe(&t.insts[0], SC_EVENT_DISCONNECT,
					    on_event, NULL), 0);
}

static void
teardown(void)
{
	/* let deferred frees and closes happen */
	for (int i = 0; i < 10; i++)
		uv_run(t.core.loop, UV_RUN_NOWAIT);
	for (int h = 0; h < SC_HOOK_COUNT; h++)
		free(t.gen.hooks[h]);
	for (int e = 0; e < SC_EVENT_COUNT; e++)
		free(t.gen.events[e]);
	sc_core = NULL;
}

/* run_loop - until the done callback ran or ms passed */
static void
run_loop(uint64_t ms)
{
	uint64_t end = uv_now(t.core.loop) + ms;

	while (uv_now(t.core.loop) < end) {
		uv_run(t.core.loop, UV_RUN_ONCE);
		uv_update_time(t.core.loop);
	}
}

/* keepalive - a timer so UV_RUN_ONCE never returns at once for lack of
 * handles while the test waits */
static void
noop(struct sc_timer *tm, void *arg)
{
	(void)tm;
	(void)arg;
}

static struct sc_timer *
keepalive(void)
{
	struct sc_timer *tm = sc_timer_new(noop, NULL);

	sc_timer_start(tm, 5, 5);
	return tm;
}

static int
run_chain(struct sc_session *s)
{
	static const struct sc_rcpt_request req = {
		.address = "alice@example.test", .local_part = "alice",
		.domain = "example.test", .params = "", .mail_from = "",
	};
	return sc_hook_run(s, SC_HOOK_RCPT, &req, done_cb, &t);
}

START_TEST(test_order_all_cont)
{
	ck_assert_int_eq(run_chain(NULL), 0);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_str_eq(t.trace, "abc");
	ck_assert_int_eq(t.out.result, SC_CONT);
	ck_assert_int_eq(t.out.reply.code, 0);
	ck_assert_ptr_null(t.out.reply.text);
	ck_assert_ptr_null(t.out.instance);
}
END_TEST

/* Every final result from the middle callback ends the chain there, with
 * the default reply for its class. */
static const struct {
	enum sc_result r;
	int code;
	const char *esc;
} result_table[] = {
	{ SC_OK, 0, "" },
	{ SC_DENY, 550, "5.7.1" },
	{ SC_DENYSOFT, 451, "4.7.1" },
	{ SC_DENYDISCONNECT, 554, "5.7.1" },
	{ SC_DENYSOFTDISCONNECT, 421, "4.7.0" },
};

START_TEST(test_result_codes)
{
	t.fakes[1].result = result_table[_i].r;
	ck_assert_int_eq(run_chain(NULL), 0);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_str_eq(t.trace, "ab");
	ck_assert_int_eq(t.out.result, result_table[_i].r);
	ck_assert_int_eq(t.out.reply.code, result_table[_i].code);
	ck_assert_str_eq(t.out.reply.esc, result_table[_i].esc);
	ck_assert_str_eq(t.out_instance, "20-b");
}
END_TEST

START_TEST(test_reply_set)
{
	t.fakes[0].result = SC_DENY;
	t.fakes[0].code = 550;
	t.fakes[0].esc = "5.1.1";
	t.fakes[0].text = "<alice@example.test>: no such user here";
	run_chain(NULL);
	ck_assert_int_eq(t.out.result, SC_DENY);
	ck_assert_int_eq(t.out.reply.code, 550);
	ck_assert_str_eq(t.out.reply.esc, "5.1.1");
	ck_assert_str_eq(t.out_text, "<alice@example.test>: no such user here");
	ck_assert_str_eq(t.trace, "a");
}
END_TEST

START_TEST(test_reply_class_mismatch)
{
	/* DENY with a 4xx reply: logged, the default 5xx reply is used */
	t.fakes[0].result = SC_DENY;
	t.fakes[0].code = 451;
	t.fakes[0].esc = "4.7.1";
	t.fakes[0].text = "later";
	run_chain(NULL);
	ck_assert_int_eq(t.out.result, SC_DENY);
	ck_assert_int_eq(t.out.reply.code, 550);
	ck_assert_str_eq(t.out.reply.esc, "5.7.1");
}
END_TEST

START_TEST(test_421_disconnects)
{
	t.fakes[2].result = SC_DENYSOFT;
	t.fakes[2].code = 421;
	t.fakes[2].esc = "4.7.0";
	t.fakes[2].text = "Too many connections from 127.0.0.1; please try "
		"again later";
	run_chain(NULL);
	ck_assert_int_eq(t.out.result, SC_DENYSOFTDISCONNECT);
	ck_assert_int_eq(t.out.reply.code, 421);
	ck_assert_str_eq(t.out_text, t.fakes[2].text);
	ck_assert_str_eq(t.trace, "abc");
}
END_TEST

START_TEST(test_cont_reply_ignored)
{
	/* a reply set by a callback that passes does not leak into the
	 * outcome of the chain */
	t.fakes[0].code = 250;
	t.fakes[0].text = "fine";
	run_chain(NULL);
	ck_assert_int_eq(t.out.result, SC_CONT);
	ck_assert_int_eq(t.out.reply.code, 0);
}
END_TEST

START_TEST(test_async_ok)
{
	struct sc_timer *ka = keepalive();

	t.fakes[1].result = SC_PENDING;
	t.fakes[1].later = SC_OK;
	t.fakes[1].later_ms = 20;
	run_chain(NULL);
	ck_assert_int_eq(t.done_calls, 0);	/* still pending */
	ck_assert_str_eq(t.trace, "ab");
	run_loop(100);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_int_eq(t.out.result, SC_OK);
	ck_assert_str_eq(t.trace, "ab");
	ck_assert_str_eq(t.out_instance, "20-b");
	sc_timer_free(&ka);
}
END_TEST

START_TEST(test_async_cont_continues)
{
	struct sc_timer *ka = keepalive();

	t.fakes[0].result = SC_PENDING;
	t.fakes[0].later = SC_CONT;
	t.fakes[0].later_ms = 10;
	t.fakes[2].result = SC_DENY;
	run_chain(NULL);
	run_loop(100);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_str_eq(t.trace, "abc");
	ck_assert_int_eq(t.out.result, SC_DENY);
	ck_assert_str_eq(t.out_instance, "30-c");
	sc_timer_free(&ka);
}
END_TEST

START_TEST(test_complete_inside_callback)
{
	t.fakes[0].complete_early = true;
	t.fakes[0].later = SC_OK;
	run_chain(NULL);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_int_eq(t.out.result, SC_OK);
	ck_assert_str_eq(t.trace, "a");
}
END_TEST

START_TEST(test_double_done)
{
	struct sc_timer *ka = keepalive();

	t.fakes[0].result = SC_PENDING;
	t.fakes[0].later = SC_OK;
	t.fakes[0].later_ms = 10;
	t.fakes[0].done_twice = 1;
	run_chain(NULL);
	run_loop(100);
	/* the second completion (DENY) was logged and ignored */
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_int_eq(t.out.result, SC_OK);
	sc_timer_free(&ka);
}
END_TEST

START_TEST(test_timeout)
{
	struct sc_timer *ka = keepalive();

	t.confs[1].hook_timeout_ms = 30;
	t.fakes[1].result = SC_PENDING;
	t.fakes[1].later = SC_OK;
	t.fakes[1].later_ms = 150;	/* far too late */
	run_chain(NULL);
	run_loop(80);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_int_eq(t.out.result, SC_DENYSOFT);
	ck_assert_int_eq(t.out.reply.code, 451);
	ck_assert_str_eq(t.out.reply.esc, "4.4.3");
	ck_assert_str_eq(t.out_instance, "20-b");
	run_loop(150);
	/* the late OK is ignored */
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_int_eq(t.out.result, SC_DENYSOFT);
	ck_assert_str_eq(t.trace, "ab");
	sc_timer_free(&ka);
}
END_TEST

START_TEST(test_cancel_on_close)
{
	struct sc_timer *ka = keepalive();
	struct sc_session *s = sc_session_new(NULL, "smtp", &t.gen);

	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(sc_session_count(), 1);
	t.fakes[0].result = SC_PENDING;
	t.fakes[0].later = SC_OK;
	t.fakes[0].later_ms = 30;
	run_chain(s);
	ck_assert_ptr_eq(sc_hook_session(t.fakes[0].call), s);
	ck_assert(!sc_hook_cancelled(t.fakes[0].call));
	sc_session_close(s);
	ck_assert_uint_eq(sc_session_count(), 0);
	ck_assert_int_eq(t.events, 1);		/* disconnect event */
	ck_assert(sc_hook_cancelled(t.fakes[0].call));
	ck_assert_ptr_null(sc_hook_session(t.fakes[0].call));
	run_loop(100);
	/* the module's completion came, and was ignored */
	ck_assert_int_eq(t.done_calls, 0);
	ck_assert_str_eq(t.trace, "a");
	sc_timer_free(&ka);
}
END_TEST

/* hook_timeout ends the chain; the session then closes; the module's
 * answer comes after both. The call is cancelled from the timeout on, the
 * module gets no session (it would be freed memory), and the completion
 * reads nothing of it - the debug log line included (level raised here so
 * that line really formats; the sanitizer build catches a read). */
START_TEST(test_timeout_then_close)
{
	struct sc_timer *ka = keepalive();
	struct sc_session *s = sc_session_new(NULL, "smtp", &t.gen);
	struct sc_hook_call *call;

	ck_assert_ptr_nonnull(s);
	t.confs[1].hook_timeout_ms = 30;
	t.fakes[1].result = SC_PENDING;
	t.fakes[1].later = SC_OK;
	t.fakes[1].later_ms = 150;
	run_chain(s);
	call = t.fakes[1].call;
	ck_assert_ptr_nonnull(call);
	ck_assert(!sc_hook_cancelled(call));
	ck_assert_ptr_eq(sc_hook_session(call), s);
	run_loop(80);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_int_eq(t.out.result, SC_DENYSOFT);
	ck_assert_str_eq(t.out.reply.esc, "4.4.3");
	/* the chain ended without it: nothing it does counts any more */
	ck_assert(sc_hook_cancelled(call));
	ck_assert_ptr_null(sc_hook_session(call));
	ck_assert_ptr_null(sc_hook_arg(call));
	sc_session_close(s);
	ck_assert_uint_eq(sc_session_count(), 0);
	ck_assert(sc_hook_cancelled(call));
	ck_assert_ptr_null(sc_hook_session(call));
	sc_log_set_level(SC_LOG_DEBUG);
	run_loop(150);
	sc_log_set_level(SC_LOG_WARNING);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_str_eq(t.trace, "ab");
	sc_timer_free(&ka);
}
END_TEST

static void
close_in_done(struct sc_session *s, const struct sc_hook_outcome *out,
	      void *arg)
{
	(void)out;
	(void)arg;
	t.done_calls++;
	sc_session_close(s);
}

START_TEST(test_close_from_done)
{
	struct sc_session *s = sc_session_new(NULL, "smtp", &t.gen);

	t.fakes[0].result = SC_DENYDISCONNECT;
	ck_assert_int_eq(sc_hook_run(s, SC_HOOK_RCPT, NULL, close_in_done,
				     NULL), 0);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_uint_eq(sc_session_count(), 0);
	ck_assert_int_eq(t.events, 1);
}
END_TEST

static void
slot_free(void *p)
{
	(*(int *)p)++;
}

START_TEST(test_session_slots)
{
	struct sc_session *s = sc_session_new(NULL, "pop3", &t.gen);
	int freed_a = 0, freed_b = 0;

	ck_assert_str_eq(sc_session_protocol(s), "pop3");
	ck_assert_uint_eq(strlen(sc_session_id(s)), 8);
	ck_assert_ptr_null(sc_session_get_data(s, &t.insts[1]));
	ck_assert_int_eq(sc_session_set_data(s, &t.insts[1], &freed_a,
					     slot_free), 0);
	ck_assert_ptr_eq(sc_session_get_data(s, &t.insts[1]), &freed_a);
	ck_assert_ptr_null(sc_session_get_data(s, &t.insts[0]));
	/* setting again frees the old value */
	ck_assert_int_eq(sc_session_set_data(s, &t.insts[1], &freed_b,
					     slot_free), 0);
	ck_assert_int_eq(freed_a, 1);
	sc_session_set_auth_user(s, "alice@example.test");
	ck_assert_str_eq(sc_session_auth_user(s), "alice@example.test");
	sc_session_set_helo(s, "client.example");
	ck_assert_str_eq(sc_session_helo(s), "client.example");
	ck_assert(!sc_session_relay_allowed(s));
	sc_session_set_relay_allowed(s, true);
	ck_assert(sc_session_relay_allowed(s));
	/* a busy session survives close_idle */
	sc_session_set_busy(s, true);
	ck_assert_uint_eq(sc_session_close_idle(), 1);
	sc_session_set_busy(s, false);
	ck_assert_uint_eq(sc_session_close_idle(), 0);
	ck_assert_int_eq(freed_b, 1);
	ck_assert_int_eq(freed_a, 1);
}
END_TEST

static enum sc_result
route_cb(struct sc_hook_call *call, void *data)
{
	(void)data;
	ck_assert_ptr_null(sc_hook_session(call));
	sc_route_expand(call, "bob@example.test");
	sc_route_expand(call, "carol@example.test");
	return SC_CONT;		/* expansion ends the chain as OK */
}

START_TEST(test_route_expand)
{
	const struct sc_route_request req = { .rcpt = "team@example.test" };

	ck_assert_int_eq(sc_hook_register(&t.insts[0], SC_HOOK_ROUTE,
					  route_cb, NULL), 0);
	ck_assert_int_eq(sc_hook_run(NULL, SC_HOOK_ROUTE, &req, done_cb, &t),
			 0);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_int_eq(t.out.result, SC_OK);
	/* outcome pointers are valid only in the callback: count only */
	ck_assert_uint_eq(t.out.expand_count, 2);
}
END_TEST

/* ---- phases ---- */

/* pol_setup - two POLICY callbacks, x (instance 30-c) and y (10-a),
 * registered after the NORMAL a, b, c of setup(): they run first, in
 * their own registration order */
static struct fake pol[2];

static void
pol_setup(void)
{
	memset(pol, 0, sizeof(pol));
	pol[0].name = 'x';
	pol[1].name = 'y';
	ck_assert_int_eq(sc_hook_register_phase(&t.insts[2], SC_HOOK_RCPT,
						SC_PHASE_POLICY, fake_cb,
						&pol[0]), 0);
	ck_assert_int_eq(sc_hook_register_phase(&t.insts[0], SC_HOOK_RCPT,
						SC_PHASE_POLICY, fake_cb,
						&pol[1]), 0);
	ck_assert_uint_eq(t.gen.hook_count[SC_HOOK_RCPT], 5);
	ck_assert_uint_eq(t.gen.hook_policy[SC_HOOK_RCPT], 2);
}

START_TEST(test_policy_first)
{
	pol_setup();
	run_chain(NULL);
	ck_assert_str_eq(t.trace, "xyabc");
	ck_assert_int_eq(t.out.result, SC_CONT);
	/* a backend that accepts no longer hides a policy refusal */
	memset(t.trace, 0, sizeof(t.trace));
	t.fakes[0].result = SC_OK;
	pol[1].result = SC_DENYSOFT;
	pol[1].code = 454;
	pol[1].esc = "4.7.0";
	pol[1].text = "locked out";
	run_chain(NULL);
	ck_assert_str_eq(t.trace, "xy");
	ck_assert_int_eq(t.out.result, SC_DENYSOFT);
	ck_assert_int_eq(t.out.reply.code, 454);
	ck_assert_str_eq(t.out_text, "locked out");
	ck_assert_str_eq(t.out_instance, "10-a");
}
END_TEST

/* A policy callback cannot accept: its OK counts as CONT, at once or
 * late, and the backends decide. */
START_TEST(test_policy_cannot_accept)
{
	struct sc_timer *ka = keepalive();

	pol_setup();
	pol[0].result = SC_OK;
	t.fakes[1].result = SC_DENY;
	run_chain(NULL);
	ck_assert_str_eq(t.trace, "xyab");
	ck_assert_int_eq(t.out.result, SC_DENY);
	ck_assert_str_eq(t.out_instance, "20-b");

	memset(t.trace, 0, sizeof(t.trace));
	t.done_calls = 0;
	pol[0].result = SC_PENDING;
	pol[0].later = SC_OK;
	pol[0].later_ms = 10;
	run_chain(NULL);
	ck_assert_int_eq(t.done_calls, 0);
	run_loop(60);
	ck_assert_int_eq(t.done_calls, 1);
	ck_assert_str_eq(t.trace, "xyab");
	ck_assert_int_eq(t.out.result, SC_DENY);
	/* a NORMAL OK still accepts */
	memset(t.trace, 0, sizeof(t.trace));
	pol[0].result = SC_CONT;
	t.fakes[0].result = SC_OK;
	run_chain(NULL);
	ck_assert_str_eq(t.trace, "xya");
	ck_assert_int_eq(t.out.result, SC_OK);
	sc_timer_free(&ka);
}
END_TEST

START_TEST(test_phase_invalid)
{
	ck_assert_int_eq(sc_hook_register_phase(&t.insts[0], SC_HOOK_RCPT,
						(enum sc_hook_phase)7, fake_cb,
						&t.fakes[0]), -1);
	ck_assert_int_eq(sc_hook_register_phase(&t.insts[0], SC_HOOK_COUNT,
						SC_PHASE_POLICY, fake_cb,
						&t.fakes[0]), -1);
	ck_assert_uint_eq(t.gen.hook_count[SC_HOOK_RCPT], NINST);
	ck_assert_uint_eq(t.gen.hook_policy[SC_HOOK_RCPT], 0);
}
END_TEST

START_TEST(test_names)
{
	ck_assert_str_eq(sc_hook_name(SC_HOOK_DATA_POST), "data_post");
	ck_assert_str_eq(sc_hook_name(SC_HOOK_COUNT), "unknown");
	ck_assert_str_eq(sc_result_name(SC_DENYSOFTDISCONNECT),
			 "DENYSOFTDISCONNECT");
	ck_assert_str_eq(sc_event_name(SC_EVENT_AUTH_FAILED), "auth_failed");
}
END_TEST

static Suite *
hook_suite(void)
{
	Suite *s = suite_create("hook");
	TCase *tc = tcase_create("chain");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_order_all_cont);
	tcase_add_loop_test(tc, test_result_codes, 0,
			    sizeof(result_table) / sizeof(result_table[0]));
	tcase_add_test(tc, test_reply_set);
	tcase_add_test(tc, test_reply_class_mismatch);
	tcase_add_test(tc, test_421_disconnects);
	tcase_add_test(tc, test_cont_reply_ignored);
	tcase_add_test(tc, test_async_ok);
	tcase_add_test(tc, test_async_cont_continues);
	tcase_add_test(tc, test_complete_inside_callback);
	tcase_add_test(tc, test_double_done);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_cancel_on_close);
	tcase_add_test(tc, test_timeout_then_close);
	tcase_add_test(tc, test_policy_first);
	tcase_add_test(tc, test_policy_cannot_accept);
	tcase_add_test(tc, test_phase_invalid);
	tcase_add_test(tc, test_close_from_done);
	tcase_add_test(tc, test_session_slots);
	tcase_add_test(tc, test_route_expand);
	tcase_add_test(tc, test_names);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(hook_suite());
	int failed;

	sc_log_init(true, SC_LOG_WARNING);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
