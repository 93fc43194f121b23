/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/doctor.c - `satchelctl doctor [DOMAIN...]`: checks for the
 * usual faults. This file is the driver: the config check, the daemon's
 * status, the resolver, then each check of the table below (one file
 * each: doctor_*.c) and the summary line. satchelctl process:
 * single-threaded, blocking calls with bounded waits are fine here.
 */
#include "doctor.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unbound.h>

/* The checks, in the order they run and print. */
static void (*const checks[])(struct doctor *) = {
	doctor_domains,		/* MX and A/AAAA against routing */
	doctor_hostname,	/* hostname resolves to this machine */
	doctor_cert,		/* the certificate clients will see */
	doctor_listeners,	/* no passwords over clear text */
	doctor_relay,		/* no open relay */
	doctor_limits,		/* connection headroom */
	doctor_auth,		/* somebody can log in to send */
	doctor_srv,		/* RFC 6186: clients find the servers */
};

/* report - one check line: level 0 ok, 1 warn, 2 FAIL, 3 a hint line */
void
report(struct doctor *d, int level, const char *fmt, ...)
{
	static const char *const words[] = { "ok  ", "warn", "FAIL", "    " };
	va_list ap;

	if (level == 1)
		d->warns++;
	else if (level == 2)
		d->fails++;
	fputs(words[level], stdout);
	fputc(' ', stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

/* sc_ctl_doctor_main - see satchelctl.h */
int
sc_ctl_doctor_main(const char *path, int argc, char **argv)
{
	struct sc_main_config *cfg = NULL, *check_cfg = NULL;
	struct doctor d;
	struct sc_gen *gen = NULL;
	struct lsn_list *ll;
	char *err = NULL, *reply = NULL;

	memset(&d, 0, sizeof(d));
	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-') {
			fprintf(stderr, "usage: satchelctl doctor "
				"[DOMAIN...]\n");
			return 2;
		}
	/* the config, as `check` sees it; the rest needs it valid */
	if (sc_main_config_load(path, &check_cfg, &err) < 0) {
		report(&d, 2, "config: %s", err ? err : "cannot load");
		free(err);
		return 1;
	}
	sc_log_set_level(SC_LOG_WARNING);
	sc_config_set_current(check_cfg);
	if (sc_gen_build(check_cfg, true, &gen, &err) < 0) {
		sc_config_set_current(NULL);
		report(&d, 2, "config: %s", err ? err : "invalid");
		free(err);
		return 1;
	}
	report(&d, 0, "config: %s valid (%zu module instance%s)",
	       gen->cfg->file, gen->inst_count,
	       gen->inst_count == 1 ? "" : "s");
	sc_config_set_current(NULL);
	sc_gen_unref(&gen);
	if (sc_main_config_load(path, &cfg, &err) < 0) {
		report(&d, 2, "config: %s", err ? err : "cannot load");
		free(err);
		return 1;
	}
	sc_config_set_current(cfg);
	d.cfg = cfg;

	if (sc_ctl_request(cfg, "status", &reply) == 0) {
		d.daemon_up = true;
		d.status = reply;
		report(&d, 0, "daemon: satcheld is running");
	} else {
		report(&d, 1, "daemon: not reachable (%s): live checks are "
		       "skipped", reply ? reply : "no reply");
		free(reply);
	}

	if (dns_open(&d) < 0)
		report(&d, 1, "dns: %s: DNS checks cannot run",
		       d.ub_error ? d.ub_error : "out of memory");
	ll = calloc(1, sizeof(*ll));
	if (ll != NULL)
		lsn_collect(cfg, ll);
	d.ll = ll;
	d.domains = argv + 1;
	d.ndomains = argc - 1;
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		checks[i](&d);
	free(ll);

	printf("%u problem%s (FAIL), %u warning%s\n", d.fails,
	       d.fails == 1 ? "" : "s", d.warns, d.warns == 1 ? "" : "s");
	if (d.ub != NULL)
		ub_ctx_delete(d.ub);
	free(d.ub_error);
	free(d.status);
	sc_config_set_current(NULL);
	sc_main_config_free(&cfg);
	return d.fails > 0 ? 1 : 0;
}
