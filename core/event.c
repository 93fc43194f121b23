/* SPDX-License-Identifier: MIT */
/*
 * core/event.c - notify-only events (OpenSMTPD's report stream).
 *
 * Subscribers are registered per generation (module.c); sc_event_emit calls
 * them synchronously on the loop thread, in plugins.d file order.
 */
#include "core.h"

static const char *const event_names[SC_EVENT_COUNT] = {
	[SC_EVENT_CONNECT] = "connect",
	[SC_EVENT_LOGIN] = "login",
	[SC_EVENT_AUTH_FAILED] = "auth_failed",
	[SC_EVENT_DISCONNECT] = "disconnect",
	[SC_EVENT_QUEUED] = "queued",
	[SC_EVENT_DELIVERED] = "delivered",
	[SC_EVENT_DEFERRED] = "deferred",
	[SC_EVENT_BOUNCED] = "bounced",
	[SC_EVENT_RELOAD] = "reload",
	[SC_EVENT_HELO] = "helo",
	[SC_EVENT_MAIL] = "mail",
	[SC_EVENT_RCPT] = "rcpt",
};

const char *
sc_event_name(enum sc_event_type type)
{
	if ((unsigned)type >= SC_EVENT_COUNT)
		return "unknown";
	return event_names[type];
}

/* sc_event_emit - deliver ev to the subscribers of the session's (or the
 * current) generation */
void
sc_event_emit(const struct sc_event *ev)
{
	struct sc_gen *gen = NULL;

	if (ev == NULL || (unsigned)ev->type >= SC_EVENT_COUNT)
		return;
	sc_metrics_event(ev);
	if (ev->session != NULL)
		gen = sc_session_gen(ev->session);
	if (gen == NULL && sc_core != NULL)
		gen = sc_core->gen;
	if (gen == NULL)
		return;
	sc_log_session(SC_LOG_DEBUG, ev->session, "event %s",
		       sc_event_name(ev->type));
	/* A subscriber may trigger a reload that drops the generation;
	 * hold it while we walk its table. */
	sc_gen_ref(gen);
	for (size_t i = 0; i < gen->event_count[ev->type]; i++) {
		const struct sc_event_entry *e = &gen->events[ev->type][i];
		e->fn(ev, e->data);
	}
	sc_gen_unref(&gen);
}
