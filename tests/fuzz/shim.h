/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/shim.h - a small fake of the core for the module fuzz
 * targets (smtp, pop3, relay, auth_file).
 *
 * A target compiles a module's own sources with shim.c, which implements
 * the module API of core/include/satchel/ (*.h) the way the headers promise
 * (connections, sessions, hook chains, the queue, timers, pool jobs, DNS
 * and deliveries), deterministically and without sockets or threads; the
 * pure core files (address.c, sasl.c, config.c, config_keys.c) are the
 * real ones. The fuzz input drives the client's bytes and, through
 * shim_byte(), every decision the core or another module would make: hook
 * verdicts (at once or later), TLS handshakes, commits, DNS answers.
 *
 * Besides the sanitizers, the shim checks the module against the API
 * contract as it goes (FUZZ_CHECK): hook arguments complete and still
 * readable when an asynchronous verdict comes, no second sc_hook_done,
 * queue data with CRLF line ends only, a session's message accepted by
 * its MAIL hooks, one-line delivery results, and at shim_end() nothing
 * left behind (sessions, connections, pending calls, deliveries).
 */
#ifndef SATCHEL_FUZZ_SHIM_H
#define SATCHEL_FUZZ_SHIM_H

#include "core.h"
#include "fuzz.h"

/* ---- per process and per input ---- */

/* Once: the main config (hostname mail.example.test; domains example.test
 * local, backup.test backup, remote.test remote, auto.test auto). */
void shim_init(void);
/* Per input: script is where shim_byte() reads the decisions from. */
void shim_begin(const uint8_t *script, size_t len);
/* Per input: closes what is left, runs the loop empty and checks that
 * nothing (session, connection, tx, job, timer) outlived its owner. */
void shim_end(void);

/* The next decision byte (0 once the script is used up). */
uint8_t shim_byte(void);

/* ---- module instances ---- */

/* Parses yaml against mod's keys, then instance_new and instance_start.
 * Aborts when that fails: the targets' configs are valid. */
struct sc_instance *shim_instance(const struct sc_module *mod,
				  const char *yaml);
/* instance_free and the parsed config. */
void shim_instance_free(struct sc_instance *inst);
/* The instance's data from instance_new. */
void *shim_instance_data(struct sc_instance *inst);

/* ---- the event loop ---- */

/* Runs queued callbacks (connection events, hook verdicts, pool jobs,
 * handshakes, commits, DNS answers) until none is left; with time_passes,
 * module timers then fire too (each repeating one at most once per call)
 * and the loop goes on until quiet. Aborts on a livelock. */
void shim_run(bool time_passes);

/* ---- inbound connections ---- */

struct shim_client {
	struct sc_session *s;		/* NULL once the session closed   */
	struct sc_conn *c;		/* NULL once the session closed   */
	char *out;			/* what the module wrote, bounded */
	size_t out_len, out_cap, out_total;
};

/* A connection from client_ip to listener index (in sc_listen_open order):
 * the session is created and the listener's accept callback runs. */
struct shim_client *shim_connect(size_t listener, const char *client_ip);
/* Client bytes into the connection's input (up to its 64 KiB buffer, like
 * the real one); returns how many were taken. */
size_t shim_send(struct sc_conn *c, const void *data, size_t len);
/* The peer closed. */
void shim_send_eof(struct sc_conn *c);
/* The idle timeout the module set fires (if it set one). */
void shim_idle_timeout(struct sc_conn *c);
/* Closes the session if still open (the daemon stopping), frees cl. */
void shim_client_free(struct shim_client *cl);
/* Number of listeners opened. */
size_t shim_listener_count(void);
/* Number of sessions still open. */
size_t shim_session_count(void);

/* ---- outbound connections (relay) ---- */

/* The outbound connections still open (no handshake under way), newest
 * first: shim_outbound(NULL) is the first, shim_outbound(c) the next. */
struct sc_conn *shim_outbound(struct sc_conn *after);
/* What the module wrote to c since the last call (NUL-terminated, owned
 * by the shim until the next call). */
const char *shim_take_output(struct sc_conn *c, size_t *len_r);

/* ---- the hook registry ---- */

/* Runs hook's chain of registered callbacks (no scripted verdict) outside
 * a session, like the router's account lookups; returns the result. */
enum sc_result shim_run_chain(enum sc_hook hook, const void *arg);
/* Whether the scripted verdict ends every chain (the default): a target
 * testing a module's own hooks turns it off. */
void shim_script_hooks(bool on);

/* ---- the queue and deliveries ---- */

/* Messages committed since shim_begin. */
size_t shim_committed(void);

struct shim_delivery_rcpt {
	const char *address, *params;
};
/* Hands one delivery attempt to the index-th registered delivery driver
 * (in registration order): the message is data (len bytes), read through
 * sc_delivery_open. The driver finishes it with sc_delivery_done, now or
 * later in the loop; shim_end reports one that never does. */
void shim_deliver(size_t driver, const char *sender, const char *params,
		  const struct shim_delivery_rcpt *rcpts, size_t n,
		  const char *nexthop, const void *data, size_t len);
/* Number of delivery drivers registered. */
size_t shim_driver_count(void);
/* Deliveries handed over and not finished. */
size_t shim_deliveries_open(void);

/* The mailbox directory sc_mailbox_path gives for every address. */
void shim_set_mailbox(const char *path);

#endif
