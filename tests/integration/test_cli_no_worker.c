/*
 * test_cli_no_worker.c - a `rtq wait` or `rtq enqueue --wait` that times
 * out while no live worker serves the task's queue says so ("no live
 * worker serves queue default"), exit 5 as any timeout; with a live worker
 * on the queue (real rtq-worker processes, read from their heartbeat
 * records) it does not.
 */
#include "test_cli_env.h"
#include "test_client_fake_worker2.h"

/* Workers with a heartbeat entry. */
static long long workers_alive(void) {
  return rtq_test_cmd_int(rc_, "ZCARD", rtq_keys2_workers(&keys2).s, NULL);
}

static pid_t start_worker(const char *queue) {
  return spawn_bin("worker/rtq-worker",
                   (const char *const[]){"--queue", queue, "--heartbeat-interval", "100ms",
                                         "--concurrency", "1", "--log-level", "ERROR",
                                         "--demo-handlers", NULL},
                   "/dev/null");
}

static void stop_worker(pid_t pid) {
  int status = 0;
  assert_int_equal(rtq_test_terminate(pid, SIGTERM, 30000, &status), 0);
  assert_true(WIFEXITED(status));
}

static void test_cli_no_worker_timeout_says_so(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "enqueue", "t", "--id", "nw-1");
  cli_free(&r);
  RUN(&r, "wait", "nw-1", "--timeout", "100ms");
  cli_assert_error(&r, 5, "did not end within 100 ms; no live worker serves queue default");
  cli_free(&r);

  /* enqueue --wait, another queue, JSON. */
  RUN(&r, "enqueue", "t", "--queue", "nobody", "--wait=100ms", "--json");
  assert_int_equal(r.code, 5);
  json_t *v = json_loads(r.err, 0, NULL);
  if (v == NULL) fail_msg("stderr: %s", r.err);
  json_t *e = json_object_get(v, "error");
  assert_string_equal(json_string_value(json_object_get(e, "code")), "RTQ_ETIMEDOUT");
  assert_non_null(strstr(json_string_value(json_object_get(e, "message")),
                         "no live worker serves queue nobody"));
  json_decref(v);
  cli_free(&r);
}

static void test_cli_no_worker_real_workers(void **state) {
  (void)state;
  /* A live worker on another queue does not count. */
  pid_t other = start_worker("other");
  RTQ_TEST_WAIT_FOR(workers_alive() == 1, 10000);
  cli_run r;
  RUN(&r, "enqueue", "t", "--id", "nw-2", "--delay", "1h");
  cli_free(&r);
  RUN(&r, "wait", "nw-2", "--timeout", "100ms");
  cli_assert_error(&r, 5, "no live worker serves queue default");
  cli_free(&r);

  /* A live worker on the task's queue: a plain timeout (the task is
   * delayed, so the worker does not take it). */
  pid_t dflt = start_worker("default");
  RTQ_TEST_WAIT_FOR(workers_alive() == 2, 10000);
  RUN(&r, "wait", "nw-2", "--timeout", "100ms");
  cli_assert_error(&r, 5, "did not end within 100 ms");
  assert_null(strstr(r.err, "no live worker"));
  cli_free(&r);

  /* It stops (and deletes its record): no live worker again. */
  stop_worker(dflt);
  RTQ_TEST_WAIT_FOR(workers_alive() == 1, 10000);
  RUN(&r, "wait", "nw-2", "--timeout", "100ms");
  cli_assert_error(&r, 5, "no live worker serves queue default");
  cli_free(&r);
  stop_worker(other);
}

/* Queue names may hold ':'; the weight is what follows the last one. A
 * record without weights ("name,name") is read too. */
static void test_cli_no_worker_queue_names_with_colons(void **state) {
  (void)state;
  assert_int_equal(fw2_heartbeat(rc_, &keys2, "wk-c", "h", "1", "mail:eu:3,x", "0", "1"), 0);
  cli_run r;
  RUN(&r, "enqueue", "t", "--queue", "mail:eu", "--wait=100ms");
  cli_assert_error(&r, 5, "did not end");
  assert_null(strstr(r.err, "no live worker"));
  cli_free(&r);
  RUN(&r, "enqueue", "t", "--queue", "x", "--wait=100ms");
  assert_null(strstr(r.err, "no live worker"));
  cli_free(&r);
  RUN(&r, "enqueue", "t", "--queue", "mail", "--wait=100ms");
  cli_assert_error(&r, 5, "no live worker serves queue mail");
  cli_free(&r);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_no_worker_timeout_says_so),
      T(test_cli_no_worker_real_workers),
      T(test_cli_no_worker_queue_names_with_colons),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
