/*
 * test_broker_history.c - nothing grows without bound: the history cap
 * (with the trimmed tasks' keys deleted), index entries of expired tasks,
 * stale running entries, and a TTL on every terminal task however it ended.
 */
#include "test_broker_helpers.h"

/* Creates, claims and finishes task `id` as `status`. */
static void run_to_end(tb *t, const char *id, const char *queue, const char *status) {
  tb_task_opts o = {.queue = queue};
  free(tb_create(t, id, &o, &(size_t){0}));
  tb_claim cl;
  assert_true(tb_claim_next(t, "w-h", queue, &cl));
  assert_string_equal(cl.id, id);
  char *tag = tb_finish(t, "w-h", &cl, status, strcmp(status, "completed") == 0 ? "" : "E");
  assert_string_equal(tag, "ok");
  free(tag);
  tb_claim_free(&cl);
}

static void test_broker_history_is_capped_and_trimmed_tasks_deleted(void **state) {
  tb *t = *state;
  char id[32];
  for (int i = 0; i < 12; i++) {
    snprintf(id, sizeof id, "h-%02d", i);
    run_to_end(t, id, "qh", "completed");
  }
  assert_int_equal(tb_zcard(t, rtq_keys_history(&t->k)), 12);

  tb_broker_once(t, "--max-task-history", "5");

  assert_int_equal(tb_zcard(t, rtq_keys_history(&t->k)), 5);
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_COMPLETED)), 5);
  for (int i = 0; i < 12; i++) {
    snprintf(id, sizeof id, "h-%02d", i);
    bool kept = i >= 7; /* the newest five */
    assert_int_equal(tb_exists(t, rtq_keys_task(&t->k, id)), kept);
    assert_int_equal(tb_zhas(t, rtq_keys_history(&t->k), id), kept);
  }
  assert_int_equal(tb_stat(t, "broker", "trimmed"), 7);

  /* A running broker keeps it capped as more tasks end. */
  pid_t pid = tb_broker_start(t, "--max-task-history", "5", "--sweep-interval", "100ms");
  for (int i = 12; i < 40; i++) {
    snprintf(id, sizeof id, "h-%02d", i);
    run_to_end(t, id, "qh", i % 2 ? "completed" : "failed");
  }
  RTQ_TEST_WAIT_FOR(tb_zcard(t, rtq_keys_history(&t->k)) == 5, 3000);
  assert_true(tb_exists(t, rtq_keys_task(&t->k, "h-39")));
  assert_false(tb_exists(t, rtq_keys_task(&t->k, "h-34")));
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_COMPLETED)) +
                       tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_FAILED)),
                   5);
  tb_broker_stop(t, pid);
}

static int count_lines(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL) n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

/* At steady load every sweep trims; the log says so once (then at most
 * once a minute), not once per sweep. */
static void test_broker_history_cap_is_logged_once_a_minute(void **state) {
  tb *t = *state;
  pid_t pid = tb_broker_start(t, "--max-task-history", "2", "--sweep-interval", "100ms");
  char id[32];
  uint64_t t0 = rtq_test_now_ms();
  long long trimmed_before = 0;
  int i = 0;
  /* 3 s of tasks ending faster than the sweeps: about 30 sweeps that trim. */
  while (rtq_test_now_ms() - t0 < 3000 && i < 100000) {
    snprintf(id, sizeof id, "s-%05d", i++);
    run_to_end(t, id, "qs", "completed");
    if (i == 10) {
      RTQ_TEST_WAIT_FOR(tb_stat(t, "broker", "trimmed") > 0, 5000);
      trimmed_before = tb_stat(t, "broker", "trimmed");
    }
  }
  RTQ_TEST_WAIT_FOR(tb_zcard(t, rtq_keys_history(&t->k)) == 2, 5000);
  long long trimmed = tb_stat(t, "broker", "trimmed"), sweeps = tb_stat(t, "broker", "sweeps");
  tb_broker_stop(t, pid);
  int lines = count_lines(t->log, "msg=\"history");
  printf("history cap: %lld tasks trimmed in %lld sweeps; %d log line(s)\n", trimmed, sweeps, lines);
  assert_true(trimmed > trimmed_before + 10); /* trimming went on after the first line */
  assert_int_equal(count_lines(t->log, "history over max_task_history"), 1);
  assert_int_equal(lines, 1);
}

/* Expires a task hash now, as its TTL would. */
static void expire_now(tb *t, const char *id) {
  rtq_test_cmd_int(t->c, "PEXPIRE", rtq_keys_task(&t->k, id).s, "1", NULL);
  RTQ_TEST_WAIT_FOR(tb_exists(t, rtq_keys_task(&t->k, id)) == 0, 2000);
}

static void test_broker_history_cleans_index_entries_of_expired_tasks(void **state) {
  tb *t = *state;
  run_to_end(t, "e-1", "qe", "completed");
  run_to_end(t, "e-2", "qe", "failed");
  run_to_end(t, "e-3", "qe", "completed");
  tb_task_opts o = {.queue = "qe"};
  free(tb_create(t, "e-pending", &o, &(size_t){0}));
  expire_now(t, "e-1");
  expire_now(t, "e-2");
  /* Debris: a running entry whose hash was deleted by hand, and ids no key
   * can be built for. */
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys_status(&t->k, RTQ_STATUS_RUNNING).s, "1", "ghost", NULL);
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys_history(&t->k).s, "1", "bad id*", NULL);

  tb_broker_once(t, "--cleanup-interval", "3600");

  assert_int_equal(tb_zcard(t, rtq_keys_history(&t->k)), 1);
  assert_true(tb_zhas(t, rtq_keys_history(&t->k), "e-3"));
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_COMPLETED)), 1);
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_FAILED)), 0);
  assert_false(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_RUNNING), "ghost"));
  assert_true(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_PENDING), "e-pending"));
  assert_int_equal(tb_stat(t, "broker", "forgotten"), 2);
  assert_int_equal(tb_stat(t, "broker", "stale_index"), 2); /* ghost, "bad id*" */

  /* A running broker cleans again every cleanup_interval. */
  pid_t pid = tb_broker_start(t, "--cleanup-interval", "1", "--sweep-interval", "100ms");
  RTQ_TEST_WAIT_FOR(tb_stat(t, "broker", "sweeps") >= 2, 3000);
  expire_now(t, "e-3");
  RTQ_TEST_WAIT_FOR(tb_zcard(t, rtq_keys_history(&t->k)) == 0, 3000);
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_COMPLETED)), 0);
  tb_broker_stop(t, pid);
}

/* trim.lua on what the history may hold besides plain finished tasks: an
 * id no key can be built for, a task pending again under the same id
 * (kept, only its history entry goes), and a task whose hash expired (its
 * status-index entry goes too). */
static void test_broker_history_trim_keeps_live_tasks_and_drops_debris(void **state) {
  tb *t = *state;
  run_to_end(t, "t-1", "qt", "completed");
  run_to_end(t, "t-2", "qt", "failed");
  run_to_end(t, "t-3", "qt", "completed");
  expire_now(t, "t-1");
  free(tb_create(t, "t-p", &(tb_task_opts){.queue = "qt-p"}, &(size_t){0}));
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys_history(&t->k).s, "1", "t-p", NULL);
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys_history(&t->k).s, "0", "bad id*", NULL);
  run_to_end(t, "t-4", "qt", "completed");
  run_to_end(t, "t-5", "qt", "failed");
  assert_int_equal(tb_zcard(t, rtq_keys_history(&t->k)), 7);

  tb_broker_once(t, "--max-task-history", "2");

  assert_int_equal(tb_stat(t, "broker", "trimmed"), 5);
  assert_int_equal(tb_zcard(t, rtq_keys_history(&t->k)), 2);
  assert_true(tb_zhas(t, rtq_keys_history(&t->k), "t-4"));
  assert_true(tb_zhas(t, rtq_keys_history(&t->k), "t-5"));
  tb_assert_field(t, "t-p", "status", "pending");
  assert_true(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_PENDING), "t-p"));
  for (int i = 1; i <= 3; i++) {
    char id[8];
    snprintf(id, sizeof id, "t-%d", i);
    assert_false(tb_exists(t, rtq_keys_task(&t->k, id)));
  }
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_COMPLETED)), 1);
  assert_true(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_COMPLETED), "t-4"));
  assert_int_equal(tb_zcard(t, rtq_keys_status(&t->k, RTQ_STATUS_FAILED)), 1);
  assert_true(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_FAILED), "t-5"));

  /* Settling (most = 0) only looks: it removes nothing, even over the cap,
   * and reports the rounds it made within its budget. */
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call_trim(&a, &t->k, false, 1, 0, 200), 0);
  redisReply *r = tb_script_run(t, &a); /* destroys a */
  assert_true(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
  assert_int_equal(r->element[0]->integer, 0);
  assert_true(r->element[2]->integer >= 32);
  freeReplyObject(r);
  assert_int_equal(tb_zcard(t, rtq_keys_history(&t->k)), 2);
  /* A bad count is refused before anything is touched. */
  rtq_argv_init(&a);
  assert_int_equal(rtq__call_trim(&a, &t->k, false, 1, 1001, 200), 0);
  r = NULL;
  assert_int_equal(rtq_script_run(t->c, &a, &r), RTQ_EREDIS);
  rtq_argv_destroy(&a);
  assert_true(r != NULL && r->type == REDIS_REPLY_ERROR);
  freeReplyObject(r);
  assert_int_equal(tb_zcard(t, rtq_keys_history(&t->k)), 2);
}

/* An envelope whose format version is from the future; its id is
 * readable, so the task it names is failed when it is dead-lettered. */
static void push_future_envelope(tb *t, const char *id, const char *wid) {
  size_t len = 0;
  char *env = tb_create(t, id, &(tb_task_opts){.queue = "qx"}, &len);
  tb_claim cl;
  assert_true(tb_claim_next(t, wid, "qx", &cl));
  tb_claim_free(&cl);
  /* Replace the processing entry with the same bytes, v = 9: the encoder
   * writes "v" first, as fixmap key "\xa1v" then the positive fixint. */
  char *marker = memmem(env, len, "\xa1v\x01", 3);
  assert_non_null(marker);
  rtq_key proc = rtq_keys_processing(&t->k, wid);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LREM");
  rtq__argv_add_key(&a, proc);
  rtq_argv_add_str(&a, "0");
  rtq_argv_add(&a, env, len);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  marker[2] = 9;
  rtq_argv_reset(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key(&a, proc);
  rtq_argv_add(&a, env, len);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  rtq_argv_destroy(&a);
  free(env);
}

static void test_broker_history_every_terminal_task_has_a_ttl(void **state) {
  tb *t = *state;
  run_to_end(t, "x-completed", "qx", "completed");
  run_to_end(t, "x-failed", "qx", "failed");
  free(tb_create(t, "x-cancelled", &(tb_task_opts){.queue = "qx-c"}, &(size_t){0}));
  tb_cancel(t, "x-cancelled", "cancelled");
  /* Ended by the broker: WORKER_LOST, timeout, and a dead-lettered envelope. */
  free(tb_create(t, "x-lost", &(tb_task_opts){.queue = "qx"}, &(size_t){0}));
  tb_claim cl;
  assert_true(tb_claim_next(t, "w-lost", "qx", &cl));
  tb_claim_free(&cl);
  free(tb_create(t, "x-timeout", &(tb_task_opts){.queue = "qx", .timeout_ms = 1}, &(size_t){0}));
  assert_true(tb_claim_next(t, "w-gone", "qx", &cl));
  tb_claim_free(&cl);
  push_future_envelope(t, "x-dead", "w-dead");
  tb_age_worker(t, "w-lost", 60000);
  tb_age_worker(t, "w-dead", 60000);

  tb_broker_once(t, "--max-deliveries", "1", "--timeout-grace", "0");

  const char *ids[] = {"x-completed", "x-failed", "x-cancelled", "x-lost", "x-timeout", "x-dead"};
  const char *want[] = {"completed", "failed", "cancelled", "failed", "timeout", "failed"};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    tb_assert_field(t, ids[i], "status", want[i]);
    long long ttl = rtq_test_cmd_int(t->c, "TTL", rtq_keys_task(&t->k, ids[i]).s, NULL);
    if (!(ttl > 0 && ttl <= 86400)) fail_msg("%s: TTL %lld", ids[i], ttl);
  }
  tb_assert_field(t, "x-lost", "error_code", "WORKER_LOST");
  tb_assert_field(t, "x-dead", "error_code", "UNSUPPORTED_VERSION");
  assert_true(tb_dead_has(t, "UNSUPPORTED_VERSION"));
}

/* With history off, a task the broker ends lives only long enough for a
 * waiter to read it, and is not indexed. */
static void test_broker_history_off_keeps_terminal_tasks_briefly(void **state) {
  tb *t = *state;
  free(tb_create(t, "n-lost", &(tb_task_opts){.queue = "qn"}, &(size_t){0}));
  tb_claim cl;
  assert_true(tb_claim_next(t, "w-n", "qn", &cl));
  tb_claim_free(&cl);
  tb_age_worker(t, "w-n", 60000);

  tb_broker_once(t, "--max-deliveries", "1", "--no-history");

  tb_assert_field(t, "n-lost", "status", "failed");
  long long ttl = rtq_test_cmd_int(t->c, "TTL", rtq_keys_task(&t->k, "n-lost").s, NULL);
  assert_true(ttl > 0 && ttl <= 60);
  assert_false(tb_zhas(t, rtq_keys_history(&t->k), "n-lost"));
  assert_false(tb_zhas(t, rtq_keys_status(&t->k, RTQ_STATUS_FAILED), "n-lost"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker_history_cap_is_logged_once_a_minute, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_history_is_capped_and_trimmed_tasks_deleted, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_history_cleans_index_entries_of_expired_tasks, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_history_trim_keeps_live_tasks_and_drops_debris,
                                      tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_history_every_terminal_task_has_a_ttl, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker_history_off_keeps_terminal_tasks_briefly, tb_setup,
                                      tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
