/* SPDX-License-Identifier: MIT */
/*
 * core/net_listen.c - satcheld's listeners: a module opens one per
 * address (sc_listen_open; "*:PORT" is one dual-stack socket), a reload
 * takes over the sockets the running generation bound, and each accepted
 * connection is handed to a new session and the module's accept
 * function; and where any connection is from (its socket addresses) and
 * wrapping a connected fd (the unit tests). Runs on the event loop
 * thread; binding happens before the privilege drop.
 */
#include "net_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

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


/* Every generation's listeners, newest first: process-wide, loop thread
 * only. */
static struct listener *listeners;

/* ---- where a connection is from ---- */

void
sc_net_conn_addrs(struct sc_conn *c)
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

/* sc_conn_new_fd - wraps a connected socket (the tests' socketpairs and
 * the accept path share this). */
struct sc_conn *
sc_conn_new_fd(int fd, char **error_r)
{
	struct sc_conn *c = sc_net_conn_alloc();

	if (c == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	if (uv_tcp_open(&c->tcp, fd) != 0) {
		*error_r = strdup("uv_tcp_open failed");
		sc_net_conn_really_close(c);
		return NULL;
	}
	sc_net_conn_addrs(c);
	return c;
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

/* bind_privileged - after the drop, a port below 1024 (or any address
 * root alone may bind) comes bound from the privileged helper, which
 * checks that the config names it */
static int
bind_privileged(const struct sc_sockaddr *addr, const char **error_r)
{
	char *err = NULL;
	int fd;

	fd = sc_privops_bind(addr, &err);
	if (fd < 0)
		*error_r = sc_net_err("listen %s: the privileged helper "
				      "could not bind it: %s", addr->text,
				      err ? err : "out of memory");
	free(err);
	return fd;
}

int
sc_listen_open(struct sc_instance *inst, const struct sc_sockaddr *addr,
	       const char *protocol, sc_accept_fn fn, void *arg,
	       const char **error_r)
{
	struct sc_gen *gen = inst->gen;
	struct listener *l, *old;
	int fd = -1, one = 1;
	bool via_helper = false;

	for (old = listeners; old != NULL; old = old->next) {
		if (old->gen != gen && listener_fd(old) >= 0 &&
		    sockaddr_equal(&old->addr.ss, &addr->ss))
			break;
	}
	if (old != NULL) {
		/* a reload: share the socket bound by the running generation
		 * (we may no longer have the privilege to bind it again) */
		fd = fcntl(listener_fd(old), F_DUPFD_CLOEXEC, 0);
		if (fd < 0) {
			*error_r = sc_net_err("listen %s: dup: %s",
					      addr->text, strerror(errno));
			return -1;
		}
	} else {
		fd = socket(addr->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
			    SOCK_NONBLOCK, 0);
		if (fd < 0) {
			*error_r = sc_net_err("listen %s: socket: %s",
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
			 addr->len) < 0 || listen(fd, SC_LISTEN_BACKLOG) < 0) {
			int e = errno;

			close(fd);
			fd = -1;
			if (e == EACCES && sc_privops_available())
				fd = bind_privileged(addr, error_r);
			else
				*error_r = sc_net_err("listen %s: %s",
						      addr->text, strerror(e));
			if (fd < 0)
				return -1;
			via_helper = true;
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
	l->next = listeners;
	listeners = l;
	sc_log_debug("listening on %s (port %d) for %s%s", addr->text,
		     l->port, protocol, old != NULL ? ", taken over" :
		     via_helper ? ", bound by the privileged helper" : "");
	return 0;
}

/* sc_listen_port - the port of the index-th listener of gen, in open
 * order (tests use port 0). -1 when there is none. */
int
sc_listen_port(struct sc_gen *gen, size_t index)
{
	size_t n = 0;
	struct listener *l;

	for (l = listeners; l != NULL; l = l->next)
		if (l->gen == gen)
			n++;
	if (index >= n)
		return -1;
	/* the list is newest first */
	for (l = listeners; l != NULL; l = l->next) {
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
	c = sc_net_conn_alloc();
	if (c == NULL) {
		sc_log_error("accept on %s: out of memory", l->addr.text);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		sc_net_conn_really_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	sc_net_conn_addrs(c);
	s = sc_session_new(c, l->protocol, l->gen);
	if (s == NULL) {
		sc_log_error("accept on %s: cannot create a session",
			     l->addr.text);
		sc_net_conn_start_close(c);
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
	if (sc_net_handles_init() < 0) {
		*error_r = strdup("cannot initialise the loop handles");
		return -1;
	}
	if (sc_net_load_server_cred(gen->cfg, error_r) < 0) {
		/* TLS is unusable, but plaintext listeners still work */
		sc_log_warning("%s", *error_r);
		free(*error_r);
		*error_r = NULL;
	}
	/* older generations stop accepting; a socket they shared with gen
	 * stays open through gen's duplicate */
	for (l = listeners; l != NULL; l = l->next)
		if (l->gen != gen)
			listener_stop(l);
	for (l = listeners; l != NULL; l = l->next) {
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
		    uv_listen((uv_stream_t *)l->tcp, SC_LISTEN_BACKLOG,
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
	for (struct listener *l = listeners; l != NULL; l = l->next)
		listener_stop(l);
}

void
sc_net_gen_free(struct sc_gen *gen)
{
	struct listener **pp = &listeners, *l;

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
