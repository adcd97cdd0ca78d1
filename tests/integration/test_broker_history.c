/*
 * test_broker_history.c - nothing the broker ends grows without bound:
 * the done lists of tasks it ends are capped at max_task_history (the
 * trimmed tasks' hashes deleted), every terminal task has a TTL however it
 * ended, and with history off a task the broker ends lives only long
 * enough for a waiter to read it. (The cap that finish keeps:
 * tests/lua2 test_history_cap_deletes_old_tasks_in_finish; ids of expired
 * tasks pruned: test_broker2_sweeps.c.)
 *
 * The worker is played with protocol 2's scripts; the broker is the real
 * binary, run with --once.
 */
#include "test_broker2_helpers.h"
#include "test_client_fake_worker2.h"

static const rtq__keep2 KEEP = {86400, true, 10000};

static long long task_ttl(tb *t, const char *queue, const char *id) {
  return rtq_test_cmd_int(t->c, "TTL", rtq_keys2_task(&K2, queue, id).s, NULL);
}

static bool task_exists(tb *t, const char *queue, const char *id) {
  return rtq_test_cmd_int(t->c, "EXISTS", rtq_keys2_task(&K2, queue, id).s, NULL) == 1;
}

/* Task id of queue taken by wid and ended with status by its finish. */
static void run_to_end(tb *t, const char *queue, const char *id, rtq_status status) {
  tb2_create(t, queue, id, NULL);
  fake_job2 j;
  assert_int_equal(fw2_take(t->c, &K2, queue, "w-h", &j), 0);
  assert_string_equal(j.id, id);
  assert_int_equal(fw2_end(t->c, &K2, &j, status), 0);
}

/* Tasks the broker ends (WORKER_LOST) keep their done list at the cap;
 * the oldest go, hashes and all. */
static void test_broker_history_broker_caps_the_done_lists(void **state) {
  tb *t = *state;
  tb2_heartbeat(t, "w-dead", 600000, "qh:1");
  tb2_create_n(t, "qh", "h", 12, NULL);
  assert_int_equal(tb2_take_all(t, "w-dead", "qh"), 12);
  tb2_age_worker(t, "w-dead", 60000);

  tb2_broker_once(t, "--max-deliveries", "1", "--max-task-history", "5");

  assert_int_equal(tb2_stat(t, NULL, "worker_lost"), 12);
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys2_done(&K2, "qh", RTQ_STATUS_FAILED).s,
                                   "0", "-1", NULL);
  assert_int_equal(r->elements, 5);
  int kept = 0;
  for (int i = 0; i < 12; i++) {
    char id[32];
    snprintf(id, sizeof id, "h-%04d", i);
    bool listed = false;
    for (size_t e = 0; e < r->elements; e++) listed |= strcmp(r->element[e]->str, id) == 0;
    /* A task is kept exactly while its id is in the list. */
    assert_int_equal(task_exists(t, "qh", id), listed);
    kept += listed;
  }
  freeReplyObject(r);
  assert_int_equal(kept, 5);
}

static void test_broker_history_every_terminal_task_has_a_ttl(void **state) {
  tb *t = *state;
  run_to_end(t, "qx", "x-completed", RTQ_STATUS_COMPLETED);
  run_to_end(t, "qx", "x-failed", RTQ_STATUS_FAILED);
  tb2_create(t, "qx-c", "x-cancelled", NULL);
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_cancel(&a, &K2, false, "qx-c", "x-cancelled", &KEEP), 0);
  redisReply *r = tb2_run(t, &a);
  assert_string_equal(r->element[0]->str, "cancelled");
  freeReplyObject(r);
  /* Ended by a worker's dead-lettering. */
  tb2_create(t, "qx-d", "x-dead", NULL);
  assert_int_equal(tb2_take_all(t, "w-d", "qx-d"), 1);
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_deadletter(&a, &K2, false, "qx-d", (rtq__bytes2){"x-dead", 6},
                                         "BAD_SIGNATURE", "the test", "w-d", false, &KEEP),
                   0);
  freeReplyObject(tb2_run(t, &a));
  /* Ended by the broker: WORKER_LOST, and timeout (a dead worker's
   * overdue run and a live worker's). */
  tb2_heartbeat(t, "w-lost", 600000, "qx-l:1");
  tb2_create(t, "qx-l", "x-lost", NULL);
  assert_int_equal(tb2_take_all(t, "w-lost", "qx-l"), 1);
  tb2_heartbeat(t, "w-gone", 600000, "qx-t:1");
  tb2_create(t, "qx-t", "x-timeout", &(tb2_opts){.timeout_ms = 1});
  assert_int_equal(tb2_take_all(t, "w-gone", "qx-t"), 1);
  tb2_heartbeat(t, "w-slow", 600000, "qx-b:1");
  tb2_create(t, "qx-b", "x-backstop", &(tb2_opts){.timeout_ms = 1});
  assert_int_equal(tb2_take_all(t, "w-slow", "qx-b"), 1);
  tb2_age_worker(t, "w-lost", 60000);
  tb2_age_worker(t, "w-gone", 60000);
  uint64_t until = tb_redis_now(t) + 20;
  while (tb_redis_now(t) < until) rtq__test_poll_pause(1);

  tb2_broker_once(t, "--max-deliveries", "1", "--timeout-grace", "0");

  static const struct {
    const char *queue, *id, *status;
  } want[] = {{"qx", "x-completed", "completed"}, {"qx", "x-failed", "failed"},
              {"qx-c", "x-cancelled", "cancelled"}, {"qx-d", "x-dead", "failed"},
              {"qx-l", "x-lost", "failed"},         {"qx-t", "x-timeout", "timeout"},
              {"qx-b", "x-backstop", "timeout"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (!tb2_field_is(t, want[i].queue, want[i].id, "s", want[i].status))
      fail_msg("%s: not %s", want[i].id, want[i].status);
    long long ttl = task_ttl(t, want[i].queue, want[i].id);
    if (!(ttl > 0 && ttl <= 86400)) fail_msg("%s: TTL %lld", want[i].id, ttl);
  }
  assert_true(tb2_field_is(t, "qx-l", "x-lost", "ec", "WORKER_LOST"));
  assert_true(tb2_field_is(t, "qx-d", "x-dead", "ec", "BAD_SIGNATURE"));
}

/* With history off, a task the broker ends lives only long enough for a
 * waiter to read it, and is in no done list. */
static void test_broker_history_off_keeps_terminal_tasks_briefly(void **state) {
  tb *t = *state;
  tb2_heartbeat(t, "w-n", 600000, "qn:1");
  tb2_create(t, "qn", "n-lost", NULL);
  assert_int_equal(tb2_take_all(t, "w-n", "qn"), 1);
  tb2_age_worker(t, "w-n", 60000);

  tb2_broker_once(t, "--max-deliveries", "1", "--no-history");

  assert_true(tb2_field_is(t, "qn", "n-lost", "s", "failed"));
  long long ttl = task_ttl(t, "qn", "n-lost");
  assert_true(ttl > 0 && ttl <= 60);
  assert_int_equal(tb2_len(t, rtq_keys2_done(&K2, "qn", RTQ_STATUS_FAILED)), 0);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tb2_setup, tb_teardown)
  const struct CMUnitTest tests[] = {
      T(test_broker_history_broker_caps_the_done_lists),
      T(test_broker_history_every_terminal_task_has_a_ttl),
      T(test_broker_history_off_keeps_terminal_tasks_briefly),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
