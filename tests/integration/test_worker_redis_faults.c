/*
 * test_worker_redis_faults.c - Redis going away under a running worker: a
 * restart and a kill -9 on the same port (appendonly, so the data
 * survives), and a SIGSTOP longer than the command timeout. The worker
 * reconnects by itself, a task that ran across the outage is written once
 * the connection is back, and new tasks complete. Also: a worker started
 * while Redis is down waits for it. (Ids a lost reply left in a
 * processing list are adopted: test_worker_v2.)
 */
#include "test_worker_util.h"

static rtq_test_redis *srv;
static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  rtq_test_redis_options o;
  memset(&o, 0, sizeof o);
  o.appendonly = true;
  srv = rtq_test_redis_start(&o);
  assert_non_null(srv);
  cl = tw_client(rtq_test_redis_url_of(srv));
  rc_ = rtq_test_conn_new(rtq_test_redis_url_of(srv));
  tw_start(&wk, rtq_test_redis_url_of(srv), "--command-timeout", "1s", NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  int code = tw_stop(&wk, 20000);
  assert_int_equal(code, 0);
  rtq_client_free(cl);
  rtq_conn_free(rc_);
  rtq_test_redis_stop(srv);
  return 0;
}

/* Fresh connections after an outage (the old ones are dead). */
static void reconnect_test_side(void) {
  rtq_client_free(cl);
  rtq_conn_free(rc_);
  cl = tw_client(rtq_test_redis_url_of(srv));
  rc_ = rtq_test_conn_new(rtq_test_redis_url_of(srv));
}

static void after_outage(const char *running_id) {
  reconnect_test_side();
  /* The task that ran across the outage is written after the reconnect. */
  rtq_task *t = tw_wait(cl, running_id, 15000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_string_equal(t->worker, wk.id);
  rtq_task_free(t);
  /* And new work flows. */
  char ids[20][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 20; i++) tw_enqueue(cl, "rtq.echo", "{\"n\":1}", NULL, ids[i]);
  for (int i = 0; i < 20; i++) {
    t = tw_wait(cl, ids[i], 15000);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    rtq_task_free(t);
  }
  /* The worker record is back too. */
  rtq_key2 rec = tw_key_worker(wk.id);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "EXISTS", rec.s, NULL) == 1, 10000);
  rtq_key2 proc = tw_key_processing(wk.id);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 0);
}

static void test_worker_survives_redis_restart(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":2,\"steps\":4}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  assert_int_equal(rtq_test_redis_restart(srv), 0);
  after_outage(id);
  assert_true(tw_log_contains(&wk, "redis connection lost"));
}

static void test_worker_survives_redis_kill9(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":2,\"steps\":4}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  assert_int_equal(rtq_test_redis_kill9(srv), 0);
  /* Down for a while: completions wait in memory. */
  RTQ_TEST_WAIT_FOR(tw_log_contains(&wk, "redis connect failed"), 10000);
  assert_int_equal(rtq_test_redis_restart(srv), 0);
  after_outage(id);
}

static void test_worker_survives_frozen_redis(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":1,\"steps\":4}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  assert_int_equal(rtq_test_redis_sigstop(srv), 0);
  /* The watchdog drops connections whose replies are overdue (1 s). */
  RTQ_TEST_WAIT_FOR(tw_log_contains(&wk, "no reply within the command timeout") ||
                        tw_log_contains(&wk, "connect and handshake took over"),
                    10000);
  assert_int_equal(rtq_test_redis_sigcont(srv), 0);
  after_outage(id);
}

/* Redis down at start: the worker keeps trying and starts once it is up. */
static void test_worker_waits_for_redis_at_start(void **state) {
  (void)state;
  assert_int_equal(tw_stop(&wk, 10000), 0);
  assert_int_equal(rtq_test_redis_kill9(srv), 0);
  const char *argv[] = {"rtq-worker", "--redis", rtq_test_redis_url_of(srv), "--demo-handlers", NULL};
  snprintf(wk.log, sizeof wk.log, "%s/worker-%d-start.log", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           (int)getpid());
  unlink(wk.log);
  rtq_test_spawn_options so = {.path = tw_bin(), .argv = argv, .output_path = wk.log};
  wk.pid = rtq_test_spawn_ex(&so);
  assert_true(wk.pid > 0);
  RTQ_TEST_WAIT_FOR(tw_log_contains(&wk, "redis not reachable at start-up"), 10000);
  assert_int_equal(rtq_test_redis_restart(srv), 0);
  reconnect_test_side();
  RTQ_TEST_WAIT_FOR(tw_find_worker(rc_, wk.pid, wk.id, sizeof wk.id), 10000);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.noop", NULL, NULL, id);
  rtq_task *t = tw_wait(cl, id, 10000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_survives_redis_restart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_survives_redis_kill9, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_survives_frozen_redis, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_waits_for_redis_at_start, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
