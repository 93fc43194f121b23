/* SPDX-License-Identifier: MIT */
/* tests/modules/fx_fail.c - fixture whose instance_new fails: start-up must
 * stop with its message and tear down what was created. */
#include <satchel/satchel.h>

static int
fail_new(struct sc_instance *inst, const void *config, void **data_r,
	 const char **error_r)
{
	(void)inst;
	(void)config;
	(void)data_r;
	*error_r = "fixture refuses to start";
	return -1;
}

SC_MODULE(fx_fail,
	.version = "1",
	.instance_new = fail_new,
);
