/* SPDX-License-Identifier: MIT */
/*
 * relay_tls.c - the relay's TLS policy: after EHLO, STARTTLS when offered;
 * whether a session may go on in the clear (tls: opportunistic, or dane
 * without a usable TLSA set) or must fail over (tls: required, DANE); the
 * client handshake, verified against the host's TLSA records for DANE.
 * Event loop thread.
 */
#include "relay_int.h"

#include <stdlib.h>

/* job_tls_optional - whether this session may go on without TLS. */
bool
job_tls_optional(const struct relay_job *job)
{
	return job->r->conf->tls == TLS_OPPORTUNISTIC ||
	       (job->r->conf->tls == TLS_DANE && !job->dane);
}

static void
job_tls_done(struct sc_conn *c, bool ok, const char *error, void *arg)
{
	struct relay_tls_wait *w = arg;
	struct relay_job *job = w->job;

	if (job == NULL) {
		/* the job closed the connection and let go */
		if (w->r != NULL) {
			if (w->prev != NULL)
				w->prev->next = w->next;
			else
				w->r->orphans = w->next;
			if (w->next != NULL)
				w->next->prev = w->prev;
		}
		free(w);
		return;
	}
	free(w);
	job->tls_wait = NULL;
	if (job->finished || job->conn != c) {
		job_unref(job);
		return;
	}
	job_unref(job);
	if (!ok) {
		job_set_error(job, SC_DENYSOFT, 451, "4.7.5",
			      "TLS with %s failed: %s", job->peer,
			      error != NULL ? error : "handshake error");
		if (job_tls_optional(job)) {
			/* opportunistic: the same address in the clear */
			job_close_conn(job);
			job->plaintext_only = true;
			job_next_address(job);
			return;
		}
		job_host_failed(job);
		return;
	}
	job->tls_active = true;
	sc_log_debug("relay: TLS with %s: %s", job->peer,
		     sc_conn_tls_desc(c) ? sc_conn_tls_desc(c) : "");
	sc_conn_read_start(c);
	job_send_ehlo(job);
}

void
job_start_tls(struct relay_job *job)
{
	struct relay_host *h = &job->hosts[job->hi];
	struct sc_tls_client_opts opts = {
		.server_name = is_ip_literal(h->name) ? NULL : h->name,
		.verify = SC_TLS_VERIFY_NONE,
	};
	const unsigned char *data[RELAY_MAX_TLSA];

	if (job->dane) {
		for (size_t t = 0; t < h->ntlsa; t++)
			data[t] = h->tlsa[t];
		opts.verify = SC_TLS_VERIFY_DANE;
		opts.tlsa_count = h->ntlsa;
		opts.tlsa_data = data;
		opts.tlsa_len = h->tlsa_len;
	}
	job->st = JS_TLS;
	sc_conn_read_stop(job->conn);
	/* the handshake gets the time of a reply */
	job_deadline(job, job->r->conf->timeouts.ehlo);
	struct relay_tls_wait *w = calloc(1, sizeof(*w));
	if (w == NULL) {
		job_set_error(job, SC_DENYSOFT, 451, "4.3.0",
			      "out of memory");
		job_host_failed(job);
		return;
	}
	w->job = job;
	job_ref(job);
	job->tls_wait = w;
	if (sc_conn_starttls_client(job->conn, &opts, job_tls_done, w) < 0) {
		job->tls_wait = NULL;
		free(w);
		job_unref(job);
		job_set_error(job, SC_DENYSOFT, 451, "4.7.5",
			      "cannot start TLS with %s", job->peer);
		job_host_failed(job);
	}
}

/* job_after_ehlo - decide on STARTTLS, then go on. */
void
job_after_ehlo(struct relay_job *job)
{
	struct relay *r = job->r;
	bool must_tls = r->conf->tls == TLS_REQUIRED || job->dane;

	if (sc_log_enabled(SC_LOG_DEBUG))
		sc_log_debug("relay: %s offers%s%s%s%s%s%s%s%s (TLS %s)",
			     job->peer,
			     job->ext_pipelining ? " PIPELINING" : "",
			     job->ext_starttls ? " STARTTLS" : "",
			     job->ext_8bitmime ? " 8BITMIME" : "",
			     job->ext_smtputf8 ? " SMTPUTF8" : "",
			     job->ext_dsn ? " DSN" : "",
			     job->ext_size ? " SIZE" : "",
			     job->ext_auth_plain ? " AUTH=PLAIN" : "",
			     job->ext_auth_login ? " AUTH=LOGIN" : "",
			     job->tls_active ? "on" : "off");

	if (!job->tls_active) {
		if (job->ext_starttls && !job->plaintext_only) {
			job->st = JS_STARTTLS;
			job_send(job, r->conf->timeouts.ehlo, "STARTTLS");
			return;
		}
		if (must_tls) {
			job_set_error(job, SC_DENYSOFT, 450, "4.7.5",
				      "TLS is required (tls: %s) but host %s "
				      "does not offer STARTTLS",
				      job->dane ? "dane" : "required",
				      job->peer);
			job_host_failed(job);
			return;
		}
	}
	job_ready(job);
}
