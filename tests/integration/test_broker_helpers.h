/*
 * test_broker_helpers.h - the producer's and the worker's part played
 * through protocol 1 (its Lua steps, run with rtq_script_run), for the
 * tests that still read protocol 1's keys. Each test gets a tb context
 * (test_broker_proc.h) with protocol 1's keys from tb_setup.
 */
#ifndef RTQ_TEST_BROKER_HELPERS_H
#define RTQ_TEST_BROKER_HELPERS_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "envelope.h"
#include "harness.h"
#include "keys.h"
#include "rtq/common.h"
#include "scripts.h"
#include "calls.h"

#define RTQ_TB_V1_FIELDS rtq_keys k;
#include "test_broker_proc.h"

static inline int tb_setup(void **state) {
  if (tb_open(state) != 0) return -1;
  tb *t = *state;
  if (rtq_keys_init(&t->k, "rtq", false) != 0 || rtq_scripts_load(t->c) != 0) return -1;
  return 0;
}

/* ---- Redis shortcuts ---------------------------------------------- */
/* HGET of a task field as a malloc'd string (NULL when absent). */
static inline char *tb_task_field(tb *t, const char *id, const char *field) {
  return rtq_test_cmd_str(t->c, "HGET", rtq_keys_task(&t->k, id).s, field, NULL);
}

/* Asserts a task field's value ("" expects the field to be absent). */
static inline void tb_assert_field(tb *t, const char *id, const char *field, const char *want) {
  char *v = tb_task_field(t, id, field);
  if (want[0] == '\0') {
    if (v != NULL) fail_msg("task %s field %s: expected none, got \"%s\"", id, field, v);
  } else {
    if (v == NULL) fail_msg("task %s field %s: expected \"%s\", got none", id, field, want);
    if (strcmp(v, want) != 0) fail_msg("task %s field %s: expected \"%s\", got \"%s\"", id, field, want, v);
  }
  free(v);
}

static inline long long tb_llen(tb *t, rtq_key k) { return rtq_test_cmd_int(t->c, "LLEN", k.s, NULL); }
static inline long long tb_zcard(tb *t, rtq_key k) { return rtq_test_cmd_int(t->c, "ZCARD", k.s, NULL); }
static inline long long tb_exists(tb *t, rtq_key k) { return rtq_test_cmd_int(t->c, "EXISTS", k.s, NULL); }
static inline bool tb_zhas(tb *t, rtq_key k, const char *member) {
  char *v = rtq_test_cmd_str(t->c, "ZSCORE", k.s, member, NULL);
  free(v);
  return v != NULL;
}
/* A P:stats counter ("q|redelivered"), 0 when absent. */
static inline long long tb_stat(tb *t, const char *queue, const char *counter) {
  char *v = rtq_test_cmd_str(t->c, "HGET", rtq_keys_stats(&t->k).s,
                             rtq_keys_stats_field(queue, counter).s, NULL);
  long long n = v != NULL ? atoll(v) : 0;
  free(v);
  return n;
}

/* Runs a script call built by a common/calls.h builder; returns the reply
 * (caller frees); asserts it arrived and is not an error. */
static inline redisReply *tb_script_run(tb *t, rtq_argv *a) {
  redisReply *r = NULL;
  int rc = rtq_script_run(t->c, a, &r);
  if (rc != 0) fail_msg("script failed: %s", rtq_conn_errstr(t->c));
  assert_non_null(r);
  rtq_argv_destroy(a);
  return r;
}

/* ---- the producer's part ------------------------------------------ */

typedef struct tb_task_opts {
  const char *queue;        /* NULL: "default" */
  uint64_t timeout_ms;
  uint32_t max_retries;
  uint64_t delay_ms;
  uint64_t retry_backoff_ms;
  uint64_t result_ttl_s;
  const char *name;         /* NULL: "noop" */
  const char *args;         /* msgpack map; NULL: an empty map */
  size_t args_len;
} tb_task_opts;

/* create.lua for a task "id"; returns the envelope bytes (malloc'd). */
static inline char *tb_create(tb *t, const char *id, const tb_task_opts *o, size_t *len) {
  tb_task_opts none = {0};
  if (o == NULL) o = &none;
  const char *queue = o->queue != NULL ? o->queue : "default";
  rtq_envelope e;
  rtq_envelope_init(&e);
  snprintf(e.id, sizeof e.id, "%s", id);
  const char *name = o->name != NULL ? o->name : "noop";
  const char *args = o->args != NULL ? o->args : rtq__empty_map;
  size_t args_len = o->args != NULL ? o->args_len : sizeof rtq__empty_map;
  snprintf(e.name, sizeof e.name, "%s", name);
  e.args = (char *)args; /* borrowed: e is not destroyed */
  e.args_len = args_len;
  snprintf(e.queue, sizeof e.queue, "%s", queue);
  e.timeout_ms = o->timeout_ms;
  e.max_retries = o->max_retries;
  e.attempt = 1;
  e.result_ttl_s = o->result_ttl_s;
  char *env = NULL;
  assert_int_equal(rtq_envelope_encode(&e, &env, len, NULL, 0), 0);
  rtq_argv a, keys, vals;
  rtq_argv_init(&a);
  rtq_argv_init(&keys);
  rtq_argv_init(&vals);
  const rtq__create_task ct = {.id = id, .name = name, .queue = queue, .env = env,
                               .env_len = *len, .args = args, .args_len = args_len,
                               .timeout_ms = o->timeout_ms, .max_retries = o->max_retries,
                               .result_ttl_s = o->result_ttl_s, .delay_ms = o->delay_ms,
                               .retry_backoff_ms = o->retry_backoff_ms};
  assert_int_equal(rtq__call_create_task(&keys, &vals, &t->k, &ct), 0);
  assert_int_equal(rtq__call_create(&a, &t->k, false, &keys, &vals), 0);
  rtq_argv_destroy(&keys);
  rtq_argv_destroy(&vals);
  redisReply *r = tb_script_run(t, &a);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 1);
  assert_int_equal(r->element[0]->element[0]->integer, 1);
  freeReplyObject(r);
  return env;
}

/* cancel.lua; returns the reply tag ("cancelled", "requested", ...). */
static inline void tb_cancel(tb *t, const char *id, const char *want_tag) {
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call_cancel(&a, &t->k, false, id, 86400, true, 3600000), 0);
  redisReply *r = tb_script_run(t, &a);
  assert_string_equal(r->element[0]->str, want_tag);
  freeReplyObject(r);
}

/* ---- the worker's part -------------------------------------------- */

/* heartbeat.lua for wid (fresh heartbeat, record TTL ttl_ms). */
static inline void tb_heartbeat(tb *t, const char *wid, int ttl_ms) {
  rtq_argv a;
  rtq_argv_init(&a);
  const rtq__hb_field host = {"host", "test"};
  assert_int_equal(rtq__call_heartbeat(&a, &t->k, false, wid, ttl_ms, &host, 1), 0);
  freeReplyObject(tb_script_run(t, &a));
}

/* Makes wid's last heartbeat age_ms old (Redis time), as if it died then. */
static inline void tb_age_worker(tb *t, const char *wid, uint64_t age_ms) {
  char score[32];
  snprintf(score, sizeof score, "%llu", (unsigned long long)(tb_redis_now(t) - age_ms));
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys_workers(&t->k).s, score, wid, NULL);
}

/* A claimed delivery: the envelope (malloc'd), its id and the attempt. */
typedef struct tb_claim {
  char *env;
  size_t len;
  char id[RTQ_NAME_MAX + 1];
  long long attempt;
} tb_claim;

static inline void tb_claim_free(tb_claim *c) {
  free(c->env);
  c->env = NULL;
}

/* LMOVE queue -> processing:<wid>, the worker's BLMOVE without blocking.
 * Returns false when the queue is empty. */
static inline bool tb_take(tb *t, const char *wid, const char *queue, tb_claim *out) {
  memset(out, 0, sizeof *out);
  redisReply *r = rtq_test_command(t->c, "LMOVE", rtq_keys_queue(&t->k, queue).s,
                                   rtq_keys_processing(&t->k, wid).s, "RIGHT", "LEFT", NULL);
  if (r->type == REDIS_REPLY_NIL) {
    freeReplyObject(r);
    return false;
  }
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  out->env = malloc(r->len);
  assert_non_null(out->env);
  memcpy(out->env, r->str, r->len);
  out->len = r->len;
  freeReplyObject(r);
  rtq_envelope e;
  rtq_envelope_init(&e);
  assert_int_equal(rtq_envelope_decode(out->env, out->len, 0, &e, NULL, 0), 0);
  snprintf(out->id, sizeof out->id, "%s", e.id);
  rtq_envelope_destroy(&e);
  return true;
}

/* claim.lua's call for the one envelope cl, as worker wid, into a. */
static inline void tb_claim_argv(tb *t, rtq_argv *a, const char *wid, const tb_claim *cl) {
  rtq_argv_init(a);
  const rtq__claim_task ct = {cl->id, cl->env, cl->len};
  assert_int_equal(rtq__call_claim(a, &t->k, false, wid, 300000, &ct, 1), 0);
}

/* tb_take then claim.lua: the task is running under wid. Returns false
 * when the queue is empty; asserts claim said 'ok'. */
static inline bool tb_claim_next(tb *t, const char *wid, const char *queue, tb_claim *out) {
  if (!tb_take(t, wid, queue, out)) return false;
  rtq_argv a;
  tb_claim_argv(t, &a, wid, out);
  redisReply *r = tb_script_run(t, &a);
  const redisReply *e = r->element[0]; /* one entry per task */
  if (strcmp(e->element[0]->str, "ok") != 0)
    fail_msg("claim of %s: expected ok, got %s", out->id, e->element[0]->str);
  out->attempt = e->element[1]->integer;
  freeReplyObject(r);
  return true;
}

/* finish.lua as wid; returns the reply tag ("ok", "retry", "stale"). */
static inline char *tb_finish(tb *t, const char *wid, const tb_claim *cl, const char *status,
                              const char *error_code) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq__finish_task ft = {.id = cl->id, .env = cl->env, .env_len = cl->len,
                         .attempt = (uint64_t)cl->attempt};
  assert_int_equal(rtq_status_parse(status, &ft.status), 0);
  rtq__finish_field_str(&ft, "jitter", "0");
  if (error_code[0] != '\0') {
    rtq__finish_field_str(&ft, "error_code", error_code);
    rtq__finish_field_str(&ft, "error_message", "boom");
  }
  assert_int_equal(rtq__call_finish(&a, &t->k, false, wid, 86400, true, NULL, 0), 0);
  assert_int_equal(rtq__call_finish_task(&a, &ft), 0);
  redisReply *r = tb_script_run(t, &a);
  char *tag = strdup(r->element[0]->element[0]->str); /* one entry per task */
  freeReplyObject(r);
  return tag;
}

/* ---- pub/sub -------------------------------------------------------- */

/* A new connection subscribed to channel k. Caller frees it. */
static inline rtq_conn *tb_subscribe(tb *t, rtq_key k) { return tb_subscribe_to(t, k.s); }

/* The current lease holder (malloc'd), NULL when nobody holds it. */
static inline char *tb_lease_holder(tb *t) {
  return rtq_test_cmd_str(t->c, "GET", rtq_keys_lease(&t->k).s, NULL);
}

static inline bool tb_lease_is(tb *t, const char *who) {
  char *h = tb_lease_holder(t);
  bool same = h != NULL && who != NULL ? strcmp(h, who) == 0 : h == who;
  free(h);
  return same;
}

/* True when the dead-letter list holds a record mentioning `needle`
 * (records are msgpack maps, whose strings are stored as plain bytes). */
static inline bool tb_dead_has(tb *t, const char *needle) {
  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys_dead(&t->k).s, "0", "-1", NULL);
  bool found = false;
  for (size_t i = 0; i < r->elements && !found; i++)
    found = memmem(r->element[i]->str, r->element[i]->len, needle, strlen(needle)) != NULL;
  freeReplyObject(r);
  return found;
}

#endif
