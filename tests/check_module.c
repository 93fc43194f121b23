/* SPDX-License-Identifier: MIT */
/*
 * tests/check_module.c - Check suite for the module loader (core/module.c):
 * the fixture modules of tests/modules/ are refused with the exact message
 * for each fault, and instances are created in file order and torn down in
 * reverse, only after their pool jobs (sc_work_submit_inst) completed;
 * instance state goes from one generation to the next (fx_state).
 * Loop thread only (fixture jobs run on the pool); each test works in its
 * own temporary directory.
 */
#include "core.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must name the directory of the built fixture modules"
#endif

/* One test's directory, with satchel.yaml and plugins.d/. */
struct fx_env {
	char dir[64];
	char module_dir[512];
};

static void
write_file(const char *dir, const char *name, const char *text)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "fopen %s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* env_init - a temporary config using module_dir (FIXTURE_DIR if NULL) */
static void
env_init(struct fx_env *env, const char *module_dir)
{
	char text[2048], path[512];

	snprintf(env->dir, sizeof(env->dir), "/tmp/check_module.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(env->dir));
	snprintf(env->module_dir, sizeof(env->module_dir), "%s",
		 module_dir != NULL ? module_dir : FIXTURE_DIR);
	snprintf(path, sizeof(path), "%s/plugins.d", env->dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(text, sizeof(text),
		 "hostname: mail.example.test\n"
		 "state_dir: %s/state\n"
		 "module_dir: %s\n"
		 "user: \"\"\n"
		 "domains:\n"
		 "  example.test: {routing: local}\n"
		 "include: plugins.d/*.yaml\n", env->dir, env->module_dir);
	write_file(env->dir, "satchel.yaml", text);
}

/* env_plugin - plugins.d/NAME.yaml with text */
static void
env_plugin(struct fx_env *env, const char *name, const char *text)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "plugins.d/%s.yaml", name);
	write_file(env->dir, rel, text);
}

/* env_good - an fx_good instance tracing into DIR/trace with tag */
static void
env_good(struct fx_env *env, const char *name, const char *tag)
{
	char text[512];

	snprintf(text, sizeof(text), "module: fx_good\ntrace: %s/trace\n"
		 "tag: %s\n", env->dir, tag);
	env_plugin(env, name, text);
}

static char *
env_read(struct fx_env *env, const char *name)
{
	static char buf[4096];
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", env->dir, name);
	f = fopen(path, "r");
	if (f == NULL)
		return strcpy(buf, "");
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
env_free(struct fx_env *env)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", env->dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* env_build - load the config and build a generation; returns 0/-1 */
static int
env_build(struct fx_env *env, bool check_only, struct sc_gen **gen_r,
	  char **error_r)
{
	struct sc_main_config *cfg;
	char path[512];

	snprintf(path, sizeof(path), "%s/satchel.yaml", env->dir);
	*error_r = NULL;
	if (sc_main_config_load(path, &cfg, error_r) < 0)
		ck_abort_msg("config: %s", *error_r);
	sc_config_set_current(cfg);
	return sc_gen_build(cfg, check_only, gen_r, error_r);
}

/* expect_error - the build fails with exactly want */
static void
expect_error(struct fx_env *env, const char *want)
{
	struct sc_gen *gen = NULL;
	char *err = NULL;

	ck_assert_int_eq(env_build(env, false, &gen, &err), -1);
	ck_assert_ptr_null(gen);
	ck_assert_ptr_nonnull(err);
	ck_assert_str_eq(err, want);
	free(err);
	sc_config_set_current(NULL);
}

START_TEST(test_good_order)
{
	struct fx_env env;
	struct sc_gen *gen = NULL;
	char *err = NULL;

	env_init(&env, NULL);
	env_good(&env, "10-first", "a");
	env_good(&env, "20-second", "b");
	env_plugin(&env, "30-off", "module: fx_absent\nenabled: false\n");
	ck_assert_msg(env_build(&env, false, &gen, &err) == 0, "%s", err);
	ck_assert_uint_eq(gen->inst_count, 2);
	ck_assert_str_eq(sc_instance_name(&gen->insts[0]), "10-first");
	ck_assert_str_eq(sc_instance_name(&gen->insts[1]), "20-second");
	ck_assert_str_eq(sc_instance_module(&gen->insts[1]), "fx_good");
	/* one handle shared by both instances */
	ck_assert_ptr_eq(gen->insts[0].mh, gen->insts[1].mh);
	ck_assert_uint_eq(gen->insts[0].mh->instances, 2);
	ck_assert_str_eq(env_read(&env, "trace"), "new a\nnew b\n");

	ck_assert_msg(sc_gen_start(gen, &err) == 0, "%s", err);
	ck_assert_uint_eq(gen->hook_count[SC_HOOK_RCPT], 2);
	ck_assert_ptr_eq(gen->hooks[SC_HOOK_RCPT][0].inst, &gen->insts[0]);
	ck_assert_ptr_eq(gen->hooks[SC_HOOK_RCPT][1].inst, &gen->insts[1]);
	ck_assert_ptr_nonnull(sc_instance_state_dir(&gen->insts[0]));
	ck_assert_str_eq(sc_instance_state_dir(&gen->insts[0]) +
			 strlen(env.dir), "/state/modules/fx_good");

	struct sc_gen *keep = gen;
	sc_gen_ref(gen);
	sc_gen_unref(&gen);		/* not the last reference */
	ck_assert_ptr_null(gen);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "new a\nnew b\nstart a\nstart b\n");
	sc_gen_unref(&keep);		/* the last: reverse teardown */
	ck_assert_str_eq(env_read(&env, "trace"),
			 "new a\nnew b\nstart a\nstart b\nfree b\nfree a\n");
	sc_config_set_current(NULL);
	env_free(&env);
}
END_TEST

START_TEST(test_wrong_abi)
{
	struct fx_env env;
	char want[1024];

	env_init(&env, NULL);
	env_plugin(&env, "10-abi", "module: fx_abi\n");
	snprintf(want, sizeof(want), "module fx_abi (%s/fx_abi.so): built for "
		 "ABI %u.0, satcheld has ABI %u.%u; rebuild the module",
		 FIXTURE_DIR, (unsigned)SC_ABI_MAJOR + 1,
		 (unsigned)SC_ABI_MAJOR, (unsigned)SC_ABI_MINOR);
	expect_error(&env, want);
	env_free(&env);
}
END_TEST

START_TEST(test_wrong_signature)
{
	struct fx_env env;
	char want[1024];

	env_init(&env, NULL);
	env_plugin(&env, "10-sig", "module: fx_sig\n");
	snprintf(want, sizeof(want), "module fx_sig (%s/fx_sig.so): built "
		 "with sizeof(void *) 4, satcheld has %zu (signature "
		 "p4l4t4o4z4, satcheld's %s); rebuild the module with the same "
		 "compiler and flags", FIXTURE_DIR, sizeof(void *),
		 SC_MODULE_SIGNATURE);
	expect_error(&env, want);
	env_free(&env);
}
END_TEST

/* The signature holds the real sizes of every type it names: before ABI
 * 1.2, t and o carried unexpanded macro names (__SIZEOF_TIME_T__ is no
 * compiler's macro), so time_t and off_t were never compared. */
START_TEST(test_signature_sizes)
{
	char want[64];

	snprintf(want, sizeof(want), "p%zul%zut%zuo%zuz%zu", sizeof(void *),
		 sizeof(long), sizeof(time_t), sizeof(off_t), sizeof(size_t));
	ck_assert_str_eq(SC_MODULE_SIGNATURE, want);
}
END_TEST

/* Only time_t differs: refused, naming it. */
START_TEST(test_wrong_time_t)
{
	struct fx_env env;
	char want[1024];
	size_t other = sizeof(time_t) == 8 ? 4 : 8;

	env_init(&env, NULL);
	env_plugin(&env, "10-sigtime", "module: fx_sigtime\n");
	snprintf(want, sizeof(want), "module fx_sigtime (%s/fx_sigtime.so): "
		 "built with sizeof(time_t) %zu, satcheld has %zu (signature "
		 "p%zul%zut%zuo%zuz%zu, satcheld's %s); rebuild the module "
		 "with the same compiler and flags", FIXTURE_DIR, other,
		 sizeof(time_t), sizeof(void *), sizeof(long), other,
		 sizeof(off_t), sizeof(size_t), SC_MODULE_SIGNATURE);
	expect_error(&env, want);
	env_free(&env);
}
END_TEST

/* sc_module_check on descriptors made here: the old form is accepted only
 * from modules that declare an ABI before 1.2, and only with our other
 * sizes; anything else that is not our signature is refused. */
START_TEST(test_signature_forms)
{
	char legacy[64], legacy_other[64], *err = NULL;
	struct sc_module mod = {
		.abi_major = SC_ABI_MAJOR, .abi_minor = 1,
		.struct_size = sizeof(struct sc_module), .name = "x",
	};

	snprintf(legacy, sizeof(legacy),
		 "p%zul%zut__SIZEOF_TIME_T__o__SIZEOF_OFF_T__z%zu",
		 sizeof(void *), sizeof(long), sizeof(size_t));
	snprintf(legacy_other, sizeof(legacy_other),
		 "p%zul%zut__SIZEOF_TIME_T__o__SIZEOF_OFF_T__z%zu",
		 sizeof(void *), sizeof(long) == 8 ? (size_t)4 : (size_t)8,
		 sizeof(size_t));
	mod.signature = SC_MODULE_SIGNATURE;
	ck_assert_int_eq(sc_module_check(&mod, "x", "/m/x.so", &err), 0);
	mod.signature = legacy;
	ck_assert_int_eq(sc_module_check(&mod, "x", "/m/x.so", &err), 0);
	mod.signature = legacy_other;
	ck_assert_int_eq(sc_module_check(&mod, "x", "/m/x.so", &err), -1);
	free(err);
	err = NULL;
	mod.abi_minor = 2;
	mod.signature = legacy;
	ck_assert_int_eq(sc_module_check(&mod, "x", "/m/x.so", &err), -1);
	ck_assert_msg(strstr(err, "built with signature p") != NULL, "%s",
		      err);
	free(err);
	err = NULL;
	mod.signature = NULL;
	ck_assert_int_eq(sc_module_check(&mod, "x", "/m/x.so", &err), -1);
	ck_assert_msg(strstr(err, "signature (none)") != NULL, "%s", err);
	free(err);
	err = NULL;
	mod.signature = "p8";
	ck_assert_int_eq(sc_module_check(&mod, "x", "/m/x.so", &err), -1);
	free(err);
}
END_TEST

/* A module built with the ABI 1.1 headers still loads (minor bumps keep
 * old modules working); its time_t and off_t could not be checked. */
START_TEST(test_old_signature_loads)
{
	struct fx_env env;
	struct sc_gen *gen = NULL;
	char *err = NULL;

	env_init(&env, NULL);
	env_plugin(&env, "10-sigold", "module: fx_sigold\n");
	ck_assert_msg(env_build(&env, true, &gen, &err) == 0, "%s", err);
	ck_assert_uint_eq(gen->inst_count, 1);
	sc_gen_unref(&gen);
	sc_config_set_current(NULL);
	env_free(&env);
}
END_TEST

START_TEST(test_missing_symbol)
{
	struct fx_env env;
	char want[1024];

	env_init(&env, NULL);
	env_plugin(&env, "10-nosym", "module: fx_nosym\n");
	snprintf(want, sizeof(want), "module fx_nosym (%s/fx_nosym.so): no "
		 "symbol sc_module_fx_nosym; not a satchel module, or built "
		 "under another name", FIXTURE_DIR);
	expect_error(&env, want);
	env_free(&env);
}
END_TEST

START_TEST(test_name_mismatch)
{
	struct fx_env env;
	char want[1024];

	env_init(&env, NULL);
	env_plugin(&env, "10-name", "module: fx_name\n");
	snprintf(want, sizeof(want), "module fx_name (%s/fx_name.so): "
		 "declares the name \"fx_renamed\"; the file must be named "
		 "fx_renamed.so", FIXTURE_DIR);
	expect_error(&env, want);
	env_free(&env);
}
END_TEST

START_TEST(test_instance_new_fails)
{
	struct fx_env env;
	char want[1024];

	env_init(&env, NULL);
	env_good(&env, "10-a", "a");
	env_good(&env, "20-b", "b");
	env_plugin(&env, "30-fail", "module: fx_fail\n");
	snprintf(want, sizeof(want), "%s/plugins.d/30-fail.yaml: 30-fail "
		 "(module fx_fail): fixture refuses to start", env.dir);
	expect_error(&env, want);
	/* what was created is torn down, in reverse */
	ck_assert_str_eq(env_read(&env, "trace"),
			 "new a\nnew b\nfree b\nfree a\n");
	env_free(&env);
}
END_TEST

START_TEST(test_missing_dependency)
{
	struct fx_env env;
	struct sc_gen *gen = NULL;
	char want[1024], *err = NULL;

	env_init(&env, NULL);
	env_plugin(&env, "10-dep", "module: fx_dep\n");
	snprintf(want, sizeof(want), "%s/plugins.d/10-dep.yaml: module fx_dep "
		 "depends on module fx_good, which is not enabled; add "
		 "plugins.d/NN-fx_good.yaml with `module: fx_good`", env.dir);
	expect_error(&env, want);

	/* disabled does not count */
	env_plugin(&env, "20-good", "module: fx_good\nenabled: false\n");
	expect_error(&env, want);

	/* and enabled satisfies it, whatever the order */
	env_good(&env, "20-good", "g");
	ck_assert_msg(env_build(&env, false, &gen, &err) == 0, "%s", err);
	ck_assert_uint_eq(gen->inst_count, 2);
	sc_gen_unref(&gen);
	sc_config_set_current(NULL);
	env_free(&env);
}
END_TEST

START_TEST(test_missing_file)
{
	struct fx_env env;
	struct sc_gen *gen = NULL;
	char want[1024], *err = NULL;

	env_init(&env, NULL);
	env_plugin(&env, "10-absent", "module: fx_absent\n");
	snprintf(want, sizeof(want), "%s/plugins.d/10-absent.yaml:1:9: module "
		 "fx_absent: %s/fx_absent.so: No such file or directory "
		 "(install it, or set `enabled: false` in this file)",
		 env.dir, FIXTURE_DIR);
	expect_error(&env, want);

	env_plugin(&env, "10-absent", "module: fx_absent\nenabled: false\n");
	ck_assert_msg(env_build(&env, false, &gen, &err) == 0, "%s", err);
	ck_assert_uint_eq(gen->inst_count, 0);
	sc_gen_unref(&gen);
	sc_config_set_current(NULL);
	env_free(&env);
}
END_TEST

START_TEST(test_bad_key)
{
	struct fx_env env;
	struct sc_gen *gen = NULL;
	char want[1024], *err = NULL;

	env_init(&env, NULL);
	env_good(&env, "10-a", "a");
	env_plugin(&env, "20-b", "module: fx_good\ntrace: /dev/null\n"
		   "colour: blue\n");
	ck_assert_int_eq(env_build(&env, false, &gen, &err), -1);
	snprintf(want, sizeof(want), "%s/plugins.d/20-b.yaml:3:1: ", env.dir);
	ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
	ck_assert_msg(strstr(err, "colour") != NULL, "%s", err);
	free(err);
	/* keys are checked before any module code runs */
	ck_assert_str_eq(env_read(&env, "trace"), "");
	sc_config_set_current(NULL);
	env_free(&env);
}
END_TEST

START_TEST(test_check_only)
{
	struct fx_env env;
	struct sc_gen *gen = NULL;
	char *err = NULL;

	env_init(&env, NULL);
	env_good(&env, "10-a", "a");
	env_plugin(&env, "20-fail", "module: fx_fail\n");
	ck_assert_msg(env_build(&env, true, &gen, &err) == 0, "%s", err);
	ck_assert_uint_eq(gen->inst_count, 2);
	sc_gen_unref(&gen);
	/* no module code ran */
	ck_assert_str_eq(env_read(&env, "trace"), "");
	sc_config_set_current(NULL);
	env_free(&env);
}
END_TEST

START_TEST(test_duplicate_name)
{
	struct fx_env env;
	struct sc_main_config *cfg = NULL;
	char path[512], text[256], *err = NULL;

	env_init(&env, NULL);
	snprintf(text, sizeof(text), "module: fx_good\nname: same\n"
		 "trace: %s/trace\n", env.dir);
	env_plugin(&env, "10-a", text);
	env_plugin(&env, "20-b", text);
	/* the config loader refuses it (the loader checks it again) */
	snprintf(path, sizeof(path), "%s/satchel.yaml", env.dir);
	ck_assert_int_eq(sc_main_config_load(path, &cfg, &err), -1);
	ck_assert_msg(strstr(err, "20-b.yaml:") != NULL &&
		      strstr(err, "same") != NULL, "%s", err);
	free(err);
	env_free(&env);
}
END_TEST

START_TEST(test_writable_module)
{
	struct fx_env env;
	char dir[64], cmd[1024], want[1024];

	snprintf(dir, sizeof(dir), "/tmp/check_module_so.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "cp '%s/fx_good.so' '%s/' && "
		 "chmod 0666 '%s/fx_good.so'", FIXTURE_DIR, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	env_init(&env, dir);
	env_good(&env, "10-a", "a");
	snprintf(want, sizeof(want), "module %s/fx_good.so: writable by group "
		 "or others; refusing to use it (chmod go-w)", dir);
	expect_error(&env, want);
	env_free(&env);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- pool jobs of an instance (sc_work_submit_inst) ---- */

/* env_work - an fx_work instance; its job sleeps sleep_ms, and its done
 * chains chain more jobs */
static void
env_work(struct fx_env *env, const char *name, const char *tag,
	 unsigned sleep_ms, unsigned chain)
{
	char text[512];

	snprintf(text, sizeof(text), "module: fx_work\ntrace: %s/trace\n"
		 "tag: %s\nsleep_ms: %u\nchain: %u\n", env->dir, tag,
		 sleep_ms, chain);
	env_plugin(env, name, text);
}

/* wait_trace - poll the trace until it contains want (the pool thread
 * writes it); fails the test after 5 s */
static void
wait_trace(struct fx_env *env, const char *want)
{
	for (int i = 0; i < 500; i++) {
		if (strstr(env_read(env, "trace"), want) != NULL)
			return;
		usleep(10000);
	}
	ck_abort_msg("no \"%s\" in the trace: %s", want,
		     env_read(env, "trace"));
}

/* work_setup - sc_core with the default loop, a generation built from
 * 05-good (fx_good, tag g) and 10-work (fx_work, tag w), started: the
 * job is submitted */
static struct sc_gen *
work_setup(struct fx_env *env, struct sc_core *core, unsigned sleep_ms,
	   unsigned chain)
{
	struct sc_gen *gen = NULL;
	char *err = NULL;

	memset(core, 0, sizeof(*core));
	core->loop = uv_default_loop();
	sc_core = core;
	env_init(env, NULL);
	env_good(env, "05-good", "g");
	env_work(env, "10-work", "w", sleep_ms, chain);
	ck_assert_msg(env_build(env, false, &gen, &err) == 0, "%s", err);
	ck_assert_msg(sc_gen_start(gen, &err) == 0, "%s", err);
	ck_assert_uint_eq(gen->jobs, 1);
	ck_assert_uint_eq(gen->insts[1].jobs, 1);
	ck_assert_uint_eq(gen->insts[0].jobs, 0);
	ck_assert_uint_eq(core->work_pending, 1);
	return gen;
}

static void
work_cleanup(struct fx_env *env)
{
	sc_config_set_current(NULL);
	ck_assert_int_eq(uv_loop_close(uv_default_loop()), 0);
	sc_core = NULL;
	env_free(env);
}

/* The last reference goes while the job sleeps on the pool: nothing is
 * freed until its done ran, and the teardown follows at once. */
START_TEST(test_work_outlives_unref)
{
	struct fx_env env;
	struct sc_core core;
	struct sc_gen *gen, *dead;
	int rounds = 0;

	gen = work_setup(&env, &core, 200, 0);
	wait_trace(&env, "work-start0 w\n");
	dead = gen;
	sc_gen_unref(&gen);
	ck_assert_ptr_null(gen);
	/* Still there: marked dead, waiting for the job. */
	ck_assert(dead->dead);
	ck_assert_uint_eq(dead->refcount, 0);
	ck_assert_uint_eq(dead->jobs, 1);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "new g\nstart g\nwork-start0 w\n");
	wait_trace(&env, "work-end0 w\n");
	/* The work has ended, its done has not run: still nothing freed. */
	ck_assert_str_eq(env_read(&env, "trace"),
			 "new g\nstart g\nwork-start0 w\nwork-end0 w\n");
	/* One loop iteration runs the completion: done, then instance_free
	 * in reverse order right after it (a job from instance_free is
	 * refused). */
	while (strstr(env_read(&env, "trace"), "done0") == NULL) {
		ck_assert_int_lt(rounds++, 100);
		uv_run(uv_default_loop(), UV_RUN_ONCE);
	}
	ck_assert_str_eq(env_read(&env, "trace"),
			 "new g\nstart g\nwork-start0 w\nwork-end0 w\n"
			 "done0 w\nfree0 w\nrefused0 w\nfree g\n");
	ck_assert_uint_eq(core.work_pending, 0);
	work_cleanup(&env);
}
END_TEST

/* A dead generation's done submits more jobs (as its timers may): the
 * teardown waits for the last of them; sc_work_drain runs it all. */
START_TEST(test_work_chain_dead_gen)
{
	struct fx_env env;
	struct sc_core core;
	struct sc_gen *gen;

	gen = work_setup(&env, &core, 50, 2);
	wait_trace(&env, "work-start0 w\n");
	sc_gen_unref(&gen);
	ck_assert_uint_eq(sc_work_drain(5000), 0);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "new g\nstart g\n"
			 "work-start0 w\nwork-end0 w\ndone0 w\n"
			 "work-start1 w\nwork-end1 w\ndone1 w\n"
			 "work-start2 w\nwork-end2 w\ndone2 w\n"
			 "free2 w\nrefused2 w\nfree g\n");
	work_cleanup(&env);
}
END_TEST

/* Jobs done while the generation is still referenced: the last unref
 * tears it down at once, as without jobs. */
START_TEST(test_work_done_before_unref)
{
	struct fx_env env;
	struct sc_core core;
	struct sc_gen *gen;

	gen = work_setup(&env, &core, 10, 0);
	ck_assert_uint_eq(sc_work_drain(5000), 0);
	ck_assert_uint_eq(gen->jobs, 0);
	ck_assert_uint_eq(gen->insts[1].jobs, 0);
	ck_assert(!gen->dead);
	sc_gen_unref(&gen);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "new g\nstart g\nwork-start0 w\nwork-end0 w\n"
			 "done0 w\nfree0 w\nrefused0 w\nfree g\n");
	work_cleanup(&env);
}
END_TEST

/* ---- reload-surviving instance state (sc_instance_state_get/put) ---- */

/* env_state - plugins.d/NAME.yaml: an instance of module (fx_state or
 * fx_state_b) tagged tag */
static void
env_state(struct fx_env *env, const char *name, const char *module,
	  const char *tag, bool fresh)
{
	char text[512];

	snprintf(text, sizeof(text), "module: %s\ntrace: %s/trace\ntag: %s\n"
		 "fresh: %s\n", module, env->dir, tag,
		 fresh ? "true" : "false");
	env_plugin(env, name, text);
}

/* env_unplug - removes plugins.d/NAME.yaml */
static void
env_unplug(struct fx_env *env, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/plugins.d/%s.yaml", env->dir, name);
	ck_assert_int_eq(unlink(path), 0);
}

/* state_gen - builds and starts a generation from the files as they are */
static struct sc_gen *
state_gen(struct fx_env *env)
{
	struct sc_gen *gen = NULL;
	char *err = NULL;

	ck_assert_msg(env_build(env, false, &gen, &err) == 0, "%s", err);
	ck_assert_msg(sc_gen_start(gen, &err) == 0, "%s", err);
	return gen;
}

static void
state_setup(struct fx_env *env, struct sc_core *core)
{
	memset(core, 0, sizeof(*core));
	core->loop = uv_default_loop();
	sc_core = core;
	env_init(env, NULL);
}

static void
state_cleanup(struct fx_env *env, struct sc_core *core)
{
	/* every state went with its last holder */
	ck_assert_ptr_null(core->inst_states);
	work_cleanup(env);
}

/* Across two reloads the state goes from generation to generation, old
 * and new holding it at once; it is freed after the last holder's
 * instance_free, not before. */
START_TEST(test_state_reload)
{
	struct fx_env env;
	struct sc_core core;
	struct sc_gen *g1, *g2, *g3;

	state_setup(&env, &core);
	env_state(&env, "10-s", "fx_state", "a", false);
	g1 = state_gen(&env);
	ck_assert_str_eq(env_read(&env, "trace"), "put a (0)\n");
	env_state(&env, "10-s", "fx_state", "b", false);
	g2 = state_gen(&env);
	sc_gen_unref(&g1);
	env_state(&env, "10-s", "fx_state", "c", false);
	g3 = state_gen(&env);
	sc_gen_unref(&g2);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "put a (0)\ngot a in b (1)\nfree a (state a, 0)\n"
			 "got a in c (2)\nfree b (state a, 0)\n");
	sc_gen_unref(&g3);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "put a (0)\ngot a in b (1)\nfree a (state a, 0)\n"
			 "got a in c (2)\nfree b (state a, 0)\n"
			 "free c (state a, 0)\nstate-free a after 2\n");
	state_cleanup(&env, &core);
}
END_TEST

/* A new state put by the successor (its config changed the layout) goes
 * on from there while the old generation keeps the old one; a renamed
 * instance starts empty; each state is freed with its last holder. */
START_TEST(test_state_fresh_and_renamed)
{
	struct fx_env env;
	struct sc_core core;
	struct sc_gen *g1, *g2, *g3;

	state_setup(&env, &core);
	env_state(&env, "10-s", "fx_state", "a", false);
	g1 = state_gen(&env);
	env_state(&env, "10-s", "fx_state", "b", true);
	env_state(&env, "20-t", "fx_state", "c", false);
	g2 = state_gen(&env);
	sc_gen_unref(&g1);
	env_state(&env, "10-s", "fx_state", "d", false);
	env_unplug(&env, "20-t");
	env_state(&env, "30-u", "fx_state", "e", false);
	g3 = state_gen(&env);
	sc_gen_unref(&g2);
	sc_gen_unref(&g3);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "put a (0)\n"
			 "put b (0)\nput c (0)\n"
			 "free a (state a, 0)\nstate-free a after 0\n"
			 "got b in d (1)\nput e (0)\n"
			 "free c (state c, 0)\nstate-free c after 0\n"
			 "free b (state b, 0)\n"
			 "free e (state e, 0)\nstate-free e after 0\n"
			 "free d (state b, 0)\nstate-free b after 1\n");
	state_cleanup(&env, &core);
}
END_TEST

/* An instance of the same name but another module never gets the state. */
START_TEST(test_state_other_module)
{
	struct fx_env env;
	struct sc_core core;
	struct sc_gen *g1, *g2;

	state_setup(&env, &core);
	env_state(&env, "10-s", "fx_state", "a", false);
	g1 = state_gen(&env);
	env_state(&env, "10-s", "fx_state_b", "b", false);
	g2 = state_gen(&env);
	sc_gen_unref(&g1);
	sc_gen_unref(&g2);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "put a (0)\nput b (0)\n"
			 "free a (state a, 0)\nstate-free a after 0\n"
			 "free b (state b, 0)\nstate-free b after 0\n");
	state_cleanup(&env, &core);
}
END_TEST

/* A reload that fails after the new instance got the state: the new
 * instance lets go of it, the running one keeps it, and the next reload
 * gets it again. */
START_TEST(test_state_failed_reload)
{
	struct fx_env env;
	struct sc_core core;
	struct sc_gen *g1, *g2 = NULL, *g3;
	char *err = NULL;

	state_setup(&env, &core);
	env_state(&env, "10-s", "fx_state", "a", false);
	g1 = state_gen(&env);
	env_state(&env, "10-s", "fx_state", "b", false);
	env_plugin(&env, "30-fail", "module: fx_fail\n");
	ck_assert_int_eq(env_build(&env, false, &g2, &err), -1);
	ck_assert_ptr_null(g2);
	free(err);
	sc_config_set_current(g1->cfg);
	env_unplug(&env, "30-fail");
	env_state(&env, "10-s", "fx_state", "c", false);
	g3 = state_gen(&env);
	sc_gen_unref(&g1);
	sc_gen_unref(&g3);
	ck_assert_str_eq(env_read(&env, "trace"),
			 "put a (0)\ngot a in b (1)\nfree b (state a, 0)\n"
			 "got a in c (2)\nfree a (state a, 0)\n"
			 "free c (state a, 0)\nstate-free a after 2\n");
	state_cleanup(&env, &core);
}
END_TEST

static Suite *
module_suite(void)
{
	Suite *s = suite_create("module");
	TCase *tc = tcase_create("loader");

	tcase_add_test(tc, test_good_order);
	tcase_add_test(tc, test_wrong_abi);
	tcase_add_test(tc, test_wrong_signature);
	tcase_add_test(tc, test_signature_sizes);
	tcase_add_test(tc, test_wrong_time_t);
	tcase_add_test(tc, test_old_signature_loads);
	tcase_add_test(tc, test_signature_forms);
	tcase_add_test(tc, test_missing_symbol);
	tcase_add_test(tc, test_name_mismatch);
	tcase_add_test(tc, test_instance_new_fails);
	tcase_add_test(tc, test_missing_dependency);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_bad_key);
	tcase_add_test(tc, test_check_only);
	tcase_add_test(tc, test_duplicate_name);
	tcase_add_test(tc, test_writable_module);
	suite_add_tcase(s, tc);
	tc = tcase_create("work");
	tcase_add_test(tc, test_work_outlives_unref);
	tcase_add_test(tc, test_work_chain_dead_gen);
	tcase_add_test(tc, test_work_done_before_unref);
	suite_add_tcase(s, tc);
	tc = tcase_create("state");
	tcase_add_test(tc, test_state_reload);
	tcase_add_test(tc, test_state_fresh_and_renamed);
	tcase_add_test(tc, test_state_other_module);
	tcase_add_test(tc, test_state_failed_reload);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(module_suite());
	int failed;

	/* Files the tests write must pass the loader's owner/mode check. */
	umask(022);
	sc_log_init(true, SC_LOG_WARNING);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}
