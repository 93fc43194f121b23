/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor_limits.c - doctor's connection limit check: every
 * ratelimit instance's max_connections against its use in the running
 * daemon's status, and how often the limit was hit. satchelctl process.
 */
#include "doctor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* status_value - the value of "key: value" in the status lines of
 * instance inst, into out; false when absent */
static bool
status_value(const char *status, const char *inst, const char *key,
	     char *out, size_t size)
{
	char head[300];
	const char *p;
	size_t hl;

	snprintf(head, sizeof(head), "%s:\n", inst);
	hl = strlen(head);
	for (p = status; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 :
		     NULL)
		if (strncmp(p, head, hl) == 0)
			break;
	if (p == NULL || *p == '\0')
		return false;
	p += hl;
	while (*p == ' ') {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		const char *q = p;

		while (*q == ' ')
			q++;
		if (strncmp(q, key, strlen(key)) == 0 &&
		    q[strlen(key)] == ':') {
			q += strlen(key) + 1;
			while (*q == ' ')
				q++;
			snprintf(out, size, "%.*s", (int)(p + l - q), q);
			return true;
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return false;
}

/* doctor_limits - connection headroom of every ratelimit instance */
void
doctor_limits(struct doctor *d)
{
	bool any = false;

	for (size_t i = 0; i < d->cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &d->cfg->insts[i];
		const char *conf_max;
		char conn[128], hits[512];
		unsigned long long cur, max;
		const char *mc;

		if (!inst_enabled(ic, "ratelimit"))
			continue;
		any = true;
		conf_max = ystr(ic->root, "max_connections");
		if (!d->daemon_up || d->status == NULL ||
		    !status_value(d->status, ic->name, "connections", conn,
				  sizeof(conn)) ||
		    sscanf(conn, "%llu/%llu", &cur, &max) != 2) {
			report(d, 0, "limits %s: max_connections %s "
			       "(current use unknown: %s)", ic->name,
			       conf_max ? conf_max : "100 (default)",
			       d->daemon_up ? "no status from the daemon" :
			       "satcheld is not running");
			continue;
		}
		if (max > 0 && cur * 10 > max * 8)
			report(d, 1, "limits %s: connections %llu/%llu "
			       "(max_connections): over 80%% in use; raise "
			       "max_connections in %s, watching the "
			       "server's memory", ic->name, cur, max,
			       ic->file);
		else
			report(d, 0, "limits %s: connections %llu/%llu "
			       "(max_connections), %llu%% headroom",
			       ic->name, cur, max, max ?
			       (max - cur) * 100 / max : 0);
		if (!status_value(d->status, ic->name, "limit_hits", hits,
				  sizeof(hits)))
			continue;
		report(d, 3, "limit hits since start: %s", hits);
		mc = strstr(hits, "max_connections=");
		if (mc != NULL && strtoull(mc + 16, NULL, 10) > 0)
			report(d, 1, "limits %s: the server-wide limit was "
			       "hit %llu times: clients got \"421 Too many "
			       "concurrent SMTP connections\"; if the "
			       "server is busy, not attacked, raise "
			       "max_connections in %s, watching memory "
			       "(too high a limit can exhaust it)", ic->name,
			       strtoull(mc + 16, NULL, 10), ic->file);
	}
	if (!any)
		report(d, 1, "limits: no connection limit: a flood can "
		       "exhaust memory; add plugins.d/70-ratelimit.yaml "
		       "with `module: ratelimit` (max_connections: 100)");
}
