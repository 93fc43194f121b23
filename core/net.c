/* SPDX-License-Identifier: MIT */
/* core/net.c - placeholder: not written yet. */
#include "core.h"
