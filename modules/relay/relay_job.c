/* SPDX-License-Identifier: MIT */
/*
 * relay_job.c - the relay's jobs: relay_deliver splits a delivery into one
 * job per recipient domain; each recipient gets its final result here
 * (delivered, bounced with SC_DENY, or deferred with SC_DENYSOFT: the
 * queue retries those and writes the DSNs); the per-destination connection
 * limits; and how a job ends (a failed host, the total deadline, the last
 * job of a delivery). Event loop thread.
 */
#include "relay_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void
job_ref(struct relay_job *job)
{
	job->refs++;
}

void
job_unref(struct relay_job *job)
{
	if (--job->refs > 0)
		return;
	sc_timer_free(&job->reply_timer);
	sc_timer_free(&job->job_timer);
	for (size_t i = 0; i < job->nhosts; i++)
		for (size_t t = 0; t < job->hosts[i].ntlsa; t++)
			free(job->hosts[i].tlsa[t]);
	free(job->hosts);
	free(job->idx);
	free(job->rs);
	free(job->cmds);
	free(job->chunk);
	if (job->fd >= 0)
		close(job->fd);
	free(job);
}

/* ---- results ---- */

/* job_result - the final result for job recipient k. */
void
job_result(struct relay_job *job, size_t k, enum sc_result res, int code,
	   const char *esc, const char *text)
{
	if (job->rs[k] == RS_DONE)
		return;
	job->rs[k] = RS_DONE;
	if (job->r != NULL) {
		if (res == SC_OK)
			job->r->delivered++;
		else if (res == SC_DENY)
			job->r->failed++;
		else
			job->r->deferred++;
	}
	sc_log(res == SC_OK ? SC_LOG_INFO : SC_LOG_NOTICE,
	       "relay: %s: to=<%s> %s: %s", sc_delivery_queue_id(job->batch->d),
	       sc_delivery_rcpt(job->batch->d, job->idx[k]),
	       res == SC_OK ? "delivered" : res == SC_DENY ? "failed"
							  : "deferred",
	       text);
	/* a peer without DSN cannot report delivery: the core tells a
	 * sender who asked NOTIFY=SUCCESS that the message was relayed */
	if (res == SC_OK && !job->ext_dsn)
		sc_delivery_rcpt_relayed(job->batch->d, job->idx[k]);
	sc_delivery_rcpt_result(job->batch->d, job->idx[k], res, code, esc,
				"%s", text);
}

/* job_fail_all - the same result for every recipient still open. */
void
job_fail_all(struct relay_job *job, enum sc_result res, int code,
	     const char *esc, const char *fmt, ...)
{
	char text[800];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	for (size_t k = 0; k < job->nrcpt; k++)
		job_result(job, k, res, code, esc, text);
}

/* job_set_error - remembers why this host did not take the mail. */
void
job_set_error(struct relay_job *job, enum sc_result res, int code,
	      const char *esc, const char *fmt, ...)
{
	va_list ap;

	job->last_r = res;
	job->last_code = code;
	sfmt(job->last_esc, sizeof(job->last_esc), "%s",
		 esc != NULL ? esc : "");
	va_start(ap, fmt);
	vsnprintf(job->last_err, sizeof(job->last_err), fmt, ap);
	va_end(ap);
	sc_log_info("relay: %s: %s", sc_delivery_queue_id(job->batch->d),
		    job->last_err);
}

/* ---- destinations: per-destination connection limits ---- */

static void
dest_release(struct relay *r, struct relay_job *job)
{
	struct relay_dest *dst = job->slot, **pp;

	struct relay_job *woken = NULL, **tail = &woken;

	if (dst == NULL)
		return;
	job->slot = NULL;
	dst->active--;
	r->connections--;
	/* hand the slot to the next waiting jobs (not while stopping) */
	while (!r->stopping && dst->wait_head != NULL &&
	       dst->active < r->conf->max_connections_per_destination) {
		struct relay_job *w = dst->wait_head;
		dst->wait_head = w->wait_next;
		if (dst->wait_head == NULL)
			dst->wait_tail = NULL;
		w->wait_next = NULL;
		w->slot = dst;
		dst->active++;
		r->connections++;
		job_ref(w);
		*tail = w;
		tail = &w->wait_next;
	}
	if (dst->active == 0 && dst->wait_head == NULL) {
		for (pp = &r->dests; *pp != NULL; pp = &(*pp)->next)
			if (*pp == dst) {
				*pp = dst->next;
				break;
			}
		free(dst);
	}
	/* only now: a woken job may finish at once and release dst again */
	while (woken != NULL) {
		struct relay_job *w = woken;
		woken = w->wait_next;
		w->wait_next = NULL;
		if (!w->finished) {
			w->st = JS_CONNECTING;
			job_next_address(w);
		}
		job_unref(w);
	}
}

/* dest_acquire - true when job may connect now; otherwise it waits. */
bool
dest_acquire(struct relay *r, struct relay_job *job)
{
	struct relay_dest *dst;
	uint64_t max = r->conf->max_connections_per_destination;

	for (dst = r->dests; dst != NULL; dst = dst->next)
		if (strcasecmp(dst->key, job->dest_key) == 0)
			break;
	if (dst == NULL) {
		dst = calloc(1, sizeof(*dst));
		if (dst == NULL)
			return true;	/* no limit rather than no mail */
		sfmt(dst->key, sizeof(dst->key), "%s", job->dest_key);
		dst->next = r->dests;
		r->dests = dst;
	}
	if (max == 0 || dst->active < max) {
		dst->active++;
		r->connections++;
		job->slot = dst;
		return true;
	}
	if (dst->wait_tail != NULL)
		dst->wait_tail->wait_next = job;
	else
		dst->wait_head = job;
	dst->wait_tail = job;
	sc_log_debug("relay: %s: waiting for a connection slot to %s",
		     sc_delivery_queue_id(job->batch->d), job->dest_key);
	return false;
}

static void
dest_unwait(struct relay *r, struct relay_job *job)
{
	for (struct relay_dest *dst = r->dests; dst != NULL;
	     dst = dst->next) {
		struct relay_job **pp = &dst->wait_head, *prev = NULL;
		for (; *pp != NULL; prev = *pp, pp = &(*pp)->wait_next)
			if (*pp == job) {
				*pp = job->wait_next;
				if (dst->wait_tail == job)
					dst->wait_tail = prev;
				job->wait_next = NULL;
				return;
			}
	}
}

/* ---- ending a job ---- */

void
job_close_conn(struct relay_job *job)
{
	if (job->conn != NULL) {
		struct sc_conn *c = job->conn;
		job->conn = NULL;
		sc_conn_close(c);
	}
	if (job->tls_wait != NULL) {
		struct relay_tls_wait *w = job->tls_wait;
		w->job = NULL;
		w->r = job->r;
		if (w->r != NULL) {
			w->next = w->r->orphans;
			if (w->next != NULL)
				w->next->prev = w;
			w->r->orphans = w;
		}
		job->tls_wait = NULL;
		/* the caller holds a reference besides the handshake's */
		job_unref(job);
	}
	sc_timer_stop(job->reply_timer);
	job->tls_active = false;
	job->authenticated = false;
}

/* job_deadline - the reply (or body block) we wait for must be complete
 * within ms from now; 0 means no limit. */
void
job_deadline(struct relay_job *job, uint64_t ms)
{
	if (ms == 0)
		sc_timer_stop(job->reply_timer);
	else
		sc_timer_start(job->reply_timer, ms, 0);
}

/* job_finish - records a deferral for every recipient without a result,
 * gives the connection slot back and ends the attempt when this was the
 * last job of it. */
void
job_finish(struct relay_job *job)
{
	struct relay *r = job->r;

	if (job->finished)
		return;
	job->finished = true;
	job->st = JS_DONE;
	job_close_conn(job);
	/* safe from the timers' own callbacks */
	sc_timer_free(&job->reply_timer);
	sc_timer_free(&job->job_timer);
	if (job->last_err[0] == '\0')
		sfmt(job->last_err, sizeof(job->last_err),
			 "delivery to %s did not complete", job->domain);
	for (size_t k = 0; k < job->nrcpt; k++)
		if (job->rs[k] != RS_DONE)
			job_result(job, k,
				   job->last_r == SC_DENY ? SC_DENY
							  : SC_DENYSOFT,
				   job->last_code != 0 ? job->last_code : 451,
				   job->last_esc[0] != '\0' ? job->last_esc
							    : "4.4.1",
				   job->last_err);
	if (r != NULL) {
		dest_unwait(r, job);
		if (job->prev != NULL)
			job->prev->next = job->next;
		else
			r->jobs = job->next;
		if (job->next != NULL)
			job->next->prev = job->prev;
		job->prev = job->next = NULL;
		job->r = NULL;
		dest_release(r, job);
	}
	if (--job->batch->jobs_left == 0) {
		struct relay_batch *b = job->batch;
		sc_delivery_done(b->d);
		free(b);
	}
	job->batch = NULL;
	job_unref(job);
}

bool
job_all_done(const struct relay_job *job)
{
	for (size_t k = 0; k < job->nrcpt; k++)
		if (job->rs[k] != RS_DONE)
			return false;
	return true;
}

/* job_host_failed - this address did not take the mail: undo provisional
 * acceptances and try the next address or host. */
void
job_host_failed(struct relay_job *job)
{
	job_close_conn(job);
	for (size_t k = 0; k < job->nrcpt; k++)
		if (job->rs[k] != RS_DONE)
			job->rs[k] = RS_PENDING;
	job->accepted = 0;
	job->ncmd = job->cmd_head = 0;
	job->plaintext_only = false;
	if (job_all_done(job)) {
		job_finish(job);
		return;
	}
	job->ai++;
	job_next_address(job);
}

/* job_total_deadline - timeouts.total is over: whatever the job waits for
 * (DNS, a connection slot, a connect, a reply), defer what is left. */
void
job_total_deadline(struct sc_timer *t, void *arg)
{
	struct relay_job *job = arg;

	(void)t;
	if (job->finished)
		return;
	job_ref(job);
	job_set_error(job, SC_DENYSOFT, 451, "4.4.2",
		      "delivery to %s took longer than timeouts.total%s%s",
		      job->domain, job->conn != NULL ? ", talking to " : "",
		      job->conn != NULL ? job->peer : "");
	job_finish(job);
	job_unref(job);
}

static const char *
rcpt_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/* relay_deliver - the driver entry: one job per recipient domain. */
void
relay_deliver(struct sc_delivery *d, void *data)
{
	struct relay *r = data;
	size_t n = sc_delivery_rcpt_count(d);
	struct relay_batch *b;
	struct relay_job **jobs;
	size_t njobs = 0;
	uint64_t size = 0;

	b = calloc(1, sizeof(*b));
	jobs = calloc(n == 0 ? 1 : n, sizeof(*jobs));
	if (b == NULL || jobs == NULL) {
		free(b);
		free(jobs);
		sc_delivery_done(d);	/* all deferred */
		return;
	}
	b->d = d;
	int fd = sc_delivery_open(d, &size);
	/* reads are pread()s relative to where the message starts */
	off_t base = fd >= 0 ? lseek(fd, 0, SEEK_CUR) : -1;
	if (fd >= 0 && base < 0)
		base = 0;
	if (fd < 0) {
		for (size_t i = 0; i < n; i++)
			sc_delivery_rcpt_result(d, i, SC_DENYSOFT, 451,
						"4.3.0", "cannot open the "
						"queued message");
		sc_delivery_done(d);
		free(b);
		free(jobs);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *dom = rcpt_domain(sc_delivery_rcpt(d, i));
		struct relay_job *job = NULL;
		for (size_t j = 0; j < njobs; j++)
			if (strcasecmp(jobs[j]->domain, dom) == 0)
				job = jobs[j];
		if (job == NULL) {
			job = calloc(1, sizeof(*job));
			if (job != NULL) {
				job->idx = calloc(n, sizeof(*job->idx));
				job->rs = calloc(n, sizeof(*job->rs));
				job->cmds = calloc(n + 2, sizeof(*job->cmds));
			}
			if (job == NULL || job->idx == NULL ||
			    job->rs == NULL || job->cmds == NULL) {
				if (job != NULL) {
					free(job->idx);
					free(job->rs);
					free(job->cmds);
					free(job);
				}
				sc_delivery_rcpt_result(d, i, SC_DENYSOFT, 451,
							"4.3.0",
							"out of memory");
				continue;
			}
			job->refs = 1;
			job->fd = -1;
			job->r = r;
			job->batch = b;
			job->size = size;
			job->base = (uint64_t)base;
			sfmt(job->domain, sizeof(job->domain), "%s", dom);
			jobs[njobs++] = job;
		}
		job->idx[job->nrcpt++] = i;
	}
	if (njobs == 0) {
		close(fd);
		sc_delivery_done(d);
		free(b);
		free(jobs);
		return;
	}
	/* each job gets its own fd: reads happen at explicit offsets */
	for (size_t j = 0; j < njobs; j++) {
		jobs[j]->fd = j == 0 ? fd : dup(fd);
		jobs[j]->next = r->jobs;
		if (r->jobs != NULL)
			r->jobs->prev = jobs[j];
		r->jobs = jobs[j];
	}
	b->jobs_left = (unsigned)njobs;
	/* the batch may end inside job_start: keep our own list */
	for (size_t j = 0; j < njobs; j++)
		job_ref(jobs[j]);
	for (size_t j = 0; j < njobs; j++) {
		if (jobs[j]->fd < 0) {
			job_set_error(jobs[j], SC_DENYSOFT, 451, "4.3.0",
				      "cannot open the queued message");
			job_finish(jobs[j]);
		} else {
			job_start(jobs[j]);
		}
	}
	for (size_t j = 0; j < njobs; j++)
		job_unref(jobs[j]);
	free(jobs);
}
