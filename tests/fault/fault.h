/*
 * fault.h - what the fault suite's files (test_fault_<group>.c) share.
 *
 * Every test of the suite works the same way:
 *
 *   fx_new()          a private redis-server (the harness's), a client and a
 *                     raw connection to it, and a log dir for the processes
 *   fx_events_start() an event recorder: a thread subscribed to the
 *                     queues' events channels from the start, counting
 *                     each task's claims, hand-backs, redeliveries and
 *                     terminal events
 *   fx_worker()       real rtq-worker / rtq-broker processes, by pid, with
 *   fx_broker()       short intervals (heartbeat TTL 1.5 s, sweep 100 ms,
 *                     lease 1.5 s) so a fault plays out in seconds
 *   ... the fault: kill -9, SIGSTOP, a frozen or restarted Redis ...
 *   fx_figure()       one line of figures on stdout ("fault1: ...")
 *   fx_free()         stops what still runs (by pid), stops the server
 *
 * Tasks of a test are named "<prefix>-<index>" (fault1-0000, ...) so
 * the recorder can keep a flat array per index instead of a hash table.
 *
 * "Exactly one terminal transition" is read from the recorder: every
 * terminal step (finish, cancel, recover's WORKER_LOST, the backstop,
 * deadletter) publishes one event with the terminal status, and a rejected
 * late write publishes nothing. Pub/sub delivers nothing twice, so a task
 * with two terminal events did end twice. Where Redis itself goes away
 * (test_fault_redis.c) messages can be lost with the connection, and the
 * queue's counters ({ns:Q}:stats), written by the same scripts, are the
 * witness instead.
 *
 * Every task of the suite is in queue "default" (FX_QUEUE), namespace
 * "rtq".
 *
 * Process logs go to $RTQ_BIN_DIR/fault-logs/<prefix>-<name>.log and stay
 * there after the run, for a failure to be read afterwards. A failing check
 * prints the tail of each process's log.
 */
#ifndef RTQ_TEST_FAULT_H
#define RTQ_TEST_FAULT_H

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"

/* 1 in an RTQ_SANITIZE build (ASan and UBSan go together there). Some
 * figures mean nothing under the sanitizers: ASan's quarantine keeps freed
 * memory resident, and UBSan turns a null store into exit(1) before the
 * SIGSEGV it would be. */
#if defined(__SANITIZE_ADDRESS__)
#define FX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FX_SANITIZED 1
#endif
#endif
#ifndef FX_SANITIZED
#define FX_SANITIZED 0
#endif

#define FX_MAX_PROCS 12
#define FX_QUEUE "default"
#define FX_MAX_ARGS 48

/* A worker or broker process. pid is -1 once it has been reaped. */
typedef struct fx_proc {
  pid_t pid;
  char name[32];
  char id[RTQ_NAME_MAX + 1]; /* worker id (from its record) or broker id */
  char log[768];
} fx_proc;

typedef struct fx_events fx_events;

typedef struct fx {
  char prefix[16];           /* task ids and figure lines start with it */
  rtq_test_redis *redis;
  const char *url;
  rtq_conn *c;               /* main thread only */
  rtq_keys2 k;
  rtq_client *cl;
  char logdir[512];
  fx_proc procs[FX_MAX_PROCS];
  int nprocs;
  fx_events *ev;             /* the recorder, when started */
} fx;

static inline void fx_sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* ---- figures ----------------------------------------------------------- */

/* Prints "<prefix>: <text>" on its own line; run.sh collects these. */
static inline void fx_figure(const fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void fx_figure(const fx *f, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  printf("%s: %s\n", f->prefix, text);
  fflush(stdout);
}

/* ---- logs of the processes --------------------------------------------- */

static inline void fx_dump_log(const fx_proc *p, int max_lines) {
  FILE *fp = fopen(p->log, "r");
  if (fp == NULL) return;
  /* A ring of the last max_lines lines: logs of a busy worker are long. */
  enum { RING = 200 };
  static char ring[RING][512];
  if (max_lines > RING) max_lines = RING;
  long n = 0;
  while (fgets(ring[n % RING], sizeof ring[0], fp) != NULL) n++;
  fclose(fp);
  fprintf(stderr, "---- %s (%s), last %d of %ld lines ----\n", p->name, p->log, max_lines, n);
  for (long i = n > max_lines ? n - max_lines : 0; i < n; i++) fprintf(stderr, "  | %s", ring[i % RING]);
}

static inline void fx_dump_logs(const fx *f) {
  for (int i = 0; i < f->nprocs; i++) fx_dump_log(&f->procs[i], 40);
}

/* Fails the test after printing every process's log tail. */
#define fx_fail(f, ...)        \
  do {                         \
    fx_dump_logs(f);           \
    fail_msg(__VA_ARGS__);     \
  } while (0)

/* Fails the test when cond is false: the condition's text, then the
 * printf-style description that follows it. */
#define fx_check(f, cond, ...)                             \
  do {                                                     \
    if (!(cond)) {                                         \
      fprintf(stderr, "check failed: %s\n", #cond);       \
      fx_fail(f, __VA_ARGS__);                             \
    }                                                      \
  } while (0)

/* Lines of p's log that contain needle. */
static inline int fx_log_count(const fx_proc *p, const char *needle) {
  FILE *fp = fopen(p->log, "r");
  if (fp == NULL) return 0;
  char line[8192];
  int n = 0;
  while (fgets(line, sizeof line, fp) != NULL)
    if (strstr(line, needle) != NULL) n++;
  fclose(fp);
  return n;
}

/* ---- the fixture ------------------------------------------------------- */

static inline void fx_events_free(fx_events *ev);

/* Creates the fixture and stores it in *state, for fx_teardown to free
 * even when the test fails half-way. ro may be NULL. */
static inline fx *fx_new(void **state, const char *prefix, const rtq_test_redis_options *ro) {
  fx *f = calloc(1, sizeof *f);
  assert_non_null(f);
  *state = f;
  snprintf(f->prefix, sizeof f->prefix, "%s", prefix);
  f->redis = rtq_test_redis_start(ro);
  if (f->redis == NULL) fail_msg("redis-server did not start");
  f->url = rtq_test_redis_url_of(f->redis);
  f->c = rtq_test_conn_new(f->url);
  assert_int_equal(rtq_keys2_init(&f->k, "rtq"), 0);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = f->url;
  o.command_timeout_ms = 2000;
  if (rtq_client_new(&o, &f->cl) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  const char *bin = getenv("RTQ_BIN_DIR");
  if (bin == NULL) fail_msg("RTQ_BIN_DIR is not set (run the suite through ctest)");
  snprintf(f->logdir, sizeof f->logdir, "%s/fault-logs", bin);
  (void)mkdir(f->logdir, 0755);
  return f;
}

/* SIGTERM, then SIGKILL after timeout_ms; returns the exit code, -1 when a
 * signal ended it, -2 when it had to be killed. */
static inline int fx_stop(fx_proc *p, int timeout_ms) {
  if (p->pid <= 0) return -3;
  int st = 0;
  int rc = rtq_test_terminate(p->pid, SIGTERM, timeout_ms, &st);
  p->pid = -1;
  if (rc != 0) return -2;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* kill -9 and reap. */
static inline void fx_kill9(fx_proc *p) {
  assert_true(p->pid > 0);
  assert_int_equal(rtq_test_kill(p->pid, SIGKILL), 0);
  assert_int_equal(rtq_test_wait_exit(p->pid, 5000, NULL), 0);
  p->pid = -1;
}

/* Stops the recorder, then every process still running (SIGTERM, SIGKILL
 * after 10 s), then the server. NULL does nothing. */
static inline void fx_free(fx *f) {
  if (f == NULL) return;
  fx_events_free(f->ev);
  for (int i = 0; i < f->nprocs; i++) {
    if (f->procs[i].pid > 0) {
      (void)fx_stop(&f->procs[i], 10000); /* resumes a stopped one first */
    }
  }
  rtq_client_free(f->cl);
  rtq_conn_free(f->c);
  rtq_test_redis_stop(f->redis);
  free(f);
}

/* cmocka teardown for tests that called fx_new(state, ...). */
static inline int fx_teardown(void **state) {
  fx_free(*state);
  *state = NULL;
  return 0;
}

/* ---- processes --------------------------------------------------------- */

static inline fx_proc *fx_spawn(fx *f, const char *name, const char *rel_bin, const char *const *argv) {
  assert_true(f->nprocs < FX_MAX_PROCS);
  fx_proc *p = &f->procs[f->nprocs++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  char path[sizeof p->log];
  if (snprintf(path, sizeof path, "%s/%s-%s.log", f->logdir, f->prefix, name) >= (int)sizeof path)
    fail_msg("log path too long");
  memcpy(p->log, path, sizeof path);
  unlink(p->log);
  char bin[1024];
  if (rtq_test_bin_path(rel_bin, bin, sizeof bin) == NULL) fail_msg("RTQ_BIN_DIR is not set");
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = p->log};
  p->pid = rtq_test_spawn_ex(&so);
  assert_true(p->pid > 0);
  return p;
}

/* Still running? A process found dead is reaped and forgotten (pid -1),
 * so its pid can never be signalled again. */
static inline bool fx_alive(fx_proc *p) {
  if (p->pid <= 0) return false;
  if (rtq_test_wait_exit(p->pid, 0, NULL) == RTQ_ETIMEDOUT) return true;
  p->pid = -1;
  return false;
}

/* The id of the worker whose record says pid. */
static inline bool fx_find_worker(fx *f, pid_t pid, char *id, size_t cap) {
  redisReply *r = rtq_test_command(f->c, "ZRANGE", rtq_keys2_workers(&f->k).s, "0", "-1", NULL);
  bool found = false;
  char want[32];
  snprintf(want, sizeof want, "%d", (int)pid);
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
    rtq_key2 wk = rtq_keys2_worker(&f->k, r->element[i]->str);
    if (wk.len == 0) continue;
    char *p = rtq_test_cmd_str(f->c, "HGET", wk.s, "pid", NULL);
    if (p != NULL && strcmp(p, want) == 0) {
      snprintf(id, cap, "%s", r->element[i]->str);
      found = true;
    }
    free(p);
  }
  freeReplyObject(r);
  return found;
}

static inline int fx_collect_args(const char **out, int n, va_list ap) {
  const char *s;
  while ((s = va_arg(ap, const char *)) != NULL && n < FX_MAX_ARGS - 1) out[n++] = s;
  out[n] = NULL;
  return n;
}

/*
 * Starts rtq-worker with the demo handlers and fast heartbeats (every
 * 250 ms, TTL 1.5 s), a kill grace of 500 ms, then the test's flags (a
 * NULL-terminated list; a later flag overrides a default), and waits until
 * its first heartbeat is in Redis, which is when it starts claiming.
 */
static inline fx_proc *fx_worker(fx *f, const char *name, ...) __attribute__((sentinel));
static inline fx_proc *fx_worker(fx *f, const char *name, ...) {
  const char *argv[FX_MAX_ARGS + 1];
  int n = 0;
  argv[n++] = "rtq-worker";
  argv[n++] = "--redis";
  argv[n++] = f->url;
  argv[n++] = "--demo-handlers";
  argv[n++] = "--heartbeat-interval";
  argv[n++] = "250ms";
  argv[n++] = "--heartbeat-ttl";
  argv[n++] = "1500ms";
  argv[n++] = "--kill-grace";
  argv[n++] = "500ms";
  argv[n++] = "--block-timeout";
  argv[n++] = "1s";
  va_list ap;
  va_start(ap, name);
  fx_collect_args(argv, n, ap);
  va_end(ap);
  fx_proc *p = fx_spawn(f, name, "worker/rtq-worker", argv);
  uint64_t deadline = rtq_test_now_ms() + 10000;
  while (!fx_find_worker(f, p->pid, p->id, sizeof p->id)) {
    if (!fx_alive(p)) fx_fail(f, "worker %s exited at start-up", name);
    if (rtq_test_now_ms() > deadline) fx_fail(f, "worker %s wrote no heartbeat within 10 s", name);
    fx_sleep_ms(10);
  }
  return p;
}

/* Starts rtq-broker with id <prefix>-<name>, heartbeat TTL 1.5 s, sweep
 * 100 ms, lease 1.5 s, timeout grace 500 ms, then the test's flags. It does
 * not wait: brokers write nothing until they hold the lease. */
static inline fx_proc *fx_broker(fx *f, const char *name, ...) __attribute__((sentinel));
static inline fx_proc *fx_broker(fx *f, const char *name, ...) {
  char id[64];
  snprintf(id, sizeof id, "%s-%s", f->prefix, name);
  const char *argv[FX_MAX_ARGS + 1];
  int n = 0;
  argv[n++] = "rtq-broker";
  argv[n++] = "--redis";
  argv[n++] = f->url;
  argv[n++] = "--id";
  argv[n++] = id;
  /* Units spelt out: a bare number means ms to the broker and s to the
   * worker (and the broker's reading has changed once already). */
  argv[n++] = "--heartbeat-ttl";
  argv[n++] = "1500ms";
  argv[n++] = "--sweep-interval";
  argv[n++] = "100ms";
  argv[n++] = "--lease-ttl";
  argv[n++] = "1500ms";
  argv[n++] = "--timeout-grace";
  argv[n++] = "500ms";
  va_list ap;
  va_start(ap, name);
  fx_collect_args(argv, n, ap);
  va_end(ap);
  fx_proc *p = fx_spawn(f, name, "broker/rtq-broker", argv);
  snprintf(p->id, sizeof p->id, "%s", id);
  return p;
}

/* The broker holding the lease is p. */
static inline bool fx_leads(fx *f, const fx_proc *p) {
  char *h = rtq_test_cmd_str(f->c, "GET", rtq_keys2_lease(&f->k).s, NULL);
  bool yes = h != NULL && strcmp(h, p->id) == 0;
  free(h);
  return yes;
}

/* ---- tasks ------------------------------------------------------------- */

static inline void fx_task_id(const fx *f, int i, char *buf, size_t cap) {
  snprintf(buf, cap, "%s-%04d", f->prefix, i);
}

/* Fills args for task i (may leave it empty) and may set o's timeout. */
typedef void (*fx_args_fn)(int i, rtq_args *args, rtq_task_options *o, void *ud);

/* Enqueues tasks first..first+n-1 of handler name, 200 per round trip;
 * every one must be created. */
static inline void fx_enqueue(fx *f, int first, int n, const char *name, fx_args_fn fn, void *ud) {
  enum { CHUNK = 200 };
  rtq_task_spec specs[CHUNK];
  rtq_task_options opts[CHUNK];
  rtq_args *args[CHUNK];
  char ids[CHUNK][RTQ_TASK_ID_SIZE];
  for (int done = 0; done < n;) {
    int k = n - done < CHUNK ? n - done : CHUNK;
    for (int j = 0; j < k; j++) {
      memset(&specs[j], 0, sizeof specs[j]);
      memset(&opts[j], 0, sizeof opts[j]);
      args[j] = rtq_args_new();
      assert_non_null(args[j]);
      fx_task_id(f, first + done + j, ids[j], sizeof ids[j]);
      opts[j].id = ids[j];
      if (fn != NULL) fn(first + done + j, args[j], &opts[j], ud);
      specs[j].name = name;
      specs[j].args = args[j];
      specs[j].opts = &opts[j];
    }
    int rc = rtq_create_tasks(f->cl, specs, (size_t)k);
    for (int j = 0; j < k; j++) rtq_args_free(args[j]);
    if (rc != 0) fx_fail(f, "create: %s (%s)", rtq_err_name(rc), rtq_client_errstr(f->cl));
    for (int j = 0; j < k; j++) assert_int_equal(specs[j].created, 1);
    done += k;
  }
}

/* rtq.sleep arguments: seconds, one step (one progress report). */
typedef struct fx_sleep_args {
  double seconds;
  double spread;  /* seconds + [0, spread), from a fixed sequence */
  int steps;      /* 0: 1 */
  bool ignore_cancel;
  uint64_t timeout_ms;
} fx_sleep_args;

static inline void fx_sleep_fill(int i, rtq_args *a, rtq_task_options *o, void *ud) {
  const fx_sleep_args *s = ud;
  /* A fixed pseudo-random sequence keeps every run the same. */
  uint32_t x = (uint32_t)i * 2654435761u;
  double jitter = s->spread > 0 ? s->spread * (double)(x >> 8) / (double)(1u << 24) : 0;
  rtq_args_set_double(a, "seconds", s->seconds + jitter);
  rtq_args_set_int(a, "steps", s->steps > 0 ? s->steps : 1);
  if (s->ignore_cancel) rtq_args_set_bool(a, "ignore_cancel", true);
  o->timeout_ms = s->timeout_ms;
}

/* The key of task i's hash. */
static inline rtq_key2 fx_key_task(const fx *f, int i) {
  char id[RTQ_TASK_ID_SIZE];
  fx_task_id(f, i, id, sizeof id);
  return rtq_keys2_task(&f->k, FX_QUEUE, id);
}

/* Statuses of tasks first..first+n-1, pipelined; -1 for a missing hash. */
static inline void fx_statuses(fx *f, int first, int n, int *out) {
  rtq_argv a;
  for (int i = 0; i < n; i++) {
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "HGET");
    rtq__argv_add_key2(&a, fx_key_task(f, first + i));
    rtq_argv_add_str(&a, "s");
    assert_int_equal(rtq_conn_append(f->c, &a), 0);
    rtq_argv_destroy(&a);
  }
  for (int i = 0; i < n; i++) {
    redisReply *r = NULL;
    int rc = rtq_conn_get_reply(f->c, &r);
    if (rc != 0 || r == NULL) fail_msg("HGET status: %s", rtq_conn_errstr(f->c));
    rtq_status st;
    out[i] = r->type == REDIS_REPLY_STRING && rtq_status_parse(r->str, &st) == 0 ? (int)st : -1;
    freeReplyObject(r);
  }
}

/* How many of tasks 0..n-1 have status st (terminal: -2 means any terminal). */
static inline int fx_count_status(fx *f, int n, int st) {
  int *s = calloc((size_t)n, sizeof *s);
  assert_non_null(s);
  fx_statuses(f, 0, n, s);
  int c = 0;
  for (int i = 0; i < n; i++)
    if (st == -2 ? s[i] >= 0 && rtq_status_is_terminal((rtq_status)s[i]) : s[i] == st) c++;
  free(s);
  return c;
}

#define FX_TERMINAL (-2)

/* A task field by its long name ("status"), as a malloc'd string (NULL
 * when absent). The hash keeps short names (docs/PROTOCOL.md
 * section 3), and a value over 64 bytes in the side hash. */
static inline char *fx_field(fx *f, int i, const char *field) {
  static const char *const map[][2] = {
      {"status", "s"},          {"worker", "w"},        {"attempt", "a"},        {"error_code", "ec"},
      {"error_message", "em"},  {"error_traceback", "et"}, {"started_at", "b"}, {"completed_at", "e"},
      {"name", "n"},            {"created_at", "c"},    {"progress", "p"},       {"result", "r"}};
  const char *name = field;
  for (size_t m = 0; m < sizeof map / sizeof map[0]; m++)
    if (strcmp(map[m][0], field) == 0) name = map[m][1];
  char *v = rtq_test_cmd_str(f->c, "HGET", fx_key_task(f, i).s, name, NULL);
  if (v == NULL) {
    char id[RTQ_TASK_ID_SIZE];
    fx_task_id(f, i, id, sizeof id);
    v = rtq_test_cmd_str(f->c, "HGET", rtq_keys2_side(&f->k, FX_QUEUE, id).s, name, NULL);
  }
  return v;
}

static inline long long fx_field_ll(fx *f, int i, const char *field) {
  char *v = fx_field(f, i, field);
  long long n = v != NULL ? strtoll(v, NULL, 10) : -1;
  free(v);
  return n;
}

/* A counter of a queue ({ns:Q}:stats: "completed", "redelivered"); 0
 * when absent. */
static inline long long fx_stat(fx *f, const char *queue, const char *counter) {
  char *v = rtq_test_cmd_str(f->c, "HGET", rtq_keys2_stats(&f->k, queue).s, counter, NULL);
  long long n = v != NULL ? atoll(v) : 0;
  free(v);
  return n;
}

/* Sum of the four terminal counters of a queue. */
static inline long long fx_stat_terminal(fx *f, const char *queue) {
  return fx_stat(f, queue, "completed") + fx_stat(f, queue, "failed") + fx_stat(f, queue, "cancelled") +
         fx_stat(f, queue, "timeout");
}

static inline long long fx_llen(fx *f, rtq_key2 k) { return rtq_test_cmd_int(f->c, "LLEN", k.s, NULL); }

/* ---- the event recorder ------------------------------------------------ */

/* What the events channel said about one task. */
typedef struct fx_rec {
  uint16_t running;      /* claims: 'running' events */
  uint16_t terminal;     /* terminal-status events */
  uint16_t redelivered;  /* 'pending' events of recover.lua */
  uint16_t requeued;     /* 'pending' events of requeue.lua (graceful hand-back) */
  uint16_t max_attempt;  /* highest attempt a claim reported */
  int8_t last;           /* status of the last terminal event, -1 none */
  uint64_t terminal_ms;  /* monotonic ms the first terminal event arrived */
  uint64_t running_ms;   /* monotonic ms of the last claim */
} fx_rec;

struct fx_events {
  fx *f;
  rtq_client *cl;        /* the recorder's own, so it never waits on the test's pool */
  rtq_subscription *sub;
  pthread_t thread;
  pthread_mutex_t mu;
  atomic_bool stop;
  int n;
  fx_rec *rec;
  uint64_t messages, others, bad, resubscribes;
};

/* Index of a task id of this test, -1 for any other. */
static inline int fx_events_index(const fx_events *ev, const char *id) {
  size_t pl = strlen(ev->f->prefix);
  if (strncmp(id, ev->f->prefix, pl) != 0 || id[pl] != '-') return -1;
  char *end;
  long i = strtol(id + pl + 1, &end, 10);
  if (*end != '\0' || end == id + pl + 1 || i < 0 || i >= ev->n) return -1;
  return (int)i;
}

static inline void fx_events_take(fx_events *ev, const char *text) {
  json_t *j = json_loads(text, 0, NULL);
  const char *id = j != NULL ? json_string_value(json_object_get(j, "id")) : NULL;
  const char *status = j != NULL ? json_string_value(json_object_get(j, "status")) : NULL;
  rtq_status st;
  pthread_mutex_lock(&ev->mu);
  ev->messages++;
  if (id == NULL || status == NULL || rtq_status_parse(status, &st) != 0) {
    ev->bad++;
  } else {
    int i = fx_events_index(ev, id);
    if (i < 0) {
      ev->others++;
    } else {
      fx_rec *r = &ev->rec[i];
      uint64_t now = rtq_test_now_ms();
      /* Claims carry the worker; progress and cancel-request events, also
       * "running", do not. */
      if (st == RTQ_STATUS_RUNNING && json_object_get(j, "worker") != NULL) {
        r->running++;
        r->running_ms = now;
        json_int_t a = json_integer_value(json_object_get(j, "attempt"));
        if (a > r->max_attempt) r->max_attempt = (uint16_t)a;
      } else if (rtq_status_is_terminal(st)) {
        if (r->terminal++ == 0) r->terminal_ms = now;
        r->last = (int8_t)st;
      } else if (st == RTQ_STATUS_PENDING) {
        if (json_is_true(json_object_get(j, "redelivered"))) r->redelivered++;
        if (json_is_true(json_object_get(j, "requeued"))) r->requeued++;
      }
    }
  }
  pthread_mutex_unlock(&ev->mu);
  json_decref(j);
}

/* The recorder thread: reads until stopped; after a lost connection
 * (Redis killed) it subscribes again, every 50 ms, and counts it. */
static inline void *fx_events_main(void *arg) {
  fx_events *ev = arg;
  while (!atomic_load(&ev->stop)) {
    if (ev->sub == NULL) {
      if (rtq_events_subscribe(ev->cl, &ev->sub) != 0) {
        ev->sub = NULL;
        fx_sleep_ms(50);
        continue;
      }
      pthread_mutex_lock(&ev->mu);
      ev->resubscribes++;
      pthread_mutex_unlock(&ev->mu);
    }
    char *json = NULL;
    int rc = rtq_subscription_next(ev->sub, 100, &json);
    if (rc == 0) {
      fx_events_take(ev, json);
      free(json);
    } else if (rc != RTQ_ETIMEDOUT) {
      rtq_subscription_free(ev->sub);
      ev->sub = NULL;
    }
  }
  return NULL;
}

/* Subscribes now (so nothing after this call is missed) and starts the
 * thread. n: the test's task count. fx_free stops it. The subscription
 * listens to the queues of {ns}:queues, so FX_QUEUE is registered first,
 * as a producer registers it. */
static inline fx_events *fx_events_start(fx *f, int n) {
  rtq_test_cmd_int(f->c, "SADD", rtq_keys2_queues(&f->k).s, FX_QUEUE, NULL);
  fx_events *ev = calloc(1, sizeof *ev);
  assert_non_null(ev);
  f->ev = ev;
  ev->f = f;
  ev->n = n;
  ev->rec = calloc((size_t)n, sizeof *ev->rec);
  assert_non_null(ev->rec);
  for (int i = 0; i < n; i++) ev->rec[i].last = -1;
  pthread_mutex_init(&ev->mu, NULL);
  atomic_init(&ev->stop, false);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = f->url;
  o.connect_timeout_ms = 500;
  if (rtq_client_new(&o, &ev->cl) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  if (rtq_events_subscribe(ev->cl, &ev->sub) != 0) fail_msg("subscribe: %s", rtq_client_errstr(ev->cl));
  if (pthread_create(&ev->thread, NULL, fx_events_main, ev) != 0) {
    f->ev = NULL;
    fail_msg("pthread_create failed");
  }
  return ev;
}

static inline void fx_events_free(fx_events *ev) {
  if (ev == NULL) return;
  atomic_store(&ev->stop, true);
  pthread_join(ev->thread, NULL);
  rtq_subscription_free(ev->sub);
  rtq_client_free(ev->cl);
  pthread_mutex_destroy(&ev->mu);
  free(ev->rec);
  free(ev);
}

/* A copy of task i's record. */
static inline fx_rec fx_events_get(fx_events *ev, int i) {
  pthread_mutex_lock(&ev->mu);
  fx_rec r = ev->rec[i];
  pthread_mutex_unlock(&ev->mu);
  return r;
}

/* Tasks among 0..n-1 with at least one terminal event / one claim. */
static inline int fx_events_terminal(fx_events *ev) {
  int c = 0;
  pthread_mutex_lock(&ev->mu);
  for (int i = 0; i < ev->n; i++) c += ev->rec[i].terminal > 0;
  pthread_mutex_unlock(&ev->mu);
  return c;
}

static inline int fx_events_claimed(fx_events *ev) {
  int c = 0;
  pthread_mutex_lock(&ev->mu);
  for (int i = 0; i < ev->n; i++) c += ev->rec[i].running > 0;
  pthread_mutex_unlock(&ev->mu);
  return c;
}

/* Claimed and not ended, by the events. */
static inline int fx_events_running(fx_events *ev) {
  int c = 0;
  pthread_mutex_lock(&ev->mu);
  for (int i = 0; i < ev->n; i++) c += ev->rec[i].running > 0 && ev->rec[i].terminal == 0;
  pthread_mutex_unlock(&ev->mu);
  return c;
}

/* Messages read so far, and how often the recorder subscribed again. */
static inline void fx_events_counts(fx_events *ev, uint64_t *messages, uint64_t *resubscribes) {
  pthread_mutex_lock(&ev->mu);
  *messages = ev->messages;
  *resubscribes = ev->resubscribes;
  pthread_mutex_unlock(&ev->mu);
}

/* Figures of a finished run, over tasks 0..n-1. */
typedef struct fx_tally {
  int ended_once;     /* exactly one terminal event */
  int ended_twice;    /* two or more */
  int never_ended;    /* none */
  int ran_twice;      /* claimed two or more times */
  int redelivered;    /* tasks with a redelivery event */
  int redelivered_twice;
  int requeued;       /* tasks handed back by a stopping worker */
  int by_status[RTQ_STATUS_COUNT];
} fx_tally;

static inline fx_tally fx_events_tally(fx_events *ev) {
  fx_tally t;
  memset(&t, 0, sizeof t);
  pthread_mutex_lock(&ev->mu);
  for (int i = 0; i < ev->n; i++) {
    const fx_rec *r = &ev->rec[i];
    if (r->terminal == 1) t.ended_once++;
    else if (r->terminal > 1) t.ended_twice++;
    else t.never_ended++;
    if (r->running > 1) t.ran_twice++;
    if (r->redelivered > 0) t.redelivered++;
    if (r->redelivered > 1) t.redelivered_twice++;
    if (r->requeued > 0) t.requeued++;
    if (r->last >= 0) t.by_status[r->last]++;
  }
  pthread_mutex_unlock(&ev->mu);
  return t;
}

/* Fails the test naming the first tasks whose terminal event count is not
 * exactly one. */
static inline void fx_events_assert_once(fx_events *ev) {
  char bad[512] = "";
  size_t used = 0;
  int nbad = 0;
  pthread_mutex_lock(&ev->mu);
  for (int i = 0; i < ev->n; i++) {
    if (ev->rec[i].terminal == 1) continue;
    if (nbad++ < 8 && used < sizeof bad)
      used += (size_t)snprintf(bad + used, sizeof bad - used, " %s-%04d(%u terminal events)", ev->f->prefix, i,
                               ev->rec[i].terminal);
  }
  pthread_mutex_unlock(&ev->mu);
  if (nbad > 0) fx_fail(ev->f, "%d of %d tasks did not end exactly once:%s", nbad, ev->n, bad);
}

#endif
