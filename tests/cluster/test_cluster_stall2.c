/*
 * test_cluster_stall2.c - a protocol 2 worker keeps serving while one of
 * its queues' primaries is frozen. A 3-primary cluster; the worker serves
 * queue `live` (on a primary that stays up) and queue `frozen` (on the
 * primary that is stopped), and its --redis seed is the frozen primary;
 * cluster-require-full-coverage is off, so the other shards keep serving.
 * That primary is stopped with SIGSTOP for 6 s: its sockets still accept
 * connections, so anything that waited on it would wait for a timeout.
 * Meanwhile the worker must go on: tasks created into `live` complete, a
 * long task on `live` reports progress, and the worker's heartbeat (on
 * the namespace's primary) keeps its period. After SIGCONT the tasks
 * queued on `frozen` complete too, and every task completed once.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster2_util.h"
#include "cluster/cluster_util.h"
#include "crc16.h"
#include "harness.h"
#include "rtq/client.h"

#define STOP_MS 6000
#define HEARTBEAT_MS 500
#define NLIVE 200
#define NFROZEN 50

static rtq_test_cluster *cl;
static rtq_keys2 K;
static int ns_node, frozen_node, live_node;
static char live[16], frozen[16];
static char worker_seed[128], test_seed[128];

static void create_into(rtq_client *c, const char *q, char (*ids)[40], const char **qof, int at, int n) {
  for (int i = at; i < at + n; i++) {
    rtq_task_options o = {.queue = q};
    char id[RTQ_TASK_ID_SIZE];
    if (rtq_create_task(c, "rtq.noop", NULL, &o, id, NULL) != 0) fail_msg("create into %s: %s", q, rtq_client_errstr(c));
    assert_true(strlen(id) < 40);
    memcpy(ids[i], id, strlen(id) + 1);
    qof[i] = q;
  }
}

static int completed(rtq_conn *rc, char (*ids)[40], const char **qof, int n) {
  int done = 0, once = 0;
  return read_back(rc, &K, ids, qof, n, &done, &once) == 0 ? done : -1;
}

/* The latest heartbeat (the highest score in the workers zset), or 0. */
static long long last_heartbeat(rtq_conn *ns) {
  rtq_key2 k = rtq_keys2_workers(&K);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZRANGE");
  rtq_argv_add(&a, k.s, k.len);
  rtq_argv_add_str(&a, "-1");
  rtq_argv_add_str(&a, "-1");
  rtq_argv_add_str(&a, "WITHSCORES");
  redisReply *r = NULL;
  long long score = 0;
  if (rtq_conn_command(ns, &a, &r) == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
    score = atoll(r->element[1]->str);
  if (r != NULL) freeReplyObject(r);
  rtq_argv_destroy(&a);
  return score;
}

static void test_cluster_stall2_frozen_primary_does_not_stall_the_worker(void **state) {
  (void)state;
  char wlog[256], hb[16];
  snprintf(wlog, sizeof wlog, "%s/worker-stall.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, live_node)));
  snprintf(hb, sizeof hb, "%dms", HEARTBEAT_MS);
  pid_t w = cluster_spawn("worker/rtq-worker",
                          (const char *[]){"--protocol", "2", "--redis", worker_seed, "--demo-handlers", "--concurrency",
                                           "8", "--queue", live, "--queue", frozen, "--heartbeat-interval", hb,
                                           "--command-timeout", "2s", "--shutdown-grace", "2s", NULL},
                          wlog);
  rtq_client_options co = {.redis_url = test_seed, .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&co, &c), 0);
  rtq_conn *rc = rtq_test_conn_new(test_seed);
  rtq_conn *ns = rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, ns_node)));
  int total = 2 * NLIVE + 2 * NFROZEN + 1;
  char(*ids)[40] = calloc((size_t)total, sizeof *ids);
  const char **qof = calloc((size_t)total, sizeof *qof);
  assert_non_null(ids);
  assert_non_null(qof);

  /* Both queues work before the stop. */
  create_into(c, live, ids, qof, 0, NLIVE);
  create_into(c, frozen, ids, qof, NLIVE, NFROZEN);
  RTQ_TEST_WAIT_FOR(completed(rc, ids, qof, NLIVE + NFROZEN) == NLIVE + NFROZEN, 20000);
  /* A long task on the live queue, reporting progress every 100 ms. */
  rtq_args *la = rtq_args_new();
  assert_non_null(la);
  assert_int_equal(rtq_args_set_double(la, "seconds", 12.0), 0);
  assert_int_equal(rtq_args_set_int(la, "steps", 120), 0);
  rtq_task_options lo = {.queue = live};
  char lid[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(c, "rtq.sleep", la, &lo, lid, NULL), 0);
  rtq_args_free(la);
  int L = total - 1;
  memcpy(ids[L], lid, strlen(lid) + 1);
  qof[L] = live;
  char pm0[64], pm1[64];
  RTQ_TEST_WAIT_FOR((progress_of(rc, &K, live, lid, pm0, sizeof pm0), pm0[0] != '\0'), 10000);
  /* Tasks queued on the frozen queue are taken only after SIGCONT. */
  pid_t victim = rtq_test_redis_pid(rtq_test_cluster_node(cl, frozen_node));
  assert_int_equal(rtq_test_kill(victim, SIGSTOP), 0);
  uint64_t stopped_at = rtq_test_now_ms();

  /* While it is stopped: tasks into the live queue, 50 a second. */
  int at = NLIVE + NFROZEN, made = 0;
  long long hb_prev = last_heartbeat(ns), max_gap = 0;
  uint64_t hb_seen = rtq_test_now_ms();
  int live_done_in_stop = 0;
  while (rtq_test_now_ms() < stopped_at + STOP_MS) {
    if (made < NLIVE && rtq_test_now_ms() >= stopped_at + (uint64_t)made * 20) {
      create_into(c, live, ids, qof, at + made, 1);
      made++;
    }
    long long h = last_heartbeat(ns);
    uint64_t now = rtq_test_now_ms();
    if (h != hb_prev) {
      hb_prev = h;
      hb_seen = now;
    }
    if ((long long)(now - hb_seen) > max_gap) max_gap = (long long)(now - hb_seen);
    rtq__test_poll_pause(10);
  }
  /* Measured before SIGCONT: what completed while the node was stopped. */
  live_done_in_stop = completed(rc, ids + at, qof + at, made);
  progress_of(rc, &K, live, lid, pm1, sizeof pm1);
  uint64_t stop_len = rtq_test_now_ms() - stopped_at;
  assert_int_equal(rtq_test_kill(victim, SIGCONT), 0);
  fprintf(stderr,
          "node %d stopped %llu ms: %d of %d live tasks created meanwhile completed; longest heartbeat gap %lld ms; "
          "progress \"%s\" -> \"%s\"\n",
          frozen_node, (unsigned long long)stop_len, live_done_in_stop, made, max_gap, pm0, pm1);
  /* The last creates may still be running: all but the last second's. */
  assert_true(made >= NLIVE * 9 / 10);
  assert_true(live_done_in_stop >= made - 50);
  assert_true(max_gap <= 3 * HEARTBEAT_MS);
  assert_true(strcmp(pm0, pm1) != 0);

  /* After: the frozen queue's node is back; tasks into it complete. */
  create_into(c, frozen, ids, qof, at + made, NFROZEN);
  int n = at + made + NFROZEN;
  if (n != L) {
    memcpy(ids[n], lid, strlen(lid) + 1);
    qof[n] = live;
  }
  n++;
  RTQ_TEST_WAIT_FOR(completed(rc, ids, qof, n) == n, 30000);
  stop_clean(w);
  int done = 0, once = 0;
  assert_int_equal(read_back(rc, &K, ids, qof, n, &done, &once), 0);
  assert_int_equal(done, n);
  assert_int_equal(once, n);
  rtq_conn_free(ns);
  rtq_conn_free(rc);
  rtq_client_free(c);
  free(ids);
  free(qof);
}

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(3, 3);
  if (cl == NULL) return -1;
  /* The other shards keep serving while one is down (otherwise every
   * node answers CLUSTERDOWN once the stopped one is marked failed). */
  for (int i = 0; i < 3; i++) {
    rtq_conn *d = rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, i)));
    rtq_test_cmd_ok(d, "CONFIG", "SET", "cluster-require-full-coverage", "no", NULL);
    rtq_conn_free(d);
  }
  rtq_keys2_init(&K, "rtq");
  ns_node = rtq_test_cluster_owner_at_start(cl, rtq_key_slot("rtq", 3));
  frozen_node = (ns_node + 1) % 3;
  live_node = (ns_node + 2) % 3;
  queue_on(cl, &K, live_node, "l", live);
  queue_on(cl, &K, frozen_node, "f", frozen);
  /* The worker's only seed is the node that will be frozen. */
  rtq_test_cluster_url(cl, frozen_node, worker_seed, sizeof worker_seed);
  rtq_test_cluster_url(cl, live_node, test_seed, sizeof test_seed);
  return live[0] != '\0' && frozen[0] != '\0' ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  (void)rtq_test_resume_if_stopped(rtq_test_redis_pid(rtq_test_cluster_node(cl, frozen_node)));
  rtq_test_cluster_stop(cl);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_stall2_frozen_primary_does_not_stall_the_worker),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
