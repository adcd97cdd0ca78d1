/* test_outcome.c - one set of limits and checks for a handler's error and
 * result, whatever isolation ran it (worker/outcome.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outcome.h"
#include "utf8.h"

static void test_outcome_code_is_cut_and_cleaned(void **state) {
  (void)state;
  rtq__outcome o;
  memset(&o, 0, sizeof o);
  char big[100 * 1024];
  memset(big, 'E', sizeof big);
  assert_int_equal(rtq__outcome_set_error(&o, big, sizeof big, NULL, 0, NULL, 0, NULL, 0), 0);
  assert_int_equal(strlen(o.code), RTQ__CODE_MAX);
  assert_int_equal(o.status, RTQ_STATUS_FAILED);
  assert_int_equal(rtq__outcome_set_error(&o, "BAD\xff code\"\n", 11, NULL, 0, NULL, 0, NULL, 0), 0);
  assert_string_equal(o.code, "BAD__code__");
  assert_int_equal(rtq__outcome_set_error(&o, NULL, 0, "m", 1, NULL, 0, NULL, 0), 0);
  assert_string_equal(o.code, "HANDLER_ERROR");
  rtq__outcome_destroy(&o);
}

static void test_outcome_text_is_utf8_within_limits(void **state) {
  (void)state;
  rtq__outcome o;
  memset(&o, 0, sizeof o);
  size_t n = 200 * 1024;
  char *huge = malloc(n);
  assert_non_null(huge);
  memset(huge, 'm', n);
  huge[10] = (char)0xff;
  assert_int_equal(rtq__outcome_set_error(&o, "E", 1, huge, n, NULL, 0, huge, n), 0);
  /* 64 KiB kept, the bad byte now three bytes of U+FFFD. */
  assert_int_equal(strlen(o.message), RTQ__MESSAGE_MAX + 2);
  assert_int_equal(strlen(o.traceback), RTQ__TRACEBACK_MAX + 2);
  assert_true(rtq__utf8_valid(o.message, strlen(o.message)));
  assert_memory_equal(o.message + 10, "\xef\xbf\xbd", 3);
  free(huge);
  /* A multi-byte sequence cut by the limit is not left half. */
  char cut[RTQ__MESSAGE_MAX + 8];
  memset(cut, 'a', sizeof cut);
  memcpy(cut + RTQ__MESSAGE_MAX - 1, "\xe2\x82\xac", 3);
  assert_int_equal(rtq__outcome_set_error(&o, "E", 1, cut, sizeof cut, NULL, 0, NULL, 0), 0);
  assert_true(rtq__utf8_valid(o.message, strlen(o.message)));
  rtq__outcome_destroy(&o);
}

static void test_outcome_details_must_be_a_small_map(void **state) {
  (void)state;
  rtq__outcome o;
  memset(&o, 0, sizeof o);
  static const char map[] = "\x81\xa1k\x01";
  assert_int_equal(rtq__outcome_set_error(&o, "E", 1, "m", 1, map, 4, NULL, 0), 0);
  assert_int_equal(o.details_len, 4);
  assert_memory_equal(o.details, map, 4);
  assert_string_equal(o.message, "m");
  /* Not a map, not msgpack, too large: dropped, and the message says so. */
  assert_int_equal(rtq__outcome_set_error(&o, "E", 1, "m", 1, "\x93\x01\x02\x03", 4, NULL, 0), 0);
  assert_null(o.details);
  assert_string_equal(o.message, "m (error details dropped: not a msgpack map)");
  assert_int_equal(rtq__outcome_set_error(&o, "E", 1, NULL, 0, "\xc1", 1, NULL, 0), 0);
  assert_null(o.details);
  assert_string_equal(o.message, "(error details dropped: not a msgpack map)");
  size_t n = 48u << 20;
  char *big = malloc(n);
  assert_non_null(big);
  big[0] = (char)0xdf; /* map 32, never read that far */
  assert_int_equal(rtq__outcome_set_error(&o, "E", 1, "m", 1, big, n, NULL, 0), 0);
  assert_null(o.details);
  assert_string_equal(o.message, "m (error details dropped: over 64 KiB)");
  free(big);
  rtq__outcome_destroy(&o);
}

static void test_outcome_result_is_checked(void **state) {
  (void)state;
  rtq__outcome o;
  memset(&o, 0, sizeof o);
  assert_int_equal(rtq__outcome_set_result(&o, "\x81\xa1k\x01", 4, 1024), 0);
  assert_int_equal(o.result_len, 4);
  assert_int_equal(rtq__outcome_set_result(&o, "\xc1", 1, 1024), RTQ_EINVAL);
  assert_int_equal(rtq__outcome_set_result(&o, "\x92\x01", 2, 1024), RTQ_EINVAL); /* truncated */
  assert_int_equal(rtq__outcome_set_result(&o, "\x01\x02", 2, 1024), RTQ_EINVAL); /* trailing */
  assert_int_equal(rtq__outcome_set_result(&o, "\x81\xa1k\x01", 4, 3), RTQ_ETOOBIG);
  assert_int_equal(o.result_len, 4); /* unchanged by the failures */
  /* An error drops the result. */
  assert_int_equal(rtq__outcome_set_error(&o, "E", 1, NULL, 0, NULL, 0, NULL, 0), 0);
  assert_null(o.result);
  assert_int_equal(o.result_len, 0);
  rtq__outcome_destroy(&o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_outcome_code_is_cut_and_cleaned),
      cmocka_unit_test(test_outcome_text_is_utf8_within_limits),
      cmocka_unit_test(test_outcome_details_must_be_a_small_map),
      cmocka_unit_test(test_outcome_result_is_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
