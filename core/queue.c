/* SPDX-License-Identifier: MIT */
/* core/queue.c - placeholder: not written yet. */
#include "core.h"
