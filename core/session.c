/* SPDX-License-Identifier: MIT */
/* core/session.c - placeholder: not written yet. */
#include "core.h"
