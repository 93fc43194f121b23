/* SPDX-License-Identifier: MIT */
/* pop_before_smtp - placeholder: not written yet. */
#include <satchel/satchel.h>
