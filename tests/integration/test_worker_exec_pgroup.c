/*
 * test_worker_exec_pgroup.c - an --exec handler process whose task starts
 * a background job (tests/integration/exec/grandchild.sh: `sleep 300 &`,
 * which keeps the handler's stdout open): when the task ends by its
 * timeout, by a cancel, or by the handler process dying, the worker ends
 * the process's whole group and the grandchild is gone within seconds.
 */
#include "test_worker_util.h"

static rtq_client *cl;
static rtq_conn *rc;
static tw_worker wk;
static char script[1024], dir[700];

static int setup(void **state) {
  (void)state;
  const char *s = getenv("RTQ_SOURCE_DIR");
  if (s == NULL) fail_msg("RTQ_SOURCE_DIR is not set");
  snprintf(script, sizeof script, "%s/tests/integration/exec/grandchild.sh", s);
  snprintf(dir, sizeof dir, "%s", rtq_test_redis_dir(rtq_test_redis_default()));
  tw_open(&cl, &rc, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc, &wk, true);
  return 0;
}

static long read_pid(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  long pid = -1;
  if (fscanf(f, "%ld", &pid) != 1) pid = -1;
  fclose(f);
  return pid;
}

/* Starts a worker whose handler h.<mode> runs grandchild.sh <mode> <pidfile>. */
static void start(const char *mode, const char *pidfile) {
  char spec[2200];
  snprintf(spec, sizeof spec, "h.%s=/bin/sh %s %s %s", mode, script, mode, pidfile);
  tw_start(&wk, rtq_test_redis_url(), "--exec", spec, "--exec-pool", "1", "--kill-grace", "300ms", NULL);
}

/* Waits (deadline) for the task's grandchild to be running; returns its pid. */
static long wait_grandchild(const char *pidfile) {
  long pid = -1;
  RTQ_TEST_WAIT_FOR((pid = read_pid(pidfile)) > 0, 20000);
  assert_false(tw_pid_gone(pid));
  return pid;
}

static void test_worker_exec_pgroup_timeout_ends_the_grandchild(void **state) {
  (void)state;
  char pidfile[800], id[RTQ_TASK_ID_SIZE];
  snprintf(pidfile, sizeof pidfile, "%s/timeout.pid", dir);
  start("hang", pidfile);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = 1500;
  tw_enqueue(cl, "h.hang", NULL, &o, id);
  long pid = wait_grandchild(pidfile);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_TIMEOUT);
  rtq_task_free(t);
  RTQ_TEST_WAIT_FOR(tw_pid_gone(pid), 5000);
}

static void test_worker_exec_pgroup_cancel_ends_the_grandchild(void **state) {
  (void)state;
  char pidfile[800], id[RTQ_TASK_ID_SIZE];
  snprintf(pidfile, sizeof pidfile, "%s/cancel.pid", dir);
  start("hang", pidfile);
  tw_enqueue(cl, "h.hang", NULL, NULL, id);
  long pid = wait_grandchild(pidfile);
  int requested = 0;
  assert_int_equal(rtq_cancel_task(cl, id, &requested), 0);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  rtq_task_free(t);
  RTQ_TEST_WAIT_FOR(tw_pid_gone(pid), 5000);
}

static void test_worker_exec_pgroup_crash_ends_the_grandchild(void **state) {
  (void)state;
  char pidfile[800], id[RTQ_TASK_ID_SIZE];
  snprintf(pidfile, sizeof pidfile, "%s/crash.pid", dir);
  start("crash", pidfile);
  tw_enqueue(cl, "h.crash", NULL, NULL, id);
  long pid = wait_grandchild(pidfile);
  /* Seen alive: now the handler process may die (grandchild.sh crash). */
  char go[820];
  snprintf(go, sizeof go, "%s.go", pidfile);
  FILE *f = fopen(go, "w");
  assert_non_null(f);
  fclose(f);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "WORKER_CRASH");
  rtq_task_free(t);
  RTQ_TEST_WAIT_FOR(tw_pid_gone(pid), 5000);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_exec_pgroup_timeout_ends_the_grandchild, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_pgroup_cancel_ends_the_grandchild, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_exec_pgroup_crash_ends_the_grandchild, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
