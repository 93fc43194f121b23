/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_queue.c - queue files (core/queue.c's parser, as a
 * restart or `satchelctl queue` reads them after a crash or disk trouble)
 * and the DSN builder (core/queue_dsn.c) fed with what was parsed, the
 * way the queue runner does when recipients fail.
 *
 * Checks: keys and values never hold a line end; a complete file reports
 * its data offset before END and the offset lies in the file; the DSN is
 * built, names every recipient, and its own lines (everything before the
 * attached original headers) end in CRLF when the parsed fields hold no
 * CR themselves.
 */
#include "core.h"
#include "fuzz.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_RCPTS 16

struct kv {
	char *key, *value;
};

struct parsed {
	size_t nkv, cap;
	struct kv *kv;		/* every callback, in order             */
	long long data_off;
	char *sender, *params;
	size_t n;
	char *rcpt[MAX_RCPTS], *rparams[MAX_RCPTS], *reply[MAX_RCPTS];
	bool has_cr;		/* a field the DSN shows holds a CR     */
};

static int memfd = -1;

static int
field(void *arg, const char *key, const char *value)
{
	struct parsed *ps = arg;

	FUZZ_CHECK(key != NULL && value != NULL, "NULL key or value");
	FUZZ_CHECK(strchr(key, '\n') == NULL && strchr(value, '\n') == NULL,
		   "a line end inside key %s", key);
	FUZZ_CHECK(strchr(key, ' ') == NULL, "a blank inside key %s", key);
	if (ps->nkv == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 32;
		ps->kv = realloc(ps->kv, ps->cap * sizeof(*ps->kv));
		if (ps->kv == NULL)
			abort();
	}
	ps->kv[ps->nkv].key = strdup(key);
	ps->kv[ps->nkv].value = strdup(value);
	if (ps->kv[ps->nkv].key == NULL || ps->kv[ps->nkv].value == NULL)
		abort();
	ps->nkv++;
	return 0;
}

static void
set(char **p, const char *v, struct parsed *ps)
{
	free(*p);
	*p = strdup(v);
	if (*p == NULL)
		abort();
	if (strchr(v, '\r') != NULL)
		ps->has_cr = true;
}

/* interpret - a complete file's fields as the queue runner reads them:
 * the header, the data offset (which must be just past the first line
 * "data" of the file: checked against the raw bytes), END and the records
 * after it. */
static void
interpret(struct parsed *ps, const uint8_t *raw, size_t size)
{
	size_t data = ps->nkv, end, pos = 0, i;
	long long want = -1;
	int off;

	/* the first "data" line (after the magic line) ends the header */
	while (pos < size) {
		const uint8_t *nl = memchr(raw + pos, '\n', size - pos);
		size_t ll;

		if (nl == NULL)
			break;
		ll = (size_t)(nl - raw) - pos;
		/* the parser reads lines as C strings: a NUL ends one */
		if (pos > 0 && strnlen((const char *)raw + pos, ll) == 4 &&
		    memcmp(raw + pos, "data", 4) == 0) {
			want = (long long)(pos + ll + 1);
			break;
		}
		pos += ll + 1;
	}
	FUZZ_CHECK(want > 0, "complete file without a data line");
	for (size_t k = 0; k + 1 < ps->nkv; k++) {
		if (strcmp(ps->kv[k].key, "data") == 0 &&
		    strtoll(ps->kv[k].value, NULL, 10) == want &&
		    strcmp(ps->kv[k + 1].key, "END") == 0) {
			data = k;
			break;
		}
	}
	FUZZ_CHECK(data < ps->nkv, "data offset %lld not reported before "
		   "END", want);
	end = data + 1;
	ps->data_off = want;
	for (size_t k = 0; k < data; k++) {
		const char *key = ps->kv[k].key, *value = ps->kv[k].value;

		if (strcmp(key, "sender") == 0) {
			set(&ps->sender, value, ps);
		} else if (strcmp(key, "params") == 0) {
			set(&ps->params, value, ps);
		} else if (strcmp(key, "rcpt") == 0 && ps->n < MAX_RCPTS) {
			const char *sp = strchr(value, ' ');

			ps->rcpt[ps->n] = sp ? strndup(value,
				(size_t)(sp - value)) : strdup(value);
			ps->rparams[ps->n] = strdup(sp ? sp + 1 : "");
			if (ps->rcpt[ps->n] == NULL ||
			    ps->rparams[ps->n] == NULL)
				abort();
			if (strchr(value, '\r') != NULL)
				ps->has_cr = true;
			ps->n++;
		}
	}
	for (size_t k = end + 1; k < ps->nkv; k++) {
		const char *key = ps->kv[k].key, *value = ps->kv[k].value;

		off = 0;
		if ((strcmp(key, "D") == 0 || strcmp(key, "F") == 0 ||
		     strcmp(key, "T") == 0) &&
		    sscanf(value, "%zu %*u %n", &i, &off) >= 1 &&
		    i < ps->n && off > 0)
			set(&ps->reply[i], value + off, ps);
	}
}

/* check_dsn - every line the builder wrote itself ends in CRLF; the
 * original's part is there when there was an original to attach */
static void
check_dsn(const char *dsn, const struct parsed *ps, size_t hl)
{
	const char *end = strstr(dsn, "Content-Description: Undelivered "
				 "Message");

	if (hl == 0) {
		FUZZ_CHECK(end == NULL, "a message part with nothing in it");
		FUZZ_CHECK(strstr(dsn, "nothing of it is attached") != NULL,
			   "DSN without a word on its missing attachment");
		end = dsn + strlen(dsn);
	}
	FUZZ_CHECK(end != NULL, "DSN without the original message part");
	for (size_t i = 0; i < ps->n; i++)
		FUZZ_CHECK(strstr(dsn, ps->rcpt[i]) != NULL,
			   "recipient %s missing from the DSN", ps->rcpt[i]);
	if (ps->has_cr)
		return;
	for (const char *p = dsn; p < end; p++) {
		if (*p == '\n')
			FUZZ_CHECK(p > dsn && p[-1] == '\r',
				   "bare LF at offset %zu of the DSN",
				   (size_t)(p - dsn));
		if (*p == '\r')
			FUZZ_CHECK(p[1] == '\n', "bare CR at offset %zu of "
				   "the DSN", (size_t)(p - dsn));
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	memfd = memfd_create("fuzz-queue", MFD_CLOEXEC);
	if (memfd < 0)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct parsed ps;
	char path[64];
	int r;

	memset(&ps, 0, sizeof(ps));
	if (ftruncate(memfd, 0) < 0 ||
	    (size > 0 && pwrite(memfd, data, size, 0) != (ssize_t)size))
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	r = sc_queue_file_parse(path, field, &ps);
	FUZZ_CHECK(r == 0 || r == 1, "parse of an in-memory file gave %d", r);
	if (r == 1) {
		interpret(&ps, data, size);
		FUZZ_CHECK(ps.data_off > 0 && (size_t)ps.data_off <= size,
			   "data offset %lld outside the %zu-byte file",
			   ps.data_off, size);
	}
	if (r == 1 && ps.sender != NULL && ps.n > 0) {
		const char *rcpts[MAX_RCPTS], *rp[MAX_RCPTS], *rep[MAX_RCPTS];
		size_t hl = size - (size_t)ps.data_off;
		char *dsn;

		for (size_t i = 0; i < ps.n; i++) {
			rcpts[i] = ps.rcpt[i];
			rp[i] = ps.rparams[i];
			rep[i] = ps.reply[i];
		}
		if (hl > 65536)
			hl = 65536;
		dsn = sc_queue_dsn_text("0123456789abcdef", ps.sender,
					ps.params ? ps.params : "",
					(time_t)1700000000, rcpts, rp, rep,
					ps.n, size % 2 == 0,
					(const char *)data + ps.data_off, hl,
					size % 3 == 0);
		FUZZ_CHECK(dsn != NULL, "no DSN");
		check_dsn(dsn, &ps, hl);
		free(dsn);
	}
	for (size_t k = 0; k < ps.nkv; k++) {
		free(ps.kv[k].key);
		free(ps.kv[k].value);
	}
	free(ps.kv);
	free(ps.sender);
	free(ps.params);
	for (size_t i = 0; i < ps.n; i++) {
		free(ps.rcpt[i]);
		free(ps.rparams[i]);
		free(ps.reply[i]);
	}
	return 0;
}
