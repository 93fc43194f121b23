/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_pop3.c - the pop3 module (modules/pop3/, linked as it
 * is) on the fake core of shim.h, serving a real Maildir in a temporary
 * directory: every command (USER/PASS, AUTH PLAIN, STLS, STAT, LIST,
 * UIDL, RETR, TOP, DELE, RSET, NOOP, CAPA, QUIT and its UPDATE state) with
 * scripted login verdicts and handshakes; pool jobs (scans, message
 * reads, deletes) run on the loop.
 *
 * Input: byte 0 picks the listener (no TLS, STLS, implicit TLS); byte 1
 * is the length of the script that follows; then segments separated by
 * 0xff bytes: the first is the content of one more message in the
 * mailbox (next to three fixed ones: CRLF, bare LF, dot lines), the others
 * are what the client sends, each at once, the loop running until quiet
 * between them.
 *
 * Checks besides the shim's own: the server never sends a bare LF (a
 * message with bare LFs goes out with CRLF, or a client could read a
 * line the message did not have) and no session outlives its EOF.
 * FUZZ_DEBUG=1 prints the conversation.
 */
#include "shim.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const struct sc_module sc_module_pop3;

static const char conf[] =
	"listen:\n"
	"  - {address: \"127.0.0.1:110\", tls: none}\n"
	"  - {address: \"127.0.0.1:1110\", tls: starttls}\n"
	"  - {address: \"127.0.0.1:995\", tls: implicit}\n"
	"auth_failure_delay: 1s\n"
	"max_auth_failures: 3\n";

static char base[64];
static char mbox[128];
static unsigned serial;

static void
rm_tree(const char *dir)
{
	static const char *const subs[] = { "cur", "new", "tmp" };
	char path[512];

	for (size_t i = 0; i < 3; i++) {
		DIR *d;
		struct dirent *de;

		snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
		d = opendir(path);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			char f[1024];

			if (de->d_name[0] == '.')
				continue;
			snprintf(f, sizeof(f), "%s/%s", path, de->d_name);
			unlink(f);
		}
		closedir(d);
		rmdir(path);
	}
	rmdir(dir);
}

static void
cleanup(void)
{
	rm_tree(mbox);
	rmdir(base);
}

static void
put(const char *sub, const char *name, const void *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", mbox, sub, name);
	f = fopen(path, "w");
	if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) ||
	    fclose(f) != 0)
		abort();
}

/* make_maildir - a fresh mailbox with unique names (the module caches
 * sizes by name and mtime across sessions) */
static void
make_maildir(const uint8_t *msg, size_t len)
{
	static const char m1[] = "Subject: one\r\n\r\nhello\r\n.\r\n..two\r\n";
	static const char m2[] = "Subject: bare LF\n\nline\n.\nlast line";
	static const char m3[] = "";
	char name[128], path[512];

	rm_tree(mbox);
	if (mkdir(mbox, 0700) < 0)
		abort();
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", mbox,
			 (const char *[]){ "cur", "new", "tmp" }[i]);
		if (mkdir(path, 0700) < 0)
			abort();
	}
	serial++;
	snprintf(name, sizeof(name), "1700000000.M%uP1.fuzz", serial);
	put("new", name, m1, sizeof(m1) - 1);
	snprintf(name, sizeof(name), "1700000001.M%uP1.fuzz,S=%zu:2,S",
		 serial, sizeof(m2) - 1);
	put("cur", name, m2, sizeof(m2) - 1);
	snprintf(name, sizeof(name), "1700000002.M%uP1.fuzz:2,", serial);
	put("cur", name, m3, 0);
	snprintf(name, sizeof(name), "1700000003.M%uP1.fuzz,W=7", serial);
	put("new", name, msg, len);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(base, sizeof(base), "/tmp/satchel-fuzz-pop3.XXXXXX");
	if (mkdtemp(base) == NULL)
		abort();
	snprintf(mbox, sizeof(mbox), "%s/Maildir", base);
	atexit(cleanup);
	shim_init();
	shim_set_mailbox(mbox);
	shim_instance(&sc_module_pop3, conf);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_client *cl;
	const uint8_t *sep;
	size_t slen, pos, mlen;

	if (size < 2)
		return 0;
	slen = data[1];
	if (slen > size - 2)
		slen = size - 2;
	pos = 2 + slen;
	sep = memchr(data + pos, 0xff, size - pos);
	mlen = sep ? (size_t)(sep - (data + pos)) : size - pos;
	make_maildir(data + pos, mlen);
	pos += mlen + (sep != NULL);
	shim_begin(data + 2, slen);
	cl = shim_connect(data[0] % 3, "192.0.2.7");
	shim_run(true);
	while (pos < size && cl->c != NULL) {
		size_t len, sent = 0;

		sep = memchr(data + pos, 0xff, size - pos);
		len = sep ? (size_t)(sep - (data + pos)) : size - pos;
		while (sent < len && cl->c != NULL) {
			size_t n = shim_send(cl->c, data + pos + sent,
					     len - sent);

			shim_run(false);
			if (n == 0)
				break;
			sent += n;
		}
		shim_run(true);
		pos += len + (sep != NULL);
	}
	if (cl->c != NULL) {
		shim_send_eof(cl->c);
		shim_run(true);
	}
	FUZZ_CHECK(cl->s == NULL, "the session stayed open after the "
		   "client's EOF");
	if (getenv("FUZZ_DEBUG") != NULL)
		fprintf(stderr, "--- server said:\n%.*s", (int)cl->out_len,
			cl->out ? cl->out : "");
	for (size_t i = 0; i < cl->out_len; i++)
		FUZZ_CHECK(cl->out[i] != '\n' || (i > 0 &&
			   cl->out[i - 1] == '\r'),
			   "bare LF at byte %zu of the server's output", i);
	shim_client_free(cl);
	shim_end();
	return 0;
}
