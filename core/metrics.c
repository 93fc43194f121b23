/* SPDX-License-Identifier: MIT */
/*
 * core/metrics.c - the metric registry (satchel/metrics.h): families by
 * name for the life of the process, the instances' handles on them, the
 * per-minute history of counters, and the core's own families, counted
 * from events and read from the sessions and the queue when collected.
 * Loop thread only.
 */
#include "core.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NAME_MAX_LEN	128
#define HIST		SC_METRIC_HISTORY_MINUTES

struct family {
	struct family *next;		/* registry list, by name            */
	char *name, *help, *label;	/* label NULL: none                  */
	enum sc_metric_type type;
	bool core;			/* the core's: lives until deinit    */
	bool overflow_logged;
	unsigned handles;		/* live handles                      */
	/* the samples, as parallel arrays (sc_metric_family shows them) */
	size_t n, cap;
	char **labels;
	double *values;
	struct sc_metric **owners;	/* the gauge handle that set it      */
	/* counters: growth per minute, a ring indexed by minute % HIST */
	double hist[HIST];
	uint64_t hist_minute;		/* the minute of the newest slot     */
};

struct sc_metric {
	struct sc_metric *next;		/* every handle, registration order  */
	struct family *f;
	struct sc_instance *inst;
	sc_metric_fn fn;		/* gauge callback, or NULL           */
	void *data;
};

struct sc_metrics {
	struct family *families;
	struct sc_metric *handles;
	struct sc_metric **handles_tail;
	time_t started;
	/* the core's families */
	struct family *connections, *connections_total, *logins, *accepted,
		*delivered, *deferred, *bounced, *auth_failures, *reloads,
		*queue_messages, *queue_deferred, *queue_oldest;
};

static struct sc_metrics *
registry(void)
{
	return sc_core != NULL ? sc_core->metrics : NULL;
}

/* ---- names and values ---- */

static bool
name_valid(const char *name, enum sc_metric_type type)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len <= 8 || len > NAME_MAX_LEN ||
	    strncmp(name, "satchel_", 8) != 0)
		return false;
	for (const char *p = name; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == ':'))
			return false;
	/* Prometheus' convention, which promtool checks */
	if (type == SC_METRIC_COUNTER)
		return len > 6 && strcmp(name + len - 6, "_total") == 0;
	return true;
}

static bool
label_valid(const char *label)
{
	size_t len = strlen(label);

	if (len == 0 || len > 64 || (label[0] >= '0' && label[0] <= '9') ||
	    strncmp(label, "__", 2) == 0 || strcmp(label, "le") == 0 ||
	    strcmp(label, "quantile") == 0)
		return false;
	for (const char *p = label; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return false;
	return true;
}

/* clean_text - s as printable ASCII into buf (other bytes become '?'),
 * cut at len - 1 bytes */
static void
clean_text(const char *s, char *buf, size_t len)
{
	size_t i = 0;

	for (; s != NULL && s[i] != '\0' && i + 1 < len; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
}

/* ---- families ---- */

static void
family_free(struct family *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->labels[i]);
	free(f->labels);
	free(f->values);
	free(f->owners);
	free(f->name);
	free(f->help);
	free(f->label);
	free(f);
}

static struct family *
family_find(struct sc_metrics *r, const char *name)
{
	for (struct family *f = r->families; f != NULL; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* family_get - the family called name, created when new; NULL with
 * *why_r when name, label or type do not fit */
static struct family *
family_get(struct sc_metrics *r, const char *name, const char *help,
	   enum sc_metric_type type, const char *label, const char **why_r)
{
	struct family *f, **pp;
	char hbuf[512];

	if (label != NULL && *label == '\0')
		label = NULL;
	if (!name_valid(name, type)) {
		*why_r = type == SC_METRIC_COUNTER ? "a counter's name is "
			"satchel_[a-z0-9_:]*_total" : "a gauge's name is "
			"satchel_[a-z0-9_:]*";
		return NULL;
	}
	if (label != NULL && !label_valid(label)) {
		*why_r = "a label name is [a-z_][a-z0-9_]*, not le, quantile "
			"or __*";
		return NULL;
	}
	f = family_find(r, name);
	if (f != NULL) {
		if (f->type != type || (f->label == NULL) != (label == NULL) ||
		    (label != NULL && strcmp(f->label, label) != 0)) {
			*why_r = "registered before with another type or label";
			return NULL;
		}
		return f;
	}
	f = calloc(1, sizeof(*f));
	clean_text(help != NULL ? help : "", hbuf, sizeof(hbuf));
	if (f == NULL || (f->name = strdup(name)) == NULL ||
	    (f->help = strdup(hbuf)) == NULL ||
	    (label != NULL && (f->label = strdup(label)) == NULL)) {
		if (f != NULL)
			family_free(f);
		*why_r = "out of memory";
		return NULL;
	}
	f->type = type;
	f->hist_minute = sc_now_ms() / 60000;
	for (pp = &r->families; *pp != NULL && strcmp((*pp)->name, name) < 0;
	     pp = &(*pp)->next)
		;
	f->next = *pp;
	*pp = f;
	return f;
}

/* family_drop - takes f out of the registry and frees it */
static void
family_drop(struct sc_metrics *r, struct family *f)
{
	for (struct family **pp = &r->families; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	}
	family_free(f);
}

/* series_index - the sample of label value lv (added when new); -1 when
 * the family is full or memory is short */
static ssize_t
series_index(struct family *f, const char *lv)
{
	char buf[SC_METRIC_LABEL_MAX + 1];

	if (f->label == NULL)
		buf[0] = '\0';
	else
		clean_text(lv, buf, sizeof(buf));
	if (f->label != NULL && buf[0] == '\0')
		return -1;
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->labels[i], buf) == 0)
			return (ssize_t)i;
	if (f->n >= SC_METRIC_SERIES_MAX) {
		if (!f->overflow_logged)
			sc_log_warning("metrics: %s has %d label values "
				       "already; dropping new ones", f->name,
				       SC_METRIC_SERIES_MAX);
		f->overflow_logged = true;
		return -1;
	}
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 4;
		char **l = realloc(f->labels, cap * sizeof(*l));

		if (l == NULL)
			return -1;
		f->labels = l;
		double *v = realloc(f->values, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		f->values = v;
		struct sc_metric **o = realloc(f->owners, cap * sizeof(*o));
		if (o == NULL)
			return -1;
		f->owners = o;
		f->cap = cap;
	}
	if ((f->labels[f->n] = strdup(buf)) == NULL)
		return -1;
	f->values[f->n] = 0;
	f->owners[f->n] = NULL;
	return (ssize_t)f->n++;
}

/* series_remove - drops sample i, keeping the order of the others */
static void
series_remove(struct family *f, size_t i)
{
	free(f->labels[i]);
	memmove(&f->labels[i], &f->labels[i + 1],
		(f->n - i - 1) * sizeof(f->labels[0]));
	memmove(&f->values[i], &f->values[i + 1],
		(f->n - i - 1) * sizeof(f->values[0]));
	memmove(&f->owners[i], &f->owners[i + 1],
		(f->n - i - 1) * sizeof(f->owners[0]));
	f->n--;
}

/* series_clear_owner - drops the gauge samples h set last */
static void
series_clear_owner(struct family *f, const struct sc_metric *h)
{
	for (size_t i = f->n; i-- > 0;)
		if (f->owners[i] == h)
			series_remove(f, i);
}

/* hist_advance - moves f's ring to the current minute, zeroing the
 * minutes that passed without growth */
static uint64_t
hist_advance(struct family *f)
{
	uint64_t now = sc_now_ms() / 60000;

	if (now > f->hist_minute) {
		uint64_t gap = now - f->hist_minute;

		for (uint64_t m = 1; m <= gap && m <= HIST; m++)
			f->hist[(f->hist_minute + m) % HIST] = 0;
		f->hist_minute = now;
	}
	return f->hist_minute;
}

static void
family_add(struct family *f, const char *lv, double n)
{
	ssize_t i;

	if (f == NULL || f->type != SC_METRIC_COUNTER || !(n >= 0) ||
	    isinf(n) || (i = series_index(f, lv)) < 0)
		return;
	f->values[i] += n;
	f->hist[hist_advance(f) % HIST] += n;
}

static void
family_set(struct family *f, const char *lv, double v,
	   struct sc_metric *owner)
{
	ssize_t i;

	if (f == NULL || f->type != SC_METRIC_GAUGE ||
	    (i = series_index(f, lv)) < 0)
		return;
	f->values[i] = v;
	f->owners[i] = owner;
}

/* ---- the API for modules ---- */

static struct sc_metric *
metric_new(struct sc_instance *inst, const char *name, const char *help,
	   enum sc_metric_type type, const char *label, sc_metric_fn fn,
	   void *data)
{
	struct sc_metrics *r = registry();
	const char *why = NULL;
	struct family *f;
	struct sc_metric *h;

	if (r == NULL || inst == NULL)
		return NULL;
	f = family_get(r, name, help, type, label, &why);
	if (f == NULL) {
		sc_log_error("%s: metric %s: %s", sc_instance_name(inst),
			     name != NULL ? name : "(null)", why);
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		if (f->handles == 0 && !f->core)
			family_drop(r, f);
		return NULL;
	}
	h->f = f;
	h->inst = inst;
	h->fn = fn;
	h->data = data;
	f->handles++;
	*r->handles_tail = h;
	r->handles_tail = &h->next;
	return h;
}

struct sc_metric *
sc_metric_counter_new(struct sc_instance *inst, const char *name,
		      const char *help, const char *label)
{
	return metric_new(inst, name, help, SC_METRIC_COUNTER, label, NULL,
			  NULL);
}

struct sc_metric *
sc_metric_gauge_new(struct sc_instance *inst, const char *name,
		    const char *help, const char *label)
{
	return metric_new(inst, name, help, SC_METRIC_GAUGE, label, NULL,
			  NULL);
}

struct sc_metric *
sc_metric_gauge_fn_new(struct sc_instance *inst, const char *name,
		       const char *help, const char *label, sc_metric_fn fn,
		       void *data)
{
	if (fn == NULL)
		return NULL;
	return metric_new(inst, name, help, SC_METRIC_GAUGE, label, fn, data);
}

void
sc_metric_add(struct sc_metric *m, const char *label_value, double n)
{
	if (m != NULL)
		family_add(m->f, label_value, n);
}

void
sc_metric_set(struct sc_metric *m, const char *label_value, double value)
{
	if (m != NULL)
		family_set(m->f, label_value, value, m);
}

void
sc_metrics_instance_gone(struct sc_instance *inst)
{
	struct sc_metrics *r = registry();
	struct sc_metric **pp, *h;

	if (r == NULL)
		return;
	pp = &r->handles;
	while ((h = *pp) != NULL) {
		if (h->inst != inst) {
			pp = &h->next;
			continue;
		}
		*pp = h->next;
		if (r->handles_tail == &h->next)
			r->handles_tail = pp;
		series_clear_owner(h->f, h);
		if (--h->f->handles == 0 && !h->f->core)
			family_drop(r, h->f);
		free(h);
	}
}

/* ---- the core's families ---- */

static void
count_protocol(const char *protocol, void *arg)
{
	struct family *f = arg;
	ssize_t i = series_index(f, protocol != NULL && *protocol ?
				 protocol : "unknown");

	if (i >= 0)
		f->values[i]++;
}

/* core_gauges - what the core's gauges read when collected: sessions by
 * protocol (every protocol seen stays, at 0 when none is open) and the
 * queue */
static void
core_gauges(struct sc_metrics *r)
{
	size_t messages = 0, deferred = 0;
	time_t oldest = sc_queue_oldest_deferred(), now = time(NULL);

	for (size_t i = 0; i < r->connections->n; i++)
		r->connections->values[i] = 0;
	sc_session_foreach_protocol(count_protocol, r->connections);
	sc_queue_counts(&messages, &deferred);
	family_set(r->queue_messages, NULL, (double)messages, NULL);
	family_set(r->queue_deferred, NULL, (double)deferred, NULL);
	family_set(r->queue_oldest, NULL, oldest != 0 && now > oldest ?
		   (double)(now - oldest) : 0, NULL);
}

void
sc_metrics_event(const struct sc_event *ev)
{
	struct sc_metrics *r = registry();
	const char *proto = ev->protocol != NULL ? ev->protocol : "unknown";
	const char *kind = NULL;

	if (r == NULL)
		return;
	switch (ev->type) {
	case SC_EVENT_CONNECT:
		family_add(r->connections_total, proto, 1);
		break;
	case SC_EVENT_LOGIN:
		family_add(r->logins, proto, 1);
		break;
	case SC_EVENT_AUTH_FAILED:
		family_add(r->auth_failures, NULL, 1);
		break;
	case SC_EVENT_QUEUED:
		family_add(r->accepted, NULL, 1);
		break;
	case SC_EVENT_DELIVERED:
		if (ev->queue_id != NULL && ev->rcpt != NULL)
			kind = sc_queue_rcpt_kind(ev->queue_id, ev->rcpt);
		family_add(r->delivered, kind != NULL ? kind : "unknown", 1);
		break;
	case SC_EVENT_DEFERRED:
		family_add(r->deferred, NULL, 1);
		break;
	case SC_EVENT_BOUNCED:
		family_add(r->bounced, NULL, 1);
		break;
	case SC_EVENT_RELOAD:
		family_add(r->reloads, NULL, 1);
		break;
	case SC_EVENT_DISCONNECT:
	case SC_EVENT_HELO:
	case SC_EVENT_MAIL:
	case SC_EVENT_RCPT:
	case SC_EVENT_COUNT:
		break;
	}
}

/* core_family - one of the core's families (kept until deinit) */
static struct family *
core_family(struct sc_metrics *r, const char *name, enum sc_metric_type type,
	    const char *label, const char *help, bool *ok)
{
	const char *why = NULL;
	struct family *f = family_get(r, name, help, type, label, &why);

	if (f == NULL)
		*ok = false;
	else
		f->core = true;
	return f;
}

int
sc_metrics_init(char **error_r)
{
	struct sc_metrics *r;
	struct family *f;
	bool ok = true;

	*error_r = NULL;
	if (sc_core == NULL || sc_core->metrics != NULL)
		return 0;
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		*error_r = strdup("metrics: out of memory");
		return -1;
	}
	r->handles_tail = &r->handles;
	r->started = time(NULL);
	sc_core->metrics = r;
#define C SC_METRIC_COUNTER
#define G SC_METRIC_GAUGE
	f = core_family(r, "satchel_build_info", G, "version",
			"satchel's version (always 1)", &ok);
	family_set(f, SC_VERSION, 1, NULL);
	f = core_family(r, "satchel_start_time_seconds", G, NULL,
			"when satcheld started, in seconds since the epoch",
			&ok);
	family_set(f, NULL, (double)r->started, NULL);
	r->connections = core_family(r, "satchel_connections_current", G,
		"protocol", "connections open now, by listener protocol", &ok);
	if (r->connections != NULL)
		(void)series_index(r->connections, "smtp");
	r->connections_total = core_family(r, "satchel_connections_total", C,
		"protocol", "connections a protocol module accepted (after "
		"the connect hook)", &ok);
	r->logins = core_family(r, "satchel_logins_total", C, "protocol",
		"successful authentications", &ok);
	r->auth_failures = core_family(r, "satchel_auth_failures_total", C,
		NULL, "failed authentications (SMTP AUTH, POP3)", &ok);
	r->accepted = core_family(r, "satchel_messages_accepted_total", C,
		NULL, "messages committed to the queue", &ok);
	r->delivered = core_family(r, "satchel_messages_delivered_total", C,
		"kind", "recipients delivered, by delivery kind (local: "
		"mailbox, remote: relayed)", &ok);
	family_add(r->delivered, SC_DELIVERY_LOCAL, 0);
	family_add(r->delivered, SC_DELIVERY_REMOTE, 0);
	r->deferred = core_family(r, "satchel_messages_deferred_total", C,
		NULL, "delivery attempts deferred (per recipient)", &ok);
	r->bounced = core_family(r, "satchel_messages_bounced_total", C,
		NULL, "recipients that failed for good (bounced)", &ok);
	r->reloads = core_family(r, "satchel_reloads_total", C, NULL,
		"configuration reloads", &ok);
	r->queue_messages = core_family(r, "satchel_queue_messages", G, NULL,
		"messages in the queue", &ok);
	r->queue_deferred = core_family(r,
		"satchel_queue_deferred_recipients", G, NULL,
		"recipients waiting for a retry", &ok);
	r->queue_oldest = core_family(r,
		"satchel_queue_oldest_deferred_seconds", G, NULL,
		"age of the oldest message with a deferred recipient (0: "
		"none)", &ok);
	/* Families the core names but modules fill (ratelimit), so their
	 * type and label are fixed whoever registers first. */
	(void)core_family(r, "satchel_limit_hits_total", C, "limit",
		"connections, messages or logins a limit refused", &ok);
	(void)core_family(r, "satchel_connections_limit", G, NULL,
		"the server-wide connection limit (ratelimit's "
		"max_connections; +Inf: none)", &ok);
#undef C
#undef G
	/* a counter without a label is 0 until it counts, not absent: a
	 * rate() over it needs the first sample */
	family_add(r->auth_failures, NULL, 0);
	family_add(r->accepted, NULL, 0);
	family_add(r->deferred, NULL, 0);
	family_add(r->bounced, NULL, 0);
	family_add(r->reloads, NULL, 0);
	if (!ok) {
		sc_metrics_deinit();
		*error_r = strdup("metrics: cannot register the core's "
				  "families");
		return -1;
	}
	return 0;
}

void
sc_metrics_deinit(void)
{
	struct sc_metrics *r = registry();

	if (r == NULL)
		return;
	while (r->handles != NULL) {
		struct sc_metric *h = r->handles;

		r->handles = h->next;
		free(h);
	}
	while (r->families != NULL) {
		struct family *f = r->families;

		r->families = f->next;
		family_free(f);
	}
	free(r);
	sc_core->metrics = NULL;
}

/* ---- reading ---- */

void
sc_metrics_collect(sc_metrics_visit_fn fn, void *data)
{
	struct sc_metrics *r = registry();

	if (r == NULL || fn == NULL)
		return;
	core_gauges(r);
	/* oldest first, so the newest instance's value wins */
	for (struct sc_metric *h = r->handles; h != NULL; h = h->next) {
		if (h->fn == NULL)
			continue;
		series_clear_owner(h->f, h);
		h->fn(h, h->data);
	}
	for (struct family *f = r->families; f != NULL; f = f->next) {
		struct sc_metric_family info = {
			.name = f->name, .help = f->help, .type = f->type,
			.label = f->label, .n = f->n,
			.label_values = (const char *const *)f->labels,
			.values = f->values,
		};

		fn(&info, data);
	}
}

size_t
sc_metric_history(const char *name, double *per_minute, size_t n)
{
	struct sc_metrics *r = registry();
	struct family *f;
	uint64_t now;

	if (r == NULL || name == NULL || per_minute == NULL || n == 0 ||
	    n > HIST || (f = family_find(r, name)) == NULL ||
	    f->type != SC_METRIC_COUNTER)
		return 0;
	now = hist_advance(f);
	for (size_t i = 0; i < n; i++) {
		uint64_t back = n - 1 - i;

		per_minute[i] = back <= now ? f->hist[(now - back) % HIST] : 0;
	}
	return n;
}
