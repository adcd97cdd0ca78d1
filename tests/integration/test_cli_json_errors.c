/*
 * test_cli_json_errors.c - with --json, every error of the `rtq` binary is
 * one JSON object on stderr, {"error":{"code":"RTQ_E...","message":"..."}},
 * with the same exit code as without --json and nothing on stdout: usage
 * errors (wherever --json stands), bad input, not found, a refused state,
 * Redis down and timeouts.
 */
#include "test_cli_env.h"
#include "test_client_fake_worker2.h"


/* Asserts a JSON failure: the exit code, nothing on stdout, and stderr
 * exactly one line holding {"error":{"code": code, "message": ...needle...}}
 * and nothing else. */
static void assert_json_error(const cli_run *r, int exit_code, const char *code,
                              const char *needle) {
  if (r->code != exit_code) fail_msg("exit %d, wanted %d; stderr: %s", r->code, exit_code, r->err);
  assert_string_equal(r->out, "");
  const char *nl = strchr(r->err, '\n');
  if (nl == NULL || nl[1] != '\0') fail_msg("stderr is not one line: %s", r->err);
  json_error_t e;
  json_t *v = json_loadb(r->err, (size_t)(nl - r->err), 0, &e);
  if (v == NULL) fail_msg("stderr is not JSON (%s): %s", e.text, r->err);
  assert_int_equal(json_object_size(v), 1);
  json_t *err = json_object_get(v, "error");
  assert_true(json_is_object(err));
  assert_int_equal(json_object_size(err), 2);
  assert_string_equal(json_string_value(json_object_get(err, "code")), code);
  const char *msg = json_string_value(json_object_get(err, "message"));
  assert_non_null(msg);
  if (needle != NULL && strstr(msg, needle) == NULL)
    fail_msg("message lacks \"%s\": %s", needle, msg);
  json_decref(v);
}

static void test_cli_json_errors_usage_and_input(void **state) {
  (void)state;
  static const struct {
    const char *args[8];
    const char *code;
    const char *needle;
  } cases[] = {
      {{"--json", NULL}, "RTQ_EINVAL", "no command"},
      {{"--json", "frob", NULL}, "RTQ_EINVAL", "unknown command"},
      {{"frob", "--json", NULL}, "RTQ_EINVAL", "unknown command"},
      /* The bad word comes before --json: still JSON. */
      {{"enqueue", "t", "--frob", "--json", NULL}, "RTQ_EINVAL", "unknown option"},
      {{"enqueue", "--json", NULL}, "RTQ_EINVAL", "NAME"},
      {{"enqueue", "t", "{x", "--json", NULL}, "RTQ_EJSON", "invalid JSON"},
      {{"enqueue", "t", "[1]", "--json", NULL}, "RTQ_EINVAL", "JSON object"},
      {{"enqueue", "bad name", "--json", NULL}, "RTQ_EINVAL", "task name"},
      {{"enqueue", "t", "--timeout", "soon", "--json", NULL}, "RTQ_EINVAL", "--timeout"},
      {{"enqueue", "t", "--json=1", NULL}, "RTQ_EINVAL", "--json takes no value"},
      {{"enqueue", "t", "--queue", "a/b", "--json", NULL}, "RTQ_EINVAL", "queue name"},
      {{"--json", "--redis", NULL}, "RTQ_EINVAL", "needs a value"},
      {{"status", "--json", NULL}, "RTQ_EINVAL", "ID"},
      {{"list", "--limit", "0", "--json", NULL}, "RTQ_EINVAL", "--limit"},
      {{"list", "--status", "x", "--json", NULL}, "RTQ_EINVAL", "--status"},
      {{"stats", "extra", "--json", NULL}, "RTQ_EINVAL", "unexpected"},
      {{"watch", "a b", "--json", NULL}, "RTQ_EINVAL", "task id"},
      /* Bytes that are not UTF-8 in the detail: U+FFFD, still JSON. */
      {{"status", "\xff\xfe", "--json", NULL}, "RTQ_EINVAL", "invalid task id \"\xef\xbf\xbd\xef\xbf\xbd\""},
      {{"--json", "--redis", "tcp://nowhere", "stats", NULL}, "RTQ_EINVAL", "URL"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_run r;
    cli(&r, cases[i].args, env);
    assert_json_error(&r, 2, cases[i].code, cases[i].needle);
    cli_free(&r);
  }
  /* Without --json the same error is the plain line. */
  cli_run r;
  RUN(&r, "enqueue", "t", "--frob");
  cli_assert_error(&r, 2, "unknown option");
  cli_free(&r);
  /* After "--", "--json" is a word, not the option. */
  RUN(&r, "status", "--", "--json", "x");
  cli_assert_error(&r, 2, "unexpected argument");
  cli_free(&r);
  assert_int_equal(rtq_test_cmd_int(rc_, "DBSIZE", NULL), 0);
}

static void test_cli_json_errors_from_redis_and_tasks(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "status", "ghost", "--json");
  assert_json_error(&r, 3, "RTQ_ENOTFOUND", "ghost");
  cli_free(&r);
  RUN(&r, "--json", "cancel", "ghost");
  assert_json_error(&r, 3, "RTQ_ENOTFOUND", NULL);
  cli_free(&r);
  RUN(&r, "--json", "retry", "ghost");
  assert_json_error(&r, 3, "RTQ_ENOTFOUND", NULL);
  cli_free(&r);
  RUN(&r, "--json", "watch", "ghost");
  assert_json_error(&r, 3, "RTQ_ENOTFOUND", NULL);
  cli_free(&r);

  /* A refused state: retry of a pending task, cancel of a completed one. */
  RUN(&r, "enqueue", "t", "--id", "j1");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  RUN(&r, "retry", "j1", "--json");
  assert_json_error(&r, 1, "RTQ_ESTATE", NULL);
  cli_free(&r);
  assert_int_equal(fw2_run_one(rc_, &keys2, "default", "w", NULL), 0);
  RUN(&r, "cancel", "j1", "--json");
  assert_json_error(&r, 1, "RTQ_ESTATE", "completed");
  cli_free(&r);

  /* Timeouts: exit 5. */
  RUN(&r, "enqueue", "t", "--id", "j2");
  cli_free(&r);
  RUN(&r, "wait", "j2", "--timeout", "100ms", "--json");
  assert_json_error(&r, 5, "RTQ_ETIMEDOUT", "j2");
  cli_free(&r);
  RUN(&r, "watch", "j2", "--timeout", "100ms", "--json");
  /* watch printed the task's line before timing out: only stderr is checked. */
  assert_int_equal(r.code, 5);
  json_t *v = json_loads(r.err, 0, NULL);
  assert_non_null(v);
  assert_string_equal(json_string_value(json_object_get(json_object_get(v, "error"), "code")),
                      "RTQ_ETIMEDOUT");
  json_decref(v);
  cli_free(&r);
}

static void test_cli_json_errors_redis_down(void **state) {
  (void)state;
  /* A socket path where no server listens. */
  const char *denv[] = {"RTQ_REDIS_URL=unix:///nonexistent-rtq-dir/redis.sock", NULL};
  const char *cmds[][5] = {{"enqueue", "t", "--json", NULL}, {"status", "x", "--json", NULL},
                           {"list", "--json", NULL, NULL},  {"stats", "--json", NULL, NULL},
                           {"workers", "--json", NULL, NULL}, {"wait", "x", "--json", NULL},
                           {"watch", "--json", NULL, NULL}, {"dead", "list", "--json", NULL},
                           {"dead", "show", "0", "--json"}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    cli_run r;
    cli(&r, cmds[i], denv);
    assert_json_error(&r, 4, "RTQ_ECONN", "connect");
    cli_free(&r);
  }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_json_errors_usage_and_input),
      T(test_cli_json_errors_from_redis_and_tasks),
      T(test_cli_json_errors_redis_down),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
