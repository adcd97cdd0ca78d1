/*
 * test_broker2_helpers.h - what the protocol 2 broker tests
 * (test_broker2_*.c) share: the producer's and the worker's part played
 * with the v2 call builders (calls2.h), and the v2 keys to look at. The
 * rtq-broker process helpers are test_broker_proc.h's; every broker these
 * tests start with tb2_broker_* gets --protocol 2.
 */
#ifndef RTQ_TEST_BROKER2_HELPERS_H
#define RTQ_TEST_BROKER2_HELPERS_H

#include "calls2.h"
#include "keys2.h"
#include "scripts2.h"
#include "test_broker_proc.h"

static rtq_keys2 K2;

static inline int tb2_setup(void **state) {
  if (tb_open(state) != 0) return -1;
  tb *t = *state;
  if (rtq_keys2_init(&K2, "rtq") != 0 || rtq_scripts2_load(t->c) != 0) return -1;
  return 0;
}

/* Runs a v2 call; returns the reply (caller frees); asserts no error. */
static inline redisReply *tb2_run(tb *t, rtq_argv *a) {
  redisReply *r = NULL;
  int rc = rtq_script2_run(t->c, a, &r);
  if (rc != 0) fail_msg("v2 script failed: %s", rtq_conn_errstr(t->c));
  assert_non_null(r);
  rtq_argv_destroy(a);
  return r;
}

typedef struct tb2_opts {
  uint64_t timeout_ms, max_retries, delay_ms, result_ttl_s, retry_backoff_ms;
  const char *name;      /* NULL: "noop" */
  const void *args;      /* msgpack; NULL: none */
  size_t args_len;
} tb2_opts;

/* A producer's create of task id on queue (registered in {ns}:queues). */
static inline void tb2_create(tb *t, const char *queue, const char *id, const tb2_opts *o) {
  tb2_opts none = {0};
  if (o == NULL) o = &none;
  rtq_test_cmd_int(t->c, "SADD", rtq_keys2_queues(&K2).s, queue, NULL);
  rtq__create2_task ct = {.id = id, .name = o->name != NULL ? o->name : "noop",
                          .args = o->args, .args_len = o->args_len, .timeout_ms = o->timeout_ms,
                          .max_retries = o->max_retries, .delay_ms = o->delay_ms,
                          .result_ttl_s = o->result_ttl_s,
                          .retry_backoff_ms = o->retry_backoff_ms};
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_create(&a, &K2, false, queue, &ct, 1), 0);
  redisReply *r = tb2_run(t, &a);
  rtq__create2_result res;
  int n = 0;
  assert_int_equal(rtq__reply2_create(r, &res, 1, &n), 0);
  assert_int_equal(n, 1);
  assert_true(res.created);
  freeReplyObject(r);
}

/* n tasks "<prefix>-<i>" on queue. */
static inline void tb2_create_n(tb *t, const char *queue, const char *prefix, int n,
                                const tb2_opts *o) {
  for (int i = 0; i < n; i++) {
    char id[64];
    snprintf(id, sizeof id, "%s-%04d", prefix, i);
    tb2_create(t, queue, id, o);
  }
}

/* A worker's heartbeat: record (ttl_ms) naming queues ("a:1,b:1"). */
static inline void tb2_heartbeat(tb *t, const char *wid, int64_t ttl_ms, const char *queues) {
  rtq__field2 f[2] = {{"host", "test"}, {"queues", queues}};
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_heartbeat(&a, &K2, false, wid, ttl_ms, f, 2), 0);
  freeReplyObject(tb2_run(t, &a));
}

/* take as wid until queue is empty; returns the tasks now running. */
static inline int tb2_take_all(tb *t, const char *wid, const char *queue) {
  int total = 0;
  for (int round = 0; round < 1000; round++) {
    rtq_argv a;
    rtq_argv_init(&a);
    assert_int_equal(rtq__call2_take(&a, &K2, false, queue, wid, 300000, RTQ__V2_MAX_TASKS, 1 << 20), 0);
    redisReply *r = tb2_run(t, &a);
    rtq__claim2_entry e[RTQ__V2_MAX_TASKS];
    int n = 0;
    assert_int_equal(rtq__reply2_claim(r, e, RTQ__V2_MAX_TASKS, &n), 0);
    for (int i = 0; i < n; i++) total += e[i].kind == RTQ__CLAIM2_OK;
    freeReplyObject(r);
    if (n == 0) break;
  }
  return total;
}

/* wid's heartbeat score set age_ms into the past (Redis time). */
static inline void tb2_age_worker(tb *t, const char *wid, uint64_t age_ms) {
  char score[32];
  snprintf(score, sizeof score, "%llu", (unsigned long long)(tb_redis_now(t) - age_ms));
  rtq_test_cmd_int(t->c, "ZADD", rtq_keys2_workers(&K2).s, score, wid, NULL);
}

/* A task field (malloc'd; NULL when absent). */
static inline char *tb2_field(tb *t, const char *queue, const char *id, const char *field) {
  return rtq_test_cmd_str(t->c, "HGET", rtq_keys2_task(&K2, queue, id).s, field, NULL);
}

static inline bool tb2_field_is(tb *t, const char *queue, const char *id, const char *field,
                                const char *want) {
  char *v = tb2_field(t, queue, id, field);
  bool same = v != NULL && strcmp(v, want) == 0;
  free(v);
  return same;
}

static inline long long tb2_len(tb *t, rtq_key2 k) {
  return rtq_test_cmd_int(t->c, "LLEN", k.s, NULL);
}

/* A counter of {ns:Q}:stats, or of {ns}:broker when queue is NULL. */
static inline long long tb2_stat(tb *t, const char *queue, const char *counter) {
  rtq_key2 k = queue != NULL ? rtq_keys2_stats(&K2, queue) : rtq_keys2_broker(&K2);
  char *v = rtq_test_cmd_str(t->c, "HGET", k.s, counter, NULL);
  long long n = v != NULL ? atoll(v) : 0;
  free(v);
  return n;
}

/* The {ns}:lease holder is who (NULL: nobody holds it). */
static inline bool tb_lease_is_v2(tb *t, const char *who) {
  char *h = rtq_test_cmd_str(t->c, "GET", rtq_keys2_lease(&K2).s, NULL);
  bool same = h != NULL && who != NULL ? strcmp(h, who) == 0 : h == who;
  free(h);
  return same;
}

/* --once --protocol 2 with the given flags. */
#define tb2_broker_once(t, ...) tb_broker_once((t), "--protocol", "2", __VA_ARGS__)
#define tb2_broker_start(t, ...) tb_broker_start((t), "--protocol", "2", __VA_ARGS__)

#endif
