/*
 * runtime.c - reading the task run-time histograms (P:runtime:<queue>,
 * kept by finish.lua from the workers' per-call aggregates; the buckets
 * are in common/runtime.h).
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define MAX_QUEUES 10000

_Static_assert(RTQ_RUN_BUCKETS == RTQ__RUN_BUCKETS, "one bucket list");

RTQ_EXTERN const char *rtq_run_bucket_le(int i) {
  return i >= 0 && i < RTQ_RUN_BUCKETS ? rtq__run_le[i] : NULL;
}

/* Fills h from an HGETALL reply; unknown fields are ignored. */
static void fill(rtq_run_histogram *h, const redisReply *r) {
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
    const redisReply *f = r->element[i], *v = r->element[i + 1];
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    uint64_t n = rtq__parse_u64(v->str, v->len);
    if (f->len == 6 && memcmp(f->str, "sum_us", 6) == 0) {
      h->sum_us = n;
      continue;
    }
    for (int b = 0; b < RTQ_RUN_BUCKETS; b++)
      if (strlen(rtq__run_le[b]) == f->len && memcmp(rtq__run_le[b], f->str, f->len) == 0) {
        h->count[b] = n;
        h->total += n;
        break;
      }
  }
}

RTQ_EXTERN int rtq_get_run_times(rtq_client *c, const char *const *queues, size_t n,
                                 rtq_run_times **out) {
  if (c == NULL || out == NULL || n > MAX_QUEUES || (n > 0 && queues == NULL)) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  for (size_t i = 0; i < n; i++) {
    int rc = rtq__check_name(c, "queue", queues[i]);
    if (rc != 0) return rc;
  }
  rtq_run_times *t = calloc(1, sizeof *t);
  if (t == NULL || (n > 0 && (t->queues = calloc(n, sizeof *t->queues)) == NULL)) {
    free(t);
    return RTQ_ENOMEM;
  }
  t->count = n;
  for (size_t i = 0; i < n; i++) strcpy(t->queues[i].queue, queues[i]);
  if (n == 0) {
    *out = t;
    return 0;
  }
  if (c->protocol == 2) {
    int rc = rtq__get_run_times2(c, queues, n, t);
    if (rc != 0) {
      rtq_run_times_free(t);
      return rc;
    }
    *out = t;
    return 0;
  }
  rtq_conn *conn = NULL;
  size_t sent = 0;
  int rc = rtq__pool_get(c, &conn);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "HGETALL");
    rc = rtq__argv_add_key(&a, rtq_keys_runtime(&c->keys, queues[i]));
    if (rc == 0) rc = rtq_conn_append(conn, &a);
    rtq_argv_destroy(&a);
    if (rc != 0) rc = rtq__client_conn_err(c, conn, rc, "redis");
    else sent++;
  }
  /* Every reply is read, so the connection goes back in step. */
  for (size_t i = 0; conn != NULL && i < sent; i++) {
    redisReply *r = NULL;
    int trc = rtq_conn_get_reply(conn, &r);
    if (trc != 0 && rc == 0) rc = rtq__client_conn_err(c, conn, trc, "redis");
    if (trc == 0 && r != NULL) fill(&t->queues[i], r);
    if (r != NULL) freeReplyObject(r);
    if (trc == RTQ_ECONN) break;
  }
  if (conn != NULL) rtq__pool_put(c, conn);
  if (rc != 0) {
    rtq_run_times_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

RTQ_EXTERN void rtq_run_times_free(rtq_run_times *t) {
  if (t == NULL) return;
  free(t->queues);
  free(t);
}
