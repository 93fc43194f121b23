/* SPDX-License-Identifier: MIT */
/*
 * core/net_tls_pem.c - sc_tls_server_pem: the server certificate chain
 * and key in use now, exported as PEM for a module that runs its own TLS
 * server (the web module's HTTPS through libmicrohttpd). Loop thread.
 */
#include "net_int.h"

#include <stdlib.h>
#include <string.h>

#include <gnutls/x509.h>

/* pem_append - adds d to the malloc'd buffer *buf of *len bytes */
static int
pem_append(char **buf, size_t *len, const gnutls_datum_t *d)
{
	char *n = malloc(*len + d->size + 1);

	if (n == NULL)
		return -1;
	if (*buf != NULL)
		memcpy(n, *buf, *len);
	memcpy(n + *len, d->data, d->size);
	n[*len + d->size] = '\0';
	if (*buf != NULL) {
		explicit_bzero(*buf, *len);
		free(*buf);
	}
	*buf = n;
	*len += d->size;
	return 0;
}

void
sc_tls_pem_free(char *pem, size_t len)
{
	if (pem == NULL)
		return;
	explicit_bzero(pem, len);
	free(pem);
}

int
sc_tls_server_pem(char **cert_pem_r, size_t *cert_len_r, char **key_pem_r,
		  size_t *key_len_r)
{
	gnutls_certificate_credentials_t cred = sc_net_tls_server_cred();
	gnutls_x509_crt_t *crts = NULL;
	gnutls_x509_privkey_t key = NULL;
	unsigned ncrt = 0;
	gnutls_datum_t d = { NULL, 0 };
	char *cert = NULL, *kp = NULL;
	size_t clen = 0, klen = 0;
	int r = -1;

	*cert_pem_r = *key_pem_r = NULL;
	*cert_len_r = *key_len_r = 0;
	if (cred == NULL ||
	    gnutls_certificate_get_x509_crt(cred, 0, &crts, &ncrt) < 0 ||
	    gnutls_certificate_get_x509_key(cred, 0, &key) < 0)
		goto out;
	for (unsigned i = 0; i < ncrt; i++) {
		if (gnutls_x509_crt_export2(crts[i], GNUTLS_X509_FMT_PEM,
					    &d) < 0)
			goto out;
		r = pem_append(&cert, &clen, &d);
		gnutls_free(d.data);
		d.data = NULL;
		if (r < 0)
			goto out;
		r = -1;
	}
	if (ncrt == 0 ||
	    gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &d) < 0)
		goto out;
	r = pem_append(&kp, &klen, &d);
	gnutls_memset(d.data, 0, d.size);
	gnutls_free(d.data);
	if (r < 0)
		goto out;
	*cert_pem_r = cert;
	*cert_len_r = clen;
	*key_pem_r = kp;
	*key_len_r = klen;
	cert = kp = NULL;
	r = 0;
out:
	sc_tls_pem_free(cert, clen);
	sc_tls_pem_free(kp, klen);
	if (key != NULL)
		gnutls_x509_privkey_deinit(key);	/* wipes it */
	for (unsigned i = 0; i < ncrt; i++)
		gnutls_x509_crt_deinit(crts[i]);
	gnutls_free(crts);
	return r;
}
