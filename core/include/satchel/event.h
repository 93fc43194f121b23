/* SPDX-License-Identifier: MIT */
/*
 * satchel/event.h - notify-only events.
 *
 * Events report what happened; they cannot change the outcome and their
 * subscribers must not block. Subscribers run synchronously on the loop
 * thread, in plugins.d file order, from within sc_event_emit().
 */
#ifndef SATCHEL_EVENT_H
#define SATCHEL_EVENT_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sc_event_type {
	SC_EVENT_CONNECT = 0,	/* a session began (the connect hook passed) */
	SC_EVENT_LOGIN,		/* successful authentication                 */
	SC_EVENT_AUTH_FAILED,	/* failed authentication                     */
	SC_EVENT_DISCONNECT,	/* a session ended                           */
	SC_EVENT_QUEUED,	/* a message was committed to the queue      */
	SC_EVENT_DELIVERED,	/* one recipient delivered                   */
	SC_EVENT_DEFERRED,	/* one recipient deferred                    */
	SC_EVENT_BOUNCED,	/* one recipient failed permanently          */
	SC_EVENT_RELOAD,	/* the config was reloaded                   */
	/* Since ABI 1.2: what a protocol module accepted, after its whole
	 * hook chain - so an observer sees only what passed, whatever its
	 * place in file order (a RCPT hook placed early would also see
	 * recipients a later module refuses). text: the HELO name; sender:
	 * MAIL FROM; rcpt: the recipient (sender set too). */
	SC_EVENT_HELO,		/* HELO/EHLO accepted                        */
	SC_EVENT_MAIL,		/* MAIL FROM accepted                        */
	SC_EVENT_RCPT,		/* one RCPT TO accepted                      */
	SC_EVENT_COUNT		/* grows with new events: size no array by it
				   in a module                               */
};

struct sc_session;

struct sc_event {
	enum sc_event_type type;
	struct sc_session *session;	/* may be NULL                   */
	const char *protocol;		/* "smtp", "pop3", or NULL       */
	const char *client_ip;		/* textual, or NULL              */
	const char *user;		/* login/auth user, or NULL      */
	const char *sender;		/* MAIL FROM / envelope sender   */
	const char *rcpt;		/* recipient, or NULL            */
	const char *queue_id;
	const char *text;		/* reply or reason, or NULL      */
};

typedef void (*sc_event_fn)(const struct sc_event *ev, void *data);

/* Subscribes fn to events of type (call from instance_start). 0 or -1. */
SC_API int sc_event_subscribe(struct sc_instance *inst,
			      enum sc_event_type type, sc_event_fn fn,
			      void *data);
/* Delivers ev to every subscriber of the current config generation (or of
 * the session's generation when ev->session is set). */
SC_API void sc_event_emit(const struct sc_event *ev);
/* "login", "auth_failed", ... */
SC_API const char *sc_event_name(enum sc_event_type type);

#ifdef __cplusplus
}
#endif

#endif
