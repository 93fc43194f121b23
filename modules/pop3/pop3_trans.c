/* SPDX-License-Identifier: MIT */
/*
 * pop3_trans.c - the TRANSACTION state's commands on the event loop thread
 * (STAT, LIST, UIDL, RETR, TOP, DELE, RSET, NOOP) over the listing the
 * login scan made, and QUIT: in TRANSACTION it enters UPDATE and hands the
 * messages marked deleted to a pool job (pop3_maildir.c) that removes
 * them durably before the +OK; a dropped connection deletes nothing.
 */
#include "pop3_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* pop_parse_num - a message number or line count: decimal digits only */
static bool
pop_parse_num(const char *s, uint64_t *n_r)
{
	uint64_t n = 0;

	if (*s == '\0' || strlen(s) > 18)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*n_r = n;
	return true;
}

/* pop_msg_arg - the message a numeric argument names, or NULL after an
 * error reply (bad number, out of range, deleted). */
static struct pop_msg *
pop_msg_arg(struct pop_sess *ps, const char *arg, const char **rest_r)
{
	char num[24];
	size_t n = strcspn(arg, " ");
	uint64_t i;

	if (rest_r != NULL) {
		*rest_r = arg + n;
		while (**rest_r == ' ')
			(*rest_r)++;
	}
	if (n == 0 || n >= sizeof(num)) {
		pop_reply(ps, "-ERR Invalid message number");
		return NULL;
	}
	memcpy(num, arg, n);
	num[n] = '\0';
	if (!pop_parse_num(num, &i) || i == 0) {
		pop_reply(ps, "-ERR Invalid message number: %s", num);
		return NULL;
	}
	if (i > ps->nmsg) {
		pop_reply(ps, "-ERR There's no message %" PRIu64 ".", i);
		return NULL;
	}
	if (ps->msgs[i - 1].deleted) {
		pop_reply(ps, "-ERR Message %" PRIu64 " is deleted.", i);
		return NULL;
	}
	return &ps->msgs[i - 1];
}

void
pop_cmd_stat(struct pop_sess *ps, const char *arg)
{
	uint64_t size = 0, count = 0;
	size_t i;

	(void)arg;
	for (i = 0; i < ps->nmsg; i++) {
		if (!ps->msgs[i].deleted) {
			count++;
			size += ps->msgs[i].vsize;
		}
	}
	pop_reply(ps, "+OK %" PRIu64 " %" PRIu64, count, size);
}

static void
pop_cmd_list_uidl(struct pop_sess *ps, const char *arg, bool uidl)
{
	struct pop_msg *m;
	size_t i;

	if (*arg != '\0') {
		m = pop_msg_arg(ps, arg, NULL);
		if (m == NULL)
			return;
		if (uidl)
			pop_reply(ps, "+OK %zu %s",
				  (size_t)(m - ps->msgs) + 1, m->uid);
		else
			pop_reply(ps, "+OK %zu %" PRIu64,
				  (size_t)(m - ps->msgs) + 1, m->vsize);
		return;
	}
	pop_reply(ps, "+OK");
	for (i = 0; i < ps->nmsg; i++) {
		m = &ps->msgs[i];
		if (m->deleted)
			continue;
		if (uidl)
			pop_reply(ps, "%zu %s", i + 1, m->uid);
		else
			pop_reply(ps, "%zu %" PRIu64, i + 1, m->vsize);
	}
	pop_reply(ps, ".");
}

void
pop_cmd_list(struct pop_sess *ps, const char *arg)
{
	pop_cmd_list_uidl(ps, arg, false);
}

void
pop_cmd_uidl(struct pop_sess *ps, const char *arg)
{
	pop_cmd_list_uidl(ps, arg, true);
}

void
pop_cmd_retr(struct pop_sess *ps, const char *arg)
{
	struct pop_msg *m = pop_msg_arg(ps, arg, NULL);

	if (m != NULL)
		pop_retr_start(ps, m, false, 0);
}

void
pop_cmd_top(struct pop_sess *ps, const char *arg)
{
	const char *rest = NULL;
	struct pop_msg *m;
	uint64_t lines;

	m = pop_msg_arg(ps, arg, &rest);
	if (m == NULL)
		return;
	if (!pop_parse_num(rest, &lines)) {
		pop_reply(ps, "-ERR Invalid number of lines");
		return;
	}
	pop_retr_start(ps, m, true, lines);
}

void
pop_cmd_dele(struct pop_sess *ps, const char *arg)
{
	struct pop_msg *m = pop_msg_arg(ps, arg, NULL);

	if (m == NULL)
		return;
	m->deleted = true;
	pop_reply(ps, "+OK Marked to be deleted.");
}

void
pop_cmd_rset(struct pop_sess *ps, const char *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < ps->nmsg; i++)
		ps->msgs[i].deleted = false;
	pop_reply(ps, "+OK");
}

void
pop_cmd_noop(struct pop_sess *ps, const char *arg)
{
	(void)arg;
	pop_reply(ps, "+OK");
}

static void
pop_update_done(void *arg)
{
	struct pop_job *j = arg;
	struct pop_sess *ps = j->ps;

	if (ps->s != NULL) {
		sc_log_session(SC_LOG_INFO, ps->s,
			       "pop3: logout user=%s deleted=%zu failed=%zu",
			       ps->login, j->ndel - j->failed, j->failed);
		if (j->failed > 0)
			pop_reply(ps, "-ERR [SYS/TEMP] Some deleted messages "
				  "were not removed");
		else
			pop_reply(ps, "+OK Logging out, messages deleted.");
		sc_session_set_busy(ps->s, false);
		pop_close(ps);
	}
	pop_job_free(j);
	pop_sess_unref(ps);
}

void
pop_cmd_quit(struct pop_sess *ps, const char *arg)
{
	struct pop_job *j;
	size_t i;

	(void)arg;
	if (ps->state != POP_TRANSACTION) {
		pop_reply(ps, "+OK Logging out.");
		pop_close(ps);
		return;
	}
	ps->state = POP_UPDATE;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto fail;
	j->ps = ps;
	j->pd = ps->pd;
	for (i = 0; i < ps->nmsg; i++)
		if (ps->msgs[i].deleted)
			j->ndel++;
	if (j->ndel == 0) {
		pop_job_free(j);
		sc_log_session(SC_LOG_INFO, ps->s,
			       "pop3: logout user=%s deleted=0", ps->login);
		pop_reply(ps, "+OK Logging out.");
		pop_close(ps);
		return;
	}
	j->del = calloc(j->ndel, sizeof(*j->del));
	j->mbox = strdup(ps->mbox);
	if (j->del == NULL || j->mbox == NULL)
		goto fail;
	j->ndel = 0;
	for (i = 0; i < ps->nmsg; i++) {
		if (!ps->msgs[i].deleted)
			continue;
		j->del[j->ndel] = strdup(ps->msgs[i].name);
		if (j->del[j->ndel++] == NULL)
			goto fail;
	}
	pop_pause(ps);
	sc_session_set_busy(ps->s, true);
	ps->refs++;
	if (sc_work_submit_inst(ps->pd->inst, pop_job_update,
				pop_update_done, j) < 0) {
		ps->refs--;
		goto fail;
	}
	return;
fail:
	if (j != NULL)
		pop_job_free(j);
	pop_reply(ps, "-ERR [SYS/TEMP] Some deleted messages were not "
		  "removed");
	pop_close(ps);
}
