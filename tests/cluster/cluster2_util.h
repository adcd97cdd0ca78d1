/* cluster2_util.h - what the protocol 2 cluster tests of the worker
 * share: queues placed on chosen nodes, and reading tasks back. */
#ifndef RTQ_TEST_CLUSTER2_UTIL_H
#define RTQ_TEST_CLUSTER2_UTIL_H

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

#endif
