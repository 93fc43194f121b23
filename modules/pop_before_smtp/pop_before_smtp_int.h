/* SPDX-License-Identifier: MIT */
/*
 * modules/pop_before_smtp/pop_before_smtp_int.h - between
 * pop_before_smtp.c (the table in memory, the hooks, the instance),
 * pop_before_smtp_file.c (the table's file and the feed) and
 * pop_before_smtp_store.c (logins shared through a store, satchel/store.h).
 * Loop thread, but for the file part's pool jobs. Module-private: never
 * installed.
 */
#ifndef POP_BEFORE_SMTP_INT_H
#define POP_BEFORE_SMTP_INT_H

#include <satchel/satchel.h>

#include <sys/types.h>
#include <time.h>

struct pbs_conf {
	uint64_t window;
	char *feed;
	uint64_t max_entries;
	char *store;
	char *store_password_file;
	int store_failure;		/* 0 local, 1 tempfail */
	uint64_t store_timeout;
	char *store_prefix;
	struct sc_str_list listeners;	/* smtp listener modes: mx, submission */
};

/* An IP in binary form: family plus 16 bytes (v4 in the first 4). */
struct pbs_ip {
	int family;
	unsigned char a[16];
};

/* One table entry; kept in a hash chain and in a list ordered by the
 * last update, so the oldest is dropped first when the table is full. */
struct pbs_ent {
	struct pbs_ent *hnext;
	struct pbs_ent *prev, *next;
	struct pbs_ip ip;
	int64_t expires;	/* wall clock, ms since the epoch */
};

/* Entries read from or written to the table file. */
struct pbs_rec {
	struct pbs_ip ip;
	int64_t expires;
};

/*
 * Instance data. Reference counted: pool jobs (table writes, feed reads)
 * hold a reference; the core runs their done before instance_free
 * (sc_work_submit_inst), and a done after it would drop its result.
 */
struct pbs_inst {
	unsigned refs;
	bool dead;			/* instance_free ran */
	bool mode_mx, mode_submission;	/* `listeners` */
	struct sc_instance *inst;
	uint64_t window;
	uint64_t max_entries;
	char *feed;
	char *table_path;		/* NULL until instance_start */
	char *lock_path;
	/* the table */
	size_t nbuckets;
	struct pbs_ent **buckets;
	struct pbs_ent *head, *tail;	/* oldest ... newest */
	size_t count;
	/* saving */
	bool dirty, saving;
	uint64_t last_save_ms;
	struct sc_timer *save_timer;
	struct sc_timer *purge_timer;
	/* polling: the feed, and the table file written by other instances
	 * (the old one during a reload) */
	struct sc_timer *poll_timer;
	bool polling;
	bool feed_known;		/* feed_ino/feed_off are valid */
	dev_t feed_dev;
	ino_t feed_ino;
	uint64_t feed_off;
	struct timespec table_mtime;
	ino_t table_ino;
	uint64_t allowed;
	/* the shared store (NULL: this host's table only) */
	const struct pbs_conf *conf;
	struct sc_store *store;
	char prefix[256];
	uint64_t store_failures;
	uint64_t store_logged_ms;
};

/* ---- pop_before_smtp.c ---- */

/* The wall clock in ms since the epoch (what entries expire by). */
int64_t pbs_now(void);
/* An IP address from text (::ffff:a.b.c.d as v4). 0 or -1. */
int pbs_ip_parse(const char *text, struct pbs_ip *ip);
void pbs_ip_format(const struct pbs_ip *ip, char *buf, size_t len);
/* ip may relay until expires (the later expiry kept; the oldest entry
 * dropped when full): true when the table changed. */
bool pbs_record(struct pbs_inst *pd, const struct pbs_ip *ip,
		int64_t expires);
/* Drops a reference (a pool job's, or the instance's); the last frees. */
void pbs_inst_unref(struct pbs_inst *pd);
/* Counts and logs a relay allowed for ip, and tells the client (and
 * doctor's relay probe) through the hook's reply: login_ms is the
 * login's wall-clock time, or 0 when it was seen by another host. */
void pbs_allowed(struct pbs_inst *pd, struct sc_hook_call *call,
		 const char *ip, const char *rcpt, int64_t login_ms);

/* ---- pop_before_smtp_file.c ---- */

/* Reads the table file at path into *recs_r (malloc'd), skipping expired
 * and malformed lines; a missing file is an empty table. 0 or -1. */
int pbs_table_read(const char *path, int64_t now, struct pbs_rec **recs_r,
		   size_t *n_r);
/* Merges recs with the file, keeps at most max, replaces the file
 * atomically under lock_path; the merged table in *merged_r (malloc'd).
 * 0 or -1 with errno. */
int pbs_table_write(const char *path, const char *lock_path,
		    const struct pbs_rec *recs, size_t n, uint64_t max,
		    struct pbs_rec **merged_r, size_t *nmerged_r);
/* The live entries as records (malloc'd), or NULL. */
struct pbs_rec *pbs_snapshot(struct pbs_inst *pd, size_t *n_r);
/* Takes records read from the file into the table. */
void pbs_merge(struct pbs_inst *pd, const struct pbs_rec *recs, size_t n);
/* The table changed: written on the pool, at most once a second. */
void pbs_save_schedule(struct pbs_inst *pd);
/* The timers' callbacks: a deferred save; polling the feed and the
 * table file. */
void pbs_save_timer(struct sc_timer *t, void *arg);
void pbs_poll_timer(struct sc_timer *t, void *arg);

/* ---- pop_before_smtp_store.c ---- */

/* instance_start: opens `store:` when set. 0, or -1 with *error_r. */
int pbs_store_start(struct pbs_inst *pd, const char **error_r);
/* A login from ip: written to the store for the window. */
void pbs_store_login(struct pbs_inst *pd, const struct pbs_ip *ip);
/* RELAY for an ip this host's table does not know: asks the store
 * (SC_PENDING), or CONT. */
enum sc_result pbs_store_relay(struct pbs_inst *pd, struct sc_hook_call *call,
			       const struct pbs_ip *ip, const char *rcpt);

#endif
