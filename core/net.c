/* SPDX-License-Identifier: MIT */
/*
 * core/net.c - listeners, buffered connections and TLS (GnuTLS) for
 * satcheld. Everything here runs on the event loop thread; TLS works on
 * the connection's own buffers (push/pull functions), so a handshake never
 * blocks. Certificate generation runs once at start-up (before the loop).
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <gnutls/crypto.h>
#include <gnutls/dane.h>

/* Input is read in chunks of this size and buffered up to the cap; a
 * module that does not consume stops the socket reads (back-pressure). */
#define CONN_CHUNK	4096
#define CONN_INPUT_CAP	(64 * 1024)
#define CONN_RAW_CAP	(64 * 1024)	/* TLS ciphertext not yet decrypted */
/* Output back-pressure: with this much output not yet taken by the peer,
 * input is neither read nor announced, so a client that sends commands
 * and never reads the replies cannot grow our memory (it stalls, and the
 * idle timeout ends it). Input resumes below half of it. */
#define CONN_OUTPUT_HIGH (256 * 1024)
#define CONN_LINGER_MS	10000		/* max wait for output at close */
#define LISTEN_BACKLOG	511

/* TLS 1.2+ with AEAD ciphers and forward secrecy only. */
#define SERVER_PRIORITY "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
	"-RSA:-DHE-RSA:%PROFILE_MEDIUM"
/* Outbound: still TLS 1.2+, but a wider cipher choice, since any
 * encryption beats plaintext when talking to other MTAs. */
#define CLIENT_PRIORITY "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct net_buf {
	char *data;
	size_t off, len, cap;	/* valid bytes are data[off..len) */
};

enum tls_state { TLS_NONE = 0, TLS_HANDSHAKE, TLS_UP, TLS_FAILED };

/* pending work for the end of the loop iteration */
#define PEND_FLUSH	0x1u
#define PEND_ANNOUNCE	0x2u
#define PEND_CLOSE	0x4u

struct tls_client_ctx {
	enum sc_tls_verify verify;
	char *server_name;
	size_t tlsa_count;
	char **tlsa;		/* NULL-terminated copies of the rdata */
	int *tlsa_len;
};

struct sc_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct sc_session *session;
	sc_conn_fn fn;
	void *arg;

	struct net_buf in;	/* plaintext input                     */
	struct net_buf out;	/* plaintext output not yet sent       */
	struct net_buf raw_in;	/* TLS: ciphertext from the socket     */
	struct net_buf raw_out;	/* TLS: ciphertext for the socket      */
	char *line;		/* last line from sc_conn_getline      */
	size_t line_cap;
	size_t in_flight;	/* bytes in uv_write requests          */
	size_t discarded;	/* over-long line being discarded      */
	uint64_t timeout_ms;

	gnutls_session_t tls;
	gnutls_packet_t pkt;	/* decrypted record not all copied yet */
	size_t pkt_off;		/* bytes of it copied to in            */
	enum tls_state tls_state;
	sc_conn_tls_fn tls_done;
	void *tls_arg;
	char *tls_desc;
	struct tls_client_ctx *tls_client;

	sc_connect_fn connect_done;
	void *connect_arg;
	uv_connect_t *connect_req;

	struct sc_conn *pend_next;
	unsigned pend;		/* PEND_* flags while in the list      */
	unsigned handles;	/* uv handles still open               */

	bool want_read;		/* the module wants SC_CONN_DATA       */
	bool sock_reading;
	bool discarding;
	bool eof, eof_sent;
	bool error, error_sent;
	bool closing;		/* sc_conn_free/close called           */
	bool closed;		/* uv_close called                     */
	bool timer_closing;	/* linger timer armed for the close    */
	bool throttled;		/* input held back: too much output    */

	struct sockaddr_storage peer, local;
	char peer_ip[INET6_ADDRSTRLEN];
};

struct listener {
	struct listener *next;		/* all listeners, every generation */
	struct sc_gen *gen;
	struct sc_instance *inst;
	struct sc_sockaddr addr;
	char *protocol;
	sc_accept_fn fn;
	void *arg;
	int fd;				/* until uv_tcp_open takes it     */
	uv_tcp_t *tcp;			/* while accepting                */
	int port;			/* bound port (for port 0)        */
};

/* The net part of the core: process-wide, loop thread only. */
static struct {
	bool init;
	uv_check_t check;
	uv_idle_t idle;
	struct sc_conn *pending;
	struct listener *listeners;
	gnutls_certificate_credentials_t server_cred;
	char *cert_path, *key_path;
	gnutls_certificate_credentials_t client_cred;
	gnutls_priority_t server_prio, client_prio;
	dane_state_t dane;
	char error[512];
} net;

static void conn_process(struct sc_conn *c, unsigned what);
static void tls_packet_free(struct sc_conn *c);
static void conn_really_close(struct sc_conn *c);
static void conn_sock_update(struct sc_conn *c);
static void tls_pump(struct sc_conn *c);

static uv_loop_t *
net_loop(void)
{
	return sc_core != NULL && sc_core->loop != NULL ? sc_core->loop :
		uv_default_loop();
}

/* net_err - formats an error into the shared buffer for const error_r */
static const char * SC_PRINTF(1, 2)
net_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(net.error, sizeof(net.error), fmt, ap);
	va_end(ap);
	return net.error;
}

/* ---- buffers ---- */

static size_t
buf_used(const struct net_buf *b)
{
	return b->len - b->off;
}

/* buf_space - makes room for at least want bytes (at most up to cap bytes
 * in total), returns the free tail size. With wipe (the plaintext input,
 * which may hold AUTH secrets), a grown buffer leaves no copy of its old
 * contents in freed memory. */
static size_t
buf_space(struct net_buf *b, size_t want, size_t cap, bool wipe)
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

static int
buf_append(struct net_buf *b, const void *data, size_t len)
{
	if (len == 0)
		return 0;
	if (buf_space(b, len, SIZE_MAX, false) < len)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

static void
buf_consume(struct net_buf *b, size_t len)
{
	b->off += len;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

/* buf_release - frees an empty buffer: idle connections hold no memory */
static void
buf_release(struct net_buf *b)
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

static void
pend_add(struct sc_conn *c, unsigned what)
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

static int
net_handles_init(void)
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

static void
conn_fail(struct sc_conn *c)
{
	c->error = true;
	conn_sock_update(c);
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
		conn_really_close(c);
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

static struct sc_conn *
conn_alloc(void)
{
	struct sc_conn *c;

	if (net_handles_init() < 0)
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
conn_addrs(struct sc_conn *c)
{
	int len = sizeof(c->peer);
	const void *a = NULL;

	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
	len = sizeof(c->local);
	uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&c->local, &len);
	if (c->peer.ss_family == AF_INET) {
		a = &((struct sockaddr_in *)&c->peer)->sin_addr;
		inet_ntop(AF_INET, a, c->peer_ip, sizeof(c->peer_ip));
	} else if (c->peer.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->peer;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12],
				  c->peer_ip, sizeof(c->peer_ip));
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, c->peer_ip,
				  sizeof(c->peer_ip));
	}
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
	tls_packet_free(c);
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

static void
conn_really_close(struct sc_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	/* not in the pending list any more: pend_add refuses closed conns,
	 * and the list entry (if any) is skipped below */
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
		n = buf_space(b, CONN_CHUNK, cap, b == &c->in);
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
		conn_sock_update(c);
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
	buf_release(&c->in);
	conn_sock_update(c);
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct sc_conn *c = s->data;

	(void)buf;
	if (nread == 0 || nread == UV_ENOBUFS) {
		if (nread == UV_ENOBUFS)
			conn_sock_update(c);
		return;
	}
	if (nread < 0) {
		if (nread == UV_EOF) {
			c->eof = true;
			conn_sock_update(c);
			if (c->tls_state == TLS_HANDSHAKE) {
				tls_pump(c);	/* fails the handshake */
				return;
			}
			conn_deliver(c);
		} else {
			conn_fail(c);
		}
		return;
	}
	timer_rearm(c);
	if (c->tls != NULL) {
		c->raw_in.len += (size_t)nread;
		tls_pump(c);
		if (c->closed)
			return;
	} else {
		c->in.len += (size_t)nread;
	}
	conn_deliver(c);
	if (!c->closing)
		conn_sock_update(c);
}

/* conn_sock_update - reads from the socket while someone needs input
 * (the module, or a TLS handshake) and there is room to put it. */
static void
conn_sock_update(struct sc_conn *c)
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
		pend_add(c, PEND_ANNOUNCE);
	}
	if (status < 0 && status != UV_ECANCELED && !c->closed) {
		c->error = true;
		if (c->closing) {
			conn_really_close(c);
			return;
		}
		conn_fail(c);
		return;
	}
	if (c->closed)
		return;
	if (c->in_flight == 0 && buf_used(&c->out) == 0 &&
	    buf_used(&c->raw_out) == 0) {
		if (c->closing)
			pend_add(c, PEND_CLOSE);
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
	buf_release(&c->raw_out);
	if (c->tls_state != TLS_HANDSHAKE)
		buf_release(&c->out);
	return c->in_flight == 0 && buf_used(&c->out) == 0 &&
		buf_used(&c->raw_out) == 0;
}

static void
shutdown_cb(uv_shutdown_t *req, int status)
{
	struct sc_conn *c = req->data;

	(void)status;
	free(req);
	conn_really_close(c);
}

static void
conn_process(struct sc_conn *c, unsigned what)
{
	bool had_output;

	if (c->closed)
		return;
	if (!c->closing && (what & PEND_ANNOUNCE)) {
		if (c->tls_state == TLS_UP)
			tls_pump(c);
		if (c->closed)
			return;
		conn_deliver(c);
		if (c->closed)
			return;
		conn_sock_update(c);
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
				conn_really_close(c);
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
		pend_add(c, PEND_ANNOUNCE);
	}
	if (c->error && !c->closing && !c->error_sent)
		conn_fail(c);
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
		pend_add(c, PEND_ANNOUNCE);
	conn_sock_update(c);
}

void
sc_conn_read_stop(struct sc_conn *c)
{
	c->want_read = false;
	conn_sock_update(c);
}

/* after_consume - input was consumed: maybe there is room again */
static void
after_consume(struct sc_conn *c)
{
	if (!c->sock_reading && c->want_read && !c->eof && !c->closing)
		conn_sock_update(c);
	/* a record held back for want of room: copy it now that there is */
	if (c->tls_state == TLS_UP && ((buf_used(&c->raw_in) > 0 &&
	    buf_used(&c->in) == 0) || c->pkt != NULL))
		pend_add(c, PEND_ANNOUNCE);
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
	if (buf_append(&c->out, data, len) < 0) {
		c->error = true;
		pend_add(c, PEND_FLUSH);
		return;
	}
	pend_add(c, PEND_FLUSH);
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

const char *
sc_conn_peer_ip(const struct sc_conn *c)
{
	return c->peer_ip;
}

const struct sockaddr *
sc_conn_peer_addr(const struct sc_conn *c)
{
	return (const struct sockaddr *)&c->peer;
}

const struct sockaddr *
sc_conn_local_addr(const struct sc_conn *c)
{
	return (const struct sockaddr *)&c->local;
}

/* sc_conn_addrs - both socket addresses (session.c asks once) */
int
sc_conn_addrs(const struct sc_conn *c, struct sockaddr_storage *peer,
	      struct sockaddr_storage *local)
{
	if (peer != NULL)
		*peer = c->peer;
	if (local != NULL)
		*local = c->local;
	return c->peer.ss_family == AF_UNSPEC ? -1 : 0;
}

/* sc_net_conn_memory - bytes a connection holds (for the tests) */
size_t
sc_net_conn_memory(const struct sc_conn *c)
{
	return sizeof(*c) + c->in.cap + c->out.cap + c->raw_in.cap +
		c->raw_out.cap + c->line_cap;
}

/* conn_start_close - the common close: no more events, output flushed
 * (close_notify for TLS) within the linger time, then the socket closes. */
static void
conn_start_close(struct sc_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->fn = NULL;
	c->session = NULL;
	c->want_read = false;
	conn_sock_update(c);
	c->timer_closing = true;
	uv_timer_start(&c->timer, timer_cb, CONN_LINGER_MS, 0);
	if (c->connect_req != NULL) {
		/* connect in progress: closing the handle cancels it */
		conn_really_close(c);
		return;
	}
	pend_add(c, PEND_CLOSE);
}

void
sc_conn_free(struct sc_conn *c)
{
	if (c != NULL)
		conn_start_close(c);
}

void
sc_conn_close(struct sc_conn *c)
{
	if (c != NULL)
		conn_start_close(c);
}

/* sc_conn_new_fd - wraps a connected socket (the tests' socketpairs and
 * the accept path share this). */
struct sc_conn *
sc_conn_new_fd(int fd, char **error_r)
{
	struct sc_conn *c = conn_alloc();

	if (c == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	if (uv_tcp_open(&c->tcp, fd) != 0) {
		*error_r = strdup("uv_tcp_open failed");
		conn_really_close(c);
		return NULL;
	}
	conn_addrs(c);
	return c;
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
		conn_really_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	conn_addrs(c);
	done(c, 0, c->connect_arg);
}

int
sc_conn_connect(const struct sockaddr *addr, uint64_t timeout_ms,
		sc_connect_fn done, void *arg)
{
	struct sc_conn *c = conn_alloc();
	uv_connect_t *req;
	int r;

	if (c == NULL)
		return -1;
	req = malloc(sizeof(*req));
	if (req == NULL) {
		conn_really_close(c);
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
		conn_really_close(c);
		return -1;
	}
	if (timeout_ms > 0)
		uv_timer_start(&c->timer, timer_cb, timeout_ms, 0);
	return 0;
}

/* ---- TLS ---- */

static ssize_t
tls_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	struct sc_conn *c = p;

	if (buf_append(&c->raw_out, data, len) < 0) {
		gnutls_transport_set_errno(c->tls, ENOMEM);
		return -1;
	}
	pend_add(c, PEND_FLUSH);
	return (ssize_t)len;
}

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct sc_conn *c = p;
	size_t n = buf_used(&c->raw_in);

	if (n == 0) {
		if (c->eof)
			return 0;
		gnutls_transport_set_errno(c->tls, EAGAIN);
		return -1;
	}
	if (n > len)
		n = len;
	memcpy(data, c->raw_in.data + c->raw_in.off, n);
	buf_consume(&c->raw_in, n);
	return (ssize_t)n;
}

static int
tls_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct sc_conn *c = p;

	(void)ms;
	return buf_used(&c->raw_in) > 0 || c->eof ? 1 : 0;
}

/* tls_verify_dane - checks the peer's chain against the TLSA records
 * (DANE-EE and DANE-TA; PKIX-* usages also need the PKIX check). */
static int
tls_verify_dane(struct sc_conn *c, const char **why_r)
{
	const gnutls_datum_t *chain;
	unsigned int n = 0, verify = 0;
	dane_query_t q = NULL;
	gnutls_datum_t txt;
	int r;

	chain = gnutls_certificate_get_peers(c->tls, &n);
	if (chain == NULL || n == 0) {
		*why_r = "the server sent no certificate";
		return -1;
	}
	/* only the records given are checked: gnutls-dane's own resolver
	 * is never asked, so it must not be set up either (it reads
	 * /etc/resolv.conf and /etc/hosts and fails where they are missing,
	 * as in containers) */
	if (net.dane == NULL &&
	    dane_state_init(&net.dane, DANE_F_IGNORE_DNSSEC |
			    DANE_F_IGNORE_LOCAL_RESOLVER) < 0) {
		net.dane = NULL;
		*why_r = "DANE initialisation failed";
		return -1;
	}
	r = dane_raw_tlsa(net.dane, &q, c->tls_client->tlsa,
			  c->tls_client->tlsa_len, 1, 0);
	if (r < 0) {
		*why_r = net_err("bad TLSA data: %s", dane_strerror(r));
		return -1;
	}
	r = dane_verify_crt_raw(net.dane, chain, n, GNUTLS_CRT_X509, q, 0, 0,
				&verify);
	dane_query_deinit(q);
	if (r < 0) {
		*why_r = net_err("DANE verification failed: %s",
				 dane_strerror(r));
		return -1;
	}
	if (verify != 0) {
		if (dane_verification_status_print(verify, &txt, 0) >= 0) {
			net_err("DANE verification failed: %s",
				(char *)txt.data);
			gnutls_free(txt.data);
		} else {
			net_err("DANE verification failed");
		}
		*why_r = net.error;
		return -1;
	}
	return 0;
}

static void
tls_set_desc(struct sc_conn *c)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "%s with cipher %s",
		 gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls)),
		 gnutls_cipher_get_name(gnutls_cipher_get(c->tls)));
	free(c->tls_desc);
	c->tls_desc = strdup(buf);
}

static void
tls_finish(struct sc_conn *c, bool ok, const char *error)
{
	sc_conn_tls_fn done = c->tls_done;

	c->tls_done = NULL;
	c->tls_state = ok ? TLS_UP : TLS_FAILED;
	if (!ok) {
		c->raw_in.off = c->raw_in.len = 0;
		conn_sock_update(c);
	}
	if (done != NULL)
		done(c, ok, error, c->tls_arg);
	else if (!ok)
		conn_fail(c);
	if (ok && !c->closing) {
		/* output queued during the handshake, input that came along */
		pend_add(c, PEND_FLUSH | PEND_ANNOUNCE);
		conn_sock_update(c);
	}
}

/* tls_handshake_step - advances the handshake with what raw_in holds */
static void
tls_handshake_step(struct sc_conn *c)
{
	const char *why = NULL;
	int r;

	for (;;) {
		r = gnutls_handshake(c->tls);
		if (r == GNUTLS_E_SUCCESS)
			break;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (c->eof) {
				tls_finish(c, false, "connection closed "
					   "during the TLS handshake");
				return;
			}
			pend_add(c, PEND_FLUSH);
			return;
		}
		if (!gnutls_error_is_fatal(r))
			continue;
		if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
		    c->tls_client != NULL) {
			unsigned st = gnutls_session_get_verify_cert_status(
				c->tls);
			gnutls_datum_t txt;

			if (gnutls_certificate_verification_status_print(
				    st, GNUTLS_CRT_X509, &txt, 0) >= 0) {
				net_err("certificate verification failed: %s",
					(char *)txt.data);
				gnutls_free(txt.data);
			} else {
				net_err("certificate verification failed");
			}
			why = net.error;
		} else {
			why = net_err("TLS handshake failed: %s",
				      gnutls_strerror(r));
		}
		pend_add(c, PEND_FLUSH);	/* the alert, if any */
		tls_finish(c, false, why);
		return;
	}
	if (c->tls_client != NULL &&
	    c->tls_client->verify == SC_TLS_VERIFY_DANE &&
	    tls_verify_dane(c, &why) < 0) {
		tls_finish(c, false, why);
		return;
	}
	tls_set_desc(c);
	tls_finish(c, true, NULL);
}

/* tls_packet_free - wipes and frees the decrypted record: GnuTLS frees
 * its record buffers unwiped, and this one may hold an AUTH line. */
static void
tls_packet_free(struct sc_conn *c)
{
	gnutls_packet_t pkt = c->pkt;
	gnutls_datum_t d = { NULL, 0 };

	if (pkt == NULL)
		return;
	gnutls_packet_get(pkt, &d, NULL);
	if (d.data != NULL)
		explicit_bzero(d.data, d.size);
	gnutls_packet_deinit(pkt);
	c->pkt = NULL;
	c->pkt_off = 0;
}

/* tls_packet_copy - moves what fits of the decrypted record into the
 * input buffer; true when all of it did. */
static bool
tls_packet_copy(struct sc_conn *c)
{
	gnutls_datum_t d = { NULL, 0 };
	size_t left, space;

	gnutls_packet_get(c->pkt, &d, NULL);
	left = d.size - c->pkt_off;
	space = buf_space(&c->in, left, CONN_INPUT_CAP, true);
	if (space == 0)
		return false;
	if (space > left)
		space = left;
	memcpy(c->in.data + c->in.len, d.data + c->pkt_off, space);
	c->in.len += space;
	c->pkt_off += space;
	if (c->pkt_off < d.size)
		return false;
	tls_packet_free(c);
	return true;
}

/* tls_pump - drives the handshake, or decrypts buffered records into the
 * plaintext input buffer until it is full. Records come as packets (not
 * gnutls_record_recv's copy) so that each is wiped once copied. */
static void
tls_pump(struct sc_conn *c)
{
	if (c->tls_state == TLS_HANDSHAKE) {
		tls_handshake_step(c);
		if (c->closed || c->closing || c->tls_state != TLS_UP)
			return;
	}
	if (c->tls_state != TLS_UP)
		return;
	while (buf_used(&c->in) < CONN_INPUT_CAP) {
		ssize_t r;

		if (c->pkt != NULL) {
			if (!tls_packet_copy(c))
				break;
			continue;
		}
		if (buf_used(&c->raw_in) == 0 && !c->eof &&
		    gnutls_record_check_pending(c->tls) == 0)
			break;
		r = gnutls_record_recv_packet(c->tls, &c->pkt);
		if (r > 0 && c->pkt != NULL) {
			c->pkt_off = 0;
			continue;
		}
		if (r > 0) {
			/* data but no packet: not in the API; stop reading */
			c->tls_state = TLS_FAILED;
			conn_fail(c);
			return;
		}
		if (r == 0) {
			c->eof = true;	/* close_notify */
			break;
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (c->eof && buf_used(&c->raw_in) == 0)
				break;
			if (buf_used(&c->raw_in) == 0)
				break;
			continue;
		}
		if (r == GNUTLS_E_REHANDSHAKE || !gnutls_error_is_fatal(r))
			continue;
		if (r == GNUTLS_E_PREMATURE_TERMINATION ||
		    r == GNUTLS_E_UNEXPECTED_PACKET_LENGTH) {
			c->eof = true;
			break;
		}
		c->tls_state = TLS_FAILED;
		conn_fail(c);
		return;
	}
	buf_release(&c->raw_in);
}

static int
tls_common_init(struct sc_conn *c, unsigned flags,
		gnutls_certificate_credentials_t cred,
		gnutls_priority_t prio)
{
	if (c->tls != NULL || c->closing)
		return -1;
	if (gnutls_init(&c->tls, flags | GNUTLS_NONBLOCK) < 0) {
		c->tls = NULL;
		return -1;
	}
	if (gnutls_priority_set(c->tls, prio) < 0 ||
	    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE,
				   cred) < 0) {
		gnutls_deinit(c->tls);
		c->tls = NULL;
		return -1;
	}
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_push_function(c->tls, tls_push);
	gnutls_transport_set_pull_function(c->tls, tls_pull);
	gnutls_transport_set_pull_timeout_function(c->tls, tls_pull_timeout);
	gnutls_handshake_set_timeout(c->tls, 0);
	return 0;
}

/* tls_begin - common tail of both handshakes: plaintext output already
 * queued (the "220 ready" reply) leaves unencrypted first, and buffered
 * plaintext input is thrown away (CVE-2011-0411: commands pipelined after
 * STARTTLS must not run as if they came over TLS). */
static void
tls_begin(struct sc_conn *c, sc_conn_tls_fn done, void *arg)
{
	if (buf_used(&c->out) > 0) {
		buf_append(&c->raw_out, c->out.data + c->out.off,
			   buf_used(&c->out));
		buf_consume(&c->out, buf_used(&c->out));
		buf_release(&c->out);
	}
	c->in.off = c->in.len = 0;
	buf_release(&c->in);
	c->discarding = false;
	/* any bytes already read from the socket belong to the handshake */
	c->tls_done = done;
	c->tls_arg = arg;
	c->tls_state = TLS_HANDSHAKE;
	pend_add(c, PEND_FLUSH);
	conn_sock_update(c);
	/* the client speaks first: start sending the ClientHello now */
	if (c->tls_client != NULL)
		tls_handshake_step(c);
}

int
sc_conn_starttls(struct sc_conn *c, sc_conn_tls_fn done, void *arg)
{
	if (net.server_cred == NULL || net.server_prio == NULL) {
		sc_log_error("TLS requested but no server certificate loaded");
		return -1;
	}
	if (tls_common_init(c, GNUTLS_SERVER, net.server_cred,
			    net.server_prio) < 0)
		return -1;
	gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
	tls_begin(c, done, arg);
	return 0;
}

static int
client_cred_init(void)
{
	if (net.client_cred != NULL)
		return 0;
	if (gnutls_certificate_allocate_credentials(&net.client_cred) < 0) {
		net.client_cred = NULL;
		return -1;
	}
	/* no trust store is not fatal: PKIX verification will just fail */
	if (gnutls_certificate_set_x509_system_trust(net.client_cred) < 0)
		sc_log_warning("TLS: could not load the system trust store");
	if (net.client_prio == NULL &&
	    gnutls_priority_init(&net.client_prio, CLIENT_PRIORITY,
				 NULL) < 0) {
		net.client_prio = NULL;
		return -1;
	}
	return 0;
}

int
sc_conn_starttls_client(struct sc_conn *c,
			const struct sc_tls_client_opts *opts,
			sc_conn_tls_fn done, void *arg)
{
	struct tls_client_ctx *t;

	if (client_cred_init() < 0)
		return -1;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	t->verify = opts != NULL ? opts->verify : SC_TLS_VERIFY_NONE;
	if (opts != NULL && opts->server_name != NULL)
		t->server_name = strdup(opts->server_name);
	if (t->verify == SC_TLS_VERIFY_DANE) {
		t->tlsa_count = opts->tlsa_count;
		t->tlsa = calloc(t->tlsa_count + 1, sizeof(*t->tlsa));
		t->tlsa_len = calloc(t->tlsa_count + 1, sizeof(int));
		for (size_t i = 0; t->tlsa != NULL && t->tlsa_len != NULL &&
		     i < t->tlsa_count; i++) {
			t->tlsa[i] = malloc(opts->tlsa_len[i] + 1);
			if (t->tlsa[i] == NULL)
				break;
			memcpy(t->tlsa[i], opts->tlsa_data[i],
			       opts->tlsa_len[i]);
			t->tlsa_len[i] = (int)opts->tlsa_len[i];
		}
		if (t->tlsa == NULL || t->tlsa_len == NULL ||
		    (t->tlsa_count > 0 &&
		     t->tlsa[t->tlsa_count - 1] == NULL) ||
		    t->tlsa_count == 0) {
			c->tls_client = t;	/* freed with c */
			if (t->tlsa == NULL)
				t->tlsa_count = 0;
			return -1;
		}
	}
	c->tls_client = t;
	if (tls_common_init(c, GNUTLS_CLIENT, net.client_cred,
			    net.client_prio) < 0)
		return -1;
	if (t->server_name != NULL && t->server_name[0] != '\0')
		gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS,
				       t->server_name,
				       strlen(t->server_name));
	if (t->verify == SC_TLS_VERIFY_PKIX)
		gnutls_session_set_verify_cert(c->tls, t->server_name, 0);
	tls_begin(c, done, arg);
	return 0;
}

bool
sc_conn_tls_active(const struct sc_conn *c)
{
	return c->tls_state == TLS_UP;
}

const char *
sc_conn_tls_desc(struct sc_conn *c)
{
	return c->tls_state == TLS_UP ? c->tls_desc : NULL;
}

/* ---- certificates ---- */

static int
path_join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* write_file_atomic - writes data to path via a temporary file with mode */
static int
write_file_atomic(const char *path, const void *data, size_t len,
		  mode_t mode)
{
	char tmp[4096];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* generate_certificate - a self-signed ECDSA P-256 certificate for
 * hostname, valid 10 years, with SAN dNSName = hostname. */
static int
generate_certificate(const char *hostname, const char *cert_path,
		     const char *key_path, char **error_r)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t kpem = { NULL, 0 }, cpem = { NULL, 0 };
	unsigned char serial[16];
	time_t now = time(NULL);
	int r, ret = -1;
	const char *step = "key";

	if ((r = gnutls_x509_privkey_init(&key)) < 0 ||
	    (r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0)
		goto out;
	step = "certificate";
	if ((r = gnutls_x509_crt_init(&crt)) < 0 ||
	    (r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
		goto out;
	serial[0] &= 0x7f;	/* positive */
	if ((r = gnutls_x509_crt_set_serial(crt, serial,
					    sizeof(serial))) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(crt,
			now + 10L * 365 * 24 * 3600)) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt,
			GNUTLS_OID_X520_COMMON_NAME, 0, hostname,
			strlen(hostname))) < 0 ||
	    (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
			hostname, strlen(hostname), GNUTLS_FSAN_SET)) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(crt,
			GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (r = gnutls_x509_crt_set_key_purpose_oid(crt,
			GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256,
				       0)) < 0)
		goto out;
	step = "export";
	if ((r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM,
					     &kpem)) < 0 ||
	    (r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM,
					 &cpem)) < 0)
		goto out;
	/* the key first: a certificate without its key is useless */
	if (write_file_atomic(key_path, kpem.data, kpem.size, 0600) < 0) {
		if (asprintf(error_r, "%s: %s", key_path, strerror(errno)) < 0)
			*error_r = NULL;
		goto out_noerr;
	}
	if (write_file_atomic(cert_path, cpem.data, cpem.size, 0644) < 0) {
		if (asprintf(error_r, "%s: %s", cert_path,
			     strerror(errno)) < 0)
			*error_r = NULL;
		goto out_noerr;
	}
	sc_log_notice("generated a self-signed TLS certificate for %s in %s",
		      hostname, cert_path);
	ret = 0;
	goto out_noerr;
out:
	if (asprintf(error_r, "generating the TLS %s: %s", step,
		     gnutls_strerror(r)) < 0)
		*error_r = NULL;
out_noerr:
	gnutls_free(kpem.data);
	gnutls_free(cpem.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return ret;
}

/* cert_paths - where the certificate and key of cfg are */
static int
cert_paths(const struct sc_main_config *cfg, char *cert, char *key,
	   size_t len)
{
	char dir[4096];

	if (cfg->tls_certificate != NULL && cfg->tls_certificate[0] != '\0') {
		const char *k = cfg->tls_key != NULL && cfg->tls_key[0] ?
			cfg->tls_key : cfg->tls_certificate;

		if (snprintf(cert, len, "%s", cfg->tls_certificate) >=
		    (int)len || snprintf(key, len, "%s", k) >= (int)len)
			return -1;
		return 0;
	}
	if (cfg->state_dir == NULL ||
	    path_join(dir, sizeof(dir), cfg->state_dir, "tls") < 0 ||
	    path_join(cert, len, dir, "cert.pem") < 0 ||
	    path_join(key, len, dir, "key.pem") < 0)
		return -1;
	return 0;
}

static int
load_cred(const char *cert, const char *key,
	  gnutls_certificate_credentials_t *cred_r, char **error_r)
{
	gnutls_certificate_credentials_t cred;
	int r;

	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		*error_r = strdup("out of memory");
		return -1;
	}
	r = gnutls_certificate_set_x509_key_file(cred, cert, key,
						 GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		if (asprintf(error_r, "TLS certificate %s / key %s: %s", cert,
			     key, gnutls_strerror(r)) < 0)
			*error_r = NULL;
		gnutls_certificate_free_credentials(cred);
		return -1;
	}
	*cred_r = cred;
	return 0;
}

/* generated_deferred - the generated certificate lives in state_dir,
 * which belongs to the daemon's user: root leaves it alone, and the
 * daemon makes and reads it after the privilege drop */
static bool
generated_deferred(const struct sc_main_config *cfg)
{
	return (cfg->tls_certificate == NULL ||
		cfg->tls_certificate[0] == '\0') && geteuid() == 0 &&
		cfg->user != NULL && cfg->user[0] != '\0';
}

/* ensure_generated - state_dir/tls/{cert,key}.pem: made once, then
 * checked; runs as the daemon's user when it drops privileges */
static int
ensure_generated(const struct sc_main_config *cfg, char **error_r)
{
	char cert[4096], key[4096], dir[4096];
	gnutls_certificate_credentials_t cred;
	struct stat st;

	if (cert_paths(cfg, cert, key, sizeof(cert)) < 0 ||
	    path_join(dir, sizeof(dir), cfg->state_dir, "tls") < 0) {
		*error_r = strdup("TLS certificate path too long");
		return -1;
	}
	mkdir(cfg->state_dir, 0755);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		if (asprintf(error_r, "%s: %s", dir, strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	/* a real directory of ours, not a link to someone else's */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid()) {
		if (asprintf(error_r, "%s: not a directory owned by uid %u "
			     "(a symlink?); remove it: satcheld makes it "
			     "anew with a new self-signed certificate", dir,
			     (unsigned)geteuid()) < 0)
			*error_r = NULL;
		return -1;
	}
	if (stat(cert, &st) < 0 || stat(key, &st) < 0) {
		const char *host = cfg->hostname != NULL &&
			cfg->hostname[0] ? cfg->hostname : "localhost";

		if (generate_certificate(host, cert, key, error_r) < 0)
			return -1;
	}
	if (access(key, R_OK) < 0) {
		if (asprintf(error_r, "%s: %s", key, strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	if (load_cred(cert, key, &cred, error_r) < 0)
		return -1;
	gnutls_certificate_free_credentials(cred);
	return 0;
}

int
sc_tls_ensure_certificate(const struct sc_main_config *cfg, char **error_r)
{
	char cert[4096], key[4096];
	gnutls_certificate_credentials_t cred;

	*error_r = NULL;
	if (cfg->tls_certificate == NULL || cfg->tls_certificate[0] == '\0')
		return generated_deferred(cfg) ? 0 :
			ensure_generated(cfg, error_r);
	if (cert_paths(cfg, cert, key, sizeof(cert)) < 0) {
		*error_r = strdup("TLS certificate path too long");
		return -1;
	}
	if (load_cred(cert, key, &cred, error_r) < 0)
		return -1;
	gnutls_certificate_free_credentials(cred);
	return 0;
}

int
sc_tls_ensure_generated(const struct sc_main_config *cfg, char **error_r)
{
	*error_r = NULL;
	if (cfg->tls_certificate != NULL && cfg->tls_certificate[0] != '\0')
		return 0;
	return ensure_generated(cfg, error_r);
}

/* net_load_server_cred - (re)loads the server certificate of cfg when its
 * paths changed. After the privilege drop the key may be unreadable: the
 * old credentials then stay, with a warning. */
static int
net_load_server_cred(const struct sc_main_config *cfg, char **error_r)
{
	char cert[4096], key[4096];
	gnutls_certificate_credentials_t cred;

	if (net.server_prio == NULL &&
	    gnutls_priority_init(&net.server_prio, SERVER_PRIORITY,
				 NULL) < 0) {
		net.server_prio = NULL;
		*error_r = strdup("TLS priority string rejected by GnuTLS");
		return -1;
	}
	if (cfg == NULL)
		return 0;
	if (cert_paths(cfg, cert, key, sizeof(cert)) < 0) {
		*error_r = strdup("TLS certificate path too long");
		return -1;
	}
	if (net.server_cred != NULL && net.cert_path != NULL &&
	    strcmp(net.cert_path, cert) == 0 &&
	    strcmp(net.key_path, key) == 0)
		return 0;
	if (load_cred(cert, key, &cred, error_r) < 0) {
		if (net.server_cred != NULL) {
			sc_log_warning("%s; keeping the old certificate",
				       *error_r);
			free(*error_r);
			*error_r = NULL;
			return 0;
		}
		return -1;
	}
	if (net.server_cred != NULL)
		gnutls_certificate_free_credentials(net.server_cred);
	net.server_cred = cred;
	free(net.cert_path);
	free(net.key_path);
	net.cert_path = strdup(cert);
	net.key_path = strdup(key);
	return 0;
}

int
sc_net_init(char **error_r)
{
	*error_r = NULL;
	if (net_handles_init() < 0) {
		*error_r = strdup("cannot initialise the loop handles");
		return -1;
	}
	if (sc_core != NULL && sc_core->gen != NULL) {
		const struct sc_main_config *cfg = sc_core->gen->cfg;

		if (sc_tls_ensure_certificate(cfg, error_r) < 0)
			return -1;
		/* deferred: sc_net_start loads it after the drop */
		return net_load_server_cred(generated_deferred(cfg) ? NULL :
					    cfg, error_r);
	}
	return net_load_server_cred(NULL, error_r);
}

void
sc_net_deinit(void)
{
	if (net.init) {
		uv_close((uv_handle_t *)&net.check, NULL);
		uv_close((uv_handle_t *)&net.idle, NULL);
		net.init = false;
	}
	if (net.server_cred != NULL)
		gnutls_certificate_free_credentials(net.server_cred);
	if (net.client_cred != NULL)
		gnutls_certificate_free_credentials(net.client_cred);
	if (net.server_prio != NULL)
		gnutls_priority_deinit(net.server_prio);
	if (net.client_prio != NULL)
		gnutls_priority_deinit(net.client_prio);
	if (net.dane != NULL)
		dane_state_deinit(net.dane);
	free(net.cert_path);
	free(net.key_path);
	net.server_cred = NULL;
	net.client_cred = NULL;
	net.server_prio = net.client_prio = NULL;
	net.dane = NULL;
	net.cert_path = net.key_path = NULL;
}

/* ---- listeners ---- */

static bool
sockaddr_equal(const struct sockaddr_storage *a,
	       const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a,
			*y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_port != 0 &&
			x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a,
			*y = (const void *)b;

		return x->sin6_port == y->sin6_port && x->sin6_port != 0 &&
			memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

static int
listener_fd(const struct listener *l)
{
	uv_os_fd_t fd;

	if (l->tcp != NULL && uv_fileno((const uv_handle_t *)l->tcp,
					&fd) == 0)
		return fd;
	return l->fd;
}

static int
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

int
sc_listen_open(struct sc_instance *inst, const struct sc_sockaddr *addr,
	       const char *protocol, sc_accept_fn fn, void *arg,
	       const char **error_r)
{
	struct sc_gen *gen = inst->gen;
	struct listener *l, *old;
	int fd = -1, one = 1;

	for (old = net.listeners; old != NULL; old = old->next) {
		if (old->gen != gen && listener_fd(old) >= 0 &&
		    sockaddr_equal(&old->addr.ss, &addr->ss))
			break;
	}
	if (old != NULL) {
		/* a reload: share the socket bound by the running generation
		 * (we may no longer have the privilege to bind it again) */
		fd = fcntl(listener_fd(old), F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			*error_r = net_err("listen %s: dup: %s", addr->text,
					   strerror(errno));
			return -1;
		}
	} else {
		fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
			    SOCK_NONBLOCK, 0);
		if (fd < 0) {
			*error_r = net_err("listen %s: socket: %s",
					   addr->text, strerror(errno));
			return -1;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (addr->ss.ss_family == AF_INET6) {
			/* "*:25" means every address, IPv4 too: one
			 * dual-stack socket. An explicit v6 address
			 * ("[::]:25", "[::1]:25") stays IPv6 only. */
			int v6only = addr->text[0] != '*';
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
				   sizeof(v6only));
		}
		if (bind(fd, (const struct sockaddr *)&addr->ss,
			 addr->len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
			*error_r = net_err("listen %s: %s", addr->text,
					   strerror(errno));
			close(fd);
			return -1;
		}
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL || (l->protocol = strdup(protocol)) == NULL) {
		free(l);
		close(fd);
		*error_r = "out of memory";
		return -1;
	}
	l->gen = gen;
	l->inst = inst;
	l->addr = *addr;
	l->fn = fn;
	l->arg = arg;
	l->fd = fd;
	l->port = bound_port(fd);
	l->next = net.listeners;
	net.listeners = l;
	sc_log_debug("listening on %s (port %d) for %s%s", addr->text,
		     l->port, protocol, old != NULL ? ", taken over" : "");
	return 0;
}

/* sc_listen_port - the port of the index-th listener of gen, in open
 * order (tests use port 0). -1 when there is none. */
int
sc_listen_port(struct sc_gen *gen, size_t index)
{
	size_t n = 0;
	struct listener *l;

	for (l = net.listeners; l != NULL; l = l->next)
		if (l->gen == gen)
			n++;
	if (index >= n)
		return -1;
	/* the list is newest first */
	for (l = net.listeners; l != NULL; l = l->next) {
		if (l->gen != gen)
			continue;
		if (--n == index)
			return l->port;
	}
	return -1;
}

static void
listener_handle_close_cb(uv_handle_t *h)
{
	free(h);
}

/* listener_stop - stops accepting; the socket closes with the handle */
static void
listener_stop(struct listener *l)
{
	if (l->tcp != NULL) {
		l->tcp->data = NULL;
		uv_close((uv_handle_t *)l->tcp, listener_handle_close_cb);
		l->tcp = NULL;
		l->fd = -1;
	}
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	struct sc_session *s;
	struct sc_conn *c;

	if (l == NULL)
		return;
	if (status < 0) {
		sc_log_warning("accept on %s: %s", l->addr.text,
			       uv_strerror(status));
		return;
	}
	c = conn_alloc();
	if (c == NULL) {
		sc_log_error("accept on %s: out of memory", l->addr.text);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_really_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	conn_addrs(c);
	s = sc_session_new(c, l->protocol, l->gen);
	if (s == NULL) {
		sc_log_error("accept on %s: cannot create a session",
			     l->addr.text);
		conn_start_close(c);
		return;
	}
	c->session = s;
	l->fn(s, l->arg);
}

int
sc_net_start(struct sc_gen *gen, char **error_r)
{
	struct listener *l;

	*error_r = NULL;
	if (net_handles_init() < 0) {
		*error_r = strdup("cannot initialise the loop handles");
		return -1;
	}
	if (net_load_server_cred(gen->cfg, error_r) < 0) {
		/* TLS is unusable, but plaintext listeners still work */
		sc_log_warning("%s", *error_r);
		free(*error_r);
		*error_r = NULL;
	}
	/* older generations stop accepting; a socket they shared with gen
	 * stays open through gen's duplicate */
	for (l = net.listeners; l != NULL; l = l->next)
		if (l->gen != gen)
			listener_stop(l);
	for (l = net.listeners; l != NULL; l = l->next) {
		if (l->gen != gen || l->tcp != NULL || l->fd < 0)
			continue;
		l->tcp = malloc(sizeof(*l->tcp));
		if (l->tcp == NULL || uv_tcp_init(net_loop(), l->tcp) != 0) {
			free(l->tcp);
			l->tcp = NULL;
			*error_r = strdup("out of memory");
			return -1;
		}
		l->tcp->data = l;
		if (uv_tcp_open(l->tcp, l->fd) != 0 ||
		    uv_listen((uv_stream_t *)l->tcp, LISTEN_BACKLOG,
			      on_connection) != 0) {
			if (asprintf(error_r, "listen %s: cannot accept",
				     l->addr.text) < 0)
				*error_r = NULL;
			listener_stop(l);
			return -1;
		}
	}
	return 0;
}

void
sc_net_stop_accepting(void)
{
	for (struct listener *l = net.listeners; l != NULL; l = l->next)
		listener_stop(l);
}

void
sc_net_gen_free(struct sc_gen *gen)
{
	struct listener **pp = &net.listeners, *l;

	while ((l = *pp) != NULL) {
		if (l->gen != gen) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		if (l->tcp != NULL)
			listener_stop(l);
		else if (l->fd >= 0)
			close(l->fd);
		free(l->protocol);
		free(l);
	}
}
