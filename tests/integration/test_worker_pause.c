/*
 * test_worker_pause.c - queue control: a paused queue is claimed from by
 * no worker within a second (a worker waiting on it in BLMOVE included,
 * and a worker that starts while it is paused), its backlog stays, the
 * other queues of the same worker go on, and resume lets its tasks run.
 * Checking that nothing happens needs a bounded wait: PAUSE_SETTLE_MS.
 */
#include <time.h>

#include "test_worker_util.h"

#define PAUSE_SETTLE_MS 1000

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

static void settle(void) {
  struct timespec ts = {PAUSE_SETTLE_MS / 1000, (PAUSE_SETTLE_MS % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static bool still_waiting(const char *id) {
  return tw_field_is(rc_, id, "status", "pending") && tw_hget_ll(rc_, id, "attempt") == 0;
}

static bool queue_paused_in_stats(const char *queue) {
  rtq_stats *s = NULL;
  assert_int_equal(rtq_get_stats(cl, &s), 0);
  bool paused = false;
  for (size_t i = 0; i < s->nqueues; i++)
    if (strcmp(s->queues[i].name, queue) == 0) paused = s->queues[i].paused;
  rtq_stats_free(s);
  return paused;
}

/* One worker waits on the queue when it is paused. */
static void test_worker_pause_stops_claims_within_a_second(void **state) {
  (void)state;
  char warm[RTQ_TASK_ID_SIZE], id[RTQ_TASK_ID_SIZE];
  tw_start(&wk, rtq_test_redis_url(), "--log-level", "INFO", NULL);
  tw_enqueue(cl, "rtq.echo", NULL, NULL, warm);
  rtq_task_free(tw_wait(cl, warm, 5000)); /* the worker is up and waiting */

  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_queue_pause(cl, "default"), 0);
  assert_int_equal(rtq_queue_pause(cl, "default"), 0); /* idempotent */
  /* Within one 500 ms read of P:paused; the deadline leaves room for a
   * loaded machine, and the time it took is printed. */
  RTQ_TEST_WAIT_FOR(tw_log_contains(&wk, "queue paused"), 3000);
  uint64_t noticed = rtq_test_now_ms() - t0;
  print_message("worker noticed the pause after %llu ms\n", (unsigned long long)noticed);
  tw_enqueue(cl, "rtq.echo", NULL, NULL, id);
  settle();
  assert_true(still_waiting(id));
  assert_true(queue_paused_in_stats("default"));
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", tw_key_queue("default").s, NULL), 1);

  assert_int_equal(rtq_queue_resume(cl, "default"), 0);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  assert_false(queue_paused_in_stats("default"));
}

/* A worker of two queues: the paused one waits, the other runs. */
static void test_worker_pause_leaves_other_queues_running(void **state) {
  (void)state;
  assert_int_equal(rtq_queue_pause(cl, "a"), 0);
  char ida[RTQ_TASK_ID_SIZE], idb[RTQ_TASK_ID_SIZE];
  rtq_task_options oa = {.queue = "a"}, ob = {.queue = "b"};
  tw_enqueue(cl, "rtq.echo", NULL, &oa, ida);
  tw_enqueue(cl, "rtq.echo", NULL, &ob, idb);
  tw_start(&wk, rtq_test_redis_url(), "--queue", "a", "--queue", "b", NULL);
  rtq_task *t = tw_wait(cl, idb, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  settle();
  /* Started while "a" was paused: nothing taken from it. */
  assert_true(still_waiting(ida));
  assert_int_equal(rtq_queue_resume(cl, "a"), 0);
  t = tw_wait(cl, ida, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
}

static void test_worker_pause_refuses_a_bad_name(void **state) {
  (void)state;
  assert_int_equal(rtq_queue_pause(cl, "bad name"), RTQ_EINVAL);
  assert_int_equal(rtq_queue_resume(cl, ""), RTQ_EINVAL);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", tw_key_paused().s, NULL), 0);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_worker_pause_stops_claims_within_a_second),
      T(test_worker_pause_leaves_other_queues_running),
      T(test_worker_pause_refuses_a_bad_name),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
