/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/shim.c - the fake core of the module fuzz targets (see
 * shim.h): the module API of core/include/satchel/ (*.h) on a deterministic
 * single-threaded loop, with the fuzz input deciding what the core, the
 * network and other modules would. Where the real core's behaviour is
 * part of the contract (when input is announced, what sc_conn_getline
 * does with long lines, what a session close cancels) it follows
 * core/net_conn.c, core/session.c and core/hook.c.
 */
#include "shim_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct shim_state shim = { .script_hooks = true };

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		abort();
	return p;
}

uint8_t
shim_byte(void)
{
	if (shim.script_pos >= shim.script_len)
		return 0;
	return shim.script[shim.script_pos++];
}

struct ev *
ev_add(enum ev_kind kind)
{
	struct ev *e = xcalloc(1, sizeof(*e));

	e->kind = kind;
	*shim.evs_tail = e;
	shim.evs_tail = &e->next;
	return e;
}

void
ev_free(struct ev *e)
{
	free(e->name);
	free(e);
}

void
ev_relink_tail(void)
{
	shim.evs_tail = &shim.evs;
	while (*shim.evs_tail != NULL)
		shim.evs_tail = &(*shim.evs_tail)->next;
}

/* str_ok - reads the whole string: a dangling pointer shows up here */
size_t
str_ok(const char *s)
{
	return s != NULL ? strlen(s) : 0;
}

/* ---- log ---- */

void
sc_log(enum sc_log_level level, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	(void)level;
	/* formatted for the sanitizers' sake (bad %s arguments); shown
	 * with FUZZ_DEBUG */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (getenv("FUZZ_DEBUG") != NULL)
		fprintf(stderr, "log: %s\n", buf);
}

void
sc_log_session(enum sc_log_level level, const struct sc_session *s,
	       const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	(void)level;
	if (s != NULL)
		str_ok(s->id);
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (getenv("FUZZ_DEBUG") != NULL)
		fprintf(stderr, "log: [%s] %s\n", s ? s->id : "-", buf);
}

bool
sc_log_enabled(enum sc_log_level level)
{
	/* debug lines too: their formatting is code that runs in the field */
	(void)level;
	return true;
}

/* ---- instances ---- */

const char *
sc_instance_name(const struct sc_instance *inst)
{
	return inst->conf->name;
}

const char *
sc_instance_module(const struct sc_instance *inst)
{
	return inst->mh->mod->name;
}

const char *
sc_instance_file(const struct sc_instance *inst)
{
	(void)inst;
	return "/etc/satchel/plugins.d/50-fuzz.yaml";
}

const char *
sc_instance_state_dir(struct sc_instance *inst)
{
	(void)inst;
	return "/tmp";
}

int
sc_status_register(struct sc_instance *inst, sc_status_fn fn, void *data)
{
	char buf[512];

	(void)inst;
	/* the status text is asked for at once: it must not crash early */
	fn(buf, sizeof(buf), data);
	return 0;
}

struct sc_instance *
shim_instance(const struct sc_module *mod, const char *yaml)
{
	struct sc_instance *inst = xcalloc(1, sizeof(*inst));
	struct sc_module_handle *mh = xcalloc(1, sizeof(*mh));
	struct sc_inst_conf *ic = xcalloc(1, sizeof(*ic));
	struct sc_ydoc *doc = NULL;
	char *error = NULL;
	const char *err = NULL;

	mh->mod = mod;
	mh->path = xstrdup(mod->name);
	ic->module = xstrdup(mod->name);
	ic->name = xstrdup(mod->name);
	ic->file = xstrdup("/etc/satchel/plugins.d/50-fuzz.yaml");
	ic->enabled = true;
	inst->mh = mh;
	inst->conf = ic;
	inst->config = xcalloc(1, mod->config_size);
	if (sc_yaml_parse_string(yaml, "50-fuzz.yaml", &doc, &error) != 0 ||
	    sc_config_parse_map(doc->root, NULL, "/tmp", mod->keys, NULL,
				false, inst->config, &error) != 0) {
		fprintf(stderr, "shim: config of %s: %s\n", mod->name, error);
		abort();
	}
	sc_ydoc_free(doc);
	if (mod->instance_new(inst, inst->config, &inst->data, &err) != 0) {
		fprintf(stderr, "shim: %s instance_new: %s\n", mod->name,
			err ? err : "?");
		abort();
	}
	if (mod->instance_start != NULL &&
	    mod->instance_start(inst, inst->data, &err) != 0) {
		fprintf(stderr, "shim: %s instance_start: %s\n", mod->name,
			err ? err : "?");
		abort();
	}
	inst->started = true;
	return inst;
}

void *
shim_instance_data(struct sc_instance *inst)
{
	return inst->data;
}

void
shim_instance_free(struct sc_instance *inst)
{
	const struct sc_module *mod = inst->mh->mod;
	size_t w = 0;

	if (mod->instance_free != NULL)
		mod->instance_free(inst, inst->data);
	sc_config_free_keys(mod->keys, inst->config);
	free(inst->config);
	for (size_t i = 0; i < shim.nhooks; i++)
		if (shim.hooks[i].inst != inst)
			shim.hooks[w++] = shim.hooks[i];
	shim.nhooks = w;
	free(inst->mh->path);
	free(inst->mh);
	free(inst->conf->module);
	free(inst->conf->name);
	free(inst->conf->file);
	free((void *)inst->conf);
	free(inst);
}

/* ---- config (the real config.c reads the main config set here) ---- */

void
shim_init(void)
{
	static const struct { const char *name; enum sc_routing r; } doms[] = {
		{ "example.test", SC_ROUTING_LOCAL },
		{ "backup.test", SC_ROUTING_BACKUP },
		{ "remote.test", SC_ROUTING_REMOTE },
		{ "auto.test", SC_ROUTING_AUTO },
	};
	struct sc_main_config *cfg = xcalloc(1, sizeof(*cfg));

	cfg->file = xstrdup("/etc/satchel/satchel.yaml");
	cfg->hostname = xstrdup("mail.example.test");
	cfg->state_dir = xstrdup("/tmp");
	cfg->module_dir = xstrdup("/tmp");
	cfg->user = xstrdup("");
	cfg->domain_count = sizeof(doms) / sizeof(*doms);
	cfg->domains = xcalloc(cfg->domain_count, sizeof(*cfg->domains));
	for (size_t i = 0; i < cfg->domain_count; i++) {
		cfg->domains[i].name = xstrdup(doms[i].name);
		cfg->domains[i].routing = doms[i].r;
	}
	shim.cfg = cfg;
	sc_config_set_current(cfg);
	shim.evs_tail = &shim.evs;
}

void
shim_begin(const uint8_t *script, size_t len)
{
	shim.script = script;
	shim.script_len = len;
	shim.script_pos = 0;
	shim.committed = 0;
}

size_t
shim_committed(void)
{
	return shim.committed;
}

void
shim_script_hooks(bool on)
{
	shim.script_hooks = on;
}

void
shim_set_mailbox(const char *path)
{
	snprintf(shim.mailbox, sizeof(shim.mailbox), "%s", path);
}

/* ---- events ---- */

int
sc_event_subscribe(struct sc_instance *inst, enum sc_event_type type,
		   sc_event_fn fn, void *data)
{
	(void)inst;
	FUZZ_CHECK(shim.nevents < 32, "too many subscriptions");
	shim.events[shim.nevents++] = (struct event_reg){ type, fn, data };
	return 0;
}

void
sc_event_emit(const struct sc_event *ev)
{
	FUZZ_CHECK(ev->type < SC_EVENT_COUNT, "event type %d", ev->type);
	str_ok(ev->protocol);
	str_ok(ev->client_ip);
	str_ok(ev->user);
	str_ok(ev->sender);
	str_ok(ev->rcpt);
	str_ok(ev->queue_id);
	str_ok(ev->text);
	if (ev->type == SC_EVENT_LOGIN)
		FUZZ_CHECK(ev->user != NULL, "login event without a user");
	for (size_t i = 0; i < shim.nevents; i++)
		if (shim.events[i].type == ev->type)
			shim.events[i].fn(ev, shim.events[i].data);
}

const char *
sc_event_name(enum sc_event_type type)
{
	(void)type;
	return "event";
}

/* ---- timers and pool jobs ---- */

struct sc_timer *
sc_timer_new(sc_timer_fn fn, void *arg)
{
	struct sc_timer *t = xcalloc(1, sizeof(*t));

	t->fn = fn;
	t->arg = arg;
	t->next = shim.timers;
	shim.timers = t;
	return t;
}

void
sc_timer_start(struct sc_timer *t, uint64_t ms, uint64_t repeat_ms)
{
	t->armed = true;
	t->due = shim.now + ms;
	t->repeat = repeat_ms;
}

void
sc_timer_stop(struct sc_timer *t)
{
	t->armed = false;
}

void
sc_timer_free(struct sc_timer **tp)
{
	struct sc_timer *t = *tp;

	if (t == NULL)
		return;
	for (struct sc_timer **pp = &shim.timers; *pp != NULL;
	     pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	free(t);
	*tp = NULL;
}

uint64_t
sc_now_ms(void)
{
	return shim.now;
}

int
sc_work_submit(sc_work_fn work, sc_work_fn done, void *arg)
{
	struct ev *e = ev_add(EV_WORK);

	e->work = work;
	e->done = done;
	e->arg = arg;
	return 0;
}

int
sc_work_submit_inst(struct sc_instance *inst, sc_work_fn work,
		    sc_work_fn done, void *arg)
{
	(void)inst;
	return sc_work_submit(work, done, arg);
}

/* ---- the loop ---- */

static void
ev_run(struct ev *e)
{
	switch (e->kind) {
	case EV_HOOK_DONE:
		sc_hook_done(e->call, e->result);
		break;
	case EV_CHAIN_DONE:
		break;
	case EV_WORK:
		e->work(e->arg);
		if (e->done != NULL)
			e->done(e->arg);
		break;
	case EV_TLS: {
		struct sc_conn *c = e->c;

		c->tls_pending = false;
		c->tls = e->ok;
		if (c->in_len > 0 || c->eof)
			c->announce = true;
		e->tls_done(c, e->ok, e->ok ? NULL :
			    "handshake failed (fuzz)", e->arg);
		break;
	}
	case EV_CONNECT:
		if (e->ok) {
			struct sc_conn *c = conn_new();

			c->outbound = true;
			snprintf(c->peer, sizeof(c->peer), "127.0.0.2");
			e->connect_done(c, 0, e->arg);
		} else {
			e->connect_done(NULL, -ECONNREFUSED, e->arg);
		}
		break;
	case EV_COMMIT: {
		struct sc_queue_tx *tx = e->tx;

		if (tx->s != NULL)
			tx->s->tx = NULL;
		if (e->ok)
			shim.committed++;
		tx->done(tx->arg, e->ok ? tx->id : NULL,
			 e->ok ? NULL : "fsync failed (fuzz)");
		tx_free(tx);
		break;
	}
	case EV_DNS:
		dns_answer(e);
		break;
	}
}

static bool
timer_step(void)
{
	struct sc_timer *next = NULL;

	for (struct sc_timer *t = shim.timers; t != NULL; t = t->next)
		if (t->armed && !t->fired && (next == NULL ||
					      t->due < next->due))
			next = t;
	if (next == NULL)
		return false;
	if (next->due > shim.now)
		shim.now = next->due;
	if (next->repeat > 0) {
		next->due += next->repeat;
		next->fired = true;
	} else {
		next->armed = false;
	}
	next->fn(next, next->arg);
	return true;
}

void
shim_run(bool time_passes)
{
	for (unsigned steps = 0;; steps++) {
		FUZZ_CHECK(steps < MAX_STEPS, "no end to the loop's work (a "
			   "livelock)");
		if (shim.evs != NULL) {
			struct ev *e = shim.evs;

			shim.evs = e->next;
			if (shim.evs == NULL)
				shim.evs_tail = &shim.evs;
			ev_run(e);
			ev_free(e);
			continue;
		}
		if (conn_step())
			continue;
		if (time_passes && timer_step())
			continue;
		break;
	}
	for (struct sc_timer *t = shim.timers; t != NULL; t = t->next)
		t->fired = false;
}

void
shim_end(void)
{
	while (shim.sessions != NULL)
		sc_session_close(shim.sessions);
	shim_run(true);
	FUZZ_CHECK(shim.sessions == NULL, "a session was opened at the end");
	for (struct sc_conn *c = shim.conns; c != NULL; c = c->next)
		FUZZ_CHECK(!c->outbound, "an outbound connection left open");
	FUZZ_CHECK(shim.conns == NULL, "a connection outlived its session");
	FUZZ_CHECK(shim.chains == NULL, "a PENDING hook call never got its "
		   "sc_hook_done");
	FUZZ_CHECK(shim.deliveries == NULL, "a delivery never called "
		   "sc_delivery_done");
	FUZZ_CHECK(shim.evs == NULL, "callbacks left in the loop");
}
