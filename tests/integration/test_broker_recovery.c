/*
 * test_broker_recovery.c - rtq-broker redelivers the tasks of dead
 * workers: an id moved but never claimed goes back with its attempt,
 * entries that are no task are dead-lettered, a copy of a delayed task
 * does not run it early, a stale copy of a task running elsewhere does not
 * end that run, a forged future heartbeat counts as dead, a late result is
 * fenced off, cancel requests are honoured, and each entry is recovered
 * exactly once with brokers racing. (Redelivery with the next attempt,
 * WORKER_LOST past max deliveries, a worker without a record and live
 * workers left alone: test_broker2_recovery.c.)
 *
 * The test plays the worker with protocol 2's scripts
 * (test_client_fake_worker2.h, test_broker2_helpers.h) and kills it by
 * ageing its heartbeat; the broker is the real binary, run with --once.
 */
#include "test_broker2_helpers.h"
#include "test_client_fake_worker2.h"

#define HB "--heartbeat-ttl", "1s"

static void take(tb *t, const char *queue, const char *wid, fake_job2 *j) {
  assert_int_equal(fw2_take(t->c, &K2, queue, wid, j), 0);
}

/* Ends j as status; returns finish's word ("ok", "retry", "stale"). */
static const char *finish(tb *t, const fake_job2 *j, rtq_status status, char word[16]) {
  rtq__finish2_task ft;
  memset(&ft, 0, sizeof ft);
  ft.status = status;
  rtq__keep2 keep = {86400, true, 10000};
  assert_int_equal(fw2_finish_keep(t->c, &K2, j, ft, &keep, word), 0);
  return word;
}

/* LPUSHes the bytes entry (n) onto wid's processing list of queue. */
static void push_entry(tb *t, const char *queue, const char *wid, const char *entry, size_t n) {
  rtq_key2 proc = rtq_keys2_processing(&K2, queue, wid);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq_argv_add(&a, proc.s, proc.len);
  rtq_argv_add(&a, entry, n);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  rtq_argv_destroy(&a);
}

/* True when queue's dead list holds a record mentioning needle (records
 * are msgpack maps, whose strings are stored as plain bytes). */
static bool dead_has(tb *t, const char *queue, const char *needle) {
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys2_dead(&K2, queue).s, "0", "-1", NULL);
  bool found = false;
  for (size_t i = 0; i < r->elements && !found; i++)
    found = memmem(r->element[i]->str, r->element[i]->len, needle, strlen(needle)) != NULL;
  freeReplyObject(r);
  return found;
}

static bool worker_listed(tb *t, const char *wid) {
  char *v = rtq_test_cmd_str(t->c, "ZSCORE", rtq_keys2_workers(&K2).s, wid, NULL);
  free(v);
  return v != NULL;
}

/* Moved into the processing list (BLMOVE), then the worker died before
 * its claim: the task goes back pending, and its next run is attempt 1. */
static void test_broker_recovery_requeues_id_never_claimed(void **state) {
  tb *t = *state;
  tb2_create(t, "q3", "t-unclaimed", NULL);
  tb2_heartbeat(t, "w-died-early", 600000, "q3:1");
  free(rtq_test_cmd_str(t->c, "LMOVE", rtq_keys2_queue(&K2, "q3").s,
                        rtq_keys2_processing(&K2, "q3", "w-died-early").s, "RIGHT", "LEFT", NULL));
  tb2_age_worker(t, "w-died-early", 5000);

  tb2_broker_once(t, HB);

  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "q3", "w-died-early")), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "q3")), 1);
  assert_true(tb2_field_is(t, "q3", "t-unclaimed", "s", "pending"));
  fake_job2 j;
  take(t, "q3", "w-2", &j);
  assert_string_equal(j.id, "t-unclaimed");
  assert_int_equal(j.attempt, 1);
}

/* Bytes that are no id and an id without a task hash are dead-lettered. */
static void test_broker_recovery_dead_letters_bad_entries(void **state) {
  tb *t = *state;
  rtq_test_cmd_int(t->c, "SADD", rtq_keys2_queues(&K2).s, "q4", NULL);
  tb2_heartbeat(t, "w-bad", 600000, "q4:1");
  push_entry(t, "q4", "w-bad", "garbage bytes", 13);
  push_entry(t, "q4", "w-bad", "\xdd\xff\x00\x00\x00", 5);
  push_entry(t, "q4", "w-bad", "no-such-task", 12);
  tb2_age_worker(t, "w-bad", 5000);

  tb2_broker_once(t, HB);

  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "q4", "w-bad")), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_dead(&K2, "q4")), 3);
  assert_true(dead_has(t, "q4", "BAD_ID"));
  assert_true(dead_has(t, "q4", "NO_TASK_RECORD"));
  assert_true(dead_has(t, "q4", "garbage bytes"));
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "q4")), 0);
  assert_false(worker_listed(t, "w-bad"));
  assert_int_equal(tb2_stat(t, NULL, "dead_lettered"), 3);
}

/* A dead worker's list may hold a leftover copy of a task that waits in
 * the delayed set (a retry backoff): recovery drops the copy instead of
 * running the task early. */
static void test_broker_recovery_drops_copy_of_a_delayed_task(void **state) {
  tb *t = *state;
  tb2_create(t, "qc", "t-later", &(tb2_opts){.delay_ms = 60000});
  tb2_heartbeat(t, "w-copy", 600000, "qc:1");
  push_entry(t, "qc", "w-copy", "t-later", 7);
  tb2_age_worker(t, "w-copy", 5000);

  tb2_broker_once(t, HB);

  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qc", "w-copy")), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qc")), 0);
  assert_int_equal(rtq_test_cmd_int(t->c, "ZCARD", rtq_keys2_delayed(&K2, "qc").s, NULL), 1);
  assert_true(tb2_field_is(t, "qc", "t-later", "s", "pending"));
}

/* A stale copy of the id of a task running under a live worker, in a
 * dead worker's list, does not end that run. */
static void test_broker_recovery_stale_copy_does_not_end_a_run_elsewhere(void **state) {
  tb *t = *state;
  tb2_create(t, "qv", "t-victim", NULL);
  tb2_heartbeat(t, "w-live", 600000, "qv:1");
  fake_job2 j;
  take(t, "qv", "w-live", &j);
  tb2_heartbeat(t, "w-gone", 600000, "qv:1");
  push_entry(t, "qv", "w-gone", "t-victim", 8);
  tb2_age_worker(t, "w-gone", 5000);

  tb2_broker_once(t, HB);

  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qv", "w-gone")), 0);
  assert_true(tb2_field_is(t, "qv", "t-victim", "s", "running"));
  assert_true(tb2_field_is(t, "qv", "t-victim", "w", "w-live"));
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qv", "w-live")), 1);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qv")), 0);
}

/* A heartbeat score in the future (no heartbeat gives one: heartbeat.lua
 * takes Redis TIME) is a forged "alive": the worker counts as dead and its
 * tasks come back. */
static void test_broker_recovery_future_heartbeat_counts_as_dead(void **state) {
  tb *t = *state;
  tb2_create(t, "q7", "t-fut", NULL);
  tb2_heartbeat(t, "w-fut", 30000, "q7:1");
  assert_int_equal(tb2_take_all(t, "w-fut", "q7"), 1);
  char score[32];
  snprintf(score, sizeof score, "%llu", (unsigned long long)(tb_redis_now(t) + 3600000));
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys2_workers(&K2).s, score, "w-fut", NULL);

  tb2_broker_once(t, "--heartbeat-ttl", "30s");

  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "q7", "w-fut")), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "q7")), 1);
  assert_true(tb2_field_is(t, "q7", "t-fut", "s", "pending"));
  assert_false(worker_listed(t, "w-fut"));
  assert_true(tb_file_contains(t->log, "its heartbeat score is in the future"));
}

/* A worker that was only paused: recovered, then it wakes up and reports
 * its result. finish.lua fences the late write off; the redelivery wins. */
static void test_broker_recovery_late_result_is_rejected(void **state) {
  tb *t = *state;
  tb2_create(t, "q6", "t-late", NULL);
  tb2_heartbeat(t, "w-paused", 600000, "q6:1");
  fake_job2 paused, fresh;
  take(t, "q6", "w-paused", &paused);
  tb2_age_worker(t, "w-paused", 5000);
  tb2_broker_once(t, HB);
  take(t, "q6", "w-fresh", &fresh);
  assert_int_equal(fresh.attempt, 2);

  char word[16];
  assert_string_equal(finish(t, &paused, RTQ_STATUS_COMPLETED, word), "stale");
  assert_true(tb2_field_is(t, "q6", "t-late", "s", "running"));
  assert_string_equal(finish(t, &fresh, RTQ_STATUS_COMPLETED, word), "ok");
  assert_true(tb2_field_is(t, "q6", "t-late", "s", "completed"));
  assert_true(tb2_field_is(t, "q6", "t-late", "w", "w-fresh"));
  assert_int_equal(tb2_stat(t, "q6", "completed"), 1);
}

/* Cancelled while running, then its worker died: recovery must not bring
 * it back to life. */
static void test_broker_recovery_honours_cancel_requests(void **state) {
  tb *t = *state;
  tb2_create(t, "q8", "t-cancel", NULL);
  tb2_heartbeat(t, "w-c", 600000, "q8:1");
  assert_int_equal(tb2_take_all(t, "w-c", "q8"), 1);
  rtq__keep2 keep = {86400, true, 10000};
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_cancel(&a, &K2, false, "q8", "t-cancel", &keep), 0);
  redisReply *r = tb2_run(t, &a);
  assert_string_equal(r->element[0]->str, "requested"); /* nobody listened */
  freeReplyObject(r);
  tb2_age_worker(t, "w-c", 5000);

  tb2_broker_once(t, HB);

  assert_true(tb2_field_is(t, "q8", "t-cancel", "s", "cancelled"));
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "q8")), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_done(&K2, "q8", RTQ_STATUS_CANCELLED)), 1);
  assert_int_equal(tb2_stat(t, NULL, "cancelled_on_recovery"), 1);
  /* Nothing is left for a worker to take. */
  assert_int_equal(tb2_take_all(t, "w-2", "q8"), 0);
}

/*
 * Four brokers that all ignore the lease sweep the same dead workers at
 * once: recover.lua's LREM gate must hand each entry to exactly one.
 */
static void test_broker_recovery_is_exactly_once_with_racing_brokers(void **state) {
  tb *t = *state;
  enum { WORKERS = 3, PER_WORKER = 400, BROKERS = 4 };
  char prefix[32], wid[32];
  for (int w = 0; w < WORKERS; w++) {
    snprintf(wid, sizeof wid, "w-race-%d", w);
    snprintf(prefix, sizeof prefix, "race-%d", w);
    tb2_heartbeat(t, wid, 600000, "qr:1");
    tb2_create_n(t, "qr", prefix, PER_WORKER, NULL);
    assert_int_equal(tb2_take_all(t, wid, "qr"), PER_WORKER);
    tb2_age_worker(t, wid, 5000);
  }
  pid_t pids[BROKERS];
  for (int i = 0; i < BROKERS; i++)
    pids[i] = tb2_broker_start(t, "--once", "--ignore-lease", HB);
  for (int i = 0; i < BROKERS; i++) {
    int status = 0;
    assert_int_equal(rtq_test_wait_exit(pids[i], 20000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const long long total = WORKERS * PER_WORKER;
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qr")), total);
  assert_int_equal(tb2_stat(t, "qr", "redelivered"), total);
  assert_int_equal(tb2_stat(t, NULL, "recovered"), total);
  /* Every id is on the queue exactly once. */
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys2_queue(&K2, "qr").s, "0", "-1", NULL);
  char *seen = calloc((size_t)total, 1);
  assert_non_null(seen);
  for (size_t i = 0; i < r->elements; i++) {
    int w = 0, n = 0;
    assert_int_equal(sscanf(r->element[i]->str, "race-%d-%d", &w, &n), 2);
    assert_int_equal(seen[w * PER_WORKER + n], 0);
    seen[w * PER_WORKER + n] = 1;
  }
  free(seen);
  freeReplyObject(r);
  for (int w = 0; w < WORKERS; w++) {
    snprintf(wid, sizeof wid, "w-race-%d", w);
    assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qr", wid)), 0);
  }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, tb2_setup, tb_teardown)
  const struct CMUnitTest tests[] = {
      T(test_broker_recovery_requeues_id_never_claimed),
      T(test_broker_recovery_dead_letters_bad_entries),
      T(test_broker_recovery_drops_copy_of_a_delayed_task),
      T(test_broker_recovery_stale_copy_does_not_end_a_run_elsewhere),
      T(test_broker_recovery_future_heartbeat_counts_as_dead),
      T(test_broker_recovery_late_result_is_rejected),
      T(test_broker_recovery_honours_cancel_requests),
      T(test_broker_recovery_is_exactly_once_with_racing_brokers),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
