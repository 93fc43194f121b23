/* SPDX-License-Identifier: MIT */
/*
 * modules/ratelimit/ratelimit_int.h - between ratelimit.c (the config, the
 * in-process tables and the hooks) and ratelimit_store.c (the same limits
 * shared by several hosts through a store, satchel/store.h). Loop thread
 * only. Module-private: never installed.
 */
#ifndef RATELIMIT_INT_H
#define RATELIMIT_INT_H

#include <satchel/satchel.h>

enum rl_failure { RL_FAIL_LOCAL = 0, RL_FAIL_TEMPFAIL };

struct rl_conf {
	uint64_t max_connections;
	uint64_t max_connections_per_ip;
	struct sc_rate connections_per_ip;
	struct sc_rate messages_per_sender;
	struct sc_rate auth_failures_per_ip;
	struct sc_cidr_list exempt;
	uint64_t ipv6_prefix;
	uint64_t max_tracked;
	struct sc_str_list protocols;
	char *store;			/* NULL: in-process tables only */
	char *store_password_file;
	int store_failure;		/* enum rl_failure */
	uint64_t store_timeout;
	char *store_prefix;
};

/* A token bucket: `tokens` refill at count per period_ms, capped at count. */
struct rl_bucket {
	double tokens;
	uint64_t stamp_ms;
};

enum rl_kind {
	RL_HIT_MAX_CONN = 0,
	RL_HIT_IP_CONN,
	RL_HIT_IP_RATE,
	RL_HIT_SENDER,
	RL_HIT_AUTH,
	RL_HIT_COUNT
};

extern const char *const rl_kind_names[RL_HIT_COUNT];

/* One client network (an IPv4 address or an IPv6 /prefix). */
struct rl_ip {
	unsigned char key[16];	/* v4 in the first 4 bytes, family tag */
	unsigned char family;	/* 0 = free slot                       */
	uint32_t concurrent;
	uint64_t last_seen_ms;
	uint64_t locked_until_ms;	/* AUTH lockout                   */
	uint64_t logged_until_ms[RL_HIT_COUNT];
	struct rl_bucket conn_rate;
	struct rl_bucket auth_fail;
};

/* One sender; only a 64-bit hash is kept, to bound memory. */
struct rl_sender {
	uint64_t hash;		/* 0 = free slot */
	uint64_t last_seen_ms;
	uint64_t logged_until_ms;
	struct rl_bucket msgs;
};

struct rl_session;

/*
 * The counters. They outlive the instance because a reload replaces the
 * instance while sessions counted by the old one are still open: the core
 * hands them to the new instance of the same name (sc_instance_state_get),
 * so limits stay exact across reloads (issue 7).
 */
struct rl_state {
	uint64_t max_tracked;		/* entries per table, at most     */
	uint64_t connections;
	uint64_t hits[RL_HIT_COUNT];
	uint64_t global_logged_until_ms;
	size_t ip_cap, ip_used;
	struct rl_ip *ips;
	size_t sender_cap, sender_used;
	struct rl_sender *senders;
	uint64_t hash_seed;
	/* the shared store */
	struct rl_session *leased;	/* sessions holding a store lease  */
	char host_id[24];		/* names this process' leases      */
	uint64_t lease_seq;
	uint64_t store_failures;
	uint64_t store_logged_ms;	/* "store failed" at most once a minute */
};

/* What a session remembers to undo its connection count at close. */
struct rl_session {
	struct rl_state *st;
	struct rl_inst *ri;		/* the instance that counted it     */
	struct rl_session *prev, *next;	/* st->leased, when holder[0]     */
	unsigned char key[16];
	unsigned char family;
	bool counted_ip;
	char holder[48];		/* its lease in the store, or ""    */
	char lease_key[SC_STORE_KEY_MAX + 1];
};

struct rl_inst {
	struct sc_instance *inst;
	const struct rl_conf *conf;
	struct rl_state *st;
	struct sc_store *store;		/* NULL: in-process tables only    */
	struct sc_timer *renew_timer;	/* renews this instance's leases   */
	char prefix[256];		/* of every store key              */
	struct sc_metric *m_hits;	/* satchel_limit_hits_total{limit}  */
	struct sc_metric *m_limit;	/* satchel_connections_limit        */
};

/* ---- ratelimit.c ---- */

bool rl_bucket_take(struct rl_bucket *b, const struct sc_rate *rate,
		    uint64_t now);
bool rl_ip_key(const struct sockaddr *sa, unsigned prefix,
	       unsigned char key[16], unsigned char *family_r);
struct rl_ip *rl_ip_find(struct rl_state *st, const unsigned char key[16],
			 unsigned char family, uint64_t now, bool create);
/* The text of a table key: "192.0.2.1", "2001:db8::/64". */
void rl_key_text(const unsigned char key[16], unsigned char family,
		 unsigned prefix, char *buf, size_t len);
void rl_log_once(uint64_t *logged_until, uint64_t now, uint64_t period_ms,
		 const struct sc_session *s, const char *fmt, ...)
	SC_PRINTF(5, 6);
/* The per-IP 421: counts and logs the hit, sets the reply. */
enum sc_result rl_refuse_ip(struct sc_hook_call *call, struct rl_inst *ri,
			    struct sc_session *s, enum rl_kind hit,
			    const unsigned char key[16], unsigned char family);
/* Counts the session's connection (and its lease, holder may be NULL):
 * undone when the session ends. */
void rl_count_session(struct rl_inst *ri, struct sc_session *s,
		      const unsigned char key[16], unsigned char family,
		      bool per_ip, const char *holder, const char *lease_key);
/* The sender reply (450) for messages_per_sender. */
enum sc_result rl_refuse_sender(struct sc_hook_call *call, struct rl_inst *ri,
				struct sc_session *s, const char *key,
				const char *who);
/* The AUTH lockout reply (454). */
enum sc_result rl_refuse_auth(struct sc_hook_call *call, struct rl_inst *ri,
			      struct sc_session *s);

/* ---- ratelimit_store.c ---- */

/* instance_start: opens the store and the lease renewal. 0 or -1. */
int rl_store_start(struct rl_inst *ri, const char **error_r);
void rl_store_stop(struct rl_inst *ri);
/* The session ends: its lease goes back. */
void rl_store_session_end(struct rl_session *rs);
/* The hooks' shared halves: each decides from the store, or from the
 * local verdict given (RL_HIT_COUNT / false = within the limits) when the
 * store fails and store_failure is local. */
enum sc_result rl_store_connect(struct sc_hook_call *call, struct rl_inst *ri,
				struct sc_session *s,
				const unsigned char key[16],
				unsigned char family, enum rl_kind local_hit);
enum sc_result rl_store_mail(struct sc_hook_call *call, struct rl_inst *ri,
			     struct sc_session *s, const char *key,
			     const char *who, bool local_over);
enum sc_result rl_store_auth(struct sc_hook_call *call, struct rl_inst *ri,
			     struct sc_session *s, bool local_locked);
void rl_store_auth_failed(struct rl_inst *ri, const struct sc_session *s);
/* The status lines of the store. */
size_t rl_store_status(struct rl_inst *ri, char *buf, size_t len);

#endif
