/* SPDX-License-Identifier: MIT */
/*
 * core/message.c - the message API (satchel/message.h): the header block
 * followed as data streams into a queue transaction, parsed into fields
 * at the end of data; reads and edits of the fields, the body (an fd on
 * the queue file, or a replacement file beside it) and the envelope;
 * discard and quarantine; and the plan queue.c follows to rewrite the
 * queue file once at commit. Loop thread only, except the plan's data,
 * which the queue's pool job reads after the loop let go of the message.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define NAME_MAX_LEN	997	/* a field name: one line, 998 with ':' */
/* the capture gives up a little past the limit: the refusal needs to
 * know only that the block is too large */
#define CAPTURE_MAX	(SC_MESSAGE_HEADER_MAX + 1024u)

enum cap_state {
	CAP_BOL = 0,	/* at the start of a line                      */
	CAP_NAME,	/* in a field name                             */
	CAP_NAME_WSP,	/* white space between the name and the colon  */
	CAP_FIELD,	/* after the colon, up to the LF               */
	CAP_CR,		/* a CR at the start of a line                 */
	CAP_DONE,	/* the header block ended                      */
};

enum msg_state { M_RECEIVING = 0, M_OPEN, M_CLOSED };

struct field {
	char *raw;		/* the whole field with its CRLF, NUL-ended */
	size_t len;
	char *name;
	char *value;		/* cached, or NULL */
	char *unfolded;		/* cached, or NULL */
};

struct rcpt {
	char *addr, *params;
};

struct sc_message {
	struct sc_queue_tx *tx;
	struct sc_session *session;	/* while it is the session's */
	char id[17];
	char *path;			/* the queue file (in tmp/)    */
	enum msg_state state;
	/* before the first byte of data: fields to put in front of it */
	struct field *pre;
	size_t npre;
	bool pre_written;
	/* the header block as it streams by */
	enum cap_state cap;
	char *cbuf;
	size_t clen, ccap;
	size_t line_start, name_len, cap_fields;
	size_t header_len, sep_len;	/* bytes of data                */
	bool cap_overflow;
	/* the parsed header block */
	struct field *f;
	size_t n, fcap;
	size_t header_bytes;
	/* the body */
	uint64_t data_off, body_off, body_size;
	int repl_fd;			/* the replacement in force     */
	char *repl_path;
	int new_fd;			/* the replacement being written */
	char *new_path;
	uint64_t new_size;
	bool new_cr;
	unsigned serial;
	/* the envelope */
	char *sender, *sender_params, *auth, *client, *helo;
	struct rcpt *r;
	size_t nr, rcap;
	struct sc_env_rcpt *env_rcpts;	/* for the plan */
	/* outcome */
	bool dirty, discard;
	char *quarantine;
};

/* ---- fields ---- */

static void
field_clear(struct field *f)
{
	free(f->raw);
	free(f->name);
	free(f->value);
	free(f->unfolded);
	memset(f, 0, sizeof(*f));
}

static bool
ftext(unsigned char ch)
{
	return ch >= 33 && ch <= 126 && ch != ':';
}

/* field_from_raw - takes raw (malloc'd, len bytes, NUL-ended); the name
 * is what precedes the colon, white space before it trimmed */
static int
field_from_raw(struct field *f, char *raw, size_t len)
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

static bool
name_ok(const char *name)
{
	size_t len = name != NULL ? strlen(name) : 0;

	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!ftext((unsigned char)name[i]))
			return false;
	return true;
}

/* field_build - "name:" value CRLF, line breaks in value as CRLF, each
 * followed by white space; NULL with errno */
static char *
field_build(const char *name, const char *value, size_t *len_r)
{
	size_t nl = strlen(name), vl = strlen(value), o = 0;
	char *raw;

	if (!name_ok(name)) {
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

static void
field_uncache(struct field *f)
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
	return m;
fail:
	sc_message_free(m);
	return NULL;
}

static void
drop_new_body(struct sc_message *m)
{
	if (m->new_fd >= 0)
		close(m->new_fd);
	if (m->new_path != NULL)
		unlink(m->new_path);
	free(m->new_path);
	m->new_fd = -1;
	m->new_path = NULL;
}

static void
drop_repl_body(struct sc_message *m)
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
	drop_new_body(m);
	drop_repl_body(m);
	for (size_t i = 0; i < m->npre; i++)
		field_clear(&m->pre[i]);
	free(m->pre);
	for (size_t i = 0; i < m->n; i++)
		field_clear(&m->f[i]);
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
		field_clear(&m->pre[i]);
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
			else if (ftext(ch)) {
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
			else if (!ftext(ch) || ++m->name_len > NAME_MAX_LEN)
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
	if (m->cap_overflow)
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

static int
fields_grow(struct sc_message *m, size_t want)
{
	struct field *nf;
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
		if (raw == NULL || fields_grow(m, m->n + 1) < 0) {
			free(raw);
			return -1;
		}
		memcpy(raw, m->cbuf + i, end - i);
		if (m->cbuf[end - 1] != '\n') {
			memcpy(raw + end - i, "\r\n", 3);
			if (field_from_raw(&m->f[m->n], raw, end - i + 2) < 0) {
				free(raw);
				return -1;
			}
		} else {
			raw[end - i] = '\0';
			if (field_from_raw(&m->f[m->n], raw, end - i) < 0) {
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
	if (m->session != NULL)
		sc_session_set_message(m->session, m);
	return 0;
}

void
sc_message_close(struct sc_message *m)
{
	if (m == NULL)
		return;
	drop_new_body(m);
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

const char *
sc_message_queue_id(const struct sc_message *m)
{
	return m->id;
}

size_t
sc_message_header_count(const struct sc_message *m)
{
	return m->n;
}

const char *
sc_message_header_name(const struct sc_message *m, size_t i)
{
	return i < m->n ? m->f[i].name : NULL;
}

static const char *
raw_value(const struct field *f, size_t *len_r)
{
	const char *v = memchr(f->raw, ':', f->len) + 1;
	size_t len = f->len - (size_t)(v - f->raw);

	if (len >= 1 && v[len - 1] == '\n')
		len--;
	if (len >= 1 && v[len - 1] == '\r')
		len--;
	*len_r = len;
	return v;
}

const char *
sc_message_header_value(const struct sc_message *m, size_t i)
{
	struct field *f;
	size_t len;
	const char *v;

	if (i >= m->n)
		return NULL;
	f = &m->f[i];
	if (f->value == NULL) {
		v = raw_value(f, &len);
		f->value = strndup(v, len);
	}
	return f->value;
}

const char *
sc_message_header_unfolded(const struct sc_message *m, size_t i)
{
	struct field *f;
	size_t len, o = 0, s = 0;
	const char *v;

	if (i >= m->n)
		return NULL;
	f = &m->f[i];
	if (f->unfolded != NULL)
		return f->unfolded;
	v = raw_value(f, &len);
	f->unfolded = malloc(len + 1);
	if (f->unfolded == NULL)
		return NULL;
	for (size_t k = 0; k < len; k++)
		if (v[k] != '\r' && v[k] != '\n')
			f->unfolded[o++] = v[k];
	while (o > 0 && (f->unfolded[o - 1] == ' ' ||
			 f->unfolded[o - 1] == '\t'))
		o--;
	while (s < o && (f->unfolded[s] == ' ' || f->unfolded[s] == '\t'))
		s++;
	memmove(f->unfolded, f->unfolded + s, o - s);
	f->unfolded[o - s] = '\0';
	return f->unfolded;
}

const char *
sc_message_header_raw(const struct sc_message *m, size_t i, size_t *len_r)
{
	if (i >= m->n)
		return NULL;
	if (len_r != NULL)
		*len_r = m->f[i].len;
	return m->f[i].raw;
}

ssize_t
sc_message_header_find(const struct sc_message *m, const char *name,
		       size_t nth)
{
	if (name == NULL || nth == 0)
		return -1;
	for (size_t i = 0; i < m->n; i++)
		if (strcasecmp(m->f[i].name, name) == 0 && --nth == 0)
			return (ssize_t)i;
	return -1;
}

/* ---- editing the header block ---- */

static int
editable(const struct sc_message *m)
{
	if (m == NULL || m->state != M_OPEN) {
		errno = m == NULL ? EINVAL : ESTALE;
		return -1;
	}
	return 0;
}

/* insert_pre - before the data: into the prefix (smtp's Received:) */
static int
insert_pre(struct sc_message *m, size_t index, char *raw, size_t len)
{
	struct field *np = realloc(m->pre, (m->npre + 1) * sizeof(*np));

	if (np == NULL) {
		free(raw);
		return -1;
	}
	m->pre = np;
	if (index > m->npre)
		index = m->npre;
	memmove(&m->pre[index + 1], &m->pre[index],
		(m->npre - index) * sizeof(*np));
	if (field_from_raw(&m->pre[index], raw, len) < 0) {
		memmove(&m->pre[index], &m->pre[index + 1],
			(m->npre - index) * sizeof(*np));
		free(raw);
		return -1;
	}
	m->npre++;
	return 0;
}

int
sc_message_header_insert(struct sc_message *m, size_t index,
			 const char *name, const char *value)
{
	struct field nf;
	size_t len;
	char *raw;

	if (m == NULL || name == NULL || value == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (m->state == M_RECEIVING && m->pre_written) {
		errno = ESTALE;	/* data already went out */
		return -1;
	}
	if (m->state != M_RECEIVING && editable(m) < 0)
		return -1;
	raw = field_build(name, value, &len);
	if (raw == NULL)
		return -1;
	if (m->state == M_RECEIVING)
		return insert_pre(m, index, raw, len);
	if (m->header_bytes + len > SC_MESSAGE_HEADER_MAX) {
		free(raw);
		errno = E2BIG;
		return -1;
	}
	if (fields_grow(m, m->n + 1) < 0 || field_from_raw(&nf, raw, len) < 0) {
		free(raw);
		errno = ENOMEM;
		return -1;
	}
	if (index > m->n)
		index = m->n;
	memmove(&m->f[index + 1], &m->f[index], (m->n - index) * sizeof(nf));
	m->f[index] = nf;
	m->n++;
	m->header_bytes += len;
	m->dirty = true;
	return 0;
}

int
sc_message_header_replace(struct sc_message *m, size_t i, const char *value)
{
	struct field *f;
	size_t len;
	char *raw;

	if (editable(m) < 0)
		return -1;
	if (i >= m->n || value == NULL) {
		errno = EINVAL;
		return -1;
	}
	f = &m->f[i];
	raw = field_build(f->name, value, &len);
	if (raw == NULL)
		return -1;
	if (m->header_bytes - f->len + len > SC_MESSAGE_HEADER_MAX) {
		free(raw);
		errno = E2BIG;
		return -1;
	}
	m->header_bytes = m->header_bytes - f->len + len;
	free(f->raw);
	field_uncache(f);
	f->raw = raw;
	f->len = len;
	m->dirty = true;
	return 0;
}

int
sc_message_header_delete(struct sc_message *m, size_t i)
{
	if (editable(m) < 0)
		return -1;
	if (i >= m->n) {
		errno = EINVAL;
		return -1;
	}
	m->header_bytes -= m->f[i].len;
	field_clear(&m->f[i]);
	memmove(&m->f[i], &m->f[i + 1], (m->n - i - 1) * sizeof(*m->f));
	m->n--;
	m->dirty = true;
	return 0;
}

int
sc_message_header_change(struct sc_message *m, const char *name,
			 size_t nth, const char *value)
{
	ssize_t i;

	if (editable(m) < 0)
		return -1;
	if (!name_ok(name) || nth == 0) {
		errno = EINVAL;
		return -1;
	}
	i = sc_message_header_find(m, name, nth);
	if (i < 0)
		return 1;
	return value == NULL ? sc_message_header_delete(m, (size_t)i) :
		sc_message_header_replace(m, (size_t)i, value);
}

/* ---- the body ---- */

uint64_t
sc_message_body_size(const struct sc_message *m)
{
	return m->body_size;
}

int
sc_message_body_open(const struct sc_message *m)
{
	const char *path = m->repl_path != NULL ? m->repl_path : m->path;
	off_t off = m->repl_path != NULL ? 0 : (off_t)m->body_off;
	int fd;

	if (m->state != M_OPEN) {
		errno = ESTALE;
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (lseek(fd, off, SEEK_SET) != off) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
sc_message_body_replace_begin(struct sc_message *m)
{
	if (editable(m) < 0)
		return -1;
	drop_new_body(m);
	if (asprintf(&m->new_path, "%s.b%u", m->path, ++m->serial) < 0) {
		m->new_path = NULL;
		errno = ENOMEM;
		return -1;
	}
	m->new_fd = open(m->new_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC |
			 O_NOFOLLOW, 0600);
	if (m->new_fd < 0) {
		int e = errno;

		free(m->new_path);
		m->new_path = NULL;
		errno = e;
		return -1;
	}
	m->new_size = 0;
	m->new_cr = false;
	return 0;
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* body_put - bytes with bare CR and bare LF made CRLF (as smtp stores
 * data); a CR at the end waits in new_cr for its LF */
static int
body_put(struct sc_message *m, const char *p, size_t len)
{
	char out[16384];
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (o + 3 > sizeof(out)) {
			if (write_all(m->new_fd, out, o) < 0)
				return -1;
			m->new_size += o;
			o = 0;
		}
		if (m->new_cr) {
			m->new_cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			if (p[i] == '\n')
				continue;
		}
		if (p[i] == '\r')
			m->new_cr = true;
		else if (p[i] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
		} else
			out[o++] = p[i];
	}
	if (o > 0 && write_all(m->new_fd, out, o) < 0)
		return -1;
	m->new_size += o;
	return 0;
}

int
sc_message_body_replace_write(struct sc_message *m, const void *data,
			      size_t len)
{
	if (editable(m) < 0)
		return -1;
	if (m->new_fd < 0 || (data == NULL && len > 0)) {
		errno = EINVAL;
		return -1;
	}
	if (body_put(m, data, len) < 0) {
		int e = errno;

		drop_new_body(m);
		errno = e == ENOSPC ? e : EIO;
		return -1;
	}
	return 0;
}

int
sc_message_body_replace_end(struct sc_message *m)
{
	if (editable(m) < 0)
		return -1;
	if (m->new_fd < 0) {
		errno = EINVAL;
		return -1;
	}
	if (m->new_cr) {
		m->new_cr = false;
		if (write_all(m->new_fd, "\r\n", 2) < 0) {
			drop_new_body(m);
			errno = EIO;
			return -1;
		}
		m->new_size += 2;
	}
	drop_repl_body(m);
	m->repl_fd = m->new_fd;
	m->repl_path = m->new_path;
	m->new_fd = -1;
	m->new_path = NULL;
	m->body_size = m->new_size;
	m->dirty = true;
	return 0;
}

int
sc_message_body_replace_fd(struct sc_message *m, int fd)
{
	char buf[65536];
	ssize_t n;

	if (sc_message_body_replace_begin(m) < 0)
		return -1;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			drop_new_body(m);
			errno = e;
			return -1;
		}
		if (sc_message_body_replace_write(m, buf, (size_t)n) < 0)
			return -1;
	}
	return sc_message_body_replace_end(m);
}

/* ---- the envelope ---- */

const char *
sc_message_sender(const struct sc_message *m)
{
	return m->sender;
}

const char *
sc_message_sender_params(const struct sc_message *m)
{
	return m->sender_params;
}

size_t
sc_message_rcpt_count(const struct sc_message *m)
{
	return m->nr;
}

const char *
sc_message_rcpt(const struct sc_message *m, size_t i)
{
	return i < m->nr ? m->r[i].addr : NULL;
}

const char *
sc_message_rcpt_params(const struct sc_message *m, size_t i)
{
	return i < m->nr ? m->r[i].params : NULL;
}

/* path_arg - an address as given, one pair of < > removed and checked:
 * malloc'd local@domain ("" for the null sender when allowed), or NULL
 * with errno */
static char *
path_arg(const char *text, bool null_ok)
{
	size_t len = text != NULL ? strlen(text) : 0;
	struct sc_address a;
	const char *err = NULL;
	char *inner;

	if (text == NULL) {
		errno = EINVAL;
		return NULL;
	}
	if (len >= 2 && text[0] == '<' && text[len - 1] == '>')
		inner = strndup(text + 1, len - 2);
	else
		inner = strdup(text);
	if (inner == NULL)
		return NULL;
	if (strpbrk(inner, " \t\r\n") != NULL ||
	    sc_address_parse(inner, &a, &err) < 0 ||
	    (!null_ok && inner[0] == '\0')) {
		free(inner);
		errno = EINVAL;
		return NULL;
	}
	return inner;
}

static bool
params_ok(const char *p)
{
	return p == NULL || strpbrk(p, "\r\n") == NULL;
}

int
sc_message_set_sender(struct sc_message *m, const char *address,
		      const char *params)
{
	char *a, *p = NULL;

	if (editable(m) < 0)
		return -1;
	if (!params_ok(params)) {
		errno = EINVAL;
		return -1;
	}
	a = path_arg(address, true);
	if (a == NULL)
		return -1;
	if (params != NULL && (p = strdup(params)) == NULL) {
		free(a);
		return -1;
	}
	free(m->sender);
	m->sender = a;
	if (p != NULL) {
		free(m->sender_params);
		m->sender_params = p;
	}
	m->dirty = true;
	return 0;
}

int
sc_message_rcpt_add(struct sc_message *m, const char *address,
		    const char *params)
{
	char *a, *p;

	if (editable(m) < 0)
		return -1;
	if (!params_ok(params)) {
		errno = EINVAL;
		return -1;
	}
	a = path_arg(address, false);
	if (a == NULL)
		return -1;
	for (size_t i = 0; i < m->nr; i++)
		if (strcasecmp(m->r[i].addr, a) == 0) {
			free(a);
			return 0;
		}
	if (m->nr == m->rcap) {
		struct rcpt *nr = realloc(m->r, 2 * m->rcap * sizeof(*nr));

		if (nr == NULL) {
			free(a);
			return -1;
		}
		m->r = nr;
		m->rcap *= 2;
	}
	p = strdup(params != NULL ? params : "");
	if (p == NULL) {
		free(a);
		return -1;
	}
	m->r[m->nr].addr = a;
	m->r[m->nr].params = p;
	m->nr++;
	m->dirty = true;
	return 0;
}

int
sc_message_rcpt_delete(struct sc_message *m, const char *address)
{
	char *a;

	if (editable(m) < 0)
		return -1;
	a = path_arg(address, false);
	if (a == NULL)
		return -1;
	for (size_t i = 0; i < m->nr; i++) {
		if (strcasecmp(m->r[i].addr, a) != 0)
			continue;
		free(m->r[i].addr);
		free(m->r[i].params);
		memmove(&m->r[i], &m->r[i + 1], (m->nr - i - 1) *
			sizeof(*m->r));
		m->nr--;
		m->dirty = true;
		free(a);
		return 0;
	}
	free(a);
	return 1;
}

/* ---- outcome ---- */

void
sc_message_discard(struct sc_message *m)
{
	if (editable(m) == 0)
		m->discard = true;
}

bool
sc_message_discarded(const struct sc_message *m)
{
	return m->discard || m->nr == 0;
}

int
sc_message_quarantine(struct sc_message *m, const char *reason)
{
	char *r;

	if (editable(m) < 0)
		return -1;
	r = strdup(reason != NULL && *reason ? reason : "quarantined");
	if (r == NULL)
		return -1;
	for (char *p = r; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	free(m->quarantine);
	m->quarantine = r;
	return 0;
}

const char *
sc_message_quarantined(const struct sc_message *m)
{
	return m->quarantine;
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
