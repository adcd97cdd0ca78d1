/*
 * test_cli_dead.c - `rtq dead list` and `rtq dead show`: dead letters that
 * a real rtq-worker wrote (a task whose args are over --max-payload, an
 * entry over the 4096 bytes a record keeps, bytes that are no id at all)
 * shown as JSON with reason and code, the payload as an escaped/hex
 * preview; records written by hand with the payload as msgpack str and as
 * bin (both read) and a record that is not msgpack; paging with
 * --limit/--offset and its bounds.
 */
#include "test_cli_env.h"
#include "test_cli_dead.h"

static void test_cli_dead_from_a_real_worker(void **state) {
  (void)state;
  enqueue_blob("small-big", 700); /* args over 512: the task fails */
  /* An entry over 4096 bytes: the record keeps a part. */
  char *huge = malloc(5000);
  memset(huge, 'h', 5000);
  push_entry("default", huge, 5000);
  free(huge);
  static const char junk[] = "\x01\xffhello\\x";
  push_entry("default", junk, sizeof junk - 1);
  pid_t w = spawn_bin("worker/rtq-worker",
                      (const char *const[]){"--demo-handlers", "--max-payload", "512",
                                            "--log-level", "ERROR", NULL},
                      "/dev/null");
  RTQ_TEST_WAIT_FOR(dead_len("default") == 3, 10000);
  int status = 0;
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 30000, &status), 0);

  cli_run r;
  char *st = cli_task_field("default", "small-big", "status");
  assert_string_equal(st, "failed");
  free(st);

  RUN(&r, "dead", "list", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "total")), 3);
  assert_int_equal(json_array_size(json_object_get(v, "letters")), 3);

  /* The task whose args were too large: its id, its task. */
  json_t *l = NULL, *cut = NULL, *junk_l = NULL;
  json_t *arr = json_object_get(v, "letters");
  for (size_t i = 0; i < 3; i++) {
    json_t *x = json_array_get(arr, i);
    assert_int_equal(json_integer_value(json_object_get(x, "index")), (json_int_t)i);
    if (json_is_string(json_object_get(x, "id"))) l = x;
    else if (json_is_true(json_object_get(x, "truncated"))) cut = x;
    else junk_l = x;
  }
  assert_non_null(l);
  assert_string_equal(json_string_value(json_object_get(l, "id")), "small-big");
  assert_string_equal(json_string_value(json_object_get(l, "code")), "PAYLOAD_TOO_LARGE");
  assert_non_null(strstr(json_string_value(json_object_get(l, "reason")), "max_payload"));
  assert_string_equal(json_string_value(json_object_get(l, "queue")), "default");
  json_t *t = json_object_get(l, "task");
  assert_string_equal(json_string_value(json_object_get(t, "id")), "small-big");
  assert_string_equal(json_string_value(json_object_get(t, "queue")), "default");
  assert_false(json_is_true(json_object_get(l, "truncated")));

  /* Kept in part: said why. */
  assert_non_null(cut);
  assert_true(json_is_null(json_object_get(cut, "id")));
  assert_string_equal(json_string_value(json_object_get(cut, "code")), "BAD_ID");
  assert_int_equal(json_integer_value(json_object_get(cut, "payload_bytes")), 4096);
  assert_int_equal(json_integer_value(json_object_get(cut, "size")), 5000);
  assert_true(json_is_null(json_object_get(cut, "task")));
  assert_non_null(strstr(json_string_value(json_object_get(cut, "payload_error")), "first 4096"));

  /* No id at all: escaped preview and hex. */
  assert_non_null(junk_l);
  assert_true(json_is_null(json_object_get(junk_l, "task")));
  assert_string_equal(json_string_value(json_object_get(junk_l, "payload_preview")),
                      "\\x01\\xffhello\\\\x");
  assert_string_equal(json_string_value(json_object_get(junk_l, "payload_hex")), "01ff68656c6c6f5c78");
  json_decref(v);
  cli_free(&r);

  /* Human: a table with the task's name and a footer. */
  RUN(&r, "dead", "list");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "INDEX"));
  assert_non_null(strstr(r.out, "small-big"));
  assert_non_null(strstr(r.out, "PAYLOAD_TOO_LARGE"));
  assert_non_null(strstr(r.out, "<undecodable>"));
  assert_non_null(strstr(r.out, "(0 to 2 of 3;"));
  cli_free(&r);

  /* Paging. */
  RUN(&r, "dead", "list", "--limit", "1", "--offset", "2", "--json");
  v = cli_json(&r);
  assert_int_equal(json_array_size(json_object_get(v, "letters")), 1);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(v, "letters"), 0), "index")), 2);
  json_decref(v);
  cli_free(&r);
  RUN(&r, "dead", "list", "--offset", "3", "--json");
  v = cli_json(&r);
  assert_int_equal(json_array_size(json_object_get(v, "letters")), 0);
  json_decref(v);
  cli_free(&r);

  /* show: one record, indented for a person, compact with --json. */
  RUN(&r, "dead", "show", "1");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "\n  \"index\": 1,\n"));
  cli_free(&r);
  RUN(&r, "dead", "show", "0", "--json");
  v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "index")), 0);
  json_decref(v);
  cli_free(&r);
  /* Global options before the subcommand. */
  RUN(&r, "dead", "--json", "--namespace", "rtq", "show", "0");
  assert_int_equal(r.code, 0);
  v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "index")), 0);
  json_decref(v);
  cli_free(&r);
}

static void test_cli_dead_str_and_bin_payloads(void **state) {
  (void)state;
  dead_push("default", "hand-1", "AS_STR", "hand-1", 6, false);
  dead_push("default", "hand-1", "AS_BIN", "hand-1", 6, true);
  rtq_key2 d = rtq_keys2_dead(&keys2, "default");
  freeReplyObject(rtq_test_command(rc_, "LPUSH", d.s, "not msgpack at all \xc1", NULL));

  cli_run r;
  for (int i = 1; i <= 2; i++) {
    char idx[4];
    snprintf(idx, sizeof idx, "%d", i);
    RUN(&r, "dead", "show", idx, "--json");
    assert_int_equal(r.code, 0);
    json_t *v = cli_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "code")), i == 1 ? "AS_BIN" : "AS_STR");
    assert_string_equal(json_string_value(json_object_get(v, "reason")), "written by the test");
    assert_string_equal(json_string_value(json_object_get(v, "id")), "hand-1");
    /* The payload (the id) is read whichever way it was packed. */
    json_t *t = json_object_get(v, "task");
    if (!json_is_object(t)) fail_msg("letter %d: no task: %s", i, r.out);
    assert_string_equal(json_string_value(json_object_get(t, "id")), "hand-1");
    json_decref(v);
    cli_free(&r);
  }
  /* A record that does not decode is shown, not skipped. */
  RUN(&r, "dead", "show", "0", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_non_null(json_string_value(json_object_get(v, "record_error")));
  assert_non_null(strstr(json_string_value(json_object_get(v, "payload_preview")), "not msgpack"));
  json_decref(v);
  cli_free(&r);
}

static void test_cli_dead_bounds_and_errors(void **state) {
  (void)state;
  for (int i = 0; i < 25; i++) dead_push("default", "x", "C", "x", 1, true);
  cli_run r;
  RUN(&r, "dead", "list", "--json");
  json_t *v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "total")), 25);
  assert_int_equal(json_array_size(json_object_get(v, "letters")), 20); /* the default */
  json_decref(v);
  cli_free(&r);

  RUN(&r, "dead", "show", "25");
  cli_assert_error(&r, 3, "no dead letter at index 25");
  cli_free(&r);
  RUN(&r, "dead", "show", "25", "--json");
  assert_int_equal(r.code, 3);
  assert_non_null(strstr(r.err, "\"RTQ_ENOTFOUND\""));
  cli_free(&r);
  static const struct {
    const char *args[6];
    const char *needle;
  } bad[] = {
      {{"dead", NULL}, "list, show, requeue or purge"},
      {{"dead", "bury", NULL}, "list, show, requeue or purge"},
      {{"dead", "--frob", "list", NULL}, "unknown option"},
      {{"dead", "show", NULL}, "INDEX"},
      {{"dead", "show", "-1", NULL}, "\"-1\""},
      {{"dead", "show", "x", NULL}, "invalid INDEX \"x\""},
      {{"dead", "show", "1", "2", NULL}, "unexpected"},
      {{"dead", "list", "--limit", "1001", NULL}, "--limit"},
      {{"dead", "list", "--limit", "0", NULL}, "--limit"},
      {{"dead", "list", "--offset", "-1", NULL}, "--offset"},
      {{"dead", "list", "extra", NULL}, "unexpected"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cli(&r, bad[i].args, env);
    cli_assert_error(&r, 2, bad[i].needle);
    cli_free(&r);
  }
}

int main(void) {
  /* rtq and the workers it starts speak protocol 2 in both test runs. */
  setenv("RTQ_PROTOCOL", "2", 1);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_dead_from_a_real_worker),
      T(test_cli_dead_str_and_bin_payloads),
      T(test_cli_dead_bounds_and_errors),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
