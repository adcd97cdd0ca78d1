/* test_utf8.c - well-formed UTF-8 and the U+FFFD replacement (utf8.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "utf8.h"

#define S(lit) lit, sizeof lit - 1

static void check_sanitized(const char *in, size_t n, const char *want) {
  size_t len = 0;
  char *out = rtq__utf8_sanitize(in, n, &len);
  assert_non_null(out);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(out, want, len);
  assert_true(rtq__utf8_valid(out, len));
  free(out);
}

static void test_utf8_accepts_well_formed(void **state) {
  (void)state;
  assert_true(rtq__utf8_valid(S("")));
  assert_true(rtq__utf8_valid(S("plain ascii")));
  assert_true(rtq__utf8_valid(S("caf\xC3\xA9")));           /* U+00E9 */
  assert_true(rtq__utf8_valid(S("\xE2\x82\xAC")));          /* U+20AC */
  assert_true(rtq__utf8_valid(S("\xED\x9F\xBF")));          /* U+D7FF */
  assert_true(rtq__utf8_valid(S("\xEE\x80\x80")));          /* U+E000 */
  assert_true(rtq__utf8_valid(S("\xF0\x9F\x98\x80")));      /* U+1F600 */
  assert_true(rtq__utf8_valid(S("\xF4\x8F\xBF\xBF")));      /* U+10FFFF */
  assert_true(rtq__utf8_valid("a\0b", 3));                  /* NUL is text */
}

static void test_utf8_refuses_ill_formed(void **state) {
  (void)state;
  assert_false(rtq__utf8_valid(S("BAD\xFF")));
  assert_false(rtq__utf8_valid(S("\x80")));                 /* lone continuation */
  assert_false(rtq__utf8_valid(S("\xC0\xAF")));             /* overlong '/' */
  assert_false(rtq__utf8_valid(S("\xC1\xBF")));             /* overlong */
  assert_false(rtq__utf8_valid(S("\xE0\x80\xAF")));         /* overlong */
  assert_false(rtq__utf8_valid(S("\xF0\x80\x80\xAF")));     /* overlong */
  assert_false(rtq__utf8_valid(S("\xED\xA0\x80")));         /* U+D800 */
  assert_false(rtq__utf8_valid(S("\xED\xBF\xBF")));         /* U+DFFF */
  assert_false(rtq__utf8_valid(S("\xF4\x90\x80\x80")));     /* U+110000 */
  assert_false(rtq__utf8_valid(S("\xF5\x80\x80\x80")));
  assert_false(rtq__utf8_valid(S("\xE2\x82")));             /* truncated */
  assert_false(rtq__utf8_valid(S("\xF0\x9F\x98")));         /* truncated */
  assert_false(rtq__utf8_valid(S("\xE2\x28\xA1")));         /* bad second byte */
}

static void test_utf8_sanitize_replaces_each_bad_byte(void **state) {
  (void)state;
  check_sanitized(S("ok"), "ok");
  check_sanitized(S("BAD\xFF"), "BAD\xEF\xBF\xBD");
  check_sanitized(S("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  /* A truncated sequence: its lead byte is replaced, the next byte is read
   * again on its own. */
  check_sanitized(S("\xE2\x82" "A"), "\xEF\xBF\xBD\xEF\xBF\xBD" "A");
  check_sanitized(S("caf\xC3\xA9\xFE!"), "caf\xC3\xA9\xEF\xBF\xBD!");
  check_sanitized(NULL, 0, "");
}

/* Every byte string of up to 3 bytes over a set of interesting bytes:
 * the output is well-formed, jansson accepts it as a string, and a
 * well-formed input comes back unchanged. */
static void test_utf8_sanitize_output_is_json_text(void **state) {
  (void)state;
  static const unsigned char pick[] = {0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC2,
                                       0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  const size_t np = sizeof pick;
  for (size_t a = 0; a < np; a++)
    for (size_t b = 0; b < np; b++)
      for (size_t c = 0; c < np; c++) {
        char in[3] = {(char)pick[a], (char)pick[b], (char)pick[c]};
        size_t len;
        char *out = rtq__utf8_sanitize(in, 3, &len);
        assert_non_null(out);
        assert_true(rtq__utf8_valid(out, len));
        json_t *j = json_stringn(out, len);
        assert_non_null(j);
        json_decref(j);
        if (rtq__utf8_valid(in, 3)) {
          assert_int_equal(len, 3);
          assert_memory_equal(out, in, 3);
        }
        free(out);
      }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_utf8_accepts_well_formed),
      cmocka_unit_test(test_utf8_refuses_ill_formed),
      cmocka_unit_test(test_utf8_sanitize_replaces_each_bad_byte),
      cmocka_unit_test(test_utf8_sanitize_output_is_json_text),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
