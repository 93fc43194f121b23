/* SPDX-License-Identifier: MIT */
/*
 * modules/auth_file/auth_file.c - password file authentication backend.
 *
 * Hooks (auth, account) run on the event loop thread; reading the file and
 * crypt(3) run on the libuv thread pool via sc_work_submit_inst. The
 * table is re-read when the file's inode, size, mtime or ctime change
 * (checked once a second), so `satchelctl user add` takes effect without a
 * reload.
 */
#define _GNU_SOURCE
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <satchel/satchel.h>

#define AF_LINE_MAX	4096
#define AF_FILE_MAX	(64u * 1024 * 1024)
#define AF_POLL_MS	1000
#define AF_PASSWORD_MAX	1024

struct af_conf {
	char *path;
};

static const struct sc_config_key af_keys[] = {
	{ "path", SC_KEY_PATH, offsetof(struct af_conf, path), NULL,
	  SC_KEY_REQUIRED, "the password file (user@domain:{SCHEME}hash)",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 },
};

struct af_entry {
	char *addr;		/* lower-case                     */
	char *hash;		/* the crypt(3) string, no scheme */
	size_t line;		/* line number: the first duplicate wins */
};

/* One loaded version of the file: sorted by addr for bsearch. */
struct af_table {
	size_t n;
	struct af_entry *v;
};

/* What identifies a version of the file on disk. */
struct af_stamp {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
};

struct af_reload;

struct af_data {
	struct sc_instance *inst;
	char *path;
	struct af_table *table;
	struct af_stamp stamp;
	struct sc_timer *timer;
	struct af_reload *job;	/* reload in flight, or NULL */
};

/* A reload job: owns its copies; detached (data = NULL) if the instance
 * goes away while it runs. */
struct af_reload {
	struct af_data *data;
	char *path;
	struct af_stamp old, now;
	bool changed;
	int error;		/* errno of a failed open/read, 0 = ok */
	struct af_table *table;	/* the new table when changed and read */
};

/* A password check job. */
struct af_verify {
	struct sc_hook_call *call;
	char *addr;
	char *hash;
	char *password;
	bool ok;
};

/* ---- table ---- */

static void
af_table_free(struct af_table **tp)
{
	struct af_table *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].addr);
		free(t->v[i].hash);
	}
	free(t->v);
	free(t);
	*tp = NULL;
}

static int
af_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct af_entry *)a)->addr,
		      ((const struct af_entry *)b)->addr);
}

static int
af_entry_sort_cmp(const void *a, const void *b)
{
	const struct af_entry *x = a, *y = b;
	int c = strcmp(x->addr, y->addr);

	if (c != 0)
		return c;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* af_table_find - the entry for addr (compared case-insensitively) */
static const struct af_entry *
af_table_find(const struct af_table *t, const char *addr)
{
	char key[320];
	struct af_entry k = { .addr = key };
	size_t len = strlen(addr);

	if (t == NULL || t->n == 0 || len >= sizeof(key))
		return NULL;	/* t->n == 0: t->v is NULL, no bsearch */
	for (size_t i = 0; i <= len; i++)
		key[i] = (char)tolower((unsigned char)addr[i]);
	return bsearch(&k, t->v, t->n, sizeof(*t->v), af_entry_cmp);
}

/* af_hash_from_field - checks the {SCHEME} of a password field against
 * the hash it carries; returns the crypt(3) string or NULL with why */
static const char *
af_hash_from_field(const char *field, const char **why_r)
{
	static const struct {
		const char *scheme;
		const char *prefix;	/* NULL = any crypt(3) hash */
	} schemes[] = {
		{ "{SHA512-CRYPT}", "$6$" },
		{ "{BCRYPT}", "$2" },
		{ "{BLF-CRYPT}", "$2" },	/* Dovecot's name for it */
		{ "{YESCRYPT}", "$y$" },
		{ "{CRYPT}", NULL },
	};
	const char *hash = NULL;

	if (field[0] == '{') {
		for (size_t i = 0; i < sizeof(schemes) / sizeof(*schemes);
		     i++) {
			size_t sl = strlen(schemes[i].scheme);

			if (strncasecmp(field, schemes[i].scheme, sl) != 0)
				continue;
			hash = field + sl;
			if (schemes[i].prefix != NULL &&
			    strncmp(hash, schemes[i].prefix,
				    strlen(schemes[i].prefix)) != 0) {
				*why_r = "hash does not match its {SCHEME}";
				return NULL;
			}
			break;
		}
		if (hash == NULL) {
			*why_r = "unsupported {SCHEME} (use SHA512-CRYPT, "
				 "BCRYPT, YESCRYPT or CRYPT)";
			return NULL;
		}
	} else if (field[0] == '$') {
		hash = field;	/* a bare modular crypt string */
	} else {
		*why_r = "password field is not {SCHEME}hash";
		return NULL;
	}
	if (strlen(hash) < 4) {
		*why_r = "hash too short";
		return NULL;
	}
	for (const char *p = hash; *p != '\0'; p++) {
		if (!isgraph((unsigned char)*p)) {
			*why_r = "invalid character in hash";
			return NULL;
		}
	}
	return hash;
}

/* af_parse_line - one line into *e; 1 entry, 0 blank/comment, -1 bad */
static int
af_parse_line(char *line, struct af_entry *e, const char **why_r)
{
	char *colon, *field, *end, *at;
	const char *hash;

	while (*line == ' ' || *line == '\t')
		line++;
	end = line + strlen(line);
	while (end > line && (end[-1] == '\r' || end[-1] == ' ' ||
			      end[-1] == '\t'))
		*--end = '\0';
	if (*line == '\0' || *line == '#')
		return 0;
	colon = strchr(line, ':');
	if (colon == NULL) {
		*why_r = "missing ':' after the address";
		return -1;
	}
	*colon = '\0';
	at = strchr(line, '@');
	if (at == NULL || at == line || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL) {
		*why_r = "the user must be an address user@domain";
		return -1;
	}
	for (char *p = line; *p != '\0'; p++) {
		if ((unsigned char)*p <= ' ') {
			*why_r = "whitespace in the address";
			return -1;
		}
		*p = (char)tolower((unsigned char)*p);
	}
	field = colon + 1;
	/* Further ':' fields (Dovecot passwd-file extras) are ignored. */
	if ((end = strchr(field, ':')) != NULL)
		*end = '\0';
	if ((hash = af_hash_from_field(field, why_r)) == NULL)
		return -1;
	e->addr = strdup(line);
	e->hash = strdup(hash);
	if (e->addr == NULL || e->hash == NULL) {
		free(e->addr);
		free(e->hash);
		*why_r = "out of memory";
		return -1;
	}
	return 1;
}

/* af_table_read - parses the file (pool thread). Bad lines are logged
 * with FILE:LINE and skipped; duplicates keep the first. */
static struct af_table *
af_table_read(const char *path, int *error_r)
{
	struct af_table *t;
	char line[AF_LINE_MAX + 2];
	size_t cap = 0, lineno = 0, w;
	FILE *f;

	*error_r = 0;
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		*error_r = ENOMEM;
		return NULL;
	}
	f = fopen(path, "re");
	if (f == NULL) {
		*error_r = errno;
		if (errno == ENOENT)
			return t;	/* empty until someone creates it */
		free(t);
		return NULL;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);
		struct af_entry e = { 0 };
		const char *why = NULL;
		int r;

		lineno++;
		if (len > 0 && line[len - 1] == '\n') {
			line[--len] = '\0';
		} else if (!feof(f)) {
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			sc_log_warning("%s:%zu: line too long, skipped",
				       path, lineno);
			continue;
		}
		if (memchr(line, '\0', len) != NULL && strlen(line) != len) {
			sc_log_warning("%s:%zu: NUL byte, skipped", path,
				       lineno);
			continue;
		}
		r = af_parse_line(line, &e, &why);
		if (r < 0) {
			sc_log_warning("%s:%zu: %s; line skipped", path,
				       lineno, why);
			continue;
		}
		if (r == 0)
			continue;
		e.line = lineno;
		if (t->n == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct af_entry *nv = realloc(t->v, nc * sizeof(*nv));

			if (nv == NULL) {
				free(e.addr);
				free(e.hash);
				*error_r = ENOMEM;
				break;
			}
			t->v = nv;
			cap = nc;
		}
		t->v[t->n++] = e;
	}
	if (ferror(f) && *error_r == 0)
		*error_r = EIO;
	fclose(f);
	if (*error_r != 0) {
		af_table_free(&t);
		return NULL;
	}
	/* Sorted by address, then line: of duplicates the first line
	 * wins, as a reader of the file would expect. */
	if (t->n > 0)	/* an empty file has t->v == NULL: no qsort */
		qsort(t->v, t->n, sizeof(*t->v), af_entry_sort_cmp);
	w = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (w > 0 && strcmp(t->v[w - 1].addr, t->v[i].addr) == 0) {
			sc_log_warning("%s: %s listed more than once; one "
				       "entry is used", path, t->v[i].addr);
			free(t->v[i].addr);
			free(t->v[i].hash);
			continue;
		}
		t->v[w++] = t->v[i];
	}
	t->n = w;
	return t;
}

/* ---- reloading ---- */

/* af_stat - the current stamp of path (pool thread or start) */
static void
af_stat(const char *path, struct af_stamp *st)
{
	struct stat sb;

	memset(st, 0, sizeof(*st));
	if (stat(path, &sb) < 0)
		return;
	st->exists = true;
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->mtime = sb.st_mtim;
	st->ctime = sb.st_ctim;
}

static bool
af_stamp_equal(const struct af_stamp *a, const struct af_stamp *b)
{
	if (a->exists != b->exists)
		return false;
	if (!a->exists)
		return true;
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
		a->mtime.tv_sec == b->mtime.tv_sec &&
		a->mtime.tv_nsec == b->mtime.tv_nsec &&
		a->ctime.tv_sec == b->ctime.tv_sec &&
		a->ctime.tv_nsec == b->ctime.tv_nsec;
}

/* af_reload_work - pool thread: stat, and read the file if it changed */
static void
af_reload_work(void *arg)
{
	struct af_reload *job = arg;

	af_stat(job->path, &job->now);
	if (af_stamp_equal(&job->old, &job->now))
		return;
	job->changed = true;
	job->table = af_table_read(job->path, &job->error);
}

static void
af_reload_job_free(struct af_reload *job)
{
	af_table_free(&job->table);
	free(job->path);
	free(job);
}

/* af_reload_done - loop thread: swap the new table in */
static void
af_reload_done(void *arg)
{
	struct af_reload *job = arg;
	struct af_data *d = job->data;

	if (d == NULL) {	/* the instance went away meanwhile */
		af_reload_job_free(job);
		return;
	}
	d->job = NULL;
	if (job->changed) {
		if (job->table == NULL) {
			/* Keep the old table: a file we cannot read is
			 * more likely a mistake than "no users". */
			sc_log_error("auth_file %s: %s: %s; keeping the "
				     "previous %zu users",
				     sc_instance_name(d->inst), job->path,
				     strerror(job->error),
				     d->table != NULL ? d->table->n : 0);
		} else {
			af_table_free(&d->table);
			d->table = job->table;
			job->table = NULL;
			sc_log_info("auth_file %s: loaded %zu users from %s",
				    sc_instance_name(d->inst), d->table->n,
				    job->path);
		}
		/* Remember the stamp either way, so an unreadable file is
		 * not retried (and logged) every second until it changes. */
		d->stamp = job->now;
	}
	af_reload_job_free(job);
}

/* af_reload_start - submits a reload check unless one is in flight */
static void
af_reload_start(struct af_data *d)
{
	struct af_reload *job;

	if (d->job != NULL)
		return;
	job = calloc(1, sizeof(*job));
	if (job == NULL || (job->path = strdup(d->path)) == NULL) {
		free(job);
		return;
	}
	job->data = d;
	job->old = d->stamp;
	if (sc_work_submit_inst(d->inst, af_reload_work, af_reload_done,
				job) < 0) {
		af_reload_job_free(job);
		return;
	}
	d->job = job;
}

static void
af_timer_fn(struct sc_timer *t, void *arg)
{
	(void)t;
	af_reload_start(arg);
}

/* ---- verification ---- */

/* af_consttime_eq - compares without an early exit, so the time taken
 * does not tell how many leading bytes matched */
static bool
af_consttime_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t n = la > lb ? la : lb;
	volatile unsigned char diff = (unsigned char)(la != lb);

	for (size_t i = 0; i < n; i++) {
		unsigned char ca = i < la ? (unsigned char)a[i] : 0;
		unsigned char cb = i < lb ? (unsigned char)b[i] : 0;

		diff |= ca ^ cb;
	}
	return diff == 0;
}

/* af_verify_work - pool thread: crypt_rn with a heap crypt_data (it is
 * ~32 KiB: too big for a pool thread's stack to be comfortable). crypt_rn
 * rather than crypt_r: the same function, but NULL on failure, and not
 * wrapped by the sanitizers' crypt_r interceptor, which crashes when
 * libcrypt arrives with a dlopen'ed module. */
static void
af_verify_work(void *arg)
{
	struct af_verify *v = arg;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *h;

	if (cd == NULL)
		return;
	h = crypt_rn(v->password, v->hash, cd, (int)sizeof(*cd));
	v->ok = h != NULL && h[0] != '*' && af_consttime_eq(h, v->hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
}

static void
af_verify_free(struct af_verify *v)
{
	if (v->password != NULL) {
		explicit_bzero(v->password, strlen(v->password));
		free(v->password);
	}
	free(v->addr);
	free(v->hash);
	free(v);
}

/* af_verify_done - loop thread: finish the pending auth call */
static void
af_verify_done(void *arg)
{
	struct af_verify *v = arg;

	if (v->ok) {
		sc_auth_set_user(v->call, v->addr);
		sc_hook_done(v->call, SC_OK);
	} else {
		sc_log_session(SC_LOG_NOTICE, sc_hook_session(v->call),
			       "auth_file: wrong password for %s", v->addr);
		sc_hook_done(v->call, SC_DENY);
	}
	af_verify_free(v);
}

/* af_auth - SC_HOOK_AUTH: not in the file = CONT; else check async */
static enum sc_result
af_auth(struct sc_hook_call *call, void *data)
{
	struct af_data *d = data;
	const struct sc_auth_request *req = sc_hook_arg(call);
	const struct af_entry *e;
	struct af_verify *v;

	if (req == NULL || req->user == NULL || req->password == NULL)
		return SC_CONT;
	e = af_table_find(d->table, req->user);
	if (e == NULL)
		return SC_CONT;
	if (strlen(req->password) > AF_PASSWORD_MAX)
		return SC_DENY;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		goto fail;
	v->call = call;
	v->addr = strdup(e->addr);
	/* Copies: the table may be swapped while the job runs. */
	v->hash = strdup(e->hash);
	v->password = strdup(req->password);
	if (v->addr == NULL || v->hash == NULL || v->password == NULL)
		goto fail;
	if (sc_work_submit_inst(d->inst, af_verify_work, af_verify_done,
				v) < 0)
		goto fail;
	return SC_PENDING;
fail:
	if (v != NULL)
		af_verify_free(v);
	sc_reply_set(call, 454, "4.7.0", "Temporary authentication failure");
	return SC_DENYSOFT;
}

/* af_account - SC_HOOK_ACCOUNT: OK when the address is in the file */
static enum sc_result
af_account(struct sc_hook_call *call, void *data)
{
	struct af_data *d = data;
	const struct sc_account_request *req = sc_hook_arg(call);

	if (req == NULL || req->address == NULL)
		return SC_CONT;
	return af_table_find(d->table, req->address) != NULL ? SC_OK :
		SC_CONT;
}

static size_t
af_status(char *buf, size_t len, void *data)
{
	struct af_data *d = data;
	int n = snprintf(buf, len, "file: %s\nusers: %zu", d->path,
			 d->table != NULL ? d->table->n : 0);

	if (n < 0)
		return 0;
	return (size_t)n < len ? (size_t)n : len - 1;
}

/* ---- lifecycle ---- */

static int
af_instance_new(struct sc_instance *inst, const void *config, void **data_r,
		const char **error_r)
{
	const struct af_conf *conf = config;
	struct af_data *d;

	if (conf->path == NULL || conf->path[0] == '\0') {
		*error_r = "auth_file: path is required";
		return -1;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL || (d->path = strdup(conf->path)) == NULL) {
		free(d);
		*error_r = "auth_file: out of memory";
		return -1;
	}
	d->inst = inst;
	*data_r = d;
	return 0;
}

/* af_instance_start - first load (after the privilege drop, so it reads
 * the file with the daemon's own rights), then watch for changes */
static int
af_instance_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct af_data *d = data;
	int err = 0;

	/* XXX a synchronous read of a small file at start-up (and at
	 * reload): users must be known before the first session, and
	 * later re-reads happen on the thread pool. */
	af_stat(d->path, &d->stamp);
	d->table = af_table_read(d->path, &err);
	if (d->table == NULL) {
		sc_log_error("auth_file %s: %s: %s", sc_instance_name(inst),
			     d->path, strerror(err));
		*error_r = err == EACCES ?
			"auth_file: the password file is not readable by the "
			"daemon's user (satchelctl creates it 0640 with the "
			"daemon user's group)" :
			"auth_file: cannot read the password file";
		return -1;
	}
	if (err == ENOENT)
		sc_log_warning("auth_file %s: %s does not exist yet; no users "
			       "until it is created (satchelctl user add)",
			       sc_instance_name(inst), d->path);
	else
		sc_log_info("auth_file %s: loaded %zu users from %s",
			    sc_instance_name(inst), d->table->n, d->path);

	d->timer = sc_timer_new(af_timer_fn, d);
	if (d->timer == NULL) {
		*error_r = "auth_file: cannot create the reload timer";
		return -1;
	}
	sc_timer_start(d->timer, AF_POLL_MS, AF_POLL_MS);
	if (sc_hook_register(inst, SC_HOOK_AUTH, af_auth, d) < 0 ||
	    sc_hook_register(inst, SC_HOOK_ACCOUNT, af_account, d) < 0) {
		*error_r = "auth_file: cannot register hooks";
		return -1;
	}
	(void)sc_status_register(inst, af_status, d);
	return 0;
}

static void
af_instance_free(struct sc_instance *inst, void *data)
{
	struct af_data *d = data;

	(void)inst;
	if (d == NULL)
		return;
	sc_timer_free(&d->timer);
	if (d->job != NULL)
		d->job->data = NULL;	/* its done callback frees it */
	af_table_free(&d->table);
	free(d->path);
	free(d);
}

SC_MODULE(auth_file,
	.version = "1.0",
	.description = "password file authentication backend",
	.keys = af_keys,
	.config_size = sizeof(struct af_conf),
	.instance_new = af_instance_new,
	.instance_start = af_instance_start,
	.instance_free = af_instance_free);
