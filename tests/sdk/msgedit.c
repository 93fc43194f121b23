/* SPDX-License-Identifier: MIT */
/*
 * tests/sdk/msgedit.c - a third-party module of the message API tests
 * (tests/test_message_api.py), built out of tree against the installed
 * headers only:
 *   cc -shared -fPIC $(pkg-config --cflags satchel) msgedit.c -o msgedit.so
 * In DATA_POST (at once, or pending_ms later from a timer) it records what
 * it saw in an "X-Msgedit:" field added at the bottom, and makes the edits
 * its keys ask for: a Subject prefix, fields deleted, the body replaced,
 * a recipient dropped or added, the sender changed, quarantine. Loop
 * thread only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* asprintf */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <satchel/satchel.h>

struct me_conf {
	char *tag;
	char *subject_prefix;
	char *delete_header;
	char *replace_body;
	char *drop_rcpt;
	char *add_rcpt;
	char *sender;
	char *quarantine;
	char *top_header;
	uint64_t pending_ms;
};

struct me_job;

struct me_inst {
	const struct me_conf *conf;
	struct me_job *jobs;
};

struct me_job {
	struct me_job *next;
	struct me_inst *mi;
	struct sc_hook_call *call;
	struct sc_timer *timer;
};

#define K(n, t, f, d, doc) { n, t, offsetof(struct me_conf, f), d, 0, doc, \
			     NULL, NULL, 0 }
static const struct sc_config_key me_keys[] = {
	K("tag", SC_KEY_STR, tag, "msgedit", "name in X-Msgedit:"),
	K("subject_prefix", SC_KEY_STR, subject_prefix, NULL,
	  "put in front of the Subject"),
	K("delete_header", SC_KEY_STR, delete_header, NULL,
	  "remove every field of this name"),
	K("replace_body", SC_KEY_STR, replace_body, NULL,
	  "the new body (the old size is appended)"),
	K("drop_rcpt", SC_KEY_STR, drop_rcpt, NULL, "recipient to remove"),
	K("add_rcpt", SC_KEY_STR, add_rcpt, NULL, "recipient to add"),
	K("sender", SC_KEY_STR, sender, NULL, "new sender"),
	K("quarantine", SC_KEY_STR, quarantine, NULL, "quarantine reason"),
	K("top_header", SC_KEY_STR, top_header, NULL,
	  "value of an X-Msgedit-Top: field inserted at the top"),
	K("pending_ms", SC_KEY_DURATION, pending_ms, "0",
	  "answer this much later (0: at once)"),
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static bool
set(const char *s)
{
	return s != NULL && *s != '\0';
}

/* body_digest - reads the whole body through its fd: the byte count and a
 * simple sum, so the test sees that the fd gives exactly the body */
static int
body_digest(const struct sc_message *m, uint64_t *n_r, unsigned *sum_r)
{
	char buf[4096];
	uint64_t left = sc_message_body_size(m);
	int fd = sc_message_body_open(m);

	*n_r = 0;
	*sum_r = 0;
	if (fd < 0)
		return -1;
	while (left > 0) {
		ssize_t n = read(fd, buf, left < sizeof(buf) ? left :
				 sizeof(buf));

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			*sum_r = *sum_r * 31u + (unsigned char)buf[i];
		*n_r += (uint64_t)n;
		left -= (uint64_t)n;
	}
	close(fd);
	return left == 0 ? 0 : -1;
}

static void
edit(const struct me_conf *c, struct sc_session *s, struct sc_message *m)
{
	ssize_t si = sc_message_header_find(m, "Subject", 1);
	const char *subj = si >= 0 ? sc_message_header_unfolded(m, (size_t)si)
		: "";
	char seen[2048], *subj_copy = strdup(subj ? subj : "");
	uint64_t n = 0;
	unsigned sum = 0;

	if (body_digest(m, &n, &sum) < 0)
		sc_log_session(SC_LOG_ERROR, s, "msgedit %s: body unreadable",
			       c->tag);
	snprintf(seen, sizeof(seen), "tag=%s; subject=\"%s\"; body=%llu/%u; "
		 "rcpts=%zu; first=%s; from=<%s>", c->tag,
		 subj_copy ? subj_copy : "", (unsigned long long)n, sum,
		 sc_message_rcpt_count(m), sc_message_header_count(m) > 0 ?
		 sc_message_header_name(m, 0) : "-", sc_message_sender(m));
	if (set(c->subject_prefix) && subj_copy != NULL) {
		char *v = NULL;

		if (asprintf(&v, "%s%s", c->subject_prefix, subj_copy) >= 0 &&
		    sc_message_header_change(m, "Subject", 1, v) != 0)
			sc_log_session(SC_LOG_ERROR, s, "msgedit: Subject "
				       "change failed");
		free(v);
	}
	free(subj_copy);
	if (set(c->delete_header))
		while (sc_message_header_change(m, c->delete_header, 1,
						NULL) == 0)
			;
	if (set(c->replace_body)) {
		char tail[64];

		snprintf(tail, sizeof(tail), "old body: %llu bytes\n",
			 (unsigned long long)n);
		if (sc_message_body_replace_begin(m) != 0 ||
		    sc_message_body_replace_write(m, c->replace_body,
						  strlen(c->replace_body)) ||
		    sc_message_body_replace_write(m, tail, strlen(tail)) ||
		    sc_message_body_replace_end(m) != 0)
			sc_log_session(SC_LOG_ERROR, s, "msgedit: body "
				       "replacement failed: %s",
				       strerror(errno));
	}
	if (set(c->drop_rcpt) && sc_message_rcpt_delete(m, c->drop_rcpt) != 0)
		sc_log_session(SC_LOG_ERROR, s, "msgedit: %s was no "
			       "recipient", c->drop_rcpt);
	if (set(c->add_rcpt) && sc_message_rcpt_add(m, c->add_rcpt, NULL))
		sc_log_session(SC_LOG_ERROR, s, "msgedit: add_rcpt failed");
	if (set(c->sender) && sc_message_set_sender(m, c->sender, NULL) != 0)
		sc_log_session(SC_LOG_ERROR, s, "msgedit: sender failed");
	if (set(c->quarantine))
		sc_message_quarantine(m, c->quarantine);
	if (set(c->top_header))
		sc_message_header_insert(m, SC_HEADER_TOP, "X-Msgedit-Top",
					 c->top_header);
	if (sc_message_header_insert(m, SC_HEADER_BOTTOM, "X-Msgedit",
				     seen) != 0)
		sc_log_session(SC_LOG_ERROR, s, "msgedit: insert failed");
	sc_log_session(SC_LOG_INFO, s, "msgedit %s: edited %s", c->tag,
		       sc_message_queue_id(m));
}

static void
job_free(struct me_job *j)
{
	for (struct me_job **pp = &j->mi->jobs; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	sc_timer_free(&j->timer);
	free(j);
}

static void
job_fire(struct sc_timer *t, void *arg)
{
	struct me_job *j = arg;
	struct sc_hook_call *call = j->call;
	const struct me_conf *c = j->mi->conf;
	struct sc_message *m;

	(void)t;
	if (sc_hook_cancelled(call)) {
		sc_log_notice("msgedit %s: call cancelled", c->tag);
	} else if ((m = sc_hook_message(call)) != NULL) {
		edit(c, sc_hook_session(call), m);
	}
	job_free(j);
	sc_hook_done(call, SC_CONT);
}

static enum sc_result
me_data_post(struct sc_hook_call *call, void *data)
{
	struct me_inst *mi = data;
	struct sc_message *m = sc_hook_message(call);
	struct me_job *j;

	if (m == NULL) {
		sc_log_error("msgedit %s: no message in DATA_POST",
			     mi->conf->tag);
		return SC_DENYSOFT;
	}
	if (mi->conf->pending_ms == 0) {
		edit(mi->conf, sc_hook_session(call), m);
		return SC_CONT;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->timer = sc_timer_new(job_fire, j)) == NULL) {
		free(j);
		return SC_DENYSOFT;
	}
	j->mi = mi;
	j->call = call;
	j->next = mi->jobs;
	mi->jobs = j;
	sc_timer_start(j->timer, mi->conf->pending_ms, 0);
	sc_log_session(SC_LOG_INFO, sc_hook_session(call), "msgedit %s: "
		       "pending", mi->conf->tag);
	return SC_PENDING;
}

static int
me_new(struct sc_instance *inst, const void *config, void **data_r,
       const char **error_r)
{
	struct me_inst *mi = calloc(1, sizeof(*mi));

	(void)inst;
	if (mi == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	mi->conf = config;
	*data_r = mi;
	return 0;
}

static int
me_start(struct sc_instance *inst, void *data, const char **error_r)
{
	if (sc_hook_register(inst, SC_HOOK_DATA_POST, me_data_post,
			     data) < 0) {
		*error_r = "cannot register the data_post hook";
		return -1;
	}
	return 0;
}

static void
me_free(struct sc_instance *inst, void *data)
{
	struct me_inst *mi = data;

	(void)inst;
	while (mi->jobs != NULL) {
		struct sc_hook_call *call = mi->jobs->call;

		/* the daemon stops: the session went first */
		sc_log_notice("msgedit %s: call %s at instance_free",
			      mi->conf->tag, sc_hook_cancelled(call) ?
			      "cancelled" : "still live");
		job_free(mi->jobs);
		sc_hook_done(call, SC_CONT);
	}
	free(mi);
}

SC_MODULE(msgedit,
	.version = "0.0.1",
	.description = "SDK test module: edits the message in DATA_POST",
	.keys = me_keys,
	.config_size = sizeof(struct me_conf),
	.instance_new = me_new,
	.instance_start = me_start,
	.instance_free = me_free,
);
