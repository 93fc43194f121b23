/* SPDX-License-Identifier: MIT */
/*
 * satchel/net.h - listeners, connections and TLS, on the core's event loop.
 *
 * Listeners are opened in instance_new (at start-up before the privilege
 * drop) and start accepting once every instance has started. A reload
 * hands a socket bound to the same address over to the new instance; a
 * new address on a port below 1024 is bound after the drop by the core's
 * privileged helper (when satcheld started as root), which binds only
 * addresses the config names. Connections buffer input and output; TLS
 * (GnuTLS, modern priorities, the certificate of the main config or a
 * generated one) is transparent to the reader/writer.
 */
#ifndef SATCHEL_NET_H
#define SATCHEL_NET_H

#include <satchel/module.h>
#include <satchel/config.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sc_session;
struct sc_conn;

/* Called for every accepted connection, after the core has created the
 * session. The callback owns s (end it with sc_session_close). */
typedef void (*sc_accept_fn)(struct sc_session *s, void *arg);

/* Binds addr (port may be 0 only in tests) for protocol ("smtp", "pop3")
 * and calls fn for each accepted connection once the daemon runs. Call
 * from instance_new. The listener closes with the instance (unless a newer
 * instance took the socket over). 0 or -1 with *error_r. */
SC_API int sc_listen_open(struct sc_instance *inst,
			  const struct sc_sockaddr *addr, const char *protocol,
			  sc_accept_fn fn, void *arg, const char **error_r);

enum sc_conn_event {
	SC_CONN_DATA = 0,	/* new input is buffered: read it          */
	SC_CONN_EOF,		/* the peer closed                          */
	SC_CONN_ERROR,		/* I/O or TLS error; close the connection   */
	SC_CONN_TIMEOUT,	/* no input for the configured timeout      */
	SC_CONN_DRAINED,	/* all queued output was written            */
};

typedef void (*sc_conn_fn)(struct sc_conn *c, enum sc_conn_event ev,
			   void *arg);

/* Sets the event handler; reading starts with sc_conn_read_start(). */
SC_API void sc_conn_set_handler(struct sc_conn *c, sc_conn_fn fn, void *arg);
/* Starts/stops delivering SC_CONN_DATA (stop while a hook is pending, so
 * pipelined commands wait in the buffer). Buffered but unread input is
 * announced again on start. */
SC_API void sc_conn_read_start(struct sc_conn *c);
SC_API void sc_conn_read_stop(struct sc_conn *c);

/* Takes one line from the input buffer. Returns 1 with *line_r and *len_r set
 * (without the CRLF/LF; valid until the next read call), 0 when no full
 * line is buffered yet, -1 when the line is longer than max bytes: the
 * rest of it up to the next LF is discarded and *len_r is set to the
 * bytes dropped so far. A line ending with bare LF sets *bare_lf_r (may be
 * NULL). */
SC_API int sc_conn_getline(struct sc_conn *c, size_t max, const char **line_r,
			   size_t *len_r, bool *bare_lf_r);
/* Copies up to len buffered bytes into buf; returns the count. */
SC_API size_t sc_conn_read(struct sc_conn *c, void *buf, size_t len);
/* Bytes buffered and not yet read. */
SC_API size_t sc_conn_buffered(const struct sc_conn *c);
/* Peeks at the buffered input without consuming it. */
SC_API const char *sc_conn_peek(const struct sc_conn *c, size_t *len_r);
/* Drops len buffered bytes (after a peek). */
SC_API void sc_conn_consume(struct sc_conn *c, size_t len);
/* Overwrites (explicit_bzero) the input already consumed: the core's copy
 * of the last line from sc_conn_getline (the line pointer it returned is
 * invalid afterwards) and every byte of the input buffer outside the part
 * not yet read, which stays. Call once done with a line that may hold a
 * secret (an AUTH response, POP3 PASS), so the secret does not outlive
 * its use in memory; growing the input buffer wipes the old one anyway.
 * Since ABI 1.2. */
SC_API void sc_conn_wipe_input(struct sc_conn *c);

/* Queues output (copied). Output is flushed at the end of the current loop
 * iteration, so replies to pipelined commands go out in one packet. */
SC_API void sc_conn_write(struct sc_conn *c, const void *data, size_t len);
SC_API void sc_conn_printf(struct sc_conn *c, const char *fmt, ...)
	SC_PRINTF(2, 3);
/* Bytes queued and not yet written (for back-pressure). */
SC_API size_t sc_conn_output_pending(const struct sc_conn *c);

/* Idle timeout in ms (0 = none); re-armed by every read. */
SC_API void sc_conn_set_timeout(struct sc_conn *c, uint64_t ms);

typedef void (*sc_conn_tls_fn)(struct sc_conn *c, bool ok, const char *error,
			       void *arg);

/* Starts a server-side TLS handshake (STARTTLS or implicit TLS). Buffered
 * plaintext input is discarded first (pipelined commands after STARTTLS
 * must not be executed: CVE-2011-0411). done runs once. 0 or -1. */
SC_API int sc_conn_starttls(struct sc_conn *c, sc_conn_tls_fn done,
			    void *arg);
/* True when TLS is up. */
SC_API bool sc_conn_tls_active(const struct sc_conn *c);
/* "TLS1.3 with cipher AES-256-GCM" etc., or NULL without TLS. Owned by c. */
SC_API const char *sc_conn_tls_desc(struct sc_conn *c);

/* The server certificate chain and its key that the core serves now
 * (tls.cert/tls.key of satchel.yaml, or the generated self-signed one;
 * after a reload the one read anew), as NUL-terminated PEM copies for a
 * module that runs a TLS server of its own (the web module's HTTPS).
 * Loaded before instance_start, so ask there; a reload's new generation
 * sees the reloaded certificate. 0, or -1 when no certificate is loaded
 * (or out of memory). Free both with sc_tls_pem_free as soon as they are
 * no longer needed. Since ABI 1.3. */
SC_API int sc_tls_server_pem(char **cert_pem_r, size_t *cert_len_r,
			     char **key_pem_r, size_t *key_len_r);
/* Overwrites (explicit_bzero) and frees a PEM from sc_tls_server_pem
 * (NULL is fine). Since ABI 1.3. */
SC_API void sc_tls_pem_free(char *pem, size_t len);

/* ---- outbound connections (relay) ---- */

enum sc_tls_verify {
	SC_TLS_VERIFY_NONE = 0,	/* opportunistic: encrypt, accept any cert */
	SC_TLS_VERIFY_PKIX,	/* the system trust store and the hostname */
	SC_TLS_VERIFY_DANE,	/* the TLSA records given                  */
};

struct sc_tls_client_opts {
	const char *server_name;	/* SNI and PKIX name check          */
	enum sc_tls_verify verify;
	/* DANE: raw TLSA rdata (usage, selector, type, data), n records */
	size_t tlsa_count;
	const unsigned char *const *tlsa_data;
	const size_t *tlsa_len;
};

typedef void (*sc_connect_fn)(struct sc_conn *c, int error, void *arg);

/* Connects to addr (with port) within timeout_ms. done gets the conn, or
 * NULL and a negative errno. The caller owns the conn (sc_conn_close). */
SC_API int sc_conn_connect(const struct sockaddr *addr, uint64_t timeout_ms,
			   sc_connect_fn done, void *arg);
/* Client-side TLS handshake. done runs once; on a verification failure ok is
 * false and error says why. 0 or -1. */
SC_API int sc_conn_starttls_client(struct sc_conn *c,
				   const struct sc_tls_client_opts *opts,
				   sc_conn_tls_fn done, void *arg);
/* Closes an outbound connection after flushing output; no more events,
 * and no callback either: the done of a handshake still in progress
 * (sc_conn_starttls_client) never runs after sc_conn_close, so its owner
 * must not wait for it to free what it passed as arg. */
SC_API void sc_conn_close(struct sc_conn *c);
/* The peer address of the connection, textual. */
SC_API const char *sc_conn_peer_ip(const struct sc_conn *c);

#ifdef __cplusplus
}
#endif

#endif
