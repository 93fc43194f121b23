/* SPDX-License-Identifier: MIT */
/*
 * smtp_message.c - the message path: DATA and BDAT (CHUNKING, RFC 3030),
 * dot-unstuffing and line-end normalisation, the header scan (hop count),
 * our Received: line, the DATA_POST hook, the queue commit and the 250
 * once the message is durable; and the end of a mail transaction.
 *
 * The rest of the module reaches it only through smtp_int.h: the DATA and
 * BDAT commands (the command table), the S_DATA and S_BDAT input steps
 * (the session's input loop), and a transaction's end (free, reset, the
 * session going away). Runs on the event loop thread, like the rest of
 * the module.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <satchel/satchel.h>

#include "smtp_int.h"

#define SMTP_TEXT_MAX	998	/* RFC 5321 4.5.3.1.6: 1000 with CRLF  */
#define SMTP_WBUF	65536	/* message bytes gathered per tx write */
#define SMTP_MAX_HOPS	100	/* Received: headers: a mail loop      */

/* ---- transaction ---- */

void
smtp_tx_free(struct smtp_tx **txp)
{
	struct smtp_tx *tx = *txp;

	if (tx == NULL)
		return;
	free(tx->sender);
	free(tx->mail_params);
	for (size_t i = 0; i < tx->rcpt_count; i++) {
		free(tx->rcpts[i].address);
		free(tx->rcpts[i].params);
	}
	free(tx->rcpts);
	free(tx->env_rcpts);
	free(tx->final_sender);
	free(tx->bdat_text);
	free(tx->wbuf);
	free(tx);
	*txp = NULL;
}

/* smtp_tx_reset - ends the transaction; aborts a queue file still being
 * written (one being committed belongs to the queue already). */
void
smtp_tx_reset(struct smtp_session *ss)
{
	if (ss->tx == NULL)
		return;
	if (ss->tx->qtx != NULL && !ss->committing)
		sc_queue_tx_abort(ss->tx->qtx);
	ss->tx->qtx = NULL;
	smtp_tx_free(&ss->tx);
	ss->committing = false;
	sc_session_set_busy(ss->s, false);
}

/* smtp_tx_session_end - the session is going away: frees its transactions,
 * discarding a message still being written (one being committed belongs
 * to the queue already). */
void
smtp_tx_session_end(struct smtp_session *ss)
{
	if (ss->tx != NULL && ss->tx->qtx != NULL && !ss->committing) {
		sc_log_session(SC_LOG_INFO, ss->s, "smtp: connection lost "
			       "during message data; message discarded");
		sc_queue_tx_abort(ss->tx->qtx);
	}
	if (ss->tx != NULL)
		ss->tx->qtx = NULL;
	smtp_tx_free(&ss->tx);
	smtp_tx_free(&ss->held_tx);	/* it never has a queue file open */
}

/* tx_flush - hands the gathered message bytes to the queue file. */
static void
tx_flush(struct smtp_tx *tx)
{
	if (tx->wlen == 0 || tx->qtx == NULL)
		return;
	if (!tx->write_failed &&
	    sc_queue_tx_write(tx->qtx, tx->wbuf, tx->wlen) != 0)
		tx->write_failed = true;
	tx->wlen = 0;
}

/* tx_scan_headers - counts header lines and Received: headers in the
 * message bytes as they stream by (DATA lines or BDAT chunks alike). */
static void
tx_scan_headers(struct smtp_tx *tx, const char *p, size_t len)
{
	for (size_t i = 0; i < len && tx->in_headers; i++) {
		char ch = p[i];

		if (tx->at_bol) {
			tx->at_bol = false;
			tx->hdr_len = 0;
			if (ch == '\r' || ch == '\n') {
				/* the empty line ends the header */
				tx->in_headers = false;
				break;
			}
			if (ch != ' ' && ch != '\t')
				tx->header_count++;
		}
		if (tx->hdr_len < sizeof(tx->hdr_start))
			tx->hdr_start[tx->hdr_len] = ch;
		tx->hdr_len++;
		if (tx->hdr_len == sizeof(tx->hdr_start) - 1 &&
		    strncasecmp(tx->hdr_start, "received:", 9) == 0)
			tx->received_count++;
		if (ch == '\n')
			tx->at_bol = true;
	}
}

/* tx_feed - message bytes (after dot-unstuffing) into the queue file,
 * watching the size limit. */
static void
tx_feed(struct smtp_session *ss, const char *p, size_t len)
{
	struct smtp_tx *tx = ss->tx;

	tx->size += len;
	if (tx->size > ss->conf->max_message_size)
		tx->too_big = true;
	if (tx->too_big || tx->line_too_long || tx->qtx == NULL)
		return;
	tx_scan_headers(tx, p, len);
	while (len > 0) {
		size_t n = SMTP_WBUF - tx->wlen;

		if (n > len)
			n = len;
		memcpy(tx->wbuf + tx->wlen, p, n);
		tx->wlen += n;
		p += n;
		len -= n;
		if (tx->wlen == SMTP_WBUF)
			tx_flush(tx);
	}
}

/* tx_feed_line - one DATA line (without its line end, dot-unstuffed) and
 * its CRLF. The line ended at an LF, so any CR inside it is a bare CR: it
 * becomes CRLF, so a stored message has only canonical line ends and a
 * smuggled "\r.\r" is plain text that a relay dot-stuffs (Postfix's
 * smtpd_forbid_bare_newline = normalize). */
static void
tx_feed_line(struct smtp_session *ss, const char *p, size_t len)
{
	const char *cr;

	while (len > 0 && (cr = memchr(p, '\r', len)) != NULL) {
		tx_feed(ss, p, (size_t)(cr - p));
		tx_feed(ss, "\r\n", 2);
		len -= (size_t)(cr - p) + 1;
		p = cr + 1;
	}
	tx_feed(ss, p, len);
	tx_feed(ss, "\r\n", 2);
}

/* tx_feed_chunk - BDAT chunk bytes with every bare CR and bare LF turned
 * into CRLF, as DATA lines are. A CR at the end of the bytes waits in
 * tx->bdat_cr for the next byte, which may be its LF (even in the next
 * chunk); bdat_chunk_done ends a CR left at the end of the message. */
static void
tx_feed_chunk(struct smtp_session *ss, const char *p, size_t len)
{
	struct smtp_tx *tx = ss->tx;
	size_t start = 0;

	for (size_t i = 0; i < len; i++) {
		if (tx->bdat_cr) {
			tx->bdat_cr = false;
			tx_feed(ss, "\r\n", 2);
			if (p[i] == '\n') {
				start = i + 1;
				continue;
			}
		}
		if (p[i] != '\r' && p[i] != '\n')
			continue;
		tx_feed(ss, p + start, i - start);
		if (p[i] == '\r')
			tx->bdat_cr = true;
		else
			tx_feed(ss, "\r\n", 2);
		start = i + 1;
	}
	tx_feed(ss, p + start, len - start);
}

/* ---- DATA / BDAT ---- */

/*
 * submission_fields - RFC 6409 8.2, 8.3: a submission server adds Date:
 * and Message-ID: when the client left them out. Through the message API
 * (after sc_message_finish, before DATA_POST), so milters and modules see
 * them as stored. 0, or -1 with errno.
 */
static int
submission_fields(struct smtp_session *ss, struct sc_message *m)
{
	char val[512];
	struct tm tm;
	time_t now = time(NULL);

	if (sc_message_header_find(m, "Date", 1) < 0) {
		localtime_r(&now, &tm);
		strftime(val, sizeof(val), "%a, %d %b %Y %H:%M:%S %z", &tm);
		if (sc_message_header_insert(m, SC_HEADER_BOTTOM, "Date",
					     val) != 0)
			return -1;
	}
	if (sc_message_header_find(m, "Message-ID", 1) < 0) {
		struct timespec ts;

		/* the queue id is unique on this host; the time makes it
		 * unique across a queue id reused after years */
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(val, sizeof(val), "<%lld.%s@%s>",
			 (long long)ts.tv_sec,
			 sc_queue_tx_id(ss->tx->qtx), sc_config_hostname());
		if (sc_message_header_insert(m, SC_HEADER_BOTTOM,
					     "Message-ID", val) != 0)
			return -1;
		sc_log_session(SC_LOG_DEBUG, ss->s, "smtp: %s: Message-ID "
			       "%s added (submission)",
			       sc_queue_tx_id(ss->tx->qtx), val);
	}
	return 0;
}

/* msg_begin - opens the queue file and writes our Received: header. On
 * failure it frees what it took and sets *why_r to the text of the 451
 * 4.3.0 the caller sends (DATA at once, BDAT after reading the chunk). */
static int
msg_begin(struct smtp_session *ss, const char **why_r)
{
	struct smtp_tx *tx = ss->tx;
	struct sc_envelope env;
	const char *err = NULL, *helo = sc_session_helo(ss->s);
	const char *tlsd = sc_conn_tls_desc(ss->c);
	const char *auth = sc_session_auth_user(ss->s);
	char date[64], val[2048], proto[16];
	struct tm tm;
	time_t now = time(NULL);
	int n;

	/* a failed DATA may be retried by another DATA: start afresh */
	free(tx->env_rcpts);
	free(tx->wbuf);
	tx->wlen = 0;
	tx->env_rcpts = calloc(tx->rcpt_count, sizeof(*tx->env_rcpts));
	tx->wbuf = malloc(SMTP_WBUF);
	if (tx->env_rcpts == NULL || tx->wbuf == NULL) {
		*why_r = "Error: out of memory";
		goto fail;
	}
	for (size_t i = 0; i < tx->rcpt_count; i++) {
		tx->env_rcpts[i].address = tx->rcpts[i].address;
		tx->env_rcpts[i].params = tx->rcpts[i].params;
	}
	memset(&env, 0, sizeof(env));
	env.sender = tx->sender;
	env.params = tx->mail_params;
	env.rcpt_count = tx->rcpt_count;
	env.rcpts = tx->env_rcpts;
	env.auth_user = auth;
	env.client_ip = sc_session_client_ip(ss->s);
	env.helo = helo;
	tx->qtx = sc_queue_tx_begin(ss->s, &env, &err);
	if (tx->qtx == NULL) {
		sc_log_session(SC_LOG_ERROR, ss->s, "smtp: cannot open a "
			       "queue file: %s", err ? err : "unknown error");
		*why_r = "Error: queue file write error";
		goto fail;
	}
	tx->in_headers = true;
	tx->at_bol = true;
	/* RFC 3848 protocol names; RFC 6531 3.7.3's for SMTPUTF8 */
	snprintf(proto, sizeof(proto), "%s%s%s",
		 tx->smtputf8 ? "UTF8SMTP" : ss->esmtp ? "ESMTP" : "SMTP",
		 tlsd ? "S" : "", auth ? "A" : "");
	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	/* through the message API, so DATA_POST sees it as field 0 */
	n = snprintf(val, sizeof(val),
		     "from %s (%s [%s])\r\n"
		     "\tby %s (satchel) with %s%s%s%s\r\n"
		     "\tid %s%s%s%s;\r\n"
		     "\t%s",
		     helo ? helo : "unknown", smtp_rdns_name(ss),
		     sc_session_client_ip(ss->s),
		     sc_config_hostname(), proto,
		     tlsd ? " (" : "", tlsd ? tlsd : "", tlsd ? ")" : "",
		     sc_queue_tx_id(tx->qtx),
		     tx->rcpt_count == 1 ? "\r\n\tfor <" : "",
		     tx->rcpt_count == 1 ? tx->rcpts[0].address : "",
		     tx->rcpt_count == 1 ? ">" : "", date);
	if (n < 0 || (size_t)n >= sizeof(val) ||
	    sc_message_header_insert(sc_queue_tx_message(tx->qtx),
				     SC_HEADER_TOP, "Received", val) != 0)
		tx->write_failed = true;
	tx->data_started = true;
	return 0;
fail:
	free(tx->env_rcpts);
	free(tx->wbuf);
	tx->env_rcpts = NULL;
	tx->wbuf = NULL;
	return -1;
}

static void commit_done(void *arg, const char *queue_id, const char *error);

/* msg_commit_then - after DATA_POST: commit, answer from the callback. */
static void
msg_commit_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	struct smtp_tx *tx = ss->tx;
	struct sc_message *m;

	if (out->result != SC_CONT && out->result != SC_OK) {
		smtp_reply_outcome(ss, out, 550, "5.7.1", "Message rejected");
		smtp_tx_reset(ss);
		smtp_enter_state(ss, S_READY);
		return;
	}
	smtp_enter_state(ss, S_READY);
	m = sc_queue_tx_message(tx->qtx);
	if (sc_message_discarded(m)) {
		/* a module took it (milter DISCARD, every recipient
		 * removed): the client hears what it would otherwise */
		sc_log_session(SC_LOG_INFO, ss->s, "smtp: %s: from=<%s> "
			       "discarded by %s", sc_queue_tx_id(tx->qtx),
			       tx->sender, sc_message_rcpt_count(m) == 0 ?
			       "a module (no recipient left)" : "a module");
		smtp_reply(ss, 250, "2.0.0", "Ok: queued as %s",
			   sc_queue_tx_id(tx->qtx));
		smtp_tx_reset(ss);
		return;
	}
	/* what is stored, for the log line once it is durable */
	tx->final_rcpts = sc_message_rcpt_count(m);
	free(tx->final_sender);
	tx->final_sender = strdup(sc_message_sender(m));
	ss->committing = true;
	smtp_ss_pause(ss);
	sc_queue_tx_commit(tx->qtx, commit_done, ss);
}

static void
commit_done(void *arg, const char *queue_id, const char *error)
{
	struct smtp_session *ss = arg;
	struct smtp_tx *tx = ss->tx;

	smtp_ss_enter(ss);
	ss->pending = false;
	tx->qtx = NULL;		/* freed by the core */
	ss->committing = false;
	if (queue_id == NULL) {
		sc_log_session(SC_LOG_ERROR, ss->s, "smtp: queue commit "
			       "failed: %s", error ? error : "unknown error");
		smtp_reply(ss, 451, "4.3.0", "Error: queue file write error");
	} else {
		sc_log_session(SC_LOG_INFO, ss->s, "smtp: %s: from=<%s> "
			       "nrcpt=%zu size=%llu%s%s", queue_id,
			       tx->final_sender ? tx->final_sender :
			       tx->sender, tx->final_rcpts,
			       (unsigned long long)tx->size,
			       sc_session_auth_user(ss->s) ? " auth=" : "",
			       sc_session_auth_user(ss->s) ?
			       sc_session_auth_user(ss->s) : "");
		smtp_reply(ss, 250, "2.0.0", "Ok: queued as %s", queue_id);
	}
	smtp_tx_reset(ss);
	smtp_ss_resume(ss);
	smtp_ss_leave(ss);
}

/* msg_end - the final dot or the last BDAT chunk: refuse a broken message
 * (it was read to its end, so the session stays in sync) or hand it to
 * DATA_POST and the queue. */
static void
msg_end(struct smtp_session *ss)
{
	struct smtp_tx *tx = ss->tx;

	smtp_enter_state(ss, S_READY);
	if (tx->too_big) {
		smtp_reply(ss, 552, "5.3.4", "Message size exceeds fixed "
			   "maximum message size");
		smtp_tx_reset(ss);
		return;
	}
	if (tx->line_too_long) {
		smtp_reply(ss, 552, "5.6.0", "Message contains a line longer "
			   "than %d characters", SMTP_TEXT_MAX);
		smtp_tx_reset(ss);
		return;
	}
	tx_flush(tx);
	if (tx->write_failed) {
		smtp_reply(ss, 451, "4.3.0", "Error: queue file write error");
		smtp_tx_reset(ss);
		return;
	}
	if (tx->received_count > SMTP_MAX_HOPS) {
		smtp_reply(ss, 554, "5.4.6", "Too many hops (%zu Received: "
			   "headers): mail loop", tx->received_count);
		smtp_tx_reset(ss);
		return;
	}
	if (sc_message_finish(sc_queue_tx_message(tx->qtx)) != 0 ||
	    (ss->lc->mode == MODE_SUBMISSION &&
	     submission_fields(ss, sc_queue_tx_message(tx->qtx)) != 0)) {
		if (errno == E2BIG)
			smtp_reply(ss, 552, "5.3.4", "Message header section "
				   "exceeds %u bytes", SC_MESSAGE_HEADER_MAX);
		else
			smtp_reply(ss, 451, "4.3.0", "Error: queue file "
				   "write error");
		smtp_tx_reset(ss);
		return;
	}
	ss->dreq.queue_id_hint = sc_queue_tx_id(tx->qtx);
	ss->dreq.size = tx->size;
	ss->dreq.header_count = tx->header_count;
	ss->dreq.received_count = tx->received_count;
	smtp_run_hook(ss, SC_HOOK_DATA_POST, &ss->dreq, msg_commit_then);
	/* While modules check the message (a milter may take minutes), keep
	 * watching the connection: a client that resets it ends the session,
	 * which cancels the check and drops the message it will never hear
	 * about. Input pipelined meanwhile waits in the buffer (the core
	 * stops reading at its cap); a FIN (half-close) is only noted. */
	if (ss->pending && !ss->closing && !ss->committing)
		sc_conn_read_start(ss->c);
}

static void
data_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	const char *why = NULL;

	if (out->result != SC_CONT && out->result != SC_OK) {
		smtp_reply_outcome(ss, out, 554, "5.7.1", "Message refused");
		return;
	}
	if (msg_begin(ss, &why) != 0) {
		smtp_reply(ss, 451, "4.3.0", "%s", why);
		return;
	}
	ss->tx->prev_bare_lf = false;
	smtp_enter_state(ss, S_DATA);
	smtp_reply(ss, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

void
smtp_cmd_data(struct smtp_session *ss, char *args)
{
	(void)args;
	if (ss->tx == NULL) {
		smtp_reply(ss, 503, "5.5.1", "Error: need MAIL command");
		return;
	}
	if (ss->tx->rcpt_count == 0) {
		smtp_reply(ss, 503, "5.5.1", "Error: need RCPT command");
		return;
	}
	if (ss->tx->bdat || ss->tx->data_started) {
		smtp_reply(ss, 503, "5.5.1", "Error: DATA not allowed after "
			   "BDAT");
		return;
	}
	smtp_run_hook(ss, SC_HOOK_DATA, NULL, data_then);
}

/* bdat_fail - the current chunk will be read and dropped, then this reply
 * sent; every later chunk of the transaction gets the same reply until
 * RSET (RFC 3030 2: the transaction failed; repeating a 4xx keeps a
 * pipelining client from reading a later 5xx as a permanent failure). */
static void
bdat_fail(struct smtp_session *ss, int code, const char *esc,
	  const char *text)
{
	struct smtp_tx *tx = ss->tx;

	tx->bdat_failed = true;
	tx->bdat_code = code;
	snprintf(tx->bdat_esc, sizeof(tx->bdat_esc), "%s", esc ? esc : "");
	free(tx->bdat_text);
	tx->bdat_text = strdup(text ? text : "Error");
	if (tx->qtx != NULL && !ss->committing) {
		sc_queue_tx_abort(tx->qtx);
		tx->qtx = NULL;
	}
}

static void
bdat_then(struct smtp_session *ss, const struct sc_hook_outcome *out)
{
	const char *why = NULL;

	if (out->result != SC_CONT && out->result != SC_OK) {
		int code = out->reply.code ? out->reply.code :
			   out->result == SC_DENYSOFT ? 450 : 554;

		bdat_fail(ss, code, out->reply.esc[0] ? out->reply.esc :
			  code >= 500 ? "5.7.1" : "4.7.1",
			  out->reply.text ? out->reply.text :
			  "Message refused");
		if (out->result == SC_DENYDISCONNECT ||
		    out->result == SC_DENYSOFTDISCONNECT || code == 421) {
			smtp_reply_outcome(ss, out, 554, "5.7.1",
					   "Message refused");
			return;
		}
	} else if (msg_begin(ss, &why) != 0) {
		/* answered once the chunk is read: one reply per BDAT */
		bdat_fail(ss, 451, "4.3.0", why);
	}
	smtp_enter_state(ss, S_BDAT);
}

void
smtp_cmd_bdat(struct smtp_session *ss, char *args)
{
	struct smtp_tx *tx = ss->tx;
	char *end = NULL;
	unsigned long long n;
	bool last = false;

	errno = 0;
	n = strtoull(args, &end, 10);
	if (*args < '0' || *args > '9' || errno || end - args > 19) {
		/* the chunk size is unknown: the client is out of sync */
		smtp_reply(ss, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		smtp_ss_close_soon(ss);
		return;
	}
	while (*end == ' ')
		end++;
	if (strcasecmp(end, "LAST") == 0)
		last = true;
	else if (*end != '\0') {
		smtp_reply(ss, 501, "5.5.4", "Syntax: BDAT size [LAST]");
		smtp_ss_close_soon(ss);
		return;
	}
	if (tx == NULL || tx->rcpt_count == 0) {
		/* read and drop the chunk into a throw-away transaction, then
		 * say why; a real one (MAIL without RCPT yet) is set aside
		 * untouched, so RCPT and BDAT may still follow */
		struct smtp_tx *dummy = calloc(1, sizeof(*dummy));

		if (dummy == NULL) {
			smtp_reply(ss, 451, "4.3.0", "Error: out of memory");
			smtp_ss_close_soon(ss);
			return;
		}
		ss->held_tx = tx;
		ss->tx = dummy;
		dummy->throwaway = true;
		bdat_fail(ss, 503, "5.5.1", tx == NULL ?
			  "Error: need MAIL command" :
			  "Error: need RCPT command");
		tx = dummy;
		tx->bdat_remaining = n;
		tx->bdat_chunk = n;
		smtp_enter_state(ss, S_BDAT);
		return;
	}
	if (tx->data_started && !tx->bdat) {
		smtp_reply(ss, 503, "5.5.1", "Error: BDAT not allowed after "
			   "DATA");
		smtp_ss_close_soon(ss);
		return;
	}
	tx->bdat_remaining = n;
	tx->bdat_chunk = n;
	tx->bdat_last = last;
	if (!tx->bdat_failed && tx->size + n > ss->conf->max_message_size) {
		tx->too_big = true;
		bdat_fail(ss, 552, "5.3.4", "Message size exceeds fixed "
			  "maximum message size");
	}
	if (!tx->bdat && !tx->bdat_failed) {
		tx->bdat = true;
		smtp_run_hook(ss, SC_HOOK_DATA, NULL, bdat_then);
		return;
	}
	tx->bdat = true;
	smtp_enter_state(ss, S_BDAT);
}

/* bdat_chunk_done - the whole chunk is read: answer it. */
static void
bdat_chunk_done(struct smtp_session *ss)
{
	struct smtp_tx *tx = ss->tx;

	smtp_enter_state(ss, S_READY);
	if (!tx->bdat_failed && tx->too_big)	/* bare line ends grew it */
		bdat_fail(ss, 552, "5.3.4", "Message size exceeds fixed "
			  "maximum message size");
	if (tx->bdat_failed) {
		smtp_reply(ss, tx->bdat_code, tx->bdat_esc, "%s",
			   tx->bdat_text ? tx->bdat_text : "Error");
		if (tx->throwaway) {
			smtp_tx_free(&ss->tx);
			ss->tx = ss->held_tx;
			ss->held_tx = NULL;
		} else if (tx->too_big)
			smtp_tx_reset(ss);
		return;
	}
	if (tx->bdat_last) {
		if (tx->bdat_cr) {	/* the message ended in a bare CR */
			tx->bdat_cr = false;
			tx_feed(ss, "\r\n", 2);
		}
		msg_end(ss);
		return;
	}
	smtp_reply(ss, 250, "2.0.0", "%llu bytes received",
		   (unsigned long long)tx->bdat_chunk);
}

/* smtp_bdat_step - takes chunk bytes as they arrive. 1 = progress, 0 = wait. */
int
smtp_bdat_step(struct smtp_session *ss)
{
	struct smtp_tx *tx = ss->tx;
	char buf[16384];

	while (tx->bdat_remaining > 0) {
		size_t want = tx->bdat_remaining < sizeof(buf) ?
			      (size_t)tx->bdat_remaining : sizeof(buf);
		size_t n = sc_conn_read(ss->c, buf, want);

		if (n == 0)
			return 0;
		tx->bdat_remaining -= n;
		if (!tx->bdat_failed)
			tx_feed_chunk(ss, buf, n);
	}
	bdat_chunk_done(ss);
	return 1;
}

/* smtp_data_step - one line of DATA. Only <CRLF>.<CRLF> ends the message: a
 * dot line ending in a bare LF, or after a line that did, is text (the
 * SMTP smuggling attacks of 2023), and so is a "." between bare CRs.
 * Every bare CR and bare LF is stored as CRLF (tx_feed_line). */
int
smtp_data_step(struct smtp_session *ss)
{
	struct smtp_tx *tx = ss->tx;
	const char *line = NULL;
	size_t len;
	bool bare = false;
	int r = sc_conn_getline(ss->c, SMTP_TEXT_MAX, &line, &len, &bare);

	if (r == 0)
		return 0;
	if (r < 0) {
		/* the core drops the rest of the line; we refuse the
		 * message at its end */
		tx->line_too_long = true;
		tx->prev_bare_lf = false;
		return 1;
	}
	if (len == 1 && line[0] == '.' && !bare && !tx->prev_bare_lf) {
		msg_end(ss);
		return 1;
	}
	tx->prev_bare_lf = bare;
	if (len > 0 && line[0] == '.') {
		line++;
		len--;
	}
	tx_feed_line(ss, line, len);
	return 1;
}
