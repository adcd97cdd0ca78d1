/*
 * test_broker_failover.c - rtq-broker under failure: the leader killed
 * with SIGKILL mid-recovery (the standby takes over within the lease time
 * and no task is requeued twice), SIGTERM at start-up (exit 0, no lease
 * left), Redis frozen (never hang), a lease held elsewhere, the
 * eviction-policy warning, a key of the wrong type, and bad flags. (SIGTERM
 * releasing the lease to a standby and a Redis restart:
 * test_broker2_sweeps.c.) The workers are played with protocol 2's
 * scripts; every broker runs --protocol 2.
 */
#include "test_broker2_helpers.h"

#include <errno.h>
#include <time.h>

#define LEASE_MS 1500
#define SWEEP_MS 100
/* The heartbeat TTL is long enough that the fake workers stay alive while
 * a test fills their lists; make_dead_workers then ages them all at once. */
#define FAST "--lease-ttl", "1500ms", "--sweep-interval", "100ms", "--heartbeat-ttl", "10s"

static bool alive(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

/* Dead workers w-fo-0.. each holding `per` running tasks fo-<w>-<i>. */
static void make_dead_workers(tb *t, const char *queue, int workers, int per) {
  char prefix[32], wid[32];
  for (int w = 0; w < workers; w++) {
    snprintf(wid, sizeof wid, "w-fo-%d", w);
    snprintf(prefix, sizeof prefix, "fo-%d", w);
    tb2_heartbeat(t, wid, 60000, queue);
    tb2_create_n(t, queue, prefix, per, NULL);
    assert_int_equal(tb2_take_all(t, wid, queue), per);
  }
  for (int w = 0; w < workers; w++) {
    snprintf(wid, sizeof wid, "w-fo-%d", w);
    tb2_age_worker(t, wid, 60000);
  }
}

static long long processing_total(tb *t, const char *queue, int workers) {
  long long n = 0;
  char wid[32];
  for (int w = 0; w < workers; w++) {
    snprintf(wid, sizeof wid, "w-fo-%d", w);
    n += tb2_len(t, rtq_keys2_processing(&K2, queue, wid));
  }
  return n;
}

/* Every task is on the queue exactly once, pending, its attempt 1. */
static void assert_each_requeued_once(tb *t, const char *queue, int workers, int per) {
  long long total = (long long)workers * per;
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, queue)), total);
  assert_int_equal(tb2_stat(t, queue, "redelivered"), total);
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys2_queue(&K2, queue).s, "0", "-1", NULL);
  char *seen = calloc((size_t)total, 1);
  assert_non_null(seen);
  for (size_t i = 0; i < r->elements; i++) {
    int w = 0, n = 0;
    assert_int_equal(sscanf(r->element[i]->str, "fo-%d-%d", &w, &n), 2);
    if (seen[w * per + n]) fail_msg("%s requeued twice", r->element[i]->str);
    seen[w * per + n] = 1;
  }
  free(seen);
  freeReplyObject(r);
  assert_true(tb2_field_is(t, queue, "fo-0-0000", "s", "pending"));
  assert_true(tb2_field_is(t, queue, "fo-0-0000", "a", "1"));
}

static void test_broker_failover_standby_takes_over_after_kill9(void **state) {
  tb *t = *state;
  enum { WORKERS = 5, PER = 1000 };
  pid_t a = tb2_broker_start(t, "--id", "b-A", FAST);
  RTQ_TEST_WAIT_FOR(tb_lease_is_v2(t, "b-A"), 5000);
  pid_t b = tb2_broker_start(t, "--id", "b-B", FAST);
  char log_b[512];
  snprintf(log_b, sizeof log_b, "%s", t->log);
  RTQ_TEST_WAIT_FOR(tb_file_contains(log_b, "standing by"), 5000);

  make_dead_workers(t, "qf", WORKERS, PER);
  /* Kill the leader as soon as it has started recovering (it takes
   * several sweeps: 2000 envelopes per sweep). */
  RTQ_TEST_WAIT_FOR(processing_total(t, "qf", WORKERS) < WORKERS * PER, 5000);
  assert_int_equal(rtq_test_kill(a, SIGKILL), 0);
  uint64_t killed_at = rtq_test_now_ms();
  long long left = processing_total(t, "qf", WORKERS);
  assert_int_equal(rtq_test_wait_exit(a, 5000, NULL), 0);

  RTQ_TEST_WAIT_FOR(tb_lease_is_v2(t, "b-B"), 2 * LEASE_MS + 1000);
  uint64_t takeover = rtq_test_now_ms() - killed_at;
  RTQ_TEST_WAIT_FOR(processing_total(t, "qf", WORKERS) == 0, 10000);
  printf("failover: leader killed with %lld of %d envelopes left; standby took the lease after "
         "%llu ms (lease %d ms, sweep %d ms)\n",
         left, WORKERS * PER, (unsigned long long)takeover, LEASE_MS, SWEEP_MS);
  assert_true(takeover <= LEASE_MS + SWEEP_MS + 300);
  assert_each_requeued_once(t, "qf", WORKERS, PER);
  tb_broker_stop(t, b);
}

static void pause_us(long us) {
  struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* SIGTERM at several moments of start-up, from main's first line on
 * (parsing flags, connecting, loading scripts, the first sweep), then right
 * as it takes the lease: every time a clean exit (0) and no lease left. */
static void test_broker_failover_sigterm_during_startup(void **state) {
  tb *t = *state;
  static const long delays_us[] = {0, 1000, 3000, 10000, 30000, 100000};
  enum { N = sizeof delays_us / sizeof delays_us[0] };
  for (int i = 0; i <= N; i++) {
    pid_t p = tb2_broker_start(t, "--id", "b-S", FAST);
    RTQ_TEST_WAIT_FOR(rtq_test_sigterm_handled(p), 10000);
    if (i < N) pause_us(delays_us[i]);
    else RTQ_TEST_WAIT_FOR(tb_lease_is_v2(t, "b-S"), 10000);
    uint64_t t0 = rtq_test_now_ms();
    tb_broker_stop(t, p);
    printf("SIGTERM %s: exited in %llu ms\n", i < N ? "early" : "as the lease was taken",
           (unsigned long long)(rtq_test_now_ms() - t0));
    assert_false(tb_lease_is_v2(t, "b-S"));
  }
}

static void test_broker_failover_frozen_redis_never_hangs(void **state) {
  tb *t = *state;
  rtq_test_redis *r = rtq_test_redis_default();
  pid_t p = tb2_broker_start(t, "--id", "b-F", FAST, "--command-timeout", "300ms");
  RTQ_TEST_WAIT_FOR(tb_lease_is_v2(t, "b-F"), 5000);

  /* Frozen for several command timeouts, then back. */
  assert_int_equal(rtq_test_redis_sigstop(r), 0);
  RTQ_TEST_WAIT_FOR(tb_file_contains(t->log, "redis unavailable"), 5000);
  assert_true(alive(p));
  assert_int_equal(rtq_test_redis_sigcont(r), 0);
  rtq_conn_drop(t->c);
  make_dead_workers(t, "qz", 1, 3);
  RTQ_TEST_WAIT_FOR(tb2_len(t, rtq_keys2_queue(&K2, "qz")) == 3, 10000);

  /* SIGTERM while Redis is frozen: the broker still exits, promptly. */
  assert_int_equal(rtq_test_redis_sigstop(r), 0);
  uint64_t t0 = rtq_test_now_ms();
  int status = 0;
  int rc = rtq_test_terminate(p, SIGTERM, 8000, &status);
  uint64_t took = rtq_test_now_ms() - t0;
  assert_int_equal(rtq_test_redis_sigcont(r), 0);
  rtq_conn_drop(t->c);
  printf("SIGTERM with redis frozen: exited in %llu ms\n", (unsigned long long)took);
  assert_int_equal(rc, 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_broker_failover_once_stands_by_when_lease_is_held(void **state) {
  tb *t = *state;
  rtq_test_cmd_ok(t->c, "SET", rtq_keys2_lease(&K2).s, "someone-else", "PX", "10000", NULL);
  make_dead_workers(t, "qo", 1, 2);
  tb2_broker_once(t, "--heartbeat-ttl", "1s");
  assert_true(tb_file_contains(t->log, "standing by"));
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qo", "w-fo-0")), 2);
  assert_true(tb_lease_is_v2(t, "someone-else"));
}

static void test_broker_failover_warns_when_eviction_is_on(void **state) {
  tb *t = *state;
  rtq_test_redis_options ro = {.maxmemory_policy = "allkeys-lru"};
  rtq_test_redis *r = rtq_test_redis_start(&ro);
  assert_non_null(r);
  const char *saved = t->url;
  t->url = rtq_test_redis_url_of(r);
  tb2_broker_once(t, "--heartbeat-ttl", "1s");
  t->url = saved;
  assert_true(tb_file_contains(t->log, "maxmemory-policy is not noeviction"));
  assert_true(tb_file_contains(t->log, "level=WARNING"));
  rtq_test_redis_stop(r);
}

/* Hand-written debris of the wrong type makes one phase fail; the other
 * phases still run, and --once reports the failure. */
static void test_broker_failover_wrong_type_key_does_not_stop_other_phases(void **state) {
  tb *t = *state;
  /* Recovery and the backstop meet a string where {ns}:workers should
   * be; promotion still moves a due task. */
  tb2_create(t, "qw", "w-due", &(tb2_opts){.delay_ms = 1});
  rtq_test_cmd_ok(t->c, "SET", rtq_keys2_workers(&K2).s, "not a zset", NULL);
  uint64_t until = tb_redis_now(t) + 20;
  while (tb_redis_now(t) < until) rtq__test_poll_pause(1);
  pid_t pid = tb2_broker_start(t, "--once");
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 20000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 1);
  assert_true(tb_file_contains(t->log, "WRONGTYPE"));
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qw")), 1);
  assert_int_equal(tb2_stat(t, NULL, "promoted"), 1);
}

static int exit_status_of(tb *t, const char *const *argv_flags, const char *const *env) {
  char bin[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  const char *argv[16] = {bin, "--protocol", "2"};
  int n = 3;
  for (int i = 0; argv_flags[i] != NULL && n < 15; i++) argv[n++] = argv_flags[i];
  argv[n] = NULL;
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .env = env, .output_path = t->log};
  pid_t pid = rtq_test_spawn_ex(&so);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static void test_broker_failover_rejects_bad_flags(void **state) {
  tb *t = *state;
  snprintf(t->log, sizeof t->log, "%s/flags.log", rtq_test_redis_dir(rtq_test_redis_default()));
  assert_int_equal(exit_status_of(t, (const char *const[]){"--bogus", NULL}, NULL), 2);
  assert_int_equal(exit_status_of(t, (const char *const[]){"--sweep-interval", "0ms", NULL}, NULL), 2);
  assert_int_equal(exit_status_of(t, (const char *const[]){"--lease-ttl", "ten", NULL}, NULL), 2);
  assert_int_equal(exit_status_of(t, (const char *const[]){"--redis", "http://x", NULL}, NULL), 2);
  assert_int_equal(
      exit_status_of(t, (const char *const[]){"--once", NULL}, (const char *const[]){"RTQ_SWEEP_INTERVAL=abc", NULL}),
      2);
  assert_true(tb_file_contains(t->log, "RTQ_SWEEP_INTERVAL"));
  assert_int_equal(exit_status_of(t, (const char *const[]){"--help", NULL}, NULL), 0);
  assert_true(tb_file_contains(t->log, "--heartbeat-ttl"));
  assert_true(tb_file_contains(t->log, "--metrics-listen"));
  /* Durations: a bare number is seconds; units are accepted. Flags beat
   * the environment. */
  assert_int_equal(exit_status_of(t,
                                  (const char *const[]){"--redis", t->url, "--once", "--heartbeat-ttl",
                                                        "30s", "--lease-ttl", "2.5s", "--sweep-interval",
                                                        "1.5", "--command-timeout", "1m", NULL},
                                  (const char *const[]){"RTQ_TIMEOUT_GRACE=1500ms",
                                                        "RTQ_SWEEP_INTERVAL=999", NULL}),
                   0);
  assert_true(tb_file_contains(t->log, "heartbeat_ttl_ms=30000"));
  assert_true(tb_file_contains(t->log, "lease_ttl_ms=2500"));
  assert_true(tb_file_contains(t->log, "sweep_interval_ms=1500"));
  assert_true(tb_file_contains(t->log, "timeout_grace_ms=1500"));
  assert_int_equal(exit_status_of(t, (const char *const[]){"--once=yes", NULL}, NULL), 2);
  /* --namespace moves every key. */
  assert_int_equal(
      exit_status_of(t, (const char *const[]){"--redis", t->url, "--once", "--namespace", "other", NULL}, NULL), 0);
  rtq_keys2 other;
  assert_int_equal(rtq_keys2_init(&other, "other"), 0);
  char *sweeps = rtq_test_cmd_str(t->c, "HGET", rtq_keys2_broker(&other).s, "sweeps", NULL);
  assert_non_null(sweeps);
  assert_string_equal(sweeps, "1");
  free(sweeps);
  assert_int_equal(tb2_stat(t, NULL, "sweeps"), 1); /* only the earlier run's */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker_failover_standby_takes_over_after_kill9, tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_sigterm_during_startup, tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_frozen_redis_never_hangs, tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_once_stands_by_when_lease_is_held, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_warns_when_eviction_is_on, tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_wrong_type_key_does_not_stop_other_phases, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_rejects_bad_flags, tb2_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
