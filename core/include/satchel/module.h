/* SPDX-License-Identifier: MIT */
/*
 * satchel/module.h - the module descriptor and the ABI check.
 *
 * Every module exports exactly one symbol, sc_module_<name>, where <name> is
 * the file stem of NAME.so.  The core refuses a module whose ABI or build
 * signature differs from its own before calling any of its code.
 */
#ifndef SATCHEL_MODULE_H
#define SATCHEL_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

#include <satchel/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the functions satcheld exports to modules (it is built with
 * -fvisibility=hidden; everything else stays private). */
#define SC_API __attribute__((visibility("default")))

#define SC_PRINTF(f, a) __attribute__((format(printf, f, a)))

/*
 * Build signature: a module built with other type sizes than the core
 * would corrupt memory silently, so the loader compares the sizes, type by
 * type. The string is letter, size pairs: p pointer, l long, t time_t,
 * o off_t, z size_t, each size in bytes as one character ('0' + n, or
 * 'a' + n - 10 from 10 on), e.g. "p8l8t8o8z8". The sizes are sizeof
 * values of the module's own compilation (its -D_FILE_OFFSET_BITS,
 * -D_TIME_BITS...), taken at compile time. Since ABI 1.2: before, t and
 * o carried the names of macros no compiler defines, so time_t and off_t
 * were never compared; the loader still accepts that form from a module
 * built for ABI 1.1 or older (the other sizes must match), with a warning.
 * SC_MODULE_SIGNATURE is a C compound literal (a const char array).
 */
#define SC_SIGNATURE_SIZE(n) \
	((char)((n) < 10 ? '0' + (n) : 'a' + (n) - 10))
#define SC_MODULE_SIGNATURE ((const char[]){ \
	'p', SC_SIGNATURE_SIZE(sizeof(void *)), \
	'l', SC_SIGNATURE_SIZE(sizeof(long)), \
	't', SC_SIGNATURE_SIZE(sizeof(time_t)), \
	'o', SC_SIGNATURE_SIZE(sizeof(off_t)), \
	'z', SC_SIGNATURE_SIZE(sizeof(size_t)), '\0' })
#ifdef __cplusplus
/* C++ (17 or later) has no compound literals: the same array as a static
 * member of a template, which may not have C linkage. */
}
template <int sc_unused = 0> struct sc_module_signature_of_build {
	static constexpr char value[] = {
		'p', SC_SIGNATURE_SIZE(sizeof(void *)),
		'l', SC_SIGNATURE_SIZE(sizeof(long)),
		't', SC_SIGNATURE_SIZE(sizeof(time_t)),
		'o', SC_SIGNATURE_SIZE(sizeof(off_t)),
		'z', SC_SIGNATURE_SIZE(sizeof(size_t)), '\0' };
};
extern "C" {
#undef SC_MODULE_SIGNATURE
#define SC_MODULE_SIGNATURE (sc_module_signature_of_build<>::value)
#endif

/* In C++ every field of struct sc_module has a default, so a descriptor
 * names only what it sets (C zero-fills what designated initializers
 * leave out; C++ -Wextra would warn about each missing field). */
#ifdef __cplusplus
#define SC_CXX_DEFAULT(v) = v
#else
#define SC_CXX_DEFAULT(v)
#endif

struct sc_config_key;
struct sc_config_check;
/* One configured instance of a module: one plugins.d file. Opaque. */
struct sc_instance;

struct sc_module {
	/* filled by SC_MODULE_HEADER */
	uint32_t abi_major SC_CXX_DEFAULT(0);
	uint32_t abi_minor SC_CXX_DEFAULT(0);
	uint32_t struct_size SC_CXX_DEFAULT(0);	/* sizeof at build */
	const char *signature SC_CXX_DEFAULT(nullptr); /* of the build */
	/* must equal the file stem */
	const char *name SC_CXX_DEFAULT(nullptr);
	/* the module's own version */
	const char *version SC_CXX_DEFAULT(nullptr);
	/* one line for `satchelctl modules` */
	const char *description SC_CXX_DEFAULT(nullptr);
	/* NULL-terminated module names, or NULL */
	const char *const *depends SC_CXX_DEFAULT(nullptr);
	/* key schema; NULL = no keys */
	const struct sc_config_key *keys SC_CXX_DEFAULT(nullptr);
	/* size of the module's config struct */
	size_t config_size SC_CXX_DEFAULT(0);

	/* On -1, the hooks below may set *error_r to a message saying why.
	 * The core copies it at once, before it calls the module again or
	 * unloads it, and never frees it: it need only stay valid until the
	 * hook returns (a string literal, or text in the module's own data;
	 * not a buffer on the hook's stack). */

	/* When a generation first needs the module, before its keys are
	 * parsed; not again while any instance of it lives (reloads keep
	 * it loaded), and not for `satcheld -t`. Optional. 0 or -1. */
	int (*load)(const char **error_r) SC_CXX_DEFAULT(nullptr);
	/* Once per plugins.d file, in file order: at start-up as root,
	 * before the privilege drop; at a reload as the daemon's user,
	 * while the running generation still serves. Check the parsed
	 * config (owned by the core, valid until instance_free) and open
	 * listeners. Store private state in *data_r.  0 or -1. */
	int (*instance_new)(struct sc_instance *inst, const void *config,
			    void **data_r, const char **error_r)
		SC_CXX_DEFAULT(nullptr);
	/* After the privilege drop: register hooks, drivers, events, timers.
	 * Optional. 0 or -1. */
	int (*instance_start)(struct sc_instance *inst, void *data,
			      const char **error_r) SC_CXX_DEFAULT(nullptr);
	/* Teardown, in reverse load order, once the instance's generation
	 * is released (see sc_work_submit_inst); also for an instance that
	 * was created but never started (a later one failed). Free timers,
	 * fd watches and outbound connections here. Optional. */
	void (*instance_free)(struct sc_instance *inst, void *data)
		SC_CXX_DEFAULT(nullptr);
	/* Once per process, after the last instance is freed. Optional. */
	void (*unload)(void) SC_CXX_DEFAULT(nullptr);
	/* Since ABI 1.2. Optional. Right after the core parsed the file
	 * against keys (also for `satcheld -t` and `satchelctl check`, which
	 * create no instance): rules the key table cannot say - keys that
	 * exclude each other, a list entry that needs another. config is
	 * the parsed struct; report with sc_config_check_error() (config.h)
	 * and return -1, or return 0. No side effects: nothing may be opened
	 * or started here. */
	int (*validate)(const void *config, struct sc_config_check *check)
		SC_CXX_DEFAULT(nullptr);
	/* room to grow without an ABI major bump */
	void *reserved[7] SC_CXX_DEFAULT({});
};

#define SC_MODULE_HEADER \
	.abi_major = SC_ABI_MAJOR, .abi_minor = SC_ABI_MINOR, \
	.struct_size = sizeof(struct sc_module), \
	.signature = SC_MODULE_SIGNATURE

/* Declares the module descriptor; n must be the file stem of n.so. In
 * C++ (20, for designated initializers) the fields must follow the order
 * of struct sc_module, and the descriptor gets C linkage (a const object
 * would otherwise be local to its file). */
#ifdef __cplusplus
#define SC_MODULE(n, ...) \
	extern "C" SC_API const struct sc_module sc_module_##n = { \
		SC_MODULE_HEADER, .name = #n, __VA_ARGS__ }
#else
#define SC_MODULE(n, ...) \
	SC_API const struct sc_module sc_module_##n = { \
		SC_MODULE_HEADER, .name = #n, __VA_ARGS__ }
#endif

/* The instance name (the `name:` key, default the plugins.d file stem,
 * e.g. "20-smtp"). Valid while the instance lives. */
SC_API const char *sc_instance_name(const struct sc_instance *inst);

/* The module name of the instance ("smtp"). */
SC_API const char *sc_instance_module(const struct sc_instance *inst);

/* The plugins.d file the instance was configured in. */
SC_API const char *sc_instance_file(const struct sc_instance *inst);

/* A directory private to this instance's module under state_dir
 * (state_dir/modules/<module>), created on first call with mode 0750.
 * Every instance of the module gets the same one: put the instance name
 * in file names that must not be shared. Call it from instance_start or
 * later, so that the daemon's user makes it, not root before the drop.
 * Returns NULL on error. The string is owned by the core. */
SC_API const char *sc_instance_state_dir(struct sc_instance *inst);

/*
 * Instance state that survives a reload. Since ABI 1.2.
 *
 * A reload builds the new generation's instances while the old ones still
 * serve the sessions that began under them; an old instance is freed when
 * its last session has ended, long after its successor started. State that
 * must span generations (counts of open connections, tables of recent
 * logins) goes from an instance to its successor - the instance of the same
 * name (the `name:` key) and the same loaded module in the new generation -
 * through the core, never through a module-level variable. (nginx finds
 * its shared memory zones again by name and tag when it rereads its
 * config, and keeps their data when the size did not change; this is that,
 * for plain memory and one process.)
 *
 * The state is a pointer plus a function that frees it. The core holds it
 * on behalf of every instance that put or got it (its holders): while an
 * old and a new instance of the same name both live, both hold the same
 * state and may both use it - everything here runs on the loop thread, so
 * no locking. The rules:
 *
 * - Call both functions on the loop thread, from instance_new or
 *   instance_start or later, never from a pool thread. check_only builds
 *   (`satcheld -t`) call no instance_new, so no state is ever made there.
 * - sc_instance_state_get returns the state inst holds; when it holds none,
 *   the one a living instance of the same name and module put last (or
 *   got), which inst then holds too - its predecessor's, across a reload;
 *   NULL when there is none (the first start, a renamed instance, or every
 *   holder is gone already). The core passes the state on whatever changed
 *   in the instance's config: a module whose config decides the layout of
 *   its state (a table size) must check and adapt it, or put a new one.
 * - sc_instance_state_put makes state the one inst holds and passes on
 *   (replacing what inst held, which its other holders keep). The old
 *   generation's instances keep what they hold. 0, or -1 when out of
 *   memory (then inst holds what it held before, and free_fn was not
 *   called). A state is put once; putting one that is already held is -1.
 * - free_fn(state) runs on the loop thread once the last holder is freed,
 *   right after that holder's instance_free returned and before its module
 *   may be unloaded; also when a failed reload frees the new instances that
 *   got it alone. It must not call sc_ functions other than the logging
 *   ones. The state belongs to the core from put to free_fn: a module never
 *   frees it itself.
 * - Only the module code that put a state gets it: a state never goes to
 *   an instance of another module, even of the same name.
 * - Nothing survives the process: what must outlive a restart goes into
 *   sc_instance_state_dir().
 */
typedef void (*sc_instance_state_free_fn)(void *state);

SC_API void *sc_instance_state_get(struct sc_instance *inst);
SC_API int sc_instance_state_put(struct sc_instance *inst, void *state,
				 sc_instance_state_free_fn free_fn);

/* Registers a function that appends human-readable status lines for
 * `satchelctl status` (one "key: value" per line, no trailing newline
 * needed). fn writes into buf of size len and returns bytes written. */
typedef size_t (*sc_status_fn)(char *buf, size_t len, void *data);
SC_API int sc_status_register(struct sc_instance *inst, sc_status_fn fn,
			      void *data);

#ifdef __cplusplus
}
#endif
#endif
