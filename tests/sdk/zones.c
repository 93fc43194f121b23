/* SPDX-License-Identifier: MIT */
/*
 * tests/sdk/zones.c - a module whose config the core checks before any of
 * its code runs, built out of tree by tests/test_sdk.sh: constraints in the
 * key table (a non-empty list of host names, a duration range) and a
 * validate callback for the rule across keys (`primary` must be one of
 * `zones`). Built with -DZONES_RESERVED_KEY as zonesbad.so, it declares a
 * key `name`, which the core keeps for itself: refused at load.
 */
#include <satchel/satchel.h>

#include <string.h>

struct zones_conf {
	struct sc_str_list zones;
	char *primary;
	uint64_t ttl_ms;
	char *name;
};

static const struct sc_config_key zones_keys[] = {
	{ "zones", SC_KEY_STR_LIST, offsetof(struct zones_conf, zones), NULL,
	  SC_KEY_REQUIRED | SC_KEY_NONEMPTY | SC_KEY_HOSTNAME,
	  "the DNS zones served", NULL, NULL, 0 },
	{ "primary", SC_KEY_STR, offsetof(struct zones_conf, primary), NULL,
	  SC_KEY_HOSTNAME, "one of zones", NULL, NULL, 0 },
	{ "ttl", SC_KEY_DURATION, offsetof(struct zones_conf, ttl_ms), "1h", 0,
	  "how long answers live", SC_KEY_RANGE("1s", "1d"), NULL, 0 },
#ifdef ZONES_RESERVED_KEY
	{ "name", SC_KEY_STR, offsetof(struct zones_conf, name), NULL, 0,
	  "a key the core reserves", NULL, NULL, 0 },
#endif
	{ NULL, 0, 0, NULL, 0, NULL, NULL, NULL, 0 }
};

static int
zones_validate(const void *config, struct sc_config_check *check)
{
	const struct zones_conf *c = config;

	if (c->primary == NULL)
		return 0;
	for (size_t i = 0; i < c->zones.n; i++)
		if (strcmp(c->zones.v[i], c->primary) == 0)
			return 0;
	return sc_config_check_error(check, "primary", "'%s' is not one of "
				     "the zones", c->primary);
}

static int
zones_new(struct sc_instance *inst, const void *config, void **data_r,
	  const char **error_r)
{
	(void)error_r;
	*data_r = (void *)config;
	sc_log_inst(SC_LOG_NOTICE, inst, "serving %zu zone(s)",
		    ((const struct zones_conf *)config)->zones.n);
	return 0;
}

#define ZONES_DESCRIPTOR \
	.version = "0.0.1", \
	.description = "SDK test module: config constraints and validate", \
	.keys = zones_keys, \
	.config_size = sizeof(struct zones_conf), \
	.instance_new = zones_new, \
	.validate = zones_validate

#ifdef ZONES_RESERVED_KEY
SC_MODULE(zonesbad, ZONES_DESCRIPTOR);
#else
SC_MODULE(zones, ZONES_DESCRIPTOR);
#endif
