/*
 * test_worker_rss.c - memory: an rtq-worker with 50 idle slots (the
 * default concurrency) stays within 10 MB of RSS, under thread isolation
 * (50 pool threads) and process isolation, after it has run tasks.
 */
#include "test_worker_util.h"

static rtq_client *cl;

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  cl = tw_client(rtq_test_redis_url());
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_client_free(cl);
  return 0;
}

static void rss_case(const char *isolation) {
  if (TW_SANITIZED) skip();
  tw_worker wk;
  tw_start(&wk, rtq_test_redis_url(), "--isolation", isolation, "--concurrency", "50", NULL);
  /* Use every slot once, so the figure includes warmed-up threads. */
  char ids[100][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 100; i++) tw_enqueue(cl, "rtq.sleep", "{\"seconds\":0.05,\"steps\":2}", NULL, ids[i]);
  for (int i = 0; i < 100; i++) {
    rtq_task *t = tw_wait(cl, ids[i], 10000);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    rtq_task_free(t);
  }
  long kb = rtq_test_rss_kb(wk.pid);
  printf("  %s isolation, 50 idle slots after 100 tasks: VmRSS %ld KiB\n", isolation, kb);
  assert_true(kb > 0 && kb <= 10 * 1024);
  assert_int_equal(tw_stop(&wk, 15000), 0);
}

static void test_worker_rss_50_idle_slots_thread(void **state) {
  (void)state;
  rss_case("thread");
}

static void test_worker_rss_50_idle_slots_process(void **state) {
  (void)state;
  rss_case("process");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_rss_50_idle_slots_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_rss_50_idle_slots_process, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
