/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/fx_hook.c - fixture module for hook tests against the real
 * satcheld: registers on the hooks named in `hooks` and answers `result`,
 * at once or `late_ms` later from a timer (after the chain's hook_timeout,
 * for the late-answer test). A late answer logs what the module then sees
 * of its call: whether it is cancelled and the session's id - which reads
 * the session, so a core that hands out a freed session is caught by the
 * sanitizer build. Loop thread only.
 */
#include <stdlib.h>
#include <string.h>
#include <satchel/satchel.h>

struct fxh_conf {
	struct sc_str_list hooks;
	int result;
	int phase;
	uint64_t late_ms;
};

/* Index order of the `result` enum: the sc_result values. */
static const struct sc_config_key fxh_keys[] = {
	{ "hooks", SC_KEY_STR_LIST, offsetof(struct fxh_conf, hooks), NULL,
	  SC_KEY_REQUIRED, "hooks to register on (connect, helo, auth, ...)",
	  NULL, NULL, 0 },
	{ "result", SC_KEY_ENUM, offsetof(struct fxh_conf, result), "cont", 0,
	  "the answer", "cont|ok|deny|denysoft|denydisconnect|"
	  "denysoftdisconnect", NULL, 0 },
	{ "phase", SC_KEY_ENUM, offsetof(struct fxh_conf, phase), "normal", 0,
	  "the chain phase registered in", "normal|policy", NULL, 0 },
	{ "late_ms", SC_KEY_UINT, offsetof(struct fxh_conf, late_ms), "0", 0,
	  "answer this long after the call (PENDING); 0 = at once",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

struct fxh;

/* One call answered late; on the instance's list until its timer fires. */
struct fxh_late {
	struct fxh_late *next;
	struct fxh *fx;
	struct sc_hook_call *call;
	struct sc_timer *timer;
};

struct fxh {
	struct sc_instance *inst;
	const struct fxh_conf *conf;
	struct fxh_late *late;
};

static void
late_unlink(struct fxh *fx, struct fxh_late *l)
{
	for (struct fxh_late **pp = &fx->late; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			return;
		}
	}
}

/* late_fire - the late answer: first look at the call as a module would */
static void
late_fire(struct sc_timer *t, void *arg)
{
	struct fxh_late *l = arg;
	struct fxh *fx = l->fx;
	struct sc_session *s = sc_hook_session(l->call);

	(void)t;
	sc_log_notice("fx_hook %s: late answer to %s: cancelled=%s "
		      "session=%s arg=%s", sc_instance_name(fx->inst),
		      sc_hook_name(sc_hook_which(l->call)),
		      sc_hook_cancelled(l->call) ? "yes" : "no",
		      s != NULL ? sc_session_id(s) : "none",
		      sc_hook_arg(l->call) != NULL ? "set" : "none");
	sc_hook_done(l->call, (enum sc_result)fx->conf->result);
	late_unlink(fx, l);
	sc_timer_free(&l->timer);
	free(l);
}

static enum sc_result
fxh_cb(struct sc_hook_call *call, void *data)
{
	struct fxh *fx = data;
	struct fxh_late *l;

	if (fx->conf->late_ms == 0)
		return (enum sc_result)fx->conf->result;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return SC_DENYSOFT;
	l->fx = fx;
	l->call = call;
	l->timer = sc_timer_new(late_fire, l);
	if (l->timer == NULL) {
		free(l);
		return SC_DENYSOFT;
	}
	l->next = fx->late;
	fx->late = l;
	sc_timer_start(l->timer, fx->conf->late_ms, 0);
	return SC_PENDING;
}

/* hook_by_name - SC_HOOK_COUNT when unknown */
static enum sc_hook
hook_by_name(const char *name)
{
	for (int h = 0; h < SC_HOOK_COUNT; h++)
		if (strcmp(sc_hook_name((enum sc_hook)h), name) == 0)
			return (enum sc_hook)h;
	return SC_HOOK_COUNT;
}

static int
fxh_new(struct sc_instance *inst, const void *config, void **data_r,
	const char **error_r)
{
	const struct fxh_conf *conf = config;
	struct fxh *fx;

	for (size_t i = 0; i < conf->hooks.n; i++) {
		if (hook_by_name(conf->hooks.v[i]) == SC_HOOK_COUNT) {
			*error_r = "hooks: unknown hook name";
			return -1;
		}
	}
	fx = calloc(1, sizeof(*fx));
	if (fx == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	fx->inst = inst;
	fx->conf = conf;
	*data_r = fx;
	return 0;
}

static int
fxh_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct fxh *fx = data;
	enum sc_hook_phase phase = fx->conf->phase == 1 ? SC_PHASE_POLICY :
		SC_PHASE_NORMAL;

	for (size_t i = 0; i < fx->conf->hooks.n; i++) {
		if (sc_hook_register_phase(inst,
					   hook_by_name(fx->conf->hooks.v[i]),
					   phase, fxh_cb, fx) < 0) {
			*error_r = "cannot register the hooks";
			return -1;
		}
	}
	return 0;
}

/* fxh_free - calls still waiting for their timer are completed now, so
 * the core can release them */
static void
fxh_free(struct sc_instance *inst, void *data)
{
	struct fxh *fx = data;

	(void)inst;
	while (fx->late != NULL) {
		struct fxh_late *l = fx->late;

		fx->late = l->next;
		sc_hook_done(l->call, SC_DENYSOFT);
		sc_timer_free(&l->timer);
		free(l);
	}
	free(fx);
}

SC_MODULE(fx_hook,
	.version = "1.0",
	.description = "test fixture: fixed (maybe late) hook answers",
	.keys = fxh_keys,
	.config_size = sizeof(struct fxh_conf),
	.instance_new = fxh_new,
	.instance_start = fxh_start,
	.instance_free = fxh_free,
);
