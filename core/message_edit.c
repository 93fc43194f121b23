/* SPDX-License-Identifier: MIT */
/*
 * core/message_edit.c - the message API's reads and edits
 * (satchel/message.h): header fields, the body (its fd, a replacement
 * written beside the queue file), the envelope, discard and quarantine.
 * Loop thread only.
 */
#include "message_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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
raw_value(const struct msg_field *f, size_t *len_r)
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
	struct msg_field *f;
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
	struct msg_field *f;
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
	struct msg_field *np = realloc(m->pre, (m->npre + 1) * sizeof(*np));

	if (np == NULL) {
		free(raw);
		return -1;
	}
	m->pre = np;
	if (index > m->npre)
		index = m->npre;
	memmove(&m->pre[index + 1], &m->pre[index],
		(m->npre - index) * sizeof(*np));
	if (sc_msg_field_from_raw(&m->pre[index], raw, len) < 0) {
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
	struct msg_field nf;
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
	raw = sc_msg_field_build(name, value, &len);
	if (raw == NULL)
		return -1;
	if (m->state == M_RECEIVING)
		return insert_pre(m, index, raw, len);
	if (m->header_bytes + len > SC_MESSAGE_HEADER_MAX) {
		free(raw);
		errno = E2BIG;
		return -1;
	}
	if (sc_msg_fields_grow(m, m->n + 1) < 0 || sc_msg_field_from_raw(&nf, raw, len) < 0) {
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
	struct msg_field *f;
	size_t len;
	char *raw;

	if (editable(m) < 0)
		return -1;
	if (i >= m->n || value == NULL) {
		errno = EINVAL;
		return -1;
	}
	f = &m->f[i];
	raw = sc_msg_field_build(f->name, value, &len);
	if (raw == NULL)
		return -1;
	if (m->header_bytes - f->len + len > SC_MESSAGE_HEADER_MAX) {
		free(raw);
		errno = E2BIG;
		return -1;
	}
	m->header_bytes = m->header_bytes - f->len + len;
	free(f->raw);
	sc_msg_field_uncache(f);
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
	sc_msg_field_clear(&m->f[i]);
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
	if (!sc_msg_name_ok(name) || nth == 0) {
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
	sc_msg_drop_new_body(m);
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

/* body_put - bytes with bare CR and bare LF made CRLF (as smtp stores
 * data); a CR at the end waits in new_cr for its LF */
static int
body_put(struct sc_message *m, const char *p, size_t len)
{
	char out[16384];
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (o + 3 > sizeof(out)) {
			if (sc_queue_write_all(m->new_fd, out, o) < 0)
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
	if (o > 0 && sc_queue_write_all(m->new_fd, out, o) < 0)
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

		sc_msg_drop_new_body(m);
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
		if (sc_queue_write_all(m->new_fd, "\r\n", 2) < 0) {
			sc_msg_drop_new_body(m);
			errno = EIO;
			return -1;
		}
		m->new_size += 2;
	}
	sc_msg_drop_repl_body(m);
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

			sc_msg_drop_new_body(m);
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
		struct msg_rcpt *nr = realloc(m->r, 2 * m->rcap * sizeof(*nr));

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
