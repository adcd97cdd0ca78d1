/*
 * test_ops2_util.h - what the protocol 2 operations tests (limits, purge,
 * tasks delete) share: tasks put in place through the v2 scripts' own
 * call builders on a test connection (create, take, finish: the producer
 * and worker sides), and readers of what the scripts left.
 *
 * Include after cmocka.h. Every helper asserts.
 */
#ifndef RTQ_TEST_OPS2_UTIL_H
#define RTQ_TEST_OPS2_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "calls2.h"
#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "scripts2.h"

#define OPS2_WID "w-ops2"

/* A client of the default server; the caller frees it. */
static inline rtq_client *ops2_client(void) {
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.protocol = 2;
  rtq_client *c = NULL;
  if (rtq_client_new(&o, &c) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  return c;
}

/* A test's start: the default server flushed, a protocol 2 client, a
 * connection for assertions with the v2 scripts loaded, the key schema of
 * namespace rtq. */
static inline void ops2_fixture(rtq_client **cl, rtq_conn **c, rtq_keys2 *k) {
  rtq_test_redis_flush();
  *cl = ops2_client();
  *c = rtq_test_conn();
  assert_int_equal(rtq_keys2_init(k, "rtq"), 0);
  assert_int_equal(rtq_scripts2_load(*c), 0);
}

static const rtq__keep2 OPS2_KEEP = {.result_ttl_s = 86400, .history = true, .cap = 10000};

/* Runs the call a builder laid out in a; the script must accept it. The
 * caller frees the reply. */
static inline redisReply *ops2_run(rtq_conn *c, rtq_argv *a, int built) {
  assert_int_equal(built, 0);
  redisReply *r = NULL;
  int rc = rtq_script2_run(c, a, &r);
  if (rc != 0) fail_msg("%s refused: %s", a->argv[0], r != NULL && r->str ? r->str : rtq_strerror(rc));
  return r;
}

/* Value type: what ops2_create_ex puts in each task. */
typedef struct ops2_spec {
  const char *name;     /* NULL: "job" */
  const void *args;     /* msgpack map; NULL: none */
  size_t args_len;
  uint64_t timeout_ms;  /* 0: the worker's default */
  uint64_t delay_ms;    /* > 0: in the delayed set */
} ops2_spec;

/* Creates n tasks on queue (registered in {ns}:queues), in calls of 64.
 * ids (may be NULL) gets their ids, 27 bytes each. */
static inline void ops2_create_ex(rtq_conn *c, const rtq_keys2 *k, const char *queue, int n, const ops2_spec *sp,
                                  char (*ids)[RTQ_ID2_LEN + 1]) {
  rtq_key2 qs = rtq_keys2_queues(k);
  rtq_test_cmd_int(c, "SADD", qs.s, queue, NULL);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq__create2_task t[RTQ__V2_MAX_TASKS];
  char made[RTQ__V2_MAX_TASKS][RTQ_ID2_LEN + 1];
  for (int done = 0; done < n;) {
    int m = n - done < RTQ__V2_MAX_TASKS ? n - done : RTQ__V2_MAX_TASKS;
    for (int i = 0; i < m; i++) {
      assert_int_equal(rtq_id2_new(made[i], rtq_keys2_slot(k, queue)), 0);
      if (ids != NULL) memcpy(ids[done + i], made[i], sizeof made[i]);
      memset(&t[i], 0, sizeof t[i]);
      t[i].id = made[i];
      t[i].name = sp->name != NULL ? sp->name : "job";
      t[i].args = sp->args;
      t[i].args_len = sp->args_len;
      t[i].timeout_ms = sp->timeout_ms;
      t[i].delay_ms = sp->delay_ms;
    }
    freeReplyObject(ops2_run(c, &a, rtq__call2_create(&a, k, false, queue, t, m)));
    done += m;
  }
  rtq_argv_destroy(&a);
}

/* n tasks "job" without args; delay_ms > 0 puts them in the delayed set. */
static inline void ops2_create(rtq_conn *c, const rtq_keys2 *k, const char *queue, int n, uint64_t delay_ms,
                               char (*ids)[RTQ_ID2_LEN + 1]) {
  ops2_spec sp = {.delay_ms = delay_ms};
  ops2_create_ex(c, k, queue, n, &sp, ids);
}

/* The msgpack map {"seconds": s} (rtq.sleep's args) into buf (18 bytes);
 * returns its length. */
static inline size_t ops2_sleep_args(double s, unsigned char buf[18]) {
  static const char key[] = "seconds";
  size_t n = 0;
  buf[n++] = 0x81;
  buf[n++] = 0xa0 | (unsigned char)(sizeof key - 1);
  memcpy(buf + n, key, sizeof key - 1);
  n += sizeof key - 1;
  buf[n++] = 0xcb;
  uint64_t bits;
  memcpy(&bits, &s, sizeof bits);
  for (int i = 7; i >= 0; i--) buf[n++] = (unsigned char)(bits >> (8 * i));
  return n;
}

/* Takes up to n tasks of queue as worker OPS2_WID; returns how many were
 * claimed (ok entries), their ids and attempts in ids/att (may be NULL). */
static inline int ops2_take(rtq_conn *c, const rtq_keys2 *k, const char *queue, int n,
                            char (*ids)[RTQ_ID2_LEN + 1], int64_t *att) {
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = ops2_run(c, &a, rtq__call2_take(&a, k, false, queue, OPS2_WID, 300000, n, 1 << 20));
  rtq__claim2_entry e[RTQ__V2_MAX_TASKS];
  int got = 0, ok = 0;
  assert_int_equal(rtq__reply2_claim(r, e, RTQ__V2_MAX_TASKS, &got), 0);
  for (int i = 0; i < got; i++) {
    if (e[i].kind != RTQ__CLAIM2_OK) continue;
    if (ids != NULL) snprintf(ids[ok], RTQ_ID2_LEN + 1, "%.*s", (int)e[i].id_len, e[i].id);
    if (att != NULL) att[ok] = e[i].attempt;
    ok++;
  }
  freeReplyObject(r);
  rtq_argv_destroy(&a);
  return ok;
}

/* Runs n tasks of queue to status (each take, then one finish). */
static inline void ops2_end(rtq_conn *c, const rtq_keys2 *k, const char *queue, int n, rtq_status status) {
  rtq_argv a;
  rtq_argv_init(&a);
  while (n > 0) {
    char ids[RTQ__V2_MAX_TASKS][RTQ_ID2_LEN + 1];
    int64_t att[RTQ__V2_MAX_TASKS];
    int m = ops2_take(c, k, queue, n < RTQ__V2_MAX_TASKS ? n : RTQ__V2_MAX_TASKS, ids, att);
    assert_true(m > 0);
    rtq__finish2_task t[RTQ__V2_MAX_TASKS];
    for (int i = 0; i < m; i++) {
      memset(&t[i], 0, sizeof t[i]);
      t[i].id = ids[i];
      t[i].attempt = (uint64_t)att[i];
      t[i].status = status;
      t[i].progress = -1;
    }
    freeReplyObject(ops2_run(c, &a, rtq__call2_finish(&a, k, false, queue, OPS2_WID, &OPS2_KEEP, NULL, 0, t, m)));
    n -= m;
  }
  rtq_argv_destroy(&a);
}

/* The status field of a task ("" when it has no hash); buf 16 bytes. */
static inline const char *ops2_status(rtq_conn *c, const rtq_keys2 *k, const char *queue, const char *id,
                                      char buf[16]) {
  rtq_key2 t = rtq_keys2_task(k, queue, id);
  char *s = rtq_test_cmd_str(c, "HGET", t.s, "s", NULL);
  snprintf(buf, 16, "%s", s != NULL ? s : "");
  free(s);
  return buf;
}

/* LLEN of a queue key. */
static inline long long ops2_llen(rtq_conn *c, rtq_key2 key) { return rtq_test_cmd_int(c, "LLEN", key.s, NULL); }

#endif
