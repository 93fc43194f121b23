/* SPDX-License-Identifier: MIT */
/*
 * core/queue_index.c - the queue runner's indexes of the messages in
 * memory, so that no commit or finished attempt costs a walk over the
 * whole queue: the list of all messages (doubly linked: O(1) unlist; the
 * admin's views walk it), a hash table by queue id (msg_find), and a
 * min-heap of the messages that may become due, keyed by their earliest
 * due time (the runner takes only due messages off its top and arms its
 * timer from it), and the queue of messages waiting for a local slot.
 * A busy, quarantined or deleted message is in no heap:
 * it is keyed again (sc_runner_msg_sched) whenever its recipients may
 * have changed outside an attempt and when it stops being busy.
 * Loop thread only.
 */
#include "queue_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEAP_NONE	SIZE_MAX

/* ---- the hash table by queue id ---- */

static size_t
id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (; *id; id++) {
		h ^= (unsigned char)*id;
		h *= 1099511628211ull;
	}
	return (size_t)(h ^ (h >> 32));
}

/* hash_grow - doubles the table once it holds more messages than
 * buckets; false when out of memory (the table still works, slower) */
static bool
hash_grow(void)
{
	size_t nb = sc_runner.nbuckets ? sc_runner.nbuckets * 2 : 64;
	struct qmsg **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return false;
	for (size_t i = 0; i < sc_runner.nbuckets; i++) {
		struct qmsg *m, *next;

		for (m = sc_runner.buckets[i]; m != NULL; m = next) {
			size_t k = id_hash(m->id) & (nb - 1);

			next = m->hnext;
			m->hnext = b[k];
			b[k] = m;
		}
	}
	free(sc_runner.buckets);
	sc_runner.buckets = b;
	sc_runner.nbuckets = nb;
	return true;
}

struct qmsg *
sc_runner_msg_find(const char *id)
{
	if (sc_runner.nbuckets == 0)
		return NULL;
	for (struct qmsg *m = sc_runner.buckets[id_hash(id) &
						 (sc_runner.nbuckets - 1)];
	     m != NULL; m = m->hnext)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

/* ---- the heap of due times ---- */

static void
heap_set(size_t i, struct qmsg *m)
{
	sc_runner.heap[i] = m;
	m->heap_i = i;
}

static void
heap_up(size_t i)
{
	struct qmsg *m = sc_runner.heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (sc_runner.heap[p]->due_ms <= m->due_ms)
			break;
		heap_set(i, sc_runner.heap[p]);
		i = p;
	}
	heap_set(i, m);
}

static void
heap_down(size_t i)
{
	struct qmsg *m = sc_runner.heap[i];
	size_t n = sc_runner.heap_n;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && sc_runner.heap[c + 1]->due_ms <
		    sc_runner.heap[c]->due_ms)
			c++;
		if (m->due_ms <= sc_runner.heap[c]->due_ms)
			break;
		heap_set(i, sc_runner.heap[c]);
		i = c;
	}
	heap_set(i, m);
}

void
sc_runner_heap_remove(struct qmsg *m)
{
	size_t i = m->heap_i;
	struct qmsg *last;

	if (i == HEAP_NONE)
		return;
	m->heap_i = HEAP_NONE;
	last = sc_runner.heap[--sc_runner.heap_n];
	if (last == m)
		return;
	heap_set(i, last);
	heap_down(i);
	heap_up(last->heap_i);
}

struct qmsg *
sc_runner_heap_top(void)
{
	return sc_runner.heap_n > 0 ? sc_runner.heap[0] : NULL;
}

/* msg_due - when m is next due: its earliest pending recipient, or, with
 * none left, its finish (finish_ms: a DSN that could not be queued) */
static uint64_t
msg_due(const struct qmsg *m)
{
	uint64_t due = UINT64_MAX;
	bool pending = false;

	for (size_t i = 0; i < m->n; i++) {
		if (m->r[i].state != R_PENDING)
			continue;
		pending = true;
		if (m->r[i].next_ms < due)
			due = m->r[i].next_ms;
	}
	return pending ? due : m->finish_ms;
}

void
sc_runner_msg_sched(struct qmsg *m)
{
	if (m->busy || m->deleted || m->quarantine != NULL) {
		sc_runner_heap_remove(m);
		return;
	}
	m->due_ms = msg_due(m);
	if (m->heap_i != HEAP_NONE) {
		heap_down(m->heap_i);
		heap_up(m->heap_i);
		return;
	}
	if (sc_runner.heap_n == sc_runner.heap_cap) {
		size_t nc = sc_runner.heap_cap ? sc_runner.heap_cap * 2 : 64;
		struct qmsg **h = realloc(sc_runner.heap, nc * sizeof(*h));

		if (h == NULL) {
			/* out of memory: due at the next rescan, when the
			 * runner loads active/ again */
			if (sc_runner.rescan_ms == 0)
				sc_runner.rescan_ms = wall_ms() + 60000;
			return;
		}
		sc_runner.heap = h;
		sc_runner.heap_cap = nc;
	}
	heap_set(sc_runner.heap_n++, m);
	heap_up(m->heap_i);
}

/* ---- the messages waiting for a local delivery slot ---- */

void
sc_runner_waiter_add(struct qmsg *m)
{
	if (m->waiting)
		return;
	m->waiting = true;
	m->wnext = NULL;
	m->wprev = sc_runner.waiters_tail;
	if (m->wprev != NULL)
		m->wprev->wnext = m;
	else
		sc_runner.waiters = m;
	sc_runner.waiters_tail = m;
}

void
sc_runner_waiter_remove(struct qmsg *m)
{
	if (!m->waiting)
		return;
	m->waiting = false;
	if (m->wprev != NULL)
		m->wprev->wnext = m->wnext;
	else
		sc_runner.waiters = m->wnext;
	if (m->wnext != NULL)
		m->wnext->wprev = m->wprev;
	else
		sc_runner.waiters_tail = m->wprev;
	m->wnext = m->wprev = NULL;
}

/* ---- the list of all messages ---- */

void
sc_runner_msg_list(struct qmsg *m)
{
	m->heap_i = HEAP_NONE;
	m->prev = NULL;
	m->next = sc_runner.msgs;
	if (m->next != NULL)
		m->next->prev = m;
	sc_runner.msgs = m;
	if (sc_runner.nmsgs >= sc_runner.nbuckets)
		hash_grow();
	if (sc_runner.nbuckets > 0) {
		size_t k = id_hash(m->id) & (sc_runner.nbuckets - 1);

		m->hnext = sc_runner.buckets[k];
		sc_runner.buckets[k] = m;
	}
	sc_runner.nmsgs++;
	sc_runner_msg_sched(m);
}

void
sc_runner_msg_unlist(struct qmsg *m)
{
	if (m->prev != NULL)
		m->prev->next = m->next;
	else if (sc_runner.msgs == m)
		sc_runner.msgs = m->next;
	else
		return;		/* not listed */
	if (m->next != NULL)
		m->next->prev = m->prev;
	m->next = m->prev = NULL;
	if (sc_runner.nbuckets > 0) {
		for (struct qmsg **pp = &sc_runner.buckets[id_hash(m->id) &
						(sc_runner.nbuckets - 1)];
		     *pp != NULL; pp = &(*pp)->hnext) {
			if (*pp == m) {
				*pp = m->hnext;
				break;
			}
		}
	}
	m->hnext = NULL;
	sc_runner_heap_remove(m);
	sc_runner_waiter_remove(m);
	sc_runner.nmsgs--;
	if (!sc_runner.started)
		sc_runner_index_free();
}

/* sc_runner_index_free - the indexes' memory, once no message is left */
void
sc_runner_index_free(void)
{
	if (sc_runner.msgs != NULL)
		return;		/* messages in an attempt still point here */
	free(sc_runner.buckets);
	sc_runner.buckets = NULL;
	sc_runner.nbuckets = 0;
	free(sc_runner.heap);
	sc_runner.heap = NULL;
	sc_runner.heap_n = sc_runner.heap_cap = 0;
}
