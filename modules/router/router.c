/* SPDX-License-Identifier: MIT */
/* router - placeholder: not written yet. */
#include <satchel/satchel.h>
