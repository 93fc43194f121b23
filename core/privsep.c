/* SPDX-License-Identifier: MIT */
/* core/privsep.c - placeholder: not written yet. */
#include "core.h"
