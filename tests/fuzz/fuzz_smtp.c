/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_smtp.c - the smtp module (modules/smtp/, linked as it
 * is) on the fake core of shim.h: one client session per input, through
 * every command, MAIL/RCPT parameter, DATA and BDAT, AUTH PLAIN/LOGIN and
 * STARTTLS, with the hook verdicts, handshakes and queue commits the input
 * scripts (at once or later, so pipelined input waits and resumes).
 *
 * Input: byte 0 picks the listener (MX, submission, implicit TLS, no TLS;
 * two configs) and the client address (in relay_networks or not); byte 1
 * is the length of the script that follows (the decisions shim_byte()
 * hands out); the rest is what the client sends, in segments separated by
 * 0xff bytes: a segment is sent at once (pipelined), and the loop runs
 * until quiet - timers included - before the next.
 *
 * Checks besides the shim's own: every reply line is "NNN text" or
 * "NNN-text" ending in CRLF, and no session outlives its EOF.
 * FUZZ_DEBUG=1 prints the conversation.
 */
#include "shim.h"

#include <string.h>

extern const struct sc_module sc_module_smtp;

static const char conf_a[] =
	"listen:\n"
	"  - {address: \"127.0.0.1:25\", mode: mx, tls: starttls}\n"
	"  - {address: \"127.0.0.1:587\", mode: submission, tls: starttls}\n"
	"  - {address: \"127.0.0.1:465\", mode: submission, tls: implicit}\n"
	"  - {address: \"127.0.0.1:2525\", mode: mx, tls: none}\n"
	"max_message_size: 20K\n"
	"max_recipients: 5\n"
	"relay_networks: [10.0.0.0/8]\n"
	"enforce_sender: true\n"
	"auth_failure_delay: 1s\n";

static const char conf_b[] =
	"listen:\n"
	"  - {address: \"127.0.0.1:26\", mode: mx, tls: none}\n"
	"  - {address: \"127.0.0.1:588\", mode: submission, tls: none}\n"
	"banner: \"fuzz %s%n banner\"\n"
	"auth_failure_delay: 0s\n"
	"timeouts: {command: 1s, data: 2s}\n";

/* check_replies - what the server said, line by line */
static void
check_replies(const struct shim_client *cl)
{
	const char *p = cl->out, *end;

	if (p == NULL)
		return;
	end = p + cl->out_len;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));

		if (lf == NULL) {
			/* only a reply cut by the shim's bound may be open */
			FUZZ_CHECK(cl->out_total > cl->out_len,
				   "a reply without its line end");
			return;
		}
		FUZZ_CHECK(lf - p >= 5 && lf[-1] == '\r', "reply line not "
			   "ending in CRLF: %.*s", (int)(lf - p), p);
		FUZZ_CHECK(p[0] >= '2' && p[0] <= '5' && p[1] >= '0' &&
			   p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
			   (p[3] == ' ' || p[3] == '-'),
			   "malformed reply line: %.*s", (int)(lf - p), p);
		for (const char *q = p; q < lf - 1; q++)
			FUZZ_CHECK(*q != '\r', "bare CR inside a reply");
		p = lf + 1;
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	shim_init();
	shim_instance(&sc_module_smtp, conf_a);
	shim_instance(&sc_module_smtp, conf_b);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct shim_client *cl;
	size_t slen, pos;
	uint8_t flags;

	if (size < 2)
		return 0;
	flags = data[0];
	slen = data[1];
	if (slen > size - 2)
		slen = size - 2;
	shim_begin(data + 2, slen);
	pos = 2 + slen;
	cl = shim_connect(flags % 6, flags & 0x40 ? "10.1.2.3" : "192.0.2.7");
	shim_run(true);
	while (pos < size && cl->c != NULL) {
		const uint8_t *sep = memchr(data + pos, 0xff, size - pos);
		size_t len = sep ? (size_t)(sep - (data + pos)) : size - pos;
		size_t sent = 0;

		/* a full input buffer waits until the module reads */
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
	if (cl->c != NULL && (flags & 0x80)) {
		shim_idle_timeout(cl->c);
		shim_run(true);
	}
	if (cl->c != NULL) {
		shim_send_eof(cl->c);
		shim_run(true);
	}
	FUZZ_CHECK(cl->s == NULL, "the session stayed open after the "
		   "client's EOF");
	if (getenv("FUZZ_DEBUG") != NULL)
		fprintf(stderr, "--- server said (%zu messages queued):\n%.*s",
			shim_committed(), (int)cl->out_len, cl->out);
	check_replies(cl);
	shim_client_free(cl);
	shim_end();
	return 0;
}
