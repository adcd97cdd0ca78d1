/*
 * promote2.c - protocol 2: due ids of every queue's delayed set onto its
 * queue (promote.lua, at most 100 per call).
 *
 * Each round sends one call per queue in one pipeline; a queue whose call
 * moved (or reported) a full 100 gets another call in the next round, up
 * to RTQ_BROKER2_CALLS_PER_QUEUE calls a sweep, so a backlog on one queue
 * neither stalls Redis nor starves the others. What is left is promoted
 * by the next sweep, which comes at once (next_due_in_ms 0).
 *
 * An entry that is not a valid id is reported by the script and left in
 * place; deadletter.lua takes it out of the delayed set into the queue's
 * dead list. One too large to record (over 1 MiB, refused by the script)
 * is removed with ZREM and logged, so it cannot block the set's head.
 *
 * The earliest due time left over all queues aims the promotion timer.
 *
 * Most sweeps find nothing due, and a promote call costs Redis a script
 * run (tens of µs, more with cold caches) to say so. So a sweep first
 * reads the head of every delayed set (ZRANGE 0 0 WITHSCORES, one
 * pipeline, a few µs each) and calls promote only on the queues whose head
 * is due by this sweep's Redis time; a head due later only aims the timer.
 */
#include "internal2.h"

#include <stdlib.h>

#include "log.h"

#define MAX_DEAD_ENTRY 1048576

/* Dead-letters (or drops) one bad entry of queue's delayed set, on bt. */
static int queue_bad(rtq_broker *b, rtq__batch *bt, const char *queue, const redisReply *e) {
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return RTQ_ENOMEM;
  if (e->len > MAX_DEAD_ENTRY) {
    rtq_log(RTQ_LOG_WARNING, "removed an oversized invalid entry from a delayed set", "queue",
            queue, NULL);
    rtq_argv_add_str(a, "ZREM");
    rtq__argv_add_key2(a, rtq_keys2_delayed(&b->keys2, queue));
    rtq_argv_add(a, e->str, e->len);
    return a->oom ? RTQ_ENOMEM : 0;
  }
  rtq_log(RTQ_LOG_WARNING, "delayed entry is not a valid task id; dead-lettering it", "queue",
          queue, NULL);
  rtq__keep2 keep = rtq__broker2_keep(b);
  rtq__bytes2 entry = {e->str, e->len};
  return rtq__call2_deadletter(a, &b->keys2, false, queue, entry, "BAD_ID",
                               "not a valid task id", b->id, true, &keep);
}

/* One round: a promote call for each queue with more[i] set. A queue
 * whose bad entry could not be dead-lettered (a dead list or counters key
 * of another type) is left out of the timer's aim until the next sweep:
 * its head stays due, and aiming at it would fire every
 * PROMOTE_MIN_DELAY_MS (ev_glue.c). */
static int round_of(rtq_broker *b, bool *more, int64_t *next, size_t *failed) {
  rtq__broker2 *s = b->v2;
  rtq__batch *bt = &b->batch, *dead = &b->batch2;
  rtq__batch_clear(bt);
  rtq__batch_clear(dead);
  /* which[k]: the queue of promote call k; its dead-letter calls are
   * dead[from[k] .. to[k]). */
  size_t *which = malloc(3 * (s->nqueues + 1) * sizeof *which);
  if (which == NULL) return RTQ_ENOMEM;
  size_t *from = which + s->nqueues + 1, *to = from + s->nqueues + 1;
  int rc = 0;
  for (size_t i = 0; i < s->nqueues && rc == 0; i++) {
    if (!more[i]) continue;
    rtq_argv *a = rtq__batch_add(bt);
    if (a == NULL) {
      rc = RTQ_ENOMEM;
      break;
    }
    which[bt->n - 1] = i;
    rc = rtq__call2_promote(a, &b->keys2, false, s->queues[i], RTQ__V2_MAX_SWEEP);
  }
  if (rc == 0 && bt->n > 0) rc = rtq__batch_run(b->conn, bt);
  uint64_t moved = 0;
  for (int k = 0; rc == 0 && k < bt->n; k++) {
    size_t i = which[k];
    rtq__promote2_result res;
    more[i] = false;
    from[k] = to[k] = (size_t)dead->n;
    if (bt->rcs[k] != 0 || rtq__reply2_promote(bt->replies[k], &res) != 0) {
      if ((*failed)++ == 0)
        rtq_log(RTQ_LOG_ERROR, "promoting a queue's delayed tasks failed", "queue", s->queues[i],
                "error", rtq__broker2_why(b, bt->replies[k]), NULL);
      continue;
    }
    moved += (uint64_t)res.moved;
    next[i] = res.next_due_ms;
    more[i] = res.moved + (int64_t)res.nbad >= RTQ__V2_MAX_SWEEP;
    for (size_t j = 0; j < res.nbad && rc == 0; j++) rc = queue_bad(b, dead, s->queues[i], res.bad[j]);
    to[k] = (size_t)dead->n;
  }
  if (rc == 0 && dead->n > 0) rc = rtq__batch_run(b->conn, dead);
  for (int k = 0; rc == 0 && k < bt->n; k++) {
    size_t i = which[k];
    bool ok = true;
    for (size_t d = from[k]; d < to[k]; d++) {
      if (dead->rcs[d] == 0 && rtq__reply_tag_is(dead->replies[d], "ok")) RTQ__COUNT(b, dead_lettered, 1);
      else if (dead->rcs[d] != 0 && ok) {
        ok = false;
        rtq_log(RTQ_LOG_ERROR, "dead-lettering a bad delayed entry failed; the next sweep tries again", "queue",
                s->queues[i], "error", rtq__broker2_why(b, dead->replies[d]), NULL);
      }
    }
    if (!ok) more[i] = false, next[i] = -1;
  }
  RTQ__COUNT(b, promoted, moved);
  free(which);
  return rc;
}

/* more[i] for each queue whose delayed head is due at b->now, next[i] the
 * head's time otherwise (-1: empty). A reply that is not a plain head (an
 * error, a key of another type, a score that does not parse) leaves the
 * queue to its promote call, which reports it as before. */
static int due_heads(rtq_broker *b, bool *more, int64_t *next) {
  rtq__broker2 *s = b->v2;
  rtq__batch *bt = &b->batch;
  rtq__batch_clear(bt);
  for (size_t i = 0; i < s->nqueues; i++) {
    rtq_argv *a = rtq__batch_add(bt);
    if (a == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "ZRANGE");
    rtq__argv_add_key2(a, rtq_keys2_delayed(&b->keys2, s->queues[i]));
    rtq_argv_add_str(a, "0");
    rtq_argv_add_str(a, "0");
    rtq_argv_add_str(a, "WITHSCORES");
  }
  int rc = rtq__batch_run(b->conn, bt);
  for (size_t i = 0; rc == 0 && i < s->nqueues; i++) {
    const redisReply *r = bt->replies[i];
    more[i] = true;
    next[i] = -1;
    if (bt->rcs[i] != 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) continue;
    if (r->elements == 0) {
      more[i] = false;
      continue;
    }
    if (r->elements != 2 || r->element[1]->type != REDIS_REPLY_STRING) continue;
    char *end = NULL;
    double due = strtod(r->element[1]->str, &end);
    if (end == r->element[1]->str || *end != '\0' || !(due >= 0 && due < 9.0e15)) continue;
    if ((uint64_t)due > b->now) {
      more[i] = false;
      next[i] = (int64_t)due;
    }
  }
  rtq__batch_clear(bt);
  return rc;
}

int rtq__broker_promote2(rtq_broker *b) {
  b->next_due_in_ms = -1;
  int rc = rtq__broker2_queues(b);
  if (rc != 0) return rc;
  size_t nq = b->v2->nqueues;
  if (nq == 0) return 0;
  bool *more = malloc(nq * sizeof *more);
  int64_t *next = malloc(nq * sizeof *next);
  if (more == NULL || next == NULL) {
    free(more);
    free(next);
    return RTQ_ENOMEM;
  }
  for (size_t i = 0; i < nq; i++) {
    more[i] = true;
    next[i] = -1;
  }
  rc = due_heads(b, more, next);
  size_t failed = 0;
  for (int r = 0; r < RTQ_BROKER2_CALLS_PER_QUEUE && rc == 0; r++) {
    bool any = false;
    for (size_t i = 0; i < nq && !any; i++) any = more[i];
    if (!any) break;
    rc = round_of(b, more, next, &failed);
  }
  bool left = false;
  int64_t earliest = -1;
  for (size_t i = 0; i < nq; i++) {
    left = left || more[i];
    if (next[i] >= 0 && (earliest < 0 || next[i] < earliest)) earliest = next[i];
  }
  free(more);
  free(next);
  /* What failed stays due; aiming the timer at it would spin. */
  if (rc != 0 || failed > 0) return rc;
  if (left) b->next_due_in_ms = 0;
  else if (earliest >= 0)
    b->next_due_in_ms = (uint64_t)earliest <= b->now ? 0 : (int64_t)((uint64_t)earliest - b->now);
  return 0;
}
