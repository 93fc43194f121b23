/* SPDX-License-Identifier: MIT */
/*
 * tests/check_message.c - Check suite for core/message.c with the real
 * queue (core/queue.c) in a temporary state_dir: the header block followed
 * through streamed data (folding, obsolete white space before the colon,
 * no empty line, a body line first, a last field without its line end,
 * the size limit), fields put in front of the data, reads, edits and the
 * checks that keep an edit from smuggling in a field, and the queue file
 * an edited message is rewritten into at commit (envelope, header block,
 * body, END, the quarantine record).
 */
#include "core.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct {
	struct sc_core core;
	struct sc_gen gen;
	struct sc_main_config cfg;
	char dir[64];
	int done;
	char id[17];
} t;

static void
setup(void)
{
	char *err = NULL;

	memset(&t, 0, sizeof(t));
	t.core.loop = uv_default_loop();
	sc_core = &t.core;
	snprintf(t.dir, sizeof(t.dir), "/tmp/check_message.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(t.dir));
	t.cfg.hostname = "mail.example.test";
	t.cfg.state_dir = t.dir;
	t.gen.cfg = &t.cfg;
	t.gen.refcount = 1;
	t.core.gen = &t.gen;
	sc_config_set_current(&t.cfg);
	ck_assert_msg(sc_queue_init(t.dir, &err) == 0, "%s", err);
}

static void
teardown(void)
{
	char cmd[128];

	sc_queue_runner_stop();
	sc_queue_deinit();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", t.dir);
	sc_config_set_current(NULL);
	sc_core = NULL;
}

static struct sc_queue_tx *
begin(void)
{
	static const struct sc_env_rcpt r[2] = {
		{ "bob@example.test", "" }, { "carol@example.test", "" },
	};
	struct sc_envelope env = {
		.sender = "alice@example.test", .params = "BODY=8BITMIME",
		.rcpt_count = 2, .rcpts = r,
	};
	const char *err = NULL;
	struct sc_queue_tx *tx = sc_queue_tx_begin(NULL, &env, &err);

	ck_assert_msg(tx != NULL, "%s", err ? err : "?");
	return tx;
}

/* feed - data in small pieces, so the header scan crosses writes */
static void
feed(struct sc_queue_tx *tx, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i += 7)
		ck_assert_int_eq(sc_queue_tx_write(tx, data + i, len - i < 7 ?
						   len - i : 7), 0);
}

static void
commit_done(void *arg, const char *id, const char *error)
{
	(void)arg;
	ck_assert_msg(id != NULL, "%s", error ? error : "?");
	snprintf(t.id, sizeof(t.id), "%s", id);
	t.done++;
}

/* commit - commits and returns the queue file's text (malloc'd) */
static char *
commit(struct sc_queue_tx *tx, size_t *len_r)
{
	char path[256], *buf;
	FILE *f;
	long n;

	sc_queue_tx_commit(tx, commit_done, NULL);
	for (int i = 0; i < 5000 && t.done == 0; i++) {
		uv_run(t.core.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert_int_eq(t.done, 1);
	snprintf(path, sizeof(path), "%s/queue/active/%s", t.dir, t.id);
	ck_assert_int_eq(sc_queue_file_parse(path, NULL, NULL), 1);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len_r = (size_t)n;
	return buf;
}

/* data_of - the message bytes of a queue file's text */
static const char *
data_of(const char *file, size_t *len_r)
{
	const char *d = strstr(file, "\ndata\n");
	const char *sz = strstr(file, "\nsize ");

	ck_assert_ptr_nonnull(d);
	ck_assert_ptr_nonnull(sz);
	*len_r = (size_t)strtoull(sz + 6, NULL, 10);
	return d + 6;
}

static char *
read_body(const struct sc_message *m)
{
	uint64_t size = sc_message_body_size(m);
	char *buf = calloc(1, (size_t)size + 1);
	int fd = sc_message_body_open(m);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, (size_t)size), (ssize_t)size);
	close(fd);
	return buf;
}

START_TEST(test_parse)
{
	static const char msg[] =
		"Subject  : hello\r\n\tworld \r\n"
		"From: <a@example.test>\r\n"
		"X-Empty:\r\n"
		"\r\n"
		"Body: not a field\r\n";
	struct sc_queue_tx *tx = begin();
	struct sc_message *m = sc_queue_tx_message(tx);
	size_t len;
	char *body;

	ck_assert_int_eq(sc_message_header_insert(m, SC_HEADER_BOTTOM,
						  "Received", "first"), 0);
	ck_assert_int_eq(sc_message_header_insert(m, SC_HEADER_TOP,
						  "Received", "second"), 0);
	feed(tx, msg, sizeof(msg) - 1);
	/* nothing goes in front once data came */
	ck_assert_int_eq(sc_message_header_insert(m, 0, "X", "y"), -1);
	ck_assert_int_eq(sc_message_finish(m), 0);
	ck_assert_uint_eq(sc_message_header_count(m), 5);
	ck_assert_str_eq(sc_message_header_value(m, 0), " second");
	ck_assert_str_eq(sc_message_header_value(m, 1), " first");
	ck_assert_str_eq(sc_message_header_name(m, 2), "Subject");
	ck_assert_str_eq(sc_message_header_value(m, 2),
			 " hello\r\n\tworld ");
	ck_assert_str_eq(sc_message_header_unfolded(m, 2), "hello\tworld");
	ck_assert_str_eq(sc_message_header_raw(m, 2, &len),
			 "Subject  : hello\r\n\tworld \r\n");
	ck_assert_uint_eq(len, 27);
	ck_assert_str_eq(sc_message_header_unfolded(m, 4), "");
	ck_assert_ptr_null(sc_message_header_name(m, 5));
	ck_assert_int_eq(sc_message_header_find(m, "received", 2), 1);
	ck_assert_int_eq(sc_message_header_find(m, "received", 3), -1);
	ck_assert_int_eq(sc_message_header_find(m, "FROM", 1), 3);
	ck_assert_uint_eq(sc_message_body_size(m), 19);
	body = read_body(m);
	ck_assert_str_eq(body, "Body: not a field\r\n");
	free(body);
	ck_assert_str_eq(sc_message_sender(m), "alice@example.test");
	ck_assert_uint_eq(sc_message_rcpt_count(m), 2);
	ck_assert_str_eq(sc_message_rcpt(m, 1), "carol@example.test");
	ck_assert(!sc_message_discarded(m));
	sc_queue_tx_abort(tx);
}
END_TEST

START_TEST(test_no_empty_line)
{
	static const char msg[] = "From: a@example.test\r\nHello world\r\n"
		"more\r\n";
	struct sc_queue_tx *tx = begin();
	struct sc_message *m = sc_queue_tx_message(tx);
	size_t flen, dlen;
	char *file;
	const char *data;

	feed(tx, msg, sizeof(msg) - 1);
	ck_assert_int_eq(sc_message_finish(m), 0);
	ck_assert_uint_eq(sc_message_header_count(m), 1);
	ck_assert_uint_eq(sc_message_body_size(m), 19);
	ck_assert_int_eq(sc_message_header_insert(m, SC_HEADER_BOTTOM, "X",
						  "y"), 0);
	file = commit(tx, &flen);
	data = data_of(file, &dlen);
	/* the rewritten message gets the empty line the body needs */
	ck_assert_uint_eq(dlen, 49);
	ck_assert(memcmp(data, "From: a@example.test\r\nX: y\r\n\r\n"
			 "Hello world\r\nmore\r\n", dlen) == 0);
	ck_assert(strstr(file, "\nEND received=0\n") != NULL);
	free(file);
}
END_TEST

START_TEST(test_last_field_unended)
{
	/* BDAT data may end without a line end */
	static const char msg[] = "From: a@example.test\r\nSubject: x";
	struct sc_queue_tx *tx = begin();
	struct sc_message *m = sc_queue_tx_message(tx);
	size_t flen, dlen;
	char *file;
	const char *data;

	feed(tx, msg, sizeof(msg) - 1);
	ck_assert_int_eq(sc_message_finish(m), 0);
	ck_assert_uint_eq(sc_message_header_count(m), 2);
	ck_assert_uint_eq(sc_message_body_size(m), 0);
	ck_assert_str_eq(sc_message_header_unfolded(m, 1), "x");
	ck_assert_int_eq(sc_message_header_insert(m, SC_HEADER_BOTTOM, "X",
						  "y"), 0);
	file = commit(tx, &flen);
	data = data_of(file, &dlen);
	ck_assert_uint_eq(dlen, 40);
	ck_assert(memcmp(data, "From: a@example.test\r\nSubject: x\r\n"
			 "X: y\r\n", dlen) == 0);
	free(file);
}
END_TEST

START_TEST(test_edit_checks)
{
	static const char msg[] = "Subject: s\r\n\r\nb\r\n";
	struct sc_queue_tx *tx = begin();
	struct sc_message *m = sc_queue_tx_message(tx);
	static const char *const bad_values[] = {
		"a\r\nX-Evil: 1", "a\nX-Evil: 1", "a\r", "a\rb", "a\r\n",
		"a\n", "a\r\n\r\nbody",
	};
	static const char *const bad_names[] = {
		"", "X Y", "X:Y", "X\r\nY", "Ünïcode",
	};

	feed(tx, msg, sizeof(msg) - 1);
	ck_assert_int_eq(sc_message_finish(m), 0);
	for (size_t i = 0; i < sizeof(bad_values) / sizeof(*bad_values);
	     i++) {
		errno = 0;
		ck_assert_int_eq(sc_message_header_insert(m, 0, "X",
							  bad_values[i]), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(sc_message_header_replace(m, 0,
							   bad_values[i]), -1);
	}
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(*bad_names); i++)
		ck_assert_int_eq(sc_message_header_insert(m, 0, bad_names[i],
							  "v"), -1);
	ck_assert_uint_eq(sc_message_header_count(m), 1);
	ck_assert_str_eq(sc_message_header_value(m, 0), " s");
	/* folding is fine, LF or CRLF, stored as CRLF */
	ck_assert_int_eq(sc_message_header_replace(m, 0, "a\n\tb\r\n c"), 0);
	ck_assert_str_eq(sc_message_header_raw(m, 0, NULL),
			 "Subject: a\r\n\tb\r\n c\r\n");
	ck_assert_int_eq(sc_message_header_change(m, "Subject", 2, "x"), 1);
	ck_assert_int_eq(sc_message_header_change(m, "subject", 1, NULL), 0);
	ck_assert_uint_eq(sc_message_header_count(m), 0);
	ck_assert_int_eq(sc_message_header_delete(m, 0), -1);
	/* addresses: brackets accepted, bad ones refused */
	ck_assert_int_eq(sc_message_rcpt_add(m, "<dave@example.test>", NULL),
			 0);
	ck_assert_int_eq(sc_message_rcpt_add(m, "DAVE@example.test", NULL),
			 0);
	ck_assert_uint_eq(sc_message_rcpt_count(m), 3);
	ck_assert_int_eq(sc_message_rcpt_add(m, "not an address", NULL), -1);
	ck_assert_int_eq(sc_message_rcpt_add(m, "", NULL), -1);
	ck_assert_int_eq(sc_message_rcpt_add(m, "e@example.test", "A\r\nB"),
			 -1);
	ck_assert_int_eq(sc_message_rcpt_delete(m, "x@example.test"), 1);
	ck_assert_int_eq(sc_message_set_sender(m, "<>", NULL), 0);
	ck_assert_str_eq(sc_message_sender(m), "");
	ck_assert_str_eq(sc_message_sender_params(m), "BODY=8BITMIME");
	/* every recipient removed: discarded */
	ck_assert_int_eq(sc_message_rcpt_delete(m, "bob@example.test"), 0);
	ck_assert_int_eq(sc_message_rcpt_delete(m, "carol@EXAMPLE.test"), 0);
	ck_assert_int_eq(sc_message_rcpt_delete(m, "dave@example.test"), 0);
	ck_assert(sc_message_discarded(m));
	sc_queue_tx_abort(tx);
}
END_TEST

START_TEST(test_header_limit)
{
	struct sc_queue_tx *tx = begin();
	struct sc_message *m = sc_queue_tx_message(tx);
	char line[1000];

	memset(line, 'x', sizeof(line));
	memcpy(line, "X-Big: ", 7);
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	for (size_t n = 0; n <= SC_MESSAGE_HEADER_MAX / sizeof(line); n++)
		ck_assert_int_eq(sc_queue_tx_write(tx, line, sizeof(line)), 0);
	ck_assert_int_eq(sc_queue_tx_write(tx, "\r\nbody\r\n", 8), 0);
	errno = 0;
	ck_assert_int_eq(sc_message_finish(m), -1);
	ck_assert_int_eq(errno, E2BIG);
	sc_queue_tx_abort(tx);

	/* a long first line that is no field is body, whatever its size */
	tx = begin();
	m = sc_queue_tx_message(tx);
	memset(line, 'y', sizeof(line));
	for (size_t n = 0; n < 2 * SC_MESSAGE_HEADER_MAX / sizeof(line); n++)
		ck_assert_int_eq(sc_queue_tx_write(tx, line, sizeof(line)), 0);
	ck_assert_int_eq(sc_message_finish(m), 0);
	ck_assert_uint_eq(sc_message_header_count(m), 0);
	ck_assert_uint_eq(sc_message_body_size(m),
			  2 * SC_MESSAGE_HEADER_MAX / sizeof(line) *
			  sizeof(line));
	sc_queue_tx_abort(tx);
}
END_TEST

START_TEST(test_rewrite)
{
	static const char msg[] =
		"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		"Subject: old\r\n"
		"X-Drop: 1\r\n"
		"\r\n"
		"old body\r\n";
	static const char want[] =
		"Received: from x by y; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
		"Subject: new\r\n"
		"Received: by test\r\n"
		"\r\n"
		"line 1\r\nline 2\r\nline 3\r\n";
	struct sc_queue_tx *tx = begin();
	struct sc_message *m = sc_queue_tx_message(tx);
	size_t flen, dlen;
	char *file, *body;
	const char *data;
	FILE *src = tmpfile();

	feed(tx, msg, sizeof(msg) - 1);
	ck_assert_int_eq(sc_message_finish(m), 0);
	ck_assert_int_eq(sc_message_header_change(m, "Subject", 1, "new"), 0);
	ck_assert_int_eq(sc_message_header_change(m, "X-Drop", 1, NULL), 0);
	ck_assert_int_eq(sc_message_header_insert(m, 2, "Received",
						  "by test"), 0);
	/* a replacement in progress is not the body yet */
	ck_assert_int_eq(sc_message_body_replace_begin(m), 0);
	ck_assert_int_eq(sc_message_body_replace_write(m, "dropped\n", 8), 0);
	body = read_body(m);
	ck_assert_str_eq(body, "old body\r\n");
	free(body);
	/* bare LF and bare CR become CRLF (also a CR ending a write) */
	ck_assert_ptr_nonnull(src);
	fputs("line 1\nline 2\rline 3\r", src);
	rewind(src);
	ck_assert_int_eq(sc_message_body_replace_fd(m, fileno(src)), 0);
	fclose(src);
	body = read_body(m);
	ck_assert_str_eq(body, "line 1\r\nline 2\r\nline 3\r\n");
	free(body);
	ck_assert_int_eq(sc_message_rcpt_delete(m, "bob@example.test"), 0);
	ck_assert_int_eq(sc_message_rcpt_add(m, "erin@example.test",
					     "NOTIFY=NEVER"), 0);
	ck_assert_int_eq(sc_message_set_sender(m, "bounce@example.test",
					       ""), 0);
	ck_assert_int_eq(sc_message_quarantine(m, "why\r\nnot"), 0);
	file = commit(tx, &flen);
	data = data_of(file, &dlen);
	ck_assert_uint_eq(dlen, sizeof(want) - 1);
	ck_assert(memcmp(data, want, dlen) == 0);
	ck_assert(strstr(file, "\nsender bounce@example.test\nparams \n")
		  != NULL);
	ck_assert(strstr(file, "\nrcpt bob@") == NULL);
	ck_assert(strstr(file, "\nrcpt carol@example.test\n"
			 "rcpt erin@example.test NOTIFY=NEVER\n") != NULL);
	ck_assert_str_eq(data + dlen, "END received=2\nQ why  not\n");
	free(file);
	/* nothing left behind in tmp/ (the old file, the bodies); empty
	 * files are spares made ahead (core/queue_spare.c) */
	{
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "test -z \"$(find %s/queue/tmp "
			 "-mindepth 1 ! -empty)\"", t.dir);
		ck_assert_int_eq(system(cmd), 0);
	}
}
END_TEST

START_TEST(test_unedited_kept)
{
	static const char msg[] = "Subject: s\r\n\r\nbody\r\n";
	struct sc_queue_tx *tx = begin();
	struct sc_message *m = sc_queue_tx_message(tx);
	size_t flen, dlen;
	char *file;
	const char *data;

	ck_assert_int_eq(sc_message_header_insert(m, 0, "Received", "r"), 0);
	feed(tx, msg, sizeof(msg) - 1);
	ck_assert_int_eq(sc_message_finish(m), 0);
	ck_assert_int_eq(sc_message_quarantine(m, "held"), 0);
	file = commit(tx, &flen);
	data = data_of(file, &dlen);
	ck_assert_uint_eq(dlen, 33);
	ck_assert(memcmp(data, "Received: r\r\nSubject: s\r\n\r\nbody\r\n",
			 dlen) == 0);
	ck_assert_str_eq(data + dlen, "END received=1\nQ held\n");
	free(file);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("message");
	TCase *tc = tcase_create("message");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_no_empty_line);
	tcase_add_test(tc, test_last_field_unended);
	tcase_add_test(tc, test_edit_checks);
	tcase_add_test(tc, test_header_limit);
	tcase_add_test(tc, test_rewrite);
	tcase_add_test(tc, test_unedited_kept);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
