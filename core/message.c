/* SPDX-License-Identifier: MIT */
/*
 * core/message.c - the message API's life cycle (satchel/message.h): the
 * message of a queue transaction, the header block followed as data
 * streams in and parsed at the end of data, the fields put in front of the
 * data, sc_hook_message, and the plan queue.c follows to rewrite the queue
 * file once at commit; also the field helpers message_edit.c shares. Loop
 * thread only, except the plan's data, which the queue's pool job reads
 * after the loop let go of the message.
 */
#include "message_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* the capture gives up a little past the limit: the refusal needs to
 * know only that the block is too large */
#define CAPTURE_MAX	(SC_MESSAGE_HEADER_MAX + 1024u)

/* ---- fields ---- */

void
sc_msg_field_clear(struct msg_field *f)
{
	free(f->raw);
	free(f->name);
	free(f->value);
	free(f->unfolded);
	memset(f, 0, sizeof(*f));
}

bool
sc_msg_ftext(unsigned char ch)
{
	return ch >= 33 && ch <= 126 && ch != ':';
}

/* field_from_raw - takes raw (malloc'd, len bytes, NUL-ended); the name
 * is what precedes the colon, white space before it trimmed */
int
sc_msg_field_from_raw(struct msg_field *f, char *raw, size_t len)
{
	const char *colon = memchr(raw, ':', len);
	size_t nl;

	memset(f, 0, sizeof(*f));
	if (colon == NULL)
		return -1;
	nl = (size_t)(colon - raw);
	while (nl > 0 && (raw[nl - 1] == ' ' || raw[nl - 1] == '\t'))
		nl--;
	f->name = strndup(raw, nl);
	if (f->name == NULL)
		return -1;
	f->raw = raw;
	f->len = len;
	return 0;
}

bool
sc_msg_name_ok(const char *name)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!sc_msg_ftext((unsigned char)name[i]))
			return false;
	return true;
}

/* field_build - "name:" value CRLF, line breaks in value as CRLF, each
 * followed by white space; NULL with errno */
char *
sc_msg_field_build(const char *name, const char *value, size_t *len_r)
{
	size_t nl = strlen(name), vl = strlen(value), o = 0;
	char *raw;

	if (!sc_msg_name_ok(name)) {
		errno = EINVAL;
		return NULL;
	}
	raw = malloc(nl + 2 + 2 * vl + 3);
	if (raw == NULL)
		return NULL;
	memcpy(raw, name, nl);
	o = nl;
	raw[o++] = ':';
	if (value[0] != ' ' && value[0] != '\t')
		raw[o++] = ' ';
	for (size_t i = 0; i < vl; i++) {
		char ch = value[i];

		if (ch == '\r' && value[i + 1] == '\n')
			ch = value[++i];
		else if (ch == '\r')
			goto bad;
		if (ch == '\n') {
			/* folding only: a break must be followed by WSP */
			if (value[i + 1] != ' ' && value[i + 1] != '\t')
				goto bad;
			raw[o++] = '\r';
		}
		raw[o++] = ch;
	}
	raw[o++] = '\r';
	raw[o++] = '\n';
	raw[o] = '\0';
	*len_r = o;
	return raw;
bad:
	free(raw);
	errno = EINVAL;
	return NULL;
}

void
sc_msg_field_uncache(struct msg_field *f)
{
	free(f->value);
	free(f->unfolded);
	f->value = f->unfolded = NULL;
}

/* ---- life cycle (queue.c) ---- */

struct sc_message *
sc_message_new(struct sc_queue_tx *tx, const char *id, const char *path,
	       const struct sc_envelope *env, struct sc_session *s)
{
	struct sc_message *m = calloc(1, sizeof(*m));

	if (m == NULL)
		return NULL;
	m->tx = tx;
	m->session = s;
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->repl_fd = m->new_fd = -1;
	m->path = strdup(path);
	m->sender = strdup(env->sender != NULL ? env->sender : "");
	m->sender_params = strdup(env->params != NULL ? env->params : "");
	m->auth = env->auth_user != NULL ? strdup(env->auth_user) : NULL;
	m->client = env->client_ip != NULL ? strdup(env->client_ip) : NULL;
	m->helo = env->helo != NULL ? strdup(env->helo) : NULL;
	m->r = calloc(env->rcpt_count + 1, sizeof(*m->r));
	m->rcap = env->rcpt_count + 1;
	if (m->path == NULL || m->sender == NULL || m->sender_params == NULL ||
	    m->r == NULL || (env->auth_user != NULL && m->auth == NULL) ||
	    (env->client_ip != NULL && m->client == NULL) ||
	    (env->helo != NULL && m->helo == NULL))
		goto fail;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const char *p = env->rcpts[i].params;

		m->r[i].addr = strdup(env->rcpts[i].address);
		m->r[i].params = strdup(p != NULL ? p : "");
		m->nr++;
		if (m->r[i].addr == NULL || m->r[i].params == NULL)
			goto fail;
	}
	/* the session knows its message from the start, so its close can
	 * always tell the message (sc_message_session_gone) */
	if (s != NULL)
		sc_session_set_message(s, m);
	return m;
fail:
	sc_message_free(m);
	return NULL;
}

void
sc_msg_drop_new_body(struct sc_message *m)
{
	if (m->new_fd >= 0)
		close(m->new_fd);
	if (m->new_path != NULL)
		unlink(m->new_path);
	free(m->new_path);
	m->new_fd = -1;
	m->new_path = NULL;
}

void
sc_msg_drop_repl_body(struct sc_message *m)
{
	if (m->repl_fd >= 0)
		close(m->repl_fd);
	if (m->repl_path != NULL)
		unlink(m->repl_path);
	free(m->repl_path);
	m->repl_fd = -1;
	m->repl_path = NULL;
}

void
sc_message_free(struct sc_message *m)
{
	if (m == NULL)
		return;
	if (m->session != NULL && sc_session_message(m->session) == m)
		sc_session_set_message(m->session, NULL);
	sc_msg_drop_new_body(m);
	sc_msg_drop_repl_body(m);
	for (size_t i = 0; i < m->npre; i++)
		sc_msg_field_clear(&m->pre[i]);
	free(m->pre);
	for (size_t i = 0; i < m->n; i++)
		sc_msg_field_clear(&m->f[i]);
	free(m->f);
	free(m->cbuf);
	for (size_t i = 0; i < m->nr; i++) {
		free(m->r[i].addr);
		free(m->r[i].params);
	}
	free(m->r);
	free(m->env_rcpts);
	free(m->sender);
	free(m->sender_params);
	free(m->auth);
	free(m->client);
	free(m->helo);
	free(m->quarantine);
	free(m->path);
	free(m);
}

void
sc_message_session_gone(struct sc_message *m)
{
	m->session = NULL;
}

/* sc_message_prefix - the fields inserted before the data, once, as the
 * bytes to write in front of it (malloc'd; NULL when none) */
char *
sc_message_prefix(struct sc_message *m, size_t *len_r)
{
	size_t len = 0, o = 0;
	char *buf;

	*len_r = 0;
	if (m->pre_written)
		return NULL;
	m->pre_written = true;
	for (size_t i = 0; i < m->npre; i++)
		len += m->pre[i].len;
	if (len == 0)
		return NULL;
	buf = malloc(len);
	if (buf != NULL)
		for (size_t i = 0; i < m->npre; i++) {
			memcpy(buf + o, m->pre[i].raw, m->pre[i].len);
			o += m->pre[i].len;
		}
	for (size_t i = 0; i < m->npre; i++)
		sc_msg_field_clear(&m->pre[i]);
	m->npre = 0;
	*len_r = buf != NULL ? len : 0;
	return buf;
}

static void
cap_end(struct sc_message *m, size_t sep)
{
	m->header_len = m->line_start;
	m->sep_len = sep;
	m->cap = CAP_DONE;
}

/* sc_message_capture - follows the header block through the data; a line
 * that is neither a field nor a continuation of one ends it (the body
 * then starts with that line, as there is no empty line) */
void
sc_message_capture(struct sc_message *m, const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len && m->cap != CAP_DONE; i++) {
		unsigned char ch = (unsigned char)p[i];
		size_t pos = m->clen + i;

		switch (m->cap) {
		case CAP_BOL:
			m->line_start = pos;
			if (ch == '\r')
				m->cap = CAP_CR;
			else if (ch == '\n')
				cap_end(m, 1);
			else if ((ch == ' ' || ch == '\t') && m->cap_fields)
				m->cap = CAP_FIELD;
			else if (sc_msg_ftext(ch)) {
				m->cap = CAP_NAME;
				m->name_len = 1;
			} else
				cap_end(m, 0);
			break;
		case CAP_NAME:
			if (ch == ':') {
				m->cap = CAP_FIELD;
				m->cap_fields++;
			} else if (ch == ' ' || ch == '\t')
				m->cap = CAP_NAME_WSP;
			else if (!sc_msg_ftext(ch) || ++m->name_len > NAME_MAX_LEN)
				cap_end(m, 0);
			break;
		case CAP_NAME_WSP:
			if (ch == ':') {
				m->cap = CAP_FIELD;
				m->cap_fields++;
			} else if (ch != ' ' && ch != '\t')
				cap_end(m, 0);
			break;
		case CAP_FIELD:
			if (ch == '\n')
				m->cap = CAP_BOL;
			break;
		case CAP_CR:
			cap_end(m, ch == '\n' ? 2 : 0);
			break;
		case CAP_DONE:
			break;
		}
	}
	if (m->cap_overflow || i == 0)
		return;
	if (m->clen + i > CAPTURE_MAX) {
		m->cap_overflow = true;
		m->cap = CAP_DONE;
		return;
	}
	if (m->clen + i > m->ccap) {
		size_t nc = m->ccap ? m->ccap : 4096;
		char *nb;

		while (nc < m->clen + i)
			nc *= 2;
		nb = realloc(m->cbuf, nc);
		if (nb == NULL) {
			m->cap_overflow = true;	/* refused, never half-read */
			m->cap = CAP_DONE;
			return;
		}
		m->cbuf = nb;
		m->ccap = nc;
	}
	memcpy(m->cbuf + m->clen, p, i);
	m->clen += i;
}

int
sc_msg_fields_grow(struct sc_message *m, size_t want)
{
	struct msg_field *nf;
	size_t nc;

	if (want <= m->fcap)
		return 0;
	nc = m->fcap ? m->fcap * 2 : 16;
	while (nc < want)
		nc *= 2;
	nf = realloc(m->f, nc * sizeof(*nf));
	if (nf == NULL)
		return -1;
	m->f = nf;
	m->fcap = nc;
	return 0;
}

/* parse_block - the captured bytes [0, header_len) into fields */
static int
parse_block(struct sc_message *m)
{
	size_t i = 0;

	while (i < m->header_len) {
		size_t end = i;
		char *raw;

		/* the field runs to the LF before a line not starting with
		 * white space (or the end of the block) */
		for (;;) {
			const char *lf = memchr(m->cbuf + end, '\n',
						m->header_len - end);

			end = lf != NULL ? (size_t)(lf - m->cbuf) + 1 :
			      m->header_len;
			if (end >= m->header_len ||
			    (m->cbuf[end] != ' ' && m->cbuf[end] != '\t'))
				break;
		}
		/* a last field without its line end (BDAT data) gets one if
		 * the file is rewritten */
		raw = malloc(end - i + 3);
		if (raw == NULL || sc_msg_fields_grow(m, m->n + 1) < 0) {
			free(raw);
			return -1;
		}
		memcpy(raw, m->cbuf + i, end - i);
		if (m->cbuf[end - 1] != '\n') {
			memcpy(raw + end - i, "\r\n", 3);
			if (sc_msg_field_from_raw(&m->f[m->n], raw, end - i + 2) < 0) {
				free(raw);
				return -1;
			}
		} else {
			raw[end - i] = '\0';
			if (sc_msg_field_from_raw(&m->f[m->n], raw, end - i) < 0) {
				free(raw);
				return -1;
			}
		}
		m->header_bytes += m->f[m->n].len;
		m->n++;
		i = end;
	}
	return 0;
}

int
sc_message_finish(struct sc_message *m)
{
	uint64_t data_off = 0, size = 0;

	if (m == NULL || m->state != M_RECEIVING) {
		errno = EINVAL;
		return -1;
	}
	if (!m->pre_written)
		sc_queue_tx_data_flush_prefix(m->tx);
	if (sc_queue_tx_data_sync(m->tx, &data_off, &size) < 0) {
		errno = EIO;
		return -1;
	}
	if (m->cap_overflow) {
		errno = E2BIG;
		return -1;
	}
	if (m->cap != CAP_DONE) {
		/* the data ended inside the header block: all of it is the
		 * block, except a line that was not a field yet */
		m->header_len = m->cap == CAP_NAME || m->cap == CAP_NAME_WSP ||
			m->cap == CAP_CR ? m->line_start : m->clen;
		m->sep_len = 0;
		m->cap = CAP_DONE;
	}
	if (m->header_len > SC_MESSAGE_HEADER_MAX) {
		errno = E2BIG;
		return -1;
	}
	if (parse_block(m) < 0) {
		errno = ENOMEM;
		return -1;
	}
	free(m->cbuf);
	m->cbuf = NULL;
	m->clen = m->ccap = 0;
	m->data_off = data_off;
	m->body_off = data_off + m->header_len + m->sep_len;
	m->body_size = size - m->header_len - m->sep_len;
	m->state = M_OPEN;
	return 0;
}

void
sc_message_close(struct sc_message *m)
{
	if (m == NULL)
		return;
	sc_msg_drop_new_body(m);
	m->state = M_CLOSED;
	if (m->session != NULL && sc_session_message(m->session) == m)
		sc_session_set_message(m->session, NULL);
	m->session = NULL;
}

/* ---- reading ---- */

struct sc_message *
sc_hook_message(struct sc_hook_call *call)
{
	struct sc_session *s;
	struct sc_message *m;

	if (call == NULL || sc_hook_which(call) != SC_HOOK_DATA_POST ||
	    sc_hook_cancelled(call) || (s = sc_hook_session(call)) == NULL)
		return NULL;
	m = sc_session_message(s);
	return m != NULL && m->state == M_OPEN ? m : NULL;
}

struct sc_message *
sc_queue_tx_message(struct sc_queue_tx *tx)
{
	return tx != NULL ? sc_queue_tx_msg(tx) : NULL;
}

/* ---- the commit plan (queue.c) ---- */

/* sc_message_plan - what the queue needs to store the message: when it was
 * edited, the new envelope, the header block with its empty line and the
 * body's source (an fd of the plan's own, offset, size), and the number of
 * Received: fields. Called once, at commit, on the loop; the message is
 * closed to edits from then on. 0 (nothing to rewrite: plan->rewrite
 * false), or -1 with errno. */
int
sc_message_plan(struct sc_message *m, struct sc_message_plan *plan)
{
	size_t o = 0;

	memset(plan, 0, sizeof(*plan));
	plan->body_fd = -1;
	plan->quarantine = m->quarantine;
	if (m->state == M_OPEN)
		sc_message_close(m);
	if (!m->dirty)
		return 0;
	m->env_rcpts = calloc(m->nr + 1, sizeof(*m->env_rcpts));
	plan->block = malloc(m->header_bytes + 2);
	if (m->env_rcpts == NULL || plan->block == NULL) {
		free(plan->block);
		plan->block = NULL;
		errno = ENOMEM;
		return -1;
	}
	for (size_t i = 0; i < m->nr; i++) {
		m->env_rcpts[i].address = m->r[i].addr;
		m->env_rcpts[i].params = m->r[i].params;
	}
	plan->env.sender = m->sender;
	plan->env.params = m->sender_params;
	plan->env.rcpt_count = m->nr;
	plan->env.rcpts = m->env_rcpts;
	plan->env.auth_user = m->auth;
	plan->env.client_ip = m->client;
	plan->env.helo = m->helo;
	for (size_t i = 0; i < m->n; i++) {
		memcpy(plan->block + o, m->f[i].raw, m->f[i].len);
		o += m->f[i].len;
		if (strcasecmp(m->f[i].name, "Received") == 0)
			plan->received++;
	}
	/* the empty line: kept when there was one, added when the body is
	 * new (there is no telling a body line from a field otherwise) */
	if (m->sep_len > 0 || m->repl_path != NULL || m->body_size > 0) {
		memcpy(plan->block + o, "\r\n", 2);
		o += 2;
	}
	plan->block_len = o;
	plan->body_off = m->repl_path != NULL ? 0 : m->body_off;
	plan->body_size = m->body_size;
	plan->body_fd = open(m->repl_path != NULL ? m->repl_path : m->path,
			     O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (plan->body_fd < 0) {
		int e = errno;

		free(plan->block);
		plan->block = NULL;
		errno = e;
		return -1;
	}
	plan->rewrite = true;
	return 0;
}
