/*
 * test_broker2_sweeps.c - rtq-broker under protocol 2: delayed tasks of
 * each queue promoted on time (and a bad delayed entry dead-lettered),
 * prune drops the ids of expired tasks only, one leader among two brokers,
 * a sweep with nothing due makes no promote or backstop call and the next
 * one with work due does, a key of the wrong type stops neither the other queues nor the other
 * phases, a namespace of the other protocol is refused, the leader
 * runs the schedules through librtq under protocol 2, and the backstop
 * ends a real worker's run whose deadline was rewritten to junk. (The lease watch
 * and the throughput history: test_broker_lease_watch.c,
 * test_broker_throughput.c.)
 */
#include <strings.h>

#include "rtq/client.h"
#include "test_broker2_helpers.h"

/* Waits until queue's list holds an id; returns how late (Redis ms) that
 * was after due, asserting it was not early. */
static long long wait_promoted(tb *t, const char *queue, uint64_t due, int timeout_ms) {
  uint64_t until = rtq_test_now_ms() + (uint64_t)timeout_ms;
  for (int i = 0; rtq_test_now_ms() < until; i++) {
    if (tb2_len(t, rtq_keys2_queue(&K2, queue)) > 0) {
      uint64_t seen = tb_redis_now(t);
      assert_true(seen + 5 >= due); /* never early (5 ms of polling slack) */
      return (long long)seen - (long long)due;
    }
    rtq__test_poll_pause(i);
  }
  fail_msg("queue %s: nothing promoted within %d ms", queue, timeout_ms);
  return -1;
}

static uint64_t run_at(tb *t, const char *queue, const char *id) {
  char *v = tb2_field(t, queue, id, "ra");
  assert_non_null(v);
  uint64_t due = strtoull(v, NULL, 10);
  free(v);
  return due;
}

static void test_broker2_sweeps_promotes_each_queue_on_time(void **state) {
  tb *t = *state;
  pid_t pid = tb2_broker_start(t, "--id", "b-delay");
  RTQ_TEST_WAIT_FOR(tb_lease_is_v2(t, "b-delay"), 5000);
  tb2_create(t, "qd1", "soon-1", &(tb2_opts){.delay_ms = 700});
  tb2_create(t, "qd2", "later-1", &(tb2_opts){.delay_ms = 2300});
  uint64_t due1 = run_at(t, "qd1", "soon-1"), due2 = run_at(t, "qd2", "later-1");
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qd2")), 0);
  long long late1 = wait_promoted(t, "qd1", due1, 5000);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qd2")), 0);
  long long late2 = wait_promoted(t, "qd2", due2, 5000);
  printf("v2 delayed promotion: %lld ms and %lld ms after due (sweep 1000 ms)\n", late1, late2);
  assert_true(late1 <= 1000);
  assert_true(late2 <= 1000);
  assert_true(tb2_field_is(t, "qd1", "soon-1", "s", "pending"));
  RTQ_TEST_WAIT_FOR(tb2_stat(t, NULL, "promoted") == 2, 5000);
  tb_broker_stop(t, pid);
  assert_true(tb_lease_is_v2(t, NULL)); /* released on SIGTERM */
}

static void test_broker2_sweeps_promotes_backlog_and_dead_letters_bad_entries(void **state) {
  tb *t = *state;
  /* 250 due ids (three promote calls) and two entries that are no ids. */
  tb2_create_n(t, "qb", "b", 250, &(tb2_opts){.delay_ms = 1});
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys2_delayed(&K2, "qb").s, "1", "bad id", "2", "{x}", NULL);
  uint64_t until = tb_redis_now(t) + 20;
  while (tb_redis_now(t) < until) rtq__test_poll_pause(1);
  tb2_broker_once(t, "--log-level", "INFO");
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qb")), 250);
  assert_int_equal(rtq_test_cmd_int(t->c, "ZCARD", rtq_keys2_delayed(&K2, "qb").s, NULL), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_dead(&K2, "qb")), 2);
  assert_int_equal(tb2_stat(t, NULL, "dead_lettered"), 2);
  assert_int_equal(tb2_stat(t, NULL, "promoted"), 250);
}

/* max_task_history over the scripts' cap (the settings take up to
 * 100000000) is cut to it: a dead worker's task is still recovered, and a
 * live one's overdue run still timed out. */
static void test_broker2_sweeps_large_history_setting_still_recovers(void **state) {
  tb *t = *state;
  tb2_create(t, "qh", "h-dead", NULL);
  tb2_heartbeat(t, "w-dead", 600000, "qh:1");
  assert_int_equal(tb2_take_all(t, "w-dead", "qh"), 1);
  tb2_age_worker(t, "w-dead", 60000);
  tb2_create(t, "qh", "h-late", &(tb2_opts){.timeout_ms = 1});
  tb2_heartbeat(t, "w-live", 600000, "qh:1");
  assert_int_equal(tb2_take_all(t, "w-live", "qh"), 1);
  uint64_t until = tb_redis_now(t) + 20;
  while (tb_redis_now(t) < until) rtq__test_poll_pause(1);
  tb2_broker_once(t, "--max-task-history", "100000000", "--timeout-grace", "0");
  assert_true(tb2_field_is(t, "qh", "h-dead", "s", "pending"));
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qh")), 1);
  assert_true(tb2_field_is(t, "qh", "h-late", "s", "timeout"));
  assert_int_equal(tb2_len(t, rtq_keys2_done(&K2, "qh", RTQ_STATUS_TIMEOUT)), 1);
}

/* Lines of file path holding needle. */
static int lines_with(const char *path, const char *needle) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof line, f) != NULL)
    if (strstr(line, needle) != NULL) n++;
  fclose(f);
  return n;
}

/* A bad delayed entry whose dead-lettering fails (the dead list is a
 * string) stays due: the broker retries it once a sweep, not on every
 * promotion timer (10 ms), and logs why it failed; the timer still serves
 * the other queues. */
static void test_broker2_sweeps_undeadletterable_entry_does_not_spin(void **state) {
  tb *t = *state;
  rtq_test_cmd_int(t->c, "SADD", rtq_keys2_queues(&K2).s, "qs", NULL);
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys2_delayed(&K2, "qs").s, "1", "bad id", NULL);
  rtq_test_cmd_ok(t->c, "SET", rtq_keys2_dead(&K2, "qs").s, "not a list", NULL);
  /* Due between the first two sweeps: only the timer the first one aims
   * promotes it well before the second. */
  tb2_create(t, "qo", "o-1", &(tb2_opts){.delay_ms = 1000});
  uint64_t t0 = rtq_test_now_ms();
  pid_t pid = tb2_broker_start(t, "--sweep-interval", "2s", "--log-level", "INFO");
  long long late = wait_promoted(t, "qo", run_at(t, "qo", "o-1"), 5000);
  RTQ_TEST_WAIT_FOR(lines_with(t->log, "dead-lettering it\" queue=qs") >= 2, 10000);
  tb_broker_stop(t, pid);
  uint64_t ran = rtq_test_now_ms() - t0;
  int tries = lines_with(t->log, "dead-lettering it\" queue=qs");
  printf("bad delayed entry: %d dead-letter tries in %llu ms (sweep 2 s); another queue's task promoted %lld ms "
         "after due\n", tries, (unsigned long long)ran, late);
  /* One a sweep (and one at start-up); a timer aimed at it made ~100 a
   * second. */
  assert_true((uint64_t)tries <= ran / 2000 + 2);
  assert_true(late <= 500);
  assert_true(tb_file_contains(t->log, "dead-lettering a bad delayed entry failed"));
  assert_int_equal(rtq_test_cmd_int(t->c, "ZCARD", rtq_keys2_delayed(&K2, "qs").s, NULL), 1);
}

/* Script calls (EVALSHA/EVAL) whose first key is key, as SLOWLOG (at a
 * threshold of 0) logged them since its last reset. */
static int script_calls_on(tb *t, rtq_key2 key) {
  redisReply *r = rtq_test_command(t->c, "SLOWLOG", "GET", "-1", NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  int n = 0;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 4) continue;
    const redisReply *cmd = e->element[3];
    if (cmd->type != REDIS_REPLY_ARRAY || cmd->elements < 4) continue;
    bool script = strcasecmp(cmd->element[0]->str, "evalsha") == 0 ||
                  strcasecmp(cmd->element[0]->str, "eval") == 0;
    if (script && strcmp(cmd->element[3]->str, key.s) == 0) n++;
  }
  freeReplyObject(r);
  return n;
}

/* A sweep with nothing due runs no promote call (the delayed head is read
 * first) and no backstop call on an idle worker's empty list (its length
 * is read first); once a delayed task is due and a run is overdue, the
 * next sweep calls both and promotes and times out as before. */
static void test_broker2_sweeps_skip_idle_calls_until_work_is_due(void **state) {
  tb *t = *state;
  rtq_test_cmd_ok(t->c, "CONFIG", "SET", "slowlog-max-len", "100000", NULL);
  rtq_test_cmd_ok(t->c, "CONFIG", "SET", "slowlog-log-slower-than", "0", NULL);
  rtq_key2 delayed = rtq_keys2_delayed(&K2, "qi"), proc = rtq_keys2_processing(&K2, "qi", "w-idle");
  tb2_create(t, "qi", "i-later", &(tb2_opts){.delay_ms = 600000});
  tb2_heartbeat(t, "w-idle", 600000, "qi:1");
  rtq_test_cmd_ok(t->c, "SLOWLOG", "RESET", NULL);
  tb2_broker_once(t, "--timeout-grace", "0");
  assert_int_equal(script_calls_on(t, delayed), 0);
  assert_int_equal(script_calls_on(t, proc), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qi")), 0);
  assert_int_equal(tb2_stat(t, NULL, "sweeps"), 1);

  tb2_create(t, "qi", "i-late", &(tb2_opts){.timeout_ms = 1});
  assert_int_equal(tb2_take_all(t, "w-idle", "qi"), 1);
  rtq_test_cmd_int(t->c, "ZADD", delayed.s, "XX", "1", "i-later", NULL);
  uint64_t until = tb_redis_now(t) + 20;
  while (tb_redis_now(t) < until) rtq__test_poll_pause(1);
  rtq_test_cmd_ok(t->c, "SLOWLOG", "RESET", NULL);
  tb2_broker_once(t, "--timeout-grace", "0");
  assert_true(script_calls_on(t, delayed) >= 1);
  assert_true(script_calls_on(t, proc) >= 1);
  assert_true(tb2_field_is(t, "qi", "i-later", "s", "pending"));
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qi")), 1);
  assert_true(tb2_field_is(t, "qi", "i-late", "s", "timeout"));
  assert_int_equal(tb2_len(t, proc), 0);
  assert_int_equal(tb2_stat(t, NULL, "promoted"), 1);
  assert_int_equal(tb2_stat(t, NULL, "timeouts"), 1);
  rtq_test_cmd_ok(t->c, "CONFIG", "SET", "slowlog-log-slower-than", "10000", NULL);
  rtq_test_cmd_ok(t->c, "SLOWLOG", "RESET", NULL);
}

static int worker_setup(void **state) { return tb_need_worker() != 0 ? -1 : tb2_setup(state); }

/* The tasks the worker's record says it runs (its `busy`); -1 if none. */
static long long busy_of(tb *t, rtq_key2 rec) {
  char *v = rtq_test_cmd_str(t->c, "HGET", rec.s, "busy", NULL);
  long long n = v != NULL ? atoll(v) : -1;
  free(v);
  return n;
}

/* A real worker runs 30-second tasks (timeout 60 s) whose deadlines are
 * then rewritten to values that are not a time, or deleted: the broker's
 * backstop ends each `timeout` once, its worker stops the handlers (the
 * id on {ns}:cancel), and their late ends are stale. */
static void test_broker2_backstop_ends_a_run_whose_deadline_is_junk(void **state) {
  tb *t = *state;
  static const char *const junk[] = {"nan", "inf", "", "soon", NULL}; /* NULL: HDEL */
  enum { N = 5 };
  pid_t w = tb_start_worker(t, "worker-dl", "qdl", "2");
  char wid[TB_ID_MAX + 1];
  RTQ_TEST_WAIT_FOR(tb_worker_id(t, rtq_keys2_workers(&K2).s, w, wid), 10000);
  char args[32];
  tb2_opts o = {.name = "rtq.sleep", .args = args, .args_len = tb_sleep_args(args, 30.0), .timeout_ms = 60000};
  tb2_create_n(t, "qdl", "dl", N, &o);
  rtq_key2 proc = rtq_keys2_processing(&K2, "qdl", wid), rec = rtq_keys2_worker(&K2, wid);
  RTQ_TEST_WAIT_FOR(tb2_len(t, proc) == N && busy_of(t, rec) == N, 10000);
  for (int i = 0; i < N; i++) {
    char id[64];
    snprintf(id, sizeof id, "dl-%04d", i);
    RTQ_TEST_WAIT_FOR(tb2_field_is(t, "qdl", id, "s", "running"), 10000);
    const char *task = rtq_keys2_task(&K2, "qdl", id).s;
    if (junk[i] != NULL) rtq_test_cmd_int(t->c, "HSET", task, "dl", junk[i], NULL);
    else assert_int_equal(rtq_test_cmd_int(t->c, "HDEL", task, "dl", NULL), 1);
  }
  pid_t broker = tb2_broker_start(t, "--sweep-interval", "100ms");
  RTQ_TEST_WAIT_FOR(tb2_len(t, rtq_keys2_done(&K2, "qdl", RTQ_STATUS_TIMEOUT)) == N, 10000);
  /* The handlers stop long before their 30 s: the worker got the cancels. */
  RTQ_TEST_WAIT_FOR(busy_of(t, rec) == 0, 15000);
  tb_broker_stop(t, broker);
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 10000, NULL), 0);
  for (int i = 0; i < N; i++) {
    char id[64];
    snprintf(id, sizeof id, "dl-%04d", i);
    assert_true(tb2_field_is(t, "qdl", id, "s", "timeout"));
    assert_true(tb2_field_is(t, "qdl", id, "ec", "TIMEOUT"));
    assert_true(tb2_field_is(t, "qdl", id, "a", "1"));
  }
  assert_int_equal(tb2_len(t, proc), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_done(&K2, "qdl", RTQ_STATUS_TIMEOUT)), N);
  assert_int_equal(tb2_len(t, rtq_keys2_done(&K2, "qdl", RTQ_STATUS_COMPLETED)), 0);
  assert_int_equal(tb2_stat(t, "qdl", "timeout"), N);
  assert_int_equal(tb2_stat(t, "qdl", "completed"), 0);
  assert_int_equal(tb2_stat(t, NULL, "timeouts"), N);
}

/* done list `key`, oldest last, as ids; a hash for those with live[i]. */
static void fill_done(tb *t, const char *queue, rtq_status st, const char *prefix, int n,
                      const bool *live) {
  rtq_key2 done = rtq_keys2_done(&K2, queue, st);
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%04d", prefix, i);
    rtq_test_cmd_int(t->c, "LPUSH", done.s, id, NULL);
    if (live[i]) rtq_test_cmd_int(t->c, "HSET", rtq_keys2_task(&K2, queue, id).s, "s",
                                  rtq_status_name(st), NULL);
  }
}

static void test_broker2_sweeps_prune_drops_expired_ids_only(void **state) {
  tb *t = *state;
  rtq_test_cmd_int(t->c, "SADD", rtq_keys2_queues(&K2).s, "qp", "qr", NULL);
  /* qp completed, oldest first: 250 expired, one live, one expired. */
  bool live[252] = {false};
  live[250] = true;
  fill_done(t, "qp", RTQ_STATUS_COMPLETED, "c", 252, live);
  /* qr failed: two expired, then live. */
  bool live2[3] = {false, false, true};
  fill_done(t, "qr", RTQ_STATUS_FAILED, "f", 3, live2);
  /* qr timeout: all live. */
  bool live3[2] = {true, true};
  fill_done(t, "qr", RTQ_STATUS_TIMEOUT, "x", 2, live3);
  tb2_broker_once(t, "--cleanup-interval", "1");
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys2_done(&K2, "qp", RTQ_STATUS_COMPLETED).s,
                                   "0", "-1", NULL);
  assert_int_equal(r->elements, 2);
  assert_string_equal(r->element[0]->str, "c-0251"); /* behind a live task: kept */
  assert_string_equal(r->element[1]->str, "c-0250");
  freeReplyObject(r);
  assert_int_equal(tb2_len(t, rtq_keys2_done(&K2, "qr", RTQ_STATUS_FAILED)), 1);
  assert_int_equal(tb2_len(t, rtq_keys2_done(&K2, "qr", RTQ_STATUS_TIMEOUT)), 2);
  assert_int_equal(tb2_stat(t, NULL, "forgotten"), 252);
  /* Nothing pruned a live task. */
  assert_true(tb2_field_is(t, "qp", "c-0250", "s", "completed"));
}

static void test_broker2_sweeps_two_brokers_one_leader(void **state) {
  tb *t = *state;
  pid_t a = tb2_broker_start(t, "--id", "b-A", "--lease-ttl", "1500ms", "--sweep-interval", "100ms");
  RTQ_TEST_WAIT_FOR(tb_lease_is_v2(t, "b-A"), 5000);
  char log_a[512];
  snprintf(log_a, sizeof log_a, "%s", t->log);
  pid_t b = tb2_broker_start(t, "--id", "b-B", "--lease-ttl", "1500ms", "--sweep-interval", "100ms");
  RTQ_TEST_WAIT_FOR(tb_file_contains(t->log, "standing by"), 5000);
  /* The leader keeps sweeping; the standby does not take over. */
  long long sweeps = tb2_stat(t, NULL, "sweeps");
  uint64_t until = rtq_test_now_ms() + 1000;
  while (rtq_test_now_ms() < until) {
    assert_true(tb_lease_is_v2(t, "b-A"));
    rtq__test_poll_pause(20);
  }
  assert_true(tb2_stat(t, NULL, "sweeps") > sweeps);
  assert_false(tb_file_contains(t->log, "acquired the leader lease"));
  /* Work a leader does is done once: a dead worker's tasks. */
  tb2_heartbeat(t, "w-d", 600000, "q1:1");
  tb2_create_n(t, "q1", "d", 5, NULL);
  assert_int_equal(tb2_take_all(t, "w-d", "q1"), 5);
  tb2_age_worker(t, "w-d", 60000);
  RTQ_TEST_WAIT_FOR(tb2_len(t, rtq_keys2_queue(&K2, "q1")) == 5, 5000);
  assert_int_equal(tb2_stat(t, "q1", "redelivered"), 5);
  /* SIGTERM releases the lease; the standby takes it. */
  tb_broker_stop(t, a);
  assert_true(tb_file_contains(log_a, "released the leader lease"));
  RTQ_TEST_WAIT_FOR(tb_lease_is_v2(t, "b-B"), 3000);
  tb_broker_stop(t, b);
}

static void test_broker2_sweeps_wrong_type_key_stops_nothing_else(void **state) {
  tb *t = *state;
  /* qx's delayed set and its done list are strings; qy is sound. */
  rtq_test_cmd_int(t->c, "SADD", rtq_keys2_queues(&K2).s, "qx", NULL);
  rtq_test_cmd_ok(t->c, "SET", rtq_keys2_delayed(&K2, "qx").s, "not a zset", NULL);
  rtq_test_cmd_ok(t->c, "SET", rtq_keys2_done(&K2, "qx", RTQ_STATUS_COMPLETED).s, "x", NULL);
  tb2_create(t, "qy", "y-1", &(tb2_opts){.delay_ms = 1});
  tb2_heartbeat(t, "w-x", 600000, "qx:1,qy:1");
  tb2_create(t, "qy", "y-2", NULL);
  assert_int_equal(tb2_take_all(t, "w-x", "qy"), 1);
  rtq_test_cmd_ok(t->c, "SET", rtq_keys2_processing(&K2, "qx", "w-x").s, "not a list", NULL);
  tb2_age_worker(t, "w-x", 60000);
  uint64_t until = tb_redis_now(t) + 20;
  while (tb_redis_now(t) < until) rtq__test_poll_pause(1);
  pid_t pid = tb2_broker_start(t, "--sweep-interval", "100ms", "--cleanup-interval", "1");
  RTQ_TEST_WAIT_FOR(tb2_len(t, rtq_keys2_queue(&K2, "qy")) == 2, 5000);
  RTQ_TEST_WAIT_FOR(tb2_stat(t, NULL, "sweeps") >= 3, 5000);
  assert_true(tb2_field_is(t, "qy", "y-2", "s", "pending"));
  tb_broker_stop(t, pid);
  assert_true(tb_file_contains(t->log, "promoting a queue's delayed tasks failed"));
  assert_true(tb_file_contains(t->log, "not a list"));
}

/* Redis killed and restarted under a running broker: it logs the outage,
 * stays up, and sweeps again once Redis is back. */
static void test_broker2_sweeps_survive_a_redis_restart(void **state) {
  tb *t = *state;
  rtq_test_redis *r = rtq_test_redis_default();
  pid_t p = tb2_broker_start(t, "--id", "b-R", "--lease-ttl", "1500ms", "--sweep-interval", "100ms",
                             "--command-timeout", "500ms");
  RTQ_TEST_WAIT_FOR(tb_lease_is_v2(t, "b-R"), 5000);
  assert_int_equal(rtq_test_redis_kill9(r), 0);
  RTQ_TEST_WAIT_FOR(tb_file_contains(t->log, "redis unavailable"), 5000);
  assert_int_equal(rtq_test_kill(p, 0), 0); /* still running */
  assert_int_equal(rtq_test_redis_restart(r), 0);
  rtq_conn_drop(t->c);
  tb2_heartbeat(t, "w-r", 600000, "qs:1");
  tb2_create_n(t, "qs", "s", 3, NULL);
  assert_int_equal(tb2_take_all(t, "w-r", "qs"), 3);
  tb2_age_worker(t, "w-r", 60000);
  RTQ_TEST_WAIT_FOR(tb2_len(t, rtq_keys2_queue(&K2, "qs")) == 3, 10000);
  assert_true(tb_file_contains(t->log, "redis reachable again"));
  tb_broker_stop(t, p);
}

static rtq_client *client2(tb *t) {
  rtq_client_options o = {.redis_url = t->url, .ns = "rtq", .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&o, &c), 0);
  return c;
}

/* A schedule that is due gets its run enqueued as a protocol 2 task. */
static void test_broker2_sweeps_fires_due_schedules(void **state) {
  tb *t = *state;
  rtq_client *c = client2(t);
  rtq_schedule_options so = {.queue = "qsched"};
  assert_int_equal(rtq_schedule_add(c, "tick", "@every 1s", "rtq.noop", NULL, &so), 0);
  rtq_client_free(c);
  char *due = rtq_test_cmd_str(t->c, "ZSCORE", rtq_keys2_schedules_due(&K2).s, "tick", NULL);
  assert_non_null(due);
  uint64_t at = strtoull(due, NULL, 10);
  free(due);
  for (int i = 0; tb_redis_now(t) < at + 10 && i < 1000; i++) rtq__test_poll_pause(i);
  tb2_broker_once(t, "--log-level", "INFO");
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qsched")), 1);
  assert_int_equal(tb2_stat(t, NULL, "schedule_runs"), 1);
  char *id = rtq_test_cmd_str(t->c, "LINDEX", rtq_keys2_queue(&K2, "qsched").s, "0", NULL);
  assert_non_null(id);
  assert_true(tb2_field_is(t, "qsched", id, "n", "rtq.noop"));
  free(id);
}

static void test_broker2_sweeps_refuses_the_other_protocol(void **state) {
  tb *t = *state;
  /* Protocol 1's data in the namespace (its counters key, as
   * common/proto.c looks for it): the broker does not start. */
  rtq_test_cmd_int(t->c, "HSET", "rtq:stats", "default|enqueued", "1", NULL);
  pid_t pid = tb2_broker_start(t, "--once");
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 20000, &status), 0);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
  assert_true(tb_file_contains(t->log, "protocol"));
  assert_int_equal(rtq_test_cmd_int(t->c, "EXISTS", rtq_keys2_version(&K2).s, NULL), 0);
  /* Without protocol 1 data, the first sweep marks the namespace. */
  rtq_test_redis_flush();
  tb2_create(t, "q", "a-1", NULL);
  tb2_broker_once(t, "--log-level", "INFO");
  char *mark = rtq_test_cmd_str(t->c, "GET", rtq_keys2_version(&K2).s, NULL);
  assert_string_equal(mark, "2");
  free(mark);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_promotes_each_queue_on_time, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(
          test_broker2_sweeps_promotes_backlog_and_dead_letters_bad_entries, tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_large_history_setting_still_recovers, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_undeadletterable_entry_does_not_spin, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_skip_idle_calls_until_work_is_due, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_prune_drops_expired_ids_only, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_two_brokers_one_leader, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_wrong_type_key_stops_nothing_else,
                                      tb2_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_survive_a_redis_restart, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_fires_due_schedules, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_sweeps_refuses_the_other_protocol, tb2_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_backstop_ends_a_run_whose_deadline_is_junk, worker_setup,
                                      tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
