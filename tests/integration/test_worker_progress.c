/*
 * test_worker_progress.c - progress coalescing: a handler that reports a
 * million times produces at most about 10 progress events per second on
 * the events channel, and the last report (100%) is what the task shows,
 * under both isolation modes.
 */
#include <jansson.h>

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
  tw_close(cl, rc_, &wk, true);
  return 0;
}

static void coalescing_case(const char *isolation) {
  tw_start(&wk, rtq_test_redis_url(), "--isolation", isolation, NULL);
  rtq_subscription *sub = NULL;
  assert_int_equal(rtq_events_subscribe(cl, &sub), 0);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.progress", "{\"count\":1000000,\"seconds\":2}", NULL, id);
  int updates = 0;
  uint64_t first = 0, last = 0, deadline = rtq_test_now_ms() + 20000;
  bool ended = false;
  while (!ended && rtq_test_now_ms() < deadline) {
    char *json = NULL;
    int rc = rtq_subscription_next(sub, 1000, &json);
    if (rc == RTQ_ETIMEDOUT) continue;
    assert_int_equal(rc, 0);
    json_t *ev = json_loads(json, 0, NULL);
    assert_non_null(ev);
    const char *eid = json_string_value(json_object_get(ev, "id"));
    const char *st = json_string_value(json_object_get(ev, "status"));
    if (eid != NULL && strcmp(eid, id) == 0) {
      if (json_object_get(ev, "progress") != NULL) {
        uint64_t now = rtq_test_now_ms();
        if (first == 0) first = now;
        last = now;
        updates++;
      }
      if (st != NULL && strcmp(st, "completed") == 0) ended = true;
    }
    json_decref(ev);
    free(json);
  }
  rtq_subscription_free(sub);
  assert_true(ended);
  double span_s = (double)(last - first) / 1000.0;
  printf("  %s: 1000000 reports -> %d progress events over %.2f s (%.1f/s)\n", isolation, updates, span_s,
         span_s > 0 ? (updates - 1) / span_s : 0.0);
  assert_true(updates >= 5);
  /* One per 100 ms, plus the first (written at once), plus timer slack. */
  assert_true(updates <= (int)(span_s * 10.0) + 3);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_true(t->progress == 100.0);
  assert_string_equal(t->progress_message, "1000000/1000000");
  rtq_task_free(t);
}

/* rtq.progress spreads its reports over `seconds` for any count (it used
 * to pause only between batches of 1000, so a small count ignored it). */
static void test_worker_progress_demo_spreads_few_reports(void **state) {
  (void)state;
  tw_start(&wk, rtq_test_redis_url(), NULL);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.progress", "{\"count\":5,\"seconds\":1}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 15000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  uint64_t took = t->completed_at - t->started_at;
  printf("  5 reports over 1 s: started to completed in %llu ms\n", (unsigned long long)took);
  /* The last report is due 1000 ms after the handler starts; started_at
   * is stamped by Redis a little before that. */
  assert_true(took >= 950);
  assert_true(t->progress == 100.0);
  assert_string_equal(t->progress_message, "5/5");
  rtq_task_free(t);
}

static void test_worker_progress_coalesced_thread(void **state) {
  (void)state;
  coalescing_case("thread");
}

static void test_worker_progress_coalesced_process(void **state) {
  (void)state;
  coalescing_case("process");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_progress_coalesced_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_progress_coalesced_process, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_progress_demo_spreads_few_reports, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
