/* SPDX-License-Identifier: MIT */
/*
 * core/net_int.h - what the net part's files share: struct sc_conn and
 * its buffers, and what each file offers the others. Internal to the
 * core; everything here runs on the event loop thread.
 *
 *   net_conn.c    buffered connections and back-pressure: the sc_conn_*
 *                 I/O, line reading, the output queue and the
 *                 end-of-iteration pass, timeouts, wiping, closing,
 *                 outbound connects
 *   net_tls.c     TLS on a connection (GnuTLS): server and client
 *                 STARTTLS, the handshake, DANE, decrypting records
 *   net_tls_cert.c  the server certificate: loading, generation,
 *                 reloading, the ticket key; sc_net_init/deinit
 *   net_tls_pem.c the server certificate as PEM for modules
 *   net_listen.c  listeners: binding (dual-stack), taking a socket over on
 *                 reload, accepting, the hand-off to a new session; a
 *                 connection's socket addresses, wrapping an fd
 */
#ifndef SC_NET_INT_H
#define SC_NET_INT_H

#include "core.h"

#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <gnutls/gnutls.h>

/* Input is read in chunks of this size and buffered up to the cap; a
 * module that does not consume stops the socket reads (back-pressure). */
#define CONN_CHUNK	4096
#define CONN_INPUT_CAP	(64 * 1024)
#define CONN_RAW_CAP	(64 * 1024)	/* TLS ciphertext not yet decrypted */
/* Output back-pressure: with this much output not yet taken by the peer,
 * input is neither read nor announced, so a client that sends commands
 * and never reads the replies cannot grow our memory (it stalls, and the
 * idle timeout ends it). Input resumes below half of it. */
#define CONN_OUTPUT_HIGH (256 * 1024)
#define CONN_LINGER_MS	10000		/* max wait for output at close */

struct net_buf {
	char *data;
	size_t off, len, cap;	/* valid bytes are data[off..len) */
};

enum tls_state { TLS_NONE = 0, TLS_HANDSHAKE, TLS_UP, TLS_FAILED };

/* pending work for the end of the loop iteration */
#define PEND_FLUSH	0x1u
#define PEND_ANNOUNCE	0x2u
#define PEND_CLOSE	0x4u

struct tls_client_ctx {
	enum sc_tls_verify verify;
	char *server_name;
	size_t tlsa_count;
	char **tlsa;		/* NULL-terminated copies of the rdata */
	int *tlsa_len;
};

struct sc_conn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	struct sc_session *session;
	sc_conn_fn fn;
	void *arg;

	struct net_buf in;	/* plaintext input                     */
	struct net_buf out;	/* plaintext output not yet sent       */
	struct net_buf raw_in;	/* TLS: ciphertext from the socket     */
	struct net_buf raw_out;	/* TLS: ciphertext for the socket      */
	char *line;		/* last line from sc_conn_getline      */
	size_t line_cap;
	size_t in_flight;	/* bytes in uv_write requests          */
	size_t discarded;	/* over-long line being discarded      */
	uint64_t timeout_ms;

	gnutls_session_t tls;
	gnutls_packet_t pkt;	/* decrypted record not all copied yet */
	size_t pkt_off;		/* bytes of it copied to in            */
	enum tls_state tls_state;
	sc_conn_tls_fn tls_done;
	void *tls_arg;
	char *tls_desc;
	struct tls_client_ctx *tls_client;

	sc_connect_fn connect_done;
	void *connect_arg;
	uv_connect_t *connect_req;

	struct sc_conn *pend_next;
	unsigned pend;		/* PEND_* flags while in the list      */
	unsigned handles;	/* uv handles still open               */

	bool want_read;		/* the module wants SC_CONN_DATA       */
	bool sock_reading;
	bool discarding;
	bool eof, eof_sent;
	bool error, error_sent;
	bool closing;		/* sc_conn_free/close called           */
	bool closed;		/* uv_close called                     */
	bool timer_closing;	/* linger timer armed for the close    */
	bool throttled;		/* input held back: too much output    */

	struct sockaddr_storage peer, local;
	char peer_ip[INET6_ADDRSTRLEN];
};

/* ---- small helpers of the three files ---- */

static inline uv_loop_t *
net_loop(void)
{
	return sc_core != NULL && sc_core->loop != NULL ? sc_core->loop :
		uv_default_loop();
}

static inline size_t
buf_used(const struct net_buf *b)
{
	return b->len - b->off;
}

static inline void
buf_consume(struct net_buf *b, size_t len)
{
	b->off += len;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

/* ---- net_conn.c ---- */

/* Formats an error into a buffer shared by the net part, for the const
 * error_r of sc_listen_open and the TLS callbacks; valid until the next
 * call. */
SC_INTERNAL const char *sc_net_err(const char *fmt, ...) SC_PRINTF(1, 2);
/* Buffers: room for at least want bytes (up to cap in all; wipe: leave no
 * copy of a grown buffer's old contents), appending, and freeing an empty
 * one. */
SC_INTERNAL size_t sc_net_buf_space(struct net_buf *b, size_t want,
				    size_t cap, bool wipe);
SC_INTERNAL int sc_net_buf_append(struct net_buf *b, const void *data,
				  size_t len);
SC_INTERNAL void sc_net_buf_release(struct net_buf *b);
/* The loop handles of the end-of-iteration pass (created once; closed by
 * sc_net_deinit). 0 or -1. */
SC_INTERNAL int sc_net_handles_init(void);
SC_INTERNAL void sc_net_handles_deinit(void);
/* Queues PEND_* work for c at the end of this loop iteration. */
SC_INTERNAL void sc_net_pend_add(struct sc_conn *c, unsigned what);
/* Reads from the socket while someone needs input and there is room. */
SC_INTERNAL void sc_net_conn_sock_update(struct sc_conn *c);
/* Marks c failed and tells its module (once). */
SC_INTERNAL void sc_net_conn_fail(struct sc_conn *c);
/* A connection with its handles, or NULL. */
SC_INTERNAL struct sc_conn *sc_net_conn_alloc(void);
/* Closes the handles now; c is freed when they are closed. */
SC_INTERNAL void sc_net_conn_really_close(struct sc_conn *c);
/* The graceful close: output flushed within the linger time. */
SC_INTERNAL void sc_net_conn_start_close(struct sc_conn *c);

/* ---- net_listen.c ---- */

/* Fills in the peer and local addresses from the socket. */
SC_INTERNAL void sc_net_conn_addrs(struct sc_conn *c);

/* ---- net_tls.c ---- */

/* Drives the handshake, or decrypts buffered records into c->in. */
SC_INTERNAL void sc_net_tls_pump(struct sc_conn *c);
/* Wipes and frees the decrypted record c holds, if any. */
SC_INTERNAL void sc_net_tls_packet_free(struct sc_conn *c);
/* Frees the client credentials, priorities and DANE state (at
 * sc_net_deinit). */
SC_INTERNAL void sc_net_tls_client_deinit(void);

/* ---- net_tls_cert.c ---- */

/* Loads the server certificate of cfg once (the start); with cfg NULL
 * only the priorities. 0, or -1 with a malloc'd error. */
SC_INTERNAL int sc_net_load_server_cred(const struct sc_main_config *cfg,
					char **error_r);
/* The server credentials in use now (NULL: none loaded yet). */
SC_INTERNAL gnutls_certificate_credentials_t sc_net_tls_server_cred(void);
/* The server's priorities (NULL: not set up yet). */
SC_INTERNAL gnutls_priority_t sc_net_tls_server_prio(void);

#endif
