/*
 * test_sentinel.c - redis-sentinel:// URLs against a real primary, replica
 * and three sentinels: rtq_conn, rtq-worker, rtq-broker and the producers
 * (the CLI, librtq) find the primary through the sentinels, and after the
 * primary is killed with SIGKILL all of them carry on against the promoted
 * replica within the failover time plus 2 s: a task created then is run,
 * and a delayed one is promoted by the broker and run. The kill comes
 * mid-drain (a backlog of short tasks on a second queue), and every task
 * of that backlog still ends completed: nothing is stuck. An event
 * subscription that was open reports the loss, and a new one hears the
 * promoted primary.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster_util.h"
#include "harness.h"
#include "integration/test_cli_run.h"
#include "keys2.h"
#include "rtq/client.h"
#include "rtq/common.h"

static rtq_test_sentinels *set;
static rtq_keys2 K;

static int setup(void **state) {
  (void)state;
  set = rtq_test_sentinels_start();
  if (set == NULL) return -1;
  return rtq_keys2_init(&K, "rtq");
}

static int teardown(void **state) {
  (void)state;
  rtq_test_sentinels_stop(set);
  return 0;
}

static bool set_ok(rtq_conn *c) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "SET");
  rtq_argv_add_str(&a, "after");
  rtq_argv_add_str(&a, "1");
  int rc = rtq_conn_command(c, &a, NULL);
  rtq_argv_destroy(&a);
  return rc == 0;
}

/* Task id of queue is completed (a failed read is a no). */
static bool completed_in(rtq_conn *c, const char *queue, const char *id) {
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

/* The same for queue "default". */
static bool completed(rtq_conn *c, const char *id) { return completed_in(c, "default", id); }

#define NBULK 300

/* How many of the NBULK backlog tasks are completed. */
static int bulk_done(rtq_conn *c, char (*ids)[RTQ_TASK_ID_SIZE]) {
  int n = 0;
  for (int i = 0; i < NBULK; i++) n += completed_in(c, "bulk", ids[i]);
  return n;
}

/* GET key on c is want. */
static bool value_is(rtq_conn *c, const char *key, const char *want) {
  char *v = rtq_test_cmd_str(c, "GET", key, NULL);
  bool yes = v != NULL && strcmp(v, want) == 0;
  free(v);
  return yes;
}

static bool enqueue(const char *url, const char *id) {
  cli_run r;
  cli(&r, (const char *[]){"--redis", url, "enqueue", "rtq.noop", "--id", id, NULL}, NULL);
  bool ok = r.code == 0;
  cli_free(&r);
  return ok;
}

static void test_sentinel_url_rejects_unknown_master(void **state) {
  (void)state;
  char url[200];
  snprintf(url, sizeof url, "%.*snosuch", (int)(strrchr(rtq_test_sentinels_url(set), '/') + 1 - rtq_test_sentinels_url(set)),
           rtq_test_sentinels_url(set));
  rtq_conn_options o = {.url = url, .connect_timeout_ms = 1000};
  rtq_conn *c = NULL;
  char err[512];
  assert_int_equal(rtq_conn_new(&o, &c, err, sizeof err), RTQ_ECONN);
  assert_non_null(strstr(err, "does not know master \"nosuch\""));
}

/* A sentinel with its own password (requirepass): asked without it, with
 * a wrong one, and with the URL's sentinel_password. Its errors never
 * show a password. */
static void test_sentinel_password(void **state) {
  (void)state;
  char monitor[128];
  snprintf(monitor, sizeof monitor, "sentinel monitor rtqm 127.0.0.1 %d 2", rtq_test_sentinels_primary_port(set));
  const char *conf[] = {monitor, "requirepass s3nt-pw", NULL};
  rtq_test_redis_options so = {.sentinel = true, .extra_config = conf};
  rtq_test_redis *guarded = rtq_test_redis_start(&so);
  assert_non_null(guarded);
  int port = rtq_test_redis_port(guarded);
  static const struct {
    const char *query;
    int rc;
    const char *err;
  } cases[] = {
      {"", RTQ_ECONN, "NOAUTH"},
      {"?sentinel_password=wrong-pw", RTQ_ECONN, "refused AUTH"},
      {"?sentinel_password=s3nt-pw", 0, NULL},
      {"?sentinel_user=default&sentinel_password=s3nt-pw", 0, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char url[256];
    snprintf(url, sizeof url, "redis-sentinel://127.0.0.1:%d/rtqm%s", port, cases[i].query);
    rtq_conn_options o = {.url = url, .connect_timeout_ms = 2000};
    rtq_conn *c = NULL;
    char err[512] = "";
    assert_int_equal(rtq_conn_new(&o, &c, err, sizeof err), cases[i].rc);
    if (cases[i].err != NULL) {
      if (strstr(err, cases[i].err) == NULL) fail_msg("case %zu: %s", i, err);
      assert_null(strstr(err, "pw"));
      continue;
    }
    redisReply *r = rtq_test_command(c, "ROLE", NULL);
    assert_string_equal(r->element[0]->str, "master");
    freeReplyObject(r);
    rtq_conn_free(c);
  }
  rtq_test_redis_stop(guarded);
}

/* Milliseconds left until at (at least 1: a deadline passed still
 * checks once). */
static int left_until(uint64_t at) {
  uint64_t now = rtq_test_now_ms();
  return at > now ? (int)(at - now) : 1;
}

/* Reads events from sub until one names id, for up to 5 s. */
static bool heard(rtq_subscription *sub, const char *id) {
  char needle[64];
  snprintf(needle, sizeof needle, "\"id\":\"%s\"", id);
  uint64_t until = rtq_test_now_ms() + 5000;
  for (int i = 0; i < 100 && rtq_test_now_ms() < until; i++) {
    char *json = NULL;
    if (rtq_subscription_next(sub, left_until(until), &json) != 0) return false;
    bool yes = strstr(json, needle) != NULL;
    free(json);
    if (yes) return true;
  }
  return false;
}

/* Reads sub's events until it fails (at most 10,000 of them, 10 s): its
 * error. */
static int drain(rtq_subscription *sub) {
  uint64_t until = rtq_test_now_ms() + 10000;
  int rc = 0;
  for (int i = 0; i < 10000 && rc == 0 && rtq_test_now_ms() < until; i++) {
    char *json = NULL;
    rc = rtq_subscription_next(sub, left_until(until), &json);
    free(json);
  }
  return rc;
}

static void test_sentinel_failover_followed(void **state) {
  (void)state;
  const char *url = rtq_test_sentinels_url(set);
  rtq_test_redis *primary = rtq_test_sentinels_node(set, 0), *replica = rtq_test_sentinels_node(set, 1);
  assert_int_equal(rtq_test_sentinels_primary_port(set), rtq_test_redis_port(primary));

  rtq_conn *c = rtq_test_conn_new(url);
  rtq_test_cmd_ok(c, "SET", "before", "1", NULL);
  redisReply *r = rtq_test_command(c, "ROLE", NULL);
  assert_string_equal(r->element[0]->str, "master");
  freeReplyObject(r);

  char wlog[256], blog[256];
  snprintf(wlog, sizeof wlog, "%s/worker.log", rtq_test_redis_dir(replica));
  snprintf(blog, sizeof blog, "%s/broker.log", rtq_test_redis_dir(replica));
  pid_t w = cluster_spawn("worker/rtq-worker",
                          (const char *[]){"--redis", url, "--queue", "default", "--queue", "bulk",
                                           "--demo-handlers", "--concurrency", "2", "--heartbeat-interval", "200ms",
                                           "--heartbeat-ttl", "2s", "--shutdown-grace", "1s", NULL},
                          wlog);
  pid_t b = cluster_spawn("broker/rtq-broker",
                          (const char *[]){"--redis", url, "--sweep-interval", "200ms", "--heartbeat-ttl", "5s", NULL},
                          blog);
  assert_true(enqueue(url, "s-0"));
  RTQ_TEST_WAIT_FOR(completed(c, "s-0"), 10000);
  /* The broker is up: it promotes a delayed task before the failover. */
  rtq_client_options co = {.redis_url = url};
  rtq_client *client = NULL;
  assert_int_equal(rtq_client_new(&co, &client), 0);
  rtq_task_options later = {.id = "d-0", .delay_ms = 300};
  assert_int_equal(rtq_create_task(client, "rtq.noop", NULL, &later, NULL, NULL), 0);
  RTQ_TEST_WAIT_FOR(completed(c, "d-0"), 10000);
  /* The backlog: NBULK tasks of 20 ms, about 3 s of work for the two
   * slots. */
  rtq_args *sleep = rtq_args_new();
  assert_non_null(sleep);
  assert_int_equal(rtq_args_set_double(sleep, "seconds", 0.02), 0);
  rtq_task_options bulk = {.queue = "bulk"};
  rtq_task_spec specs[NBULK];
  memset(specs, 0, sizeof specs);
  for (int i = 0; i < NBULK; i++) specs[i] = (rtq_task_spec){.name = "rtq.sleep", .args = sleep, .opts = &bulk};
  assert_int_equal(rtq_create_tasks(client, specs, NBULK), 0);
  rtq_args_free(sleep);
  char ids[NBULK][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < NBULK; i++) memcpy(ids[i], specs[i].id, sizeof ids[i]);
  /* The replica has it all before the primary goes (one replication
   * stream: "before" comes after the creates). */
  rtq_test_cmd_ok(c, "SET", "before", "2", NULL);
  rtq_conn *rc = rtq_test_conn_new(rtq_test_redis_url_of(replica));
  RTQ_TEST_WAIT_FOR(value_is(rc, "before", "2"), 5000);
  rtq_conn_free(rc);

  /* A subscriber through the sentinels, open across the failover. */
  rtq_subscription *sub = NULL;
  assert_int_equal(rtq_events_subscribe(client, &sub), 0);

  /* Mid-drain. */
  RTQ_TEST_WAIT_FOR(bulk_done(c, ids) >= 50, 10000);
  int at_kill = bulk_done(c, ids);
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_test_redis_kill9(primary), 0);
  RTQ_TEST_WAIT_FOR(rtq_test_sentinels_primary_port(set) == rtq_test_redis_port(replica), 30000);
  uint64_t t1 = rtq_test_now_ms();
  RTQ_TEST_WAIT_FOR(set_ok(c), 2000);
  uint64_t t2 = rtq_test_now_ms();
  r = rtq_test_command(c, "ROLE", NULL);
  assert_string_equal(r->element[0]->str, "master");
  freeReplyObject(r);
  /* The producers, the worker and the broker, within the same 2 s: a task
   * created with the CLI is run, and one created with librtq (its
   * connection was to the dead primary; a create that fails is sent again
   * with the same id, as a producer would) is promoted by the broker once
   * due, then run. */
  RTQ_TEST_WAIT_FOR(enqueue(url, "s-1"), left_until(t1 + 2000));
  later.id = "d-1";
  RTQ_TEST_WAIT_FOR(rtq_create_task(client, "rtq.noop", NULL, &later, NULL, NULL) == 0, left_until(t1 + 2000));
  uint64_t t3 = rtq_test_now_ms();
  RTQ_TEST_WAIT_FOR(completed(c, "s-1"), left_until(t1 + 2000));
  uint64_t t4 = rtq_test_now_ms();
  RTQ_TEST_WAIT_FOR(completed(c, "d-1"), left_until(t1 + 2000));
  uint64_t t5 = rtq_test_now_ms();
  /* The old subscription returns the backlog's events it had read before
   * the kill, then says it is lost; a new one reaches the promoted
   * primary and hears a task created there. */
  assert_int_equal(drain(sub), RTQ_ECONN);
  rtq_subscription_free(sub);
  assert_int_equal(rtq_events_subscribe(client, &sub), 0);
  rtq_task_options probe = {.id = "e-1"};
  assert_int_equal(rtq_create_task(client, "rtq.noop", NULL, &probe, NULL, NULL), 0);
  assert_true(heard(sub, "e-1"));
  rtq_subscription_free(sub);
  rtq_client_free(client);
  /* Nothing stuck: the whole backlog ends completed. */
  RTQ_TEST_WAIT_FOR(bulk_done(c, ids) == NBULK, 20000);
  uint64_t t6 = rtq_test_now_ms();
  fprintf(stderr,
          "sentinel failover: named after %llu ms; rtq_conn +%llu ms; both creates done +%llu ms; the worker ran "
          "the new task +%llu ms; the broker's promoted task run +%llu ms; backlog %d of %d done at the kill, "
          "all done +%llu ms\n",
          (unsigned long long)(t1 - t0), (unsigned long long)(t2 - t1), (unsigned long long)(t3 - t1),
          (unsigned long long)(t4 - t1), (unsigned long long)(t5 - t1), at_kill, NBULK,
          (unsigned long long)(t6 - t1));
  /* The kill came while the backlog drained. */
  assert_true(at_kill < NBULK);
  stop_clean(w);
  stop_clean(b);
  rtq_conn_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sentinel_url_rejects_unknown_master),
      cmocka_unit_test(test_sentinel_password),
      cmocka_unit_test(test_sentinel_failover_followed),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
