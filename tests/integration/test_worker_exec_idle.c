/*
 * test_worker_exec_idle.c - handler processes between tasks (exec_idle.c):
 * stderr is read while a process is idle, an idle process that dies is
 * noticed and started again without waiting for a task, and a command that
 * cannot start or keeps dying shows in the worker record
 * (exec_unavailable, docs/PROTOCOL.md) and through rtq_list_workers, which
 * `rtq workers` and rtq-web's workers page read.
 */
#include "test_worker_util.h"

#include "test_cli_run.h"

static rtq_client *cl;
static rtq_conn *rc;
static tw_worker wk;
static char src[1024];
static char py_spec[256];

static int setup(void **state) {
  (void)state;
  tw_exec_env(src, sizeof src);
  snprintf(py_spec, sizeof py_spec, "py.*=/usr/bin/python3 -m rtq.run exec_handlers");
  tw_open(&cl, &rc, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc, &wk, true);
  return 0;
}

static int log_count(const tw_worker *w, const char *needle) {
  FILE *f = fopen(w->log, "r");
  if (f == NULL) return 0;
  char line[8192];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL) n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

static char *worker_field(const char *field) {
  rtq_key2 k = tw_key_worker(wk.id);
  return rtq_test_cmd_str(rc, "HGET", k.s, field, NULL);
}

static bool file_exists(const char *path) { return access(path, F_OK) == 0; }

static void run_ok(const char *name, const char *args) {
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, name, args, NULL, id);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
}

static void test_worker_exec_idle_stderr_is_read(void **state) {
  (void)state;
  tw_start(&wk, rtq_test_redis_url(), "--exec", py_spec, "--exec-pool", "1", NULL);
  char mark[512], args[700];
  snprintf(mark, sizeof mark, "%s/idle-chatter-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  unlink(mark);
  /* 256 KiB, four times a pipe's buffer, written after the task ended:
   * the writer finishes only if the worker reads the idle process. */
  snprintf(args, sizeof args, "{\"kib\":256,\"mark\":\"%s\"}", mark);
  run_ok("py.idle_chatter", args);
  RTQ_TEST_WAIT_FOR(file_exists(mark), 10000);
  unlink(mark);
  RTQ_TEST_WAIT_FOR(log_count(&wk, "idle chatter") >= 200, 5000);
  /* The process is still the pool's, and serves the next task. */
  run_ok("py.add", "{\"a\":1,\"b\":2}");
  assert_int_equal(log_count(&wk, "idle handler process ended"), 0);
}

static void test_worker_exec_idle_death_is_noticed(void **state) {
  (void)state;
  tw_start(&wk, rtq_test_redis_url(), "--exec", py_spec, "--exec-pool", "1", NULL);
  run_ok("py.idle_exit", NULL);
  /* No task follows: the watcher notices the exit and starts a new
   * process after the backoff (100 ms for a first failure). */
  RTQ_TEST_WAIT_FOR(tw_log_contains(&wk, "exited with status 7 while idle"), 10000);
  RTQ_TEST_WAIT_FOR(log_count(&wk, "handler process ready") >= 2, 15000);
  run_ok("py.add", "{\"a\":1,\"b\":2}");
  /* Nothing worse happened to the command: one bad run, then a good task. */
  char *un = worker_field("exec_unavailable");
  assert_non_null(un);
  assert_string_equal(un, "");
  free(un);
}

static bool listed_unavailable(const char *needle) {
  rtq_alive_workers *l = NULL;
  if (rtq_list_workers(cl, &l) != 0) return false;
  bool found = false;
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(l->workers[i].id, wk.id) == 0) found = strstr(l->workers[i].exec_unavailable, needle) != NULL;
  rtq_alive_workers_free(l);
  return found;
}

static void test_worker_exec_unavailable_in_worker_record(void **state) {
  (void)state;
  char dies[1200];
  snprintf(dies, sizeof dies, "h.dies=/bin/sh %s/tests/integration/exec/hostile.sh dies", src);
  tw_start(&wk, rtq_test_redis_url(), "--exec", "h.missing=/nonexistent/handler --serve", "--exec", dies,
           "--exec", py_spec, "--exec-pool", "1", "--heartbeat-interval", "200ms", NULL);
  /* No task at all: each pool starts a process at once, and five failures
   * in a row (about 1.5 s of backoff) make the command unavailable. */
  RTQ_TEST_WAIT_FOR(listed_unavailable("h.missing=cannot run /nonexistent/handler"), 20000);
  RTQ_TEST_WAIT_FOR(listed_unavailable("h.dies=a handler process exited with status 3 while idle"), 20000);
  char *un = worker_field("exec_unavailable");
  assert_non_null(un);
  assert_null(strstr(un, "py.*")); /* the healthy command is not listed */
  free(un);
  assert_true(tw_log_contains(&wk, "idle handler process ended"));
  /* rtq workers: in the JSON and in the table. */
  char envv[300];
  snprintf(envv, sizeof envv, "RTQ_REDIS_URL=%s", rtq_test_redis_url());
  const char *env[] = {envv, NULL};
  cli_run r;
  cli(&r, (const char *const[]){"workers", "--json", NULL}, env);
  assert_int_equal(r.code, 0);
  json_t *ws = cli_json(&r);
  const char *un_json = json_string_value(json_object_get(json_array_get(ws, 0), "exec_unavailable"));
  assert_non_null(un_json);
  assert_non_null(strstr(un_json, "h.missing=cannot run /nonexistent/handler"));
  json_decref(ws);
  cli_free(&r);
  cli(&r, (const char *const[]){"workers", NULL}, env);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "handler unavailable: h.missing=cannot run /nonexistent/handler"));
  assert_non_null(strstr(r.out, "handler unavailable: h.dies="));
  cli_free(&r);
  /* Its tasks fail at once with the reason, the others run. */
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "h.missing", NULL, NULL, id);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "EXEC_UNAVAILABLE");
  rtq_task_free(t);
  run_ok("py.add", "{\"a\":1,\"b\":2}");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_exec_idle_stderr_is_read, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_idle_death_is_noticed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_unavailable_in_worker_record, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
