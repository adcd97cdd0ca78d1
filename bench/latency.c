/*
 * latency.c - enqueue->start and enqueue->complete latency against an idle
 * worker.
 *
 * Method. Redis stamps started_at and completed_at in whole milliseconds,
 * too coarse for a 0.2 ms target, so the bench times events instead, all
 * on one clock (CLOCK_MONOTONIC of this process):
 *
 *   t_enq    just before rtq_create_task() is called for the task;
 *   t_start  when the `running` event of the task, which the claim script
 *            publishes in the same atomic step that marks it running
 *            (SPUBLISH of a batch message on {ns:Q}:ev, unbatched by
 *            librtq), arrives at this process's subscriber thread;
 *   t_done   the same for the `completed` event of the finish script.
 *
 * t_start - t_enq is therefore an upper bound of the real enqueue->start
 * time: it adds the delivery of one pub/sub message over loopback. That
 * delivery is measured too (event_hop_us: SPUBLISH from this process to
 * receipt by the subscriber, which is a full request plus the delivery,
 * so itself an upper bound of the extra). The calibration messages go
 * where the events go, shaped as the scripts shape them, so the hop
 * includes librtq's unbatching.
 *
 * Before the measured tasks, WARMUP tasks are run and awaited, so the
 * worker is connected, its scripts are loaded and it sits idle in its
 * blocking pop when the first measured task arrives.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "keys2.h"

#define WARMUP 20
#define CALIBRATE 200

enum { EV_RUNNING = 1, EV_COMPLETED = 2, EV_CALIB = 3 };

typedef struct event {
  char id[RTQ_TASK_ID_SIZE];
  int kind;
  uint64_t t;
} event;

typedef struct listener {
  rtq_subscription *sub;
  event *ev;
  size_t cap;
  atomic_size_t count;        /* events stored (written by the thread only) */
  atomic_size_t completed;    /* EV_COMPLETED among them */
  atomic_int stop;
  pthread_t thread;
} listener;

/* Calibration messages are told by their id: protocol 2's unbatching
 * passes on only the statuses a task can have, so they carry one that a
 * no-op task never has in this phase ("cancelled"). */
static int kind_of(const char *id, const char *status) {
  if (strncmp(id, "calib-", 6) == 0) return EV_CALIB;
  if (strcmp(status, "running") == 0) return EV_RUNNING;
  if (strcmp(status, "completed") == 0) return EV_COMPLETED;
  return 0;
}

static void *listen_main(void *arg) {
  listener *l = arg;
  while (!atomic_load(&l->stop)) {
    char *text = NULL;
    int rc = rtq_subscription_next(l->sub, 100, &text);
    uint64_t t = rtq__bench_now_ns();
    if (rc == RTQ_ETIMEDOUT) continue;
    if (rc != 0) break;
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *st = json_string_value(json_object_get(j, "status"));
    int kind = id && st ? kind_of(id, st) : 0;
    size_t n = atomic_load(&l->count);
    if (kind != 0 && n < l->cap) {
      snprintf(l->ev[n].id, sizeof l->ev[n].id, "%s", id);
      l->ev[n].kind = kind;
      l->ev[n].t = t;
      atomic_store(&l->count, n + 1);
      if (kind == EV_COMPLETED) atomic_fetch_add(&l->completed, 1);
    }
    json_decref(j);
  }
  return NULL;
}

static int cmp_event(const void *a, const void *b) {
  const event *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  return c ? c : x->kind - y->kind;
}

/* Time of the event (id, kind), or 0 when it never arrived. */
static uint64_t find_event(const event *ev, size_t n, const char *id, int kind) {
  event key;
  snprintf(key.id, sizeof key.id, "%s", id);
  key.kind = kind;
  const event *e = bsearch(&key, ev, n, sizeof *ev, cmp_event);
  return e ? e->t : 0;
}

/* Waits until the listener has seen want completed events. */
static int wait_completed(const listener *l, size_t want, uint64_t end) {
  while (atomic_load(&l->completed) < want) {
    if (rtq__bench_now_ns() > end) return -1;
    rtq__bench_sleep_us(1000);
  }
  return 0;
}

static void sleep_until(uint64_t t_ns) {
  struct timespec ts = {(time_t)(t_ns / 1000000000u), (long)(t_ns % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
  }
}

/* PUBLISH -> receipt on this process's subscriber, CALIBRATE times. */
static double calibrate_hop(rtq__bench *b, const char *ns, listener *l, uint64_t end) {
  rtq_keys2 k2;
  rtq_keys2_init(&k2, ns);
  rtq_key2 chan2 = rtq_keys2_chan_events(&k2, RTQ__BENCH_QUEUE);
  double *hop = calloc(CALIBRATE, sizeof *hop);
  uint64_t *sent = calloc(CALIBRATE, sizeof *sent);
  size_t got = 0;
  for (int i = 0; hop && sent && i < CALIBRATE; i++) {
    char msg[96];
    snprintf(msg, sizeof msg, "{\"at\":0,\"s\":\"cancelled\",\"t\":[{\"id\":\"calib-%d\"}]}", i);
    const char *argv[] = {"SPUBLISH", chan2.s, msg};
    sent[i] = rtq__bench_now_ns();
    if (rtq__bench_cmd(&b->redis, NULL, 3, argv) != 0) break;
    rtq__bench_sleep_us(200);
  }
  /* the last message has had time to arrive once a round trip went by */
  const char *ping[] = {"PING"};
  rtq__bench_cmd(&b->redis, NULL, 1, ping);
  while (rtq__bench_now_ns() < end) {
    size_t calib = 0, n = atomic_load(&l->count);
    for (size_t i = 0; i < n; i++) calib += l->ev[i].kind == EV_CALIB;
    if (calib >= CALIBRATE) break;
    rtq__bench_sleep_us(1000);
  }
  size_t n = atomic_load(&l->count);
  for (size_t i = 0; hop && sent && i < n; i++) {
    int idx;
    if (l->ev[i].kind == EV_CALIB && sscanf(l->ev[i].id, "calib-%d", &idx) == 1 && idx >= 0 &&
        idx < CALIBRATE && l->ev[i].t >= sent[idx])
      hop[got++] = (double)(l->ev[i].t - sent[idx]) / 1e3;
  }
  double p50 = rtq__bench_quantile(hop, got, 0.5);
  free(hop);
  free(sent);
  return p50;
}

/* One PING round trip at a time, gap_us apart: what a single request costs
 * on this machine when every process sleeps between requests, as the
 * latency tasks do. The floor under enqueue->start, which needs about two
 * such round trips (create, then the worker's claim after its pop). */
static json_t *idle_rtt(rtq__bench *b, int gap_us) {
  enum { PINGS = 200 };
  double rtt[PINGS];
  size_t got = 0;
  const char *ping[] = {"PING"};
  for (int i = 0; i < PINGS; i++) {
    rtq__bench_sleep_us((uint64_t)gap_us);
    uint64_t t0 = rtq__bench_now_ns();
    if (rtq__bench_cmd(&b->redis, NULL, 1, ping) != 0) break;
    rtt[got++] = (double)(rtq__bench_now_ns() - t0) / 1e3;
  }
  return rtq__bench_quantiles_json(rtt, got);
}

/* Counts the latencies, fills res. */
static void summarise(listener *l, const char *ids, const uint64_t *t_enq, const double *call_us,
                      size_t n, json_t *res) {
  size_t ne = atomic_load(&l->count);
  qsort(l->ev, ne, sizeof *l->ev, cmp_event);
  double *start = calloc(n, sizeof *start), *done = calloc(n, sizeof *done);
  double *call = calloc(n, sizeof *call);
  size_t ns = 0, nd = 0;
  for (size_t i = 0; start && done && call && i < n; i++) {
    const char *id = ids + i * RTQ_TASK_ID_SIZE;
    uint64_t ts = find_event(l->ev, ne, id, EV_RUNNING);
    uint64_t td = find_event(l->ev, ne, id, EV_COMPLETED);
    if (ts >= t_enq[i] && ts) start[ns++] = (double)(ts - t_enq[i]) / 1e6;
    if (td >= t_enq[i] && td) done[nd++] = (double)(td - t_enq[i]) / 1e6;
    call[i] = call_us[i];
  }
  json_object_set_new(res, "n", json_integer((json_int_t)n));
  json_object_set_new(res, "start_ms", rtq__bench_quantiles_json(start, ns));
  json_object_set_new(res, "complete_ms", rtq__bench_quantiles_json(done, nd));
  json_object_set_new(res, "create_call_us", rtq__bench_quantiles_json(call, n));
  json_object_set_new(res, "missing_events", json_integer((json_int_t)(2 * n - ns - nd)));
  free(start);
  free(done);
  free(call);
}

/* Protocol 2: a subscription listens to the queues of {ns}:queues, and
 * looks for new ones only once a second; the queue is registered (as its
 * first create would) before subscribing, so the warm-up's events are not
 * missed. */
static int register_queue(rtq__bench *b, const char *ns) {
  rtq_keys2 k2;
  if (rtq_keys2_init(&k2, ns) != 0) return -1;
  rtq_key2 queues = rtq_keys2_queues(&k2);
  const char *argv[] = {"SADD", queues.s, RTQ__BENCH_QUEUE};
  return rtq__bench_cmd(&b->redis, NULL, 3, argv);
}

int rtq__bench_phase_latency(rtq__bench *b) {
  size_t n = b->o->latency_n;
  char ns[96];
  rtq__bench_ns(b, "latency", ns, sizeof ns);
  rtq__bench_say(b, "latency: %zu tasks %d us apart, 1 idle worker", n, b->o->latency_gap_us);
  json_t *res = json_object();
  json_object_set_new(b->out, "latency", res);
  listener l;
  memset(&l, 0, sizeof l);
  l.cap = 2 * (n + WARMUP) + CALIBRATE + 64;
  l.ev = calloc(l.cap, sizeof *l.ev);
  char *ids = calloc(n, RTQ_TASK_ID_SIZE);
  uint64_t *t_enq = calloc(n, sizeof *t_enq);
  double *call_us = calloc(n, sizeof *call_us);
  rtq__bench_proc worker;
  memset(&worker, 0, sizeof worker);
  bool thread = false;
  uint64_t end = rtq__bench_now_ns() + (uint64_t)b->o->phase_timeout_s * 1000000000u;

  int rc = l.ev && ids && t_enq && call_us ? rtq__bench_flush(&b->redis) : -1;
  rtq_client *c = rc == 0 ? rtq__bench_client(b, ns) : NULL;
  if (c != NULL && b->o->protocol == 2) rc = register_queue(b, ns);
  if (c == NULL || rc != 0 || rtq_events_subscribe(c, &l.sub) != 0) rc = -1;
  if (rc == 0) thread = (rc = pthread_create(&l.thread, NULL, listen_main, &l)) == 0;
  if (rc == 0) rc = rtq__bench_worker_spawn(&worker, b->o, &b->redis, ns, "latency");

  rtq_args *args = rtq__bench_task_args(0);
  for (int i = 0; rc == 0 && i < WARMUP; i++)
    if (rtq_create_task(c, "rtq.noop", args, NULL, NULL, NULL) != 0) rc = -1;
  if (rc == 0 && wait_completed(&l, WARMUP, end) != 0) {
    fprintf(stderr, "rtq-bench: latency: the worker did not run the warm-up tasks\n");
    rc = -1;
  }
  if (rc == 0) json_object_set_new(res, "event_hop_us", json_real(calibrate_hop(b, ns, &l, end)));
  if (rc == 0) json_object_set_new(res, "idle_ping_rtt_us", idle_rtt(b, b->o->latency_gap_us));

  /* The measured tasks, one every gap, on an absolute schedule. */
  rtq_args **targs = calloc(n, sizeof *targs);
  for (size_t i = 0; targs && i < n; i++) targs[i] = rtq__bench_task_args(i);
  uint64_t t0 = rtq__bench_now_ns() + 1000000u;
  for (size_t i = 0; rc == 0 && targs && i < n; i++) {
    sleep_until(t0 + (uint64_t)i * (uint64_t)b->o->latency_gap_us * 1000u);
    t_enq[i] = rtq__bench_now_ns();
    rc = rtq_create_task(c, "rtq.noop", targs[i], NULL, ids + i * RTQ_TASK_ID_SIZE, NULL);
    call_us[i] = (double)(rtq__bench_now_ns() - t_enq[i]) / 1e3;
    if (rc != 0) fprintf(stderr, "rtq-bench: latency create: %s\n", rtq_client_errstr(c));
    if (rc == 0 && rtq__bench_now_ns() > end) rc = -1;
  }
  if (rc == 0 && wait_completed(&l, WARMUP + n, end) != 0) {
    fprintf(stderr, "rtq-bench: latency: %zu of %zu completions seen in time\n",
            atomic_load(&l.completed) - WARMUP, n);
    rc = -1;
  }
  rtq__bench_worker_stop(&worker, 10000);
  if (thread) {
    atomic_store(&l.stop, 1);
    pthread_join(l.thread, NULL);
  }
  if (rc == 0) {
    summarise(&l, ids, t_enq, call_us, n, res);
    json_object_set_new(res, "gap_us", json_integer(b->o->latency_gap_us));
    json_object_set_new(res, "worker_peak_rss_kb", json_integer(worker.hwm_kb));
  }
  for (size_t i = 0; targs && i < n; i++) rtq_args_free(targs[i]);
  free(targs);
  rtq_args_free(args);
  rtq_subscription_free(l.sub);
  rtq_client_free(c);
  free(l.ev);
  free(ids);
  free(t_enq);
  free(call_us);
  rtq__bench_drop_ns(&b->redis, ns);
  return rc;
}
