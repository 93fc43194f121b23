/* SPDX-License-Identifier: MIT */
/*
 * core/net_tls.c - TLS on a connection (GnuTLS): STARTTLS as a server and
 * as a client (PKIX or DANE verification), the handshake, and the records
 * decrypted into the connection's input. TLS works on the connection's own
 * buffers (push/pull functions), so a handshake never blocks the event
 * loop thread, where all of this runs. The server certificate offered is
 * net_tls_cert.c's.
 */
#include "net_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/dane.h>

/* Outbound: still TLS 1.2+, but a wider cipher choice, since any
 * encryption beats plaintext when talking to other MTAs. */
#define CLIENT_PRIORITY "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* The client credentials, priorities and the DANE state: process-wide,
 * loop thread only. */
static struct {
	gnutls_certificate_credentials_t client_cred;
	gnutls_priority_t client_prio;
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
	if (sc_net_tls_server_cred() == NULL ||
	    sc_net_tls_server_prio() == NULL) {
		sc_log_error("TLS requested but no server certificate loaded");
		return -1;
	}
	/* tickets are sent once the handshake is done (tls_handshake_step) */
	if (tls_common_init(c, GNUTLS_SERVER | GNUTLS_NO_AUTO_SEND_TICKET,
			    sc_net_tls_server_cred(),
			    sc_net_tls_server_prio()) < 0)
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

/* sc_net_tls_client_deinit - frees the client side's credentials,
 * priorities and DANE state (sc_net_deinit) */
void
sc_net_tls_client_deinit(void)
{
	if (net_tls.client_cred != NULL)
		gnutls_certificate_free_credentials(net_tls.client_cred);
	if (net_tls.client_prio != NULL)
		gnutls_priority_deinit(net_tls.client_prio);
	if (net_tls.dane != NULL)
		dane_state_deinit(net_tls.dane);
	net_tls.client_cred = NULL;
	net_tls.client_prio = NULL;
	net_tls.dane = NULL;
}
