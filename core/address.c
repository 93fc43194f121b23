/* SPDX-License-Identifier: MIT */
/* core/address.c - placeholder: not written yet. */
#include "core.h"
