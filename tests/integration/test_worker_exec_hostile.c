/*
 * test_worker_exec_hostile.c - handler processes that break the exec
 * protocol (tests/integration/exec/hostile.sh): garbage, an unknown
 * message type, a 100 MB line, stdout closed early, a progress flood, one
 * that never reads stdin, a result for an id with a NUL byte inside, and a
 * command that cannot start. Each task ends with a clear code, the worker
 * keeps serving, and it exits cleanly (under ASan that includes no leak).
 */
#include "test_worker_util.h"

static rtq_client *cl;
static rtq_conn *rc;
static tw_worker wk;
static char script[1024];

static int setup(void **state) {
  (void)state;
  const char *s = getenv("RTQ_SOURCE_DIR");
  if (s == NULL) fail_msg("RTQ_SOURCE_DIR is not set");
  snprintf(script, sizeof script, "%s/tests/integration/exec/hostile.sh", s);
  tw_open(&cl, &rc, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc, &wk, true);
  return 0;
}

/* Runs one task of name and returns it ended (caller frees). */
static rtq_task *run_one(const char *name, uint64_t timeout_ms) {
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = timeout_ms;
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, name, "{}", timeout_ms ? &o : NULL, id);
  return tw_wait(cl, id, 30000);
}

static void expect(const char *name, uint64_t timeout_ms, rtq_status st, const char *code) {
  rtq_task *t = run_one(name, timeout_ms);
  if (t->status != st || (code != NULL && (t->error_code == NULL || strcmp(t->error_code, code) != 0)))
    fail_msg("%s: status %s code %s (%s), expected %s %s", name, rtq_status_name(t->status),
             t->error_code ? t->error_code : "-", t->error_message ? t->error_message : "-", rtq_status_name(st),
             code ? code : "-");
  rtq_task_free(t);
}

static void test_worker_exec_hostile_handlers(void **state) {
  (void)state;
  static const char *modes[] = {"garbage", "unknown", "huge", "closeout", "flood", "deaf", "nulid"};
  enum { NMODES = sizeof modes / sizeof modes[0] };
  char specs[NMODES][1200];
  const char *argv[32];
  int n = 0;
  for (int i = 0; i < NMODES; i++) {
    snprintf(specs[i], sizeof specs[i], "h.%s=/bin/sh %s %s", modes[i], script, modes[i]);
    argv[n++] = "--exec";
    argv[n++] = specs[i];
  }
  argv[n++] = "--exec";
  argv[n++] = "h.missing=/nonexistent/handler --serve";
  argv[n++] = "--exec-pool";
  argv[n++] = "1";
  argv[n++] = "--kill-grace";
  argv[n++] = "300ms";
  argv[n] = NULL;
  tw_start_v(&wk, rtq_test_redis_url(), argv);

  expect("h.garbage", 0, RTQ_STATUS_FAILED, "EXEC_PROTOCOL");
  expect("h.unknown", 0, RTQ_STATUS_FAILED, "EXEC_PROTOCOL");
  /* Another task's id, though the running one's up to a NUL byte. */
  expect("h.nulid", 0, RTQ_STATUS_FAILED, "EXEC_PROTOCOL");
  uint64_t t0 = rtq_test_now_ms();
  expect("h.huge", 0, RTQ_STATUS_FAILED, "EXEC_PROTOCOL");
  fprintf(stderr, "100 MB line refused after %llu ms\n", (unsigned long long)(rtq_test_now_ms() - t0));
  expect("h.closeout", 0, RTQ_STATUS_FAILED, "WORKER_CRASH");
  rtq_task *t = run_one("h.flood", 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "{\"flooded\":true}");
  free(json);
  rtq_task_free(t);
  expect("h.deaf", 1000, RTQ_STATUS_TIMEOUT, NULL);
  /* A task frame far larger than a pipe's buffer, to a process that never
   * reads it: the worker's writes do not block, the timeout still ends it. */
  size_t big = 300 * 1024;
  char *args = malloc(big + 32);
  assert_non_null(args);
  memcpy(args, "{\"pad\":\"", 8);
  memset(args + 8, 'p', big);
  memcpy(args + 8 + big, "\"}", 3);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = 1000;
  char big_id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "h.deaf", args, &o, big_id);
  free(args);
  t = tw_wait(cl, big_id, 30000);
  assert_int_equal(t->status, RTQ_STATUS_TIMEOUT);
  rtq_task_free(t);
  /* Each misbehaving process was replaced: the same command runs again. */
  expect("h.garbage", 0, RTQ_STATUS_FAILED, "EXEC_PROTOCOL");
  /* A command that cannot start: after 5 failed starts in a row its
   * tasks fail EXEC_UNAVAILABLE (the first ones wait through the backoff). */
  uint64_t until = rtq_test_now_ms() + 20000;
  bool unavailable = false;
  while (!unavailable && rtq_test_now_ms() < until) {
    t = run_one("h.missing", 0);
    unavailable = t->status == RTQ_STATUS_FAILED && strcmp(t->error_code, "EXEC_UNAVAILABLE") == 0;
    if (!unavailable) fail_msg("h.missing ended %s", rtq_status_name(t->status));
    rtq_task_free(t);
  }
  assert_true(unavailable);
  assert_true(tw_log_contains(&wk, "keeps failing to start"));
  assert_true(tw_log_contains(&wk, "broke the protocol"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_exec_hostile_handlers, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
