/* SPDX-License-Identifier: MIT */
/*
 * tests/check_work.c - Check tests of the loop primitives in core/work.c:
 * fd watches (read, write, switching interest, freeing from the callback,
 * a peer that hangs up).
 */
#include "core.h"

#include <check.h>
#include <sys/socket.h>
#include <unistd.h>

static struct {
	struct sc_core core;
	int sv[2];
	unsigned calls;
	unsigned last;
	bool free_in_cb;
	struct sc_fd_watch *w;
} t;

static void
setup(void)
{
	memset(&t, 0, sizeof(t));
	t.core.loop = uv_default_loop();
	sc_core = &t.core;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0,
				    t.sv), 0);
}

static void
teardown(void)
{
	sc_fd_watch_free(&t.w);
	for (int i = 0; i < 5; i++)
		uv_run(t.core.loop, UV_RUN_NOWAIT);
	close(t.sv[0]);
	if (t.sv[1] >= 0)
		close(t.sv[1]);
	sc_core = NULL;
}

static void
on_fd(struct sc_fd_watch *w, unsigned events, void *arg)
{
	char buf[16];

	ck_assert_ptr_eq(arg, &t);
	ck_assert_ptr_eq(w, t.w);
	t.calls++;
	t.last = events;
	if (events & SC_FD_READ)
		while (read(t.sv[0], buf, sizeof(buf)) > 0)
			;
	if (t.free_in_cb)
		sc_fd_watch_free(&t.w);
	else
		sc_fd_watch_set(w, 0);	/* one report per round */
}

/* run - a few loop iterations, enough for a ready fd to be reported */
static void
run(void)
{
	for (int i = 0; i < 5; i++)
		uv_run(t.core.loop, UV_RUN_NOWAIT);
}

START_TEST(test_read_write)
{
	t.w = sc_fd_watch_new(t.sv[0], on_fd, &t);
	ck_assert_ptr_nonnull(t.w);
	/* nothing asked for: nothing reported, even with data waiting */
	ck_assert_int_eq(write(t.sv[1], "x", 1), 1);
	run();
	ck_assert_uint_eq(t.calls, 0);
	ck_assert_int_eq(sc_fd_watch_set(t.w, SC_FD_READ), 0);
	ck_assert_uint_eq(sc_fd_watch_events(t.w), SC_FD_READ);
	run();
	ck_assert_uint_eq(t.calls, 1);
	ck_assert_uint_eq(t.last, SC_FD_READ);
	ck_assert_uint_eq(sc_fd_watch_events(t.w), 0);
	/* drained and not asked again: quiet */
	run();
	ck_assert_uint_eq(t.calls, 1);
	/* an empty socket buffer is writable at once */
	ck_assert_int_eq(sc_fd_watch_set(t.w, SC_FD_WRITE), 0);
	run();
	ck_assert_uint_eq(t.calls, 2);
	ck_assert_uint_eq(t.last, SC_FD_WRITE);
}
END_TEST

START_TEST(test_free_in_callback_and_hangup)
{
	t.w = sc_fd_watch_new(t.sv[0], on_fd, &t);
	ck_assert_ptr_nonnull(t.w);
	ck_assert_int_eq(sc_fd_watch_set(t.w, SC_FD_READ), 0);
	/* the peer hangs up: reported as readable (read gives 0) */
	close(t.sv[1]);
	t.sv[1] = -1;
	t.free_in_cb = true;
	run();
	ck_assert_uint_eq(t.calls, 1);
	ck_assert(t.last & SC_FD_READ);
	ck_assert_ptr_null(t.w);
}
END_TEST

START_TEST(test_bad_arguments)
{
	ck_assert_ptr_null(sc_fd_watch_new(-1, on_fd, &t));
	ck_assert_ptr_null(sc_fd_watch_new(t.sv[0], NULL, &t));
	ck_assert_int_eq(sc_fd_watch_set(NULL, SC_FD_READ), -1);
	ck_assert_uint_eq(sc_fd_watch_events(NULL), 0);
	sc_fd_watch_free(NULL);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("work");
	TCase *tc = tcase_create("fd_watch");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_read_write);
	tcase_add_test(tc, test_free_in_callback_and_hangup);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
