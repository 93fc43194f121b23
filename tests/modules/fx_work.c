/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/fx_work.c - fixture module for the pool-job lifetime tests
 * in check_module: instance_start submits a job (sc_work_submit_inst) that
 * sleeps; its done may chain more jobs. Every step appends a line to the
 * `trace` file, from the pool thread (work) or the loop thread (the rest).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <satchel/satchel.h>

struct fxw_conf {
	char *trace;
	char *tag;
	uint64_t sleep_ms;
	uint64_t chain;		/* jobs chained, each from the last done */
};

static const struct sc_config_key fxw_keys[] = {
	{ "trace", SC_KEY_PATH, offsetof(struct fxw_conf, trace), NULL,
	  SC_KEY_REQUIRED, "file the steps are appended to", NULL, NULL, 0 },
	{ "tag", SC_KEY_STR, offsetof(struct fxw_conf, tag), "x", 0,
	  "names this instance in the trace", NULL, NULL, 0 },
	{ "sleep_ms", SC_KEY_UINT, offsetof(struct fxw_conf, sleep_ms), "200",
	  0, "how long each job sleeps on the pool", NULL, NULL, 0 },
	{ "chain", SC_KEY_UINT, offsetof(struct fxw_conf, chain), "0", 0,
	  "further jobs, each submitted by the previous one's done", NULL,
	  NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

/* Instance data; the job reads it on the pool and in done, which is
 * exactly what must not outlive instance_free. */
struct fxw {
	struct sc_instance *inst;
	const struct fxw_conf *conf;
	uint64_t jobs_left;
	unsigned seq;
};

/* trace - one line into the trace file */
static void
trace(const struct fxw_conf *conf, const char *what, unsigned seq)
{
	FILE *f = fopen(conf->trace, "a");

	if (f == NULL)
		return;
	fprintf(f, "%s%u %s\n", what, seq, conf->tag);
	fclose(f);
}

static void
fxw_work(void *arg)
{
	struct fxw *fx = arg;
	struct timespec ts = {
		.tv_sec = (time_t)(fx->conf->sleep_ms / 1000),
		.tv_nsec = (long)(fx->conf->sleep_ms % 1000) * 1000000L,
	};

	trace(fx->conf, "work-start", fx->seq);
	nanosleep(&ts, NULL);
	trace(fx->conf, "work-end", fx->seq);
}

static void
fxw_done(void *arg)
{
	struct fxw *fx = arg;

	trace(fx->conf, "done", fx->seq);
	if (fx->jobs_left == 0)
		return;
	fx->jobs_left--;
	fx->seq++;
	if (sc_work_submit_inst(fx->inst, fxw_work, fxw_done, fx) < 0)
		trace(fx->conf, "submit-failed", fx->seq);
}

static int
fxw_new(struct sc_instance *inst, const void *config, void **data_r,
	const char **error_r)
{
	struct fxw *fx = calloc(1, sizeof(*fx));

	if (fx == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	fx->inst = inst;
	fx->conf = config;
	fx->jobs_left = fx->conf->chain;
	*data_r = fx;
	return 0;
}

static int
fxw_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct fxw *fx = data;

	if (sc_work_submit_inst(inst, fxw_work, fxw_done, fx) < 0) {
		*error_r = "cannot submit the job";
		return -1;
	}
	return 0;
}

/* fxw_free - also checks that a job submitted now is refused: nobody
 * would be left to run its done against */
static void
fxw_free(struct sc_instance *inst, void *data)
{
	struct fxw *fx = data;

	trace(fx->conf, "free", fx->seq);
	if (sc_work_submit_inst(inst, fxw_work, fxw_done, fx) < 0)
		trace(fx->conf, "refused", fx->seq);
	free(fx);
}

SC_MODULE(fx_work,
	.version = "1.0",
	.description = "check_module fixture: pool jobs of an instance",
	.keys = fxw_keys,
	.config_size = sizeof(struct fxw_conf),
	.instance_new = fxw_new,
	.instance_start = fxw_start,
	.instance_free = fxw_free,
);
