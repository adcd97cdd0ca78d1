/* test_duration.c - the one duration parser every binary uses (duration.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "config.h"
#include "rtq/common.h"

#define DAY_MS 86400000L

static long parse(const char *s) {
  long ms = -1;
  assert_int_equal(rtq_parse_duration_ms(s, 0, 365 * DAY_MS, &ms), 0);
  return ms;
}

static void test_duration_units_and_bare_seconds(void **state) {
  (void)state;
  assert_int_equal(parse("5"), 5000);
  assert_int_equal(parse("1.5"), 1500);
  assert_int_equal(parse(".25"), 250);
  assert_int_equal(parse("2s"), 2000);
  assert_int_equal(parse("1500ms"), 1500);
  assert_int_equal(parse("5m"), 300000);
  assert_int_equal(parse("0.5h"), 1800000);
  assert_int_equal(parse("0"), 0);
}

static void test_duration_rejects_what_is_not_one(void **state) {
  (void)state;
  static const char *const bad[] = {"", "s", "soon", "-1", "+1", " 5", "\t5", "5 s", "0x10",
                                    "1e3", "inf", "nan", "5d", "5ms ", "1..2", ".", "5mss"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    long ms = 42;
    if (rtq_parse_duration_ms(bad[i], 0, 365 * DAY_MS, &ms) != RTQ_EINVAL)
      fail_msg("\"%s\" was accepted", bad[i]);
    assert_int_equal(ms, 42);
  }
  long ms;
  assert_int_equal(rtq_parse_duration_ms(NULL, 0, 1, &ms), RTQ_EINVAL);
}

static void test_duration_bounds(void **state) {
  (void)state;
  long ms = 0;
  assert_int_equal(rtq_parse_duration_ms("366d", 0, 365 * DAY_MS, &ms), RTQ_EINVAL);
  assert_int_equal(rtq_parse_duration_ms("8761h", 0, 365 * DAY_MS, &ms), RTQ_ERANGE);
  assert_int_equal(rtq_parse_duration_ms("8760h", 0, 365 * DAY_MS, &ms), 0);
  assert_int_equal(ms, 365 * DAY_MS);
  assert_int_equal(rtq_parse_duration_ms("99ms", 100, 1000, &ms), RTQ_ERANGE);
  assert_int_equal(rtq_parse_duration_ms("1001ms", 100, 1000, &ms), RTQ_ERANGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_duration_units_and_bare_seconds),
      cmocka_unit_test(test_duration_rejects_what_is_not_one),
      cmocka_unit_test(test_duration_bounds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
