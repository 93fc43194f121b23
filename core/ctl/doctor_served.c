/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_served.c - doctor's look at the certificate the running
 * daemon serves: a TLS handshake with a configured TLS listener (implicit
 * TLS, else SMTP STARTTLS, else POP3 STLS), whose certificate is compared
 * with the file. They differ after a renewal that no reload (or a failed
 * one) brought in. Blocking, bounded by timeouts; satchelctl process.
 */
#include "doctor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define SERVED_TIMEOUT_S	5

/* pick - the listener to ask: implicit TLS first (no dialogue), then
 * STARTTLS; NULL when none speaks TLS */
static const struct lsn *
pick(const struct lsn_list *ll)
{
	const struct lsn *best = NULL;

	for (size_t i = 0; ll != NULL && i < ll->n; i++) {
		const struct lsn *l = &ll->v[i];

		if (l->tls == LSN_IMPLICIT)
			return l;
		if (l->tls == LSN_STARTTLS && best == NULL)
			best = l;
	}
	return best;
}

/* dial - a connected socket to l (a wildcard address: via loopback) */
static int
dial(const struct lsn *l, char *where, size_t wlen)
{
	struct sockaddr_storage ss = l->addr.ss;
	socklen_t len = l->addr.len;
	struct timeval tv = { SERVED_TIMEOUT_S, 0 };
	int fd;

	if (l->wildcard && ss.ss_family == AF_INET) {
		((struct sockaddr_in *)&ss)->sin_addr.s_addr =
			htonl(INADDR_LOOPBACK);
	} else if (l->wildcard) {
		/* "*:25" is dual-stack: IPv4 loopback answers as well */
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	}
	snprintf(where, wlen, "%s", l->addr.text);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* SO_SNDTIMEO bounds connect() too */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* line - reads one line (byte by byte: nothing past it may be eaten,
 * the TLS handshake follows); 0 or -1 */
static int
line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (c == '\n')
			break;
		if (n + 1 < size && c != '\r')
			buf[n++] = c;
	}
	buf[n] = '\0';
	return 0;
}

/* smtp_reply - the code of a (multi-line) SMTP reply, or -1 */
static int
smtp_reply(int fd)
{
	char buf[512];

	do {
		if (line(fd, buf, sizeof(buf)) < 0 || strlen(buf) < 3)
			return -1;
	} while (buf[3] == '-');
	return atoi(buf);
}

static int
say(int fd, const char *s)
{
	size_t len = strlen(s);

	return write(fd, s, len) == (ssize_t)len ? 0 : -1;
}

/* starttls - the plaintext dialogue up to the handshake; NULL or why not */
static const char *
starttls(int fd, const struct lsn *l)
{
	char buf[512];

	if (l->tls == LSN_IMPLICIT)
		return NULL;
	if (strcmp(l->proto, "pop3") == 0) {
		if (line(fd, buf, sizeof(buf)) < 0 || strncmp(buf, "+OK", 3))
			return "no POP3 greeting";
		if (say(fd, "STLS\r\n") < 0 || line(fd, buf, sizeof(buf)) < 0 ||
		    strncmp(buf, "+OK", 3) != 0)
			return "STLS refused";
		return NULL;
	}
	if (smtp_reply(fd) != 220)
		return "no SMTP greeting";
	if (say(fd, "EHLO doctor.invalid\r\n") < 0 || smtp_reply(fd) != 250)
		return "EHLO refused";
	if (say(fd, "STARTTLS\r\n") < 0 || smtp_reply(fd) != 220)
		return "STARTTLS refused";
	return NULL;
}

/* served - the DER certificate the listener presents (gnutls_free it) */
static int
served(int fd, gnutls_datum_t *der_r, const char **why_r)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_session_t s = NULL;
	const gnutls_datum_t *chain;
	unsigned n = 0;
	int r, ret = -1;

	if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
	    gnutls_init(&s, GNUTLS_CLIENT) < 0) {
		*why_r = "out of memory";
		goto out;
	}
	if (gnutls_set_default_priority(s) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
		*why_r = "GnuTLS setup failed";
		goto out;
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, SERVED_TIMEOUT_S * 1000);
	do
		r = gnutls_handshake(s);
	while (r < 0 && !gnutls_error_is_fatal(r));
	if (r < 0) {
		*why_r = gnutls_strerror(r);
		goto out;
	}
	chain = gnutls_certificate_get_peers(s, &n);
	if (chain == NULL || n == 0) {
		*why_r = "no certificate sent";
		goto out;
	}
	der_r->data = gnutls_malloc(chain[0].size);
	if (der_r->data == NULL) {
		*why_r = "out of memory";
		goto out;
	}
	memcpy(der_r->data, chain[0].data, chain[0].size);
	der_r->size = chain[0].size;
	(void)gnutls_bye(s, GNUTLS_SHUT_WR);
	ret = 0;
out:
	if (s != NULL)
		gnutls_deinit(s);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	return ret;
}

/* describe - "CN=..., valid until YYYY-MM-DD" of a DER certificate */
static void
describe(const gnutls_datum_t *der, char *buf, size_t size)
{
	gnutls_x509_crt_t crt;
	char dn[256];
	size_t dlen = sizeof(dn);
	time_t exp;
	struct tm tm;

	snprintf(buf, size, "unreadable");
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0) {
		if (gnutls_x509_crt_get_dn(crt, dn, &dlen) < 0)
			snprintf(dn, sizeof(dn), "?");
		exp = gnutls_x509_crt_get_expiration_time(crt);
		if (exp != (time_t)-1 && gmtime_r(&exp, &tm) != NULL)
			snprintf(buf, size, "%s, valid until "
				 "%04d-%02d-%02d", dn, tm.tm_year + 1900,
				 tm.tm_mon + 1, tm.tm_mday);
		else
			snprintf(buf, size, "%s", dn);
	}
	gnutls_x509_crt_deinit(crt);
}

/* doctor_served - compares what a TLS listener serves with the file's
 * certificate crt (path) */
void
doctor_served(struct doctor *d, gnutls_x509_crt_t crt, const char *path)
{
	const struct lsn *l = pick(d->ll);
	gnutls_datum_t file = { NULL, 0 }, got = { NULL, 0 };
	char where[80], desc[400];
	const char *why = NULL;
	int fd;

	if (!d->daemon_up || l == NULL)
		return;	/* nothing running, or nothing to ask */
	if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &file) < 0)
		return;
	fd = dial(l, where, sizeof(where));
	if (fd < 0) {
		report(d, 1, "tls: cannot reach the listener on %s to see "
		       "the certificate it serves: %s", where,
		       strerror(errno));
		gnutls_free(file.data);
		return;
	}
	why = starttls(fd, l);
	if (why == NULL && served(fd, &got, &why) == 0) {
		if (got.size == file.size &&
		    memcmp(got.data, file.data, file.size) == 0) {
			report(d, 0, "tls: the listener on %s serves the "
			       "certificate of %s", where, path);
		} else {
			describe(&got, desc, sizeof(desc));
			report(d, 2, "tls: the listener on %s serves another "
			       "certificate than %s (it serves %s): run "
			       "`satchelctl reload` and check that it says "
			       "the reload took", where, path, desc);
		}
	} else {
		report(d, 1, "tls: no TLS handshake with the listener on %s "
		       "to see the certificate it serves: %s", where,
		       why != NULL ? why : "failed");
	}
	close(fd);
	gnutls_free(got.data);
	gnutls_free(file.data);
}
