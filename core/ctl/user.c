/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/user.c - `satchelctl user add|passwd|del|list`: edits the
 * auth_file password file of the loaded config. Runs in the satchelctl
 * process (single-threaded, blocking I/O is fine here). The daemon notices
 * the rewritten file on its own within a second or two.
 */
#include "satchelctl.h"

#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#define USER_PASSWORD_MIN	8
#define USER_PASSWORD_MAX	1024
#define USER_FILE_MAX		(64u * 1024 * 1024)

enum user_op { OP_ADD, OP_PASSWD, OP_DEL };

/* An in-memory copy of the password file. */
struct pwfile {
	char *text;		/* whole file, NUL-terminated */
	size_t len;
	bool exists;
	struct stat st;
};

static void
user_usage(void)
{
	fprintf(stderr,
		"usage: satchelctl user add ADDR [--password-stdin]\n"
		"       satchelctl user passwd ADDR [--password-stdin]\n"
		"       satchelctl user del ADDR\n"
		"       satchelctl user list\n");
}

/* user_file_path - the `path` of the first enabled auth_file instance,
 * relative paths taken against its plugins.d file's directory */
static char *
user_file_path(const struct sc_main_config *cfg)
{
	for (size_t i = 0; i < cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &cfg->insts[i];
		const struct sc_ynode *root = ic->root;
		const char *path = NULL;
		char *dir, *copy, *out, *real;

		if (ic->module == NULL ||
		    strcmp(ic->module, "auth_file") != 0 || !ic->enabled ||
		    root == NULL || root->type != SC_YMAP)
			continue;
		for (size_t k = 0; k < root->n; k++) {
			if (root->keys[k]->scalar != NULL &&
			    strcmp(root->keys[k]->scalar, "path") == 0 &&
			    root->items[k]->type == SC_YSCALAR)
				path = root->items[k]->scalar;
		}
		if (path == NULL || *path == '\0') {
			fprintf(stderr, "satchelctl: %s: auth_file instance "
				"has no path\n", ic->file);
			return NULL;
		}
		if (path[0] == '/')
			return strdup(path);
		if ((copy = strdup(ic->file)) == NULL)
			return NULL;
		dir = dirname(copy);
		/* Canonical directory for readable messages; as written
		 * when it does not resolve. */
		real = realpath(dir, NULL);
		if (asprintf(&out, "%s/%s", real != NULL ? real : dir,
			     path) < 0)
			out = NULL;
		free(real);
		free(copy);
		return out;
	}
	fprintf(stderr, "satchelctl: no auth_file module is configured in "
		"%s; add a plugins.d file with `module: auth_file` and "
		"`path: ...`\n", cfg->file);
	return NULL;
}

/* user_addr_normalise - checks ADDR's syntax and lower-cases it in place */
static bool
user_addr_normalise(char *addr)
{
	char *at = strchr(addr, '@');
	size_t len = strlen(addr);

	if (at == NULL || at == addr || at[1] == '\0' ||
	    strchr(at + 1, '@') != NULL || len > 254 || at - addr > 64) {
		fprintf(stderr, "satchelctl: '%s' is not an address of the "
			"form user@domain\n", addr);
		return false;
	}
	for (char *p = addr; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= ' ' || c == 0x7f || c == ':' || c == '#' ||
		    c == '"' || c == '\\' || c == '<' || c == '>' ||
		    c == ',' || c == ';') {
			fprintf(stderr, "satchelctl: '%s': invalid character "
				"in address\n", addr);
			return false;
		}
		*p = (char)tolower(c);
	}
	return true;
}

/* user_domain_check - the domain must be one of `domains:` */
static bool
user_domain_check(const struct sc_main_config *cfg, const char *addr)
{
	const char *domain = strchr(addr, '@') + 1;

	for (size_t i = 0; i < cfg->domain_count; i++) {
		if (strcasecmp(cfg->domains[i].name, domain) == 0)
			return true;
	}
	fprintf(stderr, "satchelctl: domain '%s' is not configured in %s; "
		"configured domains:", domain, cfg->file);
	if (cfg->domain_count == 0)
		fprintf(stderr, " (none)");
	for (size_t i = 0; i < cfg->domain_count; i++)
		fprintf(stderr, "%s %s", i ? "," : "", cfg->domains[i].name);
	fprintf(stderr, "\n");
	return false;
}

/* pwfile_read - loads the file; a missing file is an empty one */
static int
pwfile_read(const char *path, struct pwfile *pf)
{
	int fd;
	size_t off = 0;

	memset(pf, 0, sizeof(*pf));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		pf->text = strdup("");
		return pf->text != NULL ? 0 : -1;
	}
	if (fd < 0 || fstat(fd, &pf->st) < 0) {
		fprintf(stderr, "satchelctl: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (!S_ISREG(pf->st.st_mode) ||
	    (uint64_t)pf->st.st_size > USER_FILE_MAX) {
		fprintf(stderr, "satchelctl: %s: not a regular file or too "
			"large\n", path);
		close(fd);
		return -1;
	}
	pf->exists = true;
	pf->text = malloc((size_t)pf->st.st_size + 1);
	if (pf->text == NULL) {
		close(fd);
		return -1;
	}
	while (off < (size_t)pf->st.st_size) {
		ssize_t n = read(fd, pf->text + off,
				 (size_t)pf->st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "satchelctl: %s: %s\n", path,
				strerror(errno));
			close(fd);
			free(pf->text);
			pf->text = NULL;
			return -1;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	pf->text[off] = '\0';
	pf->len = off;
	return 0;
}

/* line_addr_match - does this file line hold the entry for addr? Sets
 * *rest_r to the text after the hash (extra fields), if any. */
static bool
line_addr_match(const char *line, size_t len, const char *addr,
		const char **rest_r)
{
	const char *colon;
	size_t alen = strlen(addr);

	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	if (len == 0 || *line == '#')
		return false;
	colon = memchr(line, ':', len);
	if (colon == NULL || (size_t)(colon - line) != alen ||
	    strncasecmp(line, addr, alen) != 0)
		return false;
	if (rest_r != NULL) {
		const char *end = line + len;
		const char *c2 = memchr(colon + 1, ':', (size_t)(end -
							   colon - 1));

		*rest_r = c2;	/* ":extra..." to the end of line, or NULL */
	}
	return true;
}

/* pwfile_find - true when addr has a line in the file */
static bool
pwfile_find(const struct pwfile *pf, const char *addr)
{
	const char *p = pf->text, *end = pf->text + pf->len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (line_addr_match(p, l, addr, NULL))
			return true;
		p += l + 1;
	}
	return false;
}

/* tty_read_line - one line from the terminal without echo */
static int
tty_read_line(int fd, const char *prompt, char *buf, size_t size)
{
	struct termios old, noecho;
	size_t n = 0;
	int ret = 0;

	/* Echo goes off before the prompt appears: whatever is typed after
	 * it must neither be echoed nor flushed away (TCSANOW, not
	 * TCSAFLUSH, so a fast typist or a script loses nothing). */
	if (tcgetattr(fd, &old) < 0)
		return -1;
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	noecho.c_lflag |= ICANON;
	if (tcsetattr(fd, TCSANOW, &noecho) < 0)
		return -1;
	if (write(fd, prompt, strlen(prompt)) < 0) {
		(void)tcsetattr(fd, TCSANOW, &old);
		return -1;
	}
	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			ret = -1;
			break;
		}
		if (c == '\n')
			break;
		if (n + 1 >= size) {
			ret = -1;	/* too long; keep draining */
			continue;
		}
		buf[n++] = c;
	}
	buf[n] = '\0';
	(void)tcsetattr(fd, TCSANOW, &old);
	if (write(fd, "\n", 1) < 0)
		ret = -1;
	return ret;
}

/* user_read_password - from stdin (first line) or from the terminal,
 * asked twice. 0 or -1 (message printed). */
static int
user_read_password(const char *addr, bool from_stdin, char *buf,
		   size_t size)
{
	char again[USER_PASSWORD_MAX + 2];
	char prompt[320];
	int fd, ret;

	if (from_stdin) {
		size_t n = 0;
		int c;

		while ((c = getchar()) != EOF && c != '\n') {
			if (n + 1 >= size) {
				fprintf(stderr, "satchelctl: password too "
					"long (at most %d bytes)\n",
					USER_PASSWORD_MAX);
				explicit_bzero(buf, size);
				return -1;
			}
			buf[n++] = (char)c;
		}
		if (n > 0 && buf[n - 1] == '\r')
			n--;
		buf[n] = '\0';
		return 0;
	}
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "satchelctl: no terminal to ask for the "
			"password; use --password-stdin\n");
		return -1;
	}
	snprintf(prompt, sizeof(prompt), "Password for %s: ", addr);
	ret = tty_read_line(fd, prompt, buf, size);
	if (ret == 0)
		ret = tty_read_line(fd, "Retype password: ", again,
				    sizeof(again));
	close(fd);
	if (ret < 0) {
		fprintf(stderr, "satchelctl: could not read the password\n");
	} else if (strcmp(buf, again) != 0) {
		fprintf(stderr, "satchelctl: the passwords do not match\n");
		ret = -1;
	}
	explicit_bzero(again, sizeof(again));
	if (ret < 0)
		explicit_bzero(buf, size);
	return ret;
}

/* user_password_ok - the weak-password rule */
static bool
user_password_ok(const char *pw)
{
	if (*pw == '\0') {
		fprintf(stderr, "satchelctl: refusing an empty password\n");
		return false;
	}
	if (strlen(pw) < USER_PASSWORD_MIN) {
		fprintf(stderr, "satchelctl: password too weak: use at least "
			"%d characters\n", USER_PASSWORD_MIN);
		return false;
	}
	return true;
}

/* user_hash - yescrypt hash of pw as "{CRYPT}$y$..." (malloc'd): the
 * scheme name Dovecot's passwd-file reads too (it has no {YESCRYPT});
 * crypt(3) tells the algorithm from the $y$ */
static char *
user_hash(const char *pw)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	char *h, *out = NULL;

	/* NULL random bytes: libxcrypt takes them from the kernel. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting,
			     sizeof(setting)) == NULL) {
		fprintf(stderr, "satchelctl: crypt_gensalt(yescrypt): %s\n",
			strerror(errno));
		return NULL;
	}
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return NULL;
	h = crypt_r(pw, setting, cd);
	if (h == NULL || h[0] == '*') {
		fprintf(stderr, "satchelctl: yescrypt hashing failed\n");
	} else if (asprintf(&out, "{CRYPT}%s", h) < 0) {
		out = NULL;
	}
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return out;
}

/* user_new_group - the group a new file gets: the daemon user's primary
 * group, so the unprivileged daemon can read it; -1 = leave as is */
static gid_t
user_new_group(const struct sc_main_config *cfg)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (geteuid() != 0 || cfg->user == NULL || cfg->user[0] == '\0')
		return (gid_t)-1;
	if (getpwnam_r(cfg->user, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL)
		return (gid_t)-1;
	return pw.pw_gid;
}

/* write_all - 0 or -1 */
static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* pwfile_replace - writes text as the new file: a temp file in the same
 * directory, mode and owner of the old file (or 0640 root:daemon-group
 * for a new one), fsync, rename, fsync of the directory. Why: the daemon
 * re-reads the file at any moment and must see either the old or the new
 * one whole, and a crash must not leave a truncated password file. */
static int
pwfile_replace(const struct sc_main_config *cfg, const char *path,
	       const struct pwfile *old, const char *text, size_t len)
{
	char *tmp = NULL, *copy = NULL, *dir;
	const char *base;
	mode_t mode = 0640;
	int fd = -1, dfd = -1, ret = -1;
	uid_t uid = (uid_t)-1;
	gid_t gid;

	if ((copy = strdup(path)) == NULL)
		goto out;
	dir = dirname(copy);
	base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
		tmp = NULL;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "satchelctl: creating a file in %s: %s\n",
			dir, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (old->exists) {
		mode = old->st.st_mode & 07777;
		uid = old->st.st_uid;
		gid = old->st.st_gid;
	} else {
		gid = user_new_group(cfg);
	}
	if (fchmod(fd, mode) < 0) {
		fprintf(stderr, "satchelctl: chmod %s: %s\n", tmp,
			strerror(errno));
		goto out;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) &&
	    fchown(fd, uid, gid) < 0) {
		/* Not root: we can only keep the owner when it is us. */
		if (errno != EPERM || old->exists) {
			fprintf(stderr, "satchelctl: chown %s: %s\n", tmp,
				strerror(errno));
			goto out;
		}
	}
	if (write_all(fd, text, len) < 0 || fsync(fd) < 0) {
		fprintf(stderr, "satchelctl: writing %s: %s\n", tmp,
			strerror(errno));
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		fprintf(stderr, "satchelctl: writing %s: %s\n", tmp,
			strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		fprintf(stderr, "satchelctl: rename %s -> %s: %s\n", tmp, path,
			strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL) {
		(void)unlink(tmp);
		free(tmp);
	}
	free(copy);
	return ret;
}

/* user_modify - add/passwd/del under the lock, on a fresh read */
static int
user_modify(const struct sc_main_config *cfg, const char *path,
	    enum user_op op, const char *addr, const char *hash)
{
	struct pwfile pf;
	char *lockpath = NULL, *out = NULL;
	size_t olen = 0, cap;
	int lfd = -1, ret = -1;
	bool found = false;
	const char *p, *end;

	if (asprintf(&lockpath, "%s.lock", path) < 0)
		return -1;
	lfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lfd < 0) {
		fprintf(stderr, "satchelctl: %s: %s\n", lockpath,
			strerror(errno));
		free(lockpath);
		return -1;
	}
	while (flock(lfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "satchelctl: lock %s: %s\n", lockpath,
				strerror(errno));
			goto out_lock;
		}
	}
	if (pwfile_read(path, &pf) < 0)
		goto out_lock;

	/* @UNSAFE: one line changes at most, and by at most addr + hash
	 * plus a colon and newlines. */
	cap = pf.len + (hash != NULL ? strlen(addr) + strlen(hash) : 0) + 4;
	if ((out = malloc(cap)) == NULL)
		goto out_pf;
	p = pf.text;
	end = pf.text + pf.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		const char *rest = NULL;

		if (!found && line_addr_match(p, l, addr, &rest)) {
			found = true;
			if (op == OP_DEL) {
				p += l + 1;
				continue;
			}
			if (op == OP_PASSWD) {
				size_t rl = rest != NULL ?
					(size_t)(p + l - rest) : 0;

				/* Fits: the old line held addr and rest. */
				olen += (size_t)sprintf(out + olen, "%s:%s",
							addr, hash);
				if (rl > 0) {
					memcpy(out + olen, rest, rl);
					olen += rl;
				}
				out[olen++] = '\n';
				p += l + 1;
				continue;
			}
		}
		memcpy(out + olen, p, l);
		olen += l;
		out[olen++] = '\n';
		p += l + 1;
	}
	if (op == OP_ADD && found) {
		fprintf(stderr, "satchelctl: %s already exists in %s\n", addr,
			path);
		goto out_pf;
	}
	if (op != OP_ADD && !found) {
		fprintf(stderr, "satchelctl: %s: no such user in %s\n", addr,
			path);
		goto out_pf;
	}
	if (op == OP_ADD)
		olen += (size_t)sprintf(out + olen, "%s:%s\n", addr, hash);
	ret = pwfile_replace(cfg, path, &pf, out, olen);
out_pf:
	free(out);
	free(pf.text);
out_lock:
	close(lfd);	/* releases the lock */
	free(lockpath);
	return ret;
}

/* user_list - prints "ADDR SCHEME" per valid entry */
static int
user_list(const char *path)
{
	struct pwfile pf;
	const char *p, *end;

	if (pwfile_read(path, &pf) < 0)
		return 1;
	if (!pf.exists)
		fprintf(stderr, "satchelctl: %s does not exist yet (no "
			"users)\n", path);
	p = pf.text;
	end = pf.text + pf.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		const char *s = p, *colon;
		size_t sl = l;

		p += l + 1;
		while (sl > 0 && (*s == ' ' || *s == '\t')) {
			s++;
			sl--;
		}
		if (sl == 0 || *s == '#')
			continue;
		colon = memchr(s, ':', sl);
		if (colon == NULL || colon == s)
			continue;
		if (colon[1] == '{') {
			const char *cb = memchr(colon, '}',
						(size_t)(s + sl - colon));

			if (cb != NULL) {
				printf("%.*s\t%.*s\n", (int)(colon - s), s,
				       (int)(cb - colon - 2), colon + 2);
				continue;
			}
		}
		printf("%.*s\tCRYPT\n", (int)(colon - s), s);
	}
	free(pf.text);
	return 0;
}

int
sc_ctl_user_main(const struct sc_main_config *cfg, int argc, char **argv)
{
	char password[USER_PASSWORD_MAX + 2];
	bool from_stdin = false;
	enum user_op op;
	struct pwfile pf;
	char *path = NULL, *addr = NULL, *hash;
	int ret = 1;

	if (argc < 2) {
		user_usage();
		return 2;
	}
	if (strcmp(argv[1], "list") == 0) {
		if (argc != 2) {
			user_usage();
			return 2;
		}
		if ((path = user_file_path(cfg)) == NULL)
			return 1;
		ret = user_list(path);
		free(path);
		return ret;
	}
	if (strcmp(argv[1], "add") == 0)
		op = OP_ADD;
	else if (strcmp(argv[1], "passwd") == 0)
		op = OP_PASSWD;
	else if (strcmp(argv[1], "del") == 0)
		op = OP_DEL;
	else {
		fprintf(stderr, "satchelctl: unknown user command '%s'\n",
			argv[1]);
		user_usage();
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0 && op != OP_DEL)
			from_stdin = true;
		else if (argv[i][0] == '-' || addr != NULL) {
			user_usage();
			return 2;
		} else
			addr = argv[i];
	}
	if (addr == NULL) {
		user_usage();
		return 2;
	}
	if ((addr = strdup(addr)) == NULL)
		return 1;
	if ((path = user_file_path(cfg)) == NULL)
		goto out;
	if (!user_addr_normalise(addr))
		goto out;
	/* del works for a domain no longer configured, to clean up. */
	if (op != OP_DEL && !user_domain_check(cfg, addr))
		goto out;

	if (op == OP_DEL) {
		if (user_modify(cfg, path, op, addr, NULL) == 0) {
			printf("deleted %s\n", addr);
			ret = 0;
		}
		goto out;
	}
	/* Fail early, before asking for a password; re-checked under the
	 * lock when the file is rewritten. */
	if (pwfile_read(path, &pf) < 0)
		goto out;
	if (op == OP_ADD && pwfile_find(&pf, addr)) {
		fprintf(stderr, "satchelctl: %s already exists in %s\n", addr,
			path);
		free(pf.text);
		goto out;
	}
	if (op == OP_PASSWD && !pwfile_find(&pf, addr)) {
		fprintf(stderr, "satchelctl: %s: no such user in %s\n", addr,
			path);
		free(pf.text);
		goto out;
	}
	free(pf.text);

	if (user_read_password(addr, from_stdin, password,
			       sizeof(password)) < 0)
		goto out;
	if (!user_password_ok(password)) {
		explicit_bzero(password, sizeof(password));
		goto out;
	}
	hash = user_hash(password);
	explicit_bzero(password, sizeof(password));
	if (hash == NULL)
		goto out;
	if (user_modify(cfg, path, op, addr, hash) == 0) {
		printf("%s %s\n", op == OP_ADD ? "added" : "changed password "
		       "of", addr);
		ret = 0;
	}
	free(hash);
out:
	free(path);
	free(addr);
	return ret;
}
