/* SPDX-License-Identifier: MIT */
/*
 * satchel/store.h - a key-value store shared by several satcheld hosts
 * (Redis, or Valkey, which speaks the same protocol). Since ABI 1.2.
 *
 * For state that the servers of one site must agree on: limits counted
 * over every host, lockouts, tables of recent logins. A module opens the
 * store its config names, bound to its instance, and starts operations on
 * it; each answers through a callback on the loop thread, at the latest
 * after the timeout given at open (then as SC_STORE_FAIL). Nothing here
 * blocks: connecting, reconnecting with backoff, the password and the
 * database number happen in the core, which keeps one pipelined
 * connection per store (URL and password) for the whole process, shared
 * by every instance that opens it, across reloads.
 *
 * Keys are byte strings of up to SC_STORE_KEY_MAX bytes; give each a
 * prefix of your module's, and let the admin change it (two instances with
 * different limits must not share keys). Values are up to
 * SC_STORE_VALUE_MAX bytes. Every key a module writes should expire (a
 * ttl): the store is shared and outlives any one host.
 *
 * When the store is down or slow, operations fail (SC_STORE_FAIL) within
 * the timeout, or at once while the core knows the store to be down; the
 * module decides what a failure means (satchel's modules offer
 * `store_failure: local|tempfail`).
 */
#ifndef SATCHEL_STORE_H
#define SATCHEL_STORE_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SC_STORE_KEY_MAX   512
#define SC_STORE_VALUE_MAX 4096

/* A store opened by an instance (opaque). */
struct sc_store;
/* One operation in flight (opaque), for sc_store_cancel(). */
struct sc_store_op;

enum sc_store_status {
	SC_STORE_OK = 0,	/* done; see value / data                   */
	SC_STORE_MISSING,	/* get: no such key; lease_renew: not held   */
	SC_STORE_LIMIT,		/* lease_take: the limit was reached; nothing
				   was taken (value: the holders)           */
	SC_STORE_FAIL,		/* store down or too slow (timeout), an error
				   reply, or the daemon stops; see error     */
};

struct sc_store_result {
	enum sc_store_status status;
	int64_t value;		/* incr: the count after it; lease_take: the
				   holders, this one included (LIMIT: the
				   holders); del: keys removed              */
	const char *data;	/* get: the value, NUL-terminated after len  */
	size_t len;
	const char *error;	/* FAIL: why, for logs                       */
};

/* res and what it points to are valid only during the call. */
typedef void (*sc_store_fn)(const struct sc_store_result *res, void *arg);

/*
 * Checks a store URL: "redis://HOST[:PORT][/DB]" (PORT default 6379, DB
 * default 0; HOST a name, an IPv4 address or [IPv6]) or "unix:/PATH" with
 * an optional "?db=N". A password in the URL is refused: it belongs in a
 * file (see sc_store_open). 0, or -1 with *error_r saying what is wrong (a
 * static string). For instance_new, so a bad URL stops a (re)load early.
 */
SC_API int sc_store_url_check(const char *url, const char **error_r);

/*
 * Opens the store at url for inst (call from instance_start or later, on
 * the loop thread). password_file (may be NULL): a file whose first line is
 * the password (Redis AUTH), read now; it must be readable by the daemon's
 * user, and should be by nobody else. timeout_ms bounds every operation of
 * this handle (0: 200 ms). Connecting starts at once in the background;
 * the handle works before it is up (operations wait for the connection
 * within their timeout). NULL with *error_r (static) on a bad URL, an
 * unreadable password file or no memory.
 *
 * The handle belongs to inst: close it in instance_free at the latest.
 */
SC_API struct sc_store *sc_store_open(struct sc_instance *inst,
				      const char *url,
				      const char *password_file,
				      uint64_t timeout_ms,
				      const char **error_r);

/* Closes the handle: its pending operations are cancelled (their callbacks
 * never run). *st is set to NULL. The connection stays while other handles
 * use it. */
SC_API void sc_store_close(struct sc_store **st);

/* Whether the connection is up now (for status output and logs). */
SC_API bool sc_store_up(const struct sc_store *st);

/* The URL, normalised ("redis://127.0.0.1:6379/0", "unix:/run/r.sock"). */
SC_API const char *sc_store_url(const struct sc_store *st);

/*
 * The operations. Each starts one operation and returns 0, or -1 when it
 * cannot be started (bad arguments, a key or value too long, no memory,
 * or the daemon stops): fn will not run then.
 *
 * When fn runs: exactly once, unless the operation is cancelled first;
 * never before the call has returned; always on the loop thread; at the
 * latest the handle's timeout after the call (SC_STORE_FAIL, "timed out").
 * fn may be NULL when the answer does not matter (a fire-and-forget
 * update); the operation is still bounded by the timeout.
 *
 * Lifetime (as sc_work_submit_inst and sc_dns_resolve_inst): an operation
 * belongs to the handle's instance. The core neither frees the instance
 * nor unloads its module until fn has run or the operation was cancelled,
 * so fn may use the instance's data even after a reload retired it; the
 * wait is bounded by the timeout. Operations may be started until
 * instance_free is called, not from instance_free itself.
 *
 * *op_r (when op_r is not NULL) gets a handle for sc_store_cancel(), valid
 * until fn starts running or sc_store_cancel() returns.
 *
 * A timed-out or cancelled operation may still take effect in the store
 * (it may have been sent); each is atomic there.
 */

/* Adds one to the counter key and returns the count. A key that did not
 * exist starts at 1 and expires after ttl_ms (a fixed window: a rate
 * limit of N per period is "incr, refuse when value > N"). */
SC_API int sc_store_incr(struct sc_store *st, const char *key,
			 uint64_t ttl_ms, sc_store_fn fn, void *arg,
			 struct sc_store_op **op_r);

/* Reads key: OK with data/len, or MISSING. */
SC_API int sc_store_get(struct sc_store *st, const char *key,
			sc_store_fn fn, void *arg, struct sc_store_op **op_r);

/* Sets key to value (len bytes) for ttl_ms (0: no expiry). */
SC_API int sc_store_set(struct sc_store *st, const char *key,
			const void *value, size_t len, uint64_t ttl_ms,
			sc_store_fn fn, void *arg, struct sc_store_op **op_r);

/* Removes key (value: 1, or 0 when there was none). */
SC_API int sc_store_del(struct sc_store *st, const char *key,
			sc_store_fn fn, void *arg, struct sc_store_op **op_r);

/*
 * Leases: a count of holders shared by every host, for concurrent things
 * such as open connections, that heals itself when a host dies. Each
 * holder is a name unique over all hosts (e.g. a random host id plus a
 * sequence number) whose lease lasts lease_ms unless renewed; a host that
 * crashes loses its leases when they run out. The store's clock decides,
 * so the hosts' clocks need not agree.
 *
 * lease_take: unless key has limit (> 0; 0 = no limit) live holders
 * already, holder takes a lease: OK with the holders now, or LIMIT with
 * nothing taken. lease_renew: holder's lease runs lease_ms from now (OK),
 * or MISSING when it had none (ran out, or dropped). lease_drop: gives
 * the lease back.
 */
SC_API int sc_store_lease_take(struct sc_store *st, const char *key,
			       const char *holder, uint64_t limit,
			       uint64_t lease_ms, sc_store_fn fn, void *arg,
			       struct sc_store_op **op_r);
SC_API int sc_store_lease_renew(struct sc_store *st, const char *key,
				const char *holder, uint64_t lease_ms,
				sc_store_fn fn, void *arg,
				struct sc_store_op **op_r);
SC_API int sc_store_lease_drop(struct sc_store *st, const char *key,
			       const char *holder, sc_store_fn fn, void *arg,
			       struct sc_store_op **op_r);

/* Cancels an operation: fn never runs for it (from the moment this is
 * called). NULL is ignored; so is a call from inside the operation's own
 * fn. The store may still carry it out. */
SC_API void sc_store_cancel(struct sc_store_op *op);

#ifdef __cplusplus
}
#endif

#endif
