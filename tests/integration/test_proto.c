/*
 * test_proto.c - the namespace's protocol mark (common/proto.c) on a
 * private redis-server: a process marks an empty namespace and refuses one
 * holding protocol 1's data or an unknown mark, with a message saying
 * what to do; two namespaces on one Redis are checked apart; the setting
 * and the client refuse protocol 1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "harness.h"
#include "proto.h"
#include "rtq/client.h"
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

static void test_proto_marks_an_empty_namespace(void **state) {
  (void)state;
  char err[512];
  assert_int_equal(rtq_proto_check(C, "rtq", err, sizeof err), 0);
  char *v = rtq_test_cmd_str(C, "GET", "{rtq}:version", NULL);
  assert_string_equal(v, "2");
  free(v);
  /* A second process finds the mark and agrees. */
  assert_int_equal(rtq_proto_check(C, "rtq", err, sizeof err), 0);
  assert_int_equal(rtq_test_cmd_int(C, "DBSIZE", NULL), 1);
  /* Another namespace on the same Redis is its own. */
  assert_int_equal(rtq_test_cmd_int(C, "EXISTS", "{other}:version", NULL), 0);
  assert_int_equal(rtq_proto_check(C, "other", err, sizeof err), 0);
  assert_int_equal(rtq_test_cmd_int(C, "EXISTS", "{other}:version", NULL), 1);
}

static void test_proto_refuses_v1_data(void **state) {
  (void)state;
  char err[512];
  /* Protocol 1 kept its counters in ns:stats, or {ns}:stats in cluster mode. */
  static const char *const v1_stats[] = {"rtq:stats", "{rtq}:stats"};
  for (int i = 0; i < 2; i++) {
    rtq_test_redis_flush();
    rtq_test_cmd_int(C, "HINCRBY", v1_stats[i], "default|enqueued", "1", NULL);
    assert_int_equal(rtq_proto_check(C, "rtq", err, sizeof err), RTQ_EPROTOCOL);
    assert_non_null(strstr(err, "protocol-1 data"));
    assert_non_null(strstr(err, "OPERATIONS.md"));
    assert_int_equal(rtq_test_cmd_int(C, "EXISTS", "{rtq}:version", NULL), 0);
  }
}

static void test_proto_refuses_a_mark_it_does_not_know(void **state) {
  (void)state;
  char err[512];
  rtq_test_cmd_ok(C, "SET", "{rtq}:version", "3\x1b[31m", NULL);
  assert_int_equal(rtq_proto_check(C, "rtq", err, sizeof err), RTQ_EPROTOCOL);
  assert_non_null(strstr(err, "not a protocol this process speaks"));
  assert_null(strchr(err, '\x1b'));
  assert_non_null(strstr(err, "\"3?[31m\""));
  assert_int_equal(rtq_proto_check(C, "bad:ns", err, sizeof err), RTQ_EINVAL);
}

/* The setting takes 2 only; 1 is refused with a message that says why. */
static void test_proto_setting_refuses_protocol_1(void **state) {
  (void)state;
  rtq_config cfg;
  char err[512];
  rtq_config_defaults(&cfg);
  assert_int_equal(cfg.protocol, 2);
  assert_int_equal(rtq_config_set(&cfg, "protocol", "1", err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "protocol 1 is no longer supported"));
  assert_int_equal(rtq_config_set(&cfg, "protocol", "3", err, sizeof err), RTQ_EINVAL);
  assert_int_equal(rtq_config_set(&cfg, "protocol", "2", err, sizeof err), 0);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.protocol = 1;
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(NULL), "protocol 1 is no longer supported"));
  o.protocol = 2;
  assert_int_equal(rtq_client_new(&o, &c), 0);
  rtq_client_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_proto_marks_an_empty_namespace, setup, teardown),
      cmocka_unit_test_setup_teardown(test_proto_refuses_v1_data, setup, teardown),
      cmocka_unit_test_setup_teardown(test_proto_refuses_a_mark_it_does_not_know, setup, teardown),
      cmocka_unit_test_setup_teardown(test_proto_setting_refuses_protocol_1, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
