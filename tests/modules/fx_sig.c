/* SPDX-License-Identifier: MIT */
/* tests/modules/fx_sig.c - fixture with a foreign build signature (as if
 * built for 32-bit types): the loader must refuse it. */
#include <satchel/satchel.h>

SC_API const struct sc_module sc_module_fx_sig = {
	.abi_major = SC_ABI_MAJOR, .abi_minor = SC_ABI_MINOR,
	.struct_size = sizeof(struct sc_module),
	.signature = "p4l4t4o4z4",
	.name = "fx_sig",
	.version = "1",
};
