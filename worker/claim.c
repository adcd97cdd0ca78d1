/*
 * claim.c - what the claim rounds (claim2.c) share with the rest of the
 * worker: their entry points, ending a blocking BLMOVE (CLIENT UNBLOCK),
 * and the paused queues, read every RTQ__PAUSED_POLL_MS from {ns}:paused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "internal.h"
#include "log.h"

void rtq__claim_pump(rtq_worker *w) { rtq__claim2_pump(w); }

/* Shutdown: a BLMOVE may sit in Redis for the whole block timeout; CLIENT
 * UNBLOCK makes it return nil now (an envelope it already moved still
 * arrives and is handed back). */
void rtq__reply_ignore(rtq_worker *w, redisReply *r, void *pd) {
  (void)w;
  (void)r;
  (void)pd;
}

void rtq__claim_unblock(rtq_worker *w) { rtq__claim2_unblock(w); }

void rtq__unblock_pop(rtq_worker *w) {
  long long id = rtq__rconn_client_id(w->pop);
  if (id <= 0 || !rtq__rconn_up(w->cmd)) return;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "CLIENT");
  rtq_argv_add_str(&w->argv, "UNBLOCK");
  rtq_argv_add_i64(&w->argv, id);
  (void)rtq__rconn_send(w->cmd, &w->argv, rtq__reply_ignore, NULL, 0);
}

/* Several queues: a blocking round has watched one queue for poll_ms;
 * end it so the others are probed (repeated each tick until it ends, since
 * an UNBLOCK that overtakes its BLMOVE does nothing). */
void rtq__claim_tick(rtq_worker *w, uint64_t now) { rtq__claim2_tick(w, now); }

/* ---- paused queues ---- */

static void on_paused(rtq_worker *w, redisReply *r, void *pd) {
  (void)pd;
  w->paused_in_flight = false;
  if (r != NULL && r->type == REDIS_REPLY_ERROR && !w->paused_known)
    rtq_log(RTQ_LOG_WARNING, "cannot read the paused queues; claiming as if none were paused", "error", r->str,
            NULL);
  /* Claiming waits for the first answer, so a worker that starts while a
   * queue is paused takes nothing from it; an error answer (a user without
   * SMEMBERS) must not stop the worker for good. */
  if (r != NULL) w->paused_known = true;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) return; /* read again next time */
  const char *names[RTQ_WORKER_MAX_QUEUES];
  size_t n = 0;
  /* Only this worker's queues matter; names of other queues are skipped. */
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_STRING) continue;
    for (int q = 0; q < w->queues.n && n < RTQ_WORKER_MAX_QUEUES; q++)
      if (strcmp(w->queues.q[q].name, e->str) == 0) names[n++] = w->queues.q[q].name;
  }
  bool was[RTQ_WORKER_MAX_QUEUES];
  for (int q = 0; q < w->queues.n; q++) was[q] = w->queues.q[q].paused;
  if (rtq__queues_set_paused(&w->queues, names, n) == 0) return;
  for (int q = 0; q < w->queues.n; q++)
    if (was[q] != w->queues.q[q].paused)
      rtq_log(RTQ_LOG_INFO, w->queues.q[q].paused ? "queue paused: not claiming from it" : "queue resumed",
              "queue", w->queues.q[q].name, NULL);
  /* A BLMOVE waiting on a queue that is now paused would still take what
   * arrives there: end the round. */
  rtq__claim2_tick(w, rtq__mono_ms());
}

void rtq__claim_paused_tick(rtq_worker *w, uint64_t now) {
  if (w->paused_in_flight || now < w->next_paused_poll || !rtq__rconn_up(w->cmd)) return;
  w->next_paused_poll = now + RTQ__PAUSED_POLL_MS;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "SMEMBERS");
  rtq__argv_add_key2(&w->argv, w->k_paused);
  if (rtq__rconn_send(w->cmd, &w->argv, on_paused, NULL, 0) == 0) w->paused_in_flight = true;
}

void rtq__claim_on_conn_down(rtq_worker *w, rtq__rconn *c) {
  (void)c;
  w->need_reconcile = true;
}

void rtq__reconcile_pump(rtq_worker *w) { rtq__reconcile2_pump(w); }
