/* SPDX-License-Identifier: MIT */
/*
 * core/queue_dispatch.c - the queue runner's dispatch to drivers: an
 * attempt routes each due recipient (ROUTE hook, alias expansion), groups
 * them by (kind, next hop) into deliveries handed to the drivers
 * (sc_delivery_* is their view of one), and records each delivery's
 * results in the queue file as soon as it ends. Loop thread; the record
 * appends run on the libuv thread pool.
 */
#include "queue_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_EXPAND	10	/* alias expansion depth                 */
#define MAX_RCPTS	1000	/* per message, expansion included        */

/* One ROUTE call in flight. The request and the strings it points to live
 * here, not on sc_runner_attempt_start's stack: a callback that answers
 * PENDING reads sc_hook_arg() later, until route_done frees the context. */
struct route_ctx {
	struct attempt *a;
	size_t idx;
	struct sc_route_request req;
	char id[17];
	char *sender;
	char *rcpt;
};

/* ---- records ---- */

/* rec_vadd - appends one formatted record to the pending ones */
static void
rec_vadd(struct attempt *a, const char *fmt, va_list args)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = a->rec_cap - a->rec_len;

		va_copy(ap, args);
		n = vsnprintf(a->records ? a->records + a->rec_len : NULL,
			      room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			a->rec_len += (size_t)n;
			return;
		}
		size_t ncap = (a->rec_cap + (size_t)n + 1) * 2;
		char *p = realloc(a->records, ncap);

		if (p == NULL)
			return;
		a->records = p;
		a->rec_cap = ncap;
	}
}

/* sc_runner_rec_add - a record that must be durable before the message
 * goes (the append that carries it ends in an fdatasync) */
void
sc_runner_rec_add(struct attempt *a, const char *fmt, ...)
{
	va_list ap;

	a->rec_sync = true;
	va_start(ap, fmt);
	rec_vadd(a, fmt, ap);
	va_end(ap);
}

/* rec_add_volatile - a record whose loss a crash may cost: it only goes
 * to disk with the next durable append, or never (the message is gone
 * first) */
static void SC_PRINTF(2, 3)
rec_add_volatile(struct attempt *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	rec_vadd(a, fmt, ap);
	va_end(ap);
}


void
sc_runner_emit(enum sc_event_type type, struct qmsg *m, struct qrcpt *r,
	       const char *text)
{
	struct sc_event ev = {
		.type = type, .sender = m->sender, .rcpt = r->addr,
		.queue_id = m->id, .text = text, .client_ip = m->client,
		.user = m->auth,
	};

	if (sc_core != NULL && sc_core->gen != NULL)
		sc_event_emit(&ev);
}

/* rcpt_delivered - a D record; with NOTIFY=SUCCESS also an S record:
 * action is "delivered" (into a mailbox here) or "relayed" (to a next
 * hop without DSN, RFC 3461 5.2.2); NULL when the next hop reports.
 * Durable before the message goes unless the driver is idempotent: a
 * crash that loses them then costs a retry the driver answers from its
 * earlier copy, so they are not worth an fdatasync of their own. */
static void
rcpt_delivered(struct attempt *a, size_t i, const char *reply,
	       const char *action, bool idempotent)
{
	struct qrcpt *r = &a->m->r[i];
	char *line = one_line(reply);
	bool sync = a->rec_sync;

	r->state = R_DELIVERED;
	set_str(&r->reply, line);
	rec_add_volatile(a, "D %zu %" PRIu64 " %s\n", i, wall_ms(),
			 line ? line : "");
	if (action != NULL && a->m->sender[0] != '\0' &&
	    sc_runner_notify_allows(r->params, "SUCCESS")) {
		r->success = action;
		rec_add_volatile(a, "S %zu %s\n", i, action);
	}
	a->rec_sync = sync || !idempotent;
	sc_log_info("%s: to=<%s> delivered: %s", a->m->id, r->addr,
		    line ? line : "");
	sc_runner_emit(SC_EVENT_DELIVERED, a->m, r, line);
	free(line);
}

void
sc_runner_rcpt_failed(struct attempt *a, size_t i, const char *reply)
{
	struct qrcpt *r = &a->m->r[i];
	char *line = one_line(reply);

	r->state = R_FAILED;
	set_str(&r->reply, line);
	sc_runner_rec_add(a, "F %zu %" PRIu64 " %s\n", i, wall_ms(),
			  line ? line : "");
	sc_log_notice("%s: to=<%s> failed: %s", a->m->id, r->addr,
		      line ? line : "");
	sc_runner_emit(SC_EVENT_BOUNCED, a->m, r, line);
	free(line);
}


/* ---- attempts ---- */

/* recw_work - the append itself, on the pool */
static void
recw_work(uv_work_t *w)
{
	struct recw *rw = w->data;

	if (sc_queue_append(rw->path, rw->buf, rw->sync) < 0 &&
	    errno != ENOENT)
		sc_log_error("queue: recording results in %s: %s",
			     rw->path, strerror(errno));
	atomic_store(&rw->finished, true);
}

static void
recw_free(struct recw *rw)
{
	free(rw->path);
	free(rw->buf);
	free(rw);
}

/* sc_runner_rec_write_now - appends the pending records on this thread:
 * at stop, when the pool may never run a job, or when no job can be made */
void
sc_runner_rec_write_now(struct attempt *a)
{
	if (a->rec_len > 0 && sc_queue_append(a->m->path, a->records,
					      true) < 0 && errno != ENOENT)
		sc_log_error("queue: recording results in %s: %s",
			     a->m->path, strerror(errno));
	a->rec_len = 0;
	a->rec_sync = false;
	if (a->records != NULL)
		a->records[0] = '\0';
}

static void attempt_maybe_finish(struct attempt *a);

static void
recw_done(uv_work_t *w, int status)
{
	struct recw *rw = w->data;
	struct attempt *a = rw->a;

	(void)status;	/* cancelled at stop: written there */
	a->writing = NULL;
	recw_free(rw);
	attempt_maybe_finish(a);
}

/*
 * rec_flush - hands the pending records to an append on the pool as soon
 * as they exist (one delivery's results, the route's), so what a finished
 * delivery did is durable while the others still run. One append at a
 * time per attempt keeps the file in order (X before the D of its
 * targets); what comes meanwhile goes with the next one.
 */
static void
rec_flush(struct attempt *a)
{
	struct recw *rw;

	if (a->rec_len == 0)
		return;
	if (!sc_runner.started) {
		/* stopping: the stop waited for or cancelled the append in
		 * flight, so writing now keeps the order */
		sc_runner_rec_write_now(a);
		return;
	}
	if (a->writing != NULL)
		return;
	rw = calloc(1, sizeof(*rw));
	if (rw == NULL || (rw->path = strdup(a->m->path)) == NULL) {
		free(rw);
		sc_runner_rec_write_now(a);
		return;
	}
	rw->a = a;
	rw->buf = a->records;
	rw->sync = a->rec_sync;
	a->rec_sync = false;
	rw->work.data = rw;
	atomic_init(&rw->finished, false);
	a->records = NULL;
	a->rec_len = a->rec_cap = 0;
	a->writing = rw;
	if (uv_queue_work(run_loop(), &rw->work, recw_work, recw_done) != 0) {
		a->writing = NULL;
		a->records = rw->buf;
		a->rec_len = strlen(rw->buf);
		a->rec_cap = a->rec_len + 1;
		rw->buf = NULL;
		recw_free(rw);
		sc_runner_rec_write_now(a);
	}
}

static void
attempt_unlist(struct attempt *a)
{
	for (struct attempt **pp = &sc_runner.attempts; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			return;
		}
	}
}

/* fin_work - a way to the next loop turn; removes the message's file
 * when the attempt delivered it for good (attempt_maybe_finish) */
static void
fin_work(uv_work_t *w)
{
	struct attempt *a = w->data;

	if (a->remove && sc_queue_remove(a->m->path) < 0 && errno != ENOENT)
		a->remove = false;	/* the runner's finish tries again */
}

/* msg_done_quietly - every recipient delivered and no DSN owed: the
 * runner's finish (sc_runner_msg_finish) would only remove the file, so
 * the attempt's own last trip through the pool does it */
static bool
msg_done_quietly(const struct qmsg *m)
{
	if (m->deleted || m->quarantine != NULL)
		return false;
	for (size_t i = 0; i < m->n; i++) {
		const struct qrcpt *r = &m->r[i];

		if (r->state == R_EXPANDED ||
		    (r->state == R_DELIVERED && r->success == NULL))
			continue;
		return false;
	}
	return true;
}

static void attempt_finish(uv_work_t *w, int status);

/*
 * attempt_maybe_finish - once every delivery answered and every record
 * is written, the attempt ends on a later loop turn: never inside a
 * driver's sc_delivery_done, whose module the last reference to a
 * retired generation may unload.
 */
static void
attempt_maybe_finish(struct attempt *a)
{
	rec_flush(a);
	if (!a->ended || a->writing != NULL || a->rec_len > 0 ||
	    a->finishing)
		return;
	a->finishing = true;
	a->fin.data = a;
	a->remove = sc_runner.started && msg_done_quietly(a->m);
	if (uv_queue_work(run_loop(), &a->fin, fin_work, attempt_finish)
	    != 0) {
		a->remove = false;
		attempt_finish(&a->fin, 0);
	}
}

/* attempt_finish - sends the delay notices and frees the attempt */
static void
attempt_finish(uv_work_t *w, int status)
{
	struct attempt *a = w->data;
	struct qmsg *m = a->m;
	bool removed = a->remove && status == 0;

	/* no DSN job once stopping: the queue goes away under it */
	if (a->delay_n > 0 && !m->deleted && sc_runner.started)
		sc_runner_dsn_delay(m, a->delay, a->delay_n);
	m->busy = false;
	sc_runner.in_flight--;
	attempt_unlist(a);
	if (a->gen != NULL)
		sc_gen_unref(&a->gen);
	free(a->records);
	free(a->delay);
	free(a);
	if (m->deleted || removed || !sc_runner.started) {
		sc_runner_msg_unlist(m);
		sc_runner_msg_free(m);
	} else {
		sc_runner_msg_sched(m);	/* its recipients changed */
	}
	sc_runner_kick();
}

/* attempt_end - all deliveries answered: finish once the records are
 * durable. When every recipient is final and what is pending needs no
 * sync (results of idempotent drivers), the message is removed next: an
 * append nobody will read is skipped. */
static void
attempt_end(struct attempt *a)
{
	bool final = true;

	for (size_t i = 0; i < a->m->n; i++) {
		a->m->r[i].routing = false;
		final = final && a->m->r[i].state != R_PENDING;
	}
	a->ended = true;
	if (final && !a->rec_sync && sc_runner.started) {
		a->rec_len = 0;
		if (a->records != NULL)
			a->records[0] = '\0';
	}
	attempt_maybe_finish(a);
}


static void
delivery_free(struct sc_delivery *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->res[i].reply);
	free(d->res);
	free(d->idx);
	free(d->dest);
	free(d);
}

static const struct sc_driver_entry *
find_driver(struct sc_gen *gen, const char *kind)
{
	if (gen == NULL)
		return NULL;
	for (size_t i = 0; i < gen->driver_count; i++)
		if (gen->drivers[i].drv != NULL &&
		    strcmp(gen->drivers[i].drv->kind, kind) == 0)
			return &gen->drivers[i];
	return NULL;
}

/* dispatch - groups the routed recipients by (kind, next hop) and starts
 * one delivery per group */
static void
dispatch(struct attempt *a)
{
	struct qmsg *m = a->m;
	bool *taken = calloc(m->n + 1, sizeof(bool));
	uint64_t now = wall_ms();

	if (a->routing_phase) {
		a->routing_phase = false;
		sc_runner.routing--;
	}
	/* what routing decided (X, F, T) is written before any delivery
	 * result, which may name an expanded recipient */
	rec_flush(a);
	a->deliveries = 1;	/* guard */
	for (size_t i = 0; taken != NULL && i < m->n; i++) {
		struct qrcpt *r = &m->r[i];
		const struct sc_driver_entry *de;
		struct sc_delivery *d;

		if (!r->routing || r->kind == NULL || taken[i] ||
		    r->state != R_PENDING)
			continue;
		de = find_driver(a->gen, r->kind);
		if (de == NULL) {
			char *why;

			sc_log_warning("%s: no delivery module for %s mail "
				       "(to=<%s>)", m->id, r->kind, r->addr);
			if (asprintf(&why, "4.3.0 no delivery module for %s "
				     "mail", r->kind) < 0)
				why = NULL;
			sc_runner_rcpt_deferred(a, i, why ? why : "4.3.0",
						NULL);
			free(why);
			taken[i] = true;
			continue;
		}
		d = calloc(1, sizeof(*d));
		if (d == NULL)
			break;
		d->a = a;
		d->drv = de->drv;
		d->nexthop = r->nexthop;
		d->idx = calloc(m->n, sizeof(size_t));
		d->res = calloc(m->n, sizeof(struct dres));
		if (d->idx == NULL || d->res == NULL) {
			delivery_free(d);
			break;
		}
		for (size_t k = i; k < m->n; k++) {
			struct qrcpt *o = &m->r[k];

			if (taken[k] || !o->routing || o->kind == NULL ||
			    o->state != R_PENDING ||
			    strcmp(o->kind, r->kind) != 0 ||
			    (o->nexthop == NULL) != (r->nexthop == NULL) ||
			    (o->nexthop != NULL &&
			     strcasecmp(o->nexthop, r->nexthop) != 0))
				continue;
			/* remote mail goes per domain (one transaction
			 * per MX), unless a next hop is forced */
			if (r->nexthop == NULL &&
			    strcmp(r->kind, SC_DELIVERY_REMOTE) == 0 &&
			    strcasecmp(strrchr(o->addr, '@') ?
				       strrchr(o->addr, '@') : "",
				       strrchr(r->addr, '@') ?
				       strrchr(r->addr, '@') : "") != 0)
				continue;
			taken[k] = true;
			d->idx[d->n++] = k;
		}
		if (!sc_runner_slot_take(d, r->kind, r->nexthop != NULL ?
					 r->nexthop :
					 strrchr(r->addr, '@') != NULL ?
					 strrchr(r->addr, '@') : r->addr)) {
			/* over a limit: due again shortly, no try counted */
			sc_log_debug("%s: %zu recipient(s) wait for a %s "
				     "delivery slot", m->id, d->n, r->kind);
			for (size_t k = 0; k < d->n; k++) {
				m->r[d->idx[k]].next_ms = now + THROTTLE_MS;
				/* local deliveries take milliseconds: the
				 * next slot released wakes it up earlier */
				if (strcmp(r->kind, SC_DELIVERY_LOCAL) == 0) {
					m->r[d->idx[k]].slot_wait = true;
					sc_runner_waiter_add(m);
				}
			}
			delivery_free(d);
			continue;
		}
		a->deliveries++;
		sc_log_debug("%s: delivering to %zu recipient(s) via %s%s%s",
			     m->id, d->n, r->kind, r->nexthop ? " " : "",
			     r->nexthop ? r->nexthop : "");
		de->drv->deliver(d, de->data);
	}
	free(taken);
	if (--a->deliveries == 0)
		attempt_end(a);
}

/* route_ctx_free - the request is no longer needed: the chain is over */
static void
route_ctx_free(struct route_ctx *rc)
{
	free(rc->sender);
	free(rc->rcpt);
	free(rc);
}

/* expand_add - adds target as a new recipient expanded from recipient i;
 * false when out of memory. */
static bool
expand_add(struct attempt *a, size_t i, const char *target)
{
	struct qmsg *m = a->m;
	struct qrcpt *n;
	char *orcpt = xstrdup(m->r[i].orcpt ? m->r[i].orcpt : m->r[i].addr);
	char *params = xstrdup(m->r[i].params);
	unsigned depth = m->r[i].depth;
	bool self = strcasecmp(target, m->r[i].addr) == 0;

	n = orcpt != NULL && params != NULL ?
		sc_runner_msg_add_rcpt(m, target, params) : NULL;
	free(params);
	if (n == NULL) {
		free(orcpt);
		return false;
	}
	n->orcpt = orcpt;
	n->depth = depth + 1;
	n->self = self;
	sc_runner_rec_add(a, "X %zu %s\n", i, target);
	return true;
}

/*
 * rcpt_expand - replaces recipient i by the targets of an alias (the
 * original is kept as ORCPT). An alias that names itself ("alice: alice,
 * bob") comes as targets plus a route kind, or as a target equal to the
 * recipient: the recipient then gets its own copy too, a new recipient
 * marked self so that routing it again never expands it a second time.
 */
static void
rcpt_expand(struct attempt *a, size_t i, const struct sc_hook_outcome *out)
{
	struct qmsg *m = a->m;
	bool self = false;
	size_t added = 0;

	for (size_t k = 0; k < out->expand_count; k++)
		if (strcasecmp(out->expand[k], m->r[i].addr) == 0)
			self = true;
	if (m->r[i].depth >= MAX_EXPAND ||
	    m->n + out->expand_count + 1 > MAX_RCPTS) {
		sc_runner_rcpt_failed(a, i, "550 5.4.6 alias expansion too "
				      "deep or too wide");
		return;
	}
	for (size_t k = 0; k < out->expand_count; k++) {
		if (!expand_add(a, i, out->expand[k]))
			break;
		added++;
	}
	if (out->route_kind != NULL && !self && added == out->expand_count &&
	    expand_add(a, i, m->r[i].addr)) {
		self = true;
		added++;
	}
	m->r[i].state = R_EXPANDED;
	sc_log_info("%s: to=<%s> expanded to %zu address(es)%s", m->id,
		    m->r[i].addr, added, self ? ", itself included" : "");
}

/* default_kind - LOCAL for the local domains, else REMOTE */
static const char *
default_kind(const char *addr)
{
	const char *dom = strrchr(addr, '@');

	return dom != NULL && sc_config_domain_routing(dom + 1) ==
		SC_ROUTING_LOCAL ? SC_DELIVERY_LOCAL : SC_DELIVERY_REMOTE;
}

static void
route_done(struct sc_session *s, const struct sc_hook_outcome *out,
	   void *arg)
{
	struct route_ctx *rc = arg;
	struct attempt *a = rc->a;
	struct qmsg *m = a->m;
	size_t i = rc->idx;
	struct qrcpt *r = &m->r[i];
	char reply[512];

	(void)s;
	route_ctx_free(rc);
	reply[0] = '\0';
	if (out->reply.code != 0 || out->reply.text != NULL)
		snprintf(reply, sizeof(reply), "%d %s%s%s", out->reply.code,
			 out->reply.esc, out->reply.esc[0] ? " " : "",
			 out->reply.text ? out->reply.text : "");
	switch (out->result) {
	case SC_OK:
		if (out->expand_count > 0 && !r->self) {
			rcpt_expand(a, i, out);
			break;
		}
		/* The self copy of an alias is delivered here; the targets
		 * the route names again were added with it. */
		if (out->route_kind == NULL)
			r->kind = default_kind(r->addr);
		else if (strcmp(out->route_kind, SC_DELIVERY_LOCAL) == 0)
			r->kind = SC_DELIVERY_LOCAL;
		else
			r->kind = SC_DELIVERY_REMOTE;
		free(r->nexthop);
		r->nexthop = out->route_nexthop != NULL ?
			strdup(out->route_nexthop) : NULL;
		break;
	case SC_DENY:
	case SC_DENYDISCONNECT:
		sc_runner_rcpt_failed(a, i, reply[0] ? reply :
				      "550 5.1.1 refused by the route");
		break;
	case SC_DENYSOFT:
	case SC_DENYSOFTDISCONNECT:
	case SC_PENDING:
		sc_runner_rcpt_deferred(a, i, reply[0] ? reply :
					"451 4.3.0 routing failed temporarily",
					NULL);
		break;
	case SC_CONT:
	default:
		r->kind = default_kind(r->addr);
		free(r->nexthop);
		r->nexthop = NULL;
		break;
	}
	if (--a->routes == 0)
		dispatch(a);
}

/* route_ctx_new - the context of one ROUTE call: a copy of what the
 * request points to, so it outlives this loop turn. */
static struct route_ctx *
route_ctx_new(struct attempt *a, size_t i)
{
	struct qmsg *m = a->m;
	struct route_ctx *rc = calloc(1, sizeof(*rc));
	const char *dom;

	if (rc == NULL)
		return NULL;
	rc->a = a;
	rc->idx = i;
	snprintf(rc->id, sizeof(rc->id), "%s", m->id);
	rc->sender = xstrdup(m->sender);
	rc->rcpt = xstrdup(m->r[i].addr);
	if (rc->sender == NULL || rc->rcpt == NULL) {
		route_ctx_free(rc);
		return NULL;
	}
	dom = strrchr(rc->rcpt, '@');
	rc->req = (struct sc_route_request){
		.queue_id = rc->id, .sender = rc->sender, .rcpt = rc->rcpt,
		.domain = dom ? dom + 1 : "", .received_count = m->received,
	};
	return rc;
}

/* sc_runner_attempt_start - routes every due recipient of m */
bool
sc_runner_attempt_start(struct qmsg *m, uint64_t now)
{
	struct attempt *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return false;
	a->m = m;
	a->gen = sc_core != NULL ? sc_core->gen : NULL;
	if (a->gen != NULL)
		sc_gen_ref(a->gen);
	m->busy = true;
	sc_runner_heap_remove(m);
	sc_runner.in_flight++;
	sc_runner.routing++;
	a->routing_phase = true;
	a->next = sc_runner.attempts;
	sc_runner.attempts = a;
	a->routes = 1;		/* guard: routes may answer at once */
	for (size_t i = 0; i < m->n; i++) {
		struct qrcpt *r = &m->r[i];
		struct route_ctx *rc;

		if (r->state != R_PENDING || r->next_ms > now)
			continue;
		r->routing = true;
		r->slot_wait = false;
		r->kind = NULL;
		rc = route_ctx_new(a, i);
		if (rc == NULL)
			break;
		a->routes++;
		if (sc_hook_run(NULL, SC_HOOK_ROUTE, &rc->req, route_done,
				rc) < 0) {
			struct sc_hook_outcome out = {
				.result = SC_DENYSOFT,
			};

			route_done(NULL, &out, rc);
		}
	}
	if (--a->routes == 0)
		dispatch(a);
	return true;
}


/* ---- the delivery object, for drivers ---- */

const char *
sc_delivery_queue_id(const struct sc_delivery *d)
{
	return d->a->m->id;
}

const char *
sc_delivery_sender(const struct sc_delivery *d)
{
	return d->a->m->sender;
}

const char *
sc_delivery_params(const struct sc_delivery *d)
{
	return d->a->m->params != NULL ? d->a->m->params : "";
}

const char *
sc_delivery_client_ip(const struct sc_delivery *d)
{
	return d->a->m->client;
}

const char *
sc_delivery_helo(const struct sc_delivery *d)
{
	return d->a->m->helo;
}

const char *
sc_delivery_auth_user(const struct sc_delivery *d)
{
	return d->a->m->auth;
}

time_t
sc_delivery_arrival(const struct sc_delivery *d)
{
	return d->a->m->arrival;
}

const char *
sc_delivery_nexthop(const struct sc_delivery *d)
{
	return d->nexthop;
}

size_t
sc_delivery_rcpt_count(const struct sc_delivery *d)
{
	return d->n;
}

const char *
sc_delivery_rcpt(const struct sc_delivery *d, size_t i)
{
	return i < d->n ? d->a->m->r[d->idx[i]].addr : NULL;
}

const char *
sc_delivery_rcpt_params(const struct sc_delivery *d, size_t i)
{
	return i < d->n ? d->a->m->r[d->idx[i]].params : NULL;
}

int
sc_delivery_open(const struct sc_delivery *d, uint64_t *size_r)
{
	int fd = open(d->a->m->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (lseek(fd, (off_t)d->a->m->data_off, SEEK_SET) < 0) {
		close(fd);
		return -1;
	}
	if (size_r != NULL)
		*size_r = d->a->m->size;
	return fd;
}

unsigned
sc_delivery_attempts(const struct sc_delivery *d)
{
	return d->n > 0 ? d->a->m->r[d->idx[0]].attempts : 0;
}

void
sc_delivery_rcpt_result(struct sc_delivery *d, size_t i, enum sc_result r,
			int code, const char *esc, const char *fmt, ...)
{
	char text[512] = "";
	va_list ap;

	if (i >= d->n)
		return;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(text, sizeof(text), fmt, ap);
		va_end(ap);
	}
	free(d->res[i].reply);
	d->res[i].reply = NULL;
	if (code != 0 && sc_runner_reply_code_len(text) > 0) {
		/* the text is a whole reply already: never "550 5.1.1 550
		 * 5.1.1 ..." */
		d->res[i].reply = strdup(text);
	} else if (code != 0) {
		if (asprintf(&d->res[i].reply, "%d %s%s%s", code,
			     esc ? esc : "", esc && *esc ? " " : "",
			     text) < 0)
			d->res[i].reply = NULL;
	} else if (esc != NULL && *esc) {
		if (asprintf(&d->res[i].reply, "%s %s", esc, text) < 0)
			d->res[i].reply = NULL;
	} else {
		d->res[i].reply = strdup(text);
	}
	d->res[i].result = r;
	d->res[i].set = true;
}

void
sc_delivery_rcpt_relayed(struct sc_delivery *d, size_t i)
{
	if (i < d->n)
		d->res[i].relayed = true;
}

void
sc_delivery_idempotent(struct sc_delivery *d)
{
	d->idempotent = true;
}

void
sc_delivery_done(struct sc_delivery *d)
{
	struct attempt *a = d->a;

	for (size_t k = 0; k < d->n; k++) {
		size_t i = d->idx[k];
		const char *reply = d->res[k].reply;

		if (!d->res[k].set) {
			sc_runner_rcpt_deferred(a, i, "451 4.3.0 delivery "
						"ended without a result",
						d->drv);
			continue;
		}
		switch (d->res[k].result) {
		case SC_OK:
			rcpt_delivered(a, i, reply ? reply : "250 2.0.0 Ok",
				       strcmp(d->drv->kind,
					      SC_DELIVERY_LOCAL) == 0 ?
				       "delivered" :
				       d->res[k].relayed ? "relayed" : NULL,
				       d->idempotent);
			break;
		case SC_DENY:
		case SC_DENYDISCONNECT:
			sc_runner_rcpt_failed(a, i, reply && *reply ? reply :
					      "550 5.0.0 delivery failed");
			break;
		default:
			sc_runner_rcpt_deferred(a, i, reply && *reply ?
						reply :
						"451 4.0.0 delivery deferred",
						d->drv);
			break;
		}
	}
	sc_runner_slot_release(d);
	delivery_free(d);
	if (--a->deliveries == 0) {
		attempt_end(a);
	} else {
		/* this delivery's results go to disk now, whatever the
		 * others of the attempt still wait for */
		rec_flush(a);
		sc_runner_kick();	/* a slot is free */
	}
}

int
sc_mailbox_path(const char *address, char *buf, size_t len)
{
	const struct sc_driver_entry *de;

	de = find_driver(sc_core != NULL ? sc_core->gen : NULL,
			 SC_DELIVERY_LOCAL);
	if (de == NULL || de->drv->mailbox_path == NULL)
		return -1;
	return de->drv->mailbox_path(address, buf, len, de->data);
}
