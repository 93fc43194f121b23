/* SPDX-License-Identifier: MIT */
/* tests/modules/fx_abi.c - fixture built for a future ABI major: the loader
 * must refuse it before running any of its code. */
#include <satchel/satchel.h>

SC_API const struct sc_module sc_module_fx_abi = {
	.abi_major = SC_ABI_MAJOR + 1, .abi_minor = 0,
	.struct_size = sizeof(struct sc_module),
	.signature = SC_MODULE_SIGNATURE,
	.name = "fx_abi",
	.version = "1",
};
