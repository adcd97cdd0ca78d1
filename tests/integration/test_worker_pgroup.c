/*
 * test_worker_pgroup.c - process isolation ends a task's whole process
 * group: a handler that starts a background job (`sleep 1000`) and returns
 * leaves nothing running once its task has ended.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "rtq/client.h"
#include "test_worker_util.h"

static long read_pid(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  long pid = -1;
  if (fscanf(f, "%ld", &pid) != 1) pid = -1;
  fclose(f);
  return pid;
}

static void test_worker_pgroup_background_job_ends_with_the_task(void **state) {
  (void)state;
  rtq_client *cl;
  rtq_conn *rc;
  tw_worker wk;
  tw_open(&cl, &rc, &wk);
  char plugin[512];
  assert_non_null(rtq_test_bin_path("tests/rtq-test-spawn-plugin.so", plugin, sizeof plugin));
  tw_start(&wk, rtq_test_redis_url(), "--isolation", "process", "--plugin", plugin, NULL);

  char pidfile[600], json[700], id[RTQ_TASK_ID_SIZE];
  snprintf(pidfile, sizeof pidfile, "%s/grandchild.pid", rtq_test_redis_dir(rtq_test_redis_default()));
  snprintf(json, sizeof json, "{\"pidfile\":\"%s\"}", pidfile);
  tw_enqueue(cl, "test.spawn", json, NULL, id);
  rtq_task *t = tw_wait(cl, id, 10000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  long pid = read_pid(pidfile);
  assert_true(pid > 0);
  RTQ_TEST_WAIT_FOR(tw_pid_gone(pid), 5000);
  tw_close(cl, rc, &wk, true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_worker_pgroup_background_job_ends_with_the_task),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
