/*
 * test_broker2_audit.c - the broker's audit of processing lists
 * (broker/audit2.c): a dead worker's lists are recovered even when no
 * index leads to them.
 *
 *   unlisted     a real rtq-worker killed with SIGKILL mid-task, then its
 *                entry removed from {ns}:workers (ZREM), or the whole set
 *                deleted, or its entry and its record: rtq-broker still
 *                recovers its tasks, and another worker completes each
 *                exactly once (attempt 2).
 *   other queue  a dead worker whose record names another queue than the
 *                one its list is on: the walk reaps it, the audit finds
 *                the list.
 *   live         a live worker running long tasks while its entry is
 *                removed again and again: the audit suspects its list but
 *                leaves it alone (the heartbeat writes the entry back);
 *                every task completes at attempt 1.
 *   junk         keys that match the pattern but are no processing list
 *                (not a list, a name that does not parse) are skipped
 *                untouched, and an orphan next to them is still recovered.
 */
#include "test_broker2_helpers.h"

#define QUEUE "qaudit"
#define NTASKS 10

static int audit_setup(void **state) { return tb_need_worker() != 0 ? -1 : tb2_setup(state); }

/* The next broker's log file starts empty: every test of this program
 * numbers its brokers from 0 again, in the same server directory. */
static void fresh_log(tb *t) {
  char path[512];
  snprintf(path, sizeof path, "%s/broker-%d.log", rtq_test_redis_dir(rtq_test_redis_default()), t->nlog);
  unlink(path);
}

static bool worker_id_of(tb *t, pid_t pid, char out[TB_ID_MAX + 1]) {
  return tb_worker_id(t, rtq_keys2_workers(&K2).s, pid, out);
}

/* NTASKS tasks "<prefix>-<i>" of rtq.sleep for seconds. */
static void create_sleepers(tb *t, const char *prefix, double seconds) {
  char args[32];
  tb2_opts o = {.name = "rtq.sleep", .args = args, .args_len = tb_sleep_args(args, seconds)};
  tb2_create_n(t, QUEUE, prefix, NTASKS, &o);
}

/* Every task of prefix completed once, at attempt `attempt`: the done
 * list holds each id once. */
static void assert_completed_once(tb *t, const char *prefix, const char *attempt) {
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys2_done(&K2, QUEUE, RTQ_STATUS_COMPLETED).s, "0",
                                   "-1", NULL);
  for (int i = 0; i < NTASKS; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%04d", prefix, i);
    int seen = 0;
    for (size_t k = 0; k < r->elements; k++) seen += strcmp(r->element[k]->str, id) == 0;
    if (seen != 1) fail_msg("%s is %d times in the done list", id, seen);
    assert_true(tb2_field_is(t, QUEUE, id, "s", "completed"));
    char *a = tb2_field(t, QUEUE, id, "a");
    if (a == NULL || strcmp(a, attempt) != 0) fail_msg("%s: attempt %s, not %s", id, a ? a : "(none)", attempt);
    free(a);
  }
  freeReplyObject(r);
}

static int count_status(tb *t, const char *prefix, const char *status) {
  int n = 0;
  for (int i = 0; i < NTASKS; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%04d", prefix, i);
    n += tb2_field_is(t, QUEUE, id, "s", status);
  }
  return n;
}

static int count_completed(tb *t, const char *prefix) { return count_status(t, prefix, "completed"); }

/* Every task of prefix claimed and started by the worker whose list is
 * proc (a task only moved to the list, not yet claimed, would be
 * redelivered at its first attempt). */
static bool all_running(tb *t, const char *prefix, rtq_key2 proc) {
  return tb2_len(t, proc) == NTASKS && count_status(t, prefix, "running") == NTASKS;
}

typedef enum hide { HIDE_ENTRY, HIDE_SET, HIDE_ENTRY_AND_RECORD } hide;

/*
 * A worker runs NTASKS 2-second tasks and is killed with SIGKILL; then its
 * traces are removed as `how` says, before any broker runs, so the walk
 * over {ns}:workers can never lead to its list. A broker then starts (its
 * heartbeat TTL 1 s), and a second worker.
 */
static void run_unlisted(tb *t, hide how, const char *prefix) {
  pid_t a = tb_start_worker(t, "worker-killed", QUEUE, "2");
  char wid[TB_ID_MAX + 1];
  RTQ_TEST_WAIT_FOR(worker_id_of(t, a, wid), 10000);
  create_sleepers(t, prefix, 2.0);
  rtq_key2 proc = rtq_keys2_processing(&K2, QUEUE, wid);
  RTQ_TEST_WAIT_FOR(all_running(t, prefix, proc), 10000);
  assert_int_equal(rtq_test_kill(a, SIGKILL), 0);
  assert_int_equal(rtq_test_wait_exit(a, 5000, NULL), 0);
  if (how == HIDE_SET) {
    assert_int_equal(rtq_test_cmd_int(t->c, "DEL", rtq_keys2_workers(&K2).s, NULL), 1);
  } else {
    assert_int_equal(rtq_test_cmd_int(t->c, "ZREM", rtq_keys2_workers(&K2).s, wid, NULL), 1);
    if (how == HIDE_ENTRY_AND_RECORD)
      assert_int_equal(rtq_test_cmd_int(t->c, "DEL", rtq_keys2_worker(&K2, wid).s, NULL), 1);
  }
  assert_int_equal(tb2_len(t, proc), NTASKS); /* still running, by nobody */

  uint64_t from = rtq_test_now_ms();
  fresh_log(t);
  pid_t broker = tb2_broker_start(t, "--sweep-interval", "100ms", "--heartbeat-ttl", "1s", "--log-level", "DEBUG");
  pid_t b = tb_start_worker(t, "worker-next", QUEUE, "2");
  RTQ_TEST_WAIT_FOR(tb2_len(t, proc) == 0, 15000);
  uint64_t took = rtq_test_now_ms() - from;
  RTQ_TEST_WAIT_FOR(count_completed(t, prefix) == NTASKS, 20000);
  assert_completed_once(t, prefix, "2");
  assert_int_equal(tb2_stat(t, QUEUE, "redelivered"), NTASKS);
  assert_int_equal(tb2_stat(t, QUEUE, "completed"), NTASKS);
  tb_broker_stop(t, broker);
  assert_int_equal(rtq_test_terminate(b, SIGTERM, 10000, NULL), 0);
  assert_int_equal(tb2_stat(t, NULL, "orphans_recovered"), 1);
  assert_int_equal(tb2_stat(t, NULL, "recovered"), NTASKS);
  assert_int_equal(tb2_stat(t, NULL, "dead_workers"), 0); /* the walk never saw it */
  assert_true(tb_file_contains(t->log, "no index led to"));
  assert_true(tb_file_contains(t->log, wid));
  printf("audit: %d tasks of an unlisted dead worker recovered %llu ms after the broker started "
         "(heartbeat ttl 1000 ms)\n",
         NTASKS, (unsigned long long)took);
}

static void test_broker2_audit_entry_removed(void **state) { run_unlisted(*state, HIDE_ENTRY, "zrem"); }

static void test_broker2_audit_workers_set_deleted(void **state) { run_unlisted(*state, HIDE_SET, "del"); }

static void test_broker2_audit_entry_and_record_removed(void **state) {
  run_unlisted(*state, HIDE_ENTRY_AND_RECORD, "both");
}

/* A dead worker whose record names qa only, with a task taken on qb: the
 * walk recovers qa (nothing there) and reaps the worker, entry and record;
 * the audit finds qb's list. */
static void test_broker2_audit_list_on_a_queue_the_record_hides(void **state) {
  tb *t = *state;
  tb2_heartbeat(t, "w-liar", 600000, "qa:1");
  tb2_create(t, "qb", "hidden-1", NULL);
  assert_int_equal(tb2_take_all(t, "w-liar", "qb"), 1);
  tb2_age_worker(t, "w-liar", 60000);
  fresh_log(t);
  pid_t broker = tb2_broker_start(t, "--sweep-interval", "100ms", "--heartbeat-ttl", "1s");
  RTQ_TEST_WAIT_FOR(tb2_field_is(t, "qb", "hidden-1", "s", "pending"), 10000);
  tb_broker_stop(t, broker);
  assert_int_equal(tb2_len(t, rtq_keys2_processing(&K2, "qb", "w-liar")), 0);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qb")), 1);
  assert_int_equal(tb2_stat(t, NULL, "dead_workers"), 1);
  assert_int_equal(tb2_stat(t, NULL, "orphans_recovered"), 1);
  assert_int_equal(tb2_stat(t, "qb", "redelivered"), 1);
}

/* While the worker runs its tasks, its entry is removed (as a worker role
 * may) until the audit has seen its list as a suspect; the heartbeat
 * writes the entry back before the second look. */
static void test_broker2_audit_leaves_a_live_worker_alone(void **state) {
  tb *t = *state;
  fresh_log(t);
  pid_t broker = tb2_broker_start(t, "--sweep-interval", "100ms", "--heartbeat-ttl", "1s", "--log-level", "DEBUG");
  pid_t a = tb_start_worker(t, "worker-live", QUEUE, "2");
  char wid[TB_ID_MAX + 1];
  RTQ_TEST_WAIT_FOR(worker_id_of(t, a, wid), 10000);
  create_sleepers(t, "live", 3.0);
  rtq_key2 proc = rtq_keys2_processing(&K2, QUEUE, wid);
  RTQ_TEST_WAIT_FOR(all_running(t, "live", proc), 10000);
  /* Removed every 20 ms (the whole set every other time) until the audit
   * has looked at the list with no entry there: at most 5 s. */
  uint64_t until = rtq_test_now_ms() + 5000;
  bool suspected = false;
  for (int i = 0; !suspected && rtq_test_now_ms() < until; i++) {
    if (i % 2 == 0) rtq_test_cmd_int(t->c, "ZREM", rtq_keys2_workers(&K2).s, wid, NULL);
    else rtq_test_cmd_int(t->c, "DEL", rtq_keys2_workers(&K2).s, NULL);
    rtq__test_poll_pause(20);
    suspected = tb_file_contains(t->log, "looking again after the heartbeat TTL");
  }
  assert_true(suspected);
  RTQ_TEST_WAIT_FOR(count_completed(t, "live") == NTASKS, 20000);
  assert_completed_once(t, "live", "1");
  tb_broker_stop(t, broker);
  assert_int_equal(rtq_test_terminate(a, SIGTERM, 10000, NULL), 0);
  assert_int_equal(tb2_stat(t, NULL, "orphans_recovered"), 0);
  assert_int_equal(tb2_stat(t, NULL, "recovered"), 0);
  assert_int_equal(tb2_stat(t, QUEUE, "redelivered"), 0);
  if (tb_file_contains(t->log, "no index led to")) {
    tb_print_log(t->log);
    fail_msg("the audit recovered a live worker's list");
  }
}

/* Keys that match {rtq:*}:p:* but are none of ours, next to an orphan. */
static void test_broker2_audit_skips_junk_keys(void **state) {
  tb *t = *state;
  tb2_heartbeat(t, "w-gone", 600000, "qj:1");
  tb2_create(t, "qj", "orphan-1", NULL);
  assert_int_equal(tb2_take_all(t, "w-gone", "qj"), 1);
  rtq_test_cmd_int(t->c, "ZREM", rtq_keys2_workers(&K2).s, "w-gone", NULL);
  rtq_test_cmd_int(t->c, "DEL", rtq_keys2_worker(&K2, "w-gone").s, NULL);
  /* Not a list; lists whose names do not parse; a binary name. */
  rtq_test_cmd_ok(t->c, "SET", "{rtq:qj}:p:w-str", "x", NULL);
  rtq_test_cmd_int(t->c, "HSET", "{rtq:qj}:p:w-hash", "f", "v", NULL);
  rtq_test_cmd_int(t->c, "RPUSH", "{rtq:qj}:p:bad name", "orphan-1", NULL);
  rtq_test_cmd_int(t->c, "RPUSH", "{rtq:qj}:t:x}:p:w", "orphan-1", NULL);
  rtq_test_cmd_int(t->c, "RPUSH", "{rtq:}:p:w", "orphan-1", NULL);
  redisReply *r = rtq_test_command(t->c, "RPUSH", "{rtq:qj}:p:w\x01\xff", "orphan-1", NULL);
  freeReplyObject(r);
  fresh_log(t);
  pid_t broker = tb2_broker_start(t, "--sweep-interval", "100ms", "--heartbeat-ttl", "1s");
  RTQ_TEST_WAIT_FOR(tb2_field_is(t, "qj", "orphan-1", "s", "pending"), 10000);
  /* More walks go by: the junk is logged once and never touched. */
  RTQ_TEST_WAIT_FOR(tb2_stat(t, NULL, "sweeps") >= 5, 10000);
  tb_broker_stop(t, broker);
  assert_int_equal(tb2_stat(t, NULL, "orphans_recovered"), 1);
  assert_int_equal(tb2_len(t, rtq_keys2_queue(&K2, "qj")), 1);
  char *v = rtq_test_cmd_str(t->c, "GET", "{rtq:qj}:p:w-str", NULL);
  assert_string_equal(v, "x");
  free(v);
  assert_int_equal(rtq_test_cmd_int(t->c, "HLEN", "{rtq:qj}:p:w-hash", NULL), 1);
  assert_int_equal(rtq_test_cmd_int(t->c, "LLEN", "{rtq:qj}:p:bad name", NULL), 1);
  assert_int_equal(rtq_test_cmd_int(t->c, "LLEN", "{rtq:qj}:t:x}:p:w", NULL), 1);
  assert_int_equal(rtq_test_cmd_int(t->c, "LLEN", "{rtq:}:p:w", NULL), 1);
  assert_int_equal(rtq_test_cmd_int(t->c, "LLEN", "{rtq:qj}:p:w\x01\xff", NULL), 1);
  assert_true(tb_file_contains(t->log, "is none; skipping it"));
  /* Once: one such line however many walks passed. */
  FILE *f = fopen(t->log, "r");
  assert_non_null(f);
  char line[4096];
  int lines = 0;
  while (fgets(line, sizeof line, f) != NULL) lines += strstr(line, "is none; skipping it") != NULL;
  fclose(f);
  assert_int_equal(lines, 1);
  assert_false(tb_file_contains(t->log, "level=ERROR"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_broker2_audit_entry_removed, audit_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_audit_workers_set_deleted, audit_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_audit_entry_and_record_removed, audit_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_audit_list_on_a_queue_the_record_hides, audit_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_audit_leaves_a_live_worker_alone, audit_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_broker2_audit_skips_junk_keys, audit_setup, tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
