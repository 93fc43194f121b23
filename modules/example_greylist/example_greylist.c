/* SPDX-License-Identifier: MIT */
/* example_greylist - placeholder: not written yet. */
#include <satchel/satchel.h>
