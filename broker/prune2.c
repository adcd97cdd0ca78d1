/*
 * prune2.c - a prune round over the done lists.
 *
 * finish (and cancel, deadletter, recover, backstop) caps every
 * {ns:Q}:done:<status> list itself, so there is no history trim and no
 * index walk. What is left is an id whose task has
 * expired (its TTL ran out) while the list is not full yet: every
 * cleanup_interval a round runs prune.lua on each list of each queue,
 * which pops such ids from the old end, 100 per call, stopping at the
 * first task that still exists.
 *
 * The lists are visited in order (queue name, then status), 64 lists per
 * pipeline; a list whose call dropped a full 100 is called again, up to
 * RTQ_BROKER2_CALLS_PER_QUEUE times per pipeline. A round spends at most
 * RTQ_BROKER2_PRUNE_CALLS_PER_SWEEP calls a sweep and resumes at the
 * first list it left unfinished (by name: the queue set may change).
 */
#include "internal2.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

#define LISTS_PER_PIPELINE 64

static const rtq_status TERMINAL[4] = {RTQ_STATUS_COMPLETED, RTQ_STATUS_FAILED,
                                       RTQ_STATUS_CANCELLED, RTQ_STATUS_TIMEOUT};

/* The flat index (queue * 4 + status) the saved cursor points at. */
static size_t cursor_index(const rtq__broker2 *s) {
  for (size_t q = 0; q < s->nqueues; q++) {
    int c = strcmp(s->queues[q], s->prune_queue);
    if (c == 0) return q * 4 + (size_t)s->prune_status;
    if (c > 0) return q * 4;
  }
  return s->nqueues * 4;
}

static void save_cursor(rtq__broker2 *s, size_t at) {
  if (at >= s->nqueues * 4) {
    s->prune_queue[0] = '\0';
    s->prune_status = 0;
    return;
  }
  snprintf(s->prune_queue, sizeof s->prune_queue, "%s", s->queues[at / 4]);
  s->prune_status = (int)(at % 4);
}

/* Prunes lists [from, to) until none is full or the calls run out; returns
 * the first list left full (to when none). */
static int prune_chunk(rtq_broker *b, size_t from, size_t to, int *calls, size_t *stop,
                       uint64_t *dropped) {
  rtq__broker2 *s = b->v2;
  bool full[LISTS_PER_PIPELINE];
  for (size_t i = from; i < to; i++) full[i - from] = true;
  int rc = 0;
  for (int r = 0; r < RTQ_BROKER2_CALLS_PER_QUEUE && rc == 0 && *calls > 0; r++) {
    rtq__batch *bt = &b->batch;
    rtq__batch_clear(bt);
    size_t which[LISTS_PER_PIPELINE];
    for (size_t i = from; i < to && rc == 0 && *calls > 0; i++) {
      if (!full[i - from]) continue;
      rtq_argv *a = rtq__batch_add(bt);
      if (a == NULL) return RTQ_ENOMEM;
      which[bt->n - 1] = i;
      (*calls)--;
      rc = rtq__call2_prune(a, &b->keys2, false, s->queues[i / 4], TERMINAL[i % 4],
                            RTQ__V2_MAX_SWEEP);
    }
    if (rc != 0 || bt->n == 0) break;
    if ((rc = rtq__batch_run(b->conn, bt)) != 0) break;
    for (int k = 0; k < bt->n; k++) {
      size_t i = which[k];
      long long n = bt->rcs[k] == 0 && bt->replies[k]->type == REDIS_REPLY_INTEGER
                        ? bt->replies[k]->integer
                        : -1;
      if (n < 0)
        rtq_log(RTQ_LOG_ERROR, "pruning a done list failed", "queue", s->queues[i / 4], "status",
                rtq_status_name(TERMINAL[i % 4]), "error",
                rtq__broker2_why(b, bt->replies[k]), NULL);
      if (n > 0) *dropped += (uint64_t)n;
      full[i - from] = n >= RTQ__V2_MAX_SWEEP;
    }
  }
  *stop = to;
  for (size_t i = from; i < to; i++)
    if (full[i - from]) {
      *stop = i;
      break;
    }
  return rc;
}

int rtq__broker_prune2(rtq_broker *b) {
  int rc = rtq__broker2_queues(b);
  if (rc != 0) return rc;
  rtq__broker2 *s = b->v2;
  size_t at = cursor_index(s), end = s->nqueues * 4;
  int calls = RTQ_BROKER2_PRUNE_CALLS_PER_SWEEP;
  uint64_t dropped = 0;
  while (rc == 0 && at < end && calls > 0) {
    size_t to = at + LISTS_PER_PIPELINE < end ? at + LISTS_PER_PIPELINE : end;
    size_t stop = to;
    rc = prune_chunk(b, at, to, &calls, &stop, &dropped);
    at = stop;
  }
  rtq__batch_clear(&b->batch);
  RTQ__COUNT(b, forgotten, dropped);
  if (dropped > 0) {
    char n[24];
    rtq_log(RTQ_LOG_DEBUG, "pruned ids of expired tasks from the done lists", "count",
            rtq__u64s(dropped, n), NULL);
  }
  save_cursor(s, at);
  if (rc == 0 && at >= end) b->cleanup_active = false; /* the round is over */
  return rc;
}
