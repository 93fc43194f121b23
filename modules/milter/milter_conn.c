/* SPDX-License-Identifier: MIT */
/*
 * milter_conn.c - the socket to one milter for one SMTP session: the
 * address syntax, a non-blocking connect (unix or TCP) watched on the
 * core's loop, option negotiation (SMFIC_OPTNEG), buffered writes, packet
 * framing of what comes back, and the connect and reply timeouts. Never
 * blocks: a slow milter only delays its own session. Runs on the event
 * loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "milter_int.h"

/* ---- the address ---- */

/* resolve - host and port to a sockaddr (the first address); names are
 * looked up once, at start */
static int
resolve(const char *host, const char *port, int family,
	struct sockaddr_storage *ss, socklen_t *len_r, const char **error_r)
{
	struct addrinfo hints, *res = NULL;
	char *end;
	unsigned long p;

	p = strtoul(port, &end, 10);
	if (*port == '\0' || *end != '\0' || p == 0 || p > 65535) {
		*error_r = "milter: address: bad port";
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
		*error_r = "milter: address: cannot resolve the host";
		return -1;
	}
	if (res->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(res);
		*error_r = "milter: address: bad host";
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len_r = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int
mconn_parse_address(const char *text, struct sockaddr_storage *ss,
		    socklen_t *len_r, const char **error_r)
{
	char buf[512], *host, *port, *at;
	int family = AF_UNSPEC;

	memset(ss, 0, sizeof(*ss));
	if (strncmp(text, "unix:", 5) == 0 || strncmp(text, "local:", 6) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		const char *path = strchr(text, ':') + 1;

		if (path[0] != '/') {
			*error_r = "milter: address: unix: needs an absolute "
				   "path";
			return -1;
		}
		if (strlen(path) >= sizeof(sun->sun_path)) {
			*error_r = "milter: address: unix path too long";
			return -1;
		}
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		*len_r = (socklen_t)sizeof(*sun);
		return 0;
	}
	if (strncmp(text, "inet:", 5) == 0) {
		family = AF_UNSPEC;
		text += 5;
	} else if (strncmp(text, "inet6:", 6) == 0) {
		family = AF_INET6;
		text += 6;
	} else {
		*error_r = "milter: address: must start with unix: or inet:";
		return -1;
	}
	if (strlen(text) >= sizeof(buf)) {
		*error_r = "milter: address too long";
		return -1;
	}
	strcpy(buf, text);
	if ((at = strchr(buf, '@')) != NULL) {
		/* Sendmail's port@host */
		*at = '\0';
		port = buf;
		host = at + 1;
	} else if (buf[0] == '[') {
		char *close = strchr(buf, ']');

		if (close == NULL || close[1] != ':') {
			*error_r = "milter: address: inet:[v6]:port expected";
			return -1;
		}
		*close = '\0';
		host = buf + 1;
		port = close + 2;
	} else {
		char *colon = strrchr(buf, ':');

		if (colon == NULL) {
			*error_r = "milter: address: inet:host:port expected";
			return -1;
		}
		*colon = '\0';
		host = buf;
		port = colon + 1;
	}
	if (*host == '\0') {
		*error_r = "milter: address: no host";
		return -1;
	}
	return resolve(host, port, family, ss, len_r, error_r);
}

/* ---- the connection ---- */

static void conn_event(struct sc_fd_watch *w, unsigned events, void *arg);

void
mconn_fail(struct milter_sess *ms, const char *why)
{
	mconn_close(ms, false);
	milter_stage_fail(ms, why);
}

static void
timer_fired(struct sc_timer *t, void *arg)
{
	struct milter_sess *ms = arg;

	(void)t;
	ms->depth++;
	if (ms->state == MC_CONNECTING)
		mconn_fail(ms, "connect timeout");
	else if (ms->waiting)
		mconn_fail(ms, "timeout waiting for the milter");
	ms->depth--;
	milter_sess_unref(ms);
}

/* watch_update - ask for what is needed now: input while waiting (or
 * negotiating), output while bytes are queued */
static void
watch_update(struct milter_sess *ms)
{
	unsigned ev = 0;

	if (ms->watch == NULL)
		return;
	if (ms->state == MC_CONNECTING)
		ev = SC_FD_WRITE;
	else {
		if (ms->waiting)
			ev |= SC_FD_READ;
		if (ms->out.len > 0)
			ev |= SC_FD_WRITE;
	}
	if (sc_fd_watch_events(ms->watch) != ev)
		(void)sc_fd_watch_set(ms->watch, ev);
}

static void
arm_timer(struct milter_sess *ms, uint64_t ms_timeout)
{
	if (ms->timer == NULL)
		return;
	if (ms_timeout > 0)
		sc_timer_start(ms->timer, ms_timeout, 0);
	else
		sc_timer_stop(ms->timer);
}

/* write_out - writes what is queued; -1 when the milter went away */
static int
write_out(struct milter_sess *ms)
{
	while (ms->out.len > 0) {
		ssize_t n = send(ms->fd, ms->out.p, ms->out.len,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return -1;
		}
		milter_buf_consume(&ms->out, (size_t)n);
	}
	return 0;
}

/* negotiate - the connection is up: offer version 6, every action and
 * every protocol step */
static void
negotiate(struct milter_sess *ms)
{
	ms->state = MC_NEGOTIATING;
	milter_pkt_begin(&ms->out, SMFIC_OPTNEG);
	milter_pkt_u32(&ms->out, MILTER_VERSION);
	milter_pkt_u32(&ms->out, MILTER_ACTIONS);
	milter_pkt_u32(&ms->out, MILTER_PROTO_OFFER);
	milter_pkt_end(&ms->out);
	ms->waiting = true;
	ms->wait_ms = ms->mi->conf->timeouts.command;
	arm_timer(ms, ms->wait_ms);
	mconn_flush(ms);
}

void
mconn_open(struct milter_sess *ms)
{
	int fd;

	if (ms->state != MC_NONE)
		return;
	ms->timer = sc_timer_new(timer_fired, ms);
	fd = socket(ms->mi->addr.ss_family,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ms->timer == NULL || fd < 0) {
		if (fd >= 0)
			close(fd);
		ms->state = MC_CLOSED;
		milter_stage_fail(ms, "cannot create a socket");
		return;
	}
	ms->fd = fd;
	ms->watch = sc_fd_watch_new(fd, conn_event, ms);
	if (ms->watch == NULL) {
		mconn_fail(ms, "cannot watch the socket");
		return;
	}
	if (connect(fd, (const struct sockaddr *)&ms->mi->addr,
		    ms->mi->addr_len) == 0) {
		negotiate(ms);
		return;
	}
	if (errno != EINPROGRESS) {
		char why[128];

		snprintf(why, sizeof(why), "connect: %s", strerror(errno));
		mconn_fail(ms, why);
		return;
	}
	ms->state = MC_CONNECTING;
	arm_timer(ms, ms->mi->conf->timeouts.connect);
	watch_update(ms);
}

void
mconn_flush(struct milter_sess *ms)
{
	if (ms->out.oom) {
		mconn_fail(ms, "out of memory");
		return;
	}
	if (ms->state != MC_NEGOTIATING && ms->state != MC_READY)
		return;
	if (write_out(ms) != 0) {
		char why[128];

		snprintf(why, sizeof(why), "write: %s", strerror(errno));
		mconn_fail(ms, why);
		return;
	}
	watch_update(ms);
}

void
mconn_expect(struct milter_sess *ms, uint64_t timeout_ms)
{
	ms->waiting = true;
	ms->wait_ms = timeout_ms;
	arm_timer(ms, timeout_ms);
	mconn_flush(ms);
}

void
mconn_close(struct milter_sess *ms, bool quit)
{
	if (quit && ms->state == MC_READY) {
		/* best effort, never waited for: the milter frees its
		 * context on QUIT or on EOF alike */
		milter_pkt_begin(&ms->out, SMFIC_QUIT);
		milter_pkt_end(&ms->out);
		(void)write_out(ms);
	}
	sc_fd_watch_free(&ms->watch);
	sc_timer_free(&ms->timer);
	if (ms->fd >= 0)
		close(ms->fd);
	ms->fd = -1;
	ms->state = MC_CLOSED;
	ms->waiting = false;
	milter_buf_free(&ms->out);
	free(ms->in);
	ms->in = NULL;
	ms->in_len = ms->in_cap = 0;
}

/* read_in - reads what is there; 1 got bytes, 0 nothing now, -1 EOF or
 * error */
static int
read_in(struct milter_sess *ms)
{
	ssize_t n;

	if (ms->in_cap - ms->in_len < 4096) {
		size_t cap = ms->in_cap ? ms->in_cap * 2 : 8192;
		unsigned char *p;

		if (cap > MILTER_PACKET_MAX + 8192)
			cap = MILTER_PACKET_MAX + 8192;
		if (cap <= ms->in_len)
			return -1;
		p = realloc(ms->in, cap);
		if (p == NULL)
			return -1;
		ms->in = p;
		ms->in_cap = cap;
	}
	n = read(ms->fd, ms->in + ms->in_len, ms->in_cap - ms->in_len);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
		      errno == EINTR))
		return 0;
	if (n <= 0)
		return -1;
	ms->in_len += (size_t)n;
	return 1;
}

/* got_packet - one packet: the negotiation's answer, or the stage's */
static bool
got_packet(struct milter_sess *ms, unsigned char *pkt, size_t len)
{
	if (ms->state == MC_NEGOTIATING) {
		struct milter_reply r;
		const char *error = NULL;

		if (milter_reply_parse(pkt, len, &r, &error) != 0 ||
		    r.cmd != SMFIR_OPTNEG) {
			mconn_fail(ms, error ? error : "no option negotiation "
				  "reply");
			return false;
		}
		if (milter_negotiated(ms, &r) != 0)
			return false;
		return ms->waiting;
	}
	return milter_stage_packet(ms, pkt, len);
}

/* handle_input - every whole packet buffered, while a reply is awaited */
static void
handle_input(struct milter_sess *ms)
{
	size_t off = 0;

	while (ms->state != MC_CLOSED && off < ms->in_len) {
		size_t total;
		int r = milter_frame(ms->in + off, ms->in_len - off, &total);

		if (r == 0)
			break;
		if (r < 0) {
			mconn_fail(ms, "bad packet length");
			return;
		}
		if (!ms->waiting) {
			mconn_fail(ms, "unexpected packet");
			return;
		}
		off += total;
		if (!got_packet(ms, ms->in + off - total + 4, total - 4)) {
			if (ms->state == MC_CLOSED)
				return;
			if (!ms->waiting)
				arm_timer(ms, 0);
		} else {
			/* an action or progress: the clock starts again */
			arm_timer(ms, ms->wait_ms);
		}
	}
	if (ms->state == MC_CLOSED || ms->in == NULL)
		return;
	if (off > 0) {
		memmove(ms->in, ms->in + off, ms->in_len - off);
		ms->in_len -= off;
	}
	watch_update(ms);
}

static void
conn_event(struct sc_fd_watch *w, unsigned events, void *arg)
{
	struct milter_sess *ms = arg;

	(void)w;
	ms->depth++;
	if (ms->state == MC_CONNECTING) {
		int err = 0;
		socklen_t elen = sizeof(err);

		if (getsockopt(ms->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
			err = errno;
		if (err != 0) {
			char why[128];

			snprintf(why, sizeof(why), "connect: %s",
				 strerror(err));
			mconn_fail(ms, why);
		} else
			negotiate(ms);
		goto out;
	}
	if (events & SC_FD_WRITE) {
		mconn_flush(ms);
		if (ms->state == MC_CLOSED)
			goto out;
	}
	if (events & (SC_FD_READ | SC_FD_ERROR)) {
		int r = read_in(ms);

		if (r < 0) {
			mconn_fail(ms, ms->waiting ? "the milter closed the "
				  "connection" : "connection lost");
			goto out;
		}
		if (r > 0)
			handle_input(ms);
	}
out:
	ms->depth--;
	milter_sess_unref(ms);
}
