/* SPDX-License-Identifier: MIT */
/* core/hook.c - placeholder: not written yet. */
#include "core.h"
