/* SPDX-License-Identifier: MIT */
/*
 * core/work.c - blocking work on the libuv thread pool, timers, fd
 * watches, the clock, and the process context pointer.
 *
 * sc_work_submit's work function runs on a pool thread; everything else
 * here runs on the loop thread. Jobs submitted with sc_work_submit_inst
 * are counted on their instance, so a retired generation is torn down
 * only after their done ran (module.c's sc_gen_job_end).
 */
#include "core.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/*
 * The one process-wide context. Defined here rather than in main.c because
 * the core library is also linked into satchelctl and the unit tests, which
 * set it up themselves (or leave it NULL).
 */
struct sc_core *sc_core;

struct work_req {
	uv_work_t req;
	sc_work_fn work;
	sc_work_fn done;
	void *arg;
	struct sc_instance *inst;	/* owner (counted), or NULL */
};

struct sc_timer {
	uv_timer_t handle;
	sc_timer_fn fn;
	void *arg;
};

static uv_loop_t *
work_loop(void)
{
	if (sc_core != NULL && sc_core->loop != NULL)
		return sc_core->loop;
	return uv_default_loop();
}

static void
work_run(uv_work_t *req)
{
	struct work_req *w = req->data;

	w->work(w->arg);
}

/* work_after - loop thread: done, then uncount the job; for an owned job
 * that may tear down a retired generation (and unload the module done
 * came from), which is why it comes last */
static void
work_after(uv_work_t *req, int status)
{
	struct work_req *w = req->data;
	struct sc_instance *inst = w->inst;

	(void)status;	/* never cancelled: we do not call uv_cancel */
	if (sc_core != NULL && sc_core->work_pending > 0)
		sc_core->work_pending--;
	if (w->done != NULL)
		w->done(w->arg);
	free(w);
	if (inst != NULL)
		sc_gen_job_end(inst);
}

/* work_queue - the common part of both submit forms */
static int
work_queue(struct sc_instance *inst, sc_work_fn work, sc_work_fn done,
	   void *arg)
{
	struct work_req *w;
	int ret;

	if (work == NULL || !sc_gen_job_allowed(inst, "pool job"))
		return -1;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return -1;
	w->work = work;
	w->done = done;
	w->arg = arg;
	w->req.data = w;
	ret = uv_queue_work(work_loop(), &w->req, work_run, work_after);
	if (ret != 0) {
		sc_log_error("cannot queue work: %s", uv_strerror(ret));
		free(w);
		return -1;
	}
	/* Counted only once queued, so a failure leaves nothing to undo. */
	if (sc_core != NULL)
		sc_core->work_pending++;
	if (inst != NULL && inst->gen != NULL) {
		w->inst = inst;
		sc_gen_job_begin(inst);
	}
	return 0;
}

int
sc_work_submit(sc_work_fn work, sc_work_fn done, void *arg)
{
	return work_queue(NULL, work, done, arg);
}

int
sc_work_submit_inst(struct sc_instance *inst, sc_work_fn work,
		    sc_work_fn done, void *arg)
{
	return work_queue(inst, work, done, arg);
}

static void
timer_cb(uv_timer_t *handle)
{
	struct sc_timer *t = handle->data;

	t->fn(t, t->arg);
}

struct sc_timer *
sc_timer_new(sc_timer_fn fn, void *arg)
{
	struct sc_timer *t;

	if (fn == NULL)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	if (uv_timer_init(work_loop(), &t->handle) != 0) {
		free(t);
		return NULL;
	}
	t->handle.data = t;
	t->fn = fn;
	t->arg = arg;
	return t;
}

void
sc_timer_start(struct sc_timer *t, uint64_t ms, uint64_t repeat_ms)
{
	if (t != NULL)
		uv_timer_start(&t->handle, timer_cb, ms, repeat_ms);
}

void
sc_timer_stop(struct sc_timer *t)
{
	if (t != NULL)
		uv_timer_stop(&t->handle);
}

static void
timer_closed(uv_handle_t *handle)
{
	free(handle->data);
}

/* sc_timer_free - stop and release; the memory goes when libuv is done
 * with the handle, so this is safe from the timer's own callback */
void
sc_timer_free(struct sc_timer **tp)
{
	struct sc_timer *t;

	if (tp == NULL || *tp == NULL)
		return;
	t = *tp;
	*tp = NULL;
	/* the teardown's last walk (core/main.c) may have closed it for a
	 * module that had not yet: libuv owns it then */
	if (uv_is_closing((uv_handle_t *)&t->handle))
		return;
	uv_timer_stop(&t->handle);
	uv_close((uv_handle_t *)&t->handle, timer_closed);
}

struct sc_fd_watch {
	uv_poll_t handle;
	sc_fd_fn fn;
	void *arg;
	unsigned events;
};

static void
fd_watch_cb(uv_poll_t *handle, int status, int uv_events)
{
	struct sc_fd_watch *w = handle->data;
	unsigned ev = 0;

	if (status < 0) {
		/* A failed fd (e.g. EBADF): report it once and stop, or
		 * libuv would keep calling back. */
		uv_poll_stop(handle);
		w->events = 0;
		ev = SC_FD_ERROR;
	} else {
		ev |= (uv_events & UV_READABLE) ? SC_FD_READ : 0;
		ev |= (uv_events & UV_WRITABLE) ? SC_FD_WRITE : 0;
		ev |= (uv_events & UV_DISCONNECT) ? SC_FD_READ : 0;
	}
	w->fn(w, ev, w->arg);
}

struct sc_fd_watch *
sc_fd_watch_new(int fd, sc_fd_fn fn, void *arg)
{
	struct sc_fd_watch *w;

	if (fn == NULL || fd < 0)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	if (uv_poll_init(work_loop(), &w->handle, fd) != 0) {
		free(w);
		return NULL;
	}
	w->handle.data = w;
	w->fn = fn;
	w->arg = arg;
	return w;
}

int
sc_fd_watch_set(struct sc_fd_watch *w, unsigned events)
{
	int uv_events = 0;

	if (w == NULL)
		return -1;
	uv_events |= (events & SC_FD_READ) ? UV_READABLE : 0;
	uv_events |= (events & SC_FD_WRITE) ? UV_WRITABLE : 0;
	if (uv_events == 0) {
		uv_poll_stop(&w->handle);
		w->events = 0;
		return 0;
	}
	if (uv_poll_start(&w->handle, uv_events, fd_watch_cb) != 0)
		return -1;
	w->events = events & (SC_FD_READ | SC_FD_WRITE);
	return 0;
}

unsigned
sc_fd_watch_events(const struct sc_fd_watch *w)
{
	return w != NULL ? w->events : 0;
}

static void
fd_watch_closed(uv_handle_t *handle)
{
	free(handle->data);
}

/* sc_fd_watch_free - as sc_timer_free: the memory goes when libuv is done
 * with the handle, so this is safe from the watch's own callback */
void
sc_fd_watch_free(struct sc_fd_watch **wp)
{
	struct sc_fd_watch *w;

	if (wp == NULL || *wp == NULL)
		return;
	w = *wp;
	*wp = NULL;
	if (uv_is_closing((uv_handle_t *)&w->handle))	/* as above */
		return;
	uv_poll_stop(&w->handle);
	uv_close((uv_handle_t *)&w->handle, fd_watch_closed);
}

uint64_t
sc_now_ms(void)
{
	struct timespec ts;

	if (sc_core != NULL && sc_core->loop != NULL)
		return uv_now(sc_core->loop);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
work_drain_timeout(uv_timer_t *t)
{
	(void)t;	/* only wakes uv_run up */
}

unsigned
sc_work_drain(uint64_t timeout_ms)
{
	uv_loop_t *loop = work_loop();
	uint64_t deadline = uv_now(loop) + timeout_ms;
	uv_timer_t timer;

	/* Lookups end now (TEMPFAIL) rather than in up to 20 s; their
	 * callbacks may still submit pool work, drained below. */
	sc_dns_stop();
	sc_store_stop();	/* likewise: store operations fail now */
	if (sc_core == NULL || sc_core->work_pending == 0)
		return 0;
	/* UV_RUN_ONCE sleeps until an event: a completion, or the timer
	 * that bounds a job stuck on a pool thread. */
	uv_timer_init(loop, &timer);
	uv_timer_start(&timer, work_drain_timeout, timeout_ms, 0);
	while (sc_core->work_pending > 0 && uv_now(loop) < deadline)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return sc_core->work_pending;
}
