/*
 * stats.c - rtq_get_stats and rtq_list_workers: what `rtq stats` and
 * `rtq workers` print, read with a few pipelined commands.
 *
 * A worker is alive when its P:workers score (last heartbeat, Redis ms) is
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

static void cmd(rtq_argv *a, const char *name, const rtq_key *k) {
  rtq_argv_init(a);
  rtq_argv_add_str(a, name);
  if (k != NULL) rtq_argv_add(a, k->s, k->len);
}

static uint64_t int_of(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (uint64_t)r->integer : 0;
}

static uint64_t str_u64(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_STRING ? rtq__parse_u64(r->str, r->len) : 0;
}

static int time_of(const redisReply *r, uint64_t *ms) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return RTQ_EREDIS;
  *ms = str_u64(r->element[0]) * 1000u + str_u64(r->element[1]) / 1000u;
  return 0;
}

/* The queue called name (len bytes), added when new; NULL when the name
 * is not a valid one, or on a full table or no memory. */
static rtq_queue_stats *queue_of(rtq_stats *s, const char *name, size_t len) {
  char buf[RTQ_TASK_ID_SIZE];
  if (len == 0 || len > RTQ_TASK_ID_MAX) return NULL;
  memcpy(buf, name, len);
  buf[len] = '\0';
  if (rtq_validate_name(buf) != 0) return NULL;
  for (size_t i = 0; i < s->nqueues; i++)
    if (strcmp(s->queues[i].name, buf) == 0) return &s->queues[i];
  if (s->nqueues >= MAX_QUEUES) return NULL;
  rtq_queue_stats *q = realloc(s->queues, (s->nqueues + 1) * sizeof *q);
  if (q == NULL) return NULL;
  s->queues = q;
  q = &s->queues[s->nqueues++];
  memset(q, 0, sizeof *q);
  memcpy(q->name, buf, len + 1);
  return q;
}

/* The counters the scripts keep per queue (PROTOCOL.md, P:stats). The
 * broker's counters share the field layout under the name "broker" and
 * have other names, so a field "broker|<c>" is a queue's only when c is
 * one of these. */
static const char *const queue_counters[] = {"enqueued", "completed",   "failed", "cancelled",
                                             "timeout",  "retried",     "redelivered", "dead"};

static bool is_queue_counter(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof queue_counters / sizeof queue_counters[0]; i++)
    if (strlen(queue_counters[i]) == len && memcmp(queue_counters[i], name, len) == 0) return true;
  return false;
}

/* Appends a counter to *arr (n of them); false when out of memory. */
static bool push_counter(rtq_counter **arr, size_t *n, const char *name, size_t len,
                         const redisReply *value) {
  rtq_counter *ctr = realloc(*arr, (*n + 1) * sizeof *ctr);
  if (ctr == NULL) return false;
  *arr = ctr;
  ctr = &ctr[(*n)++];
  memcpy(ctr->name, name, len);
  ctr->name[len] = '\0';
  ctr->value = rtq__parse_u64(value->str, value->len);
  return true;
}

/* Adds one "<queue>|<counter>" field of P:stats, or one of the broker's. */
static void add_counter(rtq_stats *s, const redisReply *field, const redisReply *value) {
  if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) return;
  const char *bar = NULL;
  for (size_t i = field->len; i > 0; i--)
    if (field->str[i - 1] == '|') {
      bar = field->str + i - 1;
      break;
    }
  if (bar == NULL) return;
  size_t qlen = (size_t)(bar - field->str), nlen = field->len - qlen - 1;
  if (nlen == 0 || nlen >= sizeof s->queues[0].counters[0].name) return;
  if (qlen == 6 && memcmp(field->str, "broker", 6) == 0 && !is_queue_counter(bar + 1, nlen)) {
    push_counter(&s->broker, &s->nbroker, bar + 1, nlen, value);
    return;
  }
  rtq_queue_stats *q = queue_of(s, field->str, qlen);
  if (q != NULL) push_counter(&q->counters, &q->ncounters, bar + 1, nlen, value);
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const rtq_queue_stats *)a)->name, ((const rtq_queue_stats *)b)->name);
}

/* Fills s from the first round trip. Layout of r: TIME, SMEMBERS queues,
 * HGETALL stats, ZCARD of each status, ZCARD delayed, LLEN dead. */
static int read_first(rtq_stats *s, redisReply **r) {
  if (time_of(r[0], &s->now) != 0) return RTQ_EREDIS;
  for (size_t i = 0; r[1]->type == REDIS_REPLY_ARRAY && i < r[1]->elements; i++)
    if (r[1]->element[i]->type == REDIS_REPLY_STRING)
      queue_of(s, r[1]->element[i]->str, r[1]->element[i]->len);
  for (size_t i = 0; r[2]->type == REDIS_REPLY_ARRAY && i + 1 < r[2]->elements; i += 2)
    add_counter(s, r[2]->element[i], r[2]->element[i + 1]);
  for (int i = 0; i < RTQ_STATUS_COUNT; i++) s->by_status[i] = int_of(r[3 + i]);
  s->running = s->by_status[RTQ_STATUS_RUNNING];
  s->delayed = int_of(r[3 + RTQ_STATUS_COUNT]);
  s->dead = int_of(r[4 + RTQ_STATUS_COUNT]);
  return 0;
}

static bool is_noperm(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0;
}

/* True when r[0..n) all arrived and none is an error. */
static bool replies_ok(redisReply **r, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (r[i] == NULL || r[i]->type == REDIS_REPLY_ERROR) return false;
  return true;
}

/* Second round trip: each queue's backlog and paused state, and the live
 * workers. */
static int read_second(rtq_client *c, rtq_conn *conn, rtq_stats *s) {
  size_t nq = s->nqueues, n = nq + 2; /* LLEN per queue, SMEMBERS P:paused, ZCOUNT */
  rtq_argv *cmds = calloc(n, sizeof *cmds);
  redisReply **r = calloc(n, sizeof *r);
  int rc = cmds != NULL && r != NULL ? 0 : RTQ_ENOMEM;
  for (size_t i = 0; rc == 0 && i < nq; i++) {
    rtq_key k = rtq_keys_queue(&c->keys, s->queues[i].name);
    cmd(&cmds[i], "LLEN", &k);
  }
  if (rc == 0) {
    rtq_key paused = rtq_keys_paused(&c->keys);
    cmd(&cmds[nq], "SMEMBERS", &paused);
  }
  if (rc == 0) {
    rtq_key k = rtq_keys_workers(&c->keys);
    cmd(&cmds[n - 1], "ZCOUNT", &k);
    uint64_t since = s->now > RTQ_HEARTBEAT_TTL_MS ? s->now - RTQ_HEARTBEAT_TTL_MS : 0;
    rtq_argv_add_u64(&cmds[n - 1], since);
    rtq_argv_add_str(&cmds[n - 1], "+inf");
    rc = pipeline(c, conn, cmds, n, r);
  }
  /* A producer's ACL user has no access to P:workers (docs/OPERATIONS.md):
   * the rest of the figures are still worth having. */
  if (rc == RTQ_EREDIS && is_noperm(r[n - 1]) && replies_ok(r, n - 1)) {
    rtq__client_clear_err(c);
    s->workers_hidden = true;
    rc = 0;
  }
  if (rc == 0) {
    const redisReply *p = r[nq];
    for (size_t i = 0; i < nq; i++) {
      s->queues[i].backlog = int_of(r[i]);
      for (size_t j = 0; p != NULL && p->type == REDIS_REPLY_ARRAY && j < p->elements; j++)
        if (p->element[j]->type == REDIS_REPLY_STRING && strcmp(p->element[j]->str, s->queues[i].name) == 0)
          s->queues[i].paused = true;
    }
    s->workers_alive = int_of(r[n - 1]);
  }
  for (size_t i = 0; cmds != NULL && i < n; i++) rtq_argv_destroy(&cmds[i]);
  if (r != NULL) free_replies(r, n);
  free(cmds);
  free(r);
  return rc;
}

RTQ_EXTERN int rtq_get_stats(rtq_client *c, rtq_stats **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  if (c->protocol == 2) return rtq__get_stats2(c, out);
  enum { N = 5 + RTQ_STATUS_COUNT };
  rtq_argv cmds[N];
  redisReply *r[N];
  rtq_key k = rtq_keys_queues(&c->keys);
  cmd(&cmds[0], "TIME", NULL);
  cmd(&cmds[1], "SMEMBERS", &k);
  k = rtq_keys_stats(&c->keys);
  cmd(&cmds[2], "HGETALL", &k);
  for (int i = 0; i < RTQ_STATUS_COUNT; i++) {
    k = rtq_keys_status(&c->keys, (rtq_status)i);
    cmd(&cmds[3 + i], "ZCARD", &k);
  }
  k = rtq_keys_delayed(&c->keys);
  cmd(&cmds[3 + RTQ_STATUS_COUNT], "ZCARD", &k);
  k = rtq_keys_dead(&c->keys);
  cmd(&cmds[4 + RTQ_STATUS_COUNT], "LLEN", &k);

  rtq_stats *s = calloc(1, sizeof *s);
  rtq_conn *conn = NULL;
  int rc = s != NULL ? rtq__pool_get(c, &conn) : RTQ_ENOMEM;
  if (rc == 0) rc = pipeline(c, conn, cmds, N, r);
  if (rc == 0 && (rc = read_first(s, r)) != 0) rtq__client_err(c, "unexpected TIME reply");
  if (conn != NULL) free_replies(r, N);
  if (rc == 0) rc = read_second(c, conn, s);
  rtq__pool_put(c, conn);
  for (int i = 0; i < N; i++) rtq_argv_destroy(&cmds[i]);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    rtq_stats_free(s);
    return rc;
  }
  if (s->nqueues > 1) qsort(s->queues, s->nqueues, sizeof *s->queues, by_name);
  *out = s;
  return 0;
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

/* One worker from its P:workers entry and HMGET of its record. */
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
    /* The worker record is the same hash under either protocol's key. */
    if (c->protocol == 2)
      rtq__argv_add_key2(&cmds[i], rtq_keys2_worker(&c->keys2, id->str));
    else
      rtq__argv_add_key(&cmds[i], rtq_keys_worker(&c->keys, id->str));
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
    rtq_key k = rtq_keys_workers(&c->keys);
    cmd(&a, "ZREVRANGEBYSCORE", c->protocol == 2 ? NULL : &k);
    if (c->protocol == 2) rtq__argv_add_key2(&a, rtq_keys2_workers(&c->keys2));
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
