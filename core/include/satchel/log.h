/* SPDX-License-Identifier: MIT */
/*
 * satchel/log.h - logging for modules.
 *
 * Goes to stderr in the foreground (-f) and to syslog otherwise. The
 * session variants prefix the session id so one conversation can be
 * followed with grep. Modules never exit: they log and return errors.
 */
#ifndef SATCHEL_LOG_H
#define SATCHEL_LOG_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sc_log_level {
	SC_LOG_DEBUG = 0,
	SC_LOG_INFO,
	SC_LOG_NOTICE,
	SC_LOG_WARNING,
	SC_LOG_ERROR,
};

struct sc_session;

/* Logs one line at level; a trailing newline is not needed. The only
 * sc_ function a pool thread's work may call (see work.h). */
SC_API void sc_log(enum sc_log_level level, const char *fmt, ...)
	SC_PRINTF(2, 3);
/* The same, prefixed with the session id ("[3f2a9c1d] "); s may be
 * NULL. */
SC_API void sc_log_session(enum sc_log_level level,
			   const struct sc_session *s, const char *fmt, ...)
	SC_PRINTF(3, 4);
/* Since ABI 1.2. The same, prefixed with the instance name ("20-smtp: "),
 * so two instances of one module can be told apart; inst may be NULL. */
struct sc_instance;
SC_API void sc_log_inst(enum sc_log_level level,
			const struct sc_instance *inst, const char *fmt, ...)
	SC_PRINTF(3, 4);
/* True when a message at level would be written (skip costly formatting). */
SC_API bool sc_log_enabled(enum sc_log_level level);

#define sc_log_debug(...)   sc_log(SC_LOG_DEBUG, __VA_ARGS__)
#define sc_log_info(...)    sc_log(SC_LOG_INFO, __VA_ARGS__)
#define sc_log_notice(...)  sc_log(SC_LOG_NOTICE, __VA_ARGS__)
#define sc_log_warning(...) sc_log(SC_LOG_WARNING, __VA_ARGS__)
#define sc_log_error(...)   sc_log(SC_LOG_ERROR, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif
