/*
 * stats.c - rtq_get_stats and rtq_list_workers: what `rtq stats` and
 * `rtq workers` print, read with a few pipelined commands.
 *
 * The namespace's figures are stats2.c's (rtq__get_stats2). A worker is
 * alive when its {ns}:workers score (last heartbeat, Redis ms) is
 * within RTQ_HEARTBEAT_TTL_MS of Redis TIME, the same rule the broker uses.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"

#define MAX_WORKERS 10000
#define MAX_QUEUES 10000

/* Appends every command, then reads every reply into replies[] (the
 * caller frees them; NULL where none arrived). Returns the first error. */
static int pipeline(rtq_client *c, rtq_conn *conn, rtq_argv *cmds, size_t n, redisReply **replies) {
  int rc = 0;
  for (size_t i = 0; i < n; i++) replies[i] = NULL;
  for (size_t i = 0; rc == 0 && i < n; i++) rc = rtq_conn_append(conn, &cmds[i]);
  if (rc != 0) return rtq__client_conn_err(c, conn, rc, "redis");
  for (size_t i = 0; i < n; i++) {
    int trc = rtq_conn_get_reply(conn, &replies[i]);
    if (trc != 0 && rc == 0) rc = rtq__client_conn_err(c, conn, trc, "redis");
  }
  return rc;
}

static void free_replies(redisReply **r, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (r[i] != NULL) freeReplyObject(r[i]);
}

static void cmd(rtq_argv *a, const char *name) {
  rtq_argv_init(a);
  rtq_argv_add_str(a, name);
}

RTQ_EXTERN int rtq_get_stats(rtq_client *c, rtq_stats **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  return rtq__get_stats2(c, out);
}

RTQ_EXTERN void rtq_stats_free(rtq_stats *s) {
  if (s == NULL) return;
  for (size_t i = 0; i < s->nqueues; i++) free(s->queues[i].counters);
  free(s->queues);
  free(s->broker);
  free(s);
}

static void copy_str(char *dst, size_t cap, const redisReply *r) {
  dst[0] = '\0';
  if (r == NULL || r->type != REDIS_REPLY_STRING) return;
  size_t n = r->len < cap - 1 ? r->len : cap - 1;
  memcpy(dst, r->str, n);
  dst[n] = '\0';
}

static const char *const worker_fields[] = {"host", "pid", "queues", "busy", "slots",
                                            "started_at", "last_seen", "exec_unavailable"};
#define NWF (sizeof worker_fields / sizeof worker_fields[0])

static uint64_t str_u64(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_STRING ? rtq__parse_u64(r->str, r->len) : 0;
}

/* One worker from its {ns}:workers entry and HMGET of its record. */
static void fill_worker(rtq_alive_worker *w, const redisReply *id, const redisReply *score,
                        const redisReply *h) {
  memset(w, 0, sizeof *w);
  copy_str(w->id, sizeof w->id, id);
  /* Anyone with write access sets the score: "inf" or "1e300" must not
   * overflow the conversion. */
  double d = score->type == REDIS_REPLY_STRING ? strtod(score->str, NULL) : 0;
  w->last_seen = d > 0 && d < 18446744073709549568.0 ? (uint64_t)d : 0;
  if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements != NWF) return;
  copy_str(w->host, sizeof w->host, h->element[0]);
  w->pid = (long)str_u64(h->element[1]);
  copy_str(w->queues, sizeof w->queues, h->element[2]);
  w->busy = (int)str_u64(h->element[3]);
  w->slots = (int)str_u64(h->element[4]);
  w->started_at = str_u64(h->element[5]);
  uint64_t seen = str_u64(h->element[6]);
  if (seen > w->last_seen) w->last_seen = seen;
  copy_str(w->exec_unavailable, sizeof w->exec_unavailable, h->element[7]);
}

/* Reads the record of each id in z (ZREVRANGEBYSCORE ... WITHSCORES). */
static int read_workers(rtq_client *c, rtq_conn *conn, const redisReply *z,
                        rtq_alive_workers *out) {
  size_t n = z->elements / 2;
  if (n == 0) return 0;
  rtq_argv *cmds = calloc(n, sizeof *cmds);
  redisReply **r = calloc(n, sizeof *r);
  out->workers = calloc(n, sizeof *out->workers);
  int rc = cmds != NULL && r != NULL && out->workers != NULL ? 0 : RTQ_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const redisReply *id = z->element[2 * i];
    rtq_argv_init(&cmds[i]);
    if (id->type != REDIS_REPLY_STRING || rtq_validate_name(id->str) != 0) {
      /* No valid key: a harmless command keeps the replies in step. */
      rtq_argv_add_str(&cmds[i], "PING");
      continue;
    }
    rtq_argv_add_str(&cmds[i], "HMGET");
    rtq__argv_add_key2(&cmds[i], rtq_keys2_worker(&c->keys2, id->str));
    for (size_t f = 0; f < NWF; f++) rtq_argv_add_str(&cmds[i], worker_fields[f]);
  }
  if (rc == 0) rc = pipeline(c, conn, cmds, n, r);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const redisReply *id = z->element[2 * i];
    if (id->type != REDIS_REPLY_STRING || rtq_validate_name(id->str) != 0) continue;
    fill_worker(&out->workers[out->count++], id, z->element[2 * i + 1], r[i]);
  }
  for (size_t i = 0; cmds != NULL && i < n; i++) rtq_argv_destroy(&cmds[i]);
  if (r != NULL) free_replies(r, n);
  free(cmds);
  free(r);
  return rc;
}

RTQ_EXTERN int rtq_client_time_ms(rtq_client *c, uint64_t *now_ms) {
  if (c == NULL || now_ms == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  rtq_conn *conn = NULL;
  int rc = rtq__pool_get(c, &conn);
  if (rc == 0 && (rc = rtq_conn_time_ms(conn, now_ms)) != 0)
    rtq__client_conn_err(c, conn, rc, "redis TIME");
  rtq__pool_put(c, conn);
  return rc;
}

RTQ_EXTERN int rtq_list_workers(rtq_client *c, rtq_alive_workers **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  rtq_alive_workers *w = calloc(1, sizeof *w);
  rtq_conn *conn = NULL;
  int rc = w != NULL ? rtq__pool_get(c, &conn) : RTQ_ENOMEM;
  if (rc == 0 && (rc = rtq_conn_time_ms(conn, &w->now)) != 0)
    rtq__client_conn_err(c, conn, rc, "redis TIME");
  redisReply *z = NULL;
  if (rc == 0) {
    rtq_argv a;
    cmd(&a, "ZREVRANGEBYSCORE");
    rtq__argv_add_key2(&a, rtq_keys2_workers(&c->keys2));
    rtq_argv_add_str(&a, "+inf");
    rtq_argv_add_u64(&a, w->now > RTQ_HEARTBEAT_TTL_MS ? w->now - RTQ_HEARTBEAT_TTL_MS : 0);
    rtq_argv_add_str(&a, "WITHSCORES");
    rtq_argv_add_str(&a, "LIMIT");
    rtq_argv_add_str(&a, "0");
    rtq_argv_add_i64(&a, MAX_WORKERS);
    rc = rtq_conn_command(conn, &a, &z);
    rtq_argv_destroy(&a);
    if (rc != 0) rtq__client_conn_err(c, conn, rc, "redis");
  }
  if (rc == 0) rc = read_workers(c, conn, z, w);
  if (z != NULL) freeReplyObject(z);
  rtq__pool_put(c, conn);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    rtq_alive_workers_free(w);
    return rc;
  }
  *out = w;
  return 0;
}

/* Whether item (len bytes, one entry of a "queues" field) names queue:
 * "queue" itself or "queue:<weight>". A name may hold ':' too, so the
 * weight is only the digits after the last one. */
static bool item_names(const char *item, size_t len, const char *queue) {
  size_t qlen = strlen(queue);
  if (len == qlen && memcmp(item, queue, qlen) == 0) return true;
  if (len < qlen + 2 || memcmp(item, queue, qlen) != 0 || item[qlen] != ':') return false;
  for (size_t i = qlen + 1; i < len; i++)
    if (item[i] < '0' || item[i] > '9') return false;
  return true;
}

RTQ_EXTERN bool rtq_worker_serves(const rtq_alive_worker *w, const char *queue) {
  if (w == NULL || queue == NULL || queue[0] == '\0') return false;
  const char *p = w->queues;
  for (;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (item_names(p, len, queue)) return true;
    if (comma == NULL) return false;
    p = comma + 1;
  }
}

RTQ_EXTERN void rtq_alive_workers_free(rtq_alive_workers *w) {
  if (w == NULL) return;
  free(w->workers);
  free(w);
}
