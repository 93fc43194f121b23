/* SPDX-License-Identifier: MIT */
/*
 * tests/check_queue.c - Check suite for core/queue.c and the runner
 * (queue_runner.c, queue_dispatch.c, queue_dsn.c):
 * group commit on a real libuv loop, the start-up scan, record appends,
 * the runner with a fake delivery driver (delivered, failed, deferred, the
 * DSN that follows) and the DSN text itself.
 */
#include "core.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define NTX 6

static const char message[] =
	"Received: from a by b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"Subject: test\r\n"
	"received: from c by d; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"X-Not-Received: 1\r\n"
	"\r\n"
	"Received: in the body does not count\r\n";

struct delivered {
	char sender[128];
	char rcpt[128];
	char body[4096];
};

static struct {
	struct sc_core core;
	struct sc_gen gen;
	struct sc_main_config cfg;
	struct sc_domain_conf dom;
	struct sc_driver_entry drv_entry[2];
	/* the fake remote driver keeps its deliveries until released */
	struct sc_delivery *held[32];
	int nheld, released;
	char recs[1024];
	char dir[64];
	int done;
	char ids[NTX][17];
	unsigned batches_at_done[NTX];
	struct delivered got[16];
	int ngot;
	char received[64];
	int records;
	/* the ROUTE hook */
	struct sc_instance route_inst;
	struct sc_hook_entry route_entry;
	int routed;			/* calls completed               */
	int route_bad_args;		/* sc_hook_arg() looked wrong    */
	bool accept_selfsoft;
} t;

static struct sc_delivery_driver driver, remote_driver;

/* hold_deliver - a remote peer that does not answer yet */
static void
hold_deliver(struct sc_delivery *d, void *data)
{
	(void)data;
	ck_assert_int_lt(t.nheld, 32);
	t.held[t.nheld++] = d;
}

/* release_held - the held deliveries succeed now */
static void
release_held(void)
{
	while (t.released < t.nheld) {
		struct sc_delivery *d = t.held[t.released++];

		for (size_t i = 0; i < sc_delivery_rcpt_count(d); i++)
			sc_delivery_rcpt_result(d, i, SC_OK, 250, "2.0.0",
						"ok");
		sc_delivery_done(d);
	}
}

static void
spin_until(bool (*cond)(void), unsigned ms)
{
	uint64_t end;

	uv_update_time(t.core.loop);
	end = uv_now(t.core.loop) + ms;
	while ((cond == NULL || !cond()) && uv_now(t.core.loop) < end) {
		uv_run(t.core.loop, UV_RUN_NOWAIT);
		usleep(1000);
		uv_update_time(t.core.loop);
	}
}

/* fake_deliver - ok@ delivered, bad@ refused, soft@ deferred */
static void
fake_deliver(struct sc_delivery *d, void *data)
{
	(void)data;
	for (size_t i = 0; i < sc_delivery_rcpt_count(d); i++) {
		const char *r = sc_delivery_rcpt(d, i);
		struct delivered *g;
		uint64_t size = 0;
		int fd;
		ssize_t n;

		if (strncmp(r, "bad@", 4) == 0) {
			sc_delivery_rcpt_result(d, i, SC_DENY, 550, "5.1.1",
						"<%s>: no such user", r);
			continue;
		}
		/* the relay's way: the remote's own reply */
		if (strncmp(r, "relay@", 6) == 0) {
			sc_delivery_rcpt_result(d, i, SC_DENY, 550, "5.1.1",
				"host mx.partner.test[192.0.2.1] said: 550 "
				"5.1.1 <%s>: no such user (in reply to RCPT "
				"TO)", r);
			continue;
		}
		/* a text that is a whole reply already */
		if (strncmp(r, "coded@", 6) == 0) {
			sc_delivery_rcpt_result(d, i, SC_DENY, 553, "5.1.3",
				"553 5.1.3 <%s>: bad syntax", r);
			continue;
		}
		if (strncmp(r, "soft@", 5) == 0 ||
		    (strncmp(r, "selfsoft@", 9) == 0 && !t.accept_selfsoft)) {
			sc_delivery_rcpt_result(d, i, SC_DENYSOFT, 451,
						"4.3.0", "try later");
			continue;
		}
		ck_assert_int_lt(t.ngot, 16);
		g = &t.got[t.ngot++];
		snprintf(g->sender, sizeof(g->sender), "%s",
			 sc_delivery_sender(d));
		snprintf(g->rcpt, sizeof(g->rcpt), "%s", r);
		fd = sc_delivery_open(d, &size);
		ck_assert_int_ge(fd, 0);
		n = read(fd, g->body, sizeof(g->body) - 1);
		ck_assert_int_ge(n, 0);
		g->body[n] = '\0';
		close(fd);
		sc_delivery_rcpt_result(d, i, SC_OK, 250, "2.0.0", "ok");
	}
	sc_delivery_done(d);
}

static void
setup(void)
{
	char *err = NULL;

	memset(&t, 0, sizeof(t));
	t.core.loop = uv_default_loop();
	sc_core = &t.core;
	snprintf(t.dir, sizeof(t.dir), "/tmp/check_queue.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t.dir));
	t.cfg.hostname = "mail.example.test";
	t.cfg.state_dir = t.dir;
	t.dom.name = "example.test";
	t.dom.routing = SC_ROUTING_LOCAL;
	t.cfg.domains = &t.dom;
	t.cfg.domain_count = 1;
	t.gen.cfg = &t.cfg;
	t.gen.refcount = 1;
	t.gen.serial = 1;
	driver = (struct sc_delivery_driver){
		.kind = SC_DELIVERY_LOCAL, .deliver = fake_deliver,
	};
	remote_driver = (struct sc_delivery_driver){
		.kind = SC_DELIVERY_REMOTE, .deliver = hold_deliver,
	};
	t.drv_entry[0].drv = &driver;
	t.drv_entry[1].drv = &remote_driver;
	t.gen.drivers = t.drv_entry;
	t.gen.driver_count = 2;
	t.core.gen = &t.gen;
	sc_config_set_current(&t.cfg);
	ck_assert_msg(sc_queue_init(t.dir, &err) == 0, "%s", err);
}

/* ---- a ROUTE hook that answers later, like a DNS-based router ---- */

/* route_later - reads the request only now, a loop turn or more after
 * the runner asked: the request must still be alive. self@ and selfsoft@
 * are aliases that name themselves ("self: self, ok"). */
static void
route_later(struct sc_timer *tm, void *arg)
{
	struct sc_hook_call *call = arg;
	const struct sc_route_request *req = sc_hook_arg(call);
	const char *at;

	sc_timer_free(&tm);
	t.routed++;
	if (req == NULL || req->queue_id == NULL ||
	    strlen(req->queue_id) != 16 || req->sender == NULL ||
	    strcmp(req->sender, "alice@example.test") != 0 ||
	    req->rcpt == NULL || (at = strchr(req->rcpt, '@')) == NULL ||
	    req->domain == NULL || strcmp(req->domain, at + 1) != 0 ||
	    strcmp(req->domain, "example.test") != 0) {
		t.route_bad_args++;
		sc_hook_done(call, SC_DENYSOFT);
		return;
	}
	if (strcmp(req->rcpt, "self@example.test") == 0 ||
	    strcmp(req->rcpt, "selfsoft@example.test") == 0) {
		sc_route_expand(call, "ok@example.test");
		sc_route_set(call, SC_DELIVERY_LOCAL, NULL);
		sc_hook_done(call, SC_OK);
		return;
	}
	sc_hook_done(call, SC_CONT);
}

static enum sc_result
route_hook(struct sc_hook_call *call, void *data)
{
	struct sc_timer *tm = sc_timer_new(route_later, call);

	(void)data;
	ck_assert_ptr_nonnull(tm);
	sc_timer_start(tm, 5, 0);
	return SC_PENDING;
}

static void
setup_route(void)
{
	setup();
	t.route_entry.inst = &t.route_inst;
	t.route_entry.fn = route_hook;
	t.gen.hooks[SC_HOOK_ROUTE] = &t.route_entry;
	t.gen.hook_count[SC_HOOK_ROUTE] = 1;
}

static void
teardown(void)
{
	char cmd[128];

	sc_queue_runner_stop();
	spin_until(NULL, 20);
	sc_queue_deinit();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", t.dir);
	sc_config_set_current(NULL);
	sc_core = NULL;
}

static void
commit_done(void *arg, const char *id, const char *error)
{
	int i = (int)(intptr_t)arg;

	ck_assert_msg(error == NULL, "%s", error);
	ck_assert_ptr_nonnull(id);
	snprintf(t.ids[i], sizeof(t.ids[i]), "%s", id);
	t.batches_at_done[i] = sc_queue_batch_count();
	t.done++;
}

static bool
all_done(void)
{
	return t.done == NTX;
}

static size_t
count_dir(const char *sub)
{
	char path[128];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/queue/%s", t.dir, sub);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static struct sc_queue_tx *
new_tx(const char *rcpt, const char *params)
{
	struct sc_env_rcpt r = { .address = rcpt, .params = params };
	struct sc_envelope env = {
		.sender = "alice@example.test", .params = "RET=HDRS",
		.rcpt_count = 1, .rcpts = &r, .client_ip = "127.0.0.1",
		.helo = "client.example",
	};
	const char *err = NULL;
	struct sc_queue_tx *tx = sc_queue_tx_begin(NULL, &env, &err);

	ck_assert_msg(tx != NULL, "%s", err);
	return tx;
}

static int
parse_cb(void *arg, const char *key, const char *value)
{
	(void)arg;
	if (strcmp(key, "END") == 0)
		snprintf(t.received, sizeof(t.received), "%s", value);
	if (strcmp(key, "T") == 0)
		t.records++;
	return 0;
}

START_TEST(test_group_commit)
{
	struct sc_queue_tx *tx[NTX];
	char path[256];

	for (int i = 0; i < NTX; i++) {
		tx[i] = new_tx("ok@example.test", "");
		ck_assert_int_eq(strlen(sc_queue_tx_id(tx[i])), 16);
		ck_assert_int_eq(sc_queue_tx_write(tx[i], message,
						   sizeof(message) - 1), 0);
		ck_assert_uint_eq(sc_queue_tx_size(tx[i]),
				  sizeof(message) - 1);
	}
	/* ids are unique and sortable */
	for (int i = 1; i < NTX; i++)
		ck_assert_int_lt(strcmp(sc_queue_tx_id(tx[i - 1]),
					sc_queue_tx_id(tx[i])), 0);
	/* nothing is visible in active/ before the commit */
	ck_assert_uint_eq(count_dir("active"), 0);
	ck_assert_uint_eq(count_dir("tmp"), NTX);
	for (int i = 0; i < NTX; i++)
		sc_queue_tx_commit(tx[i], commit_done, (void *)(intptr_t)i);
	spin_until(all_done, 5000);
	ck_assert_int_eq(t.done, NTX);
	/* the first commit syncs alone; the others waited and shared one
	 * directory sync */
	ck_assert_uint_le(sc_queue_batch_count(), 2);
	ck_assert_uint_eq(t.batches_at_done[NTX - 1],
			  t.batches_at_done[1]);
	ck_assert_uint_eq(count_dir("active"), NTX);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	snprintf(path, sizeof(path), "%s/queue/active/%s", t.dir, t.ids[0]);
	ck_assert_int_eq(sc_queue_file_parse(path, parse_cb, NULL), 1);
	ck_assert_str_eq(t.received, "received=2");
	/* records are appended after END */
	ck_assert_int_eq(sc_queue_append(path, "T 0 1 2 1 451 4.0.0 later\n",
					 true),
			 0);
	ck_assert_int_eq(sc_queue_file_parse(path, parse_cb, NULL), 1);
	ck_assert_int_eq(t.records, 1);
	/* the abort path removes the tmp file */
	tx[0] = new_tx("ok@example.test", "");
	ck_assert_uint_eq(count_dir("tmp"), 1);
	sc_queue_tx_abort(tx[0]);
	ck_assert_uint_eq(count_dir("tmp"), 0);
}
END_TEST

START_TEST(test_scan)
{
	struct sc_queue_tx *tx;
	char from[256], to[256], *err = NULL;
	FILE *f;

	/* committed */
	tx = new_tx("ok@example.test", "");
	sc_queue_tx_write(tx, message, sizeof(message) - 1);
	sc_queue_tx_commit(tx, commit_done, (void *)0);
	spin_until(NULL, 200);
	ck_assert_int_eq(t.done, 1);
	/* crashed before the commit: a file in active/ without END */
	tx = new_tx("ok@example.test", "");
	sc_queue_tx_write(tx, message, sizeof(message) - 1);
	snprintf(from, sizeof(from), "%s/queue/tmp/%s", t.dir,
		 sc_queue_tx_id(tx));
	snprintf(to, sizeof(to), "%s/queue/active/%s", t.dir,
		 sc_queue_tx_id(tx));
	ck_assert_int_eq(link(from, to), 0);
	sc_queue_tx_abort(tx);
	/* and junk in tmp/ */
	snprintf(from, sizeof(from), "%s/queue/tmp/0000000000000001", t.dir);
	f = fopen(from, "w");
	fputs("half a message", f);
	fclose(f);
	ck_assert_uint_eq(count_dir("active"), 2);
	ck_assert_uint_eq(count_dir("tmp"), 1);
	sc_queue_deinit();
	ck_assert_int_eq(sc_queue_init(t.dir, &err), 0);
	ck_assert_uint_eq(count_dir("active"), 1);
	ck_assert_uint_eq(count_dir("tmp"), 0);
	snprintf(to, sizeof(to), "%s/queue/active/%s", t.dir, t.ids[0]);
	ck_assert_int_eq(access(to, F_OK), 0);
}
END_TEST

static bool
runner_idle(void)
{
	size_t msgs = 0;

	sc_queue_counts(&msgs, NULL);
	return msgs == 0;
}

static bool
one_deferred(void)
{
	size_t msgs = 0, def = 0;

	sc_queue_counts(&msgs, &def);
	return def == 1;
}

START_TEST(test_runner)
{
	struct sc_env_rcpt r[3] = {
		{ "ok@example.test", "" },
		{ "bad@example.test", "NOTIFY=FAILURE ORCPT=rfc822;b+2Bc@x.test" },
		{ "nobounce@example.test", "" },
	};
	struct sc_envelope env = {
		.sender = "alice@example.test", .params = "", .rcpt_count = 2,
		.rcpts = r,
	};
	const char *err = NULL;
	char id[17], *e2 = NULL, *list;
	struct sc_queue_tx *tx;

	ck_assert_int_eq(sc_queue_runner_start(&e2), 0);
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 id, sizeof(id), &err), 0);
	spin_until(runner_idle, 5000);
	ck_assert(runner_idle());
	/* ok@ got the message; alice@ got a DSN for bad@ */
	ck_assert_int_eq(t.ngot, 2);
	ck_assert_str_eq(t.got[0].rcpt, "ok@example.test");
	ck_assert_str_eq(t.got[0].sender, "alice@example.test");
	ck_assert(strstr(t.got[0].body, "Subject: test") != NULL);
	ck_assert_str_eq(t.got[1].rcpt, "alice@example.test");
	ck_assert_str_eq(t.got[1].sender, "");
	ck_assert(strstr(t.got[1].body, "multipart/report") != NULL);
	ck_assert(strstr(t.got[1].body, "Final-Recipient: rfc822; "
			 "bad@example.test") != NULL);
	/* the xtext of ORCPT is decoded for the report (RFC 3461 4.2) */
	ck_assert(strstr(t.got[1].body, "Original-Recipient: rfc822;b+c@x.test")
		  != NULL);
	ck_assert(strstr(t.got[1].body, "Diagnostic-Code: smtp; 550 5.1.1")
		  != NULL);
	ck_assert_uint_eq(count_dir("active"), 0);

	/* a deferred recipient stays, with its state recorded */
	t.ngot = 0;
	tx = new_tx("soft@example.test", "");
	sc_queue_tx_write(tx, message, sizeof(message) - 1);
	sc_queue_tx_commit(tx, commit_done, (void *)0);
	spin_until(one_deferred, 5000);
	ck_assert(one_deferred());
	spin_until(NULL, 50);
	list = sc_queue_list_text();
	ck_assert_ptr_nonnull(list);
	ck_assert_msg(strstr(list, "<soft@example.test> deferred") != NULL,
		      "%s", list);
	ck_assert_msg(strstr(list, "451 4.3.0 try later") != NULL, "%s",
		      list);
	free(list);
	ck_assert_uint_eq(count_dir("active"), 1);
	/* delete: gone, and no bounce */
	ck_assert_int_eq(sc_queue_delete(t.ids[0], &e2), 0);
	spin_until(runner_idle, 2000);
	ck_assert(runner_idle());
	ck_assert_uint_eq(count_dir("active"), 0);
	ck_assert_int_eq(t.ngot, 0);

	/* NOTIFY=NEVER never bounces; a bounce (the null sender) that
	 * fails is not bounced to <> but goes to the postmaster, once
	 * (postmaster@hostname: the hostname is the local domain here) */
	t.cfg.hostname = "example.test";
	r[0].address = "bad@example.test";
	r[0].params = "NOTIFY=NEVER";
	env.rcpt_count = 1;
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 id, sizeof(id), &err), 0);
	r[0].params = "";
	env.sender = "";
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 id, sizeof(id), &err), 0);
	spin_until(runner_idle, 5000);
	ck_assert(runner_idle());
	spin_until(NULL, 50);
	ck_assert_int_eq(t.ngot, 1);
	ck_assert_str_eq(t.got[0].rcpt, "postmaster@example.test");
	ck_assert_str_eq(t.got[0].sender, "double-bounce@example.test");
	ck_assert(strstr(t.got[0].body, "Postmaster Copy") != NULL);
	ck_assert_uint_eq(count_dir("active"), 0);
	t.ngot = 0;
	t.cfg.hostname = "mail.example.test";

	/* driver texts that are replies already are recorded and reported
	 * with their code once */
	r[0] = (struct sc_env_rcpt){ "relay@example.test", "" };
	r[1] = (struct sc_env_rcpt){ "coded@example.test", "" };
	env.sender = "alice@example.test";
	env.rcpt_count = 2;
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 id, sizeof(id), &err), 0);
	spin_until(runner_idle, 5000);
	ck_assert(runner_idle());
	ck_assert_int_eq(t.ngot, 1);
	ck_assert_str_eq(t.got[0].rcpt, "alice@example.test");
	ck_assert_msg(strstr(t.got[0].body, "Status: 5.1.1\r\n"
			     "Remote-MTA: dns; mx.partner.test\r\n"
			     "Diagnostic-Code: smtp; 550 5.1.1 "
			     "<relay@example.test>: no such user\r\n") !=
		      NULL, "%s", t.got[0].body);
	ck_assert_msg(strstr(t.got[0].body, "Status: 5.1.3\r\n"
			     "Diagnostic-Code: smtp; 553 5.1.3 "
			     "<coded@example.test>: bad syntax\r\n") != NULL,
		      "%s", t.got[0].body);
	ck_assert_msg(strstr(t.got[0].body, "<coded@example.test>: 553 5.1.3 "
			     "<coded@example.test>: bad syntax\r\n") != NULL,
		      "%s", t.got[0].body);
	ck_assert(strstr(t.got[0].body, "553 5.1.3 553") == NULL);
}
END_TEST

static int
got_count(const char *rcpt)
{
	int n = 0;

	for (int i = 0; i < t.ngot; i++)
		if (strcmp(t.got[i].rcpt, rcpt) == 0)
			n++;
	return n;
}

/* A ROUTE callback answering PENDING reads sc_hook_arg() from a timer,
 * after attempt_start has returned; the runner then delivers as routed. */
START_TEST(test_route_pending)
{
	struct sc_env_rcpt r[2] = {
		{ "ok@example.test", "" },
		{ "bad@example.test", "NOTIFY=NEVER" },
	};
	struct sc_envelope env = {
		.sender = "alice@example.test", .params = "", .rcpt_count = 2,
		.rcpts = r,
	};
	const char *err = NULL;
	char id[17], *e2 = NULL;

	ck_assert_int_eq(sc_queue_runner_start(&e2), 0);
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 id, sizeof(id), &err), 0);
	spin_until(runner_idle, 5000);
	ck_assert_int_eq(t.route_bad_args, 0);
	ck_assert(runner_idle());
	ck_assert_int_eq(t.routed, 2);
	ck_assert_int_eq(t.ngot, 1);
	ck_assert_str_eq(t.got[0].rcpt, "ok@example.test");
	ck_assert_uint_eq(count_dir("active"), 0);
}
END_TEST

/* An alias that includes itself ("self: self, ok"): the targets AND the
 * recipient itself get one copy each, also across a restart. */
START_TEST(test_route_alias_self)
{
	struct sc_env_rcpt r = { "self@example.test", "NOTIFY=FAILURE" };
	struct sc_envelope env = {
		.sender = "alice@example.test", .params = "", .rcpt_count = 1,
		.rcpts = &r,
	};
	const char *err = NULL;
	char id[17], *e2 = NULL, *list;

	ck_assert_int_eq(sc_queue_runner_start(&e2), 0);
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 id, sizeof(id), &err), 0);
	spin_until(runner_idle, 5000);
	ck_assert(runner_idle());
	ck_assert_int_eq(t.route_bad_args, 0);
	ck_assert_int_eq(t.ngot, 2);
	ck_assert_int_eq(got_count("ok@example.test"), 1);
	ck_assert_int_eq(got_count("self@example.test"), 1);

	/* the copy of itself is deferred: a restart reloads the expansion
	 * records and the retry neither expands it again nor loses it */
	t.ngot = 0;
	r.address = "selfsoft@example.test";
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 id, sizeof(id), &err), 0);
	spin_until(one_deferred, 5000);
	ck_assert(one_deferred());
	spin_until(NULL, 50);
	ck_assert_int_eq(t.ngot, 1);
	ck_assert_int_eq(got_count("ok@example.test"), 1);
	list = sc_queue_list_text();
	ck_assert_ptr_nonnull(list);
	ck_assert_msg(strstr(list, "<selfsoft@example.test> deferred") !=
		      NULL, "%s", list);
	free(list);
	sc_queue_runner_stop();
	spin_until(NULL, 20);
	sc_queue_deinit();
	ck_assert_int_eq(sc_queue_init(t.dir, &e2), 0);
	ck_assert_int_eq(sc_queue_runner_start(&e2), 0);
	t.accept_selfsoft = true;
	sc_queue_runner_flush();
	spin_until(runner_idle, 5000);
	ck_assert(runner_idle());
	spin_until(NULL, 50);
	ck_assert_int_eq(t.route_bad_args, 0);
	ck_assert_int_eq(t.ngot, 2);
	ck_assert_int_eq(got_count("ok@example.test"), 1);
	ck_assert_int_eq(got_count("selfsoft@example.test"), 1);
	ck_assert_uint_eq(count_dir("active"), 0);
}
END_TEST

START_TEST(test_dsn_text)
{
	const char *rcpts[] = { "bob@partner.test", "carol@partner.test" };
	const char *params[] = { "ORCPT=rfc822;bob@partner.test", "" };
	const char *replies[2] = {
		"550 5.1.1 <bob@partner.test>: unknown user",
		"4.4.7 message expired; last error: 451 4.4.1 timeout",
	};
	const char hdrs[] = "Subject: hi\r\nFrom: a@example.test\r\n\r\n";
	char *text = sc_queue_dsn_text("0123456789abcdef", "a@example.test",
				       "ENVID=xyz", time(NULL), rcpts, params,
				       replies, 2, false, hdrs,
				       sizeof(hdrs) - 1, false);
	char boundary[256], marker[300], *p, *q;
	int parts = 0;

	ck_assert_ptr_nonnull(text);
	ck_assert(strstr(text, "From: Mail Delivery System "
			 "<MAILER-DAEMON@mail.example.test>\r\n") != NULL);
	ck_assert(strstr(text, "Content-Type: multipart/report; "
			 "report-type=delivery-status;") != NULL);
	p = strstr(text, "boundary=\"");
	ck_assert_ptr_nonnull(p);
	p += 10;
	q = strchr(p, '"');
	ck_assert_ptr_nonnull(q);
	snprintf(boundary, sizeof(boundary), "%.*s", (int)(q - p), p);
	snprintf(marker, sizeof(marker), "\r\n--%s\r\n", boundary);
	for (p = text; (p = strstr(p, marker)) != NULL; p += strlen(marker))
		parts++;
	ck_assert_int_eq(parts, 3);
	snprintf(marker, sizeof(marker), "\r\n--%s--\r\n", boundary);
	ck_assert(strstr(text, marker) != NULL);
	ck_assert(strstr(text, "Content-Type: message/delivery-status\r\n")
		  != NULL);
	ck_assert(strstr(text, "Reporting-MTA: dns; mail.example.test\r\n")
		  != NULL);
	ck_assert(strstr(text, "Original-Envelope-Id: xyz\r\n") != NULL);
	ck_assert(strstr(text, "Original-Recipient: rfc822;bob@partner.test"
			 "\r\nFinal-Recipient: rfc822; bob@partner.test\r\n"
			 "Action: failed\r\nStatus: 5.1.1\r\n"
			 "Diagnostic-Code: smtp; 550 5.1.1 "
			 "<bob@partner.test>: unknown user\r\n") != NULL);
	ck_assert(strstr(text, "Final-Recipient: rfc822; carol@partner.test"
			 "\r\nAction: failed\r\nStatus: 4.4.7\r\n") != NULL);
	ck_assert(strstr(text, "Content-Type: text/rfc822-headers\r\n")
		  != NULL);
	ck_assert(strstr(text, "Subject: hi\r\n") != NULL);
	free(text);

	/* a delay notice; RET=FULL uses message/rfc822 */
	text = sc_queue_dsn_text("0123456789abcdef", "a@example.test", "",
				 time(NULL), rcpts, params, replies, 1, true,
				 hdrs, sizeof(hdrs) - 1, false);
	ck_assert(strstr(text, "Action: delayed\r\nStatus: 4.1.1\r\n") !=
		  NULL);
	free(text);
	text = sc_queue_dsn_text("0123456789abcdef", "a@example.test", "",
				 time(NULL), rcpts, params, replies, 1, false,
				 hdrs, sizeof(hdrs) - 1, true);
	ck_assert(strstr(text, "Content-Type: message/rfc822\r\n") != NULL);
	free(text);

	/* a relay's text is the remote's reply: the Diagnostic-Code gives
	 * it once (RFC 3464 2.3.6), the host becomes the Remote-MTA */
	replies[0] = "550 5.1.1 host mx1.partner.test[192.0.2.25] said: "
		"550 5.1.1 <bob@partner.test>: no such user (in reply to "
		"RCPT TO)";
	replies[1] = "451 4.4.2 host mx2.partner.test[192.0.2.26] said: "
		"554 5.7.1 go away (in reply to HELO)";
	text = sc_queue_dsn_text("0123456789abcdef", "a@example.test", "",
				 time(NULL), rcpts, params, replies, 2, false,
				 hdrs, sizeof(hdrs) - 1, false);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(strstr(text, "Final-Recipient: rfc822; bob@partner.test"
			     "\r\nAction: failed\r\nStatus: 5.1.1\r\n"
			     "Remote-MTA: dns; mx1.partner.test\r\n"
			     "Diagnostic-Code: smtp; 550 5.1.1 "
			     "<bob@partner.test>: no such user\r\n") != NULL,
		      "%s", text);
	/* the core's verdict (4.4.2) stays the Status; the remote's reply
	 * is the diagnostic */
	ck_assert_msg(strstr(text, "Final-Recipient: rfc822; "
			     "carol@partner.test\r\nAction: failed\r\n"
			     "Status: 4.4.2\r\n"
			     "Remote-MTA: dns; mx2.partner.test\r\n"
			     "Diagnostic-Code: smtp; 554 5.7.1 go away\r\n")
		      != NULL, "%s", text);
	ck_assert_msg(strstr(text, "<bob@partner.test>: host mx1.partner.test"
			     "[192.0.2.25] said: 550 5.1.1 <bob@partner.test>"
			     ": no such user (in reply to RCPT TO)\r\n") !=
		      NULL, "%s", text);
	ck_assert(strstr(text, "smtp; 550 5.1.1 host") == NULL);
	ck_assert(strstr(text, "said: 550 5.1.1 550") == NULL);
	free(text);

	/* a reply without "host ... said:" keeps its one code */
	replies[0] = "550 5.1.1 <bob@partner.test>: unknown user";
	text = sc_queue_dsn_text("0123456789abcdef", "a@example.test", "",
				 time(NULL), rcpts, params, replies, 1, false,
				 hdrs, sizeof(hdrs) - 1, false);
	ck_assert(strstr(text, "Status: 5.1.1\r\nDiagnostic-Code: smtp; "
			 "550 5.1.1 <bob@partner.test>: unknown user\r\n")
		  != NULL);
	ck_assert(strstr(text, "Remote-MTA:") == NULL);
	free(text);
}
END_TEST


/* the records after END, one "key value" line each */
static int
recs_cb(void *arg, const char *key, const char *value)
{
	static bool after_end;
	size_t l = strlen(t.recs);

	(void)arg;
	if (strcmp(key, "id") == 0)
		after_end = false;
	if (after_end)
		snprintf(t.recs + l, sizeof(t.recs) - l, "%s %s\n", key,
			 value);
	if (strcmp(key, "END") == 0)
		after_end = true;
	return 0;
}

static void
store_one(const char *rcpt, char *id, char *path, size_t len)
{
	struct sc_env_rcpt r = { rcpt, "" };
	struct sc_envelope env = {
		.sender = "alice@example.test", .params = "",
		.rcpt_count = 1, .rcpts = &r,
	};
	char *err = NULL;

	ck_assert_msg(sc_queue_store(&env, message, sizeof(message) - 1, id,
				     &err) == 0, "%s", err);
	snprintf(path, len, "%s/queue/active/%s", t.dir, id);
}

static bool
file_has_d0(void)
{
	char path[256], buf[8192];
	size_t msgs = 0;
	ssize_t n;
	int fd;

	sc_queue_counts(&msgs, NULL);
	if (msgs != 1 || t.nheld != 1)
		return false;
	snprintf(path, sizeof(path), "%s/queue/active/%s", t.dir, t.ids[0]);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return strstr(buf, "\nD 0 ") != NULL;
}

/* One delivery's results are on disk as soon as it is done, while
 * another delivery of the same message still waits on its peer: a
 * restart then never delivers the first recipient again. */
START_TEST(test_partial_results)
{
	struct sc_env_rcpt r[2] = {
		{ "ok@example.test", "" }, { "hold@partner.test", "" },
	};
	struct sc_envelope env = {
		.sender = "alice@example.test", .params = "", .rcpt_count = 2,
		.rcpts = r,
	};
	const char *err = NULL;
	char *e2 = NULL, *list;

	ck_assert_int_eq(sc_queue_runner_start(&e2), 0);
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 t.ids[0], sizeof(t.ids[0]), &err), 0);
	spin_until(file_has_d0, 5000);
	ck_assert_msg(file_has_d0(), "no D record while the remote waits");
	ck_assert_int_eq(t.ngot, 1);
	list = sc_queue_list_text();
	ck_assert_msg(strstr(list, "(active)") != NULL &&
		      strstr(list, "<ok@example.test> delivered") != NULL,
		      "%s", list);
	free(list);
	release_held();
	spin_until(runner_idle, 5000);
	ck_assert(runner_idle());
	ck_assert_uint_eq(count_dir("active"), 0);
}
END_TEST

static bool
ten_held(void)
{
	return t.nheld >= 10;
}

static bool
got_one(void)
{
	return t.ngot == 1;
}

static bool
twelve_held(void)
{
	return t.nheld == 12;
}

/* Deliveries stuck on one destination take at most its share of the
 * slots; local mail never waits behind them. */
START_TEST(test_no_head_of_line)
{
	struct sc_env_rcpt r = { "hold@partner.test", "" };
	struct sc_envelope env = {
		.sender = "alice@example.test", .params = "", .rcpt_count = 1,
		.rcpts = &r,
	};
	const char *err = NULL;
	char id[17], *e2 = NULL;

	ck_assert_int_eq(sc_queue_runner_start(&e2), 0);
	for (int i = 0; i < 12; i++)
		ck_assert_int_eq(sc_queue_inject(&env, message,
						 sizeof(message) - 1, id,
						 sizeof(id), &err), 0);
	spin_until(ten_held, 3000);
	spin_until(NULL, 200);
	/* per-destination limit */
	ck_assert_int_eq(t.nheld, 10);
	r.address = "ok@example.test";
	ck_assert_int_eq(sc_queue_inject(&env, message, sizeof(message) - 1,
					 id, sizeof(id), &err), 0);
	spin_until(got_one, 2000);
	ck_assert_int_eq(t.ngot, 1);
	/* the waiting ones go once slots are free */
	release_held();
	spin_until(twelve_held, 5000);
	ck_assert_int_eq(t.nheld, 12);
	release_held();
	spin_until(runner_idle, 5000);
	ck_assert(runner_idle());
}
END_TEST

/* A B record says the failure DSN went out: a restart only removes the
 * file, it never bounces again. */
START_TEST(test_b_record)
{
	char id[17], path[256], *e2 = NULL;

	store_one("bad@example.test", id, path, sizeof(path));
	ck_assert_int_eq(sc_queue_append(path, "F 0 1 550 5.1.1 nope\nB\n", true),
			 0);
	ck_assert_int_eq(sc_queue_runner_start(&e2), 0);
	spin_until(runner_idle, 5000);
	ck_assert(runner_idle());
	spin_until(NULL, 100);
	ck_assert_int_eq(t.ngot, 0);
	ck_assert_uint_eq(count_dir("active"), 0);
	/* without B the failure is bounced */
	store_one("bad@example.test", id, path, sizeof(path));
	ck_assert_int_eq(sc_queue_append(path, "F 0 1 550 5.1.1 nope\n", true), 0);
	sc_queue_runner_add(id);
	spin_until(got_one, 5000);
	ck_assert_int_eq(t.ngot, 1);
	ck_assert_str_eq(t.got[0].rcpt, "alice@example.test");
}
END_TEST

/* A record cut by a crash never joins the next one: the append closes
 * it and marks it void. */
START_TEST(test_torn_record)
{
	char id[17], path[256];
	int fd;

	store_one("ok@example.test", id, path, sizeof(path));
	ck_assert_int_eq(sc_queue_append(path, "T 0 1 2 1 451 first\n", true), 0);
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "X 0 bo", 6), 6);	/* the crash */
	close(fd);
	ck_assert_int_eq(sc_queue_append(path, "T 0 5 6 2 451 second\n", true), 0);
	t.recs[0] = '\0';
	ck_assert_int_eq(sc_queue_file_parse(path, recs_cb, NULL), 1);
	ck_assert_str_eq(t.recs, "T 0 1 2 1 451 first\n"
			 "T 0 5 6 2 451 second\n");
	/* a torn last record with no append after it is ignored too */
	fd = open(path, O_WRONLY | O_APPEND);
	ck_assert_int_eq(write(fd, "D 0 12", 6), 6);
	close(fd);
	t.recs[0] = '\0';
	ck_assert_int_eq(sc_queue_file_parse(path, recs_cb, NULL), 1);
	ck_assert_str_eq(t.recs, "T 0 1 2 1 451 first\n"
			 "T 0 5 6 2 451 second\n");
}
END_TEST

/* The start-up scan removes what is surely no committed message (no END,
 * not a queue file) but keeps a file it cannot read now. The daemon's
 * user lacking read access is the honest case: the test runs as nobody
 * when it is root (root reads anything), and puts the mode back. */
START_TEST(test_unreadable_kept)
{
	char id[17], path[256], junk[256], cmd[160], *err = NULL;
	uid_t euid = geteuid();
	FILE *f;

	if (euid == 0) {
		snprintf(cmd, sizeof(cmd), "chown -R 65534:65534 %s", t.dir);
		ck_assert_int_eq(system(cmd), 0);
		ck_assert_int_eq(seteuid(65534), 0);
	}
	store_one("ok@example.test", id, path, sizeof(path));
	snprintf(junk, sizeof(junk), "%s/queue/active/0000000000000002",
		 t.dir);
	f = fopen(junk, "w");
	ck_assert_ptr_nonnull(f);
	fputs("not a queue file\n", f);
	fclose(f);
	ck_assert_int_eq(chmod(path, 0), 0);
	ck_assert_int_eq(sc_queue_file_parse(path, NULL, NULL), -1);
	sc_queue_deinit();
	ck_assert_int_eq(sc_queue_init(t.dir, &err), 0);
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_ne(access(junk, F_OK), 0);
	/* readable again: a complete message */
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(sc_queue_file_parse(path, NULL, NULL), 1);
	if (euid == 0)
		ck_assert_int_eq(seteuid(0), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("queue");
	TCase *tc = tcase_create("queue");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_group_commit);
	tcase_add_test(tc, test_scan);
	tcase_add_test(tc, test_runner);
	tcase_add_test(tc, test_dsn_text);
	tcase_add_test(tc, test_partial_results);
	tcase_add_test(tc, test_no_head_of_line);
	tcase_add_test(tc, test_b_record);
	tcase_add_test(tc, test_torn_record);
	tcase_add_test(tc, test_unreadable_kept);
	suite_add_tcase(s, tc);
	tc = tcase_create("route");
	tcase_add_checked_fixture(tc, setup_route, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_route_pending);
	tcase_add_test(tc, test_route_alias_self);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
