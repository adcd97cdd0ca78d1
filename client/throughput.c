/*
 * throughput.c - the per-minute history of finished tasks, kept in Redis
 * so that it survives a restart of whoever shows it and is the same from
 * any process.
 *
 * The per-queue counters {ns:Q}:stats already count every outcome (the
 * scripts add to them as tasks end). rtq_throughput_record()
 * (throughput2.c) copies the completed and failed totals, once per
 * minute, into {ns}:throughput:<minute> (a hash with a 2 h TTL): totals
 * "completed" and "failed", and "<queue>|completed", "<queue>|failed".
 * The history of minute m is then snapshot(m+1) - snapshot(m).
 *
 * Nothing happens per task: the cost is a few commands per caller every
 * time it records (rtq-web does every 10 s), whatever the load. Several
 * callers may record; HSETNX keeps the first snapshot of a minute. A
 * minute in which nobody recorded is unknown, not zero.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TTL_S 7200
#define MINUTE_MS 60000u

static int time_ms(rtq_client *c, rtq_conn *conn, uint64_t *now) {
  int rc = rtq_conn_time_ms(conn, now);
  return rc != 0 ? rtq__client_conn_err(c, conn, rc, "redis TIME") : 0;
}

RTQ_EXTERN int rtq_throughput_record(rtq_client *c, int *recorded) {
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (recorded != NULL) *recorded = 0;
  return rtq__throughput2_record(c, recorded);
}

RTQ_EXTERN int rtq_get_throughput(rtq_client *c, const char *queue, int minutes, rtq_throughput **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  if (minutes < 1 || minutes > RTQ_THROUGHPUT_MAX_MINUTES) {
    rtq__client_err(c, "minutes must be 1..%d", RTQ_THROUGHPUT_MAX_MINUTES);
    return RTQ_EINVAL;
  }
  if (queue != NULL && rtq__check_name(c, "queue name", queue) != 0) return RTQ_EINVAL;
  char fc[RTQ_TASK_ID_SIZE + 16] = "completed", ff[RTQ_TASK_ID_SIZE + 16] = "failed";
  if (queue != NULL) {
    snprintf(fc, sizeof fc, "%s|completed", queue);
    snprintf(ff, sizeof ff, "%s|failed", queue);
  }
  rtq_throughput *t = calloc(1, sizeof *t);
  size_t nk = (size_t)minutes + 1;
  redisReply **r = calloc(nk, sizeof *r);
  if (t != NULL) t->points = calloc((size_t)minutes, sizeof *t->points);
  rtq_conn *conn = NULL;
  int rc = t != NULL && r != NULL && t->points != NULL ? rtq__pool_get(c, &conn) : RTQ_ENOMEM;
  uint64_t now = 0;
  if (rc == 0) rc = time_ms(c, conn, &now);
  /* Snapshots of the minutes first .. first + minutes: point i is the
   * difference of snapshots i + 1 and i. */
  uint64_t first = now / MINUTE_MS - (uint64_t)minutes;
  for (size_t i = 0; rc == 0 && i < nk; i++) {
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "HMGET");
    rtq__argv_add_key2(&a, rtq_keys2_throughput(&c->keys2, first + i));
    rtq_argv_add_str(&a, fc);
    rtq_argv_add_str(&a, ff);
    rc = rtq_conn_append(conn, &a);
    rtq_argv_destroy(&a);
  }
  for (size_t i = 0; rc == 0 && i < nk; i++) rc = rtq_conn_get_reply(conn, &r[i]);
  if (rc != 0 && rc != RTQ_ENOMEM && conn != NULL) rtq__client_conn_err(c, conn, rc, "redis");
  for (size_t i = 0; rc == 0 && i < (size_t)minutes; i++) {
    rtq_throughput_point *p = &t->points[t->count++];
    p->minute_at = (first + i) * MINUTE_MS;
    const redisReply *a = r[i], *b = r[i + 1];
    if (a->type != REDIS_REPLY_ARRAY || b->type != REDIS_REPLY_ARRAY || a->elements != 2 ||
        b->elements != 2 || a->element[0]->type != REDIS_REPLY_STRING ||
        b->element[0]->type != REDIS_REPLY_STRING)
      continue; /* nobody recorded one of the two minutes */
    uint64_t v[2][2];
    for (int s = 0; s < 2; s++)
      for (int j = 0; j < 2; j++) {
        const redisReply *e = (s == 0 ? a : b)->element[j];
        v[s][j] = e->type == REDIS_REPLY_STRING ? rtq__parse_u64(e->str, e->len) : 0;
      }
    if (v[1][0] < v[0][0] || v[1][1] < v[0][1]) continue; /* P:stats was reset */
    p->known = true;
    p->completed = v[1][0] - v[0][0];
    p->failed = v[1][1] - v[0][1];
  }
  if (conn != NULL) rtq__pool_put(c, conn);
  for (size_t i = 0; r != NULL && i < nk; i++)
    if (r[i] != NULL) freeReplyObject(r[i]);
  free(r);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    rtq_throughput_free(t);
    return rc;
  }
  t->now = now;
  *out = t;
  return 0;
}

RTQ_EXTERN void rtq_throughput_free(rtq_throughput *t) {
  if (t == NULL) return;
  free(t->points);
  free(t);
}
