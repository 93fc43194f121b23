/* SPDX-License-Identifier: MIT */
/* smtp - placeholder: not written yet. */
#include <satchel/satchel.h>
