/*
 * test_cli_idempotent.c - `rtq enqueue --id X` for an id that exists: exit
 * 0, the id on stdout as usual, a note on stderr that nothing new was
 * created ("created": false in JSON, true when it was), and Redis shows
 * that nothing was enqueued and the first task's args stayed.
 */
#include "test_cli_env.h"
#include "test_client_fake_worker2.h"


static void test_cli_idempotent_existing_id_creates_nothing(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "enqueue", "job", "{\"v\":1}", "--id", "order-9");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "order-9\n");
  assert_string_equal(r.err, ""); /* created: no note */
  cli_free(&r);

  RUN(&r, "enqueue", "job", "{\"v\":2}", "--id", "order-9");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "order-9\n");
  assert_string_equal(r.err, "rtq: note: task order-9 exists already; nothing new was created\n");
  cli_free(&r);

  RUN(&r, "enqueue", "job", "{\"v\":3}", "--id", "order-9", "--json");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.err, "");
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "id")), "order-9");
  assert_true(json_is_false(json_object_get(v, "created")));
  json_decref(v);
  cli_free(&r);

  RUN(&r, "enqueue", "job", "--id", "order-10", "--json");
  assert_int_equal(r.code, 0);
  v = cli_json(&r);
  assert_true(json_is_true(json_object_get(v, "created")));
  json_decref(v);
  cli_free(&r);

  /* One envelope each; the first args stayed. */
  assert_int_equal(queue_len("default"), 2);
  RUN(&r, "status", "order-9", "--json");
  v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "args"), "v")), 1);
  json_decref(v);
  cli_free(&r);
}

/* --wait on an existing id waits for that task, with the note (JSON: the
 * task with "created"). */
static void test_cli_idempotent_existing_id_with_wait(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "enqueue", "job", "--id", "w-1");
  cli_free(&r);
  assert_int_equal(fw2_run_one(rc_, &keys2, "default", "w", NULL), 0);
  RUN(&r, "enqueue", "job", "--id", "w-1", "--wait", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "status")), "completed");
  assert_true(json_is_false(json_object_get(v, "created")));
  json_decref(v);
  cli_free(&r);
  RUN(&r, "enqueue", "job", "--id", "w-1", "--wait");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.err, "rtq: note: task w-1 exists already; nothing new was created\n");
  assert_non_null(strstr(r.out, "completed"));
  cli_free(&r);
  RUN(&r, "enqueue", "job", "--id", "w-2");
  cli_free(&r);
  RUN(&r, "enqueue", "job", "--id", "w-2", "--wait=100ms");
  assert_int_equal(r.code, 5);
  assert_non_null(strstr(r.err, "rtq: note: task w-2 exists already; nothing new was created\n"));
  assert_non_null(strstr(r.err, "did not end"));
  cli_free(&r);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_idempotent_existing_id_creates_nothing),
      T(test_cli_idempotent_existing_id_with_wait),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
