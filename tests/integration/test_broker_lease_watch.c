/*
 * test_broker_lease_watch.c - a lease held by something that never sweeps:
 * a writer with access to the namespace runs `SET {ns}:lease attacker PX
 * ...` and renews it. A standby broker cannot take the lease, but after
 * three lease TTLs without a sweep it logs an ERROR on every tick and sets
 * lease_unswept_s in {ns}:broker (which `rtq stats` shows); once the
 * forged lease goes, the broker takes over and the field is cleared.
 */
#include <time.h>

#include "test_broker2_helpers.h"

static bool unswept_set(tb *t) {
  return rtq_test_cmd_int(t->c, "HEXISTS", rtq_keys2_broker(&K2).s, "lease_unswept_s", NULL) == 1;
}

static void test_broker_lease_watch_reports_a_lease_nobody_sweeps(void **state) {
  tb *t = *state;
  rtq_key2 lease = rtq_keys2_lease(&K2);
  rtq_test_cmd_ok(t->c, "SET", lease.s, "attacker", "PX", "60000", NULL);
  pid_t pid = tb2_broker_start(t, "--lease-ttl", "300ms", "--sweep-interval", "100ms");

  RTQ_TEST_WAIT_FOR(unswept_set(t), 10000);
  assert_true(tb_file_contains(t->log, "held by an id that does not sweep"));
  assert_true(tb_file_contains(t->log, "holder=attacker"));
  assert_true(tb_lease_is_v2(t, "attacker"));

  /* The forged lease goes: the broker leads, sweeps, and clears the alarm. */
  rtq_test_cmd_int(t->c, "DEL", lease.s, NULL);
  RTQ_TEST_WAIT_FOR(!unswept_set(t) && !tb_lease_is_v2(t, NULL) && !tb_lease_is_v2(t, "attacker"),
                    10000);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(t->c, "HEXISTS", rtq_keys2_broker(&K2).s, "last_sweep_at",
                                     NULL) == 1,
                    10000);
  tb_broker_stop(t, pid);
}

/* A real leader that sweeps is never reported by its standby. */
static void test_broker_lease_watch_leaves_a_sweeping_leader_alone(void **state) {
  tb *t = *state;
  pid_t leader = tb2_broker_start(t, "--lease-ttl", "300ms", "--sweep-interval", "100ms");
  RTQ_TEST_WAIT_FOR(!tb_lease_is_v2(t, NULL), 10000);
  char leader_log[sizeof t->log];
  memcpy(leader_log, t->log, sizeof leader_log);
  pid_t standby = tb2_broker_start(t, "--lease-ttl", "300ms", "--sweep-interval", "100ms");
  /* Ten lease TTLs: three would be enough to raise the alarm. */
  uint64_t until = rtq_test_now_ms() + 3000;
  while (rtq_test_now_ms() < until) {
    assert_false(unswept_set(t));
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  assert_false(tb_file_contains(t->log, "does not sweep"));
  tb_broker_stop(t, standby);
  memcpy(t->log, leader_log, sizeof leader_log);
  tb_broker_stop(t, leader);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker_lease_watch_reports_a_lease_nobody_sweeps,
                                      tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_lease_watch_leaves_a_sweeping_leader_alone,
                                      tb2_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
