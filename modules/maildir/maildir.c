/* SPDX-License-Identifier: MIT */
/*
 * maildir - the LOCAL delivery driver: writes each recipient's copy to
 * tmp/, fsyncs it and renames it into new/ of the Maildir `path` names,
 * with Return-Path:, Delivered-To: and Received: prepended. Hooks and
 * results run on the loop thread; the file work runs on the thread pool.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <satchel/satchel.h>

#include "maildir_int.h"

#define MD_LOCAL_MAX 64
#define MD_DOMAIN_MAX 255
/* Counter values reserved per recipient: a name clash (two instances in
 * one process, a clock step back) moves on to the next one. */
#define MD_TRIES 16
#define MD_COPY_BUF (64u * 1024)

struct maildir_conf {
	char *path;
	struct sc_str_list mailboxes;
	char *mode;
};

/* LOCALSTATEDIR/mail/vhosts/%d/%u, from the build (local.mk) */
#ifndef MD_DEFAULT_PATH
#define MD_DEFAULT_PATH "/var/mail/vhosts/%d/%u"
#endif

static const struct sc_config_key maildir_keys[] = {
	{ "path", SC_KEY_PATH, offsetof(struct maildir_conf, path),
	  MD_DEFAULT_PATH, 0,
	  "Maildir of each mailbox: %d domain, %u local part, %% a percent",
	  NULL, NULL, 0 },
	{ "mailboxes", SC_KEY_STR_LIST,
	  offsetof(struct maildir_conf, mailboxes), NULL, 0,
	  "addresses that have a mailbox even without an auth backend account",
	  NULL, NULL, 0 },
	{ "mode", SC_KEY_STR, offsetof(struct maildir_conf, mode), "0600", 0,
	  "octal mode of message files; directories get x where r is set",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

struct maildir {
	struct sc_instance *inst;
	char *tmpl;			/* the path template             */
	size_t mailbox_count;
	char **mailboxes;		/* lower-case                    */
	mode_t fmode, dmode;
	uint64_t counter;		/* for unique names              */
	struct md_dirsync *dirsync;	/* new/ syncs shared by jobs     */
	struct sc_delivery_driver drv;
};

/* ---- path template ---- */

/* tmpl_check - only %d, %u and %% are known, and %u must appear (else every
 * user would share one mailbox). NULL when fine, else a static reason. */
static const char *
tmpl_check(const char *t)
{
	bool has_u = false;

	if (t == NULL || *t != '/')
		return "path: must be an absolute path";
	for (; *t != '\0'; t++) {
		if (*t != '%')
			continue;
		t++;
		if (*t == 'u')
			has_u = true;
		else if (*t != 'd' && *t != '%')
			return "path: unknown % sequence (use %d, %u or %%)";
	}
	if (!has_u)
		return "path: must contain %u (the local part)";
	return NULL;
}

/* name_ok - a local part or domain may become a path component: no '/',
 * no leading '.' (no "..", no hidden or Maildir++ folders), no controls. */
static bool
name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max || s[0] == '.')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

/* tmpl_expand - the Maildir of local@domain (both lower-cased) into buf.
 * 0, or -1 with a static reason in *why_r. */
static int
tmpl_expand(const char *t, const char *address, char *buf, size_t len,
	    const char **why_r)
{
	const char *at = strrchr(address, '@');
	char local[MD_LOCAL_MAX + 1], domain[MD_DOMAIN_MAX + 1];
	size_t o = 0, ll;

	if (at == NULL || (ll = (size_t)(at - address)) > MD_LOCAL_MAX ||
	    strlen(at + 1) > MD_DOMAIN_MAX) {
		*why_r = "not a local@domain address";
		return -1;
	}
	memcpy(local, address, ll);
	local[ll] = '\0';
	strcpy(domain, at + 1);
	for (char *p = local; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *p = domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (!name_ok(local, MD_LOCAL_MAX) || !name_ok(domain, MD_DOMAIN_MAX)) {
		*why_r = "local part or domain not usable as a mailbox name";
		return -1;
	}
	for (; *t != '\0'; t++) {
		const char *piece = NULL;
		char one[2] = { *t, '\0' };
		size_t pl;

		if (*t == '%') {
			t++;
			piece = *t == 'u' ? local : *t == 'd' ? domain : "%";
		} else {
			piece = one;
		}
		pl = strlen(piece);
		if (o + pl >= len) {
			*why_r = "mailbox path too long";
			return -1;
		}
		memcpy(buf + o, piece, pl);
		o += pl;
	}
	buf[o] = '\0';
	return 0;
}

/* ---- one delivery on the pool ---- */

struct md_rcpt {
	const char *rcpt;		/* owned by the delivery         */
	char dir[4096];			/* the Maildir; "" = refused     */
	enum sc_result res;
	int code;
	const char *esc;
	char text[512];
};

struct md_job {
	struct sc_delivery *d;
	int fd;				/* the queued message            */
	off_t start;			/* its first byte in fd          */
	uint64_t size;
	char *sender;
	char *host;			/* for Received:                 */
	char host_esc[1024];		/* for file names                */
	mode_t fmode, dmode;
	pid_t pid;
	uint64_t counter;
	char qid[64];			/* queue id, for idempotent names */
	long long arrival;
	struct md_dirsync *dirsync;	/* the instance's, outlives us   */
	size_t n;
	struct md_rcpt *r;
};

/* mkdir_p - creates dir and its missing parents with mode. 0 or -1/errno. */
static int
mkdir_p(const char *dir, mode_t mode)
{
	char p[4096];
	size_t n = strlen(dir);

	if (n >= sizeof(p)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (mkdir(dir, mode) == 0) {
		(void)chmod(dir, mode);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return -1;
	memcpy(p, dir, n + 1);
	for (char *s = p + 1; *s != '\0'; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) == 0)
			(void)chmod(p, mode);
		else if (errno != EEXIST)
			return -1;
		*s = '/';
	}
	if (mkdir(p, mode) == 0)
		(void)chmod(p, mode);
	else if (errno != EEXIST)
		return -1;
	return 0;
}

static int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = fsync(fd);
	close(fd);
	return ret;
}

/* maildir_ensure - creates dir/{tmp,new,cur} when missing. The new
 * directories are made durable too, or the message renamed into them
 * could vanish with them after a crash. */
static int
maildir_ensure(const char *dir, mode_t mode)
{
	static const char *const sub[] = { "cur", "new", "tmp" };
	char p[4096 + 8];
	bool created = false;

	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
		if (mkdir(p, mode) == 0) {
			/* the configured bits, whatever the umask */
			(void)chmod(p, mode);
			created = true;
			continue;
		}
		if (errno == EEXIST)
			continue;
		if (errno != ENOENT || mkdir_p(dir, mode) < 0 ||
		    (mkdir(p, mode) < 0 && errno != EEXIST))
			return -1;
		(void)chmod(p, mode);
		created = true;
	}
	if (created && fsync_dir(dir) < 0)
		return -1;
	return 0;
}

static int
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* header_safe - copies s into buf without CR, LF or other controls, so an
 * envelope address can never start a header of its own. */
static const char *
header_safe(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s != '\0' && o + 1 < len; s++) {
		if ((unsigned char)*s >= 0x20 && *s != 0x7f)
			buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

/* copy_message - appends the queued message to out in chunks; returns the
 * bytes copied or -1. */
static int64_t
copy_message(struct md_job *j, int out, char *buf)
{
	uint64_t off = 0;

	while (off < j->size) {
		size_t want = j->size - off < MD_COPY_BUF ?
		    (size_t)(j->size - off) : MD_COPY_BUF;
		ssize_t n = pread(j->fd, buf, want, j->start + (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0) {
			errno = EIO;	/* the queue file is shorter */
			return -1;
		}
		if (write_all(out, buf, (size_t)n) < 0)
			return -1;
		off += (uint64_t)n;
	}
	return (int64_t)off;
}

/* rcpt_hash - FNV-1a of the lower-cased recipient, for file names. */
static uint32_t
rcpt_hash(const char *rcpt)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)rcpt; *p; p++) {
		h ^= (uint32_t)tolower(*p);
		h *= 16777619u;
	}
	return h;
}

/* already_delivered - whether name is in cur/ as a POP3 client or an IMAP
 * server leaves it (":2," plus flags we look for). Its copy in new/ needs
 * no look beforehand: publish never replaces it but says it is there, and
 * a failure looks for it (in_new) before it defers. */
static bool
already_delivered(const char *dir, const char *name)
{
	static const char *const forms[] = {
		"%s/cur/%s:2,", "%s/cur/%s:2,S", "%s/cur/%s:2,RS",
	};
	char p[4096 + 600];
	struct stat st;

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		int n = snprintf(p, sizeof(p), forms[i], dir, name);

		if (n > 0 && (size_t)n < sizeof(p) && stat(p, &st) == 0)
			return true;
	}
	return false;
}

/* in_new - whether final (a name in new/) is there: put there by an
 * attempt whose result was lost (a crash between the rename and the
 * queue's record of it). */
static bool
in_new(const char *final)
{
	struct stat st;

	return stat(final, &st) == 0;
}

/* publish - moves tmp into new/ as name without replacing anything there.
 * 0, 1 when the name is taken, -1 on error. */
static int
publish(const char *tmp, const char *final)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno == EEXIST)
		return 1;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* XXX a filesystem without RENAME_NOREPLACE: a link fails on a
	 * taken name, and rename is the last resort. */
	if (link(tmp, final) == 0) {
		unlink(tmp);
		return 0;
	}
	if (errno == EEXIST)
		return 1;
	if (in_new(final))
		return 1;
	return rename(tmp, final) == 0 ? 0 : -1;
}

/* open_tmp - creates a new file in dir/tmp/ (its path into tmp). The fd,
 * or -1 with errno. */
static int
open_tmp(const struct md_job *j, const char *dir, const struct timeval *tv,
	 uint64_t q, char *tmp, size_t len)
{
	int fd = -1, n;

	for (unsigned t = 0; t < MD_TRIES; t++) {
		n = snprintf(tmp, len, "%s/tmp/%lld.M%ldP%ldQ%llu.%s", dir,
			     (long long)tv->tv_sec, (long)tv->tv_usec,
			     (long)j->pid, (unsigned long long)(q + t),
			     j->host_esc);
		if (n < 0 || (size_t)n >= len) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
			  O_NOFOLLOW, j->fmode);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	return fd;
}

static void
rcpt_fail(struct md_rcpt *r, int err, const char *what)
{
	r->res = SC_DENYSOFT;
	if (err == EDQUOT) {
		r->code = 452;
		r->esc = "4.2.2";
		snprintf(r->text, sizeof(r->text), "<%s>: mailbox full",
			 r->rcpt);
		return;
	}
	r->code = 451;
	r->esc = "4.3.0";
	snprintf(r->text, sizeof(r->text), "<%s>: cannot %s: %s", r->rcpt,
		 what, strerror(err));
}

/* deliver_one - one recipient's copy. Why this order: the copy is complete
 * and fsync'd in tmp/ before it appears in new/, and new/ is fsync'd before
 * we report success, so a crash leaves either nothing in new/ or the whole
 * message; on any error the tmp file is removed. The Maildir is made
 * (maildir_ensure) only when its tmp/ or new/ is not there: it is, for all
 * but a mailbox's first message, and three mkdir()s failing with EEXIST on
 * every delivery cost time (issue 15). */
static void
deliver_one(struct md_job *j, size_t idx, char *buf)
{
	struct md_rcpt *r = &j->r[idx];
	char tmp[4096 + 512], final[4096 + 512], newdir[4096 + 8];
	char hdr[2048], date[64], s1[600], s2[600];
	struct timeval tv;
	struct tm tm;
	int fd = -1, hl, err = 0, pr, n;
	int64_t copied;
	uint64_t size, expect, q = j->counter + idx * MD_TRIES;
	const char *what = "write to the mailbox";

	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	hl = snprintf(hdr, sizeof(hdr),
		      "Return-Path: <%s>\r\n"
		      "Delivered-To: %s\r\n"
		      "Received: by %s (satchel maildir) for <%s>; %s\r\n",
		      header_safe(j->sender, s1, sizeof(s1)),
		      header_safe(r->rcpt, s2, sizeof(s2)), j->host, s2, date);
	if (hl < 0 || (size_t)hl >= sizeof(hdr)) {
		rcpt_fail(r, ENAMETOOLONG, what);
		return;
	}
	/* The name is derived from the queue id and the recipient, so a
	 * retry after a crash finds the copy it made before instead of
	 * delivering twice (issue 3: every message exactly once). */
	expect = (uint64_t)hl + j->size;
	n = snprintf(final, sizeof(final), "%s/new/%lld.Q%sR%08x.%s,S=%llu",
		     r->dir, j->arrival, j->qid, rcpt_hash(r->rcpt),
		     j->host_esc, (unsigned long long)expect);
	if (n < 0 || (size_t)n >= sizeof(final)) {
		rcpt_fail(r, ENAMETOOLONG, what);
		return;
	}
	if (already_delivered(r->dir, strrchr(final, '/') + 1))
		goto delivered;
	fd = open_tmp(j, r->dir, &tv, q, tmp, sizeof(tmp));
	if (fd < 0 && errno != ENAMETOOLONG) {
		/* a new mailbox (or a broken one): make it, then once more */
		if (maildir_ensure(r->dir, j->dmode) < 0) {
			err = errno;
			what = "create the mailbox";
			goto fail_open;
		}
		fd = open_tmp(j, r->dir, &tv, q, tmp, sizeof(tmp));
	}
	if (fd < 0) {
		err = errno;
		goto fail_open;
	}
	/* the configured mode, whatever the daemon's umask */
	if (fchmod(fd, j->fmode) < 0 || write_all(fd, hdr, (size_t)hl) < 0 ||
	    (copied = copy_message(j, fd, buf)) < 0 || fsync(fd) < 0) {
		err = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) < 0) {
		err = errno;
		goto fail;
	}
	size = (uint64_t)hl + (uint64_t)copied;
	if (size != expect) {
		err = EIO;	/* the queue file changed under us */
		goto fail;
	}
	snprintf(newdir, sizeof(newdir), "%s/new", r->dir);
	pr = publish(tmp, final);
	if (pr < 0 && errno == ENOENT) {
		/* new/ is gone: make the Maildir whole again, then once more */
		if (maildir_ensure(r->dir, j->dmode) < 0) {
			err = errno;
			what = "create the mailbox";
			goto fail;
		}
		pr = publish(tmp, final);
	}
	if (pr == 1) {
		/* Delivered by an attempt whose result was lost (a crash
		 * between the rename and the queue's record of it). */
		unlink(tmp);
		goto delivered;
	}
	if (pr != 0) {
		err = errno;
		goto fail;
	}
	if (md_dirsync(j->dirsync, newdir) < 0) {
		/* The file is complete in new/ already; only its durability
		 * is in doubt. Deferring would deliver it twice, so report
		 * success and leave a trace in the log. */
		sc_log_warning("maildir: fsync %s: %s", newdir,
			       strerror(errno));
	}
delivered:
	r->res = SC_OK;
	r->code = 250;
	r->esc = "2.0.0";
	snprintf(r->text, sizeof(r->text), "<%s> delivered to maildir as %s",
		 r->rcpt, strrchr(final, '/') + 1);
	return;
fail:
	unlink(tmp);
fail_open:
	/* in new/ already (see in_new): delivered, as said before we
	 * tried */
	if (in_new(final))
		goto delivered;
	rcpt_fail(r, err, what);
}

static void
job_work(void *arg)
{
	struct md_job *j = arg;
	char *buf = malloc(MD_COPY_BUF);

	for (size_t i = 0; i < j->n; i++) {
		if (j->r[i].dir[0] == '\0')
			continue;
		if (buf == NULL) {
			rcpt_fail(&j->r[i], ENOMEM, "deliver");
			continue;
		}
		deliver_one(j, i, buf);
	}
	free(buf);
	close(j->fd);
	j->fd = -1;
}

static void
job_free(struct md_job *j)
{
	if (j->fd >= 0)
		close(j->fd);
	free(j->sender);
	free(j->host);
	free(j->r);
	free(j);
}

/* job_done - back on the loop: report every recipient, end the attempt. */
static void
job_done(void *arg)
{
	struct md_job *j = arg;

	for (size_t i = 0; i < j->n; i++) {
		struct md_rcpt *r = &j->r[i];

		if (r->res == SC_OK)
			sc_log_info("maildir: %s: %s",
				    sc_delivery_queue_id(j->d), r->text);
		else
			sc_log_warning("maildir: %s: %d %s %s",
				       sc_delivery_queue_id(j->d), r->code,
				       r->esc, r->text);
		sc_delivery_rcpt_result(j->d, i, r->res, r->code, r->esc, "%s",
					r->text);
	}
	sc_delivery_done(j->d);
	job_free(j);
}

/* escape_host - the hostname for a Maildir name: '/' and ':' would break
 * the name, so they become \057 and \072 as Dovecot writes them. */
static void
escape_host(const char *h, char *buf, size_t len)
{
	size_t o = 0;

	for (; *h != '\0' && o + 5 < len; h++) {
		if (*h == '/' || *h == ':' || *h == '\\') {
			o += (size_t)snprintf(buf + o, len - o, "\\%03o",
					      (unsigned char)*h);
			continue;
		}
		buf[o++] = *h;
	}
	buf[o] = '\0';
}

/* md_fail_all - every recipient deferred (nothing was written). */
static void
md_fail_all(struct sc_delivery *d, const char *why)
{
	size_t n = sc_delivery_rcpt_count(d);

	sc_log_error("maildir: %s: %s", sc_delivery_queue_id(d), why);
	for (size_t i = 0; i < n; i++)
		sc_delivery_rcpt_result(d, i, SC_DENYSOFT, 451, "4.3.0",
					"Local delivery failed: %s", why);
	sc_delivery_done(d);
}

/* md_deliver - the driver's deliver: paths are computed here, the file
 * work happens on the pool. */
static void
md_deliver(struct sc_delivery *d, void *data)
{
	struct maildir *md = data;
	struct md_job *j;
	const char *hostname = sc_config_hostname();

	if ((j = calloc(1, sizeof(*j))) == NULL) {
		md_fail_all(d, "out of memory");
		return;
	}
	/* a retry finds the copy by its name (deliver_one): the core may
	 * write our results without an fdatasync of their own */
	sc_delivery_idempotent(d);
	j->d = d;
	j->n = sc_delivery_rcpt_count(d);
	j->fd = -1;
	j->sender = strdup(sc_delivery_sender(d) ? sc_delivery_sender(d) : "");
	j->host = strdup(hostname ? hostname : "localhost");
	j->r = calloc(j->n ? j->n : 1, sizeof(*j->r));
	if (j->sender == NULL || j->host == NULL || j->r == NULL) {
		job_free(j);
		md_fail_all(d, "out of memory");
		return;
	}
	escape_host(j->host, j->host_esc, sizeof(j->host_esc));
	j->fmode = md->fmode;
	j->dmode = md->dmode;
	j->pid = getpid();
	j->counter = md->counter;
	j->dirsync = md->dirsync;
	j->arrival = (long long)sc_delivery_arrival(d);
	snprintf(j->qid, sizeof(j->qid), "%s", sc_delivery_queue_id(d));
	for (char *c = j->qid; *c; c++)	/* file-name safe, whatever it is */
		if (!isalnum((unsigned char)*c))
			*c = '_';
	md->counter += (uint64_t)j->n * MD_TRIES;
	if ((j->fd = sc_delivery_open(d, &j->size)) < 0 ||
	    (j->start = lseek(j->fd, 0, SEEK_CUR)) < 0) {
		job_free(j);
		md_fail_all(d, "cannot open the queued message");
		return;
	}
	for (size_t i = 0; i < j->n; i++) {
		struct md_rcpt *r = &j->r[i];
		const char *why;

		r->rcpt = sc_delivery_rcpt(d, i);
		if (tmpl_expand(md->tmpl, r->rcpt, r->dir, sizeof(r->dir),
				&why) < 0) {
			r->dir[0] = '\0';
			r->res = SC_DENY;
			r->code = 550;
			r->esc = "5.1.3";
			snprintf(r->text, sizeof(r->text), "<%s>: %s",
				 r->rcpt, why);
		}
	}
	if (sc_work_submit_inst(md->inst, job_work, job_done, j) < 0) {
		job_free(j);
		md_fail_all(d, "cannot start the delivery");
	}
}

/* md_mailbox_path - the driver's mailbox_path, for POP3. */
static int
md_mailbox_path(const char *address, char *buf, size_t len, void *data)
{
	struct maildir *md = data;
	const char *why;

	return tmpl_expand(md->tmpl, address, buf, len, &why);
}

/* md_account - ACCOUNT: the `mailboxes:` list exists without a backend. */
static enum sc_result
md_account(struct sc_hook_call *call, void *data)
{
	struct maildir *md = data;
	const struct sc_account_request *req = sc_hook_arg(call);

	if (req == NULL || req->address == NULL)
		return SC_CONT;
	for (size_t i = 0; i < md->mailbox_count; i++) {
		if (strcasecmp(md->mailboxes[i], req->address) == 0)
			return SC_OK;
	}
	return SC_CONT;
}

/* ---- lifecycle ---- */

static void
md_free(struct maildir *md)
{
	if (md == NULL)
		return;
	for (size_t i = 0; i < md->mailbox_count; i++)
		free(md->mailboxes[i]);
	free(md->mailboxes);
	free(md->tmpl);
	md_dirsync_free(md->dirsync);
	free(md);
}

/*
 * md_prepare_base - the fixed part of path ("/var/mail/vhosts" of
 * "/var/mail/vhosts/%d/%u") must be writable by the daemon's user, or every
 * delivery defers with "Permission denied". instance_new runs as root before
 * the privilege drop: sc_dir_for_user() creates it for the user, as an admin
 * would with `install -d -o satchel`, but never through a directory the user
 * could have changed (there the user makes it itself at the first delivery).
 * An existing directory is never changed; when it looks unwritable for the
 * user, say so at start.
 */
static void
md_prepare_base(const char *tmpl)
{
	const char *pct = strchr(tmpl, '%');
	const char *user = sc_config_user();
	char base[4096];
	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	struct stat st;
	size_t n;
	int r;

	if (pct == NULL || tmpl[0] != '/')
		return;
	while (pct > tmpl && pct[-1] != '/')
		pct--;
	n = (size_t)(pct - tmpl);
	while (n > 1 && tmpl[n - 1] == '/')
		n--;
	if (n <= 1 || n >= sizeof(base))
		return;
	memcpy(base, tmpl, n);
	base[n] = '\0';
	if (user == NULL || user[0] == '\0' ||
	    getpwnam_r(user, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 ||
	    pwp == NULL)
		return;	/* no privilege drop: the current user is the one */
	r = sc_dir_for_user(base, 0750);
	if (r < 0)
		sc_log_warning("maildir: cannot create %s for %s: %s", base,
			       user, strerror(errno));
	else if (r > 0)
		sc_log_info("maildir: created %s for %s", base, user);
	if (stat(base, &st) == 0) {
		bool writable = st.st_uid == pw.pw_uid ?
			(st.st_mode & S_IWUSR) != 0 :
			st.st_gid == pw.pw_gid ? (st.st_mode & S_IWGRP) != 0 :
			(st.st_mode & S_IWOTH) != 0;
		if (!writable && st.st_uid != pw.pw_uid)
			sc_log_warning("maildir: %s is not writable by %s: "
				       "deliveries that need a new mailbox "
				       "there will defer; fix: chown %s %s",
				       base, user, user, base);
	}
}

static int
md_instance_new(struct sc_instance *inst, const void *config, void **data_r,
		const char **error_r)
{
	const struct maildir_conf *conf = config;
	struct maildir *md;
	const char *why;
	char *end;
	unsigned long mode;

	if ((why = tmpl_check(conf->path)) != NULL) {
		*error_r = why;
		return -1;
	}
	mode = strtoul(conf->mode ? conf->mode : "0600", &end, 8);
	if (end == conf->mode || *end != '\0' || (mode & ~0666UL) != 0 ||
	    (mode & 0600) != 0600) {
		*error_r = "mode: an octal file mode with rw for the owner "
		    "and no x bits, such as 0600 or 0640";
		return -1;
	}
	if ((md = calloc(1, sizeof(*md))) == NULL)
		goto oom;
	md->inst = inst;
	md->dirsync = md_dirsync_new();	/* NULL: each job syncs alone */
	md->fmode = (mode_t)mode;
	md->dmode = (mode_t)(mode | ((mode & 0444) >> 2));
	if ((md->tmpl = strdup(conf->path)) == NULL)
		goto oom;
	if (conf->mailboxes.n > 0) {
		md->mailboxes = calloc(conf->mailboxes.n, sizeof(char *));
		if (md->mailboxes == NULL)
			goto oom;
	}
	for (size_t i = 0; i < conf->mailboxes.n; i++) {
		const char *a = conf->mailboxes.v[i];
		const char *at = strrchr(a, '@');

		if (at == NULL || at == a || at[1] == '\0') {
			*error_r = "mailboxes: entries must be full "
			    "local@domain addresses";
			md_free(md);
			return -1;
		}
		if ((md->mailboxes[i] = strdup(a)) == NULL)
			goto oom;
		md->mailbox_count++;
	}
	md_prepare_base(md->tmpl);
	/* Seeded from the clock so that names stay unique across a reload
	 * (a new instance in the same process, maybe in the same µs). */
	md->counter = sc_now_ms() % 1000000 * 1000;
	md->drv.kind = SC_DELIVERY_LOCAL;
	md->drv.deliver = md_deliver;
	md->drv.mailbox_path = md_mailbox_path;
	*data_r = md;
	return 0;
oom:
	md_free(md);
	*error_r = "maildir: out of memory";
	return -1;
}

static int
md_instance_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct maildir *md = data;

	if (sc_delivery_register(inst, &md->drv, md) < 0) {
		*error_r = "maildir: cannot register the local delivery driver";
		return -1;
	}
	if (md->mailbox_count > 0 &&
	    sc_hook_register(inst, SC_HOOK_ACCOUNT, md_account, md) < 0) {
		*error_r = "maildir: cannot register the account hook";
		return -1;
	}
	return 0;
}

static void
md_instance_free(struct sc_instance *inst, void *data)
{
	(void)inst;
	md_free(data);
}

static const char *const md_depends[] = { NULL };

SC_MODULE(maildir,
	.version = SC_VERSION,
	.description = "local delivery to Maildir (tmp/ then new/)",
	.depends = md_depends,
	.keys = maildir_keys,
	.config_size = sizeof(struct maildir_conf),
	.instance_new = md_instance_new,
	.instance_start = md_instance_start,
	.instance_free = md_instance_free,
);
