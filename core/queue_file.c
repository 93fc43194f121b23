/* SPDX-License-Identifier: MIT */
/*
 * core/queue_file.c - the queue file format (see core/queue.c's opening
 * comment): the envelope header written at a transaction's start, state
 * records appended by the runner, a file read back (the runner at start,
 * satchelctl), and the removal of a message's file, which the journal
 * must hear of. Blocking calls: the pool, start-up or satchelctl.
 */
#include "core.h"
#include "queue_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUEUE_MAGIC "satchel-queue 1"
/* after a record cut by a crash: the record before it is void */
#define TORN_MARK "-"

/* value_ok - envelope values are single text lines */
static bool
value_ok(const char *v)
{
	return v == NULL || strpbrk(v, "\r\n") == NULL;
}

/* sc_queue_header_text - the envelope header of a queue file (malloc'd) */
char *
sc_queue_header_text(const char *id, const struct sc_envelope *env, time_t arrival,
	    off_t *size_field_r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	long pos;

	if (f == NULL)
		return NULL;
	fprintf(f, "%s\nid %s\narrival %lld\nsender %s\nparams %s\n",
		QUEUE_MAGIC, id, (long long)arrival,
		env->sender ? env->sender : "",
		env->params ? env->params : "");
	if (env->auth_user != NULL)
		fprintf(f, "auth %s\n", env->auth_user);
	if (env->client_ip != NULL)
		fprintf(f, "client %s\n", env->client_ip);
	if (env->helo != NULL)
		fprintf(f, "helo %s\n", env->helo);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const char *p = env->rcpts[i].params;

		fprintf(f, "rcpt %s%s%s\n", env->rcpts[i].address,
			p != NULL && *p ? " " : "", p != NULL ? p : "");
	}
	fputs("size ", f);
	pos = ftell(f);
	fprintf(f, "%0*d\ndata\n", SC_QUEUE_SIZE_DIGITS, 0);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	if (size_field_r != NULL)
		*size_field_r = pos;
	return buf;
}

/* sc_queue_env_check - an envelope that fits the format: recipients, no
 * line breaks. 0, or -1 with a static reason. */
int
sc_queue_env_check(const struct sc_envelope *env, const char **error_r)
{
	if (env->rcpt_count == 0) {
		*error_r = "no recipients";
		return -1;
	}
	if (!value_ok(env->sender) || !value_ok(env->params) ||
	    !value_ok(env->auth_user) || !value_ok(env->client_ip) ||
	    !value_ok(env->helo)) {
		*error_r = "line break in the envelope";
		return -1;
	}
	for (size_t i = 0; i < env->rcpt_count; i++) {
		if (env->rcpts[i].address == NULL ||
		    strpbrk(env->rcpts[i].address, " \r\n") != NULL ||
		    !value_ok(env->rcpts[i].params)) {
			*error_r = "bad recipient in the envelope";
			return -1;
		}
	}
	return 0;
}

int
sc_queue_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* sc_queue_append - appends state records to a queue file and, with sync,
 * makes them durable (O_APPEND + fdatasync: the message itself is never
 * rewritten). Without sync they reach the disk with the next synced append
 * or the kernel's writeback: records a crash may lose (see
 * sc_delivery_idempotent).
 * A file that does not end in "\n" holds a record torn by a crash: it is
 * closed with "\n" and the TORN_MARK line first, so the new records never
 * join it and the parse drops it. Blocking: call on the pool. 0 or -1 with
 * errno. */
int
sc_queue_append(const char *path, const char *records, bool sync)
{
	static const char repair[] = "\n" TORN_MARK "\n";
	int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	struct stat st;
	char last = '\n';
	int ret = 0;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || (st.st_size > 0 &&
	    pread(fd, &last, 1, st.st_size - 1) != 1))
		ret = -1;
	else if (last != '\n' && sc_queue_write_all(fd, repair, sizeof(repair) - 1) < 0)
		ret = -1;
	else if (sc_queue_write_all(fd, records, strlen(records)) < 0 ||
		 (sync && fdatasync(fd) < 0))
		ret = -1;
	close(fd);
	return ret;
}

/* sc_queue_remove - a message's file leaves active/: the journal learns
 * it first (a DONE record), so that a replay never brings it back.
 * path is active/ID. unlink's result. */
int
sc_queue_remove(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base != NULL ? base + 1 : path;
	if (strlen(base) == 16)
		sc_journal_done(base);
	return unlink(path);
}

/* parse_line - splits "key value" and hands it to fn */
static int
parse_line(char *line, sc_queue_parse_fn fn, void *arg)
{
	char *sp = strchr(line, ' ');

	if (sp != NULL)
		*sp++ = '\0';
	return fn != NULL ? fn(arg, line, sp != NULL ? sp : "") : 0;
}

/* sc_queue_file_parse - reads a queue file and calls fn for every header
 * line (key, value), for "data" (value: offset of the message), "END",
 * and every record after END (key = record letter). Returns 1 when the
 * file is complete, 0 when it is not a committed queue file (no END: a
 * crash before the commit; a torn header; a wrong magic line), -1 when it
 * cannot be read now (open or read error: keep it and try again) or fn
 * returned non-zero (which stops the parse). A record followed by a
 * TORN_MARK line was cut by a crash and is skipped. */
int
sc_queue_file_parse(const char *path, sc_queue_parse_fn fn, void *arg)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, *held = NULL, *tmp, *sp, num[32];
	size_t cap = 0, hcap = 0, tcap;
	ssize_t n;
	uint64_t size = 0;
	struct stat st;
	bool have_size = false, first = true, holding = false;
	int ret = -1;

	if (f == NULL)
		return -1;
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n') {
			ret = 0;		/* torn header: no END */
			goto out;
		}
		line[--n] = '\0';
		if (first) {
			if (strcmp(line, QUEUE_MAGIC) != 0) {
				ret = 0;	/* not a queue file */
				goto out;
			}
			first = false;
			continue;
		}
		if (strcmp(line, "data") == 0)
			break;
		sp = strchr(line, ' ');
		if (sp != NULL)
			*sp++ = '\0';
		if (strcmp(line, "size") == 0 && sp != NULL) {
			size = strtoull(sp, NULL, 10);
			have_size = true;
		}
		if (fn != NULL && fn(arg, line, sp != NULL ? sp : "") != 0)
			goto out;
	}
	if (ferror(f))
		goto out;
	/* a size that runs past the end of the file is no size of ours
	 * (and one past what an off_t holds would overflow below) */
	if (n <= 0 || !have_size || ftello(f) < 0 ||
	    fstat(fileno(f), &st) < 0 || st.st_size < ftello(f) ||
	    size > (uint64_t)(st.st_size - ftello(f))) {
		ret = 0;
		goto out;
	}
	snprintf(num, sizeof(num), "%lld", (long long)ftello(f));
	if (fn != NULL && fn(arg, "data", num) != 0)
		goto out;
	if (fseeko(f, ftello(f) + (off_t)size, SEEK_SET) < 0) {
		ret = 0;
		goto out;
	}
	n = getline(&line, &cap, f);
	if (n <= 0 && ferror(f))
		goto out;
	if (n <= 0 || line[n - 1] != '\n' || strncmp(line, "END", 3) != 0) {
		ret = 0;
		goto out;
	}
	line[--n] = '\0';
	if (fn != NULL && fn(arg, "END", line[3] == ' ' ? line + 4 : "") != 0)
		goto out;
	/* each record is held until the next line shows it was not torn */
	while ((n = getline(&line, &cap, f)) > 0) {
		if (line[n - 1] != '\n')
			break;			/* torn last record: ignore */
		line[--n] = '\0';
		if (strcmp(line, TORN_MARK) == 0) {
			holding = false;
			continue;
		}
		if (holding && parse_line(held, fn, arg) != 0)
			goto out;
		tmp = held;		/* swap the buffers and capacities */
		held = line;
		line = tmp;
		tcap = hcap;
		hcap = cap;
		cap = tcap;
		holding = true;
	}
	if (ferror(f))
		goto out;
	if (holding && parse_line(held, fn, arg) != 0)
		goto out;
	ret = 1;
out:
	free(line);
	free(held);
	fclose(f);
	return ret;
}
