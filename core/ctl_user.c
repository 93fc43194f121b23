/* SPDX-License-Identifier: MIT */
/* core/ctl_user.c - placeholder: not written yet. */
#include "core.h"
