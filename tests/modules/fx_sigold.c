/* SPDX-License-Identifier: MIT */
/* tests/modules/fx_sigold.c - fixture as built with the ABI 1.1 headers,
 * whose signature carried macro names instead of the time_t and off_t
 * sizes: still loaded (with a warning), the other sizes being ours. */
#include <satchel/satchel.h>

#define STR2(x) #x
#define STR(x) STR2(x)

SC_API const struct sc_module sc_module_fx_sigold = {
	.abi_major = 1, .abi_minor = 1,
	.struct_size = sizeof(struct sc_module),
	.signature = "p" STR(__SIZEOF_POINTER__) "l" STR(__SIZEOF_LONG__)
		"t__SIZEOF_TIME_T__o__SIZEOF_OFF_T__z" STR(__SIZEOF_SIZE_T__),
	.name = "fx_sigold",
	.version = "1",
};
