/*
 * test_proto.c - the namespace's protocol mark (common/proto.c) on a
 * private redis-server: v2 marks an empty namespace, refuses one holding
 * v1 data, and v1 refuses a marked one, each with a message saying what to
 * do; two namespaces on one Redis are checked apart.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "proto.h"
#include "rtq/common.h"

static rtq_conn *C;

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  C = rtq_test_conn();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_conn_free(C);
  C = NULL;
  return 0;
}

static void test_proto_v2_marks_an_empty_namespace(void **state) {
  (void)state;
  char err[512];
  assert_int_equal(rtq_proto_check(C, "rtq", 2, err, sizeof err), 0);
  char *v = rtq_test_cmd_str(C, "GET", "{rtq}:version", NULL);
  assert_string_equal(v, "2");
  free(v);
  /* A second v2 process finds the mark and agrees. */
  assert_int_equal(rtq_proto_check(C, "rtq", 2, err, sizeof err), 0);
  /* v1 then refuses, and says how to get on. */
  assert_int_equal(rtq_proto_check(C, "rtq", 1, err, sizeof err), RTQ_EPROTOCOL);
  assert_non_null(strstr(err, "protocol-2 data"));
  assert_non_null(strstr(err, "RTQ_PROTOCOL=2"));
  /* Another namespace on the same Redis is its own. */
  assert_int_equal(rtq_proto_check(C, "other", 1, err, sizeof err), 0);
  assert_int_equal(rtq_test_cmd_int(C, "EXISTS", "{other}:version", NULL), 0);
}

static void test_proto_v1_leaves_no_mark(void **state) {
  (void)state;
  char err[512];
  assert_int_equal(rtq_proto_check(C, "rtq", 1, err, sizeof err), 0);
  assert_int_equal(rtq_test_cmd_int(C, "DBSIZE", NULL), 0);
}

static void test_proto_v2_refuses_v1_data(void **state) {
  (void)state;
  char err[512];
  /* v1 keeps its counters in ns:stats, or {ns}:stats in cluster mode. */
  static const char *const v1_stats[] = {"rtq:stats", "{rtq}:stats"};
  for (int i = 0; i < 2; i++) {
    rtq_test_redis_flush();
    rtq_test_cmd_int(C, "HINCRBY", v1_stats[i], "default|enqueued", "1", NULL);
    assert_int_equal(rtq_proto_check(C, "rtq", 2, err, sizeof err), RTQ_EPROTOCOL);
    assert_non_null(strstr(err, "protocol-1 data"));
    assert_non_null(strstr(err, "OPERATIONS.md"));
    assert_int_equal(rtq_test_cmd_int(C, "EXISTS", "{rtq}:version", NULL), 0);
  }
}

static void test_proto_refuses_a_mark_it_does_not_know(void **state) {
  (void)state;
  char err[512];
  rtq_test_cmd_ok(C, "SET", "{rtq}:version", "3\x1b[31m", NULL);
  assert_int_equal(rtq_proto_check(C, "rtq", 2, err, sizeof err), RTQ_EPROTOCOL);
  assert_non_null(strstr(err, "not a protocol this process speaks"));
  assert_null(strchr(err, '\x1b'));
  assert_non_null(strstr(err, "\"3?[31m\""));
  assert_int_equal(rtq_proto_check(C, "rtq", 3, err, sizeof err), RTQ_EINVAL);
  assert_int_equal(rtq_proto_check(C, "bad:ns", 2, err, sizeof err), RTQ_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_proto_v2_marks_an_empty_namespace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_proto_v1_leaves_no_mark, setup, teardown),
      cmocka_unit_test_setup_teardown(test_proto_v2_refuses_v1_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_proto_refuses_a_mark_it_does_not_know, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
