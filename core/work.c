/* SPDX-License-Identifier: MIT */
/* core/work.c - placeholder: not written yet. */
#include "core.h"
