/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/satchelctl.c - the admin tool's frame: options, the config,
 * the dispatch to each command, and the commands that fit in a few lines:
 * check, reload and status. The others live in files of their own:
 * modules.c, user.c, queue.c, connect.c, doctor.c (and its doctor_*.c);
 * request.c talks to the daemon. A plain single-threaded program.
 */
#include "satchelctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
usage(FILE *f)
{
	fprintf(f, "usage: satchelctl [-c FILE] COMMAND [ARGS...]\n"
		"commands:\n"
		"  check                       validate the config and every "
		"module's keys\n"
		"  modules [--keys]            the modules found, their "
		"version, ABI and hooks\n"
		"  reload                      make the daemon reload its "
		"config\n"
		"  status                      the daemon's connections, "
		"queue and limits\n"
		"  user add ADDR [--password-stdin] | user passwd ADDR |\n"
		"  user del ADDR | user list   manage the auth_file "
		"password file\n"
		"  queue list | queue show ID | queue flush | "
		"queue delete ID\n"
		"  connect ADDR [--json]       mail client settings for an "
		"account\n"
		"  doctor [DOMAIN...]          diagnose common faults\n"
		"default config: %s/satchel.yaml\n", SC_SYSCONFDIR);
}

/* ctl_simple - reload/status: print the daemon's answer */
static int
ctl_simple(const struct sc_main_config *cfg, const char *request)
{
	char *reply = NULL;
	int ret = sc_ctl_request(cfg, request, &reply);

	if (ret == 0)
		fputs(reply, stdout);
	else
		fprintf(stderr, "satchelctl: %s\n",
			reply ? reply : "out of memory");
	free(reply);
	return ret == 0 ? 0 : 1;
}

/* cmd_check - satchelctl check: what satcheld -t does, without TLS */
static int
cmd_check(struct sc_main_config *cfg)
{
	struct sc_gen *gen;
	char *err = NULL;

	sc_config_set_current(cfg);
	if (sc_gen_build(cfg, true, &gen, &err) < 0) {
		sc_config_set_current(NULL);
		fprintf(stderr, "%s\n", err ? err : "out of memory");
		free(err);
		return 1;
	}
	printf("%s: valid (%zu module instance%s)\n", gen->cfg->file,
	       gen->inst_count, gen->inst_count == 1 ? "" : "s");
	/* valid, but mail would loop or go nowhere: say so (exit 0) */
	sc_ctl_route_traps(gen->cfg, stdout);
	sc_config_set_current(NULL);
	sc_gen_unref(&gen);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = SC_SYSCONFDIR "/satchel.yaml";
	struct sc_main_config *cfg = NULL;
	char *err = NULL;
	const char *cmd;
	int opt, ret;

	sc_log_init(true, SC_LOG_WARNING);
	while ((opt = getopt(argc, argv, "+c:hV")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("satchelctl %s (module ABI %u.%u)\n",
			       SC_VERSION, (unsigned)SC_ABI_MAJOR,
			       (unsigned)SC_ABI_MINOR);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;

	if (strcmp(cmd, "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "doctor") == 0)
		return sc_ctl_doctor_main(path, argc, argv);
	if (strcmp(cmd, "check") != 0 && strcmp(cmd, "modules") != 0 &&
	    strcmp(cmd, "reload") != 0 && strcmp(cmd, "status") != 0 &&
	    strcmp(cmd, "user") != 0 && strcmp(cmd, "queue") != 0 &&
	    strcmp(cmd, "connect") != 0) {
		fprintf(stderr, "satchelctl: unknown command \"%s\"\n", cmd);
		usage(stderr);
		return 2;
	}

	if (sc_main_config_load(path, &cfg, &err) < 0) {
		if (strcmp(cmd, "modules") == 0) {
			/* Listing what is installed needs no config. */
			fprintf(stderr, "satchelctl: %s; listing %s\n",
				err ? err : "cannot load the config",
				SC_MODULEDIR);
			free(err);
			bool keys = argc > 1 && strcmp(argv[1], "--keys") == 0;
			return sc_ctl_modules(NULL, SC_MODULEDIR, keys);
		}
		fprintf(stderr, "%s\n", err ? err : "out of memory");
		free(err);
		return 1;
	}
	sc_log_set_level(SC_LOG_WARNING);

	if (strcmp(cmd, "check") == 0) {
		/* sc_gen_build takes the config. */
		return cmd_check(cfg);
	}
	if (strcmp(cmd, "modules") == 0) {
		bool keys = false;
		for (int i = 1; i < argc; i++) {
			if (strcmp(argv[i], "--keys") == 0) {
				keys = true;
			} else {
				fprintf(stderr, "usage: satchelctl modules "
					"[--keys]\n");
				sc_main_config_free(&cfg);
				return 2;
			}
		}
		ret = sc_ctl_modules(cfg, cfg->module_dir, keys);
	} else if (strcmp(cmd, "reload") == 0) {
		ret = ctl_simple(cfg, "reload");
		/* the config the daemon now runs: the same warnings as
		 * check (it was loaded from the same file just before) */
		if (ret == 0)
			sc_ctl_route_traps(cfg, stdout);
	} else if (strcmp(cmd, "status") == 0) {
		ret = ctl_simple(cfg, "status");
	} else if (strcmp(cmd, "connect") == 0) {
		ret = sc_ctl_connect_main(cfg, argc, argv);
	} else if (strcmp(cmd, "user") == 0) {
		sc_config_set_current(cfg);
		ret = sc_ctl_user_main(cfg, argc, argv);
		sc_config_set_current(NULL);
	} else {
		sc_config_set_current(cfg);
		ret = sc_ctl_queue_main(cfg, argc, argv);
		sc_config_set_current(NULL);
	}
	sc_main_config_free(&cfg);
	return ret;
}
