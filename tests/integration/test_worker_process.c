/*
 * test_worker_process.c - process isolation: results and progress through
 * the pipe, crashes (SIGSEGV, abort) reported with the signal and a
 * backtrace while the worker carries on, a cancel seen by the child through
 * the shared page, a handler that ignores it killed after the grace, and
 * RLIMIT_CPU.
 */
#include "test_worker_util.h"

static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc_, &wk);
  tw_start(&wk, rtq_test_redis_url(), "--isolation", "process", "--concurrency", "4", "--kill-grace",
           "300ms", "--rlimit-cpu", "1", NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc_, &wk, true);
  return 0;
}

static void test_worker_process_echo_and_progress(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE], sl[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.echo", "{\"k\":\"v\"}", NULL, id);
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":0.4,\"steps\":4}", NULL, sl);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "{\"k\":\"v\"}");
  free(json);
  rtq_task_free(t);
  t = tw_wait(cl, sl, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_true(t->progress == 100.0);
  assert_string_equal(t->progress_message, "step 4/4");
  rtq_task_free(t);
}

static void expect_crash(const char *how, const char *signame) {
  char args[64], id[RTQ_TASK_ID_SIZE], after[RTQ_TASK_ID_SIZE];
  snprintf(args, sizeof args, "{\"how\":\"%s\"}", how);
  tw_enqueue(cl, "rtq.crash", args, NULL, id);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "WORKER_CRASH");
  if (TW_SANITIZED && strcmp(how, "segv") == 0) {
    /* ASan catches the bad write itself and exits the child with 1. */
    printf("  (sanitized build) %s\n", t->error_message);
    rtq_task_free(t);
    return;
  }
  assert_non_null(strstr(t->error_message, signame));
  assert_non_null(t->error_traceback);
  assert_non_null(strstr(t->error_traceback, signame));
  assert_non_null(strstr(t->error_traceback, "backtrace:"));
  printf("  %s traceback:\n%.600s\n", how, t->error_traceback);
  rtq_task_free(t);
  /* The worker carries on. */
  tw_enqueue(cl, "rtq.noop", NULL, NULL, after);
  t = tw_wait(cl, after, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
}

static void test_worker_process_segfault_is_worker_crash(void **state) {
  (void)state;
  expect_crash("segv", "SIGSEGV");
}

static void test_worker_process_abort_is_worker_crash(void **state) {
  (void)state;
  expect_crash("abort", "SIGABRT");
}

static void test_worker_process_cancel_reaches_child(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":30,\"steps\":30}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  assert_int_equal(rtq_cancel_task(cl, id, NULL), 0);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  long long ms = (long long)t->completed_at - (long long)t->cancel_requested;
  printf("  process isolation: cancel -> cancelled in %lld ms\n", ms);
  /* Well inside the handler's 1 s sleep step: the cancel frame woke it
   * (the figure is printed; a loaded machine stretches it). */
  assert_true(ms >= 0 && ms <= 500);
  assert_null(strstr(t->error_message, "killed"));
  rtq_task_free(t);
}

static void test_worker_process_ignored_cancel_is_killed(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":30,\"steps\":30,\"ignore_cancel\":true}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  assert_int_equal(rtq_cancel_task(cl, id, NULL), 0);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  assert_non_null(strstr(t->error_message, "killed"));
  long long ms = (long long)t->completed_at - (long long)t->cancel_requested;
  printf("  ignored cancel: killed and written after %lld ms (grace 300)\n", ms);
  assert_true(ms >= 290 && ms <= 800);
  rtq_task_free(t);
  assert_true(tw_log_contains(&wk, "killing its process"));
}

static void test_worker_process_cpu_limit(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  /* A trillion progress reports: pure CPU, stopped by RLIMIT_CPU (1 s). */
  tw_enqueue(cl, "rtq.progress", "{\"count\":1000000000000}", NULL, id);
  /* 1 s of CPU time: on a machine whose cores are busy with other work
   * the child gets a fraction of one, so the wall-clock bound is wide. */
  rtq_task *t = tw_wait(cl, id, 30000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "WORKER_CRASH");
  assert_true(strstr(t->error_message, "SIGXCPU") != NULL || strstr(t->error_message, "SIGKILL") != NULL);
  printf("  cpu limit: %s\n", t->error_message);
  rtq_task_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_process_echo_and_progress, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_process_segfault_is_worker_crash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_process_abort_is_worker_crash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_process_cancel_reaches_child, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_process_ignored_cancel_is_killed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_process_cpu_limit, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
