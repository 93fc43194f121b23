/* SPDX-License-Identifier: MIT */
/*
 * core/net_tls_cert.c - the server's TLS certificate (GnuTLS): loaded from
 * the config, or generated once (self-signed) under state_dir and made
 * anew near its end; read anew at a reload (a root-owned key through the
 * privileged helper); the session ticket key; the net part's set-up and
 * tear-down. Event loop thread; a certificate is generated at start-up
 * (after the privilege drop, before the loop) or at a reload that finds
 * the generated one missing or near its end (then on the loop).
 */
#include "net_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/x509.h>
#include <gnutls/crypto.h>

/* TLS 1.2+ with AEAD ciphers and forward secrecy only, in our order of
 * preference (%SERVER_PRECEDENCE), not the client's. */
#define SERVER_PRIORITY "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
	"-RSA:-DHE-RSA:%PROFILE_MEDIUM:%SERVER_PRECEDENCE"
/* A generated self-signed certificate lives a year (browsers and CAs
 * allow no more than about that) and is made anew within a month of its
 * end, at a start or a reload. */
#define GENERATED_DAYS		365
#define GENERATED_RENEW_DAYS	30

/* The server credentials and priorities: process-wide, loop thread
 * only. */
static struct {
	gnutls_certificate_credentials_t server_cred;
	char *cert_path, *key_path;
	gnutls_priority_t server_prio;
} net_tls;

static int
path_join(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* write_file_atomic - writes data to path via a temporary file with mode */
static int
write_file_atomic(const char *path, const void *data, size_t len,
		  mode_t mode)
{
	char tmp[4096];
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	if (write(fd, data, len) != (ssize_t)len || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* generate_certificate - a self-signed ECDSA P-256 certificate for
 * hostname, valid GENERATED_DAYS, with SAN dNSName = hostname. */
static int
generate_certificate(const char *hostname, const char *cert_path,
		     const char *key_path, char **error_r)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	gnutls_datum_t kpem = { NULL, 0 }, cpem = { NULL, 0 };
	unsigned char serial[16];
	time_t now = time(NULL);
	int r, ret = -1;
	const char *step = "key";

	if ((r = gnutls_x509_privkey_init(&key)) < 0 ||
	    (r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0)) < 0)
		goto out;
	step = "certificate";
	if ((r = gnutls_x509_crt_init(&crt)) < 0 ||
	    (r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
	    (r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
		goto out;
	serial[0] &= 0x7f;	/* positive */
	if ((r = gnutls_x509_crt_set_serial(crt, serial,
					    sizeof(serial))) < 0 ||
	    (r = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
	    (r = gnutls_x509_crt_set_expiration_time(crt,
			now + GENERATED_DAYS * 24L * 3600)) < 0 ||
	    (r = gnutls_x509_crt_set_dn_by_oid(crt,
			GNUTLS_OID_X520_COMMON_NAME, 0, hostname,
			strlen(hostname))) < 0 ||
	    (r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME,
			hostname, strlen(hostname), GNUTLS_FSAN_SET)) < 0 ||
	    (r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
	    (r = gnutls_x509_crt_set_key_usage(crt,
			GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
	    (r = gnutls_x509_crt_set_key_purpose_oid(crt,
			GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
	    (r = gnutls_x509_crt_set_key(crt, key)) < 0 ||
	    (r = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256,
				       0)) < 0)
		goto out;
	step = "export";
	if ((r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM,
					     &kpem)) < 0 ||
	    (r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM,
					 &cpem)) < 0)
		goto out;
	/* the key first: a certificate without its key is useless */
	if (write_file_atomic(key_path, kpem.data, kpem.size, 0600) < 0) {
		if (asprintf(error_r, "%s: %s", key_path, strerror(errno)) < 0)
			*error_r = NULL;
		goto out_noerr;
	}
	if (write_file_atomic(cert_path, cpem.data, cpem.size, 0644) < 0) {
		if (asprintf(error_r, "%s: %s", cert_path,
			     strerror(errno)) < 0)
			*error_r = NULL;
		goto out_noerr;
	}
	sc_log_notice("generated a self-signed TLS certificate for %s in %s",
		      hostname, cert_path);
	ret = 0;
	goto out_noerr;
out:
	if (asprintf(error_r, "generating the TLS %s: %s", step,
		     gnutls_strerror(r)) < 0)
		*error_r = NULL;
out_noerr:
	gnutls_free(kpem.data);
	gnutls_free(cpem.data);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);
	return ret;
}

/* cert_paths - where the certificate and key of cfg are */
static int
cert_paths(const struct sc_main_config *cfg, char *cert, char *key,
	   size_t len)
{
	char dir[4096];

	if (cfg->tls_certificate != NULL && cfg->tls_certificate[0] != '\0') {
		const char *k = cfg->tls_key != NULL && cfg->tls_key[0] ?
			cfg->tls_key : cfg->tls_certificate;

		if (snprintf(cert, len, "%s", cfg->tls_certificate) >=
		    (int)len || snprintf(key, len, "%s", k) >= (int)len)
			return -1;
		return 0;
	}
	if (cfg->state_dir == NULL ||
	    path_join(dir, sizeof(dir), cfg->state_dir, "tls") < 0 ||
	    path_join(cert, len, dir, "cert.pem") < 0 ||
	    path_join(key, len, dir, "key.pem") < 0)
		return -1;
	return 0;
}

static int
load_cred(const char *cert, const char *key,
	  gnutls_certificate_credentials_t *cred_r, char **error_r)
{
	gnutls_certificate_credentials_t cred;
	int r;

	if (gnutls_certificate_allocate_credentials(&cred) < 0) {
		*error_r = strdup("out of memory");
		return -1;
	}
	r = gnutls_certificate_set_x509_key_file(cred, cert, key,
						 GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		if (asprintf(error_r, "TLS certificate %s / key %s: %s", cert,
			     key, gnutls_strerror(r)) < 0)
			*error_r = NULL;
		gnutls_certificate_free_credentials(cred);
		return -1;
	}
	*cred_r = cred;
	return 0;
}

/* cred_usable - whether the certificate and key load as a pair (the
 * check at start and reload; the credentials themselves are not kept) */
static int
cred_usable(const char *cert, const char *key, char **error_r)
{
	gnutls_certificate_credentials_t cred;

	if (load_cred(cert, key, &cred, error_r) < 0)
		return -1;
	gnutls_certificate_free_credentials(cred);
	return 0;
}

/* generated_deferred - the generated certificate lives in state_dir,
 * which belongs to the daemon's user: root leaves it alone, and the
 * daemon makes and reads it after the privilege drop */
static bool
generated_deferred(const struct sc_main_config *cfg)
{
	return (cfg->tls_certificate == NULL ||
		cfg->tls_certificate[0] == '\0') && geteuid() == 0 &&
		cfg->user != NULL && cfg->user[0] != '\0';
}

/* expires_soon - the generated certificate at path ends within
 * GENERATED_RENEW_DAYS (or cannot be read: made anew as well) */
static bool
expires_soon(const char *path)
{
	gnutls_datum_t pem = { NULL, 0 };
	gnutls_x509_crt_t crt = NULL;
	time_t exp = (time_t)-1;

	if (gnutls_load_file(path, &pem) < 0)
		return true;
	if (gnutls_x509_crt_init(&crt) >= 0 &&
	    gnutls_x509_crt_import(crt, &pem, GNUTLS_X509_FMT_PEM) >= 0)
		exp = gnutls_x509_crt_get_expiration_time(crt);
	if (crt != NULL)
		gnutls_x509_crt_deinit(crt);
	gnutls_free(pem.data);
	if (exp == (time_t)-1)
		return true;
	if (exp - time(NULL) < GENERATED_RENEW_DAYS * 86400L) {
		sc_log_notice("the generated TLS certificate %s ends within "
			      "%d days: making a new one", path,
			      GENERATED_RENEW_DAYS);
		return true;
	}
	return false;
}

/* ensure_generated - state_dir/tls/{cert,key}.pem: made once (again
 * when it nears its end), then checked; runs as the daemon's user when
 * it drops privileges */
static int
ensure_generated(const struct sc_main_config *cfg, char **error_r)
{
	char cert[4096], key[4096], dir[4096];
	struct stat st;

	if (cert_paths(cfg, cert, key, sizeof(cert)) < 0 ||
	    path_join(dir, sizeof(dir), cfg->state_dir, "tls") < 0) {
		*error_r = strdup("TLS certificate path too long");
		return -1;
	}
	mkdir(cfg->state_dir, 0755);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		if (asprintf(error_r, "%s: %s", dir, strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	/* a real directory of ours, not a link to someone else's */
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid()) {
		if (asprintf(error_r, "%s: not a directory owned by uid %u "
			     "(a symlink?); remove it: satcheld makes it "
			     "anew with a new self-signed certificate", dir,
			     (unsigned)geteuid()) < 0)
			*error_r = NULL;
		return -1;
	}
	if (stat(cert, &st) < 0 || stat(key, &st) < 0 ||
	    expires_soon(cert)) {
		const char *host = cfg->hostname != NULL &&
			cfg->hostname[0] ? cfg->hostname : "localhost";

		if (generate_certificate(host, cert, key, error_r) < 0)
			return -1;
	}
	if (access(key, R_OK) < 0) {
		if (asprintf(error_r, "%s: %s", key, strerror(errno)) < 0)
			*error_r = NULL;
		return -1;
	}
	return cred_usable(cert, key, error_r);
}

int
sc_tls_ensure_certificate(const struct sc_main_config *cfg, char **error_r)
{
	char cert[4096], key[4096];

	*error_r = NULL;
	if (cfg->tls_certificate == NULL || cfg->tls_certificate[0] == '\0')
		return generated_deferred(cfg) ? 0 :
			ensure_generated(cfg, error_r);
	if (cert_paths(cfg, cert, key, sizeof(cert)) < 0) {
		*error_r = strdup("TLS certificate path too long");
		return -1;
	}
	return cred_usable(cert, key, error_r);
}

int
sc_tls_ensure_generated(const struct sc_main_config *cfg, char **error_r)
{
	*error_r = NULL;
	if (cfg->tls_certificate != NULL && cfg->tls_certificate[0] != '\0')
		return 0;
	if (ensure_generated(cfg, error_r) < 0)
		return -1;
	/* loaded now, before instance_start: modules may ask for it there
	 * (sc_tls_server_pem) */
	return sc_net_load_server_cred(cfg, error_r);
}

/* tls_ticket_rotate - a new session ticket key: per process and per
 * reload, so no ticket outlives the certificate it was issued under */
static void
tls_ticket_rotate(void)
{
	gnutls_datum_t k = { NULL, 0 };
	struct sc_tls_ticket *t;

	if (sc_core == NULL)
		return;
	t = &sc_core->tls_ticket;
	explicit_bzero(t->key, sizeof(t->key));
	t->set = false;
	if (gnutls_session_ticket_key_generate(&k) < 0)
		return;
	if (k.size <= sizeof(t->key)) {
		memcpy(t->key, k.data, k.size);
		t->size = k.size;
		t->set = true;
	}
	gnutls_memset(k.data, 0, k.size);
	gnutls_free(k.data);
}

/* load_cred_mem - credentials from what the privileged helper read: the
 * certificate chain in PEM, the key in DER (GnuTLS copies the key into
 * the credentials, and wipes its own copies when it frees them) */
static int
load_cred_mem(const struct sc_privops_tls *t,
	      gnutls_certificate_credentials_t *cred_r, char **error_r)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_x509_privkey_t pk = NULL;
	gnutls_x509_crt_t *crts = NULL;
	unsigned ncrt = 0;
	gnutls_datum_t c = { (unsigned char *)t->cert,
			     (unsigned)t->cert_len };
	gnutls_datum_t k = { (unsigned char *)t->key, (unsigned)t->key_len };
	const char *what = t->cert_path;
	int r;

	if ((r = gnutls_certificate_allocate_credentials(&cred)) < 0 ||
	    (r = gnutls_x509_crt_list_import2(&crts, &ncrt, &c,
					      GNUTLS_X509_FMT_PEM, 0)) < 0)
		goto fail;
	what = t->key_path;
	if ((r = gnutls_x509_privkey_init(&pk)) < 0 ||
	    (r = gnutls_x509_privkey_import2(pk, &k, GNUTLS_X509_FMT_DER,
					     NULL, 0)) < 0)
		goto fail;
	what = t->cert_path;
	if ((r = gnutls_certificate_set_x509_key(cred, crts, ncrt, pk)) < 0)
		goto fail;
	*cred_r = cred;
	cred = NULL;
	r = 0;
	goto out;
fail:
	if (asprintf(error_r, "TLS certificate %s / key %s: %s: %s",
		     t->cert_path, t->key_path, what, gnutls_strerror(r)) < 0)
		*error_r = NULL;
	r = -1;
out:
	if (pk != NULL)
		gnutls_x509_privkey_deinit(pk);
	for (unsigned i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	if (cred != NULL)
		gnutls_certificate_free_credentials(cred);
	return r;
}

/* reload_cred - the certificate and key of cfg, anew: a configured pair
 * through the privileged helper after the drop (the key is root's, as
 * certbot writes it), otherwise from the files */
static int
reload_cred(const struct sc_main_config *cfg, const char *cert,
	    const char *key, gnutls_certificate_credentials_t *cred_r,
	    char **error_r)
{
	struct sc_privops_tls t;
	int r;

	if (cfg->tls_certificate == NULL || cfg->tls_certificate[0] == '\0') {
		if (ensure_generated(cfg, error_r) < 0)
			return -1;
		return load_cred(cert, key, cred_r, error_r);
	}
	if (!sc_privops_available())	/* root, or never was */
		return load_cred(cert, key, cred_r, error_r);
	r = sc_privops_tls(&t, error_r);
	if (r < 0)
		return -1;
	if (r == 0 || strcmp(t.cert_path, cert) != 0 ||
	    strcmp(t.key_path, key) != 0) {
		sc_privops_tls_free(&t);
		*error_r = strdup("tls: changed in the config while it was "
				  "being reloaded: reload again");
		return -1;
	}
	r = load_cred_mem(&t, cred_r, error_r);
	sc_privops_tls_free(&t);
	return r;
}

/* sc_net_tls_reload - a reload: the certificate and key are read anew
 * (certbot renews them in place), and the ticket key replaced. When they
 * cannot be, the old pair stays in use and *error_r says so. */
int
sc_net_tls_reload(const struct sc_main_config *cfg, char **error_r)
{
	char cert[4096], key[4096], *err = NULL;
	gnutls_certificate_credentials_t cred;

	*error_r = NULL;
	tls_ticket_rotate();
	if (cert_paths(cfg, cert, key, sizeof(cert)) < 0) {
		*error_r = strdup("TLS certificate path too long");
		return -1;
	}
	if (reload_cred(cfg, cert, key, &cred, &err) < 0) {
		if (asprintf(error_r, "%s; %s%s", err ? err : "out of memory",
			     net_tls.cert_path != NULL ?
			     "still serving the old certificate " :
			     "TLS is unavailable",
			     net_tls.cert_path != NULL ?
			     net_tls.cert_path : "") < 0)
			*error_r = NULL;
		free(err);
		return -1;
	}
	if (net_tls.server_cred != NULL)
		gnutls_certificate_free_credentials(net_tls.server_cred);
	net_tls.server_cred = cred;
	free(net_tls.cert_path);
	free(net_tls.key_path);
	net_tls.cert_path = strdup(cert);
	net_tls.key_path = strdup(key);
	sc_log_info("TLS certificate %s loaded", cert);
	return 0;
}

gnutls_certificate_credentials_t
sc_net_tls_server_cred(void)
{
	return net_tls.server_cred;
}

gnutls_priority_t
sc_net_tls_server_prio(void)
{
	return net_tls.server_prio;
}

/* sc_net_load_server_cred - loads the server certificate of cfg at the
 * start (once; reloads go through sc_net_tls_reload). */
int
sc_net_load_server_cred(const struct sc_main_config *cfg, char **error_r)
{
	char cert[4096], key[4096];
	gnutls_certificate_credentials_t cred;

	if (net_tls.server_prio == NULL &&
	    gnutls_priority_init(&net_tls.server_prio, SERVER_PRIORITY,
				 NULL) < 0) {
		net_tls.server_prio = NULL;
		*error_r = strdup("TLS priority string rejected by GnuTLS");
		return -1;
	}
	if (cfg == NULL)
		return 0;
	if (cert_paths(cfg, cert, key, sizeof(cert)) < 0) {
		*error_r = strdup("TLS certificate path too long");
		return -1;
	}
	if (net_tls.server_cred != NULL)
		return 0;
	if (load_cred(cert, key, &cred, error_r) < 0)
		return -1;
	if (!(sc_core != NULL && sc_core->tls_ticket.set))
		tls_ticket_rotate();
	net_tls.server_cred = cred;
	free(net_tls.cert_path);
	free(net_tls.key_path);
	net_tls.cert_path = strdup(cert);
	net_tls.key_path = strdup(key);
	return 0;
}

int
sc_net_init(char **error_r)
{
	*error_r = NULL;
	if (sc_net_handles_init() < 0) {
		*error_r = strdup("cannot initialise the loop handles");
		return -1;
	}
	if (sc_core != NULL && sc_core->gen != NULL) {
		const struct sc_main_config *cfg = sc_core->gen->cfg;

		if (sc_tls_ensure_certificate(cfg, error_r) < 0)
			return -1;
		/* deferred: sc_net_start loads it after the drop */
		return sc_net_load_server_cred(generated_deferred(cfg) ?
					       NULL : cfg, error_r);
	}
	return sc_net_load_server_cred(NULL, error_r);
}

void
sc_net_deinit(void)
{
	sc_net_handles_deinit();
	if (net_tls.server_cred != NULL)
		gnutls_certificate_free_credentials(net_tls.server_cred);
	if (net_tls.server_prio != NULL)
		gnutls_priority_deinit(net_tls.server_prio);
	sc_net_tls_client_deinit();
	free(net_tls.cert_path);
	free(net_tls.key_path);
	if (sc_core != NULL) {
		explicit_bzero(&sc_core->tls_ticket,
			       sizeof(sc_core->tls_ticket));
	}
	net_tls.server_cred = NULL;
	net_tls.server_prio = NULL;
	net_tls.cert_path = net_tls.key_path = NULL;
}
