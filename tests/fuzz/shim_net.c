/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/shim_net.c - the fake core's connections (input buffer, sc_conn_getline and
 * the announce rules of core/net_conn.c, TLS as a scripted handshake) and
 * sessions (closed in core/session.c's order). See shim.h.
 */

#include "shim_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- connections ---- */

struct sc_conn *
conn_new(void)
{
	struct sc_conn *c = xcalloc(1, sizeof(*c));

	c->in = xcalloc(1, 1);	/* never NULL, like "" in net_conn.c */
	c->next = shim.conns;
	shim.conns = c;
	return c;
}

static void
conn_cancel_events(struct sc_conn *c)
{
	for (struct ev **pp = &shim.evs; *pp != NULL;) {
		struct ev *e = *pp;

		if (e->c == c) {
			*pp = e->next;
			ev_free(e);
		} else {
			pp = &e->next;
		}
	}
	ev_relink_tail();
}

void
conn_destroy(struct sc_conn *c)
{
	for (struct sc_conn **pp = &shim.conns; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	conn_cancel_events(c);
	if (c->client != NULL) {
		c->client->c = NULL;
		c->client->s = NULL;
	}
	free(c->in);
	free(c->line);
	free(c->out);
	free(c);
}

bool
conn_live(const struct sc_conn *c)
{
	for (struct sc_conn *x = shim.conns; x != NULL; x = x->next)
		if (x == c)
			return true;
	return false;
}

static void
conn_emit(struct sc_conn *c, enum sc_conn_event ev)
{
	FUZZ_CHECK(c->fn != NULL, "input for a connection without handler");
	c->fn(c, ev, c->arg);
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
	if (c->in_len > 0 || c->eof)
		c->announce = true;	/* from the loop, never inline */
}

void
sc_conn_read_stop(struct sc_conn *c)
{
	c->want_read = false;
}

static void
in_consume(struct sc_conn *c, size_t n)
{
	memmove(c->in, c->in + n, c->in_len - n);
	c->in_len -= n;
}

/* sc_conn_getline - as core/net_conn.c: lines over max are dropped to their
 * LF and reported as -1 with the bytes dropped; a copy stays valid until
 * the next read. */
int
sc_conn_getline(struct sc_conn *c, size_t max, const char **line_r,
		size_t *len_r, bool *bare_lf_r)
{
	const char *lf;
	size_t pos, linelen;
	bool bare;

	if (bare_lf_r != NULL)
		*bare_lf_r = false;
	*len_r = 0;
	if (c->discarding) {
		lf = memchr(c->in, '\n', c->in_len);
		if (lf == NULL) {
			c->discarded += c->in_len;
			in_consume(c, c->in_len);
			return 0;
		}
		c->discarded += (size_t)(lf - c->in) + 1;
		in_consume(c, (size_t)(lf - c->in) + 1);
		c->discarding = false;
	}
	lf = memchr(c->in, '\n', c->in_len);
	if (lf == NULL) {
		if (c->in_len > max + 1 || c->in_len >= IN_CAP) {
			c->discarding = true;
			c->discarded = c->in_len;
			*len_r = c->discarded;
			in_consume(c, c->in_len);
			return -1;
		}
		return 0;
	}
	pos = (size_t)(lf - c->in);
	bare = pos == 0 || c->in[pos - 1] != '\r';
	linelen = bare ? pos : pos - 1;
	if (linelen > max) {
		*len_r = pos + 1;
		in_consume(c, pos + 1);
		return -1;
	}
	if (c->line_cap < linelen + 1) {
		free(c->line);
		c->line = xcalloc(1, linelen + 1);
		c->line_cap = linelen + 1;
	}
	memcpy(c->line, c->in, linelen);
	c->line[linelen] = '\0';
	in_consume(c, pos + 1);
	*line_r = c->line;
	*len_r = linelen;
	if (bare_lf_r != NULL)
		*bare_lf_r = bare;
	return 1;
}

size_t
sc_conn_read(struct sc_conn *c, void *buf, size_t len)
{
	size_t n = c->in_len < len ? c->in_len : len;

	memcpy(buf, c->in, n);
	in_consume(c, n);
	return n;
}

size_t
sc_conn_buffered(const struct sc_conn *c)
{
	return c->in_len;
}

const char *
sc_conn_peek(const struct sc_conn *c, size_t *len_r)
{
	*len_r = c->in_len;
	return c->in;
}

void
sc_conn_consume(struct sc_conn *c, size_t len)
{
	in_consume(c, len < c->in_len ? len : c->in_len);
}

void
sc_conn_wipe_input(struct sc_conn *c)
{
	(void)c;	/* nothing to wipe: the fuzz input is no secret */
}

void
sc_conn_write(struct sc_conn *c, const void *data, size_t len)
{
	if (c->closing || len == 0)
		return;
	c->unflushed += len;
	if (c->client != NULL) {
		struct shim_client *cl = c->client;
		size_t keep = len;

		if (cl->out_len + keep > OUT_KEEP)
			keep = OUT_KEEP - cl->out_len;
		if (cl->out_len + keep > cl->out_cap) {
			cl->out_cap = cl->out_len + keep > OUT_KEEP / 2 ?
				      OUT_KEEP : (cl->out_len + keep) * 2;
			cl->out = realloc(cl->out, cl->out_cap);
			if (cl->out == NULL)
				abort();
		}
		memcpy(cl->out + cl->out_len, data, keep);
		cl->out_len += keep;
		cl->out_total += len;
		return;
	}
	if (c->out_len + len + 1 > c->out_cap) {
		c->out_cap = (c->out_len + len + 1) * 2;
		c->out = realloc(c->out, c->out_cap);
		if (c->out == NULL)
			abort();
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

void
sc_conn_printf(struct sc_conn *c, const char *fmt, ...)
{
	va_list ap;
	char *buf = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&buf, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	sc_conn_write(c, buf, (size_t)n);
	free(buf);
}

size_t
sc_conn_output_pending(const struct sc_conn *c)
{
	return c->unflushed;
}

void
sc_conn_set_timeout(struct sc_conn *c, uint64_t ms)
{
	c->timeout_ms = ms;
}

int
sc_conn_starttls(struct sc_conn *c, sc_conn_tls_fn done, void *arg)
{
	struct ev *e;

	FUZZ_CHECK(!c->tls && !c->tls_pending, "STARTTLS twice on a conn");
	/* CVE-2011-0411: pipelined plaintext after STARTTLS is dropped */
	c->in_len = 0;
	c->discarding = false;
	c->tls_pending = true;
	e = ev_add(EV_TLS);
	e->c = c;
	e->tls_done = done;
	e->arg = arg;
	e->ok = (shim_byte() & 7) != 7;	/* mostly a good handshake */
	return 0;
}

bool
sc_conn_tls_active(const struct sc_conn *c)
{
	return c->tls;
}

const char *
sc_conn_tls_desc(struct sc_conn *c)
{
	return c->tls ? "TLS1.3 with cipher AES-256-GCM (fuzz)" : NULL;
}

const char *
sc_conn_peer_ip(const struct sc_conn *c)
{
	return c->peer;
}

int
sc_conn_connect(const struct sockaddr *addr, uint64_t timeout_ms,
		sc_connect_fn done, void *arg)
{
	struct ev *e = ev_add(EV_CONNECT);

	(void)timeout_ms;
	FUZZ_CHECK(addr->sa_family == AF_INET || addr->sa_family == AF_INET6,
		   "connect to address family %d", addr->sa_family);
	e->connect_done = done;
	e->arg = arg;
	e->ok = (shim_byte() & 7) != 7;
	return 0;
}

int
sc_conn_starttls_client(struct sc_conn *c,
			const struct sc_tls_client_opts *opts,
			sc_conn_tls_fn done, void *arg)
{
	struct ev *e;

	FUZZ_CHECK(c->outbound, "client TLS on an inbound conn");
	FUZZ_CHECK(!c->tls && !c->tls_pending, "STARTTLS twice on a conn");
	if (opts->verify == SC_TLS_VERIFY_DANE) {
		FUZZ_CHECK(opts->tlsa_count > 0, "DANE without records");
		/* the records as the DNS sent them (net_tls.c refuses malformed
		 * ones): every byte must be readable */
		for (size_t i = 0; i < opts->tlsa_count; i++) {
			volatile unsigned char sum = 0;

			FUZZ_CHECK(opts->tlsa_data[i] != NULL ||
				   opts->tlsa_len[i] == 0, "TLSA record %zu "
				   "without data", i);
			for (size_t k = 0; k < opts->tlsa_len[i]; k++)
				sum ^= opts->tlsa_data[i][k];
			(void)sum;
		}
	}
	str_ok(opts->server_name);
	c->in_len = 0;
	c->tls_pending = true;
	e = ev_add(EV_TLS);
	e->c = c;
	e->tls_done = done;
	e->arg = arg;
	e->ok = (shim_byte() & 7) != 7;
	return 0;
}

void
sc_conn_close(struct sc_conn *c)
{
	FUZZ_CHECK(c->outbound, "sc_conn_close on a session's conn");
	conn_destroy(c);
}

struct sc_conn *
shim_outbound(struct sc_conn *after)
{
	struct sc_conn *c = after != NULL ? after->next : shim.conns;

	for (; c != NULL; c = c->next)
		if (c->outbound && !c->tls_pending)
			return c;
	return NULL;
}

const char *
shim_take_output(struct sc_conn *c, size_t *len_r)
{
	static char *last;

	free(last);
	last = xcalloc(1, c->out_len + 1);
	if (c->out_len > 0)
		memcpy(last, c->out, c->out_len);
	*len_r = c->out_len;
	c->out_len = 0;
	return last;
}

size_t
shim_send(struct sc_conn *c, const void *data, size_t len)
{
	size_t room = IN_CAP - c->in_len;

	if (c->closing || c->eof || c->tls_pending)
		return 0;
	if (len > room)
		len = room;
	if (c->in_len + len > c->in_cap) {
		c->in_cap = c->in_len + len;
		c->in = realloc(c->in, c->in_cap ? c->in_cap : 1);
		if (c->in == NULL)
			abort();
	}
	memcpy(c->in + c->in_len, data, len);
	c->in_len += len;
	if (len > 0)
		c->announce = true;
	return len;
}

void
shim_send_eof(struct sc_conn *c)
{
	c->eof = true;
	c->announce = true;
}

void
shim_idle_timeout(struct sc_conn *c)
{
	if (c->timeout_ms == 0 || c->closing || c->fn == NULL)
		return;
	conn_emit(c, SC_CONN_TIMEOUT);
}

/* ---- listeners and sessions ---- */

int
sc_listen_open(struct sc_instance *inst, const struct sc_sockaddr *addr,
	       const char *protocol, sc_accept_fn fn, void *arg,
	       const char **error_r)
{
	struct listener *l;

	(void)addr;
	if (shim.nlisteners == 16) {
		*error_r = "shim: too many listeners";
		return -1;
	}
	l = &shim.listeners[shim.nlisteners++];
	l->inst = inst;
	l->fn = fn;
	l->arg = arg;
	snprintf(l->protocol, sizeof(l->protocol), "%s", protocol);
	return 0;
}

size_t
shim_listener_count(void)
{
	return shim.nlisteners;
}

size_t
shim_session_count(void)
{
	size_t n = 0;

	for (struct sc_session *s = shim.sessions; s != NULL; s = s->next)
		n++;
	return n;
}

struct shim_client *
shim_connect(size_t index, const char *client_ip)
{
	struct listener *l = &shim.listeners[index % shim.nlisteners];
	struct shim_client *cl = xcalloc(1, sizeof(*cl));
	struct sc_session *s = xcalloc(1, sizeof(*s));
	struct sockaddr_in *sin = (struct sockaddr_in *)&s->client;
	struct sockaddr_in *lin = (struct sockaddr_in *)&s->local;

	snprintf(s->id, sizeof(s->id), "%08x", ++shim.serial);
	snprintf(s->protocol, sizeof(s->protocol), "%s", l->protocol);
	snprintf(s->client_ip, sizeof(s->client_ip), "%s", client_ip);
	sin->sin_family = AF_INET;
	sin->sin_port = htons(40000);
	if (inet_pton(AF_INET, client_ip, &sin->sin_addr) != 1)
		abort();
	lin->sin_family = AF_INET;
	lin->sin_port = htons(25);
	inet_pton(AF_INET, "127.0.0.1", &lin->sin_addr);
	s->conn = conn_new();
	s->conn->s = s;
	s->conn->client = cl;
	snprintf(s->conn->peer, sizeof(s->conn->peer), "%s", client_ip);
	s->next = shim.sessions;
	shim.sessions = s;
	cl->s = s;
	cl->c = s->conn;
	l->fn(s, l->arg);
	return cl;
}

const char *
sc_session_id(const struct sc_session *s)
{
	return s->id;
}

const char *
sc_session_protocol(const struct sc_session *s)
{
	return s->protocol;
}

const char *
sc_session_client_ip(const struct sc_session *s)
{
	return s->client_ip;
}

const struct sockaddr *
sc_session_client_addr(const struct sc_session *s)
{
	return (const struct sockaddr *)&s->client;
}

const struct sockaddr *
sc_session_local_addr(const struct sc_session *s)
{
	return (const struct sockaddr *)&s->local;
}

unsigned
sc_session_local_port(const struct sc_session *s)
{
	(void)s;
	return 25;
}

struct sc_conn *
sc_session_conn(struct sc_session *s)
{
	return s->conn;
}

const char *
sc_session_helo(const struct sc_session *s)
{
	return s->helo;
}

void
sc_session_set_helo(struct sc_session *s, const char *name)
{
	free(s->helo);
	s->helo = name != NULL ? xstrdup(name) : NULL;
}

const char *
sc_session_auth_user(const struct sc_session *s)
{
	return s->auth_user;
}

void
sc_session_set_auth_user(struct sc_session *s, const char *user)
{
	free(s->auth_user);
	s->auth_user = user != NULL ? xstrdup(user) : NULL;
}

const char *
sc_session_mode(const struct sc_session *s)
{
	return s->mode;
}

void
sc_session_set_mode(struct sc_session *s, const char *mode)
{
	free(s->mode);
	s->mode = mode != NULL ? xstrdup(mode) : NULL;
}

bool
sc_session_relay_allowed(const struct sc_session *s)
{
	return s->relay_allowed;
}

void
sc_session_set_relay_allowed(struct sc_session *s, bool allowed)
{
	s->relay_allowed = allowed;
}

bool
sc_session_tls(const struct sc_session *s)
{
	return s->conn != NULL && s->conn->tls;
}

int
sc_session_set_data(struct sc_session *s, const struct sc_instance *inst,
		    void *data, void (*free_fn)(void *))
{
	for (size_t i = 0; i < MAX_SLOTS; i++) {
		struct slot *sl = &s->slots[i];

		if (sl->inst == inst || sl->inst == NULL) {
			if (sl->inst == inst && sl->free_fn != NULL &&
			    sl->data != NULL && sl->data != data)
				sl->free_fn(sl->data);
			sl->inst = inst;
			sl->data = data;
			sl->free_fn = free_fn;
			return 0;
		}
	}
	return -1;
}

void *
sc_session_get_data(const struct sc_session *s,
		    const struct sc_instance *inst)
{
	for (size_t i = 0; i < MAX_SLOTS; i++)
		if (s->slots[i].inst == inst)
			return s->slots[i].data;
	return NULL;
}

void
sc_session_set_busy(struct sc_session *s, bool busy)
{
	s->busy = busy;
}

/* sc_session_close - in core/session.c's order: the connection goes, the
 * pending hook chains and a pending commit are cancelled (no callback),
 * the disconnect event, then the data slots are freed. */
void
sc_session_close(struct sc_session *s)
{
	struct sc_event ev;

	if (s == NULL || s->closing)
		return;
	s->closing = true;
	if (s->conn != NULL) {
		struct sc_conn *c = s->conn;

		s->conn = NULL;
		conn_destroy(c);
	}
	for (struct chain *ch = shim.chains; ch != NULL; ch = ch->link)
		if (ch->s == s)
			ch->cancelled = true;
	for (struct ev **pp = &shim.evs; *pp != NULL;) {
		struct ev *e = *pp;

		if (e->s == s && e->kind != EV_HOOK_DONE) {
			if (e->kind == EV_COMMIT)
				tx_free(e->tx);
			*pp = e->next;
			ev_free(e);
		} else {
			pp = &e->next;
		}
	}
	ev_relink_tail();
	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_DISCONNECT;
	ev.session = s;
	ev.protocol = s->protocol;
	ev.client_ip = s->client_ip;
	ev.user = s->auth_user;
	sc_event_emit(&ev);
	for (size_t i = 0; i < MAX_SLOTS; i++)
		if (s->slots[i].free_fn != NULL && s->slots[i].data != NULL)
			s->slots[i].free_fn(s->slots[i].data);
	for (struct sc_session **pp = &shim.sessions; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	/* chains keep no pointer to s past this: their done never comes */
	for (struct chain *ch = shim.chains; ch != NULL; ch = ch->link)
		if (ch->s == s)
			ch->s = NULL;
	for (struct ev *e = shim.evs; e != NULL; e = e->next)
		if (e->s == s)
			e->s = NULL;
	free(s->helo);
	free(s->auth_user);
	free(s->mode);
	free(s);
}

void
shim_client_free(struct shim_client *cl)
{
	if (cl->s != NULL)
		sc_session_close(cl->s);
	free(cl->out);
	free(cl);
}

/* conn_step - one connection's pending announce or flush, as
 * core/net_conn.c's conn_deliver: buffered input, then the EOF, then "all
 * written" */
bool
conn_step(void)
{
	for (struct sc_conn *c = shim.conns; c != NULL; c = c->next) {
		if (c->announce) {
			c->announce = false;
			if (c->closing || c->tls_pending || !c->want_read)
				return true;
			if (c->in_len > 0)
				conn_emit(c, SC_CONN_DATA);
			if (conn_live(c) && c->want_read && c->eof &&
			    !c->eof_sent) {
				c->eof_sent = true;
				conn_emit(c, SC_CONN_EOF);
			}
			return true;
		}
		if (c->unflushed > 0) {
			c->unflushed = 0;
			if (c->fn != NULL && !c->closing)
				conn_emit(c, SC_CONN_DRAINED);
			return true;
		}
	}
	return false;
}

