/* SPDX-License-Identifier: MIT */
/*
 * tests/modules/fx_events.c - fixture module for the notify-only events
 * against the real satcheld: subscribes to the events named in `events`
 * and logs each one it gets with its fields, so a test can see which
 * events came, in which order, with what. Loop thread only.
 */
#include <string.h>
#include <satchel/satchel.h>

struct fxe_conf {
	struct sc_str_list events;
};

static const struct sc_config_key fxe_keys[] = {
	{ "events", SC_KEY_STR_LIST, offsetof(struct fxe_conf, events), NULL,
	  SC_KEY_REQUIRED | SC_KEY_NONEMPTY, "events to subscribe to (helo, "
	  "mail, rcpt, ...)", NULL, NULL, 0 },
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static void
fxe_event(const struct sc_event *ev, void *data)
{
	struct sc_instance *inst = data;

	sc_log_inst(SC_LOG_NOTICE, inst, "fx_events %s sender=%s rcpt=%s "
		    "text=%s user=%s", sc_event_name(ev->type),
		    ev->sender ? ev->sender : "-", ev->rcpt ? ev->rcpt : "-",
		    ev->text ? ev->text : "-", ev->user ? ev->user : "-");
}

static int
fxe_new(struct sc_instance *inst, const void *config, void **data_r,
	const char **error_r)
{
	(void)inst;
	(void)error_r;
	*data_r = (void *)config;
	return 0;
}

static int
fxe_start(struct sc_instance *inst, void *data, const char **error_r)
{
	const struct fxe_conf *conf = data;

	for (size_t i = 0; i < conf->events.n; i++) {
		enum sc_event_type t;

		for (t = 0; t < SC_EVENT_COUNT; t++)
			if (strcmp(sc_event_name(t), conf->events.v[i]) == 0)
				break;
		if (t == SC_EVENT_COUNT) {
			*error_r = "unknown event in `events`";
			return -1;
		}
		if (sc_event_subscribe(inst, t, fxe_event, inst) < 0) {
			*error_r = "cannot subscribe";
			return -1;
		}
	}
	return 0;
}

SC_MODULE(fx_events,
	.version = "1",
	.description = "test fixture: logs the events it subscribes to",
	.keys = fxe_keys,
	.config_size = sizeof(struct fxe_conf),
	.instance_new = fxe_new,
	.instance_start = fxe_start,
);
