/* SPDX-License-Identifier: MIT */
/*
 * relay - the SC_DELIVERY_REMOTE driver: an SMTP client that hands queued
 * messages to the recipient domain's MX hosts, a static route or a
 * smarthost. Everything runs on the event loop thread; body chunks are
 * read on the thread pool.
 *
 * This file: the module - its configuration keys, the instance's life
 * (checks, the smarthost password, start, teardown), the status lines and
 * the small helpers the other files share. relay_int.h maps the rest:
 * relay_job.c (jobs, results, connection limits), relay_route.c (next hop,
 * MX and addresses), relay_conn.c (the connection and its replies),
 * relay_client.c (the SMTP commands), relay_tls.c (STARTTLS and DANE) and
 * relay_body.c (the body).
 */
#include "relay_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The DNSSEC root trust anchor the core's resolver validates with (Debian
 * package dns-root-data); without it no answer is secure. */
#define RELAY_ROOT_KEY "/usr/share/dns/root.key"

static const struct sc_config_key relay_auth_keys[] = {
	{ "user", SC_KEY_STR, offsetof(struct relay_auth_conf, user), NULL,
	  0, "user name for AUTH PLAIN/LOGIN at the smarthost", NULL, NULL,
	  0 },
	{ "password_file", SC_KEY_PATH,
	  offsetof(struct relay_auth_conf, password_file), NULL, 0,
	  "file whose first line is the password (read at start)", NULL,
	  NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static const struct sc_config_key relay_timeout_keys[] = {
	{ "greeting", SC_KEY_DURATION,
	  offsetof(struct relay_timeouts, greeting), "5m", 0,
	  "wait for the 220 greeting", NULL, NULL, 0 },
	{ "ehlo", SC_KEY_DURATION, offsetof(struct relay_timeouts, ehlo),
	  "5m", 0, "EHLO/HELO, STARTTLS and AUTH replies", NULL, NULL, 0 },
	{ "mail", SC_KEY_DURATION, offsetof(struct relay_timeouts, mail),
	  "5m", 0, "MAIL FROM reply", NULL, NULL, 0 },
	{ "rcpt", SC_KEY_DURATION, offsetof(struct relay_timeouts, rcpt),
	  "5m", 0, "RCPT TO reply", NULL, NULL, 0 },
	{ "data", SC_KEY_DURATION, offsetof(struct relay_timeouts, data),
	  "2m", 0, "DATA (354) reply", NULL, NULL, 0 },
	{ "data_block", SC_KEY_DURATION,
	  offsetof(struct relay_timeouts, data_block), "3m", 0,
	  "sending one block of the body", NULL, NULL, 0 },
	{ "data_done", SC_KEY_DURATION,
	  offsetof(struct relay_timeouts, data_done), "10m", 0,
	  "reply to the final dot", NULL, NULL, 0 },
	{ "total", SC_KEY_DURATION, offsetof(struct relay_timeouts, total),
	  "1h", 0, "one whole attempt for a domain: DNS, every host tried "
	  "and the conversation", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static const struct sc_config_key relay_keys[] = {
	{ "smarthost", SC_KEY_STR, offsetof(struct relay_conf, smarthost),
	  NULL, 0, "host:port all remote mail goes to (no MX lookup)",
	  NULL, NULL, 0 },
	{ "smarthost_auth", SC_KEY_OBJECT,
	  offsetof(struct relay_conf, smarthost_auth), NULL, 0,
	  "{user, password_file}: AUTH at the smarthost, over TLS only",
	  NULL, relay_auth_keys, 0 },
	{ "routes", SC_KEY_STR_MAP, offsetof(struct relay_conf, routes),
	  NULL, 0, "domain: host:port static next hops, before MX", NULL,
	  NULL, 0 },
	{ "tls", SC_KEY_ENUM, offsetof(struct relay_conf, tls),
	  "opportunistic", 0, "STARTTLS policy", "opportunistic|required|dane",
	  NULL, 0 },
	{ "retry", SC_KEY_DURATION_LIST, offsetof(struct relay_conf, retry),
	  "[5m, 10m, 30m, 1h, 2h, 4h]", 0,
	  "delays between attempts; the last one repeats", NULL, NULL, 0 },
	{ "max_queue_time", SC_KEY_DURATION,
	  offsetof(struct relay_conf, max_queue_time), "5d", 0,
	  "bounce deferred mail older than this", NULL, NULL, 0 },
	{ "port", SC_KEY_UINT, offsetof(struct relay_conf, port), "25", 0,
	  "TCP port of MX hosts (and of routes without a port)", NULL, NULL,
	  0 },
	{ "connect_timeout", SC_KEY_DURATION,
	  offsetof(struct relay_conf, connect_timeout), "30s", 0,
	  "TCP connect timeout per address", NULL, NULL, 0 },
	{ "timeouts", SC_KEY_OBJECT, offsetof(struct relay_conf, timeouts),
	  NULL, 0, "reply timeouts (RFC 5321 4.5.3.2)", NULL,
	  relay_timeout_keys, 0 },
	{ "max_connections_per_destination", SC_KEY_UINT,
	  offsetof(struct relay_conf, max_connections_per_destination), "5",
	  0, "parallel connections per MX domain or next hop", NULL, NULL,
	  0 },
	{ "helo_name", SC_KEY_STR, offsetof(struct relay_conf, helo_name),
	  NULL, 0, "EHLO name (default: hostname)", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* ---- small helpers ---- */

/* sfmt - snprintf whose truncation is intended (bounded log and reply
 * texts). */
void
sfmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

const char *
relay_hostname(void)
{
	const char *h = sc_config_hostname();

	return h != NULL ? h : "localhost";
}

const char *
relay_helo(const struct relay *r)
{
	if (r->conf->helo_name != NULL && r->conf->helo_name[0] != '\0')
		return r->conf->helo_name;
	return relay_hostname();
}

/* ---- status ---- */

static size_t
relay_status(char *buf, size_t len, void *data)
{
	struct relay *r = data;
	size_t waiting = 0;
	int n;

	for (struct relay_dest *dst = r->dests; dst != NULL; dst = dst->next)
		for (struct relay_job *j = dst->wait_head; j != NULL;
		     j = j->wait_next)
			waiting++;
	n = snprintf(buf, len,
		     "relay connections: %u\n"
		     "relay waiting for a connection slot: %zu\n"
		     "relay delivered: %llu\nrelay deferred: %llu\n"
		     "relay failed: %llu",
		     r->connections, waiting,
		     (unsigned long long)r->delivered,
		     (unsigned long long)r->deferred,
		     (unsigned long long)r->failed);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

/* ---- module lifecycle ---- */

static int
relay_read_password(const char *path, char **pw_r, const char **error_r)
{
	static char err[300];
	char buf[512];
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		sfmt(err, sizeof(err),
			 "smarthost_auth.password_file %s: %s", path,
			 strerror(errno));
		*error_r = err;
		return -1;
	}
	if (fgets(buf, sizeof(buf), f) == NULL)
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		sfmt(err, sizeof(err),
			 "smarthost_auth.password_file %s is empty", path);
		*error_r = err;
		return -1;
	}
	*pw_r = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	if (*pw_r == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	return 0;
}

static int
relay_instance_new(struct sc_instance *inst, const void *config,
		   void **data_r, const char **error_r)
{
	const struct relay_conf *conf = config;
	struct relay *r;

	if (conf->port == 0 || conf->port > 65535) {
		*error_r = "port must be between 1 and 65535";
		return -1;
	}
	for (size_t i = 0; i < conf->routes.n; i++) {
		char host[256];
		uint16_t port;
		if (split_hostport(conf->routes.values[i], host, sizeof(host),
				   &port, 25) < 0) {
			*error_r = "routes: each value must be host:port";
			return -1;
		}
	}
	/* without validation every TLSA answer is insecure, and `dane`
	 * would quietly be `opportunistic`: refuse to start instead */
	if (conf->tls == TLS_DANE && access(RELAY_ROOT_KEY, R_OK) != 0) {
		*error_r = "tls: dane needs DNSSEC validation, but the root "
			   "trust anchor " RELAY_ROOT_KEY " is missing (install "
			   "the Debian package dns-root-data)";
		return -1;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	r->inst = inst;
	r->conf = conf;
	if (conf->smarthost != NULL && conf->smarthost[0] != '\0' &&
	    split_hostport(conf->smarthost, r->smarthost_host,
			   sizeof(r->smarthost_host), &r->smarthost_port,
			   25) < 0) {
		free(r);
		*error_r = "smarthost must be host:port";
		return -1;
	}
	const struct relay_auth_conf *ac = &conf->smarthost_auth;
	if ((ac->user != NULL) != (ac->password_file != NULL)) {
		free(r);
		*error_r = "smarthost_auth needs both user and password_file";
		return -1;
	}
	if (ac->user != NULL) {
		if (r->smarthost_host[0] == '\0') {
			free(r);
			*error_r = "smarthost_auth without smarthost";
			return -1;
		}
		/* read now: the file may be readable by root only, and we
		 * run unprivileged later */
		if (relay_read_password(ac->password_file, &r->password,
					error_r) < 0) {
			free(r);
			return -1;
		}
	}
	r->drv.kind = SC_DELIVERY_REMOTE;
	r->drv.deliver = relay_deliver;
	r->drv.retry_ms = conf->retry.v;
	r->drv.retry_count = conf->retry.n;
	r->drv.max_queue_time_ms = conf->max_queue_time;
	*data_r = r;
	return 0;
}

static int
relay_instance_start(struct sc_instance *inst, void *data,
		     const char **error_r)
{
	struct relay *r = data;

	if (sc_delivery_register(inst, &r->drv, r) < 0) {
		*error_r = "cannot register the remote delivery driver";
		return -1;
	}
	if (sc_status_register(inst, relay_status, r) < 0) {
		*error_r = "cannot register the status function";
		return -1;
	}
	return 0;
}

static void
relay_instance_free(struct sc_instance *inst, void *data)
{
	struct relay *r = data;

	/* attempts in progress end as deferred; the queue keeps them */
	r->stopping = true;
	while (r->jobs != NULL) {
		struct relay_job *job = r->jobs;
		job_set_error(job, SC_DENYSOFT, 451, "4.3.2",
			      "delivery interrupted (shutdown or reload)");
		job_finish(job);
	}
	while (r->dests != NULL) {
		struct relay_dest *dst = r->dests;
		r->dests = dst->next;
		free(dst);
	}
	/* their connections are closed: no callback will come for them */
	while (r->orphans != NULL) {
		struct relay_tls_wait *w = r->orphans;
		r->orphans = w->next;
		free(w);
	}
	if (r->password != NULL) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r);
}

SC_MODULE(relay,
	.version = "1.0",
	.description = "SMTP delivery to MX hosts, static routes or a "
		       "smarthost",
	.keys = relay_keys,
	.config_size = sizeof(struct relay_conf),
	.instance_new = relay_instance_new,
	.instance_start = relay_instance_start,
	.instance_free = relay_instance_free,
);
