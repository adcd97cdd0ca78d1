/*
 * test_cli_queue.c - `rtq queue pause Q` and `rtq queue resume Q`: the
 * paused set, what `rtq stats` shows, and bad input.
 */
#include "test_cli_env.h"

static void test_cli_queue_pause_and_resume(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "enqueue", "job", "--queue", "mail");
  cli_free(&r);
  RUN(&r, "queue", "pause", "mail");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "queue mail paused: workers claim nothing from it; its backlog stays\n");
  cli_free(&r);
  RUN(&r, "stats");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "(paused)"));
  cli_free(&r);
  RUN(&r, "stats", "--json");
  json_t *v = cli_json(&r);
  json_t *q = json_array_get(json_object_get(v, "queues"), 0);
  assert_string_equal(json_string_value(json_object_get(q, "name")), "mail");
  assert_true(json_is_true(json_object_get(q, "paused")));
  json_decref(v);
  cli_free(&r);
  RUN(&r, "queue", "resume", "mail", "--json");
  assert_int_equal(r.code, 0);
  v = cli_json(&r);
  assert_true(json_is_false(json_object_get(v, "paused")));
  json_decref(v);
  cli_free(&r);
  assert_int_equal(rtq_test_cmd_int(rc_, "SCARD", rtq_keys2_paused(&keys2).s, NULL), 0);
}

static void test_cli_queue_bad_input(void **state) {
  (void)state;
  static const struct {
    const char *const argv[5];
    const char *says;
  } cases[] = {
      {{"queue", NULL}, "pause, resume"},
      {{"queue", "stop", "mail", NULL}, "pause, resume"},
      {{"queue", "pause", NULL}, "one queue name"},
      {{"queue", "pause", "bad name", NULL}, "queue"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_run r;
    cli(&r, cases[i].argv, env);
    if (r.code != 2) fail_msg("case %zu: exit %d, stderr %s", i, r.code, r.err);
    if (strstr(r.err, cases[i].says) == NULL) fail_msg("case %zu: \"%s\" does not say %s", i, r.err, cases[i].says);
    cli_free(&r);
  }
}

int main(void) {
  /* rtq and the binaries it starts speak protocol 2 in both test runs. */
  setenv("RTQ_PROTOCOL", "2", 1);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_queue_pause_and_resume),
      T(test_cli_queue_bad_input),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
