/*
 * test_worker_shutdown.c - graceful stop: a task that finishes within the
 * grace completes; one that does not is handed back to its queue with
 * nothing lost (thread and process isolation); a second signal skips the
 * grace; an idle worker blocked in BLMOVE exits at once.
 */
#include "test_worker_util.h"

static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc_, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc_, &wk, false);
  return 0;
}

static int stop_with(tw_worker *w, int sig, int timeout_ms, uint64_t *elapsed) {
  uint64_t t0 = rtq_test_now_ms();
  int st = 0;
  int rc = rtq_test_terminate(w->pid, sig, timeout_ms, &st);
  *elapsed = rtq_test_now_ms() - t0;
  w->pid = -1;
  int code = rc != 0 ? -2 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  if (code == 0)
    unlink(w->log);
  else
    tw_dump_log(w);
  return code;
}

static void assert_nothing_held(const char *wid) {
  rtq_key proc = rtq_keys_processing(&tw_keys, wid), rec = rtq_keys_worker(&tw_keys, wid);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", rec.s, NULL), 0);
}

static void test_worker_shutdown_lets_task_finish(void **state) {
  (void)state;
  tw_start(&wk, rtq_test_redis_url(), "--shutdown-grace", "10s", NULL);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":1,\"steps\":4}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  char wid[160];
  snprintf(wid, sizeof wid, "%s", wk.id);
  uint64_t ms;
  assert_int_equal(stop_with(&wk, SIGTERM, 10000, &ms), 0);
  printf("  exited %llu ms after SIGTERM with a 1 s task running\n", (unsigned long long)ms);
  assert_true(tw_field_is(rc_, id, "status", "completed"));
  assert_nothing_held(wid);
}

static void requeue_case(const char *isolation) {
  tw_start(&wk, rtq_test_redis_url(), "--isolation", isolation, "--shutdown-grace", "500ms", NULL);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":30,\"steps\":30,\"ignore_cancel\":true}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  char wid[160];
  snprintf(wid, sizeof wid, "%s", wk.id);
  uint64_t ms;
  assert_int_equal(stop_with(&wk, SIGTERM, 10000, &ms), 0);
  printf("  %s: exited %llu ms after SIGTERM (grace 500 ms)\n", isolation, (unsigned long long)ms);
  assert_true(ms < 3000);
  /* Handed back: pending, first in line, the attempt not counted. */
  assert_true(tw_field_is(rc_, id, "status", "pending"));
  assert_int_equal(tw_hget_ll(rc_, id, "attempt"), 0);
  rtq_key q = rtq_keys_queue(&tw_keys, "default");
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", q.s, NULL), 1);
  assert_nothing_held(wid);
  /* Another worker picks it up as delivery 1. */
  tw_start(&wk, rtq_test_redis_url(), NULL);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  assert_int_equal(tw_hget_ll(rc_, id, "attempt"), 1);
  assert_int_equal(rtq_cancel_task(cl, id, NULL), 0);
}

static void test_worker_shutdown_requeues_long_task_thread(void **state) {
  (void)state;
  requeue_case("thread");
}

static void test_worker_shutdown_requeues_long_task_process(void **state) {
  (void)state;
  requeue_case("process");
}

static void test_worker_second_signal_skips_grace(void **state) {
  (void)state;
  tw_start(&wk, rtq_test_redis_url(), "--shutdown-grace", "60s", NULL);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.sleep", "{\"seconds\":30,\"steps\":30}", NULL, id);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc_, id, "status", "running"), 5000);
  assert_int_equal(rtq_test_kill(wk.pid, SIGINT), 0);
  RTQ_TEST_WAIT_FOR(tw_log_contains(&wk, "stopping: no new tasks"), 5000);
  uint64_t ms;
  assert_int_equal(stop_with(&wk, SIGINT, 10000, &ms), 0);
  printf("  second SIGINT: exited after %llu ms (grace 60 s)\n", (unsigned long long)ms);
  assert_true(ms < 3000);
  assert_true(tw_field_is(rc_, id, "status", "pending"));
}

static void test_worker_idle_shutdown_is_prompt(void **state) {
  (void)state;
  /* A 10 s BLMOVE is in flight; CLIENT UNBLOCK cuts it short. */
  tw_start(&wk, rtq_test_redis_url(), "--block-timeout", "10s", NULL);
  char wid[160];
  snprintf(wid, sizeof wid, "%s", wk.id);
  uint64_t ms;
  assert_int_equal(stop_with(&wk, SIGTERM, 10000, &ms), 0);
  printf("  idle worker exited %llu ms after SIGTERM (block timeout 10 s)\n", (unsigned long long)ms);
  assert_true(ms < 1500);
  assert_nothing_held(wid);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_shutdown_lets_task_finish, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_shutdown_requeues_long_task_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_shutdown_requeues_long_task_process, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_second_signal_skips_grace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_idle_shutdown_is_prompt, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
