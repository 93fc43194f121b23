/* SPDX-License-Identifier: MIT */
/*
 * maildir_dirsync.c - the group commit of new/ directories: deliveries
 * that renamed into the same new/ at about the same time share one fsync
 * of it. Runs on the thread pool (the delivery jobs), under one mutex per
 * instance.
 *
 * Why: a delivery is durable only once new/ is synced after its rename;
 * with many sessions delivering to one mailbox each paid its own fsync,
 * and each is a device flush. A delivery takes a ticket after its rename;
 * a sync started after that covers it. One thread syncs at a time per
 * directory, taking every ticket issued before it began; the others wait
 * for a sync that covers theirs, so nobody's 250-to-the-queue comes before
 * a sync that began after its rename.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir_int.h"

/* Directories tracked at once; more fall back to a sync of their own. */
#define DIRSYNC_SLOTS 64

struct dirsync_slot {
	char *dir;
	pthread_cond_t cv;
	uint64_t issued;	/* tickets handed out                      */
	uint64_t synced;	/* every ticket up to this one is covered  */
	bool running;		/* a thread is syncing it now              */
	uint64_t err_from, err_to;	/* tickets the last failure covered */
	int err;
};

struct md_dirsync {
	pthread_mutex_t mu;
	size_t n;
	struct dirsync_slot slot[DIRSYNC_SLOTS];
};

struct md_dirsync *
md_dirsync_new(void)
{
	struct md_dirsync *s = calloc(1, sizeof(*s));

	if (s != NULL && pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return NULL;
	}
	return s;
}

void
md_dirsync_free(struct md_dirsync *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->slot[i].dir);
		pthread_cond_destroy(&s->slot[i].cv);
	}
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* fsync_path - one directory, opened and synced */
static int
fsync_path(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret, err;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	err = errno;
	close(fd);
	errno = err;
	return ret;
}

/* slot_find - dir's slot, a new one, or NULL when all are taken (the
 * mutex is held) */
static struct dirsync_slot *
slot_find(struct md_dirsync *s, const char *dir)
{
	struct dirsync_slot *sl;

	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->slot[i].dir, dir) == 0)
			return &s->slot[i];
	if (s->n == DIRSYNC_SLOTS)
		return NULL;
	sl = &s->slot[s->n];
	memset(sl, 0, sizeof(*sl));
	if ((sl->dir = strdup(dir)) == NULL)
		return NULL;
	if (pthread_cond_init(&sl->cv, NULL) != 0) {
		free(sl->dir);
		return NULL;
	}
	s->n++;
	return sl;
}

int
md_dirsync(struct md_dirsync *s, const char *dir)
{
	struct dirsync_slot *sl;
	uint64_t ticket;
	int ret = 0;

	if (s == NULL)
		return fsync_path(dir);
	pthread_mutex_lock(&s->mu);
	sl = slot_find(s, dir);
	if (sl == NULL) {
		pthread_mutex_unlock(&s->mu);
		return fsync_path(dir);
	}
	ticket = ++sl->issued;
	while (sl->synced < ticket) {
		if (!sl->running) {
			/* this sync begins after every rename ticketed so
			 * far: it covers them all */
			uint64_t upto = sl->issued;
			uint64_t from = sl->synced + 1;
			int rc, err;

			sl->running = true;
			pthread_mutex_unlock(&s->mu);
			rc = fsync_path(dir);
			err = errno;
			pthread_mutex_lock(&s->mu);
			sl->running = false;
			sl->synced = upto;
			if (rc < 0) {
				sl->err_from = from;
				sl->err_to = upto;
				sl->err = err;
			}
			pthread_cond_broadcast(&sl->cv);
		} else {
			pthread_cond_wait(&sl->cv, &s->mu);
		}
	}
	if (sl->err != 0 && ticket >= sl->err_from && ticket <= sl->err_to) {
		errno = sl->err;
		ret = -1;
	}
	pthread_mutex_unlock(&s->mu);
	return ret;
}
