/*
 * test_broker_step.c - the step of the recover and backstop calls
 * (broker/step.h): scaled down in proportion by a slow call, doubled by a
 * fast full one, kept by a fast short one, always within [min, max].
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "step.h"

static void test_broker_step_init_clamps_the_start(void **state) {
  (void)state;
  rtq__step s;
  rtq__step_init(&s, 5, 20, 50);
  assert_int_equal(s.n, 20);
  rtq__step_init(&s, 5, 1, 50);
  assert_int_equal(s.n, 5);
  rtq__step_init(&s, 5, 80, 50);
  assert_int_equal(s.n, 50);
}

static void test_broker_step_slow_call_scales_down_to_min(void **state) {
  (void)state;
  rtq__step s;
  rtq__step_init(&s, 5, 40, 50);
  rtq__step_update(&s, 40, 2 * RTQ__STEP_TARGET_US);
  assert_int_equal(s.n, 20);
  rtq__step_update(&s, 20, 3 * RTQ__STEP_TARGET_US);
  assert_int_equal(s.n, 6);
  rtq__step_update(&s, 6, 100 * RTQ__STEP_TARGET_US);
  assert_int_equal(s.n, 5);
  /* Slow and short still scales down: the time is what counts. */
  rtq__step_init(&s, 5, 40, 50);
  rtq__step_update(&s, 3, 4 * RTQ__STEP_TARGET_US);
  assert_int_equal(s.n, 10);
}

static void test_broker_step_fast_full_call_grows_to_max(void **state) {
  (void)state;
  rtq__step s;
  rtq__step_init(&s, 5, 10, 50);
  rtq__step_update(&s, 10, RTQ__STEP_TARGET_US / 4);
  assert_int_equal(s.n, 20);
  rtq__step_update(&s, 20, RTQ__STEP_TARGET_US / 4);
  assert_int_equal(s.n, 40);
  rtq__step_update(&s, 40, RTQ__STEP_TARGET_US / 4);
  assert_int_equal(s.n, 50);
  rtq__step_update(&s, 50, 0);
  assert_int_equal(s.n, 50);
}

static void test_broker_step_short_or_near_target_call_keeps_it(void **state) {
  (void)state;
  rtq__step s;
  rtq__step_init(&s, 5, 10, 50);
  rtq__step_update(&s, 3, 10); /* the list ended: says nothing about more */
  assert_int_equal(s.n, 10);
  rtq__step_update(&s, 10, RTQ__STEP_TARGET_US); /* full, at the target */
  assert_int_equal(s.n, 10);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_broker_step_init_clamps_the_start),
      cmocka_unit_test(test_broker_step_slow_call_scales_down_to_min),
      cmocka_unit_test(test_broker_step_fast_full_call_grows_to_max),
      cmocka_unit_test(test_broker_step_short_or_near_target_call_keeps_it),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
