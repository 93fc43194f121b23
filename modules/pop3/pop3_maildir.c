/* SPDX-License-Identifier: MIT */
/*
 * pop3_maildir.c - the mailbox side of POP3 on Maildir. On the event loop
 * thread: the lock release (a mailbox is held by one session of the
 * instance from login to the end of the session). On pool threads: the
 * scan (cur/ then new/, messages in new/ moved to cur/ with ":2,"), UIDLs
 * that survive moves and flag changes, the RFC 1939 size with CRLF line
 * ends (from the name's W=/S= fields or counted and cached), opening a
 * message another reader renamed, and the expunge of the UPDATE state.
 */
#include "pop3_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* pop_unlock - release the session's mailbox lock, if it holds one */
void
pop_unlock(struct pop_sess *ps)
{
	struct pop_lock **lp;

	if (ps->mbox == NULL)
		return;
	for (lp = &ps->pd->locks; *lp != NULL; lp = &(*lp)->next) {
		if (strcmp((*lp)->mbox, ps->mbox) == 0) {
			struct pop_lock *l = *lp;
			*lp = l->next;
			free(l->mbox);
			free(l);
			break;
		}
	}
	free(ps->mbox);
	ps->mbox = NULL;
}

/* pop_name_field - the number after ",X=" in a Maildir base name */
static bool
pop_name_field(const char *name, char field, uint64_t *v_r)
{
	const char *end = strchr(name, ':'), *p = name;
	char pat[4] = { ',', field, '=', '\0' };

	if (end == NULL)
		end = name + strlen(name);
	while ((p = strstr(p, pat)) != NULL && p < end) {
		uint64_t v = 0;
		const char *q = p + 3;

		if (*q < '0' || *q > '9') {
			p += 3;
			continue;
		}
		for (; *q >= '0' && *q <= '9' && q < end; q++)
			v = v * 10 + (uint64_t)(*q - '0');
		*v_r = v;
		return true;
	}
	return false;
}

/* pop_make_uid - the UIDL of a Maildir file: its unique name (before
 * ':'), which survives the move to cur/ and flag changes. Names that are
 * too long or hold characters RFC 1939 forbids get a stable hash. */
void
pop_make_uid(const char *name, char *uid)
{
	size_t len = strcspn(name, ":"), i;
	bool ok = len > 0 && len <= POP_UID_MAX;
	uint64_t h = 1469598103934665603ULL;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x21 || c > 0x7e)
			ok = false;
		h = (h ^ c) * 1099511628211ULL;
	}
	if (ok) {
		memcpy(uid, name, len);
		uid[len] = '\0';
	} else {
		snprintf(uid, POP_UID_MAX + 1, "x%016" PRIx64, h);
	}
}

/* pop_count_vsize - the RFC 1939 size: octets with every bare LF counted
 * as CRLF. limit > 0 reads only that much and reports whether a bare LF
 * was seen (*bare_r). -1 on a read error. */
static int
pop_count_vsize(int fd, uint64_t limit, uint64_t *vsize_r, bool *bare_r)
{
	char buf[POP_CHUNK];
	uint64_t v = 0, total = 0;
	bool prev_cr = false, bare = false;
	off_t off = 0;

	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);
		ssize_t i;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		off += n;
		for (i = 0; i < n; i++) {
			if (buf[i] == '\n' && !prev_cr) {
				v++;
				bare = true;
			}
			prev_cr = buf[i] == '\r';
		}
		v += (uint64_t)n;
		total += (uint64_t)n;
		if (limit > 0 && total >= limit)
			break;
	}
	*vsize_r = v;
	if (bare_r != NULL)
		*bare_r = bare;
	return 0;
}

static unsigned
pop_cache_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 16777619u;
	return h % POP_CACHE_BUCKETS;
}

static bool
pop_cache_get(struct pop_inst *pd, const char *key, const struct stat *st,
	      uint64_t *vsize_r)
{
	struct pop_cache_ent *e;
	bool found = false;

	pthread_mutex_lock(&pd->cache_mutex);
	for (e = pd->cache[pop_cache_hash(key)]; e != NULL; e = e->next) {
		if (strcmp(e->key, key) == 0) {
			if (e->st_size == (uint64_t)st->st_size &&
			    e->mtime == (int64_t)st->st_mtime) {
				*vsize_r = e->vsize;
				found = true;
			}
			break;
		}
	}
	pthread_mutex_unlock(&pd->cache_mutex);
	return found;
}

/* pop_cache_put - remember a computed size; the whole cache is dropped
 * when it reaches POP_CACHE_MAX, which bounds memory simply. */
static void
pop_cache_put(struct pop_inst *pd, const char *key, const struct stat *st,
	      uint64_t vsize)
{
	size_t klen = strlen(key), i;
	struct pop_cache_ent *e = malloc(sizeof(*e) + klen + 1), **bp;

	if (e == NULL)
		return;
	e->st_size = (uint64_t)st->st_size;
	e->mtime = (int64_t)st->st_mtime;
	e->vsize = vsize;
	memcpy(e->key, key, klen + 1);
	pthread_mutex_lock(&pd->cache_mutex);
	if (pd->cache_count >= POP_CACHE_MAX) {
		for (i = 0; i < POP_CACHE_BUCKETS; i++) {
			struct pop_cache_ent *x = pd->cache[i], *n;
			for (; x != NULL; x = n) {
				n = x->next;
				free(x);
			}
			pd->cache[i] = NULL;
		}
		pd->cache_count = 0;
	}
	bp = &pd->cache[pop_cache_hash(key)];
	/* replace a stale entry for the same message */
	for (; *bp != NULL; bp = &(*bp)->next) {
		if (strcmp((*bp)->key, key) == 0) {
			struct pop_cache_ent *old = *bp;
			e->next = old->next;
			*bp = e;
			free(old);
			pthread_mutex_unlock(&pd->cache_mutex);
			return;
		}
	}
	e->next = NULL;
	*bp = e;
	pd->cache_count++;
	pthread_mutex_unlock(&pd->cache_mutex);
}

/*
 * pop_msg_vsize - the size POP3 reports for one message file.
 * W= (Dovecot's virtual size) is exactly the CRLF size. S= is the file
 * size, which equals the CRLF size only when the file is stored with CRLF
 * line ends (as satchel's maildir writes it): it is trusted when it matches
 * the file and the first 4 KiB hold no bare LF. Anything else is counted
 * once and cached.
 */
static int
pop_msg_vsize(struct pop_inst *pd, const char *mbox, const char *path,
	      const char *name, const char *uid, const struct stat *st,
	      uint64_t *vsize_r)
{
	uint64_t v;
	char key[PATH_MAX + 80];
	bool bare = true;
	int fd, ret;

	if (pop_name_field(name, 'W', &v)) {
		*vsize_r = v;
		return 0;
	}
	snprintf(key, sizeof(key), "%s/%s", mbox, uid);
	if (pop_cache_get(pd, key, st, vsize_r))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	if (pop_name_field(name, 'S', &v) && v == (uint64_t)st->st_size) {
		uint64_t head;
		if (pop_count_vsize(fd, 4096, &head, &bare) < 0) {
			close(fd);
			return -1;
		}
		if (!bare) {
			close(fd);
			*vsize_r = v;
			return 0;
		}
	}
	ret = pop_count_vsize(fd, 0, &v, NULL);
	close(fd);
	if (ret < 0)
		return -1;
	pop_cache_put(pd, key, st, v);
	*vsize_r = v;
	return 0;
}

static int
pop_scan_cmp(const void *a, const void *b)
{
	const struct pop_scan_ent *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

void
pop_job_free(struct pop_job *j)
{
	size_t i;

	for (i = 0; i < j->nent; i++)
		free(j->ents[i].name);
	free(j->ents);
	for (i = 0; i < j->ndel; i++)
		free(j->del[i]);
	free(j->del);
	free(j->mbox);
	free(j);
}

/* pop_scan_dir - add the messages of mbox/sub; new/ ones are moved to
 * cur/ with ":2," so they count as seen by a mail reader. */
static int
pop_scan_dir(struct pop_job *j, const char *sub, size_t *cap)
{
	char dpath[PATH_MAX], path[PATH_MAX], dst[PATH_MAX];
	bool is_new = strcmp(sub, "new") == 0;
	struct dirent *de;
	DIR *d;

	snprintf(dpath, sizeof(dpath), "%s/%s", j->mbox, sub);
	d = opendir(dpath);
	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		char rel[PATH_MAX], uid[POP_UID_MAX + 1];
		struct pop_scan_ent *e;
		struct stat st;

		if (name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dpath, name) >=
		    (int)sizeof(path))
			continue;
		if (is_new) {
			if (snprintf(rel, sizeof(rel), "cur/%s%s", name,
				     strchr(name, ':') != NULL ? "" : ":2,") >=
			    (int)sizeof(rel) ||
			    snprintf(dst, sizeof(dst), "%s/%s", j->mbox,
				     rel) >= (int)sizeof(dst))
				continue;
			if (rename(path, dst) < 0) {
				/* ENOENT: another reader took it */
				if (errno == ENOENT)
					continue;
				/* XXX: unmovable; serve it from new/ */
				snprintf(rel, sizeof(rel), "new/%s", name);
			} else {
				snprintf(path, sizeof(path), "%s", dst);
			}
		} else {
			snprintf(rel, sizeof(rel), "cur/%s", name);
		}
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (*cap == j->nent) {
			size_t ncap = *cap ? *cap * 2 : 64;
			void *p = realloc(j->ents, ncap * sizeof(*j->ents));
			if (p == NULL)
				goto fail;
			j->ents = p;
			*cap = ncap;
		}
		e = &j->ents[j->nent];
		pop_make_uid(strchr(rel, '/') + 1, uid);
		if (pop_msg_vsize(j->pd, j->mbox, path, strchr(rel, '/') + 1,
				  uid, &st, &e->vsize) < 0)
			continue;	/* vanished meanwhile */
		e->name = strdup(rel);
		if (e->name == NULL)
			goto fail;
		e->mtime = (int64_t)st.st_mtime;
		j->nent++;
	}
	closedir(d);
	return 0;
fail:
	closedir(d);
	errno = ENOMEM;
	return -1;
}

/* pop_job_scan - pool: list the mailbox (cur/ first, then new/) */
void
pop_job_scan(void *arg)
{
	struct pop_job *j = arg;
	size_t cap = 0;

	if (pop_scan_dir(j, "cur", &cap) < 0 ||
	    pop_scan_dir(j, "new", &cap) < 0) {
		j->err = errno ? errno : EIO;
		return;
	}
	if (j->nent > 1)
		qsort(j->ents, j->nent, sizeof(*j->ents), pop_scan_cmp);
}

/* pop_find_by_uid - the current file of a message whose flags another
 * reader changed since the scan (the name after ':' differs). */
static int
pop_find_by_uid(const char *mbox, const char *rel, char *out, size_t len)
{
	static const char *const subs[] = { "cur", "new" };
	char uid[POP_UID_MAX + 1], dpath[PATH_MAX];
	const char *name = strchr(rel, '/') + 1;
	size_t ulen = strcspn(name, ":"), i;

	pop_make_uid(name, uid);
	for (i = 0; i < 2; i++) {
		struct dirent *de;
		DIR *d;

		snprintf(dpath, sizeof(dpath), "%s/%s", mbox, subs[i]);
		d = opendir(dpath);
		if (d == NULL)
			continue;
		while ((de = readdir(d)) != NULL) {
			if (strncmp(de->d_name, name, ulen) == 0 &&
			    (de->d_name[ulen] == ':' ||
			     de->d_name[ulen] == '\0')) {
				int n = snprintf(out, len, "%s/%s", dpath,
						 de->d_name);
				closedir(d);
				if (n < 0 || (size_t)n >= len) {
					errno = ENAMETOOLONG;
					return -1;
				}
				return 0;
			}
		}
		closedir(d);
	}
	errno = ENOENT;
	return -1;
}

int
pop_open_msg(const char *mbox, const char *rel)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", mbox, rel);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (pop_find_by_uid(mbox, rel, path, sizeof(path)) < 0)
		return -1;
	return open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
}

/* pop_job_update - pool: the UPDATE state removes the marked messages and
 * makes the removal durable before the +OK. */
void
pop_job_update(void *arg)
{
	struct pop_job *j = arg;
	char path[PATH_MAX];
	bool dirs[2] = { false, false };
	size_t i;

	for (i = 0; i < j->ndel; i++) {
		snprintf(path, sizeof(path), "%s/%s", j->mbox, j->del[i]);
		if (unlink(path) == 0) {
			dirs[j->del[i][0] == 'n'] = true;
			continue;
		}
		if (errno == ENOENT &&
		    pop_find_by_uid(j->mbox, j->del[i], path,
				    sizeof(path)) == 0 &&
		    unlink(path) == 0) {
			dirs[0] = dirs[1] = true;
			continue;
		}
		if (errno != ENOENT) {
			sc_log_error("pop3: unlink %s: %s", path,
				     strerror(errno));
			j->failed++;
		}
	}
	for (i = 0; i < 2; i++) {
		int fd;

		if (!dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s", j->mbox,
			 i == 0 ? "cur" : "new");
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) < 0) {
			sc_log_error("pop3: fsync %s: %s", path,
				     strerror(errno));
			j->failed++;
		}
		if (fd >= 0)
			close(fd);
	}
}
