/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_relay.c - the relay module (modules/relay/, linked as
 * it is) as an SMTP client on the fake core of shim.h, talking to a fuzzed
 * server: greeting, EHLO keywords (PIPELINING, SIZE, 8BITMIME, SMTPUTF8,
 * DSN, STARTTLS, AUTH), multi-line and malformed replies, enhanced status
 * codes, STARTTLS and AUTH PLAIN/LOGIN at a smarthost, the pipelined
 * transaction and the body, for a delivery to two domains; DNS answers
 * (MX, A, AAAA, TLSA, DNSSEC), connects and handshakes are scripted.
 *
 * Input: byte 0 picks the relay instance (MX and opportunistic TLS; a
 * smarthost with AUTH and required TLS; DANE) and the MAIL parameters;
 * byte 1 is the length of the script that follows; then segments
 * separated by 0xff bytes: the first is the message, each further one is
 * what the server sends next, whenever the relay waits for it.
 *
 * Checks besides the shim's own (one-line delivery results, every
 * delivery finished, no connection left open): all the relay sends ends
 * its lines in CRLF, with no bare CR or LF (a body with bare line ends is
 * sent canonical, so no smuggled end of data reaches the next hop).
 * FUZZ_DEBUG=1 prints the conversation.
 */
#include "shim.h"

#include <string.h>
#include <unistd.h>

extern const struct sc_module sc_module_relay;

#define MAX_ROUNDS 2000

static char pwfile[64];

static const char conf_mx[] =
	"tls: opportunistic\n"
	"max_connections_per_destination: 1\n"
	"timeouts: {greeting: 10s, ehlo: 10s, data_done: 1m, total: 5m}\n";

static const char conf_dane[] = "tls: dane\n";

static void
cleanup(void)
{
	unlink(pwfile);
}

/* check_sent - the relay's commands and body: CRLF line ends only */
static void
check_sent(const char *out, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (out[i] == '\n')
			FUZZ_CHECK(i > 0 && out[i - 1] == '\r',
				   "the relay sent a bare LF (byte %zu)", i);
		if (out[i] == '\r')
			FUZZ_CHECK(i + 1 < len && out[i + 1] == '\n',
				   "the relay sent a bare CR (byte %zu)", i);
	}
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char conf[512];
	int fd;

	(void)argc;
	(void)argv;
	snprintf(pwfile, sizeof(pwfile), "/tmp/satchel-fuzz-relay.XXXXXX");
	fd = mkstemp(pwfile);
	if (fd < 0 || write(fd, "s3cret\n", 7) != 7)
		abort();
	close(fd);
	atexit(cleanup);
	shim_init();
	shim_instance(&sc_module_relay, conf_mx);
	snprintf(conf, sizeof(conf),
		 "smarthost: \"smart.remote.test:2525\"\n"
		 "smarthost_auth: {user: relay@example.test, "
		 "password_file: %s}\n"
		 "tls: required\n"
		 "routes: {other.test: \"[127.0.0.9]:26\"}\n", pwfile);
	shim_instance(&sc_module_relay, conf);
	/* tls: dane needs the root trust anchor (dns-root-data) */
	if (access("/usr/share/dns/root.key", R_OK) == 0)
		shim_instance(&sc_module_relay, conf_dane);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const params[4] = { "",
		"BODY=8BITMIME ENVID=q+2Bx RET=HDRS", "SMTPUTF8 BODY=8BITMIME",
		"RET=FULL" };
	static const struct shim_delivery_rcpt rcpts[] = {
		{ "bob@remote.test", "NOTIFY=SUCCESS,FAILURE "
		  "ORCPT=rfc822;bob@remote.test" },
		{ "carol@remote.test", "" },
		{ "dave@other.test", "NOTIFY=NEVER" },
	};
	const uint8_t *sep;
	size_t slen, pos, mlen;
	unsigned rounds = 0;

	if (size < 2)
		return 0;
	slen = data[1];
	if (slen > size - 2)
		slen = size - 2;
	pos = 2 + slen;
	sep = memchr(data + pos, 0xff, size - pos);
	mlen = sep ? (size_t)(sep - (data + pos)) : size - pos;
	shim_begin(data + 2, slen);
	shim_deliver((data[0] & 3) % shim_driver_count(),
		     data[0] & 0x10 ? "" : "alice@example.test",
		     params[(data[0] >> 2) & 3], rcpts, 3,
		     data[0] & 0x20 ? "127.0.0.7:25" : NULL,
		     data + pos, mlen);
	pos += mlen + (sep != NULL);
	while (shim_deliveries_open() > 0 && rounds++ < MAX_ROUNDS) {
		struct sc_conn *c, *waiting = NULL;

		shim_run(false);
		/* what each connection sent; the server answers the one
		 * that spoke last (each job waits for its reply) */
		for (c = shim_outbound(NULL); c != NULL;
		     c = shim_outbound(c)) {
			size_t olen;
			const char *out = shim_take_output(c, &olen);

			if (getenv("FUZZ_DEBUG") != NULL && olen > 0)
				fprintf(stderr, "C%p: %.*s", (void *)c,
					(int)olen, out);
			check_sent(out, olen);
			if (olen > 0 || waiting == NULL)
				waiting = c;
		}
		if (waiting == NULL) {
			/* waiting for a timer (a deadline, a connection
			 * slot): time passes */
			shim_run(true);
			continue;
		}
		if (pos < size) {
			size_t len;

			sep = memchr(data + pos, 0xff, size - pos);
			len = sep ? (size_t)(sep - (data + pos)) : size - pos;
			if (getenv("FUZZ_DEBUG") != NULL)
				fprintf(stderr, "S%p: %.*s", (void *)waiting,
					(int)len, (const char *)data + pos);
			shim_send(waiting, data + pos, len);
			pos += len + (sep != NULL);
			if (len == 0)
				shim_run(true);	/* silence: a timeout */
		} else {
			shim_send_eof(waiting);
			shim_run(true);
		}
	}
	FUZZ_CHECK(rounds <= MAX_ROUNDS, "the delivery never ended");
	shim_end();
	return 0;
}
