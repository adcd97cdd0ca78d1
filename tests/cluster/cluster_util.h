/* cluster_util.h - what the cluster and sentinel tests share. */
#ifndef RTQ_TEST_CLUSTER_UTIL_H
#define RTQ_TEST_CLUSTER_UTIL_H

#include <sys/wait.h>

#include "harness.h"

/* SIGTERM, and a clean exit 0 in time (a sanitizer report would change
 * it). (asserts) */
static inline void stop_clean(pid_t pid) {
  int status = 0;
  assert_int_equal(rtq_test_terminate(pid, SIGTERM, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

/* Starts the built binary rel (e.g. "worker/rtq-worker") with args
 * (NULL-terminated, at most 22), output to log. (asserts) */
static inline pid_t cluster_spawn(const char *rel, const char *const *args, const char *log) {
  char bin[512];
  assert_non_null(rtq_test_bin_path(rel, bin, sizeof bin));
  const char *argv[24];
  int n = 0;
  argv[n++] = bin;
  for (int i = 0; args[i] != NULL && n < 23; i++) argv[n++] = args[i];
  argv[n] = NULL;
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  return pid;
}

#endif
