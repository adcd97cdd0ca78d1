/*
 * purge.c - rtq_queue_purge (client.h): every pending
 * task of a queue ends cancelled.
 *
 * common/lua2/purge.lua does the work in steps of at most
 * RTQ__V2_MAX_SWEEP (100) entries: oldest first from the queue, then from
 * the delayed set, each task ended as a cancel would end it. Between steps
 * Redis serves everyone else, so a million pending tasks cost ten
 * thousand short scripts, not one long one. Three bounds keep the loop
 * itself finite:
 *   1. it visits at most the entries its first step saw (that step's
 *      entries plus the `left` it reported), so a producer that keeps
 *      enqueuing cannot keep it running;
 *   2. max_ms of wall time (RTQ_SWEEP_MAX_MS by default);
 *   3. a step that takes nothing ends it (another purge took the rest).
 */
#include "client_internal.h"

#include <stdio.h>
#include <string.h>

#include "calls2.h"

void (*rtq__sweep_step_hook)(const char *queue);

int rtq__sweep2_step(rtq_client *c, rtq_argv *a, int built, const char *what, int64_t v[3]) {
  redisReply *r = NULL;
  int rc = built;
  if (rc == 0) rc = rtq__client_script2(c, a, &r);
  else rtq__client_err(c, "%s: cannot build the call (%s)", what, rtq_strerror(rc));
  rtq_argv_destroy(a);
  if (rc == 0 && (rc = rtq__reply2_counts(r, v)) != 0) rtq__client_err(c, "%s: unexpected reply", what);
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* With a signing key: the producer's signatures of the ends the step may
 * write, for the ids it may take (the queue's right end, then the
 * earliest delayed), appended to a. */
static int sign_step(rtq_client *c, rtq_argv *a, const char *queue) {
  if (c->sign_keys == NULL) return 0;
  char last[16];
  snprintf(last, sizeof last, "%d", RTQ__V2_MAX_SWEEP - 1);
  char neg[16];
  snprintf(neg, sizeof neg, "-%d", RTQ__V2_MAX_SWEEP);
  rtq_key2 q = rtq_keys2_queue(&c->keys2, queue), d = rtq_keys2_delayed(&c->keys2, queue);
  const char *wq[] = {"LRANGE", q.s, neg, "-1"};
  const char *wd[] = {"ZRANGE", d.s, "0", last};
  redisReply *r[2] = {NULL, NULL};
  int rc = rtq__client_words(c, &r[0], 4, wq);
  if (rc == 0) rc = rtq__client_words(c, &r[1], 4, wd);
  const char *ids[2 * RTQ__V2_MAX_SWEEP];
  size_t n = 0;
  for (int k = 0; rc == 0 && k < 2; k++)
    for (size_t i = 0; r[k]->type == REDIS_REPLY_ARRAY && i < r[k]->elements && n < 2 * RTQ__V2_MAX_SWEEP; i++) {
      const redisReply *e = r[k]->element[i];
      if (e->type == REDIS_REPLY_STRING && strlen(e->str) == e->len && rtq_validate_name(e->str) == 0)
        ids[n++] = e->str;
    }
  if (rc == 0) rc = rtq__sign2_pending_ends(c, a, queue, ids, n, "purged with its queue");
  for (int k = 0; k < 2; k++)
    if (r[k] != NULL) freeReplyObject(r[k]);
  /* A key of another type: the step itself reports it. */
  if (rc == RTQ_EREDIS) rtq__client_clear_err(c), rc = 0;
  return rc;
}

/* One step: counts[0] cancelled, [1] dropped, [2] left. */
static int step(rtq_client *c, const char *queue, const rtq__keep2 *keep, int64_t counts[3]) {
  rtq_argv a;
  rtq_argv_init(&a);
  int built = rtq__call2_purge(&a, &c->keys2, false, queue, RTQ__V2_MAX_SWEEP, keep);
  if (built == 0) built = sign_step(c, &a, queue);
  return rtq__sweep2_step(c, &a, built, "purge", counts);
}

RTQ_EXTERN int rtq_queue_purge(rtq_client *c, const char *queue, int64_t max_ms, rtq_purge_counts *out) {
  rtq_purge_counts n;
  memset(&n, 0, sizeof n);
  if (out != NULL) *out = n;
  rtq__client_clear_err(c);
  int rc = rtq__check_name(c, "queue", queue);
  if (rc == 0 && max_ms < 0) {
    rtq__client_err(c, "purge: max_ms is negative");
    rc = RTQ_EINVAL;
  }
  if (rc != 0) return rc;
  uint64_t deadline = rtq__mono_ms() + (uint64_t)(max_ms ? max_ms : RTQ_SWEEP_MAX_MS);
  rtq__keep2 keep = rtq__keep2_settings(c->result_ttl_s, c->history != 0, c->history_cap);
  uint64_t budget = 0, visited = 0;
  for (;;) {
    int64_t v[3];
    if ((rc = step(c, queue, &keep, v)) != 0) break;
    uint64_t took = (uint64_t)(v[0] + v[1]);
    n.cancelled += (uint64_t)v[0];
    n.dropped += (uint64_t)v[1];
    n.left = (uint64_t)v[2];
    n.calls++;
    visited += took;
    if (n.calls == 1) budget = took + n.left;
    if (rtq__sweep_step_hook != NULL) rtq__sweep_step_hook(queue);
    if (n.left == 0 || took == 0 || visited >= budget) break;
    if (rtq__mono_ms() >= deadline) {
      rtq__client_err(c, "purge: stopped after %llu ms with %llu entries left; run it again",
                      (unsigned long long)(max_ms ? max_ms : RTQ_SWEEP_MAX_MS), (unsigned long long)n.left);
      rc = RTQ_ETIMEDOUT;
      break;
    }
  }
  if (out != NULL) *out = n;
  return rc;
}
