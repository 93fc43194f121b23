/* SPDX-License-Identifier: MIT */
/*
 * core/privdir.c - the directories root prepares for the daemon's user
 * before the privilege drop: state_dir (main.c) and what modules ask for
 * in instance_new with sc_dir_for_user() (maildir's base directory).
 *
 * The daemon's user owns what lies below state_dir: it can plant symlinks
 * and hard links there, swap directories, and crash the daemon so that
 * root runs this again. So root resolves every path itself, one component
 * at a time from "/" with O_NOFOLLOW; it follows a symlink only when the
 * link sits where that user cannot change it, stops at the first directory
 * the user can change (what lies beyond is the user's to make, after the
 * drop), and changes owners only through descriptors it opened: of a
 * directory it made in this run, or of the entries of directories that
 * only root can write.
 */
#include "core.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <satchel/privsep.h>

#define PD_MAX_DEPTH	64	/* directories on one resolved path        */
#define PD_MAX_LINKS	40	/* symlinks followed per path (as Linux)   */
#define PD_TREE_DEPTH	8	/* state_dir levels handed over (maildirs) */
#define PD_USER		(-2)	/* pd_open: the user can change the way   */
#define PD_LEFT_LOGGED	10	/* give_tree: entries left, logged by name */

/* The daemon's user, as far as directory permissions go. */
struct pd_user {
	const char *name;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
};

static void
user_free(struct pd_user *u)
{
	free(u->groups);
	u->groups = NULL;
}

/* user_load - uid, gid and every group of name; -1 with errno (ENOENT:
 * no such user) */
static int
user_load(const char *name, struct pd_user *u)
{
	struct passwd pw, *pwp = NULL;
	char buf[16384];
	int n = 32, r;

	memset(u, 0, sizeof(*u));
	u->name = name;
	r = getpwnam_r(name, &pw, buf, sizeof(buf), &pwp);
	if (r != 0 || pwp == NULL) {
		errno = r != 0 ? r : ENOENT;
		return -1;
	}
	u->uid = pw.pw_uid;
	u->gid = pw.pw_gid;
	for (int tries = 0; tries < 4; tries++) {
		gid_t *g = realloc(u->groups, (size_t)n * sizeof(*g));

		if (g == NULL) {
			user_free(u);
			errno = ENOMEM;
			return -1;
		}
		u->groups = g;
		u->ngroups = n;
		if (getgrouplist(pw.pw_name, pw.pw_gid, u->groups,
				 &u->ngroups) >= 0)
			return 0;
		n = u->ngroups > n ? u->ngroups : n * 4;
	}
	user_free(u);
	errno = ENOMEM;
	return -1;
}

/* user_can_change - whether u may add, remove or rename entries of the
 * directory st (sticky bits aside: see entry_safe) */
static bool
user_can_change(const struct pd_user *u, const struct stat *st)
{
	if (st->st_uid == u->uid || (st->st_mode & S_IWOTH) != 0)
		return true;
	if ((st->st_mode & S_IWGRP) == 0)
		return false;
	for (int i = 0; i < u->ngroups; i++)
		if (u->groups[i] == st->st_gid)
			return true;
	return st->st_gid == u->gid;
}

/* entry_safe - whether entry (lstat) of directory dir is beyond the
 * user's reach: dir is not the user's to change, or it is sticky (/tmp)
 * and the entry belongs to root, so the user can neither rename nor
 * remove it */
static bool
entry_safe(const struct pd_user *u, const struct stat *dir,
	   const struct stat *entry)
{
	if (!user_can_change(u, dir))
		return true;
	return (dir->st_mode & S_ISVTX) != 0 && dir->st_uid != u->uid &&
		entry->st_uid == 0;
}

/* next_component - the next name of *rest (skipping slashes) into name;
 * false at the end. *last_r: no name follows it. */
static bool
next_component(const char **rest, char *name, size_t size, bool *last_r)
{
	const char *p = *rest, *end;
	size_t n;

	while (*p == '/')
		p++;
	if (*p == '\0')
		return false;
	end = strchrnul(p, '/');
	n = (size_t)(end - p);
	if (n >= size)
		n = size - 1;	/* longer than NAME_MAX: ENAMETOOLONG below */
	memcpy(name, p, n);
	name[n] = '\0';
	p = end;
	while (*p == '/')
		p++;
	*rest = p;
	*last_r = *p == '\0';
	return true;
}

/* lookup - lstat of name in the directory dfd (stat dst); with create, a
 * missing name is made first (perm). 0, PD_USER (the user could make it
 * itself, and race us), or -1 with errno. */
static int
lookup(int dfd, const struct stat *dst, const char *name, bool create,
       mode_t perm, const struct pd_user *u, struct stat *lst, bool *made_r)
{
	*made_r = false;
	for (int tries = 0; ; tries++) {
		if (fstatat(dfd, name, lst, AT_SYMLINK_NOFOLLOW) == 0)
			return 0;
		if (errno != ENOENT || !create)
			return -1;
		if (user_can_change(u, dst))
			return PD_USER;
		if (mkdirat(dfd, name, perm) == 0)
			*made_r = true;
		else if (errno != EEXIST || tries >= 3)
			return -1;
		/* EEXIST: made meanwhile by someone with more rights: look
		 * again */
	}
}

/*
 * pd_open - opens the absolute path as a directory, resolving it as the
 * kernel would but with the checks above. With create, missing directories
 * are made as root: 0755, the last one with mode (*created_r says so).
 * Returns the directory's descriptor; PD_USER when a directory on the way
 * can be changed by u (where then names it); -1 with errno.
 */
static int
pd_open(const char *path, const struct pd_user *u, bool create, mode_t mode,
	bool *created_r, char *where, size_t where_size)
{
	int stack[PD_MAX_DEPTH];
	size_t wlen[PD_MAX_DEPTH];
	char rest[PATH_MAX], spliced[PATH_MAX], target[PATH_MAX];
	char name[NAME_MAX + 2];
	const char *p;
	int top = 0, links = 0, ret = -1, err = 0;
	bool last;

	*created_r = false;
	where[0] = '\0';
	if (path == NULL || path[0] != '/') {
		errno = EINVAL;
		return -1;
	}
	if (snprintf(rest, sizeof(rest), "%s", path) >= (int)sizeof(rest)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	stack[0] = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (stack[0] < 0)
		return -1;
	wlen[0] = 0;
	p = rest;
	while (next_component(&p, name, sizeof(name), &last)) {
		mode_t perm = last ? mode : 0755;
		struct stat dst, lst, st;
		bool made;
		int fd, r;

		if (strlen(name) > NAME_MAX) {
			err = ENAMETOOLONG;
			goto out;
		}
		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			/* each fd on the stack is the physical child of the
			 * one below: popping goes to the physical parent */
			if (top > 0)
				close(stack[top--]);
			where[wlen[top]] = '\0';
			continue;
		}
		if (fstat(stack[top], &dst) < 0) {
			err = errno;
			goto out;
		}
		r = lookup(stack[top], &dst, name, create, perm, u, &lst,
			   &made);
		if (r == 0 && !entry_safe(u, &dst, &lst))
			r = PD_USER;
		if (r == PD_USER) {
			ret = PD_USER;
			goto out;
		}
		if (r < 0) {
			err = errno;
			goto out;
		}
		if (S_ISLNK(lst.st_mode)) {
			ssize_t n;

			if (++links > PD_MAX_LINKS) {
				err = ELOOP;
				goto out;
			}
			n = readlinkat(stack[top], name, target,
				       sizeof(target) - 1);
			if (n < 0) {
				err = errno;
				goto out;
			}
			target[n] = '\0';
			if (snprintf(spliced, sizeof(spliced), "%s/%s", target,
				     p) >= (int)sizeof(spliced)) {
				err = ENAMETOOLONG;
				goto out;
			}
			memcpy(rest, spliced, sizeof(rest));
			p = rest;
			if (target[0] == '/') {
				while (top > 0)
					close(stack[top--]);
				where[0] = '\0';
			}
			continue;
		}
		if (!S_ISDIR(lst.st_mode)) {
			err = ENOTDIR;
			goto out;
		}
		if (top + 1 >= PD_MAX_DEPTH ||
		    (size_t)snprintf(where + wlen[top], where_size - wlen[top],
				     "/%s", name) >= where_size - wlen[top]) {
			err = ENAMETOOLONG;
			goto out;
		}
		fd = openat(stack[top], name,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			err = errno;
			goto out;
		}
		/* in a directory the user cannot change nothing moves; a
		 * difference means someone with more rights is at work */
		if (fstat(fd, &st) < 0 || st.st_dev != lst.st_dev ||
		    st.st_ino != lst.st_ino) {
			close(fd);
			err = EAGAIN;
			goto out;
		}
		/* exactly the mode asked for, whatever the umask */
		if (made && fchmod(fd, perm) < 0) {
			err = errno;
			close(fd);
			goto out;
		}
		*created_r = made && last;
		stack[++top] = fd;
		wlen[top] = strlen(where);
	}
	ret = stack[top--];
out:
	while (top >= 0)
		close(stack[top--]);
	if (ret == -1)
		errno = err;
	return ret;
}

/* root_only - a directory that only root can change */
static bool
root_only(const struct pd_user *u, const struct stat *st)
{
	return st->st_uid == 0 && !user_can_change(u, st) &&
		(st->st_mode & S_IWGRP) == 0;
}

/* give_tree - hands the root-owned contents of the directory dfd (path,
 * for the log), then dfd itself, to u. It descends only into directories
 * that only root can write: what is in them was put there by root, not
 * by the user. Left as they are (one warning says so): symlinks, files
 * with more than one link (the other could be a system file), what
 * others own, what lies deeper than depth. An entry that cannot be
 * changed is logged and skipped; only the top directory must succeed. */
static int
give_tree(int dfd, const char *path, const struct pd_user *u, int depth,
	  unsigned *left)
{
	struct dirent *de;
	DIR *d;
	int lfd;

	lfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (d == NULL) {
		sc_log_warning("state_dir: cannot read %s: %s", path,
			       strerror(errno));
		if (lfd >= 0)
			close(lfd);
	}
	while (d != NULL && (de = readdir(d)) != NULL) {
		const char *why = NULL;
		struct stat st;
		int fd, sub;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		fd = openat(dfd, de->d_name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			why = strerror(errno);
		} else if (st.st_uid == u->uid) {
			/* the user's already */
		} else if (S_ISDIR(st.st_mode) && depth > 0 &&
			   root_only(u, &st)) {
			char *subpath = NULL;

			sub = openat(fd, ".", O_RDONLY | O_DIRECTORY |
				     O_CLOEXEC);
			if (sub < 0 || asprintf(&subpath, "%s/%s", path,
						de->d_name) < 0)
				why = strerror(errno);
			else if (give_tree(sub, subpath, u, depth - 1,
					   left) < 0)
				why = strerror(errno);
			free(subpath);
			if (sub >= 0)
				close(sub);
		} else if (S_ISREG(st.st_mode) && st.st_uid == 0 &&
			   st.st_nlink == 1) {
			if (fchownat(fd, "", u->uid, u->gid,
				     AT_EMPTY_PATH) < 0)
				why = strerror(errno);
		} else {
			if (++*left <= PD_LEFT_LOGGED)
				sc_log_warning("state_dir: left %s/%s as it is "
					       "(a symlink, a hard-linked "
					       "file, another owner's, or "
					       "too deep)", path, de->d_name);
		}
		if (why != NULL)
			sc_log_warning("state_dir: cannot give %s/%s to %s: "
				       "%s", path, de->d_name, u->name, why);
		if (fd >= 0)
			close(fd);
	}
	if (d != NULL)
		closedir(d);
	/* last: until now the user could not touch what we looked at */
	return fchown(dfd, u->uid, u->gid);
}

/* looks_like_state - a directory satcheld could have made: empty (make
 * install) or with a queue/ (a run as root); not /etc by a typo */
static bool
looks_like_state(int dfd)
{
	struct dirent *de;
	struct stat st;
	bool empty = true;
	DIR *d;
	int fd;

	if (fstatat(dfd, "queue", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISDIR(st.st_mode))
		return true;
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (empty && (de = readdir(d)) != NULL)
		empty = strcmp(de->d_name, ".") == 0 ||
			strcmp(de->d_name, "..") == 0;
	closedir(d);
	return empty;
}

static void
set_error(char **error_r, const char *fmt, ...) SC_PRINTF(2, 3);

static void
set_error(char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(error_r, fmt, ap) < 0)
		*error_r = NULL;
	va_end(ap);
}

int
sc_privdir_state(const char *state_dir, const char *user, char **error_r)
{
	char where[PATH_MAX];
	struct pd_user u;
	struct stat st;
	bool created;
	unsigned left = 0;
	int fd, ret = -1;

	*error_r = NULL;
	if (user_load(user, &u) < 0) {
		set_error(error_r, "the user \"%s\" (the `user:` key): %s",
			  user, errno == ENOENT ? "no such user; create it "
			  "or set `user:` to an existing account" :
			  strerror(errno));
		return -1;
	}
	fd = pd_open(state_dir, &u, true, 0750, &created, where,
		     sizeof(where));
	if (fd == PD_USER) {
		set_error(error_r, "state_dir %s: %s can be changed by %s, "
			  "who could then steer what root does there at "
			  "start; make every directory above state_dir "
			  "owned by root and not writable by %s", state_dir,
			  where[0] ? where : "/", user, user);
		goto out;
	}
	if (fd < 0) {
		set_error(error_r, "state_dir %s: %s", state_dir,
			  strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0) {
		set_error(error_r, "state_dir %s: %s", state_dir,
			  strerror(errno));
		goto out;
	}
	if (created) {
		if (fchown(fd, u.uid, u.gid) < 0) {
			set_error(error_r, "state_dir %s: giving it to %s: %s",
				  state_dir, user, strerror(errno));
			goto out;
		}
		sc_log_info("created state_dir %s for %s", state_dir, user);
	} else if (st.st_uid == u.uid) {
		/* the user's already: nothing in it is root's business */
	} else if (root_only(&u, &st) && !looks_like_state(fd)) {
		set_error(error_r, "state_dir %s belongs to root and does not "
			  "look like satchel's (it is not empty and has no "
			  "queue/); satcheld hands over only its own: check "
			  "state_dir, or chown -R %s: %s", state_dir, user,
			  state_dir);
		goto out;
	} else if (root_only(&u, &st)) {
		/* made by root (make install, or a run without `user:`) */
		if (give_tree(fd, state_dir, &u, PD_TREE_DEPTH, &left) < 0) {
			set_error(error_r, "state_dir %s: giving it to %s: %s",
				  state_dir, user, strerror(errno));
			goto out;
		}
		if (left > PD_LEFT_LOGGED)
			sc_log_warning("state_dir: %u more entries left as "
				       "they are", left - PD_LEFT_LOGGED);
		sc_log_info("gave state_dir %s to %s", state_dir, user);
	} else {
		set_error(error_r, "state_dir %s belongs to uid %u%s, not "
			  "to %s: fix: chown -R %s: %s", state_dir,
			  (unsigned)st.st_uid, st.st_uid == 0 ?
			  " and others may write to it" : "", user, user,
			  state_dir);
		goto out;
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	user_free(&u);
	return ret;
}

int
sc_dir_for_user(const char *path, mode_t mode)
{
	const char *user = sc_config_user();
	char where[PATH_MAX];
	struct pd_user u;
	bool created;
	int fd, ret = 0, e = 0;

	if (path == NULL || path[0] != '/' || (mode & ~07777) != 0) {
		errno = EINVAL;
		return -1;
	}
	if (geteuid() != 0 || user == NULL || user[0] == '\0')
		return 0;
	if (user_load(user, &u) < 0)
		return -1;
	fd = pd_open(path, &u, true, mode, &created, where, sizeof(where));
	if (fd == PD_USER) {
		sc_log_debug("%s: left for %s to create (it can change %s)",
			     path, user, where[0] ? where : "/");
	} else if (fd < 0) {
		e = errno;
		ret = -1;
	} else if (created) {
		if (fchown(fd, u.uid, u.gid) < 0) {
			e = errno;
			ret = -1;
		} else {
			ret = 1;
		}
	}
	if (fd >= 0)
		close(fd);
	user_free(&u);
	errno = e;
	return ret;
}
