/*
 * test_protocol_batch.c - claim.lua and finish.lua with several tasks per
 * call and mixed outcomes: each reply entry belongs to its own task, each
 * task is fenced on its own, and a malformed call is refused before it
 * writes anything.
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
#include "harness.h"
#include "keys.h"
#include "rtq/client.h"
#include "scripts.h"
#include "test_client_fixture.h"
#include "calls.h"

#define WID "w-batch"

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

static void create(const char *id, uint32_t max_retries) {
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.id = id;
  o.max_retries = max_retries;
  o.retry_backoff_ms = 60000;
  char out[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(cl, "noop", NULL, &o, out, NULL), 0);
}

/* LMOVE the next envelope into the processing list; returns its bytes. */
static redisReply *take(void) {
  rtq_key q = rtq_keys_queue(&ks, "default"), p = rtq_keys_processing(&ks, WID);
  redisReply *r = rtq_test_command(rc_, "LMOVE", q.s, p.s, "RIGHT", "LEFT", NULL);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  return r;
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

/* claim.lua for the given (id, envelope) pairs. */
static redisReply *claim(const char **ids, redisReply **envs, int n) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq__claim_task *t = calloc((size_t)n, sizeof *t);
  assert_non_null(t);
  for (int i = 0; i < n; i++) t[i] = (rtq__claim_task){ids[i], envs[i]->str, envs[i]->len};
  assert_int_equal(rtq__call_claim(&a, &ks, true, WID, 300000, t, n), 0);
  free(t);
  redisReply *r = rtq_test_command_argv(rc_, &a);
  rtq_argv_destroy(&a);
  return r;
}

typedef struct fin {
  const char *id;
  redisReply *env;
  const char *attempt;
  const char *status;
  const char *jitter;
} fin;

/* finish.lua for the given completions. */
static redisReply *finish(const fin *f, int n) {
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call_finish(&a, &ks, true, WID, 86400, true, NULL, 0), 0);
  for (int i = 0; i < n; i++) {
    rtq__finish_task t = {.id = f[i].id, .env = f[i].env->str, .env_len = f[i].env->len,
                          .attempt = strtoull(f[i].attempt, NULL, 10),
                          .result = "\xc0", .result_len = 1}; /* result: nil */
    assert_int_equal(rtq_status_parse(f[i].status, &t.status), 0);
    if (t.status == RTQ_STATUS_FAILED) {
      rtq__finish_field_str(&t, "error_code", "E_TEST");
      rtq__finish_field_str(&t, "error_message", "it failed \"on purpose\"");
      rtq__finish_field_str(&t, "jitter", f[i].jitter);
    }
    rtq__finish_field_str(&t, "progress", "100");
    rtq__finish_field_str(&t, "progress_message", "done");
    assert_int_equal(rtq__call_finish_task(&a, &t), 0);
  }
  redisReply *r = rtq_test_command_argv(rc_, &a);
  rtq_argv_destroy(&a);
  return r;
}

static const char *tag(const redisReply *r, size_t i) {
  assert_true(r->type == REDIS_REPLY_ARRAY && i < r->elements);
  const redisReply *e = r->element[i];
  assert_true(e->type == REDIS_REPLY_ARRAY && e->elements >= 1);
  return e->element[0]->str;
}

static void test_protocol_batch_claim_and_finish_map_each_task(void **state) {
  (void)state;
  create("b-ok", 0);
  create("b-cancelled", 0);
  create("b-retry", 1);
  create("b-stale", 0);
  redisReply *env[4];
  for (int i = 0; i < 4; i++) env[i] = take();
  assert_int_equal(rtq_cancel_task(cl, "b-cancelled", NULL), 0);
  /* An envelope whose task hash does not exist: claim reports it missing. */
  const char *ids[5] = {"b-ok", "b-cancelled", "b-retry", "b-stale", "b-nohash"};
  redisReply *envs[5] = {env[0], env[1], env[2], env[3], env[0]};

  redisReply *r = claim(ids, envs, 5);
  assert_int_equal(r->elements, 5);
  assert_string_equal(tag(r, 0), "ok");
  assert_string_equal(tag(r, 1), "skip");
  assert_string_equal(tag(r, 2), "ok");
  assert_string_equal(tag(r, 3), "ok");
  assert_string_equal(tag(r, 4), "missing");
  freeReplyObject(r);
  assert_field("b-ok", "status", "running");
  assert_field("b-cancelled", "status", "cancelled");
  assert_field("b-stale", "attempt", "1");

  /* One call: a completion, a retried failure, and a stale result (wrong
   * attempt) whose task must stay running. */
  fin f[3] = {{"b-ok", env[0], "1", "completed", "0"},
              {"b-retry", env[2], "1", "failed", "7"},
              {"b-stale", env[3], "2", "completed", "0"}};
  r = finish(f, 3);
  assert_int_equal(r->elements, 3);
  assert_string_equal(tag(r, 0), "ok");
  assert_string_equal(tag(r, 1), "retry");
  assert_string_equal(tag(r, 2), "stale");
  freeReplyObject(r);
  assert_field("b-ok", "status", "completed");
  assert_field("b-ok", "progress", "100");
  assert_field("b-retry", "status", "pending");
  assert_field("b-retry", "error_code", "E_TEST");
  assert_field("b-stale", "status", "running");
  rtq_key t = rtq_keys_task(&ks, "b-ok");
  assert_true(rtq_test_cmd_int(rc_, "TTL", t.s, NULL) > 0);
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", rtq_keys_delayed(&ks).s, NULL), 1);
  rtq_key done = rtq_keys_status(&ks, RTQ_STATUS_COMPLETED);
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", done.s, NULL), 1);
  rtq_key running = rtq_keys_status(&ks, RTQ_STATUS_RUNNING);
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", running.s, NULL), 1);
  for (int i = 0; i < 4; i++) freeReplyObject(env[i]);
}

static void test_protocol_batch_malformed_call_writes_nothing(void **state) {
  (void)state;
  create("m-1", 0);
  create("m-2", 0);
  redisReply *env[2] = {take(), take()};
  const char *ids[2] = {"m-1", "m-2"};
  redisReply *r = claim(ids, env, 2);
  freeReplyObject(r);
  /* The second completion carries a jitter that is not a number: the call
   * is refused before the first task is written. */
  fin f[2] = {{"m-1", env[0], "1", "completed", "0"}, {"m-2", env[1], "1", "failed", "soon"}};
  r = finish(f, 2);
  assert_int_equal(r->type, REDIS_REPLY_ERROR);
  freeReplyObject(r);
  /* A field finish does not know, and a count of pairs past the end. */
  const char *bad[][3] = {{"1", "owner", "x"}, {"3", "progress", "5"}};
  for (int b = 0; b < 2; b++) {
    rtq_argv a;
    rtq_argv_init(&a);
    /* The fixed part from the builder; the task's values by hand, since
     * the builder cannot write them wrong. */
    assert_int_equal(rtq__call_finish(&a, &ks, true, WID, 86400, true, NULL, 0), 0);
    rtq_argv_add_str(&a, "m-1");
    rtq_argv_add(&a, env[0]->str, env[0]->len);
    rtq_argv_add_str(&a, "1");
    rtq_argv_add_str(&a, "completed");
    rtq_argv_add_str(&a, "");
    for (int i = 0; i < 3; i++) rtq_argv_add_str(&a, bad[b][i]);
    r = rtq_test_command_argv(rc_, &a);
    rtq_argv_destroy(&a);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
  }
  assert_field("m-1", "status", "running");
  assert_field("m-2", "status", "running");
  rtq_key p = rtq_keys_processing(&ks, WID);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", p.s, NULL), 2);
  freeReplyObject(env[0]);
  freeReplyObject(env[1]);
}

/* One completion of m-1 (running, attempt 1) after the run-time part
 * given by hand (args after the prefix: the group count and groups). */
static redisReply *finish_with_runs(const redisReply *env, const char *const *runs, int nruns) {
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call_finish(&a, &ks, true, WID, 86400, true, NULL, 0), 0);
  rtq_argv_pop(&a); /* the builder's group count: "0" */
  for (int i = 0; i < nruns; i++) rtq_argv_add_str(&a, runs[i]);
  rtq_argv_add_str(&a, "m-1");
  rtq_argv_add(&a, env->str, env->len);
  rtq_argv_add_str(&a, "1");
  rtq_argv_add_str(&a, "completed");
  rtq_argv_add_str(&a, "");
  rtq_argv_add_str(&a, "0");
  redisReply *r = rtq_test_command_argv(rc_, &a);
  rtq_argv_destroy(&a);
  return r;
}

/* The worker's run-time aggregates land in P:runtime:<queue>, one field
 * per touched bucket (its le) and sum_us; a malformed group is refused
 * before anything is written. */
static void test_protocol_batch_run_times(void **state) {
  (void)state;
  create("m-1", 0);
  redisReply *env = take();
  const char *ids[1] = {"m-1"};
  freeReplyObject(claim(ids, &env, 1));
  rtq_key rt = rtq_keys_runtime(&ks, "default");
  const char *bad[][7] = {
      {"1", "default", "100", "1", "17", "1", NULL},    /* no bucket 17 */
      {"1", "default", "100", "1", "3", "2", NULL},     /* 2 runs, 1 task */
      {"1", "default", "1e3", "1", "3", "1", NULL},     /* not a whole sum */
      {"1", "default", "-5", "1", "3", "1", NULL},
      {"1", "default", "100", "1", "3", "01", NULL},    /* not as Redis reads it */
      {"1", "no queue!", "100", "1", "3", "1", NULL},
      {"1", "default", "100", "0", NULL},               /* n < 1 */
      {"1", "default", "100", "2", "3", "1", NULL},     /* n past the groups */
      {"257", NULL},
      {"x", NULL},
  };
  for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
    int n = 0;
    while (n < 7 && bad[b][n] != NULL) n++;
    redisReply *r = finish_with_runs(env, bad[b], n);
    if (r->type != REDIS_REPLY_ERROR) fail_msg("case %zu was accepted", b);
    freeReplyObject(r);
  }
  assert_field("m-1", "status", "running");
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", rt.s, NULL), 0);

  /* The builder: a bad queue is refused before anything is sent. */
  rtq_argv a;
  rtq_argv_init(&a);
  rtq__run_group g = {.queue = "no queue!", .sum_us = 1};
  g.count[0] = 1;
  assert_int_equal(rtq__call_finish(&a, &ks, true, WID, 86400, true, &g, 1), RTQ_EINVAL);
  rtq_argv_destroy(&a);

  /* The run of this call: 150 ms, bucket 5 (le 0.25). */
  const char *good[] = {"1", "default", "150000", "1", "5", "1"};
  redisReply *r = finish_with_runs(env, good, 6);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_string_equal(tag(r, 0), "ok");
  freeReplyObject(r);
  const char *want[][2] = {{"0.25", "1"}, {"sum_us", "150000"}};
  for (int i = 0; i < 2; i++) {
    char *v = rtq_test_cmd_str(rc_, "HGET", rt.s, want[i][0], NULL);
    if (v == NULL || strcmp(v, want[i][1]) != 0) fail_msg("%s = %s, want %s", want[i][0], v ? v : "(nil)", want[i][1]);
    free(v);
  }
  assert_int_equal(rtq_test_cmd_int(rc_, "HLEN", rt.s, NULL), 2);
  freeReplyObject(env);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_protocol_batch_run_times, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_batch_claim_and_finish_map_each_task, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_protocol_batch_malformed_call_writes_nothing, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
