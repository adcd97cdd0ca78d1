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

#endif
