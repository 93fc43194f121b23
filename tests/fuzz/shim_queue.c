/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/shim_queue.c - the fake core's queue (transactions kept in memory, the
 * message checked for canonical line ends at commit), delivery attempts
 * for a driver, scripted DNS answers. See shim.h.
 */

#include "shim_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- the queue ---- */

static bool
value_ok(const char *v)
{
	return v == NULL || strpbrk(v, "\r\n") == NULL;
}

void
tx_free(struct sc_queue_tx *tx)
{
	free(tx->data);
	free(tx->sender);
	free(tx);
}

struct sc_queue_tx *
sc_queue_tx_begin(struct sc_session *s, const struct sc_envelope *env,
		  const char **error_r)
{
	struct sc_queue_tx *tx;

	FUZZ_CHECK(env->sender != NULL, "envelope without a sender");
	/* a session's message needs a sender its MAIL hooks accepted */
	FUZZ_CHECK(s == NULL || s->mail_ok, "a message queued for <%s> "
		   "without the MAIL hook's approval", env->sender);
	FUZZ_CHECK(env->rcpt_count > 0 && env->rcpts != NULL,
		   "envelope without recipients");
	str_ok(env->sender);
	str_ok(env->params);
	str_ok(env->auth_user);
	str_ok(env->client_ip);
	str_ok(env->helo);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		FUZZ_CHECK(env->rcpts[i].address != NULL,
			   "recipient %zu without an address", i);
		str_ok(env->rcpts[i].address);
		str_ok(env->rcpts[i].params);
	}
	/* core/queue.c refuses what would break its line format */
	for (size_t i = 0; i < env->rcpt_count; i++)
		if (strpbrk(env->rcpts[i].address, " \r\n") != NULL ||
		    !value_ok(env->rcpts[i].params)) {
			*error_r = "bad recipient in the envelope";
			return NULL;
		}
	if (!value_ok(env->sender) || !value_ok(env->params) ||
	    !value_ok(env->auth_user) || !value_ok(env->client_ip) ||
	    !value_ok(env->helo)) {
		*error_r = "line break in the envelope";
		return NULL;
	}
	if ((shim_byte() & 15) == 15) {
		*error_r = "no space left on device (fuzz)";
		return NULL;
	}
	tx = xcalloc(1, sizeof(*tx));
	tx->s = s;
	tx->nrcpt = env->rcpt_count;
	tx->sender = xstrdup(env->sender);
	snprintf(tx->id, sizeof(tx->id), "%016x", ++shim.serial);
	return tx;
}

int
sc_queue_tx_write(struct sc_queue_tx *tx, const void *data, size_t len)
{
	FUZZ_CHECK(tx != NULL, "no queue transaction");
	FUZZ_CHECK(tx->done == NULL, "write after commit");
	tx->size += len;
	if (tx->len + len > QUEUE_KEEP) {
		tx->failed = true;	/* kept in memory: a full disk */
		return -1;
	}
	tx->data = realloc(tx->data, tx->len + len + 1);
	if (tx->data == NULL)
		abort();
	memcpy(tx->data + tx->len, data, len);
	tx->len += len;
	return 0;
}

uint64_t
sc_queue_tx_size(const struct sc_queue_tx *tx)
{
	FUZZ_CHECK(tx != NULL, "no queue transaction");
	return tx->size;
}

const char *
sc_queue_tx_id(const struct sc_queue_tx *tx)
{
	FUZZ_CHECK(tx != NULL, "no queue transaction");
	return tx->id;
}

void
sc_queue_tx_abort(struct sc_queue_tx *tx)
{
	FUZZ_CHECK(tx != NULL, "no queue transaction");
	FUZZ_CHECK(tx->done == NULL, "abort after commit");
	tx_free(tx);
}

/* sc_queue_tx_commit - the message must have canonical line ends only
 * (queue.h: "CRLF line ends"): a bare CR or LF stored here is what SMTP
 * smuggling needs a relay to pass on */
void
sc_queue_tx_commit(struct sc_queue_tx *tx, sc_queue_commit_fn done,
		   void *arg)
{
	struct ev *e;

	FUZZ_CHECK(tx != NULL, "commit without a queue transaction");
	FUZZ_CHECK(tx->done == NULL, "commit twice");
	FUZZ_CHECK(done != NULL, "commit without a callback");
	FUZZ_CHECK(tx->finished, "commit before sc_message_finish");
	for (size_t i = 0; i < tx->len; i++) {
		if (tx->data[i] == '\n')
			FUZZ_CHECK(i > 0 && tx->data[i - 1] == '\r',
				   "bare LF at byte %zu of the message", i);
		if (tx->data[i] == '\r')
			FUZZ_CHECK(i + 1 < tx->len && tx->data[i + 1] == '\n',
				   "bare CR at byte %zu of the message", i);
	}
	tx->done = done;
	tx->arg = arg;
	if (tx->s != NULL)
		tx->s->tx = tx;
	e = ev_add(EV_COMMIT);
	e->s = tx->s;
	e->tx = tx;
	e->ok = !tx->failed && (shim_byte() & 15) != 15;
}

int
sc_queue_inject(const struct sc_envelope *env, const void *data, size_t len,
		char *queue_id_r, size_t id_len, const char **error_r)
{
	(void)env;
	(void)data;
	(void)len;
	(void)error_r;
	snprintf(queue_id_r, id_len, "%016x", ++shim.serial);
	return 0;
}

/* ---- deliveries ---- */

int
sc_delivery_register(struct sc_instance *inst,
		     const struct sc_delivery_driver *drv, void *data)
{
	(void)inst;
	FUZZ_CHECK(shim.ndrivers < 4, "too many drivers");
	FUZZ_CHECK(drv->deliver != NULL, "driver without deliver");
	shim.drivers[shim.ndrivers++] = (struct driver_reg){ drv, data };
	return 0;
}

size_t
shim_driver_count(void)
{
	return shim.ndrivers;
}

void
shim_deliver(size_t driver, const char *sender, const char *params,
	     const struct shim_delivery_rcpt *rcpts, size_t n,
	     const char *nexthop, const void *data, size_t len)
{
	struct driver_reg *dr;
	struct sc_delivery *d;

	FUZZ_CHECK(driver < shim.ndrivers, "no delivery driver %zu", driver);
	dr = &shim.drivers[driver];
	d = xcalloc(1, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%016x", ++shim.serial);
	d->sender = xstrdup(sender);
	d->params = xstrdup(params);
	d->nexthop = nexthop ? xstrdup(nexthop) : NULL;
	d->n = n;
	d->rcpt = xcalloc(n, sizeof(char *));
	d->rparams = xcalloc(n, sizeof(char *));
	d->result_set = xcalloc(n, sizeof(bool));
	for (size_t i = 0; i < n; i++) {
		d->rcpt[i] = xstrdup(rcpts[i].address);
		d->rparams[i] = xstrdup(rcpts[i].params);
	}
	d->memfd = memfd_create("fuzz-message", MFD_CLOEXEC);
	if (d->memfd < 0 || (len > 0 && write(d->memfd, data, len) !=
				      (ssize_t)len))
		abort();
	d->len = len;
	d->next = shim.deliveries;
	shim.deliveries = d;
	dr->drv->deliver(d, dr->data);
}

size_t
shim_deliveries_open(void)
{
	size_t n = 0;

	for (struct sc_delivery *d = shim.deliveries; d != NULL; d = d->next)
		n++;
	return n;
}

static const struct sc_delivery *
delivery_live(const struct sc_delivery *d)
{
	for (struct sc_delivery *x = shim.deliveries; x != NULL; x = x->next)
		if (x == d)
			return d;
	FUZZ_CHECK(false, "a finished delivery used");
	return NULL;
}

const char *
sc_delivery_queue_id(const struct sc_delivery *d)
{
	return delivery_live(d)->id;
}

const char *
sc_delivery_sender(const struct sc_delivery *d)
{
	return delivery_live(d)->sender;
}

const char *
sc_delivery_params(const struct sc_delivery *d)
{
	return delivery_live(d)->params;
}

const char *
sc_delivery_client_ip(const struct sc_delivery *d)
{
	(void)delivery_live(d);
	return "192.0.2.1";
}

const char *
sc_delivery_helo(const struct sc_delivery *d)
{
	(void)delivery_live(d);
	return "client.example.net";
}

const char *
sc_delivery_auth_user(const struct sc_delivery *d)
{
	(void)delivery_live(d);
	return NULL;
}

time_t
sc_delivery_arrival(const struct sc_delivery *d)
{
	(void)delivery_live(d);
	return (time_t)1700000000;
}

const char *
sc_delivery_nexthop(const struct sc_delivery *d)
{
	return delivery_live(d)->nexthop;
}

size_t
sc_delivery_rcpt_count(const struct sc_delivery *d)
{
	return delivery_live(d)->n;
}

const char *
sc_delivery_rcpt(const struct sc_delivery *d, size_t i)
{
	FUZZ_CHECK(i < delivery_live(d)->n, "recipient %zu of %zu", i, d->n);
	return d->rcpt[i];
}

const char *
sc_delivery_rcpt_params(const struct sc_delivery *d, size_t i)
{
	FUZZ_CHECK(i < delivery_live(d)->n, "recipient %zu of %zu", i, d->n);
	return d->rparams[i];
}

int
sc_delivery_open(const struct sc_delivery *d, uint64_t *size_r)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d",
		 delivery_live(d)->memfd);
	*size_r = d->len;
	return open(path, O_RDONLY | O_CLOEXEC);
}

unsigned
sc_delivery_attempts(const struct sc_delivery *d)
{
	(void)delivery_live(d);
	return 0;
}

void
sc_delivery_idempotent(struct sc_delivery *d)
{
	(void)delivery_live(d);
}

void
sc_delivery_rcpt_relayed(struct sc_delivery *d, size_t i)
{
	FUZZ_CHECK(i < delivery_live(d)->n, "relayed: recipient %zu of %zu",
		   i, d->n);
}

/* sc_delivery_rcpt_result - the text becomes a queue record line and a
 * DSN header: it must be one line */
void
sc_delivery_rcpt_result(struct sc_delivery *d, size_t i, enum sc_result r,
			int code, const char *esc, const char *fmt, ...)
{
	char text[2048];
	va_list ap;

	FUZZ_CHECK(i < delivery_live(d)->n, "result for recipient %zu of %zu",
		   i, d->n);
	FUZZ_CHECK(r == SC_OK || r == SC_DENY || r == SC_DENYSOFT,
		   "delivery result %s", sc_result_name(r));
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	FUZZ_CHECK(strpbrk(text, "\r\n") == NULL, "line end in the result "
		   "text of %s: %s", d->rcpt[i], text);
	FUZZ_CHECK(esc == NULL || strpbrk(esc, "\r\n ") == NULL,
		   "bad enhanced status %s", esc);
	/* the relay refuses reply codes outside 200-599 from a peer */
	FUZZ_CHECK(code == 0 || (code >= 200 && code <= 599),
		   "reply code %d recorded for %s", code, d->rcpt[i]);
	d->result_set[i] = true;
}

void
sc_delivery_done(struct sc_delivery *d)
{
	(void)delivery_live(d);
	for (struct sc_delivery **pp = &shim.deliveries; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	for (size_t i = 0; i < d->n; i++) {
		free(d->rcpt[i]);
		free(d->rparams[i]);
	}
	free(d->rcpt);
	free(d->rparams);
	free(d->result_set);
	free(d->sender);
	free(d->params);
	free(d->nexthop);
	close(d->memfd);
	free(d);
}

int
sc_mailbox_path(const char *address, char *buf, size_t len)
{
	str_ok(address);
	if (shim.mailbox[0] == '\0')
		return -1;
	snprintf(buf, len, "%s", shim.mailbox);
	return 0;
}

/* ---- DNS ---- */

int
sc_dns_resolve(const char *name, int type, sc_dns_fn fn, void *arg)
{
	struct ev *e;

	FUZZ_CHECK(type == SC_DNS_A || type == SC_DNS_AAAA ||
		   type == SC_DNS_MX || type == SC_DNS_TLSA ||
		   type == SC_DNS_PTR,
		   "DNS type %d", type);
	FUZZ_CHECK(str_ok(name) > 0 && strlen(name) < 300,
		   "DNS name of %zu bytes", strlen(name));
	e = ev_add(EV_DNS);
	e->name = xstrdup(name);
	e->type = type;
	e->dns_fn = fn;
	e->arg = arg;
	return 0;
}

/* The instance-bound form: the handle is the pending event itself, so a
 * cancel takes it off the list and its answer never comes (dns.h). */
int
sc_dns_resolve_inst(struct sc_instance *inst, const char *name, int type,
		    sc_dns_fn fn, void *arg, struct sc_dns_query **query_r)
{
	(void)inst;
	if (sc_dns_resolve(name, type, fn, arg) < 0)
		return -1;
	if (query_r != NULL) {
		struct ev *e = shim.evs;

		while (e->next != NULL)
			e = e->next;
		*query_r = (struct sc_dns_query *)e;
	}
	return 0;
}

void
sc_dns_cancel(struct sc_dns_query *query)
{
	for (struct ev **pp = &shim.evs; *pp != NULL; pp = &(*pp)->next)
		if ((struct sc_dns_query *)*pp == query) {
			struct ev *e = *pp;

			*pp = e->next;
			ev_free(e);
			ev_relink_tail();
			return;
		}
	/* not pending: NULL, or called from the query's own fn (dns.h) */
}

bool
sc_dns_is_local_address(const char *addr)
{
	return strcmp(addr, "127.0.0.1") == 0;
}

/* dns_answer - a script byte picks the status, DNSSEC and the records */
void
dns_answer(struct ev *e)
{
	static const enum sc_dns_status st[8] = { SC_DNS_OK, SC_DNS_OK,
		SC_DNS_OK, SC_DNS_NODATA, SC_DNS_NXDOMAIN, SC_DNS_TEMPFAIL,
		SC_DNS_BOGUS, SC_DNS_OK };
	static const unsigned char tlsa[35] = { 3, 1, 1, 0xab };
	uint8_t d = shim_byte();
	struct sc_dns_rr rr[2];
	struct sc_dns_result res;

	memset(&res, 0, sizeof(res));
	memset(rr, 0, sizeof(rr));
	res.status = st[d & 7];
	res.secure = (d & 8) != 0;
	if (res.status == SC_DNS_TEMPFAIL || res.status == SC_DNS_BOGUS)
		res.error = "lookup failed (fuzz)";
	if (res.status == SC_DNS_OK) {
		res.n = (d & 16) ? 2 : 1;
		for (size_t i = 0; i < res.n; i++) {
			rr[i].type = (uint16_t)e->type;
			rr[i].ttl = 300;
			if (e->type == SC_DNS_MX) {
				rr[i].pref = (uint16_t)(10 * (i + 1));
				/* the second MX may be this host itself */
				snprintf(rr[i].name, sizeof(rr[i].name),
					 "%s.%s", i == 0 ? "mx1" :
					 (d & 32) ? "self" : "mx2", e->name);
			} else if (e->type == SC_DNS_A) {
				snprintf(rr[i].addr, sizeof(rr[i].addr),
					 "%s", strncmp(e->name, "self.", 5) == 0
					 ? "127.0.0.1" : i ? "127.0.0.3" :
					 "127.0.0.2");
			} else if (e->type == SC_DNS_PTR) {
				/* smtp's client name: "self." leads back to
				 * 127.0.0.1 (see A), others elsewhere */
				snprintf(rr[i].name, sizeof(rr[i].name),
					 "%s.fuzz.test", (d & 32) ? "self" :
					 "elsewhere");
			} else if (e->type == SC_DNS_AAAA) {
				snprintf(rr[i].addr, sizeof(rr[i].addr),
					 "::%zu", i + 2);
			} else {
				rr[i].data = tlsa;
				rr[i].len = (d & 64) ? 2 : sizeof(tlsa);
			}
		}
		res.rr = rr;
	}
	e->dns_fn(&res, e->arg);
}

/* ---- PAM (no helper in the fuzz targets) ---- */

int
sc_pam_authenticate(const char *service, const char *user,
		    const char *password, sc_pam_fn done, void *arg)
{
	(void)service;
	(void)user;
	(void)password;
	(void)done;
	(void)arg;
	return -1;
}

