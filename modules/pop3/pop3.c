/* SPDX-License-Identifier: MIT */
/* pop3 - placeholder: not written yet. */
#include <satchel/satchel.h>
