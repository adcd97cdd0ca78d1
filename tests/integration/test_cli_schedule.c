/*
 * test_cli_schedule.c - `rtq schedule add|list|remove|pause|resume`:
 * what a person and a script see, and the exit codes of bad input.
 */
#include "test_cli_env.h"

static void test_cli_schedule_round_trip(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "schedule", "add", "nightly", "30 2 * * *", "report.build", "{\"to\":\"ops\",\"nul\":\"a\\u0000b\"}", "--queue", "reports",
      "--timeout", "5m", "--tz", "Europe/Berlin");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "schedule nightly added\n");
  cli_free(&r);
  RUN(&r, "schedule", "add", "tick", "@every 90s", "rtq.noop");
  assert_int_equal(r.code, 0);
  cli_free(&r);

  RUN(&r, "schedule", "list", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  json_t *arr = json_object_get(v, "schedules");
  assert_int_equal(json_array_size(arr), 2);
  json_t *s = json_array_get(arr, 0);
  assert_string_equal(json_string_value(json_object_get(s, "id")), "nightly");
  assert_string_equal(json_string_value(json_object_get(s, "tz")), "Europe/Berlin");
  assert_string_equal(json_string_value(json_object_get(s, "queue")), "reports");
  assert_int_equal(json_integer_value(json_object_get(s, "timeout_ms")), 300000);
  assert_string_equal(json_string_value(json_object_get(json_object_get(s, "args"), "to")), "ops");
  assert_int_equal(json_string_length(json_object_get(json_object_get(s, "args"), "nul")), 3);
  assert_true(json_integer_value(json_object_get(s, "next_run_at")) > 0);
  assert_int_equal(json_integer_value(json_object_get(s, "last_run_at")), 0);
  json_decref(v);
  cli_free(&r);

  RUN(&r, "schedule", "pause", "tick");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "schedule tick: paused\n");
  cli_free(&r);
  RUN(&r, "schedule", "list");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "NEXT RUN"));
  assert_non_null(strstr(r.out, "paused"));
  assert_non_null(strstr(r.out, "Europe/Berlin"));
  cli_free(&r);
  RUN(&r, "schedule", "resume", "tick");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  RUN(&r, "schedule", "remove", "tick");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "schedule tick: removed\n");
  cli_free(&r);
  RUN(&r, "schedule", "remove", "tick");
  assert_int_equal(r.code, 3);
  assert_non_null(strstr(r.err, "no schedule tick"));
  cli_free(&r);
}

static void test_cli_schedule_bad_input(void **state) {
  (void)state;
  static const struct {
    const char *const argv[9];
    int code;
    const char *says;
  } cases[] = {
      {{"schedule", "add", "x", "61 * * * *", "job", NULL}, 2, "minute"},
      {{"schedule", "add", "x", "@hourly", "job", "--tz", "Nowhere/Land", NULL}, 2, "time zone"},
      {{"schedule", "add", "x", "@hourly", "job", "[1]", NULL}, 2, "map"},
      {{"schedule", "add", "x", "@hourly", NULL}, 2, "needs ID CRON NAME"},
      {{"schedule", "list", "--queue", "q", NULL}, 2, "schedule add only"},
      {{"schedule", "frobnicate", NULL}, 2, "add, list, remove, pause or resume"},
      {{"schedule", "pause", NULL}, 2, "one ID"},
      {{"schedule", "resume", "ghost", NULL}, 3, "no schedule ghost"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_run r;
    cli(&r, cases[i].argv, env);
    if (r.code != cases[i].code) fail_msg("case %zu: exit %d, stderr %s", i, r.code, r.err);
    if (strstr(r.err, cases[i].says) == NULL) fail_msg("case %zu: \"%s\" does not say %s", i, r.err, cases[i].says);
    cli_free(&r);
  }
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", rtq_keys2_schedules(&keys2).s, NULL), 0);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_schedule_round_trip),
      T(test_cli_schedule_bad_input),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
