/*
 * test_cli_durations.c - every duration option of the `rtq` binary goes
 * through the one parser the broker and worker use: "5m", "1500ms", "2s"
 * and bare seconds mean the same everywhere, and a bad spelling exits 2
 * with a message naming the option, with nothing written to Redis.
 */
#include "test_cli_env.h"


static char *hget(const char *id, const char *field) {
  return cli_task_field("default", id, field);
}

static void test_cli_durations_take_units(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "enqueue", "t", "--id", "d1", "--timeout", "5m", "--result-ttl", "2m");
  if (r.code != 0) fail_msg("enqueue: %s", r.err);
  cli_free(&r);
  char *s = hget("d1", "timeout_ms");
  assert_string_equal(s, "300000");
  free(s);
  s = hget("d1", "result_ttl");
  assert_string_equal(s, "120");
  free(s);

  /* --delay 1500ms: due 1.5 s after created_at, on Redis's clock. */
  RUN(&r, "enqueue", "t", "--id", "d2", "--delay", "1500ms");
  if (r.code != 0) fail_msg("enqueue: %s", r.err);
  cli_free(&r);
  s = hget("d2", "run_at");
  char *c = hget("d2", "created_at");
  assert_non_null(s);
  assert_non_null(c);
  assert_int_equal(strtoll(s, NULL, 10) - strtoll(c, NULL, 10), 1500);
  free(s);
  free(c);

  /* Bare seconds keep working, fractions included. */
  RUN(&r, "enqueue", "t", "--id", "d3", "--timeout", "2.5");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  s = hget("d3", "timeout_ms");
  assert_string_equal(s, "2500");
  free(s);

  /* The waits take units as well, and honour them. */
  RUN(&r, "wait", "d3", "--timeout", "300ms");
  assert_int_equal(r.code, 5);
  assert_true(r.ms >= 300);
  cli_free(&r);
  RUN(&r, "watch", "d3", "--timeout", "0.2s");
  assert_int_equal(r.code, 5);
  assert_true(r.ms >= 200);
  cli_free(&r);
  RUN(&r, "enqueue", "t", "--wait=250ms");
  assert_int_equal(r.code, 5);
  assert_true(r.ms >= 250);
  cli_free(&r);
}

static void test_cli_durations_reject_bad_spellings(void **state) {
  (void)state;
  static const struct {
    const char *args[6];
    const char *needle;
  } cases[] = {
      {{"enqueue", "t", "--timeout", "5d", NULL}, "invalid --timeout \"5d\": expected a duration"},
      {{"enqueue", "t", "--timeout", "0x10", NULL}, "--timeout"},
      {{"enqueue", "t", "--timeout", "9000h", NULL}, "out of range"},
      {{"enqueue", "t", "--delay", "1e3", NULL}, "invalid --delay"},
      {{"enqueue", "t", "--delay", " 5", NULL}, "invalid --delay"},
      {{"enqueue", "t", "--delay", "", NULL}, "invalid --delay"},
      {{"enqueue", "t", "--wait=soon", NULL}, "invalid --wait"},
      {{"enqueue", "t", "--result-ttl", "1500ms", NULL}, "whole seconds"},
      {{"enqueue", "t", "--result-ttl", "0", NULL}, "out of range"},
      {{"wait", "x", "--timeout", "-1s", NULL}, "invalid --timeout"},
      {{"watch", "--timeout", "1w", NULL}, "invalid --timeout"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_run r;
    cli(&r, cases[i].args, env);
    cli_assert_error(&r, 2, cases[i].needle);
    cli_free(&r);
  }
  assert_int_equal(rtq_test_cmd_int(rc_, "DBSIZE", NULL), 0);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_durations_take_units),
      T(test_cli_durations_reject_bad_spellings),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
