/* SPDX-License-Identifier: MIT */
/* core/config_keys.c - placeholder: not written yet. */
#include "core.h"
