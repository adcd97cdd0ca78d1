/*
 * test_worker_unknown.c - a task whose name a worker has no handler for.
 * By default the worker fails it UNKNOWN_TASK at once; with
 * --unknown-task requeue it hands the task back through P:delayed (the
 * broker promotes it again), so that a worker with the handler runs it,
 * and fails it UNKNOWN_TASK once it has been handed back the most times.
 * Two real rtq-worker processes with different handler sets (the demo
 * handlers; the demo handlers plus the example plugin's plugin.shout) and
 * a real rtq-broker.
 */
#include "test_worker_util.h"

static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wa, wb;
static pid_t broker = -1;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc_, &wa);
  wb.pid = -1;
  broker = -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (wb.pid > 0) assert_int_equal(tw_stop(&wb, 15000), 0);
  if (broker > 0) {
    int st = 0;
    assert_int_equal(rtq_test_terminate(broker, SIGTERM, 30000, &st), 0);
    broker = -1;
  }
  tw_close(cl, rc_, &wa, true);
  return 0;
}

static void start_broker(void) {
  char bin[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  const char *argv[] = {bin, "--redis", rtq_test_redis_url(), NULL};
  static char log[256];
  snprintf(log, sizeof log, "%s/broker-unknown.log", rtq_test_redis_dir(rtq_test_redis_default()));
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = log};
  broker = rtq_test_spawn_ex(&so);
  assert_true(broker > 0);
}

static const char *plugin_path(void) {
  static char so[1024];
  assert_non_null(rtq_test_bin_path("worker/rtq-example-plugin.so", so, sizeof so));
  return so;
}

static bool handed_back_once(const char *id) {
  return tw_hget_ll(rc_, id, "handbacks") == 1 && tw_field_is(rc_, id, "status", "pending");
}

/* Worker A (no plugin.shout) hands the tasks back; once it has stopped,
 * worker B (with plugin.shout) gets them from the delayed set and runs
 * them. */
static void test_worker_unknown_requeue_reaches_a_worker_with_the_handler(void **state) {
  (void)state;
  start_broker();
  tw_start(&wa, rtq_test_redis_url(), "--unknown-task", "requeue", NULL);
  enum { N = 3 };
  char ids[N][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < N; i++) tw_enqueue(cl, "plugin.shout", "{\"text\":\"hi\"}", NULL, ids[i]);
  for (int i = 0; i < N; i++) RTQ_TEST_WAIT_FOR(handed_back_once(ids[i]), 10000);
  /* Handed back, not failed: the envelopes wait in P:delayed. */
  rtq_key2 delayed = tw_key_delayed();
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", delayed.s, NULL), N);
  assert_int_equal(tw_stop(&wa, 15000), 0);

  tw_start(&wb, rtq_test_redis_url(), "--plugin", plugin_path(), NULL);
  for (int i = 0; i < N; i++) {
    rtq_task *t = tw_wait(cl, ids[i], 30000);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    rtq_task_free(t);
    assert_int_equal(tw_hget_ll(rc_, ids[i], "handbacks"), 1);
    assert_true(tw_field_is(rc_, ids[i], "worker", wb.id));
  }
}

/* A task handed back the most times (5) already fails UNKNOWN_TASK, and
 * says why. */
static void test_worker_unknown_requeue_fails_after_the_most_handbacks(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "plugin.shout", "{\"text\":\"hi\"}", NULL, id);
  rtq_key2 task = tw_key_task(rc_, id);
  assert_int_equal(rtq_test_cmd_int(rc_, "HSET", task.s, tw_field("handbacks"), "5", NULL), 1);
  tw_start(&wa, rtq_test_redis_url(), "--unknown-task", "requeue", NULL);
  rtq_task *t = tw_wait(cl, id, 10000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "UNKNOWN_TASK");
  assert_non_null(strstr(t->error_message, "handed back 5 times"));
  rtq_task_free(t);
  assert_int_equal(tw_hget_ll(rc_, id, "handbacks"), 5);
}

/* The default: no handback, the task fails at once. */
static void test_worker_unknown_fail_is_the_default(void **state) {
  (void)state;
  tw_start(&wa, rtq_test_redis_url(), NULL);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "plugin.shout", "{\"text\":\"hi\"}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 10000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "UNKNOWN_TASK");
  rtq_task_free(t);
  assert_int_equal(tw_hget_ll(rc_, id, "handbacks"), -1); /* absent */
}

/* A bad value is refused at start-up. */
static void test_worker_unknown_flag_is_checked(void **state) {
  (void)state;
  const char *argv[] = {"rtq-worker", "--redis", rtq_test_redis_url(), "--unknown-task", "retry", NULL};
  rtq_test_spawn_options so = {.path = tw_bin(), .argv = argv, .output_path = "/dev/null"};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  int st = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &st), 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_unknown_requeue_reaches_a_worker_with_the_handler,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_unknown_requeue_fails_after_the_most_handbacks,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_unknown_fail_is_the_default, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_unknown_flag_is_checked, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
