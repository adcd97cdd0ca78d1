/*
 * test_cluster_rtq.c - the rtq binaries on a 3-primary Redis Cluster
 * through a seed node that serves neither the namespace's slot ({rtq})
 * nor the queue's ({rtq:default}): the CLI enqueues, rtq-worker runs the
 * tasks, rtq-broker promotes a delayed one, and nobody logs a MOVED error
 * (a worker once logged `heartbeat failed error="MOVED ..."` in a loop).
 * A plain redis:// URL to such a node is refused with the URL that works.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc16.h"
#include "cluster/cluster_util.h"
#include "harness.h"
#include "integration/test_cli_run.h"
#include "keys2.h"
#include "rtq/common.h"

#define NTASKS 20

static rtq_test_cluster *cl;
static char seed[128];
static int other; /* serves neither {rtq}'s slot nor {rtq:default}'s */
static rtq_keys2 K;

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(3, 3);
  if (cl == NULL) return -1;
  if (rtq_keys2_init(&K, "rtq") != 0) return -1;
  /* The seed must own neither slot, or nothing would be redirected. */
  rtq_key2 ns = rtq_keys2_version(&K);
  int a = rtq_test_cluster_owner_at_start(cl, rtq_key_slot(ns.s, ns.len));
  int b = rtq_test_cluster_owner_at_start(cl, rtq_keys2_slot(&K, "default"));
  other = 0;
  while (other == a || other == b) other++;
  rtq_test_cluster_url(cl, other, seed, sizeof seed);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_test_cluster_stop(cl);
  return 0;
}

static char *status_of(rtq_conn *c, const char *id) {
  return rtq_test_cmd_str(c, "HGET", rtq_keys2_task(&K, "default", id).s, "s", NULL);
}

static bool all_completed(rtq_conn *c) {
  char id[32];
  for (int i = 0; i <= NTASKS; i++) {
    snprintf(id, sizeof id, "cl-%02d", i);
    char *st = status_of(c, id);
    bool done = st != NULL && strcmp(st, "completed") == 0;
    free(st);
    if (!done) return false;
  }
  return true;
}

static bool file_has(const char *path, const char *needle) {
  char *s = cli_slurp(path);
  bool yes = strstr(s, needle) != NULL;
  free(s);
  return yes;
}

static void test_cluster_rtq_cli_worker_broker_through_any_node(void **state) {
  (void)state;
  char id[32];
  for (int i = 0; i < NTASKS; i++) {
    snprintf(id, sizeof id, "cl-%02d", i);
    cli_run r;
    cli(&r, (const char *[]){"--redis", seed, "enqueue", "rtq.noop", "--id", id, NULL}, NULL);
    if (r.code != 0) fail_msg("enqueue exit %d: %s", r.code, r.err);
    cli_free(&r);
  }
  /* The broker promotes this one when it is due. */
  cli_run r;
  cli(&r, (const char *[]){"--redis", seed, "enqueue", "rtq.noop", "--id", "cl-20", "--delay", "1", NULL}, NULL);
  if (r.code != 0) fail_msg("enqueue exit %d: %s", r.code, r.err);
  cli_free(&r);

  char wlog[256], blog[256];
  snprintf(wlog, sizeof wlog, "%s/worker.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, 0)));
  snprintf(blog, sizeof blog, "%s/broker.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, 0)));
  pid_t w = cluster_spawn("worker/rtq-worker",
                  (const char *[]){"--redis", seed, "--demo-handlers", "--concurrency", "4",
                                   "--heartbeat-interval", "200ms", "--heartbeat-ttl", "2s", "--shutdown-grace",
                                   "1s", NULL},
                  wlog);
  pid_t b = cluster_spawn("broker/rtq-broker", (const char *[]){"--redis", seed, "--sweep-interval", "200ms", NULL}, blog);

  rtq_conn *c = rtq_test_conn_new(seed);
  RTQ_TEST_WAIT_FOR(all_completed(c), 20000);

  /* The CLI reads through the same seed. */
  cli(&r, (const char *[]){"--redis", seed, "--json", "status", "cl-20", NULL}, NULL);
  if (r.code != 0) fail_msg("status exit %d: %s", r.code, r.err);
  assert_non_null(strstr(r.out, "completed"));
  cli_free(&r);
  cli(&r, (const char *[]){"--redis", seed, "--json", "stats", NULL}, NULL);
  if (r.code != 0) fail_msg("stats exit %d: %s", r.code, r.err);
  cli_free(&r);
  cli(&r, (const char *[]){"--redis", seed, "enqueue", "rtq.noop", "--wait=10", NULL}, NULL);
  if (r.code != 0) fail_msg("enqueue --wait exit %d: %s", r.code, r.err);
  cli_free(&r);

  stop_clean(w);
  stop_clean(b);
  if (file_has(wlog, "MOVED") || file_has(blog, "MOVED")) {
    char *s = cli_slurp(wlog);
    fprintf(stderr, "worker log:\n%s\n", s);
    free(s);
    fail_msg("a MOVED error reached a log");
  }
  rtq_conn_free(c);
}

/* MOVED replies node has sent (INFO errorstats). */
static long moved_replies(int node) {
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, node)));
  char *info = rtq_test_cmd_str(c, "INFO", "errorstats", NULL);
  rtq_conn_free(c);
  const char *p = info != NULL ? strstr(info, "errorstat_MOVED:count=") : NULL;
  long n = p != NULL ? atol(p + strlen("errorstat_MOVED:count=")) : 0;
  free(info);
  return n;
}

/* A plain redis:// URL is one node, so MOVED cannot be followed: a
 * worker pointed at a node that serves neither of its slots says which
 * URL would, while it retries its start-up checks (not once per retry),
 * and still stops cleanly. */
static void test_cluster_rtq_plain_url_names_the_fix(void **state) {
  (void)state;
  char plain[64], log[256];
  snprintf(plain, sizeof plain, "%s", rtq_test_redis_url_of(rtq_test_cluster_node(cl, other)));
  snprintf(log, sizeof log, "%s/worker-plain.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, 0)));
  pid_t w = cluster_spawn("worker/rtq-worker",
                  (const char *[]){"--redis", plain, "--demo-handlers", "--heartbeat-interval", "200ms",
                                   "--heartbeat-ttl", "2s", "--shutdown-grace", "1s", NULL},
                  log);
  long before = moved_replies(other);
  RTQ_TEST_WAIT_FOR(file_has(log, "use a redis+cluster:// URL"), 10000);
  /* Three more tries refused later: still said once. */
  RTQ_TEST_WAIT_FOR(moved_replies(other) >= before + 4, 10000);
  stop_clean(w);
  char *s = cli_slurp(log);
  int n = 0;
  for (const char *p = strstr(s, "use a redis+cluster:// URL"); p != NULL; p = strstr(p + 1, "use a redis+cluster:// URL")) n++;
  free(s);
  assert_int_equal(n, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_rtq_cli_worker_broker_through_any_node),
      cmocka_unit_test(test_cluster_rtq_plain_url_names_the_fix),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
