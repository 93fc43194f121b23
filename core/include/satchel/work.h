/* SPDX-License-Identifier: MIT */
/*
 * satchel/work.h - blocking work on the thread pool, timers, and file
 * descriptor watches.
 *
 * work runs on a libuv pool thread; it must not call any sc_ function
 * except sc_log. done runs afterwards on the loop thread.
 */
#ifndef SATCHEL_WORK_H
#define SATCHEL_WORK_H

#include <satchel/module.h>

#ifdef __cplusplus
extern "C" {
#endif

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

/* A timer on the loop; fires fn(t, arg). NULL on error. A timer belongs
 * to no instance: it keeps firing after a reload retired its instance,
 * until stopped; free it in instance_free at the latest. */
SC_API struct sc_timer *sc_timer_new(sc_timer_fn fn, void *arg);
/* (Re)starts it: first after ms, then every repeat_ms (0 = once). */
SC_API void sc_timer_start(struct sc_timer *t, uint64_t ms, uint64_t repeat_ms);
SC_API void sc_timer_stop(struct sc_timer *t);
/* Stops and frees; *t is set to NULL. Safe from the timer's own fn. */
SC_API void sc_timer_free(struct sc_timer **t);

/*
 * Watching a file descriptor on the loop, for libraries that bring their
 * own sockets and ask the application's event loop to watch them (hiredis'
 * ev adapters, libmicrohttpd's external-select/epoll mode, libunbound).
 * fn(w, events, arg) runs on the loop when fd is ready for any of the
 * events asked for (SC_FD_READ, SC_FD_WRITE; SC_FD_ERROR is reported when
 * the fd failed, whatever was asked). The watch neither owns nor closes
 * fd; free the watch before closing fd. Like timers, a watch belongs to
 * no instance: free it in instance_free at the latest. Since ABI 1.2.
 */
#define SC_FD_READ  1u
#define SC_FD_WRITE 2u
#define SC_FD_ERROR 4u

struct sc_fd_watch;
typedef void (*sc_fd_fn)(struct sc_fd_watch *w, unsigned events, void *arg);

/* A watch on fd, asking for nothing yet. NULL on error. */
SC_API struct sc_fd_watch *sc_fd_watch_new(int fd, sc_fd_fn fn, void *arg);
/* Asks for events (a mask of SC_FD_READ|SC_FD_WRITE; 0 = none). 0 or -1. */
SC_API int sc_fd_watch_set(struct sc_fd_watch *w, unsigned events);
/* The events asked for. */
SC_API unsigned sc_fd_watch_events(const struct sc_fd_watch *w);
/* Stops and frees; *w is set to NULL. Safe from the watch's own fn. */
SC_API void sc_fd_watch_free(struct sc_fd_watch **w);

/* Milliseconds of a monotonic clock (cached per loop iteration). */
SC_API uint64_t sc_now_ms(void);

#ifdef __cplusplus
}
#endif

#endif
