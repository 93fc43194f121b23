/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_tls.c - doctor's certificate check: the certificate
 * clients will see (configured, or the one satcheld generates in
 * state_dir): readable, valid now and for a while, naming the hostname,
 * not self-signed; then what the listeners serve (doctor_served.c). The
 * generated one is read as the daemon's user. satchelctl process.
 */
#include "doctor.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define DIAG_CERT_WARN_DAYS	14

/* read_file - a whole small file, malloc'd; NULL with errno */
static char *
read_file(const char *path, size_t *len_r)
{
	/* O_NONBLOCK: a FIFO put in the certificate's place is refused
	 * below, not waited on */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > 4 * 1024 * 1024) {
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf != NULL && off < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + off, (size_t)st.st_size - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	close(fd);
	if (buf != NULL) {
		buf[off] = '\0';
		*len_r = off;
	}
	return buf;
}

/* doctor_cert - the certificate clients will see */
void
doctor_cert(struct doctor *d)
{
	const struct sc_main_config *cfg = d->cfg;
	char path[4096], keypath[4096];
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrt = 0;
	gnutls_datum_t datum;
	size_t len = 0;
	char *pem;
	bool generated = cfg->tls_certificate == NULL ||
		cfg->tls_certificate[0] == '\0';
	time_t now = time(NULL), exp, act;
	struct sc_ctl_as as;
	char *err = NULL;
	int r, read_errno, key_errno = 0;

	if (generated) {
		snprintf(path, sizeof(path), "%s/tls/cert.pem",
			 cfg->state_dir);
		snprintf(keypath, sizeof(keypath), "%s/tls/key.pem",
			 cfg->state_dir);
	} else {
		snprintf(path, sizeof(path), "%s", cfg->tls_certificate);
		snprintf(keypath, sizeof(keypath), "%s",
			 cfg->tls_key != NULL && cfg->tls_key[0] ?
			 cfg->tls_key : cfg->tls_certificate);
	}
	/* the generated pair lies in state_dir: read it as the daemon's
	 * user, who reads it too (after the drop); a configured one as
	 * root, as satcheld does before the drop */
	memset(&as, 0, sizeof(as));
	if (generated && sc_ctl_as_user(cfg, &as, &err) < 0) {
		report(d, 2, "tls: %s", err ? err : "out of memory");
		free(err);
		return;
	}
	pem = read_file(path, &len);
	read_errno = errno;
	/* AT_EACCESS: access() would ask with the real uid, root's */
	if (faccessat(AT_FDCWD, keypath, R_OK, AT_EACCESS) != 0)
		key_errno = errno;
	sc_ctl_as_root(&as);
	errno = read_errno;
	if (pem == NULL) {
		if (generated && errno == ENOENT)
			report(d, 1, "tls: no certificate yet: satcheld "
			       "generates a self-signed one for %s at its "
			       "first start (clients will warn); set "
			       "tls.certificate and tls.key in %s to a real "
			       "one", cfg->hostname, cfg->file);
		else
			report(d, 2, "tls: cannot read the certificate %s: "
			       "%s", path, strerror(errno));
		return;
	}
	if (key_errno != 0)
		report(d, 2, "tls: cannot read the key %s: %s", keypath,
		       strerror(key_errno));
	datum.data = (unsigned char *)pem;
	datum.size = (unsigned)len;
	r = gnutls_x509_crt_list_import2(&crts, &ncrt, &datum,
					 GNUTLS_X509_FMT_PEM, 0);
	free(pem);
	if (r < 0 || ncrt == 0) {
		report(d, 2, "tls: %s is not a PEM certificate: %s", path,
		       r < 0 ? gnutls_strerror(r) : "empty");
		if (r >= 0)
			gnutls_free(crts);
		return;
	}
	exp = gnutls_x509_crt_get_expiration_time(crts[0]);
	act = gnutls_x509_crt_get_activation_time(crts[0]);
	if (exp != (time_t)-1 && exp < now)
		report(d, 2, "tls: the certificate %s expired %ld days ago: "
		       "renew it", path, (long)((now - exp) / 86400));
	else if (act != (time_t)-1 && act > now)
		report(d, 2, "tls: the certificate %s is not valid for "
		       "another %ld days: check the clock, or the "
		       "certificate", path, (long)((act - now) / 86400 + 1));
	else if (exp != (time_t)-1 &&
		 exp - now < DIAG_CERT_WARN_DAYS * 86400)
		report(d, 1, "tls: the certificate %s expires in %ld "
		       "days: renew it soon", path,
		       (long)((exp - now) / 86400));
	else
		report(d, 0, "tls: certificate %s valid for %ld more days",
		       path, (long)((exp - now) / 86400));
	if (!gnutls_x509_crt_check_hostname(crts[0], cfg->hostname))
		report(d, 1, "tls: the certificate does not name %s: "
		       "clients will warn; get one whose subjectAltName "
		       "includes it", cfg->hostname);
	if (gnutls_x509_crt_check_issuer(crts[0], crts[0]) == 1)
		report(d, 1, "tls: the certificate is self-signed: "
		       "clients will warn; use one from a CA (Let's "
		       "Encrypt) via tls.certificate and tls.key in %s",
		       cfg->file);
	doctor_served(d, crts[0], path);
	for (unsigned i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
}
