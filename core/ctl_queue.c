/* SPDX-License-Identifier: MIT */
/* core/ctl_queue.c - placeholder: not written yet. */
#include "core.h"
