/*
 * test_broker_throughput.c - the broker leader records the throughput
 * history ({ns}:throughput:<minute>, librtq's rtq_throughput_record) with
 * no rtq-web running: the outcome counters of every queue summed; a
 * standby broker writes none; and a broker started while Redis is
 * unreachable does not exit for it.
 */
#include "test_broker2_helpers.h"

/* The completed total of the current minute's snapshot; -1 when there is
 * none. */
static long long snapshot_completed(tb *t) {
  rtq_key2 k = rtq_keys2_throughput(&K2, tb_redis_now(t) / 60000);
  char *v = rtq_test_cmd_str(t->c, "HGET", k.s, "completed", NULL);
  long long n = v != NULL ? atoll(v) : -1;
  free(v);
  return n;
}

static void test_broker_throughput_leader_records(void **state) {
  tb *t = *state;
  rtq_test_cmd_int(t->c, "SADD", rtq_keys2_queues(&K2).s, "default", "mail", NULL);
  rtq_test_cmd_int(t->c, "HSET", rtq_keys2_stats(&K2, "default").s, "completed", "41", "failed", "2",
                   NULL);
  rtq_test_cmd_int(t->c, "HSET", rtq_keys2_stats(&K2, "mail").s, "completed", "1", NULL);
  /* A standby (the lease held by someone else) writes nothing. */
  rtq_key2 lease = rtq_keys2_lease(&K2);
  freeReplyObject(rtq_test_command(t->c, "SET", lease.s, "someone-else", "PX", "60000", NULL));
  pid_t standby = tb2_broker_start(t, "--sweep-interval", "200ms");
  RTQ_TEST_WAIT_FOR(tb_file_contains(t->log, "standing by"), 10000);
  /* The leader's first record comes a second after its start: wait past it. */
  uint64_t until = rtq_test_now_ms() + 2500;
  while (rtq_test_now_ms() < until) {
    assert_int_equal(snapshot_completed(t), -1);
    rtq__test_poll_pause(50);
  }
  tb_broker_stop(t, standby);

  /* The leader does, within a second or two. */
  freeReplyObject(rtq_test_command(t->c, "DEL", lease.s, NULL));
  pid_t leader = tb2_broker_start(t, "--sweep-interval", "200ms");
  RTQ_TEST_WAIT_FOR(snapshot_completed(t) == 42, 10000);
  rtq_key2 k = rtq_keys2_throughput(&K2, tb_redis_now(t) / 60000);
  char *failed = rtq_test_cmd_str(t->c, "HGET", k.s, "failed", NULL);
  assert_string_equal(failed, "2");
  free(failed);
  assert_true(rtq_test_cmd_int(t->c, "TTL", k.s, NULL) > 3600);
  tb_broker_stop(t, leader);
}

static void test_broker_throughput_redis_down_at_start(void **state) {
  tb *t = *state;
  /* Nothing listens on port 1: the broker retries, and stops cleanly. */
  char bin[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  snprintf(t->log, sizeof t->log, "%s/broker-down.log", rtq_test_redis_dir(rtq_test_redis_default()));
  const char *argv[] = {bin,  "--redis", "redis://127.0.0.1:1/0", "--protocol", "2",
                        "--sweep-interval", "200ms", NULL};
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = t->log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  RTQ_TEST_WAIT_FOR(tb_file_contains(t->log, "redis unavailable"), 10000);
  /* Past the first throughput tick (a second after the start), it runs on. */
  assert_int_equal(rtq_test_wait_exit(pid, 2000, NULL), RTQ_ETIMEDOUT);
  int status = 0;
  assert_int_equal(rtq_test_terminate(pid, SIGTERM, 30000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker_throughput_leader_records, tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_throughput_redis_down_at_start, tb2_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
