/*
 * tasks_delete.c - rtq_tasks_delete (client.h): ended
 * tasks of one status go, with their index entries.
 *
 * A queue's ended tasks of a status are listed, newest first, in
 * {ns:Q}:done:<status>; common/lua2/delete.lua deletes from its old end,
 * at most RTQ__V2_MAX_SWEEP (100) per step, stopping at the first task
 * that ended after the cutoff. Bounds of the loop:
 *   1. per queue, at most the entries the list held when the queue was
 *      reached (workers push new ones at the other end meanwhile);
 *   2. max_ms of wall time for the whole run (RTQ_SWEEP_MAX_MS);
 *   3. queues: those of {ns}:queues, read once.
 */
#include "client_internal.h"

#include <string.h>

#include "calls2.h"

/* Longest --older-than: 10 years, as the script's time bounds. */
#define MAX_AGE_MS 315360000000ull

/* One step on queue: v[0] deleted, [1] dropped, [2] more. */
static int step(rtq_client *c, const char *queue, rtq_status status, uint64_t cutoff, int64_t v[3]) {
  rtq_argv a;
  rtq_argv_init(&a);
  return rtq__sweep2_step(c, &a, rtq__call2_delete(&a, &c->keys2, false, queue, status, RTQ__V2_MAX_SWEEP, cutoff),
                          "delete", v);
}

/* Deletes on one queue until its list has nothing older, or the entries
 * present on arrival are visited, or the deadline passes. */
static int delete_queue(rtq_client *c, const char *queue, rtq_status status, uint64_t cutoff, uint64_t deadline,
                        rtq_delete_counts *n) {
  rtq_key2 key = rtq_keys2_done(&c->keys2, queue, status);
  redisReply *r = NULL;
  int rc = rtq__client_words(c, &r, 2, (const char *[]){"LLEN", key.s});
  if (rc != 0) return rc;
  uint64_t budget = r->type == REDIS_REPLY_INTEGER && r->integer > 0 ? (uint64_t)r->integer : 0;
  freeReplyObject(r);
  n->queues++;
  for (uint64_t visited = 0; visited < budget;) {
    if (rtq__mono_ms() >= deadline) {
      rtq__client_err(c, "delete: ran out of time in queue %s; run it again", queue);
      return RTQ_ETIMEDOUT;
    }
    int64_t v[3];
    if ((rc = step(c, queue, status, cutoff, v)) != 0) return rc;
    n->deleted += (uint64_t)v[0];
    n->dropped += (uint64_t)v[1];
    n->calls++;
    visited += (uint64_t)(v[0] + v[1]);
    if (rtq__sweep_step_hook != NULL) rtq__sweep_step_hook(queue);
    if (v[2] == 0) break;
  }
  return 0;
}

RTQ_EXTERN int rtq_tasks_delete(rtq_client *c, rtq_status status, const char *queue, uint64_t older_than_ms,
                                int64_t max_ms, rtq_delete_counts *out) {
  rtq_delete_counts n;
  memset(&n, 0, sizeof n);
  if (out != NULL) *out = n;
  rtq__client_clear_err(c);
  int rc;
  if ((int)status < 0 || (int)status >= RTQ_STATUS_COUNT || !rtq_status_is_terminal(status)) {
    rtq__client_err(c, "tasks delete: only ended tasks (completed, failed, cancelled, timeout) are deleted; "
                       "cancel or purge pending ones");
    return RTQ_EINVAL;
  }
  if (queue != NULL && (rc = rtq__check_name(c, "queue", queue)) != 0) return rc;
  if (max_ms < 0) {
    rtq__client_err(c, "tasks delete: max_ms is negative");
    return RTQ_EINVAL;
  }
  if (older_than_ms > MAX_AGE_MS) {
    rtq__client_err(c, "tasks delete: older than %llu ms is over 10 years", (unsigned long long)older_than_ms);
    return RTQ_ERANGE;
  }
  uint64_t deadline = rtq__mono_ms() + (uint64_t)(max_ms ? max_ms : RTQ_SWEEP_MAX_MS);
  uint64_t cutoff = 0;
  if (older_than_ms > 0) {
    uint64_t now;
    if ((rc = rtq_client_time_ms(c, &now)) != 0) return rc;
    /* 0 means "no cutoff" to the script: a cutoff before the epoch
     * matches nothing, so there is nothing to do. */
    if (now <= older_than_ms) return 0;
    cutoff = now - older_than_ms;
  }
  if (queue != NULL) {
    rc = delete_queue(c, queue, status, cutoff, deadline, &n);
  } else {
    char **names;
    size_t nq;
    if ((rc = rtq__queues2_read(c, &names, &nq)) != 0) return rc;
    for (size_t i = 0; i < nq && rc == 0; i++) rc = delete_queue(c, names[i], status, cutoff, deadline, &n);
    rtq__queues2_free(names, nq);
  }
  if (out != NULL) *out = n;
  return rc;
}
