/*
 * test_cluster_figures2.c - what spreading queues over shards buys under
 * protocol 2, measured on this machine (docs/PERFORMANCE.md quotes it):
 * six queues on a 1-primary cluster against the same six on 3 primaries
 * (two per primary), two rtq-worker --protocol 2 processes (concurrency
 * 64) serving all six.
 *   drain   NDRAIN tasks created up front, then the workers started: the
 *           time until every one is completed, and each node's Redis CPU
 *           (INFO cpu, user + sys) per task drained;
 *   offered RATE tasks/s created for SECONDS s in chunks of 100 while the
 *           workers run: each node's Redis CPU per task at that load.
 * Every task must complete in both shapes (that is the assertion); the
 * figures are printed. By default a small run (6,000 tasks, 1,500/s for
 * 2 s); RTQ_CLUSTER_FIGURES=1 runs the figures' size (30,000 tasks,
 * 3,000/s for 5 s).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cluster/cluster2_util.h"
#include "cluster/cluster_util.h"
#include "harness.h"
#include "rtq/client.h"

#define NQ 6
#define CHUNK 100

static rtq_keys2 K;
static int ndrain = 6000, rate = 1500, seconds = 2;

/* Redis CPU seconds (user + sys) node i has used. */
static double cpu_of(rtq_test_cluster *cl, int i) {
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, i)));
  char *s = rtq_test_cmd_str(c, "INFO", "cpu", NULL);
  rtq_conn_free(c);
  assert_non_null(s);
  const char *u = strstr(s, "used_cpu_user:"), *y = strstr(s, "used_cpu_sys:");
  double v = (u != NULL ? atof(u + 14) : 0) + (y != NULL ? atof(y + 13) : 0);
  free(s);
  return v;
}

/* CPU seconds (user + sys) process pid has used, from /proc. */
static double proc_cpu(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the name may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static uint64_t completed_now(rtq_client *c) {
  rtq_stats *st = NULL;
  if (rtq_get_stats(c, &st) != 0) return 0;
  uint64_t n = st->by_status[RTQ_STATUS_COMPLETED];
  rtq_stats_free(st);
  return n;
}

static void create_n(rtq_client *c, char (*queues)[16], int n, int *next) {
  rtq_task_spec s[CHUNK];
  rtq_task_options o[NQ];
  for (int q = 0; q < NQ; q++) o[q] = (rtq_task_options){.queue = queues[q]};
  for (int done = 0; done < n; done += CHUNK) {
    int k = n - done < CHUNK ? n - done : CHUNK;
    memset(s, 0, sizeof s);
    for (int i = 0; i < k; i++) s[i].name = "rtq.noop", s[i].opts = &o[(*next)++ % NQ];
    assert_int_equal(rtq_create_tasks(c, s, (size_t)k), 0);
  }
}

static pid_t spawn_worker(const char *seed, char (*queues)[16], const char *log) {
  const char *args[24] = {"--protocol", "2", "--redis", seed, "--demo-handlers", "--concurrency", "64",
                          "--shutdown-grace", "2s"};
  int n = 9;
  for (int q = 0; q < NQ; q++) args[n++] = "--queue", args[n++] = queues[q];
  args[n] = NULL;
  return cluster_spawn("worker/rtq-worker", args, log);
}

static void measure(int masters) {
  rtq_test_cluster *cl = rtq_test_cluster_start(masters, masters);
  assert_non_null(cl);
  char queues[NQ][16], seed[128], wlog[2][256];
  for (int q = 0; q < NQ; q++) {
    const char prefix[2] = {(char)('a' + q), '\0'};
    queue_on(cl, &K, q % masters, prefix, queues[q]);
    assert_true(queues[q][0] != '\0');
  }
  rtq_test_cluster_url(cl, 0, seed, sizeof seed);
  rtq_client_options co = {.redis_url = seed, .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&co, &c), 0);
  int next = 0;

  /* drain */
  create_n(c, queues, ndrain, &next);
  double cpu0[3];
  for (int i = 0; i < masters; i++) cpu0[i] = cpu_of(cl, i);
  uint64_t t0 = rtq_test_now_ms();
  pid_t w[2];
  for (int k = 0; k < 2; k++) {
    snprintf(wlog[k], sizeof wlog[k], "%s/fig-worker-%d.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, 0)), k);
    w[k] = spawn_worker(seed, queues, wlog[k]);
  }
  uint64_t until = t0 + 120000;
  while (completed_now(c) < (uint64_t)ndrain && rtq_test_now_ms() < until) rtq__test_poll_pause(20);
  if (completed_now(c) < (uint64_t)ndrain) {
    for (int k = 0; k < 2; k++) {
      char *s = cli_slurp(wlog[k]);
      size_t n = strlen(s);
      fprintf(stderr, "---- %s\n%s\n", wlog[k], n > 3000 ? s + n - 3000 : s);
      free(s);
    }
    fail_msg("%llu of %d tasks completed", (unsigned long long)completed_now(c), ndrain);
  }
  uint64_t ms = rtq_test_now_ms() - t0;
  fprintf(stderr, "figures: %d primar%s, drain of %d tasks: %llu ms (%.0f tasks/s, worker start included);",
          masters, masters == 1 ? "y" : "ies", ndrain, (unsigned long long)ms, ndrain * 1000.0 / (double)ms);
  for (int i = 0; i < masters; i++) fprintf(stderr, " node %d %.1f us/task", i, (cpu_of(cl, i) - cpu0[i]) * 1e6 / ndrain);
  double wcpu0 = proc_cpu(w[0]) + proc_cpu(w[1]);
  fprintf(stderr, "; the two workers %.1f us/task\n", wcpu0 * 1e6 / ndrain);

  /* offered load */
  int total = rate * seconds;
  for (int i = 0; i < masters; i++) cpu0[i] = cpu_of(cl, i);
  wcpu0 = proc_cpu(w[0]) + proc_cpu(w[1]);
  uint64_t start = rtq_test_now_ms();
  for (int sent = 0; sent < total; sent += CHUNK) {
    uint64_t due = start + (uint64_t)sent * 1000u / (uint64_t)rate;
    while (rtq_test_now_ms() < due) {
      struct timespec ts = {0, 1000000L};
      nanosleep(&ts, NULL);
    }
    create_n(c, queues, total - sent < CHUNK ? total - sent : CHUNK, &next);
  }
  uint64_t sent_ms = rtq_test_now_ms() - start;
  RTQ_TEST_WAIT_FOR(completed_now(c) >= (uint64_t)(ndrain + total), 60000);
  fprintf(stderr, "figures: %d primar%s, %d tasks/s offered for %d s (sent in %llu ms):", masters,
          masters == 1 ? "y" : "ies", rate, seconds, (unsigned long long)sent_ms);
  double sum = 0;
  for (int i = 0; i < masters; i++) {
    double us = (cpu_of(cl, i) - cpu0[i]) * 1e6 / total;
    sum += us;
    fprintf(stderr, " node %d %.1f us/task", i, us);
  }
  fprintf(stderr, " (all nodes %.1f us/task); the two workers %.1f us/task\n", sum,
          (proc_cpu(w[0]) + proc_cpu(w[1]) - wcpu0) * 1e6 / total);
  stop_clean(w[0]);
  stop_clean(w[1]);
  rtq_client_free(c);
  rtq_test_cluster_stop(cl);
}

static void test_cluster_figures2_one_primary(void **state) {
  (void)state;
  measure(1);
}

static void test_cluster_figures2_three_primaries(void **state) {
  (void)state;
  measure(3);
}

static int setup(void **state) {
  (void)state;
  const char *f = getenv("RTQ_CLUSTER_FIGURES");
  if (f != NULL && strcmp(f, "1") == 0) ndrain = 30000, rate = 3000, seconds = 5;
  return rtq_keys2_init(&K, "rtq");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_figures2_one_primary),
      cmocka_unit_test(test_cluster_figures2_three_primaries),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
