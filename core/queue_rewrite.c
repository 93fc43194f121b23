/* SPDX-License-Identifier: MIT */
/*
 * core/queue_rewrite.c - writing an edited message's queue file anew at
 * commit (see satchel/message.h and core/queue.c's file format): the new
 * envelope, the header block from the message's fields, the body copied
 * in the kernel (copy_file_range) from the received file or the
 * replacement, END and the records. Runs on the libuv thread pool, in
 * the queue's group commit.
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

/* sc_queue_rewrite - on the pool: an edited message written anew as
 * tmp/ID.new (envelope, header block, body, END and records), made
 * durable and renamed into active/ID; the received tmp/ID goes. The new
 * data size in *size_r. 0, or -1 with errno (nothing renamed then). */
int
sc_queue_rewrite(const char *tmpdir, const char *activedir, const char *id,
		 time_t arrival, const struct sc_message_plan *p,
		 uint64_t *size_r)
{
	char *hdr = NULL, *tail = NULL, *from = NULL, *to = NULL, *old = NULL;
	char size[SC_QUEUE_SIZE_DIGITS + 1];
	off_t size_field;
	uint64_t total = p->block_len + p->body_size;
	int fd = -1, ret = -1;

	hdr = sc_queue_header_text(id, &p->env, arrival, &size_field);
	if (asprintf(&old, "%s/%s", tmpdir, id) < 0)
		old = NULL;
	if (asprintf(&from, "%s/%s.new", tmpdir, id) < 0)
		from = NULL;
	if (asprintf(&to, "%s/%s", activedir, id) < 0)
		to = NULL;
	if (asprintf(&tail, "END received=%zu\n%s%s%s", p->received,
		     p->quarantine ? "Q " : "", p->quarantine ? p->quarantine :
		     "", p->quarantine ? "\n" : "") < 0)
		tail = NULL;
	if (hdr == NULL || old == NULL || from == NULL || to == NULL ||
	    tail == NULL) {
		errno = ENOMEM;
		goto fail;
	}
	snprintf(size, sizeof(size), "%0*" PRIu64, SC_QUEUE_SIZE_DIGITS, total);
	memcpy(hdr + size_field, size, SC_QUEUE_SIZE_DIGITS);
	fd = open(from, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0 || sc_queue_write_all(fd, hdr, strlen(hdr)) < 0 ||
	    sc_queue_write_all(fd, p->block, p->block_len) < 0 ||
	    copy_range(p->body_fd, p->body_off, fd, p->body_size) < 0 ||
	    sc_queue_write_all(fd, tail, strlen(tail)) < 0 || fdatasync(fd) < 0 ||
	    rename(from, to) < 0)
		goto fail;
	unlink(old);
	*size_r = total;
	ret = 0;
	goto out;
fail:
	if (from != NULL) {
		int e = errno;

		unlink(from);
		errno = e;
	}
out:
	if (fd >= 0) {
		int e = errno;

		close(fd);
		errno = e;
	}
	free(hdr);
	free(tail);
	free(from);
	free(to);
	free(old);
	return ret;
}
