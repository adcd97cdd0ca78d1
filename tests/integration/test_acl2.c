/*
 * test_acl2.c - the ACL users of docs/OPERATIONS.md section 3, on a real
 * redis-server 7.
 *
 * The test reads the lines from docs/OPERATIONS.md itself and runs them
 * word for word (the four users and the admin's mark of the namespace), so
 * the document cannot drift from what works. Then, with each process logged in as its role and given
 * --protocol 2 explicitly:
 *
 *   whole flow   a broker (rtq-broker), two workers (rtq-worker, the second
 *                one after the first is stopped) and a producer
 *                (rtq-producer, through librtq) run every step: create,
 *                take, progress, finish, fail, retry, cancel while pending
 *                and while running, a timeout in the worker and one in the
 *                broker's backstop, a delayed task promoted, a bad entry in
 *                a queue dead-lettered, a stopped worker's task recovered,
 *                a killed worker's task recovered after the worker role
 *                removed its entry and record (the broker's SCAN audit),
 *                an expired task pruned from its done list, a schedule,
 *                pause and resume, a queue limit, waiting, events, list,
 *                stats and dead letters; the monitor reads workers, stats,
 *                loads, run times, throughput, dead letters and events.
 *                ACL LOG then holds no denial but CONFIG GET (the optional
 *                eviction check).
 *   limits       no role can FLUSHALL, FLUSHDB, KEYS, CONFIG SET or
 *                SHUTDOWN, touch a key or channel outside the namespace
 *                (also not from inside a script, with the key in KEYS or
 *                named by the script itself), or write the mark.
 *   raw attacks  what key patterns can stop (docs/SECURITY.md): a producer
 *                taking the broker's lease, keeping a dead worker "alive",
 *                touching a worker's processing list or record; a worker
 *                taking the lease; each also from inside a script. The
 *                per-queue patterns ({rtq:*}:t:* ...) reach no namespace
 *                key ({rtq}:lease) and no other namespace ({rtq2:Q}:...).
 *   monitor      reads what rtq shows, writes nothing, runs no script;
 *                the dashboard (rtq-web --read-only) runs as the monitor.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "test_acl_util.h"
#include "test_web_util.h"

#define WAIT_MS 20000
#define AUTH "Authorization: Bearer " WEB_TOKEN "\r\n"

static rtq_keys2 K2;

static int group_setup(void **state) {
  (void)state;
  assert_int_equal(acl_run_document(), 4);
  assert_int_equal(rtq_keys2_init(&K2, "rtq"), 0);
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

static pid_t spawn(const char *name, const char *rel, const char **argv) {
  char bin[512], log[512];
  assert_non_null(rtq_test_bin_path(rel, bin, sizeof bin));
  argv[0] = bin;
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = log_path(name, log, sizeof log)};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  return pid;
}

static pid_t start_broker(void) {
  const char *argv[] = {NULL, "--protocol", "2", "--redis", user("rtq-broker")->url, "--sweep-interval",
                        "100ms", "--heartbeat-ttl", "2s", "--lease-ttl", "1500ms", "--timeout-grace", "200ms",
                        "--cleanup-interval", "1", NULL};
  return spawn("broker", "broker/rtq-broker", argv);
}

static pid_t start_worker(const char *name) {
  char plugin[512];
  assert_non_null(rtq_test_bin_path("examples/examples.so", plugin, sizeof plugin));
  const char *argv[] = {NULL, "--protocol", "2", "--redis", user("rtq-worker")->url, "--plugin", plugin,
                        "--demo-handlers", "--queue", "default", "--queue", "short", "--heartbeat-interval", "200ms", "--heartbeat-ttl", "2s",
                        "--shutdown-grace", "1s", NULL};
  return spawn(name, "worker/rtq-worker", argv);
}

static rtq_client *client_as(const char *name) {
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = user(name)->url;
  o.protocol = 2;
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
  if (rc != 0) {
    acl_denials(); /* prints what a role was refused, the likely cause */
    fail_msg("wait %s: %s (%s)", id, rtq_err_name(rc), rtq_client_errstr(c));
  }
  rtq_status s = t->status;
  rtq_task_free(t);
  return s;
}

/* Fails with the client's error unless rc is 0. */
#define OK(c, call)                                                                            \
  do {                                                                                         \
    int rc_ = (call);                                                                          \
    if (rc_ != 0) fail_msg("%s: %s (%s)", #call, rtq_err_name(rc_), rtq_client_errstr(c));  \
  } while (0)

static rtq_status status_of(rtq_client *c, const char *id) {
  rtq_task *t = NULL;
  rtq_status s = (rtq_status)-1;
  if (rtq_get_task(c, id, &t) == 0) s = t->status;
  rtq_task_free(t);
  return s;
}

static bool is_running(rtq_client *c, const char *id) {
  return status_of(c, id) == RTQ_STATUS_RUNNING;
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

/* A broker counter of {rtq}:broker (docs/BROKER.md), 0 while unset. */
static long long broker_stat(const char *counter) {
  char *v = rtq_test_cmd_str(acl_admin, "HGET", rtq_keys2_broker(&K2).s, counter, NULL);
  long long n = v != NULL ? atoll(v) : 0;
  free(v);
  return n;
}

/* The id of worker process pid in {rtq}:workers, read as the admin. */
static bool worker_id_of(pid_t pid, char *out, size_t cap) {
  char needle[32];
  snprintf(needle, sizeof needle, "-%d-", (int)pid);
  out[0] = '\0';
  redisReply *r = rtq_test_command(acl_admin, "ZRANGE", rtq_keys2_workers(&K2).s, "0", "-1", NULL);
  for (size_t i = 0; i < r->elements; i++)
    if (strstr(r->element[i]->str, needle) != NULL) snprintf(out, cap, "%s", r->element[i]->str);
  freeReplyObject(r);
  return out[0] != '\0';
}

static long long admin_len(rtq_key2 k) {
  return rtq_test_cmd_int(acl_admin, "LLEN", k.s, NULL);
}

static void test_acl2_roles_run_the_whole_flow(void **state) {
  (void)state;
  rtq_test_cmd_ok(acl_admin, "ACL", "LOG", "RESET", NULL);
  pid_t broker = start_broker();
  pid_t worker_a = start_worker("worker-a");
  rtq_client *p = client_as("rtq-producer");
  char ok_id[RTQ_TASK_ID_SIZE], fail_id[RTQ_TASK_ID_SIZE], run_id[RTQ_TASK_ID_SIZE],
      pend_id[RTQ_TASK_ID_SIZE], late_id[RTQ_TASK_ID_SIZE], delay_id[RTQ_TASK_ID_SIZE],
      lost_id[RTQ_TASK_ID_SIZE];

  /* create, take, progress, finish; the producer hears the events */
  create(p, "rtq.echo", "{}", NULL, ok_id); /* registers the queue */
  assert_int_equal(ends(p, ok_id), RTQ_STATUS_COMPLETED);
  rtq_subscription *sub = NULL;
  OK(p, rtq_events_subscribe(p, &sub));
  create(p, "rtq.progress", "{\"count\": 3}", NULL, ok_id);
  assert_int_equal(ends(p, ok_id), RTQ_STATUS_COMPLETED);
  char *ev = NULL;
  assert_int_equal(rtq_subscription_next(sub, WAIT_MS, &ev), 0);
  assert_non_null(strstr(ev, "\"id\""));
  free(ev);

  /* a failure, then a retry of it */
  create(p, "rtq.fail", "{}", NULL, fail_id);
  assert_int_equal(ends(p, fail_id), RTQ_STATUS_FAILED);
  OK(p, rtq_retry_task(p, fail_id));
  assert_int_equal(ends(p, fail_id), RTQ_STATUS_FAILED);

  /* cancel while running; a timeout in the worker */
  create(p, "rtq.sleep", "{\"seconds\": 30}", NULL, run_id);
  RTQ_TEST_WAIT_FOR(is_running(p, run_id), WAIT_MS);
  int requested = 0;
  OK(p, rtq_cancel_task(p, run_id, &requested));
  assert_int_equal(requested, 1);
  assert_int_equal(ends(p, run_id), RTQ_STATUS_CANCELLED);
  rtq_task_options o = {.timeout_ms = 300};
  create(p, "rtq.sleep", "{\"seconds\": 30}", &o, late_id);
  assert_int_equal(ends(p, late_id), RTQ_STATUS_TIMEOUT);

  /* a delayed task: cancelled while pending, and one the broker promotes */
  rtq_task_options d = {.delay_ms = 60000};
  create(p, "rtq.echo", "{}", &d, pend_id);
  OK(p, rtq_cancel_task(p, pend_id, &requested));
  assert_int_equal(requested, 0);
  assert_int_equal(status_of(p, pend_id), RTQ_STATUS_CANCELLED);
  d.delay_ms = 300;
  create(p, "rtq.echo", "{\"x\": 1}", &d, delay_id);
  assert_int_equal(ends(p, delay_id), RTQ_STATUS_COMPLETED);

  /* an entry that is not an id is dead-lettered by the worker */
  rtq_test_cmd_int(acl_admin, "LPUSH", rtq_keys2_queue(&K2, "default").s, "not an id!", NULL);
  RTQ_TEST_WAIT_FOR(admin_len(rtq_keys2_dead(&K2, "default")) == 1, WAIT_MS);

  /* pause and resume, a limit, as the producer */
  OK(p, rtq_queue_pause(p, "default"));
  OK(p, rtq_queue_resume(p, "default"));
  rtq_queue_limits lim = {.rate = 1000.0, .concurrency = 10};
  OK(p, rtq_queue_limit_set(p, "default", &lim, RTQ_LIMIT_RATE | RTQ_LIMIT_CONCURRENCY));
  create(p, "rtq.echo", "{}", NULL, ok_id);
  assert_int_equal(ends(p, ok_id), RTQ_STATUS_COMPLETED);
  OK(p, rtq_queue_limit_clear(p, "default"));

  assert_int_equal(acl_denials(), 0); /* the whole flow so far */

  /* list, stats, dead letters as the producer */
  rtq_task_list *l = NULL;
  OK(p, rtq_list_tasks(p, NULL, &l));
  assert_true(l->count >= 6);
  assert_true(l->running_hidden); /* the workers' lists are not the producer's */
  rtq_task_list_free(l);
  rtq_dead_letters *dl = NULL;
  OK(p, rtq_dead_list(p, 0, 10, &dl));
  assert_int_equal(dl->count, 1);
  rtq_dead_letters_free(dl);
  rtq_stats *st = NULL;
  OK(p, rtq_get_stats(p, &st));
  assert_true(st->by_status[RTQ_STATUS_COMPLETED] >= 3);
  /* A producer may not read the worker registry: list and stats say so,
   * and the worker list is refused (the monitor lists them). */
  assert_true(st->workers_hidden);
  rtq_stats_free(st);
  rtq_alive_workers *aw = NULL;
  assert_int_equal(rtq_list_workers(p, &aw), RTQ_EREDIS);
  assert_non_null(strstr(rtq_client_errstr(p), "NOPERM"));
  rtq_test_cmd_ok(acl_admin, "ACL", "LOG", "RESET", NULL); /* those refusals were the point */

  /* The monitor: workers, stats, loads, run times, dead letters, events. */
  rtq_client *m = client_as("rtq-monitor");
  OK(m, rtq_list_workers(m, &aw));
  assert_int_equal(aw->count, 1);
  rtq_alive_workers_free(aw);
  OK(m, rtq_get_stats(m, &st));
  assert_false(st->workers_hidden);
  assert_int_equal(st->workers_alive, 1);
  rtq_stats_free(st);
  const char *queues[] = {"default"};
  rtq_run_times *rt = NULL;
  OK(m, rtq_get_run_times(m, queues, 1, &rt)); /* what /metrics reads */
  rtq_run_times_free(rt);
  OK(m, rtq_dead_list(m, 0, 10, &dl));
  assert_int_equal(dl->count, 1);
  rtq_dead_letters_free(dl);
  OK(m, rtq_list_tasks(m, NULL, &l));
  assert_false(l->running_hidden);
  rtq_task_list_free(l);
  rtq_subscription *msub = NULL;
  OK(m, rtq_events_subscribe(m, &msub));
  create(p, "rtq.echo", "{}", NULL, ok_id);
  assert_int_equal(rtq_subscription_next(msub, WAIT_MS, &ev), 0);
  free(ev);
  rtq_subscription_free(msub);
  assert_int_equal(ends(p, ok_id), RTQ_STATUS_COMPLETED);
  rtq_client_free(m);

  /* An expired task is pruned from its done list by the broker (prune
   * stops at the oldest task that still exists: a queue of its own). */
  rtq_task_options short_ttl = {.result_ttl_s = 1, .queue = "short"};
  create(p, "rtq.echo", "{}", &short_ttl, ok_id);
  assert_int_equal(ends(p, ok_id), RTQ_STATUS_COMPLETED);
  RTQ_TEST_WAIT_FOR(broker_stat("forgotten") >= 1, WAIT_MS);

  /* A schedule: the producer adds it, the broker leader enqueues its runs
   * (through create.lua), a worker runs them, the monitor lists it. */
  OK(p, rtq_schedule_add(p, "acl-tick", "@every 1s", "rtq.echo", NULL, NULL));
  RTQ_TEST_WAIT_FOR(broker_stat("schedule_runs") >= 1, WAIT_MS);
  m = client_as("rtq-monitor");
  RTQ_TEST_WAIT_FOR(last_run_of(m, "acl-tick") > 0, WAIT_MS);
  char cron_id[RTQ_TASK_ID_SIZE];
  snprintf(cron_id, sizeof cron_id, "cron:acl-tick:%llu", (unsigned long long)last_run_of(m, "acl-tick"));
  rtq_client_free(m);
  assert_int_equal(ends(p, cron_id), RTQ_STATUS_COMPLETED);
  OK(p, rtq_schedule_remove(p, "acl-tick"));

  /* A worker goes silent with two tasks running. The broker's backstop
   * ends the one past its deadline (1 s plus the 200 ms grace, before the
   * 2 s heartbeat TTL runs out) and, once the worker counts as dead,
   * recovery puts the other back on its queue, where the next worker
   * completes it. */
  create(p, "rtq.sleep", "{\"seconds\": 3}", NULL, lost_id);
  rtq_task_options deadline = {.timeout_ms = 1000};
  create(p, "rtq.sleep", "{\"seconds\": 30}", &deadline, late_id);
  RTQ_TEST_WAIT_FOR(is_running(p, lost_id) && is_running(p, late_id), WAIT_MS);
  assert_int_equal(rtq_test_kill(worker_a, SIGSTOP), 0);
  assert_int_equal(ends(p, late_id), RTQ_STATUS_TIMEOUT);
  RTQ_TEST_WAIT_FOR(broker_stat("recovered") >= 1, WAIT_MS);
  assert_int_equal(rtq_test_kill(worker_a, SIGKILL), 0);
  assert_int_equal(rtq_test_wait_exit(worker_a, 5000, NULL), 0);
  pid_t worker_b = start_worker("worker-b");
  assert_int_equal(ends(p, lost_id), RTQ_STATUS_COMPLETED);
  rtq_task *t = NULL;
  OK(p, rtq_get_task(p, lost_id, &t));
  assert_int_equal(t->attempts, 2);
  rtq_task_free(t);

  /* A worker dies mid-task and, logged in as the worker role, its entry
   * and record are removed: the broker's audit (SCAN, as the broker role)
   * still finds its list, and the next worker completes the task. */
  create(p, "rtq.sleep", "{\"seconds\": 2}", NULL, lost_id);
  RTQ_TEST_WAIT_FOR(is_running(p, lost_id), WAIT_MS);
  char wid_b[160];
  RTQ_TEST_WAIT_FOR(worker_id_of(worker_b, wid_b, sizeof wid_b), WAIT_MS);
  /* Stopped first and its entry removed at once, on a connection opened
   * before: were the entry still there one heartbeat TTL after the
   * worker's last beat (a loaded machine can stall the test that long
   * between a kill and the removal), the broker's usual dead-worker
   * recovery would take the list first, and the audit would have nothing
   * to find. */
  rtq_conn *as_worker = rtq_test_conn_new(user("rtq-worker")->url);
  assert_int_equal(rtq_test_kill(worker_b, SIGSTOP), 0);
  /* A heartbeat the worker sent just before it stopped may still land
   * after the first removal: removed again until both stay gone. */
  bool gone = false;
  for (int i = 0; i < 10 && !gone; i++) {
    long long z = rtq_test_cmd_int(as_worker, "ZREM", rtq_keys2_workers(&K2).s, wid_b, NULL);
    long long d = rtq_test_cmd_int(as_worker, "DEL", rtq_keys2_worker(&K2, wid_b).s, NULL);
    if (i == 0) assert_true(z == 1 && d == 1); /* the worker role may write both */
    char *score = rtq_test_cmd_str(acl_admin, "ZSCORE", rtq_keys2_workers(&K2).s, wid_b, NULL);
    gone = score == NULL && rtq_test_cmd_int(acl_admin, "EXISTS", rtq_keys2_worker(&K2, wid_b).s, NULL) == 0;
    free(score);
  }
  assert_true(gone);
  rtq_conn_free(as_worker);
  assert_int_equal(rtq_test_kill(worker_b, SIGKILL), 0);
  assert_int_equal(rtq_test_wait_exit(worker_b, 5000, NULL), 0);
  pid_t worker_c = start_worker("worker-c");
  assert_int_equal(ends(p, lost_id), RTQ_STATUS_COMPLETED);
  OK(p, rtq_get_task(p, lost_id, &t));
  assert_int_equal(t->attempts, 2);
  rtq_task_free(t);
  assert_int_equal(broker_stat("orphans_recovered"), 1);

  int status = 0;
  assert_int_equal(rtq_test_terminate(worker_c, SIGTERM, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_int_equal(rtq_test_terminate(broker, SIGTERM, 10000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* The producer deletes ended tasks (delete.lua). */
  rtq_delete_counts dc = {0};
  OK(p, rtq_tasks_delete(p, RTQ_STATUS_CANCELLED, "default", 0, WAIT_MS, &dc));
  assert_true(dc.deleted >= 2);
  rtq_subscription_free(sub);
  rtq_client_free(p);
  assert_int_equal(acl_denials(), 0);
}

/* ---- what the keys stop ------------------------------------------------- */

static void test_acl2_roles_stay_in_their_namespace(void **state) {
  (void)state;
  const char *roles[] = {"rtq-producer", "rtq-worker", "rtq-broker", "rtq-monitor"};
  for (size_t i = 0; i < 4; i++) {
    rtq_conn *c = rtq_test_conn_new(user(roles[i])->url);
    denied(c, "FLUSHALL", NULL);
    denied(c, "FLUSHDB", NULL);
    denied(c, "SHUTDOWN", NULL);
    denied(c, "KEYS", "*", NULL);
    denied(c, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru", NULL);
    denied(c, "SET", "other:key", "x", NULL);
    denied(c, "GET", "other:key", NULL);
    /* Another namespace whose name starts the same way, and this one's
     * name without its hash tag (protocol 1's old spelling). */
    denied(c, "HGETALL", "{rtq2:default}:t:x", NULL);
    denied(c, "HGETALL", "rtq:task:x", NULL);
    denied(c, "PUBLISH", "other-channel", "x", NULL);
    denied(c, "SPUBLISH", "{rtq2:default}:ev", "x", NULL);
    denied(c, "DEL", "session:42", NULL);
    denied(c, "EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "other:key", NULL);
    /* A key the script names itself, not in KEYS, is checked all the same. */
    denied(c, "EVAL", "return redis.call('SET', 'other:key', 'x')", "0", NULL);
    denied(c, "EVAL", "return redis.call('FLUSHALL')", "0", NULL);
    /* The mark is the admin's: a role that could write it could make
     * every process of the namespace refuse to start. */
    denied(c, "SET", "{rtq}:version", "1", NULL);
    rtq_conn_free(c);
  }
}

/* The raw attacks a key pattern can stop (docs/SECURITY.md), each refused
 * directly and from inside a script. */
static void test_acl2_keys_stop_the_raw_attacks(void **state) {
  (void)state;
  /* The names an attacker would type are the key schema's. */
  assert_string_equal(rtq_keys2_lease(&K2).s, "{rtq}:lease");
  assert_string_equal(rtq_keys2_workers(&K2).s, "{rtq}:workers");
  assert_string_equal(rtq_keys2_worker(&K2, "w-dead").s, "{rtq}:worker:w-dead");
  assert_string_equal(rtq_keys2_processing(&K2, "default", "w-dead").s, "{rtq:default}:p:w-dead");

  rtq_conn *c = rtq_test_conn_new(user("rtq-producer")->url);
  denied(c, "SET", "{rtq}:lease", "attacker", "PX", "30000", NULL);
  denied(c, "GET", "{rtq}:lease", NULL);
  denied(c, "ZADD", "{rtq}:workers", "99999999999999", "w-dead", NULL);
  denied(c, "ZRANGE", "{rtq}:workers", "0", "-1", NULL);
  denied(c, "HSET", "{rtq}:worker:w-dead", "host", "x", NULL);
  denied(c, "LPUSH", "{rtq:default}:p:w-dead", "x", NULL);
  denied(c, "LRANGE", "{rtq:default}:p:w-dead", "0", "-1", NULL);
  denied(c, "LPUSH", "{rtq:default}:dead", "x", NULL);
  denied(c, "HSET", "{rtq}:broker", "last_sweep_at", "99999999999999", NULL);
  /* A queue named like a namespace key does not open it: queue keys need
   * the ':' after the namespace inside the tag. */
  denied(c, "SET", "{rtq}:t:x", "x", NULL);
  denied(c, "HSET", "{rtq}:q", "x", "y", NULL);
  denied(c, "EVAL", "return redis.call('SET', KEYS[1], 'attacker', 'PX', 30000)", "1", "{rtq}:lease", NULL);
  denied(c, "EVAL", "return redis.call('ZADD', KEYS[1], 99999999999999, 'w-dead')", "1", "{rtq}:workers",
         NULL);
  denied(c, "EVAL", "return redis.call('LPUSH', KEYS[1], 'x')", "1", "{rtq:default}:p:w-dead", NULL);
  /* What key patterns cannot stop (docs/SECURITY.md): the producer writes
   * task hashes of its queues. */
  assert_int_equal(rtq_test_cmd_int(c, "HSET", "{rtq:default}:t:acl2-own", "s", "pending", NULL), 1);
  rtq_conn_free(c);
  /* Purging a queue may dead-letter its entries: not the producer's (docs/OPERATIONS.md
   * section 3); refused before anything is written. */
  rtq_client *p = client_as("rtq-producer");
  assert_int_equal(rtq_queue_purge(p, "default", WAIT_MS, NULL), RTQ_EREDIS);
  assert_non_null(strstr(rtq_client_errstr(p), "NOPERM"));
  rtq_client_free(p);

  c = rtq_test_conn_new(user("rtq-worker")->url);
  denied(c, "SET", "{rtq}:lease", "attacker", "PX", "30000", NULL);
  denied(c, "GET", "{rtq}:lease", NULL);
  denied(c, "DEL", "{rtq}:lease", NULL);
  denied(c, "SADD", "{rtq}:paused", "default", NULL);
  denied(c, "EVAL", "return redis.call('SET', KEYS[1], 'attacker', 'PX', 30000)", "1", "{rtq}:lease", NULL);
  rtq_conn_free(c);

  /* The monitor still sees both. */
  c = rtq_test_conn_new(user("rtq-monitor")->url);
  freeReplyObject(rtq_test_command(c, "GET", "{rtq}:lease", NULL));
  redisReply *r = rtq_test_command(c, "ZRANGE", "{rtq}:workers", "0", "-1", NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  rtq_conn_free(c);
  assert_int_equal(rtq_test_cmd_int(acl_admin, "EXISTS", "{rtq}:worker:w-dead", NULL), 0);
  assert_int_equal(rtq_test_cmd_int(acl_admin, "EXISTS", "{rtq:default}:p:w-dead", NULL), 0);
  assert_int_equal(rtq_test_cmd_int(acl_admin, "DEL", "{rtq:default}:t:acl2-own", NULL), 1);
}

static void test_acl2_monitor_reads_but_never_writes(void **state) {
  (void)state;
  rtq_client *p = client_as("rtq-producer");
  char id[RTQ_TASK_ID_SIZE];
  create(p, "rtq.echo", "{}", NULL, id);
  rtq_client_free(p);
  rtq_test_cmd_ok(acl_admin, "ACL", "LOG", "RESET", NULL);

  rtq_client *m = client_as("rtq-monitor");
  rtq_task *t = NULL;
  OK(m, rtq_get_task(m, id, &t));
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);
  assert_int_equal(acl_denials(), 0);
  /* ... but it creates, cancels and pauses nothing. */
  char other[RTQ_TASK_ID_SIZE];
  assert_int_not_equal(rtq_create_task(m, "rtq.echo", NULL, NULL, other, NULL), 0);
  assert_int_not_equal(rtq_cancel_task(m, id, NULL), 0);
  assert_int_not_equal(rtq_queue_pause(m, "default"), 0);
  rtq_client_free(m);

  /* The keys redis-cli users type. */
  rtq_conn *c = rtq_test_conn_new(user("rtq-monitor")->url);
  rtq_key2 task = rtq_keys2_task(&K2, "default", id), queue = rtq_keys2_queue(&K2, "default");
  assert_true(rtq_test_cmd_int(c, "LLEN", queue.s, NULL) >= 1);
  redisReply *r = rtq_test_command(c, "HGETALL", task.s, NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_true(r->elements > 0);
  freeReplyObject(r);
  denied(c, "HSET", task.s, "s", "completed", NULL);
  denied(c, "DEL", queue.s, NULL);
  denied(c, "LPUSH", queue.s, "x", NULL);
  denied(c, "SET", "{rtq}:lease", "attacker", "PX", "30000", NULL);
  denied(c, "ZADD", "{rtq}:workers", "99999999999999", "w-dead", NULL);
  denied(c, "SPUBLISH", rtq_keys2_chan_events(&K2, "default").s, "{}", NULL);
  denied(c, "PUBLISH", "{rtq}:cancel", "x", NULL);
  denied(c, "EVAL", "return 1", "0", NULL);
  denied(c, "EVALSHA", "0000000000000000000000000000000000000000", "0", NULL);
  rtq_conn_free(c);
}

/* The dashboard, read-only, logged in as the monitor (as
 * deploy/compose/acl.yml runs it): every page's data and the live events,
 * without a denial. */
static void test_acl2_dashboard_runs_as_the_monitor(void **state) {
  (void)state;
  rtq_client *p = client_as("rtq-producer");
  char id[RTQ_TASK_ID_SIZE];
  create(p, "rtq.echo", "{}", NULL, id);
  rtq_test_cmd_ok(acl_admin, "ACL", "LOG", "RESET", NULL);
  web_srv s;
  const char *args[] = {"--protocol", "2", "--redis", user("rtq-monitor")->url, "--read-only",
                        "--auth-token-file", web_token_file(), NULL};
  web_start(&s, args);
  sse_conn ev;
  sse_open(&ev, s.port, "/api/events", AUTH);
  assert_true(sse_wait_for(&ev, ": connected", 0, 5000));
  /* The web subscribes to the queues it knows a moment after it starts:
   * create until an event comes through (bounded). */
  bool seen = false;
  uint64_t deadline = rtq_test_now_ms() + WAIT_MS;
  while (!seen && rtq_test_now_ms() < deadline) {
    create(p, "rtq.echo", "{}", NULL, id);
    seen = sse_wait_for(&ev, id, 0, 300);
  }
  assert_true(seen);
  sse_close(&ev);
  const char *pages[] = {"/api/stats", "/api/tasks", "/api/workers", "/api/dead", "/api/throughput",
                         "/api/info"};
  for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
    json_decref(http_json(s.port, pages[i], AUTH, 200));
  char path[128];
  snprintf(path, sizeof path, "/api/tasks/%s", id);
  json_decref(http_json(s.port, path, AUTH, 200));
  char *clients = rtq_test_cmd_str(acl_admin, "CLIENT", "LIST", NULL);
  assert_non_null(strstr(clients, "user=rtq-monitor")); /* the web's, the test has none open */
  free(clients);
  web_stop(&s);
  rtq_client_free(p);
  assert_int_equal(acl_denials(), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_acl2_roles_run_the_whole_flow),
      cmocka_unit_test(test_acl2_roles_stay_in_their_namespace),
      cmocka_unit_test(test_acl2_keys_stop_the_raw_attacks),
      cmocka_unit_test(test_acl2_monitor_reads_but_never_writes),
      cmocka_unit_test(test_acl2_dashboard_runs_as_the_monitor),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
