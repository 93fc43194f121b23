/* SPDX-License-Identifier: MIT */
/* core/ctl_diag.c - placeholder: satchelctl connect and doctor. */
#include "satchelctl.h"
