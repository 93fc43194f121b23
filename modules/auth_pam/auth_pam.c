/* SPDX-License-Identifier: MIT */
/* auth_pam - placeholder: not written yet. */
#include <satchel/satchel.h>
