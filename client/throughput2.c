/*
 * throughput2.c - rtq_throughput_record's snapshot, taken from the
 * per-queue counters {ns:Q}:stats (docs/PROTOCOL.md section 6; the layout
 * of the snapshot is in throughput.c).
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL_S 7200
#define MINUTE_MS 60000u

/* The two outcomes a snapshot keeps, from an HGETALL of {ns:Q}:stats. */
static void outcomes(const redisReply *h, uint64_t out[2]) {
  out[0] = out[1] = 0;
  for (size_t i = 0; h != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
    const redisReply *f = h->element[i];
    if (f->type != REDIS_REPLY_STRING) continue;
    if (strcmp(f->str, "completed") == 0) out[0] = rtq__reply_u64(h->element[i + 1]);
    if (strcmp(f->str, "failed") == 0) out[1] = rtq__reply_u64(h->element[i + 1]);
  }
}

/* HSETNX of every field, then EXPIRE: one pipeline of 2 + 2 * nq + 1. */
static int write_snapshot(rtq_client *c, rtq_conn *conn, rtq_key2 key, char **names, size_t nq,
                          redisReply **stats) {
  size_t n = 2 + 2 * nq + 1;
  rtq_argv *cmds = calloc(n, sizeof *cmds);
  redisReply **r = calloc(n, sizeof *r);
  if (cmds == NULL || r == NULL) {
    rtq__pipe2_free(cmds, r, 0);
    return RTQ_ENOMEM;
  }
  uint64_t total[2] = {0, 0};
  for (size_t i = 0; i < nq; i++) {
    uint64_t v[2];
    outcomes(stats[i], v);
    for (int j = 0; j < 2; j++) {
      char field[RTQ_TASK_ID_SIZE + 16];
      snprintf(field, sizeof field, "%s|%s", names[i], j == 0 ? "completed" : "failed");
      rtq_argv *a = &cmds[2 + 2 * i + (size_t)j];
      rtq_argv_init(a);
      rtq_argv_add_str(a, "HSETNX");
      rtq__argv_add_key2(a, key);
      rtq_argv_add_str(a, field);
      rtq_argv_add_u64(a, v[j]);
      total[j] += v[j];
    }
  }
  for (int j = 0; j < 2; j++) {
    rtq_argv_init(&cmds[j]);
    rtq_argv_add_str(&cmds[j], "HSETNX");
    rtq__argv_add_key2(&cmds[j], key);
    rtq_argv_add_str(&cmds[j], j == 0 ? "completed" : "failed");
    rtq_argv_add_u64(&cmds[j], total[j]);
  }
  rtq_argv_init(&cmds[n - 1]);
  rtq_argv_add_str(&cmds[n - 1], "EXPIRE");
  rtq__argv_add_key2(&cmds[n - 1], key);
  rtq_argv_add_u64(&cmds[n - 1], TTL_S);
  int rc = rtq__pipe2(c, conn, cmds, n, r);
  rtq__pipe2_free(cmds, r, n);
  return rc;
}

int rtq__throughput2_record(rtq_client *c, int *recorded) {
  char **names = NULL;
  size_t nq = 0;
  int rc = rtq__queues2_read(c, &names, &nq);
  if (rc != 0) return rc;
  rtq_conn *conn = NULL;
  rc = rtq__pool_get(c, &conn);
  uint64_t now = 0;
  if (rc == 0 && (rc = rtq_conn_time_ms(conn, &now)) != 0) rtq__client_conn_err(c, conn, rc, "redis TIME");
  rtq_key2 key = rtq_keys2_throughput(&c->keys2, now / MINUTE_MS);
  /* EXISTS first: a minute someone recorded already costs one command. */
  rtq_argv *cmds = calloc(nq + 1, sizeof *cmds);
  redisReply **r = calloc(nq + 1, sizeof *r);
  if (rc == 0 && (cmds == NULL || r == NULL)) rc = RTQ_ENOMEM;
  for (size_t i = 0; rc == 0 && i <= nq; i++) {
    rtq_argv_init(&cmds[i]);
    rtq_argv_add_str(&cmds[i], i == 0 ? "EXISTS" : "HGETALL");
    rtq__argv_add_key2(&cmds[i], i == 0 ? key : rtq_keys2_stats(&c->keys2, names[i - 1]));
  }
  if (rc == 0) rc = rtq__pipe2(c, conn, cmds, nq + 1, r);
  bool exists = rc == 0 && rtq__reply_u64(r[0]) > 0;
  if (rc == 0 && !exists) rc = write_snapshot(c, conn, key, names, nq, r + 1);
  if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
  if (rc == 0 && !exists && recorded != NULL) *recorded = 1;
  rtq__pipe2_free(cmds, r, cmds != NULL && r != NULL ? nq + 1 : 0);
  if (conn != NULL) rtq__pool_put(c, conn);
  rtq__queues2_free(names, nq);
  return rc;
}
