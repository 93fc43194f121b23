/* SPDX-License-Identifier: MIT */
/*
 * milter - passes each SMTP session and message to one milter (the
 * Sendmail milter protocol, version 6) and applies its verdicts and edits;
 * see satchel-milter(5). This file: the configuration keys, the instance,
 * the hooks it registers and the per-session state's creation.
 *
 * The module's files: milter_proto.c (the wire format, the reply
 * parser), milter_conn.c (the socket, negotiation, timeouts),
 * milter_stage.c (connect .. data, macros, verdicts, abort and quit),
 * milter_message.c (headers, body, end of message, the actions).
 * Everything runs on the event loop thread (body reads on a worker).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <satchel/satchel.h>

#include "milter_int.h"

static const struct sc_config_key timeout_keys[] = {
	{ "connect", SC_KEY_DURATION,
	  offsetof(struct milter_timeouts, connect), "5s", 0,
	  "time to connect to the milter", NULL, NULL, 0 },
	{ "command", SC_KEY_DURATION,
	  offsetof(struct milter_timeouts, command), "30s", 0,
	  "time for the milter to answer one command", NULL, NULL, 0 },
	{ "eom", SC_KEY_DURATION, offsetof(struct milter_timeouts, eom),
	  "5m", 0, "time for the milter to answer the end of a message "
	  "(progress packets restart it)", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};

static const struct sc_config_key milter_keys[] = {
	{ "address", SC_KEY_STR, offsetof(struct milter_conf, address), NULL,
	  SC_KEY_REQUIRED, "unix:/path or inet:host:port of the milter",
	  NULL, NULL, 0 },
	{ "modes", SC_KEY_STR_LIST, offsetof(struct milter_conf, modes),
	  "[mx, submission]", 0, "the smtp listener modes whose sessions "
	  "the milter sees", NULL, NULL, 0 },
	{ "on_failure", SC_KEY_ENUM, offsetof(struct milter_conf, on_failure),
	  "tempfail", 0, "when the milter is down, times out or breaks the "
	  "protocol: tempfail (451 4.7.1), accept, or reject (550 5.7.1)",
	  "tempfail|accept|reject", NULL, 0 },
	{ "timeouts", SC_KEY_OBJECT, offsetof(struct milter_conf, timeouts),
	  NULL, 0, "{connect: 5s, command: 30s, eom: 5m}", NULL,
	  timeout_keys, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};

struct milter_sess *
milter_sess_get(struct milter_inst *mi, struct sc_session *s)
{
	struct milter_sess *ms = sc_session_get_data(s, mi->inst);
	const char *mode;

	if (ms != NULL)
		return ms;
	ms = calloc(1, sizeof(*ms));
	if (ms == NULL)
		return NULL;
	ms->mi = mi;
	ms->s = s;
	ms->fd = -1;
	mode = sc_session_mode(s);
	/* milters filter mail: only SMTP sessions (the connect and auth
	 * hooks run for POP3 too); one whose listener names no mode counts
	 * as mx */
	if (strcmp(sc_session_protocol(s), "smtp") != 0)
		ms->skip = true;
	else if (mode != NULL && strcmp(mode, "submission") == 0)
		ms->skip = !mi->mode_submission;
	else
		ms->skip = !mi->mode_mx;
	if (sc_session_set_data(s, mi->inst, ms, milter_sess_free) != 0) {
		free(ms);
		return NULL;
	}
	return ms;
}

static size_t
milter_status(char *buf, size_t len, void *data)
{
	struct milter_inst *mi = data;
	int n;

	n = snprintf(buf, len, "milter %s: %s sessions=%llu failures=%llu "
		     "rejects=%llu edits=%llu", sc_instance_name(mi->inst),
		     mi->conf->address, (unsigned long long)mi->n_sessions,
		     (unsigned long long)mi->n_failures,
		     (unsigned long long)mi->n_rejects,
		     (unsigned long long)mi->n_edits);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

static int
milter_instance_new(struct sc_instance *inst, const void *config,
		    void **data_r, const char **error_r)
{
	const struct milter_conf *conf = config;
	struct milter_inst *mi;

	if (conf->timeouts.connect == 0 || conf->timeouts.command == 0 ||
	    conf->timeouts.eom == 0) {
		*error_r = "milter: timeouts must be > 0";
		return -1;
	}
	mi = calloc(1, sizeof(*mi));
	if (mi == NULL) {
		*error_r = "milter: out of memory";
		return -1;
	}
	for (size_t i = 0; i < conf->modes.n; i++) {
		if (strcmp(conf->modes.v[i], "mx") == 0)
			mi->mode_mx = true;
		else if (strcmp(conf->modes.v[i], "submission") == 0)
			mi->mode_submission = true;
		else {
			free(mi);
			*error_r = "milter: modes: each must be mx or "
				   "submission";
			return -1;
		}
	}
	if (mconn_parse_address(conf->address, &mi->addr, &mi->addr_len,
				error_r) != 0) {
		free(mi);
		return -1;
	}
	mi->inst = inst;
	mi->conf = conf;
	*data_r = mi;
	return 0;
}

static int
milter_instance_start(struct sc_instance *inst, void *data,
		      const char **error_r)
{
	static const struct {
		enum sc_hook hook;
		sc_hook_fn fn;
	} hooks[] = {
		{ SC_HOOK_CONNECT, milter_hook_connect },
		{ SC_HOOK_HELO, milter_hook_helo },
		{ SC_HOOK_AUTH, milter_hook_auth },
		{ SC_HOOK_MAIL, milter_hook_mail },
		{ SC_HOOK_RCPT, milter_hook_rcpt },
		{ SC_HOOK_DATA, milter_hook_data },
		{ SC_HOOK_DATA_POST, milter_hook_data_post },
	};

	/* POLICY: a milter refuses or passes but never accepts, and it
	 * must see every command, also those a backend (the router)
	 * accepts, which ends the NORMAL phase of the chain */
	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++)
		if (sc_hook_register_phase(inst, hooks[i].hook,
					   SC_PHASE_POLICY, hooks[i].fn,
					   data) != 0) {
			*error_r = "milter: cannot register hooks";
			return -1;
		}
	if (sc_status_register(inst, milter_status, data) != 0) {
		*error_r = "milter: cannot register status";
		return -1;
	}
	return 0;
}

static void
milter_instance_free(struct sc_instance *inst, void *data)
{
	(void)inst;
	free(data);
}

SC_MODULE(milter,
	.version = "1.0",
	.description = "passes sessions and messages to a milter (Sendmail "
		       "milter protocol 6: OpenDKIM, rspamd, ...)",
	.keys = milter_keys,
	.config_size = sizeof(struct milter_conf),
	.instance_new = milter_instance_new,
	.instance_start = milter_instance_start,
	.instance_free = milter_instance_free,
);
