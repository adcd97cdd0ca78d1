/*
 * test_cli_queue_ops2.c - the protocol 2 operations of the `rtq` tool:
 * `rtq queue limit` (set, show, clear, bad input), `rtq queue purge` and
 * `rtq tasks delete`, their --json output and exit codes. Tasks are put
 * in place with the scripts' call builders (test_ops2_util.h).
 */
#include "test_cli_env.h"
#include "test_ops2_util.h"

static rtq_keys2 K;

#define RUN2(r, ...) cli(r, (const char *const[]){__VA_ARGS__, NULL}, env)

/* Marks the namespace (its protocol mark) and loads the scripts, as a
 * client would. */
static void become_v2(void) {
  assert_int_equal(rtq_keys2_init(&K, "rtq"), 0);
  cli_run r;
  RUN2(&r, "queue", "limit", "mail");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  assert_int_equal(rtq_scripts2_load(rc_), 0);
}

static void test_cli_queue_ops2_queue_limit(void **state) {
  (void)state;
  become_v2();
  cli_run r;
  RUN2(&r, "queue", "limit", "mail", "--rate", "50/s");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "50/s, burst 50 (the rate rounded up)"));
  assert_non_null(strstr(r.out, "concurrency  no limit"));
  cli_free(&r);
  RUN2(&r, "queue", "limit", "mail", "--concurrency", "3", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_true(json_real_value(json_object_get(v, "rate")) == 50);
  assert_int_equal(json_integer_value(json_object_get(v, "burst")), 50);
  assert_int_equal(json_integer_value(json_object_get(v, "concurrency")), 3);
  assert_int_equal(json_integer_value(json_object_get(v, "running")), 0);
  json_decref(v);
  cli_free(&r);
  RUN2(&r, "queue", "limit", "mail", "--rate", "600/m", "--burst", "5", "--json");
  v = cli_json(&r);
  assert_true(json_real_value(json_object_get(v, "rate")) == 10);
  assert_int_equal(json_integer_value(json_object_get(v, "burst")), 5);
  json_decref(v);
  cli_free(&r);
  rtq_key2 kl = rtq_keys2_limit(&K, "mail");
  char *rate = rtq_test_cmd_str(rc_, "HGET", kl.s, "rate", NULL);
  assert_string_equal(rate, "10");
  free(rate);
  /* Shown without an option. */
  RUN2(&r, "queue", "limit", "mail");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "10/s, burst 5;"));
  assert_non_null(strstr(r.out, "3 at once; 0 running under it"));
  cli_free(&r);
  /* off removes one limit. */
  RUN2(&r, "queue", "limit", "mail", "--rate", "off", "--json");
  v = cli_json(&r);
  assert_true(json_is_null(json_object_get(v, "rate")));
  assert_int_equal(json_integer_value(json_object_get(v, "concurrency")), 3);
  json_decref(v);
  cli_free(&r);
  /* rtq stats shows them too. */
  RUN2(&r, "stats");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "(limit 3 at once)"));
  assert_null(strstr(r.out, "/s)"));
  cli_free(&r);
  RUN2(&r, "queue", "limit", "mail", "--rate", "2.5/s");
  cli_free(&r);
  RUN2(&r, "stats", "--json");
  assert_int_equal(r.code, 0);
  v = cli_json(&r);
  json_t *q = json_array_get(json_object_get(v, "queues"), 0);
  assert_string_equal(json_string_value(json_object_get(q, "name")), "mail");
  assert_true(json_real_value(json_object_get(q, "rate_limit")) == 2.5);
  assert_int_equal(json_integer_value(json_object_get(q, "concurrency_limit")), 3);
  json_decref(v);
  cli_free(&r);
  RUN2(&r, "queue", "limit", "mail", "--clear");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "rate         no limit"));
  assert_non_null(strstr(r.out, "concurrency  no limit"));
  cli_free(&r);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", kl.s, NULL), 0);
}

static void test_cli_queue_ops2_queue_limit_bad_input(void **state) {
  (void)state;
  become_v2();
  static const struct {
    const char *const argv[8];
    const char *says;
  } cases[] = {
      {{"queue", "limit", NULL}, "one queue name"},
      {{"queue", "limit", "bad name", "--rate", "5", NULL}, "invalid queue"},
      {{"queue", "limit", "mail", "--rate", "abc", NULL}, "expected tasks per second"},
      {{"queue", "limit", "mail", "--rate", "5/x", NULL}, "expected tasks per second"},
      {{"queue", "limit", "mail", "--rate", "-5/s", NULL}, "expected tasks per second"},
      {{"queue", "limit", "mail", "--rate", "1e3", NULL}, "expected tasks per second"},
      {{"queue", "limit", "mail", "--rate", "0.0001/s", NULL}, "out of range"},
      {{"queue", "limit", "mail", "--rate", "2000000/s", NULL}, "out of range"},
      {{"queue", "limit", "mail", "--rate", "1/h", NULL}, "out of range"},
      {{"queue", "limit", "mail", "--burst", "5", NULL}, "--burst goes with --rate"},
      {{"queue", "limit", "mail", "--rate", "5", "--burst", "0", NULL}, "--burst"},
      {{"queue", "limit", "mail", "--concurrency", "-3", NULL}, "--concurrency"},
      {{"queue", "limit", "mail", "--concurrency", "2000000", NULL}, "--concurrency"},
      {{"queue", "limit", "mail", "--clear", "--rate", "5", NULL}, "--clear goes alone"},
      {{"queue", "purge", "mail", "--rate", "5", NULL}, "queue limit only"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_run r;
    cli(&r, cases[i].argv, env);
    if (r.code != 2) fail_msg("case %zu: exit %d, stderr %s", i, r.code, r.err);
    cli_assert_error(&r, 2, cases[i].says);
    cli_free(&r);
  }
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", rtq_keys2_limit(&K, "mail").s, NULL), 0);
}

static void test_cli_queue_ops2_queue_purge(void **state) {
  (void)state;
  become_v2();
  ops2_create(rc_, &K, "bulk", 1000, 0, NULL);
  ops2_create(rc_, &K, "bulk", 30, 600000, NULL);
  ops2_create(rc_, &K, "other", 3, 0, NULL);
  cli_run r;
  RUN2(&r, "queue", "purge", "bulk", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "cancelled")), 1030);
  assert_int_equal(json_integer_value(json_object_get(v, "left")), 0);
  assert_int_equal(json_integer_value(json_object_get(v, "calls")), 11);
  assert_true(json_is_true(json_object_get(v, "complete")));
  json_decref(v);
  cli_free(&r);
  assert_int_equal(ops2_llen(rc_, rtq_keys2_queue(&K, "bulk")), 0);
  assert_int_equal(ops2_llen(rc_, rtq_keys2_done(&K, "bulk", RTQ_STATUS_CANCELLED)), 1030);
  assert_int_equal(ops2_llen(rc_, rtq_keys2_queue(&K, "other")), 3);
  RUN2(&r, "queue", "purge", "bulk");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "queue bulk: 0 pending tasks cancelled\n");
  cli_free(&r);
}

static void test_cli_queue_ops2_tasks_delete(void **state) {
  (void)state;
  become_v2();
  ops2_create(rc_, &K, "a", 120, 0, NULL);
  ops2_end(rc_, &K, "a", 100, RTQ_STATUS_COMPLETED);
  ops2_end(rc_, &K, "a", 20, RTQ_STATUS_FAILED);
  ops2_create(rc_, &K, "b", 5, 0, NULL);
  ops2_end(rc_, &K, "b", 5, RTQ_STATUS_COMPLETED);
  cli_run r;
  /* Nothing ended an hour ago. */
  RUN2(&r, "tasks", "delete", "--status", "completed", "--older-than", "1h", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "deleted")), 0);
  json_decref(v);
  cli_free(&r);
  RUN2(&r, "tasks", "delete", "--status", "completed", "--queue", "a", "--json");
  assert_int_equal(r.code, 0);
  v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "deleted")), 100);
  assert_int_equal(json_integer_value(json_object_get(v, "queues")), 1);
  assert_string_equal(json_string_value(json_array_get(json_object_get(v, "status"), 0)), "completed");
  json_decref(v);
  cli_free(&r);
  assert_int_equal(ops2_llen(rc_, rtq_keys2_done(&K, "b", RTQ_STATUS_COMPLETED)), 5);
  RUN2(&r, "tasks", "delete", "--status", "completed,failed");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.out, "25 ended tasks deleted (2 queues)\n");
  cli_free(&r);
  assert_int_equal(ops2_llen(rc_, rtq_keys2_done(&K, "a", RTQ_STATUS_FAILED)), 0);
  assert_int_equal(ops2_llen(rc_, rtq_keys2_done(&K, "b", RTQ_STATUS_COMPLETED)), 0);
  static const struct {
    const char *const argv[8];
    const char *says;
  } cases[] = {
      {{"tasks", NULL}, "tasks needs delete"},
      {{"tasks", "delete", NULL}, "needs --status"},
      {{"tasks", "delete", "--status", "pending", NULL}, "ended statuses"},
      {{"tasks", "delete", "--status", "completed,bogus", NULL}, "ended statuses"},
      {{"tasks", "delete", "--status", ",", NULL}, "needs --status"},
      {{"tasks", "delete", "--status", "failed", "--older-than", "soon", NULL}, "--older-than"},
      {{"tasks", "delete", "--status", "failed", "--queue", "bad name", NULL}, "invalid queue"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli(&r, cases[i].argv, env);
    cli_assert_error(&r, 2, cases[i].says);
    cli_free(&r);
  }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_queue_ops2_queue_limit),
      T(test_cli_queue_ops2_queue_limit_bad_input),
      T(test_cli_queue_ops2_queue_purge),
      T(test_cli_queue_ops2_tasks_delete),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
