/*
 * load.c - rtq_get_queue_loads: per-queue figures that rtq_get_stats does
 * not carry (running, delayed, the oldest pending task), for the dashboard
 * and /metrics.
 *
 * Three pipelined round trips, each bounded:
 *
 *   1. TIME, SMEMBERS P:queues, ZRANGE P:status:running 0 MAX-1 (+ZCARD),
 *      ZRANGE P:delayed 0 MAX-1 (+ZCARD)
 *   2. LINDEX P:queue:<q> -1 per queue (the next envelope a worker takes:
 *      producers LPUSH, workers take from the right), HGET queue per
 *      running id
 *   3. HGET created_at of each queue's next task
 *
 * Delayed envelopes carry their queue; they are decoded here, not read
 * from Redis again. Past RTQ_LOAD_MAX_SCAN entries of an index the counts
 * cover the first ones only, and the *_partial flag says so.
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>

#include "envelope.h"

#define MAX_QUEUES 10000

static uint64_t int_of(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (uint64_t)r->integer : 0;
}

static uint64_t str_u64(const redisReply *r) {
  return r != NULL && r->type == REDIS_REPLY_STRING ? rtq__parse_u64(r->str, r->len) : 0;
}

static int is_array(const redisReply *r) { return r != NULL && r->type == REDIS_REPLY_ARRAY; }

/* A reply string that is a valid name, copied into buf; 0 or -1. */
static int name_of(const redisReply *r, char buf[RTQ_TASK_ID_SIZE]) {
  if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > RTQ_TASK_ID_MAX)
    return -1;
  memcpy(buf, r->str, r->len);
  buf[r->len] = '\0';
  return strlen(buf) == r->len && rtq_validate_name(buf) == 0 ? 0 : -1;
}

/* The entry for queue name, added when new; NULL on a full table or no
 * memory (the figure is then left out). */
static rtq_queue_load *load_of(rtq_queue_loads *l, const char *name) {
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(l->queues[i].name, name) == 0) return &l->queues[i];
  if (l->count >= MAX_QUEUES) return NULL;
  rtq_queue_load *q = realloc(l->queues, (l->count + 1) * sizeof *q);
  if (q == NULL) return NULL;
  l->queues = q;
  q = &l->queues[l->count++];
  memset(q, 0, sizeof *q);
  strcpy(q->name, name);
  return q;
}

static void cmd_key(rtq_argv *a, const char *name, const rtq_key *k) {
  rtq_argv_init(a);
  rtq_argv_add_str(a, name);
  if (k != NULL) rtq_argv_add(a, k->s, k->len);
}

/* Counts the delayed envelopes of each queue (ZRANGE ... WITHSCORES is not
 * needed: only members). An envelope that does not decode is skipped. */
static void count_delayed(rtq_queue_loads *l, const redisReply *z) {
  for (size_t i = 0; is_array(z) && i < z->elements; i++) {
    const redisReply *m = z->element[i];
    if (m->type != REDIS_REPLY_STRING) continue;
    rtq_envelope e;
    rtq_envelope_init(&e);
    if (rtq_envelope_decode(m->str, m->len, 0, &e, NULL, 0) == 0) {
      rtq_queue_load *q = load_of(l, e.queue);
      if (q != NULL) q->delayed++;
    }
    rtq_envelope_destroy(&e);
  }
}

/* Round trip 1: the time, the queues, the running ids, the delayed
 * envelopes. *running keeps the ZRANGE reply of running ids. */
static int first(rtq_client *c, rtq_conn *conn, rtq_queue_loads *l, redisReply **running) {
  enum { N = 6 };
  rtq_argv cmds[N];
  redisReply *r[N];
  rtq_key k;
  cmd_key(&cmds[0], "TIME", NULL);
  k = rtq_keys_queues(&c->keys);
  cmd_key(&cmds[1], "SMEMBERS", &k);
  k = rtq_keys_status(&c->keys, RTQ_STATUS_RUNNING);
  cmd_key(&cmds[2], "ZRANGE", &k);
  rtq_argv_add_str(&cmds[2], "0");
  rtq_argv_add_u64(&cmds[2], RTQ_LOAD_MAX_SCAN - 1);
  cmd_key(&cmds[3], "ZCARD", &k);
  k = rtq_keys_delayed(&c->keys);
  cmd_key(&cmds[4], "ZRANGE", &k);
  rtq_argv_add_str(&cmds[4], "0");
  rtq_argv_add_u64(&cmds[4], RTQ_LOAD_MAX_SCAN - 1);
  cmd_key(&cmds[5], "ZCARD", &k);
  int rc = rtq__pipe2(c, conn, cmds, N, r);
  for (int i = 0; i < N; i++) rtq_argv_destroy(&cmds[i]);
  if (rc == 0 && (!is_array(r[0]) || r[0]->elements != 2)) {
    rtq__client_err(c, "unexpected TIME reply");
    rc = RTQ_EREDIS;
  }
  if (rc == 0) {
    l->now = str_u64(r[0]->element[0]) * 1000u + str_u64(r[0]->element[1]) / 1000u;
    char name[RTQ_TASK_ID_SIZE];
    for (size_t i = 0; is_array(r[1]) && i < r[1]->elements; i++)
      if (name_of(r[1]->element[i], name) == 0) load_of(l, name);
    l->running_partial = int_of(r[3]) > RTQ_LOAD_MAX_SCAN;
    l->delayed_partial = int_of(r[5]) > RTQ_LOAD_MAX_SCAN;
    count_delayed(l, r[4]);
    if (is_array(r[2])) {
      *running = r[2];
      r[2] = NULL;
    }
  }
  for (int i = 0; i < N; i++)
    if (r[i] != NULL) freeReplyObject(r[i]);
  return rc;
}

/* Round trips 2 and 3: the head of each queue, the queue of each running
 * task, then the created_at of each head. */
static int second(rtq_client *c, rtq_conn *conn, rtq_queue_loads *l, const redisReply *running) {
  size_t nq = l->count, nr = running != NULL ? running->elements : 0, n = nq + nr;
  if (n == 0) return 0;
  rtq_argv *cmds = calloc(n, sizeof *cmds);
  redisReply **r = calloc(n, sizeof *r);
  if (cmds == NULL || r == NULL) {
    rtq__pipe2_free(cmds, r, 0);
    return RTQ_ENOMEM;
  }
  char id[RTQ_TASK_ID_SIZE];
  for (size_t i = 0; i < nq; i++) {
    rtq_key k = rtq_keys_queue(&c->keys, l->queues[i].name);
    cmd_key(&cmds[i], "LINDEX", &k);
    rtq_argv_add_str(&cmds[i], "-1");
  }
  for (size_t i = 0; i < nr; i++) {
    if (name_of(running->element[i], id) != 0) {
      cmd_key(&cmds[nq + i], "PING", NULL); /* keeps the replies in step */
      continue;
    }
    rtq_key k = rtq_keys_task(&c->keys, id);
    cmd_key(&cmds[nq + i], "HGET", &k);
    rtq_argv_add_str(&cmds[nq + i], "queue");
  }
  int rc = rtq__pipe2(c, conn, cmds, n, r);
  /* Queue names first: load_of may grow l->queues past nq. */
  char qname[RTQ_TASK_ID_SIZE];
  for (size_t i = 0; rc == 0 && i < nr; i++) {
    rtq_queue_load *q = name_of(r[nq + i], qname) == 0 ? load_of(l, qname) : NULL;
    if (q != NULL) q->running++;
  }
  /* Then the heads' created_at, reusing the first nq slots. */
  size_t nh = 0;
  uint64_t *env_at = calloc(nq + 1, sizeof *env_at);
  if (env_at == NULL) rc = rc != 0 ? rc : RTQ_ENOMEM;
  for (size_t i = 0; rc == 0 && i < nq; i++) {
    rtq_argv_destroy(&cmds[i]);
    rtq_argv_init(&cmds[i]);
    const redisReply *h = r[i];
    if (h == NULL || h->type != REDIS_REPLY_STRING || rtq_envelope_peek_id(h->str, h->len, id) != 0) {
      rtq_argv_add_str(&cmds[i], "PING");
      continue;
    }
    rtq_envelope e;
    rtq_envelope_init(&e);
    if (rtq_envelope_decode(h->str, h->len, 0, &e, NULL, 0) == 0) env_at[i] = e.created_at;
    rtq_envelope_destroy(&e);
    rtq_key k = rtq_keys_task(&c->keys, id);
    cmd_key(&cmds[i], "HGET", &k);
    rtq_argv_add_str(&cmds[i], "created_at");
    nh++;
  }
  for (size_t i = 0; i < nq; i++)
    if (r[i] != NULL) {
      freeReplyObject(r[i]);
      r[i] = NULL;
    }
  if (rc == 0 && nh > 0) rc = rtq__pipe2(c, conn, cmds, nq, r);
  for (size_t i = 0; rc == 0 && nh > 0 && i < nq; i++) {
    uint64_t at = str_u64(r[i]);
    /* A head whose hash is gone (expired, deleted) still waits: the
     * envelope's own time says since when. */
    l->queues[i].oldest_pending_at = at != 0 ? at : env_at[i];
  }
  free(env_at);
  rtq__pipe2_free(cmds, r, n);
  return rc;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const rtq_queue_load *)a)->name, ((const rtq_queue_load *)b)->name);
}

RTQ_EXTERN int rtq_get_queue_loads(rtq_client *c, rtq_queue_loads **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  if (c->protocol == 2) return rtq__get_queue_loads2(c, out);
  rtq_queue_loads *l = calloc(1, sizeof *l);
  rtq_conn *conn = NULL;
  redisReply *running = NULL;
  int rc = l != NULL ? rtq__pool_get(c, &conn) : RTQ_ENOMEM;
  if (rc == 0) rc = first(c, conn, l, &running);
  if (rc == 0) rc = second(c, conn, l, running);
  if (running != NULL) freeReplyObject(running);
  if (conn != NULL) rtq__pool_put(c, conn);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    rtq_queue_loads_free(l);
    return rc;
  }
  if (l->count > 1) qsort(l->queues, l->count, sizeof *l->queues, by_name);
  *out = l;
  return 0;
}

RTQ_EXTERN void rtq_queue_loads_free(rtq_queue_loads *l) {
  if (l == NULL) return;
  free(l->queues);
  free(l);
}
