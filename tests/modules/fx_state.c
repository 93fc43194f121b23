/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/fx_state.c - fixture module for the reload-surviving
 * instance state tests in check_module (sc_instance_state_get/put).
 *
 * instance_new takes over the state of its predecessor, or puts a new one
 * (also with `fresh: true`); the state remembers the tag of the instance
 * that made it and how many instances got it. Every step appends a line to
 * the `trace` file. Built twice: as fx_state, and with FXS_OTHER as
 * fx_state_b, to show a state never goes to another module. Loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <satchel/satchel.h>

#ifdef FXS_OTHER
#define FXS_NAME fx_state_b
#else
#define FXS_NAME fx_state
#endif

struct fxs_conf {
	char *trace;
	char *tag;
	bool fresh;
};

static const struct sc_config_key fxs_keys[] = {
	{ "trace", SC_KEY_PATH, offsetof(struct fxs_conf, trace), NULL,
	  SC_KEY_REQUIRED, "file the steps are appended to", NULL, NULL, 0 },
	{ "tag", SC_KEY_STR, offsetof(struct fxs_conf, tag), "x", 0,
	  "names this instance in the trace", NULL, NULL, 0 },
	{ "fresh", SC_KEY_BOOL, offsetof(struct fxs_conf, fresh), "false", 0,
	  "put a new state even when the predecessor left one", NULL, NULL,
	  0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* The state: outlives the instance that made it. */
struct fxs_state {
	char trace[512];
	char origin[64];	/* tag of the instance that put it */
	unsigned takers;	/* instances that got it since */
};

static void
trace(const char *path, const char *fmt, const char *a, const char *b,
      unsigned n)
{
	FILE *f = fopen(path, "a");

	if (f == NULL)
		return;
	fprintf(f, fmt, a, b, n);
	fputc('\n', f);
	fclose(f);
}

static void
fxs_state_free(void *p)
{
	struct fxs_state *st = p;

	trace(st->trace, "state-free %s%s after %u", st->origin, "",
	      st->takers);
	free(st);
}

static int
fxs_new(struct sc_instance *inst, const void *config, void **data_r,
	const char **error_r)
{
	const struct fxs_conf *conf = config;
	struct fxs_state *st = NULL;

	if (!conf->fresh)
		st = sc_instance_state_get(inst);
	if (st != NULL) {
		st->takers++;
		trace(conf->trace, "got %s in %s (%u)", st->origin, conf->tag,
		      st->takers);
		/* a second get gives the same state, not another hold */
		if (sc_instance_state_get(inst) != st) {
			*error_r = "second get differs";
			return -1;
		}
	} else {
		st = calloc(1, sizeof(*st));
		if (st == NULL) {
			*error_r = "out of memory";
			return -1;
		}
		snprintf(st->trace, sizeof(st->trace), "%s", conf->trace);
		snprintf(st->origin, sizeof(st->origin), "%s", conf->tag);
		if (sc_instance_state_put(inst, st, fxs_state_free) < 0) {
			free(st);
			*error_r = "cannot put the state";
			return -1;
		}
		/* the same pointer twice would be freed twice: refused */
		if (sc_instance_state_put(inst, st, fxs_state_free) == 0) {
			*error_r = "second put of one state accepted";
			return -1;
		}
		trace(conf->trace, "put %s%s (%u)", conf->tag, "", 0);
	}
	*data_r = (void *)conf;
	return 0;
}

static void
fxs_free(struct sc_instance *inst, void *data)
{
	const struct fxs_conf *conf = data;
	struct fxs_state *st = sc_instance_state_get(inst);

	/* still held: freed only after instance_free returned */
	trace(conf->trace, "free %s (state %s, %u)", conf->tag,
	      st != NULL ? st->origin : "none", 0);
}

/* one more expansion step, so FXS_NAME is replaced before # and ## */
#define FXS_MODULE(n, ...) SC_MODULE(n, __VA_ARGS__)

FXS_MODULE(FXS_NAME,
	.version = "1.0",
	.description = "check_module fixture: reload-surviving state",
	.keys = fxs_keys,
	.config_size = sizeof(struct fxs_conf),
	.instance_new = fxs_new,
	.instance_free = fxs_free,
);
