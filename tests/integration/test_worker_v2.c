/*
 * test_worker_v2.c - rtq-worker under protocol 2 (--protocol 2), against
 * the v2 keys and scripts: a claim of 64 tasks in one take call, bad and
 * missing task hashes dead-lettered while the good tasks run, a queue at
 * its rate limit left alone (Redis commands counted while the worker sits
 * at the limit), a running task cancelled within the usual bound, a
 * graceful shutdown handing its running task back, names without a
 * handler (handback and UNKNOWN_TASK), and the refusal to start on a
 * namespace holding protocol-1 data.
 *
 * Tasks are created with the create script's call builder (calls2.h),
 * as a v2 producer does.
 */
#include "test_worker_util.h"

#include "calls2.h"
#include "clock.h"
#include "keys2.h"
#include "scripts2.h"

static rtq_keys2 k2;
static rtq_conn *rc_;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  assert_int_equal(rtq_keys2_init(&k2, "rtq"), 0);
  rc_ = rtq_test_conn();
  wk.pid = -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (wk.pid > 0) assert_int_equal(tw_stop(&wk, 15000), 0);
  rtq_conn_free(rc_);
  return 0;
}

/* Creates n tasks of queue Q named name with args (JSON, or NULL) and
 * timeout (0: default); ids[i] receive their ids. */
static void create(const char *queue, const char *name, const char *json, uint64_t timeout_ms, int n,
                   char ids[][RTQ_ID2_LEN + 1]) {
  char *args = NULL;
  size_t len = 0;
  if (json != NULL) assert_int_equal(rtq_json_to_msgpack(json, &args, &len, NULL, 0), 0);
  rtq_key2 qs = rtq_keys2_queues(&k2);
  rtq_test_cmd_int(rc_, "SADD", qs.s, queue, NULL);
  int slot = rtq_keys2_slot(&k2, queue);
  for (int done = 0; done < n;) {
    rtq__create2_task t[RTQ__V2_MAX_TASKS];
    int m = n - done < RTQ__V2_MAX_TASKS ? n - done : RTQ__V2_MAX_TASKS;
    for (int i = 0; i < m; i++) {
      assert_int_equal(rtq_id2_new(ids[done + i], slot), 0);
      t[i] = (rtq__create2_task){.id = ids[done + i], .name = name, .args = args, .args_len = len,
                                 .timeout_ms = timeout_ms};
    }
    rtq_argv a;
    rtq_argv_init(&a);
    assert_int_equal(rtq__call2_create(&a, &k2, false, queue, t, m), 0);
    redisReply *r = NULL;
    assert_int_equal(rtq_script2_run(rc_, &a, &r), 0);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, (size_t)m + 1); /* the call's time, then one per task */
    freeReplyObject(r);
    rtq_argv_destroy(&a);
    done += m;
  }
  free(args);
}

static char *field(const char *queue, const char *id, const char *f) {
  rtq_key2 k = rtq_keys2_task(&k2, queue, id);
  return rtq_test_cmd_str(rc_, "HGET", k.s, f, NULL);
}

static bool field_is(const char *queue, const char *id, const char *f, const char *want) {
  char *v = field(queue, id, f);
  bool ok = v != NULL && strcmp(v, want) == 0;
  free(v);
  return ok;
}

static long long field_ll(const char *queue, const char *id, const char *f) {
  char *v = field(queue, id, f);
  long long n = v != NULL ? strtoll(v, NULL, 10) : -1;
  free(v);
  return n;
}

static int count_status(const char *queue, char ids[][RTQ_ID2_LEN + 1], int n, const char *status) {
  int c = 0;
  for (int i = 0; i < n; i++) c += field_is(queue, ids[i], "s", status);
  return c;
}

/* rtq-worker --protocol 2 --demo-handlers plus extra (NULL-terminated). */
static void start(const char *const *extra) {
  const char *argv[40] = {"--protocol", "2"};
  int n = 2;
  for (int i = 0; extra != NULL && extra[i] != NULL && n < 38; i++) argv[n++] = extra[i];
  argv[n] = NULL;
  tw_start_v(&wk, rtq_test_redis_url(), argv);
}

/* Commands run since the last CONFIG RESETSTAT, a script's own calls
 * included (INFO commandstats counts those too), less the INFO that
 * reads it. */
static long long commands_run(void) {
  char *info = rtq_test_cmd_str(rc_, "INFO", "commandstats", NULL);
  long long total = -1;
  for (const char *p = info; p != NULL && (p = strstr(p, "cmdstat_")) != NULL; p++) {
    const char *c = strstr(p, "calls=");
    if (c != NULL) total += strtoll(c + 6, NULL, 10);
  }
  free(info);
  return total;
}

static long long calls_of(const char *cmd) {
  char *info = rtq_test_cmd_str(rc_, "INFO", "commandstats", NULL);
  char want[64];
  snprintf(want, sizeof want, "cmdstat_%s:calls=", cmd);
  const char *p = info != NULL ? strstr(info, want) : NULL;
  long long n = p != NULL ? strtoll(p + strlen(want), NULL, 10) : 0;
  free(info);
  return n;
}

static void test_worker_v2_claims_64_in_one_take(void **state) {
  (void)state;
  enum { N = 130 };
  static char ids[N][RTQ_ID2_LEN + 1];
  create("default", "rtq.noop", NULL, 0, N, ids);
  const char *extra[] = {"--concurrency", "64", "--claim-batch", "64", NULL};
  start(extra);
  RTQ_TEST_WAIT_FOR(count_status("default", ids, N, "completed") == N, 20000);
  /* Every task a take call claims gets the call's Redis time as its
   * started_at (b): the largest group of equal b is one call's claims. */
  long long b[N];
  for (int i = 0; i < N; i++) b[i] = field_ll("default", ids[i], "b");
  int most = 0;
  for (int i = 0; i < N; i++) {
    int same = 0;
    for (int j = 0; j < N; j++) same += b[j] == b[i];
    if (same > most) most = same;
  }
  printf("  largest claim: %d tasks in one call\n", most);
  assert_int_equal(most, 64);
  /* The run-time histogram of the finish calls counts every run. */
  rtq_key2 rt = rtq_keys2_runtime(&k2, "default");
  char *count = rtq_test_cmd_str(rc_, "HGET", rt.s, "count", NULL);
  assert_non_null(count);
  assert_int_equal(strtoll(count, NULL, 10), N);
  free(count);
  /* A protocol-2 reader (librtq) sees the same runs, all in a bucket. */
  rtq_client_options co;
  memset(&co, 0, sizeof co);
  co.redis_url = rtq_test_redis_url();
  co.protocol = 2;
  rtq_client *cl = NULL;
  assert_int_equal(rtq_client_new(&co, &cl), 0);
  const char *q[] = {"default"};
  rtq_run_times *rt2 = NULL;
  assert_int_equal(rtq_get_run_times(cl, q, 1, &rt2), 0);
  assert_int_equal(rt2->count, 1);
  assert_int_equal(rt2->queues[0].total, N);
  rtq_run_times_free(rt2);
  rtq_client_free(cl);
  rtq_key2 proc = rtq_keys2_processing(&k2, "default", wk.id);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 0);
}

static bool dead_has(const char *code) {
  rtq_key2 dead = rtq_keys2_dead(&k2, "default");
  redisReply *r = rtq_test_command(rc_, "LRANGE", dead.s, "0", "-1", NULL);
  bool found = false;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++)
    found = memmem(r->element[i]->str, r->element[i]->len, code, strlen(code)) != NULL;
  freeReplyObject(r);
  return found;
}

static void test_worker_v2_bad_and_missing_dead_lettered(void **state) {
  (void)state;
  char good[6][RTQ_ID2_LEN + 1];
  create("default", "rtq.echo", "{\"x\":1}", 0, 3, good);
  rtq_key2 q = rtq_keys2_queue(&k2, "default");
  /* An id without a hash, a hash whose name does not validate, an entry
   * that is not an id: in between good tasks. */
  rtq_test_cmd_int(rc_, "LPUSH", q.s, "NOHASH1", NULL);
  rtq_key2 bad = rtq_keys2_task(&k2, "default", "BADREC1");
  rtq_test_cmd_int(rc_, "HSET", bad.s, "s", "pending", "n", "not a name!", NULL);
  rtq_test_cmd_int(rc_, "LPUSH", q.s, "BADREC1", NULL);
  rtq_test_cmd_int(rc_, "LPUSH", q.s, "not an id!", NULL);
  create("default", "rtq.echo", "{\"x\":2}", 0, 3, good + 3);
  start(NULL);
  RTQ_TEST_WAIT_FOR(count_status("default", good, 6, "completed") == 6, 10000);
  rtq_key2 dead = rtq_keys2_dead(&k2, "default");
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "LLEN", dead.s, NULL) == 3, 5000);
  assert_true(dead_has("NO_TASK_RECORD"));
  assert_true(dead_has("BAD_TASK_RECORD"));
  assert_true(dead_has("BAD_ID"));
  rtq_key2 proc = rtq_keys2_processing(&k2, "default", wk.id);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", q.s, NULL), 0);
  char *r = field("default", good[5], "r");
  assert_non_null(r); /* echo's result */
  free(r);
}

/* Entries no id can be (empty, holding a NUL) pushed while the worker
 * waits in BLMOVE: dead-lettered as they are, and the worker goes on
 * claiming (it used to re-read its processing list without end). */
static void test_worker_v2_empty_and_nul_entries_dead_lettered(void **state) {
  (void)state;
  start(NULL);
  rtq_key2 q = rtq_keys2_queue(&k2, "default");
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key2(&a, q);
  rtq_argv_add(&a, "", 0);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key2(&a, q);
  rtq_argv_add(&a, "ab\0cd", 5);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
  char good[1][RTQ_ID2_LEN + 1];
  create("default", "rtq.echo", "{\"x\":3}", 0, 1, good);
  RTQ_TEST_WAIT_FOR(count_status("default", good, 1, "completed") == 1, 10000);
  rtq_key2 dead = rtq_keys2_dead(&k2, "default");
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "LLEN", dead.s, NULL) == 2, 5000);
  assert_true(dead_has("BAD_ID"));
  rtq_key2 proc = rtq_keys2_processing(&k2, "default", wk.id);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL) == 0, 5000);
}

static void test_worker_v2_limited_queue_backs_off(void **state) {
  (void)state;
  enum { N = 8 };
  char ids[N][RTQ_ID2_LEN + 1];
  /* One task a second, no burst. */
  rtq_key2 lim = rtq_keys2_limit(&k2, "default");
  rtq_test_cmd_int(rc_, "HSET", lim.s, "rate", "1", "burst", "1", NULL);
  create("default", "rtq.noop", NULL, 0, N, ids);
  start(NULL);
  RTQ_TEST_WAIT_FOR(count_status("default", ids, N, "completed") >= 1, 10000);
  /* The worker now sits at its limit: count what it sends for 2 s (the
   * window is the measurement, not a wait for a condition). */
  int before = count_status("default", ids, N, "completed");
  rtq_test_cmd_ok(rc_, "CONFIG", "RESETSTAT", NULL);
  uint64_t t0 = rtq__mono_ms();
  while (rtq__mono_ms() < t0 + 2000) usleep(20000);
  /* What the worker sent itself: its script calls and the commands no
   * script sends (a script's inner calls are counted apart). */
  long long scripts = calls_of("evalsha") + calls_of("eval");
  long long sent = scripts + calls_of("blmove") + calls_of("smembers") + calls_of("client") + calls_of("hget");
  long long total = commands_run();
  int after = count_status("default", ids, N, "completed");
  printf("  at its limit: the worker sent %lld commands in 2 s (%lld script calls); Redis ran %lld with the "
         "scripts' own; %d tasks done meanwhile\n",
         sent, scripts, total, after - before);
  /* Polling take on every 50 ms tick alone would be 40 script calls;
   * every loop iteration, thousands. A worker that waits out wait_ms sends
   * a take per allowed task, its finish, and SMEMBERS every 500 ms. */
  assert_true(sent <= 15);
  assert_true(scripts <= 8);
  /* The limit holds, and lets the tasks through at its rate. */
  assert_true(after - before >= 1 && after - before <= 3);
  RTQ_TEST_WAIT_FOR(count_status("default", ids, N, "completed") == N, 30000);
}

static void test_worker_v2_cancel_running_within_bound(void **state) {
  (void)state;
  start(NULL);
  for (int round = 0; round < 3; round++) {
    char id[1][RTQ_ID2_LEN + 1];
    create("default", "rtq.sleep", "{\"seconds\":30,\"steps\":30}", 0, 1, id);
    RTQ_TEST_WAIT_FOR(field_is("default", id[0], "s", "running"), 5000);
    rtq_argv a;
    rtq_argv_init(&a);
    rtq__keep2 keep = {.result_ttl_s = 86400, .history = true, .cap = 10000};
    assert_int_equal(rtq__call2_cancel(&a, &k2, false, "default", id[0], &keep), 0);
    redisReply *r = NULL;
    assert_int_equal(rtq_script2_run(rc_, &a, &r), 0);
    freeReplyObject(r);
    rtq_argv_destroy(&a);
    RTQ_TEST_WAIT_FOR(field_is("default", id[0], "s", "cancelled"), 5000);
    long long ms = field_ll("default", id[0], "e") - field_ll("default", id[0], "cr");
    printf("  cancel -> cancelled: %lld ms\n", ms);
    assert_true(field_is("default", id[0], "ec", "CANCELLED"));
    /* The handler sleeps in 1 s steps; the bound leaves room for a busy
     * machine (the latency is a figure, WORKER.md). */
    assert_true(ms >= 0 && ms <= 500);
  }
}

static void test_worker_v2_shutdown_requeues(void **state) {
  (void)state;
  const char *extra[] = {"--shutdown-grace", "300ms", NULL};
  start(extra);
  char id[1][RTQ_ID2_LEN + 1];
  create("default", "rtq.sleep", "{\"seconds\":30,\"steps\":30}", 0, 1, id);
  RTQ_TEST_WAIT_FOR(field_is("default", id[0], "s", "running"), 5000);
  char wid[160];
  snprintf(wid, sizeof wid, "%s", wk.id);
  assert_int_equal(tw_stop(&wk, 15000), 0);
  assert_true(field_is("default", id[0], "s", "pending"));
  rtq_key2 q = rtq_keys2_queue(&k2, "default"), proc = rtq_keys2_processing(&k2, "default", wid);
  char *head = rtq_test_cmd_str(rc_, "LINDEX", q.s, "-1", NULL);
  assert_non_null(head);
  assert_string_equal(head, id[0]); /* at the front: taken next */
  free(head);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 0);
  rtq_key2 rec = rtq_keys2_worker(&k2, wid), ws = rtq_keys2_workers(&k2);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", rec.s, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", ws.s, NULL), 0);
  /* The next worker runs it. */
  start(extra);
  RTQ_TEST_WAIT_FOR(field_is("default", id[0], "s", "running"), 5000);
}

static void test_worker_v2_unknown_name(void **state) {
  (void)state;
  char fail[1][RTQ_ID2_LEN + 1], back[1][RTQ_ID2_LEN + 1];
  create("default", "nobody.here", NULL, 0, 1, fail);
  start(NULL);
  RTQ_TEST_WAIT_FOR(field_is("default", fail[0], "s", "failed"), 5000);
  assert_true(field_is("default", fail[0], "ec", "UNKNOWN_TASK"));
  assert_int_equal(tw_stop(&wk, 15000), 0);
  const char *extra[] = {"--unknown-task", "requeue", NULL};
  start(extra);
  create("default", "nobody.here", NULL, 0, 1, back);
  RTQ_TEST_WAIT_FOR(field_ll("default", back[0], "hb") == 1, 5000);
  assert_true(field_is("default", back[0], "s", "pending"));
  rtq_key2 d = rtq_keys2_delayed(&k2, "default");
  char *due = rtq_test_cmd_str(rc_, "ZSCORE", d.s, back[0], NULL);
  assert_non_null(due); /* handed back: due after the delay */
  free(due);
}

static void test_worker_v2_paused_queue_left_alone(void **state) {
  (void)state;
  char a[12][RTQ_ID2_LEN + 1], b[4][RTQ_ID2_LEN + 1];
  rtq_key2 paused = rtq_keys2_paused(&k2);
  rtq_test_cmd_int(rc_, "SADD", paused.s, "b", NULL);
  create("a", "rtq.noop", NULL, 0, 12, a);
  create("b", "rtq.noop", NULL, 0, 4, b);
  const char *extra[] = {"--queue", "a:3", "--queue", "b:1", NULL};
  start(extra);
  RTQ_TEST_WAIT_FOR(count_status("a", a, 12, "completed") == 12, 10000);
  /* Two reads of the paused set later, b's tasks are still queued. */
  uint64_t t0 = rtq__mono_ms();
  while (rtq__mono_ms() < t0 + 1000) usleep(20000);
  rtq_key2 qb = rtq_keys2_queue(&k2, "b");
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", qb.s, NULL), 4);
  assert_int_equal(count_status("b", b, 4, "pending"), 4);
  rtq_test_cmd_int(rc_, "SREM", paused.s, "b", NULL);
  RTQ_TEST_WAIT_FOR(count_status("b", b, 4, "completed") == 4, 5000);
}

/* After a connection loss the worker reads its processing lists: an id
 * whose claim ran unheard (running under it) runs with its attempt; an id
 * moved but never claimed is claimed and runs. */
static void test_worker_v2_adopts_after_connection_loss(void **state) {
  (void)state;
  start(NULL);
  rtq_key2 proc = rtq_keys2_processing(&k2, "default", wk.id);
  rtq_key2 t1 = rtq_keys2_task(&k2, "default", "ADOPT1"), t2 = rtq_keys2_task(&k2, "default", "ADOPT2");
  rtq_test_cmd_int(rc_, "HSET", t1.s, "s", "running", "n", "rtq.noop", "w", wk.id, "a", "2", "c", "1", NULL);
  rtq_test_cmd_int(rc_, "HSET", t2.s, "s", "pending", "n", "rtq.noop", "c", "1", NULL);
  /* ADOPT3 runs rtq.echo with args of 150 bytes, which the task hash holds
   * in 64-byte chunks x, x2, x3: the echoed result shows them joined. */
  rtq_key2 t3 = rtq_keys2_task(&k2, "default", "ADOPT3");
  /* msgpack {"t": 140 a's}: fixmap 1, fixstr "t", str8 of 140. */
  char args[145] = {'\x81', '\xa1', 't', '\xd9', (char)140};
  memset(args + 5, 'a', 140);
  size_t len = sizeof args;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HSET");
  rtq_argv_add_str(&a, t3.s);
  const char *fv[] = {"s", "running", "n", "rtq.echo", "w", wk.id, "a", "1", "c", "1"};
  for (size_t i = 0; i < sizeof fv / sizeof fv[0]; i++) rtq_argv_add_str(&a, fv[i]);
  const char *chunk[] = {"x", "x2", "x3"};
  for (size_t i = 0; i < 3; i++) {
    rtq_argv_add_str(&a, chunk[i]);
    size_t at = 64 * i, n = len - at < 64 ? len - at : 64;
    rtq_argv_add(&a, args + at, n);
  }
  redisReply *hr = NULL;
  assert_int_equal(rtq_conn_command(rc_, &a, &hr), 0);
  freeReplyObject(hr);
  rtq_argv_destroy(&a);
  /* ADOPT4's side hash (xs) holds only an earlier attempt's long error:
   * its args are the task hash's x. */
  rtq_key2 t4 = rtq_keys2_task(&k2, "default", "ADOPT4"), x4 = rtq_keys2_side(&k2, "default", "ADOPT4");
  rtq_test_cmd_int(rc_, "HSET", t4.s, "s", "running", "n", "rtq.echo", "w", wk.id, "a", "2", "c", "1", "x",
                   "\x81\xa1k\xa1v", "xs", "1", NULL);
  rtq_test_cmd_int(rc_, "HSET", x4.s, "em", "a long error message of an earlier attempt", NULL);
  rtq_test_cmd_int(rc_, "LPUSH", proc.s, "ADOPT1", "ADOPT2", "ADOPT3", "ADOPT4", NULL);
  /* Drops the worker's connections (not the test's own). */
  assert_true(rtq_test_cmd_int(rc_, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes", NULL) >= 2);
  RTQ_TEST_WAIT_FOR(field_is("default", "ADOPT1", "s", "completed") && field_is("default", "ADOPT2", "s", "completed") &&
                        field_is("default", "ADOPT3", "s", "completed") &&
                        field_is("default", "ADOPT4", "s", "completed"),
                    10000);
  assert_true(field_is("default", "ADOPT4", "r", "\x81\xa1k\xa1v"));
  /* rtq.echo's result is its args: over 64 bytes, in the side hash. */
  char *r3 = rtq_test_cmd_str(rc_, "HGET", rtq_keys2_side(&k2, "default", "ADOPT3").s, "r", NULL);
  assert_non_null(r3);
  assert_memory_equal(r3, args, len);
  free(r3);
  assert_int_equal(field_ll("default", "ADOPT1", "a"), 2); /* its claim's attempt */
  assert_int_equal(field_ll("default", "ADOPT2", "a"), 1);
  assert_true(tw_log_contains(&wk, "adopted a task claimed before a connection loss"));
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 0);
}

/* rtq-worker --protocol 2 on url exits with code, saying why (needle). */
static void expect_refusal(const char *url, int code, const char *needle) {
  const char *argv[] = {"--protocol", "2", NULL};
  tw_spawn_v(&wk, url, argv);
  int st = 0;
  assert_int_equal(rtq_test_terminate(wk.pid, 0, 10000, &st), 0);
  wk.pid = -1;
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), code);
  assert_true(tw_log_contains(&wk, needle));
}

static void test_worker_v2_refuses_v1_namespace(void **state) {
  (void)state;
  rtq_test_cmd_int(rc_, "HSET", "rtq:stats", "enqueued", "1", NULL);
  expect_refusal(rtq_test_redis_url(), 1, "protocol-1 data");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_v2_claims_64_in_one_take, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_bad_and_missing_dead_lettered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_empty_and_nul_entries_dead_lettered, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_limited_queue_backs_off, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_cancel_running_within_bound, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_shutdown_requeues, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_unknown_name, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_paused_queue_left_alone, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_adopts_after_connection_loss, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_v2_refuses_v1_namespace, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
