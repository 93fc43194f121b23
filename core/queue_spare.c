/* SPDX-License-Identifier: MIT */
/*
 * core/queue_spare.c - queue files made ahead: empty files in tmp/, each
 * under a fresh id, created on the thread pool and handed to transactions
 * on the loop thread (sc_queue_tx_begin).
 *
 * Why: creating a file is a directory update that can block - tens to
 * hundreds of microseconds on a busy file system, more where the inode
 * allocator scans (ext4 without a journal skips recently freed inodes one
 * by one). On the loop that stalls every session; made ahead, the loop
 * only takes an open descriptor. A spare holds no data and nothing
 * durable: tmp/ is emptied at start, and the rest removed at stop.
 */
#include "core.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPARE_MAX 16		/* kept ready                            */
#define SPARE_LOW 8		/* refilled below this                   */

struct spare {
	int fd;
	char id[17];
};

struct refill {
	uv_work_t work;
	size_t want, n;
	bool worked;		/* refill_work returned (under sp.mu)     */
	struct spare made[SPARE_MAX];
};

/* Process-wide, loop thread only (a refill's files are its own until its
 * done callback). */
static struct {
	struct spare ring[SPARE_MAX];
	size_t head, n;
	struct refill *refilling;	/* on the pool, or NULL          */
	bool closed;		/* sc_queue_spare_close ran: refills drop */
	pthread_mutex_t mu;	/* refill.worked, for the close          */
	pthread_cond_t cv;
} sp = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void
spare_drop(const struct spare *s)
{
	const char *tmp = sc_queue_tmp_dir();
	char path[4096];

	close(s->fd);
	if (tmp != NULL && (size_t)snprintf(path, sizeof(path), "%s/%s", tmp,
					    s->id) < sizeof(path))
		unlink(path);
}

/* refill_work - on the pool: the files themselves */
static void
refill_work(uv_work_t *w)
{
	struct refill *r = w->data;

	while (r->n < r->want) {
		int fd = sc_queue_open_tmp(r->made[r->n].id);

		if (fd < 0)
			break;	/* disk full...: transactions see it inline */
		r->made[r->n++].fd = fd;
	}
	pthread_mutex_lock(&sp.mu);
	r->worked = true;
	pthread_cond_signal(&sp.cv);
	pthread_mutex_unlock(&sp.mu);
}

static void
refill_done(uv_work_t *w, int status)
{
	struct refill *r = w->data;
	size_t i = 0;

	(void)status;
	if (sp.refilling == r)
		sp.refilling = NULL;
	for (; i < r->n && !sp.closed && sp.n < SPARE_MAX; i++) {
		sp.ring[(sp.head + sp.n) % SPARE_MAX] = r->made[i];
		sp.n++;
	}
	for (; i < r->n; i++)
		spare_drop(&r->made[i]);
	free(r);
}

static void
refill_start(void)
{
	struct refill *r;

	if (sp.refilling != NULL || sp.closed || sp.n >= SPARE_LOW ||
	    sc_queue_tmp_dir() == NULL)
		return;
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return;
	r->want = SPARE_MAX - sp.n;
	r->work.data = r;
	if (uv_queue_work(sc_core != NULL && sc_core->loop != NULL ?
			  sc_core->loop : uv_default_loop(), &r->work,
			  refill_work, refill_done) != 0) {
		free(r);
		return;
	}
	sp.refilling = r;
}

/* sc_queue_spare_take - a file made ahead (its id to id[17]), or -1 when
 * none is ready (the caller creates one itself); starts a refill */
int
sc_queue_spare_take(char *id)
{
	int fd = -1;

	sp.closed = false;
	while (fd < 0 && sp.n > 0) {
		struct spare *s = &sp.ring[sp.head];
		struct stat st;

		sp.head = (sp.head + 1) % SPARE_MAX;
		sp.n--;
		/* removed from tmp/ meanwhile (an admin's clean-up): its
		 * rename at commit would fail, so it is no spare */
		if (fstat(s->fd, &st) < 0 || st.st_nlink == 0) {
			close(s->fd);
			continue;
		}
		fd = s->fd;
		memcpy(id, s->id, sizeof(s->id));
	}
	refill_start();
	return fd;
}

/* sc_queue_spare_close - closes and removes the spares (at stop, while
 * the queue's paths are still set). A refill on the pool is waited for
 * (it only creates files) and its files go too; its done callback, should
 * the loop still run it, only frees it. */
void
sc_queue_spare_close(void)
{
	struct refill *r = sp.refilling;

	if (r != NULL) {
		pthread_mutex_lock(&sp.mu);
		while (!r->worked)
			pthread_cond_wait(&sp.cv, &sp.mu);
		pthread_mutex_unlock(&sp.mu);
		for (size_t i = 0; i < r->n; i++)
			spare_drop(&r->made[i]);
		r->n = 0;
		sp.refilling = NULL;
	}
	while (sp.n > 0) {
		spare_drop(&sp.ring[sp.head]);
		sp.head = (sp.head + 1) % SPARE_MAX;
		sp.n--;
	}
	sp.head = 0;
	sp.closed = true;
}
