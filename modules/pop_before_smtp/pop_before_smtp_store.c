/* SPDX-License-Identifier: MIT */
/*
 * modules/pop_before_smtp/pop_before_smtp_store.c - POP-before-SMTP across
 * several hosts (`store:`, satchel/store.h): each login is also a store key
 * that expires with the window, and a relay check this host's table cannot
 * answer asks the store, within `store_timeout`; `store_failure` decides
 * when the store fails (local: this host's logins only; tempfail: 451).
 * Loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "pop_before_smtp_int.h"

#define PBS_FAIL_LOG_MS		60000

int
pbs_store_start(struct pbs_inst *pd, const char **error_r)
{
	const struct pbs_conf *conf = pd->conf;

	if (conf->store == NULL || conf->store[0] == '\0')
		return 0;
	if (conf->store_prefix != NULL)
		snprintf(pd->prefix, sizeof(pd->prefix), "%s",
			 conf->store_prefix);
	else
		snprintf(pd->prefix, sizeof(pd->prefix), "satchel:%s:",
			 sc_instance_name(pd->inst));
	pd->store = sc_store_open(pd->inst, conf->store,
				  conf->store_password_file,
				  conf->store_timeout, error_r);
	return pd->store != NULL ? 0 : -1;
}

void
pbs_store_login(struct pbs_inst *pd, const struct pbs_ip *ip)
{
	char key[SC_STORE_KEY_MAX + 1], text[INET6_ADDRSTRLEN];

	/* the canonical form, so every host finds the same key */
	pbs_ip_format(ip, text, sizeof(text));
	snprintf(key, sizeof(key), "%sip:%s", pd->prefix, text);
	if (sc_store_set(pd->store, key, "1", 1, pd->window, NULL, NULL,
			 NULL) < 0)
		sc_log_warning("pop_before_smtp: cannot record %s in store %s",
			       text, sc_store_url(pd->store));
}

/* One relay check waiting for the store. */
struct pbs_wait {
	struct pbs_inst *pd;
	struct sc_hook_call *call;
	char ip[INET6_ADDRSTRLEN];
	char rcpt[512];
};

/* pbs_store_answer - the store knows of a login from the IP, or not */
static void
pbs_store_answer(const struct sc_store_result *res, void *arg)
{
	struct pbs_wait *w = arg;
	struct pbs_inst *pd = w->pd;
	struct sc_session *s = sc_hook_session(w->call);
	enum sc_result r = SC_CONT;
	uint64_t now = sc_now_ms();

	if (s == NULL) {
		/* the client went */
	} else if (res->status == SC_STORE_OK) {
		pbs_allowed(pd, w->call, w->ip, w->rcpt, 0);
		r = SC_OK;
	} else if (res->status != SC_STORE_MISSING) {
		bool local = pd->conf->store_failure == 0;

		pd->store_failures++;
		if (pd->store_logged_ms == 0 ||
		    now - pd->store_logged_ms >= PBS_FAIL_LOG_MS) {
			pd->store_logged_ms = now;
			sc_log_warning("pop_before_smtp: store %s failed: %s; "
				       "%s (logged once a minute)",
				       sc_store_url(pd->store),
				       res->error != NULL ? res->error : "?",
				       local ? "this host's logins only "
				       "(store_failure: local)" :
				       "answering 451 (store_failure: "
				       "tempfail)");
		}
		if (!local) {
			sc_reply_set(w->call, 451, "4.3.0", "Cannot check "
				     "POP-before-SMTP now; please try again "
				     "later");
			r = SC_DENYSOFT;
		}
	}
	sc_hook_done(w->call, r);
	free(w);
}

/* pbs_store_relay - asks the store about a login elsewhere */
enum sc_result
pbs_store_relay(struct pbs_inst *pd, struct sc_hook_call *call,
		const struct pbs_ip *ip, const char *rcpt)
{
	struct pbs_wait *w = calloc(1, sizeof(*w));
	char key[SC_STORE_KEY_MAX + 1];

	if (w == NULL)
		return SC_CONT;
	w->pd = pd;
	w->call = call;
	pbs_ip_format(ip, w->ip, sizeof(w->ip));
	snprintf(w->rcpt, sizeof(w->rcpt), "%s", rcpt);
	snprintf(key, sizeof(key), "%sip:%s", pd->prefix, w->ip);
	if (sc_store_get(pd->store, key, pbs_store_answer, w, NULL) < 0) {
		struct sc_store_result res = {
			.status = SC_STORE_FAIL,
			.error = "cannot start the operation" };

		pbs_store_answer(&res, w);
	}
	return SC_PENDING;
}
