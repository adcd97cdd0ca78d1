/*
 * test_worker_shutdown.c - graceful stop: a task that finishes within the
 * grace completes; one that does not is handed back to its queue with
 * nothing lost (thread and process isolation); a second signal skips the
 * grace; an idle worker blocked in BLMOVE exits at once; SIGTERM during
 * start-up is honoured; with Redis gone, an idle worker exits at once and
 * a busy one within its grace.
 */
#include "test_worker_util.h"

#include <time.h>

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
  rtq_key2 proc = tw_key_processing(wid), rec = tw_key_worker(wid);
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
  rtq_key2 q = tw_key_queue("default");
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

static void pause_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* SIGTERM at several moments of start-up, from main's first line on
 * (while the flags are read, while connecting, right as the loop starts,
 * once the worker is registered): every time a clean exit (0), promptly,
 * and nothing left behind. */
static void test_worker_shutdown_sigterm_during_startup(void **state) {
  (void)state;
  static const long delays_us[] = {0, 1000, 3000, 10000, 30000, 100000};
  for (size_t i = 0; i <= sizeof delays_us / sizeof delays_us[0]; i++) {
    tw_spawn_v(&wk, rtq_test_redis_url(), NULL);
    RTQ_TEST_WAIT_FOR(rtq_test_sigterm_handled(wk.pid), 10000);
    if (i < sizeof delays_us / sizeof delays_us[0]) pause_us(delays_us[i]);
    else RTQ_TEST_WAIT_FOR(tw_find_worker(rc_, wk.pid, wk.id, sizeof wk.id), 10000);
    uint64_t ms;
    int code = stop_with(&wk, SIGTERM, 10000, &ms);
    printf("  SIGTERM %s: exit %d after %llu ms\n",
           i < sizeof delays_us / sizeof delays_us[0] ? "early" : "once registered", code,
           (unsigned long long)ms);
    assert_int_equal(code, 0);
    assert_true(ms < 10000); /* a sanitizer build's exit on a busy machine included */
  }
  /* No record and no processing list of any of them is left. */
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", tw_key_workers().s, NULL), 0);
}

/* Redis gone, worker idle: nothing to hand back, so SIGTERM ends it at
 * once rather than after the drain deadline (kill grace + 2 command
 * timeouts, 15 s by default). */
static void test_worker_shutdown_redis_gone_idle_exits_at_once(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  tw_start(&wk, rtq_test_redis_url_of(r), NULL);
  assert_int_equal(rtq_test_redis_kill9(r), 0);
  RTQ_TEST_WAIT_FOR(tw_log_contains(&wk, "redis"), 5000);
  uint64_t ms;
  int code = stop_with(&wk, SIGTERM, 20000, &ms);
  printf("  idle worker, redis gone: exit %d %llu ms after SIGTERM\n", code, (unsigned long long)ms);
  assert_int_equal(code, 0);
  /* At once: it used to wait kill grace + 2 command timeouts (15 s). The
   * bound leaves room for a sanitizer build's exit on a busy machine. */
  assert_true(ms < 5000);
  rtq_test_redis_stop(r);
}

/* Redis gone, a task running: the worker stops within its shutdown grace
 * (2 s here), leaving the task to the broker (exit 1), not 15 s later. */
static void test_worker_shutdown_redis_gone_busy_exits_within_grace(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  tw_start(&wk, rtq_test_redis_url_of(r), "--shutdown-grace", "2s", NULL);
  rtq_client *c2 = tw_client(rtq_test_redis_url_of(r));
  rtq_conn *rc2 = rtq_test_conn_new(rtq_test_redis_url_of(r));
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(c2, "rtq.sleep", "{\"seconds\":60,\"steps\":60}", NULL, id);
  /* Running in Redis is not enough: the worker may not have read the
   * claim's reply yet, and then it has nothing to wait for. The first
   * progress report (after the handler's first 1 s step) shows the handler
   * runs. */
  RTQ_TEST_WAIT_FOR(tw_field_is(rc2, id, "status", "running") && tw_hget_ll(rc2, id, "progress") > 0, 10000);
  rtq_client_free(c2);
  rtq_conn_free(rc2);
  assert_int_equal(rtq_test_redis_kill9(r), 0);
  uint64_t ms;
  int code = stop_with(&wk, SIGTERM, 30000, &ms);
  printf("  busy worker, redis gone: exit %d %llu ms after SIGTERM (grace 2 s)\n", code,
         (unsigned long long)ms);
  assert_int_equal(code, 1);
  /* The grace, then out: it used to wait 15 s more (kill grace + 2 command
   * timeouts); the margin is a sanitizer build's exit on a busy machine. */
  assert_true(ms >= 2000 && ms < 8000);
  rtq_test_redis_stop(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_shutdown_lets_task_finish, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_shutdown_requeues_long_task_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_shutdown_requeues_long_task_process, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_second_signal_skips_grace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_idle_shutdown_is_prompt, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_shutdown_sigterm_during_startup, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_shutdown_redis_gone_idle_exits_at_once, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_shutdown_redis_gone_busy_exits_within_grace, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
