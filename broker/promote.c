/*
 * promote.c - delayed envelopes onto their queues when due.
 *
 * P:delayed holds envelopes scored by their due time (Redis ms): tasks
 * created with a delay or a run_at, and failed tasks waiting out their
 * retry backoff (finish.lua puts them there). promote.lua moves one from
 * the set to the head of its queue, gated by ZREM, so a racing broker
 * cannot push it twice. A task cancelled while it waited is promoted all
 * the same; claim.lua drops it.
 *
 * After promoting, the broker reads the earliest due time left, so the
 * event loop can aim a timer at it instead of waiting a whole sweep.
 */
#include "internal.h"

#include <stdlib.h>

#include "envelope.h"
#include "log.h"
#include "calls.h"
#include "scripts.h"

static int queue_one(rtq_broker *b, rtq__batch *bt, const redisReply *env) {
  rtq_envelope e;
  char why[160];
  rtq_envelope_init(&e);
  int err = rtq_envelope_decode(env->str, env->len, (size_t)b->o.max_payload, &e, why, sizeof why);
  int rc = 0;
  if (err == 0) {
    rtq_argv *a = rtq__batch_add(bt);
    rc = a == NULL ? RTQ_ENOMEM
                   : rtq__call_promote(a, &b->keys, false, e.queue, env->str, env->len);
  } else {
    /* No queue to put it on: deadletter.lua takes it out of the set and
     * keeps it in P:dead in one step. */
    rtq_log(RTQ_LOG_WARNING, "delayed envelope does not decode; dead-lettering it", "task",
            e.id[0] ? e.id : NULL, "error", why, NULL);
    rc = rtq__queue_deadletter(b, bt, env->str, env->len, b->k.delayed, rtq__decode_code(err), why,
                               b->id, RTQ_BROKER_UNKNOWN_QUEUE, e.id);
    if (rc == 0) RTQ__COUNT(b, dead_lettered, 1);
  }
  rtq_envelope_destroy(&e);
  return rc;
}

/* Sets next_due_in_ms from the earliest score left in P:delayed. */
static int learn_next_due(rtq_broker *b) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZRANGE");
  rtq__argv_add_key(&a, b->k.delayed);
  rtq_argv_add_i64(&a, 0);
  rtq_argv_add_i64(&a, 0);
  rtq_argv_add_str(&a, "WITHSCORES");
  redisReply *r = NULL;
  int rc = rtq_conn_command(b->conn, &a, &r);
  rtq_argv_destroy(&a);
  b->next_due_in_ms = -1;
  if (rc == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
      r->element[1]->type == REDIS_REPLY_STRING) {
    double due = strtod(r->element[1]->str, NULL);
    b->next_due_in_ms = due <= (double)b->now ? 0 : (int64_t)(due - (double)b->now);
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

int rtq__broker_promote(rtq_broker *b) {
  if (b->protocol == 2) return rtq__broker_promote2(b);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZRANGEBYSCORE");
  rtq__argv_add_key(&a, b->k.delayed);
  rtq_argv_add_str(&a, "-inf");
  rtq_argv_add_u64(&a, b->now);
  rtq_argv_add_str(&a, "LIMIT");
  rtq_argv_add_i64(&a, 0);
  rtq_argv_add_i64(&a, RTQ_BROKER_PROMOTE_PER_SWEEP);
  redisReply *due = NULL;
  int rc = rtq_conn_command(b->conn, &a, &due);
  rtq_argv_destroy(&a);
  if (rc != 0) {
    if (due != NULL) freeReplyObject(due);
    return rc;
  }
  rtq__batch *bt = &b->batch;
  rtq__batch_clear(bt);
  for (size_t i = 0; i < due->elements && rc == 0; i++) {
    if (due->element[i]->type == REDIS_REPLY_STRING) rc = queue_one(b, bt, due->element[i]);
  }
  if (rc == 0 && bt->n > 0) rc = rtq__batch_run(b->conn, bt);
  uint64_t promoted = 0, failed = 0;
  for (int i = 0; rc == 0 && i < bt->n; i++) {
    /* Only a promote.lua command has 6 arguments (EVALSHA, SHA, 2, two keys,
     * the envelope); a ZREM has 3 and a deadletter 16 or more. */
    const redisReply *r = bt->replies[i];
    if (bt->rcs[i] != 0) {
      if (failed++ == 0)
        rtq_log(RTQ_LOG_ERROR, "promoting a delayed envelope failed", "error",
                r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "no reply", NULL);
    } else if (bt->cmds[i].argc == 3 + 2 + 1 && r != NULL && r->type == REDIS_REPLY_INTEGER &&
               r->integer == 1) {
      promoted++;
    }
  }
  RTQ__COUNT(b, promoted, promoted);
  if (promoted > 0) {
    char n[24];
    rtq_log(RTQ_LOG_DEBUG, "promoted delayed tasks", "count", rtq__u64s(promoted, n), NULL);
  }
  bool full = due->elements >= RTQ_BROKER_PROMOTE_PER_SWEEP;
  freeReplyObject(due);
  if (rc != 0 || failed > 0) {
    /* What failed stays due; retrying it at once would spin. The next
     * sweep tries again. */
    b->next_due_in_ms = -1;
    return rc;
  }
  if (full) {
    b->next_due_in_ms = 0;
    return 0;
  }
  return learn_next_due(b);
}
