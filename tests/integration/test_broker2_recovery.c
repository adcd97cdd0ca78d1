/*
 * test_broker2_recovery.c - rtq-broker under protocol 2 redelivers what a
 * dead worker held, on every queue it served (more than one recover call
 * per list), ends a task WORKER_LOST after max deliveries, finds the lists
 * of a worker without a record on every queue, and ends a live worker's
 * overrun task through the timeout backstop.
 */
#include "test_broker2_helpers.h"

/* Every task of prefix on queue has status want. */
static bool all_are(tb *t, const char *queue, const char *prefix, int n, const char *want) {
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%04d", prefix, i);
    if (!tb2_field_is(t, queue, id, "s", want)) return false;
  }
  return true;
}

static void test_broker2_recovery_dead_worker_over_three_queues(void **state) {
  tb *t = *state;
  const char *wid = "w-dead-1";
  const char *queues[3] = {"qa", "qb", "qc"};
  const int counts[3] = {230, 7, 64};
  tb2_heartbeat(t, wid, 600000, "qa:1,qb:2,qc:1");
  for (int q = 0; q < 3; q++) {
    tb2_create_n(t, queues[q], queues[q], counts[q], NULL);
    assert_int_equal(tb2_take_all(t, wid, queues[q]), counts[q]);
  }
  /* A queue the worker did not serve: its list there is not its business. */
  tb2_create(t, "qother", "o-1", NULL);
  tb2_age_worker(t, wid, 60000);

  tb2_broker_once(t, "--heartbeat-ttl", "30s");
  for (int q = 0; q < 3; q++) {
    assert_true(all_are(t, queues[q], queues[q], counts[q], "pending"));
    assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, queues[q])), counts[q]);
    assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, queues[q], wid)), 0);
    assert_int_equal(tb2_stat(t, queues[q], "redelivered"), counts[q]);
  }
  assert_int_equal(tb2_stat(t, NULL, "recovered"), 230 + 7 + 64);
  assert_int_equal(tb2_stat(t, NULL, "dead_workers"), 1);
  assert_null(rtq_test_cmd_str(t->c, "ZSCORE", rtq_keys2_workers(&K2).s, wid, NULL));
  assert_int_equal(rtq_test_cmd_int(t->c, "EXISTS", rtq_keys2_worker(&K2, wid).s, NULL), 0);
  assert_true(tb2_stat(t, NULL, "sweeps") == 1);
  /* Pending again, it has no start time of the run that was lost. */
  char *began = tb2_field(t, "qb", "qb-0003", "b");
  assert_null(began);
  /* Taken again, each task's next delivery is its second. */
  assert_int_equal(tb2_take_all(t, "w-next", "qb"), 7);
  assert_true(tb2_field_is(t, "qb", "qb-0003", "a", "2"));
}

static void test_broker2_recovery_max_deliveries_end_worker_lost(void **state) {
  tb *t = *state;
  tb2_heartbeat(t, "w-a", 600000, "ql:1");
  tb2_create(t, "ql", "lost-1", NULL);
  tb2_create(t, "ql", "again-1", NULL);
  assert_int_equal(tb2_take_all(t, "w-a", "ql"), 2);
  /* lost-1 was delivered twice already. */
  rtq_test_cmd_int(t->c, "HSET", rtq_keys2_task(&K2, "ql", "lost-1").s, "a", "2", NULL);
  tb2_age_worker(t, "w-a", 60000);
  tb2_broker_once(t, "--max-deliveries", "2");
  assert_true(tb2_field_is(t, "ql", "lost-1", "s", "failed"));
  assert_true(tb2_field_is(t, "ql", "lost-1", "ec", "WORKER_LOST"));
  assert_true(rtq_test_cmd_int(t->c, "PTTL", rtq_keys2_task(&K2, "ql", "lost-1").s, NULL) > 0);
  char *done = rtq_test_cmd_str(t->c, "LINDEX", rtq_keys2_done(&K2, "ql", RTQ_STATUS_FAILED).s,
                                "0", NULL);
  assert_string_equal(done, "lost-1");
  free(done);
  assert_true(tb2_field_is(t, "ql", "again-1", "s", "pending"));
  assert_int_equal(tb2_stat(t, NULL, "worker_lost"), 1);
  assert_int_equal(tb2_stat(t, "ql", "failed"), 1);
}

static void test_broker2_recovery_worker_without_record_every_queue(void **state) {
  tb *t = *state;
  tb2_heartbeat(t, "w-gone", 600000, "q1:1");
  tb2_create(t, "q1", "a-1", NULL);
  tb2_create(t, "q2", "b-1", NULL);
  assert_int_equal(tb2_take_all(t, "w-gone", "q1"), 1);
  assert_int_equal(tb2_take_all(t, "w-gone", "q2"), 1);
  /* The record is gone (and the score still fresh): every queue's list of
   * the worker is recovered, also q2, which the record never named. */
  rtq_test_cmd_int(t->c, "DEL", rtq_keys2_worker(&K2, "w-gone").s, NULL);
  /* Junk in the registry is skipped, not swept. */
  rtq_test_cmd_int(t->c, "SADD", rtq_keys2_queues(&K2).s, "bad queue", NULL);
  tb2_broker_once(t, "--log-level", "INFO");
  assert_true(tb2_field_is(t, "q1", "a-1", "s", "pending"));
  assert_true(tb2_field_is(t, "q2", "b-1", "s", "pending"));
  assert_true(tb_file_contains(t->log, "its worker record is missing"));
  assert_int_equal(rtq_test_cmd_int(t->c, "ZCARD", rtq_keys2_workers(&K2).s, NULL), 0);
}

static void test_broker2_recovery_leaves_live_workers_alone(void **state) {
  tb *t = *state;
  tb2_heartbeat(t, "w-live", 600000, "q1:1");
  tb2_create_n(t, "q1", "l", 3, NULL);
  assert_int_equal(tb2_take_all(t, "w-live", "q1"), 3);
  tb2_broker_once(t, "--heartbeat-ttl", "30s");
  assert_true(all_are(t, "q1", "l", 3, "running"));
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "q1", "w-live")), 3);
}

/* A live worker's task past deadline + grace ends timeout; its worker is
 * told on {ns}:cancel; a task within its time and a task of the same
 * worker on another queue within its time keep running. */
static void test_broker2_recovery_backstop_times_out_overrun(void **state) {
  tb *t = *state;
  tb2_heartbeat(t, "w-slow", 600000, "qt:1,qu:1");
  tb2_create(t, "qt", "over-1", &(tb2_opts){.timeout_ms = 100});
  tb2_create(t, "qt", "fine-1", &(tb2_opts){.timeout_ms = 600000});
  tb2_create(t, "qu", "fine-2", NULL);
  assert_int_equal(tb2_take_all(t, "w-slow", "qt"), 2);
  assert_int_equal(tb2_take_all(t, "w-slow", "qu"), 1);
  /* Past its deadline (100 ms) and the grace (200 ms). */
  uint64_t until = tb_redis_now(t) + 400;
  while (tb_redis_now(t) < until) rtq__test_poll_pause(20);
  rtq_conn *s = rtq_test_conn_new(t->url);
  freeReplyObject(rtq_test_command(s, "SUBSCRIBE", rtq_keys2_chan_cancel(&K2).s, NULL));
  tb2_broker_once(t, "--timeout-grace", "200ms");
  assert_true(tb2_field_is(t, "qt", "over-1", "s", "timeout"));
  assert_true(tb2_field_is(t, "qt", "over-1", "ec", "TIMEOUT"));
  assert_true(tb2_field_is(t, "qt", "fine-1", "s", "running"));
  assert_true(tb2_field_is(t, "qu", "fine-2", "s", "running"));
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qt", "w-slow")), 1);
  assert_int_equal(tb2_stat(t, NULL, "timeouts"), 1);
  char *msg = tb_next_message(s);
  assert_non_null(msg);
  assert_string_equal(msg, "over-1");
  free(msg);
  rtq_conn_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker2_recovery_dead_worker_over_three_queues, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_recovery_max_deliveries_end_worker_lost,
                                      tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_recovery_worker_without_record_every_queue,
                                      tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_recovery_leaves_live_workers_alone, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_recovery_backstop_times_out_overrun, tb2_setup,
                                      tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
