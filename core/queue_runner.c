/* SPDX-License-Identifier: MIT */
/*
 * core/queue_runner.c - the queue runner's scheduling and retry: the
 * messages in memory (loaded from active/), the runner loop and its timer
 * (no polling: it sleeps until the earliest due recipient), the limits on
 * attempts and deliveries in flight, the retry schedule, flush, and the
 * admin's views (list, delete, counts). Loop thread only. Dispatch to
 * drivers is in queue_dispatch.c, DSNs in queue_dsn.c.
 */
#include "queue_int.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Concurrency: a delivery stuck on a silent peer must not hold back
 * others. Local and remote deliveries have their own limits, and no one
 * remote destination (domain or forced next hop) may take every remote
 * slot. A group over its limit waits THROTTLE_MS in memory, unrecorded. */
#define MAX_ATTEMPTS	1000	/* message attempts at once              */
#define MAX_ROUTING	100	/* attempts in their ROUTE phase          */
#define MAX_LOCAL	20	/* local deliveries at once               */
#define MAX_REMOTE	100	/* remote deliveries at once              */
#define MAX_PER_DEST	10	/* remote deliveries to one destination   */
#define RESCAN_MS	60000	/* a file that could not be read: again   */
#define STOP_WAIT_MS	5000	/* a record write running at stop          */

static const uint64_t default_retry[] = {
	5 * 60000, 10 * 60000, 30 * 60000, 60 * 60000, 120 * 60000,
	240 * 60000,
};
#define DEFAULT_MAX_QUEUE_MS (5ull * 24 * 3600 * 1000)

/* remote deliveries in flight per destination */
struct dest {
	char *key;		/* a forced next hop, or "@domain"         */
	size_t active;
};

struct sc_runner_state sc_runner;

/* ---- messages in memory ---- */

struct qrcpt *
sc_runner_msg_add_rcpt(struct qmsg *m, const char *addr, const char *params)
{
	struct qrcpt *r;

	if (m->n == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 4;
		struct qrcpt *n = realloc(m->r, ncap * sizeof(*n));

		if (n == NULL)
			return NULL;
		m->r = n;
		m->cap = ncap;
	}
	r = &m->r[m->n];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(addr);
	r->params = xstrdup(params);
	if (r->addr == NULL || r->params == NULL) {
		free(r->addr);
		free(r->params);
		return NULL;
	}
	m->n++;
	return r;
}

void
sc_runner_msg_free(struct qmsg *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->r[i].addr);
		free(m->r[i].params);
		free(m->r[i].orcpt);
		free(m->r[i].reply);
		free(m->r[i].nexthop);
	}
	free(m->r);
	free(m->path);
	free(m->sender);
	free(m->params);
	free(m->auth);
	free(m->client);
	free(m->helo);
	free(m->quarantine);
	free(m);
}

/* load_field - builds a message from the lines of its file */
static int
load_field(void *arg, const char *key, const char *value)
{
	struct qmsg *m = arg;
	unsigned long long a, b, c;
	size_t i;
	int off = 0;

	if (strcmp(key, "id") == 0) {
		snprintf(m->id, sizeof(m->id), "%s", value);
	} else if (strcmp(key, "arrival") == 0) {
		m->arrival = (time_t)strtoll(value, NULL, 10);
	} else if (strcmp(key, "sender") == 0) {
		set_str(&m->sender, value);
	} else if (strcmp(key, "params") == 0) {
		set_str(&m->params, value);
	} else if (strcmp(key, "auth") == 0) {
		set_str(&m->auth, value);
	} else if (strcmp(key, "client") == 0) {
		set_str(&m->client, value);
	} else if (strcmp(key, "helo") == 0) {
		set_str(&m->helo, value);
	} else if (strcmp(key, "rcpt") == 0) {
		const char *sp = strchr(value, ' ');
		char *addr = sp ? strndup(value, (size_t)(sp - value)) :
			strdup(value);

		if (addr == NULL || sc_runner_msg_add_rcpt(m, addr, sp ?
							   sp + 1 : "") ==
		    NULL) {
			free(addr);
			return -1;
		}
		free(addr);
	} else if (strcmp(key, "size") == 0) {
		m->size = strtoull(value, NULL, 10);
	} else if (strcmp(key, "data") == 0) {
		m->data_off = strtoull(value, NULL, 10);
	} else if (strcmp(key, "END") == 0) {
		const char *p = strstr(value, "received=");

		if (p != NULL)
			m->received = strtoul(p + 9, NULL, 10);
	} else if (strcmp(key, "D") == 0 || strcmp(key, "F") == 0) {
		if (sscanf(value, "%zu %llu %n", &i, &a, &off) < 2 ||
		    i >= m->n)
			return 0;
		m->r[i].state = key[0] == 'D' ? R_DELIVERED : R_FAILED;
		if (off > 0)
			set_str(&m->r[i].reply, value + off);
	} else if (strcmp(key, "T") == 0) {
		if (sscanf(value, "%zu %llu %llu %llu %n", &i, &a, &b, &c,
			   &off) < 4 || i >= m->n)
			return 0;
		m->r[i].next_ms = b;
		m->r[i].attempts = (unsigned)c;
		if (off > 0)
			set_str(&m->r[i].reply, value + off);
	} else if (strcmp(key, "X") == 0) {
		struct qrcpt *r;
		char *addr;

		if (sscanf(value, "%zu %n", &i, &off) < 1 || i >= m->n ||
		    off == 0)
			return 0;
		addr = strdup(value + off);
		if (addr == NULL)
			return -1;
		r = sc_runner_msg_add_rcpt(m, addr, m->r[i].params);
		free(addr);
		if (r == NULL)
			return -1;
		m->r[i].state = R_EXPANDED;
		r->depth = m->r[i].depth + 1;
		r->self = strcasecmp(r->addr, m->r[i].addr) == 0;
		r->orcpt = xstrdup(m->r[i].orcpt != NULL ? m->r[i].orcpt :
				   m->r[i].addr);
	} else if (strcmp(key, "S") == 0) {
		if (sscanf(value, "%zu %n", &i, &off) < 1 || i >= m->n ||
		    off == 0)
			return 0;
		m->r[i].success = strcmp(value + off, "relayed") == 0 ?
			"relayed" : "delivered";
	} else if (strcmp(key, "N") == 0) {
		if (sscanf(value, "%zu", &i) == 1 && i < m->n)
			m->r[i].delay_notified = true;
	} else if (strcmp(key, "Q") == 0) {
		/* quarantined at commit (message.h): held until deleted */
		set_str(&m->quarantine, value);
	} else if (strcmp(key, "B") == 0) {
		/* the DSN went out; only the unlink was missing */
		for (i = 0; i < m->n; i++)
			if (m->r[i].state == R_PENDING)
				m->r[i].state = R_FAILED;
		m->dsn_sent = true;
	}
	return 0;
}

/* sc_queue_runner_add - loads a committed message from active/ and
 * schedules it (commit, inject, start-up scan). */
void
sc_queue_runner_add(const char *id)
{
	struct qmsg *m;

	if (sc_queue_active_dir() == NULL || sc_runner_msg_find(id) != NULL)
		return;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return;
	if (asprintf(&m->path, "%s/%s", sc_queue_active_dir(), id) < 0) {
		m->path = NULL;
		sc_runner_msg_free(m);
		return;
	}
	snprintf(m->id, sizeof(m->id), "%s", id);
	switch (sc_queue_file_parse(m->path, load_field, m)) {
	case 1:
		if (m->sender != NULL)
			break;
		/* fall through */
	case 0:
		sc_log_warning("queue: cannot load %s", m->path);
		sc_runner_msg_free(m);
		return;
	default:
		/* unreadable now (I/O, memory): the file stays; look again */
		sc_log_warning("queue: cannot load %s: %s; trying again "
			       "later", m->path, strerror(errno));
		sc_runner_msg_free(m);
		if (sc_runner.rescan_ms == 0)
			sc_runner.rescan_ms = wall_ms() + RESCAN_MS;
		return;
	}
	sc_runner_msg_list(m);
	sc_runner_kick();
}

/* sc_runner_rcpt_deferred - schedules the next try on the driver's retry
 * schedule, or fails the recipient once the message is older than
 * max_queue_time. */
void
sc_runner_rcpt_deferred(struct attempt *a, size_t i, const char *reply,
			const struct sc_delivery_driver *drv)
{
	struct qmsg *m = a->m;
	struct qrcpt *r = &m->r[i];
	const uint64_t *retry = default_retry;
	size_t nretry = sizeof(default_retry) / sizeof(default_retry[0]);
	uint64_t maxq = DEFAULT_MAX_QUEUE_MS, now = wall_ms(), delay;
	uint64_t warn_ms = sc_config_delay_warning_ms();
	char *line = one_line(reply);

	if (drv != NULL && drv->retry_ms != NULL && drv->retry_count > 0) {
		retry = drv->retry_ms;
		nretry = drv->retry_count;
	}
	if (drv != NULL && drv->max_queue_time_ms > 0)
		maxq = drv->max_queue_time_ms;
	r->attempts++;
	delay = retry[r->attempts - 1 < nretry ? r->attempts - 1 :
		      nretry - 1];
	if (now >= (uint64_t)m->arrival * 1000u + maxq) {
		char *why;

		if (asprintf(&why, "4.4.7 message expired; last error: %s",
			     line ? line : "") < 0)
			why = NULL;
		sc_runner_rcpt_failed(a, i, why != NULL ? why :
				      "4.4.7 message expired");
		free(why);
		free(line);
		return;
	}
	r->next_ms = now + delay;
	/* one last try when the message expires */
	if (r->next_ms > (uint64_t)m->arrival * 1000u + maxq)
		r->next_ms = (uint64_t)m->arrival * 1000u + maxq;
	set_str(&r->reply, line);
	sc_runner_rec_add(a, "T %zu %" PRIu64 " %" PRIu64 " %u %s\n", i,
			  now, r->next_ms, r->attempts, line ? line : "");
	sc_log_info("%s: to=<%s> deferred (attempt %u, next in %" PRIu64
		    "s): %s", m->id, r->addr, r->attempts, delay / 1000,
		    line ? line : "");
	sc_runner_emit(SC_EVENT_DEFERRED, m, r, line);
	/* a delay notice once the message waited delay_warning, not at
	 * the first deferral: most of those clear within minutes. arrival
	 * is in whole seconds, rounded down: counted from the end of that
	 * second, the notice is never early. */
	if (!r->delay_notified && m->sender[0] != '\0' && warn_ms > 0 &&
	    now >= ((uint64_t)m->arrival + 1) * 1000u + warn_ms &&
	    sc_runner_notify_allows(r->params, "DELAY")) {
		size_t *n = realloc(a->delay, (a->delay_n + 1) *
				    sizeof(*n));

		if (n != NULL) {
			a->delay = n;
			a->delay[a->delay_n++] = i;
			r->delay_notified = true;
			sc_runner_rec_add(a, "N %zu\n", i);
		}
	}
	free(line);
}

/* ---- limits ---- */

/* dest_find - the in-flight count of a remote destination, made on
 * demand; NULL when out of memory */
static struct dest *
dest_find(const char *key, bool create)
{
	struct dest *n;

	for (size_t i = 0; i < sc_runner.ndests; i++)
		if (strcasecmp(sc_runner.dests[i].key, key) == 0)
			return &sc_runner.dests[i];
	if (!create)
		return NULL;
	n = realloc(sc_runner.dests, (sc_runner.ndests + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	sc_runner.dests = n;
	n = &sc_runner.dests[sc_runner.ndests];
	n->key = strdup(key);
	n->active = 0;
	if (n->key == NULL)
		return NULL;
	sc_runner.ndests++;
	return n;
}

/* sc_runner_slot_take - counts delivery d in its limits; false when it is over
 * one (it then waits) */
bool
sc_runner_slot_take(struct sc_delivery *d, const char *kind, const char *key)
{
	struct dest *ds;

	if (strcmp(kind, SC_DELIVERY_LOCAL) == 0) {
		if (sc_runner.local >= MAX_LOCAL)
			return false;
		sc_runner.local++;
		d->local = true;
		return true;
	}
	if (sc_runner.remote >= MAX_REMOTE)
		return false;
	ds = dest_find(key, true);
	if (ds == NULL)
		return false;
	if (ds->active >= MAX_PER_DEST)
		return false;
	d->dest = strdup(key);
	if (d->dest == NULL)
		return false;
	ds->active++;
	sc_runner.remote++;
	return true;
}

/* wake_slot_waiter - a local slot is free: the first message waiting for
 * one is due now (one: waking them all would send all but one back to
 * wait, each after a ROUTE run). One in an attempt stays queued: the
 * attempt is ending, or routed it again. */
static void
wake_slot_waiter(void)
{
	uint64_t now = wall_ms();
	struct qmsg *m, *next;

	for (m = sc_runner.waiters; m != NULL; m = next) {
		bool woke = false;

		next = m->wnext;
		if (m->busy)
			continue;
		for (size_t i = 0; i < m->n; i++) {
			if (!m->r[i].slot_wait)
				continue;
			m->r[i].slot_wait = false;
			if (m->r[i].state == R_PENDING) {
				m->r[i].next_ms = now;
				woke = true;
			}
		}
		sc_runner_waiter_remove(m);
		if (woke) {
			sc_runner_msg_sched(m);
			sc_runner_kick();
			return;
		}
	}
}

/* sc_runner_slot_release - the delivery is over: its slots are free again */
void
sc_runner_slot_release(struct sc_delivery *d)
{
	struct dest *ds;

	if (d->local) {
		sc_runner.local--;
		d->local = false;
		if (sc_runner.waiters != NULL)
			wake_slot_waiter();
		return;
	}
	if (d->dest == NULL)
		return;
	sc_runner.remote--;
	ds = dest_find(d->dest, false);
	if (ds != NULL && --ds->active == 0) {
		free(ds->key);
		*ds = sc_runner.dests[--sc_runner.ndests];
		if (sc_runner.ndests == 0) {
			free(sc_runner.dests);
			sc_runner.dests = NULL;
		}
	}
	free(d->dest);
	d->dest = NULL;
}

/* runner_scan - loads every message in active/ not in memory yet */
static int
runner_scan(void)
{
	const char *dir = sc_queue_active_dir();
	struct dirent *de;
	DIR *d;

	if (dir == NULL || (d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' && strlen(de->d_name) == 16)
			sc_queue_runner_add(de->d_name);
	closedir(d);
	return 0;
}

/* msg_pending - does m have a recipient left to deliver? */
static bool
msg_pending(const struct qmsg *m)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->r[i].state == R_PENDING)
			return true;
	return false;
}

/* runner_run - starts attempts for the due messages, taken off the top of
 * the heap of due times (a backlog that is not due costs nothing here),
 * and arms the timer for the earliest next try: no polling loop. */
static void
runner_run(uv_timer_t *t)
{
	uint64_t now = wall_ms(), earliest = UINT64_MAX;
	struct qmsg *m;

	(void)t;
	if (!sc_runner.started)
		return;
	while ((m = sc_runner_heap_top()) != NULL && m->due_ms <= now) {
		/* in the heap: neither busy nor quarantined */
		if (!msg_pending(m)) {
			/* due: its finish_ms passed. Keyed a second later
			 * first, in case the finish cannot get going (out
			 * of memory); a finish that does takes it out. */
			m->finish_ms = now + 1000;
			sc_runner_msg_sched(m);
			sc_runner_msg_finish(m);
			continue;
		}
		if (sc_runner.in_flight >= MAX_ATTEMPTS ||
		    sc_runner.routing >= MAX_ROUTING) {
			earliest = now + 1000;
			break;
		}
		if (!sc_runner_attempt_start(m, now)) {
			earliest = now + 1000;	/* out of memory */
			break;
		}
	}
	if (earliest == UINT64_MAX && m != NULL)
		earliest = m->due_ms;
	if (sc_runner.rescan_ms != 0 && sc_runner.rescan_ms <= now) {
		sc_runner.rescan_ms = 0;
		runner_scan();
		/* and any message the heap could not take (out of memory) */
		for (m = sc_runner.msgs; m != NULL; m = m->next)
			if (m->heap_i == SIZE_MAX)
				sc_runner_msg_sched(m);
		if ((m = sc_runner_heap_top()) != NULL && m->due_ms < earliest)
			earliest = m->due_ms > now ? m->due_ms : now;
	}
	if (sc_runner.rescan_ms != 0 && sc_runner.rescan_ms < earliest)
		earliest = sc_runner.rescan_ms;
	if (earliest != UINT64_MAX)
		uv_timer_start(&sc_runner.timer, runner_run,
			       earliest > now ? earliest - now : 0, 0);
}

/* sc_runner_kick - runs the runner from the loop, never recursively */
void
sc_runner_kick(void)
{
	if (sc_runner.started && sc_runner.init)
		uv_timer_start(&sc_runner.timer, runner_run, 0, 0);
}

int
sc_queue_runner_start(char **error_r)
{
	const char *dir = sc_queue_active_dir();

	*error_r = NULL;
	if (dir == NULL) {
		*error_r = strdup("queue not initialised");
		return -1;
	}
	sc_runner.rescan_ms = 0;
	if (runner_scan() < 0) {
		if (asprintf(error_r, "%s: %s", dir, strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	if (!sc_runner.init) {
		if (uv_timer_init(run_loop(), &sc_runner.timer) != 0) {
			*error_r = strdup("cannot create the runner timer");
			return -1;
		}
		sc_runner.init = true;
	}
	sc_runner.started = true;
	sc_runner_kick();
	return 0;
}

void
sc_queue_runner_stop(void)
{
	struct qmsg *m, *next;

	sc_runner.started = false;
	if (sc_runner.init) {
		uv_timer_stop(&sc_runner.timer);
		uv_close((uv_handle_t *)&sc_runner.timer, NULL);
		sc_runner.init = false;
	}
	/* Results not on disk yet are written now: the process may end
	 * before the pool gets to them, and a result lost is a message
	 * delivered twice after the restart. An append the pool already
	 * runs is waited for (bounded), one still queued is cancelled and
	 * done here, in order. */
	for (struct attempt *a = sc_runner.attempts; a != NULL; a = a->next) {
		struct recw *rw = a->writing;

		if (rw != NULL && uv_cancel((uv_req_t *)&rw->work) == 0) {
			if (sc_queue_append(rw->path, rw->buf, true) < 0 &&
			    errno != ENOENT)
				sc_log_error("queue: recording results in "
					     "%s: %s", rw->path,
					     strerror(errno));
		} else if (rw != NULL) {
			for (int i = 0; i < STOP_WAIT_MS &&
			     !atomic_load(&rw->finished); i++)
				usleep(1000);
		}
		sc_runner_rec_write_now(a);
	}
	/* messages in an attempt are freed when it ends */
	for (m = sc_runner.msgs; m != NULL; m = next) {
		next = m->next;
		if (!m->busy) {
			sc_runner_msg_unlist(m);
			sc_runner_msg_free(m);
		}
	}
	sc_runner_index_free();
}

void
sc_queue_runner_flush(void)
{
	for (struct qmsg *m = sc_runner.msgs; m != NULL; m = m->next) {
		for (size_t i = 0; i < m->n; i++)
			if (m->r[i].state == R_PENDING)
				m->r[i].next_ms = 0;
		sc_runner_msg_sched(m);
	}
	sc_runner_kick();
}

static const char *
state_name(enum rstate s)
{
	switch (s) {
	case R_PENDING: return "pending";
	case R_DELIVERED: return "delivered";
	case R_FAILED: return "failed";
	case R_EXPANDED: return "expanded";
	}
	return "?";
}

char *
sc_queue_list_text(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint64_t now = wall_ms();

	if (f == NULL)
		return NULL;
	for (struct qmsg *m = sc_runner.msgs; m != NULL; m = m->next) {
		fprintf(f, "%s %llds %" PRIu64 " <%s>%s%s%s%s\n", m->id,
			(long long)(now / 1000 - (uint64_t)m->arrival),
			m->size, m->sender, m->busy ? " (active)" : "",
			m->quarantine ? " (quarantined: " : "",
			m->quarantine ? m->quarantine : "",
			m->quarantine ? ")" : "");
		for (size_t i = 0; i < m->n; i++) {
			struct qrcpt *r = &m->r[i];

			fprintf(f, "    <%s> %s", r->addr,
				r->state == R_PENDING && r->attempts > 0 ?
				"deferred" : state_name(r->state));
			if (r->state == R_PENDING && r->next_ms > now)
				fprintf(f, " next try in %" PRIu64 "s",
					(r->next_ms - now) / 1000);
			if (r->reply != NULL && *r->reply)
				fprintf(f, " (%s)", r->reply);
			fprintf(f, "\n");
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

int
sc_queue_delete(const char *id, char **error_r)
{
	struct qmsg *m = sc_runner_msg_find(id);
	char *path;

	*error_r = NULL;
	if (strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16) {
		*error_r = strdup("not a queue id");
		return -1;
	}
	if (asprintf(&path, "%s/%s", sc_queue_active_dir() ?
		     sc_queue_active_dir() : ".", id) < 0)
		return -1;
	if (sc_queue_remove(path) < 0 && m == NULL) {
		if (asprintf(error_r, "no message %s in the queue", id) < 0)
			*error_r = NULL;
		free(path);
		return -1;
	}
	free(path);
	sc_log_notice("%s: deleted from the queue by the admin", id);
	if (m != NULL) {
		if (m->busy) {
			m->deleted = true;	/* freed when it is done */
			sc_runner_heap_remove(m);
		} else {
			sc_runner_msg_unlist(m);
			sc_runner_msg_free(m);
		}
	}
	return 0;
}

void
sc_queue_counts(size_t *messages_r, size_t *deferred_r)
{
	size_t msgs = 0, def = 0;

	for (struct qmsg *m = sc_runner.msgs; m != NULL; m = m->next) {
		msgs++;
		for (size_t i = 0; i < m->n; i++)
			if (m->r[i].state == R_PENDING && m->r[i].attempts)
				def++;
	}
	if (messages_r != NULL)
		*messages_r = msgs;
	if (deferred_r != NULL)
		*deferred_r = def;
}

/* sc_queue_rcpt_kind - the delivery kind routed for recipient rcpt of
 * message id, or NULL (metrics.c labels a delivered event with it) */
const char *
sc_queue_rcpt_kind(const char *id, const char *rcpt)
{
	struct qmsg *m = sc_runner_msg_find(id);

	for (size_t i = 0; m != NULL && i < m->n; i++)
		if (m->r[i].kind != NULL && strcmp(m->r[i].addr, rcpt) == 0)
			return m->r[i].kind;
	return NULL;
}

/* sc_queue_oldest_deferred - the arrival of the oldest message with a
 * deferred recipient, 0 when there is none (metrics, the status page) */
time_t
sc_queue_oldest_deferred(void)
{
	time_t oldest = 0;

	for (struct qmsg *m = sc_runner.msgs; m != NULL; m = m->next)
		for (size_t i = 0; i < m->n; i++)
			if (m->r[i].state == R_PENDING && m->r[i].attempts &&
			    (oldest == 0 || m->arrival < oldest))
				oldest = m->arrival;
	return oldest;
}
