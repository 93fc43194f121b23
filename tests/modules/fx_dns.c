/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/fx_dns.c - fixture module for the DNS lifetime tests
 * against the real satcheld: a timer starts one lookup `start_ms` after
 * instance_start - outside any hook, bound to the instance
 * (sc_dns_resolve_inst) - and another timer may cancel it `cancel_ms`
 * after the start. The answer is logged with the instance's tag, read
 * from the instance's data: a core that frees the instance (and unloads
 * the module) before the answer comes is caught (crash, or a sanitizer
 * report). Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <satchel/satchel.h>

struct fxd_conf {
	char *name;
	int type;
	uint64_t start_ms;
	uint64_t cancel_ms;
};

static const int fxd_types[] = { SC_DNS_A, SC_DNS_AAAA, SC_DNS_MX,
				 SC_DNS_PTR };

static const struct sc_config_key fxd_keys[] = {
	{ "lookup", SC_KEY_STR, offsetof(struct fxd_conf, name), NULL,
	  SC_KEY_REQUIRED, "the name looked up", NULL, NULL, 0 },
	{ "type", SC_KEY_ENUM, offsetof(struct fxd_conf, type), "a", 0,
	  "the record type", "a|aaaa|mx|ptr", NULL, 0 },
	{ "start_ms", SC_KEY_UINT, offsetof(struct fxd_conf, start_ms), "0",
	  0, "when the timer starts the lookup, after instance_start",
	  NULL, NULL, 0 },
	{ "cancel_ms", SC_KEY_UINT, offsetof(struct fxd_conf, cancel_ms), "0",
	  0, "cancel the lookup this long after its start; 0 = never",
	  NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

struct fxd {
	struct sc_instance *inst;
	const struct fxd_conf *conf;
	char *tag;			/* heap, like any instance state   */
	struct sc_timer *start_timer;
	struct sc_timer *cancel_timer;
	struct sc_dns_query *query;	/* while the lookup is pending     */
};

static void
fxd_answer(const struct sc_dns_result *res, void *arg)
{
	struct fxd *fx = arg;
	char rrs[1024] = "";
	size_t off = 0;

	fx->query = NULL;
	for (size_t i = 0; i < res->n && off < sizeof(rrs); i++) {
		const struct sc_dns_rr *rr = &res->rr[i];
		int n = snprintf(rrs + off, sizeof(rrs) - off, " %s",
				 rr->addr[0] != '\0' ? rr->addr : rr->name);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	sc_log_notice("fx_dns %s: answer for %s: status %d, %zu record(s):%s",
		      fx->tag, fx->conf->name, (int)res->status, res->n, rrs);
}

static void
fxd_cancel(struct sc_timer *t, void *arg)
{
	struct fxd *fx = arg;

	(void)t;
	if (fx->query == NULL)
		return;
	sc_dns_cancel(fx->query);
	fx->query = NULL;
	sc_log_notice("fx_dns %s: lookup of %s cancelled", fx->tag,
		      fx->conf->name);
}

static void
fxd_start_lookup(struct sc_timer *t, void *arg)
{
	struct fxd *fx = arg;

	(void)t;
	if (sc_dns_resolve_inst(fx->inst, fx->conf->name,
				fxd_types[fx->conf->type], fxd_answer, fx,
				&fx->query) < 0) {
		sc_log_error("fx_dns %s: cannot start the lookup of %s",
			     fx->tag, fx->conf->name);
		return;
	}
	sc_log_notice("fx_dns %s: lookup of %s started", fx->tag,
		      fx->conf->name);
	if (fx->conf->cancel_ms > 0)
		sc_timer_start(fx->cancel_timer, fx->conf->cancel_ms, 0);
}

static int
fxd_new(struct sc_instance *inst, const void *config, void **data_r,
	const char **error_r)
{
	struct fxd *fx = calloc(1, sizeof(*fx));

	if (fx == NULL || (fx->tag = strdup(sc_instance_name(inst))) == NULL) {
		free(fx);
		*error_r = "out of memory";
		return -1;
	}
	fx->inst = inst;
	fx->conf = config;
	*data_r = fx;
	return 0;
}

static int
fxd_start(struct sc_instance *inst, void *data, const char **error_r)
{
	struct fxd *fx = data;

	(void)inst;
	fx->start_timer = sc_timer_new(fxd_start_lookup, fx);
	fx->cancel_timer = sc_timer_new(fxd_cancel, fx);
	if (fx->start_timer == NULL || fx->cancel_timer == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	sc_timer_start(fx->start_timer, fx->conf->start_ms, 0);
	return 0;
}

/* fxd_free - the core frees the instance only once no lookup of it is
 * pending, so a query left here is the bug the tests look for */
static void
fxd_free(struct sc_instance *inst, void *data)
{
	struct fxd *fx = data;

	(void)inst;
	sc_log_notice("fx_dns %s: instance freed%s", fx->tag,
		      fx->query != NULL ? " WITH A LOOKUP PENDING" : "");
	sc_timer_free(&fx->start_timer);
	sc_timer_free(&fx->cancel_timer);
	free(fx->tag);
	free(fx);
}

SC_MODULE(fx_dns,
	.version = "1.0",
	.description = "test fixture: one DNS lookup from a timer",
	.keys = fxd_keys,
	.config_size = sizeof(struct fxd_conf),
	.instance_new = fxd_new,
	.instance_start = fxd_start,
	.instance_free = fxd_free,
);
