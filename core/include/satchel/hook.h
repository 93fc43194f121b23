/* SPDX-License-Identifier: MIT */
/*
 * satchel/hook.h - policy hooks: ordered chains of callbacks that decide.
 *
 * Callbacks run in plugins.d file order, policy callbacks first (see
 * enum sc_hook_phase). Each returns a result; CONT passes to the next
 * callback, anything else ends the chain. A callback may return SC_PENDING
 * and finish later with sc_hook_done() (exactly once). All hook callbacks
 * run on the event loop thread and must not block: blocking work goes
 * through sc_work_submit_inst().
 */
#ifndef SATCHEL_HOOK_H
#define SATCHEL_HOOK_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sc_hook {
	SC_HOOK_CONNECT = 0,	/* arg: NULL. After accept, before TLS.      */
	SC_HOOK_HELO,		/* arg: const char * (the HELO/EHLO name)    */
	SC_HOOK_AUTH,		/* arg: struct sc_auth_request *             */
	SC_HOOK_MAIL,		/* arg: struct sc_mail_request *             */
	SC_HOOK_RCPT,		/* arg: struct sc_rcpt_request *             */
	SC_HOOK_RELAY,		/* arg: struct sc_rcpt_request *; run only for
				   a non-local recipient when the session is
				   neither authenticated nor in relay_networks.
				   All CONT = the contract's 550 5.7.1. Since
				   ABI 1.3 an OK may set a 250 reply text
				   saying who allowed it ("relay allowed by
				   MODULE for IP ..."): smtp adds it to the
				   RCPT's 250 (doctor's relay probe reads it).
				   */
	SC_HOOK_DATA,		/* arg: NULL. The DATA/first BDAT command.   */
	SC_HOOK_DATA_POST,	/* arg: struct sc_data_request *. After the
				   final dot, before the queue commit.       */
	SC_HOOK_ROUTE,		/* arg: struct sc_route_request *. Queue runner,
				   per recipient; session is NULL.           */
	SC_HOOK_ACCOUNT,	/* arg: struct sc_account_request *. Does this
				   mailbox exist? OK = yes, CONT = not mine. */
	SC_HOOK_SENDER,		/* arg: struct sc_sender_request *. May the
				   authenticated user send as this address
				   (smtp's enforce_sender)? OK = yes (e.g. an
				   alias of theirs), CONT = no opinion; all
				   CONT = refused. Since ABI 1.1. */
	SC_HOOK_SUBMIT,		/* arg: NULL. Since ABI 1.3: MAIL on a
				   submission listener from a client that did
				   not authenticate. OK = this session may
				   send (and relay) as if authenticated; a 250
				   reply text says who allowed it, as for
				   RELAY. All CONT = 530 5.7.0 Authentication
				   required. A hook of its own, not RELAY at
				   MAIL: a relay module that decides per
				   recipient must never open a whole
				   session. */
	SC_HOOK_COUNT
};

/* CONT is 0 on purpose: a callback returning 0 out of habit never accepts. */
enum sc_result {
	SC_CONT = 0,		/* no opinion: next callback                  */
	SC_OK,			/* accept; stop the chain                     */
	SC_DENY,		/* 5xx                                         */
	SC_DENYSOFT,		/* 4xx                                         */
	SC_DENYDISCONNECT,	/* 5xx, then close                            */
	SC_DENYSOFTDISCONNECT,	/* 4xx, then close (the 421 limits)           */
	SC_PENDING,		/* async: finish later with sc_hook_done()    */
};

struct sc_session;
/* One invocation of one callback. Valid until the callback returns a
 * final result, or until sc_hook_done() for SC_PENDING. */
struct sc_hook_call;

/* ---- hook arguments ---- */

struct sc_auth_request {
	const char *protocol;	/* "smtp", "pop3"                  */
	const char *mechanism;	/* "PLAIN", "LOGIN", "USER"        */
	const char *user;	/* as the client sent it            */
	const char *password;
	const char *client_ip;
};

struct sc_mail_request {
	const char *address;	/* "" for the null sender <>        */
	const char *params;	/* ESMTP parameters as sent, or ""   */
};

struct sc_rcpt_request {
	const char *address;	/* local@domain, already syntax-checked */
	const char *local_part;
	const char *domain;	/* lower-case                         */
	const char *params;
	const char *mail_from;
	size_t rcpt_count;	/* recipients accepted so far          */
};

struct sc_data_request {
	const char *queue_id_hint;	/* the id the message will have (set;
					   not committed yet)                */
	uint64_t size;			/* bytes received                     */
	size_t header_count;		/* header lines seen                  */
	size_t received_count;		/* Received: headers seen             */
};

/* Delivery kinds a route may choose (see satchel/queue.h). */
#define SC_DELIVERY_LOCAL  "local"
#define SC_DELIVERY_REMOTE "remote"

struct sc_route_request {
	const char *queue_id;
	const char *sender;
	const char *rcpt;
	const char *domain;
	size_t received_count;	/* Received: headers in the message */
};

struct sc_account_request {
	const char *address;	/* local@domain, domain lower-case */
	const char *local_part;
	const char *domain;
};

struct sc_sender_request {
	const char *address;	/* MAIL FROM, local@domain, domain lower-case */
	const char *local_part;
	const char *domain;
	const char *user;	/* the authenticated user                    */
};

typedef enum sc_result (*sc_hook_fn)(struct sc_hook_call *call, void *data);

/*
 * Where a callback sits in its chain. Since ABI 1.2.
 *
 * A chain runs its POLICY callbacks first, in plugins.d file order among
 * themselves, then its NORMAL callbacks in file order. So a limit or
 * lockout (ratelimit) holds whatever its file is named: a backend that
 * decides (auth_file answering OK to the right password, the router
 * accepting a local recipient) never runs before it. Haraka orders hooks
 * by priority, Dovecot runs passdb checks before the deciding passdb; the
 * phase is that, with two levels.
 *
 * A POLICY callback may refuse (DENY, DENYSOFT, ...), pass (CONT) or go
 * PENDING, but it cannot accept: an OK from it (or a ROUTE expansion) is
 * logged as a module bug and counts as CONT, so a policy module can never
 * log a user in, open relaying or accept a recipient on its own.
 * Accepting is for NORMAL callbacks (backends, allow lists such as
 * pop_before_smtp's RELAY hook).
 */
enum sc_hook_phase {
	SC_PHASE_NORMAL = 0,	/* the chain in file order (sc_hook_register) */
	SC_PHASE_POLICY,	/* before every NORMAL callback; never accepts */
};

/* Adds fn to the chain of hook for this instance (call from
 * instance_start), in the NORMAL phase. Chains keep plugins.d file order.
 * 0 or -1. */
SC_API int sc_hook_register(struct sc_instance *inst, enum sc_hook hook,
			    sc_hook_fn fn, void *data);

/* sc_hook_register in the given phase (see enum sc_hook_phase). 0, or -1
 * (also for an unknown phase). Since ABI 1.2. */
SC_API int sc_hook_register_phase(struct sc_instance *inst, enum sc_hook hook,
				  enum sc_hook_phase phase, sc_hook_fn fn,
				  void *data);

/* The session the hook runs for: NULL for ROUTE and for runs outside a
 * session, and NULL once the call is cancelled (sc_hook_cancelled()) -
 * the session may be gone then. */
SC_API struct sc_session *sc_hook_session(struct sc_hook_call *call);
/* The hook argument (see enum sc_hook for its type). The caller keeps it,
 * and the strings it points to, alive until the chain's done callback, so
 * a PENDING call may read it until it calls sc_hook_done(). NULL once the
 * call can no longer change the outcome (session gone, or the hook timed
 * out and the chain ended without it): copy what is needed for later. */
SC_API const void *sc_hook_arg(struct sc_hook_call *call);
/* Which hook this call belongs to. */
SC_API enum sc_hook sc_hook_which(struct sc_hook_call *call);

/* Completes a call that returned SC_PENDING. Exactly once; a second call is
 * logged and ignored. It may also come before the callback returns (an
 * answer at hand after all); the callback then returns SC_PENDING. If the
 * call was cancelled meanwhile (see sc_hook_cancelled), the completion is
 * ignored - the module must still call it so the call object is released
 * (until then the call keeps its config generation, and so the module,
 * loaded). */
SC_API void sc_hook_done(struct sc_hook_call *call, enum sc_result result);

/* True when a pending call can no longer change anything: its session went
 * away, or its chain already ended without it (the instance's
 * `hook_timeout`, default 30 s, passed: the client got 451 4.4.3 and the
 * session may have closed since). sc_hook_session() and sc_hook_arg() are
 * NULL then; the call object itself stays valid until sc_hook_done(). */
SC_API bool sc_hook_cancelled(struct sc_hook_call *call);

/* Sets the reply of this call: code (e.g. 550), enhanced status code
 * ("5.7.1", may be NULL) and text without the code. Only the reply of the
 * call that ends the chain is used. The core checks the class against the
 * verdict (DENY needs 5xx, DENYSOFT 4xx, OK 2xx or 3xx; otherwise it logs
 * a warning and uses the default); 421 always disconnects. Without a
 * reply the core uses a default for the result. */
SC_API void sc_reply_set(struct sc_hook_call *call, int code, const char *esc,
			 const char *fmt, ...) SC_PRINTF(4, 5);

/* ROUTE only: choose the delivery kind (SC_DELIVERY_LOCAL/REMOTE) and an
 * optional next hop ("host:port", NULL = the recipient domain's MX).
 * Counts only when the call then ends the chain with SC_OK. */
SC_API void sc_route_set(struct sc_hook_call *call, const char *kind,
			 const char *nexthop);

/* ROUTE only: replace this recipient by address (alias expansion); call
 * once per target. The queue runner records the targets as new recipients
 * (the original kept as ORCPT) and routes each of them; expansion is
 * limited to 10 levels. Ends the chain as SC_OK. An alias that includes
 * itself ("alice: alice, bob") expands to its other targets and also calls
 * sc_route_set() (or names the recipient itself as a target): the
 * recipient then gets its own copy as well, routed again but never
 * expanded a second time. */
SC_API void sc_route_expand(struct sc_hook_call *call, const char *address);

/* AUTH only: the canonical user name to record for the session (e.g. the
 * full address). Defaults to the user as sent. */
SC_API void sc_auth_set_user(struct sc_hook_call *call, const char *user);

/* ---- running chains (for protocol modules and the core) ---- */

/* The final outcome of a chain. The reply is NULL-text when no callback
 * set one; text points into storage valid during the done callback. */
struct sc_reply {
	int code;		/* 0 = none set */
	char esc[16];
	const char *text;
};

/* Outcome of a chain run; for ROUTE/AUTH the extra fields are filled. */
struct sc_hook_outcome {
	enum sc_result result;	/* never PENDING                         */
	struct sc_reply reply;
	const char *route_kind;	/* ROUTE: chosen kind, or NULL           */
	const char *route_nexthop;
	size_t expand_count;	/* ROUTE: targets from sc_route_expand()  */
	const char *const *expand;
	const char *auth_user;	/* AUTH: canonical user when OK          */
	const char *instance;	/* name of the instance that decided     */
};

typedef void (*sc_hook_done_fn)(struct sc_session *s,
				const struct sc_hook_outcome *out, void *arg);

/* Runs the chain of hook for session s (NULL for ROUTE/ACCOUNT run outside
 * a session) with arg, then calls done exactly once - maybe before
 * sc_hook_run returns, when every callback answers at once. If s is closed
 * while the chain is pending, done is not called. An empty chain or all
 * CONT gives SC_CONT. Uses the hook chains of the config generation s
 * was created in (the newest one for s == NULL). 0, or -1 when out of
 * memory (done not called). arg (and what it points to) must stay valid
 * until done is called: keep it in heap memory freed from done, not on
 * the stack, when the chain may go PENDING.
 *
 * Nested runs: a callback that runs another chain with its session (e.g.
 * ACCOUNT from inside RCPT) gets no done callback at all if the session
 * closes meanwhile - so done must not be the only place that frees memory
 * or completes the outer call. Pass s = NULL for such lookups (as the
 * router does), so done always comes, and check sc_hook_cancelled() on the
 * outer call there; or keep ownership somewhere the session's teardown
 * (instance or session data) reaches. */
SC_API int sc_hook_run(struct sc_session *s, enum sc_hook hook,
		       const void *arg, sc_hook_done_fn done, void *cbarg);

/* "connect", "helo", ... for logs. */
SC_API const char *sc_hook_name(enum sc_hook hook);
/* "CONT", "OK", "DENY", ... for logs. */
SC_API const char *sc_result_name(enum sc_result r);

#ifdef __cplusplus
}
#endif

#endif
