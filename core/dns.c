/* SPDX-License-Identifier: MIT */
/* core/dns.c - placeholder: not written yet. */
#include "core.h"
