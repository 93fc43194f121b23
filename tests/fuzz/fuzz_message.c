/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_message.c - the message API (core/message.c) on the real
 * queue: message data streamed into a queue tx in pieces, the header block
 * parsed, then a script of edits (inserts, replacements, deletions with
 * hostile names and values, body replacement), then the commit plan.
 *
 * Checks: every field is "name:" ... CRLF with a valid name; and the round
 * trip - the header block and body the plan would store, streamed into a
 * new tx and parsed again, give exactly the same fields and body size. So
 * no edit can smuggle in a field, split one, or end the header block.
 *
 * Input: byte 0 = number of edit steps (mod 16), then 3 bytes per step
 * (operation, index, value), then the message data; the data is written
 * in pieces whose sizes come from the data bytes themselves, its line ends
 * made CRLF first (smtp stores nothing else).
 */
#include "core.h"
#include "fuzz.h"

#include <errno.h>
#include <ftw.h>
#include <string.h>
#include <unistd.h>

static const char *const names[] = {
	"Subject", "X-Test", "Received", "x:y", "", "X Y", "From", "To",
};
static const char *const values[] = {
	"plain", "", " leading", "a\r\n\tb", "a\n b", "a\r\nX-Evil: 1",
	"a\nX-Evil: 1", "a\r", "a\r\n", "a\r\n\r\nbody", "\t",
	"caf\xc3\xa9", "x\r\n \r\n y",
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static bool ready;
static char dir[64];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	remove(path);
	return 0;
}

/* cleanup - the state dir goes at exit */
static void
cleanup(void)
{
	sc_queue_deinit();
	nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *err = NULL;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "/tmp/fuzz_message.XXXXXX");
	if (mkdtemp(dir) == NULL || sc_queue_init(dir, &err) != 0) {
		fprintf(stderr, "fuzz_message: no queue: %s\n",
			err ? err : strerror(errno));
		return 0;
	}
	ready = true;
	atexit(cleanup);
	return 0;
}

static struct sc_queue_tx *
begin(void)
{
	static const struct sc_env_rcpt r = { "bob@example.test", "" };
	struct sc_envelope env = { .sender = "a@example.test", .params = "",
		.rcpt_count = 1, .rcpts = &r };
	const char *err = NULL;
	struct sc_queue_tx *tx = sc_queue_tx_begin(NULL, &env, &err);

	FUZZ_CHECK(tx != NULL, "no tx: %s", err ? err : "?");
	return tx;
}

static void
check_fields(const struct sc_message *m)
{
	for (size_t i = 0; i < sc_message_header_count(m); i++) {
		size_t len = 0;
		const char *raw = sc_message_header_raw(m, i, &len);
		const char *name = sc_message_header_name(m, i);

		FUZZ_CHECK(raw != NULL && name != NULL && len >= 3,
			   "field %zu", i);
		FUZZ_CHECK(raw[len - 2] == '\r' && raw[len - 1] == '\n',
			   "field %zu does not end in CRLF", i);
		FUZZ_CHECK(strncmp(raw, name, strlen(name)) == 0 &&
			   *name != '\0', "field %zu: name %s", i, name);
		FUZZ_CHECK(sc_message_header_value(m, i) != NULL &&
			   sc_message_header_unfolded(m, i) != NULL,
			   "field %zu: no value", i);
	}
}

static void
edit(struct sc_message *m, uint8_t op, uint8_t idx, uint8_t val)
{
	size_t n = sc_message_header_count(m);
	const char *name = names[idx % N(names)];
	const char *value = values[val % N(values)];

	switch (op % 6) {
	case 0:
		sc_message_header_insert(m, idx == 255 ? SC_HEADER_BOTTOM :
					 idx % 8, name, value);
		break;
	case 1:
		sc_message_header_replace(m, n ? idx % n : 0, value);
		break;
	case 2:
		sc_message_header_delete(m, n ? idx % n : 0);
		break;
	case 3:
		sc_message_header_change(m, name, 1 + val % 3,
					 (op & 8) ? NULL : value);
		break;
	case 4:
		if (sc_message_body_replace_begin(m) == 0) {
			sc_message_body_replace_write(m, value, strlen(value));
			if (op & 8)
				sc_message_body_replace_end(m);
		}
		break;
	default:
		sc_message_rcpt_add(m, (op & 8) ? "<c@example.test>" : value,
				    NULL);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sc_queue_tx *tx, *tx2;
	struct sc_message *m, *m2;
	struct sc_message_plan plan;
	size_t steps, pos, nf, nlen = 0;
	char *norm;
	char **raws;
	uint64_t body;

	if (!ready || size < 1)
		return 0;
	steps = data[0] % 16;
	if (size < 1 + 3 * steps)
		return 0;
	pos = 1 + 3 * steps;
	tx = begin();
	m = sc_queue_tx_message(tx);
	if (steps & 1)
		sc_message_header_insert(m, SC_HEADER_TOP, "Received",
					 "from fuzz");
	/* line ends made canonical, as smtp stores data */
	norm = malloc(2 * (size - pos) + 1);
	if (norm == NULL)
		abort();
	for (size_t i = pos; i < size; i++) {
		if (data[i] == '\r' && i + 1 < size && data[i + 1] == '\n')
			continue;
		if (data[i] == '\r' || data[i] == '\n') {
			norm[nlen++] = '\r';
			norm[nlen++] = '\n';
		} else
			norm[nlen++] = (char)data[i];
	}
	for (size_t i = 0; i < nlen;) {
		size_t piece = 1 + (unsigned char)norm[i] % 64;

		if (piece > nlen - i)
			piece = nlen - i;
		FUZZ_CHECK(sc_queue_tx_write(tx, norm + i, piece) == 0,
			   "write");
		i += piece;
	}
	free(norm);
	if (sc_message_finish(m) != 0) {
		FUZZ_CHECK(errno == E2BIG, "finish: %s", strerror(errno));
		sc_queue_tx_abort(tx);
		return 0;
	}
	check_fields(m);
	for (size_t i = 0; i < steps; i++) {
		edit(m, data[1 + 3 * i], data[2 + 3 * i], data[3 + 3 * i]);
		check_fields(m);
	}
	/* keep the fields, then the plan closes m */
	nf = sc_message_header_count(m);
	raws = calloc(nf + 1, sizeof(*raws));
	if (raws == NULL)
		abort();
	for (size_t i = 0; i < nf; i++)
		raws[i] = strdup(sc_message_header_raw(m, i, NULL));
	body = sc_message_body_size(m);
	FUZZ_CHECK(sc_message_plan(m, &plan) == 0, "plan: %s",
		   strerror(errno));
	if (plan.rewrite) {
		char buf[4096];
		uint64_t left = plan.body_size, off = plan.body_off;

		tx2 = begin();
		m2 = sc_queue_tx_message(tx2);
		FUZZ_CHECK(sc_queue_tx_write(tx2, plan.block,
					     plan.block_len) == 0, "write");
		while (left > 0) {
			ssize_t r = pread(plan.body_fd, buf, left < sizeof(buf)
					  ? (size_t)left : sizeof(buf),
					  (off_t)off);

			FUZZ_CHECK(r > 0, "body read");
			sc_queue_tx_write(tx2, buf, (size_t)r);
			left -= (uint64_t)r;
			off += (uint64_t)r;
		}
		FUZZ_CHECK(sc_message_finish(m2) == 0, "reparse: %s",
			   strerror(errno));
		FUZZ_CHECK(sc_message_header_count(m2) == nf,
			   "%zu fields stored, %zu parsed back", nf,
			   sc_message_header_count(m2));
		for (size_t i = 0; i < nf; i++)
			FUZZ_CHECK(strcmp(raws[i], sc_message_header_raw(m2, i,
					  NULL)) == 0, "field %zu changed:"
				   " %s", i, raws[i]);
		FUZZ_CHECK(sc_message_body_size(m2) == body,
			   "body %llu, parsed back %llu",
			   (unsigned long long)body,
			   (unsigned long long)sc_message_body_size(m2));
		sc_queue_tx_abort(tx2);
		close(plan.body_fd);
		free(plan.block);
	}
	for (size_t i = 0; i < nf; i++)
		free(raws[i]);
	free(raws);
	sc_queue_tx_abort(tx);
	return 0;
}
