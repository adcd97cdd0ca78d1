/*
 * test_fault_broker.c - broker failover with real workers (issue 8,
 * test 13): four busy workers die at once holding 1000 running tasks; the
 * leader broker is killed with -9 while it is recovering them; the standby
 * takes the lease and finishes the job. No task is requeued twice, each is
 * redelivered once and ends once.
 */
#include "fault.h"

#define F13_TASKS 1000
#define F13_WORKERS 4
#define F13_LEASE_MS 1500
#define F13_SWEEP_MS 100

/* Ids left in the dead workers' processing lists. */
static long long processing_total(fx *f, char ids[][RTQ_NAME_MAX + 1]) {
  long long n = 0;
  for (int i = 0; i < F13_WORKERS; i++) n += fx_llen(f, rtq_keys2_processing(&f->k, FX_QUEUE, ids[i]));
  return n;
}

static void test_fault_broker_leader_killed_mid_recovery(void **state) {
  fx *f = fx_new(state, "fault13", NULL);
  fx_events *ev = fx_events_start(f, F13_TASKS);
  fx_proc *leader = fx_broker(f, "broker-a", NULL);
  RTQ_TEST_WAIT_FOR(fx_leads(f, leader), 5000);
  fx_proc *standby = fx_broker(f, "broker-b", NULL);
  RTQ_TEST_WAIT_FOR(fx_log_count(standby, "standing by") > 0, 5000);

  fx_proc *w[F13_WORKERS];
  char ids[F13_WORKERS][RTQ_NAME_MAX + 1];
  for (int i = 0; i < F13_WORKERS; i++) {
    char name[16];
    snprintf(name, sizeof name, "worker-%d", i + 1);
    w[i] = fx_worker(f, name, "--concurrency", "250", "--thread-stack", "64", NULL);
    snprintf(ids[i], sizeof ids[i], "%s", w[i]->id);
  }
  fx_sleep_args sa = {.seconds = 2.5, .steps = 5};
  fx_enqueue(f, 0, F13_TASKS, "rtq.sleep", fx_sleep_fill, &sa);
  RTQ_TEST_WAIT_FOR(fx_events_claimed(ev) == F13_TASKS, 10000);
  for (int i = 0; i < F13_WORKERS; i++) fx_kill9(w[i]);
  fx_check(f, fx_events_terminal(ev) == 0, "the workers died with every task running");

  /* Kill the leader as soon as it has started recovering: poll tightly
   * (bounded) for the first id to leave the dead workers' lists. */
  uint64_t deadline = rtq_test_now_ms() + 10000;
  long long left = F13_TASKS;
  while ((left = processing_total(f, ids)) == F13_TASKS && rtq_test_now_ms() < deadline) fx_sleep_ms(1);
  fx_check(f, left < F13_TASKS, "the leader started recovering within 10 s");
  assert_int_equal(rtq_test_kill(leader->pid, SIGKILL), 0);
  uint64_t t_kill = rtq_test_now_ms();
  assert_int_equal(rtq_test_wait_exit(leader->pid, 5000, NULL), 0);
  leader->pid = -1;
  long long left_after = processing_total(f, ids);

  RTQ_TEST_WAIT_FOR(fx_leads(f, standby), 2 * F13_LEASE_MS + 1000);
  uint64_t takeover_ms = rtq_test_now_ms() - t_kill;
  RTQ_TEST_WAIT_FOR(processing_total(f, ids) == 0, 10000);
  uint64_t recovered_ms = rtq_test_now_ms() - t_kill;
  assert_int_equal(fx_llen(f, rtq_keys2_queue(&f->k, FX_QUEUE)), F13_TASKS);
  assert_int_equal(fx_stat(f, "default", "redelivered"), F13_TASKS);

  /* Fresh workers run everything to the end. */
  for (int i = 0; i < F13_WORKERS; i++) {
    char name[16];
    snprintf(name, sizeof name, "worker-%d", i + 5);
    w[i] = fx_worker(f, name, "--concurrency", "250", "--thread-stack", "64", NULL);
  }
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F13_TASKS, 20000);
  assert_int_equal(fx_count_status(f, F13_TASKS, RTQ_STATUS_COMPLETED), F13_TASKS);
  fx_events_assert_once(ev);
  fx_tally t = fx_events_tally(ev);
  int attempt2 = 0;
  for (int i = 0; i < F13_TASKS; i++) attempt2 += fx_events_get(ev, i).max_attempt == 2;
  fx_figure(f,
            "%d workers killed -9 holding %d running tasks; leader broker killed -9 mid-recovery with %lld "
            "(then %lld) of %d ids still in the dead workers' lists; the standby took the lease after "
            "%llu ms (lease %d ms, sweep %d ms) and had recovered the rest %llu ms after the kill; %d tasks "
            "redelivered once, %d twice (queue counters redelivered %lld); %d ended exactly once, all on attempt 2: %d",
            F13_WORKERS, F13_TASKS, left, left_after, F13_TASKS, (unsigned long long)takeover_ms, F13_LEASE_MS,
            F13_SWEEP_MS, (unsigned long long)recovered_ms, t.redelivered - t.redelivered_twice,
            t.redelivered_twice, fx_stat(f, "default", "redelivered"), t.ended_once, attempt2);
  assert_int_equal(t.redelivered, F13_TASKS);
  assert_int_equal(t.redelivered_twice, 0);
  assert_int_equal(attempt2, F13_TASKS);
  assert_int_equal(fx_stat_terminal(f, "default"), F13_TASKS);
  fx_check(f, takeover_ms <= F13_LEASE_MS + F13_SWEEP_MS + 500, "takeover within lease + sweep, took %llu ms",
           (unsigned long long)takeover_ms);
  for (int i = 0; i < F13_WORKERS; i++) assert_int_equal(fx_stop(w[i], 10000), 0);
  assert_int_equal(fx_stop(standby, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fault_broker_leader_killed_mid_recovery, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
