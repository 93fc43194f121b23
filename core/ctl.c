/* SPDX-License-Identifier: MIT */
/* core/ctl.c - placeholder: not written yet. */
#include "core.h"
