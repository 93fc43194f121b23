/* SPDX-License-Identifier: MIT */
/*
 * core/log.c - sc_log_*, sc_fatal and sc_panic.
 *
 * Lines go to stderr in the foreground (-f) and to syslog otherwise. Called
 * on the loop thread and, for sc_log only, from thread-pool workers; one
 * write(2) per line keeps concurrent lines whole.
 */
#include "core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

/*
 * The log settings are the one piece of process state kept outside struct
 * sc_core: logging must work before the core context exists (config
 * errors), in satchelctl and in the unit tests, which have no sc_core.
 * They are written once at start-up and on reload, on the loop thread.
 */
static struct {
	bool foreground;	/* stderr instead of syslog */
	bool syslog_open;
	int level;
} log_state = { true, false, SC_LOG_INFO };

static const char *const level_names[] = {
	"debug", "info", "notice", "warning", "error",
};

static const int level_syslog[] = {
	LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARNING, LOG_ERR,
};

/* sc_log_init - choose stderr or syslog and the minimum level */
void
sc_log_init(bool foreground, int level)
{
	log_state.foreground = foreground;
	sc_log_set_level(level);
	if (!foreground && !log_state.syslog_open) {
		openlog("satcheld", LOG_PID | LOG_NDELAY, LOG_MAIL);
		log_state.syslog_open = true;
	}
}

void
sc_log_set_level(int level)
{
	if (level < SC_LOG_DEBUG)
		level = SC_LOG_DEBUG;
	if (level > SC_LOG_ERROR)
		level = SC_LOG_ERROR;
	log_state.level = level;
}

bool
sc_log_enabled(enum sc_log_level level)
{
	return (int)level >= log_state.level;
}

/* log_write - format one line and hand it to stderr or syslog */
static void
log_write(int level, const char *prefix, const char *fmt, va_list ap)
{
	char line[2048];
	size_t len;
	int n;

	if (level < SC_LOG_DEBUG || level > SC_LOG_ERROR)
		level = SC_LOG_ERROR;
	if (log_state.foreground)
		n = snprintf(line, sizeof(line), "%s: %s: %s",
			     program_invocation_short_name,
			     level_names[level], prefix);
	else
		n = snprintf(line, sizeof(line), "%s", prefix);
	if (n < 0)
		return;
	len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	if (n > 0)
		len += (size_t)n < sizeof(line) - len ?
			(size_t)n : sizeof(line) - len - 1;
	/* Control characters from the network must not forge log lines. */
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];
		if (ch < 0x20 || ch == 0x7f)
			line[i] = '?';
	}
	if (log_state.foreground) {
		if (len >= sizeof(line) - 1)
			len = sizeof(line) - 2;
		line[len++] = '\n';
		/* One write per line: lines from threads never interleave.
		 * A failed log write has nowhere to be reported. */
		ssize_t w = write(STDERR_FILENO, line, len);
		(void)w;
	} else {
		syslog(level_syslog[level], "%s", line);
	}
}

void
sc_log(enum sc_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!sc_log_enabled(level))
		return;
	va_start(ap, fmt);
	log_write((int)level, "", fmt, ap);
	va_end(ap);
}

void
sc_log_session(enum sc_log_level level, const struct sc_session *s,
	       const char *fmt, ...)
{
	char prefix[40] = "";
	va_list ap;

	if (!sc_log_enabled(level))
		return;
	if (s != NULL)
		snprintf(prefix, sizeof(prefix), "[%s] ", sc_session_id(s));
	va_start(ap, fmt);
	log_write((int)level, prefix, fmt, ap);
	va_end(ap);
}

void
sc_log_inst(enum sc_log_level level, const struct sc_instance *inst,
	    const char *fmt, ...)
{
	char prefix[160] = "";
	va_list ap;

	if (!sc_log_enabled(level))
		return;
	if (inst != NULL)
		snprintf(prefix, sizeof(prefix), "%s: ",
			 sc_instance_name(inst));
	va_start(ap, fmt);
	log_write((int)level, prefix, fmt, ap);
	va_end(ap);
}

void
sc_fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(SC_LOG_ERROR, "fatal: ", fmt, ap);
	va_end(ap);
	exit(1);
}

void
sc_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(SC_LOG_ERROR, "panic: ", fmt, ap);
	va_end(ap);
	abort();
}
