/* SPDX-License-Identifier: MIT */
/* core/log.c - placeholder: not written yet. */
#include "core.h"
