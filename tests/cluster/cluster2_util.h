/* cluster2_util.h - what the protocol 2 cluster tests of the worker
 * share: queues placed on chosen nodes, and reading tasks back. */
#ifndef RTQ_TEST_CLUSTER2_UTIL_H
#define RTQ_TEST_CLUSTER2_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "keys2.h"

/* A queue "<prefix><n>" whose slot node owns at the cluster's start. */
static inline void queue_on(rtq_test_cluster *cl, const rtq_keys2 *k, int node, const char *prefix, char out[16]) {
  for (int n = 0; n < 100000; n++) {
    snprintf(out, 16, "%s%d", prefix, n);
    if (rtq_test_cluster_owner_at_start(cl, rtq_keys2_slot(k, out)) == node) return;
  }
  out[0] = '\0';
}

/* Reads the status and attempt of n tasks (ids[i] in queues[i]) through
 * the cluster connection c, pipelined 500 at a time: counts those
 * completed in their first attempt in *once and those completed at all in
 * *done. 0, or -1 when a read failed. */
static inline int read_back(rtq_conn *c, const rtq_keys2 *k, char (*ids)[40], const char *const *queues, int n,
                            int *done, int *once) {
  *done = *once = 0;
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = 0;
  for (int from = 0; from < n && rc == 0; from += 500) {
    int to = from + 500 < n ? from + 500 : n;
    for (int i = from; i < to && rc == 0; i++) {
      rtq_argv_reset(&a);
      rtq_argv_add_str(&a, "HMGET");
      rtq_key2 t = rtq_keys2_task(k, queues[i], ids[i]);
      rtq_argv_add(&a, t.s, t.len);
      rtq_argv_add_str(&a, "s");
      rtq_argv_add_str(&a, "a");
      rc = rtq_conn_append(c, &a);
    }
    for (int i = from; i < to && rc == 0; i++) {
      redisReply *r = NULL;
      rc = rtq_conn_get_reply(c, &r);
      if (rc != 0) break;
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
          strcmp(r->element[0]->str, "completed") == 0) {
        (*done)++;
        if (r->element[1]->type == REDIS_REPLY_STRING && strcmp(r->element[1]->str, "1") == 0) (*once)++;
      }
      freeReplyObject(r);
    }
  }
  rtq_argv_destroy(&a);
  return rc == 0 ? 0 : -1;
}

/* A direct (single-node) connection to node i. (asserts) */
static inline rtq_conn *node_conn(rtq_test_cluster *cl, int i) {
  return rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, i)));
}

/* CLUSTER SETSLOT slot how [id] on node. (asserts) */
static inline void setslot(rtq_test_cluster *cl, int node, const char *slot, const char *how, const char *id) {
  rtq_conn *d = node_conn(cl, node);
  if (id != NULL)
    rtq_test_cmd_ok(d, "CLUSTER", "SETSLOT", slot, how, id, NULL);
  else
    rtq_test_cmd_ok(d, "CLUSTER", "SETSLOT", slot, how, NULL);
  rtq_conn_free(d);
}

/* MIGRATEs every key of the slot from node `from` to node `to`, 50 at a
 * time, until none is left (bounded: 10 s). (asserts) */
static inline void migrate_keys(rtq_test_cluster *cl, int from, int to, const char *slot) {
  rtq_conn *s = node_conn(cl, from);
  char port[16];
  snprintf(port, sizeof port, "%d", rtq_test_redis_port(rtq_test_cluster_node(cl, to)));
  uint64_t until = rtq_test_now_ms() + 10000;
  rtq_argv a;
  rtq_argv_init(&a);
  for (;;) {
    assert_true(rtq_test_now_ms() < until);
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "CLUSTER");
    rtq_argv_add_str(&a, "GETKEYSINSLOT");
    rtq_argv_add_str(&a, slot);
    rtq_argv_add_str(&a, "50");
    redisReply *r = NULL;
    assert_int_equal(rtq_conn_command(s, &a, &r), 0);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    if (r->elements == 0) {
      freeReplyObject(r);
      break;
    }
    rtq_argv_reset(&a);
    const char *head[] = {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS"};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) rtq_argv_add_str(&a, head[i]);
    for (size_t i = 0; i < r->elements; i++) rtq_argv_add(&a, r->element[i]->str, r->element[i]->len);
    freeReplyObject(r);
    r = NULL;
    assert_int_equal(rtq_conn_command(s, &a, &r), 0);
    if (r->type == REDIS_REPLY_ERROR) fail_msg("MIGRATE: %s", r->str);
    freeReplyObject(r);
  }
  rtq_argv_destroy(&a);
  rtq_conn_free(s);
}

/* The progress message (field pm) of task id of queue q, read through c
 * (a cluster connection follows ASK), in out; "" when none. */
static inline void progress_of(rtq_conn *c, const rtq_keys2 *k, const char *q, const char *id, char *out,
                               size_t cap) {
  rtq_key2 t = rtq_keys2_task(k, q, id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HGET");
  rtq_argv_add(&a, t.s, t.len);
  rtq_argv_add_str(&a, "pm");
  redisReply *r = NULL;
  out[0] = '\0';
  if (rtq_conn_command(c, &a, &r) == 0 && r->type == REDIS_REPLY_STRING) snprintf(out, cap, "%s", r->str);
  if (r != NULL) freeReplyObject(r);
  rtq_argv_destroy(&a);
}

#endif
