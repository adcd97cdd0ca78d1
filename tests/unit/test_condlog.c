/* test_condlog.c - logging a condition, not every event of it (condlog.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "condlog.h"

#define MIN 60000u

/* A condition that holds on every round (every 100 ms) for ten minutes:
 * one START, then one STILL a minute, each counting the rounds since the
 * line before; then one END. */
static void test_condlog_steady_condition_logs_once_a_minute(void **state) {
  (void)state;
  rtq_condlog c = {.every_ms = MIN};
  uint64_t count = 0, t = 1000;
  int lines = 0, starts = 0, stills = 0;
  uint64_t total = 0;
  for (int i = 0; i < 6000; i++, t += 100) {
    rtq_condlog_line l = rtq_condlog_note(&c, t, 2, &count);
    if (l == RTQ_CONDLOG_NONE) continue;
    lines++;
    total += count;
    if (l == RTQ_CONDLOG_START) {
      starts++;
      assert_int_equal(i, 0);
      assert_int_equal(count, 2);
    } else {
      assert_int_equal(l, RTQ_CONDLOG_STILL);
      stills++;
      assert_int_equal(count, 600 * 2); /* a minute of rounds */
    }
  }
  assert_int_equal(starts, 1);
  assert_int_equal(stills, 9);
  assert_int_equal(lines, 10);
  /* It ends: the END line, with what was not reported yet. */
  rtq_condlog_line l = RTQ_CONDLOG_NONE;
  for (int i = 0; i < 1200 && l == RTQ_CONDLOG_NONE; i++, t += 100) l = rtq_condlog_note(&c, t, 0, &count);
  assert_int_equal(l, RTQ_CONDLOG_END);
  total += count;
  assert_int_equal(total, 6000 * 2);
  /* Quiet afterwards: nothing more, however long. */
  for (int i = 0; i < 3000; i++, t += 100) assert_int_equal(rtq_condlog_note(&c, t, 0, NULL), RTQ_CONDLOG_NONE);
  /* And a new episode starts with a START at once. */
  assert_int_equal(rtq_condlog_note(&c, t, 5, &count), RTQ_CONDLOG_START);
  assert_int_equal(count, 5);
}

/* A condition that comes and goes every few rounds: still at most one line
 * a minute, and nothing it did goes uncounted. */
static void test_condlog_flapping_condition_is_bounded(void **state) {
  (void)state;
  rtq_condlog c = {.every_ms = MIN};
  uint64_t count = 0, t = 5, total = 0, last_line = 0;
  int lines = 0;
  for (int i = 0; i < 12000; i++, t += 50) {
    uint64_t n = i % 3 == 0 ? 1 : 0;
    rtq_condlog_line l = rtq_condlog_note(&c, t, n, &count);
    if (l == RTQ_CONDLOG_NONE) continue;
    if (lines > 0) assert_true(t - last_line >= MIN);
    last_line = t;
    lines++;
    total += count;
  }
  /* 600 s: at most one line a minute (plus the first). */
  assert_true(lines <= 11);
  assert_true(lines >= 2);
  assert_true(total + c.count == 4000);
}

/* A short episode, within a minute of the last line: its END waits until
 * a minute has passed, then comes. */
static void test_condlog_end_waits_for_its_minute(void **state) {
  (void)state;
  rtq_condlog c = {.every_ms = MIN};
  uint64_t count = 0;
  assert_int_equal(rtq_condlog_note(&c, 100, 3, &count), RTQ_CONDLOG_START);
  assert_int_equal(rtq_condlog_note(&c, 200, 4, &count), RTQ_CONDLOG_NONE);
  assert_int_equal(rtq_condlog_note(&c, 300, 0, &count), RTQ_CONDLOG_NONE);
  assert_int_equal(rtq_condlog_note(&c, 100 + MIN - 1, 0, &count), RTQ_CONDLOG_NONE);
  assert_int_equal(rtq_condlog_note(&c, 100 + MIN, 0, &count), RTQ_CONDLOG_END);
  assert_int_equal(count, 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_condlog_steady_condition_logs_once_a_minute),
      cmocka_unit_test(test_condlog_flapping_condition_is_bounded),
      cmocka_unit_test(test_condlog_end_waits_for_its_minute),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
