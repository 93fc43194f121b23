/* SPDX-License-Identifier: MIT */
/*
 * satchel/work.h - blocking work on the thread pool, and timers.
 *
 * work runs on a libuv pool thread; it must not call any sc_ function
 * except sc_log. done runs afterwards on the loop thread.
 */
#ifndef SATCHEL_WORK_H
#define SATCHEL_WORK_H

#include <satchel/module.h>

typedef void (*sc_work_fn)(void *arg);

/* Runs work(arg) on the pool, then done(arg) on the loop. 0 or -1.
 * The job belongs to no instance: a reload may free the instance and
 * unload the module that submitted it before done runs. Module code
 * should use sc_work_submit_inst instead. */
SC_API int sc_work_submit(sc_work_fn work, sc_work_fn done, void *arg);

/*
 * Like sc_work_submit, but the job belongs to inst: the core neither frees
 * inst (instance_free) nor unloads its module until the job's done has run
 * (or work, when done is NULL). So work and done may use the instance's
 * data after a reload retired its config; teardown of that generation
 * waits for its last job. Jobs may be submitted (also from done or a
 * timer) until instance_free is called, not from instance_free itself.
 * inst NULL is sc_work_submit. 0 or -1. Since ABI 1.1.
 */
SC_API int sc_work_submit_inst(struct sc_instance *inst, sc_work_fn work,
			       sc_work_fn done, void *arg);

struct sc_timer;
typedef void (*sc_timer_fn)(struct sc_timer *t, void *arg);

/* A timer on the loop; fires fn(t, arg). NULL on error. */
SC_API struct sc_timer *sc_timer_new(sc_timer_fn fn, void *arg);
/* (Re)starts it: first after ms, then every repeat_ms (0 = once). */
SC_API void sc_timer_start(struct sc_timer *t, uint64_t ms, uint64_t repeat_ms);
SC_API void sc_timer_stop(struct sc_timer *t);
/* Stops and frees; *t is set to NULL. Safe from the timer's own fn. */
SC_API void sc_timer_free(struct sc_timer **t);

/* Milliseconds of a monotonic clock (cached per loop iteration). */
SC_API uint64_t sc_now_ms(void);

#endif
