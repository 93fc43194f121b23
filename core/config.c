/* SPDX-License-Identifier: MIT */
/* core/config.c - placeholder: not written yet. */
#include "core.h"
