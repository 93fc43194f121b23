/* SPDX-License-Identifier: MIT */
/*
 * core/queue_runner.c - the queue runner: route each due recipient
 * (ROUTE hook), hand recipients grouped by (kind, next hop) to delivery
 * drivers, record the results, retry on the driver's schedule and send
 * RFC 3464 DSNs. Runs on the loop thread; record writes, DSN building and
 * unlinking happen on the libuv thread pool.
 */
#include "core.h"

#include <dirent.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
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
#define THROTTLE_MS	1000
#define RESCAN_MS	60000	/* a file that could not be read: again   */
#define STOP_WAIT_MS	5000	/* a record write running at stop          */
#define MAX_EXPAND	10	/* alias expansion depth                 */
#define MAX_RCPTS	1000	/* per message, expansion included        */
#define DSN_HEADERS_MAX	(64 * 1024)

static const uint64_t default_retry[] = {
	5 * 60000, 10 * 60000, 30 * 60000, 60 * 60000, 120 * 60000,
	240 * 60000,
};
#define DEFAULT_MAX_QUEUE_MS (5ull * 24 * 3600 * 1000)

enum rstate { R_PENDING = 0, R_DELIVERED, R_FAILED, R_EXPANDED };

struct qrcpt {
	char *addr;
	char *params;
	char *orcpt;		/* the original address, for expansions   */
	enum rstate state;
	unsigned attempts;
	unsigned depth;
	uint64_t next_ms;	/* wall clock                              */
	char *reply;		/* last reply                              */
	bool delay_notified;
	bool routing;		/* in the current attempt                  */
	const char *kind;	/* chosen by the route (static strings)    */
	char *nexthop;
	bool self;		/* the copy of an alias naming itself      */
};

struct qmsg {
	struct qmsg *next;
	char id[17];
	char *path;
	time_t arrival;
	char *sender, *params, *auth, *client, *helo;
	uint64_t size, data_off;
	size_t received;
	size_t n, cap;
	struct qrcpt *r;
	bool busy;		/* an attempt, a DSN or a record write     */
	bool deleted;
	bool dsn_sent;		/* a B record: the failure DSN went out   */
	uint64_t finish_ms;	/* a DSN failed: try again then           */
};

struct attempt;

/* One append of records to a message's file, on the pool. An attempt has
 * at most one at a time, so its records reach the file in order. */
struct recw {
	uv_work_t work;
	struct attempt *a;
	char *path;
	char *buf;
	atomic_bool finished;	/* set by the pool thread after the write  */
};

struct attempt {
	struct attempt *next;	/* run.attempts                            */
	struct qmsg *m;
	struct sc_gen *gen;
	bool routing_phase;	/* counted in run.routing                  */
	bool ended;		/* every delivery answered                 */
	bool finishing;		/* fin is queued                           */
	uv_work_t fin;		/* the finish, always from a loop callback */
	size_t routes;		/* route calls outstanding (+1 guard)      */
	size_t deliveries;	/* deliveries outstanding (+1 guard)       */
	struct recw *writing;	/* the append in flight                    */
	char *records;		/* not yet handed to an append             */
	size_t rec_len, rec_cap;
	/* delay notices to send: indexes */
	size_t *delay;
	size_t delay_n;
};

/* One ROUTE call in flight. The request and the strings it points to live
 * here, not on attempt_start's stack: a callback that answers PENDING reads
 * sc_hook_arg() later, until route_done frees the context. */
struct route_ctx {
	struct attempt *a;
	size_t idx;
	struct sc_route_request req;
	char id[17];
	char *sender;
	char *rcpt;
};

struct dres {
	enum sc_result result;
	bool set;
	char *reply;
};

struct sc_delivery {
	struct attempt *a;
	const struct sc_delivery_driver *drv;
	const char *nexthop;
	bool local;		/* counted in run.local, else run.remote   */
	char *dest;		/* the remote destination it counts for    */
	size_t n;
	size_t *idx;
	struct dres *res;
};

/* remote deliveries in flight per destination */
struct dest {
	char *key;		/* a forced next hop, or "@domain"         */
	size_t active;
};

static struct {
	bool init;
	bool started;
	uv_timer_t timer;
	struct qmsg *msgs;
	struct attempt *attempts;
	size_t in_flight;	/* attempts                                */
	size_t routing;		/* attempts routing                        */
	size_t local, remote;	/* deliveries                              */
	struct dest *dests;
	size_t ndests;
	uint64_t rescan_ms;	/* 0, or when to look at active/ again    */
} run;

static void runner_kick(void);
static void msg_finish(struct qmsg *m);

static uint64_t
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

static uv_loop_t *
run_loop(void)
{
	return sc_core != NULL && sc_core->loop != NULL ? sc_core->loop :
		uv_default_loop();
}

static char *
xstrdup(const char *s)
{
	return strdup(s != NULL ? s : "");
}

/* param_get - the value of KEY= in an ESMTP parameter string, into buf */
static bool
param_get(const char *params, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *p = params;

	while (p != NULL && *p != '\0') {
		while (*p == ' ')
			p++;
		if (strncasecmp(p, key, kl) == 0 && p[kl] == '=') {
			const char *v = p + kl + 1;
			size_t vl = strcspn(v, " ");

			if (vl >= len)
				vl = len - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return true;
		}
		p = strchr(p, ' ');
	}
	return false;
}

/* xtext_encode - RFC 3461 xtext of s into buf: '+', '=' and bytes
 * outside 33..126 become "+XX", so an address from an alias expansion
 * is a valid ORCPT value. */
static void
xtext_encode(const char *s, char *buf, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s != '\0' && o + 4 <= len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 33 || c > 126 || c == '+' || c == '=') {
			buf[o++] = '+';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 15];
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o] = '\0';
}

/* xtext_decode - the address an ORCPT value names, for a DSN's
 * Original-Recipient: "+XX" decoded; a control byte (refused by smtp
 * already) or a bad escape is shown as '?'. In place. */
static void
xtext_decode(char *s)
{
	char *o = s;

	for (; *s != '\0'; s++) {
		unsigned v;

		if (*s == '+' && isxdigit((unsigned char)s[1]) &&
		    isxdigit((unsigned char)s[2]) &&
		    sscanf(s + 1, "%2x", &v) == 1) {
			*o++ = (v < 32 || v == 127) ? '?' : (char)v;
			s += 2;
		} else {
			*o++ = ((unsigned char)*s < 32) ? '?' : *s;
		}
	}
	*o = '\0';
}

/* notify_allows - NOTIFY=NEVER/SUCCESS/FAILURE/DELAY (RFC 3461); without
 * NOTIFY, failures are reported and delays are not. */
static bool
notify_allows(const char *params, const char *what)
{
	char v[64];

	if (!param_get(params, "NOTIFY", v, sizeof(v)))
		return strcasecmp(what, "FAILURE") == 0;
	for (char *tok = strtok(v, ","); tok != NULL;
	     tok = strtok(NULL, ","))
		if (strcasecmp(tok, what) == 0)
			return true;
	return false;
}

/* ---- messages in memory ---- */

static struct qrcpt *
msg_add_rcpt(struct qmsg *m, const char *addr, const char *params)
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

static void
msg_free(struct qmsg *m)
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
	free(m);
}

static void
msg_unlist(struct qmsg *m)
{
	for (struct qmsg **pp = &run.msgs; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			return;
		}
	}
}

static struct qmsg *
msg_find(const char *id)
{
	for (struct qmsg *m = run.msgs; m != NULL; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

static void
set_str(char **p, const char *v)
{
	free(*p);
	*p = xstrdup(v);
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

		if (addr == NULL || msg_add_rcpt(m, addr, sp ? sp + 1 : "")
		    == NULL) {
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
		r = msg_add_rcpt(m, addr, m->r[i].params);
		free(addr);
		if (r == NULL)
			return -1;
		m->r[i].state = R_EXPANDED;
		r->depth = m->r[i].depth + 1;
		r->self = strcasecmp(r->addr, m->r[i].addr) == 0;
		r->orcpt = xstrdup(m->r[i].orcpt != NULL ? m->r[i].orcpt :
				   m->r[i].addr);
	} else if (strcmp(key, "N") == 0) {
		if (sscanf(value, "%zu", &i) == 1 && i < m->n)
			m->r[i].delay_notified = true;
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

	if (sc_queue_active_dir() == NULL || msg_find(id) != NULL)
		return;
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return;
	if (asprintf(&m->path, "%s/%s", sc_queue_active_dir(), id) < 0) {
		m->path = NULL;
		msg_free(m);
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
		msg_free(m);
		return;
	default:
		/* unreadable now (I/O, memory): the file stays; look again */
		sc_log_warning("queue: cannot load %s: %s; trying again "
			       "later", m->path, strerror(errno));
		msg_free(m);
		if (run.rescan_ms == 0)
			run.rescan_ms = wall_ms() + RESCAN_MS;
		return;
	}
	m->next = run.msgs;
	run.msgs = m;
	runner_kick();
}

/* ---- records ---- */

static void SC_PRINTF(2, 3)
rec_add(struct attempt *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = a->rec_cap - a->rec_len;

		va_start(ap, fmt);
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

/* one_line - a reply fit for a record line */
static char *
one_line(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; p != NULL && *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	return d;
}

static void
emit(enum sc_event_type type, struct qmsg *m, struct qrcpt *r,
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

static void
rcpt_delivered(struct attempt *a, size_t i, const char *reply)
{
	struct qrcpt *r = &a->m->r[i];
	char *line = one_line(reply);

	r->state = R_DELIVERED;
	set_str(&r->reply, line);
	rec_add(a, "D %zu %" PRIu64 " %s\n", i, wall_ms(), line ? line : "");
	sc_log_info("%s: to=<%s> delivered: %s", a->m->id, r->addr,
		    line ? line : "");
	emit(SC_EVENT_DELIVERED, a->m, r, line);
	free(line);
}

static void
rcpt_failed(struct attempt *a, size_t i, const char *reply)
{
	struct qrcpt *r = &a->m->r[i];
	char *line = one_line(reply);

	r->state = R_FAILED;
	set_str(&r->reply, line);
	rec_add(a, "F %zu %" PRIu64 " %s\n", i, wall_ms(), line ? line : "");
	sc_log_notice("%s: to=<%s> failed: %s", a->m->id, r->addr,
		      line ? line : "");
	emit(SC_EVENT_BOUNCED, a->m, r, line);
	free(line);
}

/* rcpt_deferred - schedules the next try on the driver's retry schedule,
 * or fails the recipient once the message is older than max_queue_time. */
static void
rcpt_deferred(struct attempt *a, size_t i, const char *reply,
	      const struct sc_delivery_driver *drv)
{
	struct qmsg *m = a->m;
	struct qrcpt *r = &m->r[i];
	const uint64_t *retry = default_retry;
	size_t nretry = sizeof(default_retry) / sizeof(default_retry[0]);
	uint64_t maxq = DEFAULT_MAX_QUEUE_MS, now = wall_ms(), delay;
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
		rcpt_failed(a, i, why != NULL ? why : "4.4.7 message expired");
		free(why);
		free(line);
		return;
	}
	r->next_ms = now + delay;
	/* one last try when the message expires */
	if (r->next_ms > (uint64_t)m->arrival * 1000u + maxq)
		r->next_ms = (uint64_t)m->arrival * 1000u + maxq;
	set_str(&r->reply, line);
	rec_add(a, "T %zu %" PRIu64 " %" PRIu64 " %u %s\n", i, now,
		r->next_ms, r->attempts, line ? line : "");
	sc_log_info("%s: to=<%s> deferred (attempt %u, next in %" PRIu64
		    "s): %s", m->id, r->addr, r->attempts, delay / 1000,
		    line ? line : "");
	emit(SC_EVENT_DEFERRED, m, r, line);
	if (!r->delay_notified && m->sender[0] != '\0' &&
	    notify_allows(r->params, "DELAY")) {
		size_t *n = realloc(a->delay, (a->delay_n + 1) *
				    sizeof(*n));

		if (n != NULL) {
			a->delay = n;
			a->delay[a->delay_n++] = i;
			r->delay_notified = true;
			rec_add(a, "N %zu\n", i);
		}
	}
	free(line);
}

/* ---- DSN (RFC 3464) ---- */

static void
rfc2822_date(time_t t, char *buf, size_t len)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

/* status_of - the enhanced status code in a reply ("550 5.1.1 ...") */
static void
status_of(const char *reply, bool delay, char *buf, size_t len)
{
	const char *p = reply;
	int cls, sub, det;

	while (p != NULL && *p) {
		if (sscanf(p, "%1d.%3d.%3d", &cls, &sub, &det) == 3 &&
		    (cls == 2 || cls == 4 || cls == 5) &&
		    (p == reply || p[-1] == ' ')) {
			snprintf(buf, len, "%d.%d.%d", delay ? 4 : cls, sub,
				 det);
			return;
		}
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	snprintf(buf, len, delay ? "4.0.0" : "5.0.0");
}

/* reply_code_len - length of a leading "NNN " or "NNN x.y.z " reply code,
 * 0 when s does not start with a 3-digit reply code */
static size_t
reply_code_len(const char *s)
{
	const char *p;
	int cls, sub, det, n = 0;

	if (!(s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9' &&
	      s[2] >= '0' && s[2] <= '9' && (s[3] == ' ' || s[3] == '\0')))
		return 0;
	p = s[3] == ' ' ? s + 4 : s + 3;
	if (sscanf(p, "%1d.%3d.%3d%n", &cls, &sub, &det, &n) == 3 &&
	    (p[n] == ' ' || p[n] == '\0'))
		p += p[n] == ' ' ? n + 1 : n;
	return (size_t)(p - s);
}

/* remote_said - the text after "host NAME said: " when s starts so, with
 * NAME (without its "[ip]") in *mta; NULL otherwise */
static const char *
remote_said(const char *s, const char **mta, size_t *mta_len)
{
	const char *name, *said;

	if (strncmp(s, "host ", 5) != 0)
		return NULL;
	name = s + 5;
	said = strstr(name, " said: ");
	if (said == NULL || said == name || memchr(name, ' ',
	    (size_t)(said - name)) != NULL)
		return NULL;
	*mta = name;
	*mta_len = strcspn(name, "[ ");
	return said + 7;
}

/*
 * human_reply - the reply as the notification shows it. The core records
 * "code esc text"; a driver's text that is itself a remote reply ("host X
 * said: 550 5.1.1 ...") is shown without the core's prefix, so no code
 * appears twice.
 */
static const char *
human_reply(const char *reply)
{
	const char *rest = reply + reply_code_len(reply), *mta;
	size_t mta_len;

	if (rest != reply && remote_said(rest, &mta, &mta_len) != NULL)
		return rest;
	return reply;
}

/* The Diagnostic-Code and Remote-MTA of a recorded reply (RFC 3464 2.3). */
struct diag {
	bool smtp;		/* an SMTP reply: "smtp; NNN x.y.z text"   */
	const char *text;
	size_t len;
	const char *mta;	/* Remote-MTA, when the text names one    */
	size_t mta_len;
};

/*
 * diag_parse - finds the SMTP reply in a recorded reply: the remote's own
 * reply when a driver reported "host X said: 550 5.1.1 text (in reply to
 * RCPT TO)" (X becomes the Remote-MTA), else the reply itself when it starts
 * with a reply code. The code is never given twice.
 */
static void
diag_parse(const char *reply, struct diag *d)
{
	const char *rest = reply + reply_code_len(reply), *said, *in;

	memset(d, 0, sizeof(*d));
	said = remote_said(rest, &d->mta, &d->mta_len);
	if (said != NULL && reply_code_len(said) > 0) {
		d->smtp = true;
		d->text = said;
		d->len = strlen(said);
		/* the driver's own note on which command it was, not the
		 * remote's words */
		in = strstr(said, " (in reply to ");
		if (in != NULL && said[d->len - 1] == ')' &&
		    strchr(in + 2, '(') == NULL)
			d->len = (size_t)(in - said);
		return;
	}
	d->mta = NULL;
	d->mta_len = 0;
	if (reply_code_len(reply) > 0) {
		d->smtp = true;
		d->text = reply;
		d->len = strlen(reply);
	}
}

/* sc_queue_dsn_text - builds a multipart/report DSN (malloc'd). replies[i]
 * is the last reply for rcpts[i]; headers is the original header section
 * (or the whole message with full). Pure: safe on a pool thread. */
char *
sc_queue_dsn_text(const char *id, const char *sender,
		  const char *mail_params, time_t arrival,
		  const char *const *rcpts, const char *const *rcpt_params,
		  const char *const *replies, size_t n, bool delay,
		  const char *headers, size_t headers_len, bool full)
{
	const char *host = sc_config_hostname();
	char date[64], adate[64], boundary[96], envid[256], orcpt[512];
	char status[16];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	time_t now = time(NULL);

	if (host == NULL || *host == '\0')
		host = "localhost";
	f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	rfc2822_date(now, date, sizeof(date));
	rfc2822_date(arrival, adate, sizeof(adate));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", id,
		 (long long)now, host);
	fprintf(f, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host);
	fprintf(f, "To: <%s>\r\n", sender);
	fprintf(f, "Subject: %s\r\n", delay ?
		"Delayed Mail (still being retried)" :
		"Undelivered Mail Returned to Sender");
	fprintf(f, "Date: %s\r\n", date);
	fprintf(f, "Message-ID: <%s.%s.%lld@%s>\r\n", id,
		delay ? "delay" : "dsn", (long long)now, host);
	fprintf(f, "Auto-Submitted: auto-replied\r\n");
	fprintf(f, "MIME-Version: 1.0\r\n");
	fprintf(f, "Content-Type: multipart/report; "
		"report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n",
		boundary);
	fprintf(f, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

	fprintf(f, "--%s\r\n", boundary);
	fprintf(f, "Content-Type: text/plain; charset=us-ascii\r\n");
	fprintf(f, "Content-Description: Notification\r\n\r\n");
	fprintf(f, "This is the mail system at host %s.\r\n\r\n", host);
	if (delay)
		fprintf(f, "Your message could not be delivered yet to the "
			"recipients below.\r\nIt is still in the queue and "
			"will be retried; you need not send it again.\r\n"
			"\r\n");
	else
		fprintf(f, "Your message could not be delivered to one or "
			"more recipients.\r\nIt is attached below.\r\n\r\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "<%s>: %s\r\n", rcpts[i],
			human_reply(replies[i] ? replies[i] : ""));
	fprintf(f, "\r\n");

	fprintf(f, "--%s\r\n", boundary);
	fprintf(f, "Content-Type: message/delivery-status\r\n");
	fprintf(f, "Content-Description: Delivery report\r\n\r\n");
	fprintf(f, "Reporting-MTA: dns; %s\r\n", host);
	fprintf(f, "X-Satchel-Queue-ID: %s\r\n", id);
	if (param_get(mail_params, "ENVID", envid, sizeof(envid)))
		fprintf(f, "Original-Envelope-Id: %s\r\n", envid);
	fprintf(f, "Arrival-Date: %s\r\n", adate);
	for (size_t i = 0; i < n; i++) {
		const char *rp = replies[i] ? replies[i] : "";
		struct diag diag;

		fprintf(f, "\r\n");
		if (rcpt_params != NULL &&
		    param_get(rcpt_params[i], "ORCPT", orcpt, sizeof(orcpt))) {
			xtext_decode(orcpt);
			fprintf(f, "Original-Recipient: %s\r\n", orcpt);
		}
		fprintf(f, "Final-Recipient: rfc822; %s\r\n", rcpts[i]);
		fprintf(f, "Action: %s\r\n", delay ? "delayed" : "failed");
		status_of(rp, delay, status, sizeof(status));
		fprintf(f, "Status: %s\r\n", status);
		diag_parse(rp, &diag);
		if (diag.mta_len > 0)
			fprintf(f, "Remote-MTA: dns; %.*s\r\n",
				(int)diag.mta_len, diag.mta);
		if (diag.smtp)
			fprintf(f, "Diagnostic-Code: smtp; %.*s\r\n",
				(int)diag.len, diag.text);
		else if (*rp)
			fprintf(f, "Diagnostic-Code: X-Satchel; %s\r\n", rp);
		fprintf(f, "Last-Attempt-Date: %s\r\n", date);
	}
	fprintf(f, "\r\n");

	fprintf(f, "--%s\r\n", boundary);
	if (full) {
		fprintf(f, "Content-Type: message/rfc822\r\n");
		fprintf(f, "Content-Description: Undelivered Message\r\n\r\n");
	} else {
		fprintf(f, "Content-Type: text/rfc822-headers\r\n");
		fprintf(f, "Content-Description: Undelivered Message "
			"Headers\r\n\r\n");
	}
	if (headers != NULL && headers_len > 0) {
		fwrite(headers, 1, headers_len, f);
		if (headers[headers_len - 1] != '\n')
			fprintf(f, "\r\n");
	}
	fprintf(f, "\r\n--%s--\r\n", boundary);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

struct dsn_job {
	uv_work_t work;
	struct qmsg *m;
	bool delay;
	bool final;		/* unlink the message afterwards          */
	size_t n;
	char **rcpts, **params, **replies;
	char *path, *id, *sender, *mail_params;
	time_t arrival;
	uint64_t data_off, size;
	char new_id[17];
	bool stored;
	char *error;
};

/* read_original - the header section (or all) of the queued message */
static char *
read_original(const char *path, uint64_t off, uint64_t size, bool full,
	      size_t *len_r)
{
	size_t want = full ? size : (size < DSN_HEADERS_MAX ? size :
				     DSN_HEADERS_MAX);
	char *buf = malloc(want + 1);
	ssize_t n;
	int fd;

	*len_r = 0;
	if (buf == NULL)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		free(buf);
		return NULL;
	}
	n = pread(fd, buf, want, (off_t)off);
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (!full) {
		char *end = strstr(buf, "\r\n\r\n");
		char *end2 = strstr(buf, "\n\n");

		if (end != NULL && (end2 == NULL || end < end2))
			n = end - buf + 2;
		else if (end2 != NULL)
			n = end2 - buf + 1;
	}
	*len_r = (size_t)n;
	return buf;
}

static void
dsn_work(uv_work_t *w)
{
	struct dsn_job *j = w->data;
	char param[32];
	bool full = param_get(j->mail_params, "RET", param, sizeof(param)) &&
		strcasecmp(param, "FULL") == 0 && !j->delay;
	size_t hlen = 0;
	char *hdrs = NULL, *text;

	if (j->n > 0) {
		hdrs = read_original(j->path, j->data_off, j->size, full,
				     &hlen);
		text = sc_queue_dsn_text(j->id, j->sender, j->mail_params,
					 j->arrival,
					 (const char *const *)j->rcpts,
					 (const char *const *)j->params,
					 (const char *const *)j->replies,
					 j->n, j->delay, hdrs, hlen, full);
		free(hdrs);
		if (text != NULL) {
			struct sc_env_rcpt rc = { .address = j->sender,
						  .params = "" };
			struct sc_envelope env = {
				.sender = "", .params = "", .rcpt_count = 1,
				.rcpts = &rc,
			};

			if (sc_queue_store(&env, text, strlen(text),
					   j->new_id, &j->error) == 0)
				j->stored = true;
			free(text);
		}
		if (!j->stored)
			return;		/* keep the message; retry later */
	}
	if (j->final) {
		/* B: the DSN is out; a crash now must not send it twice */
		sc_queue_append(j->path, "B\n");
		unlink(j->path);
	}
}

static void
dsn_job_free(struct dsn_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		free(j->rcpts[i]);
		free(j->params[i]);
		free(j->replies[i]);
	}
	free(j->rcpts);
	free(j->params);
	free(j->replies);
	free(j->path);
	free(j->id);
	free(j->sender);
	free(j->mail_params);
	free(j->error);
	free(j);
}

static void
dsn_done(uv_work_t *w, int status)
{
	struct dsn_job *j = w->data;
	struct qmsg *m = j->m;

	(void)status;
	if (j->stored) {
		sc_log_info("%s: %s DSN to <%s> queued as %s", j->id,
			    j->delay ? "delay" : "failure", j->sender,
			    j->new_id);
		sc_queue_runner_add(j->new_id);
	} else if (j->n > 0) {
		sc_log_error("%s: cannot queue the DSN: %s", j->id,
			     j->error ? j->error : "out of memory");
	}
	if (m != NULL) {
		m->busy = false;
		if (j->final && (j->stored || j->n == 0)) {
			msg_unlist(m);
			msg_free(m);
		} else if (j->final) {
			m->finish_ms = wall_ms() + 60000; /* try again */
		}
	}
	dsn_job_free(j);
	runner_kick();
}

/* dsn_job_new - a DSN for the recipients idx[0..n) of m */
static struct dsn_job *
dsn_job_new(struct qmsg *m, const size_t *idx, size_t n, bool delay)
{
	struct dsn_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return NULL;
	j->work.data = j;
	j->m = m;
	j->delay = delay;
	j->rcpts = calloc(n + 1, sizeof(char *));
	j->params = calloc(n + 1, sizeof(char *));
	j->replies = calloc(n + 1, sizeof(char *));
	j->path = xstrdup(m->path);
	j->id = xstrdup(m->id);
	j->sender = xstrdup(m->sender);
	j->mail_params = xstrdup(m->params);
	j->arrival = m->arrival;
	j->data_off = m->data_off;
	j->size = m->size;
	if (j->rcpts == NULL || j->params == NULL || j->replies == NULL) {
		dsn_job_free(j);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		struct qrcpt *r = &m->r[idx[i]];

		j->rcpts[i] = xstrdup(r->addr);
		if (r->orcpt != NULL && !param_get(r->params, "ORCPT",
						   (char[8]){0}, 8)) {
			char xt[3 * 512 + 1];

			xtext_encode(r->orcpt, xt, sizeof(xt));
			if (asprintf(&j->params[i], "%s ORCPT=rfc822;%s",
				     r->params, xt) < 0)
				j->params[i] = NULL;
		} else {
			j->params[i] = xstrdup(r->params);
		}
		j->replies[i] = xstrdup(r->reply);
		j->n++;
	}
	return j;
}

/* msg_finish - every recipient is final: bounce the failed ones (unless
 * the sender is null or NOTIFY says no) and remove the message. */
static void
msg_finish(struct qmsg *m)
{
	size_t *idx = calloc(m->n + 1, sizeof(*idx)), n = 0;
	struct dsn_job *j;

	if (idx == NULL)
		return;
	/* after a B record the DSN is out: only the unlink is left */
	for (size_t i = 0; i < m->n && m->sender[0] != '\0' && !m->dsn_sent;
	     i++)
		if (m->r[i].state == R_FAILED &&
		    notify_allows(m->r[i].params, "FAILURE"))
			idx[n++] = i;
	j = dsn_job_new(m, idx, n, false);
	free(idx);
	if (j == NULL)
		return;
	j->final = true;
	m->busy = true;
	if (uv_queue_work(run_loop(), &j->work, dsn_work, dsn_done) != 0) {
		dsn_work(&j->work);
		dsn_done(&j->work, 0);
	}
}

/* ---- attempts ---- */

/* recw_work - the append itself, on the pool */
static void
recw_work(uv_work_t *w)
{
	struct recw *rw = w->data;

	if (sc_queue_append(rw->path, rw->buf) < 0 && errno != ENOENT)
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

/* rec_write_now - appends the pending records on this thread: at stop,
 * when the pool may never run a job, or when no job can be made */
static void
rec_write_now(struct attempt *a)
{
	if (a->rec_len > 0 && sc_queue_append(a->m->path, a->records) < 0 &&
	    errno != ENOENT)
		sc_log_error("queue: recording results in %s: %s",
			     a->m->path, strerror(errno));
	a->rec_len = 0;
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
	if (!run.started) {
		/* stopping: the stop waited for or cancelled the append in
		 * flight, so writing now keeps the order */
		rec_write_now(a);
		return;
	}
	if (a->writing != NULL)
		return;
	rw = calloc(1, sizeof(*rw));
	if (rw == NULL || (rw->path = strdup(a->m->path)) == NULL) {
		free(rw);
		rec_write_now(a);
		return;
	}
	rw->a = a;
	rw->buf = a->records;
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
		rec_write_now(a);
	}
}

static void
attempt_unlist(struct attempt *a)
{
	for (struct attempt **pp = &run.attempts; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == a) {
			*pp = a->next;
			return;
		}
	}
}

static void
fin_work(uv_work_t *w)
{
	(void)w;	/* only a way to the next loop turn */
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
	if (uv_queue_work(run_loop(), &a->fin, fin_work, attempt_finish)
	    != 0)
		attempt_finish(&a->fin, 0);
}

/* attempt_finish - sends the delay notices and frees the attempt */
static void
attempt_finish(uv_work_t *w, int status)
{
	struct attempt *a = w->data;
	struct qmsg *m = a->m;

	(void)status;
	/* no DSN job once stopping: the queue goes away under it */
	if (a->delay_n > 0 && !m->deleted && run.started) {
		struct dsn_job *j = dsn_job_new(m, a->delay, a->delay_n,
						true);

		if (j != NULL) {
			j->m = NULL;	/* the message goes on meanwhile */
			if (uv_queue_work(run_loop(), &j->work, dsn_work,
					  dsn_done) != 0) {
				dsn_work(&j->work);
				dsn_done(&j->work, 0);
			}
		}
	}
	m->busy = false;
	run.in_flight--;
	attempt_unlist(a);
	if (a->gen != NULL)
		sc_gen_unref(&a->gen);
	free(a->records);
	free(a->delay);
	free(a);
	if (m->deleted || !run.started) {
		msg_unlist(m);
		msg_free(m);
	}
	runner_kick();
}

/* attempt_end - all deliveries answered: finish once the records are
 * durable */
static void
attempt_end(struct attempt *a)
{
	for (size_t i = 0; i < a->m->n; i++)
		a->m->r[i].routing = false;
	a->ended = true;
	attempt_maybe_finish(a);
}

/* dest_find - the in-flight count of a remote destination, made on
 * demand; NULL when out of memory */
static struct dest *
dest_find(const char *key, bool create)
{
	struct dest *n;

	for (size_t i = 0; i < run.ndests; i++)
		if (strcasecmp(run.dests[i].key, key) == 0)
			return &run.dests[i];
	if (!create)
		return NULL;
	n = realloc(run.dests, (run.ndests + 1) * sizeof(*n));
	if (n == NULL)
		return NULL;
	run.dests = n;
	n = &run.dests[run.ndests];
	n->key = strdup(key);
	n->active = 0;
	if (n->key == NULL)
		return NULL;
	run.ndests++;
	return n;
}

/* slot_take - counts delivery d in its limits; false when it is over
 * one (it then waits) */
static bool
slot_take(struct sc_delivery *d, const char *kind, const char *key)
{
	struct dest *ds;

	if (strcmp(kind, SC_DELIVERY_LOCAL) == 0) {
		if (run.local >= MAX_LOCAL)
			return false;
		run.local++;
		d->local = true;
		return true;
	}
	if (run.remote >= MAX_REMOTE)
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
	run.remote++;
	return true;
}

/* slot_release - the delivery is over: its slots are free again */
static void
slot_release(struct sc_delivery *d)
{
	struct dest *ds;

	if (d->local) {
		run.local--;
		d->local = false;
		return;
	}
	if (d->dest == NULL)
		return;
	run.remote--;
	ds = dest_find(d->dest, false);
	if (ds != NULL && --ds->active == 0) {
		free(ds->key);
		*ds = run.dests[--run.ndests];
		if (run.ndests == 0) {
			free(run.dests);
			run.dests = NULL;
		}
	}
	free(d->dest);
	d->dest = NULL;
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
		run.routing--;
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
			rcpt_deferred(a, i, why ? why : "4.3.0", NULL);
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
		if (!slot_take(d, r->kind, r->nexthop != NULL ? r->nexthop :
			       strrchr(r->addr, '@') != NULL ?
			       strrchr(r->addr, '@') : r->addr)) {
			/* over a limit: due again shortly, no try counted */
			sc_log_debug("%s: %zu recipient(s) wait for a %s "
				     "delivery slot", m->id, d->n, r->kind);
			for (size_t k = 0; k < d->n; k++)
				m->r[d->idx[k]].next_ms = now + THROTTLE_MS;
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
		msg_add_rcpt(m, target, params) : NULL;
	free(params);
	if (n == NULL) {
		free(orcpt);
		return false;
	}
	n->orcpt = orcpt;
	n->depth = depth + 1;
	n->self = self;
	rec_add(a, "X %zu %s\n", i, target);
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
		rcpt_failed(a, i, "550 5.4.6 alias expansion too deep or "
			    "too wide");
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
		rcpt_failed(a, i, reply[0] ? reply :
			    "550 5.1.1 refused by the route");
		break;
	case SC_DENYSOFT:
	case SC_DENYSOFTDISCONNECT:
	case SC_PENDING:
		rcpt_deferred(a, i, reply[0] ? reply :
			      "451 4.3.0 routing failed temporarily", NULL);
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

/* attempt_start - routes every due recipient of m */
static void
attempt_start(struct qmsg *m, uint64_t now)
{
	struct attempt *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return;
	a->m = m;
	a->gen = sc_core != NULL ? sc_core->gen : NULL;
	if (a->gen != NULL)
		sc_gen_ref(a->gen);
	m->busy = true;
	run.in_flight++;
	run.routing++;
	a->routing_phase = true;
	a->next = run.attempts;
	run.attempts = a;
	a->routes = 1;		/* guard: routes may answer at once */
	for (size_t i = 0; i < m->n; i++) {
		struct qrcpt *r = &m->r[i];
		struct route_ctx *rc;

		if (r->state != R_PENDING || r->next_ms > now)
			continue;
		r->routing = true;
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

/* runner_run - starts attempts for due messages and arms the timer for
 * the earliest next try: no polling loop. */
static void
runner_run(uv_timer_t *t)
{
	uint64_t now = wall_ms(), earliest = UINT64_MAX;
	struct qmsg *m, *next;

	(void)t;
	if (!run.started)
		return;
	for (m = run.msgs; m != NULL; m = next) {
		bool pending = false, due = false;

		next = m->next;
		if (m->busy)
			continue;
		for (size_t i = 0; i < m->n; i++) {
			if (m->r[i].state != R_PENDING)
				continue;
			pending = true;
			if (m->r[i].next_ms <= now)
				due = true;
			else if (m->r[i].next_ms < earliest)
				earliest = m->r[i].next_ms;
		}
		if (!pending) {
			if (m->finish_ms > now) {
				/* a DSN that could not be queued */
				earliest = m->finish_ms < earliest ?
					m->finish_ms : earliest;
				continue;
			}
			msg_finish(m);
			continue;
		}
		if (!due)
			continue;
		if (run.in_flight >= MAX_ATTEMPTS ||
		    run.routing >= MAX_ROUTING) {
			earliest = now + 1000;
			continue;
		}
		attempt_start(m, now);
	}
	if (run.rescan_ms != 0 && run.rescan_ms <= now) {
		run.rescan_ms = 0;
		runner_scan();
	}
	if (run.rescan_ms != 0 && run.rescan_ms < earliest)
		earliest = run.rescan_ms;
	if (earliest != UINT64_MAX)
		uv_timer_start(&run.timer, runner_run,
			       earliest > now ? earliest - now : 0, 0);
}

/* runner_kick - runs the runner from the loop, never recursively */
static void
runner_kick(void)
{
	if (run.started && run.init)
		uv_timer_start(&run.timer, runner_run, 0, 0);
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
	run.rescan_ms = 0;
	if (runner_scan() < 0) {
		if (asprintf(error_r, "%s: %s", dir, strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	if (!run.init) {
		if (uv_timer_init(run_loop(), &run.timer) != 0) {
			*error_r = strdup("cannot create the runner timer");
			return -1;
		}
		run.init = true;
	}
	run.started = true;
	runner_kick();
	return 0;
}

void
sc_queue_runner_stop(void)
{
	struct qmsg *m, *next;

	run.started = false;
	if (run.init) {
		uv_timer_stop(&run.timer);
		uv_close((uv_handle_t *)&run.timer, NULL);
		run.init = false;
	}
	/* Results not on disk yet are written now: the process may end
	 * before the pool gets to them, and a result lost is a message
	 * delivered twice after the restart. An append the pool already
	 * runs is waited for (bounded), one still queued is cancelled and
	 * done here, in order. */
	for (struct attempt *a = run.attempts; a != NULL; a = a->next) {
		struct recw *rw = a->writing;

		if (rw != NULL && uv_cancel((uv_req_t *)&rw->work) == 0) {
			if (sc_queue_append(rw->path, rw->buf) < 0 &&
			    errno != ENOENT)
				sc_log_error("queue: recording results in "
					     "%s: %s", rw->path,
					     strerror(errno));
		} else if (rw != NULL) {
			for (int i = 0; i < STOP_WAIT_MS &&
			     !atomic_load(&rw->finished); i++)
				usleep(1000);
		}
		rec_write_now(a);
	}
	/* messages in an attempt are freed when it ends */
	for (m = run.msgs; m != NULL; m = next) {
		next = m->next;
		if (!m->busy) {
			msg_unlist(m);
			msg_free(m);
		}
	}
}

void
sc_queue_runner_flush(void)
{
	for (struct qmsg *m = run.msgs; m != NULL; m = m->next)
		for (size_t i = 0; i < m->n; i++)
			if (m->r[i].state == R_PENDING)
				m->r[i].next_ms = 0;
	runner_kick();
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
	for (struct qmsg *m = run.msgs; m != NULL; m = m->next) {
		fprintf(f, "%s %llds %" PRIu64 " <%s>%s\n", m->id,
			(long long)(now / 1000 - (uint64_t)m->arrival),
			m->size, m->sender, m->busy ? " (active)" : "");
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
	struct qmsg *m = msg_find(id);
	char *path;

	*error_r = NULL;
	if (strlen(id) != 16 || strspn(id, "0123456789abcdef") != 16) {
		*error_r = strdup("not a queue id");
		return -1;
	}
	if (asprintf(&path, "%s/%s", sc_queue_active_dir() ?
		     sc_queue_active_dir() : ".", id) < 0)
		return -1;
	if (unlink(path) < 0 && m == NULL) {
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
		} else {
			msg_unlist(m);
			msg_free(m);
		}
	}
	return 0;
}

void
sc_queue_counts(size_t *messages_r, size_t *deferred_r)
{
	size_t msgs = 0, def = 0;

	for (struct qmsg *m = run.msgs; m != NULL; m = m->next) {
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
	if (code != 0 && reply_code_len(text) > 0) {
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
sc_delivery_done(struct sc_delivery *d)
{
	struct attempt *a = d->a;

	for (size_t k = 0; k < d->n; k++) {
		size_t i = d->idx[k];
		const char *reply = d->res[k].reply;

		if (!d->res[k].set) {
			rcpt_deferred(a, i, "451 4.3.0 delivery ended "
				      "without a result", d->drv);
			continue;
		}
		switch (d->res[k].result) {
		case SC_OK:
			rcpt_delivered(a, i, reply ? reply : "250 2.0.0 Ok");
			break;
		case SC_DENY:
		case SC_DENYDISCONNECT:
			rcpt_failed(a, i, reply && *reply ? reply :
				    "550 5.0.0 delivery failed");
			break;
		default:
			rcpt_deferred(a, i, reply && *reply ? reply :
				      "451 4.0.0 delivery deferred", d->drv);
			break;
		}
	}
	slot_release(d);
	delivery_free(d);
	if (--a->deliveries == 0) {
		attempt_end(a);
	} else {
		/* this delivery's results go to disk now, whatever the
		 * others of the attempt still wait for */
		rec_flush(a);
		runner_kick();	/* a slot is free */
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
