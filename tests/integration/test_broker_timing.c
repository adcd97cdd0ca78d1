/*
 * test_broker_timing.c - what rtq-broker does on the clock: a dead
 * worker's run past its deadline ends timeout rather than running again,
 * a live worker's run keeps going until deadline plus grace, the timeout
 * backstop reaches an overdue run behind more runs than one call reads,
 * and retries are promoted after their (exponential) backoff, within 1 s
 * of due. (Delayed tasks promoted on time: test_broker2_sweeps.c; a live
 * worker's overrun ended by the backstop: test_broker2_recovery.c.)
 *
 * Times are Redis TIME throughout, as the broker measures them. The
 * worker is played with protocol 2's scripts.
 */
#include "test_broker2_helpers.h"
#include "test_client_fake_worker2.h"

static uint64_t field_u64(tb *t, const char *queue, const char *id, const char *field) {
  char *v = tb2_field(t, queue, id, field);
  if (v == NULL) fail_msg("task %s has no field %s", id, field);
  uint64_t n = strtoull(v, NULL, 10);
  free(v);
  return n;
}

/* Task id (timeout 200 ms) taken by wid, then Redis time past its
 * deadline + grace. */
static void take_and_outlive_deadline(tb *t, const char *id, const char *queue, const char *wid,
                                      uint64_t grace) {
  tb2_heartbeat(t, wid, 600000, queue);
  tb2_create(t, queue, id, &(tb2_opts){.timeout_ms = 200});
  assert_int_equal(tb2_take_all(t, wid, queue), 1);
  uint64_t deadline = field_u64(t, queue, id, "dl");
  RTQ_TEST_WAIT_FOR(tb_redis_now(t) > deadline + grace, 3000);
}

static void test_broker_timing_dead_workers_overdue_run_times_out(void **state) {
  tb *t = *state;
  take_and_outlive_deadline(t, "t-slow", "qt", "w-silent", 100);
  tb2_age_worker(t, "w-silent", 5000);

  tb2_broker_once(t, "--heartbeat-ttl", "1s", "--timeout-grace", "100ms");

  assert_true(tb2_field_is(t, "qt", "t-slow", "s", "timeout"));
  assert_true(tb2_field_is(t, "qt", "t-slow", "ec", "TIMEOUT"));
  long long ttl = rtq_test_cmd_int(t->c, "TTL", rtq_keys2_task(&K2, "qt", "t-slow").s, NULL);
  assert_true(ttl > 0 && ttl <= 86400);
  char *done = rtq_test_cmd_str(t->c, "LINDEX", rtq_keys2_done(&K2, "qt", RTQ_STATUS_TIMEOUT).s,
                                "0", NULL);
  assert_string_equal(done, "t-slow");
  free(done);
  /* It timed out rather than being redelivered. */
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qt")), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qt", "w-silent")), 0);
  assert_int_equal(tb2_stat(t, "qt", "timeout"), 1);
  assert_int_equal(tb2_stat(t, "qt", "redelivered"), 0);
}

/* Past its deadline but within the grace, a live worker's run is its
 * worker's to end. */
static void test_broker_timing_live_worker_keeps_its_run_within_grace(void **state) {
  tb *t = *state;
  take_and_outlive_deadline(t, "t-busy", "qt", "w-alive", 100);

  tb2_broker_once(t, "--heartbeat-ttl", "30s", "--timeout-grace", "30s");

  assert_true(tb2_field_is(t, "qt", "t-busy", "s", "running"));
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qt", "w-alive")), 1);
  assert_int_equal(tb2_stat(t, NULL, "timeouts"), 0);
}

/* An overdue run taken before 1500 runs within their time (more than one
 * backstop call reads) of the same live worker: a running broker's
 * backstop still reaches it, and leaves the others running. */
static void test_broker_timing_backstop_reaches_past_runs_within_time(void **state) {
  tb *t = *state;
  take_and_outlive_deadline(t, "t-over", "qt", "w-alive", 0);
  tb2_create_n(t, "qt", "busy", 1500, &(tb2_opts){.timeout_ms = 600000});
  assert_int_equal(tb2_take_all(t, "w-alive", "qt"), 1500);

  pid_t pid = tb2_broker_start(t, "--heartbeat-ttl", "30s", "--timeout-grace", "0",
                               "--sweep-interval", "100ms");
  RTQ_TEST_WAIT_FOR(tb2_stat(t, NULL, "timeouts") == 1, 10000);
  tb_broker_stop(t, pid);
  assert_true(tb2_field_is(t, "qt", "t-over", "s", "timeout"));
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qt", "w-alive")), 1500);
  assert_true(tb2_field_is(t, "qt", "busy-1499", "s", "running"));
}

/* A failing task with retries: each retry is promoted after its backoff
 * (exponential), the final failure keeps the last error, and the attempt
 * count is visible. */
static void test_broker_timing_promotes_retry_backoff(void **state) {
  tb *t = *state;
  pid_t pid = tb2_broker_start(t, "--sweep-interval", "1s");
  tb2_create(t, "qb", "t-flaky", &(tb2_opts){.max_retries = 2, .retry_backoff_ms = 300});
  rtq__keep2 keep = {86400, true, 10000};
  uint64_t retry_at = 0, failed_at = 0;
  for (long long attempt = 1; attempt <= 3; attempt++) {
    fake_job2 j;
    RTQ_TEST_WAIT_FOR(fw2_take(t->c, &K2, "qb", "w-retry", &j) == 0, 5000);
    uint64_t claimed_at = tb_redis_now(t);
    assert_int_equal(j.attempt, attempt);
    if (attempt > 1) {
      long long late = (long long)claimed_at - (long long)retry_at;
      long long backoff = (long long)(retry_at - failed_at);
      printf("retry %lld: backoff %lld ms, on its queue %lld ms after due\n", attempt - 1, backoff,
             late);
      assert_true(late >= -5 && late <= 1000);
      assert_true(backoff >= 300LL << (attempt - 2)); /* 300, then 600 */
    }
    char code[8], word[16];
    snprintf(code, sizeof code, "E%lld", attempt);
    rtq__finish2_task ft;
    memset(&ft, 0, sizeof ft);
    ft.status = RTQ_STATUS_FAILED;
    ft.error_code = code;
    ft.error_message = "boom";
    failed_at = tb_redis_now(t);
    assert_int_equal(fw2_finish_keep(t->c, &K2, &j, ft, &keep, word), 0);
    if (attempt < 3) {
      assert_string_equal(word, "retry");
      assert_true(tb2_field_is(t, "qb", "t-flaky", "s", "pending"));
      retry_at = field_u64(t, "qb", "t-flaky", "ry");
    } else {
      assert_string_equal(word, "ok");
    }
  }
  assert_true(tb2_field_is(t, "qb", "t-flaky", "s", "failed"));
  assert_true(tb2_field_is(t, "qb", "t-flaky", "ec", "E3"));
  assert_true(tb2_field_is(t, "qb", "t-flaky", "a", "3"));
  assert_true(rtq_test_cmd_int(t->c, "TTL", rtq_keys2_task(&K2, "qb", "t-flaky").s, NULL) > 0);
  assert_int_equal(tb2_stat(t, "qb", "retried"), 2);
  tb_broker_stop(t, pid);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tb2_setup, tb_teardown)
  const struct CMUnitTest tests[] = {
      T(test_broker_timing_dead_workers_overdue_run_times_out),
      T(test_broker_timing_live_worker_keeps_its_run_within_grace),
      T(test_broker_timing_backstop_reaches_past_runs_within_time),
      T(test_broker_timing_promotes_retry_backoff),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
