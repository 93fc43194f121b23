/* SPDX-License-Identifier: MIT */
/*
 * core/queue_scan.c - the queue at start-up (sc_queue_init, before the
 * loop runs, as the daemon's user): its directories made, tmp/ emptied,
 * the journal replayed (queue_journal.c), and every file in active/ that
 * is surely no committed message dropped.
 */
#include "core.h"
#include "queue_journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
mkdir_p0700(const char *p, char **error_r)
{
	if (mkdir(p, 0700) < 0 && errno != EEXIST) {
		if (asprintf(error_r, "%s: %s", p, strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	return 0;
}

/* open_dir_nofollow - the queue directory p itself, never what a link
 * planted in its place points to; -1 with errno (ELOOP, ENOTDIR: not a
 * real directory) */
static int
open_dir_nofollow(const char *p)
{
	return open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* not_a_dir_error - the message for a queue path that is no directory */
static void
not_a_dir_error(const char *p, char **error_r)
{
	if (asprintf(error_r, "%s: %s", p, errno == ELOOP ||
		     errno == ENOTDIR ? "not a directory (a symlink?); the "
		     "queue keeps mail only in real directories" :
		     strerror(errno)) < 0)
		*error_r = NULL;
}

/* empty_tmp - removes what is in tmp/: messages that never got their
 * 250. Something else in tmp's place (a symlink) is replaced by an empty
 * directory: nothing in tmp/ is worth keeping, and nothing outside it
 * may be emptied. */
static int
empty_tmp(const char *tmp, char **error_r)
{
	struct dirent *de;
	DIR *d;
	int fd;

	fd = open_dir_nofollow(tmp);
	if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
		sc_log_warning("queue: %s is not a directory (a symlink?); "
			       "replacing it with an empty one", tmp);
		if (unlink(tmp) < 0 || mkdir(tmp, 0700) < 0) {
			not_a_dir_error(tmp, error_r);
			return -1;
		}
		fd = open_dir_nofollow(tmp);
	}
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		not_a_dir_error(tmp, error_r);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		unlinkat(dirfd(d), de->d_name, 0);
	}
	closedir(d);
	return 0;
}

/* sc_queue_scan - the queue's directories made (state_dir, dir and its
 * tmp/ and active/), tmp/ emptied (messages that never got their 250),
 * the journal replayed, files in active/ without END dropped. The open
 * active/ directory, or -1 with a malloc'd error. */
int
sc_queue_scan(const char *state_dir, const char *dir, const char *tmp,
	      const char *active, char **error_r)
{
	struct dirent *de;
	DIR *d;
	int fd;

	if (mkdir_p0700(state_dir, error_r) < 0 ||
	    mkdir_p0700(dir, error_r) < 0 ||
	    mkdir_p0700(tmp, error_r) < 0 ||
	    mkdir_p0700(active, error_r) < 0)
		return -1;
	if (empty_tmp(tmp, error_r) < 0)
		return -1;
	/* the journal first: it may bring back what the scan would drop */
	fd = open_dir_nofollow(active);
	if (fd < 0) {
		not_a_dir_error(active, error_r);
		return -1;
	}
	if (sc_journal_open(dir, tmp, fd, error_r) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	fd = open_dir_nofollow(active);
	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		not_a_dir_error(active, error_r);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char *p;

		if (de->d_name[0] == '.')
			continue;
		if (asprintf(&p, "%s/%s", active, de->d_name) < 0)
			continue;
		/* only a file that is surely not a committed message goes:
		 * one that cannot be read now may be durable mail */
		switch (sc_queue_file_parse(p, NULL, NULL)) {
		case 0:
			sc_log_warning("queue: removing incomplete file %s",
				       p);
			unlinkat(dirfd(d), de->d_name, 0);
			break;
		case -1:
			sc_log_error("queue: cannot read %s: %s; keeping it",
				     p, strerror(errno));
			break;
		default:
			break;
		}
		free(p);
	}
	closedir(d);
	fd = open_dir_nofollow(active);
	if (fd < 0) {
		not_a_dir_error(active, error_r);
		return -1;
	}
	return fd;
}
