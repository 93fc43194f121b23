/* SPDX-License-Identifier: MIT */
/*
 * pop3 - POP3 listener (RFC 1939, 2449, 2595, 5034) on Maildir mailboxes.
 * The protocol runs on the event loop thread; every mailbox access (scan,
 * size computation, message reads, deletes) runs on the thread pool
 * through sc_work_submit_inst(), so a big mailbox never stalls other
 * sessions.
 *
 * This file: the module's configuration keys and the instance lifecycle
 * (listeners, status lines, the reference count that keeps an instance
 * alive for its sessions and their pool jobs). pop3_int.h maps the rest.
 */
#include "pop3_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- configuration ---- */

struct pop_listen_conf {
	struct sc_sockaddr address;
	int tls;
};

struct pop_timeouts {
	uint64_t command;
};

struct pop_conf {
	struct sc_list listen;
	struct pop_timeouts timeouts;
	uint64_t auth_failure_delay;
	uint64_t max_auth_failures;
};

static const struct sc_config_key pop_listen_keys[] = {
	{ .name = "address", .type = SC_KEY_ADDRESS,
	  .offset = offsetof(struct pop_listen_conf, address),
	  .flags = SC_KEY_REQUIRED,
	  .doc = "address and port to listen on (host:port, [v6]:port)" },
	{ .name = "tls", .type = SC_KEY_ENUM,
	  .offset = offsetof(struct pop_listen_conf, tls),
	  .def = "starttls", .enum_values = "none|starttls|implicit",
	  .doc = "none: plaintext logins allowed; starttls: STLS offered "
		 "and required before login; implicit: TLS from the start" },
	{ .name = NULL }
};

static const struct sc_config_key pop_timeout_keys[] = {
	{ .name = "command", .type = SC_KEY_DURATION,
	  .offset = offsetof(struct pop_timeouts, command), .def = "10m",
	  .doc = "idle time before the session is closed (RFC 1939: >= 10m)" },
	{ .name = NULL }
};

static const struct sc_config_key pop_keys[] = {
	{ .name = "listen", .type = SC_KEY_LIST,
	  .offset = offsetof(struct pop_conf, listen),
	  .flags = SC_KEY_REQUIRED, .sub = pop_listen_keys,
	  .sub_size = sizeof(struct pop_listen_conf),
	  .doc = "listeners: list of {address, tls}" },
	{ .name = "timeouts", .type = SC_KEY_OBJECT,
	  .offset = offsetof(struct pop_conf, timeouts),
	  .sub = pop_timeout_keys, .doc = "{command: 10m}" },
	{ .name = "auth_failure_delay", .type = SC_KEY_DURATION,
	  .offset = offsetof(struct pop_conf, auth_failure_delay),
	  .def = "2s", .doc = "delay before answering a failed login "
	  "(multiplied by the failures so far in the session)" },
	{ .name = "max_auth_failures", .type = SC_KEY_UINT,
	  .offset = offsetof(struct pop_conf, max_auth_failures),
	  .def = "3", .doc = "failed logins before the session is closed" },
	{ .name = NULL }
};

void
pop_inst_unref(struct pop_inst *pd)
{
	size_t i;

	if (--pd->refs > 0)
		return;
	for (i = 0; i < POP_CACHE_BUCKETS; i++) {
		struct pop_cache_ent *e = pd->cache[i], *n;
		for (; e != NULL; e = n) {
			n = e->next;
			free(e);
		}
	}
	while (pd->locks != NULL) {
		struct pop_lock *l = pd->locks;
		pd->locks = l->next;
		free(l->mbox);
		free(l);
	}
	pthread_mutex_destroy(&pd->cache_mutex);
	free(pd->listeners);
	free(pd);
}

/* ---- instance lifecycle ---- */

static size_t
pop_status(char *buf, size_t len, void *data)
{
	struct pop_inst *pd = data;
	size_t locked = 0;
	struct pop_lock *l;
	int n;

	for (l = pd->locks; l != NULL; l = l->next)
		locked++;
	n = snprintf(buf, len, "pop3 mailboxes open: %zu\n"
		     "pop3 logins: %" PRIu64 "\npop3 auth failures: %" PRIu64,
		     locked, pd->logins, pd->failures);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

static int
pop_instance_new(struct sc_instance *inst, const void *config,
		 void **data_r, const char **error_r)
{
	const struct pop_conf *conf = config;
	const struct pop_listen_conf *lc = conf->listen.v;
	struct pop_inst *pd;
	size_t i;

	if (conf->listen.n == 0) {
		*error_r = "listen: at least one listener is needed";
		return -1;
	}
	if (conf->timeouts.command < 10 * 60 * 1000)
		sc_log_warning("%s: timeouts.command is below the 10 minutes "
			       "RFC 1939 requires", sc_instance_file(inst));
	pd = calloc(1, sizeof(*pd));
	if (pd == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	pd->refs = 1;
	pd->inst = inst;
	pd->cmd_timeout = conf->timeouts.command;
	pd->fail_delay = conf->auth_failure_delay;
	pd->max_failures = conf->max_auth_failures ?
		conf->max_auth_failures : 1;
	pthread_mutex_init(&pd->cache_mutex, NULL);
	pd->listeners = calloc(conf->listen.n, sizeof(*pd->listeners));
	if (pd->listeners == NULL) {
		pop_inst_unref(pd);
		*error_r = "out of memory";
		return -1;
	}
	pd->listener_count = conf->listen.n;
	for (i = 0; i < conf->listen.n; i++) {
		pd->listeners[i].pd = pd;
		pd->listeners[i].tls = lc[i].tls;
		if (sc_listen_open(inst, &lc[i].address, "pop3", pop_accept,
				   &pd->listeners[i], error_r) < 0) {
			pop_inst_unref(pd);
			return -1;
		}
	}
	*data_r = pd;
	return 0;
}

static int
pop_instance_start(struct sc_instance *inst, void *data,
		   const char **error_r)
{
	(void)error_r;
	/* status lines are optional: a failure here is not fatal */
	(void)sc_status_register(inst, pop_status, data);
	return 0;
}

static void
pop_instance_free(struct sc_instance *inst, void *data)
{
	struct pop_inst *pd = data;

	(void)inst;
	pd->inst = NULL;
	pop_inst_unref(pd);
}

SC_MODULE(pop3,
	.version = "1.0",
	.description = "POP3 listener on Maildir mailboxes (RFC 1939, 2449, "
		       "2595, 5034)",
	.keys = pop_keys,
	.config_size = sizeof(struct pop_conf),
	.instance_new = pop_instance_new,
	.instance_start = pop_instance_start,
	.instance_free = pop_instance_free,
);
