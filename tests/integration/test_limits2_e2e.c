/*
 * test_limits2_e2e.c - a queue's fleet-wide limits with real rtq-worker
 * processes (protocol 2) on a private redis-server:
 *   - a rate limit holds across 4 workers (the measured rate is printed
 *     and asserted within a generous band: CI machines are loaded);
 *   - a concurrency limit holds across 3 workers, and a worker killed with
 *     kill -9 while it holds a slot gives the slot back when the task's
 *     lease lapses at its deadline, or sooner through the broker's
 *     recovery;
 *   - a queue sitting at its limit does not make the workers poll Redis
 *     (INFO commandstats over a window, printed beside an idle fleet's).
 * The limits are set through librtq (rtq_queue_limit_set); tasks are made
 * with the create script's call builder (test_ops2_util.h).
 * bench/limits.sh takes the longer measurements of docs/OPERATIONS.md.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "test_ops2_util.h"

#define MAX_PROCS 8

static rtq_client *CL;
static rtq_conn *C;
static rtq_keys2 K;
static pid_t procs[MAX_PROCS];
static int nprocs;

static int setup(void **state) {
  (void)state;
  ops2_fixture(&CL, &C, &K);
  nprocs = 0;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < nprocs; i++)
    if (procs[i] > 0) rtq_test_terminate(procs[i], SIGTERM, 10000, NULL);
  rtq_client_free(CL);
  rtq_conn_free(C);
  return 0;
}

/* Starts a built binary (rel: "worker/rtq-worker") with --redis and args
 * (NULL-terminated). */
static pid_t start(const char *rel, const char *const *args) {
  char bin[512], log[64];
  assert_non_null(rtq_test_bin_path(rel, bin, sizeof bin));
  const char *argv[32];
  int n = 0;
  argv[n++] = bin;
  argv[n++] = "--redis";
  argv[n++] = rtq_test_redis_url();
  for (int i = 0; args[i] != NULL; i++) {
    assert_true(n < 31);
    argv[n++] = args[i];
  }
  argv[n] = NULL;
  snprintf(log, sizeof log, "/tmp/rtq-limits2-%d.log", nprocs);
  rtq_test_spawn_options o;
  memset(&o, 0, sizeof o);
  o.path = bin;
  o.argv = argv;
  o.env = (const char *const[]){"RTQ_NAMESPACE", NULL};
  o.output_path = getenv("RTQ_LIMITS2_LOG") != NULL ? log : "/dev/null";
  pid_t pid = rtq_test_spawn_ex(&o);
  assert_true(pid > 0);
  assert_true(nprocs < MAX_PROCS);
  procs[nprocs++] = pid;
  return pid;
}

static pid_t start_worker(const char *queue, const char *conc) {
  return start("worker/rtq-worker", (const char *const[]){"--queue", queue, "--concurrency", conc,
                                                         "--demo-handlers", "--heartbeat-interval", "200ms",
                                                         "--heartbeat-ttl", "2s", NULL});
}

static long long alive_workers(void) { return rtq_test_cmd_int(C, "ZCARD", rtq_keys2_workers(&K).s, NULL); }

/* A field of a task as a number; -1 when absent. */
static long long task_num(const char *queue, const char *id, const char *field) {
  rtq_key2 t = rtq_keys2_task(&K, queue, id);
  char *v = rtq_test_cmd_str(C, "HGET", t.s, field, NULL);
  long long n = v != NULL ? strtoll(v, NULL, 10) : -1;
  free(v);
  return n;
}

/* How many of ids have status s. */
static int count_status(const char *queue, char (*ids)[RTQ_ID2_LEN + 1], int n, const char *s) {
  int k = 0;
  for (int i = 0; i < n; i++) {
    char buf[16];
    k += strcmp(ops2_status(C, &K, queue, ids[i], buf), s) == 0;
  }
  return k;
}

/* How many of the tasks have status s at one instant: their statuses read
 * in one MULTI/EXEC, so no task can end and another start between two
 * reads (reading them one by one can see both running). */
static int count_status_at_once(const char *queue, char (*ids)[RTQ_ID2_LEN + 1], int n, const char *s) {
  freeReplyObject(rtq_test_command(C, "MULTI", NULL));
  for (int i = 0; i < n; i++)
    freeReplyObject(rtq_test_command(C, "HGET", rtq_keys2_task(&K, queue, ids[i]).s, "s", NULL));
  redisReply *r = rtq_test_command(C, "EXEC", NULL);
  int k = 0;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
    k += r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, s) == 0;
  freeReplyObject(r);
  return k;
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

/* total_commands_processed of INFO stats. */
static unsigned long long total_commands(void) {
  char *info = rtq_test_cmd_str(C, "INFO", "stats", NULL);
  const char *p = strstr(info, "total_commands_processed:");
  unsigned long long n = p != NULL ? strtoull(p + 25, NULL, 10) : 0;
  free(info);
  return n;
}

static void test_limits2_rate_holds_across_four_workers(void **state) {
  (void)state;
  enum { N = 100, MEASURED = 60 };
  static char ids[N][RTQ_ID2_LEN + 1];
  rtq_queue_limits l = {.rate = 20, .burst = 1};
  assert_int_equal(rtq_queue_limit_set(CL, "rl", &l, RTQ_LIMIT_RATE), 0);
  ops2_spec sp = {.name = "rtq.noop"};
  ops2_create_ex(C, &K, "rl", N, &sp, ids);
  for (int i = 0; i < 4; i++) start_worker("rl", "4");
  /* 60 starts at 20/s take about 3 s. */
  RTQ_TEST_WAIT_FOR(N - count_status("rl", ids, N, "pending") >= MEASURED + 1, 30000);
  long long b[N];
  int m = 0;
  for (int i = 0; i < N; i++) {
    long long t = task_num("rl", ids[i], "b");
    if (t > 0) b[m++] = t;
  }
  qsort(b, (size_t)m, sizeof b[0], cmp_ll);
  /* From the first start to the MEASURED-th after it, on Redis's clock. */
  double span_s = (double)(b[MEASURED] - b[0]) / 1000.0;
  double rate = MEASURED / span_s;
  print_message("rate limit 20/s, 4 workers: %d starts in %.2f s = %.2f/s\n", MEASURED, span_s, rate);
  /* A token bucket of burst 1 allows at most 1 + 20 * t starts in t. */
  assert_true(rate <= 20 * 1.1);
  assert_true(rate >= 20 * 0.5);
}

static void test_limits2_concurrency_holds_across_three_workers(void **state) {
  (void)state;
  enum { N = 10 };
  char ids[N][RTQ_ID2_LEN + 1];
  rtq_queue_limits l = {.concurrency = 2};
  assert_int_equal(rtq_queue_limit_set(CL, "cq", &l, RTQ_LIMIT_CONCURRENCY), 0);
  unsigned char args[18];
  ops2_spec sp = {.name = "rtq.sleep", .args = args, .args_len = ops2_sleep_args(0.3, args)};
  for (int i = 0; i < 3; i++) start_worker("cq", "4");
  RTQ_TEST_WAIT_FOR(alive_workers() == 3, 10000);
  ops2_create_ex(C, &K, "cq", N, &sp, ids);
  int most = 0;
  uint64_t deadline = rtq_test_now_ms() + 30000;
  while (count_status("cq", ids, N, "completed") < N) {
    int running = count_status_at_once("cq", ids, N, "running");
    if (running > most) most = running;
    assert_true(rtq_test_now_ms() < deadline);
    /* A sample every 2 ms: much shorter than a task. */
    struct timespec ts = {0, 2000000};
    nanosleep(&ts, NULL);
  }
  print_message("concurrency limit 2, 3 workers of 4 slots: at most %d running at once\n", most);
  assert_int_equal(most, 2);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_slots(&K, "cq").s, NULL), 0);
}

/* Queue kq limited to 1 running task; a worker takes a task that sleeps
 * a minute under timeout_ms (its lease ends at that deadline) and is
 * killed with kill -9 holding the slot. t1 gets the task's id. */
static void kill_slot_holder(uint64_t timeout_ms, char t1[RTQ_ID2_LEN + 1]) {
  rtq_queue_limits l = {.concurrency = 1};
  assert_int_equal(rtq_queue_limit_set(CL, "kq", &l, RTQ_LIMIT_CONCURRENCY), 0);
  unsigned char args[18];
  ops2_spec sleepy = {.name = "rtq.sleep", .args = args, .args_len = ops2_sleep_args(60, args),
                      .timeout_ms = timeout_ms};
  pid_t a = start_worker("kq", "2");
  char id[1][RTQ_ID2_LEN + 1], s[16];
  ops2_create_ex(C, &K, "kq", 1, &sleepy, id);
  memcpy(t1, id[0], sizeof id[0]);
  RTQ_TEST_WAIT_FOR(strcmp(ops2_status(C, &K, "kq", t1, s), "running") == 0, 10000);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_slots(&K, "kq").s, NULL), 1);
  assert_int_equal(rtq_test_kill(a, SIGKILL), 0);
  assert_int_equal(rtq_test_wait_exit(a, 5000, NULL), 0);
}

static void test_limits2_slot_of_a_killed_worker_lapses_at_its_deadline(void **state) {
  (void)state;
  char t1[RTQ_ID2_LEN + 1], t2[1][RTQ_ID2_LEN + 1], s[16];
  kill_slot_holder(3000, t1);
  long long dl = task_num("kq", t1, "dl");
  ops2_spec quick = {.name = "rtq.noop"};
  ops2_create_ex(C, &K, "kq", 1, &quick, t2);
  start_worker("kq", "2");
  /* T1's worker is gone and no broker runs: its lease ends at its deadline. */
  RTQ_TEST_WAIT_FOR(strcmp(ops2_status(C, &K, "kq", t2[0], s), "completed") == 0, 20000);
  long long started = task_num("kq", t2[0], "b");
  print_message("slot held by a killed worker: the next task started %lld ms after the lease's end\n",
                started - dl);
  assert_true(started >= dl);
}

static void test_limits2_slot_of_a_killed_worker_comes_back_through_recovery(void **state) {
  (void)state;
  char t1[RTQ_ID2_LEN + 1], s[16];
  /* A deadline a minute away: only the recovery can free the slot in time. */
  kill_slot_holder(60000, t1);
  uint64_t killed = rtq_test_now_ms();
  start("broker/rtq-broker", (const char *const[]){"--heartbeat-ttl", "1s", "--sweep-interval", "100ms", NULL});
  start_worker("kq", "2");
  /* Recovered (attempt 2) and claimed again under the limit of 1: the
   * killed worker's slot was given back. */
  RTQ_TEST_WAIT_FOR(task_num("kq", t1, "a") == 2 && strcmp(ops2_status(C, &K, "kq", t1, s), "running") == 0,
                    20000);
  print_message("slot held by a killed worker: back through recovery after %llu ms\n",
                (unsigned long long)(rtq_test_now_ms() - killed));
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_slots(&K, "kq").s, NULL), 1);
}

static void test_limits2_no_busy_polling_at_the_limit(void **state) {
  (void)state;
  for (int i = 0; i < 4; i++) start_worker("slow", "4");
  RTQ_TEST_WAIT_FOR(alive_workers() == 4, 10000);
  /* The fleet idle: heartbeats and blocking waits. */
  unsigned long long c0 = total_commands();
  uint64_t t0 = rtq_test_now_ms();
  RTQ_TEST_WAIT_FOR(rtq_test_now_ms() - t0 >= 3000, 5000);
  double idle = (double)(total_commands() - c0 - 1) * 1000.0 / (double)(rtq_test_now_ms() - t0);
  /* At its limit: 1 task a second while 50 wait. */
  rtq_queue_limits l = {.rate = 1, .burst = 1};
  assert_int_equal(rtq_queue_limit_set(CL, "slow", &l, RTQ_LIMIT_RATE), 0);
  ops2_spec sp = {.name = "rtq.noop"};
  ops2_create_ex(C, &K, "slow", 50, &sp, NULL);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(C, "HEXISTS", rtq_keys2_bucket(&K, "slow").s, "t", NULL) == 1, 10000);
  c0 = total_commands();
  t0 = rtq_test_now_ms();
  RTQ_TEST_WAIT_FOR(rtq_test_now_ms() - t0 >= 3000, 5000);
  double limited = (double)(total_commands() - c0 - 1) * 1000.0 / (double)(rtq_test_now_ms() - t0);
  print_message("4 workers: %.1f Redis commands/s idle, %.1f/s with a queue at its limit (1/s)\n", idle, limited);
  /* Polling without a back-off costs thousands a second. */
  assert_true(limited <= 3 * idle + 100);
  assert_true(ops2_llen(C, rtq_keys2_queue(&K, "slow")) >= 40);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_limits2_rate_holds_across_four_workers),
      T(test_limits2_concurrency_holds_across_three_workers),
      T(test_limits2_slot_of_a_killed_worker_lapses_at_its_deadline),
      T(test_limits2_slot_of_a_killed_worker_comes_back_through_recovery),
      T(test_limits2_no_busy_polling_at_the_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
