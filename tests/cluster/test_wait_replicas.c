/*
 * test_wait_replicas.c - the durability knob (wait_replicas) against a
 * primary with one replica (replicaof), both real servers:
 *   - with 1 asked, creates (one and a batch) and worker completions are
 *     followed by WAIT and report the replica's acknowledgement;
 *   - with the replica stopped (SIGSTOP), a create returns within the
 *     timeout as RTQ_EREPLICAS (created all the same), the CLI exits 6,
 *     and the worker still completes tasks and counts them unreplicated;
 *   - without the option nothing sends WAIT (the primary's commandstats).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>

#include <cmocka.h>

#include "calls2.h"
#include "clock.h"
#include "cluster/cluster_util.h"
#include "harness.h"
#include "integration/test_cli_run.h"
#include "keys2.h"
#include "rtq/client.h"
#include "rtq/common.h"
#include "scripts2.h"

static rtq_test_redis *primary, *replica;
static rtq_conn *pc; /* to the primary */
static rtq_keys2 K;

static bool info_has(rtq_conn *c, const char *section, const char *needle) {
  char *s = rtq_test_cmd_str(c, "INFO", section, NULL);
  bool yes = s != NULL && strstr(s, needle) != NULL;
  free(s);
  return yes;
}

/* Calls of WAIT the primary has run (INFO commandstats). */
static long wait_calls(void) {
  char *s = rtq_test_cmd_str(pc, "INFO", "commandstats", NULL);
  const char *p = s != NULL ? strstr(s, "cmdstat_wait:calls=") : NULL;
  long n = p != NULL ? strtol(p + strlen("cmdstat_wait:calls="), NULL, 10) : 0;
  free(s);
  return n;
}

static int setup(void **state) {
  (void)state;
  primary = rtq_test_redis_start(NULL);
  if (primary == NULL) return -1;
  char line[64];
  snprintf(line, sizeof line, "replicaof 127.0.0.1 %d", rtq_test_redis_port(primary));
  const char *const extra[] = {line, NULL};
  rtq_test_redis_options o = {.extra_config = extra};
  replica = rtq_test_redis_start(&o);
  if (replica == NULL) return -1;
  pc = rtq_test_conn_new(rtq_test_redis_url_of(primary));
  rtq_conn *rc = rtq_test_conn_new(rtq_test_redis_url_of(replica));
  RTQ_TEST_WAIT_FOR(info_has(rc, "replication", "master_link_status:up") &&
                        info_has(pc, "replication", "connected_slaves:1"),
                    15000);
  rtq_conn_free(rc);
  return rtq_keys2_init(&K, "rtq");
}

static int teardown(void **state) {
  (void)state;
  rtq_conn_free(pc);
  rtq_test_redis_stop(replica);
  rtq_test_redis_stop(primary);
  return 0;
}

static rtq_client *client(int wait_replicas, int wait_timeout_ms) {
  rtq_client_options o = {.redis_url = rtq_test_redis_url_of(primary),
                          .wait_replicas = wait_replicas,
                          .wait_timeout_ms = wait_timeout_ms};
  rtq_client *c = NULL;
  if (rtq_client_new(&o, &c) != 0) fail_msg("rtq_client_new: %s", rtq_client_errstr(NULL));
  return c;
}

/* The status of task id of queue on the primary. */
static bool is_status_in(const char *queue, const char *id, const char *want) {
  char *st = rtq_test_cmd_str(pc, "HGET", rtq_keys2_task(&K, queue, id).s, "s", NULL);
  bool yes = st != NULL && strcmp(st, want) == 0;
  free(st);
  return yes;
}

/* The same for the tasks of queue "default". */
static bool is_status(const char *id, const char *want) { return is_status_in("default", id, want); }

/* The CLI's JSON output, kept until the next call. */
static json_t *json_of(const cli_run *r) {
  static json_t *last;
  json_decref(last);
  last = cli_json(r);
  assert_non_null(last);
  return last;
}

static void test_wait_replicas_creates_wait_and_report_the_replica(void **state) {
  (void)state;
  rtq_client *c = client(1, 1000);
  long before = wait_calls();
  char id[RTQ_TASK_ID_SIZE];
  int created = 0;
  assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, NULL, id, &created), 0);
  assert_int_equal(created, 1);
  assert_int_equal(wait_calls(), before + 1);
  /* A batch: one WAIT for all of it. */
  rtq_task_spec specs[20];
  memset(specs, 0, sizeof specs);
  for (int i = 0; i < 20; i++) specs[i].name = "rtq.noop";
  assert_int_equal(rtq_create_tasks(c, specs, 20), 0);
  for (int i = 0; i < 20; i++) {
    assert_int_equal(specs[i].rc, 0);
    assert_int_equal(specs[i].created, 1);
  }
  assert_int_equal(wait_calls(), before + 2);
  rtq_client_free(c);

  /* The option off: nothing waits. */
  c = client(-1, 0);
  assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, NULL, id, &created), 0);
  assert_int_equal(rtq_create_tasks(c, specs, 20), 0);
  assert_int_equal(wait_calls(), before + 2);
  rtq_client_free(c);
  rtq_test_cmd_ok(pc, "FLUSHALL", NULL);
}

/* A figure, not a check: what WAIT adds to a create (docs/OPERATIONS.md
 * 2.6 quotes it). */
static void test_wait_replicas_cost_per_create(void **state) {
  (void)state;
  enum { N = 1000 };
  double us[2];
  for (int mode = 0; mode < 2; mode++) {
    rtq_client *c = client(mode ? 1 : -1, 1000);
    char id[RTQ_TASK_ID_SIZE];
    assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, NULL, id, NULL), 0); /* connected, warm */
    uint64_t t0 = rtq__mono_ms();
    for (int i = 0; i < N; i++) assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, NULL, id, NULL), 0);
    us[mode] = (double)(rtq__mono_ms() - t0) * 1000.0 / N;
    rtq_client_free(c);
  }
  fprintf(stderr, "wait_replicas cost: %.0f us per create without, %.0f us with wait_replicas 1 (%d creates each)\n",
          us[0], us[1], N);
}

static void test_wait_replicas_timeout_not_below_command_timeout_is_refused(void **state) {
  (void)state;
  rtq_client_options o = {.redis_url = rtq_test_redis_url_of(primary), .wait_replicas = 1,
                          .wait_timeout_ms = 5000, .command_timeout_ms = 5000};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_null(c);
  assert_non_null(strstr(rtq_client_errstr(NULL), "command_timeout_ms"));
}

static void test_wait_replicas_stopped_replica_returns_within_the_timeout(void **state) {
  (void)state;
  rtq_client *c = client(1, 300);
  assert_int_equal(rtq_test_redis_sigstop(replica), 0);
  char id[RTQ_TASK_ID_SIZE];
  int created = 0;
  uint64_t t0 = rtq__mono_ms();
  int rc = rtq_create_task(c, "rtq.noop", NULL, NULL, id, &created);
  uint64_t took = rtq__mono_ms() - t0;
  assert_int_equal(rc, RTQ_EREPLICAS);
  /* Created all the same, and said so. */
  assert_int_equal(created, 1);
  assert_true(id[0] != '\0');
  assert_true(is_status(id, "pending"));
  assert_non_null(strstr(rtq_client_errstr(c), "0 of 1 replicas"));
  assert_true(took >= 250 && took < 2000);

  rtq_task_spec specs[3];
  memset(specs, 0, sizeof specs);
  for (int i = 0; i < 3; i++) specs[i].name = "rtq.noop";
  t0 = rtq__mono_ms();
  assert_int_equal(rtq_create_tasks(c, specs, 3), RTQ_EREPLICAS);
  assert_true(rtq__mono_ms() - t0 < 2000);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(specs[i].rc, RTQ_EREPLICAS);
    assert_int_equal(specs[i].created, 1);
    assert_true(is_status(specs[i].id, "pending"));
  }

  /* The CLI: the id, a warning and exit 6; with --json a field too. */
  const char *url = rtq_test_redis_url_of(primary);
  cli_run r;
  cli(&r, (const char *[]){"--redis", url, "--wait-replicas", "1", "--wait-timeout", "300", "enqueue", "rtq.noop",
                           "--id", "cli-unrepl", NULL},
      NULL);
  assert_int_equal(r.code, 6);
  assert_non_null(strstr(r.out, "cli-unrepl"));
  assert_non_null(strstr(r.err, "0 of 1 replicas"));
  cli_free(&r);
  assert_true(is_status("cli-unrepl", "pending"));
  cli(&r, (const char *[]){"--redis", url, "--json", "--wait-replicas=1", "--wait_timeout=300", "enqueue",
                           "rtq.noop", NULL},
      NULL);
  assert_int_equal(r.code, 6);
  assert_true(json_is_false(json_object_get(json_of(&r), "replicated")));
  cli_free(&r);

  assert_int_equal(rtq_test_redis_sigcont(replica), 0);
  /* Back: acknowledged again, and the CLI exits 0 with replicated true. */
  RTQ_TEST_WAIT_FOR(rtq_create_task(c, "rtq.noop", NULL, NULL, id, &created) == 0, 10000);
  cli(&r, (const char *[]){"--redis", url, "--json", "--wait-replicas", "1", "enqueue", "rtq.noop", NULL}, NULL);
  assert_int_equal(r.code, 0);
  assert_true(json_is_true(json_object_get(json_of(&r), "replicated")));
  cli_free(&r);
  rtq_client_free(c);
  rtq_test_cmd_ok(pc, "FLUSHALL", NULL);
}

/* A field of the one worker record (-1: no record, or no such field). */
static long long record_field(const char *field) {
  redisReply *r = rtq_test_command(pc, "ZRANGE", rtq_keys2_workers(&K).s, "0", "-1", NULL);
  long long v = -1;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
    char *s = rtq_test_cmd_str(pc, "HGET", rtq_keys2_worker(&K, r->element[0]->str).s, field, NULL);
    if (s != NULL) v = atoll(s);
    free(s);
  }
  freeReplyObject(r);
  return v;
}

static bool file_has(const char *path, const char *needle) {
  char *s = cli_slurp(path);
  bool yes = strstr(s, needle) != NULL;
  free(s);
  return yes;
}

static void test_wait_replicas_worker_completions(void **state) {
  (void)state;
  char log[512];
  snprintf(log, sizeof log, "%s/worker.log", rtq_test_redis_dir(primary));
  pid_t w = cluster_spawn("worker/rtq-worker",
                          (const char *[]){"--redis", rtq_test_redis_url_of(primary), "--demo-handlers",
                                           "--wait-replicas", "1", "--wait-timeout", "300", "--heartbeat-interval",
                                           "200ms", "--heartbeat-ttl", "3s", "--shutdown-grace", "1s",
                                           "--log-level", "debug", NULL},
                          log);
  rtq_client *c = client(-1, 0);
  char id[RTQ_TASK_ID_SIZE];
  long before = wait_calls();
  assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, NULL, id, NULL), 0);
  RTQ_TEST_WAIT_FOR(is_status(id, "completed"), 10000);
  char line[256];
  snprintf(line, sizeof line, "msg=\"completion acknowledged\" task=%s replicas=1", id);
  RTQ_TEST_WAIT_FOR(file_has(log, line), 5000);
  assert_true(wait_calls() > before);
  RTQ_TEST_WAIT_FOR(record_field("unreplicated") == 0, 5000);

  /* Replica stopped: completions still land, each within about one
   * timeout, and are counted. */
  assert_int_equal(rtq_test_redis_sigstop(replica), 0);
  char ids[5][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 5; i++) assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, NULL, ids[i], NULL), 0);
  uint64_t t0 = rtq__mono_ms();
  for (int i = 0; i < 5; i++) RTQ_TEST_WAIT_FOR(is_status(ids[i], "completed"), 10000);
  uint64_t took = rtq__mono_ms() - t0;
  RTQ_TEST_WAIT_FOR(record_field("unreplicated") >= 5, 10000);
  assert_true(file_has(log, "fewer replicas than asked acknowledged them"));
  assert_int_equal(rtq_test_redis_sigcont(replica), 0);
  /* A finish call waits behind at most one WAIT in flight. */
  assert_true(took < 3000);
  stop_clean(w);
  assert_true(file_has(log, "unreplicated="));
  rtq_client_free(c);
  rtq_test_cmd_ok(pc, "FLUSHALL", NULL);
}

static void test_wait_replicas_worker_without_the_option_never_waits(void **state) {
  (void)state;
  char log[512];
  snprintf(log, sizeof log, "%s/worker-plain.log", rtq_test_redis_dir(primary));
  pid_t w = cluster_spawn("worker/rtq-worker",
                          (const char *[]){"--redis", rtq_test_redis_url_of(primary), "--demo-handlers",
                                           "--heartbeat-interval", "200ms", "--heartbeat-ttl", "3s",
                                           "--shutdown-grace", "1s", NULL},
                          log);
  rtq_client *c = client(-1, 0);
  long before = wait_calls();
  char id[RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 5; i++) assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, NULL, id, NULL), 0);
  RTQ_TEST_WAIT_FOR(is_status(id, "completed"), 10000);
  RTQ_TEST_WAIT_FOR(record_field("busy") == 0, 5000);
  assert_int_equal(wait_calls(), before);
  assert_int_equal(record_field("unreplicated"), -1);
  stop_clean(w);
  rtq_client_free(c);
  rtq_test_cmd_ok(pc, "FLUSHALL", NULL);
}

/* Runs a v2 script call on the primary; frees a. (asserts) */
static redisReply *run2(rtq_argv *a) {
  redisReply *r = NULL;
  if (rtq_script2_run(pc, a, &r) != 0) fail_msg("script: %s", rtq_conn_errstr(pc));
  rtq_argv_destroy(a);
  return r;
}

/* Task id of queue running under a worker that died: created, taken by
 * "w-dead" (its heartbeat record names the queue), and the worker's
 * heartbeat two minutes old. The broker's recovery phase redelivers it, a
 * write it then WAITs for. */
static void dead_worker_task(const char *queue, const char *id) {
  rtq_client *c = client(-1, 0);
  rtq_task_options o = {.id = id, .queue = queue};
  assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, &o, NULL, NULL), 0);
  rtq_client_free(c);
  rtq_argv a;
  rtq_argv_init(&a);
  char served[RTQ_NAME_MAX + 4];
  snprintf(served, sizeof served, "%s:1", queue);
  rtq__field2 f[2] = {{"host", "test"}, {"queues", served}};
  assert_int_equal(rtq__call2_heartbeat(&a, &K, false, "w-dead", 30000, f, 2), 0);
  freeReplyObject(run2(&a));
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_take(&a, &K, false, queue, "w-dead", 300000, 1, 1 << 20), 0);
  redisReply *r = run2(&a);
  rtq__claim2_entry e[1];
  int n = 0;
  assert_int_equal(rtq__reply2_claim(r, e, 1, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(e[0].kind, RTQ__CLAIM2_OK);
  freeReplyObject(r);
  assert_true(is_status_in(queue, id, "running"));
  uint64_t now = 0;
  assert_int_equal(rtq_conn_time_ms(pc, &now), 0);
  char score[32];
  snprintf(score, sizeof score, "%llu", (unsigned long long)(now - 120000));
  rtq_test_cmd_int(pc, "ZADD", rtq_keys2_workers(&K).s, score, "w-dead", NULL);
}

/* A counter of the broker's hash {ns}:broker (0 when absent). */
static long long broker_stat(const char *counter) {
  char *v = rtq_test_cmd_str(pc, "HGET", rtq_keys2_broker(&K).s, counter, NULL);
  long long n = v != NULL ? atoll(v) : 0;
  free(v);
  return n;
}

static int broker_once(const char *log) {
  pid_t b = cluster_spawn("broker/rtq-broker",
                          (const char *[]){"--redis", rtq_test_redis_url_of(primary), "--once", "--ignore-lease",
                                           "--heartbeat-ttl", "5s", "--wait-replicas", "1", "--wait-timeout", "300",
                                           NULL},
                          log);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(b, 20000, &status), 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_wait_replicas_broker_outcomes(void **state) {
  (void)state;
  char log[512];
  snprintf(log, sizeof log, "%s/broker.log", rtq_test_redis_dir(primary));

  dead_worker_task("b1", "b-1");
  long before = wait_calls();
  assert_int_equal(broker_once(log), 0);
  assert_true(wait_calls() > before);
  assert_true(is_status_in("b1", "b-1", "pending")); /* redelivered */
  assert_false(file_has(log, "fewer replicas"));

  /* The replica stopped: the sweep still ends within the timeout, and
   * says and counts what was not acknowledged. */
  assert_int_equal(rtq_test_redis_sigstop(replica), 0);
  dead_worker_task("b2", "b-2");
  uint64_t t0 = rtq__mono_ms();
  assert_int_equal(broker_once(log), 0);
  assert_true(rtq__mono_ms() - t0 < 5000);
  assert_true(is_status_in("b2", "b-2", "pending"));
  assert_true(file_has(log, "task outcomes written, but fewer replicas than asked acknowledged them"));
  assert_true(broker_stat("unreplicated") >= 1);
  assert_int_equal(rtq_test_redis_sigcont(replica), 0);
}

/* After each test: the replica runs again (a failed test may have left
 * it stopped) and the data is gone. */
static int resume(void **state) {
  (void)state;
  rtq_test_kill(rtq_test_redis_pid(replica), SIGCONT);
  rtq_test_cmd_ok(pc, "FLUSHALL", NULL);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_wait_replicas_creates_wait_and_report_the_replica, resume),
      cmocka_unit_test_teardown(test_wait_replicas_cost_per_create, resume),
      cmocka_unit_test_teardown(test_wait_replicas_timeout_not_below_command_timeout_is_refused, resume),
      cmocka_unit_test_teardown(test_wait_replicas_stopped_replica_returns_within_the_timeout, resume),
      cmocka_unit_test_teardown(test_wait_replicas_worker_completions, resume),
      cmocka_unit_test_teardown(test_wait_replicas_broker_outcomes, resume),
      cmocka_unit_test_teardown(test_wait_replicas_worker_without_the_option_never_waits, resume),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
