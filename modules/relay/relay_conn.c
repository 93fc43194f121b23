/* SPDX-License-Identifier: MIT */
/*
 * relay_conn.c - the relay's connection to a next hop: its start (the
 * greeting is awaited), its events (data, drained output, loss, timeouts),
 * reading replies and checking their syntax (codes, multi-line replies,
 * enhanced status codes) before relay_client.c acts on them, and the
 * reply deadline. Event loop thread.
 */
#include "relay_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RELAY_LINE_MAX 2048	/* longest reply line we accept          */
#define RELAY_REPLY_LINES 100	/* lines of one reply we accept          */

/* reply_code - the code of a reply line (RFC 5321 4.2): three digits,
 * the first 2 to 5 (nothing else means anything to a client), then the
 * end, a space or a '-' (more lines follow). -1 for anything else. */
static int
reply_code(const char *line, size_t len)
{
	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-'))
		return -1;
	return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

/* esc_len - the length of the enhanced status code (RFC 3463: class
 * "." 1-3 digits "." 1-3 digits) leading t and followed by a space, or
 * 0; its class must be the reply code's, or it is only text. */
static size_t
esc_len(const char *t, size_t tl, int code)
{
	size_t i = 2;

	if (tl < 6 || t[0] != '0' + code / 100 || t[1] != '.')
		return 0;
	for (int part = 0; part < 2; part++) {
		size_t n = 0;

		while (i < tl && n < 4 && isdigit((unsigned char)t[i])) {
			i++;
			n++;
		}
		if (n == 0 || n > 3)
			return 0;
		if (part == 0) {
			if (i >= tl || t[i] != '.')
				return 0;
			i++;
		}
	}
	return i < tl && t[i] == ' ' ? i : 0;
}

/* job_bad_reply - the peer broke the reply syntax: a protocol error, so a
 * temporary failure. After the final dot it may have the message: defer
 * (and retry later) rather than hand it to the next host at once. */
static void
job_bad_reply(struct relay_job *job, const char *fmt, ...) SC_PRINTF(2, 3);
static void
job_bad_reply(struct relay_job *job, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	job_set_error(job, SC_DENYSOFT, 451, "4.5.0", "host %s %s",
		      job->peer, why);
	if (job->st == JS_DOT) {
		job_finish(job);
		return;
	}
	job_host_failed(job);
}

/* job_read_replies - parses buffered reply lines; a complete reply goes to
 * job_handle_reply. Stops when the handler moved the job elsewhere. */
static void
job_read_replies(struct relay_job *job, struct sc_conn *c)
{
	const char *line = NULL;
	size_t len;
	int rc;

	while (job->conn == c && !job->finished &&
	       job->st != JS_TLS && job->st != JS_SCAN &&
	       (rc = sc_conn_getline(c, RELAY_LINE_MAX, &line, &len,
				     NULL)) != 0) {
		int code = rc < 0 ? -1 : reply_code(line, len);

		if (code < 0) {
			job_bad_reply(job, "sent a malformed reply");
			return;
		}
		if (job->reply_lines > 0 && code != job->code) {
			/* RFC 5321 4.2.1: every line has the same code */
			job_bad_reply(job, "sent a malformed reply (%d after "
				      "%d within one reply)", code, job->code);
			return;
		}
		if (++job->reply_lines > RELAY_REPLY_LINES) {
			/* no real reply is that long: a peer keeping us
			 * busy (each line re-arms the idle timeout) */
			job_bad_reply(job, "sent a reply of more than %u lines",
				      RELAY_REPLY_LINES);
			return;
		}
		bool more = len > 3 && line[3] == '-';
		const char *t = len > 4 ? line + 4 : "";
		size_t tl = len > 4 ? len - 4 : 0;

		if (job->reply_lines == 1) {
			size_t e = esc_len(t, tl, code);

			job->code = code;
			job->esc[0] = '\0';
			/* an enhanced status code may lead the text */
			if (e > 0 && e < sizeof(job->esc)) {
				memcpy(job->esc, t, e);
				job->esc[e] = '\0';
				t += e + 1;
				tl -= e + 1;
			}
		}
		if (job->st == JS_EHLO) {
			char kw[256];
			size_t kl = tl < sizeof(kw) - 1 ? tl : sizeof(kw) - 1;
			memcpy(kw, t, kl);
			kw[kl] = '\0';
			if (job->ehlo_first_line) {
				job->ehlo_first_line = false;
				if (code / 100 == 2 && job_is_loop(job, kw)) {
					job_loop_detected(job);
					return;
				}
			} else {
				job_ehlo_keyword(job, kw);
			}
		}
		/* keep the text (lines joined by spaces), bounded, printable */
		for (size_t i = 0; i < tl && job->tlen < sizeof(job->text) - 2;
		     i++) {
			unsigned char ch = (unsigned char)t[i];
			job->text[job->tlen++] = ch < 0x20 || ch == 0x7f
				? '?' : (char)ch;
		}
		if (more) {
			if (job->tlen < sizeof(job->text) - 2)
				job->text[job->tlen++] = ' ';
			job->text[job->tlen] = '\0';
			continue;
		}
		job->text[job->tlen] = '\0';
		job->reply_lines = 0;
		job_handle_reply(job);
		job->tlen = 0;
		job->text[0] = '\0';
	}
}

/* job_conn_lost - the connection broke or timed out: try the next
 * address, unless the peer may have the message already. */
static void
job_conn_lost(struct relay_job *job, const char *what)
{
	job_set_error(job, SC_DENYSOFT, 451, "4.4.2", "%s %s%s", what,
		      job->peer, job->st == JS_DOT
				 ? " after the end of data" : "");
	if (job->st == JS_DOT) {
		/* another host now could deliver it twice; retry later */
		job_finish(job);
		return;
	}
	job_host_failed(job);
}

static void
job_conn_event(struct sc_conn *c, enum sc_conn_event ev, void *arg)
{
	struct relay_job *job = arg;

	if (job->conn != c || job->finished)
		return;
	job_ref(job);
	switch (ev) {
	case SC_CONN_DATA:
		job_read_replies(job, c);
		break;
	case SC_CONN_DRAINED:
		if (job->st == JS_BODY && job->waiting_drain) {
			job->waiting_drain = false;
			job_body_pump(job);
		}
		break;
	case SC_CONN_EOF:
	case SC_CONN_ERROR:
		job_conn_lost(job, "lost connection with");
		break;
	case SC_CONN_TIMEOUT:
		job_conn_lost(job, "timeout talking to");
		break;
	}
	job_unref(job);
}

/* job_reply_deadline - the reply (or body block) did not complete in
 * time, however much of it trickled in. */
void
job_reply_deadline(struct sc_timer *t, void *arg)
{
	struct relay_job *job = arg;

	(void)t;
	if (job->finished || job->conn == NULL)
		return;
	job_ref(job);
	job_conn_lost(job, "timeout talking to");
	job_unref(job);
}

/* ---- connecting ---- */

void
job_connected(struct sc_conn *c, int error, void *arg)
{
	struct relay_job *job = arg;

	if (job->finished) {
		if (c != NULL)
			sc_conn_close(c);
		job_unref(job);
		return;
	}
	job_unref(job);
	if (c == NULL) {
		job_set_error(job, SC_DENYSOFT, 451, "4.4.1",
			      "connect to %s:%u: %s", job->peer,
			      job->hosts[job->hi].port,
			      strerror(error < 0 ? -error : error));
		job->ai++;
		job_next_address(job);
		return;
	}
	job->conn = c;
	job->tls_active = false;
	job->authenticated = false;
	job->tlen = 0;
	job->reply_lines = 0;
	job->st = JS_GREETING;
	sc_conn_set_handler(c, job_conn_event, job);
	sc_conn_set_timeout(c, job->r->conf->timeouts.greeting);
	job_deadline(job, job->r->conf->timeouts.greeting);
	sc_conn_read_start(c);
}
