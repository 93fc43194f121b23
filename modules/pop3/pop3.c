/* SPDX-License-Identifier: MIT */
/*
 * pop3 - POP3 listener (RFC 1939, 2449, 2595, 5034) on Maildir mailboxes.
 * The protocol runs on the event loop thread; every mailbox access (scan,
 * size computation, message reads, deletes) runs on the thread pool
 * through sc_work_submit_inst(), so a big mailbox never stalls other
 * sessions.
 */
#define _GNU_SOURCE	/* explicit_bzero */
#include <satchel/satchel.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define POP_LINE_MAX	1024	/* RFC 2449 says 255; AUTH lines are longer */
#define POP_SASL_MAX	8192	/* a base64 AUTH PLAIN response */
#define POP_CHUNK	65536	/* bytes read from a message per work item */
#define POP_OUT_HIGH	262144	/* pause RETR while this much is unsent */
#define POP_UID_MAX	70	/* RFC 1939: 1 to 70 characters */
#define POP_CACHE_MAX	100000	/* size cache entries before it is reset */

enum pop_tls { POP_TLS_NONE = 0, POP_TLS_STARTTLS, POP_TLS_IMPLICIT };

/* ---- configuration ---- */

struct pop_listen_conf {
	struct sc_sockaddr address;
	int tls;
};

struct pop_timeouts {
	uint64_t command;
};

struct pop_conf {
	struct sc_list listen;
	struct pop_timeouts timeouts;
	uint64_t auth_failure_delay;
	uint64_t max_auth_failures;
};

static const struct sc_config_key pop_listen_keys[] = {
	{ .name = "address", .type = SC_KEY_ADDRESS,
	  .offset = offsetof(struct pop_listen_conf, address),
	  .flags = SC_KEY_REQUIRED,
	  .doc = "address and port to listen on (host:port, [v6]:port)" },
	{ .name = "tls", .type = SC_KEY_ENUM,
	  .offset = offsetof(struct pop_listen_conf, tls),
	  .def = "starttls", .enum_values = "none|starttls|implicit",
	  .doc = "none: plaintext logins allowed; starttls: STLS offered "
		 "and required before login; implicit: TLS from the start" },
	{ .name = NULL }
};

static const struct sc_config_key pop_timeout_keys[] = {
	{ .name = "command", .type = SC_KEY_DURATION,
	  .offset = offsetof(struct pop_timeouts, command), .def = "10m",
	  .doc = "idle time before the session is closed (RFC 1939: >= 10m)" },
	{ .name = NULL }
};

static const struct sc_config_key pop_keys[] = {
	{ .name = "listen", .type = SC_KEY_LIST,
	  .offset = offsetof(struct pop_conf, listen),
	  .flags = SC_KEY_REQUIRED, .sub = pop_listen_keys,
	  .sub_size = sizeof(struct pop_listen_conf),
	  .doc = "listeners: list of {address, tls}" },
	{ .name = "timeouts", .type = SC_KEY_OBJECT,
	  .offset = offsetof(struct pop_conf, timeouts),
	  .sub = pop_timeout_keys, .doc = "{command: 10m}" },
	{ .name = "auth_failure_delay", .type = SC_KEY_DURATION,
	  .offset = offsetof(struct pop_conf, auth_failure_delay),
	  .def = "2s", .doc = "delay before answering a failed login "
	  "(multiplied by the failures so far in the session)" },
	{ .name = "max_auth_failures", .type = SC_KEY_UINT,
	  .offset = offsetof(struct pop_conf, max_auth_failures),
	  .def = "3", .doc = "failed logins before the session is closed" },
	{ .name = NULL }
};

/* ---- instance and session state ---- */

struct pop_inst;

struct pop_listener {
	struct pop_inst *pd;
	int tls;
};

/* A mailbox held by a session in TRANSACTION/UPDATE state. */
struct pop_lock {
	struct pop_lock *next;
	char *mbox;
};

/* Size cache entry: computing the CRLF size means reading the file, so
 * it is done once per message and process. */
struct pop_cache_ent {
	struct pop_cache_ent *next;
	uint64_t st_size;
	int64_t mtime;
	uint64_t vsize;
	char key[];		/* mailbox path '/' uid */
};

#define POP_CACHE_BUCKETS 4096

/*
 * Instance data. Reference counted: sessions (and through them their
 * pool jobs) hold a reference. The core frees the instance only after
 * every job's done ran (sc_work_submit_inst). Nothing here points into
 * the core-owned config once instance_new returned.
 */
struct pop_inst {
	unsigned refs;
	struct sc_instance *inst;	/* NULL after instance_free */
	uint64_t cmd_timeout;
	uint64_t fail_delay;
	uint64_t max_failures;
	size_t listener_count;
	struct pop_listener *listeners;
	struct pop_lock *locks;
	uint64_t logins, failures;
	pthread_mutex_t cache_mutex;	/* the cache is used by pool threads */
	struct pop_cache_ent *cache[POP_CACHE_BUCKETS];
	size_t cache_count;
};

struct pop_msg {
	char *name;		/* relative to the mailbox: "cur/NAME" */
	char uid[POP_UID_MAX + 1];
	uint64_t vsize;		/* octets with CRLF line ends */
	bool deleted;
};

enum pop_state { POP_AUTHORIZATION, POP_TRANSACTION, POP_UPDATE };

struct pop_xfer;

struct pop_sess {
	unsigned refs;		/* the session slot + each pending job */
	struct pop_inst *pd;
	struct sc_session *s;	/* NULL once the core closed the session */
	struct sc_conn *c;
	int tls;		/* listener's enum pop_tls */
	enum pop_state state;
	bool busy;		/* an async step runs; input is paused */
	bool in_input;
	bool sasl_wait;		/* AUTH PLAIN waits for the response line */
	bool greeted;
	char *user;		/* USER argument */
	char *mbox;		/* locked mailbox path */
	char *login;		/* canonical user once logged in */
	unsigned auth_failures;
	struct sc_timer *delay_timer;
	struct sc_timer *stall_timer;
	/* the AUTH hook argument and the strings it points to */
	struct sc_auth_request req;
	char *req_user, *req_pass;
	const char *req_mech;
	size_t nmsg;
	struct pop_msg *msgs;
	struct pop_xfer *xfer;
};

static void pop_input(struct pop_sess *ps);
static void pop_close(struct pop_sess *ps);

/* ---- small helpers ---- */

static void
pop_inst_unref(struct pop_inst *pd)
{
	size_t i;

	if (--pd->refs > 0)
		return;
	for (i = 0; i < POP_CACHE_BUCKETS; i++) {
		struct pop_cache_ent *e = pd->cache[i], *n;
		for (; e != NULL; e = n) {
			n = e->next;
			free(e);
		}
	}
	while (pd->locks != NULL) {
		struct pop_lock *l = pd->locks;
		pd->locks = l->next;
		free(l->mbox);
		free(l);
	}
	pthread_mutex_destroy(&pd->cache_mutex);
	free(pd->listeners);
	free(pd);
}

static void
pop_reply(struct pop_sess *ps, const char *fmt, ...) SC_PRINTF(2, 3);

/* pop_reply - queue one response line (CRLF added) */
static void
pop_reply(struct pop_sess *ps, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (ps->s == NULL)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 3)
		n = sizeof(buf) - 3;
	/* one line of text: no CR/LF from a hook's text, no control byte
	 * a client sent echoed back */
	for (int i = 0; i < n; i++)
		if (buf[i] == '\r' || buf[i] == '\n' || buf[i] == '\t')
			buf[i] = ' ';
		else if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	buf[n++] = '\r';
	buf[n++] = '\n';
	sc_conn_write(ps->c, buf, (size_t)n);
}

static void
pop_free_secret(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

/* pop_unlock - release the session's mailbox lock, if it holds one */
static void
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

static void pop_xfer_free(struct pop_xfer **xp);

static void
pop_sess_unref(struct pop_sess *ps)
{
	size_t i;

	if (--ps->refs > 0)
		return;
	pop_unlock(ps);
	sc_timer_free(&ps->delay_timer);
	sc_timer_free(&ps->stall_timer);
	pop_xfer_free(&ps->xfer);
	for (i = 0; i < ps->nmsg; i++)
		free(ps->msgs[i].name);
	free(ps->msgs);
	free(ps->user);
	free(ps->login);
	free(ps->req_user);
	pop_free_secret(&ps->req_pass);
	pop_inst_unref(ps->pd);
	free(ps);
}

/* pop_sess_gone - session data destructor: the core closed the session */
static void
pop_sess_gone(void *arg)
{
	struct pop_sess *ps = arg;

	ps->s = NULL;
	ps->c = NULL;
	sc_timer_free(&ps->delay_timer);
	sc_timer_free(&ps->stall_timer);
	pop_sess_unref(ps);
}

static void
pop_close(struct pop_sess *ps)
{
	if (ps->s != NULL)
		sc_session_close(ps->s);	/* runs pop_sess_gone */
}

/* pop_pause - an asynchronous step starts: stop reading commands */
static void
pop_pause(struct pop_sess *ps)
{
	ps->busy = true;
	if (ps->c != NULL)
		sc_conn_read_stop(ps->c);
}

/* pop_resume - the step finished: go on with pipelined commands */
static void
pop_resume(struct pop_sess *ps)
{
	ps->busy = false;
	if (ps->s == NULL)
		return;
	sc_conn_read_start(ps->c);
	pop_input(ps);
}

static bool
pop_plaintext_ok(const struct pop_sess *ps)
{
	return ps->tls == POP_TLS_NONE || sc_conn_tls_active(ps->c);
}

/* pop_parse_num - a message number or line count: decimal digits only */
static bool
pop_parse_num(const char *s, uint64_t *n_r)
{
	uint64_t n = 0;

	if (*s == '\0' || strlen(s) > 18)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		n = n * 10 + (uint64_t)(*s - '0');
	}
	*n_r = n;
	return true;
}

/* ---- Maildir access (pool threads) ---- */

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
static void
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

struct pop_scan_ent {
	char *name;		/* "cur/NAME" */
	int64_t mtime;
	uint64_t vsize;
};

static int
pop_scan_cmp(const void *a, const void *b)
{
	const struct pop_scan_ent *x = a, *y = b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* One pool job of a session; kind tells which fields are used. */
struct pop_job {
	struct pop_sess *ps;
	struct pop_inst *pd;
	char *mbox;
	/* scan */
	struct pop_scan_ent *ents;
	size_t nent;
	/* update */
	size_t ndel;
	char **del;		/* "cur/NAME" of messages to remove */
	size_t failed;
	int err;
};

static void
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
static void
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

static int
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
static void
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

/* ---- RETR / TOP streaming ---- */

struct pop_xfer {
	struct pop_sess *ps;
	char *mbox;
	char *rel;
	int fd;
	uint64_t off;
	bool top;
	uint64_t top_lines;
	bool started;		/* +OK sent */
	bool eof;		/* the terminating "." is in out */
	bool running;		/* a pool job owns the xfer */
	bool wait_drain;
	/* transform state, carried across chunks */
	bool line_start, prev_cr, in_headers, line_empty;
	uint64_t body_lines;
	int err;
	size_t out_len;
	char out[2 * POP_CHUNK + 8];
	char in[POP_CHUNK];
};

static void
pop_xfer_free(struct pop_xfer **xp)
{
	struct pop_xfer *x = *xp;

	if (x == NULL)
		return;
	*xp = NULL;
	if (x->fd >= 0)
		close(x->fd);
	free(x->mbox);
	free(x->rel);
	free(x);
}

/*
 * pop_xfer_chunk - pool: read the next chunk and turn it into POP3 wire
 * form: bare LF becomes CRLF, a leading "." is doubled (RFC 1939 byte
 * stuffing), and TOP stops after the header and top_lines body lines.
 */
static void
pop_xfer_chunk(void *arg)
{
	struct pop_xfer *x = arg;
	ssize_t n, i;
	char *o = x->out;

	x->out_len = 0;
	if (x->fd < 0) {
		x->fd = pop_open_msg(x->mbox, x->rel);
		if (x->fd < 0) {
			x->err = errno;
			return;
		}
	}
	do {
		n = pread(x->fd, x->in, sizeof(x->in), (off_t)x->off);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		x->err = errno;
		return;
	}
	x->off += (uint64_t)n;
	for (i = 0; i < n; i++) {
		char c = x->in[i];

		if (x->line_start) {
			if (x->top && !x->in_headers &&
			    x->body_lines >= x->top_lines) {
				n = 0;	/* enough body lines */
				break;
			}
			if (c == '.')
				*o++ = '.';
			x->line_empty = true;
		}
		if (c == '\n') {
			if (!x->prev_cr)
				*o++ = '\r';
			*o++ = '\n';
			if (x->in_headers && x->line_empty)
				x->in_headers = false;
			else if (!x->in_headers)
				x->body_lines++;
			x->line_start = true;
		} else {
			*o++ = c;
			if (c != '\r')
				x->line_empty = false;
			x->line_start = false;
		}
		x->prev_cr = c == '\r';
	}
	if (n == 0) {
		/* the end: terminate a last line without LF, then "." */
		if (!x->line_start) {
			*o++ = '\r';
			*o++ = '\n';
		}
		memcpy(o, ".\r\n", 3);
		o += 3;
		x->eof = true;
	}
	x->out_len = (size_t)(o - x->out);
}

static void pop_xfer_done(void *arg);

static void
pop_xfer_submit(struct pop_sess *ps)
{
	struct pop_xfer *x = ps->xfer;

	x->running = true;
	ps->refs++;
	if (sc_work_submit_inst(ps->pd->inst, pop_xfer_chunk,
				pop_xfer_done, x) < 0) {
		bool started = x->started;

		ps->refs--;
		x->running = false;
		sc_log_session(SC_LOG_ERROR, ps->s,
			       "pop3: cannot submit message read");
		if (!started)
			pop_reply(ps, "-ERR [SYS/TEMP] Internal error");
		pop_xfer_free(&ps->xfer);
		sc_session_set_busy(ps->s, false);
		if (started)
			pop_close(ps);
		else
			pop_resume(ps);
	}
}

static void
pop_stall_timeout(struct sc_timer *t, void *arg)
{
	struct pop_sess *ps = arg;

	(void)t;
	sc_log_session(SC_LOG_INFO, ps->s,
		       "pop3: client stopped reading; closing");
	pop_close(ps);
}

/* pop_xfer_done - loop: send the chunk; go on at once, or once the
 * client has read enough (back-pressure via SC_CONN_DRAINED). */
static void
pop_xfer_done(void *arg)
{
	struct pop_xfer *x = arg;
	struct pop_sess *ps = x->ps;

	x->running = false;
	if (ps->s == NULL) {
		pop_sess_unref(ps);	/* frees the xfer too */
		return;
	}
	ps->refs--;	/* the session slot still holds one */
	if (x->err != 0) {
		sc_log_session(SC_LOG_ERROR, ps->s, "pop3: read %s/%s: %s",
			       x->mbox, x->rel, strerror(x->err));
		sc_session_set_busy(ps->s, false);
		if (x->started) {
			/* the client cannot tell a cut message: hang up */
			pop_xfer_free(&ps->xfer);
			pop_close(ps);
			return;
		}
		pop_reply(ps, x->err == ENOENT ?
			  "-ERR Message was removed by another client" :
			  "-ERR [SYS/TEMP] Cannot read message");
		pop_xfer_free(&ps->xfer);
		pop_resume(ps);
		return;
	}
	if (!x->started) {
		uint64_t size = 0;
		size_t i;
		for (i = 0; i < ps->nmsg; i++)
			if (strcmp(ps->msgs[i].name, x->rel) == 0)
				size = ps->msgs[i].vsize;
		if (x->top)
			pop_reply(ps, "+OK");
		else
			pop_reply(ps, "+OK %" PRIu64 " octets", size);
		x->started = true;
	}
	if (x->out_len > 0)
		sc_conn_write(ps->c, x->out, x->out_len);
	if (x->eof) {
		pop_xfer_free(&ps->xfer);
		sc_timer_stop(ps->stall_timer);
		sc_session_set_busy(ps->s, false);
		sc_conn_set_timeout(ps->c, ps->pd->cmd_timeout);
		pop_resume(ps);
		return;
	}
	if (sc_conn_output_pending(ps->c) > POP_OUT_HIGH) {
		x->wait_drain = true;
		sc_timer_start(ps->stall_timer, ps->pd->cmd_timeout, 0);
		return;
	}
	pop_xfer_submit(ps);
}

/* ---- login ---- */

static void
pop_scan_done(void *arg)
{
	struct pop_job *j = arg;
	struct pop_sess *ps = j->ps;
	struct sc_event ev;
	size_t i;

	if (ps->s == NULL)
		goto out;
	if (j->err != 0) {
		sc_log_session(SC_LOG_ERROR, ps->s, "pop3: scan %s: %s",
			       j->mbox, strerror(j->err));
		pop_unlock(ps);
		free(ps->login);
		ps->login = NULL;
		pop_reply(ps, "-ERR [SYS/TEMP] Cannot open mailbox");
		pop_resume(ps);
		goto out;
	}
	ps->msgs = calloc(j->nent ? j->nent : 1, sizeof(*ps->msgs));
	if (ps->msgs == NULL) {
		pop_unlock(ps);
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		pop_resume(ps);
		goto out;
	}
	for (i = 0; i < j->nent; i++) {
		ps->msgs[i].name = j->ents[i].name;
		j->ents[i].name = NULL;
		ps->msgs[i].vsize = j->ents[i].vsize;
		pop_make_uid(strchr(ps->msgs[i].name, '/') + 1,
			     ps->msgs[i].uid);
	}
	ps->nmsg = j->nent;
	ps->state = POP_TRANSACTION;
	ps->pd->logins++;
	sc_session_set_auth_user(ps->s, ps->login);
	sc_log_session(SC_LOG_INFO, ps->s,
		       "pop3: login user=%s ip=%s messages=%zu",
		       ps->login, sc_session_client_ip(ps->s), ps->nmsg);
	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_LOGIN;
	ev.session = ps->s;
	ev.protocol = "pop3";
	ev.client_ip = sc_session_client_ip(ps->s);
	ev.user = ps->login;
	sc_event_emit(&ev);
	if (ps->s == NULL)
		goto out;
	pop_reply(ps, "+OK Logged in.");
	pop_resume(ps);
out:
	pop_job_free(j);
	pop_sess_unref(ps);
}

/* pop_login - credentials are valid: lock and scan the mailbox */
static void
pop_login(struct pop_sess *ps, const char *user)
{
	char mbox[PATH_MAX];
	struct pop_lock *l;
	struct pop_job *j;

	if (sc_mailbox_path(user, mbox, sizeof(mbox)) < 0) {
		sc_log_session(SC_LOG_WARNING, ps->s,
			       "pop3: no mailbox path for %s", user);
		pop_reply(ps, "-ERR [SYS/TEMP] Mailbox unavailable");
		pop_resume(ps);
		return;
	}
	for (l = ps->pd->locks; l != NULL; l = l->next) {
		if (strcmp(l->mbox, mbox) == 0) {
			sc_log_session(SC_LOG_INFO, ps->s,
				       "pop3: %s is in use", user);
			pop_reply(ps, "-ERR [IN-USE] Mailbox is locked by "
				  "another session");
			pop_resume(ps);
			return;
		}
	}
	l = calloc(1, sizeof(*l));
	j = calloc(1, sizeof(*j));
	if (l == NULL || j == NULL || (l->mbox = strdup(mbox)) == NULL ||
	    (j->mbox = strdup(mbox)) == NULL ||
	    (ps->mbox = strdup(mbox)) == NULL ||
	    (ps->login = strdup(user)) == NULL)
		goto nomem;
	l->next = ps->pd->locks;
	ps->pd->locks = l;
	j->ps = ps;
	j->pd = ps->pd;
	ps->refs++;
	if (sc_work_submit_inst(ps->pd->inst, pop_job_scan,
				pop_scan_done, j) < 0) {
		ps->refs--;
		pop_unlock(ps);
		l = NULL;
		goto nomem;
	}
	return;
nomem:
	if (l != NULL)
		free(l->mbox);
	free(l);
	if (j != NULL)
		pop_job_free(j);
	free(ps->mbox);
	ps->mbox = NULL;
	free(ps->login);
	ps->login = NULL;
	pop_reply(ps, "-ERR [SYS/TEMP] Internal error");
	pop_resume(ps);
}

static void
pop_fail_delay_done(struct sc_timer *t, void *arg)
{
	struct pop_sess *ps = arg;

	(void)t;
	pop_reply(ps, "-ERR [AUTH] Authentication failed");
	if (ps->auth_failures >= ps->pd->max_failures) {
		sc_log_session(SC_LOG_INFO, ps->s,
			       "pop3: too many authentication failures");
		pop_close(ps);
		return;
	}
	pop_resume(ps);
}

/* pop_auth_done - the AUTH hook chain answered */
static void
pop_auth_done(struct sc_session *s, const struct sc_hook_outcome *out,
	      void *arg)
{
	struct pop_sess *ps = arg;
	const char *text = out->reply.text;
	struct sc_event ev;

	(void)s;
	pop_free_secret(&ps->req_pass);
	ps->req.password = NULL;
	switch (out->result) {
	case SC_OK:
		pop_login(ps, out->auth_user != NULL ? out->auth_user :
			  ps->req_user);
		return;
	case SC_DENYSOFT:
		pop_reply(ps, "-ERR [SYS/TEMP] %s", text != NULL ? text :
			  "Temporary authentication failure, try again later");
		pop_resume(ps);
		return;
	case SC_DENYSOFTDISCONNECT:
	case SC_DENYDISCONNECT:
		pop_reply(ps, "-ERR %s %s",
			  out->result == SC_DENYDISCONNECT ? "[AUTH]" :
			  "[SYS/TEMP]", text != NULL ? text :
			  "Authentication refused");
		pop_close(ps);
		return;
	default:
		break;
	}
	/* CONT (nobody knows the user) or DENY (wrong password) */
	ps->auth_failures++;
	ps->pd->failures++;
	sc_log_session(SC_LOG_INFO, ps->s,
		       "pop3: authentication failed user=%s ip=%s",
		       ps->req_user, sc_session_client_ip(ps->s));
	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_AUTH_FAILED;
	ev.session = ps->s;
	ev.protocol = "pop3";
	ev.client_ip = sc_session_client_ip(ps->s);
	ev.user = ps->req_user;
	sc_event_emit(&ev);
	if (ps->s == NULL)
		return;
	/* a delay that grows per failure slows down password guessing */
	sc_timer_start(ps->delay_timer,
		       ps->pd->fail_delay * ps->auth_failures, 0);
}

/* pop_auth_start - hand user/password to the AUTH hook (auth_file,
 * auth_pam, ...), exactly as the smtp listener does. Takes pass. */
static void
pop_auth_start(struct pop_sess *ps, const char *mech, const char *user,
	       char *pass)
{
	free(ps->req_user);
	pop_free_secret(&ps->req_pass);
	ps->req_user = strdup(user);
	ps->req_pass = pass;
	ps->req_mech = mech;
	if (ps->req_user == NULL) {
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	memset(&ps->req, 0, sizeof(ps->req));
	ps->req.protocol = "pop3";
	ps->req.mechanism = mech;
	ps->req.user = ps->req_user;
	ps->req.password = ps->req_pass;
	ps->req.client_ip = sc_session_client_ip(ps->s);
	pop_pause(ps);
	if (sc_hook_run(ps->s, SC_HOOK_AUTH, &ps->req, pop_auth_done,
			ps) < 0) {
		pop_reply(ps, "-ERR [SYS/TEMP] Internal error");
		pop_resume(ps);
	}
}

/* pop_sasl_plain - decode an AUTH PLAIN response (RFC 4616) and log in */
static void
pop_sasl_plain(struct pop_sess *ps, const char *b64)
{
	const char *authz = NULL, *authc = NULL, *pass = NULL;
	char *raw = NULL, *pw = NULL;
	size_t len;

	if (strcmp(b64, "*") == 0) {
		pop_reply(ps, "-ERR Authentication cancelled.");
		return;
	}
	if ((raw = sc_base64_decode(b64, &len)) == NULL) {
		pop_reply(ps, "-ERR Invalid base64 data in AUTH response");
		return;
	}
	if (sc_sasl_plain_split(raw, len, &authz, &authc, &pass) < 0) {
		explicit_bzero(raw, len);
		free(raw);
		pop_reply(ps, "-ERR Invalid AUTH PLAIN response");
		return;
	}
	if (*authz != '\0' && strcmp(authz, authc) != 0) {
		explicit_bzero(raw, len);
		free(raw);
		pop_reply(ps, "-ERR [AUTH] Authentication failed");
		return;
	}
	pw = strdup(pass);
	if (pw == NULL) {
		explicit_bzero(raw, len);
		free(raw);
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	pop_auth_start(ps, "PLAIN", authc, pw);
	explicit_bzero(raw, len);
	free(raw);
}

/* ---- commands ---- */

static void
pop_cmd_capa(struct pop_sess *ps, const char *arg)
{
	(void)arg;
	pop_reply(ps, "+OK Capability list follows");
	pop_reply(ps, "TOP");
	if (ps->state == POP_AUTHORIZATION) {
		pop_reply(ps, "USER");
		if (pop_plaintext_ok(ps))
			pop_reply(ps, "SASL PLAIN");
		if (ps->tls == POP_TLS_STARTTLS && !sc_conn_tls_active(ps->c))
			pop_reply(ps, "STLS");
	}
	pop_reply(ps, "UIDL");
	pop_reply(ps, "RESP-CODES");
	pop_reply(ps, "AUTH-RESP-CODE");
	pop_reply(ps, "PIPELINING");
	pop_reply(ps, "EXPIRE NEVER");
	pop_reply(ps, "IMPLEMENTATION satchel");
	pop_reply(ps, ".");
}

static void
pop_tls_done(struct sc_conn *c, bool ok, const char *error, void *arg)
{
	struct pop_sess *ps = arg;
	const char *desc;

	(void)c;
	if (!ok) {
		sc_log_session(SC_LOG_INFO, ps->s, "pop3: TLS failed: %s",
			       error != NULL ? error : "?");
		pop_close(ps);
		return;
	}
	desc = sc_conn_tls_desc(ps->c);
	sc_log_session(SC_LOG_DEBUG, ps->s, "pop3: %s",
		       desc != NULL ? desc : "TLS");
	if (!ps->greeted) {
		ps->greeted = true;
		pop_reply(ps, "+OK %s POP3 server ready", sc_config_hostname());
	}
	pop_resume(ps);
}

static void
pop_cmd_stls(struct pop_sess *ps, const char *arg)
{
	(void)arg;
	if (ps->tls != POP_TLS_STARTTLS || sc_conn_tls_active(ps->c)) {
		pop_reply(ps, sc_conn_tls_active(ps->c) ?
			  "-ERR TLS is already active" :
			  "-ERR STLS is not offered on this port");
		return;
	}
	pop_reply(ps, "+OK Begin TLS negotiation now.");
	pop_pause(ps);
	if (sc_conn_starttls(ps->c, pop_tls_done, ps) < 0) {
		sc_log_session(SC_LOG_ERROR, ps->s, "pop3: STLS failed");
		pop_close(ps);
	}
}

static void
pop_cmd_user(struct pop_sess *ps, const char *arg)
{
	if (!pop_plaintext_ok(ps)) {
		pop_reply(ps, "-ERR Plaintext authentication disallowed on "
			  "non-secure connections");
		return;
	}
	if (*arg == '\0') {
		pop_reply(ps, "-ERR USER needs a user name");
		return;
	}
	free(ps->user);
	ps->user = strdup(arg);
	if (ps->user == NULL) {
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	pop_reply(ps, "+OK");
}

static void
pop_cmd_pass(struct pop_sess *ps, const char *arg)
{
	char *pw;

	if (!pop_plaintext_ok(ps)) {
		pop_reply(ps, "-ERR Plaintext authentication disallowed on "
			  "non-secure connections");
		return;
	}
	if (ps->user == NULL) {
		pop_reply(ps, "-ERR No user name given: USER first");
		return;
	}
	pw = strdup(arg);
	if (pw == NULL) {
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	pop_auth_start(ps, "USER", ps->user, pw);
	free(ps->user);
	ps->user = NULL;
}

static void
pop_cmd_auth(struct pop_sess *ps, const char *arg)
{
	char mech[32];
	const char *ir;
	size_t n = strcspn(arg, " ");

	if (*arg == '\0') {
		/* RFC 1734 style: list the mechanisms */
		pop_reply(ps, "+OK");
		if (pop_plaintext_ok(ps))
			pop_reply(ps, "PLAIN");
		pop_reply(ps, ".");
		return;
	}
	if (n >= sizeof(mech) || strncasecmp(arg, "PLAIN", n) != 0 ||
	    n != 5) {
		pop_reply(ps, "-ERR Unsupported authentication mechanism.");
		return;
	}
	if (!pop_plaintext_ok(ps)) {
		pop_reply(ps, "-ERR Plaintext authentication disallowed on "
			  "non-secure connections");
		return;
	}
	ir = arg + n;
	while (*ir == ' ')
		ir++;
	if (*ir == '\0') {
		ps->sasl_wait = true;
		pop_reply(ps, "+ ");
		return;
	}
	pop_sasl_plain(ps, ir);
}

/* pop_msg_arg - the message a numeric argument names, or NULL after an
 * error reply (bad number, out of range, deleted). */
static struct pop_msg *
pop_msg_arg(struct pop_sess *ps, const char *arg, const char **rest_r)
{
	char num[24];
	size_t n = strcspn(arg, " ");
	uint64_t i;

	if (rest_r != NULL) {
		*rest_r = arg + n;
		while (**rest_r == ' ')
			(*rest_r)++;
	}
	if (n == 0 || n >= sizeof(num)) {
		pop_reply(ps, "-ERR Invalid message number");
		return NULL;
	}
	memcpy(num, arg, n);
	num[n] = '\0';
	if (!pop_parse_num(num, &i) || i == 0) {
		pop_reply(ps, "-ERR Invalid message number: %s", num);
		return NULL;
	}
	if (i > ps->nmsg) {
		pop_reply(ps, "-ERR There's no message %" PRIu64 ".", i);
		return NULL;
	}
	if (ps->msgs[i - 1].deleted) {
		pop_reply(ps, "-ERR Message %" PRIu64 " is deleted.", i);
		return NULL;
	}
	return &ps->msgs[i - 1];
}

static void
pop_cmd_stat(struct pop_sess *ps, const char *arg)
{
	uint64_t size = 0, count = 0;
	size_t i;

	(void)arg;
	for (i = 0; i < ps->nmsg; i++) {
		if (!ps->msgs[i].deleted) {
			count++;
			size += ps->msgs[i].vsize;
		}
	}
	pop_reply(ps, "+OK %" PRIu64 " %" PRIu64, count, size);
}

static void
pop_cmd_list_uidl(struct pop_sess *ps, const char *arg, bool uidl)
{
	struct pop_msg *m;
	size_t i;

	if (*arg != '\0') {
		m = pop_msg_arg(ps, arg, NULL);
		if (m == NULL)
			return;
		if (uidl)
			pop_reply(ps, "+OK %zu %s",
				  (size_t)(m - ps->msgs) + 1, m->uid);
		else
			pop_reply(ps, "+OK %zu %" PRIu64,
				  (size_t)(m - ps->msgs) + 1, m->vsize);
		return;
	}
	pop_reply(ps, "+OK");
	for (i = 0; i < ps->nmsg; i++) {
		m = &ps->msgs[i];
		if (m->deleted)
			continue;
		if (uidl)
			pop_reply(ps, "%zu %s", i + 1, m->uid);
		else
			pop_reply(ps, "%zu %" PRIu64, i + 1, m->vsize);
	}
	pop_reply(ps, ".");
}

static void
pop_cmd_list(struct pop_sess *ps, const char *arg)
{
	pop_cmd_list_uidl(ps, arg, false);
}

static void
pop_cmd_uidl(struct pop_sess *ps, const char *arg)
{
	pop_cmd_list_uidl(ps, arg, true);
}

/* pop_retr_start - RETR and TOP: stream the message from the pool */
static void
pop_retr_start(struct pop_sess *ps, struct pop_msg *m, bool top,
	       uint64_t lines)
{
	struct pop_xfer *x = calloc(1, sizeof(*x));

	if (x == NULL || (x->mbox = strdup(ps->mbox)) == NULL ||
	    (x->rel = strdup(m->name)) == NULL) {
		if (x != NULL)
			free(x->mbox);
		free(x);
		pop_reply(ps, "-ERR [SYS/TEMP] Out of memory");
		return;
	}
	x->ps = ps;
	x->fd = -1;
	x->top = top;
	x->top_lines = lines;
	x->line_start = true;
	x->in_headers = true;
	ps->xfer = x;
	pop_pause(ps);
	sc_session_set_busy(ps->s, true);
	/* the client reads, not writes, during a long transfer; the stall
	 * timer guards it instead of the input timeout */
	sc_conn_set_timeout(ps->c, 0);
	pop_xfer_submit(ps);
}

static void
pop_cmd_retr(struct pop_sess *ps, const char *arg)
{
	struct pop_msg *m = pop_msg_arg(ps, arg, NULL);

	if (m != NULL)
		pop_retr_start(ps, m, false, 0);
}

static void
pop_cmd_top(struct pop_sess *ps, const char *arg)
{
	const char *rest = NULL;
	struct pop_msg *m;
	uint64_t lines;

	m = pop_msg_arg(ps, arg, &rest);
	if (m == NULL)
		return;
	if (!pop_parse_num(rest, &lines)) {
		pop_reply(ps, "-ERR Invalid number of lines");
		return;
	}
	pop_retr_start(ps, m, true, lines);
}

static void
pop_cmd_dele(struct pop_sess *ps, const char *arg)
{
	struct pop_msg *m = pop_msg_arg(ps, arg, NULL);

	if (m == NULL)
		return;
	m->deleted = true;
	pop_reply(ps, "+OK Marked to be deleted.");
}

static void
pop_cmd_rset(struct pop_sess *ps, const char *arg)
{
	size_t i;

	(void)arg;
	for (i = 0; i < ps->nmsg; i++)
		ps->msgs[i].deleted = false;
	pop_reply(ps, "+OK");
}

static void
pop_cmd_noop(struct pop_sess *ps, const char *arg)
{
	(void)arg;
	pop_reply(ps, "+OK");
}

static void
pop_update_done(void *arg)
{
	struct pop_job *j = arg;
	struct pop_sess *ps = j->ps;

	if (ps->s != NULL) {
		sc_log_session(SC_LOG_INFO, ps->s,
			       "pop3: logout user=%s deleted=%zu failed=%zu",
			       ps->login, j->ndel - j->failed, j->failed);
		if (j->failed > 0)
			pop_reply(ps, "-ERR [SYS/TEMP] Some deleted messages "
				  "were not removed");
		else
			pop_reply(ps, "+OK Logging out, messages deleted.");
		sc_session_set_busy(ps->s, false);
		pop_close(ps);
	}
	pop_job_free(j);
	pop_sess_unref(ps);
}

static void
pop_cmd_quit(struct pop_sess *ps, const char *arg)
{
	struct pop_job *j;
	size_t i;

	(void)arg;
	if (ps->state != POP_TRANSACTION) {
		pop_reply(ps, "+OK Logging out.");
		pop_close(ps);
		return;
	}
	ps->state = POP_UPDATE;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto fail;
	j->ps = ps;
	j->pd = ps->pd;
	for (i = 0; i < ps->nmsg; i++)
		if (ps->msgs[i].deleted)
			j->ndel++;
	if (j->ndel == 0) {
		pop_job_free(j);
		sc_log_session(SC_LOG_INFO, ps->s,
			       "pop3: logout user=%s deleted=0", ps->login);
		pop_reply(ps, "+OK Logging out.");
		pop_close(ps);
		return;
	}
	j->del = calloc(j->ndel, sizeof(*j->del));
	j->mbox = strdup(ps->mbox);
	if (j->del == NULL || j->mbox == NULL)
		goto fail;
	j->ndel = 0;
	for (i = 0; i < ps->nmsg; i++) {
		if (!ps->msgs[i].deleted)
			continue;
		j->del[j->ndel] = strdup(ps->msgs[i].name);
		if (j->del[j->ndel++] == NULL)
			goto fail;
	}
	pop_pause(ps);
	sc_session_set_busy(ps->s, true);
	ps->refs++;
	if (sc_work_submit_inst(ps->pd->inst, pop_job_update,
				pop_update_done, j) < 0) {
		ps->refs--;
		goto fail;
	}
	return;
fail:
	if (j != NULL)
		pop_job_free(j);
	pop_reply(ps, "-ERR [SYS/TEMP] Some deleted messages were not "
		  "removed");
	pop_close(ps);
}

#define ST_AUTH  (1u << POP_AUTHORIZATION)
#define ST_TRANS (1u << POP_TRANSACTION)

static const struct pop_cmd {
	const char *verb;
	unsigned states;
	void (*fn)(struct pop_sess *ps, const char *arg);
} pop_cmds[] = {
	{ "CAPA", ST_AUTH | ST_TRANS, pop_cmd_capa },
	{ "STLS", ST_AUTH, pop_cmd_stls },
	{ "USER", ST_AUTH, pop_cmd_user },
	{ "PASS", ST_AUTH, pop_cmd_pass },
	{ "AUTH", ST_AUTH, pop_cmd_auth },
	{ "STAT", ST_TRANS, pop_cmd_stat },
	{ "LIST", ST_TRANS, pop_cmd_list },
	{ "UIDL", ST_TRANS, pop_cmd_uidl },
	{ "RETR", ST_TRANS, pop_cmd_retr },
	{ "TOP", ST_TRANS, pop_cmd_top },
	{ "DELE", ST_TRANS, pop_cmd_dele },
	{ "RSET", ST_TRANS, pop_cmd_rset },
	{ "NOOP", ST_TRANS, pop_cmd_noop },
	{ "QUIT", ST_AUTH | ST_TRANS, pop_cmd_quit },
};

/* pop_command - dispatch one command line */
static void
pop_command(struct pop_sess *ps, char *line)
{
	size_t n = strcspn(line, " "), i;
	char *arg = line + n;

	if (*arg == ' ')
		*arg++ = '\0';
	for (i = 0; i < sizeof(pop_cmds) / sizeof(pop_cmds[0]); i++) {
		const struct pop_cmd *c = &pop_cmds[i];

		if (strcasecmp(line, c->verb) != 0)
			continue;
		if ((c->states & (1u << ps->state)) == 0) {
			pop_reply(ps, ps->state == POP_AUTHORIZATION ?
				  "-ERR Unknown command in AUTHORIZATION "
				  "state: log in first" :
				  "-ERR Command not valid in this state");
			return;
		}
		/* PASS may hold spaces; the others take trimmed words */
		if (c->fn != pop_cmd_pass) {
			size_t l = strlen(arg);
			while (l > 0 && arg[l - 1] == ' ')
				arg[--l] = '\0';
		}
		c->fn(ps, arg);
		return;
	}
	pop_reply(ps, "-ERR Unknown command.");
}

/* pop_input - run the buffered command lines until one goes async */
static void
pop_input(struct pop_sess *ps)
{
	if (ps->in_input)
		return;
	ps->in_input = true;
	ps->refs++;
	while (ps->s != NULL && !ps->busy) {
		size_t max = ps->sasl_wait ? POP_SASL_MAX : POP_LINE_MAX;
		char buf[POP_SASL_MAX + 1];
		const char *line = NULL;
		size_t len;
		/* before login every line may carry a password (PASS, AUTH
		 * PLAIN and its response): wipe it from the connection's
		 * input once handled */
		bool secret = ps->sasl_wait || ps->state == POP_AUTHORIZATION;
		int r;

		r = sc_conn_getline(ps->c, max, &line, &len, NULL);
		if (r == 0)
			break;
		if (r < 0) {
			ps->sasl_wait = false;
			pop_reply(ps, "-ERR Line too long");
		} else if (memchr(line, '\0', len) != NULL) {
			ps->sasl_wait = false;
			pop_reply(ps, "-ERR Invalid NUL in command");
		} else {
			memcpy(buf, line, len);
			buf[len] = '\0';
			if (ps->sasl_wait) {
				ps->sasl_wait = false;
				pop_sasl_plain(ps, buf);
			} else {
				pop_command(ps, buf);
			}
			explicit_bzero(buf, len);
		}
		if (secret && ps->c != NULL)	/* NULL: the session closed */
			sc_conn_wipe_input(ps->c);
	}
	ps->in_input = false;
	pop_sess_unref(ps);
}

static void
pop_conn_event(struct sc_conn *c, enum sc_conn_event ev, void *arg)
{
	struct pop_sess *ps = arg;

	(void)c;
	if (ps->s == NULL)
		return;
	switch (ev) {
	case SC_CONN_DATA:
		pop_input(ps);
		break;
	case SC_CONN_EOF:
	case SC_CONN_ERROR:
		/* a dropped connection deletes nothing (RFC 1939 6) */
		pop_close(ps);
		break;
	case SC_CONN_TIMEOUT:
		pop_reply(ps, "-ERR Disconnected for inactivity.");
		pop_close(ps);
		break;
	case SC_CONN_DRAINED:
		if (ps->xfer != NULL && ps->xfer->wait_drain &&
		    !ps->xfer->running) {
			ps->xfer->wait_drain = false;
			sc_timer_stop(ps->stall_timer);
			pop_xfer_submit(ps);
		}
		break;
	}
}

static void
pop_connect_done(struct sc_session *s, const struct sc_hook_outcome *out,
		 void *arg)
{
	struct pop_sess *ps = arg;
	struct sc_event ev;

	(void)s;
	if (out->result != SC_CONT && out->result != SC_OK) {
		sc_log_session(SC_LOG_INFO, ps->s, "pop3: connection from %s "
			       "refused by %s", sc_session_client_ip(ps->s),
			       out->instance ? out->instance : "a hook");
		pop_reply(ps, "-ERR [SYS/TEMP] %s", out->reply.text != NULL ?
			  out->reply.text : "Connection refused");
		pop_close(ps);
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_CONNECT;
	ev.session = ps->s;
	ev.protocol = "pop3";
	ev.client_ip = sc_session_client_ip(ps->s);
	sc_event_emit(&ev);
	if (ps->s == NULL)
		return;
	if (ps->tls == POP_TLS_IMPLICIT) {
		if (sc_conn_starttls(ps->c, pop_tls_done, ps) < 0)
			pop_close(ps);
		return;
	}
	ps->greeted = true;
	pop_reply(ps, "+OK %s POP3 server ready", sc_config_hostname());
	pop_resume(ps);
}

/* pop_accept - a new connection: set up the session, ask the connect
 * hook (rate limits), then greet (after the handshake on implicit TLS) */
static void
pop_accept(struct sc_session *s, void *arg)
{
	struct pop_listener *l = arg;
	struct pop_inst *pd = l->pd;
	struct pop_sess *ps = calloc(1, sizeof(*ps));

	if (ps == NULL) {
		sc_session_close(s);
		return;
	}
	ps->refs = 1;
	ps->pd = pd;
	pd->refs++;
	ps->s = s;
	ps->c = sc_session_conn(s);
	ps->tls = l->tls;
	ps->state = POP_AUTHORIZATION;
	ps->delay_timer = sc_timer_new(pop_fail_delay_done, ps);
	ps->stall_timer = sc_timer_new(pop_stall_timeout, ps);
	if (ps->delay_timer == NULL || ps->stall_timer == NULL ||
	    sc_session_set_data(s, pd->inst, ps, pop_sess_gone) < 0) {
		pop_sess_gone(ps);
		sc_session_close(s);
		return;
	}
	sc_conn_set_handler(ps->c, pop_conn_event, ps);
	sc_conn_set_timeout(ps->c, pd->cmd_timeout);
	sc_log_session(SC_LOG_INFO, s, "pop3: connect from %s to port %u",
		       sc_session_client_ip(s), sc_session_local_port(s));
	pop_pause(ps);
	if (sc_hook_run(s, SC_HOOK_CONNECT, NULL, pop_connect_done, ps) < 0)
		pop_close(ps);
}

/* ---- instance lifecycle ---- */

static size_t
pop_status(char *buf, size_t len, void *data)
{
	struct pop_inst *pd = data;
	size_t locked = 0;
	struct pop_lock *l;
	int n;

	for (l = pd->locks; l != NULL; l = l->next)
		locked++;
	n = snprintf(buf, len, "pop3 mailboxes open: %zu\n"
		     "pop3 logins: %" PRIu64 "\npop3 auth failures: %" PRIu64,
		     locked, pd->logins, pd->failures);
	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

static int
pop_instance_new(struct sc_instance *inst, const void *config,
		 void **data_r, const char **error_r)
{
	const struct pop_conf *conf = config;
	const struct pop_listen_conf *lc = conf->listen.v;
	struct pop_inst *pd;
	size_t i;

	if (conf->listen.n == 0) {
		*error_r = "listen: at least one listener is needed";
		return -1;
	}
	if (conf->timeouts.command < 10 * 60 * 1000)
		sc_log_warning("%s: timeouts.command is below the 10 minutes "
			       "RFC 1939 requires", sc_instance_file(inst));
	pd = calloc(1, sizeof(*pd));
	if (pd == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	pd->refs = 1;
	pd->inst = inst;
	pd->cmd_timeout = conf->timeouts.command;
	pd->fail_delay = conf->auth_failure_delay;
	pd->max_failures = conf->max_auth_failures ?
		conf->max_auth_failures : 1;
	pthread_mutex_init(&pd->cache_mutex, NULL);
	pd->listeners = calloc(conf->listen.n, sizeof(*pd->listeners));
	if (pd->listeners == NULL) {
		pop_inst_unref(pd);
		*error_r = "out of memory";
		return -1;
	}
	pd->listener_count = conf->listen.n;
	for (i = 0; i < conf->listen.n; i++) {
		pd->listeners[i].pd = pd;
		pd->listeners[i].tls = lc[i].tls;
		if (sc_listen_open(inst, &lc[i].address, "pop3", pop_accept,
				   &pd->listeners[i], error_r) < 0) {
			pop_inst_unref(pd);
			return -1;
		}
	}
	*data_r = pd;
	return 0;
}

static int
pop_instance_start(struct sc_instance *inst, void *data,
		   const char **error_r)
{
	(void)error_r;
	/* status lines are optional: a failure here is not fatal */
	(void)sc_status_register(inst, pop_status, data);
	return 0;
}

static void
pop_instance_free(struct sc_instance *inst, void *data)
{
	struct pop_inst *pd = data;

	(void)inst;
	pd->inst = NULL;
	pop_inst_unref(pd);
}

SC_MODULE(pop3,
	.version = "1.0",
	.description = "POP3 listener on Maildir mailboxes (RFC 1939, 2449, "
		       "2595, 5034)",
	.keys = pop_keys,
	.config_size = sizeof(struct pop_conf),
	.instance_new = pop_instance_new,
	.instance_start = pop_instance_start,
	.instance_free = pop_instance_free,
);
