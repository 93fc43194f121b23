/* SPDX-License-Identifier: MIT */
/*
 * core/session.c - one client connection as the core sees it: its facts,
 * per-instance data slots, pending hook runs, and the list of live sessions
 * used by status and the graceful stop. Loop thread only.
 */
#include "core.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

struct session_slot {
	void *data;
	void (*free_fn)(void *);
};

struct sc_session {
	struct sc_session *prev, *next;	/* live-session list             */
	char id[16];
	char *protocol;
	struct sc_conn *conn;
	struct sc_gen *gen;		/* referenced                    */
	struct sockaddr_storage client;
	struct sockaddr_storage local;
	char client_ip[INET6_ADDRSTRLEN];
	char *helo;
	char *auth_user;
	char *mode;			/* sc_session_set_mode()          */
	bool relay_allowed;
	bool busy;
	bool closing;
	size_t slot_count;
	struct session_slot *slots;
	struct sc_hook_run **runs;	/* pending hook runs              */
	size_t run_count, run_alloc;
	struct sc_queue_tx *tx;		/* commit in flight, or NULL      */
	struct sc_message *msg;		/* DATA_POST's message, or NULL   */
};

/* session_addr_text - textual form of sa, v4-mapped v6 shown as v4 */
static void
session_addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
	buf[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, buf, len);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf,
				  len);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, buf, len);
	}
}

/* session_addr_parse - the peer address from its text (no port known) */
static void
session_addr_parse(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (void *)ss;
	struct sockaddr_in6 *in6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (text == NULL)
		return;
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1)
		in->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1)
		in6->sin6_family = AF_INET6;
}

static void
session_make_id(struct sc_session *s)
{
	struct sc_session_list *list = &sc_core->sessions;

	if (list->id_base == 0) {
		uint32_t r = 0;
		if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
			r = (uint32_t)getpid() * 2654435761u;
		list->id_base = r | 1;
	}
	/* A random start plus a counter: unique within the process and
	 * unlikely to repeat across restarts in the same log. */
	snprintf(s->id, sizeof(s->id), "%08x",
		 list->id_base + list->id_next++ * 0x9e3779b1u);
}

/* sc_session_new - the session of an accepted connection, in gen */
struct sc_session *
sc_session_new(struct sc_conn *c, const char *protocol, struct sc_gen *gen)
{
	struct sc_session_list *list = &sc_core->sessions;
	struct sc_session *s;

	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->protocol = strdup(protocol != NULL ? protocol : "");
	if (gen != NULL && gen->inst_count > 0) {
		s->slots = calloc(gen->inst_count, sizeof(*s->slots));
		s->slot_count = gen->inst_count;
	}
	if (s->protocol == NULL || (gen != NULL && gen->inst_count > 0 &&
				    s->slots == NULL)) {
		free(s->protocol);
		free(s->slots);
		free(s);
		return NULL;
	}
	session_make_id(s);
	s->conn = c;
	s->gen = gen;
	if (gen != NULL)
		sc_gen_ref(gen);
	if (c != NULL && sc_conn_addrs(c, &s->client, &s->local) == 0)
		session_addr_text((struct sockaddr *)&s->client, s->client_ip,
				  sizeof(s->client_ip));
	else if (c != NULL) {
		session_addr_parse(sc_conn_peer_ip(c), &s->client);
		session_addr_text((struct sockaddr *)&s->client, s->client_ip,
				  sizeof(s->client_ip));
	}
	s->next = list->head;
	if (list->head != NULL)
		list->head->prev = s;
	list->head = s;
	list->count++;
	return s;
}

struct sc_gen *
sc_session_gen(const struct sc_session *s)
{
	return s != NULL ? s->gen : NULL;
}

size_t
sc_session_count(void)
{
	struct sc_session_list *list = &sc_core->sessions;

	return list->count;
}

const char *
sc_session_id(const struct sc_session *s)
{
	return s != NULL ? s->id : "-";
}

const char *
sc_session_protocol(const struct sc_session *s)
{
	return s->protocol;
}

const char *
sc_session_client_ip(const struct sc_session *s)
{
	return s->client_ip;
}

const struct sockaddr *
sc_session_client_addr(const struct sc_session *s)
{
	return (const struct sockaddr *)&s->client;
}

const struct sockaddr *
sc_session_local_addr(const struct sc_session *s)
{
	return (const struct sockaddr *)&s->local;
}

unsigned
sc_session_local_port(const struct sc_session *s)
{
	if (s->local.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&s->local)->sin_port);
	if (s->local.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)
			      &s->local)->sin6_port);
	return 0;
}

struct sc_conn *
sc_session_conn(struct sc_session *s)
{
	return s->conn;
}

const char *
sc_session_helo(const struct sc_session *s)
{
	return s->helo;
}

/* set_str - replace *dst by a copy of src (NULL clears); keeps the old
 * value when out of memory */
static void
set_str(char **dst, const char *src)
{
	char *copy = NULL;

	if (src != NULL && (copy = strdup(src)) == NULL)
		return;
	free(*dst);
	*dst = copy;
}

void
sc_session_set_helo(struct sc_session *s, const char *name)
{
	set_str(&s->helo, name);
}

const char *
sc_session_auth_user(const struct sc_session *s)
{
	return s->auth_user;
}

void
sc_session_set_auth_user(struct sc_session *s, const char *user)
{
	set_str(&s->auth_user, user);
}

const char *
sc_session_mode(const struct sc_session *s)
{
	return s->mode;
}

void
sc_session_set_mode(struct sc_session *s, const char *mode)
{
	set_str(&s->mode, mode);
}

bool
sc_session_relay_allowed(const struct sc_session *s)
{
	return s->relay_allowed;
}

void
sc_session_set_relay_allowed(struct sc_session *s, bool allowed)
{
	s->relay_allowed = allowed;
}

bool
sc_session_tls(const struct sc_session *s)
{
	return s->conn != NULL && sc_conn_tls_active(s->conn);
}

/* session_slot - the slot of inst in s, or NULL when inst is not of the
 * session's generation */
static struct session_slot *
session_slot(const struct sc_session *s, const struct sc_instance *inst)
{
	if (s == NULL || inst == NULL || inst->gen != s->gen ||
	    inst->slot >= s->slot_count)
		return NULL;
	return &s->slots[inst->slot];
}

int
sc_session_set_data(struct sc_session *s, const struct sc_instance *inst,
		    void *data, void (*free_fn)(void *))
{
	struct session_slot *slot = session_slot(s, inst);

	if (slot == NULL)
		return -1;
	if (slot->free_fn != NULL && slot->data != NULL &&
	    slot->data != data)
		slot->free_fn(slot->data);
	slot->data = data;
	slot->free_fn = free_fn;
	return 0;
}

void *
sc_session_get_data(const struct sc_session *s,
		    const struct sc_instance *inst)
{
	struct session_slot *slot = session_slot(s, inst);

	return slot != NULL ? slot->data : NULL;
}

void
sc_session_set_busy(struct sc_session *s, bool busy)
{
	s->busy = busy;
}

void
sc_session_add_run(struct sc_session *s, struct sc_hook_run *run)
{
	if (s->run_count == s->run_alloc) {
		size_t n = s->run_alloc ? s->run_alloc * 2 : 4;
		struct sc_hook_run **v = realloc(s->runs, n * sizeof(*v));
		if (v == NULL)
			sc_panic("out of memory registering a hook run");
		s->runs = v;
		s->run_alloc = n;
	}
	s->runs[s->run_count++] = run;
}

void
sc_session_del_run(struct sc_session *s, struct sc_hook_run *run)
{
	for (size_t i = 0; i < s->run_count; i++) {
		if (s->runs[i] == run) {
			memmove(&s->runs[i], &s->runs[i + 1],
				(s->run_count - i - 1) * sizeof(*s->runs));
			s->run_count--;
			return;
		}
	}
}

void
sc_session_set_tx(struct sc_session *s, struct sc_queue_tx *tx)
{
	s->tx = tx;
}

void
sc_session_set_message(struct sc_session *s, struct sc_message *m)
{
	s->msg = m;
}

struct sc_message *
sc_session_message(const struct sc_session *s)
{
	return s->msg;
}

/* sc_session_close - the order matters: the connection goes first so no
 * more input arrives, then pending work is cancelled, then subscribers see
 * the disconnect while the data slots are still readable */
void
sc_session_close(struct sc_session *s)
{
	struct sc_session_list *list = &sc_core->sessions;
	struct sc_event ev;

	if (s == NULL || s->closing)
		return;
	s->closing = true;
	sc_log_session(SC_LOG_DEBUG, s, "session closed");
	if (s->conn != NULL) {
		struct sc_conn *c = s->conn;
		s->conn = NULL;
		sc_conn_free(c);	/* flushes pending output first */
	}
	while (s->run_count > 0) {
		struct sc_hook_run *run = s->runs[--s->run_count];
		sc_hook_run_cancel(run);
	}
	if (s->tx != NULL) {
		struct sc_queue_tx *tx = s->tx;
		s->tx = NULL;
		sc_queue_tx_session_gone(tx);
	}
	if (s->msg != NULL) {
		/* the protocol module aborts its tx later, in its teardown */
		sc_message_session_gone(s->msg);
		s->msg = NULL;
	}

	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_DISCONNECT;
	ev.session = s;
	ev.protocol = s->protocol;
	ev.client_ip = s->client_ip[0] != '\0' ? s->client_ip : NULL;
	ev.user = s->auth_user;
	sc_event_emit(&ev);

	for (size_t i = 0; i < s->slot_count; i++) {
		if (s->slots[i].free_fn != NULL && s->slots[i].data != NULL)
			s->slots[i].free_fn(s->slots[i].data);
	}
	free(s->slots);
	/* A subscriber may have started a hook run on the dying session. */
	while (s->run_count > 0) {
		struct sc_hook_run *run = s->runs[--s->run_count];
		sc_hook_run_cancel(run);
	}

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		list->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	list->count--;

	sc_gen_unref(&s->gen);
	free(s->runs);
	free(s->helo);
	free(s->auth_user);
	free(s->mode);
	free(s->protocol);
	free(s);
}

/* session_close_matching - close sessions one at a time, rescanning after
 * each close because a close may run callbacks that close others */
static void
session_close_matching(bool idle_only)
{
	struct sc_session_list *list = &sc_core->sessions;
	bool again = true;

	while (again) {
		again = false;
		for (struct sc_session *s = list->head; s != NULL;
		     s = s->next) {
			if (s->closing || (idle_only && s->busy))
				continue;
			sc_session_close(s);
			again = true;
			break;
		}
	}
}

size_t
sc_session_close_idle(void)
{
	struct sc_session_list *list = &sc_core->sessions;

	session_close_matching(true);
	return list->count;
}

/* sc_session_close_all - the graceful stop closes the busy sessions left
 * after the grace period; teardown closes the rest */
void
sc_session_close_all(void)
{
	session_close_matching(false);
}

/* sc_session_foreach_protocol - fn(protocol, arg) once for every live
 * session (metrics.c counts them by protocol) */
void
sc_session_foreach_protocol(void (*fn)(const char *protocol, void *arg),
			    void *arg)
{
	for (struct sc_session *s = sc_core->sessions.head; s != NULL;
	     s = s->next)
		fn(s->protocol, arg);
}
