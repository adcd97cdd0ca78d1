/*
 * test_worker_exec.c - handler processes (rtq-worker --exec, docs/EXEC.md)
 * with the real runners: Debian's python3 running `python3 -m rtq.run`
 * (sdk/python) and node running sdk/node/rtq-runner.js, on handler modules
 * under tests/integration/exec/. Tasks come from the C client; the worker
 * is the real binary.
 */
#include <errno.h>
#include <signal.h>
#include <sys/time.h>

#include "test_worker_util.h"

static rtq_client *cl;
static rtq_conn *rc;
static tw_worker wk;
static char src[1024];
static char py_cmd[256], js_cmd[2 * sizeof src + 128];

static int setup(void **state) {
  (void)state;
  tw_exec_env(src, sizeof src);
  snprintf(py_cmd, sizeof py_cmd, "/usr/bin/python3 -m rtq.run exec_handlers");
  snprintf(js_cmd, sizeof js_cmd, "node %s/sdk/node/rtq-runner.js %s/tests/integration/exec/exec_handlers.js", src,
           src);
  tw_open(&cl, &rc, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc, &wk, true);
  return 0;
}

static double wall_s(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* Waits until the task's progress message starts with prefix; returns
 * the number after it. */
static long wait_progress_number(const char *id, const char *prefix) {
  long n = -1;
  size_t pl = strlen(prefix);
  uint64_t until = rtq_test_now_ms() + 20000;
  while (n < 0 && rtq_test_now_ms() < until) {
    char *m = tw_hget(rc, id, "progress_message");
    if (m != NULL && strncmp(m, prefix, pl) == 0) n = strtol(m + pl, NULL, 10);
    free(m);
    if (n < 0) usleep(10000);
  }
  if (n <= 0) fail_msg("task %s never reported %s", id, prefix);
  return n;
}

static void assert_result(const rtq_task *t, const char *needle) {
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  if (strstr(json, needle) == NULL) fail_msg("result %s lacks %s", json, needle);
  free(json);
}

static void test_worker_exec_python_and_node_complete(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16], js[sizeof js_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  snprintf(js, sizeof js, "js.add=%s", js_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec", js, "--exec-pool", "2", NULL);
  char id[RTQ_TASK_ID_SIZE], id2[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "py.add", "{\"a\":2,\"b\":3}", NULL, id);
  tw_enqueue(cl, "js.add", "{\"a\":20,\"b\":22}", NULL, id2);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_result(t, "\"sum\":5");
  assert_true(t->progress >= 40.0);
  assert_string_equal(t->progress_message, "adding");
  rtq_task_free(t);
  t = tw_wait(cl, id2, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_result(t, "\"sum\":42");
  assert_result(t, "\"runner\":\"node\"");
  assert_string_equal(t->progress_message, "adding in node");
  rtq_task_free(t);
  /* Long-lived: a second task runs in one of the same two processes. */
  tw_enqueue(cl, "py.add", "{\"a\":1,\"b\":1}", NULL, id);
  t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  assert_true(tw_log_contains(&wk, "handler process ready"));
}

/* A str holding a NUL byte reaches the handler whole and comes back in
 * its result: the frames carry it as "\u0000", and the worker, the task's
 * JSON and the library's reader take it (they once refused it, and the
 * task failed as a broken protocol). */
static void test_worker_exec_nul_in_a_string_round_trips(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "py.echo", "{\"value\":\"a\\u0000b\"}", NULL, id);
  rtq_task *t = NULL;
  char *json = NULL;
  assert_int_equal(rtq_get_task(cl, id, &t), 0);
  assert_int_equal(rtq_task_to_json(t, &json), 0);
  if (strstr(json, "\"args\":{\"value\":\"a\\u0000b\"}") == NULL) fail_msg("the task's JSON lost the NUL: %s", json);
  free(json);
  rtq_task_free(t);
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, NULL);
  t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_result(t, "\"value\":\"a\\u0000b\"");
  assert_result(t, "\"len\":3");
  rtq_task_free(t);
}

static void test_worker_exec_cancel_reaches_python(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec-pool", "1", NULL);
  char id[RTQ_TASK_ID_SIZE], mark[512], args[700];
  snprintf(mark, sizeof mark, "%s/cancel-mark-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  unlink(mark);
  snprintf(args, sizeof args, "{\"mark\":\"%s\"}", mark);
  tw_enqueue(cl, "py.wait", args, NULL, id);
  (void)wait_progress_number(id, "pid=");
  double t0 = wall_s();
  int requested = 0;
  assert_int_equal(rtq_cancel_task(cl, id, &requested), 0);
  rtq_task *t = tw_wait(cl, id, 10000);
  double t1 = wall_s();
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  rtq_task_free(t);
  /* From the cancel call to the task ended cancelled: cancel message,
   * cancel frame, the handler's answer and finish.lua. */
  FILE *f = fopen(mark, "r");
  assert_non_null(f);
  double seen = 0;
  assert_int_equal(fscanf(f, "%lf", &seen), 1);
  fclose(f);
  unlink(mark);
  fprintf(stderr, "cancel call to handler seeing it: %.1f ms; to the task ended cancelled: %.1f ms\n",
          (seen - t0) * 1000.0, (t1 - t0) * 1000.0);
  /* The promise is 100 ms; a busy test machine gets some slack. */
  assert_true(seen - t0 < 0.5);
  assert_true(t1 - t0 < 1.0);
  /* It answered the cancel itself: no kill was needed. */
  assert_false(tw_log_contains(&wk, "ignored the cancel"));
}

static void test_worker_exec_timeout_kills_group(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec-pool", "1", "--kill-grace", "300ms", NULL);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = 1000;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "py.stubborn", "{}", &o, id);
  long gc = wait_progress_number(id, "grandchild=");
  assert_false(tw_pid_gone(gc));
  rtq_task *t = tw_wait(cl, id, 10000);
  assert_int_equal(t->status, RTQ_STATUS_TIMEOUT);
  rtq_task_free(t);
  RTQ_TEST_WAIT_FOR(tw_pid_gone(gc), 5000);
  assert_true(tw_log_contains(&wk, "ignored the cancel"));
  /* The pool serves the next task with a new process. */
  tw_enqueue(cl, "py.add", "{\"a\":1,\"b\":2}", NULL, id);
  t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
}

static void test_worker_exec_failure_has_traceback(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec-pool", "1", NULL);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "py.boom", "{\"v\":7}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "ValueError");
  assert_non_null(strstr(t->error_message, "bad value 7"));
  assert_non_null(t->error_traceback);
  assert_non_null(strstr(t->error_traceback, "Traceback"));
  assert_non_null(strstr(t->error_traceback, "raise ValueError"));
  rtq_task_free(t);
  /* Its stderr went to the worker's log with the task id. */
  assert_true(tw_log_contains(&wk, "about to fail"));
}

static void test_worker_exec_crash_then_respawn(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec-pool", "1", NULL);
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "py.wait", "{}", NULL, id);
  long pid = wait_progress_number(id, "pid=");
  assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
  rtq_task *t = tw_wait(cl, id, 10000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "WORKER_CRASH");
  assert_non_null(strstr(t->error_message, "SIGKILL"));
  rtq_task_free(t);
  tw_enqueue(cl, "py.add", "{\"a\":4,\"b\":4}", NULL, id);
  t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char want[64];
  snprintf(want, sizeof want, "\"pid\":%ld", pid);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_null(strstr(json, want)); /* a new process */
  assert_non_null(strstr(json, "\"sum\":8"));
  free(json);
  rtq_task_free(t);
}

/* SIGTERM: a task still running after the shutdown grace gets a cancel
 * (reason shutdown) and is handed back; idle processes get "shutdown";
 * the worker exits 0 and no handler process is left. */
static void test_worker_exec_shutdown_drains_pool(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec-pool", "2", "--shutdown-grace", "300ms", NULL);
  char id[RTQ_TASK_ID_SIZE], id2[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "py.add", "{\"a\":1,\"b\":1}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  const char *p = strstr(json, "\"pid\":");
  assert_non_null(p);
  long idle_pid = strtol(p + 6, NULL, 10);
  free(json);
  rtq_task_free(t);
  tw_enqueue(cl, "py.wait", "{}", NULL, id2);
  long busy_pid = wait_progress_number(id2, "pid=");
  assert_false(tw_pid_gone(idle_pid));
  assert_int_equal(tw_stop(&wk, 15000), 0);
  assert_true(tw_pid_gone(idle_pid));
  assert_true(tw_pid_gone(busy_pid));
  /* Handed back, not failed: pending again for the next worker. */
  char *st = tw_hget(rc, id2, "status");
  assert_non_null(st);
  assert_string_equal(st, "pending");
  free(st);
}

/* Pool of 1, two slots: a task waiting for the busy process is cancelled
 * where it waits, and the process's own task is not disturbed. */
static void test_worker_exec_cancel_while_waiting_for_a_process(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec-pool", "1", "--concurrency", "2", NULL);
  char a[RTQ_TASK_ID_SIZE], b[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "py.wait", "{}", NULL, a);
  (void)wait_progress_number(a, "pid=");
  tw_enqueue(cl, "py.add", "{\"a\":1,\"b\":1}", NULL, b);
  RTQ_TEST_WAIT_FOR(tw_field_is(rc, b, "status", "running"), 10000);
  int requested = 0;
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_cancel_task(cl, b, &requested), 0);
  rtq_task *t = tw_wait(cl, b, 10000);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  assert_true(rtq_test_now_ms() - t0 < 2000);
  rtq_task_free(t);
  assert_true(tw_field_is(rc, a, "status", "running"));
  assert_int_equal(rtq_cancel_task(cl, a, &requested), 0);
  t = tw_wait(cl, a, 10000);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  rtq_task_free(t);
}

/* Pool of 1, four slots: tasks waiting for the process get it handed over
 * from the task before, their frame already written; each answer matches
 * its own task and the one process serves them all. */
static void test_worker_exec_handover_keeps_tasks_apart(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec-pool", "1", "--concurrency", "4", NULL);
  enum { N = 24 };
  char ids[N][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < N; i++) {
    char args[64];
    snprintf(args, sizeof args, "{\"a\":%d,\"b\":1000}", i);
    tw_enqueue(cl, "py.add", args, NULL, ids[i]);
  }
  char pid[32] = "";
  for (int i = 0; i < N; i++) {
    rtq_task *t = tw_wait(cl, ids[i], 20000);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    char sum[32];
    snprintf(sum, sizeof sum, "\"sum\":%d", 1000 + i);
    assert_result(t, sum);
    char *json = NULL;
    assert_int_equal(rtq_task_result_json(t, &json), 0);
    const char *at = strstr(json, "\"pid\":");
    assert_non_null(at);
    if (pid[0] == '\0') snprintf(pid, sizeof pid, "%.*s", (int)strcspn(at, ",}"), at);
    else if (strncmp(at, pid, strlen(pid)) != 0) fail_msg("task %d ran in another process: %s, not %s", i, json, pid);
    free(json);
    rtq_task_free(t);
  }
}

/* The handler's environment is the worker's without RTQ_REDIS_URL. */
static void test_worker_exec_environment_has_no_redis_url(void **state) {
  (void)state;
  char py[sizeof py_cmd + 16];
  snprintf(py, sizeof py, "py.*=%s", py_cmd);
  setenv("RTQ_REDIS_URL", rtq_test_redis_url(), 1);
  setenv("RTQ_EXEC_TEST_MARKER", "inherited", 1);
  tw_start(&wk, rtq_test_redis_url(), "--exec", py, "--exec-pool", "1", NULL);
  unsetenv("RTQ_REDIS_URL");
  unsetenv("RTQ_EXEC_TEST_MARKER");
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "py.env", "{}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "{\"redis_url\":null,\"marker\":\"inherited\"}");
  free(json);
  rtq_task_free(t);
}

static void test_worker_exec_bad_flags_exit_2(void **state) {
  (void)state;
  const char *bad[][4] = {{"--exec", "no-command", NULL, NULL},
                          {"--exec", "x=", NULL, NULL},
                          {"--exec", "x=cmd 'unclosed", NULL, NULL},
                          {"--exec", "x=cmd", "--isolation", "process"},
                          {"--exec-pool", "0", NULL, NULL}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    const char *argv[] = {"rtq-worker", "--redis", rtq_test_redis_url(), bad[i][0], bad[i][1], bad[i][2], bad[i][3],
                          NULL};
    pid_t pid = rtq_test_spawn(tw_bin(), argv, NULL);
    int st = 0;
    assert_int_equal(rtq_test_wait_exit(pid, 10000, &st), 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 2) fail_msg("%s %s: exit status %d", bad[i][0], bad[i][1], st);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_exec_python_and_node_complete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_nul_in_a_string_round_trips, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_cancel_reaches_python, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_timeout_kills_group, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_failure_has_traceback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_crash_then_respawn, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_shutdown_drains_pool, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_handover_keeps_tasks_apart, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_cancel_while_waiting_for_a_process, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_environment_has_no_redis_url, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_bad_flags_exit_2, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
