/* SPDX-License-Identifier: MIT */
/*
 * pop3_retr.c - RETR and TOP: a message streams to the client in
 * POP_CHUNK pieces. A pool job reads each piece and puts it in wire form
 * (CRLF line ends, byte stuffing, TOP's line limit); back on the event loop
 * the piece is sent, and the next one is read at once or, while more than
 * POP_OUT_HIGH bytes are unsent, once the client has read them
 * (SC_CONN_DRAINED), a stall timer closing a client that stops reading.
 */
#include "pop3_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pop_xfer {
	struct pop_sess *ps;
	char *mbox;
	char *rel;
	int fd;
	uint64_t off;
	bool top;
	uint64_t top_lines;
	bool started;		/* +OK sent */
	bool eof;		/* the terminating "." is in out */
	bool running;		/* a pool job owns the xfer */
	bool wait_drain;
	/* transform state, carried across chunks */
	bool line_start, prev_cr, in_headers, line_empty;
	uint64_t body_lines;
	int err;
	size_t out_len;
	char out[2 * POP_CHUNK + 8];
	char in[POP_CHUNK];
};

void
pop_xfer_free(struct pop_xfer **xp)
{
	struct pop_xfer *x = *xp;

	if (x == NULL)
		return;
	*xp = NULL;
	if (x->fd >= 0)
		close(x->fd);
	free(x->mbox);
	free(x->rel);
	free(x);
}

/*
 * pop_xfer_chunk - pool: read the next chunk and turn it into POP3 wire
 * form: bare LF becomes CRLF, a leading "." is doubled (RFC 1939 byte
 * stuffing), and TOP stops after the header and top_lines body lines.
 */
static void
pop_xfer_chunk(void *arg)
{
	struct pop_xfer *x = arg;
	ssize_t n, i;
	char *o = x->out;

	x->out_len = 0;
	if (x->fd < 0) {
		x->fd = pop_open_msg(x->mbox, x->rel);
		if (x->fd < 0) {
			x->err = errno;
			return;
		}
	}
	do {
		n = pread(x->fd, x->in, sizeof(x->in), (off_t)x->off);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		x->err = errno;
		return;
	}
	x->off += (uint64_t)n;
	for (i = 0; i < n; i++) {
		char c = x->in[i];

		if (x->line_start) {
			if (x->top && !x->in_headers &&
			    x->body_lines >= x->top_lines) {
				n = 0;	/* enough body lines */
				break;
			}
			if (c == '.')
				*o++ = '.';
			x->line_empty = true;
		}
		if (c == '\n') {
			if (!x->prev_cr)
				*o++ = '\r';
			*o++ = '\n';
			if (x->in_headers && x->line_empty)
				x->in_headers = false;
			else if (!x->in_headers)
				x->body_lines++;
			x->line_start = true;
		} else {
			*o++ = c;
			if (c != '\r')
				x->line_empty = false;
			x->line_start = false;
		}
		x->prev_cr = c == '\r';
	}
	if (n == 0) {
		/* the end: terminate a last line without LF, then "." */
		if (!x->line_start) {
			*o++ = '\r';
			*o++ = '\n';
		}
		memcpy(o, ".\r\n", 3);
		o += 3;
		x->eof = true;
	}
	x->out_len = (size_t)(o - x->out);
}

static void pop_xfer_done(void *arg);

static void
pop_xfer_submit(struct pop_sess *ps)
{
	struct pop_xfer *x = ps->xfer;

	x->running = true;
	ps->refs++;
	if (sc_work_submit_inst(ps->pd->inst, pop_xfer_chunk,
				pop_xfer_done, x) < 0) {
		bool started = x->started;

		ps->refs--;
		x->running = false;
		sc_log_session(SC_LOG_ERROR, ps->s,
			       "pop3: cannot submit message read");
		if (!started)
			pop_reply(ps, "-ERR [SYS/TEMP] Internal error");
		pop_xfer_free(&ps->xfer);
		sc_session_set_busy(ps->s, false);
		if (started)
			pop_close(ps);
		else
			pop_resume(ps);
	}
}

void
pop_stall_timeout(struct sc_timer *t, void *arg)
{
	struct pop_sess *ps = arg;

	(void)t;
	sc_log_session(SC_LOG_INFO, ps->s,
		       "pop3: client stopped reading; closing");
	pop_close(ps);
}

/* pop_xfer_done - loop: send the chunk; go on at once, or once the
 * client has read enough (back-pressure via SC_CONN_DRAINED). */
static void
pop_xfer_done(void *arg)
{
	struct pop_xfer *x = arg;
	struct pop_sess *ps = x->ps;

	x->running = false;
	if (ps->s == NULL) {
		pop_sess_unref(ps);	/* frees the xfer too */
		return;
	}
	ps->refs--;	/* the session slot still holds one */
	if (x->err != 0) {
		sc_log_session(SC_LOG_ERROR, ps->s, "pop3: read %s/%s: %s",
			       x->mbox, x->rel, strerror(x->err));
		sc_session_set_busy(ps->s, false);
		if (x->started) {
			/* the client cannot tell a cut message: hang up */
			pop_xfer_free(&ps->xfer);
			pop_close(ps);
			return;
		}
		pop_reply(ps, x->err == ENOENT ?
			  "-ERR Message was removed by another client" :
			  "-ERR [SYS/TEMP] Cannot read message");
		pop_xfer_free(&ps->xfer);
		pop_resume(ps);
		return;
	}
	if (!x->started) {
		uint64_t size = 0;
		size_t i;
		for (i = 0; i < ps->nmsg; i++)
			if (strcmp(ps->msgs[i].name, x->rel) == 0)
				size = ps->msgs[i].vsize;
		if (x->top)
			pop_reply(ps, "+OK");
		else
			pop_reply(ps, "+OK %" PRIu64 " octets", size);
		x->started = true;
	}
	if (x->out_len > 0)
		sc_conn_write(ps->c, x->out, x->out_len);
	if (x->eof) {
		pop_xfer_free(&ps->xfer);
		sc_timer_stop(ps->stall_timer);
		sc_session_set_busy(ps->s, false);
		sc_conn_set_timeout(ps->c, ps->pd->cmd_timeout);
		pop_resume(ps);
		return;
	}
	if (sc_conn_output_pending(ps->c) > POP_OUT_HIGH) {
		x->wait_drain = true;
		sc_timer_start(ps->stall_timer, ps->pd->cmd_timeout, 0);
		return;
	}
	pop_xfer_submit(ps);
}

/* pop_retr_start - RETR and TOP: stream the message from the pool */
void
pop_retr_start(struct pop_sess *ps, struct pop_msg *m, bool top,
	       uint64_t lines)
{
	struct pop_xfer *x = calloc(1, sizeof(*x));

	if (x == NULL || (x->mbox = strdup(ps->mbox)) == NULL ||
	    (x->rel = strdup(m->name)) == NULL) {
		if (x != NULL)
			free(x->mbox);
		free(x);
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	x->ps = ps;
	x->fd = -1;
	x->top = top;
	x->top_lines = lines;
	x->line_start = true;
	x->in_headers = true;
	ps->xfer = x;
	pop_pause(ps);
	sc_session_set_busy(ps->s, true);
	/* the client reads, not writes, during a long transfer; the stall
	 * timer guards it instead of the input timeout */
	sc_conn_set_timeout(ps->c, 0);
	pop_xfer_submit(ps);
}

/* pop_xfer_drained - loop: the client has read enough; a transfer that
 * waits for it goes on */
void
pop_xfer_drained(struct pop_sess *ps)
{
	if (ps->xfer != NULL && ps->xfer->wait_drain &&
	    !ps->xfer->running) {
		ps->xfer->wait_drain = false;
		sc_timer_stop(ps->stall_timer);
		pop_xfer_submit(ps);
	}
}
