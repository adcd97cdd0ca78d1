/*
 * stats2.c - protocol 2: rtq_get_stats and rtq_get_queue_loads, read from
 * the per-queue keys (docs/PROTOCOL.md sections 2 and 6).
 *
 * v2 has no namespace-wide index of tasks by status: every figure is a sum
 * over the queues of {ns}:queues, read with pipelined commands, each one
 * O(1) and their number bounded by the queues and workers:
 *
 *   pending    LLEN {ns:Q}:q + ZCARD {ns:Q}:delayed
 *   running    LLEN {ns:Q}:p:<wid> over every worker id of {ns}:workers
 *              (dead ones too: their lists hold tasks until the broker
 *              recovers them), at most RTQ_LOAD_MAX_SCAN lists
 *   terminal   LLEN {ns:Q}:done:<status> (the history kept: ids of tasks
 *              that expired since stay counted until pruned)
 *   counters   HGETALL {ns:Q}:stats, per queue
 *   dead       LLEN {ns:Q}:dead
 *   broker     HGETALL {ns}:broker (its counters and last_sweep_at)
 *   limits     HMGET {ns:Q}:limit rate burst conc (rtq_queue_limit_set)
 *
 * Round trips: the registry, then one pipeline of the per-queue figures
 * and the workers, then one of the processing lists.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"

#define MAX_WORKERS 10000

int rtq__pipe2(rtq_client *c, rtq_conn *conn, const rtq_argv *cmds, size_t n, redisReply **r) {
  int rc = 0;
  for (size_t i = 0; i < n; i++) r[i] = NULL;
  for (size_t i = 0; rc == 0 && i < n; i++) rc = rtq_conn_append(conn, &cmds[i]);
  if (rc != 0) return rtq__client_conn_err(c, conn, rc, "redis");
  for (size_t i = 0; i < n; i++) {
    int trc = rtq_conn_get_reply(conn, &r[i]);
    if (trc != 0 && rc == 0) rc = rtq__client_conn_err(c, conn, trc, "redis");
  }
  return rc;
}

void rtq__pipe2_free(rtq_argv *cmds, redisReply **r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (cmds != NULL) rtq_argv_destroy(&cmds[i]);
    if (r != NULL && r[i] != NULL) freeReplyObject(r[i]);
  }
  free(cmds);
  free(r);
}

uint64_t rtq__reply_u64(const redisReply *r) {
  if (r == NULL) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer > 0 ? (uint64_t)r->integer : 0;
  if (r->type == REDIS_REPLY_STRING) return rtq__parse_u64(r->str, r->len);
  return 0;
}

static void cmd2(rtq_argv *a, const char *name, rtq_key2 k) {
  rtq_argv_init(a);
  rtq_argv_add_str(a, name);
  if (k.len > 0) rtq__argv_add_key2(a, k);
}

static int time_of(const redisReply *r, uint64_t *ms) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) return RTQ_EREDIS;
  *ms = rtq__reply_u64(r->element[0]) * 1000u + rtq__reply_u64(r->element[1]) / 1000u;
  return 0;
}

static bool is_noperm(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOPERM", 6) == 0;
}

bool rtq__wrong_type(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0;
}

void rtq__skip_note(char *buf, size_t cap, const char *queue, const char *key) {
  size_t at = strlen(buf);
  if (cap == 0 || at + 1 >= cap) return;
  snprintf(buf + at, cap - at, "%squeue %s: key %s holds the wrong type of value", at > 0 ? "\n" : "", queue,
           key);
}

/* The valid worker ids of a ZRANGE reply (stride 2: WITHSCORES). */
static size_t valid_ids(const redisReply *z, size_t stride, const char **ids, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; z != NULL && z->type == REDIS_REPLY_ARRAY && i < z->elements && n < cap; i += stride) {
    const redisReply *e = z->element[i];
    if (e->type == REDIS_REPLY_STRING && strlen(e->str) == e->len && rtq_validate_name(e->str) == 0)
      ids[n++] = e->str;
  }
  return n;
}

/*
 * Adds to running[q] the length of each processing list of queue q
 * (queues[0..nq)) and worker of z (a ZRANGE of {ns}:workers), in one
 * pipeline of at most RTQ_LOAD_MAX_SCAN LLENs; *partial says when the
 * pairs were more than that (the first ones, queue by queue, are counted).
 * With skip (nq flags), a processing list of the wrong type marks its
 * queue skipped, with a line in note (cap bytes), instead of failing.
 */
static int count_running(rtq_client *c, rtq_conn *conn, char **queues, size_t nq, const redisReply *z,
                         size_t stride, uint64_t *running, bool *partial, bool *skip, char *note,
                         size_t cap) {
  size_t zn = z != NULL && z->type == REDIS_REPLY_ARRAY ? z->elements : 0;
  const char **ids = zn > 0 ? calloc(zn, sizeof *ids) : NULL;
  if (zn > 0 && ids == NULL) return RTQ_ENOMEM;
  size_t nw = valid_ids(z, stride, ids, zn);
  size_t pairs = nq * nw, n = pairs > RTQ_LOAD_MAX_SCAN ? RTQ_LOAD_MAX_SCAN : pairs;
  *partial = pairs > n;
  int rc = 0;
  if (n > 0) {
    rtq_argv *cmds = calloc(n, sizeof *cmds);
    redisReply **r = calloc(n, sizeof *r);
    rc = cmds != NULL && r != NULL ? 0 : RTQ_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
      cmd2(&cmds[i], "LLEN", rtq_keys2_processing(&c->keys2, queues[i / nw], ids[i % nw]));
    if (rc == 0) rc = rtq__pipe2(c, conn, cmds, n, r);
    if (rc == RTQ_EREDIS && skip != NULL) {
      bool others_ok = true;
      for (size_t i = 0; i < n; i++) {
        if (r[i] == NULL || r[i]->type != REDIS_REPLY_ERROR) continue;
        if (!rtq__wrong_type(r[i])) {
          others_ok = false;
        } else if (!skip[i / nw]) {
          skip[i / nw] = true;
          rtq__skip_note(note, cap, queues[i / nw], rtq_keys2_processing(&c->keys2, queues[i / nw], ids[i % nw]).s);
        }
      }
      if (others_ok) rtq__client_clear_err(c), rc = 0;
    }
    for (size_t i = 0; rc == 0 && i < n; i++) running[i / nw] += rtq__reply_u64(r[i]);
    rtq__pipe2_free(cmds, r, cmds != NULL && r != NULL ? n : 0);
  }
  free(ids);
  return rc;
}

/* Per queue, in this order. */
enum { Q_STATS, Q_LEN, Q_DELAYED, Q_DEAD, Q_LIMIT, Q_DONE, PER_QUEUE = Q_DONE + 4 };
/* Before them: TIME, SMEMBERS paused, HGETALL of the broker's counters;
 * after them: the workers with their heartbeats. */
enum { HEAD = 3, TAIL = 1 };

static const rtq_status terminal[4] = {RTQ_STATUS_COMPLETED, RTQ_STATUS_FAILED,
                                       RTQ_STATUS_CANCELLED, RTQ_STATUS_TIMEOUT};

/* The counters of an HGETALL reply (names that fit, values as decimals):
 * *out (n of them) is the caller's; none when out of memory. */
static void counters_of(const redisReply *h, rtq_counter **out, size_t *n) {
  size_t pairs = h != NULL && h->type == REDIS_REPLY_ARRAY ? h->elements / 2 : 0;
  *out = pairs > 0 ? calloc(pairs, sizeof **out) : NULL;
  *n = 0;
  for (size_t i = 0; *out != NULL && i < pairs; i++) {
    const redisReply *f = h->element[2 * i], *v = h->element[2 * i + 1];
    if (f->type != REDIS_REPLY_STRING || f->len == 0 || f->len >= sizeof (*out)[0].name ||
        v->type != REDIS_REPLY_STRING)
      continue;
    rtq_counter *ctr = &(*out)[(*n)++];
    memcpy(ctr->name, f->str, f->len);
    ctr->name[f->len] = '\0';
    ctr->value = rtq__parse_u64(v->str, v->len);
  }
}

static void fill_queue(rtq_queue_stats *q, redisReply **r, uint64_t *by_status, rtq_stats *s) {
  counters_of(r[Q_STATS], &q->counters, &q->ncounters);
  q->backlog = rtq__reply_u64(r[Q_LEN]);
  uint64_t delayed = rtq__reply_u64(r[Q_DELAYED]);
  by_status[RTQ_STATUS_PENDING] += q->backlog + delayed;
  s->delayed += delayed;
  s->dead += rtq__reply_u64(r[Q_DEAD]);
  for (int i = 0; i < 4; i++) by_status[terminal[i]] += rtq__reply_u64(r[Q_DONE + i]);
  rtq_queue_limits l;
  rtq__limits2_from_reply(r[Q_LIMIT], &l);
  q->limit_rate = l.rate;
  q->limit_concurrency = l.concurrency;
}

/* The key of command k (Q_*) of a queue's commands. */
static rtq_key2 queue_key(rtq_client *c, const char *queue, size_t k) {
  switch (k) {
    case Q_STATS: return rtq_keys2_stats(&c->keys2, queue);
    case Q_LEN: return rtq_keys2_queue(&c->keys2, queue);
    case Q_DELAYED: return rtq_keys2_delayed(&c->keys2, queue);
    case Q_DEAD: return rtq_keys2_dead(&c->keys2, queue);
    case Q_LIMIT: return rtq_keys2_limit(&c->keys2, queue);
    default: return rtq_keys2_done(&c->keys2, queue, terminal[k - Q_DONE]);
  }
}

/*
 * Sorts out the error replies of the stats pipeline (rc RTQ_EREDIS): a
 * queue key of the wrong type (a hand-written key) leaves that queue out
 * with a note naming it, and a producer's ACL user that may not read the
 * workers leaves them out (docs/OPERATIONS.md); the other figures are
 * still worth having. Returns 0 when every error reply was one of those.
 */
static int triage(rtq_client *c, char **names, size_t nq, redisReply **r, size_t n, bool *skip, rtq_stats *s) {
  bool hidden = false;
  for (size_t i = 0; i < n; i++) {
    if (r[i] == NULL) return RTQ_EREDIS;
    if (r[i]->type != REDIS_REPLY_ERROR) continue;
    size_t q = (i - HEAD) / PER_QUEUE;
    if (i >= HEAD && i < n - TAIL && q < nq && rtq__wrong_type(r[i])) {
      if (!skip[q])
        rtq__skip_note(s->skipped, sizeof s->skipped, names[q], queue_key(c, names[q], (i - HEAD) % PER_QUEUE).s);
      skip[q] = true;
    } else if (i == n - 1 && is_noperm(r[i])) {
      hidden = true;
    } else {
      return RTQ_EREDIS;
    }
  }
  rtq__client_clear_err(c);
  s->workers_hidden = hidden;
  return 0;
}

static int stats_read(rtq_client *c, rtq_conn *conn, char **names, size_t nq, rtq_stats *s) {
  size_t n = HEAD + nq * PER_QUEUE + TAIL;
  rtq_argv *cmds = calloc(n, sizeof *cmds);
  redisReply **r = calloc(n, sizeof *r);
  s->queues = nq > 0 ? calloc(nq, sizeof *s->queues) : NULL;
  if (cmds == NULL || r == NULL || (nq > 0 && s->queues == NULL)) {
    rtq__pipe2_free(cmds, r, 0);
    return RTQ_ENOMEM;
  }
  cmd2(&cmds[0], "TIME", (rtq_key2){0});
  cmd2(&cmds[1], "SMEMBERS", rtq_keys2_paused(&c->keys2));
  cmd2(&cmds[2], "HGETALL", rtq_keys2_broker(&c->keys2));
  for (size_t i = 0; i < nq; i++) {
    rtq_argv *q = &cmds[HEAD + i * PER_QUEUE];
    cmd2(&q[Q_STATS], "HGETALL", rtq_keys2_stats(&c->keys2, names[i]));
    cmd2(&q[Q_LEN], "LLEN", rtq_keys2_queue(&c->keys2, names[i]));
    cmd2(&q[Q_DELAYED], "ZCARD", rtq_keys2_delayed(&c->keys2, names[i]));
    cmd2(&q[Q_DEAD], "LLEN", rtq_keys2_dead(&c->keys2, names[i]));
    cmd2(&q[Q_LIMIT], "HMGET", rtq_keys2_limit(&c->keys2, names[i]));
    rtq_argv_add_str(&q[Q_LIMIT], "rate");
    rtq_argv_add_str(&q[Q_LIMIT], "burst");
    rtq_argv_add_str(&q[Q_LIMIT], "conc");
    for (int j = 0; j < 4; j++) cmd2(&q[Q_DONE + j], "LLEN", rtq_keys2_done(&c->keys2, names[i], terminal[j]));
  }
  /* Every worker id (processing lists of dead ones still hold running
   * tasks) with its heartbeat, counted alive below against TIME. */
  cmd2(&cmds[n - 1], "ZRANGE", rtq_keys2_workers(&c->keys2));
  rtq_argv_add_str(&cmds[n - 1], "0");
  rtq_argv_add_i64(&cmds[n - 1], MAX_WORKERS - 1);
  rtq_argv_add_str(&cmds[n - 1], "WITHSCORES");
  bool *skip = calloc(nq > 0 ? nq : 1, sizeof *skip);
  uint64_t *running = calloc(nq > 0 ? nq : 1, sizeof *running);
  int rc = skip != NULL && running != NULL ? rtq__pipe2(c, conn, cmds, n, r) : RTQ_ENOMEM;
  if (rc == RTQ_EREDIS && triage(c, names, nq, r, n, skip, s) == 0) rc = 0;
  if (rc == 0 && time_of(r[0], &s->now) != 0) {
    rtq__client_err(c, "unexpected TIME reply");
    rc = RTQ_EREDIS;
  }
  const redisReply *ws = r[n - 1];
  /* Before the queues' figures are summed: a processing list of the wrong
   * type leaves its queue out as well. */
  if (rc == 0 && !s->workers_hidden) {
    bool partial = false;
    rc = count_running(c, conn, names, nq, ws, 2, running, &partial, skip, s->skipped, sizeof s->skipped);
  }
  /* The broker keeps its own counters apart from the queues' under v2. */
  if (rc == 0) counters_of(r[2], &s->broker, &s->nbroker);
  for (size_t i = 0; rc == 0 && i < nq; i++) {
    if (skip[i]) continue;
    s->by_status[RTQ_STATUS_RUNNING] += running[i];
    rtq_queue_stats *q = &s->queues[s->nqueues++];
    strcpy(q->name, names[i]);
    fill_queue(q, &r[HEAD + i * PER_QUEUE], s->by_status, s);
    const redisReply *p = r[1];
    for (size_t j = 0; p->type == REDIS_REPLY_ARRAY && j < p->elements; j++)
      if (p->element[j]->type == REDIS_REPLY_STRING && strcmp(p->element[j]->str, q->name) == 0)
        q->paused = true;
  }
  uint64_t since = s->now > RTQ_HEARTBEAT_TTL_MS ? s->now - RTQ_HEARTBEAT_TTL_MS : 0;
  for (size_t i = 0; rc == 0 && !s->workers_hidden && ws->type == REDIS_REPLY_ARRAY && i + 1 < ws->elements; i += 2)
    if (rtq__reply_u64(ws->element[i + 1]) >= since) s->workers_alive++;
  s->running = s->by_status[RTQ_STATUS_RUNNING];
  free(skip);
  free(running);
  rtq__pipe2_free(cmds, r, n);
  return rc;
}

int rtq__get_stats2(rtq_client *c, rtq_stats **out) {
  char **names = NULL;
  size_t nq = 0;
  int rc = rtq__queues2_read(c, &names, &nq);
  if (rc != 0) return rc;
  rtq_stats *s = calloc(1, sizeof *s);
  rtq_conn *conn = NULL;
  rc = s != NULL ? rtq__pool_get(c, &conn) : RTQ_ENOMEM;
  if (rc == 0) rc = stats_read(c, conn, names, nq, s);
  if (conn != NULL) rtq__pool_put(c, conn);
  rtq__queues2_free(names, nq);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    rtq_stats_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* ---- rtq_get_queue_loads ---- */

/* Marks queue q skipped for key, with its note (the first key only). */
static void skip_queue(rtq_queue_loads *l, bool *skip, const char *queue, size_t q, rtq_key2 key) {
  if (!skip[q]) rtq__skip_note(l->skipped, sizeof l->skipped, queue, key.s);
  skip[q] = true;
}

/*
 * Round trip 1: TIME, the workers, and per queue ZCARD delayed and the
 * next id a worker takes (LINDEX q -1: producers LPUSH); round trip 2 the
 * processing lists (count_running); round trip 3 the created_at of each
 * queue's next task. As rtq_get_stats does, a queue one of whose keys
 * holds another type of value (a hand-written key) is left out with a
 * note in l->skipped; any other error reply fails the call.
 */
static int loads_read(rtq_client *c, rtq_conn *conn, char **names, size_t nq, rtq_queue_loads *l) {
  size_t n = 2 + 2 * nq;
  rtq_argv *cmds = calloc(n, sizeof *cmds);
  redisReply **r = calloc(n, sizeof *r);
  bool *skip = calloc(nq > 0 ? nq : 1, sizeof *skip);
  uint64_t *running = calloc(nq > 0 ? nq : 1, sizeof *running);
  rtq_argv *heads = nq > 0 ? calloc(nq, sizeof *heads) : NULL;
  redisReply **hr = nq > 0 ? calloc(nq, sizeof *hr) : NULL;
  int rc = cmds != NULL && r != NULL && skip != NULL && running != NULL && (nq == 0 || (heads != NULL && hr != NULL))
               ? 0
               : RTQ_ENOMEM;
  if (rc == 0) {
    cmd2(&cmds[0], "TIME", (rtq_key2){0});
    cmd2(&cmds[1], "ZRANGE", rtq_keys2_workers(&c->keys2));
    rtq_argv_add_str(&cmds[1], "0");
    rtq_argv_add_i64(&cmds[1], MAX_WORKERS - 1);
    for (size_t i = 0; i < nq; i++) {
      cmd2(&cmds[2 + 2 * i], "ZCARD", rtq_keys2_delayed(&c->keys2, names[i]));
      cmd2(&cmds[3 + 2 * i], "LINDEX", rtq_keys2_queue(&c->keys2, names[i]));
      rtq_argv_add_str(&cmds[3 + 2 * i], "-1");
    }
    rc = rtq__pipe2(c, conn, cmds, n, r);
  }
  if (rc == RTQ_EREDIS) {
    rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
      if (r[i] == NULL || (r[i]->type == REDIS_REPLY_ERROR && (i < 2 || !rtq__wrong_type(r[i])))) {
        rc = RTQ_EREDIS;
      } else if (r[i]->type == REDIS_REPLY_ERROR) {
        size_t q = (i - 2) / 2;
        skip_queue(l, skip, names[q], q,
                   i % 2 == 0 ? rtq_keys2_delayed(&c->keys2, names[q]) : rtq_keys2_queue(&c->keys2, names[q]));
      }
    }
    if (rc == 0) rtq__client_clear_err(c);
  }
  if (rc == 0 && time_of(r[0], &l->now) != 0) {
    rtq__client_err(c, "unexpected TIME reply");
    rc = RTQ_EREDIS;
  }
  if (rc == 0)
    rc = count_running(c, conn, names, nq, r[1], 1, running, &l->running_partial, skip, l->skipped,
                       sizeof l->skipped);
  for (size_t i = 0; rc == 0 && i < nq; i++) {
    const redisReply *id = r[3 + 2 * i];
    rtq_key2 k = {0};
    if (!skip[i] && id != NULL && id->type == REDIS_REPLY_STRING && strlen(id->str) == id->len)
      k = rtq_keys2_task(&c->keys2, names[i], id->str);
    if (k.len == 0) {
      cmd2(&heads[i], "PING", k); /* keeps the replies in step */
      continue;
    }
    cmd2(&heads[i], "HGET", k);
    rtq_argv_add_str(&heads[i], "c");
  }
  if (rc == 0 && nq > 0) rc = rtq__pipe2(c, conn, heads, nq, hr);
  if (rc == RTQ_EREDIS) {
    /* Only a task hash of the wrong type is a queue to leave out. */
    rc = 0;
    for (size_t i = 0; rc == 0 && i < nq; i++) {
      if (hr[i] == NULL || (hr[i]->type == REDIS_REPLY_ERROR && !rtq__wrong_type(hr[i])))
        rc = RTQ_EREDIS;
      else if (hr[i]->type == REDIS_REPLY_ERROR)
        skip_queue(l, skip, names[i], i, rtq_keys2_task(&c->keys2, names[i], r[3 + 2 * i]->str));
    }
    if (rc == 0) rtq__client_clear_err(c);
  }
  for (size_t i = 0; rc == 0 && i < nq; i++) {
    if (skip[i]) continue;
    rtq_queue_load *q = &l->queues[l->count++];
    strcpy(q->name, names[i]);
    q->running = running[i];
    q->delayed = rtq__reply_u64(r[2 + 2 * i]);
    if (hr[i] != NULL && hr[i]->type == REDIS_REPLY_STRING) q->oldest_pending_at = rtq__reply_u64(hr[i]);
  }
  rtq__pipe2_free(heads, hr, heads != NULL && hr != NULL ? nq : 0);
  free(skip);
  free(running);
  rtq__pipe2_free(cmds, r, cmds != NULL && r != NULL ? n : 0);
  return rc;
}

int rtq__get_queue_loads2(rtq_client *c, rtq_queue_loads **out) {
  char **names = NULL;
  size_t nq = 0;
  int rc = rtq__queues2_read(c, &names, &nq);
  if (rc != 0) return rc;
  rtq_queue_loads *l = calloc(1, sizeof *l);
  if (l != NULL && nq > 0 && (l->queues = calloc(nq, sizeof *l->queues)) == NULL) {
    free(l);
    l = NULL;
  }
  rtq_conn *conn = NULL;
  rc = l != NULL ? rtq__pool_get(c, &conn) : RTQ_ENOMEM;
  if (rc == 0) rc = loads_read(c, conn, names, nq, l);
  if (conn != NULL) rtq__pool_put(c, conn);
  rtq__queues2_free(names, nq);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    rtq_queue_loads_free(l);
    return rc;
  }
  *out = l;
  return 0;
}
