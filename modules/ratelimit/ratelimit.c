/* SPDX-License-Identifier: MIT */
/* ratelimit - placeholder: not written yet. */
#include <satchel/satchel.h>
