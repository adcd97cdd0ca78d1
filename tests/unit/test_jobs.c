/*
 * test_jobs.c - the worker's job state table (worker/job_state.h): which
 * moves are allowed, which states hold a slot. Pure: no Redis, no loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "job_state.h"

enum { C = RTQ__JOB_CLAIMING, A = RTQ__JOB_ADOPTING, R = RTQ__JOB_RUNNING,
       F = RTQ__JOB_FINISHING, Q = RTQ__JOB_REQUEUING, D = RTQ__JOB_REQUEUED,
       X = RTQ__JOB_FREED, N = RTQ__JOB_STATE_COUNT };

/* The whole table, written out: allowed[from][to]. */
static const bool allowed[N][N] = {
    /*     C      A      R      F      Q      D      X */
    [C] = {true, true, true, false, false, false, true},
    [A] = {true, true, true, false, false, false, true},
    [R] = {false, false, true, true, true, false, true},
    [F] = {false, false, false, true, false, false, true},
    [Q] = {false, false, false, false, true, true, true},
    [D] = {false, false, false, false, false, true, true},
    [X] = {false, false, false, false, false, false, true},
};

static void test_jobs_every_move_is_as_the_table_says(void **state) {
  (void)state;
  for (int from = 0; from < N; from++)
    for (int to = 0; to < N; to++)
      if (rtq__job_transition_ok(from, to) != allowed[from][to])
        fail_msg("%s -> %s: got %d", rtq__job_state_name(from), rtq__job_state_name(to),
                 rtq__job_transition_ok(from, to));
}

static void test_jobs_ended_states_never_go_back(void **state) {
  (void)state;
  assert_false(rtq__job_transition_ok(F, R));
  assert_false(rtq__job_transition_ok(Q, R));
  assert_false(rtq__job_transition_ok(F, Q));
  assert_false(rtq__job_transition_ok(Q, F));
  assert_false(rtq__job_transition_ok(R, C));
  assert_false(rtq__job_transition_ok(D, Q));
  assert_false(rtq__job_transition_ok(R, D)); /* only through requeue.lua's answer */
  for (int s = 0; s < X; s++) assert_false(rtq__job_transition_ok(X, s));
}

static void test_jobs_slots_are_held_until_the_handler_ends(void **state) {
  (void)state;
  assert_true(rtq__job_state_holds_slot(C));
  assert_true(rtq__job_state_holds_slot(A));
  assert_true(rtq__job_state_holds_slot(R));
  assert_false(rtq__job_state_holds_slot(F));
  assert_false(rtq__job_state_holds_slot(Q));
  assert_false(rtq__job_state_holds_slot(D));
  assert_false(rtq__job_state_holds_slot(X));
}

static void test_jobs_out_of_range_states_are_refused(void **state) {
  (void)state;
  assert_false(rtq__job_transition_ok(-1, C));
  assert_false(rtq__job_transition_ok(C, N));
  assert_false(rtq__job_transition_ok(N, N));
  assert_false(rtq__job_state_holds_slot(N));
  assert_string_equal(rtq__job_state_name(N), "invalid");
  assert_string_equal(rtq__job_state_name(R), "running");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_jobs_every_move_is_as_the_table_says),
      cmocka_unit_test(test_jobs_ended_states_never_go_back),
      cmocka_unit_test(test_jobs_slots_are_held_until_the_handler_ends),
      cmocka_unit_test(test_jobs_out_of_range_states_are_refused),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
