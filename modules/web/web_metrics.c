/* SPDX-License-Identifier: MIT */
/*
 * modules/web/web_metrics.c - /metrics: every family of the core's metric
 * registry (satchel/metrics.h: the core's own and what modules registered)
 * in the Prometheus text exposition format, version 0.0.4. Loop thread.
 */
#include "web_int.h"

#include <math.h>

/* put_value - a sample value as Prometheus writes floats */
static void
put_value(struct web_buf *b, double v)
{
	if (isnan(v))
		web_buf_puts(b, "NaN");
	else if (isinf(v))
		web_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
	else if (v == (double)(long long)v && fabs(v) < 1e15)
		web_buf_printf(b, "%lld", (long long)v);
	else
		web_buf_printf(b, "%.17g", v);
}

/* put_label - a label value with \ " and newline escaped */
static void
put_label(struct web_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			web_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			web_buf_puts(b, "\\n");
		else
			web_buf_add(b, s, 1);
	}
}

/* put_help - HELP text with \ and newline escaped */
static void
put_help(struct web_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			web_buf_puts(b, "\\\\");
		else if (*s == '\n')
			web_buf_puts(b, "\\n");
		else
			web_buf_add(b, s, 1);
	}
}

static void
put_family(const struct sc_metric_family *f, void *data)
{
	struct web_buf *b = data;

	web_buf_printf(b, "# HELP %s ", f->name);
	put_help(b, f->help);
	web_buf_printf(b, "\n# TYPE %s %s\n", f->name,
		       f->type == SC_METRIC_COUNTER ? "counter" : "gauge");
	for (size_t i = 0; i < f->n; i++) {
		web_buf_puts(b, f->name);
		if (f->label != NULL) {
			web_buf_printf(b, "{%s=\"", f->label);
			put_label(b, f->label_values[i]);
			web_buf_puts(b, "\"}");
		}
		web_buf_puts(b, " ");
		put_value(b, f->values[i]);
		web_buf_puts(b, "\n");
	}
}

void
web_metrics_page(struct web_inst *wi, struct web_reply *r)
{
	(void)wi;
	r->status = 200;
	r->type = "text/plain; version=0.0.4; charset=utf-8";
	sc_metrics_collect(put_family, &r->body);
}
