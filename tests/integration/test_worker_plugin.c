/*
 * test_worker_plugin.c - handler plugins: rtq-worker --plugin loads a
 * shared object whose handlers call back into the binary (rtq_task_*,
 * rtq_args_*), and refuses to start on a plugin it cannot load.
 */
#include "test_worker_util.h"

static rtq_client *cl;

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  cl = tw_client(rtq_test_redis_url());
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_client_free(cl);
  return 0;
}

static void test_worker_plugin_handler_runs(void **state) {
  (void)state;
  char so[1024];
  assert_non_null(rtq_test_bin_path("worker/rtq-example-plugin.so", so, sizeof so));
  tw_worker wk;
  tw_start(&wk, rtq_test_redis_url(), "--plugin", so, NULL);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "plugin.shout", "{\"text\":\"hello\"}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "{\"text\":\"HELLO\",\"attempt\":1}");
  free(json);
  rtq_task_free(t);
  /* A plugin's own failure path. */
  tw_enqueue(cl, "plugin.shout", "{}", NULL, id);
  t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "BAD_ARGS");
  rtq_task_free(t);
  assert_int_equal(tw_stop(&wk, 10000), 0);
}

/* RTQ_REDIS_URL may hold the password (docs/OPERATIONS.md): rtq-worker
 * reads it, then removes it from its environment, so neither a handler nor
 * a program the handler starts can read it, in either isolation. The same
 * for RTQ_REDIS_URL_FILE (use_file), which names a file holding it. */
static void env_case(const char *isolation, bool use_file) {
  char so[1024], url[256], env_url[600], path[300];
  assert_non_null(rtq_test_bin_path("tests/rtq-test-env-plugin.so", so, sizeof so));
  snprintf(url, sizeof url, "redis://default:Sup3rSecretPw@%s", rtq_test_redis_url() + strlen("redis://"));
  snprintf(env_url, sizeof env_url, "RTQ_REDIS_URL=%s", url);
  snprintf(path, sizeof path, "%s/worker-env-url-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  if (use_file) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(url, f);
    fclose(f);
    snprintf(env_url, sizeof env_url, "RTQ_REDIS_URL_FILE=%s", path);
  }
  const char *argv[] = {"rtq-worker", "--plugin", so, "--isolation", isolation, NULL};
  const char *env[] = {env_url, NULL};
  tw_worker wk;
  snprintf(wk.log, sizeof wk.log, "%s/worker-%d-env-%s.log", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           (int)getpid(), isolation);
  rtq_test_spawn_options so_ = {.path = tw_bin(), .argv = argv, .env = env, .output_path = wk.log};
  wk.pid = rtq_test_spawn_ex(&so_);
  assert_true(wk.pid > 0);
  rtq_conn *c = rtq_test_conn();
  RTQ_TEST_WAIT_FOR(tw_find_worker(c, wk.pid, wk.id, sizeof wk.id), 10000);
  rtq_conn_free(c);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "test.env", NULL, NULL, id);
  rtq_task *t = tw_wait(cl, id, 10000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  printf("  %s: %s\n", isolation, json);
  assert_string_equal(json, "{\"handler_sees_url\":false,\"child_sees_url\":false}");
  free(json);
  rtq_task_free(t);
  assert_int_equal(tw_stop(&wk, 10000), 0);
  if (use_file) unlink(path);
}

static void test_worker_plugin_handlers_do_not_see_the_redis_url(void **state) {
  (void)state;
  env_case("thread", false);
  env_case("process", false);
  env_case("thread", true);
  env_case("process", true);
}

static void test_worker_bad_plugin_refuses_to_start(void **state) {
  (void)state;
  const char *argv[] = {"rtq-worker", "--redis", rtq_test_redis_url(), "--plugin", "/nonexistent/p.so", NULL};
  pid_t pid = rtq_test_spawn(tw_bin(), argv, NULL);
  assert_true(pid > 0);
  int st = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &st), 0);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 2);
}

static void test_worker_bad_flags_exit_2(void **state) {
  (void)state;
  const char *bad[][4] = {{"--isolation", "fiber", NULL, NULL},
                          {"--queue", "a:0", NULL, NULL},
                          {"--concurrency", "0", NULL, NULL},
                          {"--shutdown-grace", "soon", NULL, NULL},
                          {"--namespace", "bad ns", NULL, NULL},
                          {"--enable-task-history", "maybe", NULL, NULL},
                          {"--max-concurrent-tasks", "-1", NULL, NULL},
                          {"--task-result-ttl", "forever", NULL, NULL}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *argv[] = {"rtq-worker", "--redis", rtq_test_redis_url(), "--demo-handlers", bad[i][0], bad[i][1], NULL};
    pid_t pid = rtq_test_spawn(tw_bin(), argv, NULL);
    int st = 0;
    assert_int_equal(rtq_test_wait_exit(pid, 10000, &st), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 2) fail_msg("%s %s: exit status %d", bad[i][0], bad[i][1], st);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_plugin_handler_runs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_plugin_handlers_do_not_see_the_redis_url, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_bad_plugin_refuses_to_start, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_bad_flags_exit_2, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
