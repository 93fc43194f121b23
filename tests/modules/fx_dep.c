/* SPDX-License-Identifier: MIT */
/* tests/modules/fx_dep.c - fixture that depends on fx_good. */
#include <satchel/satchel.h>

static const char *const dep_depends[] = { "fx_good", NULL };

SC_MODULE(fx_dep,
	.version = "1",
	.depends = dep_depends,
);
