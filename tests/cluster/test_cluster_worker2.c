/*
 * test_cluster_worker2.c - protocol 2 on a 3-primary Redis Cluster with
 * queues spread over the shards: six queues, two on each primary, 30,000
 * tasks created with librtq through one seed, two rtq-worker --protocol 2
 * processes serving all six (one cmd and one pop connection per node) and
 * rtq-broker --protocol 2. Every task completes exactly once: the
 * workers' finished counters add up to 30,000, every task hash reads
 * completed at attempt 1, and each queue's completed counter is 5,000.
 * The CLI's status, list, stats and wait then work through every node.
 * The broker's sweeps reach every shard: a delayed task on each queue is
 * promoted, and the tasks of a worker killed with SIGKILL on all six
 * queues are recovered and run again, also when the workers set was
 * deleted (the audit's SCAN, on every primary). A cancel reaches a running task
 * whatever node its queue is on: the plain PUBLISH the cancel script makes
 * on the queue's node is heard by a SUBSCRIBE on every node.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cluster/cluster2_util.h"
#include "cluster/cluster_util.h"
#include "harness.h"
#include "integration/test_cli_run.h"
#include "rtq/client.h"

#define NQ 6
#define NTASKS 30000
#define BATCH 1000

static rtq_test_cluster *cl;
static rtq_keys2 K;
static char queues[NQ][16]; /* queues[i] on node i % 3 */

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(3, 3);
  if (cl == NULL) return -1;
  rtq_keys2_init(&K, "rtq");
  for (int i = 0; i < NQ; i++) {
    queue_on(cl, &K, i % 3, i < 3 ? "a" : "b", queues[i]);
    if (queues[i][0] == '\0') return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_test_cluster_stop(cl);
  return 0;
}

/* "finished=N" of the worker's last "worker stopped" line. */
static long finished_of(const char *log) {
  char *s = cli_slurp(log);
  const char *p = strstr(s, "msg=\"worker stopped\"");
  const char *f = p != NULL ? strstr(p, " finished=") : NULL;
  long n = f != NULL ? atol(f + 10) : -1;
  free(s);
  return n;
}

/* The end of a log, for a failure's report. */
static void dump_tail(const char *log) {
  char *s = cli_slurp(log);
  size_t n = strlen(s);
  fprintf(stderr, "---- %s (last 4000 bytes)\n%s\n", log, n > 4000 ? s + n - 4000 : s);
  free(s);
}

static uint64_t completed_now(rtq_client *c) {
  rtq_stats *st = NULL;
  if (rtq_get_stats(c, &st) != 0) return 0;
  uint64_t n = st->by_status[RTQ_STATUS_COMPLETED];
  rtq_stats_free(st);
  return n;
}

static void test_cluster_worker2_six_queues_three_primaries(void **state) {
  (void)state;
  char seed[128];
  rtq_test_cluster_url(cl, 1, seed, sizeof seed);
  rtq_client_options co = {.redis_url = seed, .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&co, &c), 0);

  char(*ids)[40] = calloc(NTASKS, sizeof *ids);
  const char **qof = calloc(NTASKS, sizeof *qof);
  rtq_task_spec *s = calloc(BATCH, sizeof *s);
  assert_true(ids != NULL && qof != NULL && s != NULL);
  rtq_task_options o[NQ];
  for (int q = 0; q < NQ; q++) o[q] = (rtq_task_options){.queue = queues[q]};
  uint64_t t0 = rtq_test_now_ms();
  for (int from = 0; from < NTASKS; from += BATCH) {
    memset(s, 0, BATCH * sizeof *s);
    for (int i = 0; i < BATCH; i++) s[i].name = "rtq.noop", s[i].opts = &o[(from + i) % NQ];
    assert_int_equal(rtq_create_tasks(c, s, BATCH), 0);
    for (int i = 0; i < BATCH; i++) {
      snprintf(ids[from + i], sizeof ids[0], "%s", s[i].id);
      qof[from + i] = queues[(from + i) % NQ];
    }
  }
  uint64_t created = rtq_test_now_ms();
  /* Each primary holds the 10,000 tasks of its two queues. */
  for (int node = 0; node < 3; node++) {
    rtq_conn *d = rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, node)));
    for (int q = node; q < NQ; q += 3)
      assert_int_equal(rtq_test_cmd_int(d, "LLEN", rtq_keys2_queue(&K, queues[q]).s, NULL), NTASKS / NQ);
    rtq_conn_free(d);
  }

  const char *dir = rtq_test_redis_dir(rtq_test_cluster_node(cl, 0));
  char wlog[2][256], blog[256], seeds[3][128];
  for (int i = 0; i < 3; i++) rtq_test_cluster_url(cl, i, seeds[i], sizeof seeds[i]);
  pid_t w[2];
  for (int k = 0; k < 2; k++) {
    snprintf(wlog[k], sizeof wlog[k], "%s/worker2-%d.log", dir, k);
    /* Each worker through a different seed: any node leads to all. */
    const char *args[24] = {"--protocol", "2", "--redis", seeds[k], "--demo-handlers", "--concurrency", "64",
                            "--shutdown-grace", "2s"};
    int n = 9;
    for (int q = 0; q < NQ; q++) args[n++] = "--queue", args[n++] = queues[q];
    args[n] = NULL;
    w[k] = cluster_spawn("worker/rtq-worker", args, wlog[k]);
  }
  snprintf(blog, sizeof blog, "%s/broker2.log", dir);
  pid_t b = cluster_spawn("broker/rtq-broker",
                          (const char *[]){"--protocol", "2", "--redis", seeds[2], "--sweep-interval", "200ms", NULL},
                          blog);
  uint64_t until = rtq_test_now_ms() + 100000;
  while (completed_now(c) < NTASKS && rtq_test_now_ms() < until) rtq__test_poll_pause(20);
  if (completed_now(c) < NTASKS) {
    dump_tail(wlog[0]);
    dump_tail(wlog[1]);
    dump_tail(blog);
    fail_msg("only %llu of %d tasks completed", (unsigned long long)completed_now(c), NTASKS);
  }
  uint64_t drained = rtq_test_now_ms();
  fprintf(stderr, "cluster worker2: %d tasks on %d queues over 3 primaries created in %llu ms, drained %llu ms "
                  "after the workers started\n",
          NTASKS, NQ, (unsigned long long)(created - t0), (unsigned long long)(drained - created));

  /* Exactly once: read back every task, and the per-queue counters. */
  rtq_conn *rc = rtq_test_conn_new(seed);
  int done = 0, once = 0;
  assert_int_equal(read_back(rc, &K, ids, qof, NTASKS, &done, &once), 0);
  assert_int_equal(done, NTASKS);
  assert_int_equal(once, NTASKS);
  rtq_conn_free(rc);
  rtq_stats *st = NULL;
  assert_int_equal(rtq_get_stats(c, &st), 0);
  int seen = 0;
  for (size_t i = 0; i < st->nqueues; i++) {
    const rtq_queue_stats *qs = &st->queues[i];
    for (int q = 0; q < NQ; q++) {
      if (strcmp(qs->name, queues[q]) != 0) continue;
      seen++;
      assert_int_equal(qs->backlog, 0);
      uint64_t completed = 0;
      for (size_t k = 0; k < qs->ncounters; k++)
        if (strcmp(qs->counters[k].name, "completed") == 0) completed = qs->counters[k].value;
      assert_int_equal(completed, NTASKS / NQ);
    }
  }
  assert_int_equal(seen, NQ);
  assert_int_equal(st->by_status[RTQ_STATUS_COMPLETED], NTASKS);
  rtq_stats_free(st);

  /* The CLI through each node. */
  for (int node = 0; node < 3; node++) {
    cli_run r;
    cli(&r, (const char *[]){"--protocol", "2", "--redis", seeds[node], "--json", "status", ids[node * 7 + 1], NULL},
        NULL);
    if (r.code != 0) fail_msg("status exit %d: %s", r.code, r.err);
    assert_non_null(strstr(r.out, "completed"));
    cli_free(&r);
    cli(&r, (const char *[]){"--protocol", "2", "--redis", seeds[node], "--json", "list", "--queue",
                             queues[(node + 1) % NQ], "--limit", "5", NULL},
        NULL);
    if (r.code != 0) fail_msg("list exit %d: %s", r.code, r.err);
    assert_non_null(strstr(r.out, "completed"));
    cli_free(&r);
    cli(&r, (const char *[]){"--protocol", "2", "--redis", seeds[node], "--json", "stats", NULL}, NULL);
    if (r.code != 0) fail_msg("stats exit %d: %s", r.code, r.err);
    for (int q = 0; q < NQ; q++) assert_non_null(strstr(r.out, queues[q]));
    cli_free(&r);
    cli(&r, (const char *[]){"--protocol", "2", "--redis", seeds[node], "enqueue", "rtq.noop", "--queue",
                             queues[(node + 2) % NQ], "--wait=10", NULL},
        NULL);
    if (r.code != 0) fail_msg("enqueue --wait exit %d: %s", r.code, r.err);
    cli_free(&r);
  }

  stop_clean(w[0]);
  stop_clean(w[1]);
  stop_clean(b);
  long f0 = finished_of(wlog[0]), f1 = finished_of(wlog[1]);
  fprintf(stderr, "cluster worker2: worker finished counters %ld + %ld\n", f0, f1);
  assert_int_equal(f0 + f1, NTASKS + 3); /* and the CLI's three */
  free(ids);
  free(qof);
  free(s);
  rtq_client_free(c);
}

static uint64_t count_now(rtq_client *c, rtq_status st) {
  rtq_stats *s = NULL;
  if (rtq_get_stats(c, &s) != 0) return UINT64_MAX;
  uint64_t n = s->by_status[st];
  rtq_stats_free(s);
  return n;
}

/* A worker that took one rtq.sleep task of `seconds` on each queue and was
 * then killed with kill -9: ids[q] the tasks, args the worker's argv (the
 * caller reuses it for the next worker), logging to logname in node 0's
 * directory. (asserts) */
static void tasks_of_a_killed_worker(rtq_client *c, double seconds, char seeds[3][128], const char *logname,
                                     char ids[NQ][RTQ_TASK_ID_SIZE], const char *args[24]) {
  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_double(a, "seconds", seconds), 0);
  for (int q = 0; q < NQ; q++) {
    rtq_task_options o = {.queue = queues[q]};
    assert_int_equal(rtq_create_task(c, "rtq.sleep", a, &o, ids[q], NULL), 0);
  }
  rtq_args_free(a);
  const char *head[] = {"--protocol", "2", "--redis", seeds[0], "--demo-handlers", "--heartbeat-interval",
                        "200ms", "--heartbeat-ttl", "1s"};
  int n = 0;
  for (; n < 9; n++) args[n] = head[n];
  for (int q = 0; q < NQ; q++) args[n++] = "--queue", args[n++] = queues[q];
  args[n] = NULL;
  char log[256];
  snprintf(log, sizeof log, "%s/%s", rtq_test_redis_dir(rtq_test_cluster_node(cl, 0)), logname);
  pid_t victim = cluster_spawn("worker/rtq-worker", args, log);
  RTQ_TEST_WAIT_FOR(count_now(c, RTQ_STATUS_RUNNING) == NQ, 20000);
  assert_int_equal(rtq_test_terminate(victim, SIGKILL, 5000, NULL), 0);
}

static void test_cluster_worker2_broker_sweeps_every_shard(void **state) {
  (void)state;
  char seed[128], seeds[3][128], blog[256], wlog[256];
  rtq_test_cluster_url(cl, 2, seed, sizeof seed);
  for (int i = 0; i < 3; i++) rtq_test_cluster_url(cl, i, seeds[i], sizeof seeds[i]);
  rtq_client_options co = {.redis_url = seed, .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&co, &c), 0);
  uint64_t base = count_now(c, RTQ_STATUS_COMPLETED);
  /* One 3 s task per queue for a worker that is then killed. */
  char slow[NQ][RTQ_TASK_ID_SIZE], later[NQ][RTQ_TASK_ID_SIZE];
  const char *args[24];
  tasks_of_a_killed_worker(c, 3.0, seeds, "worker2-killed.log", slow, args);
  const char *dir = rtq_test_redis_dir(rtq_test_cluster_node(cl, 0));
  /* Delayed tasks, one per queue, for the broker to promote. */
  for (int q = 0; q < NQ; q++) {
    rtq_task_options o = {.queue = queues[q], .delay_ms = 800};
    assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, &o, later[q], NULL), 0);
  }
  snprintf(blog, sizeof blog, "%s/broker2-sweeps.log", dir);
  pid_t b = cluster_spawn("broker/rtq-broker",
                          (const char *[]){"--protocol", "2", "--redis", seeds[1], "--sweep-interval", "200ms",
                                           "--heartbeat-ttl", "1s", NULL},
                          blog);
  snprintf(wlog, sizeof wlog, "%s/worker2-after.log", dir);
  args[3] = seeds[2];
  pid_t w = cluster_spawn("worker/rtq-worker", args, wlog);
  /* Recovered (attempt 2) and promoted, on every shard. */
  uint64_t until = rtq_test_now_ms() + 30000;
  while (count_now(c, RTQ_STATUS_COMPLETED) < base + 2 * NQ && rtq_test_now_ms() < until) rtq__test_poll_pause(20);
  if (count_now(c, RTQ_STATUS_COMPLETED) < base + 2 * NQ) {
    dump_tail(blog);
    dump_tail(wlog);
    fail_msg("the broker's sweeps did not reach every shard");
  }
  for (int q = 0; q < NQ; q++) {
    rtq_task *t = NULL;
    assert_int_equal(rtq_get_task(c, slow[q], &t), 0);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    assert_int_equal(t->attempts, 2);
    rtq_task_free(t);
    assert_int_equal(rtq_get_task(c, later[q], &t), 0);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    rtq_task_free(t);
  }
  stop_clean(w);
  stop_clean(b);
  rtq_client_free(c);
}

/* The broker's audit of processing lists SCANs every primary: a worker
 * holding a task on each of the six queues (two per primary) is killed
 * and the whole workers set deleted, so the dead-worker walk finds
 * nothing; the broker still recovers all six lists. */
static void test_cluster_worker2_audit_scans_every_primary(void **state) {
  (void)state;
  char seed[128], seeds[3][128], blog[256], wlog[256];
  rtq_test_cluster_url(cl, 0, seed, sizeof seed);
  for (int i = 0; i < 3; i++) rtq_test_cluster_url(cl, i, seeds[i], sizeof seeds[i]);
  rtq_client_options co = {.redis_url = seed, .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&co, &c), 0);
  uint64_t base = count_now(c, RTQ_STATUS_COMPLETED);
  char ids[NQ][RTQ_TASK_ID_SIZE];
  const char *args[24];
  tasks_of_a_killed_worker(c, 2.0, seeds, "worker2-hidden.log", ids, args);
  const char *dir = rtq_test_redis_dir(rtq_test_cluster_node(cl, 0));
  rtq_conn *k = rtq_test_conn_new(seed);
  assert_int_equal(rtq_test_cmd_int(k, "DEL", rtq_keys2_workers(&K).s, NULL), 1);
  snprintf(blog, sizeof blog, "%s/broker2-audit.log", dir);
  pid_t b = cluster_spawn("broker/rtq-broker",
                          (const char *[]){"--protocol", "2", "--redis", seeds[1], "--sweep-interval", "200ms",
                                           "--heartbeat-ttl", "1s", NULL},
                          blog);
  snprintf(wlog, sizeof wlog, "%s/worker2-after-audit.log", dir);
  args[3] = seeds[2];
  pid_t w = cluster_spawn("worker/rtq-worker", args, wlog);
  uint64_t until = rtq_test_now_ms() + 30000;
  while (count_now(c, RTQ_STATUS_COMPLETED) < base + NQ && rtq_test_now_ms() < until) rtq__test_poll_pause(20);
  if (count_now(c, RTQ_STATUS_COMPLETED) < base + NQ) {
    dump_tail(blog);
    fail_msg("the audit did not reach every primary");
  }
  for (int q = 0; q < NQ; q++) {
    rtq_task *t = NULL;
    assert_int_equal(rtq_get_task(c, ids[q], &t), 0);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    assert_int_equal(t->attempts, 2);
    rtq_task_free(t);
  }
  stop_clean(w);
  stop_clean(b);
  /* One list per queue, on all three primaries. */
  char *v = rtq_test_cmd_str(k, "HGET", rtq_keys2_broker(&K).s, "orphans_recovered", NULL);
  assert_non_null(v);
  assert_int_equal(atoi(v), NQ);
  free(v);
  rtq_conn_free(k);
  rtq_client_free(c);
}

/* A plain SUBSCRIBE to the cancel channel on node i. (asserts) */
static redisContext *subscribe_on(int i) {
  struct timeval tv = {5, 0};
  redisContext *x = redisConnectWithTimeout("127.0.0.1", rtq_test_redis_port(rtq_test_cluster_node(cl, i)), tv);
  assert_true(x != NULL && x->err == 0);
  assert_int_equal(redisSetTimeout(x, tv), REDIS_OK);
  rtq_key2 ch = rtq_keys2_chan_cancel(&K);
  redisReply *r = redisCommand(x, "SUBSCRIBE %b", ch.s, ch.len);
  assert_non_null(r);
  freeReplyObject(r);
  return x;
}

static void test_cluster_worker2_cancel_heard_on_every_node(void **state) {
  (void)state;
  char seed[128], wlog[256];
  rtq_test_cluster_url(cl, 0, seed, sizeof seed);
  rtq_client_options co = {.redis_url = seed, .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&co, &c), 0);
  snprintf(wlog, sizeof wlog, "%s/worker2-cancel.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, 0)));
  const char *args[24] = {"--protocol", "2", "--redis", seed, "--demo-handlers", "--shutdown-grace", "2s"};
  int n = 7;
  for (int q = 0; q < NQ; q++) args[n++] = "--queue", args[n++] = queues[q];
  args[n] = NULL;
  pid_t w = cluster_spawn("worker/rtq-worker", args, wlog);
  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_double(a, "seconds", 60.0), 0);
  char ids[3][RTQ_TASK_ID_SIZE];
  for (int node = 0; node < 3; node++) {
    rtq_task_options o = {.queue = queues[node]};
    assert_int_equal(rtq_create_task(c, "rtq.sleep", a, &o, ids[node], NULL), 0);
  }
  rtq_args_free(a);
  RTQ_TEST_WAIT_FOR(count_now(c, RTQ_STATUS_RUNNING) == 3, 20000);
  redisContext *sub[3];
  for (int i = 0; i < 3; i++) sub[i] = subscribe_on(i);
  for (int node = 0; node < 3; node++) {
    int requested = 0;
    assert_int_equal(rtq_cancel_task(c, ids[node], &requested), 0);
    assert_int_equal(requested, 1);
    /* Published on the queue's node; heard on all three. */
    for (int i = 0; i < 3; i++) {
      redisReply *r = NULL;
      assert_int_equal(redisGetReply(sub[i], (void **)&r), REDIS_OK);
      assert_true(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
      assert_string_equal(r->element[2]->str, ids[node]);
      freeReplyObject(r);
    }
  }
  for (int i = 0; i < 3; i++) redisFree(sub[i]);
  RTQ_TEST_WAIT_FOR(count_now(c, RTQ_STATUS_CANCELLED) >= 3, 10000);
  for (int node = 0; node < 3; node++) {
    rtq_task *t = NULL;
    assert_int_equal(rtq_get_task(c, ids[node], &t), 0);
    assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
    rtq_task_free(t);
  }
  stop_clean(w);
  rtq_client_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_worker2_six_queues_three_primaries),
      cmocka_unit_test(test_cluster_worker2_broker_sweeps_every_shard),
      cmocka_unit_test(test_cluster_worker2_audit_scans_every_primary),
      cmocka_unit_test(test_cluster_worker2_cancel_heard_on_every_node),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
