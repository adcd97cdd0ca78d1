/*
 * test_cluster_failover2.c - protocol 2 through a failover, on a
 * 3-primary + 3-replica cluster with six queues spread over the primaries.
 *
 * A producer thread creates 3,000 tasks one by one (ids lf-00000..., over
 * the six queues) through librtq and records which creates were
 * acknowledged; two rtq-worker --protocol 2 processes run them (logging
 * each completion Redis acknowledged, "task finished", and with
 * --wait-replicas 1 each one a replica acknowledged), and rtq-broker
 * --protocol 2 sweeps. Mid-drain a primary serving two of the queues is
 * killed with SIGKILL; its replica is promoted, and a spare node becomes
 * the new primary's replica. Then:
 *   - nothing is stuck: every task that exists ends completed (the
 *     workers found the promoted node through the slot map);
 *   - the figures are printed: acknowledged creates whose task is gone,
 *     acknowledged completions whose task is not completed or was run a
 *     second time, tasks finished twice;
 *   - with wait_replicas both loss counts must be 0.
 * RTQ_FAILOVER_RUNS=N runs each mode N times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pthread.h>

#include <cmocka.h>

#include "cluster/cluster2_util.h"
#include "cluster/cluster_util.h"
#include "harness.h"
#include "rtq/client.h"
#include "rtq/common.h"

#define NTASKS 3000
#define KILL_AT 1000 /* acknowledged creates before the kill */
#define NQ 6
#define VICTIM 0 /* the primary killed: it serves queues 0 and 3 */

static rtq_test_cluster *cl;
static rtq_keys2 K;
static char queues[NQ][16]; /* queues[i] on primary i % 3 */

typedef struct producer {
  rtq_client *c;
  int rc[NTASKS]; /* each create's result; 1 = not tried */
  atomic_int acked;
  atomic_int done;
  int retries;
} producer;

static void task_id(int i, char id[32]) { snprintf(id, 32, "lf-%05d", i); }

static void *produce(void *arg) {
  producer *p = arg;
  uint64_t deadline = rtq_test_now_ms() + 90000;
  for (int i = 0; i < NTASKS && rtq_test_now_ms() < deadline; i++) {
    char id[32];
    task_id(i, id);
    rtq_task_options o = {.id = id, .queue = queues[i % NQ]};
    /* A create that failed (the failover) is sent again with the same id,
     * which is idempotent, for up to 20 s. */
    uint64_t give_up = rtq_test_now_ms() + 20000;
    for (int k = 0;; k++) {
      p->rc[i] = rtq_create_task(p->c, "rtq.noop", NULL, &o, NULL, NULL);
      if (p->rc[i] == 0 || p->rc[i] == RTQ_EREPLICAS || rtq_test_now_ms() >= give_up) break;
      p->retries++;
      struct timespec ts = {0, (k < 4 ? 25L << k : 200L) * 1000000L};
      nanosleep(&ts, NULL);
    }
    if (p->rc[i] == 0) atomic_fetch_add(&p->acked, 1);
  }
  atomic_store(&p->done, 1);
  return NULL;
}

static char *status_of(rtq_conn *c, int i) {
  char id[32];
  task_id(i, id);
  return rtq_test_cmd_str(c, "HGET", rtq_keys2_task(&K, queues[i % NQ], id).s, "s", NULL);
}

/* Tasks that exist and are not completed, or -1 while a queue is not
 * empty. */
static int unfinished(rtq_conn *c) {
  for (int q = 0; q < NQ; q++)
    if (rtq_test_cmd_int(c, "LLEN", rtq_keys2_queue(&K, queues[q]).s, NULL) > 0) return -1;
  int n = 0;
  for (int i = 0; i < NTASKS; i++) {
    char *st = status_of(c, i);
    if (st != NULL && strcmp(st, "completed") != 0) n++;
    free(st);
  }
  return n;
}

static pid_t spawn_worker(const char *seed, bool wait, const char *log) {
  char bin[512];
  assert_non_null(rtq_test_bin_path("worker/rtq-worker", bin, sizeof bin));
  const char *argv[40] = {bin, "--protocol", "2", "--redis", seed, "--demo-handlers", "--concurrency", "8",
                          "--heartbeat-interval", "200ms", "--shutdown-grace", "2s", "--log-level", "debug"};
  int n = 14;
  if (wait) argv[n++] = "--wait-replicas", argv[n++] = "1", argv[n++] = "--wait-timeout", argv[n++] = "500";
  for (int q = 0; q < NQ; q++) argv[n++] = "--queue", argv[n++] = queues[q];
  argv[n] = NULL;
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  return pid;
}

/* stop_clean, with the end of the log when the exit is not clean. */
static void stop_logged(pid_t pid, const char *log) {
  int status = 0;
  assert_int_equal(rtq_test_terminate(pid, SIGTERM, 10000, &status), 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char *s = cli_slurp(log);
    size_t n = strlen(s);
    fprintf(stderr, "---- %s (status %d, last 6000 bytes)\n%s\n", log, status, n > 6000 ? s + n - 6000 : s);
    free(s);
    fail_msg("%s did not stop cleanly", log);
  }
}

static void run_once(bool wait, int run) {
  uint64_t began = rtq_test_now_ms();
  cl = rtq_test_cluster_start(7, 3); /* node 6: a spare, for after the failover */
  assert_non_null(cl);
  for (int m = 0; m < 3; m++) assert_int_equal(rtq_test_cluster_replicate(cl, m + 3, m), 0);
  for (int i = 0; i < NQ; i++) {
    queue_on(cl, &K, i % 3, i < 3 ? "a" : "b", queues[i]);
    assert_true(queues[i][0] != '\0');
  }
  char seed[128], wlog[2][512], blog[512];
  rtq_test_cluster_url(cl, 1, seed, sizeof seed);
  const char *dir = rtq_test_redis_dir(rtq_test_cluster_node(cl, 1));
  pid_t w[2];
  for (int k = 0; k < 2; k++) {
    snprintf(wlog[k], sizeof wlog[k], "%s/worker-%d-%d.log", dir, run, k);
    w[k] = spawn_worker(seed, wait, wlog[k]);
  }
  snprintf(blog, sizeof blog, "%s/broker-%d.log", dir, run);
  pid_t b = cluster_spawn("broker/rtq-broker",
                          (const char *[]){"--protocol", "2", "--redis", seed, "--sweep-interval", "200ms", NULL}, blog);
  uint64_t ready = rtq_test_now_ms();

  producer *p = calloc(1, sizeof *p);
  assert_non_null(p);
  for (int i = 0; i < NTASKS; i++) p->rc[i] = 1;
  rtq_client_options co = {
      .redis_url = seed, .protocol = 2, .wait_replicas = wait ? 1 : -1, .wait_timeout_ms = 500};
  assert_int_equal(rtq_client_new(&co, &p->c), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, produce, p), 0);

  RTQ_TEST_WAIT_FOR(atomic_load(&p->acked) >= KILL_AT || atomic_load(&p->done), 60000);
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_test_redis_kill9(rtq_test_cluster_node(cl, VICTIM)), 0);
  RTQ_TEST_WAIT_FOR(cluster_role_is(cl, VICTIM + 3, "master"), 30000);
  uint64_t promoted = rtq_test_now_ms() - t0;
  assert_int_equal(rtq_test_cluster_replicate(cl, 6, VICTIM + 3), 0);
  RTQ_TEST_WAIT_FOR(atomic_load(&p->done), 90000);
  pthread_join(th, NULL);

  /* Nothing stuck: every task that exists completes. */
  rtq_conn *c = rtq_test_conn_new(seed);
  uint64_t until = rtq_test_now_ms() + 30000;
  int left = -1;
  while ((left = unfinished(c)) != 0 && rtq_test_now_ms() < until) rtq__test_poll_pause(10);
  uint64_t drained = rtq_test_now_ms();
  stop_logged(w[0], wlog[0]);
  stop_logged(w[1], wlog[1]);
  stop_logged(b, blog);

  int *finished = calloc(NTASKS, sizeof *finished), *replicated = calloc(NTASKS, sizeof *replicated);
  assert_true(finished != NULL && replicated != NULL);
  for (int k = 0; k < 2; k++) {
    cluster_count_log(wlog[k], "task finished", "lf-", false, finished, NTASKS);
    if (wait) cluster_count_log(wlog[k], "completion acknowledged", "lf-", true, replicated, NTASKS);
  }
  int created_acked = 0, created_lost = 0, unrepl = 0, failed = 0, done_acked = 0, done_lost = 0, twice = 0;
  for (int i = 0; i < NTASKS; i++) {
    if (p->rc[i] == RTQ_EREPLICAS) unrepl++;
    else if (p->rc[i] != 0 && p->rc[i] != 1) failed++;
    char *st = status_of(c, i);
    if (p->rc[i] == 0) {
      created_acked++;
      if (st == NULL) created_lost++;
    }
    bool acked_done = wait ? replicated[i] > 0 : finished[i] > 0;
    if (acked_done) {
      done_acked++;
      if (st == NULL || strcmp(st, "completed") != 0 || finished[i] > 1) done_lost++;
    }
    if (finished[i] > 1) twice++;
    free(st);
  }
  fprintf(stderr,
          "protocol 2 failover run %d, wait_replicas=%d: promoted after %llu ms; creates: %d acknowledged, %d lost, "
          "%d RTQ_EREPLICAS, %d failed, %d resent; completions: %d acknowledged%s, %d lost; tasks finished twice: "
          "%d; unfinished after the drain: %d (cluster up in %llu ms, %d tasks drained %llu ms after the start)\n",
          run, wait ? 1 : 0, (unsigned long long)promoted, created_acked, created_lost, unrepl, failed, p->retries,
          done_acked, wait ? " by a replica" : "", done_lost, twice, left, (unsigned long long)(ready - began),
          NTASKS, (unsigned long long)(drained - ready));
  assert_int_equal(left, 0);
  if (wait) {
    assert_int_equal(created_lost, 0);
    assert_int_equal(done_lost, 0);
  }
  assert_true(created_acked >= KILL_AT);
  free(finished);
  free(replicated);
  rtq_conn_free(c);
  rtq_client_free(p->c);
  free(p);
  rtq_test_cluster_stop(cl);
  cl = NULL;
}

static int runs(void) {
  const char *s = getenv("RTQ_FAILOVER_RUNS");
  int n = s != NULL ? atoi(s) : 1;
  return n < 1 ? 1 : n > 20 ? 20 : n;
}

static void test_cluster_failover2_without_wait_replicas(void **state) {
  (void)state;
  for (int i = 0; i < runs(); i++) run_once(false, i);
}

static void test_cluster_failover2_with_wait_replicas(void **state) {
  (void)state;
  for (int i = 0; i < runs(); i++) run_once(true, i);
}

static int setup(void **state) {
  (void)state;
  return rtq_keys2_init(&K, "rtq");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_failover2_without_wait_replicas),
      cmocka_unit_test(test_cluster_failover2_with_wait_replicas),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
