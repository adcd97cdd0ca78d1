/*
 * test_cluster_failover.c - a cluster primary killed with SIGKILL: its
 * replica is promoted, and rtq_conn (through a seed that is neither) and
 * rtq-worker find the promoted node by refreshing the slot map after the
 * connection error, within the promotion time plus 2 s. The primary
 * killed serves both the namespace's slot ({rtq}: the worker's heartbeat
 * and cancel subscription) and the queue's ({rtq:Q}), so every connection
 * of the worker has to move.
 */
#include <setjmp.h>
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
#include "integration/test_cli_run.h"
#include "rtq/common.h"

static rtq_test_cluster *cl;
static rtq_keys2 K;
static int owner;      /* serves {rtq}'s slot and the queue's; node 3 is its replica */
static char queue[16]; /* on owner */
static char seed[128];
static char probe[RTQ_KEY2_CAP]; /* a key in the queue's slot: the hash of a task nobody makes */

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(4, 3);
  if (cl == NULL) return -1;
  if (rtq_keys2_init(&K, "rtq") != 0) return -1;
  rtq_key2 ns = rtq_keys2_version(&K);
  owner = rtq_test_cluster_owner_at_start(cl, rtq_key_slot(ns.s, ns.len));
  queue_on(cl, &K, owner, "f", queue);
  if (queue[0] == '\0') return -1;
  snprintf(probe, sizeof probe, "%s", rtq_keys2_task(&K, queue, "probe").s);
  if (rtq_test_cluster_replicate(cl, 3, owner) != 0) return -1;
  rtq_test_cluster_url(cl, (owner + 1) % 3, seed, sizeof seed);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_test_cluster_stop(cl);
  return 0;
}

static bool set_ok(rtq_conn *c, const char *key) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "SET");
  rtq_argv_add_str(&a, key);
  rtq_argv_add_str(&a, "after");
  int rc = rtq_conn_command(c, &a, NULL);
  rtq_argv_destroy(&a);
  return rc == 0;
}

static bool completed(rtq_conn *c, const char *id) {
  rtq_key2 k = rtq_keys2_task(&K, queue, id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HGET");
  rtq_argv_add(&a, k.s, k.len);
  rtq_argv_add_str(&a, "s");
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, &a, &r);
  rtq_argv_destroy(&a);
  bool yes = rc == 0 && r->type == REDIS_REPLY_STRING && strcmp(r->str, "completed") == 0;
  if (r != NULL) freeReplyObject(r);
  return yes;
}

static bool enqueue(const char *id) {
  cli_run r;
  cli(&r, (const char *[]){"--redis", seed, "enqueue", "rtq.noop", "--queue", queue, "--id", id, NULL}, NULL);
  bool ok = r.code == 0;
  if (!ok) fprintf(stderr, "enqueue %s: exit %d: %s", id, r.code, r.err);
  cli_free(&r);
  return ok;
}

static void test_cluster_failover_conn_and_worker_follow(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(seed);
  assert_true(set_ok(c, probe));

  char log[256];
  snprintf(log, sizeof log, "%s/worker.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, (owner + 1) % 3)));
  pid_t w = cluster_spawn("worker/rtq-worker",
                          (const char *[]){"--redis", seed, "--queue", queue, "--demo-handlers", "--concurrency", "2",
                                           "--heartbeat-interval", "200ms", "--heartbeat-ttl", "2s",
                                           "--shutdown-grace", "1s", NULL},
                          log);
  assert_true(enqueue("f-0"));
  RTQ_TEST_WAIT_FOR(completed(c, "f-0"), 10000);

  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_test_redis_kill9(rtq_test_cluster_node(cl, owner)), 0);
  /* Keyless commands (the broker's TIME) move to a live node at once, even
   * though the last keyed command went to the dead one. */
  uint64_t ms = 0;
  RTQ_TEST_WAIT_FOR(rtq_conn_time_ms(c, &ms) == 0, 1000);
  RTQ_TEST_WAIT_FOR(cluster_role_is(cl, 3, "master"), 30000);
  uint64_t t1 = rtq_test_now_ms();
  RTQ_TEST_WAIT_FOR(set_ok(c, probe), 2000);
  uint64_t t2 = rtq_test_now_ms();
  /* Written to the promoted node. */
  rtq_conn *d = rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, 3)));
  char *v = rtq_test_cmd_str(d, "GET", probe, NULL);
  assert_string_equal(v, "after");
  free(v);
  rtq_conn_free(d);
  RTQ_TEST_WAIT_FOR(enqueue("f-1"), 2000);
  RTQ_TEST_WAIT_FOR(completed(c, "f-1"), (int)(t1 + 2000 > rtq_test_now_ms() ? t1 + 2000 - rtq_test_now_ms() : 1));
  uint64_t t3 = rtq_test_now_ms();
  fprintf(stderr, "cluster failover: replica promoted after %llu ms; rtq_conn +%llu ms; worker ran a new task +%llu ms\n",
          (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1), (unsigned long long)(t3 - t1));
  stop_clean(w);
  rtq_conn_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_failover_conn_and_worker_follow),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
