/*
 * deadletter.c - the reply of a dead-letter call (steps2.c sends it):
 * bad entries go to their queue's dead-letter list, never to a handler and
 * never back to the queue.
 *
 * The worker keeps no copy: if the reply is lost, the entry is still in
 * the processing list (or already dead-lettered), and the next reconcile
 * finds it again.
 */
#include "internal.h"

#include "log.h"

void rtq__deadletter_reply(rtq_worker *w, redisReply *r, void *pd) {
  (void)pd;
  w->claims_in_flight--;
  if (r == NULL || rtq__noscript(w, r)) {
    w->need_reconcile = true;
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    rtq_log(RTQ_LOG_ERROR, "dead-lettering failed; will retry", "error", r->str, NULL);
    w->need_reconcile = true;
    w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
    return;
  }
  w->n_dead++;
}
