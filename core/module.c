/* SPDX-License-Identifier: MIT */
/* core/module.c - placeholder: not written yet. */
#include "core.h"
