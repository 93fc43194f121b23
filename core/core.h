/* SPDX-License-Identifier: MIT */
/*
 * core.h - internal interfaces between the core's parts. Never installed.
 *
 * One process-wide context (struct sc_core) holds the loop and the current
 * config generation; everything else hangs off it. A generation is one
 * loaded config with its module instances, hook chains and drivers;
 * sessions hold a reference to the generation they started in, so a reload
 * never pulls the floor from under a session in progress.
 */
#ifndef SC_CORE_H
#define SC_CORE_H

#include "config.h"	/* autoconf */
#include <limits.h>
#include <sys/socket.h>
#include <time.h>
#include <uv.h>
#include <yaml.h>
#include <satchel/satchel.h>

#define SC_INTERNAL __attribute__((visibility("hidden")))

/* ---- config.c / config_keys.c (owned together) ---- */

/* A parsed YAML node with its position, for FILE:LINE:COL errors. */
enum sc_ynode_type { SC_YSCALAR, SC_YSEQ, SC_YMAP };
struct sc_ynode {
	enum sc_ynode_type type;
	const char *file;		/* shared, owned by the doc          */
	unsigned line, col;		/* 1-based                           */
	char *scalar;			/* SC_YSCALAR                        */
	bool quoted;			/* scalar was quoted ('..' or "..")  */
	size_t n;			/* SEQ: items; MAP: pairs            */
	struct sc_ynode **items;	/* SEQ items, or MAP values          */
	struct sc_ynode **keys;		/* MAP keys (scalars)                */
};

struct sc_domain_conf {
	char *name;			/* lower-case                        */
	enum sc_routing routing;
};

/* One plugins.d file: one module instance. */
struct sc_inst_conf {
	char *file;			/* path of the plugins.d file        */
	char *module;			/* `module:`                         */
	char *name;			/* `name:` or the file stem          */
	bool enabled;			/* `enabled:` (default true)         */
	uint64_t hook_timeout_ms;	/* `hook_timeout:` (default 30s)     */
	struct sc_ynode *root;		/* the file's map (module keys too)  */
};

struct sc_main_config {
	char *file;			/* absolute path of satchel.yaml     */
	char *hostname;
	char *state_dir;
	char *module_dir;
	char *user;			/* "" = do not drop                  */
	int log_level;			/* enum sc_log_level                 */
	char *tls_certificate;		/* NULL = generate under state_dir   */
	char *tls_key;
	struct sc_str_list dns_servers;	/* "ip:port" or "ip"; empty = system */
	uint64_t shutdown_grace_ms;	/* `shutdown_grace:` default 30s     */
	uint64_t delay_warning_ms;	/* `delay_warning:` default 4h; 0 off */
	size_t domain_count;
	struct sc_domain_conf *domains;
	size_t inst_count;
	struct sc_inst_conf *insts;	/* in file (= load/hook) order       */
	void *yaml_docs;		/* owned node trees, freed with it   */
};

/* Loads satchel.yaml and its includes. On error returns -1 and sets
 * *error_r to a malloc'd "FILE:LINE:COL: message". */
SC_INTERNAL int sc_main_config_load(const char *path,
				    struct sc_main_config **cfg_r,
				    char **error_r);
SC_INTERNAL void sc_main_config_free(struct sc_main_config **cfg);
/* Parses the module keys of ic into out (config_size bytes, zeroed by the
 * caller) using keys; reserved keys (module, name, enabled, hook_timeout)
 * are skipped. Applies defaults. -1 with malloc'd "FILE:LINE:COL: msg". */
SC_INTERNAL int sc_config_parse_keys(const struct sc_inst_conf *ic,
				     const struct sc_config_key *keys,
				     void *out, char **error_r);
/* Frees what sc_config_parse_keys allocated inside out. */
SC_INTERNAL void sc_config_free_keys(const struct sc_config_key *keys,
				     void *out);
/* Makes cfg the one sc_config_hostname() & co. read. */
SC_INTERNAL void sc_config_set_current(const struct sc_main_config *cfg);
/* `delay_warning:` of the current config (SC_DELAY_WARNING_MS without
 * one): how long a message waits before its delay notices; 0 = never. */
#define SC_DELAY_WARNING_MS	(4ull * 3600 * 1000)
SC_INTERNAL uint64_t sc_config_delay_warning_ms(void);

/* YAML helpers shared by config.c (the main file, documents) and
 * config_keys.c (module keys); nothing outside the config part uses them. */

/* One parsed YAML document; a list of them is a config's yaml_docs. */
struct sc_ydoc {
	char *file;			/* owned; nodes point at it          */
	struct sc_ynode *root;		/* NULL for an empty document        */
	struct sc_ydoc *next;
};
/* Parses text (named name in errors) into *doc_r. -1 with a malloc'd
 * "FILE:LINE:COL: message". */
SC_INTERNAL int sc_yaml_parse_string(const char *text, const char *name,
				     struct sc_ydoc **doc_r, char **error_r);
/* Frees a list of documents and their nodes. */
SC_INTERNAL void sc_ydoc_free(struct sc_ydoc *doc);
/* Sets *error_r to a malloc'd "FILE:LINE:COL: message" at node n. */
SC_INTERNAL void sc_config_error(char **error_r, const struct sc_ynode *n,
				 const char *fmt, ...) SC_PRINTF(3, 4);
/* Is n missing, or an unquoted null scalar (~, null, empty)? */
SC_INTERNAL bool sc_ynode_is_null(const struct sc_ynode *n);
/* The value of key in map, or NULL. */
SC_INTERNAL const struct sc_ynode *sc_ynode_get(const struct sc_ynode *map,
						const char *key);
/* dir/path, or path when it is absolute (malloc'd). */
SC_INTERNAL char *sc_config_path_join(const char *dir, const char *path);
/* The directory part of path, "." when none (malloc'd). */
SC_INTERNAL char *sc_config_dirname(const char *path);
/* Parses map against keys into out (config_keys.c). Keys named in skip are
 * left alone; unknown keys are an error unless ignore_unknown. */
SC_INTERNAL int sc_config_parse_map(const struct sc_ynode *map,
				    const char *prefix, const char *base_dir,
				    const struct sc_config_key *keys,
				    const char *const *skip,
				    bool ignore_unknown, void *out,
				    char **error_r);
/* Is name a valid domain name for `domains:`? */
SC_INTERNAL bool sc_config_domain_valid(const char *name);

/* ---- module.c: generations and the loader ---- */

struct sc_hook_entry {
	struct sc_instance *inst;
	sc_hook_fn fn;
	void *data;
	enum sc_hook_phase phase;
};
struct sc_event_entry {
	struct sc_instance *inst;
	sc_event_fn fn;
	void *data;
};
struct sc_driver_entry {
	struct sc_instance *inst;
	const struct sc_delivery_driver *drv;
	void *data;
};
struct sc_status_entry {
	struct sc_instance *inst;
	sc_status_fn fn;
	void *data;
};

struct sc_module_handle {
	char *path;
	void *dl;
	const struct sc_module *mod;
	unsigned instances;		/* instances using it                */
};

struct sc_instance {
	struct sc_gen *gen;
	struct sc_module_handle *mh;
	const struct sc_inst_conf *conf;
	void *config;			/* parsed module config              */
	void *data;			/* from instance_new                 */
	char *state_dir;
	bool started;
	size_t slot;			/* index for session data slots      */
	unsigned jobs;			/* sc_work_submit_inst jobs whose
					 * done has not run yet              */
	struct sc_inst_state *state;	/* held (instance_state.c)           */
};

struct sc_gen {
	unsigned refcount;
	unsigned jobs;			/* its instances' jobs, summed       */
	bool dead;			/* refcount hit 0; teardown waits
					 * for jobs == 0                     */
	bool freeing;			/* in teardown: no new jobs          */
	unsigned serial;		/* 1, 2, ... per reload              */
	struct sc_main_config *cfg;
	size_t inst_count;
	struct sc_instance *insts;
	size_t hook_count[SC_HOOK_COUNT];
	size_t hook_policy[SC_HOOK_COUNT];	/* leading POLICY entries   */
	struct sc_hook_entry *hooks[SC_HOOK_COUNT];
	size_t event_count[SC_EVENT_COUNT];
	struct sc_event_entry *events[SC_EVENT_COUNT];
	size_t driver_count;
	struct sc_driver_entry *drivers;
	size_t status_count;
	struct sc_status_entry *status;
	void *listeners;		/* unused (net_listen.c keeps one list) */
};

/* Loads modules and creates instances for cfg (takes ownership of cfg).
 * With check_only, modules are loaded and keys parsed but instance_new is
 * not called. -1 with malloc'd error. */
SC_INTERNAL int sc_gen_build(struct sc_main_config *cfg, bool check_only,
			     struct sc_gen **gen_r, char **error_r);
/* Calls instance_start for every instance, in order. */
SC_INTERNAL int sc_gen_start(struct sc_gen *gen, char **error_r);
SC_INTERNAL void sc_gen_ref(struct sc_gen *gen);
/* Drops a reference. The last one closes the generation's listeners and
 * tears the instances down in reverse order and unloads modules, at once
 * when none of its instances has a pending job, otherwise when the last
 * one completes (sc_gen_job_end). */
SC_INTERNAL void sc_gen_unref(struct sc_gen **gen);
/* Jobs of an instance: pool work (work.c) and DNS lookups (dns.c). The
 * generation's teardown waits until each one ended. sc_gen_job_allowed
 * says whether inst may start one now (not once its instance_free began;
 * logged, naming what); sc_gen_job_begin counts one that was started (in
 * inst->jobs and gen->jobs). */
SC_INTERNAL bool sc_gen_job_allowed(struct sc_instance *inst,
				    const char *what);
SC_INTERNAL void sc_gen_job_begin(struct sc_instance *inst);
/* A job of inst completed (its done ran, or it was cancelled): uncounts
 * it, and finishes a dead generation's teardown when that was its last
 * job. inst may be freed on return, so no module code may be running
 * for it up the stack. */
SC_INTERNAL void sc_gen_job_end(struct sc_instance *inst);
/* Drops inst's hold on its state; frees it with the last (after
 * instance_free, before the module may be unloaded). instance_state.c. */
SC_INTERNAL void sc_instance_state_release(struct sc_instance *inst);
/* Fills an error for a module file: "module NAME (PATH): built for ABI
 * X.Y, satcheld has ABI A.B; rebuild the module" etc. */
SC_INTERNAL int sc_module_check(const struct sc_module *mod, const char *stem,
				const char *path, char **error_r);

/* ---- session.c ---- */

/* Creates the session for an accepted connection (net_listen.c calls
 * it). */
SC_INTERNAL struct sc_session *sc_session_new(struct sc_conn *c,
					      const char *protocol,
					      struct sc_gen *gen);
SC_INTERNAL struct sc_gen *sc_session_gen(const struct sc_session *s);
/* Sessions alive, for status and the graceful stop. */
SC_INTERNAL size_t sc_session_count(void);
/* Closes every idle session; returns how many remain busy. */
SC_INTERNAL size_t sc_session_close_idle(void);
/* Closes every session at once (the graceful stop's end, teardown). */
SC_INTERNAL void sc_session_close_all(void);
/* Registers/unregisters a pending hook call so session close cancels it. */
struct sc_hook_run;
SC_INTERNAL void sc_session_add_run(struct sc_session *s,
				    struct sc_hook_run *run);
SC_INTERNAL void sc_session_del_run(struct sc_session *s,
				    struct sc_hook_run *run);
SC_INTERNAL void sc_hook_run_cancel(struct sc_hook_run *run);
/* The session's queue tx while its commit is pending (queue.c sets it at
 * sc_queue_tx_commit and clears it with NULL before calling done). If the
 * session closes first, session.c calls sc_queue_tx_session_gone(tx): the
 * commit still completes (the message is kept) but done is not called. */
struct sc_queue_tx;
SC_INTERNAL void sc_session_set_tx(struct sc_session *s,
				   struct sc_queue_tx *tx);
SC_INTERNAL void sc_queue_tx_session_gone(struct sc_queue_tx *tx);
/* The session's message from sc_queue_tx_begin until it closes (commit)
 * or is freed; sc_hook_message gives it only once it is finished. At the
 * session's close session.c calls sc_message_session_gone. */
struct sc_message;
SC_INTERNAL void sc_session_set_message(struct sc_session *s,
					struct sc_message *m);
SC_INTERNAL struct sc_message *sc_session_message(const struct sc_session *s);

/* ---- message.c (with queue.c) ---- */

/* How queue.c stores an edited message (sc_message_plan): the new
 * envelope, the header block with the empty line after it, and the body
 * to copy (body_fd is the plan's own: close it). */
struct sc_message_plan {
	bool rewrite;
	struct sc_envelope env;		/* points into the message       */
	char *block;			/* malloc'd                       */
	size_t block_len;
	int body_fd;
	uint64_t body_off, body_size;
	size_t received;		/* Received: fields in the block  */
	const char *quarantine;		/* or NULL; the message's         */
};
SC_INTERNAL struct sc_message *sc_message_new(struct sc_queue_tx *tx,
					      const char *id,
					      const char *path,
					      const struct sc_envelope *env,
					      struct sc_session *s);
SC_INTERNAL void sc_message_free(struct sc_message *m);
SC_INTERNAL void sc_message_session_gone(struct sc_message *m);
SC_INTERNAL char *sc_message_prefix(struct sc_message *m, size_t *len_r);
SC_INTERNAL void sc_message_capture(struct sc_message *m, const char *p,
				    size_t len);
SC_INTERNAL void sc_message_close(struct sc_message *m);
SC_INTERNAL int sc_message_plan(struct sc_message *m,
				struct sc_message_plan *plan);
/* queue.c for message.c: the tx's message; writes the prefix now (no data
 * came); flushes the written data, giving its offset in the file and its
 * size (0 or -1). */
SC_INTERNAL struct sc_message *sc_queue_tx_msg(struct sc_queue_tx *tx);
/* Digits of a queue file's "size" field (filled in at commit). */
#define SC_QUEUE_SIZE_DIGITS 20
/* The envelope header of a queue file (malloc'd; NULL when out of
 * memory) and where its 20-digit size field is. */
SC_INTERNAL char *sc_queue_header_text(const char *id,
				       const struct sc_envelope *env,
				       time_t arrival, off_t *size_field_r);
/* queue_rewrite.c: an edited message's file written anew (pool). */
SC_INTERNAL int sc_queue_rewrite(const char *tmpdir, const char *activedir,
				 const char *id, time_t arrival,
				 const struct sc_message_plan *p,
				 uint64_t *size_r);
/* ... or in steps, for the journal (queue.c): its length (loop thread);
 * written unsynced as tmp/ID.new (fd, or -1); moved into active/ID;
 * removed after a failure. See queue_rewrite.c. */
SC_INTERNAL size_t sc_queue_rewrite_len(const char *id, time_t arrival,
					const struct sc_message_plan *p);
SC_INTERNAL int sc_queue_rewrite_write(const char *tmpdir, const char *id,
				       time_t arrival,
				       const struct sc_message_plan *p,
				       uint64_t *size_r, size_t *flen_r);
SC_INTERNAL int sc_queue_rewrite_move(const char *tmpdir,
				      const char *activedir, const char *id);
SC_INTERNAL void sc_queue_rewrite_drop(const char *tmpdir, const char *id);
/* queue_scan.c: the queue's directories made and scanned at start-up;
 * the open active/ directory, or -1 with a malloc'd error. */
SC_INTERNAL int sc_queue_scan(const char *state_dir, const char *dir,
			      const char *tmp, const char *active,
			      char **error_r);
/* write(2) until all of it is written (EINTR retried). 0 or -1 + errno. */
SC_INTERNAL int sc_queue_write_all(int fd, const void *data, size_t len);
/* The envelope fits the queue file format: recipients, no line breaks
 * (queue_file.c). 0, or -1 with a static reason. */
SC_INTERNAL int sc_queue_env_check(const struct sc_envelope *env,
				   const char **error_r);
SC_INTERNAL void sc_queue_tx_data_flush_prefix(struct sc_queue_tx *tx);
SC_INTERNAL int sc_queue_tx_data_sync(struct sc_queue_tx *tx,
				      uint64_t *data_off_r, uint64_t *size_r);

/* ---- net_conn.c, net_listen.c, net_tls*.c ---- */

/* The backlog of every listener (net_listen.c, and privops.c for what
 * the privileged helper binds): the system's maximum. The kernel caps
 * listen()'s backlog at net.core.somaxconn (read at each listen(), so a
 * reload follows a raised sysctl); any fixed smaller value drops a burst's
 * SYNs while the loop is busy, and the clients retry only 1 s, 3 s, ...
 * later (issue 15). */
#define SC_LISTEN_BACKLOG	INT_MAX

SC_INTERNAL int sc_net_init(char **error_r);	/* TLS credentials */
SC_INTERNAL void sc_net_deinit(void);
/* Starts accepting on every listener of gen; listeners of older
 * generations whose sockets were taken over stop. */
SC_INTERNAL int sc_net_start(struct sc_gen *gen, char **error_r);
/* Stops accepting (graceful stop). */
SC_INTERNAL void sc_net_stop_accepting(void);
/* Closes the listeners owned by gen (called when gen is torn down). */
SC_INTERNAL void sc_net_gen_free(struct sc_gen *gen);
/* Frees the connection (session.c calls it from sc_session_close). */
SC_INTERNAL void sc_conn_free(struct sc_conn *c);
SC_INTERNAL void sc_conn_set_session(struct sc_conn *c, struct sc_session *s);
/* Checks the configured TLS certificate (used by -t too), or generates
 * (once) and checks the one under state_dir - except as root before a
 * privilege drop: state_dir is the daemon user's, so that one waits for
 * sc_tls_ensure_generated() after the drop. */
SC_INTERNAL int sc_tls_ensure_certificate(const struct sc_main_config *cfg,
					  char **error_r);
/* After the drop: generates (once), checks and loads the certificate
 * under state_dir when cfg configures none (before instance_start, which
 * may export it: sc_tls_server_pem); 0 otherwise. */
SC_INTERNAL int sc_tls_ensure_generated(const struct sc_main_config *cfg,
					char **error_r);
/* A reload: reads the certificate and key anew (configured ones through
 * the privileged helper after the drop; the generated one made anew near
 * its end) and replaces the session ticket key. 0, or -1 with a malloc'd
 * error saying what is served instead. */
SC_INTERNAL int sc_net_tls_reload(const struct sc_main_config *cfg,
				  char **error_r);
/* The connection's socket addresses (kept from accept or connect). */
SC_INTERNAL const struct sockaddr *sc_conn_peer_addr(const struct sc_conn *c);
SC_INTERNAL const struct sockaddr *sc_conn_local_addr(const struct sc_conn *c);
/* Copies both socket addresses (session.c asks once per session). 0/-1. */
SC_INTERNAL int sc_conn_addrs(const struct sc_conn *c,
			      struct sockaddr_storage *peer,
			      struct sockaddr_storage *local);
/* Wraps a connected socket fd in a connection (the unit tests). */
SC_INTERNAL struct sc_conn *sc_conn_new_fd(int fd, char **error_r);
/* The port of gen's index-th listener, in open order; -1 if none. */
SC_INTERNAL int sc_listen_port(struct sc_gen *gen, size_t index);
/* Bytes buffered by a connection, for the back-pressure tests. */
SC_INTERNAL size_t sc_net_conn_memory(const struct sc_conn *c);

/* ---- queue.c / queue_runner.c, queue_dispatch.c, queue_dsn.c ---- */

SC_INTERNAL int sc_queue_init(const char *state_dir, char **error_r);
SC_INTERNAL void sc_queue_deinit(void);
/* Scans the queue and schedules every pending message. */
SC_INTERNAL int sc_queue_runner_start(char **error_r);
SC_INTERNAL void sc_queue_runner_stop(void);
/* Retry every deferred recipient now (satchelctl queue flush). */
SC_INTERNAL void sc_queue_runner_flush(void);
/* Text for status / queue commands into a malloc'd string. */
SC_INTERNAL char *sc_queue_list_text(void);
/* Removes a message from the queue (satchelctl queue delete). 0 or -1. */
SC_INTERNAL int sc_queue_delete(const char *id, char **error_r);
/* Counts for status: messages and recipients pending. */
SC_INTERNAL void sc_queue_counts(size_t *messages_r, size_t *deferred_r);
/* Called per line of a queue file: a header key and value, then one per
 * record after END. Non-zero stops the parse. */
typedef int (*sc_queue_parse_fn)(void *arg, const char *key,
				 const char *value);
/* Reads a queue file: 1 when complete (has END), 0 when it is not a
 * committed queue file (no END, torn header, wrong magic: safe to remove),
 * -1 when it cannot be read now (I/O error: keep it) or fn failed. */
SC_INTERNAL int sc_queue_file_parse(const char *path, sc_queue_parse_fn fn,
				    void *arg);
/* The active/ directory of the queue (NULL before sc_queue_init). */
SC_INTERNAL const char *sc_queue_active_dir(void);
SC_INTERNAL const char *sc_queue_tmp_dir(void);
/* A new empty file in tmp/ under a fresh id (id[17]); any thread. The fd,
 * or -1 with errno. */
SC_INTERNAL int sc_queue_open_tmp(char *id);
/* queue_spare.c: a file made ahead on the pool, or -1 when none is ready
 * (loop thread); closing them at stop. */
SC_INTERNAL int sc_queue_spare_take(char *id);
SC_INTERNAL void sc_queue_spare_close(void);
/* Stores a whole message at once (DSNs, sc_queue_inject); id_r gets its
 * 16-character id. 0, or -1 with a malloc'd error. */
SC_INTERNAL int sc_queue_store(const struct sc_envelope *env,
			       const void *data, size_t len, char *id_r,
			       char **error_r);
/* Appends state records to a queue file, with sync made durable;
 * blocking, so on the pool. 0, or -1 with errno. */
SC_INTERNAL int sc_queue_append(const char *path, const char *records,
				 bool sync);
/* Removes active/ID (path) from the queue: every unlink of a message's
 * file goes through here, so that the journal records it. unlink's
 * result. Any thread. */
SC_INTERNAL int sc_queue_remove(const char *path);
/* Directory syncs so far (group-commit tests). */
SC_INTERNAL unsigned sc_queue_batch_count(void);
/* Sets the queue paths only, without scanning or creating anything. */
SC_INTERNAL void sc_queue_set_dirs(const char *queue_dir);
/* Loads a committed message from active/ and schedules it (queue.c calls
 * it after each commit). */
SC_INTERNAL void sc_queue_runner_add(const char *id);
/* What one DSN (RFC 3464) reports. */
struct sc_dsn_spec {
	const char *id;			/* the original's queue id           */
	const char *to;			/* who gets the DSN (To:)            */
	const char *mail_params;	/* the original's MAIL parameters    */
	time_t arrival;
	const char *const *rcpts;
	const char *const *rcpt_params;	/* NULL, or ORCPT= & co. per rcpt    */
	const char *const *replies;	/* the last reply of each            */
	/* "failed", "delayed", "delivered" or "relayed" (RFC 3464 2.3.3) */
	const char *const *actions;
	size_t n;
	bool postmaster;		/* a double bounce: for postmaster@  */
	const char *headers;		/* what is attached (NULL: nothing)  */
	size_t headers_len;
	bool full;			/* headers is the whole message      */
};
/* Builds the multipart/report DSN of s, malloc'd; pure, so it runs on a
 * pool thread. Its text says truly what is attached. */
SC_INTERNAL char *sc_queue_dsn_build(const struct sc_dsn_spec *s);
/* sc_queue_dsn_build for recipients that all failed (or, with delay, are
 * all delayed): sender gets it. replies[i] is the last reply for rcpts[i]. */
SC_INTERNAL char *sc_queue_dsn_text(const char *id, const char *sender,
				    const char *mail_params, time_t arrival,
				    const char *const *rcpts,
				    const char *const *rcpt_params,
				    const char *const *replies, size_t n,
				    bool delay, const char *headers,
				    size_t headers_len, bool full);

/* ---- route_warn.c ---- */

/* What doctor, check and reload say of a remote or backup domain whose
 * best MX is this machine (routing is SC_ROUTING_REMOTE or _BACKUP). */
SC_INTERNAL const char *sc_routing_trap_text(const char *domain,
					     enum sc_routing routing,
					     char *buf, size_t len);
/* After start and each reload: looks up the MX of every remote and backup
 * domain of cfg (copied; core/dns.c, bounded) and logs a warning in those
 * words for each whose best MX is this machine. Loop thread. */
SC_INTERNAL void sc_route_warn_start(const struct sc_main_config *cfg);

/* ---- dns.c ---- */

SC_INTERNAL int sc_dns_init(const struct sc_main_config *cfg, char **error_r);
/* Teardown, first step: fails every pending lookup (TEMPFAIL) and ends
 * the jobs of cancelled ones, so generations waiting for them can be torn
 * down while the rest of the core is still up; new lookups are refused
 * from now on, until sc_dns_deinit. sc_work_drain calls it. */
SC_INTERNAL void sc_dns_stop(void);
/* sc_dns_stop, then frees the resolver. */
SC_INTERNAL void sc_dns_deinit(void);

/* ---- store.c ---- */

/* The daemon stops: answers every pending store operation now (FAIL) and
 * closes the connections; sc_work_drain calls it. */
SC_INTERNAL void sc_store_stop(void);

/* ---- privsep.c ---- */

/* Forks the PAM helper (before the privilege drop). */
SC_INTERNAL int sc_privsep_start(char **error_r);
SC_INTERNAL void sc_privsep_stop(void);

/* ---- privchild.c: what the two privileged helpers share ---- */

/* In a helper just forked from the daemon (parent): default signals,
 * gone with the daemon, sock at fd 3 and every other fd but stderr
 * closed, named name (ps(1), /proc/PID/comm) unless NULL. Returns the
 * socket; exits when the daemon is gone already. */
SC_INTERNAL int sc_helper_child_init(int sock, pid_t parent,
				     const char *name);
/* Reads exactly len bytes: 1, 0 at EOF, -1 on an error. */
SC_INTERNAL int sc_helper_read_full(int fd, void *buf, size_t len);
/* Waits a bounded time (0.5 s) for the helper *pid to exit; *pid = 0. */
SC_INTERNAL void sc_helper_reap(pid_t *pid);

/* ---- privops.c: the privileged reload helper ---- */

/* Forks the helper (as root, before the drop); it reads config_path
 * itself for every request. 0, or -1 with a malloc'd error. */
SC_INTERNAL int sc_privops_start(const char *config_path, char **error_r);
SC_INTERNAL void sc_privops_stop(void);
/* Is the helper there to ask? */
SC_INTERNAL bool sc_privops_available(void);
/* The configured certificate and key as the helper read them (as root). */
struct sc_privops_tls {
	char *cert_path, *key_path;	/* as configured                 */
	char *cert;			/* PEM, NUL-terminated            */
	char *key;			/* DER (PKCS#8): the daemon never
					 * parses its PEM (GnuTLS leaves
					 * copies of what it decodes);
					 * wiped by _free                 */
	size_t cert_len, key_len;
};
/* 1 with *out filled, 0 when the config has no tls.certificate (the
 * generated one is the daemon's to read), -1 with a malloc'd error. */
SC_INTERNAL int sc_privops_tls(struct sc_privops_tls *out, char **error_r);
SC_INTERNAL void sc_privops_tls_free(struct sc_privops_tls *t);
/* A listening socket for addr, bound by the helper; the config must name
 * the address. The fd, or -1 with a malloc'd error. */
SC_INTERNAL int sc_privops_bind(const struct sc_sockaddr *addr,
				char **error_r);

/* ---- ctl.c: the control socket for satchelctl ---- */

SC_INTERNAL int sc_ctl_start(const char *state_dir, char **error_r);
SC_INTERNAL void sc_ctl_stop(void);

/* ---- work.c ---- */

/* Runs the loop until every sc_work_submit(_inst) job has completed (its
 * done callback ran), for at most timeout_ms; generations retired by a
 * reload and waiting for their jobs are torn down on the way. Teardown
 * calls it before module instances are freed and modules unloaded, so no
 * completion jumps into an unloaded module. DNS lookups are not waited
 * for: it stops the resolver first (sc_dns_stop), so their callbacks run
 * now with TEMPFAIL. Returns the pool jobs still pending. */
SC_INTERNAL unsigned sc_work_drain(uint64_t timeout_ms);

/* ---- privdir.c ---- */

/* As root before the drop: creates state_dir for user, or hands a
 * root-made one (and its root-only contents) over; refuses a state_dir
 * whose parents user can change. 0, or -1 with a malloc'd error. */
SC_INTERNAL int sc_privdir_state(const char *state_dir, const char *user,
				 char **error_r);

/* ---- log.c ---- */

SC_INTERNAL void sc_log_init(bool foreground, int level);
SC_INTERNAL void sc_log_set_level(int level);
/* Logs and exits(1): config and environment problems. */
SC_INTERNAL void sc_fatal(const char *fmt, ...) SC_PRINTF(1, 2)
	__attribute__((noreturn));
/* Logs and aborts: bugs. */
SC_INTERNAL void sc_panic(const char *fmt, ...) SC_PRINTF(1, 2)
	__attribute__((noreturn));

/* ---- metrics.c: the metric registry (satchel/metrics.h) ---- */

struct sc_metrics;
/* Creates the registry and the core's own families (satcheld only: the
 * other programs run without one, and the metric calls do nothing). */
SC_INTERNAL int sc_metrics_init(char **error_r);
SC_INTERNAL void sc_metrics_deinit(void);
/* Counts ev in the core's families (event.c calls it for every event). */
SC_INTERNAL void sc_metrics_event(const struct sc_event *ev);
/* Frees inst's handles (module.c, after instance_free). */
SC_INTERNAL void sc_metrics_instance_gone(struct sc_instance *inst);
/* What the core's families read, from the files that know it: */
/* session.c: fn(protocol, arg) once for every live session */
SC_INTERNAL void sc_session_foreach_protocol(void (*fn)(const char *protocol,
							void *arg),
					     void *arg);
/* queue_runner.c: the kind ("local", "remote") routed for rcpt of message
 * id, or NULL; the arrival of the oldest message with a deferred
 * recipient, 0 when none */
SC_INTERNAL const char *sc_queue_rcpt_kind(const char *id, const char *rcpt);
SC_INTERNAL time_t sc_queue_oldest_deferred(void);

/* ---- main.c: the process context ---- */

/* The live sessions (core/session.c), on the loop thread. */
struct sc_session_list {
	struct sc_session *head;
	size_t count;
	uint32_t id_base;		/* random: ids differ across restarts */
	uint32_t id_next;
};

/* The control socket satchelctl talks to (core/ctl.c), loop thread. */
struct ctl_client;
struct sc_ctl_server {
	bool open;
	uv_pipe_t server;
	char *path;
	time_t started;
	struct ctl_client *clients;
};

/* The privileged reload helper (core/privops.c), loop thread. */
struct sc_privops {
	bool up;			/* started and answering             */
	pid_t pid;
	int fd;				/* our end of the socketpair         */
};

/* The key of TLS session tickets (made in net_tls_cert.c, used in
 * net_tls.c): new for every process and every reload, so a ticket
 * outlives neither; wiped when replaced. */
struct sc_tls_ticket {
	bool set;
	unsigned size;
	unsigned char key[64];
};

struct sc_core {
	uv_loop_t *loop;
	struct sc_gen *gen;		/* the current generation            */
	const char *config_path;
	bool foreground;
	bool stopping;
	bool privileged_dropped;
	unsigned work_pending;		/* pool jobs (_inst too) not done    */
	struct sc_session_list sessions;
	struct sc_ctl_server ctl;
	struct sc_privops privops;
	struct sc_tls_ticket tls_ticket;
	struct sc_inst_state *inst_states; /* instance_state.c            */
	struct store_ctx *stores;	/* store.c: connections to stores    */
	struct sc_metrics *metrics;	/* metrics.c's registry, or NULL     */
};
/* The one process-wide context. */
SC_INTERNAL extern struct sc_core *sc_core;

/* Reloads the config (SIGHUP, satchelctl reload). 0; -1 with the error
 * logged and the old config kept; 1 when the new config runs but parts
 * did not take (the TLS certificate, keys that need a restart), listed in
 * the malloc'd *error_r and logged. */
SC_INTERNAL int sc_core_reload(char **error_r);

#endif
