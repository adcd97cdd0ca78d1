/*
 * throughput.c - the per-minute history of finished tasks, kept in Redis
 * so that it survives a restart of whoever shows it and is the same from
 * any process.
 *
 * P:stats already counts every outcome per queue (the Lua steps add to it
 * as tasks end). rtq_throughput_record() copies the completed and failed
 * totals, once per minute, into P:throughput:<minute> (a hash with a 2 h
 * TTL); the history of minute m is then snapshot(m+1) - snapshot(m):
 *
 *   P:stats  default|completed 1200 ... --(first call in minute m)-->
 *   P:throughput:<m>  completed 1200  failed 3  default|completed 1200 ...
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

/* Sums of one outcome over the queues, and per queue, from HGETALL. */
typedef struct tally {
  char field[RTQ_TASK_ID_SIZE + 16];
  uint64_t value;
} tally;

static int is_outcome(const char *s, size_t n) {
  return (n == 9 && memcmp(s, "completed", 9) == 0) || (n == 6 && memcmp(s, "failed", 6) == 0);
}

/* Fields to write: "completed", "failed" (totals) and "<queue>|<outcome>". */
static tally *tallies(const redisReply *h, size_t *n) {
  size_t cap = 2 + (h->type == REDIS_REPLY_ARRAY ? h->elements / 2 : 0);
  tally *t = calloc(cap, sizeof *t);
  if (t == NULL) return NULL;
  strcpy(t[0].field, "completed");
  strcpy(t[1].field, "failed");
  size_t k = 2;
  for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
    const redisReply *f = h->element[i], *v = h->element[i + 1];
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    const char *bar = memchr(f->str, '|', f->len);
    if (bar == NULL || f->len >= sizeof t[0].field) continue;
    size_t ql = (size_t)(bar - f->str), cl = f->len - ql - 1;
    if (!is_outcome(bar + 1, cl)) continue;
    char q[RTQ_TASK_ID_SIZE];
    if (ql == 0 || ql > RTQ_TASK_ID_MAX) continue;
    memcpy(q, f->str, ql);
    q[ql] = '\0';
    /* "broker|..." fields are the broker's, never outcomes; any other
     * name is a queue's. */
    if (rtq_validate_name(q) != 0) continue;
    uint64_t val = rtq__parse_u64(v->str, v->len);
    memcpy(t[k].field, f->str, f->len);
    t[k].field[f->len] = '\0';
    t[k++].value = val;
    t[bar[1] == 'c' ? 0 : 1].value += val;
  }
  *n = k;
  return t;
}

RTQ_EXTERN int rtq_throughput_record(rtq_client *c, int *recorded) {
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (recorded != NULL) *recorded = 0;
  if (c->protocol == 2) return rtq__throughput2_record(c, recorded);
  rtq_conn *conn = NULL;
  int rc = rtq__pool_get(c, &conn);
  uint64_t now = 0;
  if (rc == 0) rc = time_ms(c, conn, &now);
  rtq_key key = rtq_keys_throughput(&c->keys, now / MINUTE_MS);
  redisReply *r = NULL;
  rtq_argv a;
  if (rc == 0) {
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "EXISTS");
    rtq_argv_add(&a, key.s, key.len);
    rc = rtq_conn_command(conn, &a, &r);
    rtq_argv_destroy(&a);
    if (rc != 0) rtq__client_conn_err(c, conn, rc, "redis");
  }
  int exists = rc == 0 && r->type == REDIS_REPLY_INTEGER && r->integer > 0;
  if (r != NULL) freeReplyObject(r);
  r = NULL;
  if (rc != 0 || exists) {
    rtq__pool_put(c, conn);
    return rc;
  }
  rtq_key stats = rtq_keys_stats(&c->keys);
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HGETALL");
  rtq_argv_add(&a, stats.s, stats.len);
  rc = rtq_conn_command(conn, &a, &r);
  rtq_argv_destroy(&a);
  if (rc != 0) rtq__client_conn_err(c, conn, rc, "redis");
  size_t n = 0;
  tally *t = rc == 0 ? tallies(r, &n) : NULL;
  if (rc == 0 && t == NULL) rc = RTQ_ENOMEM;
  /* HSETNX per field: a snapshot another process wrote first stays. */
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "HSETNX");
    rtq_argv_add(&a, key.s, key.len);
    rtq_argv_add_str(&a, t[i].field);
    rtq_argv_add_u64(&a, t[i].value);
    rc = rtq_conn_append(conn, &a);
    rtq_argv_destroy(&a);
  }
  if (rc == 0) {
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "EXPIRE");
    rtq_argv_add(&a, key.s, key.len);
    rtq_argv_add_u64(&a, TTL_S);
    rc = rtq_conn_append(conn, &a);
    rtq_argv_destroy(&a);
  }
  for (size_t i = 0; rc == 0 && i <= n; i++) {
    redisReply *x = NULL;
    rc = rtq_conn_get_reply(conn, &x);
    if (x != NULL) freeReplyObject(x);
  }
  if (rc != 0 && rc != RTQ_ENOMEM) rtq__client_conn_err(c, conn, rc, "redis");
  if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
  if (r != NULL) freeReplyObject(r);
  free(t);
  rtq__pool_put(c, conn);
  if (rc == 0 && recorded != NULL) *recorded = 1;
  return rc;
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
    /* Protocol 2's snapshots have the same fields under {ns}:throughput. */
    if (c->protocol == 2) {
      rtq__argv_add_key2(&a, rtq_keys2_throughput(&c->keys2, first + i));
    } else {
      rtq_key k = rtq_keys_throughput(&c->keys, first + i);
      rtq_argv_add(&a, k.s, k.len);
    }
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
