/* SPDX-License-Identifier: MIT */
/*
 * core/privops.c - the privileged reload helper and its client: what a
 * reload needs root for once satcheld has dropped its privileges.
 *
 * sc_privops_start() forks, before the drop, a helper that keeps root and
 * answers two requests on a socketpair only the daemon holds:
 *   - the configured TLS certificate and key (certbot leaves privkey.pem
 *     0600 root): the certificate's PEM and the key in DER, so the daemon
 *     loads them from memory and wipes the key;
 *   - a listening socket for an address the config names (a port below
 *     1024 after the drop), bound here and passed with SCM_RIGHTS, as
 *     nginx's master process does for its workers.
 * The helper trusts nothing but the request's kind from the daemon: it
 * reads satchel.yaml itself (the usual config file checks: root's, not
 * writable by group or others), so a daemon taken over can neither read
 * another file nor bind an address the admin did not write; it refuses a
 * key or certificate whose path the daemon's user could change. Secrets are
 * wiped on both sides once used.
 *
 * The helper is a plain blocking loop in its own process, one request at a
 * time. The daemon's side is synchronous (the reload runs on the loop
 * thread and reads its config files there too), bounded by a timeout.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

/*
 * Wire format, host byte order (both ends are the same binary):
 *   request = u32 body_len, u8 kind ('T' TLS files, 'B' bind), payload
 *             ('B': the address as the config writes it, normalised)
 *   reply   = u32 body_len, u8 status ('0' done, 'N' nothing configured,
 *             'E' error), then fields: u32 len, bytes
 *             'T' done: cert path, key path, cert PEM, key DER (PKCS#8)
 *             'B' done: no field; the socket rides on the first byte
 *             'E': the message
 */
#define PO_REQ_MAX	256
#define PO_FILE_MAX	(1024 * 1024)	/* a certificate chain, a key  */
#define PO_REP_MAX	(2 * PO_FILE_MAX + 2 * PATH_MAX + 64)
#define PO_TIMEOUT_MS	10000

/* ------------------------------------------------------------------ */
/* helper process                                                      */
/* ------------------------------------------------------------------ */

struct po_reply {
	unsigned char *buf;
	size_t len, alloc;
};

/* rep_add - appends one field; -1 when it would not fit */
static int
rep_add(struct po_reply *r, const void *data, size_t len)
{
	uint32_t l32 = (uint32_t)len;

	if (r->len + 4 + len > r->alloc)
		return -1;
	memcpy(r->buf + r->len, &l32, 4);
	memcpy(r->buf + r->len + 4, data, len);
	r->len += 4 + len;
	return 0;
}

/* rep_error - turns the reply into an 'E' with a message */
static void
rep_error(struct po_reply *r, const char *fmt, ...) SC_PRINTF(2, 3);

static void
rep_error(struct po_reply *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	explicit_bzero(r->buf, r->len);
	r->buf[4] = 'E';
	r->len = 5;
	(void)rep_add(r, msg, strlen(msg));
}

/* user_can_change - could uid (gid) replace or rewrite what st is? Its
 * owner, group write in its group, write for others - except in a sticky
 * directory (/tmp), where only an entry's owner replaces it, and the entry
 * below was checked to be someone else's already. */
static bool
user_can_change(const struct stat *st, uid_t uid, gid_t gid)
{
	bool sticky = S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX) != 0;

	return st->st_uid == uid || (!sticky &&
		(((st->st_mode & S_IWGRP) != 0 && st->st_gid == gid) ||
		 (st->st_mode & S_IWOTH) != 0));
}

/* path_check - the real path of a key or certificate and every directory
 * above it belong to someone other than the daemon's user: root reads
 * nothing that user could have swapped. real gets the resolved path. */
static int
path_check(const char *path, uid_t uid, gid_t gid, char *real,
	   struct po_reply *r)
{
	char buf[PATH_MAX];
	struct stat st;

	if (realpath(path, real) == NULL) {
		rep_error(r, "%s: %s", path, strerror(errno));
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", real);
	for (;;) {
		char *slash;

		if (lstat(buf, &st) < 0) {
			rep_error(r, "%s: %s", buf, strerror(errno));
			return -1;
		}
		if (user_can_change(&st, uid, gid)) {
			rep_error(r, "%s (for %s) can be changed by the "
				  "daemon's user: the privileged helper does "
				  "not read it; keep keys in a directory of "
				  "root's", buf, path);
			return -1;
		}
		if (strcmp(buf, "/") == 0)
			return 0;
		slash = strrchr(buf, '/');
		if (slash == buf)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
}

/* read_small - reads a whole regular file (real path, no link followed at
 * the end) into r as one field */
static int
read_small(const char *real, const char *path, struct po_reply *r)
{
	int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	uint32_t l32;
	size_t off = 0;

	if (fd < 0) {
		rep_error(r, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > PO_FILE_MAX ||
	    r->len + 4 + (size_t)st.st_size > r->alloc) {
		close(fd);
		rep_error(r, "%s: not a regular file of at most %d bytes",
			  path, PO_FILE_MAX);
		return -1;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = read(fd, r->buf + r->len + 4 + off,
				 (size_t)st.st_size - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	l32 = (uint32_t)off;
	memcpy(r->buf + r->len, &l32, 4);
	r->len += 4 + off;
	return 0;
}

/* key_der - the key at real as one field, in DER (PKCS#8): the daemon
 * never parses its PEM, whose base64 GnuTLS copies into buffers it frees
 * unwiped */
static int
key_der(const char *real, const char *path, struct po_reply *r)
{
	gnutls_x509_privkey_t pk = NULL;
	gnutls_datum_t pem, der = { NULL, 0 };
	size_t start = r->len;
	int ret = -1, e;

	if (read_small(real, path, r) < 0)
		return -1;
	pem.data = r->buf + start + 4;
	pem.size = (unsigned)(r->len - start - 4);
	if ((e = gnutls_x509_privkey_init(&pk)) < 0 ||
	    (e = gnutls_x509_privkey_import2(pk, &pem, GNUTLS_X509_FMT_PEM,
					     NULL, 0)) < 0 ||
	    (e = gnutls_x509_privkey_export2_pkcs8(pk, GNUTLS_X509_FMT_DER,
						   NULL, GNUTLS_PKCS_PLAIN,
						   &der)) < 0) {
		rep_error(r, "%s: not a usable private key: %s", path,
			  gnutls_strerror(e));
		goto out;
	}
	explicit_bzero(r->buf + start, r->len - start);
	r->len = start;
	if (rep_add(r, der.data, der.size) < 0)
		rep_error(r, "%s: too long", path);
	else
		ret = 0;
out:
	if (der.data != NULL) {
		explicit_bzero(der.data, der.size);
		gnutls_free(der.data);
	}
	if (pk != NULL)
		gnutls_x509_privkey_deinit(pk);
	return ret;
}

/* do_tls - the configured certificate and key, read as root */
static void
do_tls(const struct sc_main_config *cfg, struct po_reply *r)
{
	char creal[PATH_MAX], kreal[PATH_MAX];
	const char *cert = cfg->tls_certificate, *key;
	struct passwd *pw;

	if (cert == NULL || cert[0] == '\0') {
		r->buf[4] = 'N';	/* generated: the daemon's own */
		return;
	}
	key = cfg->tls_key != NULL && cfg->tls_key[0] ? cfg->tls_key : cert;
	pw = cfg->user != NULL && cfg->user[0] ? getpwnam(cfg->user) : NULL;
	if (pw == NULL) {
		rep_error(r, "%s: user \"%s\" not found", cfg->file,
			  cfg->user != NULL ? cfg->user : "");
		return;
	}
	if (path_check(cert, pw->pw_uid, pw->pw_gid, creal, r) < 0 ||
	    path_check(key, pw->pw_uid, pw->pw_gid, kreal, r) < 0)
		return;
	if (rep_add(r, cert, strlen(cert)) < 0 ||
	    rep_add(r, key, strlen(key)) < 0) {
		rep_error(r, "path too long");
		return;
	}
	if (read_small(creal, cert, r) < 0)
		return;
	(void)key_der(kreal, key, r);
}

/* names_address - does a scalar of an enabled instance's file parse to
 * the address text? (Schema-free: any value the admin wrote counts.) */
static bool
names_address(const struct sc_ynode *n, const char *text)
{
	struct sc_sockaddr a;

	if (n == NULL)
		return false;
	if (n->type == SC_YSCALAR)
		return n->scalar != NULL &&
			sc_parse_sockaddr(n->scalar, &a) == 0 &&
			strcmp(a.text, text) == 0;
	for (size_t i = 0; i < n->n; i++)
		if (names_address(n->items[i], text))
			return true;
	return false;
}

/* do_bind - a listening socket for text, which the config must name */
static int
do_bind(const struct sc_main_config *cfg, const char *text,
	struct po_reply *r)
{
	struct sc_sockaddr a;
	bool named = false;
	int fd, one = 1;

	if (sc_parse_sockaddr(text, &a) < 0 || strcmp(a.text, text) != 0) {
		rep_error(r, "bad address \"%s\"", text);
		return -1;
	}
	for (size_t i = 0; i < cfg->inst_count && !named; i++)
		named = cfg->insts[i].enabled &&
			names_address(cfg->insts[i].root, text);
	if (!named) {
		rep_error(r, "%s is not an address of an enabled instance in "
			  "%s", text, cfg->file);
		return -1;
	}
	fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
		    SOCK_NONBLOCK, 0);
	if (fd < 0) {
		rep_error(r, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a.ss.ss_family == AF_INET6) {
		int v6only = a.text[0] != '*';	/* as sc_listen_open */

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only,
			   sizeof(v6only));
	}
	if (bind(fd, (const struct sockaddr *)&a.ss, a.len) < 0 ||
	    listen(fd, SC_LISTEN_BACKLOG) < 0) {
		rep_error(r, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* po_send - writes a reply, fd (when >= 0) attached to its first byte */
static int
po_send(int sock, const unsigned char *buf, size_t len, int fd)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	size_t off = 0;

	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.b;
		mh.msg_controllen = sizeof(cm.b);
		cm.h.cmsg_level = SOL_SOCKET;
		cm.h.cmsg_type = SCM_RIGHTS;
		cm.h.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&cm.h), &fd, sizeof(int));
	}
	while (off < len) {
		ssize_t n;

		iov.iov_base = (void *)(buf + off);
		iov.iov_len = len - off;
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		off += (size_t)n;
		mh.msg_control = NULL;	/* the fd goes once */
		mh.msg_controllen = 0;
	}
	return 0;
}

/* po_serve - answers one request body */
static int
po_serve(int sock, const char *config_path, const unsigned char *body,
	 uint32_t len, struct po_reply *r)
{
	struct sc_main_config *cfg = NULL;
	char text[PO_REQ_MAX], *err = NULL;
	uint32_t blen;
	int fd = -1, ret;

	r->len = 5;
	r->buf[4] = '0';
	if (sc_main_config_load(config_path, &cfg, &err) < 0) {
		rep_error(r, "%s", err ? err : "cannot read the config");
		free(err);
	} else if (body[0] == 'T' && len == 1) {
		do_tls(cfg, r);
	} else if (body[0] == 'B' && len > 1 && len - 1 < sizeof(text)) {
		memcpy(text, body + 1, len - 1);
		text[len - 1] = '\0';
		fd = do_bind(cfg, text, r);
	} else {
		rep_error(r, "malformed request");
	}
	if (cfg != NULL)
		sc_main_config_free(&cfg);
	blen = (uint32_t)(r->len - 4);
	memcpy(r->buf, &blen, 4);
	ret = po_send(sock, r->buf, r->len, r->buf[4] == '0' ? fd : -1);
	if (fd >= 0)
		close(fd);
	explicit_bzero(r->buf, r->len);	/* a key was in it */
	return ret;
}

/* po_helper_main - the helper's life: serve until the daemon closes its
 * end. Never returns. */
static void __attribute__((noreturn))
po_helper_main(int sock, pid_t parent, const char *config_path)
{
	struct po_reply r = { .alloc = PO_REP_MAX };
	unsigned char body[PO_REQ_MAX];

	/* ps(1) and tests tell it from the PAM helper by this name */
	sock = sc_helper_child_init(sock, parent, "satcheld-reload");
	r.buf = malloc(r.alloc);
	if (r.buf == NULL)
		_exit(1);
	for (;;) {
		uint32_t len;

		if (sc_helper_read_full(sock, &len, 4) <= 0)
			_exit(0);
		if (len < 1 || len > sizeof(body))
			_exit(2);	/* out of step: nothing to trust */
		if (sc_helper_read_full(sock, body, len) <= 0)
			_exit(0);
		if (po_serve(sock, config_path, body, len, &r) < 0)
			_exit(0);
	}
}

/* ------------------------------------------------------------------ */
/* daemon side                                                         */
/* ------------------------------------------------------------------ */

/* po_gone - the stream is out of step or closed: no more requests */
static void
po_gone(const char *why)
{
	struct sc_privops *po = &sc_core->privops;

	if (po->up) {
		sc_log_error("privileged helper: %s; reloading keys and "
			     "binding privileged ports need a restart now",
			     why);
		close(po->fd);
		po->fd = -1;
		po->up = false;
	}
}

/* po_wait - polls for input until the deadline; 1 ready, 0 timed out */
static int
po_wait(int fd, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		uint64_t now = sc_now_ms();
		int n;

		if (now >= deadline)
			return 0;
		n = poll(&p, 1, (int)(deadline - now));
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return 0;
	}
}

/* po_recv - reads len bytes (and a passed fd, if any) by the deadline */
static int
po_recv(int sock, unsigned char *buf, size_t len, int *fd_r,
	uint64_t deadline)
{
	size_t off = 0;

	while (off < len) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int))];
		} cm;
		struct iovec iov = { buf + off, len - off };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = cm.b,
				     .msg_controllen = sizeof(cm.b) };
		ssize_t n;

		if (!po_wait(sock, deadline))
			return -1;
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return -1;
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&mh); h != NULL;
		     h = CMSG_NXTHDR(&mh, h)) {
			int fd;

			if (h->cmsg_level != SOL_SOCKET ||
			    h->cmsg_type != SCM_RIGHTS ||
			    h->cmsg_len != CMSG_LEN(sizeof(int)))
				continue;
			memcpy(&fd, CMSG_DATA(h), sizeof(int));
			if (fd_r != NULL && *fd_r < 0)
				*fd_r = fd;
			else
				close(fd);
		}
		off += (size_t)n;
	}
	return 0;
}

/* po_request - one request, its reply (malloc'd body, wiped by the
 * caller) in *body_r; -1 with *error_r when the helper did not answer */
static int
po_request(char kind, const char *payload, unsigned char **body_r,
	   uint32_t *len_r, int *fd_r, char **error_r)
{
	struct sc_privops *po = &sc_core->privops;
	unsigned char req[4 + PO_REQ_MAX];
	size_t plen = payload != NULL ? strlen(payload) : 0;
	uint64_t deadline = sc_now_ms() + PO_TIMEOUT_MS;
	uint32_t blen = (uint32_t)(1 + plen), rlen;
	unsigned char *body;

	*body_r = NULL;
	if (!po->up) {
		*error_r = strdup("the privileged helper is not running "
				  "(satcheld was not started as root, or "
				  "the helper died): restart satcheld");
		return -1;
	}
	if (plen + 1 > PO_REQ_MAX) {
		*error_r = strdup("request too long");
		return -1;
	}
	memcpy(req, &blen, 4);
	req[4] = (unsigned char)kind;
	if (plen > 0)
		memcpy(req + 5, payload, plen);
	if (send(po->fd, req, 4 + blen, MSG_NOSIGNAL) != (ssize_t)(4 + blen)) {
		po_gone(strerror(errno));
		*error_r = strdup("the privileged helper is gone: restart "
				  "satcheld");
		return -1;
	}
	if (po_recv(po->fd, (unsigned char *)&rlen, 4, fd_r, deadline) < 0 ||
	    rlen < 1 || rlen > PO_REP_MAX) {
		po_gone("no answer");
		*error_r = strdup("the privileged helper did not answer: "
				  "restart satcheld");
		return -1;
	}
	body = malloc(rlen);
	if (body == NULL || po_recv(po->fd, body, rlen, fd_r, deadline) < 0) {
		free(body);
		po_gone("no answer");
		*error_r = strdup("the privileged helper did not answer: "
				  "restart satcheld");
		return -1;
	}
	*body_r = body;
	*len_r = rlen;
	return 0;
}

/* field - the next u32-counted field of a reply; -1 past its end */
static int
field(const unsigned char *body, uint32_t len, uint32_t *off,
      const unsigned char **data_r, size_t *len_r)
{
	uint32_t l;

	if (len - *off < 4)
		return -1;
	memcpy(&l, body + *off, 4);
	if (len - *off - 4 < l)
		return -1;
	*data_r = body + *off + 4;
	*len_r = l;
	*off += 4 + l;
	return 0;
}

/* reply_error - an 'E' reply's message (or a malformed reply) as error */
static void
reply_error(const unsigned char *body, uint32_t len, char **error_r)
{
	const unsigned char *msg;
	uint32_t off = 1;
	size_t mlen;

	if (body[0] == 'E' && field(body, len, &off, &msg, &mlen) == 0) {
		if (asprintf(error_r, "%.*s", (int)mlen, (const char *)msg) < 0)
			*error_r = NULL;
	} else {
		*error_r = strdup("malformed reply from the privileged "
				  "helper");
	}
}

/* dup_field - a field as a NUL-terminated malloc'd copy */
static char *
dup_field(const unsigned char *data, size_t len)
{
	char *s = malloc(len + 1);

	if (s != NULL) {
		memcpy(s, data, len);
		s[len] = '\0';
	}
	return s;
}

int
sc_privops_tls(struct sc_privops_tls *out, char **error_r)
{
	const unsigned char *f[4];
	size_t fl[4];
	unsigned char *body;
	uint32_t len, off = 1;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	*error_r = NULL;
	if (po_request('T', NULL, &body, &len, NULL, error_r) < 0)
		return -1;
	if (body[0] == 'N') {
		ret = 0;
	} else if (body[0] != '0') {
		reply_error(body, len, error_r);
	} else {
		for (int i = 0; i < 4; i++) {
			if (field(body, len, &off, &f[i], &fl[i]) < 0)
				break;
			if (i == 3)
				ret = 1;
		}
		if (ret == 1 &&
		    ((out->cert_path = dup_field(f[0], fl[0])) == NULL ||
		     (out->key_path = dup_field(f[1], fl[1])) == NULL ||
		     (out->cert = dup_field(f[2], fl[2])) == NULL ||
		     (out->key = dup_field(f[3], fl[3])) == NULL)) {
			sc_privops_tls_free(out);
			*error_r = strdup("out of memory");
			ret = -1;
		} else if (ret == 1) {
			out->cert_len = fl[2];
			out->key_len = fl[3];
		} else {
			*error_r = strdup("malformed reply from the "
					  "privileged helper");
		}
	}
	explicit_bzero(body, len);
	free(body);
	return ret;
}

void
sc_privops_tls_free(struct sc_privops_tls *t)
{
	if (t->key != NULL) {
		explicit_bzero(t->key, t->key_len);
		free(t->key);
	}
	free(t->cert);
	free(t->cert_path);
	free(t->key_path);
	memset(t, 0, sizeof(*t));
}

int
sc_privops_bind(const struct sc_sockaddr *addr, char **error_r)
{
	unsigned char *body;
	uint32_t len;
	int fd = -1;

	*error_r = NULL;
	if (po_request('B', addr->text, &body, &len, &fd, error_r) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (body[0] != '0' || fd < 0) {
		if (body[0] == '0')
			*error_r = strdup("the privileged helper sent no "
					  "socket");
		else
			reply_error(body, len, error_r);
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(body);
	if (fd >= 0)
		(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}

bool
sc_privops_available(void)
{
	return sc_core != NULL && sc_core->privops.up;
}

int
sc_privops_start(const char *config_path, char **error_r)
{
	struct sc_privops *po = &sc_core->privops;
	int sv[2];
	pid_t pid, parent;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		if (asprintf(error_r, "privileged helper: socketpair: %s",
			     strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	fflush(NULL);
	parent = getpid();
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(sv[0]);
		close(sv[1]);
		if (asprintf(error_r, "privileged helper: fork: %s",
			     strerror(e)) < 0)
			*error_r = NULL;
		return -1;
	}
	if (pid == 0) {
		close(sv[0]);
		po_helper_main(sv[1], parent, config_path);
	}
	close(sv[1]);
	po->pid = pid;
	po->fd = sv[0];
	po->up = true;
	sc_log_debug("privileged helper started (pid %ld)", (long)pid);
	return 0;
}

void
sc_privops_stop(void)
{
	struct sc_privops *po;

	if (sc_core == NULL)
		return;
	po = &sc_core->privops;
	if (po->up) {
		close(po->fd);	/* the helper reads EOF and exits */
		po->fd = -1;
		po->up = false;
	}
	sc_helper_reap(&po->pid);
}
