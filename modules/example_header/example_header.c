/* SPDX-License-Identifier: MIT */
/*
 * modules/example_header/example_header.c - the sample module of the
 * message API (satchel/message.h): a header stamp and a small content
 * check in the DATA_POST hook. Copy it to start a filter of your own.
 *
 * For every message it (1) refuses one that lacks a required field,
 * (2) looks for a forbidden text in the body - read from the body's file
 * descriptor on a pool thread, so a large message neither sits in memory
 * nor stalls the event loop - and refuses it when found, (3) removes
 * fields that must not come from outside (a forged stamp), and (4) adds
 * its stamp. Hook callbacks run on the loop thread; only body_scan runs
 * on the pool.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* memmem */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <satchel/satchel.h>

/* ---- 1. The config ---- */

struct eh_conf {
	char *field;			/* `field`: the stamp's name        */
	char *text;			/* `text`: its value                */
	int position;			/* `position`: top | bottom         */
	struct sc_str_list require;	/* `require`: [From]                */
	struct sc_str_list remove;	/* `remove`: fields to strip        */
	char *reject_text;		/* `reject_text`: refused in bodies */
};

static const struct sc_config_key eh_keys[] = {
	{ "field", SC_KEY_STR, offsetof(struct eh_conf, field),
	  "X-Satchel-Checked", 0, "name of the stamp field", NULL, NULL, 0 },
	{ "text", SC_KEY_STR, offsetof(struct eh_conf, text), "ok", 0,
	  "the stamp's text (the host name and queue id follow)", NULL,
	  NULL, 0 },
	{ "position", SC_KEY_ENUM, offsetof(struct eh_conf, position), "top",
	  0, "where the stamp goes in the header block", "top|bottom",
	  NULL, 0 },
	{ "require", SC_KEY_STR_LIST, offsetof(struct eh_conf, require),
	  "[From]", 0, "fields a message must have (else 550 5.6.0)", NULL,
	  NULL, 0 },
	{ "remove", SC_KEY_STR_LIST, offsetof(struct eh_conf, remove), "[]",
	  0, "fields removed before stamping (the stamp's own name always)",
	  NULL, NULL, 0 },
	{ "reject_text", SC_KEY_STR, offsetof(struct eh_conf, reject_text),
	  NULL, 0, "a body containing this text is refused (550 5.7.1)",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* ---- 2. The instance ---- */

struct eh {
	struct sc_instance *inst;
	const struct eh_conf *conf;
	uint64_t stamped, refused;	/* for `satchelctl status` */
};

/* One pending check: lives from the hook to sc_hook_done. */
struct eh_scan {
	struct eh *eh;
	struct sc_hook_call *call;
	int fd;				/* the body, opened on the loop     */
	uint64_t size;
	const char *needle;		/* the config's: outlives the job   */
	bool found;
	int err;			/* errno of a failed read, or 0     */
};

/* ---- 3. The header work (loop thread) ---- */

/* stamp - strip what must not come from outside, add the stamp. The
 * message pointer is fetched anew by the caller after every return to
 * the loop (sc_hook_message), never kept. */
static void
stamp(struct eh *eh, struct sc_message *m)
{
	const struct eh_conf *c = eh->conf;
	char value[512];

	/* change(name, 1, NULL) removes the first one; repeat for all */
	while (sc_message_header_change(m, c->field, 1, NULL) == 0)
		;
	for (size_t i = 0; i < c->remove.n; i++)
		while (sc_message_header_change(m, c->remove.v[i], 1,
						NULL) == 0)
			;
	snprintf(value, sizeof(value), "%s (%s; %s)", c->text,
		 sc_config_hostname(), sc_message_queue_id(m));
	if (sc_message_header_insert(m, c->position == 0 ? SC_HEADER_TOP :
				     SC_HEADER_BOTTOM, c->field, value) < 0)
		sc_log_warning("example_header: cannot add %s: %s", c->field,
			       strerror(errno));
	else
		eh->stamped++;
}

/* missing_field - the first required field the message lacks, or NULL */
static const char *
missing_field(const struct eh_conf *c, const struct sc_message *m)
{
	for (size_t i = 0; i < c->require.n; i++)
		if (sc_message_header_find(m, c->require.v[i], 1) < 0)
			return c->require.v[i];
	return NULL;
}

/* ---- 4. The body check (pool thread, then the loop) ---- */

/* body_scan - on the pool: read the body in chunks and look for the
 * needle, also across chunk borders (the last len-1 bytes are kept). */
static void
body_scan(void *arg)
{
	struct eh_scan *j = arg;
	size_t nl = strlen(j->needle), keep = 0, total;
	uint64_t left = j->size;
	char *buf = malloc(65536 + nl);

	if (buf == NULL) {
		j->err = ENOMEM;
		return;
	}
	while (left > 0 && !j->found) {
		size_t want = left < 65536 ? (size_t)left : 65536;
		ssize_t n = read(j->fd, buf + keep, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			j->err = n < 0 ? errno : EIO;
			break;
		}
		left -= (uint64_t)n;
		total = keep + (size_t)n;
		if (memmem(buf, total, j->needle, nl) != NULL)
			j->found = true;
		/* keep the tail that could start a match */
		keep = total < nl - 1 ? total : nl - 1;
		memmove(buf, buf + total - keep, keep);
	}
	free(buf);
}

/* body_scanned - back on the loop: the verdict. The call may have been
 * cancelled meanwhile (the client left, hook_timeout passed): then the
 * message is gone and only sc_hook_done is left to do. */
static void
body_scanned(void *arg)
{
	struct eh_scan *j = arg;
	struct sc_hook_call *call = j->call;
	struct sc_message *m = sc_hook_message(call);
	enum sc_result r = SC_CONT;

	close(j->fd);
	if (m == NULL) {
		/* cancelled: nothing to decide */
	} else if (j->err != 0) {
		sc_log_error("example_header: reading %s: %s",
			     sc_message_queue_id(m), strerror(j->err));
		sc_reply_set(call, 451, "4.3.0", "Message check failed; "
			     "try again later");
		r = SC_DENYSOFT;
	} else if (j->found) {
		j->eh->refused++;
		sc_reply_set(call, 550, "5.7.1", "Message content rejected");
		r = SC_DENY;
	} else {
		stamp(j->eh, m);
	}
	free(j);
	sc_hook_done(call, r);
}

/* ---- 5. The hook ---- */

static enum sc_result
eh_data_post(struct sc_hook_call *call, void *data)
{
	struct eh *eh = data;
	struct sc_message *m = sc_hook_message(call);
	const char *missing;
	struct eh_scan *j;

	if (m == NULL)
		return SC_CONT;
	missing = missing_field(eh->conf, m);
	if (missing != NULL) {
		eh->refused++;
		sc_reply_set(call, 550, "5.6.0", "Message lacks a %s: field",
			     missing);
		return SC_DENY;
	}
	if (eh->conf->reject_text == NULL || *eh->conf->reject_text == '\0') {
		stamp(eh, m);
		return SC_CONT;	/* no verdict: let later modules run */
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return SC_DENYSOFT;
	j->eh = eh;
	j->call = call;
	j->needle = eh->conf->reject_text;
	j->size = sc_message_body_size(m);
	j->fd = sc_message_body_open(m);
	if (j->fd < 0) {
		free(j);
		return SC_DENYSOFT;
	}
	/* the instance's job: the core keeps eh alive until body_scanned */
	if (sc_work_submit_inst(eh->inst, body_scan, body_scanned, j) < 0) {
		close(j->fd);
		free(j);
		return SC_DENYSOFT;
	}
	return SC_PENDING;
}

static size_t
eh_status(char *buf, size_t len, void *data)
{
	const struct eh *eh = data;
	int n = snprintf(buf, len, "stamped: %llu\nrefused: %llu",
			 (unsigned long long)eh->stamped,
			 (unsigned long long)eh->refused);

	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* ---- 6. The lifecycle ---- */

static int
eh_new(struct sc_instance *inst, const void *config, void **data_r,
       const char **error_r)
{
	const struct eh_conf *c = config;
	struct eh *eh;

	/* the API checks names too; saying so here gives FILE a message at
	 * start-up instead of a warning per message */
	if (c->field == NULL || *c->field == '\0' ||
	    strpbrk(c->field, ": \t\r\n") != NULL) {
		*error_r = "field must be a header field name";
		return -1;
	}
	if (c->text == NULL || strpbrk(c->text, "\r\n") != NULL) {
		*error_r = "text must be one line";
		return -1;
	}
	eh = calloc(1, sizeof(*eh));
	if (eh == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	eh->inst = inst;
	eh->conf = c;
	*data_r = eh;
	return 0;
}

static int
eh_start(struct sc_instance *inst, void *data, const char **error_r)
{
	if (sc_hook_register(inst, SC_HOOK_DATA_POST, eh_data_post,
			     data) < 0 ||
	    sc_status_register(inst, eh_status, data) < 0) {
		*error_r = "cannot register the data_post hook";
		return -1;
	}
	return 0;
}

static void
eh_free(struct sc_instance *inst, void *data)
{
	(void)inst;
	free(data);
}

SC_MODULE(example_header,
	.version = "1.0",
	.description = "sample module: header stamp and content check "
		       "(message API)",
	.keys = eh_keys,
	.config_size = sizeof(struct eh_conf),
	.instance_new = eh_new,
	.instance_start = eh_start,
	.instance_free = eh_free,
);
