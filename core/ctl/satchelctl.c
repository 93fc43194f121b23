/* SPDX-License-Identifier: MIT */
/*
 * core/ctl/satchelctl.c - the admin tool's frame: options, the config, the
 * commands that need only the config or the daemon's control socket
 * (check, modules, reload, status) and sc_ctl_request(). `user` and `queue`
 * live in user.c and queue.c. A plain single-threaded program.
 */
#include "satchelctl.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define CTL_TIMEOUT_MS 30000

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

/* read_reply - read until EOF or the deadline into a malloc'd string */
static char *
read_reply(int fd, char **error_r)
{
	size_t len = 0, alloc = 4096;
	char *buf = malloc(alloc);
	struct timespec start, now;

	if (buf == NULL) {
		*error_r = strdup("out of memory");
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long waited;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - start.tv_sec) * 1000 +
			(now.tv_nsec - start.tv_nsec) / 1000000;
		if (waited >= CTL_TIMEOUT_MS ||
		    poll(&pfd, 1, (int)(CTL_TIMEOUT_MS - waited)) == 0) {
			*error_r = strdup("timed out waiting for the daemon");
			free(buf);
			return NULL;
		}
		if (len + 1 >= alloc) {
			char *p = realloc(buf, alloc * 2);
			if (p == NULL) {
				*error_r = strdup("out of memory");
				free(buf);
				return NULL;
			}
			buf = p;
			alloc *= 2;
		}
		n = read(fd, buf + len, alloc - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			if (asprintf(error_r, "read: %s", strerror(errno)) < 0)
				*error_r = NULL;
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* sc_ctl_request - one request line to the daemon; see satchelctl.h */
int
sc_ctl_request(const struct sc_main_config *cfg, const char *line,
	       char **reply_r)
{
	struct sockaddr_un sun;
	char *reply, *err = NULL, *last;
	size_t len;
	int fd;

	*reply_r = NULL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/ctl.sock",
		     cfg->state_dir) >= (int)sizeof(sun.sun_path)) {
		*reply_r = strdup("the control socket path is too long");
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (asprintf(reply_r, "socket: %s", strerror(errno)) < 0)
			*reply_r = NULL;
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (asprintf(reply_r, "cannot reach satcheld at %s: %s "
			     "(is it running with this config?)",
			     sun.sun_path, strerror(errno)) < 0)
			*reply_r = NULL;
		close(fd);
		return -1;
	}
	len = strlen(line);
	if (write(fd, line, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		if (asprintf(reply_r, "write to %s: %s", sun.sun_path,
			     strerror(errno)) < 0)
			*reply_r = NULL;
		close(fd);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	reply = read_reply(fd, &err);
	close(fd);
	if (reply == NULL) {
		*reply_r = err;
		return -1;
	}
	/* Split off the status line: the last non-empty line. */
	len = strlen(reply);
	while (len > 0 && reply[len - 1] == '\n')
		reply[--len] = '\0';
	last = strrchr(reply, '\n');
	last = last != NULL ? last + 1 : reply;
	if (strcmp(last, "OK") == 0) {
		*last = '\0';
		*reply_r = reply;
		return 0;
	}
	if (strncmp(last, "ERR", 3) == 0) {
		const char *msg = last[3] == ' ' ? last + 4 : last + 3;
		memmove(last, msg, strlen(msg) + 1);
		*reply_r = reply;
		return 1;
	}
	free(reply);
	*reply_r = strdup("malformed reply from satcheld");
	return -1;
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
	sc_config_set_current(NULL);
	sc_gen_unref(&gen);
	return 0;
}

static const char *
key_type_name(const struct sc_config_key *k)
{
	switch (k->type) {
	case SC_KEY_STR: return "string";
	case SC_KEY_PATH: return "path";
	case SC_KEY_BOOL: return "bool";
	case SC_KEY_UINT: return "uint";
	case SC_KEY_SIZE: return "size";
	case SC_KEY_DURATION: return "duration";
	case SC_KEY_RATE: return "rate";
	case SC_KEY_ENUM: return "enum";
	case SC_KEY_ADDRESS: return "address";
	case SC_KEY_CIDR_LIST: return "cidr list";
	case SC_KEY_STR_LIST: return "string list";
	case SC_KEY_DURATION_LIST: return "duration list";
	case SC_KEY_STR_MAP: return "string map";
	case SC_KEY_OBJECT: return "map";
	case SC_KEY_LIST: return "list of maps";
	}
	return "?";
}

/* print_keys - the schema, as `modules --keys` shows it */
static void
print_keys(const struct sc_config_key *keys, int depth)
{
	for (const struct sc_config_key *k = keys; k != NULL && k->name;
	     k++) {
		printf("%*s%s: %s", 4 + depth * 2, "", k->name,
		       key_type_name(k));
		if (k->type == SC_KEY_ENUM && k->enum_values != NULL)
			printf(" (%s)", k->enum_values);
		if (k->flags & SC_KEY_REQUIRED)
			printf(", required");
		else if (k->def != NULL)
			printf(", default %s", k->def);
		if (k->doc != NULL)
			printf(" - %s", k->doc);
		putchar('\n');
		if (k->sub != NULL && depth < 4)
			print_keys(k->sub, depth + 1);
	}
}

/* daemon_hooks - the lines of the running daemon's `modules` reply that
 * belong to module name, printed indented; false when none */
static bool
daemon_hooks(const char *reply, const char *name)
{
	bool any = false;
	const char *p = reply;

	while (p != NULL && *p != '\0') {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		const char *open = memchr(p, '(', l);
		size_t nlen = strlen(name);

		/* "INSTANCE (MODULE VERSION): hooks ..." */
		if (open != NULL && (size_t)(p + l - open) > nlen + 1 &&
		    strncmp(open + 1, name, nlen) == 0 &&
		    open[1 + nlen] == ' ') {
			const char *colon = memchr(open, ':',
						   (size_t)(p + l - open));
			printf("  instance %.*s:%.*s\n", (int)(open - p - 1), p,
			       colon ? (int)(p + l - colon - 1) : 0,
			       colon ? colon + 1 : "");
			any = true;
		}
		p = nl ? nl + 1 : NULL;
	}
	return any;
}

static int
so_filter(const struct dirent *de)
{
	size_t l = strlen(de->d_name);

	return l > 3 && strcmp(de->d_name + l - 3, ".so") == 0 &&
		de->d_name[0] != '.';
}

/* cmd_modules - every *.so in module_dir: name, version, ABI, depends and,
 * when the daemon answers, the hooks each instance registered */
static int
cmd_modules(const struct sc_main_config *cfg, const char *module_dir,
	    bool keys)
{
	struct dirent **names;
	char *reply = NULL;
	int n, ret = 0;

	n = scandir(module_dir, &names, so_filter, alphasort);
	if (n < 0) {
		fprintf(stderr, "satchelctl: %s: %s\n", module_dir,
			strerror(errno));
		return 1;
	}
	if (cfg == NULL || sc_ctl_request(cfg, "modules", &reply) != 0) {
		free(reply);
		reply = NULL;
	}
	printf("module directory %s (satcheld ABI %u.%u)%s\n", module_dir,
	       (unsigned)SC_ABI_MAJOR, (unsigned)SC_ABI_MINOR,
	       reply ? "" : "; the daemon is not running, hooks not shown");
	for (int i = 0; i < n; i++) {
		char path[4096], stem[256], sym[300], *err = NULL;
		const struct sc_module *mod;
		void *dl;

		snprintf(stem, sizeof(stem), "%.*s",
			 (int)(strlen(names[i]->d_name) - 3),
			 names[i]->d_name);
		snprintf(path, sizeof(path), "%s/%s", module_dir,
			 names[i]->d_name);
		snprintf(sym, sizeof(sym), "sc_module_%s", stem);
		free(names[i]);
		dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
		if (dl == NULL) {
			printf("%s: cannot load: %s\n", stem, dlerror());
			ret = 1;
			continue;
		}
		mod = dlsym(dl, sym);
		if (mod == NULL) {
			printf("%s: no symbol %s; not a satchel module\n",
			       stem, sym);
			ret = 1;
			dlclose(dl);
			continue;
		}
		if (sc_module_check(mod, stem, path, &err) < 0) {
			printf("%s: %s\n", stem, err ? err : "invalid");
			free(err);
			ret = 1;
			dlclose(dl);
			continue;
		}
		printf("%s %s (ABI %u.%u): %s\n", mod->name,
		       mod->version ? mod->version : "-", mod->abi_major,
		       mod->abi_minor,
		       mod->description ? mod->description : "");
		if (mod->depends != NULL && mod->depends[0] != NULL) {
			printf("  depends:");
			for (size_t d = 0; mod->depends[d] != NULL; d++)
				printf(" %s", mod->depends[d]);
			putchar('\n');
		}
		if (reply != NULL && !daemon_hooks(reply, mod->name))
			printf("  (not enabled in the running daemon)\n");
		if (keys) {
			printf("  keys:%s\n", mod->keys && mod->keys[0].name ?
			       "" : " none");
			print_keys(mod->keys, 0);
		}
		dlclose(dl);
	}
	free(names);
	free(reply);
	return ret;
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
			return cmd_modules(NULL, SC_MODULEDIR, keys);
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
		ret = cmd_modules(cfg, cfg->module_dir, keys);
	} else if (strcmp(cmd, "reload") == 0) {
		ret = ctl_simple(cfg, "reload");
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
