/* SPDX-License-Identifier: MIT */
/*
 * pop_before_smtp - lets an IP relay for a while after a POP3/IMAP login:
 * the table, its file, the feed and the hooks (sharing through a store:
 * pop_before_smtp_store.c).
 * Event and hook callbacks and timers run on the event loop; the table
 * file (state_dir/modules/pop_before_smtp/table) and the feed file are read
 * and written on the thread pool.
 */
#define _GNU_SOURCE	/* memrchr, asprintf */
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
#include <time.h>
#include <unistd.h>

#define PBS_FEED_POLL_MS	1000
#define PBS_FEED_READ_MAX	65536	/* feed bytes taken per poll */
#define PBS_SAVE_MIN_MS		1000	/* at most one table write a second */
#define PBS_PURGE_MS		60000
#define PBS_TABLE_HEADER	"# satchel pop_before_smtp table v1"

static const struct sc_config_key pbs_keys[] = {
	{ .name = "window", .type = SC_KEY_DURATION,
	  .offset = offsetof(struct pbs_conf, window), .def = "30m",
	  .doc = "how long after a login the client IP may relay" },
	{ .name = "feed", .type = SC_KEY_PATH,
	  .offset = offsetof(struct pbs_conf, feed),
	  .doc = "file other servers append logged-in IPs to, one a line" },
	{ .name = "max_entries", .type = SC_KEY_UINT,
	  .offset = offsetof(struct pbs_conf, max_entries), .def = "10000",
	  .doc = "table size bound; when full the oldest entry is dropped" },
	{ .name = "store", .type = SC_KEY_STR,
	  .offset = offsetof(struct pbs_conf, store),
	  .doc = "redis://HOST:PORT/DB or unix:/PATH: logins seen by any "
		 "satcheld using that store open relay on every one" },
	{ .name = "store_password_file", .type = SC_KEY_PATH,
	  .offset = offsetof(struct pbs_conf, store_password_file),
	  .doc = "file whose first line is the store's password" },
	{ .name = "store_failure", .type = SC_KEY_ENUM,
	  .offset = offsetof(struct pbs_conf, store_failure), .def = "local",
	  .enum_values = "local|tempfail",
	  .doc = "store down or slow: local (this host's logins only) or "
		 "tempfail (451)" },
	{ .name = "store_timeout", .type = SC_KEY_DURATION,
	  .offset = offsetof(struct pbs_conf, store_timeout), .def = "200ms",
	  .doc = "how long a relay check waits for the store" },
	{ .name = "store_prefix", .type = SC_KEY_STR,
	  .offset = offsetof(struct pbs_conf, store_prefix),
	  .doc = "prefix of the store keys (default satchel:NAME: with the "
		 "instance name)" },
	{ .name = "listeners", .type = SC_KEY_STR_LIST,
	  .offset = offsetof(struct pbs_conf, listeners), .def = "[mx]",
	  .doc = "the smtp listener modes it lets clients send through "
		 "without AUTH: mx, submission" },
	{ .name = NULL }
};

static int64_t
pbs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
pbs_ip_parse(const char *text, struct pbs_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, text, ip->a) == 1) {
		ip->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, ip->a) == 1) {
		static const unsigned char mapped[12] = {
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		/* ::ffff:a.b.c.d is the v4 client it stands for */
		if (memcmp(ip->a, mapped, 12) == 0) {
			memmove(ip->a, ip->a + 12, 4);
			memset(ip->a + 4, 0, 12);
			ip->family = AF_INET;
		} else {
			ip->family = AF_INET6;
		}
		return 0;
	}
	return -1;
}

void
pbs_ip_format(const struct pbs_ip *ip, char *buf, size_t len)
{
	if (inet_ntop(ip->family, ip->a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

static size_t
pbs_ip_hash(const struct pbs_inst *pd, const struct pbs_ip *ip)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < 16; i++)
		h = (h ^ ip->a[i]) * 16777619u;
	h ^= (uint32_t)ip->family;
	return h & (pd->nbuckets - 1);
}

static struct pbs_ent **
pbs_find(struct pbs_inst *pd, const struct pbs_ip *ip)
{
	struct pbs_ent **ep = &pd->buckets[pbs_ip_hash(pd, ip)];

	for (; *ep != NULL; ep = &(*ep)->hnext)
		if ((*ep)->ip.family == ip->family &&
		    memcmp((*ep)->ip.a, ip->a, 16) == 0)
			return ep;
	return ep;
}

static void
pbs_list_unlink(struct pbs_inst *pd, struct pbs_ent *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		pd->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		pd->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
pbs_list_append(struct pbs_inst *pd, struct pbs_ent *e)
{
	e->prev = pd->tail;
	e->next = NULL;
	if (pd->tail != NULL)
		pd->tail->next = e;
	else
		pd->head = e;
	pd->tail = e;
}

/* pbs_remove - drop the entry *ep points at (a hash chain link) */
static void
pbs_remove(struct pbs_inst *pd, struct pbs_ent **ep)
{
	struct pbs_ent *e = *ep;

	*ep = e->hnext;
	pbs_list_unlink(pd, e);
	free(e);
	pd->count--;
}

/* pbs_record - ip may relay until expires. Keeps the later expiry when
 * the IP is known; drops the oldest entry when the table is full. */
static bool
pbs_record(struct pbs_inst *pd, const struct pbs_ip *ip, int64_t expires)
{
	struct pbs_ent **ep = pbs_find(pd, ip), *e;

	if (*ep != NULL) {
		e = *ep;
		if (e->expires >= expires)
			return false;
		e->expires = expires;
		pbs_list_unlink(pd, e);
		pbs_list_append(pd, e);
		return true;
	}
	if (pd->count >= pd->max_entries) {
		struct pbs_ent *old = pd->head;
		char txt[INET6_ADDRSTRLEN];

		pbs_ip_format(&old->ip, txt, sizeof(txt));
		sc_log_notice("pop_before_smtp: table full (%" PRIu64
			      " entries): dropping %s", pd->max_entries, txt);
		pbs_remove(pd, pbs_find(pd, &old->ip));
		ep = pbs_find(pd, ip);
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return false;
	e->ip = *ip;
	e->expires = expires;
	*ep = e;
	pbs_list_append(pd, e);
	pd->count++;
	return true;
}

/* pbs_purge - drop every expired entry */
static void
pbs_purge(struct pbs_inst *pd)
{
	int64_t now = pbs_now();
	struct pbs_ent *e, *n;

	for (e = pd->head; e != NULL; e = n) {
		n = e->next;
		if (e->expires <= now)
			pbs_remove(pd, pbs_find(pd, &e->ip));
	}
}

static void
pbs_inst_unref(struct pbs_inst *pd)
{
	if (--pd->refs > 0)
		return;
	while (pd->head != NULL)
		pbs_remove(pd, pbs_find(pd, &pd->head->ip));
	free(pd->buckets);
	free(pd->feed);
	free(pd->table_path);
	free(pd->lock_path);
	free(pd);
}

/* ---- the table file (pool threads, or teardown) ---- */

/* pbs_table_read - read path into *recs_r (malloc'd), skipping expired
 * and malformed lines. A missing file is an empty table. 0 or -1. */
static int
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
static int
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
static struct pbs_rec *
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
static void
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

static void pbs_save_schedule(struct pbs_inst *pd);

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
static void
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

static void
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

static void
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

static void
pbs_purge_timer(struct sc_timer *t, void *arg)
{
	(void)t;
	pbs_purge(arg);
}

/* ---- hooks and events ---- */

/* pbs_login - a POP3 (or IMAP) login: the client IP may relay */
static void
pbs_login(const struct sc_event *ev, void *data)
{
	struct pbs_inst *pd = data;
	struct pbs_ip ip;

	if (ev->protocol == NULL || ev->client_ip == NULL ||
	    (strcmp(ev->protocol, "pop3") != 0 &&
	     strcmp(ev->protocol, "imap") != 0))
		return;
	if (pbs_ip_parse(ev->client_ip, &ip) < 0)
		return;
	if (pbs_record(pd, &ip, pbs_now() + (int64_t)pd->window)) {
		sc_log_session(SC_LOG_DEBUG, ev->session,
			       "pop_before_smtp: %s may relay for %" PRIu64
			       "s (%s login of %s)", ev->client_ip,
			       pd->window / 1000, ev->protocol,
			       ev->user != NULL ? ev->user : "?");
		pbs_save_schedule(pd);
	}
	if (pd->store != NULL)
		pbs_store_login(pd, &ip);
}

void
pbs_allowed(struct pbs_inst *pd, struct sc_hook_call *call, const char *ip,
	    const char *rcpt, int64_t login_ms)
{
	char when[64] = "on a host sharing the store";

	if (login_ms > 0) {
		time_t t = (time_t)(login_ms / 1000);
		struct tm tm;

		if (gmtime_r(&t, &tm) == NULL ||
		    strftime(when, sizeof(when), "at %Y-%m-%dT%H:%M:%SZ",
			     &tm) == 0)
			snprintf(when, sizeof(when), "recently");
	}
	pd->allowed++;
	sc_log_session(SC_LOG_INFO, sc_hook_session(call), "pop_before_smtp: "
		       "relay allowed for %s to %s (login %s, within the last "
		       "%" PRIu64 "s)", ip, rcpt, when, pd->window / 1000);
	/* what the client, and doctor's relay probe, read in the 250 */
	sc_reply_set(call, 250, "2.1.5", "relay allowed by pop_before_smtp "
		     "for %s (POP login %s)", ip, when);
}

/* pbs_mode_on - does `listeners` take the session's listener? A session
 * without a mode (another protocol module) counts as mx. */
static bool
pbs_mode_on(const struct pbs_inst *pd, struct sc_session *s)
{
	const char *mode = sc_session_mode(s);

	if (mode != NULL && strcmp(mode, "submission") == 0)
		return pd->mode_submission;
	return pd->mode_mx;
}

/* pbs_check - OK for a session whose IP logged in recently; rcpt is what
 * the log line names ("any" for a whole submission session) */
static enum sc_result
pbs_check(struct pbs_inst *pd, struct sc_hook_call *call, const char *rcpt)
{
	struct sc_session *s = sc_hook_session(call);
	struct pbs_ent **ep, *e;
	const char *ipt;
	struct pbs_ip ip;

	if (s == NULL || !pbs_mode_on(pd, s) ||
	    (ipt = sc_session_client_ip(s)) == NULL ||
	    pbs_ip_parse(ipt, &ip) < 0)
		return SC_CONT;
	ep = pbs_find(pd, &ip);
	e = *ep;
	if (e != NULL && e->expires <= pbs_now()) {
		pbs_remove(pd, ep);	/* lazy expiry */
		e = NULL;
	}
	if (e == NULL)
		return pd->store != NULL ?
			pbs_store_relay(pd, call, &ip, rcpt) : SC_CONT;
	pbs_allowed(pd, call, ipt, rcpt, e->expires - (int64_t)pd->window);
	return SC_OK;
}

/* pbs_relay - SC_HOOK_RELAY: this recipient, for an IP with a recent
 * login */
static enum sc_result
pbs_relay(struct sc_hook_call *call, void *data)
{
	const struct sc_rcpt_request *rq = sc_hook_arg(call);

	if (rq == NULL || rq->address == NULL)
		return SC_CONT;
	return pbs_check(data, call, rq->address);
}

/* pbs_submit - SC_HOOK_SUBMIT: a whole session on a submission listener
 * (`listeners` names submission) */
static enum sc_result
pbs_submit(struct sc_hook_call *call, void *data)
{
	return pbs_check(data, call, "any");
}

static size_t
pbs_status(char *buf, size_t len, void *data)
{
	struct pbs_inst *pd = data;
	int n;

	n = snprintf(buf, len, "pop_before_smtp entries: %zu/%" PRIu64 "\n"
		     "pop_before_smtp relays allowed: %" PRIu64 "%s%s%s%s",
		     pd->count, pd->max_entries, pd->allowed,
		     pd->store != NULL ? "\npop_before_smtp store: " : "",
		     pd->store != NULL ? sc_store_url(pd->store) : "",
		     pd->store == NULL ? "" : sc_store_up(pd->store) ?
		     " up" : " down", "");
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

/* ---- instance lifecycle ---- */

static int
pbs_instance_new(struct sc_instance *inst, const void *config,
		 void **data_r, const char **error_r)
{
	const struct pbs_conf *conf = config;
	struct pbs_inst *pd;

	(void)inst;
	if (conf->window == 0) {
		*error_r = "window: must be longer than 0s";
		return -1;
	}
	if (conf->max_entries == 0) {
		*error_r = "max_entries: must be at least 1";
		return -1;
	}
	if (conf->store != NULL && sc_store_url_check(conf->store, error_r) < 0)
		return -1;
	if (conf->listeners.n == 0) {
		*error_r = "listeners: name at least one of mx, submission";
		return -1;
	}
	for (size_t i = 0; i < conf->listeners.n; i++)
		if (strcmp(conf->listeners.v[i], "mx") != 0 &&
		    strcmp(conf->listeners.v[i], "submission") != 0) {
			*error_r = "listeners: each must be mx or submission";
			return -1;
		}
	if (conf->store_timeout == 0 || conf->store_timeout > 10000) {
		*error_r = "store_timeout: must be between 1ms and 10s";
		return -1;
	}
	pd = calloc(1, sizeof(*pd));
	if (pd == NULL)
		goto nomem;
	pd->refs = 1;
	pd->inst = inst;
	pd->conf = conf;
	pd->window = conf->window;
	pd->max_entries = conf->max_entries;
	for (size_t i = 0; i < conf->listeners.n; i++) {
		if (strcmp(conf->listeners.v[i], "mx") == 0)
			pd->mode_mx = true;
		else
			pd->mode_submission = true;
	}
	/* buckets: a power of two near max_entries, capped */
	pd->nbuckets = 64;
	while (pd->nbuckets < pd->max_entries && pd->nbuckets < (1u << 20))
		pd->nbuckets <<= 1;
	pd->buckets = calloc(pd->nbuckets, sizeof(*pd->buckets));
	if (pd->buckets == NULL)
		goto nomem;
	if (conf->feed != NULL && *conf->feed != '\0' &&
	    (pd->feed = strdup(conf->feed)) == NULL)
		goto nomem;
	*data_r = pd;
	return 0;
nomem:
	if (pd != NULL)
		pbs_inst_unref(pd);
	*error_r = "out of memory";
	return -1;
}

static int
pbs_instance_start(struct sc_instance *inst, void *data,
		   const char **error_r)
{
	struct pbs_inst *pd = data;
	const char *dir = sc_instance_state_dir(inst);
	struct pbs_rec *recs;
	struct stat st;
	size_t n;

	if (dir == NULL) {
		*error_r = "cannot create the state directory";
		return -1;
	}
	if (asprintf(&pd->table_path, "%s/table", dir) < 0) {
		pd->table_path = NULL;
		goto nomem;
	}
	if (asprintf(&pd->lock_path, "%s/table.lock", dir) < 0) {
		pd->lock_path = NULL;
		goto nomem;
	}
	/* XXX: a small blocking read at start-up, before any session runs;
	 * the table is bounded by max_entries lines */
	if (pbs_table_read(pd->table_path, pbs_now(), &recs, &n) < 0) {
		sc_log_warning("pop_before_smtp: cannot read %s: %s; "
			       "starting empty", pd->table_path,
			       strerror(errno));
	} else {
		pbs_merge(pd, recs, n);
		free(recs);
		if (stat(pd->table_path, &st) == 0) {
			pd->table_ino = st.st_ino;
			pd->table_mtime = st.st_mtim;
		}
		sc_log_debug("pop_before_smtp: %zu entries loaded from %s",
			     pd->count, pd->table_path);
	}
	if (pd->feed != NULL && stat(pd->feed, &st) == 0) {
		/* follow from its current end */
		pd->feed_known = true;
		pd->feed_dev = st.st_dev;
		pd->feed_ino = st.st_ino;
		pd->feed_off = (uint64_t)st.st_size;
	}
	/* else: created later, so everything in it is new (feed_known
	 * false makes the first poll read it from the start) */
	pd->save_timer = sc_timer_new(pbs_save_timer, pd);
	pd->purge_timer = sc_timer_new(pbs_purge_timer, pd);
	pd->poll_timer = sc_timer_new(pbs_poll_timer, pd);
	if (pd->save_timer == NULL || pd->purge_timer == NULL ||
	    pd->poll_timer == NULL)
		goto nomem;
	sc_timer_start(pd->purge_timer, PBS_PURGE_MS, PBS_PURGE_MS);
	sc_timer_start(pd->poll_timer, PBS_FEED_POLL_MS, PBS_FEED_POLL_MS);
	if (sc_event_subscribe(inst, SC_EVENT_LOGIN, pbs_login, pd) < 0 ||
	    sc_hook_register(inst, SC_HOOK_RELAY, pbs_relay, pd) < 0 ||
	    (pd->mode_submission &&
	     sc_hook_register(inst, SC_HOOK_SUBMIT, pbs_submit, pd) < 0)) {
		*error_r = "cannot register the relay hooks";
		return -1;
	}
	(void)sc_status_register(inst, pbs_status, pd);
	return pbs_store_start(pd, error_r);
nomem:
	*error_r = "out of memory";
	return -1;
}

static void
pbs_instance_free(struct sc_instance *inst, void *data)
{
	struct pbs_inst *pd = data;

	(void)inst;
	sc_store_close(&pd->store);
	sc_timer_free(&pd->save_timer);
	sc_timer_free(&pd->purge_timer);
	sc_timer_free(&pd->poll_timer);
	if (pd->dirty && pd->table_path != NULL) {
		struct pbs_rec *recs, *merged;
		size_t n, nm;

		/* XXX: a blocking write on the loop, once, at reload or
		 * shutdown: logins of the last second must survive a
		 * restart, and a pool job may not run anymore */
		recs = pbs_snapshot(pd, &n);
		if (recs != NULL &&
		    pbs_table_write(pd->table_path, pd->lock_path, recs, n,
				    pd->max_entries, &merged, &nm) == 0)
			free(merged);
		else
			sc_log_error("pop_before_smtp: cannot write %s: %s",
				     pd->table_path, strerror(errno));
		free(recs);
	}
	pd->dead = true;
	pbs_inst_unref(pd);
}

SC_MODULE(pop_before_smtp,
	.version = "1.0",
	.description = "relay for IPs that logged in to POP3 (or IMAP) "
		       "recently",
	.keys = pbs_keys,
	.config_size = sizeof(struct pbs_conf),
	.instance_new = pbs_instance_new,
	.instance_start = pbs_instance_start,
	.instance_free = pbs_instance_free,
);
