/* SPDX-License-Identifier: MIT */
/*
 * relay_body.c - the message body: the scan for 8-bit data (for a peer
 * without 8BITMIME) and sending it after DATA, dot-stuffed, with bare CR
 * and LF made CRLF, in chunks read from the queue file. The reads run on
 * the thread pool (job_scan_work, job_chunk_work); everything else on the
 * event loop thread.
 */
#include "relay_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RELAY_CHUNK (64 * 1024)
#define RELAY_HIGH_WATER (256 * 1024)	/* output bytes before we wait */

void
job_scan_work(void *arg)
{
	struct relay_job *job = arg;
	char buf[RELAY_CHUNK];
	uint64_t off = 0;
	ssize_t n;

	/* pool thread: plain file reads only, within the message */
	while (off < job->size) {
		size_t want = job->size - off < sizeof(buf)
			? (size_t)(job->size - off) : sizeof(buf);
		n = pread(job->fd, buf, want, (off_t)(job->base + off));
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			if ((unsigned char)buf[i] & 0x80) {
				job->has_8bit = true;
				return;
			}
		off += (uint64_t)n;
	}
}

void
job_scan_done(void *arg)
{
	struct relay_job *job = arg;

	job->scan_running = false;
	job->scanned = true;
	if (job->finished || job->st != JS_SCAN || job->conn == NULL) {
		job_unref(job);
		return;
	}
	job->st = JS_TRANSACTION;
	job_unref(job);
	job_start_transaction(job);
}

/* ---- the body ---- */

static void
job_chunk_work(void *arg)
{
	struct relay_job *job = arg;
	ssize_t n;

	/* pool thread: one read of the queue file, never past the message
	 * (the queue file may go on with its envelope) */
	size_t want = job->size - job->off < RELAY_CHUNK
		? (size_t)(job->size - job->off) : RELAY_CHUNK;
	n = want == 0 ? 0 : pread(job->fd, job->chunk, want,
				  (off_t)(job->base + job->off));
	if (n < 0) {
		job->chunk_err = errno;
		job->chunk_len = 0;
	} else {
		job->chunk_err = 0;
		job->chunk_len = (size_t)n;
	}
}

/* job_chunk_write - dot-stuffs the chunk, mending bare LFs and CRs, into
 * the connection's output. */
static void
job_chunk_write(struct relay_job *job)
{
	const char *p = job->chunk, *end = p + job->chunk_len;
	const char *start = p;

	for (; p < end; p++) {
		if (job->prev_cr && *p != '\n') {
			/* A bare CR: end the line with CRLF here. A next hop
			 * that took a bare CR for a line end would otherwise
			 * see "\r.\r" as the end of data (SMTP smuggling). */
			sc_conn_write(job->conn, start, (size_t)(p - start));
			sc_conn_write(job->conn, "\n", 1);
			start = p;
			job->at_bol = true;
		}
		if (job->at_bol && *p == '.') {
			sc_conn_write(job->conn, start, (size_t)(p - start));
			sc_conn_write(job->conn, ".", 1);
			start = p;
		}
		if (*p == '\n' && !job->prev_cr) {
			sc_conn_write(job->conn, start, (size_t)(p - start));
			sc_conn_write(job->conn, "\r", 1);
			start = p;
		}
		job->at_bol = *p == '\n';
		job->prev_cr = *p == '\r';
	}
	sc_conn_write(job->conn, start, (size_t)(end - start));
}

static void
job_chunk_done(void *arg)
{
	struct relay_job *job = arg;
	struct relay *r = job->r;

	if (job->finished || job->st != JS_BODY || job->conn == NULL) {
		job_unref(job);
		return;
	}
	job_unref(job);
	if (job->chunk_err != 0 ||
	    (job->chunk_len == 0 && job->off < job->size)) {
		/* our queue file is unreadable: nothing the peer did */
		job_set_error(job, SC_DENYSOFT, 451, "4.3.0",
			      "reading the queued message failed: %s",
			      job->chunk_err ? strerror(job->chunk_err)
					     : "short file");
		job_host_failed(job);
		return;
	}
	if (job->chunk_len == 0) {
		/* end: make sure the last line ends, then the dot */
		if (job->prev_cr)
			sc_conn_write(job->conn, "\n", 1);
		else if (!job->at_bol)
			sc_conn_write(job->conn, "\r\n", 2);
		sc_conn_write(job->conn, ".\r\n", 3);
		job->st = JS_DOT;
		sc_conn_set_timeout(job->conn, r->conf->timeouts.data_done);
		job_deadline(job, r->conf->timeouts.data_done);
		return;
	}
	job_chunk_write(job);
	job->off += job->chunk_len;
	/* a block went out: the peer takes the body, so the next block
	 * gets its own data_block time */
	sc_conn_set_timeout(job->conn, r->conf->timeouts.data_block);
	job_deadline(job, r->conf->timeouts.data_block);
	job_body_pump(job);
}

/* job_body_pump - reads the next chunk unless the peer is behind. */
void
job_body_pump(struct relay_job *job)
{
	if (sc_conn_output_pending(job->conn) > RELAY_HIGH_WATER) {
		job->waiting_drain = true;
		return;
	}
	if (job->chunk == NULL && (job->chunk = malloc(RELAY_CHUNK)) == NULL) {
		job_set_error(job, SC_DENYSOFT, 451, "4.3.0", "out of memory");
		job_host_failed(job);
		return;
	}
	job_ref(job);
	if (sc_work_submit_inst(job->r->inst, job_chunk_work,
				job_chunk_done, job) < 0) {
		job_unref(job);
		job_set_error(job, SC_DENYSOFT, 451, "4.3.0",
			      "cannot schedule a read of the message");
		job_host_failed(job);
	}
}
