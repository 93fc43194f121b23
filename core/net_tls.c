/* SPDX-License-Identifier: MIT */
/*
 * core/net_tls.c - TLS for satcheld's connections (GnuTLS): STARTTLS as a
 * server and as a client (PKIX or DANE verification), and the server
 * certificate: loaded from the config, or generated once (self-signed)
 * under state_dir. TLS works on the connection's own buffers (push/pull
 * functions), so a handshake never blocks the event loop thread, where
 * all of this runs; certificate generation runs at start-up, before the
 * loop.
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
#include <gnutls/dane.h>

/* TLS 1.2+ with AEAD ciphers and forward secrecy only, in our order of
 * preference (%SERVER_PRECEDENCE), not the client's. */
#define SERVER_PRIORITY "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:" \
	"-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:" \
	"-RSA:-DHE-RSA:%PROFILE_MEDIUM:%SERVER_PRECEDENCE"
/* Outbound: still TLS 1.2+, but a wider cipher choice, since any
 * encryption beats plaintext when talking to other MTAs. */
#define CLIENT_PRIORITY "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
/* A generated self-signed certificate lives a year (browsers and CAs
 * allow no more than about that) and is made anew within a month of its
 * end, at a start or a reload. */
#define GENERATED_DAYS		365
#define GENERATED_RENEW_DAYS	30

/* Credentials, priorities and the DANE state: process-wide, loop thread
 * only. */
static struct {
	gnutls_certificate_credentials_t server_cred;
	char *cert_path, *key_path;
	gnutls_certificate_credentials_t client_cred;
	gnutls_priority_t server_prio, client_prio;
	dane_state_t dane;
} net_tls;

/* ---- TLS ---- */

static ssize_t
tls_push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	struct sc_conn *c = p;

	if (sc_net_buf_append(&c->raw_out, data, len) < 0) {
		gnutls_transport_set_errno(c->tls, ENOMEM);
		return -1;
	}
	sc_net_pend_add(c, PEND_FLUSH);
	return (ssize_t)len;
}

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct sc_conn *c = p;
	size_t n = buf_used(&c->raw_in);

	if (n == 0) {
		if (c->eof)
			return 0;
		gnutls_transport_set_errno(c->tls, EAGAIN);
		return -1;
	}
	if (n > len)
		n = len;
	memcpy(data, c->raw_in.data + c->raw_in.off, n);
	buf_consume(&c->raw_in, n);
	return (ssize_t)n;
}

static int
tls_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct sc_conn *c = p;

	(void)ms;
	return buf_used(&c->raw_in) > 0 || c->eof ? 1 : 0;
}

/* tls_verify_dane - checks the peer's chain against the TLSA records
 * (DANE-EE and DANE-TA; PKIX-* usages also need the PKIX check). */
static int
tls_verify_dane(struct sc_conn *c, const char **why_r)
{
	const gnutls_datum_t *chain;
	unsigned int n = 0, verify = 0;
	dane_query_t q = NULL;
	gnutls_datum_t txt;
	int r;

	chain = gnutls_certificate_get_peers(c->tls, &n);
	if (chain == NULL || n == 0) {
		*why_r = "the server sent no certificate";
		return -1;
	}
	/* only the records given are checked: gnutls-dane's own resolver
	 * is never asked, so it must not be set up either (it reads
	 * /etc/resolv.conf and /etc/hosts and fails where they are missing,
	 * as in containers) */
	if (net_tls.dane == NULL &&
	    dane_state_init(&net_tls.dane, DANE_F_IGNORE_DNSSEC |
			    DANE_F_IGNORE_LOCAL_RESOLVER) < 0) {
		net_tls.dane = NULL;
		*why_r = "DANE initialisation failed";
		return -1;
	}
	r = dane_raw_tlsa(net_tls.dane, &q, c->tls_client->tlsa,
			  c->tls_client->tlsa_len, 1, 0);
	if (r < 0) {
		*why_r = sc_net_err("bad TLSA data: %s", dane_strerror(r));
		return -1;
	}
	r = dane_verify_crt_raw(net_tls.dane, chain, n, GNUTLS_CRT_X509, q,
				0, 0, &verify);
	dane_query_deinit(q);
	if (r < 0) {
		*why_r = sc_net_err("DANE verification failed: %s",
				    dane_strerror(r));
		return -1;
	}
	if (verify != 0) {
		if (dane_verification_status_print(verify, &txt, 0) >= 0) {
			*why_r = sc_net_err("DANE verification failed: %s",
					    (char *)txt.data);
			gnutls_free(txt.data);
		} else {
			*why_r = sc_net_err("DANE verification failed");
		}
		return -1;
	}
	return 0;
}

static void
tls_set_desc(struct sc_conn *c)
{
	char buf[128];

	snprintf(buf, sizeof(buf), "%s with cipher %s",
		 gnutls_protocol_get_name(gnutls_protocol_get_version(c->tls)),
		 gnutls_cipher_get_name(gnutls_cipher_get(c->tls)));
	free(c->tls_desc);
	c->tls_desc = strdup(buf);
}

static void
tls_finish(struct sc_conn *c, bool ok, const char *error)
{
	sc_conn_tls_fn done = c->tls_done;

	c->tls_done = NULL;
	c->tls_state = ok ? TLS_UP : TLS_FAILED;
	if (!ok) {
		c->raw_in.off = c->raw_in.len = 0;
		sc_net_conn_sock_update(c);
	}
	if (done != NULL)
		done(c, ok, error, c->tls_arg);
	else if (!ok)
		sc_net_conn_fail(c);
	if (ok && !c->closing) {
		/* output queued during the handshake, input that came along */
		sc_net_pend_add(c, PEND_FLUSH | PEND_ANNOUNCE);
		sc_net_conn_sock_update(c);
	}
}

/* tls_handshake_step - advances the handshake with what raw_in holds */
static void
tls_handshake_step(struct sc_conn *c)
{
	const char *why = NULL;
	int r;

	for (;;) {
		r = gnutls_handshake(c->tls);
		if (r == GNUTLS_E_SUCCESS)
			break;
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (c->eof) {
				tls_finish(c, false, "connection closed "
					   "during the TLS handshake");
				return;
			}
			sc_net_pend_add(c, PEND_FLUSH);
			return;
		}
		if (!gnutls_error_is_fatal(r))
			continue;
		if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR &&
		    c->tls_client != NULL) {
			unsigned st = gnutls_session_get_verify_cert_status(
				c->tls);
			gnutls_datum_t txt;

			if (gnutls_certificate_verification_status_print(
				    st, GNUTLS_CRT_X509, &txt, 0) >= 0) {
				why = sc_net_err("certificate verification "
						 "failed: %s",
						 (char *)txt.data);
				gnutls_free(txt.data);
			} else {
				why = sc_net_err("certificate verification "
						 "failed");
			}
		} else {
			why = sc_net_err("TLS handshake failed: %s",
					 gnutls_strerror(r));
		}
		sc_net_pend_add(c, PEND_FLUSH);	/* the alert, if any */
		tls_finish(c, false, why);
		return;
	}
	/* TLS 1.3 tickets go out now, in answer to the client's Finished:
	 * that answer carries the ACK a client with Nagle's algorithm (most,
	 * smtplib among them) waits for before its first command - without
	 * it, the server's delayed ACK cost each STARTTLS session ~40 ms */
	if (c->tls_client == NULL && sc_core != NULL &&
	    sc_core->tls_ticket.set &&
	    gnutls_protocol_get_version(c->tls) == GNUTLS_TLS1_3 &&
	    gnutls_session_ticket_send(c->tls, 1, 0) < 0)
		sc_log_debug("TLS: no session ticket sent");
	if (c->tls_client != NULL &&
	    c->tls_client->verify == SC_TLS_VERIFY_DANE &&
	    tls_verify_dane(c, &why) < 0) {
		tls_finish(c, false, why);
		return;
	}
	tls_set_desc(c);
	tls_finish(c, true, NULL);
}

/* sc_net_tls_packet_free - wipes and frees the decrypted record: GnuTLS frees
 * its record buffers unwiped, and this one may hold an AUTH line. */
void
sc_net_tls_packet_free(struct sc_conn *c)
{
	gnutls_packet_t pkt = c->pkt;
	gnutls_datum_t d = { NULL, 0 };

	if (pkt == NULL)
		return;
	gnutls_packet_get(pkt, &d, NULL);
	if (d.data != NULL)
		explicit_bzero(d.data, d.size);
	gnutls_packet_deinit(pkt);
	c->pkt = NULL;
	c->pkt_off = 0;
}

/* tls_packet_copy - moves what fits of the decrypted record into the
 * input buffer; true when all of it did. */
static bool
tls_packet_copy(struct sc_conn *c)
{
	gnutls_datum_t d = { NULL, 0 };
	size_t left, space;

	gnutls_packet_get(c->pkt, &d, NULL);
	left = d.size - c->pkt_off;
	space = sc_net_buf_space(&c->in, left, CONN_INPUT_CAP, true);
	if (space == 0)
		return false;
	if (space > left)
		space = left;
	memcpy(c->in.data + c->in.len, d.data + c->pkt_off, space);
	c->in.len += space;
	c->pkt_off += space;
	if (c->pkt_off < d.size)
		return false;
	sc_net_tls_packet_free(c);
	return true;
}

/* sc_net_tls_pump - drives the handshake, or decrypts buffered records into the
 * plaintext input buffer until it is full. Records come as packets (not
 * gnutls_record_recv's copy) so that each is wiped once copied. */
void
sc_net_tls_pump(struct sc_conn *c)
{
	if (c->tls_state == TLS_HANDSHAKE) {
		tls_handshake_step(c);
		if (c->closed || c->closing || c->tls_state != TLS_UP)
			return;
	}
	if (c->tls_state != TLS_UP)
		return;
	while (buf_used(&c->in) < CONN_INPUT_CAP) {
		ssize_t r;

		if (c->pkt != NULL) {
			if (!tls_packet_copy(c))
				break;
			continue;
		}
		if (buf_used(&c->raw_in) == 0 && !c->eof &&
		    gnutls_record_check_pending(c->tls) == 0)
			break;
		r = gnutls_record_recv_packet(c->tls, &c->pkt);
		if (r > 0 && c->pkt != NULL) {
			c->pkt_off = 0;
			continue;
		}
		if (r > 0) {
			/* data but no packet: not in the API; stop reading */
			c->tls_state = TLS_FAILED;
			sc_net_conn_fail(c);
			return;
		}
		if (r == 0) {
			c->eof = true;	/* close_notify */
			break;
		}
		if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
			if (c->eof && buf_used(&c->raw_in) == 0)
				break;
			if (buf_used(&c->raw_in) == 0)
				break;
			continue;
		}
		if (r == GNUTLS_E_REHANDSHAKE || !gnutls_error_is_fatal(r))
			continue;
		if (r == GNUTLS_E_PREMATURE_TERMINATION ||
		    r == GNUTLS_E_UNEXPECTED_PACKET_LENGTH) {
			c->eof = true;
			break;
		}
		c->tls_state = TLS_FAILED;
		sc_net_conn_fail(c);
		return;
	}
	sc_net_buf_release(&c->raw_in);
}

static int
tls_common_init(struct sc_conn *c, unsigned flags,
		gnutls_certificate_credentials_t cred,
		gnutls_priority_t prio)
{
	if (c->tls != NULL || c->closing)
		return -1;
	if (gnutls_init(&c->tls, flags | GNUTLS_NONBLOCK) < 0) {
		c->tls = NULL;
		return -1;
	}
	if (gnutls_priority_set(c->tls, prio) < 0 ||
	    gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE,
				   cred) < 0) {
		gnutls_deinit(c->tls);
		c->tls = NULL;
		return -1;
	}
	gnutls_transport_set_ptr(c->tls, c);
	gnutls_transport_set_push_function(c->tls, tls_push);
	gnutls_transport_set_pull_function(c->tls, tls_pull);
	gnutls_transport_set_pull_timeout_function(c->tls, tls_pull_timeout);
	gnutls_handshake_set_timeout(c->tls, 0);
	return 0;
}

/* tls_begin - common tail of both handshakes: plaintext output already
 * queued (the "220 ready" reply) leaves unencrypted first, and buffered
 * plaintext input is thrown away (CVE-2011-0411: commands pipelined after
 * STARTTLS must not run as if they came over TLS). */
static void
tls_begin(struct sc_conn *c, sc_conn_tls_fn done, void *arg)
{
	if (buf_used(&c->out) > 0) {
		sc_net_buf_append(&c->raw_out, c->out.data + c->out.off,
				  buf_used(&c->out));
		buf_consume(&c->out, buf_used(&c->out));
		sc_net_buf_release(&c->out);
	}
	c->in.off = c->in.len = 0;
	sc_net_buf_release(&c->in);
	c->discarding = false;
	/* any bytes already read from the socket belong to the handshake */
	c->tls_done = done;
	c->tls_arg = arg;
	c->tls_state = TLS_HANDSHAKE;
	sc_net_pend_add(c, PEND_FLUSH);
	sc_net_conn_sock_update(c);
	/* the client speaks first: start sending the ClientHello now */
	if (c->tls_client != NULL)
		tls_handshake_step(c);
}

int
sc_conn_starttls(struct sc_conn *c, sc_conn_tls_fn done, void *arg)
{
	if (net_tls.server_cred == NULL || net_tls.server_prio == NULL) {
		sc_log_error("TLS requested but no server certificate loaded");
		return -1;
	}
	/* tickets are sent once the handshake is done (tls_handshake_step) */
	if (tls_common_init(c, GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET,
			    net_tls.server_cred, net_tls.server_prio) < 0)
		return -1;
	gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
	if (sc_core != NULL && sc_core->tls_ticket.set) {
		/* resumption: a returning client skips the full handshake;
		 * GnuTLS copies the key and rotates what it derives from it */
		gnutls_datum_t k = { sc_core->tls_ticket.key,
				     sc_core->tls_ticket.size };

		if (gnutls_session_ticket_enable_server(c->tls, &k) < 0)
			sc_log_debug("TLS: session tickets unavailable");
	}
	tls_begin(c, done, arg);
	return 0;
}

static int
client_cred_init(void)
{
	if (net_tls.client_cred != NULL)
		return 0;
	if (gnutls_certificate_allocate_credentials(&net_tls.client_cred) < 0) {
		net_tls.client_cred = NULL;
		return -1;
	}
	/* no trust store is not fatal: PKIX verification will just fail */
	if (gnutls_certificate_set_x509_system_trust(net_tls.client_cred) < 0)
		sc_log_warning("TLS: could not load the system trust store");
	if (net_tls.client_prio == NULL &&
	    gnutls_priority_init(&net_tls.client_prio, CLIENT_PRIORITY,
				 NULL) < 0) {
		net_tls.client_prio = NULL;
		return -1;
	}
	return 0;
}

int
sc_conn_starttls_client(struct sc_conn *c,
			const struct sc_tls_client_opts *opts,
			sc_conn_tls_fn done, void *arg)
{
	struct tls_client_ctx *t;

	if (client_cred_init() < 0)
		return -1;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -1;
	t->verify = opts != NULL ? opts->verify : SC_TLS_VERIFY_NONE;
	if (opts != NULL && opts->server_name != NULL)
		t->server_name = strdup(opts->server_name);
	if (t->verify == SC_TLS_VERIFY_DANE) {
		t->tlsa_count = opts->tlsa_count;
		t->tlsa = calloc(t->tlsa_count + 1, sizeof(*t->tlsa));
		t->tlsa_len = calloc(t->tlsa_count + 1, sizeof(int));
		for (size_t i = 0; t->tlsa != NULL && t->tlsa_len != NULL &&
		     i < t->tlsa_count; i++) {
			t->tlsa[i] = malloc(opts->tlsa_len[i] + 1);
			if (t->tlsa[i] == NULL)
				break;
			memcpy(t->tlsa[i], opts->tlsa_data[i],
			       opts->tlsa_len[i]);
			t->tlsa_len[i] = (int)opts->tlsa_len[i];
		}
		if (t->tlsa == NULL || t->tlsa_len == NULL ||
		    (t->tlsa_count > 0 &&
		     t->tlsa[t->tlsa_count - 1] == NULL) ||
		    t->tlsa_count == 0) {
			c->tls_client = t;	/* freed with c */
			if (t->tlsa == NULL)
				t->tlsa_count = 0;
			return -1;
		}
	}
	c->tls_client = t;
	if (tls_common_init(c, GNUTLS_CLIENT, net_tls.client_cred,
			    net_tls.client_prio) < 0)
		return -1;
	if (t->server_name != NULL && t->server_name[0] != '\0')
		gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS,
				       t->server_name,
				       strlen(t->server_name));
	if (t->verify == SC_TLS_VERIFY_PKIX)
		gnutls_session_set_verify_cert(c->tls, t->server_name, 0);
	tls_begin(c, done, arg);
	return 0;
}

bool
sc_conn_tls_active(const struct sc_conn *c)
{
	return c->tls_state == TLS_UP;
}

const char *
sc_conn_tls_desc(struct sc_conn *c)
{
	return c->tls_state == TLS_UP ? c->tls_desc : NULL;
}

/* ---- certificates ---- */

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
	gnutls_certificate_credentials_t cred;
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
	if (load_cred(cert, key, &cred, error_r) < 0)
		return -1;
	gnutls_certificate_free_credentials(cred);
	return 0;
}

int
sc_tls_ensure_certificate(const struct sc_main_config *cfg, char **error_r)
{
	char cert[4096], key[4096];
	gnutls_certificate_credentials_t cred;

	*error_r = NULL;
	if (cfg->tls_certificate == NULL || cfg->tls_certificate[0] == '\0')
		return generated_deferred(cfg) ? 0 :
			ensure_generated(cfg, error_r);
	if (cert_paths(cfg, cert, key, sizeof(cert)) < 0) {
		*error_r = strdup("TLS certificate path too long");
		return -1;
	}
	if (load_cred(cert, key, &cred, error_r) < 0)
		return -1;
	gnutls_certificate_free_credentials(cred);
	return 0;
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
	if (net_tls.client_cred != NULL)
		gnutls_certificate_free_credentials(net_tls.client_cred);
	if (net_tls.server_prio != NULL)
		gnutls_priority_deinit(net_tls.server_prio);
	if (net_tls.client_prio != NULL)
		gnutls_priority_deinit(net_tls.client_prio);
	if (net_tls.dane != NULL)
		dane_state_deinit(net_tls.dane);
	free(net_tls.cert_path);
	free(net_tls.key_path);
	if (sc_core != NULL) {
		explicit_bzero(&sc_core->tls_ticket,
			       sizeof(sc_core->tls_ticket));
	}
	net_tls.server_cred = NULL;
	net_tls.client_cred = NULL;
	net_tls.server_prio = net_tls.client_prio = NULL;
	net_tls.dane = NULL;
	net_tls.cert_path = net_tls.key_path = NULL;
}
