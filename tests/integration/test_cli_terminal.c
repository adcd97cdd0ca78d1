/*
 * test_cli_terminal.c - task-supplied text cannot drive the terminal: a
 * task whose name, progress message, error and traceback hold escape
 * sequences (ESC[2J, an OSC window title, CR, the C1 CSI) and bytes that
 * are not UTF-8 shows them as plain text in `rtq status`, `rtq list`,
 * `rtq watch` and `rtq workers`; JSON output keeps them exact.
 */
#include "test_cli_env.h"

#define NASTY CLI_NASTY
#define assert_inert cli_assert_inert

static void test_cli_terminal_escapes_never_reach_the_terminal(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "enqueue", "job", "--id", "t-1");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  rtq_key2 k2 = rtq_keys2_task(&keys2, "default", "t-1");
  rtq_test_cmd_int(rc_, "HSET", k2.s, field_name("name"), "n" NASTY,
                   field_name("status"), "failed", field_name("progress"), "50",
                   field_name("progress_message"), "m" NASTY, field_name("worker"), "w" NASTY,
                   field_name("error_code"), "E" NASTY, field_name("error_message"), "msg" NASTY,
                   field_name("error_traceback"), "line 1" NASTY "\nline 2", NULL);
  /* Listed from the queue's list of failed tasks. */
  rtq_test_cmd_int(rc_, "LPUSH", rtq_keys2_done(&keys2, "default", RTQ_STATUS_FAILED).s, "t-1", NULL);

  RUN(&r, "status", "t-1");
  assert_int_equal(r.code, 0);
  assert_inert(r.out);
  assert_non_null(strstr(r.out, "[2J"));          /* shown, as text */
  assert_non_null(strstr(r.out, "\xef\xbf\xbd")); /* the bad byte */
  assert_non_null(strstr(r.out, "    line 2\n"));  /* traceback lines kept */
  cli_free(&r);

  RUN(&r, "list");
  assert_int_equal(r.code, 0);
  assert_inert(r.out);
  assert_non_null(strstr(r.out, "t-1"));
  cli_free(&r);

  RUN(&r, "watch", "t-1");
  assert_inert(r.out);
  cli_free(&r);

  /* JSON is exact: the same bytes come back, escaped by JSON. */
  RUN(&r, "status", "t-1", "--json");
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "message")),
                      "msg\x1b[2J\x1b]0;pwned\x07\rX\xc2\x9b" "31m\xef\xbf\xbd");
  json_decref(v);
  cli_free(&r);

  /* A worker record written by anyone with access. */
  rtq_key2 wk2 = rtq_keys2_worker(&keys2, "w-evil"), ws2 = rtq_keys2_workers(&keys2);
  const char *wk = wk2.s, *ws = ws2.s;
  rtq_test_cmd_int(rc_, "HSET", wk, "host", "h" NASTY, "queues", "q" NASTY, "pid", "1", NULL);
  redisReply *t = rtq_test_command(rc_, "TIME", NULL);
  char now[32];
  snprintf(now, sizeof now, "%lld", atoll(t->element[0]->str) * 1000);
  freeReplyObject(t);
  rtq_test_cmd_int(rc_, "ZADD", ws, now, "w-evil", NULL);
  /* A score no clock gives (inf): listed without harm. */
  rtq_test_cmd_int(rc_, "ZADD", ws, "+inf", "w-inf", NULL);
  RUN(&r, "workers");
  assert_int_equal(r.code, 0);
  assert_inert(r.out);
  if (strstr(r.out, "w-evil") == NULL) fail_msg("rtq workers: %s / %s", r.out, r.err);
  cli_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cli_terminal_escapes_never_reach_the_terminal, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
