/*
 * test_broker_timing.c - what rtq-broker does on the clock: the timeout
 * backstop for silent workers, delayed tasks and retry backoff promoted
 * within 1 s of due, and the cancel-request backstop.
 *
 * Times are Redis TIME throughout, as the broker measures them. Each
 * promotion test prints how late the task reached its queue.
 */
#include "test_broker_helpers.h"

static uint64_t field_u64(tb *t, const char *id, const char *field) {
  char *v = tb_task_field(t, id, field);
  assert_non_null(v);
  uint64_t n = strtoull(v, NULL, 10);
  free(v);
  return n;
}

/* Claims "id" as wid with a timeout of 200 ms, then waits (Redis time)
 * until deadline + grace has passed. */
static void claim_and_outlive_deadline(tb *t, const char *id, const char *queue, const char *wid,
                                       uint64_t grace) {
  tb_task_opts o = {.queue = queue, .timeout_ms = 200};
  free(tb_create(t, id, &o, &(size_t){0}));
  tb_claim cl;
  assert_true(tb_claim_next(t, wid, queue, &cl));
  tb_claim_free(&cl);
  uint64_t deadline = field_u64(t, id, "deadline");
  RTQ_TEST_WAIT_FOR(tb_redis_now(t) > deadline + grace, 3000);
}

static void test_broker_timing_backstop_times_out_silent_worker_task(void **state) {
  tb *t = *state;
  claim_and_outlive_deadline(t, "t-slow", "qt", "w-silent", 100);
  tb_age_worker(t, "w-silent", 5000);
  rtq_conn *sub = tb_subscribe(t, rtq_keys_chan_cancel(&t->k));

  tb_broker_once(t, "--heartbeat-ttl", "1s", "--timeout-grace", "100ms");

  tb_assert_field(t, "t-slow", "status", "timeout");
  tb_assert_field(t, "t-slow", "error_code", "TIMEOUT");
  tb_assert_field(t, "t-slow", "deadline", "");
  assert_true(rtq_test_cmd_int(t->c, "TTL", rtq_keys_task(&t->k, "t-slow").s, NULL) > 0);
  assert_true(rtq_test_cmd_int(t->c, "PTTL", rtq_keys_cancel(&t->k, "t-slow").s, NULL) > 0);
  assert_false(tb_zhas(t, rtq_keys_deadlines(&t->k), "t-slow"));
  assert_false(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_RUNNING), "t-slow"));
  assert_true(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_TIMEOUT), "t-slow"));
  assert_true(tb_zhas(t, rtq_keys_history(&t->k), "t-slow"));
  /* It timed out rather than being redelivered; its envelope is cleared. */
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "qt")), 0);
  assert_int_equal(tb_llen(t, rtq_keys_processing(&t->k, "w-silent")), 0);
  assert_int_equal(tb_stat(t, "qt", "timeout"), 1);
  assert_int_equal(tb_stat(t, "broker", "timeouts"), 1);
  char *msg = tb_next_message(sub);
  assert_non_null(msg);
  assert_string_equal(msg, "t-slow");
  free(msg);
  rtq_conn_free(sub);
}

/* The worker's entry is gone from P:workers altogether. */
static void test_broker_timing_backstop_times_out_task_of_vanished_worker(void **state) {
  tb *t = *state;
  claim_and_outlive_deadline(t, "t-orphan", "qt", "w-vanished", 0);
  assert_false(tb_zhas(t, rtq_keys_workers(&t->k), "w-vanished"));

  tb_broker_once(t, "--timeout-grace", "0");

  tb_assert_field(t, "t-orphan", "status", "timeout");
  assert_int_equal(tb_exists(t, rtq_keys_cancel(&t->k, "t-orphan")), 1);
}

static void test_broker_timing_backstop_leaves_live_worker_alone(void **state) {
  tb *t = *state;
  claim_and_outlive_deadline(t, "t-busy", "qt", "w-alive", 100);
  tb_heartbeat(t, "w-alive", 30000);

  tb_broker_once(t, "--heartbeat-ttl", "30s", "--timeout-grace", "100ms");

  tb_assert_field(t, "t-busy", "status", "running");
  assert_true(tb_zhas(t, rtq_keys_deadlines(&t->k), "t-busy"));
  assert_int_equal(tb_exists(t, rtq_keys_cancel(&t->k, "t-busy")), 0);
  assert_int_equal(tb_stat(t, "broker", "timeouts"), 0);
}

/* More overdue tasks of a live worker than one sweep reads (1000) sort
 * before an orphaned one: the deadlines cursor moves past them, so the
 * orphan still ends timeout, a sweep or two later. */
static void test_broker_timing_backstop_reaches_past_live_overdue_tasks(void **state) {
  tb *t = *state;
  claim_and_outlive_deadline(t, "t-orphan", "qt", "w-vanished", 0);
  uint64_t deadline = field_u64(t, "t-orphan", "deadline");
  tb_heartbeat(t, "w-alive", 30000);
  /* 1500 running tasks of w-alive, due before the orphan, as claim leaves
   * them in the hash and P:deadlines. */
  char first[32];
  snprintf(first, sizeof first, "%llu", (unsigned long long)(deadline - 5000));
  rtq_test_cmd_int(t->c, "EVAL",
                   "for i = 1, 1500 do local id = 'busy-' .. i; "
                   "redis.call('HSET', ARGV[1] .. id, 'status', 'running', 'worker', 'w-alive', "
                   "'deadline', ARGV[2] + i); redis.call('ZADD', KEYS[1], ARGV[2] + i, id) end "
                   "return 1500",
                   "1", rtq_keys_deadlines(&t->k).s, rtq_keys_task_prefix(&t->k).s, first, NULL);
  assert_int_equal(tb_zcard(t, rtq_keys_deadlines(&t->k)), 1501);

  pid_t pid = tb_broker_start(t, "--heartbeat-ttl", "30s", "--timeout-grace", "0",
                              "--sweep-interval", "100ms");
  RTQ_TEST_WAIT_FOR(tb_stat(t, "broker", "timeouts") == 1, 5000);
  tb_broker_stop(t, pid);
  tb_assert_field(t, "t-orphan", "status", "timeout");
  assert_int_equal(tb_zcard(t, rtq_keys_deadlines(&t->k)), 1500); /* the live ones stay */
  tb_assert_field(t, "busy-1500", "status", "running");
}

typedef struct wait_queue {
  tb *t;
  rtq_key queue;
  uint64_t seen_at; /* Redis time the envelope was first seen on the queue */
} wait_queue;

static bool queue_filled(void *arg) {
  wait_queue *w = arg;
  if (tb_llen(w->t, w->queue) == 0) return false;
  w->seen_at = tb_redis_now(w->t);
  return true;
}

/* Waits for a delayed task's envelope on its queue; returns how late (ms)
 * after run_at it got there, and asserts it was not early. */
static long long wait_promoted(tb *t, const char *queue, uint64_t due, int timeout_ms) {
  wait_queue w = {.t = t, .queue = rtq_keys_queue(&t->k, queue)};
  assert_true(rtq_test_wait_until(queue_filled, &w, timeout_ms));
  assert_true(w.seen_at + 5 >= due); /* never early (5 ms of polling slack) */
  return (long long)w.seen_at - (long long)due;
}

/* With the default 1 s sweep: the promotion timer aims at the due time. */
static void test_broker_timing_promotes_delayed_tasks_within_a_second(void **state) {
  tb *t = *state;
  tb_task_opts soon = {.queue = "qd1", .delay_ms = 700};
  tb_task_opts later = {.queue = "qd2", .delay_ms = 2300};
  pid_t pid = tb_broker_start(t, "--id", "b-delay");
  RTQ_TEST_WAIT_FOR(tb_lease_is(t, "b-delay"), 5000);
  free(tb_create(t, "t-soon", &soon, &(size_t){0}));
  free(tb_create(t, "t-later", &later, &(size_t){0}));
  uint64_t due1 = field_u64(t, "t-soon", "run_at"), due2 = field_u64(t, "t-later", "run_at");
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "qd1")), 0);
  assert_int_equal(tb_zcard(t, rtq_keys_delayed(&t->k)), 2);

  long long late1 = wait_promoted(t, "qd1", due1, 5000);
  long long late2 = wait_promoted(t, "qd2", due2, 5000);
  printf("delayed promotion: %lld ms and %lld ms after due (sweep 1000 ms)\n", late1, late2);
  assert_true(late1 <= 1000);
  assert_true(late2 <= 1000);
  assert_int_equal(tb_zcard(t, rtq_keys_delayed(&t->k)), 0);
  tb_assert_field(t, "t-soon", "status", "pending");
  assert_int_equal(tb_stat(t, "broker", "promoted"), 2);
  tb_broker_stop(t, pid);
  assert_true(tb_lease_is(t, NULL)); /* released on SIGTERM */
}

/* A failing task with retries: each retry is promoted after its backoff
 * (exponential), the final failure keeps the last error, and the attempt
 * count is visible. */
static void test_broker_timing_promotes_retry_backoff(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "qb", .max_retries = 2, .retry_backoff_ms = 300};
  pid_t pid = tb_broker_start(t, "--sweep-interval", "1s");
  free(tb_create(t, "t-flaky", &o, &(size_t){0}));
  uint64_t retry_at = 0, failed_at = 0;
  for (long long attempt = 1; attempt <= 3; attempt++) {
    tb_claim cl;
    RTQ_TEST_WAIT_FOR(tb_claim_next(t, "w-retry", "qb", &cl), 5000);
    uint64_t claimed_at = tb_redis_now(t);
    assert_int_equal(cl.attempt, attempt);
    if (attempt > 1) {
      long long late = (long long)claimed_at - (long long)retry_at;
      long long backoff = (long long)(retry_at - failed_at);
      printf("retry %lld: backoff %lld ms, on its queue %lld ms after due\n", attempt - 1, backoff, late);
      assert_true(late >= -5 && late <= 1000);
      assert_true(backoff >= 300LL << (attempt - 2)); /* 300, then 600 */
    }
    char code[8];
    snprintf(code, sizeof code, "E%lld", attempt);
    failed_at = tb_redis_now(t);
    char *tag = tb_finish(t, "w-retry", &cl, "failed", code);
    tb_claim_free(&cl);
    if (attempt < 3) {
      assert_string_equal(tag, "retry");
      tb_assert_field(t, "t-flaky", "status", "pending");
      retry_at = field_u64(t, "t-flaky", "retry_at");
    } else {
      assert_string_equal(tag, "ok");
    }
    free(tag);
  }
  tb_assert_field(t, "t-flaky", "status", "failed");
  tb_assert_field(t, "t-flaky", "error_code", "E3");
  tb_assert_field(t, "t-flaky", "attempt", "3");
  assert_true(rtq_test_cmd_int(t->c, "TTL", rtq_keys_task(&t->k, "t-flaky").s, NULL) > 0);
  assert_int_equal(tb_stat(t, "qb", "retried"), 2);
  tb_broker_stop(t, pid);
}

/* A running task whose worker missed the cancel message hears it again. */
static void test_broker_timing_republishes_cancel_requests(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "qc"};
  free(tb_create(t, "t-stop", &o, &(size_t){0}));
  free(tb_create(t, "t-go", &o, &(size_t){0}));
  tb_claim a, b;
  assert_true(tb_claim_next(t, "w-deaf", "qc", &a));
  assert_true(tb_claim_next(t, "w-deaf", "qc", &b));
  tb_heartbeat(t, "w-deaf", 30000);
  tb_cancel(t, "t-stop", "requested"); /* nobody listened */
  rtq_conn *sub = tb_subscribe(t, rtq_keys_chan_cancel(&t->k));

  tb_broker_once(t, "--heartbeat-ttl", "30s");

  char *msg = tb_next_message(sub);
  assert_non_null(msg);
  assert_string_equal(msg, "t-stop");
  free(msg);
  tb_assert_field(t, "t-stop", "status", "running"); /* its worker ends it */
  assert_int_equal(tb_stat(t, "broker", "cancel_republished"), 1);
  /* Once it is terminal, its flag is gone. */
  char *tag = tb_finish(t, "w-deaf", &a, "cancelled", "CANCELLED");
  assert_string_equal(tag, "ok");
  free(tag);
  assert_int_equal(tb_exists(t, rtq_keys_cancel(&t->k, "t-stop")), 0);
  tb_claim_free(&a);
  tb_claim_free(&b);
  rtq_conn_free(sub);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker_timing_backstop_times_out_silent_worker_task, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_timing_backstop_times_out_task_of_vanished_worker, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_timing_backstop_reaches_past_live_overdue_tasks,
                                      tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_timing_backstop_leaves_live_worker_alone, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_timing_promotes_delayed_tasks_within_a_second, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_timing_promotes_retry_backoff, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_timing_republishes_cancel_requests, tb_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
