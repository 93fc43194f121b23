/* SPDX-License-Identifier: MIT */
/*
 * relay_int.h - what the relay module's files share: its configuration,
 * the instance, a job (one recipient domain of a delivery attempt) with
 * its hosts and conversation state, and the functions one file calls in
 * another. Internal to the module (hidden symbols); nothing here is
 * satchel API. Everything runs on the event loop thread except the body
 * reads (relay_body.c) on the thread pool.
 */
#ifndef RELAY_INT_H
#define RELAY_INT_H

#include <satchel/satchel.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#define RELAY_MAX_ADDRS 8	/* addresses tried per host              */
#define RELAY_MAX_TLSA 8

enum relay_tls { TLS_OPPORTUNISTIC = 0, TLS_REQUIRED, TLS_DANE };

struct relay_timeouts {
	uint64_t greeting, ehlo, mail, rcpt, data, data_block, data_done;
	uint64_t total;
};

struct relay_auth_conf {
	char *user;
	char *password_file;
};

struct relay_conf {
	char *smarthost;
	struct relay_auth_conf smarthost_auth;
	struct sc_str_map routes;
	int tls;
	struct sc_u64_list retry;
	uint64_t max_queue_time;
	uint64_t port;
	uint64_t connect_timeout;
	struct relay_timeouts timeouts;
	uint64_t max_connections_per_destination;
	char *helo_name;
};

/* A destination (MX domain or next hop) and who waits for a connection. */
struct relay_dest {
	struct relay_dest *next;
	char key[300];
	unsigned active;
	struct relay_job *wait_head, *wait_tail;
};

struct relay {
	struct sc_instance *inst;
	const struct relay_conf *conf;
	struct sc_delivery_driver drv;
	char *password;			/* smarthost_auth, or NULL       */
	char smarthost_host[256];
	uint16_t smarthost_port;
	struct relay_dest *dests;
	struct relay_job *jobs;		/* active, for teardown          */
	struct relay_tls_wait *orphans;	/* see struct relay_tls_wait */
	bool stopping;
	unsigned connections;
	uint64_t delivered, deferred, failed;
};

/* One delivery attempt (sc_delivery) may hold recipients of several
 * domains; each domain is one job, and the attempt ends with the last. */
struct relay_batch {
	struct sc_delivery *d;
	unsigned jobs_left;
};

enum rcpt_state { RS_PENDING = 0, RS_SENT, RS_ACCEPTED, RS_DONE };

struct relay_host {
	char name[256];
	uint16_t port;
	int pref;			/* -1 for next hops              */
	bool self;			/* this server (MX filtering)    */
	size_t naddr;
	char addr[RELAY_MAX_ADDRS][INET6_ADDRSTRLEN];
	enum sc_dns_status st_a, st_aaaa;
	char dns_error[200];
	/* DANE */
	bool tlsa_secure;
	enum sc_dns_status st_tlsa;
	size_t ntlsa;
	unsigned char *tlsa[RELAY_MAX_TLSA];
	size_t tlsa_len[RELAY_MAX_TLSA];
};

enum job_state {
	JS_DNS = 0, JS_WAIT_SLOT, JS_CONNECTING, JS_GREETING, JS_EHLO,
	JS_HELO, JS_STARTTLS, JS_TLS, JS_AUTH, JS_AUTH_USER, JS_AUTH_PASS,
	JS_SCAN, JS_TRANSACTION, JS_BODY, JS_DOT, JS_DONE,
};

enum cmd_kind { CMD_MAIL, CMD_RCPT, CMD_DATA };

/* The argument of a client TLS handshake. The core does not call back
 * for a connection closed during the handshake (a deadline): the job
 * lets go of it then, and it waits on the instance's orphan list until
 * the callback comes after all or the instance ends. */
struct relay_tls_wait {
	struct relay_job *job;		/* NULL once the job let go       */
	struct relay *r;		/* set while on r->orphans        */
	struct relay_tls_wait *prev, *next;
};

struct relay_cmd {
	enum cmd_kind kind;
	size_t rcpt;			/* CMD_RCPT: index into job rcpts */
};

struct relay_job {
	struct relay *r;		/* NULL once the instance is gone */
	struct relay_batch *batch;
	struct relay_job *prev, *next;	/* in r->jobs                     */
	struct relay_job *wait_next;	/* in a dest's wait list          */
	unsigned refs;
	bool finished;
	enum job_state st;

	char domain[256];
	size_t nrcpt;
	size_t *idx;			/* delivery rcpt index            */
	enum rcpt_state *rs;

	/* where to */
	char dest_key[300];
	struct relay_dest *slot;	/* held connection slot           */
	bool use_auth;			/* the next hop wants AUTH   */
	bool mx_routing;		/* hosts came from MX records     */
	bool implicit_mx;		/* no MX: the domain's own A/AAAA */
	struct relay_host *hosts;
	size_t nhosts, hi, ai;
	unsigned dns_pending;

	/* the SMTP conversation */
	struct sc_conn *conn;
	char peer[320];			/* "mx1.example[127.0.0.2]"       */
	bool plaintext_only;		/* TLS failed: retry in the clear */
	bool tls_active, dane;
	bool authenticated;		/* AUTH done on this conn.   */
	bool ext_pipelining, ext_starttls, ext_8bitmime, ext_smtputf8;
	bool ext_dsn, ext_auth_plain, ext_auth_login, ext_size;
	uint64_t size_limit;
	bool ehlo_first_line;
	bool has_8bit;			/* from the body scan            */
	bool scanned;			/* the body scan has run     */
	bool scan_running;		/* ... is on the pool now    */
	int code;			/* reply being read              */
	unsigned reply_lines;		/* lines of it so far        */
	/* reply_timer: the deadline of the reply we wait for, set when the
	 * command goes out and never extended by input (the connection's
	 * idle timeout is, so a peer trickling lines would beat it);
	 * job_timer: the deadline of the whole attempt */
	struct sc_timer *reply_timer, *job_timer;
	struct relay_tls_wait *tls_wait;	/* handshake under way       */
	char esc[16];
	char text[600];
	size_t tlen;
	struct relay_cmd *cmds;		/* pipelined replies expected    */
	size_t ncmd, cmd_head;
	size_t accepted;

	/* the body */
	int fd;
	uint64_t base;			/* file offset of the first byte  */
	uint64_t size, off;
	char *chunk;
	size_t chunk_len;
	int chunk_err;
	bool at_bol, prev_cr, waiting_drain;

	/* why the last host failed: the result if no host works */
	enum sc_result last_r;
	int last_code;
	char last_esc[16];
	char last_err[700];
};

/* relay.c - helpers */
void sfmt(char *buf, size_t len, const char *fmt, ...) SC_PRINTF(3, 4);
const char *relay_hostname(void);
const char *relay_helo(const struct relay *r);

/* relay_job.c - jobs, results, connection limits, the end of a job */
void job_ref(struct relay_job *job);
void job_unref(struct relay_job *job);
void job_result(struct relay_job *job, size_t k, enum sc_result res,
		int code, const char *esc, const char *text);
void job_fail_all(struct relay_job *job, enum sc_result res, int code,
		  const char *esc, const char *fmt, ...) SC_PRINTF(5, 6);
void job_set_error(struct relay_job *job, enum sc_result res, int code,
		   const char *esc, const char *fmt, ...) SC_PRINTF(5, 6);
bool dest_acquire(struct relay *r, struct relay_job *job);
void job_close_conn(struct relay_job *job);
void job_deadline(struct relay_job *job, uint64_t ms);
void job_finish(struct relay_job *job);
bool job_all_done(const struct relay_job *job);
void job_host_failed(struct relay_job *job);
void job_total_deadline(struct sc_timer *t, void *arg);
void relay_deliver(struct sc_delivery *d, void *data);

/* relay_route.c - next hop, MX hosts, addresses, connecting */
int split_hostport(const char *text, char *host, size_t hlen,
		   uint16_t *port, uint16_t defport);
bool is_ip_literal(const char *s);
void job_next_address(struct relay_job *job);
void job_start(struct relay_job *job);

/* relay_conn.c - the connection and reading its replies */
void job_connected(struct sc_conn *c, int error, void *arg);
void job_reply_deadline(struct sc_timer *t, void *arg);

/* relay_client.c - the SMTP commands and the replies to them */
void job_send(struct relay_job *job, uint64_t timeout_ms, const char *fmt,
	      ...) SC_PRINTF(3, 4);
void job_ehlo_keyword(struct relay_job *job, const char *kw);
bool job_is_loop(struct relay_job *job, const char *text);
void job_loop_detected(struct relay_job *job);
void job_send_ehlo(struct relay_job *job);
void job_ready(struct relay_job *job);
void job_start_transaction(struct relay_job *job);
void job_handle_reply(struct relay_job *job);

/* relay_tls.c - STARTTLS and DANE */
bool job_tls_optional(const struct relay_job *job);
void job_start_tls(struct relay_job *job);
void job_after_ehlo(struct relay_job *job);

/* relay_body.c - the body: 8-bit scan and DATA */
void job_scan_work(void *arg);
void job_scan_done(void *arg);
void job_body_pump(struct relay_job *job);

#endif
