/* SPDX-License-Identifier: MIT */
/*
 * modules/pop_before_smtp/pop_before_smtp_file.c - the table's file
 * (state_dir/modules/pop_before_smtp/table) and the feed: reading and
 * writing the file (merged with what other instances wrote, under a lock),
 * saving at most once a second, and following the feed and the file
 * written by other instances (the old one during a reload). The file and
 * the feed are read and written on the thread pool (and at start-up and
 * teardown on the loop); the jobs' done callbacks and the timers run on
 * the event loop.
 */
#define _GNU_SOURCE	/* memrchr */
#include "pop_before_smtp_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define PBS_FEED_READ_MAX	65536	/* feed bytes taken per poll */
#define PBS_SAVE_MIN_MS		1000	/* at most one table write a second */
#define PBS_TABLE_HEADER	"# satchel pop_before_smtp table v1"

/* ---- the table file (pool threads, or teardown) ---- */

/* pbs_table_read - read path into *recs_r (malloc'd), skipping expired
 * and malformed lines. A missing file is an empty table. 0 or -1. */
int
pbs_table_read(const char *path, int64_t now, struct pbs_rec **recs_r,
	       size_t *n_r)
{
	struct pbs_rec *recs = NULL;
	size_t n = 0, cap = 0;
	char line[256];
	FILE *f;

	*recs_r = NULL;
	*n_r = 0;
	f = fopen(path, "re");
	if (f == NULL)
		return errno == ENOENT ? 0 : -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char ipt[INET6_ADDRSTRLEN + 1];
		long long exp;
		struct pbs_rec r;

		if (line[0] == '#' ||
		    sscanf(line, "%46s %lld", ipt, &exp) != 2 ||
		    pbs_ip_parse(ipt, &r.ip) < 0 || exp <= now)
			continue;
		r.expires = exp;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			void *p = realloc(recs, ncap * sizeof(*recs));
			if (p == NULL)
				break;
			recs = p;
			cap = ncap;
		}
		recs[n++] = r;
	}
	fclose(f);
	*recs_r = recs;
	*n_r = n;
	return 0;
}

static int
pbs_rec_cmp_ip(const void *a, const void *b)
{
	const struct pbs_rec *x = a, *y = b;
	int c;

	if (x->ip.family != y->ip.family)
		return x->ip.family < y->ip.family ? -1 : 1;
	c = memcmp(x->ip.a, y->ip.a, 16);
	if (c != 0)
		return c;
	/* the later expiry first, so it survives the dedup */
	return x->expires > y->expires ? -1 : x->expires < y->expires;
}

static int
pbs_rec_cmp_exp(const void *a, const void *b)
{
	const struct pbs_rec *x = a, *y = b;

	return x->expires < y->expires ? -1 : x->expires > y->expires;
}

/*
 * pbs_table_write - merge recs with what the file holds now (another
 * instance of this module, e.g. the old one during a reload, writes it
 * too), keep at most max entries (the latest expiries), and replace the
 * file atomically: temp file, fsync, rename, fsync of the directory. A
 * lock file serialises writers. On success *merged_r and *nmerged_r hold the
 * merged table (malloc'd). 0 or -1 with errno.
 */
int
pbs_table_write(const char *path, const char *lock_path,
		const struct pbs_rec *recs, size_t n, uint64_t max,
		struct pbs_rec **merged_r, size_t *nmerged_r)
{
	char tmp[PATH_MAX], dir[PATH_MAX], *slash;
	struct pbs_rec *all = NULL, *file = NULL;
	size_t nfile = 0, nall, i, o;
	int64_t now = pbs_now();
	int lfd, fd = -1, dfd, saved;
	FILE *f = NULL;

	*merged_r = NULL;
	*nmerged_r = 0;
	lfd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0)
		return -1;
	if (flock(lfd, LOCK_EX) < 0)
		goto fail;
	if (pbs_table_read(path, now, &file, &nfile) < 0)
		goto fail;
	all = malloc((n + nfile + 1) * sizeof(*all));
	if (all == NULL)
		goto fail;
	memcpy(all, recs, n * sizeof(*recs));
	if (nfile > 0)
		memcpy(all + n, file, nfile * sizeof(*file));
	nall = n + nfile;
	qsort(all, nall, sizeof(*all), pbs_rec_cmp_ip);
	for (i = 0, o = 0; i < nall; i++) {
		if (all[i].expires <= now)
			continue;
		if (o > 0 && all[o - 1].ip.family == all[i].ip.family &&
		    memcmp(all[o - 1].ip.a, all[i].ip.a, 16) == 0)
			continue;	/* same IP, earlier expiry */
		all[o++] = all[i];
	}
	nall = o;
	qsort(all, nall, sizeof(*all), pbs_rec_cmp_exp);
	if (nall > max) {
		memmove(all, all + (nall - max), max * sizeof(*all));
		nall = max;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		goto fail;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		goto fail;
	fd = -1;
	fprintf(f, "%s\n", PBS_TABLE_HEADER);
	for (i = 0; i < nall; i++) {
		char txt[INET6_ADDRSTRLEN];

		pbs_ip_format(&all[i].ip, txt, sizeof(txt));
		fprintf(f, "%s %" PRId64 "\n", txt, all[i].expires);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) < 0)
		goto fail;
	if (fclose(f) != 0) {
		f = NULL;
		goto fail;
	}
	f = NULL;
	if (rename(tmp, path) < 0)
		goto fail;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		*slash = '\0';
		dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	close(lfd);
	free(file);
	*merged_r = all;
	*nmerged_r = nall;
	return 0;
fail:
	saved = errno;
	if (f != NULL) {
		fclose(f);
		unlink(tmp);
	}
	if (fd >= 0) {
		close(fd);
		unlink(tmp);
	}
	close(lfd);
	free(file);
	free(all);
	errno = saved;
	return -1;
}

/* pbs_snapshot - the live entries as records (loop thread) */
struct pbs_rec *
pbs_snapshot(struct pbs_inst *pd, size_t *n_r)
{
	struct pbs_rec *recs = malloc((pd->count + 1) * sizeof(*recs));
	struct pbs_ent *e;
	size_t n = 0;

	if (recs == NULL)
		return NULL;
	for (e = pd->head; e != NULL; e = e->next) {
		recs[n].ip = e->ip;
		recs[n].expires = e->expires;
		n++;
	}
	*n_r = n;
	return recs;
}

/* pbs_merge - take records read from the file into the table (loop) */
void
pbs_merge(struct pbs_inst *pd, const struct pbs_rec *recs, size_t n)
{
	int64_t now = pbs_now();
	size_t i;

	for (i = 0; i < n; i++)
		if (recs[i].expires > now)
			(void)pbs_record(pd, &recs[i].ip, recs[i].expires);
}

struct pbs_save_job {
	struct pbs_inst *pd;
	char *path, *lock_path;
	uint64_t max;
	struct pbs_rec *recs, *merged;
	size_t n, nmerged;
	int err;
	struct stat st;
};

static void
pbs_save_work(void *arg)
{
	struct pbs_save_job *j = arg;

	if (pbs_table_write(j->path, j->lock_path, j->recs, j->n, j->max,
			    &j->merged, &j->nmerged) < 0)
		j->err = errno;
	else if (stat(j->path, &j->st) < 0)
		memset(&j->st, 0, sizeof(j->st));
}

static void
pbs_save_done(void *arg)
{
	struct pbs_save_job *j = arg;
	struct pbs_inst *pd = j->pd;

	pd->saving = false;
	if (!pd->dead) {
		if (j->err != 0) {
			sc_log_error("pop_before_smtp: cannot write %s: %s",
				     j->path, strerror(j->err));
		} else {
			pbs_merge(pd, j->merged, j->nmerged);
			pd->table_mtime = j->st.st_mtim;
			pd->table_ino = j->st.st_ino;
		}
		if (pd->dirty)
			pbs_save_schedule(pd);
	}
	free(j->path);
	free(j->lock_path);
	free(j->recs);
	free(j->merged);
	free(j);
	pbs_inst_unref(pd);
}

/* pbs_save_now - write the table on the pool (loop thread) */
static void
pbs_save_now(struct pbs_inst *pd)
{
	struct pbs_save_job *j = calloc(1, sizeof(*j));

	if (j == NULL)
		return;
	j->pd = pd;
	j->max = pd->max_entries;
	j->path = strdup(pd->table_path);
	j->lock_path = strdup(pd->lock_path);
	j->recs = pbs_snapshot(pd, &j->n);
	if (j->path == NULL || j->lock_path == NULL || j->recs == NULL)
		goto fail;
	pd->refs++;
	if (sc_work_submit_inst(pd->inst, pbs_save_work, pbs_save_done,
				j) < 0) {
		pd->refs--;
		goto fail;
	}
	pd->dirty = false;
	pd->saving = true;
	pd->last_save_ms = sc_now_ms();
	return;
fail:
	sc_log_error("pop_before_smtp: cannot save the table: out of memory");
	free(j->path);
	free(j->lock_path);
	free(j->recs);
	free(j);
}

/* pbs_save_schedule - debounce: at most one write per second */
void
pbs_save_schedule(struct pbs_inst *pd)
{
	uint64_t now = sc_now_ms(), since = now - pd->last_save_ms;

	pd->dirty = true;
	if (pd->saving || pd->table_path == NULL)
		return;	/* pbs_save_done looks at dirty again */
	if (pd->last_save_ms == 0 || since >= PBS_SAVE_MIN_MS) {
		sc_timer_stop(pd->save_timer);
		pbs_save_now(pd);
		return;
	}
	sc_timer_start(pd->save_timer, PBS_SAVE_MIN_MS - since, 0);
}

void
pbs_save_timer(struct sc_timer *t, void *arg)
{
	struct pbs_inst *pd = arg;

	(void)t;
	if (pd->dirty && !pd->saving)
		pbs_save_now(pd);
}

/* ---- the feed and the table file of other instances (pool) ---- */

struct pbs_poll_job {
	struct pbs_inst *pd;
	char *feed, *table_path;
	/* feed state in and out */
	bool feed_known;
	dev_t feed_dev;
	ino_t feed_ino;
	uint64_t feed_off;
	char *lines;		/* whole lines read from the feed */
	size_t lines_len;
	/* table file */
	struct timespec table_mtime;
	ino_t table_ino;
	bool table_changed;
	struct pbs_rec *recs;
	size_t nrecs;
};

/*
 * pbs_feed_read - follow the feed like tail -F: start at its end, read
 * what was appended since, start over at 0 when it was truncated or
 * replaced (rotated). Only complete lines are taken.
 */
static void
pbs_feed_read(struct pbs_poll_job *j)
{
	struct stat st;
	ssize_t n;
	char *nl;
	int fd;

	fd = open(j->feed, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		/* gone (or not there yet): once it (re)appears it is a new
		 * file, read from its start */
		j->feed_known = false;
		return;
	}
	if (!j->feed_known) {
		j->feed_known = true;
		j->feed_off = 0;
	} else if (st.st_ino != j->feed_ino || st.st_dev != j->feed_dev ||
		   (uint64_t)st.st_size < j->feed_off) {
		j->feed_off = 0;	/* rotated or truncated */
	}
	j->feed_dev = st.st_dev;
	j->feed_ino = st.st_ino;
	if ((uint64_t)st.st_size <= j->feed_off) {
		close(fd);
		return;
	}
	j->lines = malloc(PBS_FEED_READ_MAX + 1);
	if (j->lines == NULL) {
		close(fd);
		return;
	}
	do {
		n = pread(fd, j->lines, PBS_FEED_READ_MAX, (off_t)j->feed_off);
	} while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return;
	j->lines[n] = '\0';
	/* keep a partial last line for the next poll */
	nl = memrchr(j->lines, '\n', (size_t)n);
	if (nl == NULL) {
		if (n < PBS_FEED_READ_MAX)
			return;
		nl = j->lines + n - 1;	/* an absurd line: skip it */
	}
	j->lines_len = (size_t)(nl - j->lines) + 1;
	j->lines[j->lines_len] = '\0';
	j->feed_off += j->lines_len;
}

static void
pbs_poll_work(void *arg)
{
	struct pbs_poll_job *j = arg;
	struct stat st;

	if (j->feed != NULL)
		pbs_feed_read(j);
	if (j->table_path != NULL && stat(j->table_path, &st) == 0 &&
	    (st.st_ino != j->table_ino ||
	     st.st_mtim.tv_sec != j->table_mtime.tv_sec ||
	     st.st_mtim.tv_nsec != j->table_mtime.tv_nsec)) {
		j->table_changed = true;
		j->table_ino = st.st_ino;
		j->table_mtime = st.st_mtim;
		(void)pbs_table_read(j->table_path, pbs_now(), &j->recs,
				     &j->nrecs);
	}
}

static void
pbs_poll_done(void *arg)
{
	struct pbs_poll_job *j = arg;
	struct pbs_inst *pd = j->pd;
	bool changed = false;

	pd->polling = false;
	if (pd->dead)
		goto out;
	pd->feed_known = j->feed_known;
	pd->feed_dev = j->feed_dev;
	pd->feed_ino = j->feed_ino;
	pd->feed_off = j->feed_off;
	if (j->table_changed) {
		pd->table_ino = j->table_ino;
		pd->table_mtime = j->table_mtime;
		pbs_merge(pd, j->recs, j->nrecs);
	}
	if (j->lines != NULL && j->lines_len > 0) {
		int64_t exp = pbs_now() + (int64_t)pd->window;
		char *line, *save = NULL;

		for (line = strtok_r(j->lines, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save)) {
			char ipt[INET6_ADDRSTRLEN + 1];
			struct pbs_ip ip;

			if (sscanf(line, " %46s", ipt) != 1 || ipt[0] == '#')
				continue;
			if (pbs_ip_parse(ipt, &ip) < 0) {
				sc_log_warning("pop_before_smtp: %s: not an "
					       "IP address: %s", pd->feed, ipt);
				continue;
			}
			if (pbs_record(pd, &ip, exp)) {
				sc_log_info("pop_before_smtp: %s may relay "
					    "(from the feed)", ipt);
				changed = true;
			}
		}
	}
	if (changed)
		pbs_save_schedule(pd);
out:
	free(j->feed);
	free(j->table_path);
	free(j->lines);
	free(j->recs);
	free(j);
	pbs_inst_unref(pd);
}

void
pbs_poll_timer(struct sc_timer *t, void *arg)
{
	struct pbs_inst *pd = arg;
	struct pbs_poll_job *j;

	(void)t;
	if (pd->polling)
		return;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return;
	j->pd = pd;
	j->feed = pd->feed != NULL ? strdup(pd->feed) : NULL;
	j->table_path = strdup(pd->table_path);
	j->feed_known = pd->feed_known;
	j->feed_dev = pd->feed_dev;
	j->feed_ino = pd->feed_ino;
	j->feed_off = pd->feed_off;
	j->table_ino = pd->table_ino;
	j->table_mtime = pd->table_mtime;
	if ((pd->feed != NULL && j->feed == NULL) || j->table_path == NULL) {
		free(j->feed);
		free(j->table_path);
		free(j);
		return;
	}
	pd->refs++;
	pd->polling = true;
	if (sc_work_submit_inst(pd->inst, pbs_poll_work, pbs_poll_done,
				j) < 0) {
		pd->refs--;
		pd->polling = false;
		free(j->feed);
		free(j->table_path);
		free(j);
	}
}
