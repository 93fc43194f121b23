/* SPDX-License-Identifier: MIT */
/* relay - placeholder: not written yet. */
#include <satchel/satchel.h>
