/* SPDX-License-Identifier: MIT */
/* tests/modules/fx_nosym.c - fixture exporting a descriptor under another
 * name: sc_module_fx_nosym is missing. */
#include <satchel/satchel.h>

SC_MODULE(fx_other,
	.version = "1",
);
