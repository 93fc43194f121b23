/* SPDX-License-Identifier: MIT */
/*
 * satchel/session.h - one client connection as the core sees it.
 *
 * The core creates a session for every accepted connection and hands it to
 * the listener's accept callback. The protocol module (smtp, pop3) drives
 * it; other modules read its facts through these getters and keep their
 * own per-session state in data slots keyed by instance.
 */
#ifndef SATCHEL_SESSION_H
#define SATCHEL_SESSION_H

#include <sys/socket.h>
#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sc_session;
struct sc_conn;

/* A short unique id ("1a2b3c4d"), also used as a log prefix. */
SC_API const char *sc_session_id(const struct sc_session *s);
/* "smtp" / "pop3": the protocol given to sc_listen_open(). */
SC_API const char *sc_session_protocol(const struct sc_session *s);
/* The client's address, textual ("127.0.0.1", "::1"; v4-mapped v6 shown
 * as v4) and as a sockaddr. */
SC_API const char *sc_session_client_ip(const struct sc_session *s);
SC_API const struct sockaddr *sc_session_client_addr(const struct sc_session *s);
/* The local address and port the client connected to. */
SC_API const struct sockaddr *sc_session_local_addr(const struct sc_session *s);
SC_API unsigned sc_session_local_port(const struct sc_session *s);
/* The connection (see satchel/net.h). */
SC_API struct sc_conn *sc_session_conn(struct sc_session *s);

/* The HELO/EHLO name, or NULL. The setter copies. */
SC_API const char *sc_session_helo(const struct sc_session *s);
SC_API void sc_session_set_helo(struct sc_session *s, const char *name);

/* The authenticated user, or NULL. The setter copies (NULL clears). */
SC_API const char *sc_session_auth_user(const struct sc_session *s);
SC_API void sc_session_set_auth_user(struct sc_session *s, const char *user);

/* Whether this session may relay without authentication (set by the
 * listener from relay_networks). */
SC_API bool sc_session_relay_allowed(const struct sc_session *s);
SC_API void sc_session_set_relay_allowed(struct sc_session *s, bool allowed);

/* True once TLS is active on the connection. */
SC_API bool sc_session_tls(const struct sc_session *s);

/* Per-instance session data. free_fn (may be NULL) runs when the session
 * ends, after the disconnect event's subscribers have run, so the data is
 * still readable in the disconnect event. Setting again frees the old
 * value first. Only the instances of the session's config generation
 * have a slot: for an instance of another one (after a reload) the setter
 * returns -1 and the getter NULL. 0 or -1. */
SC_API int sc_session_set_data(struct sc_session *s,
			       const struct sc_instance *inst, void *data,
			       void (*free_fn)(void *));
SC_API void *sc_session_get_data(const struct sc_session *s,
				 const struct sc_instance *inst);

/* Ends the session: flushes pending output, closes the connection, cancels
 * pending hook calls, emits SC_EVENT_DISCONNECT, frees data slots and the
 * session. s must not be used afterwards. Safe to call from a callback. */
SC_API void sc_session_close(struct sc_session *s);

/* Marks a session idle/busy for the graceful stop: at SIGTERM the core
 * closes idle sessions at once and waits for busy ones (up to the grace
 * period). Sessions start idle. */
SC_API void sc_session_set_busy(struct sc_session *s, bool busy);

#ifdef __cplusplus
}
#endif

#endif
