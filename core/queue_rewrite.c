/* SPDX-License-Identifier: MIT */
/*
 * core/queue_rewrite.c - writing an edited message's queue file anew at
 * commit (see satchel/message.h and core/queue.c's file format): the new
 * envelope, the header block from the message's fields, the body copied
 * in the kernel (copy_file_range) from the received file or the
 * replacement, END and the records. Runs on the libuv thread pool, in
 * the queue's group commit (but sc_queue_rewrite_len: the loop thread).
 * A small file is written unsynced and made durable by the queue
 * journal's record of its bytes (queue.c), a big one by its own
 * fdatasync (sc_queue_rewrite) - both before the rename into active/.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* copy_range - len bytes of in from off to the end of out: in the kernel
 * where it can (copy_file_range), else through a buffer */
static int
copy_range(int in, uint64_t off, int out, uint64_t len)
{
	loff_t o = (loff_t)off;
	char buf[65536];

	while (len > 0) {
		ssize_t n = copy_file_range(in, &o, out, NULL, len > (1u << 30)
					    ? (1u << 30) : (size_t)len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == ENOSYS ||
			      errno == EINVAL || errno == EOPNOTSUPP))
			break;
		if (n <= 0)
			return n == 0 ? (errno = EIO, -1) : -1;
		len -= (uint64_t)n;
	}
	while (len > 0) {
		ssize_t n = pread(in, buf, len > sizeof(buf) ? sizeof(buf) :
				  (size_t)len, (off_t)o);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || sc_queue_write_all(out, buf, (size_t)n) < 0)
			return n == 0 ? (errno = EIO, -1) : -1;
		o += n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* rewrite_tail - END and the quarantine record (malloc'd, or NULL) */
static char *
rewrite_tail(const struct sc_message_plan *p)
{
	char *tail;

	if (asprintf(&tail, "END received=%zu\n%s%s%s", p->received,
		     p->quarantine ? "Q " : "", p->quarantine ? p->quarantine :
		     "", p->quarantine ? "\n" : "") < 0)
		return NULL;
	return tail;
}

/* sc_queue_rewrite_len - loop thread: the length the edited message's
 * file will have (so that the group commit knows whether the journal
 * takes it); 0 when out of memory */
size_t
sc_queue_rewrite_len(const char *id, time_t arrival,
		     const struct sc_message_plan *p)
{
	off_t size_field;
	char *hdr = sc_queue_header_text(id, &p->env, arrival, &size_field);
	char *tail = rewrite_tail(p);
	size_t len = 0;

	if (hdr != NULL && tail != NULL)
		len = strlen(hdr) + p->block_len + (size_t)p->body_size +
			strlen(tail);
	free(hdr);
	free(tail);
	return len;
}

static char *
new_path(const char *tmpdir, const char *id)
{
	char *p;

	if (asprintf(&p, "%s/%s.new", tmpdir, id) < 0)
		return NULL;
	return p;
}

/* sc_queue_rewrite_write - on the pool: an edited message written anew
 * as tmp/ID.new (envelope, header block, body, END and records), not
 * synced: its fd (readable, for the journal), its length in *flen_r and
 * the new data size in *size_r; or -1 with errno (nothing left behind) */
int
sc_queue_rewrite_write(const char *tmpdir, const char *id, time_t arrival,
		       const struct sc_message_plan *p, uint64_t *size_r,
		       size_t *flen_r)
{
	char *hdr = NULL, *tail = NULL, *from = NULL;
	char size[SC_QUEUE_SIZE_DIGITS + 1];
	off_t size_field;
	uint64_t total = p->block_len + p->body_size;
	int fd = -1, e;

	hdr = sc_queue_header_text(id, &p->env, arrival, &size_field);
	from = new_path(tmpdir, id);
	tail = rewrite_tail(p);
	if (hdr == NULL || from == NULL || tail == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	snprintf(size, sizeof(size), "%0*" PRIu64, SC_QUEUE_SIZE_DIGITS, total);
	memcpy(hdr + size_field, size, SC_QUEUE_SIZE_DIGITS);
	fd = open(from, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0 || sc_queue_write_all(fd, hdr, strlen(hdr)) < 0 ||
	    sc_queue_write_all(fd, p->block, p->block_len) < 0 ||
	    copy_range(p->body_fd, p->body_off, fd, p->body_size) < 0 ||
	    sc_queue_write_all(fd, tail, strlen(tail)) < 0)
		goto fail;
	*size_r = total;
	*flen_r = strlen(hdr) + p->block_len + (size_t)p->body_size +
		strlen(tail);
	free(hdr);
	free(tail);
	free(from);
	return fd;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	if (from != NULL)
		unlink(from);
	free(hdr);
	free(tail);
	free(from);
	errno = e;
	return -1;
}

/* sc_queue_rewrite_move - on the pool: tmp/ID.new renamed to active/ID
 * (no sync: the caller made it durable, or the journal did) and the
 * received tmp/ID removed. 0, or -1 with errno (tmp/ID.new is then
 * removed too). */
int
sc_queue_rewrite_move(const char *tmpdir, const char *activedir,
		      const char *id)
{
	char *from = new_path(tmpdir, id), *to = NULL, *old = NULL;
	int ret = -1, e;

	if (asprintf(&to, "%s/%s", activedir, id) < 0)
		to = NULL;
	if (asprintf(&old, "%s/%s", tmpdir, id) < 0)
		old = NULL;
	if (from == NULL || to == NULL || old == NULL)
		errno = ENOMEM;
	else if (rename(from, to) == 0)
		ret = 0;
	e = errno;
	if (ret == 0)
		unlink(old);
	else if (from != NULL)
		unlink(from);
	free(from);
	free(to);
	free(old);
	errno = e;
	return ret;
}

/* sc_queue_rewrite_drop - tmp/ID.new removed (a commit that failed after
 * sc_queue_rewrite_write) */
void
sc_queue_rewrite_drop(const char *tmpdir, const char *id)
{
	char *p = new_path(tmpdir, id);

	if (p != NULL)
		unlink(p);
	free(p);
}

/* sc_queue_rewrite - on the pool: an edited message written anew, made
 * durable on its own (fdatasync) and renamed into active/ID; the
 * received tmp/ID goes. The new data size in *size_r. 0, or -1 with
 * errno (nothing renamed then). */
int
sc_queue_rewrite(const char *tmpdir, const char *activedir, const char *id,
		 time_t arrival, const struct sc_message_plan *p,
		 uint64_t *size_r)
{
	size_t flen;
	int fd = sc_queue_rewrite_write(tmpdir, id, arrival, p, size_r, &flen);
	int ret = -1, e;

	if (fd < 0)
		return -1;
	if (fdatasync(fd) < 0)
		sc_queue_rewrite_drop(tmpdir, id);
	else
		ret = sc_queue_rewrite_move(tmpdir, activedir, id);
	e = errno;
	close(fd);
	errno = e;
	return ret;
}
