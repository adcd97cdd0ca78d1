/*
 * test_acl.c - the ACL users of docs/OPERATIONS.md, on a real redis-server 7.
 *
 * The test reads protocol 1's `ACL SETUSER` lines from docs/OPERATIONS.md itself and
 * runs them word for word, so the document cannot drift from what works.
 * Then, with each process logged in as its role:
 *
 *   happy path   a broker (rtq-broker), two workers (rtq-worker, the second
 *                one after the first is killed) and a producer (rtq-producer,
 *                through librtq) run every step of the protocol: create,
 *                claim, progress, finish, fail, retry, cancel while pending
 *                and while running, a timeout in the worker and one in the
 *                broker's backstop, a delayed task promoted, a poison
 *                envelope dead-lettered, a dead worker's task recovered, an
 *                expired task forgotten by the cleanup, waiting, events,
 *                list, stats and workers. Afterwards ACL LOG holds no denial except
 *                CONFIG GET (the optional maxmemory-policy check, which the
 *                roles deliberately do not get).
 *   limits       a producer cannot FLUSHALL, read or write keys outside the
 *                namespace (also not from inside a script), use other
 *                channels, KEYS or CONFIG SET; a worker or the broker
 *                cannot FLUSHALL or leave the namespace either; the
 *                monitor reads everything rtq shows but writes nothing and
 *                runs no script.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "keys.h"
#include "test_acl_util.h"
#include "rtq/client.h"

#define WAIT_MS 20000

static char outdir[256];

static int group_setup(void **state) {
  (void)state;
  assert_int_equal(acl_run_document(1), 4);
  snprintf(outdir, sizeof outdir, "%s/exports", rtq_test_redis_dir(rtq_test_redis_default()));
  assert_int_equal(mkdir(outdir, 0755), 0);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  rtq_conn_free(acl_admin);
  return 0;
}

/* ---- processes --------------------------------------------------------- */

static const char *log_path(const char *name, char *buf, size_t cap) {
  const char *verbose = getenv("RTQ_TEST_VERBOSE");
  if (verbose != NULL && verbose[0] == '1') return NULL;
  snprintf(buf, cap, "%s/%s.log", rtq_test_redis_dir(rtq_test_redis_default()), name);
  return buf;
}

static pid_t start_broker(void) {
  char bin[512], log[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  const char *argv[] = {bin, "--redis", user("rtq-broker")->url, "--sweep-interval", "100ms",
                        "--heartbeat-ttl", "2s", "--lease-ttl", "1500ms", "--timeout-grace", "200ms",
                        "--cleanup-interval", "1", NULL};
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = log_path("broker", log, sizeof log)};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  return pid;
}

static pid_t start_worker(const char *name) {
  char bin[512], plugin[512], log[512];
  assert_non_null(rtq_test_bin_path("worker/rtq-worker", bin, sizeof bin));
  assert_non_null(rtq_test_bin_path("examples/examples.so", plugin, sizeof plugin));
  const char *argv[] = {bin, "--redis", user("rtq-worker")->url, "--plugin", plugin,
                        "--demo-handlers", "--heartbeat-interval", "200ms", "--heartbeat-ttl", "2s",
                        "--shutdown-grace", "1s", NULL};
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = log_path(name, log, sizeof log)};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  return pid;
}

static rtq_client *client_as(const char *name) {
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = user(name)->url;
  rtq_client *c = NULL;
  if (rtq_client_new(&o, &c) != 0) fail_msg("client as %s: %s", name, rtq_client_errstr(NULL));
  return c;
}

/* ---- tasks ------------------------------------------------------------- */

static void create(rtq_client *c, const char *name, const char *json, const rtq_task_options *o,
                   char id[RTQ_TASK_ID_SIZE]) {
  rtq_args *a = NULL;
  assert_int_equal(rtq_args_from_json(json, &a, NULL, 0), 0);
  int rc = rtq_create_task(c, name, a, o, id, NULL);
  rtq_args_free(a);
  if (rc != 0) fail_msg("create %s: %s", name, rtq_client_errstr(c));
}

static rtq_status ends(rtq_client *c, const char *id) {
  rtq_task *t = NULL;
  int rc = rtq_wait_for_task(c, id, WAIT_MS, &t);
  if (rc != 0) fail_msg("wait %s: %s (%s)", id, rtq_err_name(rc), rtq_client_errstr(c));
  rtq_status s = t->status;
  rtq_task_free(t);
  return s;
}

static rtq_status status_of(rtq_client *c, const char *id) {
  rtq_task *t = NULL;
  rtq_status s = (rtq_status)-1;
  if (rtq_get_task(c, id, &t) == 0) s = t->status;
  rtq_task_free(t);
  return s;
}

/* The last run of schedule id as rtq_schedule_list shows it; 0 for none. */
static uint64_t last_run_of(rtq_client *c, const char *id) {
  rtq_schedule *l = NULL;
  size_t n = 0;
  uint64_t last = 0;
  assert_int_equal(rtq_schedule_list(c, &l, &n), 0);
  for (size_t i = 0; i < n; i++)
    if (strcmp(l[i].id, id) == 0) last = l[i].last_run_ms;
  rtq_schedules_free(l, n);
  return last;
}

static bool is_running(rtq_client *c, const char *id) {
  return status_of(c, id) == RTQ_STATUS_RUNNING;
}

/* A broker counter from P:stats (docs/BROKER.md), 0 while unset. */
static long long broker_stat(const char *counter) {
  char field[64];
  snprintf(field, sizeof field, "broker|%s", counter);
  char *v = rtq_test_cmd_str(acl_admin, "HGET", "rtq:stats", field, NULL);
  long long n = v != NULL ? atoll(v) : 0;
  free(v);
  return n;
}

static long long admin_int(const char *cmd, const char *key) {
  return rtq_test_cmd_int(acl_admin, cmd, key, NULL);
}

static void test_acl_roles_run_the_whole_flow(void **state) {
  (void)state;
  rtq_test_cmd_ok(acl_admin, "ACL", "LOG", "RESET", NULL);
  pid_t broker = start_broker();
  pid_t worker_a = start_worker("worker-a");
  rtq_client *p = client_as("rtq-producer");
  rtq_subscription *sub = NULL;
  assert_int_equal(rtq_events_subscribe(p, &sub), 0);
  char json[600], ok_id[RTQ_TASK_ID_SIZE], fail_id[RTQ_TASK_ID_SIZE], run_id[RTQ_TASK_ID_SIZE],
      pend_id[RTQ_TASK_ID_SIZE], late_id[RTQ_TASK_ID_SIZE], delay_id[RTQ_TASK_ID_SIZE],
      lost_id[RTQ_TASK_ID_SIZE];

  /* create, claim, progress, finish (the export example) */
  snprintf(json, sizeof json, "{\"records\": 250, \"output_dir\": \"%s\"}", outdir);
  create(p, "examples.export_data", json, NULL, ok_id);
  assert_int_equal(ends(p, ok_id), RTQ_STATUS_COMPLETED);
  char *ev = NULL;
  assert_int_equal(rtq_subscription_next(sub, WAIT_MS, &ev), 0);
  assert_non_null(strstr(ev, "\"id\""));
  free(ev);

  /* a failure, then a retry of it */
  create(p, "rtq.fail", "{}", NULL, fail_id);
  assert_int_equal(ends(p, fail_id), RTQ_STATUS_FAILED);
  assert_int_equal(rtq_retry_task(p, fail_id), 0);
  assert_int_equal(ends(p, fail_id), RTQ_STATUS_FAILED);

  /* cancel while running; a timeout */
  create(p, "rtq.sleep", "{\"seconds\": 30}", NULL, run_id);
  RTQ_TEST_WAIT_FOR(is_running(p, run_id), WAIT_MS);
  int requested = 0;
  assert_int_equal(rtq_cancel_task(p, run_id, &requested), 0);
  assert_int_equal(requested, 1);
  assert_int_equal(ends(p, run_id), RTQ_STATUS_CANCELLED);
  rtq_task_options o = {.timeout_ms = 300};
  create(p, "rtq.sleep", "{\"seconds\": 30}", &o, late_id);
  assert_int_equal(ends(p, late_id), RTQ_STATUS_TIMEOUT);

  /* a delayed task: cancelled while pending, and one the broker promotes */
  rtq_task_options d = {.delay_ms = 60000};
  create(p, "rtq.echo", "{}", &d, pend_id);
  assert_int_equal(rtq_cancel_task(p, pend_id, &requested), 0);
  assert_int_equal(requested, 0);
  assert_int_equal(status_of(p, pend_id), RTQ_STATUS_CANCELLED);
  d.delay_ms = 300;
  create(p, "rtq.echo", "{\"x\": 1}", &d, delay_id);
  assert_int_equal(ends(p, delay_id), RTQ_STATUS_COMPLETED);

  /* a poison envelope is dead-lettered by the worker */
  rtq_test_cmd_int(acl_admin, "LPUSH", "rtq:queue:default", "not msgpack", NULL);
  RTQ_TEST_WAIT_FOR(admin_int("LLEN", "rtq:dead") == 1, WAIT_MS);

  /* list, stats, workers */
  rtq_task_list *l = NULL;
  assert_int_equal(rtq_list_tasks(p, NULL, &l), 0);
  assert_true(l->count >= 6);
  rtq_task_list_free(l);
  assert_int_equal(acl_denials(), 0); /* the whole flow so far */
  /* The worker's finish calls wrote the run-time histogram (runs that
   * completed, failed, were cancelled or timed out). */
  assert_true(admin_int("HLEN", "rtq:runtime:default") >= 2);
  rtq_stats *st = NULL;
  assert_int_equal(rtq_get_stats(p, &st), 0);
  assert_true(st->by_status[RTQ_STATUS_COMPLETED] >= 2);
  /* A producer may not read the worker registry: stats says so, and the
   * worker list is refused (the monitor lists them). */
  assert_true(st->workers_hidden);
  rtq_stats_free(st);
  rtq_alive_workers *aw = NULL;
  assert_int_equal(rtq_list_workers(p, &aw), RTQ_EREDIS);
  assert_non_null(strstr(rtq_client_errstr(p), "NOPERM"));
  rtq_test_cmd_ok(acl_admin, "ACL", "LOG", "RESET", NULL); /* those refusals were the point */
  rtq_client *m = client_as("rtq-monitor");
  assert_int_equal(rtq_list_workers(m, &aw), 0);
  assert_int_equal(aw->count, 1);
  rtq_alive_workers_free(aw);
  assert_int_equal(rtq_get_stats(m, &st), 0);
  assert_false(st->workers_hidden);
  assert_int_equal(st->workers_alive, 1);
  rtq_stats_free(st);
  rtq_client_free(m);

  /* an expired task is forgotten by the broker's cleanup (forget.lua) */
  rtq_task_options short_ttl = {.result_ttl_s = 1};
  create(p, "rtq.echo", "{}", &short_ttl, ok_id);
  assert_int_equal(ends(p, ok_id), RTQ_STATUS_COMPLETED);
  RTQ_TEST_WAIT_FOR(broker_stat("forgotten") >= 1, WAIT_MS);

  /* A schedule: the producer adds it, the broker leader enqueues its runs
   * (schedules.c, through create.lua), a worker runs them, the monitor
   * lists it. */
  assert_int_equal(rtq_schedule_add(p, "acl-tick", "@every 1s", "rtq.echo", NULL, NULL), 0);
  RTQ_TEST_WAIT_FOR(broker_stat("schedule_runs") >= 1, WAIT_MS);
  m = client_as("rtq-monitor");
  RTQ_TEST_WAIT_FOR(last_run_of(m, "acl-tick") > 0, WAIT_MS);
  char cron_id[RTQ_TASK_ID_SIZE];
  snprintf(cron_id, sizeof cron_id, "cron:acl-tick:%llu", (unsigned long long)last_run_of(m, "acl-tick"));
  rtq_client_free(m);
  assert_int_equal(ends(p, cron_id), RTQ_STATUS_COMPLETED);
  assert_int_equal(rtq_schedule_remove(p, "acl-tick"), 0);

  /* A worker goes silent with two tasks running. The broker times out the
   * one past its deadline (expire_running.lua: the deadline plus grace,
   * 1.2 s, comes before the heartbeat TTL, 2 s, runs out) and, once the
   * worker counts as dead, puts the other back on its queue
   * (recover.lua), where the next worker completes it. */
  create(p, "rtq.sleep", "{\"seconds\": 3}", NULL, lost_id);
  rtq_task_options deadline = {.timeout_ms = 1000};
  create(p, "rtq.sleep", "{\"seconds\": 30}", &deadline, late_id);
  RTQ_TEST_WAIT_FOR(is_running(p, lost_id) && is_running(p, late_id), WAIT_MS);
  assert_int_equal(rtq_test_kill(worker_a, SIGSTOP), 0);
  assert_int_equal(ends(p, late_id), RTQ_STATUS_TIMEOUT);
  RTQ_TEST_WAIT_FOR(broker_stat("timeouts") >= 1, WAIT_MS); /* written after the sweep */
  RTQ_TEST_WAIT_FOR(broker_stat("recovered") >= 1, WAIT_MS);
  assert_int_equal(rtq_test_kill(worker_a, SIGKILL), 0);
  assert_int_equal(rtq_test_wait_exit(worker_a, 5000, NULL), 0);
  pid_t worker_b = start_worker("worker-b");
  assert_int_equal(ends(p, lost_id), RTQ_STATUS_COMPLETED);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(p, lost_id, &t), 0);
  assert_int_equal(t->attempts, 2);
  rtq_task_free(t);

  int status = 0;
  assert_int_equal(rtq_test_terminate(worker_b, SIGTERM, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(rtq_test_terminate(broker, SIGTERM, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

  /* The history cap (trim.lua, ZREMRANGEBYRANK) within the broker's grants. */
  assert_true(rtq_test_cmd_int(acl_admin, "ZCARD", "rtq:history", NULL) >= 2);
  char bin[512], log[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  const char *once[] = {bin, "--redis", user("rtq-broker")->url, "--once", "--max-task-history", "1",
                        NULL};
  rtq_test_spawn_options so = {.path = bin, .argv = once, .output_path = log_path("trim", log, sizeof log)};
  pid_t trim = rtq_test_spawn_ex(&so);
  assert_true(trim > 0);
  assert_int_equal(rtq_test_wait_exit(trim, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(rtq_test_cmd_int(acl_admin, "ZCARD", "rtq:history", NULL), 1);
  assert_true(broker_stat("trimmed") >= 1);
  rtq_subscription_free(sub);
  rtq_client_free(p);
  assert_int_equal(acl_denials(), 0);
}

/* ---- the limits ---------------------------------------------------------- */

static void test_acl_producer_stays_in_its_namespace(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(user("rtq-producer")->url);
  denied(c, "FLUSHALL", NULL);
  denied(c, "FLUSHDB", NULL);
  denied(c, "SET", "other:key", "x", NULL);
  denied(c, "GET", "other:key", NULL);
  denied(c, "DEL", "session:42", NULL);
  denied(c, "KEYS", "*", NULL);
  denied(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru", NULL);
  denied(c, "SHUTDOWN", NULL);
  denied(c, "PUBLISH", "other-channel", "x", NULL);
  denied(c, "EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "other:key", NULL);
  denied(c, "EVAL", "return redis.call('SET', 'other:key', 'x')", "0", NULL);
  denied(c, "EVAL", "return redis.call('FLUSHALL')", "0", NULL);
  /* Its own namespace works. */
  assert_int_equal(rtq_test_cmd_int(c, "LLEN", "rtq:queue:default", NULL), 0);
  rtq_conn_free(c);

  c = rtq_test_conn_new(user("rtq-worker")->url);
  denied(c, "FLUSHALL", NULL);
  denied(c, "SET", "other:key", "x", NULL);
  denied(c, "CONFIG", "SET", "appendonly", "no", NULL);
  rtq_conn_free(c);

  c = rtq_test_conn_new(user("rtq-broker")->url);
  denied(c, "FLUSHALL", NULL);
  denied(c, "GET", "other:key", NULL);
  rtq_conn_free(c);
}

/* The raw attacks a key pattern can stop (docs/SECURITY.md): a producer
 * halting the broker by taking its lease, or keeping a dead worker
 * "alive" with a heartbeat in the future, or touching a worker's claimed
 * tasks; a worker taking the lease. Each is refused directly and from
 * inside a script. */
static void test_acl_keys_stop_the_raw_attacks(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(user("rtq-producer")->url);
  denied(c, "SET", "rtq:lease", "attacker", "PX", "30000", NULL);
  denied(c, "GET", "rtq:lease", NULL);
  denied(c, "ZADD", "rtq:workers", "99999999999999", "w-dead", NULL);
  denied(c, "ZRANGE", "rtq:workers", "0", "-1", NULL);
  denied(c, "HSET", "rtq:worker:w-dead", "host", "x", NULL);
  denied(c, "LPUSH", "rtq:processing:w-dead", "x", NULL);
  denied(c, "LRANGE", "rtq:processing:w-dead", "0", "-1", NULL);
  denied(c, "ZADD", "rtq:deadlines", "99999999999999", "t1", NULL);
  denied(c, "LPUSH", "rtq:dead", "x", NULL);
  denied(c, "EVAL", "return redis.call('SET', KEYS[1], 'attacker', 'PX', 30000)", "1", "rtq:lease",
         NULL);
  denied(c, "EVAL", "return redis.call('ZADD', KEYS[1], 99999999999999, 'w-dead')", "1",
         "rtq:workers", NULL);
  rtq_conn_free(c);

  c = rtq_test_conn_new(user("rtq-worker")->url);
  denied(c, "SET", "rtq:lease", "attacker", "PX", "30000", NULL);
  denied(c, "GET", "rtq:lease", NULL);
  denied(c, "EVAL", "return redis.call('SET', KEYS[1], 'attacker', 'PX', 30000)", "1", "rtq:lease",
         NULL);
  rtq_conn_free(c);

  /* The monitor still sees both. */
  c = rtq_test_conn_new(user("rtq-monitor")->url);
  freeReplyObject(rtq_test_command(c, "GET", "rtq:lease", NULL));
  freeReplyObject(rtq_test_command(c, "ZRANGE", "rtq:workers", "0", "-1", NULL));
  rtq_conn_free(c);
  assert_int_equal(rtq_test_cmd_int(acl_admin, "EXISTS", "rtq:worker:w-dead", NULL), 0);
}

static void test_acl_monitor_reads_but_never_writes(void **state) {
  (void)state;
  rtq_test_cmd_ok(acl_admin, "ACL", "LOG", "RESET", NULL);
  rtq_client *p = client_as("rtq-producer");
  char id[RTQ_TASK_ID_SIZE];
  create(p, "rtq.echo", "{}", NULL, id);
  rtq_client_free(p);

  /* What rtq list / status / stats / workers do, as the monitor. */
  rtq_client *m = client_as("rtq-monitor");
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(m, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);
  rtq_task_list *l = NULL;
  assert_int_equal(rtq_list_tasks(m, NULL, &l), 0);
  rtq_task_list_free(l);
  rtq_stats *st = NULL;
  assert_int_equal(rtq_get_stats(m, &st), 0);
  rtq_stats_free(st);
  rtq_alive_workers *aw = NULL;
  assert_int_equal(rtq_list_workers(m, &aw), 0);
  rtq_alive_workers_free(aw);
  const char *queues[] = {"default"};
  rtq_run_times *rt = NULL;
  assert_int_equal(rtq_get_run_times(m, queues, 1, &rt), 0); /* what /metrics reads */
  rtq_run_times_free(rt);
  rtq_subscription *sub = NULL;
  assert_int_equal(rtq_events_subscribe(m, &sub), 0);
  rtq_subscription_free(sub);
  assert_int_equal(acl_denials(), 0);
  /* ... but it creates and cancels nothing. */
  char other[RTQ_TASK_ID_SIZE];
  assert_int_not_equal(rtq_create_task(m, "rtq.echo", NULL, NULL, other, NULL), 0);
  assert_int_not_equal(rtq_cancel_task(m, id, NULL), 0);
  rtq_client_free(m);

  /* The redis-cli monitoring commands of docs/OPERATIONS.md. */
  rtq_conn *c = rtq_test_conn_new(user("rtq-monitor")->url);
  assert_int_equal(rtq_test_cmd_int(c, "LLEN", "rtq:queue:default", NULL), 1);
  assert_int_equal(rtq_test_cmd_int(c, "ZCARD", "rtq:status:running", NULL), 0);
  freeReplyObject(rtq_test_command(c, "LRANGE", "rtq:dead", "0", "9", NULL));
  freeReplyObject(rtq_test_command(c, "ZRANGE", "rtq:workers", "0", "-1", "WITHSCORES", NULL));
  /* The names above are the ones docs/OPERATIONS.md tells operators to
   * type; the task key comes from the key schema. */
  rtq_keys ks;
  assert_int_equal(rtq_keys_init(&ks, "rtq", false), 0);
  rtq_key task_key = rtq_keys_task(&ks, id);
  const char *key = task_key.s;
  redisReply *r = rtq_test_command(c, "HGETALL", key, NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_true(r->elements > 0);
  freeReplyObject(r);
  denied(c, "HSET", key, "status", "completed", NULL);
  denied(c, "DEL", "rtq:queue:default", NULL);
  denied(c, "LPUSH", "rtq:queue:default", "x", NULL);
  denied(c, "EVAL", "return 1", "0", NULL);
  denied(c, "FLUSHALL", NULL);
  denied(c, "GET", "other:key", NULL);
  rtq_conn_free(c);
}

/* A worker user whose ACL predates P:runtime:* (the worker's line of
 * docs/OPERATIONS.md without ~rtq:runtime:*) still finishes its tasks:
 * finish writes the run times last and through pcall, so only the
 * histogram misses them. */
static void test_acl_worker_without_runtime_pattern_still_finishes(void **state) {
  (void)state;
  char path[512], line[2048];
  snprintf(path, sizeof path, "%s/docs/OPERATIONS.md", getenv("RTQ_SOURCE_DIR"));
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  rtq_argv a;
  rtq_argv_init(&a);
  while (a.argc == 0 && fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "ACL SETUSER rtq-worker ", 23) != 0) continue;
    rtq_argv_add_str(&a, "ACL");
    rtq_argv_add_str(&a, "SETUSER");
    rtq_argv_add_str(&a, "rtq-worker");
    rtq_argv_add_str(&a, "resetkeys");
    for (char *save = NULL, *w = strtok_r(line, " \r\n", &save); w != NULL; w = strtok_r(NULL, " \r\n", &save))
      if ((w[0] == '~' || w[0] == '%') && strcmp(w, "~rtq:runtime:*") != 0) rtq_argv_add_str(&a, w);
  }
  fclose(f);
  assert_true(a.argc > 4);
  redisReply *r = rtq_test_command_argv(acl_admin, &a);
  assert_int_equal(r->type, REDIS_REPLY_STATUS);
  freeReplyObject(r);
  rtq_argv_destroy(&a);

  rtq_test_cmd_int(acl_admin, "DEL", "rtq:runtime:default", NULL);
  pid_t worker = start_worker("worker-old-acl");
  rtq_client *p = client_as("rtq-producer");
  char id[RTQ_TASK_ID_SIZE];
  create(p, "rtq.echo", "{}", NULL, id);
  assert_int_equal(ends(p, id), RTQ_STATUS_COMPLETED);
  assert_int_equal(admin_int("EXISTS", "rtq:runtime:default"), 0);
  rtq_client_free(p);
  rtq_test_terminate(worker, SIGTERM, WAIT_MS, NULL);
  rtq_test_cmd_ok(acl_admin, "ACL", "SETUSER", "rtq-worker", "~rtq:runtime:*", NULL);
  rtq_test_cmd_ok(acl_admin, "ACL", "LOG", "RESET", NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acl_roles_run_the_whole_flow),
      cmocka_unit_test(test_acl_producer_stays_in_its_namespace),
      cmocka_unit_test(test_acl_keys_stop_the_raw_attacks),
      cmocka_unit_test(test_acl_monitor_reads_but_never_writes),
      cmocka_unit_test(test_acl_worker_without_runtime_pattern_still_finishes),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
