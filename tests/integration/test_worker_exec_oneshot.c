/*
 * test_worker_exec_oneshot.c - rtq-worker --exec-oneshot (docs/EXEC.md
 * section 6): one process per task, args JSON on stdin, result JSON on
 * stdout, exit status and signal as error codes, timeouts end it.
 */
#include "test_worker_util.h"

static rtq_client *cl;
static rtq_conn *rc;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc, &wk, true);
  return 0;
}

static rtq_task *run_one(const char *name, const char *args, uint64_t timeout_ms) {
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = timeout_ms;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, name, args, timeout_ms ? &o : NULL, id);
  return tw_wait(cl, id, 20000);
}

static void test_worker_exec_oneshot_outcomes(void **state) {
  (void)state;
  tw_start(&wk, rtq_test_redis_url(), "--kill-grace", "300ms",
           "--exec-oneshot", "os.echo=cat",
           "--exec-oneshot", "os.empty=true",
           "--exec-oneshot", "os.fail=/bin/sh -c 'echo first >&2; echo oops >&2; exit 3'",
           "--exec-oneshot", "os.sig=/bin/sh -c 'kill -9 $$'",
           "--exec-oneshot", "os.garbage=echo not json",
           "--exec-oneshot", "os.slow=sleep 1000",
           "--exec-oneshot", "os.missing=/nonexistent/script", NULL);
  rtq_task *t = run_one("os.echo", "{\"n\":[1,2,3],\"s\":\"x\"}", 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "{\"n\":[1,2,3],\"s\":\"x\"}");
  free(json);
  rtq_task_free(t);

  t = run_one("os.empty", "{}", 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);

  t = run_one("os.fail", "{}", 0);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "EXIT_3");
  assert_string_equal(t->error_message, "first\noops\n");
  rtq_task_free(t);

  t = run_one("os.sig", "{}", 0);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "SIGNAL_KILL");
  rtq_task_free(t);

  t = run_one("os.garbage", "{}", 0);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "EXEC_PROTOCOL");
  rtq_task_free(t);

  uint64_t t0 = rtq_test_now_ms();
  t = run_one("os.slow", "{}", 1000);
  assert_int_equal(t->status, RTQ_STATUS_TIMEOUT);
  assert_true(rtq_test_now_ms() - t0 < 5000);
  rtq_task_free(t);

  t = run_one("os.missing", "{}", 0);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "EXEC_UNAVAILABLE");
  rtq_task_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_exec_oneshot_outcomes, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
