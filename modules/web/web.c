/* SPDX-License-Identifier: MIT */
/*
 * modules/web/web.c - the web module: its keys, the listening sockets
 * (bound in instance_new, as root at start; handed to the next generation
 * across a reload through the instance state, so a reload neither drops
 * the port nor needs root again), libmicrohttpd driven by satchel's loop
 * (its epoll fd under an sc_fd_watch, its timeouts on an sc_timer), who
 * may see what (`allow`), and the dispatch of a request to its page.
 * HTTP itself - parsing, limits, 400 for malformed requests - is
 * libmicrohttpd's. Loop thread.
 */
#include "web_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bounds on what a client may take: libmicrohttpd enforces them. */
#define WEB_MAX_CONNECTIONS	64
#define WEB_MAX_PER_IP		16
#define WEB_TIMEOUT_S		30
#define WEB_MEMORY_LIMIT	(64 * 1024)
#define WEB_MAX_BODY		(16 * 1024)	/* an autodiscover request */
#define WEB_TLS_PRIORITY	"SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* ---- configuration ---- */

static const struct sc_config_key web_listen_keys[] = {
	{ .name = "address", .type = SC_KEY_ADDRESS,
	  .offset = offsetof(struct web_listen_conf, address),
	  .flags = SC_KEY_REQUIRED,
	  .doc = "address and port to listen on (host:port, [v6]:port)" },
	{ .name = "tls", .type = SC_KEY_ENUM,
	  .offset = offsetof(struct web_listen_conf, tls), .def = "none",
	  .enum_values = "none|implicit",
	  .doc = "none: plain HTTP; implicit: HTTPS with the server "
		 "certificate of satchel.yaml's tls: (or the generated "
		 "one)" },
	{ .name = NULL }
};

static const struct sc_config_key web_keys[] = {
	{ .name = "listen", .type = SC_KEY_LIST,
	  .offset = offsetof(struct web_conf, listen),
	  .flags = SC_KEY_REQUIRED | SC_KEY_NONEMPTY, .sub = web_listen_keys,
	  .sub_size = sizeof(struct web_listen_conf),
	  .doc = "listeners: list of {address, tls}" },
	{ .name = "allow", .type = SC_KEY_CIDR_LIST,
	  .offset = offsetof(struct web_conf, allow),
	  /* quoted: a plain scalar cannot start with "::" in a flow list */
	  .def = "[127.0.0.0/8, \"::1/128\"]",
	  .doc = "who may see /metrics and the status page (others: 403); "
		 "autoconfiguration is public" },
	{ .name = "metrics", .type = SC_KEY_BOOL,
	  .offset = offsetof(struct web_conf, metrics), .def = "true",
	  .doc = "serve Prometheus metrics on /metrics" },
	{ .name = "autoconfig", .type = SC_KEY_BOOL,
	  .offset = offsetof(struct web_conf, autoconfig), .def = "true",
	  .doc = "serve mail client autoconfiguration (Thunderbird, "
		 "Outlook, Apple)" },
	{ .name = "status_page", .type = SC_KEY_BOOL,
	  .offset = offsetof(struct web_conf, status_page), .def = "true",
	  .doc = "serve the status page on /" },
	{ .name = NULL }
};

static int
web_validate(const void *config, struct sc_config_check *check)
{
	const struct web_conf *conf = config;

	for (size_t i = 0; i < conf->listen.n; i++) {
		const struct web_listen_conf *l =
			(const struct web_listen_conf *)conf->listen.v + i;
		char key[48];

		if (l->tls != 0 &&
		    MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			snprintf(key, sizeof(key), "listen.%zu.tls", i);
			return sc_config_check_error(check, key, "implicit "
				"TLS needs a libmicrohttpd built with TLS "
				"support, and this one is not");
		}
		for (size_t j = 0; j < i; j++) {
			const struct web_listen_conf *o =
				(const struct web_listen_conf *)
				conf->listen.v + j;

			if (strcmp(o->address.text, l->address.text) == 0) {
				snprintf(key, sizeof(key),
					 "listen.%zu.address", i);
				return sc_config_check_error(check, key,
					"listed twice");
			}
		}
	}
	return 0;
}

/* ---- the listening sockets, kept across reloads ---- */

struct web_socket {
	char text[64];		/* the address as configured, normalised */
	int fd;
};

struct web_sockets {
	size_t n;
	struct web_socket v[];
};

static void
sockets_free(void *p)
{
	struct web_sockets *ws = p;

	for (size_t i = 0; i < ws->n; i++)
		if (ws->v[i].fd >= 0)
			close(ws->v[i].fd);
	free(ws);
}

/* bind_one - a non-blocking listening socket on a; -1 with errno */
static int
bind_one(const struct sc_sockaddr *a)
{
	int fd, one = 1, e;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				 sizeof(one));
	/* the system's maximum backlog: the kernel caps it at
	 * net.core.somaxconn; a smaller one drops a burst's SYNs (issue 15) */
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, INT_MAX) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* sockets_take - the sockets of this config: the predecessor's when it
 * listened on the same address (a duplicate of its descriptor), else
 * bound anew. NULL on error (logged). */
static struct web_sockets *
sockets_take(struct sc_instance *inst, const struct web_conf *conf)
{
	const struct web_sockets *old = sc_instance_state_get(inst);
	struct web_sockets *ws;

	ws = calloc(1, sizeof(*ws) + conf->listen.n * sizeof(ws->v[0]));
	if (ws == NULL)
		return NULL;
	for (size_t i = 0; i < conf->listen.n; i++) {
		const struct web_listen_conf *l =
			(const struct web_listen_conf *)conf->listen.v + i;
		int fd = -1;

		for (size_t j = 0; old != NULL && j < old->n && fd < 0; j++)
			if (strcmp(old->v[j].text, l->address.text) == 0)
				fd = fcntl(old->v[j].fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			fd = bind_one(&l->address);
		if (fd < 0) {
			sc_log_error("%s: cannot listen on %s: %s",
				     sc_instance_name(inst), l->address.text,
				     strerror(errno));
			sockets_free(ws);
			return NULL;
		}
		snprintf(ws->v[ws->n].text, sizeof(ws->v[0].text), "%s",
			 l->address.text);
		ws->v[ws->n++].fd = fd;
	}
	if (sc_instance_state_put(inst, ws, sockets_free) < 0) {
		sockets_free(ws);
		return NULL;
	}
	return ws;
}

/* ---- libmicrohttpd on the loop ---- */

struct web_server {
	struct web_inst *wi;
	struct MHD_Daemon *d;
	struct sc_fd_watch *watch;	/* on MHD's epoll descriptor         */
	struct sc_timer *timer;		/* MHD's next timeout                */
};

/* server_schedule - after every run: wake again when MHD has work that
 * is due (a timeout, or data it has buffered: 0 ms) */
static void
server_schedule(struct web_server *sv)
{
	MHD_UNSIGNED_LONG_LONG ms = 0;

	if (MHD_get_timeout(sv->d, &ms) == MHD_YES)
		sc_timer_start(sv->timer, ms, 0);
	else
		sc_timer_stop(sv->timer);
}

static void
server_run(struct web_server *sv)
{
	(void)MHD_run(sv->d);
	server_schedule(sv);
}

static void
server_fd_cb(struct sc_fd_watch *w, unsigned events, void *arg)
{
	(void)w;
	(void)events;
	server_run(arg);
}

static void
server_timer_cb(struct sc_timer *t, void *arg)
{
	(void)t;
	server_run(arg);
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct web_inst *wi = cls;
	char buf[512];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	/* debug: the autoconfig paths are public, and a client sending
	 * garbage must not fill the log */
	sc_log_inst(SC_LOG_DEBUG, wi->inst, "libmicrohttpd: %s", buf);
}

/* ---- requests ---- */

/* What a POST collects before it is answered. */
struct web_req {
	struct web_buf body;
	bool too_big;
};

static void
req_completed(void *cls, struct MHD_Connection *c, void **con_cls,
	      enum MHD_RequestTerminationCode toe)
{
	struct web_req *rq = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (rq != NULL) {
		web_buf_free(&rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/* send_reply - queues r (its body is handed to MHD) */
static enum MHD_Result
send_reply(struct MHD_Connection *c, struct web_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->body.failed) {
		web_buf_free(&r->body);
		r->status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		r->type = "text/plain; charset=utf-8";
		web_buf_puts(&r->body, "out of memory\n");
	}
	resp = MHD_create_response_from_buffer(r->body.len,
					       r->body.s != NULL ? r->body.s :
					       (char *)"",
					       r->body.s != NULL ?
					       MHD_RESPMEM_MUST_FREE :
					       MHD_RESPMEM_PERSISTENT);
	if (resp == NULL) {
		web_buf_free(&r->body);
		return MHD_NO;
	}
	r->body.s = NULL;	/* MHD's now */
	(void)MHD_add_response_header(resp, "Content-Type", r->type);
	(void)MHD_add_response_header(resp, "X-Content-Type-Options",
				      "nosniff");
	(void)MHD_add_response_header(resp, "Cache-Control", "no-store");
	(void)MHD_add_response_header(resp, "Content-Security-Policy",
				      "default-src 'none'; script-src 'self'; "
				      "connect-src 'self'; style-src 'self' "
				      "'unsafe-inline'; img-src 'self' data:; "
				      "frame-ancestors 'none'");
	if (r->disposition != NULL)
		(void)MHD_add_response_header(resp, "Content-Disposition",
					      r->disposition);
	if (r->status == MHD_HTTP_METHOD_NOT_ALLOWED)
		(void)MHD_add_response_header(resp, "Allow",
					      "GET, HEAD, POST");
	ret = MHD_queue_response(c, r->status, resp);
	MHD_destroy_response(resp);
	web_buf_free(&r->body);
	return ret;
}

static void
reply_text(struct web_reply *r, unsigned status, const char *text)
{
	r->status = status;
	r->type = "text/plain; charset=utf-8";
	web_buf_puts(&r->body, text);
	web_buf_puts(&r->body, "\n");
}

/* client_allowed - the source address is in `allow` */
static bool
client_allowed(struct web_inst *wi, struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return ci != NULL && ci->client_addr != NULL &&
	       sc_cidr_list_match(&wi->conf->allow, ci->client_addr);
}

/* query_address - the emailaddress argument, checked; 0 none, 1 found,
 * -1 malformed */
static int
query_address(struct MHD_Connection *c, char *buf, size_t len)
{
	const char *a = NULL;
	size_t n = 0;

	/* with its length: a %00 in the query decodes to a NUL byte, which
	 * must make the address bad, not end it early */
	if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND,
					  "emailaddress",
					  sizeof("emailaddress") - 1, &a,
					  &n) != MHD_YES || a == NULL || n == 0)
		return 0;
	return web_address_clean(a, n, buf, len) == 0 ? 1 : -1;
}

/* route - which page answers url; r filled */
static void
route(struct web_inst *wi, struct MHD_Connection *c, const char *url,
      const char *method, const struct web_req *rq, struct web_reply *r)
{
	const struct web_conf *conf = wi->conf;
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	bool post = strcmp(method, "POST") == 0;
	char addr[256];
	int q;

	if (strcasecmp(url, "/autodiscover/autodiscover.xml") == 0) {
		if (!conf->autoconfig)
			return reply_text(r, 404, "not found");
		if (!post)
			return reply_text(r, 405, "POST an autodiscover "
					  "request");
		if (rq == NULL || rq->too_big)
			return reply_text(r, 413, "request too large");
		if (web_autodiscover_address(rq->body.s != NULL ?
					     rq->body.s : "", rq->body.len,
					     addr, sizeof(addr)) < 0)
			return reply_text(r, 400, "no valid EMailAddress in "
					  "the request");
		return web_autoconfig_outlook(wi, addr, r);
	}
	if (!get)
		return reply_text(r, 405, "method not allowed");
	if (strcmp(url, "/.well-known/autoconfig/mail/config-v1.1.xml") == 0 ||
	    strcmp(url, "/mail/config-v1.1.xml") == 0 ||
	    strcmp(url, "/mail/satchel.mobileconfig") == 0) {
		if (!conf->autoconfig)
			return reply_text(r, 404, "not found");
		q = query_address(c, addr, sizeof(addr));
		if (q < 0)
			return reply_text(r, 400, "emailaddress: not a mail "
					  "address");
		if (strcmp(url, "/mail/satchel.mobileconfig") == 0)
			return q == 0 ? reply_text(r, 400, "emailaddress: "
						   "required") :
				web_autoconfig_apple(wi, addr, r);
		return web_autoconfig_thunderbird(wi, q ? addr : NULL, r);
	}
	if (strcmp(url, "/metrics") == 0) {
		if (!conf->metrics)
			return reply_text(r, 404, "not found");
		if (!client_allowed(wi, c))
			return reply_text(r, 403, "forbidden");
		return web_metrics_page(wi, r);
	}
	if (strcmp(url, "/") == 0 || strcmp(url, "/status.json") == 0 ||
	    strcmp(url, "/status.js") == 0) {
		if (!conf->status_page)
			return reply_text(r, 404, "not found");
		if (!client_allowed(wi, c))
			return reply_text(r, 403, "forbidden");
		if (url[1] == '\0')
			return web_status_page(wi, r);
		if (strcmp(url, "/status.json") == 0)
			return web_status_json(wi, r);
		return web_status_script(wi, r);
	}
	reply_text(r, 404, "not found");
}

static enum MHD_Result
count_host(void *cls, enum MHD_ValueKind kind, const char *key,
	   const char *value)
{
	unsigned *n = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		(*n)++;
	return MHD_YES;
}

/* host_ok - RFC 9112 3.2: an HTTP/1.1 request carries exactly one Host
 * (libmicrohttpd 0.9.75 lets both faults pass) */
static bool
host_ok(struct MHD_Connection *c, const char *version)
{
	unsigned n = 0;

	(void)MHD_get_connection_values(c, MHD_HEADER_KIND, count_host, &n);
	return n == 1 || (n == 0 &&
			  strcmp(version, MHD_HTTP_VERSION_1_0) == 0);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
	   const char *method, const char *version, const char *upload_data,
	   size_t *upload_data_size, void **con_cls)
{
	struct web_server *sv = cls;
	struct web_req *rq = *con_cls;
	struct web_reply r = { .status = 200 };

	if (rq == NULL && !host_ok(c, version)) {
		reply_text(&r, 400, "exactly one Host header, please");
		return send_reply(c, &r);
	}
	if (strcmp(method, "POST") == 0) {
		/* the body arrives in pieces: collect, answer at its end */
		if (rq == NULL) {
			rq = calloc(1, sizeof(*rq));
			if (rq == NULL)
				return MHD_NO;
			*con_cls = rq;
			return MHD_YES;
		}
		if (*upload_data_size != 0) {
			if (rq->body.len + *upload_data_size > WEB_MAX_BODY)
				rq->too_big = true;
			else
				web_buf_add(&rq->body, upload_data,
					    *upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
	}
	route(sv->wi, c, url, method, rq, &r);
	/* MHD itself leaves the body out of a HEAD answer */
	return send_reply(c, &r);
}

/* ---- the instance ---- */

static void
server_stop(struct web_server *sv)
{
	sc_fd_watch_free(&sv->watch);
	sc_timer_free(&sv->timer);
	if (sv->d != NULL)
		MHD_stop_daemon(sv->d);	/* closes its copy of the socket */
	sv->d = NULL;
}

/* server_start - MHD on a copy of the socket fd, on the loop; with tls,
 * HTTPS with the core's server certificate as it is now (a reload starts
 * new daemons, so they serve the certificate read anew) */
static int
server_start(struct web_inst *wi, struct web_server *sv, int lfd, bool tls)
{
	const union MHD_DaemonInfo *di;
	char *cert = NULL, *key = NULL;
	size_t clen = 0, klen = 0;
	struct MHD_OptionItem tls_opts[4] = {
		{ MHD_OPTION_END, 0, NULL },
	};
	int fd;

	sv->wi = wi;
	if (tls) {
		if (sc_tls_server_pem(&cert, &clen, &key, &klen) < 0) {
			sc_log_error("%s: no TLS server certificate to serve "
				     "HTTPS with", sc_instance_name(wi->inst));
			return -1;
		}
		tls_opts[0] = (struct MHD_OptionItem)
			{ MHD_OPTION_HTTPS_MEM_CERT, 0, cert };
		tls_opts[1] = (struct MHD_OptionItem)
			{ MHD_OPTION_HTTPS_MEM_KEY, 0, key };
		/* TLS 1.2+, as the core's own listeners */
		tls_opts[2] = (struct MHD_OptionItem)
			{ MHD_OPTION_HTTPS_PRIORITIES, 0,
			  (void *)WEB_TLS_PRIORITY };
	}
	fd = fcntl(lfd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0) {
		sc_tls_pem_free(cert, clen);
		sc_tls_pem_free(key, klen);
		return -1;
	}
	sv->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
				 (tls ? MHD_USE_TLS : 0),
				 0, NULL, NULL, on_request, sv,
				 MHD_OPTION_EXTERNAL_LOGGER, mhd_log, wi,
				 MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
				 MHD_OPTION_CONNECTION_LIMIT,
				 (unsigned int)WEB_MAX_CONNECTIONS,
				 MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				 (unsigned int)WEB_MAX_PER_IP,
				 MHD_OPTION_CONNECTION_TIMEOUT,
				 (unsigned int)WEB_TIMEOUT_S,
				 MHD_OPTION_CONNECTION_MEMORY_LIMIT,
				 (size_t)WEB_MEMORY_LIMIT,
				 MHD_OPTION_NOTIFY_COMPLETED, req_completed,
				 NULL,
				 MHD_OPTION_ARRAY, tls_opts,
				 MHD_OPTION_END);
	/* MHD loads the pair into its GnuTLS credentials (a copy) while it
	 * starts and does not read these again: wiped now */
	sc_tls_pem_free(cert, clen);
	sc_tls_pem_free(key, klen);
	if (sv->d == NULL) {
		close(fd);
		return -1;
	}
	di = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_EPOLL_FD);
	if (di == NULL || di->epoll_fd < 0 ||
	    (sv->watch = sc_fd_watch_new(di->epoll_fd, server_fd_cb,
					 sv)) == NULL ||
	    (sv->timer = sc_timer_new(server_timer_cb, sv)) == NULL ||
	    sc_fd_watch_set(sv->watch, SC_FD_READ) < 0) {
		server_stop(sv);
		return -1;
	}
	server_schedule(sv);
	return 0;
}

static int
web_instance_new(struct sc_instance *inst, const void *config, void **data_r,
		 const char **error_r)
{
	const struct web_conf *conf = config;
	struct web_inst *wi = calloc(1, sizeof(*wi));

	if (wi == NULL) {
		*error_r = "web: out of memory";
		return -1;
	}
	wi->inst = inst;
	wi->conf = conf;
	wi->started = time(NULL);
	/* bound here: at start this runs as root, before the drop */
	wi->socks = sockets_take(inst, conf);
	if (wi->socks == NULL) {
		free(wi);
		*error_r = "web: cannot open the listeners (see the log)";
		return -1;
	}
	*data_r = wi;
	return 0;
}

static int
web_instance_start(struct sc_instance *inst, void *data,
		   const char **error_r)
{
	struct web_inst *wi = data;

	wi->servers = calloc(wi->socks->n, sizeof(*wi->servers));
	if (wi->servers == NULL) {
		*error_r = "web: out of memory";
		return -1;
	}
	for (size_t i = 0; i < wi->socks->n; i++) {
		/* socks->v follows conf->listen, in order */
		bool tls = ((const struct web_listen_conf *)
			    wi->conf->listen.v)[i].tls != 0;
		const char *what = tls ? "HTTPS" : "HTTP";

		if (server_start(wi, &wi->servers[i], wi->socks->v[i].fd,
				 tls) < 0) {
			sc_log_error("%s: cannot serve %s on %s",
				     sc_instance_name(inst), what,
				     wi->socks->v[i].text);
			*error_r = "web: cannot start the HTTP server";
			return -1;
		}
		wi->nservers++;
		sc_log_inst(SC_LOG_INFO, inst, "serving %s on %s", what,
			    wi->socks->v[i].text);
	}
	return 0;
}

static void
web_instance_free(struct sc_instance *inst, void *data)
{
	struct web_inst *wi = data;

	(void)inst;
	for (size_t i = 0; i < wi->nservers; i++)
		server_stop(&wi->servers[i]);
	free(wi->servers);
	/* the sockets are the state's: closed when no generation holds it */
	free(wi);
}

SC_MODULE(web,
	.version = "1.0",
	.description = "HTTP: Prometheus /metrics, mail client "
		       "autoconfiguration, the status page",
	.keys = web_keys,
	.config_size = sizeof(struct web_conf),
	.instance_new = web_instance_new,
	.instance_start = web_instance_start,
	.instance_free = web_instance_free,
	.validate = web_validate,
);
