/*
 * loop.h - what the worker needs from an event loop, and nothing more.
 *
 * ev_glue.c implements this with libev; it is the only file of the worker
 * that includes <ev.h> or the hiredis libev adapter. Everything else is
 * written against these functions, so the logic can be driven (and tested)
 * without a loop.
 *
 * The loop calls back into the worker through four fixed entry points:
 *   rtq__worker_on_prepare(w)   before every poll: flush batched writes
 *   rtq__worker_on_tick(w)      every RTQ__TICK_MS: timers of every kind
 *   rtq__worker_on_wake(w)      after rtq__ev_wake(): handler results
 *   rtq__worker_on_signal(w, s) SIGTERM/SIGINT (handle_signals), SIGCHLD
 */
#ifndef RTQ_WORKER_LOOP_H
#define RTQ_WORKER_LOOP_H

#include <stdbool.h>

#include <hiredis/async.h>

#include "rtq/worker.h"

#define RTQ__TICK_MS 50

typedef struct rtq__ev rtq__ev;
typedef struct rtq__io rtq__io;

/* Creates the loop and its fixed watchers (wake, tick, prepare); watchers
 * start in rtq__ev_run. NULL when out of memory. */
rtq__ev *rtq__ev_new(rtq_worker *w);
/* Frees the loop; NULL does nothing. */
void rtq__ev_free(rtq__ev *ev);
/* Runs until rtq__ev_break(). signals: watch SIGTERM and SIGINT; sigchld:
 * watch SIGCHLD. */
void rtq__ev_run(rtq__ev *ev, bool signals, bool sigchld);
void rtq__ev_break(rtq__ev *ev);
/* Thread-safe and async-signal-safe: makes the loop call on_wake soon. */
void rtq__ev_wake(rtq__ev *ev);
/* Attaches a hiredis async context to the loop (ownership stays with
 * hiredis: the adapter is freed with the context). 0 or RTQ_ENOMEM. */
int rtq__ev_attach_redis(rtq__ev *ev, redisAsyncContext *ac);

/* A read watcher on fd; cb(data) runs when fd is readable. Starts at once.
 * NULL when out of memory. */
rtq__io *rtq__ev_io_new(rtq__ev *ev, int fd, void (*cb)(void *data), void *data);
/* Stops and frees the watcher (the fd is the caller's). NULL does nothing. */
void rtq__ev_io_free(rtq__io *io);

/* Entry points the loop calls (defined by the worker core). */
void rtq__worker_on_prepare(rtq_worker *w);
void rtq__worker_on_tick(rtq_worker *w);
void rtq__worker_on_wake(rtq_worker *w);
void rtq__worker_on_signal(rtq_worker *w, int signo);

#endif
