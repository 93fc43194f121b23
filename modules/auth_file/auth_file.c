/* SPDX-License-Identifier: MIT */
/* auth_file - placeholder: not written yet. */
#include <satchel/satchel.h>
