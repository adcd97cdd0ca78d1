/*
 * ev_glue.c - the broker's event loop: the only broker file that knows
 * libev. Everything it calls is in broker.h and runs without a loop.
 *
 *   sweep timer    every sweep_interval, first at once: rtq_broker_sweep
 *   lease timer    every lease_ttl/3: rtq_broker_lease_tick, so the lease
 *                  is renewed on time even with a long sweep interval
 *   promote timer  one-shot, aimed at the earliest delayed task when it
 *                  is due before the next sweep
 *   leader tick    every tick->every_ms when given (rtq_broker_run_with):
 *                  tick->fn, while this broker leads
 *   SIGTERM/SIGINT stop the loop; the sweep in progress has finished by
 *                  then (callbacks run to completion), then the lease is
 *                  released
 *
 * The Redis calls block, bounded by the command timeout, so a frozen
 * Redis delays the loop by at most that much per command and never hangs
 * it; signals that arrive meanwhile are handled when the call returns.
 */
#include <ev.h>
#include <signal.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "rtq/common.h"

/* A promote timer never fires sooner than this after the last promotion,
 * so a stream of due envelopes costs at most 1000/this rounds a second. */
#define PROMOTE_MIN_DELAY_MS 10

typedef struct glue {
  rtq_broker *b;
  struct ev_loop *loop;
  ev_timer sweep, lease, promote, tick;
  const rtq_broker_tick *job;
  ev_signal sigterm, sigint;
  int stopped_by;
  int refused;
} glue;

static void arm_promote(glue *g) {
  int64_t due = rtq_broker_next_due_in_ms(g->b);
  ev_timer_stop(g->loop, &g->promote);
  if (due < 0 || due >= rtq_broker_options_of(g->b)->sweep_interval_ms) return;
  if (due < PROMOTE_MIN_DELAY_MS) due = PROMOTE_MIN_DELAY_MS;
  ev_timer_set(&g->promote, (double)due / 1000.0, 0.0);
  ev_timer_start(g->loop, &g->promote);
}

static void on_sweep(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  glue *g = w->data;
  /* Failures are logged inside; a namespace of the other protocol ends
   * the broker (a Redis that was down at start-up may only tell now). */
  if (rtq_broker_sweep(g->b) == RTQ_EPROTOCOL) {
    g->refused = 1;
    ev_break(loop, EVBREAK_ALL);
    return;
  }
  ev_now_update(loop);
  arm_promote(g);
}

static void on_lease(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)loop;
  (void)revents;
  glue *g = w->data;
  (void)rtq_broker_lease_tick(g->b);
}

static void on_promote(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  glue *g = w->data;
  (void)rtq_broker_promote_due(g->b);
  ev_now_update(loop);
  arm_promote(g);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents) {
  (void)revents;
  glue *g = w->data;
  if (rtq_broker_is_leader(g->b)) g->job->fn(g->job->arg);
  ev_now_update(loop);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents) {
  (void)revents;
  glue *g = w->data;
  g->stopped_by = w->signum;
  ev_break(loop, EVBREAK_ALL);
}

int rtq_broker_run(rtq_broker *b) { return rtq_broker_run_with(b, NULL); }

int rtq_broker_run_with(rtq_broker *b, const rtq_broker_tick *tick) {
  const rtq_broker_options *o = rtq_broker_options_of(b);
  glue g;
  memset(&g, 0, sizeof g);
  g.b = b;
  g.job = tick != NULL && tick->fn != NULL && tick->every_ms > 0 ? tick : NULL;
  g.loop = ev_loop_new(EVFLAG_AUTO);
  if (g.loop == NULL) {
    rtq_log(RTQ_LOG_ERROR, "could not create the event loop", NULL);
    return RTQ_EIO;
  }
  double lease_every = (double)o->lease_ttl_ms / 3000.0;
  ev_timer_init(&g.sweep, on_sweep, 0.0, (double)o->sweep_interval_ms / 1000.0);
  ev_timer_init(&g.lease, on_lease, lease_every, lease_every);
  ev_timer_init(&g.promote, on_promote, 1.0, 0.0);
  ev_signal_init(&g.sigterm, on_signal, SIGTERM);
  ev_signal_init(&g.sigint, on_signal, SIGINT);
  g.sweep.data = g.lease.data = g.promote.data = g.tick.data = &g;
  g.sigterm.data = g.sigint.data = &g;
  ev_timer_start(g.loop, &g.sweep);
  ev_timer_start(g.loop, &g.lease);
  if (g.job != NULL) {
    /* The first soon after the first sweep (which takes the lease). */
    double every = (double)g.job->every_ms / 1000.0;
    ev_timer_init(&g.tick, on_tick, every < 1.0 ? every : 1.0, every);
    ev_timer_start(g.loop, &g.tick);
  }
  ev_signal_start(g.loop, &g.sigterm);
  ev_signal_start(g.loop, &g.sigint);
  /* rtq-broker blocks both from its first line; one sent during start-up
   * is pending and is delivered now, to the watchers above. */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_UNBLOCK, &stop, NULL);

  ev_run(g.loop, 0);

  if (!g.refused)
    rtq_log(RTQ_LOG_INFO, "stopping", "signal", g.stopped_by == SIGINT ? "SIGINT" : "SIGTERM", NULL);
  (void)rtq_broker_lease_release(b);
  ev_timer_stop(g.loop, &g.sweep);
  ev_timer_stop(g.loop, &g.lease);
  ev_timer_stop(g.loop, &g.promote);
  if (g.job != NULL) ev_timer_stop(g.loop, &g.tick);
  ev_signal_stop(g.loop, &g.sigterm);
  ev_signal_stop(g.loop, &g.sigint);
  ev_loop_destroy(g.loop);
  return g.refused ? RTQ_EPROTOCOL : 0;
}
