/* SPDX-License-Identifier: MIT */
/*
 * core/main.c - satcheld: parse the config, load modules, bind, drop
 * privileges, start, run the loop; SIGHUP reloads, SIGTERM/SIGINT stop
 * gracefully. Everything here runs on the main (loop) thread.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <sys/stat.h>

#define STOP_POLL_MS 100
/* libuv pool threads when UV_THREADPOOL_SIZE is not set (see main) */
#define SC_POOL_THREADS "16"

/* What main() owns for the life of the process, on its stack. */
struct daemon_ctx {
	struct sc_core core;
	char config_path[PATH_MAX];
	uv_signal_t sighup, sigterm, sigint;
	uv_timer_t stop_timer;
	uint64_t stop_started;
	int ready_fd;			/* daemon mode: tells the parent */
};

static void
usage(void)
{
	fprintf(stderr, "usage: satcheld [-c FILE] [-f] [-t] [-V]\n"
		"  -c FILE  configuration file (default %s/satchel.yaml)\n"
		"  -f       stay in the foreground, log to stderr\n"
		"  -t       check the configuration and exit\n"
		"  -V       print the version and exit\n", SC_SYSCONFDIR);
	exit(2);
}

/* check_config - satcheld -t: parse and load every module's schema */
static int
check_config(const char *path)
{
	struct sc_main_config *cfg;
	struct sc_gen *gen;
	char *err = NULL;

	if (sc_main_config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "satcheld: %s\n", err ? err : "out of memory");
		free(err);
		return 1;
	}
	sc_config_set_current(cfg);
	if (cfg->tls_certificate != NULL &&
	    sc_tls_ensure_certificate(cfg, &err) < 0) {
		fprintf(stderr, "satcheld: %s\n", err ? err : "TLS error");
		free(err);
		sc_config_set_current(NULL);
		sc_main_config_free(&cfg);
		return 1;
	}
	if (sc_gen_build(cfg, true, &gen, &err) < 0) {
		sc_config_set_current(NULL);
		fprintf(stderr, "satcheld: %s\n", err ? err : "out of memory");
		free(err);
		return 1;
	}
	size_t enabled = 0;
	for (size_t i = 0; i < gen->cfg->inst_count; i++)
		enabled += gen->cfg->insts[i].enabled;
	printf("satcheld: configuration %s is valid (%zu module instance%s "
	       "enabled)\n", gen->cfg->file, enabled, enabled == 1 ? "" : "s");
	/* A valid file that enables nothing is almost always an include:
	 * glob pointing at the wrong directory: say so. */
	if (enabled == 0)
		fprintf(stderr, "satcheld: warning: no module is enabled: no "
			"listener will run (check the include: globs of %s)\n",
			gen->cfg->file);
	sc_config_set_current(NULL);
	sc_gen_unref(&gen);
	return 0;
}

/* daemonize - fork into the background; the parent waits until the child
 * says it is ready (or dies), so `satcheld` fails visibly on a bad start */
static int
daemonize(void)
{
	int fds[2];
	pid_t pid;
	char c;

	if (pipe(fds) < 0)
		sc_fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		sc_fatal("fork: %s", strerror(errno));
	if (pid > 0) {
		ssize_t n;

		close(fds[1]);
		do
			n = read(fds[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 && c == 'R' ? 0 : 1);
	}
	close(fds[0]);
	if (setsid() < 0)
		sc_fatal("setsid: %s", strerror(errno));
	if (chdir("/") < 0)
		sc_fatal("chdir /: %s", strerror(errno));
	return fds[1];
}

/* daemon_ready - the parent may exit now; stop writing to the terminal */
static void
daemon_ready(struct daemon_ctx *d)
{
	int null;

	if (d->ready_fd < 0)
		return;
	openlog("satcheld", LOG_PID | LOG_NDELAY, LOG_MAIL);
	if (write(d->ready_fd, "R", 1) != 1)
		sc_log_warning("cannot notify the parent process");
	close(d->ready_fd);
	d->ready_fd = -1;
	null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

/* will_drop - started as root with a `user:` to become */
static bool
will_drop(const struct sc_main_config *cfg)
{
	return geteuid() == 0 && cfg->user != NULL && cfg->user[0] != '\0';
}

/* daemon_user - the account of `user:`; a missing one is fatal */
static struct passwd *
daemon_user(const struct sc_main_config *cfg)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(cfg->user);
	if (pw == NULL)
		sc_fatal("%s: the user \"%s\" (the `user:` key) does not "
			 "exist; create it or set `user:` to an existing "
			 "account", cfg->file, cfg->user);
	return pw;
}

/*
 * drop_privileges - when root: initgroups/setgid/setuid for good.
 * state_dir was given to the user before (sc_privdir_state); everything
 * the daemon does in it from now on runs as that user.
 */
static void
drop_privileges(const struct sc_main_config *cfg)
{
	struct passwd *pw;

	if (!will_drop(cfg))
		return;
	pw = daemon_user(cfg);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		sc_fatal("cannot drop privileges to %s: %s", cfg->user,
			 strerror(errno));
	/* the config check refuses uid 0; this is the last line */
	if (setuid(0) == 0)
		sc_panic("could regain root after dropping privileges");
	sc_log_info("running as %s (uid %u)", cfg->user,
		    (unsigned)pw->pw_uid);
}

/* mkdirs - mkdir -p for a daemon that keeps its user: the last component
 * gets mode, missing parents 0755 */
static int
mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	struct stat st;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(buf, saved == '\0' ? mode : 0755) < 0 &&
		    errno != EEXIST)
			return -1;
		*p = saved;
		if (saved == '\0')
			break;
	}
	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	return 0;
}

/* note_add - appends "; what" to the list of what did not take */
static void
note_add(char **notes, const char *what)
{
	char *n;

	if (asprintf(&n, "%s%s%s", *notes ? *notes : "", *notes ? "; " : "",
		     what) < 0)
		return;
	free(*notes);
	*notes = n;
}

/* restart_only - keys a running daemon cannot change: noted, so that the
 * reload's caller hears that they did not take */
static void
restart_only(const struct sc_main_config *old, const struct sc_main_config *new,
	     char **notes)
{
	if (strcmp(old->state_dir, new->state_dir) != 0)
		note_add(notes, "state_dir changed: it takes effect at the "
			 "next restart");
	if (strcmp(old->user ? old->user : "", new->user ? new->user : "") != 0)
		note_add(notes, "user changed: it takes effect at the next "
			 "restart");
}

/* sc_core_reload - build the new generation aside; swap it in only when
 * every step worked, so a bad config leaves the running one untouched.
 * Then the parts that may fail on their own (the TLS certificate) and
 * what needs a restart: 1 with *error_r listing what did not take. */
int
sc_core_reload(char **error_r)
{
	struct sc_main_config *cfg;
	struct sc_gen *gen, *old = sc_core->gen;
	struct sc_event ev;
	char *err = NULL, *notes = NULL;

	*error_r = NULL;
	if (sc_main_config_load(sc_core->config_path, &cfg, &err) < 0)
		goto fail;
	sc_config_set_current(cfg);
	if (sc_gen_build(cfg, false, &gen, &err) < 0) {
		sc_config_set_current(old->cfg);
		goto fail;
	}
	/* the certificate first: the new generation's instance_start may
	 * export it (sc_tls_server_pem: the web module's HTTPS) */
	if (sc_net_tls_reload(gen->cfg, &err) < 0) {
		note_add(&notes, err ? err : "TLS: out of memory");
		free(err);
		err = NULL;
	}
	if (sc_gen_start(gen, &err) < 0 || sc_net_start(gen, &err) < 0) {
		sc_config_set_current(old->cfg);
		sc_gen_unref(&gen);
		free(notes);
		/* The old generation's listeners stopped for the new one;
		 * its certificate comes back too. */
		char *e2 = NULL;
		if (sc_net_tls_reload(old->cfg, &e2) < 0) {
			sc_log_error("%s", e2 ? e2 : "TLS: out of memory");
			free(e2);
			e2 = NULL;
		}
		if (sc_net_start(old, &e2) < 0) {
			sc_log_error("cannot resume the old listeners: %s",
				     e2 ? e2 : "unknown error");
			free(e2);
		}
		goto fail;
	}
	sc_core->gen = gen;
	sc_log_set_level(gen->cfg->log_level);
	restart_only(old->cfg, gen->cfg, &notes);
	sc_gen_unref(&old);
	memset(&ev, 0, sizeof(ev));
	ev.type = SC_EVENT_RELOAD;
	if (notes != NULL) {
		sc_log_error("configuration reloaded (generation %u), but "
			     "not all of it took: %s", gen->serial, notes);
		sc_route_warn_start(gen->cfg);	/* logs routing traps */
		sc_event_emit(&ev);
		*error_r = notes;
		return 1;
	}
	sc_log_notice("configuration reloaded (generation %u)", gen->serial);
	sc_route_warn_start(gen->cfg);		/* logs routing traps */
	sc_event_emit(&ev);
	return 0;

fail:
	sc_log_error("reload failed: %s", err ? err : "out of memory");
	*error_r = err;
	return -1;
}

static void
finish_stop(struct daemon_ctx *d)
{
	uv_timer_stop(&d->stop_timer);
	sc_session_close_all();
	sc_log_info("stopped accepting; all sessions ended");
	uv_stop(d->core.loop);
}

/* stop_poll - during the grace period: close sessions that went idle,
 * and end the rest when the period is over */
static void
stop_poll(uv_timer_t *t)
{
	struct daemon_ctx *d = t->data;
	uint64_t grace = d->core.gen != NULL ?
		d->core.gen->cfg->shutdown_grace_ms : 0;

	if (sc_session_close_idle() == 0)
		finish_stop(d);
	else if (sc_now_ms() - d->stop_started >= grace) {
		sc_log_warning("grace period over; closing %zu busy "
			       "session(s)", sc_session_count());
		finish_stop(d);
	}
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct daemon_ctx *d = h->data;
	char *err = NULL;

	if (signum == SIGHUP) {
		if (d->core.stopping)
			return;
		/* "reload" is logged only with the outcome: scripts wait
		 * for it. */
		sc_log_info("SIGHUP: reading %s", d->core.config_path);
		(void)sc_core_reload(&err);
		free(err);
		return;
	}
	if (d->core.stopping) {
		sc_log_notice("second stop signal: ending now");
		finish_stop(d);
		return;
	}
	d->core.stopping = true;
	sc_log_notice("%s: stopping", signum == SIGTERM ? "SIGTERM" :
		      "SIGINT");
	sc_net_stop_accepting();
	d->stop_started = sc_now_ms();
	if (sc_session_close_idle() == 0) {
		finish_stop(d);
		return;
	}
	sc_log_info("waiting for %zu busy session(s)", sc_session_count());
	uv_timer_start(&d->stop_timer, stop_poll, STOP_POLL_MS, STOP_POLL_MS);
}

static void
close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* teardown - reverse of start-up, then let libuv finish its closes */
static void
teardown(struct daemon_ctx *d)
{
	sc_queue_runner_stop();
	sc_ctl_stop();
	uv_close((uv_handle_t *)&d->sighup, NULL);
	uv_close((uv_handle_t *)&d->sigterm, NULL);
	uv_close((uv_handle_t *)&d->sigint, NULL);
	uv_close((uv_handle_t *)&d->stop_timer, NULL);
	sc_session_close_all();
	/* Pool jobs call back into module code: let them finish before the
	 * modules are freed and unloaded. */
	if (sc_work_drain(10000) > 0)
		sc_log_warning("exiting with blocking work still running");
	sc_config_set_current(NULL);
	sc_gen_unref(&d->core.gen);
	sc_metrics_deinit();
	sc_queue_deinit();
	sc_dns_deinit();
	sc_privsep_stop();
	sc_privops_stop();
	sc_net_deinit();
	for (int i = 0; i < 100 && uv_run(d->core.loop, UV_RUN_NOWAIT); i++)
		;
	/* Whatever a module left open: close it so the loop can go. */
	uv_walk(d->core.loop, close_walk, NULL);
	uv_run(d->core.loop, UV_RUN_NOWAIT);
	if (uv_loop_close(d->core.loop) != 0)
		sc_log_debug("loop still busy at exit");
}

int
main(int argc, char **argv)
{
	struct daemon_ctx d;
	const char *path = SC_SYSCONFDIR "/satchel.yaml";
	struct sc_main_config *cfg;
	struct sc_gen *gen;
	bool test = false;
	char *err = NULL;
	int opt;

	memset(&d, 0, sizeof(d));
	d.ready_fd = -1;
	d.core.privops.fd = -1;
	while ((opt = getopt(argc, argv, "c:ftVh")) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			d.core.foreground = true;
			break;
		case 't':
			test = true;
			break;
		case 'V':
			printf("satcheld %s (module ABI %u.%u)\n", SC_VERSION,
			       (unsigned)SC_ABI_MAJOR, (unsigned)SC_ABI_MINOR);
			return 0;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	signal(SIGPIPE, SIG_IGN);
	/* libuv's pool (4 threads unless told) runs every fsync: the queue's
	 * group commit syncs each file of a batch on its own thread, and
	 * Maildir deliveries sync on theirs; syncs that run together share
	 * the journal commits and cache flushes, so the pool is wider than
	 * the CPUs. Read once, at the first job; an admin's value wins. */
	setenv("UV_THREADPOOL_SIZE", SC_POOL_THREADS, 0);
	sc_log_init(true, SC_LOG_INFO);
	if (test)
		return check_config(path);

	if (sc_main_config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "satcheld: %s\n", err ? err : "out of memory");
		free(err);
		return 1;
	}
	snprintf(d.config_path, sizeof(d.config_path), "%s", cfg->file);
	if (!d.core.foreground) {
		d.ready_fd = daemonize();
		sc_log_init(false, cfg->log_level);
		/* Until ready, errors also reach the starting terminal. */
		openlog("satcheld", LOG_PID | LOG_NDELAY | LOG_PERROR,
			LOG_MAIL);
	} else {
		sc_log_init(true, cfg->log_level);
	}
	d.core.config_path = d.config_path;
	d.core.loop = uv_default_loop();
	sc_core = &d.core;
	sc_config_set_current(cfg);

	/* Root prepares state_dir for the user and does nothing below it:
	 * the user owns it and may have planted links there. */
	if (will_drop(cfg)) {
		(void)daemon_user(cfg);
		if (sc_privdir_state(cfg->state_dir, cfg->user, &err) < 0)
			sc_fatal("%s", err ? err : "out of memory");
	} else if (mkdirs(cfg->state_dir, 0750) < 0) {
		sc_fatal("state_dir %s: %s", cfg->state_dir, strerror(errno));
	}
	if (sc_metrics_init(&err) < 0)
		sc_fatal("%s", err ? err : "out of memory");
	if (sc_gen_build(cfg, false, &gen, &err) < 0)
		sc_fatal("%s", err);
	d.core.gen = gen;
	/* a configured key may be readable by root only: load it now */
	if (sc_tls_ensure_certificate(gen->cfg, &err) < 0 ||
	    sc_net_init(&err) < 0)
		sc_fatal("%s", err ? err : "TLS setup failed");
	if (sc_privsep_start(&err) < 0)
		sc_fatal("%s", err ? err : "cannot start the PAM helper");
	/* what a reload needs root for after the drop: the configured key,
	 * listeners on ports below 1024 */
	if (will_drop(gen->cfg) &&
	    sc_privops_start(d.core.config_path, &err) < 0)
		sc_fatal("%s", err ? err : "cannot start the helper");
	drop_privileges(gen->cfg);
	d.core.privileged_dropped = geteuid() != 0;
	/* state_dir's contents, as the user: the queue, and the generated
	 * certificate (when no tls: is configured) */
	if (sc_tls_ensure_generated(gen->cfg, &err) < 0)
		sc_fatal("%s", err ? err : "TLS setup failed");
	if (sc_queue_init(gen->cfg->state_dir, &err) < 0)
		sc_fatal("%s", err ? err : "queue setup failed");
	if (sc_dns_init(gen->cfg, &err) < 0)
		sc_fatal("%s", err ? err : "DNS setup failed");
	if (sc_gen_start(gen, &err) < 0)
		sc_fatal("%s", err);
	if (sc_net_start(gen, &err) < 0)
		sc_fatal("%s", err ? err : "cannot start the listeners");
	if (sc_queue_runner_start(&err) < 0)
		sc_fatal("%s", err ? err : "cannot start the queue runner");
	if (sc_ctl_start(gen->cfg->state_dir, &err) < 0)
		sc_fatal("%s", err ? err : "cannot open the control socket");

	uv_signal_init(d.core.loop, &d.sighup);
	uv_signal_init(d.core.loop, &d.sigterm);
	uv_signal_init(d.core.loop, &d.sigint);
	uv_timer_init(d.core.loop, &d.stop_timer);
	d.sighup.data = d.sigterm.data = d.sigint.data = &d;
	d.stop_timer.data = &d;
	uv_signal_start(&d.sighup, on_signal, SIGHUP);
	uv_signal_start(&d.sigterm, on_signal, SIGTERM);
	uv_signal_start(&d.sigint, on_signal, SIGINT);

	sc_log_notice("satcheld ready (version %s, generation %u, %zu "
		      "instance(s))", SC_VERSION, gen->serial,
		      gen->inst_count);
	daemon_ready(&d);
	sc_route_warn_start(gen->cfg);		/* logs routing traps */
	uv_run(d.core.loop, UV_RUN_DEFAULT);
	teardown(&d);
	sc_log_info("satcheld stopped");
	sc_core = NULL;
	return 0;
}
