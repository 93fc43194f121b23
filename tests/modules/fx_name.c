/* SPDX-License-Identifier: MIT */
/* tests/modules/fx_name.c - fixture whose descriptor symbol matches the
 * file but declares another name. */
#include <satchel/satchel.h>

SC_API const struct sc_module sc_module_fx_name = {
	SC_MODULE_HEADER,
	.name = "fx_renamed",
	.version = "1",
};
