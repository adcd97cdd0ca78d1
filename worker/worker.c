/*
 * worker.c - the worker handle: options, the handler registry, the run
 * loop's entry points, and start-up.
 *
 * What happens on each loop callback (loop.h):
 *   prepare  connections serviced; queued completions, reconcile, the
 *            next pop round and a due heartbeat are sent. Running last
 *            before the loop sleeps is what batches writes: everything one
 *            iteration produced leaves in one pipeline per connection.
 *   tick     watchdogs, local timeouts and kill graces, coalesced progress,
 *            heartbeats, the cancel-flag backstop, shutdown phases.
 *   wake     stop requests, and tasks handed back by pool threads.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "replicas.h"
#include "defaults.h"
#include "errbuf.h"
#include "ids.h"
#include "internal.h"
#include "log.h"
#include "proto.h"
#include "scripts2.h"

void rtq_worker_options_init(rtq_worker_options *o) {
  memset(o, 0, sizeof *o);
  o->redis_url = "redis://127.0.0.1:6379/0";
  o->ns = "rtq";
  o->concurrency = 50;
  o->isolation = RTQ_ISOLATION_THREAD;
  o->heartbeat_interval_ms = RTQ_HEARTBEAT_INTERVAL_MS;
  o->heartbeat_ttl_ms = RTQ_HEARTBEAT_TTL_MS;
  o->shutdown_grace_ms = RTQ_SHUTDOWN_GRACE_MS;
  o->kill_grace_ms = RTQ_KILL_GRACE_MS;
  o->default_timeout_s = 300;
  o->result_ttl_s = 86400;
  o->history = true;
  o->max_history = 10000;
  o->block_timeout_ms = RTQ_BLOCK_TIMEOUT_S * 1000;
  o->poll_ms = 100;
  o->connect_timeout_ms = RTQ_CONNECT_TIMEOUT_MS;
  o->command_timeout_ms = RTQ_COMMAND_TIMEOUT_MS;
  o->progress_interval_ms = RTQ_PROGRESS_MIN_INTERVAL_MS;
  o->max_payload = RTQ_ENVELOPE_MAX_SIZE_DEFAULT;
  o->max_result = 16u * 1024u * 1024u;
  o->thread_stack_kb = 256;
  o->unknown_task_delay_ms = RTQ_UNKNOWN_TASK_DELAY_MS;
  o->unknown_task_max_handbacks = RTQ_UNKNOWN_TASK_MAX_HANDBACKS;
  o->wait_timeout_ms = 1000;
}

void rtq__set_err(rtq_worker *w, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->errstr, sizeof w->errstr, fmt, ap);
  va_end(ap);
}

/* Fills zero fields with defaults and checks ranges. */
static int normalise(rtq_worker_options *o, char *errbuf, size_t errcap) {
  rtq_worker_options d;
  rtq_worker_options_init(&d);
#define DEF(f) \
  if (o->f == 0) o->f = d.f
  DEF(concurrency);
  DEF(heartbeat_interval_ms);
  DEF(heartbeat_ttl_ms);
  DEF(shutdown_grace_ms);
  DEF(kill_grace_ms);
  DEF(default_timeout_s);
  DEF(result_ttl_s);
  DEF(block_timeout_ms);
  DEF(poll_ms);
  DEF(connect_timeout_ms);
  DEF(command_timeout_ms);
  DEF(progress_interval_ms);
  DEF(max_payload);
  DEF(max_result);
  DEF(thread_stack_kb);
  DEF(unknown_task_delay_ms);
  DEF(unknown_task_max_handbacks);
  DEF(wait_timeout_ms);
#undef DEF
  if (o->redis_url == NULL) o->redis_url = d.redis_url;
  if (o->ns == NULL) o->ns = d.ns;
#define RANGE(f, lo, hi)                                                                     \
  if (o->f < (lo) || o->f > (hi))                                                            \
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "invalid " #f " %lld: expected %lld..%lld", \
                     (long long)o->f, (long long)(lo), (long long)(hi))
  RANGE(concurrency, 1, 10000);
  RANGE(heartbeat_interval_ms, 100, 3600000);
  RANGE(heartbeat_ttl_ms, 200, 86400000);
  RANGE(shutdown_grace_ms, 1, 86400000);
  RANGE(kill_grace_ms, 1, 3600000);
  RANGE(default_timeout_s, 1, 31536000);
  RANGE(result_ttl_s, 1, 31536000);
  RANGE(max_history, 0, 100000000);
  RANGE(block_timeout_ms, 10, 60000);
  RANGE(poll_ms, 10, 60000);
  RANGE(connect_timeout_ms, 10, 600000);
  RANGE(command_timeout_ms, 10, 600000);
  RANGE(progress_interval_ms, 1, 60000);
  RANGE(rlimit_as_mb, 0, 1 << 30);
  RANGE(rlimit_cpu_s, 0, 31536000);
  RANGE(thread_stack_kb, 64, 1024 * 1024);
  RANGE(claim_batch, 0, 10000);
  RANGE(max_abandoned_threads, 0, 10000);
  RANGE(unknown_task_delay_ms, 1, 86400000);
  RANGE(unknown_task_max_handbacks, 1, 1000);
  RANGE(wait_replicas, 0, RTQ_WAIT_REPLICAS_MAX);
  RANGE(wait_timeout_ms, 1, RTQ_WAIT_TIMEOUT_MAX_MS);
#undef RANGE
  /* A WAIT holds the cmd connection's later replies back: it must end
   * before the watchdog would drop the connection. */
  if (o->wait_replicas > 0 && o->wait_timeout_ms >= o->command_timeout_ms)
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "wait_timeout_ms (%d) must be below command_timeout_ms (%d)",
                     o->wait_timeout_ms, o->command_timeout_ms);
  if (o->heartbeat_ttl_ms <= o->heartbeat_interval_ms)
    return rtq__errf(RTQ_EINVAL, errbuf, errcap,
                     "heartbeat_ttl_ms (%d) must exceed heartbeat_interval_ms (%d)",
                     o->heartbeat_ttl_ms, o->heartbeat_interval_ms);
  if (o->isolation != RTQ_ISOLATION_THREAD && o->isolation != RTQ_ISOLATION_PROCESS)
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "invalid isolation %d", (int)o->isolation);
  if (o->max_payload < 64)
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "max_payload must be at least 64 bytes");
  if (o->protocol == 0) {
    rtq_config cfg;
    rtq_config_defaults(&cfg);
    const char *env = getenv("RTQ_PROTOCOL");
    if (env != NULL && env[0] != '\0' && rtq_config_set(&cfg, "protocol", env, errbuf, errcap) != 0)
      return RTQ_EINVAL;
    o->protocol = cfg.protocol;
  }
  if (o->protocol != 2)
    return rtq__errf(RTQ_EINVAL, errbuf, errcap,
                     "invalid protocol %d: expected 2 (0: RTQ_PROTOCOL); protocol 1 is no longer supported",
                     o->protocol);
  if (o->claim_batch == 0 || o->claim_batch > o->concurrency) o->claim_batch = o->concurrency;
  if (o->max_abandoned_threads == 0) o->max_abandoned_threads = o->concurrency;
  return 0;
}

/* The namespace keys the worker sends outside the scripts (the paused
 * set, the cancel channel, the record's DEL and ZREM), and each queue's
 * queue and processing list keys. */
static int build_keys(rtq_worker *w, char *errbuf, size_t errcap) {
  if (rtq_keys2_init(&w->keys2, w->ns) != 0)
    return rtq__errf(RTQ_EINVAL, errbuf, errcap,
                     "invalid namespace \"%.64s\": expected ^[A-Za-z0-9._-]{1,64}$", w->ns);
  w->k_worker = rtq_keys2_worker(&w->keys2, w->id);
  w->k_workers = rtq_keys2_workers(&w->keys2);
  w->k_cancel_chan = rtq_keys2_chan_cancel(&w->keys2);
  w->k_paused = rtq_keys2_paused(&w->keys2);
  if (w->k_worker.len == 0) return rtq__errf(RTQ_EINVAL, errbuf, errcap, "worker id too long");
  w->k2_queue = calloc((size_t)w->queues.n, sizeof *w->k2_queue);
  w->k2_proc = calloc((size_t)w->queues.n, sizeof *w->k2_proc);
  w->limited_until = calloc((size_t)w->queues.n, sizeof *w->limited_until);
  if (w->k2_queue == NULL || w->k2_proc == NULL || w->limited_until == NULL) return RTQ_ENOMEM;
  for (int i = 0; i < w->queues.n; i++) {
    w->k2_queue[i] = rtq_keys2_queue(&w->keys2, w->queues.q[i].name);
    w->k2_proc[i] = rtq_keys2_processing(&w->keys2, w->queues.q[i].name, w->id);
    if (w->k2_queue[i].len == 0 || w->k2_proc[i].len == 0)
      return rtq__errf(RTQ_EINVAL, errbuf, errcap, "queue key too long: %s", w->queues.q[i].name);
  }
  return 0;
}

static int make_conns(rtq_worker *w) {
  rtq__rconn_cfg cfg = {
      .url = &w->url,
      .connect_timeout_ms = w->o.connect_timeout_ms,
      .command_timeout_ms = w->o.command_timeout_ms,
      .probe_interval_ms = w->o.heartbeat_interval_ms,
      .route_key = w->k_workers.s, /* the slot of every {ns} key */
      .sub_channel = w->k_cancel_chan.s,
      .on_message = rtq__cancel_on_message,
      .on_up = rtq__worker_on_conn_up,
      .on_down = rtq__worker_on_conn_down,
  };
  if (w->url.kind == RTQ_URL_CLUSTER) cfg.on_ask = rtq__links_on_ask;
  w->cmd = rtq__rconn_new(w, w->ev, RTQ__CONN_CMD, &cfg);
  w->pop = rtq__rconn_new(w, w->ev, RTQ__CONN_POP, &cfg);
  w->sub = rtq__rconn_new(w, w->ev, RTQ__CONN_SUB, &cfg);
  if (w->cmd == NULL || w->pop == NULL || w->sub == NULL) return RTQ_ENOMEM;
  return rtq__links_init(w, &cfg);
}

int rtq_worker_new(const rtq_worker_options *opts, rtq_worker **out, char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (out == NULL || opts == NULL) return rtq__errf(RTQ_EINVAL, errbuf, errcap, "no options given");
  *out = NULL;
  rtq_worker *w = calloc(1, sizeof *w);
  if (w == NULL) return RTQ_ENOMEM;
  w->o = *opts;
  if (opts->cluster)
    rtq_log(RTQ_LOG_WARNING,
            "rtq_worker_options.cluster is deprecated and ignored: a redis+cluster:// URL selects Redis Cluster",
            NULL);
  int rc = normalise(&w->o, errbuf, errcap);
  rtq_config file_cfg; /* redis_url_file's URL, until it is copied below */
  if (rc == 0 && w->o.redis_url_file != NULL) {
    rtq_config_defaults(&file_cfg);
    rc = rtq_config_set(&file_cfg, "redis_url_file", w->o.redis_url_file, errbuf, errcap) == 0 ? 0 : RTQ_EINVAL;
    w->o.redis_url = file_cfg.redis_url;
    w->o.redis_url_file = NULL;
  }
  if (rc == 0) rc = rtq_redis_url_parse(w->o.redis_url, &w->url, errbuf, errcap);
  if (rc == 0) {
    w->redis_url = strdup(w->o.redis_url);
    w->ns = strdup(w->o.ns);
    if (w->redis_url == NULL || w->ns == NULL) rc = RTQ_ENOMEM;
    w->o.redis_url = w->redis_url;
    w->o.ns = w->ns;
  }
  if (opts->redis_url_file != NULL) memset(&file_cfg, 0, sizeof file_cfg);
  if (rc == 0) rc = rtq__queues_init(&w->queues, opts->queues, opts->nqueues, opts->strict_priority, errbuf, errcap);
  w->o.queues = NULL;
  w->o.nqueues = 0;
  if (rc == 0 && rtq_worker_id_new(w->id, sizeof w->id) != 0)
    rc = rtq__errf(RTQ_EINVAL, errbuf, errcap, "could not make a worker id");
  if (rc == 0) rc = build_keys(w, errbuf, errcap);
  if (rc == 0) rc = rtq__sign2_load(w, errbuf, errcap);
  if (rc == 0 && gethostname(w->host, sizeof w->host - 1) != 0) snprintf(w->host, sizeof w->host, "unknown");
  if (rc == 0 && (w->ev = rtq__ev_new(w)) == NULL) rc = RTQ_ENOMEM;
  if (rc == 0) rc = make_conns(w);
  if (rc == 0) rc = rtq__jobs_init(w);
  if (rc == 0 && rtq_random_bytes(&w->rng, sizeof w->rng) != 0) w->rng = (uint64_t)getpid() * 2654435761u;
  if (w->rng == 0) w->rng = 88172645463325252ull;
  if (rc != 0) {
    if (rc == RTQ_ENOMEM && errbuf != NULL && errcap > 0 && errbuf[0] == '\0') snprintf(errbuf, errcap, "out of memory");
    rtq_worker_free(w);
    return rc;
  }
  rtq_argv_init(&w->argv);
  w->last_processing_len = -1;
  atomic_init(&w->stop_requests, 0);
  *out = w;
  return 0;
}

void rtq_worker_free(rtq_worker *w) {
  if (w == NULL) return;
  rtq__links_free(w);
  free(w->links);
  free(w->qlink);
  free(w->links_next);
  rtq__rconn_free(w->cmd);
  rtq__rconn_free(w->pop);
  rtq__rconn_free(w->sub);
  if (w->htab != NULL) rtq__jobs_destroy(w);
  rtq__pool_free(w->pool);
  rtq__proc_destroy(w);
  rtq__ev_free(w->ev);
  rtq__queues_destroy(&w->queues);
  rtq_argv_destroy(&w->argv);
  free(w->k2_queue);
  free(w->k2_proc);
  free(w->limited_until);
  rtq__exec_free_all(w);
  free(w->handlers);
  free(w->redis_url);
  free(w->ns);
  rtq__sign2_free(w);
  memset(&w->url, 0, sizeof w->url); /* it holds the password */
  free(w);
}

const char *rtq_worker_id(const rtq_worker *w) { return w->id; }
const char *rtq_worker_errstr(const rtq_worker *w) { return w->errstr; }

void rtq_worker_stop(rtq_worker *w) {
  if (w == NULL) return;
  atomic_fetch_add(&w->stop_requests, 1);
  if (w->ev != NULL) rtq__ev_wake(w->ev);
}

/*
 * Memory after a hostile payload. hiredis grows its read buffer, the
 * formatted command and the output buffer with realloc, which glibc serves
 * from the heap, not from mmap: freeing them leaves the pages resident
 * whenever a small allocation sits above them. A 10 MB envelope would then
 * keep 10 MB of RSS for good. So once such a payload has gone through (the
 * read buffer is released on the pop connection's next read, hence two
 * rounds), malloc_trim(0) hands every free page back to the kernel.
 */
#define RTQ__TRIM_BYTES (256 * 1024)

void rtq__note_payload(rtq_worker *w, size_t len) {
  if (len < RTQ__TRIM_BYTES) return;
  w->trim_at = rtq__mono_ms() + 100;
}

static void trim_tick(rtq_worker *w, uint64_t now) {
  if (w->trim_at == 0 || now < w->trim_at) return;
  w->trim_at = 0;
  rtq__rconn_shrink(w->cmd);
  rtq__rconn_shrink(w->pop);
  rtq__rconn_shrink(w->sub);
  rtq__links_shrink(w);
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

/* ---- start-up: one blocking connection for the checks ---- */

static void startup_try(rtq_worker *w, uint64_t now) {
  rtq_conn_options co = {.url = w->redis_url,
                         .connect_timeout_ms = w->o.connect_timeout_ms,
                         .command_timeout_ms = w->o.command_timeout_ms};
  rtq_conn *c = NULL;
  char err[256] = "";
  int rc = rtq_conn_new(&co, &c, err, sizeof err);
  if (rc == 0) {
    (void)rtq_conn_check_eviction_policy(c);
    rc = rtq_proto_check(c, w->ns, err, sizeof err);
    if (rc == RTQ_EPROTOCOL) {
      /* Not a passing failure: the namespace holds protocol 1's data. */
      rtq_conn_free(c);
      rtq_log(RTQ_LOG_ERROR, "refusing to start", "error", err, NULL);
      rtq__set_err(w, "%s", err);
      w->exit_rc = RTQ_EPROTOCOL;
      w->phase = RTQ__DONE;
      rtq__ev_break(w->ev);
      return;
    }
    if (rc == 0) {
      rc = rtq_scripts2_load(c);
      if (rc != 0) snprintf(err, sizeof err, "%s", rtq_conn_errstr(c));
    }
    rtq_conn_free(c);
  }
  if (rc != 0) {
    if (w->start_failures++ % 10 == 0)
      rtq_log(RTQ_LOG_WARNING, "redis not reachable at start-up; retrying", "error", err, NULL);
    w->start_backoff_ms = w->start_backoff_ms ? w->start_backoff_ms * 2 : 100;
    if (w->start_backoff_ms > 5000) w->start_backoff_ms = 5000;
    w->start_retry_at = now + (uint64_t)w->start_backoff_ms;
    return;
  }
  w->phase = RTQ__RUN;
}

/* ---- loop entry points ---- */

static void service_all(rtq_worker *w, uint64_t now) {
  rtq__rconn_service(w->cmd, now);
  rtq__rconn_service(w->pop, now);
  rtq__rconn_service(w->sub, now);
  rtq__links_service(w, now);
}

void rtq__worker_on_prepare(rtq_worker *w) {
  uint64_t now = rtq__mono_ms();
  if (w->phase == RTQ__START && now >= w->start_retry_at) startup_try(w, now);
  if (w->phase == RTQ__START || w->phase == RTQ__DONE) return;
  service_all(w, now);
  rtq__heartbeat_tick(w, now);
  rtq__complete_pump(w);
  rtq__reconcile_pump(w);
  rtq__claim_paused_tick(w, now);
  rtq__claim_pump(w);
}

void rtq__worker_on_tick(rtq_worker *w) {
  uint64_t now = rtq__mono_ms();
  if (w->phase == RTQ__START) {
    if (now >= w->start_retry_at) startup_try(w, now);
    return;
  }
  if (w->phase == RTQ__DONE) return;
  service_all(w, now);
  if (w->o.isolation == RTQ_ISOLATION_PROCESS) rtq__proc_reap(w);
  rtq__claim_tick(w, now);
  rtq__claim_paused_tick(w, now);
  rtq__cancel_tick(w, now);
  rtq__progress_tick(w, now);
  rtq__heartbeat_tick(w, now);
  rtq__shutdown_tick(w, now);
  trim_tick(w, now);
}

static void task_back(rtq_worker *w, rtq_task_ctx *t) {
  rtq__job *j = t->job;
  (void)rtq__task_take_progress(t, &j->prog_seq, &j->prog);
  rtq__outcome_destroy(&j->out);
  j->out = t->out;
  memset(&t->out, 0, sizeof t->out);
  j->cancel_at_return = t->cancel_at_return;
  j->task = NULL;
  rtq__task_free(t);
  rtq__job_done(w, j);
}

void rtq__worker_on_wake(rtq_worker *w) {
  int n = atomic_load(&w->stop_requests);
  while (w->stops_seen < n) {
    w->stops_seen++;
    rtq__shutdown_begin(w, w->stops_seen > 1);
  }
  if (w->pool != NULL) rtq__pool_drain(w->pool, task_back);
}

void rtq__worker_on_signal(rtq_worker *w, int signo) {
  if (signo == SIGCHLD) {
    rtq__proc_reap(w);
    return;
  }
  rtq_log(RTQ_LOG_INFO, "signal received", "signal", rtq__signal_name(signo), NULL);
  rtq_worker_stop(w);
}

void rtq__worker_on_conn_up(rtq_worker *w, rtq__rconn *c) {
  if (rtq__links_owns(w, c) && w->reconcile_deferred) {
    w->reconcile_deferred = false;
    w->need_reconcile = true;
  }
  if (c == w->cmd || rtq__links_owns(w, c)) {
    w->use_eval = false; /* the handshake loaded every script */
    w->next_heartbeat = 0;
  } else if (c == w->sub) {
    w->next_cancel_check = 0; /* messages may have been missed meanwhile */
  }
}

void rtq__worker_on_conn_down(rtq_worker *w, rtq__rconn *c) {
  if (rtq__links_owns(w, c)) w->links_dirty = true; /* a MOVED, or a failover */
  if (c == w->pop || c == w->cmd || rtq__links_owns(w, c)) rtq__claim_on_conn_down(w, c);
}

/* ---- run ---- */

static void teardown(rtq_worker *w) {
  w->phase = RTQ__DONE;
  if (w->pool != NULL) {
    rtq__pool_drain(w->pool, task_back);
    for (rtq__job *j = w->jobs; j != NULL; j = j->next) {
      if (j->task != NULL && rtq__pool_abandon(w->pool, j->task) == 0) {
        j->task = NULL;
        j->handler_live = false;
      }
    }
    rtq__pool_drain(w->pool, task_back);
  }
  /* Pending callbacks run with NULL now, while the jobs they name exist. */
  rtq__links_free(w);
  rtq__rconn_free(w->cmd);
  rtq__rconn_free(w->pop);
  rtq__rconn_free(w->sub);
  w->cmd = w->pop = w->sub = NULL;
  free(w->waitq.pending); /* NULL unless a WAIT could not be sent */
  w->waitq.pending = NULL;
  w->waitq.in_flight = false;
  for (rtq__job *j = w->jobs; j != NULL; j = j->next) j->task = NULL; /* owned by the pool now */
  rtq__jobs_destroy(w);
  rtq__pool_free(w->pool);
  w->pool = NULL;
  rtq__proc_destroy(w);
  rtq__exec_drain_all(w);
}

int rtq_worker_run(rtq_worker *w) {
  if (w == NULL) return RTQ_EINVAL;
  if (w->running || w->cmd == NULL) {
    rtq__set_err(w, "a worker runs once, on one thread");
    return RTQ_EINVAL;
  }
  if (w->nhandlers == 0) {
    rtq__set_err(w, "no handler is registered");
    return RTQ_EINVAL;
  }
  w->running = true;
  w->errstr[0] = '\0';
  if (w->o.handle_signals) signal(SIGPIPE, SIG_IGN);
  /* A write to a socket Redis closed raises SIGPIPE in the writing thread.
   * Blocking it on this thread turns that into EPIPE without touching the
   * process-wide disposition (pool threads block it too). */
  sigset_t pipe_set, old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  int rc = 0;
  if (w->o.isolation == RTQ_ISOLATION_THREAD) {
    w->pool = rtq__pool_new(w, w->o.concurrency, w->o.thread_stack_kb);
    if (w->pool == NULL) rc = RTQ_ENOMEM;
  } else {
    rc = rtq__proc_init(w);
  }
  if (rc != 0) {
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    rtq__set_err(w, "could not start %s slots: %s",
                 w->o.isolation == RTQ_ISOLATION_THREAD ? "thread" : "process", rtq_strerror(rc));
    w->running = false;
    return rc;
  }
  w->started_at_ms = rtq__wall_ms();
  w->phase = RTQ__START;
  w->exit_rc = 0;
  rtq__ev_run(w->ev, w->o.handle_signals, w->o.isolation == RTQ_ISOLATION_PROCESS);
  char counts[5][24];
  snprintf(counts[0], sizeof counts[0], "%llu", (unsigned long long)w->n_claimed);
  snprintf(counts[1], sizeof counts[1], "%llu", (unsigned long long)w->n_finished);
  snprintf(counts[2], sizeof counts[2], "%llu", (unsigned long long)w->n_dead);
  snprintf(counts[3], sizeof counts[3], "%llu", (unsigned long long)w->n_stale);
  snprintf(counts[4], sizeof counts[4], "%llu", (unsigned long long)w->n_unreplicated);
  rtq_log(RTQ_LOG_INFO, "worker stopped", "worker", w->id, "claimed", counts[0], "finished", counts[1],
          "dead_lettered", counts[2], "stale", counts[3], "unreplicated",
          w->o.wait_replicas > 0 ? counts[4] : NULL, NULL);
  teardown(w);
  struct timespec zero = {0, 0};
  while (sigtimedwait(&pipe_set, NULL, &zero) > 0) {
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  w->running = false;
  return w->exit_rc;
}
