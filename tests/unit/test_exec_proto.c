/*
 * test_exec_proto.c - the exec protocol's framing (worker/exec_proto.c):
 * line splitting with its limit, message parsing, the frames the worker
 * writes, error-code cleaning and command splitting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "exec_proto.h"
#include "rtq/common.h"

static void test_exec_proto_lines_split_across_feeds(void **state) {
  (void)state;
  rtq__xline r;
  memset(&r, 0, sizeof r);
  r.max = 64;
  char *line;
  size_t len;
  assert_int_equal(rtq__xline_feed(&r, "{\"a\":1}\n{\"b\"", 12), 0);
  assert_int_equal(rtq__xline_next(&r, &line, &len), 1);
  assert_string_equal(line, "{\"a\":1}");
  assert_int_equal(rtq__xline_next(&r, &line, &len), 0);
  assert_int_equal(rtq__xline_feed(&r, ":2}\n\n", 5), 0);
  assert_int_equal(rtq__xline_next(&r, &line, &len), 1);
  assert_string_equal(line, "{\"b\":2}");
  assert_int_equal(rtq__xline_next(&r, &line, &len), 1);
  assert_int_equal(len, 0);
  assert_int_equal(rtq__xline_next(&r, &line, &len), 0);
  rtq__xline_destroy(&r);
}

static void test_exec_proto_line_over_limit_fails_early(void **state) {
  (void)state;
  rtq__xline r;
  memset(&r, 0, sizeof r);
  r.max = 100;
  char chunk[40];
  memset(chunk, 'x', sizeof chunk);
  assert_int_equal(rtq__xline_feed(&r, chunk, sizeof chunk), 0);
  assert_int_equal(rtq__xline_feed(&r, chunk, sizeof chunk), 0);
  /* 120 bytes without a newline: refused before the line ends. */
  assert_int_equal(rtq__xline_feed(&r, chunk, sizeof chunk), RTQ_ETOOBIG);
  assert_true(r.cap <= 4096); /* nothing like the whole line was kept */
  rtq__xline_destroy(&r);
  /* A line of exactly max bytes with its newline is fine. */
  memset(&r, 0, sizeof r);
  r.max = 10;
  char *line;
  size_t len;
  assert_int_equal(rtq__xline_feed(&r, "123456789\n", 10), 0);
  assert_int_equal(rtq__xline_next(&r, &line, &len), 1);
  assert_int_equal(len, 9);
  rtq__xline_destroy(&r);
}

static void test_exec_proto_parse_types_and_garbage(void **state) {
  (void)state;
  rtq__xmsg m;
  char err[200];
  const char *ok = "{\"type\":\"progress\",\"id\":\"x\",\"percent\":5,\"extra\":[1]}";
  assert_int_equal(rtq__xmsg_parse(ok, strlen(ok), &m, err, sizeof err), 0);
  assert_int_equal(m.type, RTQ__X_PROGRESS);
  json_decref(m.root);
  assert_int_equal(rtq__xmsg_parse("  ", 2, &m, err, sizeof err), 1);
  /* A NUL byte is taken inside strings, but a type is one of the names
   * exactly: "result" followed by a NUL and more is no type. */
  const char *nul = "{\"type\":\"result\",\"result\":{\"s\":\"a\\u0000b\"}}";
  assert_int_equal(rtq__xmsg_parse(nul, strlen(nul), &m, err, sizeof err), 0);
  assert_int_equal(m.type, RTQ__X_RESULT);
  assert_int_equal(json_string_length(json_object_get(json_object_get(m.root, "result"), "s")), 3);
  json_decref(m.root);
  const char *bad[] = {"not json", "[1,2]", "{\"type\":\"bogus\"}", "{\"id\":\"x\"}", "{\"type\":5}", "\"ready\"",
                       "{\"type\":\"result\\u0000x\",\"result\":1}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(rtq__xmsg_parse(bad[i], strlen(bad[i]), &m, err, sizeof err), RTQ_EDECODE);
    assert_null(m.root);
    assert_true(strlen(err) > 0);
  }
}

static void test_exec_proto_task_and_cancel_frames(void **state) {
  (void)state;
  size_t len = 0;
  char *t = rtq__xmsg_task("01J", "send\"mail", "q", 2, 300000, 1765000000000ull, "{\"to\":\"a\"}", &len);
  assert_non_null(t);
  assert_int_equal(len, strlen(t));
  assert_int_equal(t[len - 1], '\n');
  json_t *o = json_loadb(t, len - 1, 0, NULL);
  assert_non_null(o);
  assert_string_equal(json_string_value(json_object_get(o, "type")), "task");
  assert_string_equal(json_string_value(json_object_get(o, "name")), "send\"mail");
  assert_int_equal(json_integer_value(json_object_get(o, "attempt")), 2);
  assert_int_equal(json_integer_value(json_object_get(o, "v")), 1);
  assert_true(json_integer_value(json_object_get(o, "deadline_ms")) == 1765000000000ll);
  assert_string_equal(json_string_value(json_object_get(json_object_get(o, "args"), "to")), "a");
  json_decref(o);
  free(t);
  char *c = rtq__xmsg_cancel("01J", "timeout", &len);
  assert_string_equal(c, "{\"type\":\"cancel\",\"id\":\"01J\",\"reason\":\"timeout\"}\n");
  free(c);
}

static void test_exec_proto_code_cleaned(void **state) {
  (void)state;
  char out[65];
  rtq__xcode_clean("SMTP Error/5", out, sizeof out);
  assert_string_equal(out, "SMTP_Error_5");
  rtq__xcode_clean("", out, sizeof out);
  assert_string_equal(out, "HANDLER_ERROR");
  rtq__xcode_clean(NULL, out, sizeof out);
  assert_string_equal(out, "HANDLER_ERROR");
  char longc[200];
  memset(longc, 'A', sizeof longc - 1);
  longc[sizeof longc - 1] = '\0';
  rtq__xcode_clean(longc, out, sizeof out);
  assert_int_equal(strlen(out), 64);
}

static void test_exec_proto_command_split(void **state) {
  (void)state;
  char **w = rtq__exec_split("  python3 -m 'rtq.run' \"my app\" a\\ b ''  ");
  assert_non_null(w);
  const char *want[] = {"python3", "-m", "rtq.run", "my app", "a b", ""};
  for (size_t i = 0; i < 6; i++) assert_string_equal(w[i], want[i]);
  assert_null(w[6]);
  rtq__exec_words_free(w);
  assert_null(rtq__exec_split("   "));
  assert_null(rtq__exec_split("cmd 'open"));
  w = rtq__exec_split("a b c d e f g");
  assert_string_equal(w[6], "g");
  assert_null(w[7]);
  rtq__exec_words_free(w);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exec_proto_lines_split_across_feeds),
      cmocka_unit_test(test_exec_proto_line_over_limit_fails_early),
      cmocka_unit_test(test_exec_proto_parse_types_and_garbage),
      cmocka_unit_test(test_exec_proto_task_and_cancel_frames),
      cmocka_unit_test(test_exec_proto_code_cleaned),
      cmocka_unit_test(test_exec_proto_command_split),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
