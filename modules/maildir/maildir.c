/* SPDX-License-Identifier: MIT */
/* maildir - placeholder: not written yet. */
#include <satchel/satchel.h>
