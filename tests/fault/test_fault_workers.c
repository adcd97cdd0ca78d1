/*
 * test_fault_workers.c - workers failing under load (issue 8, tests 1, 2, 3, 5):
 *
 *   1. kill -9 of a busy worker with 1000 tasks in flight, a second worker
 *      running: every task ends, each exactly once; how many ran twice
 *   2. a worker SIGSTOPped past its heartbeat TTL, then SIGCONTed: its late
 *      results are rejected, each task completes once
 *   3. handlers that hang past their timeout, thread and process isolation:
 *      timeout within timeout + kill grace, the slot is free again
 *   5. SIGTERM during long tasks: each finishes within the grace or is
 *      handed back, none is lost
 */
#include "fault.h"

#define GRACE_MS 500 /* fx_worker's --kill-grace */

/* ---- 1. kill -9 a busy worker ------------------------------------------ */

#define F1_TASKS 1000

static void test_fault_workers_kill9_busy_worker(void **state) {
  fx *f = fx_new(state, "fault1", NULL);
  fx_events *ev = fx_events_start(f, F1_TASKS);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  fx_proc *a = fx_worker(f, "worker-a", "--concurrency", "100", NULL);
  fx_proc *b = fx_worker(f, "worker-b", "--concurrency", "100", NULL);
  rtq_key2 a_list = rtq_keys2_processing(&f->k, FX_QUEUE, a->id);

  fx_sleep_args sa = {.seconds = 0.05, .spread = 0.45}; /* 50..500 ms */
  uint64_t t_start = rtq_test_now_ms();
  fx_enqueue(f, 0, F1_TASKS, "rtq.sleep", fx_sleep_fill, &sa);

  /* Kill worker A a good way into the backlog, while it holds a full set
   * of running tasks. */
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) >= 250, 20000);
  RTQ_TEST_WAIT_FOR(fx_llen(f, a_list) >= 50, 5000);
  long long held = fx_llen(f, a_list);
  int ended_before = fx_events_terminal(ev);
  uint64_t t_kill = rtq_test_now_ms();
  fx_kill9(a);

  /* The broker notices the silence after the heartbeat TTL and requeues. */
  RTQ_TEST_WAIT_FOR(fx_llen(f, a_list) == 0, 15000);
  uint64_t requeued_ms = rtq_test_now_ms() - t_kill;
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F1_TASKS, 30000);
  uint64_t t_done = rtq_test_now_ms();

  /* Redis agrees: all completed, each terminal transition counted once. */
  assert_int_equal(fx_count_status(f, F1_TASKS, RTQ_STATUS_COMPLETED), F1_TASKS);
  RTQ_TEST_WAIT_FOR(fx_llen(f, rtq_keys2_processing(&f->k, FX_QUEUE, b->id)) == 0, 5000);
  assert_int_equal(fx_stat_terminal(f, "default"), F1_TASKS);
  assert_int_equal(fx_stat(f, "default", "completed"), F1_TASKS);
  fx_events_assert_once(ev);
  fx_tally t = fx_events_tally(ev);
  assert_int_equal(t.redelivered_twice, 0);
  assert_int_equal(fx_stat(f, "default", "redelivered"), t.redelivered);
  /* Every task A held was claimed by it and is claimed again elsewhere. */
  fx_check(f, t.ran_twice >= 1 && t.ran_twice <= held, "ran twice %d, held %lld", t.ran_twice, held);
  fx_check(f, fx_alive(b) && fx_alive(broker), "worker B and the broker keep running");

  fx_figure(f,
            "%d tasks (rtq.sleep 50-500 ms), worker A killed with -9 after %d had ended while it held %lld; "
            "0 lost, %d ended exactly once, %d ran twice, %d redelivered (queue counters %lld); A's tasks requeued "
            "%.1f s after the kill (heartbeat TTL 1.5 s), all done %.1f s after it, %.1f s in total",
            F1_TASKS, ended_before, held, t.ended_once, t.ran_twice, t.redelivered,
            fx_stat(f, "default", "redelivered"), (double)requeued_ms / 1000.0,
            (double)(t_done - t_kill) / 1000.0, (double)(t_done - t_start) / 1000.0);
  assert_int_equal(fx_stop(b, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

/* ---- 2. a paused worker --------------------------------------------------- */

#define F2_TASKS 20
#define F2_MORE 5

static void test_fault_workers_sigstop_past_heartbeat_ttl(void **state) {
  fx *f = fx_new(state, "fault2", NULL);
  fx_events *ev = fx_events_start(f, F2_TASKS + F2_MORE);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  /* As many slots as tasks: A has no pop in flight while paused, so no
   * id can land in its list while it is stopped. */
  fx_proc *a = fx_worker(f, "worker-a", "--concurrency", "20", NULL);
  fx_sleep_args sa = {.seconds = 2.0};
  fx_enqueue(f, 0, F2_TASKS, "rtq.sleep", fx_sleep_fill, &sa);
  RTQ_TEST_WAIT_FOR(fx_events_claimed(ev) == F2_TASKS, 10000);

  uint64_t t_stop = rtq_test_now_ms();
  assert_int_equal(rtq_test_kill(a->pid, SIGSTOP), 0);
  fx_proc *b = fx_worker(f, "worker-b", "--concurrency", "20", NULL);
  /* B runs the redelivered tasks to completion while A is still paused. */
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F2_TASKS, 20000);
  uint64_t paused_ms = rtq_test_now_ms() - t_stop;
  fx_check(f, fx_log_count(a, "late result rejected") == 0, "A was paused throughout");
  assert_int_equal(rtq_test_kill(a->pid, SIGCONT), 0);

  /* A wakes, its handlers return, and finish.lua fences every result off. */
  RTQ_TEST_WAIT_FOR(fx_log_count(a, "late result rejected") == F2_TASKS, 10000);
  for (int i = 0; i < F2_TASKS; i++) {
    char *w = fx_field(f, i, "worker");
    fx_check(f, w != NULL && strcmp(w, b->id) == 0, "task %d ended by B, got %s", i, w ? w : "(none)");
    free(w);
    assert_int_equal(fx_field_ll(f, i, "attempt"), 2);
  }
  /* A carries on with new work. */
  fx_enqueue(f, F2_TASKS, F2_MORE, "rtq.noop", NULL, NULL);
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F2_TASKS + F2_MORE, 10000);
  assert_int_equal(fx_count_status(f, F2_TASKS + F2_MORE, RTQ_STATUS_COMPLETED), F2_TASKS + F2_MORE);
  fx_events_assert_once(ev);
  fx_tally t = fx_events_tally(ev);
  assert_int_equal(t.redelivered, F2_TASKS);
  assert_int_equal(t.redelivered_twice, 0);
  assert_int_equal(fx_stat(f, "default", "redelivered"), F2_TASKS);
  assert_int_equal(fx_stat_terminal(f, "default"), F2_TASKS + F2_MORE);
  fx_check(f, fx_alive(a), "A survives its pause");

  fx_figure(f,
            "%d running tasks, worker A paused %.1f s (heartbeat TTL 1.5 s): %d redelivered to B and completed "
            "there; after SIGCONT A's %d late results were rejected (fenced), %d tasks ended exactly once, "
            "0 twice",
            F2_TASKS, (double)paused_ms / 1000.0, t.redelivered, fx_log_count(a, "late result rejected"),
            t.ended_once);
  assert_int_equal(fx_stop(a, 10000), 0);
  assert_int_equal(fx_stop(b, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

/* ---- 3. hanging handlers ---------------------------------------------------- */

#define F3_TIMEOUT_MS 1000
#define F3_HUNG 2

/* Two handlers that ignore their timeout fill both slots; a third task can
 * only run once the worker has freed a slot. */
static void hanging_handlers(void **state, const char *prefix, const char *isolation) {
  fx *f = fx_new(state, prefix, NULL);
  fx_events *ev = fx_events_start(f, F3_HUNG + 1);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  fx_proc *w = fx_worker(f, "worker", "--concurrency", "2", "--isolation", isolation, NULL);
  fx_sleep_args sa = {.seconds = 30, .ignore_cancel = true, .timeout_ms = F3_TIMEOUT_MS};
  fx_enqueue(f, 0, F3_HUNG, "rtq.sleep", fx_sleep_fill, &sa);
  RTQ_TEST_WAIT_FOR(fx_events_claimed(ev) == F3_HUNG, 5000);
  fx_enqueue(f, F3_HUNG, 1, "rtq.noop", NULL, NULL);

  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == F3_HUNG + 1, 10000);
  long long worst = 0;
  for (int i = 0; i < F3_HUNG; i++) {
    char *st = fx_field(f, i, "status"), *code = fx_field(f, i, "error_code"), *msg = fx_field(f, i, "error_message");
    fx_check(f, st != NULL && strcmp(st, "timeout") == 0, "hung task %d: status %s", i, st ? st : "(none)");
    fx_check(f, code != NULL && strcmp(code, "TIMEOUT") == 0, "hung task %d: code %s", i, code ? code : "(none)");
    fx_check(f, msg != NULL && (strstr(msg, "killed") != NULL || strstr(msg, "did not stop") != NULL),
             "hung task %d: message says it was stopped by force: %s", i, msg ? msg : "(none)");
    long long took = fx_field_ll(f, i, "completed_at") - fx_field_ll(f, i, "started_at");
    if (took > worst) worst = took;
    /* A handler that ignores the stop ends after the timeout plus the kill
     * grace; 400 ms covers the worker's 50 ms tick (twice: the deadline and
     * the grace) and the write, on a loaded machine. */
    fx_check(f, took >= F3_TIMEOUT_MS && took <= F3_TIMEOUT_MS + GRACE_MS + 400, "hung task %d took %lld ms", i,
             took);
    free(st);
    free(code);
    free(msg);
  }
  char *st = fx_field(f, F3_HUNG, "status");
  fx_check(f, st != NULL && strcmp(st, "completed") == 0, "the task behind them completed: %s", st ? st : "(none)");
  free(st);
  fx_events_assert_once(ev);
  fx_check(f, fx_alive(w), "the worker keeps running");
  fx_figure(f,
            "%s isolation: %d handlers hung past a %d ms timeout ended timeout after at most %lld ms (timeout + "
            "kill grace %d ms = %d ms); their slots were freed and the next task completed",
            isolation, F3_HUNG, F3_TIMEOUT_MS, worst, GRACE_MS, F3_TIMEOUT_MS + GRACE_MS);
  assert_int_equal(fx_stop(w, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

static void test_fault_workers_hanging_handler_thread(void **state) {
  hanging_handlers(state, "fault3t", "thread");
}

static void test_fault_workers_hanging_handler_process(void **state) {
  hanging_handlers(state, "fault3p", "process");
}

/* ---- 5. SIGTERM during long tasks --------------------------------------------- */

#define F5_SHORT 6
#define F5_LONG 6
#define F5_GRACE_MS 2000

static void f5_fill(int i, rtq_args *a, rtq_task_options *o, void *ud) {
  (void)o;
  (void)ud;
  /* Short ones end inside the grace; long ones cannot, and every other
   * long one ignores the stop request as well. */
  rtq_args_set_double(a, "seconds", i < F5_SHORT ? 1.0 : 4.0);
  rtq_args_set_int(a, "steps", 4);
  if (i >= F5_SHORT && i % 2 == 1) rtq_args_set_bool(a, "ignore_cancel", true);
}

static void test_fault_workers_sigterm_during_long_tasks(void **state) {
  enum { N = F5_SHORT + F5_LONG };
  fx *f = fx_new(state, "fault5", NULL);
  fx_events *ev = fx_events_start(f, N);
  fx_proc *broker = fx_broker(f, "broker", NULL);
  fx_proc *a = fx_worker(f, "worker-a", "--concurrency", "12", "--shutdown-grace", "2s", NULL);
  char a_id[RTQ_NAME_MAX + 1];
  snprintf(a_id, sizeof a_id, "%s", a->id);
  fx_enqueue(f, 0, N, "rtq.sleep", f5_fill, NULL);
  RTQ_TEST_WAIT_FOR(fx_events_claimed(ev) == N, 5000);

  uint64_t t_term = rtq_test_now_ms();
  int st = 0;
  assert_int_equal(rtq_test_terminate(a->pid, SIGTERM, F5_GRACE_MS + 5000, &st), 0);
  a->pid = -1;
  uint64_t exit_ms = rtq_test_now_ms() - t_term;
  fx_check(f, WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker A exits 0 after SIGTERM (status 0x%x)", st);

  int finished = 0, handed_back = 0;
  for (int i = 0; i < N; i++) {
    fx_rec r = fx_events_get(ev, i);
    if (i < F5_SHORT) {
      fx_check(f, r.terminal == 1 && r.last == RTQ_STATUS_COMPLETED, "short task %d completed on A", i);
      fx_check(f, r.terminal_ms - t_term <= F5_GRACE_MS, "short task %d ended within the grace", i);
      char *w = fx_field(f, i, "worker");
      fx_check(f, w != NULL && strcmp(w, a_id) == 0, "short task %d ended by A", i);
      free(w);
      finished++;
    } else {
      char *s = fx_field(f, i, "status");
      fx_check(f, s != NULL && strcmp(s, "pending") == 0, "long task %d pending again: %s", i, s ? s : "(none)");
      free(s);
      handed_back += r.requeued == 1;
    }
  }
  RTQ_TEST_WAIT_FOR(fx_events_tally(ev).requeued == F5_LONG, 2000);
  handed_back = fx_events_tally(ev).requeued;
  assert_int_equal(fx_llen(f, rtq_keys2_queue(&f->k, FX_QUEUE)), F5_LONG);
  assert_int_equal(fx_llen(f, rtq_keys2_processing(&f->k, FX_QUEUE, a_id)), 0);

  /* Nothing is lost: another worker runs what A handed back. */
  fx_proc *b = fx_worker(f, "worker-b", "--concurrency", "12", NULL);
  RTQ_TEST_WAIT_FOR(fx_events_terminal(ev) == N, 15000);
  assert_int_equal(fx_count_status(f, N, RTQ_STATUS_COMPLETED), N);
  fx_events_assert_once(ev);
  assert_int_equal(fx_stat(f, "default", "redelivered"), 0);
  fx_figure(f,
            "SIGTERM with %d tasks running, shutdown grace %d ms: %d finished within the grace, %d handed back "
            "(half of them ignoring the stop) and completed by another worker, 0 lost; the worker exited 0 "
            "after %.1f s",
            N, F5_GRACE_MS, finished, handed_back, (double)exit_ms / 1000.0);
  fx_check(f, exit_ms <= F5_GRACE_MS + 3000, "exit within the grace (+3 s), took %llu ms",
           (unsigned long long)exit_ms);
  assert_int_equal(fx_stop(b, 10000), 0);
  assert_int_equal(fx_stop(broker, 10000), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_fault_workers_kill9_busy_worker, fx_teardown),
      cmocka_unit_test_teardown(test_fault_workers_sigstop_past_heartbeat_ttl, fx_teardown),
      cmocka_unit_test_teardown(test_fault_workers_hanging_handler_thread, fx_teardown),
      cmocka_unit_test_teardown(test_fault_workers_hanging_handler_process, fx_teardown),
      cmocka_unit_test_teardown(test_fault_workers_sigterm_during_long_tasks, fx_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
