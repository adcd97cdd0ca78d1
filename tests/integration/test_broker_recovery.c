/*
 * test_broker_recovery.c - rtq-broker redelivers the tasks of dead workers:
 * attempt+1, WORKER_LOST past max_deliveries, claimed-but-never-running
 * envelopes, undecodable envelopes, cancel requests honoured, exactly once
 * with brokers racing, live workers left alone.
 *
 * The test plays the worker through the protocol (LMOVE + claim.lua,
 * heartbeat.lua, finish.lua) and kills it by ageing its heartbeat; the
 * broker is the real binary, run with --once.
 */
#include "test_broker_helpers.h"

#define HB "--heartbeat-ttl", "1s"

static void test_broker_recovery_requeues_with_next_attempt(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "q1"};
  const char *ids[3] = {"t-1", "t-2", "t-3"};
  for (int i = 0; i < 3; i++) free(tb_create(t, ids[i], &o, &(size_t){0}));
  tb_heartbeat(t, "w-dead", 1000);
  for (int i = 0; i < 3; i++) {
    tb_claim cl;
    assert_true(tb_claim_next(t, "w-dead", "q1", &cl));
    assert_string_equal(cl.id, ids[i]);
    assert_int_equal(cl.attempt, 1);
    tb_claim_free(&cl);
  }
  tb_age_worker(t, "w-dead", 5000);

  tb_broker_once(t, HB);

  assert_int_equal(tb_exists(t, rtq_keys_processing(&t->k, "w-dead")), 0);
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "q1")), 3);
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_RUNNING)), 0);
  assert_int_equal(tb_zcard(t, rtq_keys_deadlines(&t->k)), 0);
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_PENDING)), 3);
  for (int i = 0; i < 3; i++) {
    tb_assert_field(t, ids[i], "status", "pending");
    tb_assert_field(t, ids[i], "attempt", "1");
    tb_assert_field(t, ids[i], "started_at", "");
  }
  /* The dead worker is forgotten once its list is drained. */
  assert_false(tb_zhas(t, rtq_keys_workers(&t->k), "w-dead"));
  assert_int_equal(tb_exists(t, rtq_keys_worker(&t->k, "w-dead")), 0);
  assert_int_equal(tb_stat(t, "q1", "redelivered"), 3);
  assert_int_equal(tb_stat(t, "broker", "recovered"), 3);
  assert_int_equal(tb_stat(t, "broker", "dead_workers"), 1);

  /* The next delivery is attempt 2, oldest task first. */
  for (int i = 0; i < 3; i++) {
    tb_claim cl;
    assert_true(tb_claim_next(t, "w-2", "q1", &cl));
    assert_string_equal(cl.id, ids[i]);
    assert_int_equal(cl.attempt, 2);
    tb_claim_free(&cl);
  }
}

static void test_broker_recovery_fails_worker_lost_after_max_deliveries(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "q2"};
  free(tb_create(t, "t-lost", &o, &(size_t){0}));
  const char *workers[2] = {"w-a", "w-b"};
  for (int round = 0; round < 2; round++) {
    tb_claim cl;
    assert_true(tb_claim_next(t, workers[round], "q2", &cl));
    assert_int_equal(cl.attempt, round + 1);
    tb_claim_free(&cl);
    tb_age_worker(t, workers[round], 5000);
    tb_broker_once(t, HB, "--max-deliveries", "2");
  }
  tb_assert_field(t, "t-lost", "status", "failed");
  tb_assert_field(t, "t-lost", "error_code", "WORKER_LOST");
  tb_assert_field(t, "t-lost", "attempt", "2");
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "q2")), 0);
  long long ttl = rtq_test_cmd_int(t->c, "TTL", rtq_keys_task(&t->k, "t-lost").s, NULL);
  assert_true(ttl > 0 && ttl <= 86400);
  assert_true(tb_zhas(t, rtq_keys_history(&t->k), "t-lost"));
  assert_true(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_FAILED), "t-lost"));
  assert_int_equal(tb_stat(t, "q2", "failed"), 1);
  assert_int_equal(tb_stat(t, "broker", "worker_lost"), 1);
}

static void test_broker_recovery_requeues_envelope_never_marked_running(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "q3"};
  free(tb_create(t, "t-unclaimed", &o, &(size_t){0}));
  tb_claim cl;
  /* Moved into the processing list, then the worker died before claim.lua. */
  assert_true(tb_take(t, "w-died-early", "q3", &cl));
  tb_claim_free(&cl);
  tb_age_worker(t, "w-died-early", 5000);

  tb_broker_once(t, HB);

  assert_int_equal(tb_llen(t, rtq_keys_processing(&t->k, "w-died-early")), 0);
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "q3")), 1);
  tb_assert_field(t, "t-unclaimed", "status", "pending");
  assert_true(tb_claim_next(t, "w-2", "q3", &cl));
  assert_int_equal(cl.attempt, 1);
  tb_claim_free(&cl);
}

static void test_broker_recovery_dead_letters_bad_envelopes(void **state) {
  tb *t = *state;
  rtq_key proc = rtq_keys_processing(&t->k, "w-bad");
  /* Garbage, a truncated map, and a well-formed envelope without a task. */
  rtq_envelope e;
  rtq_envelope_init(&e);
  snprintf(e.id, sizeof e.id, "no-such-task");
  snprintf(e.name, sizeof e.name, "noop");
  snprintf(e.queue, sizeof e.queue, "q4");
  char *orphan = NULL;
  size_t orphan_len = 0;
  assert_int_equal(rtq_envelope_encode(&e, &orphan, &orphan_len, NULL, 0), 0);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key(&a, proc);
  rtq_argv_add_str(&a, "garbage bytes");
  rtq_argv_add(&a, "\xdd\xff\x00\x00\x00", 5);
  rtq_argv_add(&a, orphan, orphan_len);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  rtq_argv_destroy(&a);
  free(orphan);
  tb_age_worker(t, "w-bad", 5000);

  tb_broker_once(t, HB);

  assert_int_equal(tb_llen(t, proc), 0);
  assert_int_equal(tb_llen(t, rtq_keys_dead(&t->k)), 3);
  assert_true(tb_dead_has(t, "DECODE_ERROR"));
  assert_true(tb_dead_has(t, "NO_TASK_RECORD"));
  assert_true(tb_dead_has(t, "garbage bytes"));
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "q4")), 0);
  assert_false(tb_zhas(t, rtq_keys_workers(&t->k), "w-bad"));
  assert_int_equal(tb_stat(t, "broker", "dead_lettered"), 3);
}

/* A delayed envelope that does not decode is taken out of P:delayed and
 * recorded in P:dead in one step, and its (pending) task fails: nothing is
 * dropped silently and nothing stays pending for ever. */
static void test_broker_recovery_dead_letters_bad_delayed_envelope(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "qd", .delay_ms = 60000};
  char *env = tb_create(t, "t-delayed", &o, &(size_t){0});
  free(env);
  /* Replace the delayed envelope with one of an unknown version (v=99). */
  rtq_key delayed = rtq_keys_delayed(&t->k);
  freeReplyObject(rtq_test_command(t->c, "DEL", delayed.s, NULL));
  static const char bad[] = "\x82\xa1v\x63\xa2id\xa9t-delayed";
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZADD");
  rtq__argv_add_key(&a, delayed);
  rtq_argv_add_str(&a, "1");
  rtq_argv_add(&a, bad, sizeof bad - 1);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  rtq_argv_destroy(&a);

  tb_broker_once(t, HB);

  assert_int_equal(tb_zcard(t, delayed), 0);
  assert_int_equal(tb_llen(t, rtq_keys_dead(&t->k)), 1);
  tb_assert_field(t, "t-delayed", "status", "failed");
  char *code = tb_task_field(t, "t-delayed", "error_code");
  assert_non_null(code);
  assert_true(tb_dead_has(t, code));
  free(code);
}

/* A dead worker's list may hold a leftover copy of a task that waits in
 * P:delayed (a retry backoff): recovery drops the copy instead of running
 * the task early. */
static void test_broker_recovery_drops_copy_of_a_delayed_task(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "qc", .delay_ms = 60000};
  size_t len = 0;
  char *env = tb_create(t, "t-later", &o, &len);
  rtq_key proc = rtq_keys_processing(&t->k, "w-copy");
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key(&a, proc);
  rtq_argv_add(&a, env, len);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  rtq_argv_destroy(&a);
  free(env);
  tb_age_worker(t, "w-copy", 5000);

  tb_broker_once(t, HB);

  assert_int_equal(tb_llen(t, proc), 0);
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "qc")), 0);
  assert_int_equal(tb_zcard(t, rtq_keys_delayed(&t->k)), 1);
  tb_assert_field(t, "t-later", "status", "pending");
}

/* A bad envelope that names the id of a task running under a live worker
 * is dead-lettered, but does not end that run. */
static void test_broker_recovery_bad_envelope_does_not_end_a_run_elsewhere(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "qv"};
  free(tb_create(t, "t-victim", &o, &(size_t){0}));
  tb_heartbeat(t, "w-live", 60000);
  tb_claim cl;
  assert_true(tb_claim_next(t, "w-live", "qv", &cl));
  tb_claim_free(&cl);
  rtq_key proc = rtq_keys_processing(&t->k, "w-gone");
  static const char bad[] = "\x82\xa1v\x63\xa2id\xa8t-victim";
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key(&a, proc);
  rtq_argv_add(&a, bad, sizeof bad - 1);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  rtq_argv_destroy(&a);
  tb_age_worker(t, "w-gone", 5000);

  tb_broker_once(t, HB);

  assert_int_equal(tb_llen(t, rtq_keys_dead(&t->k)), 1);
  tb_assert_field(t, "t-victim", "status", "running");
  tb_assert_field(t, "t-victim", "worker", "w-live");
}

static void test_broker_recovery_leaves_live_workers_alone(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "q5"};
  free(tb_create(t, "t-live", &o, &(size_t){0}));
  tb_claim cl;
  assert_true(tb_claim_next(t, "w-live", "q5", &cl));
  tb_claim_free(&cl);
  tb_heartbeat(t, "w-live", 30000);

  tb_broker_once(t, "--heartbeat-ttl", "30s");

  assert_int_equal(tb_llen(t, rtq_keys_processing(&t->k, "w-live")), 1);
  tb_assert_field(t, "t-live", "status", "running");
  assert_true(tb_zhas(t, rtq_keys_workers(&t->k), "w-live"));
  assert_int_equal(tb_stat(t, "broker", "recovered"), 0);
}

/* A heartbeat score in the future (no heartbeat gives one: heartbeat.lua
 * takes Redis TIME) is a forged "alive": the worker counts as dead and its
 * tasks come back. */
static void test_broker_recovery_future_heartbeat_counts_as_dead(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "q7"};
  free(tb_create(t, "t-fut", &o, &(size_t){0}));
  tb_heartbeat(t, "w-fut", 30000);
  tb_claim cl;
  assert_true(tb_claim_next(t, "w-fut", "q7", &cl));
  tb_claim_free(&cl);
  char score[32];
  snprintf(score, sizeof score, "%llu", (unsigned long long)(tb_redis_now(t) + 3600000));
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys_workers(&t->k).s, score, "w-fut", NULL);

  tb_broker_once(t, "--heartbeat-ttl", "30s");

  assert_int_equal(tb_exists(t, rtq_keys_processing(&t->k, "w-fut")), 0);
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "q7")), 1);
  tb_assert_field(t, "t-fut", "status", "pending");
  assert_false(tb_zhas(t, rtq_keys_workers(&t->k), "w-fut"));
  assert_true(tb_file_contains(t->log, "its heartbeat score is in the future"));
}

/* A fresh score without its worker record (heartbeat.lua writes both, and
 * the record expires with the heartbeat) is not a live worker either. */
static void test_broker_recovery_worker_without_record_counts_as_dead(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "q8"};
  free(tb_create(t, "t-norec", &o, &(size_t){0}));
  tb_heartbeat(t, "w-norec", 30000);
  tb_claim cl;
  assert_true(tb_claim_next(t, "w-norec", "q8", &cl));
  tb_claim_free(&cl);
  rtq_test_cmd_int(t->c, "DEL", rtq_keys_worker(&t->k, "w-norec").s, NULL);
  /* A live worker next to it keeps its task. */
  free(tb_create(t, "t-ok", &o, &(size_t){0}));
  tb_heartbeat(t, "w-ok", 30000);
  assert_true(tb_claim_next(t, "w-ok", "q8", &cl));
  tb_claim_free(&cl);

  tb_broker_once(t, "--heartbeat-ttl", "30s");

  tb_assert_field(t, "t-norec", "status", "pending");
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "q8")), 1);
  assert_false(tb_zhas(t, rtq_keys_workers(&t->k), "w-norec"));
  assert_true(tb_file_contains(t->log, "its worker record is missing"));
  tb_assert_field(t, "t-ok", "status", "running");
  assert_true(tb_zhas(t, rtq_keys_workers(&t->k), "w-ok"));
  assert_int_equal(tb_llen(t, rtq_keys_processing(&t->k, "w-ok")), 1);
}

/* A worker that was only paused: recovered, then it wakes up and reports
 * its result. finish.lua fences the late write off; the redelivery wins. */
static void test_broker_recovery_late_result_is_rejected(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "q6"};
  free(tb_create(t, "t-late", &o, &(size_t){0}));
  tb_claim paused, fresh;
  assert_true(tb_claim_next(t, "w-paused", "q6", &paused));
  tb_age_worker(t, "w-paused", 5000);
  tb_broker_once(t, HB);
  assert_true(tb_claim_next(t, "w-fresh", "q6", &fresh));
  assert_int_equal(fresh.attempt, 2);

  char *tag = tb_finish(t, "w-paused", &paused, "completed", "");
  assert_string_equal(tag, "stale");
  free(tag);
  tb_assert_field(t, "t-late", "status", "running");
  tag = tb_finish(t, "w-fresh", &fresh, "completed", "");
  assert_string_equal(tag, "ok");
  free(tag);
  tb_assert_field(t, "t-late", "status", "completed");
  assert_int_equal(tb_stat(t, "q6", "completed"), 1);
  tb_claim_free(&paused);
  tb_claim_free(&fresh);
}

/* Cancelled while running, then its worker died: recovery must not bring
 * it back to life. */
static void test_broker_recovery_honours_cancel_requests(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "q7"};
  free(tb_create(t, "t-cancel", &o, &(size_t){0}));
  tb_claim cl;
  assert_true(tb_claim_next(t, "w-c", "q7", &cl));
  tb_claim_free(&cl);
  tb_cancel(t, "t-cancel", "requested");
  tb_age_worker(t, "w-c", 5000);

  tb_broker_once(t, HB);

  tb_assert_field(t, "t-cancel", "status", "cancelled");
  assert_int_equal(tb_exists(t, rtq_keys_cancel(&t->k, "t-cancel")), 0);
  /* Its envelope may sit on the queue; a worker's claim drops it. */
  if (tb_take(t, "w-2", "q7", &cl)) {
    rtq_argv a;
    tb_claim_argv(t, &a, "w-2", &cl);
    redisReply *r = tb_script_run(t, &a);
    assert_string_equal(r->element[0]->element[0]->str, "skip");
    freeReplyObject(r);
    tb_claim_free(&cl);
  }
  assert_int_equal(tb_stat(t, "broker", "cancelled_on_recovery"), 1);
}

/*
 * Four brokers that all ignore the lease sweep the same dead workers at
 * once: recover.lua's LREM gate must hand each envelope to exactly one.
 */
static void test_broker_recovery_is_exactly_once_with_racing_brokers(void **state) {
  tb *t = *state;
  enum { WORKERS = 3, PER_WORKER = 400, BROKERS = 4 };
  tb_task_opts o = {.queue = "qr"};
  char id[64], wid[32];
  for (int w = 0; w < WORKERS; w++) {
    snprintf(wid, sizeof wid, "w-race-%d", w);
    for (int i = 0; i < PER_WORKER; i++) {
      snprintf(id, sizeof id, "race-%d-%d", w, i);
      free(tb_create(t, id, &o, &(size_t){0}));
      tb_claim cl;
      assert_true(tb_claim_next(t, wid, "qr", &cl));
      tb_claim_free(&cl);
    }
    tb_age_worker(t, wid, 5000);
  }
  pid_t pids[BROKERS];
  for (int i = 0; i < BROKERS; i++)
    pids[i] = tb_broker_start(t, "--once", "--ignore-lease", HB);
  for (int i = 0; i < BROKERS; i++) {
    int status = 0;
    assert_int_equal(rtq_test_wait_exit(pids[i], 20000, &status), 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  const long long total = WORKERS * PER_WORKER;
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "qr")), total);
  assert_int_equal(tb_stat(t, "qr", "redelivered"), total);
  assert_int_equal(tb_stat(t, "broker", "recovered"), total);
  /* Every id is on the queue exactly once. */
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys_queue(&t->k, "qr").s, "0", "-1", NULL);
  char *seen = calloc((size_t)total, 1);
  assert_non_null(seen);
  for (size_t i = 0; i < r->elements; i++) {
    rtq_envelope e;
    rtq_envelope_init(&e);
    assert_int_equal(rtq_envelope_decode(r->element[i]->str, r->element[i]->len, 0, &e, NULL, 0), 0);
    int w = 0, n = 0;
    assert_int_equal(sscanf(e.id, "race-%d-%d", &w, &n), 2);
    assert_int_equal(seen[w * PER_WORKER + n], 0);
    seen[w * PER_WORKER + n] = 1;
    rtq_envelope_destroy(&e);
  }
  free(seen);
  freeReplyObject(r);
  for (int w = 0; w < WORKERS; w++) {
    snprintf(wid, sizeof wid, "w-race-%d", w);
    assert_int_equal(tb_llen(t, rtq_keys_processing(&t->k, wid)), 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker_recovery_requeues_with_next_attempt, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_fails_worker_lost_after_max_deliveries, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_requeues_envelope_never_marked_running, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_dead_letters_bad_envelopes, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_dead_letters_bad_delayed_envelope, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_drops_copy_of_a_delayed_task, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_bad_envelope_does_not_end_a_run_elsewhere, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_future_heartbeat_counts_as_dead,
                                      tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_worker_without_record_counts_as_dead,
                                      tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_leaves_live_workers_alone, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_late_result_is_rejected, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_honours_cancel_requests, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_recovery_is_exactly_once_with_racing_brokers, tb_setup,
                                      tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
