/* SPDX-License-Identifier: MIT */
/*
 * satchel/metrics.h - counters and gauges for monitoring. Since ABI 1.3.
 *
 * The core keeps one registry of metric families for the whole process,
 * so a counter does not start again from zero when a reload replaces the
 * instance that counts: a family is found by name, and every instance that
 * registers the same name (with the same type and label name) counts into
 * the same values. The core counts its own (connections, messages, the
 * queue, AUTH failures) from events; the web module shows all of them as
 * Prometheus text on /metrics. Loop thread only, like the rest of the API.
 *
 * Names follow Prometheus: [a-z_:][a-z0-9_:]*, starting with "satchel_";
 * counters end in "_total". A family has no label or one (its name
 * [a-z_][a-z0-9_]*, not "le" or "quantile"); label values are short
 * printable text (at most SC_METRIC_LABEL_MAX bytes; other bytes become
 * '?'), at most SC_METRIC_SERIES_MAX of them per family - values past that
 * are dropped, with a warning once.
 */
#ifndef SATCHEL_METRICS_H
#define SATCHEL_METRICS_H

#include <satchel/module.h>

#define SC_METRIC_LABEL_MAX	128
#define SC_METRIC_SERIES_MAX	1000
/* sc_metric_history() keeps this many minutes. */
#define SC_METRIC_HISTORY_MINUTES 60

enum sc_metric_type {
	SC_METRIC_COUNTER = 1,	/* only goes up (sc_metric_add)          */
	SC_METRIC_GAUGE,	/* any value (sc_metric_set)              */
};

/* One instance's handle on a metric family (opaque). */
struct sc_metric;

/*
 * Registers a counter (or finds the family of that name: then type and
 * label must match) for inst, from instance_new or instance_start. help is
 * one line of text for the exposition; label is the label's name, or NULL
 * for a family without one. The handle is valid until inst's instance_free
 * has returned; the core frees it then (the family and its values live on
 * while another instance, or the core, holds it - across a reload they
 * do). NULL when the name, label or type is wrong (logged) or no registry
 * runs (satchelctl, unit tests): every call below accepts NULL and does
 * nothing then, so a module may go on without its metrics.
 */
SC_API struct sc_metric *sc_metric_counter_new(struct sc_instance *inst,
					       const char *name,
					       const char *help,
					       const char *label);

/* The same for a gauge. A value set through a handle goes away with the
 * handle (the module is gone: so is what it measured) unless another
 * handle set it since. */
SC_API struct sc_metric *sc_metric_gauge_new(struct sc_instance *inst,
					     const char *name,
					     const char *help,
					     const char *label);

/* A gauge computed when it is read: fn(m, data) runs on the loop before
 * every collection (sc_metrics_collect) and sets the values with
 * sc_metric_set(m, ...); the values it set the time before are cleared
 * first. It must be quick and must not block. */
typedef void (*sc_metric_fn)(struct sc_metric *m, void *data);
SC_API struct sc_metric *sc_metric_gauge_fn_new(struct sc_instance *inst,
						const char *name,
						const char *help,
						const char *label,
						sc_metric_fn fn, void *data);

/* Adds n (>= 0; anything else is ignored) to a counter. label_value: the
 * value of the family's label (NULL or "" for a family without one; a
 * labelled family needs one). */
SC_API void sc_metric_add(struct sc_metric *m, const char *label_value,
			  double n);

/* Sets a gauge (the last value set wins, whichever instance set it). */
SC_API void sc_metric_set(struct sc_metric *m, const char *label_value,
			  double value);

/* ---- reading (the web module) ---- */

/* One family as sc_metrics_collect() shows it: valid during the call
 * only. Fields may be appended (the core owns the struct). */
struct sc_metric_family {
	const char *name;
	const char *help;
	enum sc_metric_type type;
	const char *label;		/* NULL: no label                    */
	size_t n;			/* samples                           */
	const char *const *label_values;/* n of them ("" without a label)   */
	const double *values;		/* n of them                         */
};

typedef void (*sc_metrics_visit_fn)(const struct sc_metric_family *f,
				    void *data);

/* Runs the gauge callbacks, then calls fn for every family, in name order
 * (a family without samples too, with n 0); samples in the order their
 * label values first appeared. */
SC_API void sc_metrics_collect(sc_metrics_visit_fn fn, void *data);

/* How much counter name grew in each of the last n minutes (n at most
 * SC_METRIC_HISTORY_MINUTES), all its label values together: per_minute[0]
 * is the oldest minute, per_minute[n - 1] the current one (so far).
 * Minutes before the process started count 0. Returns n, or 0 when name is
 * not a counter. Kept by the core, so a reload does not clear it. */
SC_API size_t sc_metric_history(const char *name, double *per_minute,
				size_t n);

#endif
