/*
 * test_cluster_rtq.c - the rtq binaries on a 3-primary Redis Cluster
 * through a seed node that does not serve the namespace's slot: the CLI
 * enqueues, rtq-worker --cluster runs the tasks, rtq-broker promotes a
 * delayed one, and nobody logs a MOVED error (the worker used to log
 * `heartbeat failed error="MOVED ..."` in a loop).
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
#include "keys.h"
#include "rtq/common.h"

#define NTASKS 20

static rtq_test_cluster *cl;
static char seed[128];
static rtq_keys keys;

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(3, 3);
  if (cl == NULL) return -1;
  if (rtq_keys_init(&keys, "rtq", true) != 0) return -1;
  /* The seed must not own {rtq}'s slot, or nothing would be redirected. */
  int owner = rtq_test_cluster_owner_at_start(cl, rtq_key_slot("{rtq}", 5));
  rtq_test_cluster_url(cl, (owner + 1) % 3, seed, sizeof seed);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_test_cluster_stop(cl);
  return 0;
}

static char *status_of(rtq_conn *c, const char *id) {
  rtq_key k = rtq_keys_task(&keys, id);
  return rtq_test_cmd_str(c, "HGET", k.s, "status", NULL);
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
                  (const char *[]){"--cluster", "--redis", seed, "--demo-handlers", "--concurrency", "4",
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

/* The first report: --cluster with a plain redis:// URL to a node
 * that does not serve {rtq}'s slot. A plain URL is one node, so MOVED
 * cannot be followed; the worker says once which URL would. */
static void test_cluster_rtq_plain_url_names_the_fix(void **state) {
  (void)state;
  char plain[64], log[256];
  int owner = rtq_test_cluster_owner_at_start(cl, rtq_key_slot("{rtq}", 5));
  snprintf(plain, sizeof plain, "%s", rtq_test_redis_url_of(rtq_test_cluster_node(cl, (owner + 1) % 3)));
  snprintf(log, sizeof log, "%s/worker-plain.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, 0)));
  pid_t w = cluster_spawn("worker/rtq-worker",
                  (const char *[]){"--cluster", "--redis", plain, "--demo-handlers", "--heartbeat-interval",
                                   "200ms", "--heartbeat-ttl", "2s", "--shutdown-grace", "1s", NULL},
                  log);
  RTQ_TEST_WAIT_FOR(file_has(log, "use a redis+cluster:// URL"), 10000);
  /* SIGKILL: its graceful stop reads its processing list first, which
   * this misconfiguration refuses forever. */
  rtq_test_terminate(w, SIGKILL, 5000, NULL);
  /* At most once per connection (cmd, pop, sub), not once per heartbeat. */
  char *s = cli_slurp(log);
  int n = 0;
  for (const char *p = strstr(s, "use a redis+cluster:// URL"); p != NULL; p = strstr(p + 1, "use a redis+cluster:// URL")) n++;
  free(s);
  assert_true(n >= 1 && n <= 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_rtq_cli_worker_broker_through_any_node),
      cmocka_unit_test(test_cluster_rtq_plain_url_names_the_fix),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
