/* SPDX-License-Identifier: MIT */
/* core/event.c - placeholder: not written yet. */
#include "core.h"
