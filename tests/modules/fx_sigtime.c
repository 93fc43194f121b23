/* SPDX-License-Identifier: MIT */
/* tests/modules/fx_sigtime.c - fixture whose build signature matches the
 * core's in everything but the size of time_t (as if built with another
 * -D_TIME_BITS): the loader must refuse it and name time_t. */
#include <satchel/satchel.h>

#define OTHER_TIME_T (sizeof(time_t) == 8 ? 4 : 8)

SC_API const struct sc_module sc_module_fx_sigtime = {
	.abi_major = SC_ABI_MAJOR, .abi_minor = SC_ABI_MINOR,
	.struct_size = sizeof(struct sc_module),
	.signature = (const char[]){
		'p', SC_SIGNATURE_SIZE(sizeof(void *)),
		'l', SC_SIGNATURE_SIZE(sizeof(long)),
		't', SC_SIGNATURE_SIZE(OTHER_TIME_T),
		'o', SC_SIGNATURE_SIZE(sizeof(off_t)),
		'z', SC_SIGNATURE_SIZE(sizeof(size_t)), '\0' },
	.name = "fx_sigtime",
	.version = "1",
};
