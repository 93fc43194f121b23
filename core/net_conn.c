/* SPDX-License-Identifier: MIT */
/*
 * core/net_conn.c - buffered connections for satcheld: reading into the
 * input buffer while the module wants input and there is room, lines and
 * bytes for the module (sc_conn_getline, sc_conn_read...), output queued
 * and written once per loop iteration, back-pressure both ways (a full
 * input buffer or too much unsent output stops the socket reads),
 * timeouts, the linger at close, wiping what may hold secrets, and
 * outbound connects. Runs on the event loop thread; TLS sits between the
 * socket and these buffers (net_tls.c).
 */
#include "net_int.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

/* The end-of-iteration pass and the shared error buffer: process-wide,
 * loop thread only. */
static struct {
	bool init;
	uv_check_t check;
	uv_idle_t idle;
	struct sc_conn *pending;
	char error[512];
} net;

static void conn_process(struct sc_conn *c, unsigned what);

/* sc_net_err - formats an error into the shared buffer for const error_r */
const char *
sc_net_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(net.error, sizeof(net.error), fmt, ap);
	va_end(ap);
	return net.error;
}

/* ---- buffers ---- */

/* sc_net_buf_space - makes room for at least want bytes (at most up to
 * cap bytes in total), returns the free tail size. With wipe (the
 * plaintext input, which may hold AUTH secrets), a grown buffer leaves no
 * copy of its old contents in freed memory. */
size_t
sc_net_buf_space(struct net_buf *b, size_t want, size_t cap, bool wipe)
{
	size_t used = buf_used(b), ncap;
	char *p;

	if (b->off > 0 && (b->cap - b->len < want || used == 0)) {
		memmove(b->data, b->data + b->off, used);
		b->off = 0;
		b->len = used;
	}
	if (b->cap - b->len >= want)
		return b->cap - b->len;
	ncap = b->cap ? b->cap : CONN_CHUNK;
	while (ncap - b->len < want && ncap < cap)
		ncap *= 2;
	if (ncap > cap && cap > b->cap)
		ncap = cap;
	if (ncap <= b->cap)
		return b->cap - b->len;
	if (wipe && b->data != NULL) {
		p = malloc(ncap);
		if (p == NULL)
			return b->cap - b->len;
		memcpy(p, b->data, b->len);
		explicit_bzero(b->data, b->cap);
		free(b->data);
	} else {
		p = realloc(b->data, ncap);
		if (p == NULL)
			return b->cap - b->len;
	}
	b->data = p;
	b->cap = ncap;
	return b->cap - b->len;
}

int
sc_net_buf_append(struct net_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (sc_net_buf_space(b, len, SIZE_MAX, false) < len)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}


/* sc_net_buf_release - frees an empty buffer: idle connections hold no
 * memory */
void
sc_net_buf_release(struct net_buf *b)
{
	if (buf_used(b) == 0) {
		free(b->data);
		memset(b, 0, sizeof(*b));
	}
}

/* ---- the end-of-iteration pass: flush output, announce input ---- */

static void
idle_cb(uv_idle_t *h)
{
	(void)h;	/* only keeps the poll from blocking */
}

void
sc_net_pend_add(struct sc_conn *c, unsigned what)
{
	if (c->closed)
		return;
	if (c->pend == 0) {
		c->pend_next = net.pending;
		net.pending = c;
		if (net.init && !uv_is_active((uv_handle_t *)&net.idle))
			uv_idle_start(&net.idle, idle_cb);
	}
	c->pend |= what;
}

/* check_cb - runs once per loop iteration after I/O: every connection
 * with queued output or input to re-announce is handled here, so replies
 * to pipelined commands leave in one write and announcements never
 * recurse into the module. Work queued meanwhile waits for the next
 * iteration (the idle handle keeps the poll from blocking). */
static void
check_cb(uv_check_t *h)
{
	struct sc_conn *list = net.pending, *c;

	(void)h;
	net.pending = NULL;
	while ((c = list) != NULL) {
		unsigned what = c->pend;

		list = c->pend_next;
		c->pend_next = NULL;
		c->pend = 0;
		conn_process(c, what);
	}
	if (net.pending == NULL)
		uv_idle_stop(&net.idle);
}

int
sc_net_handles_init(void)
{
	if (net.init)
		return 0;
	if (uv_check_init(net_loop(), &net.check) != 0 ||
	    uv_idle_init(net_loop(), &net.idle) != 0)
		return -1;
	uv_check_start(&net.check, check_cb);
	uv_unref((uv_handle_t *)&net.check);
	net.init = true;
	/* writes to a vanished peer must give EPIPE, not kill us */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* ---- connections ---- */

static void
conn_emit(struct sc_conn *c, enum sc_conn_event ev)
{
	if (c->fn != NULL && !c->closing)
		c->fn(c, ev, c->arg);
}

void
sc_net_conn_fail(struct sc_conn *c)
{
	c->error = true;
	sc_net_conn_sock_update(c);
	if (!c->error_sent && !c->closing) {
		c->error_sent = true;
		conn_emit(c, SC_CONN_ERROR);
	}
}

static void
timer_cb(uv_timer_t *t)
{
	struct sc_conn *c = t->data;

	if (c->closing) {
		/* linger over: the peer does not take our output */
		sc_net_conn_really_close(c);
		return;
	}
	if (c->connect_done != NULL) {
		sc_connect_fn done = c->connect_done;

		c->connect_done = NULL;
		done(NULL, -ETIMEDOUT, c->connect_arg);
		sc_conn_close(c);
		return;
	}
	conn_emit(c, SC_CONN_TIMEOUT);
}

static void
timer_rearm(struct sc_conn *c)
{
	if (c->timeout_ms > 0 && !c->closing)
		uv_timer_start(&c->timer, timer_cb, c->timeout_ms, 0);
}

struct sc_conn *
sc_net_conn_alloc(void)
{
	struct sc_conn *c;

	if (sc_net_handles_init() < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	if (uv_tcp_init(net_loop(), &c->tcp) != 0) {
		free(c);
		return NULL;
	}
	c->handles++;
	uv_timer_init(net_loop(), &c->timer);
	c->handles++;
	c->tcp.data = c;
	c->timer.data = c;
	return c;
}

static void
conn_free_mem(struct sc_conn *c)
{
	/* input may hold a secret the module had no chance to wipe (the
	 * session ended while handling its AUTH line) */
	if (c->in.data != NULL)
		explicit_bzero(c->in.data, c->in.cap);
	if (c->line != NULL)
		explicit_bzero(c->line, c->line_cap);
	free(c->in.data);
	free(c->out.data);
	free(c->raw_in.data);
	free(c->raw_out.data);
	free(c->line);
	free(c->tls_desc);
	sc_net_tls_packet_free(c);
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	if (c->tls_client != NULL) {
		for (size_t i = 0; i < c->tls_client->tlsa_count; i++)
			free(c->tls_client->tlsa[i]);
		free(c->tls_client->tlsa);
		free(c->tls_client->tlsa_len);
		free(c->tls_client->server_name);
		free(c->tls_client);
	}
	free(c);
}

static void
close_cb(uv_handle_t *h)
{
	struct sc_conn *c = h->data;

	if (--c->handles == 0)
		conn_free_mem(c);
}

void
sc_net_conn_really_close(struct sc_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	/* not in the pending list any more: sc_net_pend_add refuses closed
	 * conns, and the list entry (if any) is skipped below */
	if (c->pend != 0) {
		/* unlink from the pending list */
		struct sc_conn **pp = &net.pending;

		while (*pp != NULL && *pp != c)
			pp = &(*pp)->pend_next;
		if (*pp == c)
			*pp = c->pend_next;
		c->pend = 0;
	}
	uv_close((uv_handle_t *)&c->tcp, close_cb);
	uv_close((uv_handle_t *)&c->timer, close_cb);
}

/* alloc_cb - hands libuv the free tail of the input buffer (plaintext) or
 * of the ciphertext buffer (TLS), allocating it only now: an idle
 * connection holds no buffer. */
static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct sc_conn *c = h->data;
	struct net_buf *b = c->tls != NULL ? &c->raw_in : &c->in;
	size_t cap = c->tls != NULL ? CONN_RAW_CAP : CONN_INPUT_CAP;
	size_t n = 0;

	(void)suggested;
	if (buf_used(b) < cap)
		n = sc_net_buf_space(b, CONN_CHUNK, cap, b == &c->in);
	if (buf_used(b) + n > cap)
		n = cap - buf_used(b);
	buf->base = n > 0 ? b->data + b->len : NULL;
	buf->len = n;
}

/* conn_output - bytes written by the module and not yet taken by the
 * peer's socket */
static size_t
conn_output(const struct sc_conn *c)
{
	return c->in_flight + buf_used(&c->out) + buf_used(&c->raw_out);
}

/* conn_output_full - whether input must wait for the peer to read */
static bool
conn_output_full(struct sc_conn *c)
{
	if (conn_output(c) >= CONN_OUTPUT_HIGH)
		c->throttled = true;
	return c->throttled;
}

/* conn_deliver - tells the module about buffered input (and a pending
 * EOF) if it wants to read. */
static void
conn_deliver(struct sc_conn *c)
{
	if (c->closing || c->tls_state == TLS_HANDSHAKE)
		return;
	if (conn_output_full(c)) {
		sc_net_conn_sock_update(c);
		return;
	}
	if (c->want_read && buf_used(&c->in) > 0)
		conn_emit(c, SC_CONN_DATA);
	if (c->closing)
		return;
	if (c->want_read && c->eof && !c->eof_sent) {
		c->eof_sent = true;
		conn_emit(c, SC_CONN_EOF);
	}
	if (c->closing)
		return;
	sc_net_buf_release(&c->in);
	sc_net_conn_sock_update(c);
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct sc_conn *c = s->data;

	(void)buf;
	if (nread == 0 || nread == UV_ENOBUFS) {
		if (nread == UV_ENOBUFS)
			sc_net_conn_sock_update(c);
		return;
	}
	if (nread < 0) {
		if (nread == UV_EOF) {
			c->eof = true;
			sc_net_conn_sock_update(c);
			if (c->tls_state == TLS_HANDSHAKE) {
				/* fails the handshake */
				sc_net_tls_pump(c);
				return;
			}
			conn_deliver(c);
		} else {
			sc_net_conn_fail(c);
		}
		return;
	}
	timer_rearm(c);
	if (c->tls != NULL) {
		c->raw_in.len += (size_t)nread;
		sc_net_tls_pump(c);
		if (c->closed)
			return;
	} else {
		c->in.len += (size_t)nread;
	}
	conn_deliver(c);
	if (!c->closing)
		sc_net_conn_sock_update(c);
}

/* sc_net_conn_sock_update - reads from the socket while someone needs input
 * (the module, or a TLS handshake) and there is room to put it. */
void
sc_net_conn_sock_update(struct sc_conn *c)
{
	bool want;

	if (c->closed)
		return;
	if (c->closing || c->eof || c->error || c->connect_done != NULL ||
	    c->tls_state == TLS_FAILED)
		want = false;
	else if (c->tls_state == TLS_HANDSHAKE)
		want = buf_used(&c->raw_in) < CONN_RAW_CAP;
	else if (conn_output_full(c))
		want = false;
	else if (c->tls != NULL)
		want = c->want_read && buf_used(&c->raw_in) < CONN_RAW_CAP &&
			buf_used(&c->in) < CONN_INPUT_CAP;
	else
		want = c->want_read && buf_used(&c->in) < CONN_INPUT_CAP;
	if (want && !c->sock_reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb,
				  read_cb) == 0)
			c->sock_reading = true;
	} else if (!want && c->sock_reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->sock_reading = false;
	}
}

struct write_req {
	uv_write_t req;
	struct sc_conn *c;
	size_t len;
	char data[];
};

static void
write_cb(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct sc_conn *c = w->c;

	c->in_flight -= w->len;
	free(w);
	if (c->throttled && !c->closed &&
	    conn_output(c) < CONN_OUTPUT_HIGH / 2) {
		/* the peer reads again: resume input */
		c->throttled = false;
		sc_net_pend_add(c, PEND_ANNOUNCE);
	}
	if (status < 0 && status != UV_ECANCELED && !c->closed) {
		c->error = true;
		if (c->closing) {
			sc_net_conn_really_close(c);
			return;
		}
		sc_net_conn_fail(c);
		return;
	}
	if (c->closed)
		return;
	if (c->in_flight == 0 && buf_used(&c->out) == 0 &&
	    buf_used(&c->raw_out) == 0) {
		if (c->closing)
			sc_net_pend_add(c, PEND_CLOSE);
		else
			conn_emit(c, SC_CONN_DRAINED);
	}
}

/* conn_write_raw - writes bytes to the socket: try at once, and queue
 * what the kernel did not take. */
static int
conn_write_raw(struct sc_conn *c, const char *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	struct write_req *w;
	int n = 0;

	if (len == 0)
		return 0;
	if (c->error)
		return -1;
	if (c->in_flight == 0) {
		n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
		if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) {
			c->error = true;
			return -1;
		}
		if (n < 0)
			n = 0;
		if ((size_t)n == len)
			return 0;
	}
	w = malloc(sizeof(*w) + len - (size_t)n);
	if (w == NULL) {
		c->error = true;
		return -1;
	}
	w->c = c;
	w->len = len - (size_t)n;
	memcpy(w->data, data + n, w->len);
	b = uv_buf_init(w->data, (unsigned)w->len);
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) {
		free(w);
		c->error = true;
		return -1;
	}
	c->in_flight += w->len;
	return 0;
}

/* conn_flush - encrypts queued output (TLS) and hands it to the socket.
 * Returns true when everything has left (nothing in flight either). */
static bool
conn_flush(struct sc_conn *c)
{
	if (c->tls_state == TLS_UP) {
		while (buf_used(&c->out) > 0) {
			size_t n = buf_used(&c->out);
			ssize_t r;

			if (n > 16384)
				n = 16384;
			r = gnutls_record_send(c->tls, c->out.data +
					       c->out.off, n);
			if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
				continue;
			if (r < 0) {
				c->error = true;
				break;
			}
			buf_consume(&c->out, (size_t)r);
		}
	}
	if (buf_used(&c->raw_out) > 0) {
		conn_write_raw(c, c->raw_out.data + c->raw_out.off,
			       buf_used(&c->raw_out));
		buf_consume(&c->raw_out, buf_used(&c->raw_out));
	}
	if (c->tls == NULL && buf_used(&c->out) > 0) {
		conn_write_raw(c, c->out.data + c->out.off,
			       buf_used(&c->out));
		buf_consume(&c->out, buf_used(&c->out));
	}
	if (c->error) {
		/* nothing more will leave: forget the output */
		c->out.off = c->out.len = 0;
		c->raw_out.off = c->raw_out.len = 0;
	}
	sc_net_buf_release(&c->raw_out);
	if (c->tls_state != TLS_HANDSHAKE)
		sc_net_buf_release(&c->out);
	return c->in_flight == 0 && buf_used(&c->out) == 0 &&
		buf_used(&c->raw_out) == 0;
}

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
	struct sc_conn *c = req->data;

	(void)status;
	free(req);
	sc_net_conn_really_close(c);
}

static void
conn_process(struct sc_conn *c, unsigned what)
{
	bool had_output;

	if (c->closed)
		return;
	if (!c->closing && (what & PEND_ANNOUNCE)) {
		if (c->tls_state == TLS_UP)
			sc_net_tls_pump(c);
		if (c->closed)
			return;
		conn_deliver(c);
		if (c->closed)
			return;
		sc_net_conn_sock_update(c);
	}
	had_output = buf_used(&c->out) > 0 || buf_used(&c->raw_out) > 0;
	if (c->closing && c->tls_state == TLS_UP) {
		/* queue close_notify after the last record */
		conn_flush(c);
		gnutls_bye(c->tls, GNUTLS_SHUT_WR);
		c->tls_state = TLS_FAILED;
		had_output = true;
	}
	if (conn_flush(c)) {
		if (c->closing) {
			uv_shutdown_t *req = malloc(sizeof(*req));

			if (req == NULL || c->error ||
			    uv_shutdown(req, (uv_stream_t *)&c->tcp,
					shutdown_cb) != 0) {
				free(req);
				sc_net_conn_really_close(c);
			} else {
				req->data = c;
			}
			return;
		}
		if (had_output && !c->error)
			conn_emit(c, SC_CONN_DRAINED);
	}
	if (c->throttled && !c->closing && !c->closed &&
	    conn_output(c) < CONN_OUTPUT_HIGH / 2) {
		/* written at once (no write_cb will come): resume input */
		c->throttled = false;
		sc_net_pend_add(c, PEND_ANNOUNCE);
	}
	if (c->error && !c->closing && !c->error_sent)
		sc_net_conn_fail(c);
}

void
sc_conn_set_handler(struct sc_conn *c, sc_conn_fn fn, void *arg)
{
	c->fn = fn;
	c->arg = arg;
}

void
sc_conn_read_start(struct sc_conn *c)
{
	if (c->closing)
		return;
	c->want_read = true;
	/* announce what is already buffered, but from the loop, never from
	 * within the caller's own stack */
	if (buf_used(&c->in) > 0 || buf_used(&c->raw_in) > 0 ||
	    c->pkt != NULL || c->eof)
		sc_net_pend_add(c, PEND_ANNOUNCE);
	sc_net_conn_sock_update(c);
}

void
sc_conn_read_stop(struct sc_conn *c)
{
	c->want_read = false;
	sc_net_conn_sock_update(c);
}

/* after_consume - input was consumed: maybe there is room again */
static void
after_consume(struct sc_conn *c)
{
	if (!c->sock_reading && c->want_read && !c->eof && !c->closing)
		sc_net_conn_sock_update(c);
	/* a record held back for want of room: copy it now that there is */
	if (c->tls_state == TLS_UP && ((buf_used(&c->raw_in) > 0 &&
	    buf_used(&c->in) == 0) || c->pkt != NULL))
		sc_net_pend_add(c, PEND_ANNOUNCE);
}

int
sc_conn_getline(struct sc_conn *c, size_t max, const char **line_r,
		size_t *len_r, bool *bare_lf_r)
{
	const char *p, *lf;
	size_t avail, pos, linelen;
	bool bare;

	if (bare_lf_r != NULL)
		*bare_lf_r = false;
	*len_r = 0;
	avail = buf_used(&c->in);
	p = c->in.data != NULL ? c->in.data + c->in.off : "";
	if (c->discarding) {
		lf = memchr(p, '\n', avail);
		if (lf == NULL) {
			c->discarded += avail;
			buf_consume(&c->in, avail);
			after_consume(c);
			return 0;
		}
		c->discarded += (size_t)(lf - p) + 1;
		buf_consume(&c->in, (size_t)(lf - p) + 1);
		c->discarding = false;
		avail = buf_used(&c->in);
		p = c->in.data != NULL ? c->in.data + c->in.off : "";
	}
	lf = memchr(p, '\n', avail);
	if (lf == NULL) {
		/* max bytes plus a CR may still be waiting for its LF */
		if (avail > max + 1 || avail >= CONN_INPUT_CAP) {
			c->discarding = true;
			c->discarded = avail;
			buf_consume(&c->in, avail);
			*len_r = c->discarded;
			after_consume(c);
			return -1;
		}
		return 0;
	}
	pos = (size_t)(lf - p);
	bare = pos == 0 || p[pos - 1] != '\r';
	linelen = bare ? pos : pos - 1;
	if (linelen > max) {
		buf_consume(&c->in, pos + 1);
		*len_r = pos + 1;
		after_consume(c);
		return -1;
	}
	/* a copy: the line stays valid while the module waits for a hook,
	 * whatever happens to the input buffer meanwhile */
	if (c->line_cap < linelen + 1) {
		/* not realloc: the last line (an AUTH response?) must not
		 * stay behind in freed memory */
		char *n = malloc(linelen + 1);

		if (n == NULL)
			return -1;
		if (c->line != NULL) {
			explicit_bzero(c->line, c->line_cap);
			free(c->line);
		}
		c->line = n;
		c->line_cap = linelen + 1;
	}
	memcpy(c->line, p, linelen);
	c->line[linelen] = '\0';
	buf_consume(&c->in, pos + 1);
	*line_r = c->line;
	*len_r = linelen;
	if (bare_lf_r != NULL)
		*bare_lf_r = bare;
	after_consume(c);
	return 1;
}

size_t
sc_conn_read(struct sc_conn *c, void *buf, size_t len)
{
	size_t n = buf_used(&c->in);

	if (n > len)
		n = len;
	if (n > 0) {
		memcpy(buf, c->in.data + c->in.off, n);
		buf_consume(&c->in, n);
		after_consume(c);
	}
	return n;
}

size_t
sc_conn_buffered(const struct sc_conn *c)
{
	return buf_used(&c->in);
}

const char *
sc_conn_peek(const struct sc_conn *c, size_t *len_r)
{
	*len_r = buf_used(&c->in);
	return c->in.data != NULL ? c->in.data + c->in.off : "";
}

void
sc_conn_consume(struct sc_conn *c, size_t len)
{
	if (len > buf_used(&c->in))
		len = buf_used(&c->in);
	buf_consume(&c->in, len);
	after_consume(c);
}

void
sc_conn_wipe_input(struct sc_conn *c)
{
	/* everything but the unread bytes data[off..len): consumed lines
	 * before them, stale bytes (moved or consumed) after them */
	if (c->line != NULL)
		explicit_bzero(c->line, c->line_cap);
	if (c->in.data != NULL) {
		explicit_bzero(c->in.data, c->in.off);
		explicit_bzero(c->in.data + c->in.len, c->in.cap - c->in.len);
	}
}

void
sc_conn_write(struct sc_conn *c, const void *data, size_t len)
{
	if (c->closing || c->error || len == 0)
		return;
	if (sc_net_buf_append(&c->out, data, len) < 0) {
		c->error = true;
		sc_net_pend_add(c, PEND_FLUSH);
		return;
	}
	sc_net_pend_add(c, PEND_FLUSH);
}

void
sc_conn_printf(struct sc_conn *c, const char *fmt, ...)
{
	char small[512], *big = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		sc_conn_write(c, small, (size_t)n);
		return;
	}
	big = malloc((size_t)n + 1);
	if (big == NULL) {
		c->error = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sc_conn_write(c, big, (size_t)n);
	free(big);
}

size_t
sc_conn_output_pending(const struct sc_conn *c)
{
	return buf_used(&c->out) + buf_used(&c->raw_out) + c->in_flight;
}

void
sc_conn_set_timeout(struct sc_conn *c, uint64_t ms)
{
	c->timeout_ms = ms;
	if (c->closing || c->connect_done != NULL)
		return;
	if (ms == 0)
		uv_timer_stop(&c->timer);
	else
		timer_rearm(c);
}

void
sc_conn_set_session(struct sc_conn *c, struct sc_session *s)
{
	c->session = s;
}

/* sc_net_conn_memory - bytes a connection holds (for the tests) */
size_t
sc_net_conn_memory(const struct sc_conn *c)
{
	return sizeof(*c) + c->in.cap + c->out.cap + c->raw_in.cap +
		c->raw_out.cap + c->line_cap;
}

/* sc_net_conn_start_close - the common close: no more events, output flushed
 * (close_notify for TLS) within the linger time, then the socket closes. */
void
sc_net_conn_start_close(struct sc_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->fn = NULL;
	c->session = NULL;
	c->want_read = false;
	sc_net_conn_sock_update(c);
	c->timer_closing = true;
	uv_timer_start(&c->timer, timer_cb, CONN_LINGER_MS, 0);
	if (c->connect_req != NULL) {
		/* connect in progress: closing the handle cancels it */
		sc_net_conn_really_close(c);
		return;
	}
	sc_net_pend_add(c, PEND_CLOSE);
}

void
sc_conn_free(struct sc_conn *c)
{
	if (c != NULL)
		sc_net_conn_start_close(c);
}

void
sc_conn_close(struct sc_conn *c)
{
	if (c != NULL)
		sc_net_conn_start_close(c);
}

/* ---- outbound connections ---- */

static void
connect_cb(uv_connect_t *req, int status)
{
	struct sc_conn *c = req->data;
	sc_connect_fn done = c->connect_done;

	free(req);
	c->connect_req = NULL;
	c->connect_done = NULL;
	if (c->closed || done == NULL)
		return;
	uv_timer_stop(&c->timer);
	if (status < 0) {
		done(NULL, status, c->connect_arg);
		sc_net_conn_really_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	sc_net_conn_addrs(c);
	done(c, 0, c->connect_arg);
}

int
sc_conn_connect(const struct sockaddr *addr, uint64_t timeout_ms,
		sc_connect_fn done, void *arg)
{
	struct sc_conn *c = sc_net_conn_alloc();
	uv_connect_t *req;
	int r;

	if (c == NULL)
		return -1;
	req = malloc(sizeof(*req));
	if (req == NULL) {
		sc_net_conn_really_close(c);
		return -1;
	}
	req->data = c;
	c->connect_done = done;
	c->connect_arg = arg;
	c->connect_req = req;
	r = uv_tcp_connect(req, &c->tcp, addr, connect_cb);
	if (r != 0) {
		free(req);
		c->connect_req = NULL;
		c->connect_done = NULL;
		sc_net_conn_really_close(c);
		return -1;
	}
	if (timeout_ms > 0)
		uv_timer_start(&c->timer, timer_cb, timeout_ms, 0);
	return 0;
}

void
sc_net_handles_deinit(void)
{
	if (net.init) {
		uv_close((uv_handle_t *)&net.check, NULL);
		uv_close((uv_handle_t *)&net.idle, NULL);
		net.init = false;
	}
}
