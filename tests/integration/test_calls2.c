/*
 * test_calls2.c - the protocol v2 call builders (calls2.c) against the real
 * scripts of common/lua2 on a private redis-server: each builder's call
 * runs its script (which refuses a call whose keys, prefixes or values are
 * out of place), and each reply parser returns what the script answered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "argv.h"
#include "calls2.h"
#include "harness.h"
#include "keys2.h"
#include "scripts2.h"

#define Q "default"
#define WID "w-calls2"

static rtq_keys2 K;
static rtq_conn *C;
static rtq_argv A;
static const rtq__keep2 KEEP = {.result_ttl_s = 86400, .history = true, .cap = 10000};

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  assert_int_equal(rtq_keys2_init(&K, "rtq"), 0);
  C = rtq_test_conn();
  assert_int_equal(rtq_scripts2_load(C), 0);
  rtq_argv_init(&A);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_argv_destroy(&A);
  rtq_conn_free(C);
  C = NULL;
  return 0;
}

/* Runs the call a builder laid out in A; the script must accept it. */
static redisReply *run(int built) {
  assert_int_equal(built, 0);
  redisReply *r = NULL;
  int rc = rtq_script2_run(C, &A, &r);
  if (rc != 0) fail_msg("%s refused: %s", A.argv[0], r != NULL && r->str ? r->str : rtq_strerror(rc));
  return r;
}

static long long run_int(int built) {
  redisReply *r = run(built);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  long long v = r->integer;
  freeReplyObject(r);
  return v;
}

/* The tag reply of a call: tag and first value (a string or a number). */
static void run_tag(int built, const char *tag, const char *str, int64_t num) {
  redisReply *r = run(built);
  rtq__tag2 t;
  assert_int_equal(rtq__reply2_tag(r, &t), 0);
  assert_string_equal(t.tag, tag);
  if (str != NULL) {
    assert_true(t.n >= 1);
    assert_string_equal(t.str[0], str);
  } else if (num >= 0) {
    assert_true(t.n >= 1);
    assert_null(t.str[0]);
    assert_int_equal(t.num[0], num);
  }
  freeReplyObject(r);
}

static char *hget(const char *id, const char *field) {
  return rtq_test_cmd_str(C, "HGET", rtq_keys2_task(&K, Q, id).s, field, NULL);
}

static void assert_field(const char *id, const char *field, const char *want) {
  char *v = hget(id, field);
  if (want == NULL) {
    assert_null(v);
    return;
  }
  assert_non_null(v);
  assert_string_equal(v, want);
  free(v);
}

static void create(const char *id, const void *args, size_t args_len, uint64_t max_retries) {
  rtq__create2_task t = {.id = id, .name = "job", .args = args, .args_len = args_len,
                         .max_retries = max_retries};
  redisReply *r = run(rtq__call2_create(&A, &K, false, Q, &t, 1));
  rtq__create2_result res;
  int n = 0;
  assert_int_equal(rtq__reply2_create(r, &res, 1, &n), 0);
  assert_int_equal(n, 1);
  assert_true(res.created);
  freeReplyObject(r);
}

/* Takes up to want tasks as WID; the entries must all be claims. */
static int take(const char *wid, int want) {
  redisReply *r = run(rtq__call2_take(&A, &K, false, Q, wid, 300000, want, 1 << 20));
  rtq__claim2_entry e[64];
  int n = 0;
  assert_int_equal(rtq__reply2_claim(r, e, 64, &n), 0);
  for (int i = 0; i < n; i++) assert_int_equal(e[i].kind, RTQ__CLAIM2_OK);
  freeReplyObject(r);
  return n;
}

/* A connection subscribed to channel (SSUBSCRIBE when shard). */
static rtq_conn *subscriber(const char *channel, bool shard) {
  rtq_conn_options co = {.url = rtq_test_redis_url(), .command_timeout_ms = 5000};
  rtq_conn *s = NULL;
  char err[256];
  assert_int_equal(rtq_conn_new(&co, &s, err, sizeof err), 0);
  redisReply *r = rtq_test_command(s, shard ? "SSUBSCRIBE" : "SUBSCRIBE", channel, NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  return s;
}

/* The next message on s (waits up to the connection's 5 s timeout);
 * the caller frees it. */
static char *next_message(rtq_conn *s, const char *channel) {
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_get_reply(s, &r), 0);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 3);
  assert_string_equal(r->element[1]->str, channel);
  char *msg = strdup(r->element[2]->str);
  freeReplyObject(r);
  return msg;
}

/* create -> take -> finish: the args come back from the hash (inline) and
 * from the side hash (over 256 bytes); finish ends one task, schedules a
 * retry for another, and rejects a stale attempt. */
static void test_calls2_create_take_finish_round_trip(void **state) {
  (void)state;
  char big[300];
  memset(big, 'b', sizeof big);
  create("t1", "\x81\xa1k\x01", 4, 0);
  create("t2", big, sizeof big, 2);
  create("t3", NULL, 0, 0);
  /* Creating t1 again answers with its status and enqueues nothing. */
  rtq__create2_task again = {.id = "t1", .name = "job"};
  redisReply *r = run(rtq__call2_create(&A, &K, false, Q, &again, 1));
  rtq__create2_result res;
  int n = 0;
  assert_int_equal(rtq__reply2_create(r, &res, 1, &n), 0);
  assert_false(res.created);
  assert_string_equal(res.status, "pending");
  freeReplyObject(r);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, Q).s, NULL), 3);

  r = run(rtq__call2_take(&A, &K, false, Q, WID, 300000, 64, 1 << 20));
  rtq__claim2_entry e[64];
  assert_int_equal(rtq__reply2_claim(r, e, 64, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(e[0].kind, RTQ__CLAIM2_OK); /* oldest first */
  assert_string_equal(e[0].id, "t1");
  assert_string_equal(e[0].name, "job");
  assert_int_equal(e[0].attempt, 1);
  assert_int_equal(e[0].timeout_ms, 300000);
  assert_true(e[0].deadline_ms > 0);
  assert_int_equal(e[0].args_len, 4);
  assert_memory_equal(e[0].args, "\x81\xa1k\x01", 4);
  assert_string_equal(e[0].signature, "");
  assert_string_equal(e[1].id, "t2");
  assert_int_equal(e[1].args_len, sizeof big);
  assert_memory_equal(e[1].args, big, sizeof big);
  assert_int_equal(e[2].args_len, 0);
  int64_t deadline = e[0].deadline_ms;
  freeReplyObject(r);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_processing(&K, Q, WID).s, NULL), 3);

  rtq__finish2_task t[3] = {
      {.id = "t1", .attempt = 1, .status = RTQ_STATUS_COMPLETED, .result = "\xa2ok",
       .result_len = 3, .progress = 100},
      {.id = "t2", .attempt = 1, .status = RTQ_STATUS_FAILED, .error_code = "BOOM",
       .error_message = "it broke", .progress = -1, .jitter_ms = 5},
      {.id = "t3", .attempt = 2, .status = RTQ_STATUS_COMPLETED, .progress = -1},
  };
  rtq__rt_pair2 pairs[] = {{"le_10", 2}, {"le_100", 1}};
  r = run(rtq__call2_finish(&A, &K, false, Q, WID, &KEEP, pairs, 2, t, 3));
  rtq__finish2_entry f[3];
  assert_int_equal(rtq__reply2_finish(r, f, 3, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(f[0].kind, RTQ__FINISH2_OK);
  assert_string_equal(f[0].status, "completed");
  assert_int_equal(f[1].kind, RTQ__FINISH2_RETRY); /* max_retries 2 */
  assert_true(f[1].run_at_ms >= deadline - 300000 + 1000);
  assert_int_equal(f[2].kind, RTQ__FINISH2_STALE); /* attempt 2 is not its attempt */
  assert_string_equal(f[2].status, "running");
  freeReplyObject(r);

  assert_field("t1", "s", "completed");
  assert_field("t1", "r", "\xa2ok");
  assert_field("t1", "p", "100");
  assert_field("t1", "x", NULL); /* a completed task drops its args */
  assert_field("t2", "s", "pending");
  assert_field("t2", "ec", "BOOM");
  assert_field("t3", "s", "running");
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_done(&K, Q, RTQ_STATUS_COMPLETED).s, NULL), 1);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_delayed(&K, Q).s, NULL), 1);
  char *v = rtq_test_cmd_str(C, "HGET", rtq_keys2_runtime(&K, Q).s, "le_10", NULL);
  assert_string_equal(v, "2");
  free(v);
  v = rtq_test_cmd_str(C, "HGET", rtq_keys2_stats(&K, Q).s, "retried", NULL);
  assert_string_equal(v, "1");
  free(v);
}

/* claim after the worker's own LMOVE (BLMOVE in a real worker): a pending
 * task is claimed, a cancelled one skipped, an id without a hash missing,
 * an invalid entry bad. */
static void test_calls2_claim_after_lmove(void **state) {
  (void)state;
  create("c1", NULL, 0, 0);
  create("c2", NULL, 0, 0);
  run_tag(rtq__call2_cancel(&A, &K, false, Q, "c2", &KEEP), "cancelled", NULL, -1);
  const char *qk = rtq_keys2_queue(&K, Q).s;
  rtq_key2 pk = rtq_keys2_processing(&K, Q, WID);
  freeReplyObject(rtq_test_command(C, "LPUSH", qk, "ghost", "not valid", NULL));
  const char *ids[4];
  char *moved[4];
  for (int i = 0; i < 4; i++) {
    moved[i] = rtq_test_cmd_str(C, "LMOVE", qk, pk.s, "RIGHT", "LEFT", NULL);
    assert_non_null(moved[i]);
    ids[i] = moved[i];
  }
  assert_string_equal(ids[0], "c1");
  redisReply *r = run(rtq__call2_claim(&A, &K, false, Q, WID, 60000, ids, 4));
  rtq__claim2_entry e[4];
  int n = 0;
  assert_int_equal(rtq__reply2_claim(r, e, 4, &n), 0);
  assert_int_equal(n, 4);
  assert_int_equal(e[0].kind, RTQ__CLAIM2_OK);
  assert_int_equal(e[0].timeout_ms, 60000);
  assert_int_equal(e[1].kind, RTQ__CLAIM2_SKIP);
  assert_string_equal(e[1].status, "cancelled");
  assert_int_equal(e[2].kind, RTQ__CLAIM2_MISSING);
  assert_string_equal(e[2].id, "ghost");
  assert_int_equal(e[3].kind, RTQ__CLAIM2_BAD);
  assert_string_equal(e[3].id, "not valid");
  assert_non_null(e[3].reason);
  freeReplyObject(r);
  assert_field("c1", "s", "running");
  assert_field("c1", "w", WID);
  /* A parser given less room than the reply holds refuses it. */
  r = run(rtq__call2_claim(&A, &K, false, Q, WID, 60000, ids, 2));
  assert_int_equal(rtq__reply2_claim(r, e, 1, &n), RTQ_EDECODE);
  freeReplyObject(r);
  for (int i = 0; i < 4; i++) free(moved[i]);
}

static void test_calls2_progress_is_fenced(void **state) {
  (void)state;
  create("p1", NULL, 0, 0);
  assert_int_equal(take(WID, 1), 1);
  rtq_conn *s = subscriber(rtq_keys2_chan_events(&K, Q).s, true);
  assert_int_equal(run_int(rtq__call2_progress(&A, &K, false, Q, "p1", WID, 1, 42, "halfway")), 1);
  char *msg = next_message(s, rtq_keys2_chan_events(&K, Q).s);
  assert_non_null(strstr(msg, "\"p\":42"));
  free(msg);
  rtq_conn_free(s);
  assert_field("p1", "p", "42");
  assert_field("p1", "pm", "halfway");
  assert_int_equal(run_int(rtq__call2_progress(&A, &K, false, Q, "p1", WID, 2, 50, NULL)), 0);
  assert_int_equal(run_int(rtq__call2_progress(&A, &K, false, Q, "p1", "other", 1, 50, NULL)), 0);
  assert_field("p1", "p", "42");
}

/* wait registers the waiter; finish then publishes on the waiter channel
 * keys2 names. */
static void test_calls2_wait_then_finish_publishes(void **state) {
  (void)state;
  redisReply *r = run(rtq__call2_wait(&A, &K, false, Q, "nope"));
  assert_int_equal(r->type, REDIS_REPLY_NIL);
  freeReplyObject(r);
  assert_int_equal(rtq_test_cmd_int(C, "EXISTS", rtq_keys2_task(&K, Q, "nope").s, NULL), 0);

  create("w1", NULL, 0, 0);
  const char *chan = rtq_keys2_chan_waiter(&K, Q, "w1").s;
  rtq_conn *s = subscriber(chan, true);
  r = run(rtq__call2_wait(&A, &K, false, Q, "w1"));
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_string_equal(r->str, "pending");
  freeReplyObject(r);
  assert_field("w1", "wt", "1");
  assert_int_equal(take(WID, 1), 1);
  rtq__finish2_task t = {.id = "w1", .attempt = 1, .status = RTQ_STATUS_COMPLETED, .progress = -1};
  redisReply *fr = run(rtq__call2_finish(&A, &K, false, Q, WID, &KEEP, NULL, 0, &t, 1));
  freeReplyObject(fr);
  char *msg = next_message(s, chan);
  assert_non_null(strstr(msg, "\"s\":\"completed\""));
  free(msg);
  rtq_conn_free(s);
}

static void test_calls2_cancel(void **state) {
  (void)state;
  create("k1", NULL, 0, 0);
  create("k2", NULL, 0, 0);
  run_tag(rtq__call2_cancel(&A, &K, false, Q, "k1", &KEEP), "cancelled", NULL, -1);
  assert_field("k1", "s", "cancelled");
  assert_field("k1", "ec", "CANCELLED");
  /* k1's id was left in the queue: the take skips it and claims k2. */
  redisReply *r = run(rtq__call2_take(&A, &K, false, Q, WID, 300000, 2, 1 << 20));
  rtq__claim2_entry e[2];
  int n = 0;
  assert_int_equal(rtq__reply2_claim(r, e, 2, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(e[0].kind, RTQ__CLAIM2_SKIP);
  assert_string_equal(e[0].id, "k1");
  assert_int_equal(e[1].kind, RTQ__CLAIM2_OK);
  freeReplyObject(r);
  rtq_conn *s = subscriber(rtq_keys2_chan_cancel(&K).s, false);
  run_tag(rtq__call2_cancel(&A, &K, false, Q, "k2", &KEEP), "requested", NULL, -1);
  char *msg = next_message(s, rtq_keys2_chan_cancel(&K).s);
  assert_string_equal(msg, "k2");
  free(msg);
  rtq_conn_free(s);
  char *cr = hget("k2", "cr");
  assert_non_null(cr);
  free(cr);
  run_tag(rtq__call2_cancel(&A, &K, false, Q, "k1", &KEEP), "state", "cancelled", -1);
  run_tag(rtq__call2_cancel(&A, &K, false, Q, "zz", &KEEP), "notfound", NULL, -1);
}

static void fail_one(const char *id) {
  create(id, "\x90", 1, 0);
  assert_int_equal(take(WID, 1), 1);
  rtq__finish2_task t = {.id = id, .attempt = 1, .status = RTQ_STATUS_FAILED, .error_code = "E",
                         .progress = -1};
  redisReply *r = run(rtq__call2_finish(&A, &K, false, Q, WID, &KEEP, NULL, 0, &t, 1));
  freeReplyObject(r);
  assert_field(id, "s", "failed");
}

static void test_calls2_retry(void **state) {
  (void)state;
  fail_one("r1");
  run_tag(rtq__call2_retry(&A, &K, false, Q, "r1", RTQ_STATUS_FAILED), "ok", NULL, -1);
  assert_field("r1", "s", "pending");
  assert_field("r1", "ec", NULL);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_done(&K, Q, RTQ_STATUS_FAILED).s, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, Q).s, NULL), 1);
  run_tag(rtq__call2_retry(&A, &K, false, Q, "r1", RTQ_STATUS_FAILED), "state", "pending", -1);
  run_tag(rtq__call2_retry(&A, &K, false, Q, "zz", RTQ_STATUS_TIMEOUT), "notfound", NULL, -1);
  assert_int_equal(rtq__call2_retry(&A, &K, false, Q, "r1", RTQ_STATUS_COMPLETED), RTQ_EINVAL);
}

static void test_calls2_requeue_and_handback(void **state) {
  (void)state;
  create("q1", NULL, 0, 0);
  create("q2", NULL, 0, 0);
  assert_int_equal(take(WID, 2), 2);
  run_tag(rtq__call2_requeue(&A, &K, false, Q, "q1", "other", 1), "stale", "running", -1);
  run_tag(rtq__call2_requeue(&A, &K, false, Q, "q2", WID, 1), "requeued", NULL, -1);
  assert_field("q2", "s", "pending");
  assert_field("q2", "a", "0");
  redisReply *r = run(rtq__call2_handback(&A, &K, false, Q, "q1", WID, 1, 5000, 3));
  rtq__tag2 t;
  assert_int_equal(rtq__reply2_tag(r, &t), 0);
  assert_string_equal(t.tag, "handed_back");
  assert_int_equal(t.n, 2);
  assert_int_equal(t.num[0], 1);
  assert_true(t.num[1] > 0);
  freeReplyObject(r);
  assert_field("q1", "hb", "1");
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_delayed(&K, Q).s, NULL), 1);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_processing(&K, Q, WID).s, NULL), 0);
  run_tag(rtq__call2_handback(&A, &K, false, Q, "nope", WID, 1, 0, 3), "missing", NULL, -1);
}

static void test_calls2_deadletter(void **state) {
  (void)state;
  create("d1", NULL, 0, 0);
  assert_int_equal(take(WID, 1), 1);
  rtq__bytes2 e = {"d1", 2};
  run_tag(rtq__call2_deadletter(&A, &K, false, Q, e, "BAD_SIGNATURE", "no signature", WID, false,
                                &KEEP),
          "ok", NULL, 1);
  assert_field("d1", "s", "failed");
  assert_field("d1", "ec", "BAD_SIGNATURE");
  run_tag(rtq__call2_deadletter(&A, &K, false, Q, e, "X", "again", WID, false, &KEEP), "gone", NULL,
          0);
  /* An undecodable entry in the delayed set. */
  rtq__bytes2 junk = {"\xff\x00junk", 6};
  /* rtq_test_command takes C strings: the binary entry goes in by argv. */
  rtq_argv b;
  rtq_argv_init(&b);
  rtq_argv_add_str(&b, "ZADD");
  rtq__argv_add_key2(&b, rtq_keys2_delayed(&K, Q));
  rtq_argv_add_str(&b, "1");
  rtq_argv_add(&b, junk.p, junk.len);
  freeReplyObject(rtq_test_command_argv(C, &b));
  rtq_argv_destroy(&b);
  run_tag(rtq__call2_deadletter(&A, &K, false, Q, junk, "UNDECODABLE", "junk", "broker-1", true,
                                &KEEP),
          "ok", NULL, 0);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_dead(&K, Q).s, NULL), 2);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_delayed(&K, Q).s, NULL), 0);
}

/* recover walks a dead worker's list: a running task goes back, one whose
 * cancel was requested ends cancelled, a bad entry is dead-lettered, and
 * a second broker racing on the same entries gets 'gone'. */
static void test_calls2_recover(void **state) {
  (void)state;
  create("v1", NULL, 0, 0);
  create("v2", NULL, 0, 0);
  assert_int_equal(take("dead-w", 2), 2);
  run_tag(rtq__call2_cancel(&A, &K, false, Q, "v2", &KEEP), "requested", NULL, -1);
  rtq_key2 pk = rtq_keys2_processing(&K, Q, "dead-w");
  freeReplyObject(rtq_test_command(C, "LPUSH", pk.s, "bad entry", NULL));
  rtq__bytes2 ent[3] = {{"v1", 2}, {"v2", 2}, {"bad entry", 9}};
  redisReply *r = run(rtq__call2_recover(&A, &K, false, Q, "dead-w", 3, 1000, &KEEP, ent, 3));
  rtq__recover2_entry e[3];
  int n = 0;
  assert_int_equal(rtq__reply2_recover(r, e, 3, &n), 0);
  assert_int_equal(n, 3);
  assert_int_equal(e[0].kind, RTQ__RECOVER2_REQUEUED);
  assert_int_equal(e[0].attempt, 1);
  assert_int_equal(e[1].kind, RTQ__RECOVER2_ENDED);
  assert_string_equal(e[1].status, "cancelled");
  assert_int_equal(e[2].kind, RTQ__RECOVER2_DEAD);
  assert_string_equal(e[2].code, "BAD_ID");
  freeReplyObject(r);
  assert_field("v1", "s", "pending");
  assert_field("v2", "s", "cancelled");
  r = run(rtq__call2_recover(&A, &K, false, Q, "dead-w", 3, 1000, &KEEP, ent, 1));
  assert_int_equal(rtq__reply2_recover(r, e, 3, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(e[0].kind, RTQ__RECOVER2_GONE);
  freeReplyObject(r);
}

static void test_calls2_promote(void **state) {
  (void)state;
  const char *dk = rtq_keys2_delayed(&K, Q).s;
  freeReplyObject(rtq_test_command(C, "ZADD", dk, "1", "due-1", "2", "due 2", "32503680000000", "later", NULL));
  redisReply *r = run(rtq__call2_promote(&A, &K, false, Q, 100));
  rtq__promote2_result p;
  assert_int_equal(rtq__reply2_promote(r, &p), 0);
  assert_int_equal(p.moved, 1);
  assert_int_equal(p.nbad, 1);
  assert_string_equal(p.bad[0]->str, "due 2");
  assert_int_equal(p.next_due_ms, 2); /* the bad entry stays for the dead-letter step */
  freeReplyObject(r);
  char *v = rtq_test_cmd_str(C, "LINDEX", rtq_keys2_queue(&K, Q).s, "0", NULL);
  assert_string_equal(v, "due-1");
  free(v);
  assert_int_equal(rtq__call2_promote(&A, &K, false, Q, 0), RTQ_EINVAL);
  assert_int_equal(rtq__call2_promote(&A, &K, false, Q, 101), RTQ_EINVAL);
}

static void test_calls2_prune(void **state) {
  (void)state;
  create("kept", NULL, 0, 0);
  const char *done = rtq_keys2_done(&K, Q, RTQ_STATUS_COMPLETED).s;
  /* Newest first: the expired ids sit at the old (right) end. */
  freeReplyObject(rtq_test_command(C, "RPUSH", done, "newer", "kept", "gone-2", "gone-1", NULL));
  assert_int_equal(run_int(rtq__call2_prune(&A, &K, false, Q, RTQ_STATUS_COMPLETED, 100)), 2);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", done, NULL), 2);
  assert_int_equal(rtq__call2_prune(&A, &K, false, Q, RTQ_STATUS_RUNNING, 1), RTQ_EINVAL);
}

static void test_calls2_heartbeat_and_lease(void **state) {
  (void)state;
  rtq__field2 f[] = {{"host", "h1"}, {"busy", "2"}};
  long long now = run_int(rtq__call2_heartbeat(&A, &K, false, "w-hb", 30000, f, 2));
  assert_true(now > 1600000000000LL);
  char *v = rtq_test_cmd_str(C, "HGET", rtq_keys2_worker(&K, "w-hb").s, "busy", NULL);
  assert_string_equal(v, "2");
  free(v);
  v = rtq_test_cmd_str(C, "ZSCORE", rtq_keys2_workers(&K).s, "w-hb", NULL);
  assert_int_equal(strtoll(v, NULL, 10), now);
  free(v);
  assert_true(rtq_test_cmd_int(C, "PTTL", rtq_keys2_worker(&K, "w-hb").s, NULL) > 0);

  assert_int_equal(run_int(rtq__call2_lease(&A, &K, false, "b1", 5000, true)), 1);
  assert_int_equal(run_int(rtq__call2_lease(&A, &K, false, "b2", 5000, true)), 0);
  assert_int_equal(run_int(rtq__call2_lease(&A, &K, false, "b2", 5000, false)), 0);
  assert_int_equal(run_int(rtq__call2_lease(&A, &K, false, "b1", 5000, false)), 1);
  assert_int_equal(rtq_test_cmd_int(C, "EXISTS", rtq_keys2_lease(&K).s, NULL), 0);
}

/* After SCRIPT FLUSH the EVALSHA comes back NOSCRIPT and the call is sent
 * again as EVAL; with use_eval it is EVAL from the start. */
static void test_calls2_noscript_falls_back_to_eval(void **state) {
  (void)state;
  rtq_test_cmd_ok(C, "SCRIPT", "FLUSH", NULL);
  assert_int_equal(rtq__call2_lease(&A, &K, false, "b1", 5000, true), 0);
  assert_string_equal(A.argv[0], "EVALSHA");
  assert_int_equal(run_int(0), 1);
  assert_string_equal(A.argv[0], "EVAL");
  assert_int_equal(rtq__call2_lease(&A, &K, true, "b1", 5000, false), 0);
  assert_string_equal(A.argv[0], "EVAL");
  assert_int_equal(run_int(0), 1);
}

/* A concurrency limit of 1: take claims one task and stops with
 * 'limited'; claim puts an id it may not claim back at the front of the
 * queue; finish gives the lease back. */
static void test_calls2_limits_in_take_and_claim(void **state) {
  (void)state;
  create("l1", NULL, 0, 0);
  create("l2", NULL, 0, 0);
  freeReplyObject(rtq_test_command(C, "HSET", rtq_keys2_limit(&K, Q).s, "conc", "1", NULL));
  redisReply *r = run(rtq__call2_take(&A, &K, false, Q, WID, 300000, 64, 1 << 20));
  rtq__claim2_entry e[64];
  int n = 0;
  assert_int_equal(rtq__reply2_claim(r, e, 64, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(e[0].kind, RTQ__CLAIM2_OK);
  assert_string_equal(e[0].id, "l1");
  assert_int_equal(e[1].kind, RTQ__CLAIM2_LIMITED);
  assert_null(e[1].id);
  assert_true(e[1].wait_ms > 0);
  freeReplyObject(r);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_slots(&K, Q).s, NULL), 1);

  const char *qk = rtq_keys2_queue(&K, Q).s;
  char *moved = rtq_test_cmd_str(C, "LMOVE", qk, rtq_keys2_processing(&K, Q, WID).s, "RIGHT",
                                 "LEFT", NULL);
  assert_string_equal(moved, "l2");
  const char *ids[1] = {moved};
  r = run(rtq__call2_claim(&A, &K, false, Q, WID, 300000, ids, 1));
  assert_int_equal(rtq__reply2_claim(r, e, 64, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(e[0].kind, RTQ__CLAIM2_LIMITED);
  assert_string_equal(e[0].id, "l2");
  assert_true(e[0].wait_ms > 0);
  freeReplyObject(r);
  free(moved);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", qk, NULL), 1);

  rtq__finish2_task t = {.id = "l1", .attempt = 1, .status = RTQ_STATUS_COMPLETED, .progress = -1};
  freeReplyObject(run(rtq__call2_finish(&A, &K, false, Q, WID, &KEEP, NULL, 0, &t, 1)));
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_slots(&K, Q).s, NULL), 0);
  assert_int_equal(take(WID, 1), 1); /* the freed slot lets l2 run */
}

static void test_calls2_purge_and_delete(void **state) {
  (void)state;
  create("u1", NULL, 0, 0);
  create("u2", NULL, 0, 0);
  create("u3", NULL, 0, 0);
  int64_t v[3];
  redisReply *r = run(rtq__call2_purge(&A, &K, false, Q, 2, &KEEP));
  assert_int_equal(rtq__reply2_counts(r, v), 0);
  assert_int_equal(v[0], 2); /* cancelled */
  assert_int_equal(v[1], 0); /* dropped */
  assert_int_equal(v[2], 1); /* left */
  freeReplyObject(r);
  r = run(rtq__call2_purge(&A, &K, false, Q, 2, &KEEP));
  assert_int_equal(rtq__reply2_counts(r, v), 0);
  assert_int_equal(v[0], 1);
  assert_int_equal(v[2], 0);
  freeReplyObject(r);
  assert_field("u3", "s", "cancelled");
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_done(&K, Q, RTQ_STATUS_CANCELLED).s, NULL), 3);

  r = run(rtq__call2_delete(&A, &K, false, Q, RTQ_STATUS_CANCELLED, 2, 0));
  assert_int_equal(rtq__reply2_counts(r, v), 0);
  assert_int_equal(v[0], 2); /* deleted */
  assert_int_equal(v[2], 1); /* more */
  freeReplyObject(r);
  r = run(rtq__call2_delete(&A, &K, false, Q, RTQ_STATUS_CANCELLED, 2, 0));
  assert_int_equal(rtq__reply2_counts(r, v), 0);
  assert_int_equal(v[0], 1);
  assert_int_equal(v[2], 0);
  freeReplyObject(r);
  assert_int_equal(rtq_test_cmd_int(C, "EXISTS", rtq_keys2_task(&K, Q, "u1").s,
                                    rtq_keys2_task(&K, Q, "u2").s, rtq_keys2_task(&K, Q, "u3").s, NULL),
                   0);
  assert_int_equal(rtq__call2_delete(&A, &K, false, Q, RTQ_STATUS_PENDING, 1, 0), RTQ_EINVAL);
}

/* Runs the create call laid out in A and parses its reply of n tasks into
 * res (which points into the reply: free it after). */
static redisReply *run_create(rtq__create2_result *res, int n) {
  redisReply *r = run(0);
  int got = -1;
  assert_int_equal(rtq__reply2_create(r, res, n, &got), 0);
  assert_int_equal(got, n);
  if (n > 1) assert_int_equal(rtq__reply2_create(r, res, n - 1, &got), RTQ_EDECODE); /* over cap */
  return r;
}

/* A call whose tasks give no option sends 3 values per task; one option
 * in the call makes it 10 for each. The reply is the call's time, then
 * per task created or the status it has. */
static void test_calls2_create_sends_options_only_when_given(void **state) {
  (void)state;
  rtq__create2_task t[3] = {{.id = "a1", .name = "job"},
                            {.id = "a2", .name = "job", .args = "\x81\xa1k\x01", .args_len = 4},
                            {.id = "a3", .name = "other"}};
  assert_int_equal(rtq__call2_create(&A, &K, false, Q, t, 3), 0);
  /* EVALSHA sha 3, 3 keys, events, 2 prefixes, values per task, fresh
   * ids, tasks */
  assert_int_equal(A.argc, 3 + 3 + 5 + 3 * 3);
  assert_string_equal(A.argv[9], "3");
  assert_string_equal(A.argv[10], "0");
  rtq__create2_result res[3];
  redisReply *r = run_create(res, 3);
  for (int i = 0; i < 3; i++) {
    assert_true(res[i].created);
    assert_true(res[i].created_at > 0);
    assert_int_equal(res[i].created_at, res[0].created_at);
  }
  freeReplyObject(r);
  assert_field("a2", "x", "\x81\xa1k\x01");
  assert_field("a3", "n", "other");
  assert_field("a1", "mr", NULL);

  rtq__create2_task u[2] = {{.id = "b1", .name = "job", .max_retries = 2},
                            {.id = "a1", .name = "job"}};
  assert_int_equal(rtq__call2_create(&A, &K, false, Q, u, 2), 0);
  assert_int_equal(A.argc, 3 + 3 + 5 + 2 * 10);
  assert_string_equal(A.argv[9], "10");
  r = run_create(res, 2);
  assert_true(res[0].created);
  assert_false(res[1].created);
  assert_string_equal(res[1].status, "pending");
  freeReplyObject(r);
  assert_field("b1", "mr", "2");
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, Q).s, NULL), 4);

  /* A signature alone also needs the 10 values. */
  rtq__create2_task s = {.id = "c1", .name = "job", .signature = "k1:00ff"};
  assert_int_equal(rtq__call2_create(&A, &K, false, Q, &s, 1), 0);
  assert_string_equal(A.argv[9], "10");
  freeReplyObject(run(0));
  assert_field("c1", "sg", "k1:00ff");
}

/* Ids made for the call are sent fresh (not looked up) when every task's
 * is; one id given by the caller makes the call look every id up. */
static void test_calls2_create_fresh_ids(void **state) {
  (void)state;
  char ids[3][RTQ_ID2_LEN + 1];
  rtq__create2_task t[3];
  for (int i = 0; i < 3; i++) {
    assert_int_equal(rtq_id2_new(ids[i], rtq_keys2_slot(&K, Q)), 0);
    t[i] = (rtq__create2_task){.id = ids[i], .name = "job", .fresh_id = true};
  }
  assert_int_equal(rtq__call2_create(&A, &K, false, Q, t, 3), 0);
  assert_string_equal(A.argv[10], "1");
  rtq__create2_result res[3];
  redisReply *r = run_create(res, 3);
  for (int i = 0; i < 3; i++) assert_true(res[i].created);
  freeReplyObject(r);
  assert_field(ids[2], "s", "pending");

  /* A caller's id beside them: looked up, so the made ones sent again are
   * found (a resend is never fresh). */
  rtq__create2_task u[2] = {t[0], {.id = "mine", .name = "job"}};
  assert_int_equal(rtq__call2_create(&A, &K, false, Q, u, 2), 0);
  assert_string_equal(A.argv[10], "0");
  r = run_create(res, 2);
  assert_false(res[0].created);
  assert_string_equal(res[0].status, "pending");
  assert_true(res[1].created);
  freeReplyObject(r);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, Q).s, NULL), 4);
}

/* A bad name or count never reaches Redis. */
static void test_calls2_bad_input_is_refused(void **state) {
  (void)state;
  rtq__create2_task t = {.id = "x", .name = "job"};
  assert_int_equal(rtq__call2_create(&A, &K, false, "bad queue", &t, 1), RTQ_EINVAL);
  assert_int_equal(rtq__call2_create(&A, &K, false, Q, &t, 0), RTQ_EINVAL);
  assert_int_equal(rtq__call2_create(&A, &K, false, Q, &t, 65), RTQ_EINVAL);
  assert_int_equal(rtq__call2_take(&A, &K, false, Q, "bad wid", 1, 1, 1), RTQ_EINVAL);
  assert_int_equal(rtq__call2_wait(&A, &K, false, Q, "bad id"), RTQ_EINVAL);
  assert_int_equal(rtq__call2_cancel(&A, &K, false, Q, "x", NULL), RTQ_EINVAL);
  assert_int_equal(rtq__call2_heartbeat(&A, &K, false, "w", 1000, NULL, 65), RTQ_EINVAL);
  rtq__finish2_task f = {.id = "x", .attempt = 1, .status = RTQ_STATUS_RUNNING, .progress = -1};
  assert_int_equal(rtq__call2_finish(&A, &K, false, Q, WID, &KEEP, NULL, 0, &f, 1), RTQ_EINVAL);
  /* A value the builder does not check is the script's to refuse, and it
   * refuses before writing anything. */
  t.timeout_ms = 315360000001ULL;
  assert_int_equal(rtq__call2_create(&A, &K, false, Q, &t, 1), 0);
  redisReply *r = NULL;
  assert_int_equal(rtq_script2_run(C, &A, &r), RTQ_EREDIS);
  assert_non_null(strstr(r->str, "timeout_ms"));
  freeReplyObject(r);
  assert_int_equal(rtq_test_cmd_int(C, "DBSIZE", NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_calls2_create_take_finish_round_trip, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_claim_after_lmove, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_progress_is_fenced, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_wait_then_finish_publishes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_retry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_requeue_and_handback, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_deadletter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_recover, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_promote, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_prune, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_heartbeat_and_lease, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_limits_in_take_and_claim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_purge_and_delete, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_noscript_falls_back_to_eval, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_create_sends_options_only_when_given, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_calls2_create_fresh_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_calls2_bad_input_is_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
