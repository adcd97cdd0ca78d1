/*
 * ev_glue.c - the libev binding of loop.h: the only file of the worker that
 * includes <ev.h> and hiredis/adapters/libev.h.
 *
 * The loop is a private one (ev_loop_new), never the default loop, so it
 * does not install a SIGCHLD reaper behind the worker's back: under thread
 * isolation a handler that runs system() keeps its child's exit status.
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include <ev.h>
#include <hiredis/adapters/libev.h>

#include "loop.h"
#include "rtq/common.h"

struct rtq__ev {
  struct ev_loop *loop;
  rtq_worker *w;
  ev_async wake;
  ev_timer tick;
  ev_prepare prepare;
  ev_signal sig_term, sig_int, sig_chld;
};

struct rtq__io {
  rtq__ev *ev;
  ev_io io;
  void (*cb)(void *data);
  void *data;
};

static void on_wake(struct ev_loop *loop, ev_async *a, int revents) {
  (void)loop;
  (void)revents;
  rtq__ev *ev = a->data;
  rtq__worker_on_wake(ev->w);
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents) {
  (void)loop;
  (void)revents;
  rtq__ev *ev = t->data;
  rtq__worker_on_tick(ev->w);
}

static void on_prepare(struct ev_loop *loop, ev_prepare *p, int revents) {
  (void)loop;
  (void)revents;
  rtq__ev *ev = p->data;
  rtq__worker_on_prepare(ev->w);
}

static void on_signal(struct ev_loop *loop, ev_signal *s, int revents) {
  (void)loop;
  (void)revents;
  rtq__ev *ev = s->data;
  rtq__worker_on_signal(ev->w, s->signum);
}

rtq__ev *rtq__ev_new(rtq_worker *w) {
  rtq__ev *ev = calloc(1, sizeof *ev);
  if (ev == NULL) return NULL;
  ev->loop = ev_loop_new(EVFLAG_AUTO);
  if (ev->loop == NULL) {
    free(ev);
    return NULL;
  }
  ev->w = w;
  ev_async_init(&ev->wake, on_wake);
  ev->wake.data = ev;
  /* The async watcher is started at once so rtq__ev_wake() is never lost,
   * even before rtq__ev_run(). */
  ev_async_start(ev->loop, &ev->wake);
  ev_timer_init(&ev->tick, on_tick, RTQ__TICK_MS / 1000.0, RTQ__TICK_MS / 1000.0);
  ev->tick.data = ev;
  ev_prepare_init(&ev->prepare, on_prepare);
  ev->prepare.data = ev;
  ev_signal_init(&ev->sig_term, on_signal, SIGTERM);
  ev_signal_init(&ev->sig_int, on_signal, SIGINT);
  ev_signal_init(&ev->sig_chld, on_signal, SIGCHLD);
  ev->sig_term.data = ev->sig_int.data = ev->sig_chld.data = ev;
  return ev;
}

void rtq__ev_free(rtq__ev *ev) {
  if (ev == NULL) return;
  ev_async_stop(ev->loop, &ev->wake);
  ev_timer_stop(ev->loop, &ev->tick);
  ev_prepare_stop(ev->loop, &ev->prepare);
  ev_signal_stop(ev->loop, &ev->sig_term);
  ev_signal_stop(ev->loop, &ev->sig_int);
  ev_signal_stop(ev->loop, &ev->sig_chld);
  ev_loop_destroy(ev->loop);
  free(ev);
}

void rtq__ev_run(rtq__ev *ev, bool signals, bool sigchld) {
  ev_timer_start(ev->loop, &ev->tick);
  ev_prepare_start(ev->loop, &ev->prepare);
  if (signals) {
    ev_signal_start(ev->loop, &ev->sig_term);
    ev_signal_start(ev->loop, &ev->sig_int);
    /* rtq-worker blocks both from its first line, so one sent during
     * start-up stays pending instead of killing it half started; now that
     * the loop watches them, it is delivered and stops the worker. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
  }
  if (sigchld) ev_signal_start(ev->loop, &ev->sig_chld);
  ev_run(ev->loop, 0);
  ev_timer_stop(ev->loop, &ev->tick);
  ev_prepare_stop(ev->loop, &ev->prepare);
  ev_signal_stop(ev->loop, &ev->sig_term);
  ev_signal_stop(ev->loop, &ev->sig_int);
  ev_signal_stop(ev->loop, &ev->sig_chld);
}

void rtq__ev_break(rtq__ev *ev) { ev_break(ev->loop, EVBREAK_ALL); }

void rtq__ev_wake(rtq__ev *ev) { ev_async_send(ev->loop, &ev->wake); }

int rtq__ev_attach_redis(rtq__ev *ev, redisAsyncContext *ac) {
  return redisLibevAttach(ev->loop, ac) == REDIS_OK ? 0 : RTQ_ENOMEM;
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents) {
  (void)loop;
  (void)revents;
  rtq__io *io = w->data;
  io->cb(io->data);
}

rtq__io *rtq__ev_io_new(rtq__ev *ev, int fd, void (*cb)(void *data), void *data) {
  rtq__io *io = calloc(1, sizeof *io);
  if (io == NULL) return NULL;
  io->ev = ev;
  io->cb = cb;
  io->data = data;
  ev_io_init(&io->io, on_io, fd, EV_READ);
  io->io.data = io;
  ev_io_start(ev->loop, &io->io);
  return io;
}

void rtq__ev_io_free(rtq__io *io) {
  if (io == NULL) return;
  ev_io_stop(io->ev->loop, &io->io);
  free(io);
}
