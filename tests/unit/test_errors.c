/* test_errors.c - error codes, task states and name validation (errors.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "rtq/common.h"

static const int all_codes[] = {
#define CODE(name, val, msg) RTQ_E##name,
    RTQ_ERRNO_MAP(CODE)
#undef CODE
};
#define NCODES ((int)(sizeof all_codes / sizeof all_codes[0]))

static void test_errors_every_code_has_its_own_message(void **state) {
  (void)state;
  const char *unknown = rtq_strerror(12345);
  for (int i = 0; i < NCODES; i++) {
    const char *m = rtq_strerror(all_codes[i]);
    assert_non_null(m);
    assert_true(strlen(m) > 0);
    assert_string_not_equal(m, unknown);
    for (int j = 0; j < i; j++) assert_string_not_equal(m, rtq_strerror(all_codes[j]));
  }
}

static void test_errors_messages_match_the_map(void **state) {
  (void)state;
#define CHECK(name, val, msg) assert_string_equal(rtq_strerror(val), msg);
  RTQ_ERRNO_MAP(CHECK)
#undef CHECK
  assert_string_equal(rtq_strerror(RTQ_ENOTFOUND), "no such task");
}

static void test_errors_names_are_symbolic(void **state) {
  (void)state;
  assert_string_equal(rtq_err_name(RTQ_OK), "RTQ_OK");
  assert_string_equal(rtq_err_name(RTQ_ENOTFOUND), "RTQ_ENOTFOUND");
  assert_string_equal(rtq_err_name(RTQ_EOOM), "RTQ_EOOM");
  assert_string_equal(rtq_err_name(RTQ_EUNKNOWN), "RTQ_EUNKNOWN");
#define CHECK(name, val, msg) assert_string_equal(rtq_err_name(val), "RTQ_E" #name);
  RTQ_ERRNO_MAP(CHECK)
#undef CHECK
}

static void test_errors_values_are_negative_and_unique(void **state) {
  (void)state;
  for (int i = 0; i < NCODES; i++) {
    assert_true(all_codes[i] < 0);
    for (int j = 0; j < i; j++) assert_int_not_equal(all_codes[i], all_codes[j]);
  }
  /* The ABI promise: existing values never move. */
  assert_int_equal(RTQ_EINVAL, -1);
  assert_int_equal(RTQ_EOOM, -8);
  assert_int_equal(RTQ_EUNKNOWN, -19);
  assert_int_equal(RTQ_EREPLICAS, -20);
  assert_int_equal(RTQ_EPROTOCOL, -21);
  assert_int_equal(RTQ_EUNVERIFIED, -22);
}

static void test_errors_unknown_code_is_never_null(void **state) {
  (void)state;
  const int odd[] = {1, 42, -1000, -99, INT32_MIN};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    assert_non_null(rtq_strerror(odd[i]));
    assert_string_equal(rtq_err_name(odd[i]), "RTQ_E?");
  }
}

static void test_errors_status_names_round_trip(void **state) {
  (void)state;
  const char *want[] = {"pending", "running", "completed", "failed", "cancelled", "timeout"};
  for (int i = 0; i < RTQ_STATUS_COUNT; i++) {
    assert_string_equal(rtq_status_name((rtq_status)i), want[i]);
    rtq_status s = RTQ_STATUS_COUNT;
    assert_int_equal(rtq_status_parse(want[i], &s), 0);
    assert_int_equal(s, i);
  }
  assert_string_equal(rtq_status_name((rtq_status)99), "unknown");
  assert_string_equal(rtq_status_name((rtq_status)-1), "unknown");
}

static void test_errors_status_parse_is_exact(void **state) {
  (void)state;
  rtq_status s = RTQ_STATUS_RUNNING;
  const char *bad[] = {"Pending", "PENDING", "pending ", " pending", "", "pend", "canceled", "unknown"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(rtq_status_parse(bad[i], &s), RTQ_EINVAL);
  assert_int_equal(s, RTQ_STATUS_RUNNING); /* untouched on error */
  assert_int_equal(rtq_status_parse(NULL, &s), RTQ_EINVAL);
  assert_int_equal(rtq_status_parse("pending", NULL), RTQ_EINVAL);
}

static void test_errors_terminal_states(void **state) {
  (void)state;
  assert_false(rtq_status_is_terminal(RTQ_STATUS_PENDING));
  assert_false(rtq_status_is_terminal(RTQ_STATUS_RUNNING));
  assert_true(rtq_status_is_terminal(RTQ_STATUS_COMPLETED));
  assert_true(rtq_status_is_terminal(RTQ_STATUS_FAILED));
  assert_true(rtq_status_is_terminal(RTQ_STATUS_CANCELLED));
  assert_true(rtq_status_is_terminal(RTQ_STATUS_TIMEOUT));
  assert_false(rtq_status_is_terminal((rtq_status)42));
}

static void test_errors_validate_name_accepts_allowed_set(void **state) {
  (void)state;
  const char *ok[] = {"a", "default", "01JDQ3ZK5V8X4M2T9QH7R6W1YB", "send_email", "emails.high", "a:b:c",
                      "host-1-123-deadbeef", "A-Z_a-z.0-9:-"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) assert_int_equal(rtq_validate_name(ok[i]), 0);
  char max[129];
  memset(max, 'x', 128);
  max[128] = '\0';
  assert_int_equal(rtq_validate_name(max), 0);
}

static void test_errors_validate_name_rejects_others(void **state) {
  (void)state;
  const char *bad[] = {"", "a b", "a\nb", "a*", "a?", "{rtq}", "[x]", "a/b", "a\\b", "é", "a\"", "a\tb",
                       "\x7f"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(rtq_validate_name(bad[i]), RTQ_EINVAL);
  assert_int_equal(rtq_validate_name(NULL), RTQ_EINVAL);
  char long_name[130];
  memset(long_name, 'x', 129);
  long_name[129] = '\0';
  assert_int_equal(rtq_validate_name(long_name), RTQ_EINVAL);
  /* Every single byte outside the set is rejected. */
  for (int c = 1; c < 256; c++) {
    char s[2] = {(char)c, '\0'};
    int allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == ':' || c == '-';
    assert_int_equal(rtq_validate_name(s), allowed ? 0 : RTQ_EINVAL);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_errors_every_code_has_its_own_message),
      cmocka_unit_test(test_errors_messages_match_the_map),
      cmocka_unit_test(test_errors_names_are_symbolic),
      cmocka_unit_test(test_errors_values_are_negative_and_unique),
      cmocka_unit_test(test_errors_unknown_code_is_never_null),
      cmocka_unit_test(test_errors_status_names_round_trip),
      cmocka_unit_test(test_errors_status_parse_is_exact),
      cmocka_unit_test(test_errors_terminal_states),
      cmocka_unit_test(test_errors_validate_name_accepts_allowed_set),
      cmocka_unit_test(test_errors_validate_name_rejects_others),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
