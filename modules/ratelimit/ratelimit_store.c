/* SPDX-License-Identifier: MIT */
/*
 * modules/ratelimit/ratelimit_store.c - ratelimit's per-IP, per-sender and
 * AUTH limits shared by every satcheld that uses one store (`store:`,
 * satchel/store.h): a hook asks the store and answers when it replies,
 * within `store_timeout`; when the store fails, `store_failure` decides
 * (local: this host's in-process verdict; tempfail: 4xx).
 *
 * In the store: concurrent connections per IP are leases (they heal when
 * a host dies), renewed while the session lasts; rates are fixed-window
 * counters (INCR with an expiry: at most N per window); an AUTH lockout is
 * a key that expires after the period. Loop thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit_int.h"

/* A lease lasts this long unless renewed (a third of it) - how long a
 * crashed host's connections still count elsewhere. */
#define RL_LEASE_MS		60000
#define RL_RENEW_MS		(RL_LEASE_MS / 3)
#define RL_FAIL_LOG_MS		60000

/* One hook call waiting for the store. */
struct rl_wait {
	struct sc_hook_call *call;
	struct rl_inst *ri;
	unsigned char key[16];
	unsigned char family;
	enum rl_kind local_hit;		/* connect: the in-process verdict */
	bool local_over;		/* mail, auth: likewise            */
	bool leased;
	char holder[48];
	char lease_key[SC_STORE_KEY_MAX + 1];
	char skey[600];			/* mail: the sender key            */
	char who[600];			/* mail: for the reply             */
};

/* rl_skey - prefix + kind + ":" + what, in buf; false when too long */
static bool
rl_skey(const struct rl_inst *ri, char *buf, size_t len, const char *kind,
	const char *what)
{
	int n = snprintf(buf, len, "%s%s:%s", ri->prefix, kind, what);

	return n > 0 && (size_t)n < len && (size_t)n <= SC_STORE_KEY_MAX;
}

/* rl_store_failed - what a failed store operation means for this check:
 * true = fall back to the in-process verdict. Logged once a minute. */
static bool
rl_store_failed(struct rl_inst *ri, const struct sc_store_result *res,
		const char *what)
{
	struct rl_state *st = ri->st;
	uint64_t now = sc_now_ms();
	bool local = ri->conf->store_failure == RL_FAIL_LOCAL;

	st->store_failures++;
	if (st->store_logged_ms == 0 || now - st->store_logged_ms >=
	    RL_FAIL_LOG_MS) {
		st->store_logged_ms = now;
		sc_log_warning("%s: store %s failed for %s: %s; %s (logged "
			       "once a minute)", sc_instance_name(ri->inst),
			       sc_store_url(ri->store), what,
			       res->error != NULL ? res->error : "?",
			       local ? "deciding from this host's counts "
			       "(store_failure: local)" :
			       "answering 4xx (store_failure: tempfail)");
	}
	return local;
}

static void
rl_wait_done(struct rl_wait *w, enum sc_result r)
{
	sc_hook_done(w->call, r);
	free(w);
}

static void
rl_lease_drop(struct rl_inst *ri, const char *key, const char *holder)
{
	(void)sc_store_lease_drop(ri->store, key, holder, NULL, NULL, NULL);
}

/* ---- connect: the lease (max_connections_per_ip), then the rate ---- */

static void
rl_conn_finish(struct rl_wait *w, enum rl_kind hit)
{
	struct sc_session *s = sc_hook_session(w->call);

	if (s == NULL) {	/* the client went meanwhile */
		if (w->leased)
			rl_lease_drop(w->ri, w->lease_key, w->holder);
		rl_wait_done(w, SC_CONT);
		return;
	}
	if (hit != RL_HIT_COUNT) {
		if (w->leased)
			rl_lease_drop(w->ri, w->lease_key, w->holder);
		rl_refuse_ip(w->call, w->ri, s, hit, w->key, w->family);
		rl_wait_done(w, SC_DENYSOFTDISCONNECT);
		return;
	}
	rl_count_session(w->ri, s, w->key, w->family, true,
			 w->leased ? w->holder : NULL, w->lease_key);
	rl_wait_done(w, SC_CONT);
}

/* rl_conn_fail - the store failed during the connect check */
static void
rl_conn_fail(struct rl_wait *w, const struct sc_store_result *res)
{
	struct sc_session *s = sc_hook_session(w->call);

	if (s == NULL || rl_store_failed(w->ri, res, "a connection check")) {
		rl_conn_finish(w, w->local_hit);
		return;
	}
	if (w->leased)
		rl_lease_drop(w->ri, w->lease_key, w->holder);
	sc_reply_set(w->call, 421, "4.3.0", "Cannot check the connection "
		     "limits now; please try again later");
	rl_wait_done(w, SC_DENYSOFTDISCONNECT);
}

static void
rl_rate_answer(const struct sc_store_result *res, void *arg)
{
	struct rl_wait *w = arg;
	const struct sc_rate *rate = &w->ri->conf->connections_per_ip;

	if (res->status != SC_STORE_OK) {
		rl_conn_fail(w, res);
		return;
	}
	rl_conn_finish(w, (uint64_t)res->value > rate->count ?
		       RL_HIT_IP_RATE : RL_HIT_COUNT);
}

/* rl_conn_rate - the second step: connections_per_ip */
static void
rl_conn_rate(struct rl_wait *w)
{
	const struct sc_rate *rate = &w->ri->conf->connections_per_ip;
	char ip[64], key[SC_STORE_KEY_MAX + 1];
	struct sc_store_result res = { .status = SC_STORE_FAIL };

	if (rate->count == 0 || rate->period_ms == 0) {
		rl_conn_finish(w, RL_HIT_COUNT);
		return;
	}
	rl_key_text(w->key, w->family, (unsigned)w->ri->conf->ipv6_prefix, ip,
		    sizeof(ip));
	res.error = "cannot start the operation";
	if (!rl_skey(w->ri, key, sizeof(key), "rate", ip) ||
	    sc_store_incr(w->ri->store, key, rate->period_ms, rl_rate_answer,
			  w, NULL) < 0)
		rl_conn_fail(w, &res);
}

static void
rl_take_answer(const struct sc_store_result *res, void *arg)
{
	struct rl_wait *w = arg;

	if (res->status == SC_STORE_LIMIT) {
		rl_conn_finish(w, RL_HIT_IP_CONN);
		return;
	}
	if (res->status != SC_STORE_OK) {
		/* a take that timed out may still run in the store (it was
		 * sent): dropped after it, or the address would count
		 * there for RL_LEASE_MS with no session holding it */
		rl_lease_drop(w->ri, w->lease_key, w->holder);
		rl_conn_fail(w, res);
		return;
	}
	w->leased = true;
	rl_conn_rate(w);
}

enum sc_result
rl_store_connect(struct sc_hook_call *call, struct rl_inst *ri,
		 struct sc_session *s, const unsigned char key[16],
		 unsigned char family, enum rl_kind local_hit)
{
	struct rl_state *st = ri->st;
	struct rl_wait *w = calloc(1, sizeof(*w));
	char ip[64];

	(void)s;
	if (w == NULL)
		return SC_CONT;	/* fail open, as without a store */
	w->call = call;
	w->ri = ri;
	memcpy(w->key, key, 16);
	w->family = family;
	w->local_hit = local_hit;
	rl_key_text(key, family, (unsigned)ri->conf->ipv6_prefix, ip,
		    sizeof(ip));
	if (ri->conf->max_connections_per_ip == 0) {
		rl_conn_rate(w);
		return SC_PENDING;
	}
	snprintf(w->holder, sizeof(w->holder), "%s:%" PRIu64, st->host_id,
		 ++st->lease_seq);
	if (!rl_skey(ri, w->lease_key, sizeof(w->lease_key), "conn", ip) ||
	    sc_store_lease_take(ri->store, w->lease_key, w->holder,
				ri->conf->max_connections_per_ip, RL_LEASE_MS,
				rl_take_answer, w, NULL) < 0) {
		struct sc_store_result res = {
			.status = SC_STORE_FAIL,
			.error = "cannot start the operation" };

		rl_conn_fail(w, &res);
	}
	return SC_PENDING;
}

/* rl_store_session_end - the lease goes back; the next renewal skips it */
void
rl_store_session_end(struct rl_session *rs)
{
	struct rl_state *st = rs->st;

	if (rs->holder[0] == '\0')
		return;
	if (rs->prev != NULL)
		rs->prev->next = rs->next;
	else
		st->leased = rs->next;
	if (rs->next != NULL)
		rs->next->prev = rs->prev;
	if (rs->ri->store != NULL)
		rl_lease_drop(rs->ri, rs->lease_key, rs->holder);
}

/* rl_renew - keeps the leases of this instance's sessions alive */
static void
rl_renew(struct sc_timer *t, void *arg)
{
	struct rl_inst *ri = arg;

	(void)t;
	for (struct rl_session *rs = ri->st->leased; rs != NULL;
	     rs = rs->next)
		if (rs->ri == ri)
			(void)sc_store_lease_renew(ri->store, rs->lease_key,
						   rs->holder, RL_LEASE_MS,
						   NULL, NULL, NULL);
}

/* ---- MAIL: messages_per_sender ---- */

static void
rl_mail_answer(const struct sc_store_result *res, void *arg)
{
	struct rl_wait *w = arg;
	struct sc_session *s = sc_hook_session(w->call);
	bool over;

	if (s == NULL) {
		rl_wait_done(w, SC_CONT);
		return;
	}
	if (res->status == SC_STORE_OK) {
		over = (uint64_t)res->value >
			w->ri->conf->messages_per_sender.count;
	} else if (rl_store_failed(w->ri, res, "a sender check")) {
		over = w->local_over;
	} else {
		sc_reply_set(w->call, 451, "4.3.0", "Cannot check the sending "
			     "rate now; please try again later");
		rl_wait_done(w, SC_DENYSOFT);
		return;
	}
	if (!over) {
		rl_wait_done(w, SC_CONT);
		return;
	}
	rl_refuse_sender(w->call, w->ri, s, w->skey, w->who);
	rl_wait_done(w, SC_DENYSOFT);
}

enum sc_result
rl_store_mail(struct sc_hook_call *call, struct rl_inst *ri,
	      struct sc_session *s, const char *key, const char *who,
	      bool local_over)
{
	struct rl_wait *w = calloc(1, sizeof(*w));
	char skey[SC_STORE_KEY_MAX + 1];

	if (w == NULL)
		return SC_CONT;
	w->call = call;
	w->ri = ri;
	w->local_over = local_over;
	snprintf(w->skey, sizeof(w->skey), "%s", key);
	snprintf(w->who, sizeof(w->who), "%s", who);
	if (!rl_skey(ri, skey, sizeof(skey), "msg", key) ||
	    sc_store_incr(ri->store, skey,
			  ri->conf->messages_per_sender.period_ms,
			  rl_mail_answer, w, NULL) < 0) {
		/* a key too long for the store (a huge address): this
		 * host's count decides */
		free(w);
		if (!local_over)
			return SC_CONT;
		return rl_refuse_sender(call, ri, s, key, who);
	}
	return SC_PENDING;
}

/* ---- AUTH: the lockout ---- */

static void
rl_auth_answer(const struct sc_store_result *res, void *arg)
{
	struct rl_wait *w = arg;
	struct sc_session *s = sc_hook_session(w->call);
	bool locked;

	if (s == NULL) {
		rl_wait_done(w, SC_CONT);
		return;
	}
	if (res->status == SC_STORE_OK || res->status == SC_STORE_MISSING) {
		locked = res->status == SC_STORE_OK;
	} else if (rl_store_failed(w->ri, res, "an AUTH lockout check")) {
		locked = w->local_over;
	} else {
		sc_reply_set(w->call, 454, "4.3.0", "Cannot check the "
			     "authentication limits now; please try again "
			     "later");
		rl_wait_done(w, SC_DENYSOFT);
		return;
	}
	if (!locked) {
		rl_wait_done(w, SC_CONT);
		return;
	}
	rl_refuse_auth(w->call, w->ri, s);
	rl_wait_done(w, SC_DENYSOFT);
}

/* rl_ip_skey - the store key of kind for the session's client network */
static bool
rl_ip_skey(struct rl_inst *ri, const struct sc_session *s, const char *kind,
	   char *buf, size_t len)
{
	unsigned char key[16], family;
	char ip[64];

	if (!rl_ip_key(sc_session_client_addr(s),
		       (unsigned)ri->conf->ipv6_prefix, key, &family))
		return false;
	rl_key_text(key, family, (unsigned)ri->conf->ipv6_prefix, ip,
		    sizeof(ip));
	return rl_skey(ri, buf, len, kind, ip);
}

enum sc_result
rl_store_auth(struct sc_hook_call *call, struct rl_inst *ri,
	      struct sc_session *s, bool local_locked)
{
	struct rl_wait *w = calloc(1, sizeof(*w));
	char key[SC_STORE_KEY_MAX + 1];

	if (w == NULL || !rl_ip_skey(ri, s, "lock", key, sizeof(key))) {
		free(w);
		return local_locked ? rl_refuse_auth(call, ri, s) : SC_CONT;
	}
	w->call = call;
	w->ri = ri;
	w->local_over = local_locked;
	if (sc_store_get(ri->store, key, rl_auth_answer, w, NULL) < 0) {
		struct sc_store_result res = {
			.status = SC_STORE_FAIL,
			.error = "cannot start the operation" };

		rl_auth_answer(&res, w);
	}
	return SC_PENDING;
}

/* The failure count of an address: the Nth in its window locks it out
 * for the period everywhere. */
struct rl_fail {
	struct rl_inst *ri;
	char lock_key[SC_STORE_KEY_MAX + 1];
	char ip[64];
};

static void
rl_fail_answer(const struct sc_store_result *res, void *arg)
{
	struct rl_fail *f = arg;
	const struct sc_rate *rate = &f->ri->conf->auth_failures_per_ip;

	if (res->status != SC_STORE_OK) {
		(void)rl_store_failed(f->ri, res, "counting an AUTH failure");
	} else if ((uint64_t)res->value >= rate->count) {
		if ((uint64_t)res->value == rate->count)
			sc_log_notice("%s: auth_failures_per_ip: %s locked "
				      "out of AUTH for %llus on every host "
				      "of store %s",
				      sc_instance_name(f->ri->inst), f->ip,
				      (unsigned long long)(rate->period_ms /
							   1000),
				      sc_store_url(f->ri->store));
		(void)sc_store_set(f->ri->store, f->lock_key, "1", 1,
				   rate->period_ms, NULL, NULL, NULL);
	}
	free(f);
}

void
rl_store_auth_failed(struct rl_inst *ri, const struct sc_session *s)
{
	const struct sc_rate *rate = &ri->conf->auth_failures_per_ip;
	struct rl_fail *f;
	char key[SC_STORE_KEY_MAX + 1];
	const char *ip = sc_session_client_ip(s);

	if (rate->period_ms == 0)
		return;
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return;
	f->ri = ri;
	snprintf(f->ip, sizeof(f->ip), "%s", ip != NULL ? ip : "?");
	if (!rl_ip_skey(ri, s, "authfail", key, sizeof(key)) ||
	    !rl_ip_skey(ri, s, "lock", f->lock_key, sizeof(f->lock_key)) ||
	    sc_store_incr(ri->store, key, rate->period_ms, rl_fail_answer, f,
			  NULL) < 0)
		free(f);
}

/* ---- the lifecycle ---- */

int
rl_store_start(struct rl_inst *ri, const char **error_r)
{
	const struct rl_conf *conf = ri->conf;

	if (conf->store == NULL || conf->store[0] == '\0')
		return 0;
	if (conf->store_prefix != NULL)
		snprintf(ri->prefix, sizeof(ri->prefix), "%s",
			 conf->store_prefix);
	else
		snprintf(ri->prefix, sizeof(ri->prefix), "satchel:%s:",
			 sc_instance_name(ri->inst));
	ri->store = sc_store_open(ri->inst, conf->store,
				  conf->store_password_file,
				  conf->store_timeout, error_r);
	if (ri->store == NULL)
		return -1;
	ri->renew_timer = sc_timer_new(rl_renew, ri);
	if (ri->renew_timer == NULL) {
		*error_r = "ratelimit: out of memory";
		return -1;
	}
	sc_timer_start(ri->renew_timer, RL_RENEW_MS, RL_RENEW_MS);
	return 0;
}

void
rl_store_stop(struct rl_inst *ri)
{
	sc_timer_free(&ri->renew_timer);
	sc_store_close(&ri->store);
}

size_t
rl_store_status(struct rl_inst *ri, char *buf, size_t len)
{
	int n;

	if (ri->store == NULL || len == 0)
		return 0;
	n = snprintf(buf, len, "store: %s %s\nstore_failures: %" PRIu64 "\n",
		     sc_store_url(ri->store), sc_store_up(ri->store) ? "up" :
		     "down", ri->st->store_failures);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}
