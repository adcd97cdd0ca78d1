/*
 * test_worker_basic.c - rtq-worker's happy paths and fencing against a real
 * redis-server: every demo handler, progress, the worker record, retries,
 * graceful exit, and a completion fenced off because the task was taken.
 */
#include "calls2.h"
#include "test_worker_util.h"

static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc_, &wk);
  tw_start(&wk, rtq_test_redis_url(), "--concurrency", "4", "--shutdown-grace", "10", NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc_, &wk, true);
  return 0;
}

static void test_worker_echo_returns_args(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.echo", "{\"a\":1,\"b\":[true,\"x\"]}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "{\"a\":1,\"b\":[true,\"x\"]}");
  assert_int_equal(t->attempts, 1);
  assert_string_equal(t->worker, wk.id);
  free(json);
  rtq_task_free(t);
}

static void test_worker_noop_completes_with_nil(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.noop", NULL, NULL, id);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_null(t->result);
  assert_null(t->error_code);
  rtq_task_free(t);
}

static void test_worker_fail_records_error(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.fail", "{\"code\":\"BAD_INPUT\",\"message\":\"no\",\"details\":{\"field\":\"x\"}}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "BAD_INPUT");
  assert_string_equal(t->error_message, "no");
  char *json = NULL;
  assert_int_equal(rtq_task_error_details_json(t, &json), 0);
  assert_string_equal(json, "{\"field\":\"x\"}");
  free(json);
  rtq_task_free(t);
}

static void test_worker_sleep_reports_progress(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":0.6,\"steps\":3}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "progress_message", "step 1/3"), 5000);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_true(t->progress == 100.0);
  assert_string_equal(t->progress_message, "step 3/3");
  assert_true(t->completed_at - t->started_at >= 550);
  rtq_task_free(t);
}

static void test_worker_failure_with_retries_left_is_delayed(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.max_retries = 1;
  o.retry_backoff_ms = 50;
  tw_enqueue(cl, "rtq.fail", "{\"code\":\"FLAKY\"}", &o, id);
  /* finish.lua puts the retry in P:delayed; promoting it is the broker's
   * job, so the test plays the broker: it waits for the delayed entry. */
  rtq_key2 delayed = tw_key_delayed();
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "ZCARD", delayed.s, NULL) == 1, 5000);
  assert_true(tw_field_is(rc_, id, "status", "pending"));
  assert_true(tw_field_is(rc_, id, "error_code", "FLAKY"));
  assert_int_equal(tw_hget_ll(rc_, id, "attempt"), 1);
}

static void test_worker_record_has_fields(void **state) {
  (void)state;
  rtq_key2 k = tw_key_worker(wk.id);
  const char *fields[] = {"host", "pid", "queues", "busy", "slots", "started_at", "isolation", "version"};
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    char *v = rtq_test_cmd_str(rc_, "HGET", k.s, fields[i], NULL);
    if (v == NULL) fail_msg("worker record lacks %s", fields[i]);
    free(v);
  }
  char *slots = rtq_test_cmd_str(rc_, "HGET", k.s, "slots", NULL);
  assert_string_equal(slots, "4");
  free(slots);
  char *q = rtq_test_cmd_str(rc_, "HGET", k.s, "queues", NULL);
  assert_string_equal(q, "default:1");
  free(q);
  long long ttl = rtq_test_cmd_int(rc_, "PTTL", k.s, NULL);
  assert_true(ttl > 0 && ttl <= 30000);
}

static void test_worker_exit_deletes_record(void **state) {
  (void)state;
  rtq_key2 k = tw_key_worker(wk.id), ws = tw_key_workers();
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", k.s, NULL), 1);
  assert_int_equal(tw_stop(&wk, 10000), 0);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", k.s, NULL), 0);
  assert_null(rtq_test_cmd_str(rc_, "ZSCORE", ws.s, wk.id, NULL));
}

/* Runs finish.lua by hand, as a late second worker would; returns the
 * outcome's word: "ok", "retry" or "stale". */
static const char *finish_by_hand(const char *id, const char *worker, uint64_t attempt) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq__finish2_task t = {.id = id, .attempt = attempt, .status = RTQ_STATUS_COMPLETED, .progress = -1};
  rtq__keep2 keep = {60, true, 10000};
  assert_int_equal(rtq__call2_finish(&a, tw_k2(), true, "default", worker, &keep, NULL, 0, &t, 1), 0);
  redisReply *r = rtq_test_command_argv(rc_, &a);
  rtq_argv_destroy(&a);
  rtq__finish2_entry e[1];
  int n = 0;
  assert_int_equal(rtq__reply2_finish(r, e, 1, &n), 0);
  assert_int_equal(n, 1); /* one entry per task */
  freeReplyObject(r);
  return e[0].kind == RTQ__FINISH2_OK ? "ok" : e[0].kind == RTQ__FINISH2_RETRY ? "retry" : "stale";
}

static void test_worker_fencing_rejects_stale_completion(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":0.5,\"steps\":5}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  rtq_key2 proc = tw_key_processing(wk.id);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 1);
  /* A worker that does not own it, and the owner with a wrong attempt. */
  assert_string_equal(finish_by_hand(id, "someone-else", 1), "stale");
  assert_string_equal(finish_by_hand(id, wk.id, 2), "stale");
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_string_equal(t->worker, wk.id);
  rtq_task_free(t);
  /* The first completion won; a second one with the right owner is stale. */
  assert_string_equal(finish_by_hand(id, wk.id, 1), "stale");
}

static void test_worker_late_result_is_dropped_and_logged(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":0.5,\"steps\":5}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  /* Someone else takes the task over (as a redelivery would). */
  rtq_key2 task = tw_key_task(rc_, id);
  rtq_test_cmd_int(rc_, "HSET", task.s, tw_field("worker"), "other-worker", tw_field("attempt"), "2", NULL);
  RTQ_TEST_WAIT_FOR(tw_log_contains(&wk, "late result rejected"), 5000);
  assert_true(tw_field_is(rc_, id, "status", "running"));
  assert_true(tw_field_is(rc_, id, "worker", "other-worker"));
  rtq_key2 proc = tw_key_processing(wk.id);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 0);
}

static void test_worker_survives_script_flush(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.echo", "{\"before\":1}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 5000);
  rtq_task_free(t);
  /* The script cache goes away under the worker (a restarted or failed-over
   * server looks the same): EVALSHA replies NOSCRIPT and the worker resends
   * with EVAL. */
  char ids[5][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 5; i++) {
    rtq_test_cmd_ok(rc_, "SCRIPT", "FLUSH", NULL);
    tw_enqueue(cl, "rtq.sleep", "{\"seconds\":0.2,\"steps\":2}", NULL, ids[i]);
  }
  rtq_test_cmd_ok(rc_, "SCRIPT", "FLUSH", NULL);
  for (int i = 0; i < 5; i++) {
    t = tw_wait(cl, ids[i], 5000);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    assert_true(t->progress == 100.0);
    rtq_task_free(t);
  }
  assert_true(tw_log_contains(&wk, "NOSCRIPT"));
}

static void test_worker_warns_without_noeviction(void **state) {
  (void)state;
  rtq_test_redis_options o;
  memset(&o, 0, sizeof o);
  o.maxmemory = "64mb";
  o.maxmemory_policy = "allkeys-lru";
  rtq_test_redis *srv = rtq_test_redis_start(&o);
  assert_non_null(srv);
  tw_worker other;
  tw_start(&other, rtq_test_redis_url_of(srv), NULL);
  assert_true(tw_log_contains(&other, "maxmemory-policy is not noeviction"));
  assert_int_equal(tw_stop(&other, 10000), 0);
  rtq_test_redis_stop(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_echo_returns_args, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_noop_completes_with_nil, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_fail_records_error, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_sleep_reports_progress, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_failure_with_retries_left_is_delayed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_record_has_fields, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exit_deletes_record, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_fencing_rejects_stale_completion, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_late_result_is_dropped_and_logged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_survives_script_flush, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_warns_without_noeviction, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
