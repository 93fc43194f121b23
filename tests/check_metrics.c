/* SPDX-License-Identifier: MIT */
/*
 * tests/check_metrics.c - Check tests of core/metrics.c: the core's
 * families, counters shared by the instances of a name across a reload,
 * gauge values going with the handle that set them, gauge callbacks, the
 * name rules, label values, the series bound, the per-minute history and
 * the counting of events.
 */
#include "core.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static struct {
	struct sc_core core;
	unsigned fn_calls;
} t;

static void
setup(void)
{
	char *err = NULL;

	memset(&t, 0, sizeof(t));
	t.core.loop = uv_default_loop();
	sc_core = &t.core;
	ck_assert_int_eq(sc_metrics_init(&err), 0);
	ck_assert_ptr_null(err);
}

static void
teardown(void)
{
	sc_metrics_deinit();
	ck_assert_ptr_null(t.core.metrics);
	sc_core = NULL;
}

/* What one collection showed of one family. */
struct seen {
	const char *want;
	bool found;
	enum sc_metric_type type;
	char label[64];
	size_t n;
	char labels[8][SC_METRIC_LABEL_MAX + 1];
	double values[8];
	char order[4096];		/* every family name, in order */
};

static void
visit(const struct sc_metric_family *f, void *data)
{
	struct seen *s = data;

	strncat(s->order, f->name, sizeof(s->order) - strlen(s->order) - 2);
	strcat(s->order, " ");
	if (strcmp(f->name, s->want) != 0)
		return;
	s->found = true;
	s->type = f->type;
	snprintf(s->label, sizeof(s->label), "%s", f->label ? f->label : "");
	s->n = f->n;
	for (size_t i = 0; i < f->n && i < 8; i++) {
		snprintf(s->labels[i], sizeof(s->labels[i]), "%s",
			 f->label_values[i]);
		s->values[i] = f->values[i];
	}
}

static struct seen
collect(const char *name)
{
	struct seen s;

	memset(&s, 0, sizeof(s));
	s.want = name;
	sc_metrics_collect(visit, &s);
	return s;
}

/* value - the sample of label value lv (NaN when missing) */
static double
value(const struct seen *s, const char *lv)
{
	for (size_t i = 0; i < s->n && i < 8; i++)
		if (strcmp(s->labels[i], lv) == 0)
			return s->values[i];
	return NAN;
}

START_TEST(test_core_families)
{
	struct seen s = collect("satchel_build_info");
	static const char *const names[] = {
		"satchel_connections_current", "satchel_connections_limit",
		"satchel_messages_accepted_total",
		"satchel_messages_delivered_total",
		"satchel_messages_deferred_total",
		"satchel_messages_bounced_total", "satchel_queue_messages",
		"satchel_auth_failures_total", "satchel_limit_hits_total",
	};
	const char *prev = "";

	ck_assert(s.found);
	ck_assert_int_eq(s.type, SC_METRIC_GAUGE);
	ck_assert_str_eq(s.label, "version");
	ck_assert(value(&s, SC_VERSION) == 1);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char w[130];

		snprintf(w, sizeof(w), "%s ", names[i]);
		ck_assert_msg(strstr(s.order, w) != NULL, "%s missing",
			      names[i]);
	}
	/* in name order */
	for (char *p = s.order, *sp; (sp = strchr(p, ' ')) != NULL;
	     p = sp + 1) {
		*sp = '\0';
		ck_assert_msg(strcmp(prev, p) < 0, "%s after %s", p, prev);
		prev = p;
	}
	s = collect("satchel_messages_delivered_total");
	ck_assert(value(&s, "local") == 0 && value(&s, "remote") == 0);
	s = collect("satchel_connections_current");
	ck_assert(value(&s, "smtp") == 0);
	s = collect("satchel_limit_hits_total");
	ck_assert(s.found);
	ck_assert_uint_eq(s.n, 0);
}
END_TEST

/* A reload: the new instance registers the name while the old one still
 * holds it; the count goes on from where it was. */
START_TEST(test_counter_survives_reload)
{
	struct sc_instance old = { 0 }, new = { 0 };
	struct sc_metric *a, *b;
	struct seen s;

	a = sc_metric_counter_new(&old, "satchel_test_things_total",
				  "things", "kind");
	ck_assert_ptr_nonnull(a);
	sc_metric_add(a, "x", 2);
	sc_metric_add(a, "y", 1);
	sc_metric_add(a, "x", 0.5);
	sc_metric_add(a, "x", -1);	/* ignored */
	sc_metric_add(a, "x", INFINITY);	/* ignored */
	sc_metric_add(a, NULL, 1);	/* a labelled family needs a value */
	b = sc_metric_counter_new(&new, "satchel_test_things_total", "other",
				  "kind");
	ck_assert_ptr_nonnull(b);
	sc_metrics_instance_gone(&old);
	sc_metric_add(b, "x", 1);
	s = collect("satchel_test_things_total");
	ck_assert(s.found);
	ck_assert_uint_eq(s.n, 2);
	ck_assert_str_eq(s.labels[0], "x");	/* first seen first */
	ck_assert(s.values[0] == 3.5);
	ck_assert(value(&s, "y") == 1);
	/* the last holder gone: the family goes */
	sc_metrics_instance_gone(&new);
	s = collect("satchel_test_things_total");
	ck_assert(!s.found);
}
END_TEST

START_TEST(test_gauge_owner)
{
	struct sc_instance a = { 0 }, b = { 0 };
	struct sc_metric *ga, *gb, *lim;
	struct seen s;

	ga = sc_metric_gauge_new(&a, "satchel_test_level", "level", NULL);
	gb = sc_metric_gauge_new(&b, "satchel_test_level", "level", NULL);
	ck_assert_ptr_nonnull(ga);
	ck_assert_ptr_nonnull(gb);
	sc_metric_set(ga, NULL, 5);
	sc_metric_set(gb, NULL, 7);	/* the last set wins */
	s = collect("satchel_test_level");
	ck_assert_uint_eq(s.n, 1);
	ck_assert(s.values[0] == 7);
	sc_metrics_instance_gone(&a);	/* b set it last: it stays */
	s = collect("satchel_test_level");
	ck_assert(s.n == 1 && s.values[0] == 7);
	sc_metrics_instance_gone(&b);
	ck_assert(!collect("satchel_test_level").found);

	/* a family the core holds keeps existing, without the value of the
	 * module that went (ratelimit removed by a reload) */
	lim = sc_metric_gauge_new(&a, "satchel_connections_limit", "x", NULL);
	ck_assert_ptr_nonnull(lim);
	sc_metric_set(lim, NULL, 100);
	s = collect("satchel_connections_limit");
	ck_assert(s.n == 1 && s.values[0] == 100);
	sc_metrics_instance_gone(&a);
	s = collect("satchel_connections_limit");
	ck_assert(s.found);
	ck_assert_uint_eq(s.n, 0);
}
END_TEST

static void
gauge_fn(struct sc_metric *m, void *data)
{
	int *round = data;

	t.fn_calls++;
	/* a label value set in one round only must not linger */
	sc_metric_set(m, *round == 0 ? "first" : "second", *round + 10);
}

START_TEST(test_gauge_fn)
{
	struct sc_instance a = { 0 };
	int round = 0;
	struct seen s;

	ck_assert_ptr_null(sc_metric_gauge_fn_new(&a, "satchel_test_fn",
						  "fn", "which", NULL, NULL));
	ck_assert_ptr_nonnull(sc_metric_gauge_fn_new(&a, "satchel_test_fn",
						     "fn", "which", gauge_fn,
						     &round));
	s = collect("satchel_test_fn");
	ck_assert_uint_eq(t.fn_calls, 1);
	ck_assert(s.n == 1 && value(&s, "first") == 10);
	round = 1;
	s = collect("satchel_test_fn");
	ck_assert_uint_eq(t.fn_calls, 2);
	ck_assert_uint_eq(s.n, 1);
	ck_assert(value(&s, "second") == 11);
	sc_metrics_instance_gone(&a);
	ck_assert(!collect("satchel_test_fn").found);
	ck_assert_uint_eq(t.fn_calls, 2);
}
END_TEST

START_TEST(test_names)
{
	struct sc_instance a = { 0 };
	static const char *const bad_counters[] = {
		"satchel_things", "things_total", "satchel_Things_total",
		"satchel_a-b_total", "satchel_", "", "satchel_é_total",
	};

	for (size_t i = 0; i < sizeof(bad_counters) / sizeof(bad_counters[0]);
	     i++)
		ck_assert_msg(sc_metric_counter_new(&a, bad_counters[i], "",
						    NULL) == NULL,
			      "accepted %s", bad_counters[i]);
	ck_assert_ptr_null(sc_metric_counter_new(&a, NULL, "", NULL));
	ck_assert_ptr_null(sc_metric_gauge_new(&a, "satchel_x", "", "le"));
	ck_assert_ptr_null(sc_metric_gauge_new(&a, "satchel_x", "", "__a"));
	ck_assert_ptr_null(sc_metric_gauge_new(&a, "satchel_x", "", "1a"));
	ck_assert_ptr_null(sc_metric_gauge_new(&a, "satchel_x", "", "A"));
	ck_assert_ptr_null(sc_metric_gauge_new(NULL, "satchel_x", "", NULL));
	/* the core's names keep their type and label */
	ck_assert_ptr_null(sc_metric_gauge_new(&a,
		"satchel_messages_accepted_total", "", NULL));
	ck_assert_ptr_null(sc_metric_counter_new(&a,
		"satchel_limit_hits_total", "", "other"));
	ck_assert_ptr_null(sc_metric_counter_new(&a,
		"satchel_limit_hits_total", "", NULL));
	ck_assert_ptr_nonnull(sc_metric_counter_new(&a,
		"satchel_limit_hits_total", "", "limit"));
	/* a gauge name need not end in _total; a counter's must */
	ck_assert_ptr_nonnull(sc_metric_gauge_new(&a, "satchel_x:y_1", "",
						  NULL));
	/* NULL handles are accepted and do nothing */
	sc_metric_add(NULL, "a", 1);
	sc_metric_set(NULL, "a", 1);
	sc_metrics_instance_gone(&a);
}
END_TEST

START_TEST(test_label_values)
{
	struct sc_instance a = { 0 };
	struct sc_metric *m = sc_metric_counter_new(&a, "satchel_t_total",
						    "help\nline", "l");
	char big[300];
	struct seen s;
	unsigned i;

	ck_assert_ptr_nonnull(m);
	sc_metric_add(m, "\x01" "ab\xff\"", 1);
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	sc_metric_add(m, big, 1);
	s = collect("satchel_t_total");
	ck_assert_uint_eq(s.n, 2);
	ck_assert_str_eq(s.labels[0], "?ab?\"");
	ck_assert_uint_eq(strlen(s.labels[1]), SC_METRIC_LABEL_MAX);
	/* the bound on label values */
	for (i = 0; i < SC_METRIC_SERIES_MAX + 10; i++) {
		char lv[16];

		snprintf(lv, sizeof(lv), "v%u", i);
		sc_metric_add(m, lv, 1);
	}
	s = collect("satchel_t_total");
	ck_assert_uint_eq(s.n, SC_METRIC_SERIES_MAX);
	sc_metrics_instance_gone(&a);
}
END_TEST

START_TEST(test_history)
{
	struct sc_instance a = { 0 };
	struct sc_metric *m = sc_metric_counter_new(&a, "satchel_h_total",
						    "", "l");
	double h[SC_METRIC_HISTORY_MINUTES];

	ck_assert_ptr_nonnull(m);
	sc_metric_add(m, "a", 2);
	sc_metric_add(m, "b", 3);
	ck_assert_uint_eq(sc_metric_history("satchel_h_total", h, 60), 60);
	ck_assert(h[59] == 5);
	for (int i = 0; i < 59; i++)
		ck_assert(h[i] == 0);
	ck_assert_uint_eq(sc_metric_history("satchel_h_total", h, 3), 3);
	ck_assert(h[2] == 5 && h[0] == 0);
	ck_assert_uint_eq(sc_metric_history("satchel_h_total", h, 61), 0);
	ck_assert_uint_eq(sc_metric_history("satchel_h_total", h, 0), 0);
	ck_assert_uint_eq(sc_metric_history("satchel_nope_total", h, 5), 0);
	ck_assert_uint_eq(sc_metric_history("satchel_queue_messages", h, 5),
			  0);
	sc_metrics_instance_gone(&a);
}
END_TEST

START_TEST(test_events)
{
	struct sc_event ev = { .type = SC_EVENT_QUEUED };
	struct seen s;
	double h[2];

	sc_metrics_event(&ev);
	sc_metrics_event(&ev);
	ev.type = SC_EVENT_AUTH_FAILED;
	ev.protocol = "pop3";
	sc_metrics_event(&ev);
	ev.type = SC_EVENT_CONNECT;
	sc_metrics_event(&ev);
	ev.type = SC_EVENT_DELIVERED;
	ev.queue_id = "0000000000000000";
	ev.rcpt = "a@example.test";
	sc_metrics_event(&ev);		/* not in the queue: kind unknown */
	s = collect("satchel_messages_accepted_total");
	ck_assert(s.n == 1 && s.values[0] == 2);
	ck_assert_uint_eq(sc_metric_history("satchel_messages_accepted_total",
					    h, 2), 2);
	ck_assert(h[1] == 2);
	s = collect("satchel_auth_failures_total");
	ck_assert(s.n == 1 && s.values[0] == 1);
	s = collect("satchel_connections_total");
	ck_assert(value(&s, "pop3") == 1);
	s = collect("satchel_messages_delivered_total");
	ck_assert(value(&s, "unknown") == 1 && value(&s, "local") == 0);
	/* without a registry nothing is counted, nothing breaks */
	sc_metrics_deinit();
	sc_metrics_event(&ev);
	ck_assert_ptr_null(sc_metric_counter_new(&(struct sc_instance){ 0 },
						 "satchel_a_total", "", NULL));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("registry");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_core_families);
	tcase_add_test(tc, test_counter_survives_reload);
	tcase_add_test(tc, test_gauge_owner);
	tcase_add_test(tc, test_gauge_fn);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_label_values);
	tcase_add_test(tc, test_history);
	tcase_add_test(tc, test_events);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
