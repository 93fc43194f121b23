/* SPDX-License-Identifier: MIT */
/*
 * core/queue_dsn.c - the queue runner's bounces and DSNs: the RFC 3464
 * report (sc_queue_dsn_build, pure), failure and success DSNs when a
 * message is finished, double bounces to the postmaster, delay notices,
 * and the RFC 3461 parameters they follow (NOTIFY, RET, ENVID, ORCPT).
 * Loop thread; reading the original and queueing the DSN run on the
 * libuv thread pool.
 */
#include "queue_int.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define DSN_HEADERS_MAX	(64 * 1024)

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

/* sc_runner_notify_allows - NOTIFY=NEVER/SUCCESS/FAILURE/DELAY (RFC
 * 3461); without NOTIFY, failures are reported and delays are not. */
bool
sc_runner_notify_allows(const char *params, const char *what)
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

/* sc_runner_reply_code_len - length of a leading "NNN " or "NNN x.y.z "
 * reply code, 0 when s does not start with a 3-digit reply code */
size_t
sc_runner_reply_code_len(const char *s)
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
	const char *rest = reply + sc_runner_reply_code_len(reply), *mta;
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
	const char *rest = reply + sc_runner_reply_code_len(reply), *said, *in;

	memset(d, 0, sizeof(*d));
	said = remote_said(rest, &d->mta, &d->mta_len);
	if (said != NULL && sc_runner_reply_code_len(said) > 0) {
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
	if (sc_runner_reply_code_len(reply) > 0) {
		d->smtp = true;
		d->text = reply;
		d->len = strlen(reply);
	}
}

/* dsn_count - how many recipients of s have action a */
static size_t
dsn_count(const struct sc_dsn_spec *s, const char *a)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += strcmp(s->actions[i], a) == 0;
	return n;
}

/* dsn_list - the recipients with action a and the words before them */
static void
dsn_list(FILE *f, const struct sc_dsn_spec *s, const char *a,
	 const char *words)
{
	if (dsn_count(s, a) == 0)
		return;
	fputs(words, f);
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->actions[i], a) == 0)
			fprintf(f, "<%s>: %s\r\n", s->rcpts[i],
				human_reply(s->replies[i] ? s->replies[i] :
					    ""));
	fputs("\r\n", f);
}

/* sc_queue_dsn_build - see core.h */
char *
sc_queue_dsn_build(const struct sc_dsn_spec *s)
{
	const char *host = sc_config_hostname(), *subject, *tag;
	char date[64], adate[64], boundary[96], envid[256], orcpt[512];
	char status[16];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;
	time_t now = time(NULL);
	bool failed = dsn_count(s, "failed") > 0;
	bool delayed = dsn_count(s, "delayed") > 0;
	bool attached = s->headers != NULL && s->headers_len > 0;

	if (host == NULL || *host == '\0')
		host = "localhost";
	if (s->postmaster) {
		subject = "Postmaster Copy: Undelivered Mail";
		tag = "2bounce";
	} else if (failed) {
		subject = "Undelivered Mail Returned to Sender";
		tag = "dsn";
	} else if (delayed) {
		subject = "Delayed Mail (still being retried)";
		tag = "delay";
	} else {
		subject = "Successful Mail Delivery Report";
		tag = "success";
	}
	f = open_memstream(&buf, &len);
	if (f == NULL)
		return NULL;
	rfc2822_date(now, date, sizeof(date));
	rfc2822_date(s->arrival, adate, sizeof(adate));
	snprintf(boundary, sizeof(boundary), "%s.%lld/%s", s->id,
		 (long long)now, host);
	fprintf(f, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", host);
	fprintf(f, "To: <%s>\r\n", s->to);
	fprintf(f, "Subject: %s\r\n", subject);
	fprintf(f, "Date: %s\r\n", date);
	fprintf(f, "Message-ID: <%s.%s.%lld@%s>\r\n", s->id, tag,
		(long long)now, host);
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
	if (s->postmaster)
		fprintf(f, "A delivery notice (a message from the null sender "
			"<>) could not be\r\ndelivered. Nobody else can be "
			"told, so this copy goes to the postmaster.\r\n\r\n");
	dsn_list(f, s, "failed", s->postmaster ? "It failed for the "
		 "recipients below.\r\n\r\n" : "Your message could not be "
		 "delivered to the recipients below.\r\n\r\n");
	dsn_list(f, s, "delayed", "Your message could not be delivered yet "
		 "to the recipients below.\r\nIt is still in the queue and "
		 "will be retried; you need not send it again.\r\n\r\n");
	dsn_list(f, s, "delivered", "Your message was delivered to the "
		 "mailbox of the recipients below.\r\n\r\n");
	dsn_list(f, s, "relayed", "Your message was relayed to a server "
		 "that does not report delivery (no DSN\r\nsupport) for the "
		 "recipients below: you will hear no more of it.\r\n\r\n");
	/* say what the third part truly holds (RFC 3461 4.3: RET) */
	if (!attached)
		fprintf(f, "The original message could not be read: nothing "
			"of it is attached.\r\n");
	else if (s->full)
		fprintf(f, "The message is attached below, whole.\r\n");
	else
		fprintf(f, "Only the header section of the message is "
			"attached below, not its body.\r\n");
	fprintf(f, "\r\n");

	fprintf(f, "--%s\r\n", boundary);
	fprintf(f, "Content-Type: message/delivery-status\r\n");
	fprintf(f, "Content-Description: Delivery report\r\n\r\n");
	fprintf(f, "Reporting-MTA: dns; %s\r\n", host);
	fprintf(f, "X-Satchel-Queue-ID: %s\r\n", s->id);
	if (param_get(s->mail_params, "ENVID", envid, sizeof(envid)))
		fprintf(f, "Original-Envelope-Id: %s\r\n", envid);
	fprintf(f, "Arrival-Date: %s\r\n", adate);
	for (size_t i = 0; i < s->n; i++) {
		const char *rp = s->replies[i] ? s->replies[i] : "";
		const char *act = s->actions[i];
		bool ok = strcmp(act, "delivered") == 0 ||
			strcmp(act, "relayed") == 0;
		struct diag diag;

		fprintf(f, "\r\n");
		if (s->rcpt_params != NULL &&
		    param_get(s->rcpt_params[i], "ORCPT", orcpt,
			      sizeof(orcpt))) {
			xtext_decode(orcpt);
			fprintf(f, "Original-Recipient: %s\r\n", orcpt);
		}
		fprintf(f, "Final-Recipient: rfc822; %s\r\n", s->rcpts[i]);
		fprintf(f, "Action: %s\r\n", act);
		status_of(rp, strcmp(act, "delayed") == 0, status,
			  sizeof(status));
		if (ok && status[0] != '2')
			snprintf(status, sizeof(status), "2.0.0");
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

	if (attached) {
		fprintf(f, "--%s\r\n", boundary);
		const char *what = failed || delayed ? "Undelivered Message" :
			"Message";

		if (s->full) {
			fprintf(f, "Content-Type: message/rfc822\r\n");
			fprintf(f, "Content-Description: %s\r\n\r\n", what);
		} else {
			fprintf(f, "Content-Type: text/rfc822-headers\r\n");
			fprintf(f, "Content-Description: %s Headers\r\n\r\n",
				what);
		}
		fwrite(s->headers, 1, s->headers_len, f);
		if (s->headers[s->headers_len - 1] != '\n')
			fprintf(f, "\r\n");
		fprintf(f, "\r\n");
	}
	fprintf(f, "--%s--\r\n", boundary);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* sc_queue_dsn_text - see core.h: every recipient failed (or delayed) */
char *
sc_queue_dsn_text(const char *id, const char *sender,
		  const char *mail_params, time_t arrival,
		  const char *const *rcpts, const char *const *rcpt_params,
		  const char *const *replies, size_t n, bool delay,
		  const char *headers, size_t headers_len, bool full)
{
	const char **actions = calloc(n + 1, sizeof(*actions));
	struct sc_dsn_spec s = {
		.id = id, .to = sender, .mail_params = mail_params,
		.arrival = arrival, .rcpts = rcpts,
		.rcpt_params = rcpt_params, .replies = replies,
		.actions = actions, .n = n, .headers = headers,
		.headers_len = headers_len, .full = full,
	};
	char *text;

	if (actions == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		actions[i] = delay ? "delayed" : "failed";
	text = sc_queue_dsn_build(&s);
	free(actions);
	return text;
}

struct dsn_job {
	uv_work_t work;
	struct qmsg *m;
	bool delay;
	bool final;		/* unlink the message afterwards          */
	bool postmaster;	/* a double bounce                        */
	size_t n;
	char **rcpts, **params, **replies;
	const char **actions;	/* static strings                         */
	char *path, *id, *to, *from, *mail_params;
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
	bool failed = false, full;
	size_t hlen = 0;
	char *hdrs = NULL, *text;

	for (size_t i = 0; i < j->n; i++)
		failed |= strcmp(j->actions[i], "failed") == 0;
	/* RET=FULL is for failures (RFC 3461 4.3); the postmaster sees the
	 * whole bounce that could not be delivered */
	full = j->postmaster || (failed && param_get(j->mail_params, "RET",
						     param, sizeof(param)) &&
				 strcasecmp(param, "FULL") == 0);
	if (j->n > 0) {
		struct sc_dsn_spec spec = {
			.id = j->id, .to = j->to,
			.mail_params = j->mail_params, .arrival = j->arrival,
			.rcpts = (const char *const *)j->rcpts,
			.rcpt_params = (const char *const *)j->params,
			.replies = (const char *const *)j->replies,
			.actions = j->actions, .n = j->n,
			.postmaster = j->postmaster, .full = full,
		};

		hdrs = read_original(j->path, j->data_off, j->size, full,
				     &hlen);
		spec.headers = hdrs;
		spec.headers_len = hlen;
		text = sc_queue_dsn_build(&spec);
		free(hdrs);
		if (text != NULL) {
			struct sc_env_rcpt rc = { .address = j->to,
						  .params = "" };
			struct sc_envelope env = {
				.sender = j->from, .params = "",
				.rcpt_count = 1, .rcpts = &rc,
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
		/* B: the DSN is out; a crash now must not send it twice.
		 * Without a DSN there is nothing to record. */
		if (j->stored)
			sc_queue_append(j->path, "B\n", true);
		sc_queue_remove(j->path);
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
	free(j->actions);
	free(j->path);
	free(j->id);
	free(j->to);
	free(j->from);
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
	if (j->stored && j->postmaster) {
		sc_log_notice("%s: undeliverable bounce: double bounce to "
			      "<%s> queued as %s", j->id, j->to, j->new_id);
		sc_queue_runner_add(j->new_id);
	} else if (j->stored) {
		const char *kind = j->delay ? "delay" : "success";

		for (size_t i = 0; i < j->n; i++)
			if (strcmp(j->actions[i], "failed") == 0)
				kind = "failure";
		sc_log_info("%s: %s DSN to <%s> queued as %s", j->id, kind,
			    j->to, j->new_id);
		sc_queue_runner_add(j->new_id);
	} else if (j->n > 0) {
		sc_log_error("%s: cannot queue the DSN: %s", j->id,
			     j->error ? j->error : "out of memory");
	}
	if (m != NULL) {
		m->busy = false;
		if (j->final && (j->stored || j->n == 0)) {
			sc_runner_msg_unlist(m);
			sc_runner_msg_free(m);
		} else {
			if (j->final)	/* try again */
				m->finish_ms = wall_ms() + 60000;
			sc_runner_msg_sched(m);
		}
	}
	dsn_job_free(j);
	sc_runner_kick();
}

/* dsn_job_new - a DSN to the sender for the recipients idx[0..n) of m,
 * acts[k] the action of idx[k] */
static struct dsn_job *
dsn_job_new(struct qmsg *m, const size_t *idx, const char *const *acts,
	    size_t n, bool delay)
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
	j->actions = calloc(n + 1, sizeof(char *));
	j->path = xstrdup(m->path);
	j->id = xstrdup(m->id);
	j->to = xstrdup(m->sender);
	j->from = xstrdup("");
	j->mail_params = xstrdup(m->params);
	j->arrival = m->arrival;
	j->data_off = m->data_off;
	j->size = m->size;
	if (j->rcpts == NULL || j->params == NULL || j->replies == NULL ||
	    j->actions == NULL || j->to == NULL || j->from == NULL) {
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
		j->actions[i] = acts[i];
		j->n++;
	}
	return j;
}

/* to_postmaster - makes j a double bounce: the failed bounce goes to
 * postmaster@hostname (as Postfix's 2bounce notice does), from
 * double-bounce@hostname, whose own failure is only logged. 0 or -1. */
static int
to_postmaster(struct dsn_job *j)
{
	const char *host = sc_config_hostname();

	if (host == NULL || *host == '\0')
		host = "localhost";
	free(j->to);
	free(j->from);
	j->from = NULL;
	if (asprintf(&j->to, "postmaster@%s", host) < 0) {
		j->to = NULL;
		return -1;
	}
	if (asprintf(&j->from, "double-bounce@%s", host) < 0) {
		j->from = NULL;
		return -1;
	}
	j->postmaster = true;
	return 0;
}

/* is_double_bounce - is sender the double-bounce@hostname of a notice
 * to the postmaster? Its failures go nowhere: a loop otherwise. */
static bool
is_double_bounce(const char *sender)
{
	const char *host = sc_config_hostname();

	return strncasecmp(sender, "double-bounce@", 14) == 0 &&
		host != NULL && strcasecmp(sender + 14, host) == 0;
}

/* sc_runner_msg_finish - every recipient is final: notify the sender of
 * the failed ones (unless NOTIFY says no) and of the delivered or
 * relayed ones that asked NOTIFY=SUCCESS, then remove the message. A
 * bounce that failed goes to the postmaster instead; never silently
 * nowhere. */
void
sc_runner_msg_finish(struct qmsg *m)
{
	size_t *idx = calloc(m->n + 1, sizeof(*idx)), n = 0;
	const char **acts = calloc(m->n + 1, sizeof(*acts));
	bool null_sender = m->sender[0] == '\0';
	bool dbl = is_double_bounce(m->sender);
	struct dsn_job *j;

	if (idx == NULL || acts == NULL) {
		free(idx);
		free(acts);
		return;
	}
	/* after a B record the DSN is out: only the unlink is left */
	for (size_t i = 0; i < m->n && !m->dsn_sent; i++) {
		struct qrcpt *r = &m->r[i];

		if (r->state == R_FAILED && dbl) {
			sc_log_error("%s: double bounce to <%s> undeliverable, "
				     "discarded: %s", m->id, r->addr,
				     r->reply ? r->reply : "");
		} else if (r->state == R_FAILED && (null_sender ||
			   sc_runner_notify_allows(r->params, "FAILURE"))) {
			acts[n] = "failed";
			idx[n++] = i;
		} else if (r->state == R_DELIVERED && r->success != NULL &&
			   !null_sender && !dbl) {
			acts[n] = r->success;
			idx[n++] = i;
		}
	}
	j = dsn_job_new(m, idx, acts, n, false);
	free(idx);
	free(acts);
	if (j == NULL)
		return;
	if (null_sender && j->n > 0 && to_postmaster(j) < 0) {
		dsn_job_free(j);
		return;
	}
	j->final = true;
	m->busy = true;
	sc_runner_heap_remove(m);
	if (uv_queue_work(run_loop(), &j->work, dsn_work, dsn_done) != 0) {
		dsn_work(&j->work);
		dsn_done(&j->work, 0);
	}
}

/* sc_runner_dsn_delay - a delay notice for the recipients idx[0..n) of m,
 * which goes on meanwhile */
void
sc_runner_dsn_delay(struct qmsg *m, const size_t *idx, size_t n)
{
	const char **acts = calloc(n + 1, sizeof(*acts));
	struct dsn_job *j;

	if (acts == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		acts[i] = "delayed";
	j = dsn_job_new(m, idx, acts, n, true);
	free(acts);

	if (j != NULL) {
		j->m = NULL;	/* the message goes on meanwhile */
		if (uv_queue_work(run_loop(), &j->work, dsn_work,
				  dsn_done) != 0) {
			dsn_work(&j->work);
			dsn_done(&j->work, 0);
		}
	}
}
