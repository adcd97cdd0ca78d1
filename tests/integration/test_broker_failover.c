/*
 * test_broker_failover.c - rtq-broker under failure: the leader killed
 * with SIGKILL mid-recovery (the standby takes over within the lease time
 * and no task is requeued twice), SIGTERM (lease released, exit 0), Redis
 * restarted or frozen (reconnect, never hang), a lease held elsewhere,
 * the eviction-policy warning, and bad flags.
 */
#include "test_broker_helpers.h"

#include <errno.h>
#include <time.h>

#define LEASE_MS 1500
#define SWEEP_MS 100
/* The heartbeat TTL is long enough that the fake workers stay alive while
 * a test fills their lists; make_dead_workers then ages them all at once. */
#define FAST "--lease-ttl", "1500ms", "--sweep-interval", "100ms", "--heartbeat-ttl", "10s"

static bool alive(pid_t pid) { return kill(pid, 0) == 0 || errno != ESRCH; }

/* Dead workers w-fo-0.. each holding `per` claimed tasks fo-<w>-<i>. */
static void make_dead_workers(tb *t, const char *queue, int workers, int per) {
  char id[64], wid[32];
  tb_task_opts o = {.queue = queue};
  for (int w = 0; w < workers; w++) {
    snprintf(wid, sizeof wid, "w-fo-%d", w);
    tb_heartbeat(t, wid, 60000);
    for (int i = 0; i < per; i++) {
      snprintf(id, sizeof id, "fo-%d-%d", w, i);
      free(tb_create(t, id, &o, &(size_t){0}));
      tb_claim cl;
      assert_true(tb_claim_next(t, wid, queue, &cl));
      tb_claim_free(&cl);
    }
  }
  for (int w = 0; w < workers; w++) {
    snprintf(wid, sizeof wid, "w-fo-%d", w);
    tb_age_worker(t, wid, 60000);
  }
}

static long long processing_total(tb *t, int workers) {
  long long n = 0;
  char wid[32];
  for (int w = 0; w < workers; w++) {
    snprintf(wid, sizeof wid, "w-fo-%d", w);
    n += tb_llen(t, rtq_keys_processing(&t->k, wid));
  }
  return n;
}

/* Every task is on the queue exactly once, pending, delivered once. */
static void assert_each_requeued_once(tb *t, const char *queue, int workers, int per) {
  long long total = (long long)workers * per;
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, queue)), total);
  assert_int_equal(tb_stat(t, queue, "redelivered"), total);
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys_queue(&t->k, queue).s, "0", "-1", NULL);
  char *seen = calloc((size_t)total, 1);
  assert_non_null(seen);
  for (size_t i = 0; i < r->elements; i++) {
    rtq_envelope e;
    rtq_envelope_init(&e);
    assert_int_equal(rtq_envelope_decode(r->element[i]->str, r->element[i]->len, 0, &e, NULL, 0), 0);
    int w = 0, n = 0;
    assert_int_equal(sscanf(e.id, "fo-%d-%d", &w, &n), 2);
    if (seen[w * per + n]) fail_msg("%s requeued twice", e.id);
    seen[w * per + n] = 1;
    rtq_envelope_destroy(&e);
  }
  free(seen);
  freeReplyObject(r);
  tb_assert_field(t, "fo-0-0", "status", "pending");
  tb_assert_field(t, "fo-0-0", "attempt", "1");
}

static void test_broker_failover_standby_takes_over_after_kill9(void **state) {
  tb *t = *state;
  enum { WORKERS = 5, PER = 1000 };
  pid_t a = tb_broker_start(t, "--id", "b-A", FAST);
  RTQ_TEST_WAIT_FOR(tb_lease_is(t, "b-A"), 5000);
  pid_t b = tb_broker_start(t, "--id", "b-B", FAST);
  char log_b[512];
  snprintf(log_b, sizeof log_b, "%s", t->log);
  RTQ_TEST_WAIT_FOR(tb_file_contains(log_b, "standing by"), 5000);

  make_dead_workers(t, "qf", WORKERS, PER);
  /* Kill the leader as soon as it has started recovering (it takes
   * several sweeps: 2000 envelopes per sweep). */
  RTQ_TEST_WAIT_FOR(processing_total(t, WORKERS) < WORKERS * PER, 5000);
  assert_int_equal(rtq_test_kill(a, SIGKILL), 0);
  uint64_t killed_at = rtq_test_now_ms();
  long long left = processing_total(t, WORKERS);
  assert_int_equal(rtq_test_wait_exit(a, 5000, NULL), 0);

  RTQ_TEST_WAIT_FOR(tb_lease_is(t, "b-B"), 2 * LEASE_MS + 1000);
  uint64_t takeover = rtq_test_now_ms() - killed_at;
  RTQ_TEST_WAIT_FOR(processing_total(t, WORKERS) == 0, 10000);
  printf("failover: leader killed with %lld of %d envelopes left; standby took the lease after "
         "%llu ms (lease %d ms, sweep %d ms)\n",
         left, WORKERS * PER, (unsigned long long)takeover, LEASE_MS, SWEEP_MS);
  assert_true(takeover <= LEASE_MS + SWEEP_MS + 300);
  assert_each_requeued_once(t, "qf", WORKERS, PER);
  tb_broker_stop(t, b);
}

static void test_broker_failover_sigterm_releases_the_lease(void **state) {
  tb *t = *state;
  pid_t a = tb_broker_start(t, "--id", "b-A", FAST);
  RTQ_TEST_WAIT_FOR(tb_lease_is(t, "b-A"), 5000);
  char log_a[512];
  snprintf(log_a, sizeof log_a, "%s", t->log);
  pid_t b = tb_broker_start(t, "--id", "b-B", FAST);
  RTQ_TEST_WAIT_FOR(tb_file_contains(t->log, "standing by"), 5000);
  tb_broker_stop(t, a);
  assert_true(tb_file_contains(log_a, "released the leader lease"));
  uint64_t t0 = rtq_test_now_ms();
  RTQ_TEST_WAIT_FOR(tb_lease_is(t, "b-B"), LEASE_MS);
  printf("after SIGTERM the standby took the lease in %llu ms\n",
         (unsigned long long)(rtq_test_now_ms() - t0));
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
    pid_t p = tb_broker_start(t, "--id", "b-S", FAST);
    RTQ_TEST_WAIT_FOR(rtq_test_sigterm_handled(p), 10000);
    if (i < N) pause_us(delays_us[i]);
    else RTQ_TEST_WAIT_FOR(tb_lease_is(t, "b-S"), 10000);
    uint64_t t0 = rtq_test_now_ms();
    tb_broker_stop(t, p);
    printf("SIGTERM %s: exited in %llu ms\n", i < N ? "early" : "as the lease was taken",
           (unsigned long long)(rtq_test_now_ms() - t0));
    assert_false(tb_lease_is(t, "b-S"));
  }
}

static void test_broker_failover_survives_redis_restart(void **state) {
  tb *t = *state;
  rtq_test_redis *r = rtq_test_redis_default();
  pid_t p = tb_broker_start(t, "--id", "b-R", FAST, "--command-timeout", "500ms");
  RTQ_TEST_WAIT_FOR(tb_lease_is(t, "b-R"), 5000);
  assert_int_equal(rtq_test_redis_kill9(r), 0);
  RTQ_TEST_WAIT_FOR(tb_file_contains(t->log, "redis unavailable"), 5000);
  assert_true(alive(p));
  assert_int_equal(rtq_test_redis_restart(r), 0);
  rtq_conn_drop(t->c);
  make_dead_workers(t, "qs", 1, 3);
  RTQ_TEST_WAIT_FOR(tb_llen(t, rtq_keys_queue(&t->k, "qs")) == 3, 10000);
  assert_true(tb_file_contains(t->log, "redis reachable again"));
  assert_each_requeued_once(t, "qs", 1, 3);
  tb_broker_stop(t, p);
}

static void test_broker_failover_frozen_redis_never_hangs(void **state) {
  tb *t = *state;
  rtq_test_redis *r = rtq_test_redis_default();
  pid_t p = tb_broker_start(t, "--id", "b-F", FAST, "--command-timeout", "300ms");
  RTQ_TEST_WAIT_FOR(tb_lease_is(t, "b-F"), 5000);

  /* Frozen for several command timeouts, then back. */
  assert_int_equal(rtq_test_redis_sigstop(r), 0);
  RTQ_TEST_WAIT_FOR(tb_file_contains(t->log, "redis unavailable"), 5000);
  assert_true(alive(p));
  assert_int_equal(rtq_test_redis_sigcont(r), 0);
  rtq_conn_drop(t->c);
  make_dead_workers(t, "qz", 1, 3);
  RTQ_TEST_WAIT_FOR(tb_llen(t, rtq_keys_queue(&t->k, "qz")) == 3, 10000);

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
  rtq_test_cmd_ok(t->c, "SET", rtq_keys_lease(&t->k).s, "someone-else", "PX", "10000", NULL);
  make_dead_workers(t, "qo", 1, 2);
  tb_broker_once(t, "--heartbeat-ttl", "1s");
  assert_true(tb_file_contains(t->log, "standing by"));
  assert_int_equal(tb_llen(t, rtq_keys_processing(&t->k, "w-fo-0")), 2);
  assert_true(tb_lease_is(t, "someone-else"));
}

static void test_broker_failover_warns_when_eviction_is_on(void **state) {
  tb *t = *state;
  rtq_test_redis_options ro = {.maxmemory_policy = "allkeys-lru"};
  rtq_test_redis *r = rtq_test_redis_start(&ro);
  assert_non_null(r);
  const char *saved = t->url;
  t->url = rtq_test_redis_url_of(r);
  tb_broker_once(t, "--heartbeat-ttl", "1s");
  t->url = saved;
  assert_true(tb_file_contains(t->log, "maxmemory-policy is not noeviction"));
  assert_true(tb_file_contains(t->log, "level=WARNING"));
  rtq_test_redis_stop(r);
}

/* Hand-written debris of the wrong type makes one phase fail; the other
 * phases still run, and --once reports the failure. */
static void test_broker_failover_wrong_type_key_does_not_stop_other_phases(void **state) {
  tb *t = *state;
  char id[16];
  for (int i = 0; i < 3; i++) {
    snprintf(id, sizeof id, "w-%d", i);
    free(tb_create(t, id, &(tb_task_opts){.queue = "qw"}, &(size_t){0}));
    tb_claim cl;
    assert_true(tb_claim_next(t, "w-ok", "qw", &cl));
    char *tag = tb_finish(t, "w-ok", &cl, "completed", "");
    free(tag);
    tb_claim_free(&cl);
  }
  /* The first phase (deadlines) meets a string; the history cap comes later. */
  rtq_test_cmd_ok(t->c, "SET", rtq_keys_deadlines(&t->k).s, "not a zset", NULL);
  pid_t pid = tb_broker_start(t, "--once", "--max-task-history", "1");
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 20000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 1);
  assert_true(tb_file_contains(t->log, "WRONGTYPE"));
  assert_int_equal(tb_zcard(t, rtq_keys_history(&t->k)), 1);
}

static int exit_status_of(tb *t, const char *const *argv_flags, const char *const *env) {
  char bin[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  const char *argv[16] = {bin};
  int n = 1;
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
  rtq_keys other;
  assert_int_equal(rtq_keys_init(&other, "other", false), 0);
  char *sweeps = rtq_test_cmd_str(t->c, "HGET", rtq_keys_stats(&other).s, "broker|sweeps", NULL);
  assert_non_null(sweeps);
  assert_string_equal(sweeps, "1");
  free(sweeps);
  assert_int_equal(tb_stat(t, "broker", "sweeps"), 1); /* only the earlier run's */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker_failover_standby_takes_over_after_kill9, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_sigterm_releases_the_lease, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_sigterm_during_startup, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_survives_redis_restart, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_frozen_redis_never_hangs, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_once_stands_by_when_lease_is_held, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_warns_when_eviction_is_on, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_wrong_type_key_does_not_stop_other_phases, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_failover_rejects_bad_flags, tb_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
