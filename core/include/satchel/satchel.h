/* SPDX-License-Identifier: MIT */
/* satchel/satchel.h - the whole module API in one include. */
#ifndef SATCHEL_SATCHEL_H
#define SATCHEL_SATCHEL_H

#include <satchel/version.h>
#include <satchel/module.h>
#include <satchel/log.h>
#include <satchel/config.h>
#include <satchel/hook.h>
#include <satchel/event.h>
#include <satchel/session.h>
#include <satchel/net.h>
#include <satchel/queue.h>
#include <satchel/work.h>
#include <satchel/dns.h>
#include <satchel/store.h>
#include <satchel/address.h>
#include <satchel/privsep.h>
#include <satchel/sasl.h>
#include <satchel/message.h>
#include <satchel/metrics.h>

#endif
