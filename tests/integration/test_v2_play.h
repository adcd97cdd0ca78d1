/*
 * test_v2_play.h - the producer and worker sides of protocol 2 played with
 * the v2 scripts' call builders (common/calls2.h) on the default test
 * server, for the tests of the client's reading calls, the CLI and
 * rtq-web under protocol 2. Namespace "rtq"; every helper asserts.
 */
#ifndef RTQ_TEST_V2_PLAY_H
#define RTQ_TEST_V2_PLAY_H

#include <stdio.h>
#include <string.h>

#include "calls2.h"
#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "scripts2.h"

typedef struct v2_play {
  rtq_conn *c;
  rtq_keys2 k;
  rtq_argv a;
} v2_play;

static const rtq__keep2 V2_KEEP = {.result_ttl_s = 86400, .history = true, .cap = 10000};

/* A protocol 2 client of the harness's Redis, flushed first. The test
 * fails when it cannot connect. */
static inline rtq_client *v2_play_client(void) {
  rtq_test_redis_flush();
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.protocol = 2;
  rtq_client *cl = NULL;
  if (rtq_client_new(&o, &cl) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  return cl;
}

static inline void v2_play_init(v2_play *p) {
  p->c = rtq_test_conn();
  assert_int_equal(rtq_scripts2_load(p->c), 0);
  assert_int_equal(rtq_keys2_init(&p->k, "rtq"), 0);
  rtq_argv_init(&p->a);
}

static inline void v2_play_destroy(v2_play *p) {
  rtq_argv_destroy(&p->a);
  rtq_conn_free(p->c);
}

/* Runs the call a builder laid out; the script must accept it. The reply
 * is the caller's. */
static inline redisReply *v2_run(v2_play *p, int built) {
  assert_int_equal(built, 0);
  redisReply *r = NULL;
  int rc = rtq_script2_run(p->c, &p->a, &r);
  if (rc != 0) fail_msg("%s refused: %s", p->a.argv[0], r != NULL && r->str ? r->str : rtq_strerror(rc));
  return r;
}

/* n (<= 64) pending tasks "<prefix><i>" (i as 2 digits) of queue, in one
 * create call, the queue registered first as a producer does. */
static inline void v2_create_n(v2_play *p, const char *queue, const char *prefix, int n) {
  rtq_test_cmd_int(p->c, "SADD", rtq_keys2_queues(&p->k).s, queue, NULL);
  rtq__create2_task t[64];
  char ids[64][32];
  memset(t, 0, sizeof t);
  for (int i = 0; i < n; i++) {
    snprintf(ids[i], sizeof ids[i], "%s%02d", prefix, i);
    t[i].id = ids[i];
    t[i].name = "job";
  }
  freeReplyObject(v2_run(p, rtq__call2_create(&p->a, &p->k, false, queue, t, n)));
}

/* Worker wid takes up to n tasks of queue; returns how many it claimed. */
static inline int v2_take(v2_play *p, const char *queue, const char *wid, int n) {
  redisReply *r = v2_run(p, rtq__call2_take(&p->a, &p->k, false, queue, wid, 300000, n, 1 << 20));
  rtq__claim2_entry e[64];
  int got = 0;
  assert_int_equal(rtq__reply2_claim(r, e, 64, &got), 0);
  freeReplyObject(r);
  return got;
}

/* Worker wid ends its first attempt of task id with status st. */
static inline void v2_finish(v2_play *p, const char *queue, const char *wid, const char *id, rtq_status st) {
  rtq__finish2_task t = {.id = id, .attempt = 1, .status = st, .progress = -1};
  freeReplyObject(v2_run(p, rtq__call2_finish(&p->a, &p->k, false, queue, wid, &V2_KEEP, NULL, 0, &t, 1)));
}

/* A heartbeat of worker wid serving queues ("a,b"). */
static inline void v2_heartbeat(v2_play *p, const char *wid, const char *queues) {
  rtq__field2 f[] = {{"host", "h1"}, {"pid", "42"}, {"queues", queues}, {"busy", "1"}, {"slots", "4"}};
  freeReplyObject(v2_run(p, rtq__call2_heartbeat(&p->a, &p->k, false, wid, 30000, f, 5)));
}

/* Worker wid dead-letters entry from its processing list of queue. */
static inline void v2_deadletter(v2_play *p, const char *queue, const char *wid, const char *entry,
                                 const char *code) {
  rtq_test_cmd_int(p->c, "LPUSH", rtq_keys2_processing(&p->k, queue, wid).s, entry, NULL);
  freeReplyObject(v2_run(p, rtq__call2_deadletter(&p->a, &p->k, false, queue, (rtq__bytes2){entry, strlen(entry)},
                                                   code, "why", wid, false, &V2_KEEP)));
}

#endif
