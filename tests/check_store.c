/* SPDX-License-Identifier: MIT */
/*
 * tests/check_store.c - Check tests of the shared store (core/store.c,
 * core/store_redis.c, satchel/store.h) against a real redis-server that
 * each test starts on a loopback port (run inside the tests' network
 * namespace by tests/check_store.sh): URLs, every operation and its
 * answer, cancellation, the timeout of a hung store, a store that is down
 * and comes back, a password, and the daemon stopping with operations in
 * flight. Loop thread only.
 */
#include "store_int.h"

#include <check.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REDIS_SERVER "/usr/bin/redis-server"

static struct {
	struct sc_core core;
	pid_t redis;
	unsigned port;
	char url[64];
	char dir[64];
} t;

/* One answer, recorded by on_answer. */
struct got {
	bool done;
	unsigned calls;
	struct sc_store_result res;
	char data[256];
	char error[200];
};

static void
on_answer(const struct sc_store_result *res, void *arg)
{
	struct got *g = arg;

	g->done = true;
	g->calls++;
	g->res = *res;
	g->res.data = NULL;
	g->res.error = NULL;
	if (res->data != NULL)
		snprintf(g->data, sizeof(g->data), "%.*s", (int)res->len,
			 res->data);
	if (res->error != NULL)
		snprintf(g->error, sizeof(g->error), "%s", res->error);
}

/* run_until - turns the loop until *flag or ms passed; the time taken */
static uint64_t
run_until(const bool *flag, uint64_t ms)
{
	uint64_t t0 = sc_now_ms();

	while ((flag == NULL || !*flag) && sc_now_ms() - t0 < ms) {
		uv_run(t.core.loop, UV_RUN_NOWAIT);
		usleep(1000);
		uv_update_time(t.core.loop);
	}
	return sc_now_ms() - t0;
}

static unsigned
free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

/* redis_ping - whether the server answers PING (blocking, test side) */
static bool
redis_ping(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char buf[16] = "";
	bool ok = false;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)t.port);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, "PING\r\n", 6) == 6 && read(fd, buf, 7) > 0)
		ok = strncmp(buf, "+PONG", 5) == 0;
	close(fd);
	return ok;
}

/* redis_start - starts redis-server on t.port (extra: one more option
 * and its value); waits until it answers PING, or a moment when PING
 * needs a password */
static void
redis_start_with(const char *extra1, const char *extra2, bool ping)
{
	char port[16];

	snprintf(port, sizeof(port), "%u", t.port);
	t.redis = fork();
	ck_assert_int_ge(t.redis, 0);
	if (t.redis == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execl(REDIS_SERVER, REDIS_SERVER, "--bind", "127.0.0.1",
		      "--port", port, "--save", "", "--appendonly", "no",
		      "--dir", t.dir, extra1 != NULL ? extra1 : "--daemonize",
		      extra2 != NULL ? extra2 : "no", (char *)NULL);
		_exit(127);
	}
	if (!ping) {
		usleep(300000);
		return;
	}
	for (int i = 0; i < 200 && !redis_ping(); i++)
		usleep(25000);
	ck_assert_msg(redis_ping(), "redis-server does not answer");
}

static void
redis_start(const char *extra1, const char *extra2)
{
	redis_start_with(extra1, extra2, true);
}

static void
redis_stop(void)
{
	if (t.redis <= 0)
		return;
	kill(t.redis, SIGCONT);
	kill(t.redis, SIGTERM);
	waitpid(t.redis, NULL, 0);
	t.redis = 0;
}

static void
setup(void)
{
	memset(&t, 0, sizeof(t));
	t.core.loop = uv_default_loop();
	sc_core = &t.core;
	ck_assert_msg(access(REDIS_SERVER, X_OK) == 0, "%s missing: install "
		      "the Debian package redis-server", REDIS_SERVER);
	snprintf(t.dir, sizeof(t.dir), "/tmp/check_store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t.dir));
	t.port = free_port();
	snprintf(t.url, sizeof(t.url), "redis://127.0.0.1:%u/2", t.port);
}

static void
teardown(void)
{
	sc_store_stop();
	run_until(NULL, 20);
	ck_assert_ptr_null(t.core.stores);	/* nothing left behind */
	redis_stop();
	rmdir(t.dir);
	sc_core = NULL;
}

/* op_wait - waits for g (at most 3 s) */
static void
op_wait(struct got *g)
{
	run_until(&g->done, 3000);
	ck_assert_msg(g->done, "no answer");
	ck_assert_uint_eq(g->calls, 1);
}

/* wait_up - the connection is up within 5 s (a slow, sanitized build
 * takes longer than a short operation timeout to connect) */
static void
wait_up(const struct sc_store *st)
{
	for (int i = 0; i < 500 && !sc_store_up(st); i++)
		run_until(NULL, 10);
	ck_assert(sc_store_up(st));
}

START_TEST(test_urls)
{
	static const struct {
		const char *url, *norm;
	} good[] = {
		{ "redis://127.0.0.1", "redis://127.0.0.1:6379/0" },
		{ "redis://127.0.0.1:7000/3", "redis://127.0.0.1:7000/3" },
		{ "redis://redis.example.test/", "redis://redis.example.test:6379/0" },
		{ "redis://[::1]:7000/2", "redis://[::1]:7000/2" },
		{ "unix:/run/redis/redis.sock", "unix:/run/redis/redis.sock" },
		{ "unix:/run/r.sock?db=4", "unix:/run/r.sock?db=4" },
	};
	static const char *const bad[] = {
		"", "http://127.0.0.1", "redis://", "redis://:6379",
		"redis://h:0", "redis://h:65536", "redis://h:x", "redis://h/x",
		"redis://h:1/2/3", "redis://[::1", "redis://a b",
		"redis://user:secret@h", "unix:relative.sock",
		"unix:/r.sock?database=1",
	};
	struct store_url u;
	const char *err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		err = NULL;
		ck_assert_msg(store_url_parse(good[i].url, &u, &err) == 0,
			      "%s: %s", good[i].url, err);
		ck_assert_str_eq(u.text, good[i].norm);
		ck_assert_int_eq(sc_store_url_check(good[i].url, &err), 0);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		ck_assert_msg(sc_store_url_check(bad[i], &err) == -1, "%s",
			      bad[i]);
		ck_assert_ptr_nonnull(err);
	}
	ck_assert_int_eq(sc_store_url_check("redis://u:pw@h", &err), -1);
	ck_assert_ptr_nonnull(strstr(err, "store_password_file"));
}
END_TEST

START_TEST(test_operations)
{
	struct sc_store *st;
	const char *err = NULL;
	struct got g[12];

	redis_start(NULL, NULL);
	memset(g, 0, sizeof(g));
	st = sc_store_open(NULL, t.url, NULL, 3000, &err);
	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_str_eq(sc_store_url(st), t.url);
	/* pipelined before the connection is up: they wait for it */
	ck_assert_int_eq(sc_store_incr(st, "k:n", 60000, on_answer, &g[0],
				       NULL), 0);
	ck_assert_int_eq(sc_store_incr(st, "k:n", 60000, on_answer, &g[1],
				       NULL), 0);
	ck_assert_int_eq(sc_store_get(st, "k:none", on_answer, &g[2], NULL),
			 0);
	ck_assert_int_eq(sc_store_set(st, "k:v", "hello", 5, 60000, on_answer,
				      &g[3], NULL), 0);
	ck_assert_int_eq(sc_store_get(st, "k:v", on_answer, &g[4], NULL), 0);
	ck_assert_int_eq(sc_store_del(st, "k:v", on_answer, &g[5], NULL), 0);
	ck_assert_int_eq(sc_store_lease_take(st, "k:l", "h1", 2, 60000,
					     on_answer, &g[6], NULL), 0);
	ck_assert_int_eq(sc_store_lease_take(st, "k:l", "h2", 2, 60000,
					     on_answer, &g[7], NULL), 0);
	ck_assert_int_eq(sc_store_lease_take(st, "k:l", "h3", 2, 60000,
					     on_answer, &g[8], NULL), 0);
	ck_assert_int_eq(sc_store_lease_renew(st, "k:l", "h1", 60000,
					      on_answer, &g[9], NULL), 0);
	ck_assert_int_eq(sc_store_lease_drop(st, "k:l", "h1", on_answer,
					     &g[10], NULL), 0);
	ck_assert_int_eq(sc_store_lease_renew(st, "k:l", "h1", 60000,
					      on_answer, &g[11], NULL), 0);
	/* never from inside the call */
	ck_assert(!g[0].done);
	op_wait(&g[11]);
	for (int i = 0; i < 12; i++)
		ck_assert_msg(g[i].done && g[i].calls == 1, "op %d", i);
	ck_assert(sc_store_up(st));
	ck_assert_int_eq(g[0].res.status, SC_STORE_OK);
	ck_assert_int_eq(g[0].res.value, 1);
	ck_assert_int_eq(g[1].res.value, 2);
	ck_assert_int_eq(g[2].res.status, SC_STORE_MISSING);
	ck_assert_int_eq(g[3].res.status, SC_STORE_OK);
	ck_assert_int_eq(g[4].res.status, SC_STORE_OK);
	ck_assert_str_eq(g[4].data, "hello");
	ck_assert_int_eq(g[4].res.len, 5);
	ck_assert_int_eq(g[5].res.value, 1);
	ck_assert_int_eq(g[6].res.status, SC_STORE_OK);
	ck_assert_int_eq(g[6].res.value, 1);
	ck_assert_int_eq(g[7].res.value, 2);
	ck_assert_int_eq(g[8].res.status, SC_STORE_LIMIT);
	ck_assert_int_eq(g[8].res.value, 2);
	ck_assert_int_eq(g[9].res.status, SC_STORE_OK);
	ck_assert_int_eq(g[10].res.value, 1);
	ck_assert_int_eq(g[11].res.status, SC_STORE_MISSING);
	/* bad arguments: refused at once, fn never runs */
	memset(g, 0, sizeof(g));
	ck_assert_int_eq(sc_store_get(st, "", on_answer, &g[0], NULL), -1);
	ck_assert_int_eq(sc_store_lease_take(st, "k", "h", 1, 0, on_answer,
					     &g[0], NULL), -1);
	run_until(NULL, 50);
	ck_assert(!g[0].done);
	sc_store_close(&st);
	ck_assert_ptr_null(st);
}
END_TEST

START_TEST(test_cancel_and_close)
{
	struct sc_store *st;
	struct sc_store_op *op = NULL;
	const char *err = NULL;
	struct got a = { 0 }, b = { 0 }, c = { 0 };

	redis_start(NULL, NULL);
	st = sc_store_open(NULL, t.url, NULL, 500, &err);
	ck_assert_ptr_nonnull(st);
	wait_up(st);
	ck_assert_int_eq(sc_store_incr(st, "k:c", 0, on_answer, &a, &op), 0);
	ck_assert_ptr_nonnull(op);
	sc_store_cancel(op);
	ck_assert_int_eq(sc_store_incr(st, "k:c", 0, on_answer, &b, NULL), 0);
	op_wait(&b);
	run_until(NULL, 100);
	ck_assert(!a.done);	/* cancelled: never called */
	ck_assert_int_eq(b.res.value, 2);	/* the store still did it */
	/* closing a handle cancels what it has in flight */
	ck_assert_int_eq(sc_store_get(st, "k:c", on_answer, &c, NULL), 0);
	sc_store_close(&st);
	run_until(NULL, 200);
	ck_assert(!c.done);
}
END_TEST

START_TEST(test_hung_store_times_out)
{
	struct sc_store *st;
	const char *err = NULL;
	struct got a = { 0 }, b = { 0 };
	uint64_t took;

	redis_start(NULL, NULL);
	st = sc_store_open(NULL, t.url, NULL, 150, &err);
	wait_up(st);
	ck_assert_int_eq(sc_store_get(st, "k", on_answer, &a, NULL), 0);
	op_wait(&a);
	ck_assert_int_eq(a.res.status, SC_STORE_MISSING);
	kill(t.redis, SIGSTOP);		/* accepts, answers nothing */
	ck_assert_int_eq(sc_store_get(st, "k", on_answer, &b, NULL), 0);
	took = run_until(&b.done, 3000);
	ck_assert(b.done);
	ck_assert_int_eq(b.res.status, SC_STORE_FAIL);
	ck_assert_msg(strstr(b.error, "timed out after 150 ms") != NULL, "%s",
		      b.error);
	ck_assert_uint_ge(took, 140);
	ck_assert_uint_lt(took, 1500);
	/* the hung connection is dropped (no answer for 1 s) and replaced
	 * once the store answers again */
	kill(t.redis, SIGCONT);
	for (int i = 0; i < 50; i++) {
		struct got c = { 0 };

		ck_assert_int_eq(sc_store_get(st, "k", on_answer, &c, NULL),
				 0);
		op_wait(&c);
		if (c.res.status == SC_STORE_MISSING)
			break;
		ck_assert_int_lt(i, 49);
		run_until(NULL, 100);
	}
	sc_store_close(&st);
}
END_TEST

START_TEST(test_down_and_back)
{
	struct sc_store *st;
	const char *err = NULL;
	struct got a = { 0 };
	uint64_t took;
	int i;

	/* nobody listens yet: a failure, at once or within the timeout */
	st = sc_store_open(NULL, t.url, NULL, 300, &err);
	ck_assert_ptr_nonnull(st);
	run_until(NULL, 50);
	ck_assert_int_eq(sc_store_incr(st, "k", 0, on_answer, &a, NULL), 0);
	took = run_until(&a.done, 3000);
	ck_assert_int_eq(a.res.status, SC_STORE_FAIL);
	ck_assert_uint_lt(took, 1000);
	ck_assert(!sc_store_up(st));
	/* the store starts: the connection comes up with backoff */
	redis_start(NULL, NULL);
	for (i = 0; i < 100; i++) {
		struct got b = { 0 };

		ck_assert_int_eq(sc_store_incr(st, "k", 0, on_answer, &b,
					       NULL), 0);
		op_wait(&b);
		if (b.res.status == SC_STORE_OK)
			break;
		run_until(NULL, 100);
	}
	ck_assert_int_lt(i, 100);
	ck_assert(sc_store_up(st));
	/* it dies with an operation in flight */
	redis_stop();
	memset(&a, 0, sizeof(a));
	ck_assert_int_eq(sc_store_incr(st, "k", 0, on_answer, &a, NULL), 0);
	op_wait(&a);
	ck_assert_int_eq(a.res.status, SC_STORE_FAIL);
	sc_store_close(&st);
}
END_TEST

START_TEST(test_password)
{
	struct sc_store *st, *bad;
	const char *err = NULL;
	char pwfile[128], badfile[128];
	struct got a = { 0 }, b = { 0 };
	FILE *f;

	redis_start_with("--requirepass", "s3cret-store", false);
	snprintf(pwfile, sizeof(pwfile), "%s/pw", t.dir);
	snprintf(badfile, sizeof(badfile), "%s/bad", t.dir);
	f = fopen(pwfile, "w");
	fputs("s3cret-store\n", f);
	fclose(f);
	f = fopen(badfile, "w");
	fputs("wrong\n", f);
	fclose(f);
	chmod(pwfile, 0600);
	chmod(badfile, 0600);
	ck_assert_ptr_null(sc_store_open(NULL, t.url, "/nonexistent/pw", 500,
					 &err));
	ck_assert_str_eq(err, "store_password_file: cannot read it");
	st = sc_store_open(NULL, t.url, pwfile, 500, &err);
	bad = sc_store_open(NULL, t.url, badfile, 500, &err);
	ck_assert_ptr_nonnull(st);
	ck_assert_ptr_nonnull(bad);
	wait_up(st);
	ck_assert_int_eq(sc_store_incr(st, "k", 0, on_answer, &a, NULL), 0);
	ck_assert_int_eq(sc_store_incr(bad, "k", 0, on_answer, &b, NULL), 0);
	op_wait(&a);
	op_wait(&b);
	ck_assert_int_eq(a.res.status, SC_STORE_OK);
	ck_assert_int_eq(b.res.status, SC_STORE_FAIL);
	ck_assert(sc_store_up(st));
	ck_assert(!sc_store_up(bad));
	sc_store_close(&st);
	sc_store_close(&bad);
	unlink(pwfile);
	unlink(badfile);
}
END_TEST

/* unix:/PATH?db=N: the socket, and the database selected */
START_TEST(test_unix_socket)
{
	struct sc_store *st, *tcp;
	const char *err = NULL;
	char sock[128], url[160];
	struct got a = { 0 }, b = { 0 };

	snprintf(sock, sizeof(sock), "%s/redis.sock", t.dir);
	snprintf(url, sizeof(url), "unix:%s?db=2", sock);
	redis_start("--unixsocket", sock);
	st = sc_store_open(NULL, url, NULL, 3000, &err);
	ck_assert_msg(st != NULL, "%s", err);
	ck_assert_str_eq(sc_store_url(st), url);
	ck_assert_int_eq(sc_store_set(st, "k:u", "via-unix", 8, 60000, NULL,
				      NULL, NULL), 0);
	/* the same database (2) over TCP sees it */
	tcp = sc_store_open(NULL, t.url, NULL, 3000, &err);
	wait_up(st);
	wait_up(tcp);
	ck_assert_int_eq(sc_store_get(tcp, "k:u", on_answer, &a, NULL), 0);
	op_wait(&a);
	ck_assert_int_eq(a.res.status, SC_STORE_OK);
	ck_assert_str_eq(a.data, "via-unix");
	sc_store_close(&tcp);
	ck_assert_int_eq(sc_store_get(st, "k:u", on_answer, &b, NULL), 0);
	op_wait(&b);
	ck_assert_str_eq(b.data, "via-unix");
	sc_store_close(&st);
	unlink(sock);
}
END_TEST

START_TEST(test_stop_answers_everything)
{
	struct sc_store *st;
	const char *err = NULL;
	struct got a = { 0 }, b = { 0 };

	redis_start(NULL, NULL);
	st = sc_store_open(NULL, t.url, NULL, 5000, &err);
	wait_up(st);
	kill(t.redis, SIGSTOP);
	ck_assert_int_eq(sc_store_get(st, "k", on_answer, &a, NULL), 0);
	run_until(NULL, 50);
	sc_store_stop();	/* the daemon stops: no 5 s wait */
	ck_assert(a.done);
	ck_assert_int_eq(a.res.status, SC_STORE_FAIL);
	ck_assert_msg(strstr(a.error, "stops") != NULL, "%s", a.error);
	/* and nothing new starts */
	ck_assert_int_eq(sc_store_get(st, "k", on_answer, &b, NULL), -1);
	sc_store_close(&st);
}
END_TEST

static Suite *
store_suite(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("redis");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_urls);
	tcase_add_test(tc, test_operations);
	tcase_add_test(tc, test_cancel_and_close);
	tcase_add_test(tc, test_hung_store_times_out);
	tcase_add_test(tc, test_down_and_back);
	tcase_add_test(tc, test_password);
	tcase_add_test(tc, test_unix_socket);
	tcase_add_test(tc, test_stop_answers_everything);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(store_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
