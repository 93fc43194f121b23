/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/fx_good.c - a well-formed fixture module for check_module.
 *
 * Appends one line per lifecycle call ("new TAG", "start TAG", ...) to the
 * file named by its `trace` key, so the test can check the order. Runs on
 * the loop thread; the tiny blocking writes are fine in a test fixture.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <satchel/satchel.h>

struct fx_conf {
	char *trace;
	char *tag;
	uint64_t count;
};

static const struct sc_config_key fx_keys[] = {
	{ "trace", SC_KEY_PATH, offsetof(struct fx_conf, trace), NULL,
	  SC_KEY_REQUIRED, "file the lifecycle calls are appended to",
	  NULL, NULL, 0 },
	{ "tag", SC_KEY_STR, offsetof(struct fx_conf, tag), "x", 0,
	  "names this instance in the trace", NULL, NULL, 0 },
	{ "count", SC_KEY_UINT, offsetof(struct fx_conf, count), "3", 0,
	  "a number to have a default", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

struct fx {
	const struct fx_conf *conf;
};

/* trace - one line into the trace file */
static void
trace(const struct fx_conf *conf, const char *what)
{
	FILE *f = fopen(conf->trace, "a");

	if (f == NULL)
		return;
	fprintf(f, "%s %s\n", what, conf->tag);
	fclose(f);
}

static enum sc_result
fx_rcpt(struct sc_hook_call *call, void *data)
{
	(void)call;
	(void)data;
	return SC_CONT;
}

static int
fx_new(struct sc_instance *inst, const void *config, void **data_r,
       const char **error_r)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	(void)inst;
	if (fx == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	fx->conf = config;
	trace(fx->conf, "new");
	*data_r = fx;
	return 0;
}

static int
fx_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct fx *fx = data;

	(void)error_r;
	trace(fx->conf, "start");
	return sc_hook_register(inst, SC_HOOK_RCPT, fx_rcpt, fx);
}

static void
fx_free(struct sc_instance *inst, void *data)
{
	struct fx *fx = data;

	(void)inst;
	trace(fx->conf, "free");
	free(fx);
}

SC_MODULE(fx_good,
	.version = "1.2.3",
	.description = "check_module fixture",
	.keys = fx_keys,
	.config_size = sizeof(struct fx_conf),
	.instance_new = fx_new,
	.instance_start = fx_start,
	.instance_free = fx_free,
);
