/* SPDX-License-Identifier: MIT */
/*
 * core/module.c - the module loader and config generations.
 *
 * Opens each module named in a plugins.d file (Dovecot module-dir.c style:
 * owner check, dlopen, name-derived symbol, ABI and signature check,
 * dependencies), parses its keys, creates instances in file order and
 * tears them down in reverse. Also the registration functions modules call
 * from instance_start. Loop thread (and satchelctl's main thread).
 */
#include "core.h"
#include "config_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

/* A module handle plus what only the loader needs. */
struct module_handle {
	struct sc_module_handle h;	/* first: core.h's view          */
	bool loaded;			/* load() was called             */
};

/* A generation plus what only the loader needs. */
struct gen_priv {
	struct sc_gen g;		/* first: core.h's view          */
	bool check_only;
	size_t created;			/* instances with instance_new done */
};

static const struct sc_config_key no_keys[] = { { .name = NULL } };

/* errorf - a malloc'd error message */
static char *
errorf(const char *fmt, ...) SC_PRINTF(1, 2);

static char *
errorf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* ---- instance accessors ---- */

const char *
sc_instance_name(const struct sc_instance *inst)
{
	if (inst == NULL || inst->conf == NULL)
		return "core";
	return inst->conf->name;
}

const char *
sc_instance_module(const struct sc_instance *inst)
{
	if (inst == NULL || inst->conf == NULL)
		return "core";
	return inst->conf->module;
}

const char *
sc_instance_file(const struct sc_instance *inst)
{
	if (inst == NULL || inst->conf == NULL)
		return "";
	return inst->conf->file;
}

/* mkdir_mode - mkdir that accepts an existing directory */
static int
mkdir_mode(const char *path, mode_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return -1;
}

const char *
sc_instance_state_dir(struct sc_instance *inst)
{
	const char *base;
	char *parent, *dir;

	if (inst == NULL || inst->gen == NULL || inst->gen->cfg == NULL)
		return NULL;
	if (inst->state_dir != NULL)
		return inst->state_dir;
	base = inst->gen->cfg->state_dir;
	if (base == NULL)
		return NULL;
	parent = errorf("%s/modules", base);
	dir = errorf("%s/modules/%s", base, sc_instance_module(inst));
	if (parent == NULL || dir == NULL || mkdir_mode(base, 0750) < 0 ||
	    mkdir_mode(parent, 0750) < 0 || mkdir_mode(dir, 0750) < 0) {
		sc_log_error("%s: cannot create the state directory %s: %s",
			     sc_instance_name(inst), dir ? dir : base,
			     strerror(errno));
		free(parent);
		free(dir);
		return NULL;
	}
	free(parent);
	inst->state_dir = dir;
	return dir;
}

/* ---- registration (from instance_new/instance_start) ---- */

/* grow - make room for one more element in *v */
static int
grow(void **v, size_t count, size_t size)
{
	void *n = realloc(*v, (count + 1) * size);

	if (n == NULL)
		return -1;
	*v = n;
	return 0;
}

/* sc_hook_register_phase - POLICY entries go after the policy entries
 * registered so far, NORMAL ones at the end: registration runs in file
 * order, so each phase keeps file order and all POLICY ones come first */
int
sc_hook_register_phase(struct sc_instance *inst, enum sc_hook hook,
		       enum sc_hook_phase phase, sc_hook_fn fn, void *data)
{
	struct sc_gen *gen;
	struct sc_hook_entry *v;
	size_t at;

	if (inst == NULL || (unsigned)hook >= SC_HOOK_COUNT || fn == NULL ||
	    (phase != SC_PHASE_NORMAL && phase != SC_PHASE_POLICY))
		return -1;
	gen = inst->gen;
	if (grow((void **)&gen->hooks[hook], gen->hook_count[hook],
		 sizeof(*gen->hooks[hook])) < 0)
		return -1;
	v = gen->hooks[hook];
	at = phase == SC_PHASE_POLICY ? gen->hook_policy[hook] :
		gen->hook_count[hook];
	memmove(&v[at + 1], &v[at],
		(gen->hook_count[hook] - at) * sizeof(*v));
	v[at] = (struct sc_hook_entry){ inst, fn, data, phase };
	gen->hook_count[hook]++;
	if (phase == SC_PHASE_POLICY)
		gen->hook_policy[hook]++;
	return 0;
}

int
sc_hook_register(struct sc_instance *inst, enum sc_hook hook, sc_hook_fn fn,
		 void *data)
{
	return sc_hook_register_phase(inst, hook, SC_PHASE_NORMAL, fn, data);
}

int
sc_event_subscribe(struct sc_instance *inst, enum sc_event_type type,
		   sc_event_fn fn, void *data)
{
	struct sc_gen *gen;

	if (inst == NULL || (unsigned)type >= SC_EVENT_COUNT || fn == NULL)
		return -1;
	gen = inst->gen;
	if (grow((void **)&gen->events[type], gen->event_count[type],
		 sizeof(*gen->events[type])) < 0)
		return -1;
	gen->events[type][gen->event_count[type]++] =
		(struct sc_event_entry){ inst, fn, data };
	return 0;
}

int
sc_delivery_register(struct sc_instance *inst,
		     const struct sc_delivery_driver *drv, void *data)
{
	struct sc_gen *gen;

	if (inst == NULL || drv == NULL || drv->kind == NULL ||
	    drv->deliver == NULL)
		return -1;
	gen = inst->gen;
	if (grow((void **)&gen->drivers, gen->driver_count,
		 sizeof(*gen->drivers)) < 0)
		return -1;
	gen->drivers[gen->driver_count++] =
		(struct sc_driver_entry){ inst, drv, data };
	return 0;
}

int
sc_status_register(struct sc_instance *inst, sc_status_fn fn, void *data)
{
	struct sc_gen *gen;

	if (inst == NULL || fn == NULL)
		return -1;
	gen = inst->gen;
	if (grow((void **)&gen->status, gen->status_count,
		 sizeof(*gen->status)) < 0)
		return -1;
	gen->status[gen->status_count++] =
		(struct sc_status_entry){ inst, fn, data };
	return 0;
}

/* ---- loading ---- */

/* The types of the build signature, by letter (module.h). */
static const struct {
	char letter;
	const char *type;
} sig_types[] = {
	{ 'p', "void *" }, { 'l', "long" }, { 't', "time_t" },
	{ 'o', "off_t" }, { 'z', "size_t" },
};

/* sig_size - the size in bytes sig gives for letter, or -1 when it has
 * none (or is not in the letter, size form) */
static int
sig_size(const char *sig, char letter)
{
	for (size_t i = 0; sig[i] != '\0' && sig[i + 1] != '\0'; i += 2) {
		char c = sig[i + 1];

		if (sig[i] != letter)
			continue;
		if (c >= '0' && c <= '9')
			return c - '0';
		if (c >= 'a' && c <= 'z')
			return c - 'a' + 10;
		return -1;
	}
	return -1;
}

/* signature_check - step 4b: the module's type sizes are ours, compared
 * type by type so the error names the one that differs */
static int
signature_check(const struct sc_module *mod, const char *stem,
		const char *path, char **error_r)
{
	const char *sig = mod->signature, *ours = SC_MODULE_SIGNATURE;
	char legacy[64];

	if (sig != NULL && strcmp(sig, ours) == 0)
		return 0;
	/* ABI <= 1.1 headers put macro names where t and o belong */
	snprintf(legacy, sizeof(legacy),
		 "p%zul%zut__SIZEOF_TIME_T__o__SIZEOF_OFF_T__z%zu",
		 sizeof(void *), sizeof(long), sizeof(size_t));
	if (sig != NULL && mod->abi_minor < 2 && strcmp(sig, legacy) == 0) {
		sc_log_warning("module %s (%s): built for ABI %u.%u, whose "
			       "build signature does not record the sizes of "
			       "time_t and off_t, so they are not checked; "
			       "rebuild the module", stem, path,
			       mod->abi_major, mod->abi_minor);
		return 0;
	}
	for (size_t i = 0; sig != NULL &&
	     i < sizeof(sig_types) / sizeof(sig_types[0]); i++) {
		int theirs = sig_size(sig, sig_types[i].letter);
		int mine = sig_size(ours, sig_types[i].letter);

		if (theirs >= 0 && theirs != mine) {
			*error_r = errorf("module %s (%s): built with "
					  "sizeof(%s) %d, satcheld has %d "
					  "(signature %s, satcheld's %s); "
					  "rebuild the module with the same "
					  "compiler and flags", stem, path,
					  sig_types[i].type, theirs, mine,
					  sig, ours);
			return -1;
		}
	}
	*error_r = errorf("module %s (%s): built with signature %s, "
			  "satcheld has %s; rebuild the module with the same "
			  "compiler and flags", stem, path,
			  sig ? sig : "(none)", ours);
	return -1;
}

/* sc_module_check - step 4 of the loader: ABI, descriptor size, build
 * signature, and that the declared name is the file stem */
int
sc_module_check(const struct sc_module *mod, const char *stem,
		const char *path, char **error_r)
{
	if (mod->abi_major != SC_ABI_MAJOR || mod->abi_minor > SC_ABI_MINOR) {
		*error_r = errorf("module %s (%s): built for ABI %u.%u, "
				  "satcheld has ABI %u.%u; rebuild the module",
				  stem, path, mod->abi_major, mod->abi_minor,
				  (unsigned)SC_ABI_MAJOR,
				  (unsigned)SC_ABI_MINOR);
		return -1;
	}
	if (mod->struct_size > sizeof(struct sc_module)) {
		*error_r = errorf("module %s (%s): descriptor of %u bytes is "
				  "larger than satcheld's %zu; rebuild the "
				  "module", stem, path, mod->struct_size,
				  sizeof(struct sc_module));
		return -1;
	}
	if (signature_check(mod, stem, path, error_r) < 0)
		return -1;
	if (mod->name == NULL || strcmp(mod->name, stem) != 0) {
		*error_r = errorf("module %s (%s): declares the name \"%s\"; "
				  "the file must be named %s.so", stem, path,
				  mod->name ? mod->name : "",
				  mod->name ? mod->name : "NAME");
		return -1;
	}
	return 0;
}

/* file_trusted - step 1: owned by root or us, not writable by others
 * (Postfix dynamicmaps.c): a module runs with our privileges */
static int
file_trusted(const char *path, const char *what, char **error_r)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		*error_r = errorf("%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		*error_r = errorf("%s %s: owned by uid %u, not by root or "
				  "uid %u; refusing to use it", what, path,
				  (unsigned)st.st_uid, (unsigned)geteuid());
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		*error_r = errorf("%s %s: writable by group or others; "
				  "refusing to use it (chmod go-w)", what,
				  path);
		return -1;
	}
	return 0;
}

/* conf_module_mark - LINE:COL of the `module:` value of ic */
static void
conf_module_mark(const struct sc_inst_conf *ic, unsigned *line_r,
		 unsigned *col_r)
{
	*line_r = 1;
	*col_r = 1;
	if (ic->root == NULL || ic->root->type != SC_YMAP)
		return;
	for (size_t i = 0; i < ic->root->n; i++) {
		const struct sc_ynode *k = ic->root->keys[i];
		if (k->scalar != NULL && strcmp(k->scalar, "module") == 0) {
			*line_r = ic->root->items[i]->line;
			*col_r = ic->root->items[i]->col;
			return;
		}
	}
}

/* handle_find - an open handle for path in gen (or the current one) */
static struct module_handle *
handle_find(const struct sc_gen *gen, const char *path)
{
	for (size_t i = 0; gen != NULL && i < gen->inst_count; i++) {
		struct sc_module_handle *mh = gen->insts[i].mh;
		if (mh != NULL && strcmp(mh->path, path) == 0)
			return (struct module_handle *)mh;
	}
	return NULL;
}

/* handle_release - drop an instance's use of mh; the last one unloads */
static void
handle_release(struct module_handle *mh)
{
	if (mh == NULL || --mh->h.instances > 0)
		return;
	if (mh->loaded && mh->h.mod->unload != NULL)
		mh->h.mod->unload();
	/* Under ASan keep the code mapped so leak reports can symbolize
	 * module frames; dlclose otherwise. */
#ifndef __SANITIZE_ADDRESS__
	dlclose(mh->h.dl);
#endif
	free(mh->h.path);
	free(mh);
}

/* handle_open - steps 1-4: a checked handle for the module of ic */
static struct module_handle *
handle_open(struct gen_priv *gp, const struct sc_inst_conf *ic,
	    char **error_r)
{
	const struct sc_main_config *cfg = gp->g.cfg;
	struct module_handle *mh;
	const struct sc_module *mod;
	char *path, *sym, *err = NULL;
	unsigned line, col;
	void *dl;

	path = errorf("%s/%s.so", cfg->module_dir, ic->module);
	if (path == NULL) {
		*error_r = errorf("out of memory");
		return NULL;
	}
	mh = handle_find(&gp->g, path);
	if (mh == NULL && !gp->check_only && sc_core != NULL)
		mh = handle_find(sc_core->gen, path);
	if (mh != NULL) {
		free(path);
		mh->h.instances++;
		return mh;
	}

	conf_module_mark(ic, &line, &col);
	if (access(path, F_OK) < 0) {
		*error_r = errorf("%s:%u:%u: module %s: %s: %s (install it, "
				  "or set `enabled: false` in this file)",
				  ic->file, line, col, ic->module, path,
				  strerror(errno));
		free(path);
		return NULL;
	}
	if (file_trusted(path, "module", &err) < 0) {
		*error_r = err;
		free(path);
		return NULL;
	}
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		*error_r = errorf("module %s (%s): cannot load it: %s",
				  ic->module, path, dlerror());
		free(path);
		return NULL;
	}
	sym = errorf("sc_module_%s", ic->module);
	mod = sym != NULL ? dlsym(dl, sym) : NULL;
	if (mod == NULL) {
		*error_r = errorf("module %s (%s): no symbol %s; not a "
				  "satchel module, or built under another "
				  "name", ic->module, path,
				  sym ? sym : "sc_module_NAME");
		free(sym);
		dlclose(dl);
		free(path);
		return NULL;
	}
	free(sym);
	if (sc_module_check(mod, ic->module, path, error_r) < 0) {
		dlclose(dl);
		free(path);
		return NULL;
	}
	/* a module key named like a reserved one would silently never be
	 * set (the core takes `name:` for the instance name) */
	if (sc_config_keys_reserved_check(mod->keys, &err) < 0) {
		*error_r = errorf("module %s (%s): %s", ic->module, path,
				  err != NULL ? err : "out of memory");
		free(err);
		dlclose(dl);
		free(path);
		return NULL;
	}
	mh = calloc(1, sizeof(*mh));
	if (mh == NULL) {
		*error_r = errorf("out of memory");
		dlclose(dl);
		free(path);
		return NULL;
	}
	mh->h.path = path;
	mh->h.dl = dl;
	mh->h.mod = mod;
	mh->h.instances = 1;
	if (!gp->check_only && mod->load != NULL) {
		const char *lerr = NULL;
		if (mod->load(&lerr) < 0) {
			*error_r = errorf("module %s (%s): load failed: %s",
					  ic->module, path,
					  lerr ? lerr : "unknown error");
			mh->h.instances = 0;
			dlclose(dl);
			free(path);
			free(mh);
			return NULL;
		}
	}
	mh->loaded = !gp->check_only;
	return mh;
}

/* check_depends - step 5: every module mod depends on is enabled */
static int
check_depends(const struct sc_main_config *cfg, const struct sc_inst_conf *ic,
	      const struct sc_module *mod, char **error_r)
{
	for (size_t d = 0; mod->depends != NULL && mod->depends[d]; d++) {
		const char *dep = mod->depends[d];
		bool found = false;

		for (size_t i = 0; i < cfg->inst_count && !found; i++)
			found = cfg->insts[i].enabled &&
				strcmp(cfg->insts[i].module, dep) == 0;
		if (!found) {
			*error_r = errorf("%s: module %s depends on module "
					  "%s, which is not enabled; add "
					  "plugins.d/NN-%s.yaml with "
					  "`module: %s`", ic->file,
					  ic->module, dep, dep, dep);
			return -1;
		}
	}
	return 0;
}

/* inst_release - free one instance's config and handle use */
static void
inst_release(struct sc_instance *inst)
{
	const struct sc_module *mod = inst->mh ? inst->mh->mod : NULL;

	if (inst->config != NULL && mod != NULL)
		sc_config_free_keys(mod->keys ? mod->keys : no_keys,
				    inst->config);
	free(inst->config);
	inst->config = NULL;
	free(inst->state_dir);
	inst->state_dir = NULL;
	handle_release((struct module_handle *)inst->mh);
	inst->mh = NULL;
}

/* gen_teardown - instance_free in reverse order, then everything else;
 * only once no job of the generation is pending (gen_release) */
static void
gen_teardown(struct gen_priv *gp)
{
	struct sc_gen *gen = &gp->g;

	gen->freeing = true;	/* sc_work_submit_inst refuses from here */
	if (!gp->check_only)
		sc_net_gen_free(gen);	/* listeners close before their owner */
	for (size_t i = gen->inst_count; i-- > 0;) {
		struct sc_instance *inst = &gen->insts[i];
		const struct sc_module *mod = inst->mh->mod;

		if (i < gp->created && mod->instance_free != NULL)
			mod->instance_free(inst, inst->data);
		/* the state's free_fn is module code: before the unload */
		sc_instance_state_release(inst);
		sc_metrics_instance_gone(inst);
		inst_release(inst);
	}
	for (size_t h = 0; h < SC_HOOK_COUNT; h++)
		free(gen->hooks[h]);
	for (size_t e = 0; e < SC_EVENT_COUNT; e++)
		free(gen->events[e]);
	free(gen->drivers);
	free(gen->status);
	free(gen->insts);
	sc_main_config_free(&gen->cfg);
	free(gp);
}

/*
 * gen_release - the generation lost its last reference. Its listeners
 * close now, so no new session can start in it; the instances go when no
 * job of theirs (pool work, DNS lookup) is pending anymore: a job's
 * callbacks may use the instance data and module code until they
 * returned. Otherwise the generation is only marked dead and
 * sc_gen_job_end, on the completion of its last job, tears it down. Its
 * timers may still start jobs meanwhile (they are counted like any other).
 */
static void
gen_release(struct gen_priv *gp)
{
	struct sc_gen *gen = &gp->g;

	if (!gp->check_only)
		sc_net_gen_free(gen);
	if (gen->jobs > 0) {
		if (!gen->dead)
			sc_log_debug("config generation %u: teardown waits "
				     "for %u job%s (pool work, DNS lookups)",
				     gen->serial, gen->jobs,
				     gen->jobs == 1 ? "" : "s");
		gen->dead = true;
		return;
	}
	gen_teardown(gp);
}

bool
sc_gen_job_allowed(struct sc_instance *inst, const char *what)
{
	if (inst != NULL && inst->gen != NULL && inst->gen->freeing) {
		/* Its instance is going away right now: nobody would be
		 * left to run the completion against. */
		sc_log_error("%s: %s started during instance_free; refused",
			     sc_instance_name(inst), what);
		return false;
	}
	return true;
}

void
sc_gen_job_begin(struct sc_instance *inst)
{
	if (inst == NULL || inst->gen == NULL)
		return;
	inst->jobs++;
	inst->gen->jobs++;
}

void
sc_gen_job_end(struct sc_instance *inst)
{
	struct sc_gen *gen = inst->gen;

	if (inst->jobs == 0 || gen->jobs == 0)
		sc_panic("instance %s: job count underflow",
			 sc_instance_name(inst));
	inst->jobs--;
	gen->jobs--;
	if (gen->dead && gen->refcount == 0 && gen->jobs == 0) {
		sc_log_debug("config generation %u: last job done",
			     gen->serial);
		gen_teardown((struct gen_priv *)gen);
	}
}

/* sc_gen_build - the loader, steps 1-6, for every enabled instance of cfg */
int
sc_gen_build(struct sc_main_config *cfg, bool check_only,
	     struct sc_gen **gen_r, char **error_r)
{
	struct gen_priv *gp;
	struct sc_gen *gen;
	char *err = NULL;

	*gen_r = NULL;
	gp = calloc(1, sizeof(*gp));
	if (gp == NULL ||
	    (cfg->inst_count > 0 &&
	     (gp->g.insts = calloc(cfg->inst_count,
				   sizeof(*gp->g.insts))) == NULL)) {
		free(gp);
		sc_main_config_free(&cfg);
		*error_r = errorf("out of memory");
		return -1;
	}
	gen = &gp->g;
	gp->check_only = check_only;
	gen->refcount = 1;
	gen->serial = sc_core != NULL && sc_core->gen != NULL ?
		sc_core->gen->serial + 1 : 1;
	gen->cfg = cfg;

	/* Steps 1-5 and the keys for every instance, before any module
	 * code runs: a bad file stops everything with nothing started. */
	for (size_t i = 0; i < cfg->inst_count; i++) {
		const struct sc_inst_conf *ic = &cfg->insts[i];
		struct sc_instance *inst;
		const struct sc_module *mod;

		if (!ic->enabled)
			continue;
		for (size_t j = 0; j < i; j++) {
			if (cfg->insts[j].enabled &&
			    strcmp(cfg->insts[j].name, ic->name) == 0) {
				err = errorf("%s: instance name \"%s\" is "
					     "already used by %s", ic->file,
					     ic->name, cfg->insts[j].file);
				goto fail;
			}
		}
		if (file_trusted(ic->file, "config file", &err) < 0)
			goto fail;
		inst = &gen->insts[gen->inst_count];
		inst->gen = gen;
		inst->conf = ic;
		inst->slot = gen->inst_count;
		inst->mh = (struct sc_module_handle *)handle_open(gp, ic, &err);
		if (inst->mh == NULL)
			goto fail;
		gen->inst_count++;
		mod = inst->mh->mod;
		if (check_depends(cfg, ic, mod, &err) < 0)
			goto fail;
		inst->config = calloc(1, mod->config_size ?
				      mod->config_size : 1);
		if (inst->config == NULL) {
			err = errorf("out of memory");
			goto fail;
		}
		if (sc_config_parse_keys(ic, mod->keys ? mod->keys : no_keys,
					 inst->config, &err) < 0) {
			/* The parser frees what it took on failure. */
			free(inst->config);
			inst->config = NULL;
			goto fail;
		}
		/* the parsed config stays with the instance: freed with it */
		if (sc_config_validate(ic, mod, inst->config, &err) < 0)
			goto fail;
	}

	/* Step 6: instance_new in file order. */
	for (size_t i = 0; !check_only && i < gen->inst_count; i++) {
		struct sc_instance *inst = &gen->insts[i];
		const struct sc_module *mod = inst->mh->mod;
		const char *ierr = NULL;

		if (mod->instance_new != NULL &&
		    mod->instance_new(inst, inst->config, &inst->data,
				      &ierr) < 0) {
			err = errorf("%s: %s (module %s): %s", inst->conf->file,
				     inst->conf->name, inst->conf->module,
				     ierr ? ierr : "cannot create the "
				     "instance");
			goto fail;
		}
		gp->created++;
		sc_log_debug("instance %s (module %s) created",
			     inst->conf->name, inst->conf->module);
	}
	*gen_r = gen;
	return 0;

fail:
	*error_r = err != NULL ? err : errorf("out of memory");
	/* instance_new may have submitted jobs already */
	gen->refcount = 0;
	gen_release(gp);
	return -1;
}

/* sc_gen_start - instance_start in file order (after the privilege drop) */
int
sc_gen_start(struct sc_gen *gen, char **error_r)
{
	for (size_t i = 0; i < gen->inst_count; i++) {
		struct sc_instance *inst = &gen->insts[i];
		const struct sc_module *mod = inst->mh->mod;
		const char *err = NULL;

		if (inst->started)
			continue;
		if (mod->instance_start != NULL &&
		    mod->instance_start(inst, inst->data, &err) < 0) {
			*error_r = errorf("%s: %s (module %s): %s",
					  inst->conf->file, inst->conf->name,
					  inst->conf->module,
					  err ? err : "cannot start the "
					  "instance");
			return -1;
		}
		inst->started = true;
	}
	return 0;
}

void
sc_gen_ref(struct sc_gen *gen)
{
	gen->refcount++;
}

void
sc_gen_unref(struct sc_gen **genp)
{
	struct sc_gen *gen;

	if (genp == NULL || *genp == NULL)
		return;
	gen = *genp;
	*genp = NULL;
	if (--gen->refcount > 0)
		return;
	sc_log_debug("config generation %u released", gen->serial);
	gen_release((struct gen_priv *)gen);
}
