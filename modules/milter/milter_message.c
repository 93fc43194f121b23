/* SPDX-License-Identifier: MIT */
/*
 * milter_message.c - the message for a milter, in DATA_POST: each header
 * field (SMFIC_HEADER), end of header, the body in chunks read from the
 * queue file on a worker thread (SMFIC_BODY), end of message; then the
 * milter's actions applied through the message API (header edits, body
 * replacement, recipients, sender, quarantine) and its verdict. Runs on
 * the event loop thread, except the body reads (a libuv worker).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <satchel/message.h>

#include "milter_int.h"

enum msg_step { STEP_HEADERS = 0, STEP_EOH, STEP_BODY, STEP_EOM };

struct milter_msg {
	enum msg_step step;
	size_t hdr_next;		/* next field to send            */
	int body_fd;
	uint64_t body_left;
	bool reading;			/* a worker is reading a chunk   */
	bool replacing;			/* REPLBODY begun                */
	bool edited;
	unsigned gen;			/* tells a late read_job apart   */
};

/* A body chunk read on a worker; holds a reference on ms (depth). */
struct read_job {
	struct milter_sess *ms;
	unsigned gen;			/* the message it reads for      */
	int fd;
	size_t want;
	ssize_t got;
	int err;
	unsigned char buf[MILTER_CHUNK];
};

static void msg_step(struct milter_sess *ms);

static struct sc_message *
msg_of(struct milter_sess *ms)
{
	if (ms->call == NULL || sc_hook_cancelled(ms->call))
		return NULL;
	return sc_hook_message(ms->call);
}

void
milter_msg_free(struct milter_sess *ms)
{
	struct milter_msg *mm = ms->msg;

	if (mm == NULL)
		return;
	if (mm->body_fd >= 0 && !mm->reading)
		close(mm->body_fd);
	/* a worker still reading owns the fd now and closes it */
	free(mm);
	ms->msg = NULL;
}

/* msg_done - the message stage is over with verdict v */
static void
msg_done(struct milter_sess *ms, enum milter_verdict v)
{
	struct sc_message *m = msg_of(ms);

	if (v == MV_DISCARD && m != NULL) {
		sc_message_discard(m);
		sc_log_session(SC_LOG_INFO, ms->s, "milter %s: discarded the "
			       "message", sc_instance_name(ms->mi->inst));
	}
	ms->in_message = false;
	milter_msg_free(ms);
	milter_finish_call(ms, v == MV_DISCARD ? MV_CONTINUE : v);
}

/* eom_then - the final answer to end of message */
static void
eom_then(struct milter_sess *ms, enum milter_verdict v)
{
	struct milter_msg *mm = ms->msg;
	struct sc_message *m = msg_of(ms);

	if (mm != NULL && mm->replacing && m != NULL &&
	    (v == MV_CONTINUE || v == MV_ACCEPT)) {
		if (sc_message_body_replace_end(m) != 0) {
			mconn_fail(ms, "cannot store the new body");
			return;
		}
		mm->replacing = false;
	}
	if (v == MV_ACCEPT)
		v = MV_CONTINUE;
	msg_done(ms, v);
}

/* step_then - an answer to a header, end of header or body chunk */
static void
step_then(struct milter_sess *ms, enum milter_verdict v)
{
	if (ms->msg == NULL)
		return;
	switch (v) {
	case MV_CONTINUE:
		msg_step(ms);
		return;
	case MV_ACCEPT:
		/* no more of this message for the milter, and no edits */
		msg_done(ms, MV_CONTINUE);
		return;
	default:
		msg_done(ms, v);
		return;
	}
}

/* send_header - field i as (name, value): one leading space dropped
 * unless the milter asked for it (SMFIP_HDR_LEADSPC), and the folding
 * CRLFs sent as LF, as Sendmail and Postfix do */
static void
send_header(struct milter_sess *ms, struct sc_message *m, size_t i)
{
	const char *name = sc_message_header_name(m, i);
	const char *value = sc_message_header_value(m, i);
	char *v, *w;

	if (name == NULL || value == NULL)
		return;
	if (!(ms->protocol & SMFIP_HDR_LEADSPC) && *value == ' ')
		value++;
	v = strdup(value);
	if (v == NULL) {
		ms->out.oom = true;
		return;
	}
	for (const char *r = (w = v); *r != '\0'; r++)
		if (!(r[0] == '\r' && r[1] == '\n'))
			*w++ = *r;
	*w = '\0';
	milter_pkt_begin(&ms->out, SMFIC_HEADER);
	milter_pkt_str(&ms->out, name);
	milter_pkt_str(&ms->out, v);
	milter_pkt_end(&ms->out);
	free(v);
}

static void read_chunk(struct milter_sess *ms);

/* msg_step - sends what comes next and waits, or ends */
static void
msg_step(struct milter_sess *ms)
{
	struct milter_msg *mm = ms->msg;
	struct sc_message *m = msg_of(ms);

	if (mm == NULL)
		return;
	if (m == NULL) {
		/* the session went away or the hook timed out: the milter
		 * gets an ABORT at the next MAIL or at the end */
		msg_done(ms, MV_CONTINUE);
		ms->in_message = true;
		return;
	}
	ms->then = step_then;
	switch (mm->step) {
	case STEP_HEADERS:
		if (ms->protocol & SMFIP_NOHDRS) {
			mm->step = STEP_EOH;
			msg_step(ms);
			return;
		}
		if (ms->protocol & SMFIP_NR_HDR) {
			/* no answers: all fields at once */
			while (mm->hdr_next < sc_message_header_count(m))
				send_header(ms, m, mm->hdr_next++);
			mm->step = STEP_EOH;
			mconn_flush(ms);
			if (ms->state != MC_CLOSED)
				msg_step(ms);
			return;
		}
		if (mm->hdr_next >= sc_message_header_count(m)) {
			mm->step = STEP_EOH;
			msg_step(ms);
			return;
		}
		send_header(ms, m, mm->hdr_next++);
		ms->pending_cmd = SMFIC_HEADER;
		mconn_expect(ms, ms->mi->conf->timeouts.command);
		return;
	case STEP_EOH:
		mm->step = STEP_BODY;
		if (ms->protocol & SMFIP_NOEOH) {
			msg_step(ms);
			return;
		}
		milter_macros(ms, SMFIC_EOH, MS_EOH);
		milter_pkt_begin(&ms->out, SMFIC_EOH);
		milter_pkt_end(&ms->out);
		ms->pending_cmd = SMFIC_EOH;
		if (ms->protocol & SMFIP_NR_EOH) {
			mconn_flush(ms);
			if (ms->state != MC_CLOSED)
				msg_step(ms);
			return;
		}
		mconn_expect(ms, ms->mi->conf->timeouts.command);
		return;
	case STEP_BODY:
		if ((ms->protocol & SMFIP_NOBODY) || ms->skip_body ||
		    mm->body_left == 0) {
			mm->step = STEP_EOM;
			msg_step(ms);
			return;
		}
		if (mm->body_fd < 0) {
			mm->body_fd = sc_message_body_open(m);
			if (mm->body_fd < 0) {
				sc_log_session(SC_LOG_ERROR, ms->s, "milter "
					       "%s: cannot open the body: %s",
					       sc_instance_name(ms->mi->inst),
					       strerror(errno));
				milter_finish_call(ms, MV_TEMPFAIL);
				milter_msg_free(ms);
				return;
			}
		}
		read_chunk(ms);
		return;
	case STEP_EOM:
		milter_macros(ms, SMFIC_BODYEOB, MS_EOM);
		milter_pkt_begin(&ms->out, SMFIC_BODYEOB);
		milter_pkt_end(&ms->out);
		ms->pending_cmd = SMFIC_BODYEOB;
		ms->then = eom_then;
		mconn_expect(ms, ms->mi->conf->timeouts.eom);
		return;
	}
}

/* ---- the body, a chunk at a time ---- */

static void
read_work(void *arg)
{
	struct read_job *j = arg;
	size_t off = 0;

	/* a worker thread: no sc_ calls */
	while (off < j->want) {
		ssize_t n = read(j->fd, j->buf + off, j->want - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			j->err = n < 0 ? errno : EIO;
			break;
		}
		off += (size_t)n;
	}
	j->got = (ssize_t)off;
}

static void
read_done(void *arg)
{
	struct read_job *j = arg;
	struct milter_sess *ms = j->ms;
	struct milter_msg *mm = ms->msg;

	if (mm == NULL || mm->gen != j->gen) {
		/* its message is gone: the fd was left to us */
		close(j->fd);
		free(j);
		goto out;
	}
	mm->reading = false;
	if (ms->dead || ms->state == MC_CLOSED || ms->call == NULL) {
		free(j);
		goto out;
	}
	if (j->err != 0 || (size_t)j->got != j->want) {
		sc_log_session(SC_LOG_ERROR, ms->s, "milter %s: cannot read "
			       "the body: %s", sc_instance_name(ms->mi->inst),
			       strerror(j->err ? j->err : EIO));
		free(j);
		milter_msg_free(ms);
		milter_finish_call(ms, MV_TEMPFAIL);
		goto out;
	}
	mm->body_left -= (uint64_t)j->got;
	if (mm->body_left == 0)
		mm->step = STEP_EOM;
	milter_pkt_begin(&ms->out, SMFIC_BODY);
	milter_pkt_bytes(&ms->out, j->buf, (size_t)j->got);
	milter_pkt_end(&ms->out);
	free(j);
	ms->pending_cmd = SMFIC_BODY;
	ms->then = step_then;
	if (ms->protocol & SMFIP_NR_BODY) {
		mconn_flush(ms);
		if (ms->state != MC_CLOSED)
			msg_step(ms);
	} else
		mconn_expect(ms, ms->mi->conf->timeouts.command);
out:
	ms->depth--;
	milter_sess_unref(ms);
}

/* read_chunk - the next chunk of the body, read on a worker so a cold
 * queue file never stalls the loop */
static void
read_chunk(struct milter_sess *ms)
{
	struct milter_msg *mm = ms->msg;
	struct read_job *j = malloc(sizeof(*j));

	if (j == NULL) {
		milter_msg_free(ms);
		milter_finish_call(ms, MV_TEMPFAIL);
		return;
	}
	j->ms = ms;
	j->gen = mm->gen;
	j->fd = mm->body_fd;
	j->want = mm->body_left < MILTER_CHUNK ? (size_t)mm->body_left :
		MILTER_CHUNK;
	j->got = 0;
	j->err = 0;
	mm->reading = true;
	ms->depth++;
	if (sc_work_submit_inst(ms->mi->inst, read_work, read_done, j) != 0) {
		ms->depth--;
		mm->reading = false;
		free(j);
		milter_msg_free(ms);
		milter_finish_call(ms, MV_TEMPFAIL);
	}
}

/* ---- actions at end of message ---- */

/* allowed - was the action negotiated? */
static bool
allowed(struct milter_sess *ms, char cmd)
{
	uint32_t need;

	switch (cmd) {
	case SMFIR_ADDHEADER:
	case SMFIR_INSHEADER:
		need = SMFIF_ADDHDRS;
		break;
	case SMFIR_CHGHEADER:
		need = SMFIF_CHGHDRS;
		break;
	case SMFIR_REPLBODY:
		need = SMFIF_CHGBODY;
		break;
	case SMFIR_ADDRCPT:
		need = SMFIF_ADDRCPT;
		break;
	case SMFIR_ADDRCPT_PAR:
		need = SMFIF_ADDRCPT_PAR;
		break;
	case SMFIR_DELRCPT:
		need = SMFIF_DELRCPT;
		break;
	case SMFIR_CHGFROM:
		need = SMFIF_CHGFROM;
		break;
	case SMFIR_QUARANTINE:
		need = SMFIF_QUARANTINE;
		break;
	default:
		return false;
	}
	return (ms->actions & need) != 0;
}

int
milter_msg_action(struct milter_sess *ms, const struct milter_reply *r)
{
	struct milter_msg *mm = ms->msg;
	struct sc_message *m = msg_of(ms);
	int rc = 0;
	char why[160];

	if (!allowed(ms, r->cmd)) {
		snprintf(why, sizeof(why), "%s without negotiating it",
			 milter_reply_name(r->cmd));
		mconn_fail(ms, why);
		return -1;
	}
	if (m == NULL || mm == NULL)
		return 0;	/* nobody to apply it to: keep reading */
	switch (r->cmd) {
	case SMFIR_ADDHEADER:
		rc = sc_message_header_insert(m, SC_HEADER_BOTTOM, r->name,
					      r->value);
		break;
	case SMFIR_INSHEADER:
		rc = sc_message_header_insert(m, r->index, r->name, r->value);
		break;
	case SMFIR_CHGHEADER:
		rc = sc_message_header_change(m, r->name,
					      r->index ? r->index : 1,
					      r->value[0] ? r->value : NULL);
		if (rc == 1)	/* no such field: libmilter adds it */
			rc = r->value[0] ? sc_message_header_insert(m,
				SC_HEADER_BOTTOM, r->name, r->value) : 0;
		break;
	case SMFIR_REPLBODY:
		if (!mm->replacing) {
			rc = sc_message_body_replace_begin(m);
			mm->replacing = rc == 0;
		}
		if (rc == 0)
			rc = sc_message_body_replace_write(m, r->data, r->len);
		break;
	case SMFIR_ADDRCPT:
	case SMFIR_ADDRCPT_PAR:
		rc = sc_message_rcpt_add(m, r->addr, r->args);
		break;
	case SMFIR_DELRCPT:
		rc = sc_message_rcpt_delete(m, r->addr);
		if (rc == 1) {
			sc_log_session(SC_LOG_NOTICE, ms->s, "milter %s: "
				       "delrcpt <%s>: not a recipient",
				       sc_instance_name(ms->mi->inst),
				       r->addr);
			rc = 0;
		}
		break;
	case SMFIR_CHGFROM:
		rc = sc_message_set_sender(m, r->addr, r->args);
		break;
	case SMFIR_QUARANTINE:
		rc = sc_message_quarantine(m, r->text);
		if (rc == 0)
			sc_log_session(SC_LOG_NOTICE, ms->s, "milter %s: "
				       "quarantined: %s",
				       sc_instance_name(ms->mi->inst),
				       r->text);
		break;
	}
	if (rc != 0) {
		snprintf(why, sizeof(why), "%s failed: %s",
			 milter_reply_name(r->cmd), strerror(errno));
		mconn_fail(ms, why);
		return -1;
	}
	mm->edited = true;
	ms->mi->n_edits++;
	if (sc_log_enabled(SC_LOG_DEBUG))
		sc_log_session(SC_LOG_DEBUG, ms->s, "milter %s: %s%s%s",
			       sc_instance_name(ms->mi->inst),
			       milter_reply_name(r->cmd),
			       r->name ? " " : "", r->name ? r->name : "");
	return 0;
}

/* ---- the hook ---- */

static void
build_message(struct milter_sess *ms)
{
	msg_step(ms);
}

enum sc_result
milter_hook_data_post(struct sc_hook_call *call, void *data)
{
	struct milter_inst *mi = data;
	struct sc_session *s = sc_hook_session(call);
	struct sc_message *m = sc_hook_message(call);
	struct milter_sess *ms;
	struct milter_msg *mm;
	enum sc_result res;

	if (s == NULL || m == NULL)
		return SC_CONT;
	ms = milter_sess_get(mi, s);
	if (ms != NULL && !ms->skip && ms->msg_discard &&
	    ms->failed != MV_FAILED && !ms->conn_accepted) {
		/* DISCARD answered in the envelope */
		sc_message_discard(m);
		ms->in_message = false;
		return SC_CONT;
	}
	ms = milter_stage_begin(call, data, true, &res);
	if (ms == NULL)
		return res;
	free(ms->queue_id);
	ms->queue_id = sc_message_queue_id(m) ?
		strdup(sc_message_queue_id(m)) : NULL;
	milter_msg_free(ms);
	mm = calloc(1, sizeof(*mm));
	if (mm == NULL) {
		sc_reply_set(call, 451, "4.3.0", "Error: out of memory");
		return SC_DENYSOFT;
	}
	mm->body_fd = -1;
	mm->gen = ++ms->msg_gen;
	mm->body_left = sc_message_body_size(m);
	ms->msg = mm;
	return milter_stage_run(ms, call, build_message, step_then);
}
