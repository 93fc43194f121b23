/* SPDX-License-Identifier: MIT */
/* core/queue_runner.c - placeholder: not written yet. */
#include "core.h"
