/*
 * test_protocol_take.c - take.lua, the worker's non-blocking pop round and
 * claim in one call: each move's reply entry belongs to its own move, an
 * envelope is claimed only when its id can be read from rtq's layout and
 * it fits the size limit, every claim publishes a 'running' event, and a
 * malformed call is refused before it moves anything.
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
#include "calls.h"
#include "envelope.h"
#include "harness.h"
#include "keys.h"
#include "rtq/client.h"
#include "scripts.h"
#include "test_client_fixture.h"

#define WID "w-take"
#define TIMEOUT_MS 300000
#define NO_LIMIT "1048576"

/* The worker's queues, in KEYS order: move index 1 is QUEUES[0]. */
static const char *const QUEUES[2] = {"default", "second"};

static rtq_keys ks;
static rtq_client *cl;
static rtq_conn *rc_;

static int setup(void **state) {
  (void)state;
  tc_open(&ks, &cl, &rc_);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tc_close(&cl, &rc_);
  return 0;
}

static void create(const char *id, const char *queue, uint64_t timeout_ms) {
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.id = id;
  o.queue = queue;
  o.timeout_ms = timeout_ms;
  char out[RTQ_TASK_ID_SIZE];
  int created = 0;
  assert_int_equal(rtq_create_task(cl, "noop", NULL, &o, out, &created), 0);
  assert_int_equal(created, 1);
}

static void lpush(const char *queue, const void *bytes, size_t len) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key(&a, rtq_keys_queue(&ks, queue));
  rtq_argv_add(&a, bytes, len);
  redisReply *r = rtq_test_command_argv(rc_, &a);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
}

/* The envelope rtq's encoder writes for a task that was never created. */
static void push_encoded(const char *queue, const char *id) {
  rtq_envelope e;
  rtq_envelope_init(&e);
  snprintf(e.id, sizeof e.id, "%s", id);
  snprintf(e.name, sizeof e.name, "noop");
  snprintf(e.queue, sizeof e.queue, "%s", queue);
  e.attempt = 1;
  char *buf = NULL;
  size_t len = 0;
  char err[128];
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), 0);
  lpush(queue, buf, len);
  free(buf);
  rtq_envelope_destroy(&e);
}

static long long llen(rtq_key k) { return rtq_test_cmd_int(rc_, "LLEN", k.s, NULL); }

/* The element the next LMOVE RIGHT of queue takes (a copy); NULL if empty. */
static redisReply *next_of(const char *queue) {
  rtq_key q = rtq_keys_queue(&ks, queue);
  redisReply *r = rtq_test_command(rc_, "LINDEX", q.s, "-1", NULL);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  return r;
}

/* How many elements of list k equal the len bytes at p. */
static int count_in(rtq_key k, const char *p, size_t len) {
  redisReply *r = rtq_test_command(rc_, "LRANGE", k.s, "0", "-1", NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  int n = 0;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->len == len && memcmp(e->str, p, len) == 0) n++;
  }
  freeReplyObject(r);
  return n;
}

static char *field(const char *id, const char *name) {
  rtq_key t = rtq_keys_task(&ks, id);
  return rtq_test_cmd_str(rc_, "HGET", t.s, name, NULL);
}

static void assert_field(const char *id, const char *name, const char *want) {
  char *v = field(id, name);
  if (v == NULL || strcmp(v, want) != 0) fail_msg("%s.%s = %s, want %s", id, name, v ? v : "(nil)", want);
  free(v);
}

/* ZSCORE of id in zset k; false when it is not a member. */
static bool zscore(rtq_key k, const char *id, long long *score) {
  char *v = rtq_test_cmd_str(rc_, "ZSCORE", k.s, id, NULL);
  if (v == NULL) return false;
  if (score != NULL) *score = strtoll(v, NULL, 10);
  free(v);
  return true;
}

/* Starts a take.lua call over the first nq (0..2) of QUEUES; the caller
 * appends the moves. Laid out by hand for the calls that must be malformed
 * (a typed builder cannot write them); well-formed calls go through
 * rtq__call_take, as the worker's do. */
static void take_begin_budget(rtq_argv *a, int nq, const char *timeout, const char *max,
                              const char *budget) {
  rtq_argv_init(a);
  rtq_script_argv(a, RTQ_SCRIPT_TAKE, 4 + nq, true);
  rtq__argv_add_key(a, rtq_keys_processing(&ks, WID));
  rtq__argv_add_key(a, rtq_keys_status(&ks, RTQ_STATUS_PENDING));
  rtq__argv_add_key(a, rtq_keys_status(&ks, RTQ_STATUS_RUNNING));
  rtq__argv_add_key(a, rtq_keys_deadlines(&ks));
  for (int i = 0; i < nq; i++) rtq__argv_add_key(a, rtq_keys_queue(&ks, QUEUES[i]));
  rtq_argv_add_str(a, WID);
  rtq_argv_add_str(a, timeout);
  rtq__argv_add_key(a, rtq_keys_chan_events(&ks));
  rtq__argv_add_key(a, rtq_keys_task_prefix(&ks));
  rtq_argv_add_str(a, max);
  rtq_argv_add_str(a, budget);
}

static void take_begin(rtq_argv *a, int nq, const char *timeout, const char *max) {
  take_begin_budget(a, nq, timeout, max, "4194304");
}

static redisReply *take_end(rtq_argv *a) {
  redisReply *r = rtq_test_command_argv(rc_, a);
  rtq_argv_destroy(a);
  return r;
}

/* take.lua over both queues with the default timeout, built as the worker
 * builds it; moves are 1-based as in the script (1 = QUEUES[0]). */
static redisReply *take(const int *moves, int n, const char *max) {
  int idx[300];
  assert_true(n <= 300);
  for (int i = 0; i < n; i++) idx[i] = moves[i] - 1;
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call_take(&a, &ks, true, WID, TIMEOUT_MS, QUEUES, 2,
                                  strtoull(max, NULL, 10), 4194304, idx, n),
                   0);
  return take_end(&a);
}

/* Reply entry i, checked to be tagged tag with n elements. */
static const redisReply *entry(const redisReply *r, size_t i, const char *tag, size_t n) {
  if (r->type != REDIS_REPLY_ARRAY) fail_msg("reply type %d: %s", r->type, r->str ? r->str : "");
  assert_true(i < r->elements);
  const redisReply *e = r->element[i];
  assert_int_equal(e->type, REDIS_REPLY_ARRAY);
  assert_true(e->elements >= 1);
  assert_int_equal(e->element[0]->type, REDIS_REPLY_STRING);
  if (strcmp(e->element[0]->str, tag) != 0) fail_msg("entry %zu is '%s', want '%s'", i, e->element[0]->str, tag);
  assert_int_equal(e->elements, n);
  return e;
}

static void assert_bytes(const redisReply *s, const char *p, size_t len) {
  assert_int_equal(s->type, REDIS_REPLY_STRING);
  assert_int_equal(s->len, len);
  assert_memory_equal(s->str, p, len);
}

/*
 * An 'ok' entry for task id with the envelope env: the reply carries the
 * claim (attempt 1, deadline = claim time + timeout), and the task hash and
 * the indexes agree with it. t0/t1 bound the claim time (Redis TIME).
 */
static void assert_claimed(const redisReply *e, const char *id, const redisReply *env,
                           long long timeout, uint64_t t0, uint64_t t1) {
  assert_bytes(e->element[1], env->str, env->len);
  assert_string_equal(e->element[2]->str, id);
  assert_int_equal(e->element[3]->type, REDIS_REPLY_INTEGER);
  assert_int_equal(e->element[3]->integer, 1);
  long long deadline = e->element[4]->integer;
  assert_int_equal(e->element[5]->integer, timeout);
  assert_in_range(deadline, (long long)t0 + timeout, (long long)t1 + timeout);
  assert_field(id, "status", "running");
  assert_field(id, "worker", WID);
  assert_field(id, "attempt", "1");
  char want[32];
  snprintf(want, sizeof want, "%lld", deadline);
  assert_field(id, "deadline", want);
  long long score = 0;
  assert_true(zscore(rtq_keys_deadlines(&ks), id, &score));
  assert_int_equal(score, deadline);
  assert_true(zscore(rtq_keys_status(&ks, RTQ_STATUS_RUNNING), id, NULL));
  assert_false(zscore(rtq_keys_status(&ks, RTQ_STATUS_PENDING), id, NULL));
  assert_int_equal(count_in(rtq_keys_processing(&ks, WID), env->str, env->len), 1);
}

static uint64_t redis_now(void) {
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(rc_, &ms), 0);
  return ms;
}

static void test_protocol_take_mixed_batch_maps_each_move(void **state) {
  (void)state;
  create("t-ok1", NULL, 0);
  create("t-cancel", NULL, 0);
  create("t-ok2", "second", 5000);
  assert_int_equal(rtq_cancel_task(cl, "t-cancel", NULL), 0);
  lpush("default", "garbage", 7);
  push_encoded("default", "t-never");
  rtq_key q1 = rtq_keys_queue(&ks, "default"), q2 = rtq_keys_queue(&ks, "second");
  rtq_key p = rtq_keys_processing(&ks, WID);
  assert_int_equal(llen(q1), 4);
  assert_int_equal(llen(q2), 1);
  /* default, right to left: t-ok1, t-cancel, garbage, t-never. */
  redisReply *all = rtq_test_command(rc_, "LRANGE", q1.s, "0", "-1", NULL);
  assert_int_equal(all->elements, 4);
  const redisReply *env_ok1 = all->element[3], *env_cancel = all->element[2];
  const redisReply *env_never = all->element[0];
  redisReply *env_ok2 = next_of("second");

  int moves[8] = {1, 2, 1, 1, 1, 2, 1, 2};
  uint64_t t0 = redis_now();
  redisReply *r = take(moves, 8, NO_LIMIT);
  uint64_t t1 = redis_now();
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 8);

  assert_claimed(entry(r, 0, "ok", 6), "t-ok1", env_ok1, TIMEOUT_MS, t0, t1);
  assert_claimed(entry(r, 1, "ok", 6), "t-ok2", env_ok2, 5000, t0, t1);

  /* Not pending: handed back unclaimed, for the worker to decode and for
   * claim.lua to drop. */
  const redisReply *e = entry(r, 2, "raw", 2);
  assert_bytes(e->element[1], env_cancel->str, env_cancel->len);
  assert_field("t-cancel", "status", "cancelled");
  assert_int_equal(count_in(p, env_cancel->str, env_cancel->len), 1);
  assert_int_equal(count_in(q1, env_cancel->str, env_cancel->len), 0);
  assert_false(zscore(rtq_keys_status(&ks, RTQ_STATUS_RUNNING), "t-cancel", NULL));

  e = entry(r, 3, "raw", 2);
  assert_bytes(e->element[1], "garbage", 7);
  assert_int_equal(count_in(p, "garbage", 7), 1);

  e = entry(r, 4, "missing", 3);
  assert_bytes(e->element[1], env_never->str, env_never->len);
  assert_string_equal(e->element[2]->str, "t-never");
  assert_int_equal(count_in(p, env_never->str, env_never->len), 1);
  rtq_key never = rtq_keys_task(&ks, "t-never");
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", never.s, NULL), 0);

  /* Both queues ran dry: their later moves are empty. */
  entry(r, 5, "empty", 1);
  entry(r, 6, "empty", 1);
  entry(r, 7, "empty", 1);
  freeReplyObject(r);

  assert_int_equal(llen(q1), 0);
  assert_int_equal(llen(q2), 0);
  assert_int_equal(llen(p), 5); /* t-ok1, t-ok2, t-cancel, garbage, t-never */
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", rtq_keys_status(&ks, RTQ_STATUS_RUNNING).s, NULL), 2);
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", rtq_keys_deadlines(&ks).s, NULL), 2);
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", rtq_keys_status(&ks, RTQ_STATUS_PENDING).s, NULL), 0);
  freeReplyObject(all);
  freeReplyObject(env_ok2);
}

/* The same envelope delivered twice: the second copy finds the task running
 * and comes back unclaimed; the attempt is not counted twice. */
static void test_protocol_take_duplicate_envelope_is_skipped(void **state) {
  (void)state;
  create("t-dup", NULL, 0);
  redisReply *env = next_of("default");
  lpush("default", env->str, env->len);
  int moves[2] = {1, 1};
  redisReply *r = take(moves, 2, NO_LIMIT);
  entry(r, 0, "ok", 6);
  const redisReply *e = entry(r, 1, "raw", 2);
  assert_bytes(e->element[1], env->str, env->len);
  freeReplyObject(r);
  assert_field("t-dup", "attempt", "1");
  assert_int_equal(count_in(rtq_keys_processing(&ks, WID), env->str, env->len), 2);
  assert_int_equal(llen(rtq_keys_queue(&ks, "default")), 0);
  freeReplyObject(env);
}

static void test_protocol_take_envelope_over_limit_is_raw(void **state) {
  (void)state;
  create("size-a", NULL, 0);
  create("size-b", NULL, 0);
  redisReply *env_a = next_of("default");
  rtq_key q = rtq_keys_queue(&ks, "default");
  redisReply *env_b = rtq_test_command(rc_, "LINDEX", q.s, "0", NULL);
  assert_int_equal(env_a->len, env_b->len);
  char below[32], exact[32];
  snprintf(below, sizeof below, "%zu", env_a->len - 1);
  snprintf(exact, sizeof exact, "%zu", env_a->len);

  int move = 1;
  redisReply *r = take(&move, 1, below);
  const redisReply *e = entry(r, 0, "raw", 2);
  assert_bytes(e->element[1], env_a->str, env_a->len);
  freeReplyObject(r);
  assert_field("size-a", "status", "pending");
  assert_field("size-a", "attempt", "0");
  assert_true(zscore(rtq_keys_status(&ks, RTQ_STATUS_PENDING), "size-a", NULL));
  assert_false(zscore(rtq_keys_status(&ks, RTQ_STATUS_RUNNING), "size-a", NULL));
  assert_false(zscore(rtq_keys_deadlines(&ks), "size-a", NULL));
  assert_int_equal(count_in(rtq_keys_processing(&ks, WID), env_a->str, env_a->len), 1);

  /* An envelope exactly at the limit is claimed. */
  uint64_t t0 = redis_now();
  r = take(&move, 1, exact);
  uint64_t t1 = redis_now();
  assert_claimed(entry(r, 0, "ok", 6), "size-b", env_b, TIMEOUT_MS, t0, t1);
  freeReplyObject(r);
  freeReplyObject(env_a);
  freeReplyObject(env_b);
}

static void test_protocol_take_publishes_running_per_claim(void **state) {
  (void)state;
  create("ev-1", NULL, 0);
  create("ev-2", "second", 0);
  lpush("default", "garbage", 7);
  rtq_subscription *sub = NULL;
  assert_int_equal(rtq_events_subscribe(cl, &sub), 0);

  int moves[3] = {1, 1, 2};
  redisReply *r = take(moves, 3, NO_LIMIT);
  entry(r, 0, "ok", 6);
  entry(r, 1, "raw", 2);
  entry(r, 2, "ok", 6);
  freeReplyObject(r);
  /* Messages on one channel arrive in order: everything take published
   * comes before this marker. */
  rtq_key chan = rtq_keys_chan_events(&ks);
  assert_int_equal(rtq_test_cmd_int(rc_, "PUBLISH", chan.s, "{\"id\":\"marker\"}", NULL), 1);

  const char *want[2] = {"{\"id\":\"ev-1\",\"status\":\"running\",\"worker\":\"" WID "\",\"attempt\":1,",
                         "{\"id\":\"ev-2\",\"status\":\"running\",\"worker\":\"" WID "\",\"attempt\":1,"};
  int got = 0;
  uint64_t deadline = rtq_test_now_ms() + 5000;
  for (;;) {
    uint64_t now = rtq_test_now_ms();
    if (now >= deadline) fail_msg("no marker after 5 s (%d running events)", got);
    int64_t left = (int64_t)(deadline - now);
    char *json = NULL;
    int rc = rtq_subscription_next(sub, left, &json);
    if (rc != 0) fail_msg("subscription: %s", rtq_err_name(rc));
    bool marker = strcmp(json, "{\"id\":\"marker\"}") == 0;
    if (!marker) {
      if (got >= 2 || strncmp(json, want[got], strlen(want[got])) != 0)
        fail_msg("event %d: %s", got, json);
      got++;
    }
    free(json);
    if (marker) break;
  }
  assert_int_equal(got, 2);
  rtq_subscription_free(sub);
}

typedef struct counts {
  long long dbsize, q1, q2, p;
} counts;

static counts snapshot(void) {
  counts c;
  c.dbsize = rtq_test_cmd_int(rc_, "DBSIZE", NULL);
  c.q1 = llen(rtq_keys_queue(&ks, "default"));
  c.q2 = llen(rtq_keys_queue(&ks, "second"));
  c.p = llen(rtq_keys_processing(&ks, WID));
  return c;
}

/* Runs a take call that must be refused, then checks nothing moved. */
static void assert_refused(rtq_argv *a, const counts *before, const char *what) {
  redisReply *r = take_end(a);
  if (r->type != REDIS_REPLY_ERROR) fail_msg("%s: reply type %d, want an error", what, r->type);
  freeReplyObject(r);
  counts after = snapshot();
  if (memcmp(&after, before, sizeof after) != 0)
    fail_msg("%s wrote: dbsize %lld->%lld queues %lld,%lld->%lld,%lld processing %lld->%lld", what,
             before->dbsize, after.dbsize, before->q1, before->q2, after.q1, after.q2, before->p,
             after.p);
}

static void test_protocol_take_malformed_call_moves_nothing(void **state) {
  (void)state;
  create("m-1", NULL, 0);
  create("m-2", NULL, 0);
  create("m-3", "second", 0);
  counts before = snapshot();
  assert_int_equal(before.q1, 2);
  assert_int_equal(before.q2, 1);
  assert_int_equal(before.p, 0);
  rtq_argv a;

  /* Valid moves first: the bad one must stop the call before they run. */
  take_begin(&a, 2, "300000", NO_LIMIT);
  rtq_argv_add_str(&a, "1");
  rtq_argv_add_str(&a, "2");
  rtq_argv_add_str(&a, "0");
  assert_refused(&a, &before, "queue index 0");

  take_begin(&a, 2, "300000", NO_LIMIT);
  rtq_argv_add_str(&a, "1");
  rtq_argv_add_str(&a, "2");
  rtq_argv_add_str(&a, "3");
  assert_refused(&a, &before, "queue index past KEYS");

  take_begin(&a, 1, "300000", NO_LIMIT);
  rtq_argv_add_str(&a, "1");
  rtq_argv_add_str(&a, "2");
  assert_refused(&a, &before, "queue index 2 of 1 queue");

  take_begin(&a, 2, "300000", NO_LIMIT);
  rtq_argv_add_str(&a, "1");
  rtq_argv_add_str(&a, "1.5");
  assert_refused(&a, &before, "fractional queue index");

  take_begin(&a, 2, "300000", NO_LIMIT);
  rtq_argv_add_str(&a, "1");
  rtq_argv_add_str(&a, "first");
  assert_refused(&a, &before, "non-numeric queue index");

  take_begin(&a, 2, "300000", NO_LIMIT);
  assert_refused(&a, &before, "0 moves");

  take_begin(&a, 2, "300000", NO_LIMIT);
  for (int i = 0; i < 257; i++) rtq_argv_add_str(&a, "1");
  assert_refused(&a, &before, "257 moves");

  take_begin(&a, 2, "soon", NO_LIMIT);
  rtq_argv_add_str(&a, "1");
  assert_refused(&a, &before, "non-numeric timeout");

  take_begin(&a, 2, "300000", "big");
  rtq_argv_add_str(&a, "1");
  assert_refused(&a, &before, "non-numeric size limit");

  take_begin(&a, 0, "300000", NO_LIMIT);
  rtq_argv_add_str(&a, "1");
  assert_refused(&a, &before, "no queue keys");

  take_begin_budget(&a, 2, "300000", NO_LIMIT, "lots");
  rtq_argv_add_str(&a, "1");
  assert_refused(&a, &before, "non-numeric reply budget");

  /* A task key prefix of another namespace. */
  rtq_argv_init(&a);
  rtq_script_argv(&a, RTQ_SCRIPT_TAKE, 5, true);
  rtq__argv_add_key(&a, rtq_keys_processing(&ks, WID));
  rtq__argv_add_key(&a, rtq_keys_status(&ks, RTQ_STATUS_PENDING));
  rtq__argv_add_key(&a, rtq_keys_status(&ks, RTQ_STATUS_RUNNING));
  rtq__argv_add_key(&a, rtq_keys_deadlines(&ks));
  rtq__argv_add_key(&a, rtq_keys_queue(&ks, QUEUES[0]));
  rtq_argv_add_str(&a, WID);
  rtq_argv_add_str(&a, "300000");
  rtq__argv_add_key(&a, rtq_keys_chan_events(&ks));
  rtq_argv_add_str(&a, "other:task:");
  rtq_argv_add_str(&a, NO_LIMIT);
  rtq_argv_add_str(&a, "4194304");
  rtq_argv_add_str(&a, "1");
  assert_refused(&a, &before, "foreign task key prefix");

  assert_field("m-1", "status", "pending");
  assert_field("m-2", "status", "pending");
  assert_field("m-3", "status", "pending");

  /* 256 moves is the largest call, and it is accepted. */
  take_begin(&a, 2, "300000", NO_LIMIT);
  for (int i = 0; i < 256; i++) rtq_argv_add_str(&a, i % 2 ? "2" : "1");
  redisReply *r = take_end(&a);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 256);
  entry(r, 0, "ok", 6);
  entry(r, 1, "ok", 6);
  entry(r, 2, "ok", 6);
  for (size_t i = 3; i < 256; i++) entry(r, i, "empty", 1);
  freeReplyObject(r);
}

/* Appends a msgpack string header for len bytes: fixstr up to 31, else str8. */
static size_t put_str_header(char *b, size_t len) {
  if (len < 32) {
    b[0] = (char)(0xa0 | len);
    return 1;
  }
  b[0] = (char)0xd9;
  b[1] = (char)len;
  return 2;
}

/* Bytes laid out as rtq's encoder starts an envelope ({"v": 1, "id": ...}),
 * for an id of idlen bytes, then a "name" key as the rest. Returns the
 * length written into b, which holds at least 150 bytes. */
static size_t rtq_like(char *b, const char *id, size_t idlen) {
  static const char head[] = {(char)0x8a, (char)0xa1, 'v', 0x01, (char)0xa2, 'i', 'd'};
  size_t n = sizeof head;
  memcpy(b, head, n);
  n += put_str_header(b + n, idlen);
  memcpy(b + n, id, idlen);
  n += idlen;
  memcpy(b + n, "\xa4name\xa4noop", 10);
  return n + 10;
}

/* Once the envelopes moved reach the reply budget, the remaining moves are
 * not made ('later'), and their envelopes stay queued. */
static void test_protocol_take_stops_at_the_reply_budget(void **state) {
  (void)state;
  create("b-1", NULL, 0);
  create("b-2", NULL, 0);
  create("b-3", NULL, 0);
  rtq_argv a;
  take_begin_budget(&a, 2, "300000", NO_LIMIT, "1");
  for (int i = 0; i < 3; i++) rtq_argv_add_str(&a, "1");
  redisReply *r = take_end(&a);
  entry(r, 0, "ok", 6);
  entry(r, 1, "later", 1);
  entry(r, 2, "later", 1);
  freeReplyObject(r);
  assert_int_equal(llen(rtq_keys_queue(&ks, "default")), 2);
  assert_field("b-2", "status", "pending");
  assert_field("b-3", "status", "pending");
}

/* A queue key of the wrong type fails the moves on that queue only: the
 * other queue's tasks are claimed and fully indexed. */
static void test_protocol_take_bad_queue_fails_only_its_moves(void **state) {
  (void)state;
  create("g-1", "second", 0);
  rtq_key q1 = rtq_keys_queue(&ks, "default");
  assert_int_equal(rtq_test_cmd_int(rc_, "HSET", q1.s, "not", "a list", NULL), 1);
  int moves[3] = {1, 2, 1};
  redisReply *r = take(moves, 3, NO_LIMIT);
  const redisReply *e = entry(r, 0, "error", 2);
  assert_non_null(strstr(e->element[1]->str, "WRONGTYPE"));
  entry(r, 1, "ok", 6);
  entry(r, 2, "empty", 1);
  freeReplyObject(r);
  assert_field("g-1", "status", "running");
  assert_true(zscore(rtq_keys_status(&ks, RTQ_STATUS_RUNNING), "g-1", NULL));
  assert_true(zscore(rtq_keys_deadlines(&ks), "g-1", NULL));
  assert_false(zscore(rtq_keys_status(&ks, RTQ_STATUS_PENDING), "g-1", NULL));
}

static void test_protocol_take_reads_only_valid_ids(void **state) {
  (void)state;
  /* 40 characters: the encoder writes the id as a str8. */
  const char *long_id = "abcdefghij-0123456789.ABCDEFGHIJ:klmnop_";
  assert_int_equal(strlen(long_id), 40);
  create(long_id, NULL, 0);
  redisReply *env_long = next_of("default");
  assert_int_equal((unsigned char)env_long->str[7], 0xd9);
  assert_int_equal((unsigned char)env_long->str[8], 40);

  char long_bad[41], too_long[129];
  memcpy(long_bad, long_id, 41);
  long_bad[20] = '/';
  memset(too_long, 'a', sizeof too_long);
  typedef struct bad {
    const char *id;
    size_t len;
  } bad;
  const bad raws[] = {
      {"ab cd", 5},  {"ab/cd", 5}, {"a\"b", 3},     {"x\xff", 2},
      {"tab\tid", 6}, {"", 0},      {long_bad, 40}, {too_long, 129},
  };
  size_t nraw = sizeof raws / sizeof raws[0];
  char buf[300];
  for (size_t i = 0; i < nraw; i++) lpush("default", buf, rtq_like(buf, raws[i].id, raws[i].len));
  /* A fixstr header that claims more bytes than follow. */
  static const char truncated[] = {(char)0x8a, (char)0xa1, 'v', 0x01, (char)0xa2, 'i', 'd',
                                   (char)0xaa, 'a', 'b', 'c'};
  lpush("default", truncated, sizeof truncated);
  /* The same layout with a valid id: read (the task does not exist). */
  size_t ctl_len = rtq_like(buf, "ab-cd", 5);
  lpush("default", buf, ctl_len);

  int moves[11];
  for (int i = 0; i < 11; i++) moves[i] = 1;
  uint64_t t0 = redis_now();
  redisReply *r = take(moves, 11, NO_LIMIT);
  uint64_t t1 = redis_now();
  assert_int_equal(r->elements, 11);
  assert_claimed(entry(r, 0, "ok", 6), long_id, env_long, TIMEOUT_MS, t0, t1);
  for (size_t i = 0; i < nraw; i++) {
    const redisReply *e = entry(r, 1 + i, "raw", 2);
    size_t len = rtq_like(buf, raws[i].id, raws[i].len);
    assert_bytes(e->element[1], buf, len);
  }
  entry(r, 9, "raw", 2);
  const redisReply *e = entry(r, 10, "missing", 3);
  assert_string_equal(e->element[2]->str, "ab-cd");
  freeReplyObject(r);
  assert_int_equal(llen(rtq_keys_processing(&ks, WID)), 11);
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", rtq_keys_status(&ks, RTQ_STATUS_RUNNING).s, NULL), 1);
  freeReplyObject(env_long);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_protocol_take_mixed_batch_maps_each_move, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_duplicate_envelope_is_skipped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_envelope_over_limit_is_raw, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_publishes_running_per_claim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_malformed_call_moves_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_reads_only_valid_ids, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_stops_at_the_reply_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_bad_queue_fails_only_its_moves, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
