/*
 * test_failover_loss.c - what a failover loses, with and without
 * wait_replicas, on a 3-primary + 3-replica cluster.
 *
 * A producer thread creates 2,000 tasks one by one (ids lt-00000...) through
 * librtq and records which creates were acknowledged; rtq-worker --cluster
 * runs them and logs (DEBUG) each completion Redis acknowledged ("task
 * finished") and, with --wait-replicas 1, each one a replica acknowledged
 * ("completion acknowledged ... replicas=1"). Mid-drain the primary of
 * {rtq}'s slot is killed with SIGKILL; its replica is promoted; a spare
 * node becomes the new primary's replica. When the backlog is
 * drained, the test counts:
 *   created lost    acknowledged creates whose task does not exist;
 *   completed lost  acknowledged completions whose task is not completed,
 *                   or that the worker had to finish a second time (the
 *                   failover took the completion, and the claim, back).
 * Without the option these are figures (Redis replication is
 * asynchronous; a loss is allowed, and printed). With it, a write one
 * replica acknowledged must survive: both counts must be 0 for them.
 *
 * One run per mode by default; RTQ_FAILOVER_RUNS=N runs each mode N times
 * and prints every run's figures (docs/OPERATIONS.md 2.6 quotes them).
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

#include "cluster/cluster_util.h"
#include "crc16.h"
#include "harness.h"
#include "integration/test_cli_run.h"
#include "keys.h"
#include "rtq/client.h"
#include "rtq/common.h"

#define NTASKS 2000
#define KILL_AT 700 /* acknowledged creates before the kill */

typedef struct producer {
  rtq_client *c;
  int rc[NTASKS];      /* each create's result; 1 = not tried */
  atomic_int acked;    /* rc == 0 so far */
  atomic_int done;
  int retries;         /* creates sent again after a failure */
} producer;

static void *produce(void *arg) {
  producer *p = arg;
  uint64_t deadline = rtq_test_now_ms() + 90000;
  for (int i = 0; i < NTASKS && rtq_test_now_ms() < deadline; i++) {
    char id[32];
    snprintf(id, sizeof id, "lt-%05d", i);
    rtq_task_options o = {.id = id};
    /* As a producer would: a create that failed (the failover) is sent
     * again with the same id, which is idempotent, for up to 20 s. */
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

static rtq_test_cluster *cl;
static rtq_keys keys;
static int owner;

static char *status_of(rtq_conn *c, const char *id) {
  rtq_key k = rtq_keys_task(&keys, id);
  return rtq_test_cmd_str(c, "HGET", k.s, "status", NULL);
}

/* Tasks acknowledged as created that are not completed yet. */
static int unfinished(rtq_conn *c, const producer *p) {
  rtq_key q = rtq_keys_queue(&keys, "default");
  if (rtq_test_cmd_int(c, "LLEN", q.s, NULL) > 0) return -1;
  int n = 0;
  for (int i = 0; i < NTASKS; i++) {
    if (p->rc[i] != 0) continue;
    char id[32];
    snprintf(id, sizeof id, "lt-%05d", i);
    char *st = status_of(c, id);
    if (st == NULL || strcmp(st, "completed") != 0) n++;
    free(st);
  }
  return n;
}

static void run_once(bool wait, int run) {
  uint64_t began = rtq_test_now_ms();
  cl = rtq_test_cluster_start(7, 3); /* node 6: a spare, for after the failover */
  assert_non_null(cl);
  owner = rtq_test_cluster_owner_at_start(cl, rtq_key_slot("{rtq}", 5));
  for (int m = 0; m < 3; m++) assert_int_equal(rtq_test_cluster_replicate(cl, m + 3, m), 0);
  char seed[128], log[512];
  rtq_test_cluster_url(cl, (owner + 1) % 3, seed, sizeof seed);
  snprintf(log, sizeof log, "%s/worker-%d.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, (owner + 1) % 3)), run);
  const char *wargs[24] = {"--cluster", "--redis", seed, "--demo-handlers", "--concurrency", "8",
                           "--heartbeat-interval", "200ms", "--heartbeat-ttl", "30s", "--shutdown-grace", "2s",
                           "--log-level", "debug"};
  int nw = 14;
  if (wait) wargs[nw++] = "--wait-replicas", wargs[nw++] = "1", wargs[nw++] = "--wait-timeout", wargs[nw++] = "500";
  wargs[nw] = NULL;
  pid_t w = cluster_spawn("worker/rtq-worker", wargs, log);
  uint64_t ready = rtq_test_now_ms();

  producer *p = calloc(1, sizeof *p);
  assert_non_null(p);
  for (int i = 0; i < NTASKS; i++) p->rc[i] = 1;
  rtq_client_options co = {.redis_url = seed, .wait_replicas = wait ? 1 : -1, .wait_timeout_ms = 500};
  assert_int_equal(rtq_client_new(&co, &p->c), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, produce, p), 0);

  RTQ_TEST_WAIT_FOR(atomic_load(&p->acked) >= KILL_AT || atomic_load(&p->done), 60000);
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_test_redis_kill9(rtq_test_cluster_node(cl, owner)), 0);
  RTQ_TEST_WAIT_FOR(cluster_role_is(cl, owner + 3, "master"), 30000);
  uint64_t promoted = rtq_test_now_ms() - t0;
  /* The spare becomes the new primary's replica, so WAIT has a replica to
   * count again. (Not the killed node restarted: without persistence it
   * comes back empty, and if it claimed its slots again before hearing of
   * the promotion, the promoted replica would sync that empty data set.) */
  assert_int_equal(rtq_test_cluster_replicate(cl, 6, owner + 3), 0);

  uint64_t rejoined = rtq_test_now_ms() - t0;
  RTQ_TEST_WAIT_FOR(atomic_load(&p->done), 90000);
  pthread_join(th, NULL);
  rtq_conn *c = rtq_test_conn_new(seed);
  /* Drained: every acknowledged task completed, or 20 s without it (a
   * lost completion leaves its task running for good: no broker here). */
  uint64_t until = rtq_test_now_ms() + 20000;
  while (unfinished(c, p) != 0 && rtq_test_now_ms() < until) rtq__test_poll_pause(10);
  uint64_t drained = rtq_test_now_ms();
  stop_clean(w);

  int *finished = calloc(NTASKS, sizeof *finished), *replicated = calloc(NTASKS, sizeof *replicated);
  assert_true(finished != NULL && replicated != NULL);
  cluster_count_log(log, "task finished", "lt-", false, finished, NTASKS);
  if (wait) cluster_count_log(log, "completion acknowledged", "lt-", true, replicated, NTASKS);
  int created_acked = 0, created_lost = 0, unrepl = 0, failed = 0;
  int done_acked = 0, done_lost = 0, twice = 0;
  for (int i = 0; i < NTASKS; i++) {
    char id[32];
    snprintf(id, sizeof id, "lt-%05d", i);
    if (p->rc[i] == RTQ_EREPLICAS) unrepl++;
    else if (p->rc[i] != 0 && p->rc[i] != 1) failed++;
    char *st = status_of(c, id);
    if (p->rc[i] == 0) {
      created_acked++;
      if (st == NULL) created_lost++;
    }
    /* An acknowledged completion: by Redis (without the option) or by a
     * replica (with it); the first one counts. */
    bool acked_done = wait ? replicated[i] > 0 : finished[i] > 0;
    if (acked_done) {
      done_acked++;
      if (st == NULL || strcmp(st, "completed") != 0 || finished[i] > 1) done_lost++;
    }
    if (finished[i] > 1) twice++;
    free(st);
  }
  fprintf(stderr,
          "failover loss run %d, wait_replicas=%d: promoted after %llu ms; creates: %d acknowledged, %d lost, "
          "%d RTQ_EREPLICAS, %d failed, %d resent; completions: %d acknowledged%s, %d lost; tasks finished twice: %d "
          "(cluster up in %llu ms, a new replica in sync %llu ms after the kill, %d tasks drained %llu ms "
          "after the start)\n",
          run, wait ? 1 : 0, (unsigned long long)promoted, created_acked, created_lost, unrepl, failed, p->retries,
          done_acked, wait ? " by a replica" : "", done_lost, twice, (unsigned long long)(ready - began),
          (unsigned long long)rejoined, NTASKS, (unsigned long long)(drained - ready));
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

static void test_failover_loss_without_wait_replicas(void **state) {
  (void)state;
  for (int i = 0; i < runs(); i++) run_once(false, i);
}

static void test_failover_loss_with_wait_replicas(void **state) {
  (void)state;
  for (int i = 0; i < runs(); i++) run_once(true, i);
}

static int setup(void **state) {
  (void)state;
  return rtq_keys_init(&keys, "rtq", true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_failover_loss_without_wait_replicas),
      cmocka_unit_test(test_failover_loss_with_wait_replicas),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
