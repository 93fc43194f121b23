/* SPDX-License-Identifier: MIT */
/*
 * smtp - the SMTP listener module (RFC 5321 + ESMTP extensions, SASL):
 * its configuration keys and its instances, each with its listeners.
 *
 * The module's files: smtp_session.c (the session and its state machine),
 * smtp_command.c (the command table, HELO/EHLO, STARTTLS and the small
 * commands), smtp_envelope.c (MAIL, RCPT), smtp_message.c (DATA/BDAT to
 * the queue), smtp_auth.c (AUTH); smtp_int.h holds what they share.
 * Everything runs on the event loop thread.
 */
#include <stddef.h>
#include <stdlib.h>

#include <satchel/satchel.h>

#include "smtp_int.h"

static const struct sc_config_key listen_keys[] = {
	{ "address", SC_KEY_ADDRESS, offsetof(struct smtp_listen_conf, address),
	  NULL, SC_KEY_REQUIRED, "host:port or [v6]:port to listen on",
	  NULL, NULL, 0 },
	{ "mode", SC_KEY_ENUM, offsetof(struct smtp_listen_conf, mode), "mx", 0,
	  "mx (incoming mail) or submission (AUTH required for MAIL)",
	  "mx|submission", NULL, 0 },
	{ "tls", SC_KEY_ENUM, offsetof(struct smtp_listen_conf, tls),
	  "starttls", 0, "none, starttls (offered; needed for AUTH) or "
	  "implicit (TLS from the first byte)", "none|starttls|implicit",
	  NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};

static const struct sc_config_key timeout_keys[] = {
	{ "command", SC_KEY_DURATION, offsetof(struct smtp_timeouts, command),
	  "5m", 0, "idle time allowed while waiting for a command",
	  NULL, NULL, 0 },
	{ "data", SC_KEY_DURATION, offsetof(struct smtp_timeouts, data),
	  "10m", 0, "idle time allowed while receiving message data",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};

static const struct sc_config_key smtp_keys[] = {
	{ "listen", SC_KEY_LIST, offsetof(struct smtp_conf, listen), NULL,
	  SC_KEY_REQUIRED, "listeners: {address, mode, tls}", NULL,
	  listen_keys, sizeof(struct smtp_listen_conf) },
	{ "max_message_size", SC_KEY_SIZE,
	  offsetof(struct smtp_conf, max_message_size), "50M", 0,
	  "largest message accepted (SIZE)", NULL, NULL, 0 },
	{ "max_recipients", SC_KEY_UINT,
	  offsetof(struct smtp_conf, max_recipients), "100", 0,
	  "recipients per message", NULL, NULL, 0 },
	{ "timeouts", SC_KEY_OBJECT, offsetof(struct smtp_conf, timeouts),
	  NULL, 0, "{command: 5m, data: 10m}", NULL, timeout_keys, 0 },
	{ "relay_networks", SC_KEY_CIDR_LIST,
	  offsetof(struct smtp_conf, relay_networks), "[]", 0,
	  "client networks allowed to relay without AUTH", NULL, NULL, 0 },
	{ "enforce_sender", SC_KEY_BOOL,
	  offsetof(struct smtp_conf, enforce_sender), "false", 0,
	  "MAIL FROM must be the authenticated address", NULL, NULL, 0 },
	{ "banner", SC_KEY_STR, offsetof(struct smtp_conf, banner), NULL, 0,
	  "text after the hostname in the 220 greeting", NULL, NULL, 0 },
	{ "auth_failure_delay", SC_KEY_DURATION,
	  offsetof(struct smtp_conf, auth_failure_delay), "1s", 0,
	  "delay before a 535; doubles per failure in a session (max 8x)",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};

/* ---- module lifecycle ---- */

static int
smtp_instance_new(struct sc_instance *inst, const void *config,
		  void **data_r, const char **error_r)
{
	const struct smtp_conf *conf = config;
	const struct smtp_listen_conf *lcs = conf->listen.v;
	struct smtp_inst *si;

	if (conf->listen.n == 0) {
		*error_r = "smtp: listen: at least one listener is needed";
		return -1;
	}
	if (conf->timeouts.command == 0 || conf->timeouts.data == 0) {
		*error_r = "smtp: timeouts: command and data must be > 0";
		return -1;
	}
	if (conf->max_message_size == 0) {
		*error_r = "smtp: max_message_size must be > 0";
		return -1;
	}
	si = calloc(1, sizeof(*si));
	if (si == NULL) {
		*error_r = "smtp: out of memory";
		return -1;
	}
	si->inst = inst;
	si->conf = conf;
	si->listeners = calloc(conf->listen.n, sizeof(*si->listeners));
	if (si->listeners == NULL || smtp_rdns_cache_new(si) != 0) {
		free(si->listeners);
		free(si);
		*error_r = "smtp: out of memory";
		return -1;
	}
	si->listener_count = conf->listen.n;
	for (size_t i = 0; i < conf->listen.n; i++) {
		si->listeners[i].si = si;
		si->listeners[i].lc = &lcs[i];
		if (sc_listen_open(inst, &lcs[i].address, "smtp", smtp_accept,
				   &si->listeners[i], error_r) != 0) {
			smtp_rdns_cache_free(si);
			free(si->listeners);
			free(si);
			return -1;
		}
	}
	*data_r = si;
	return 0;
}

static void
smtp_instance_free(struct sc_instance *inst, void *data)
{
	struct smtp_inst *si = data;

	(void)inst;
	if (si == NULL)
		return;
	smtp_rdns_cache_free(si);
	free(si->listeners);
	free(si);
}

SC_MODULE(smtp,
	.version = "1.0",
	.description = "SMTP listener: MX and submission, STARTTLS and "
		       "implicit TLS, SASL PLAIN/LOGIN, relay policy",
	.keys = smtp_keys,
	.config_size = sizeof(struct smtp_conf),
	.instance_new = smtp_instance_new,
	.instance_free = smtp_instance_free,
);
