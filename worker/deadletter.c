/*
 * deadletter.c - bad envelopes go to the dead-letter list, never to a
 * handler and never back to the queue.
 *
 * deadletter.lua removes the exact bytes from the processing list, records
 * them (the first 4 KiB) with the code and reason in P:dead, and, when the
 * envelope's id could be read, fails that task with the same code. The
 * worker keeps no copy: if the reply is lost, the envelope is still in the
 * processing list (or already dead-lettered), and the next reconcile finds
 * it again. A 10 MB envelope therefore lives only as long as the write
 * takes; hiredis frees its buffers once they are sent.
 */
#include <stdio.h>

#include "internal.h"

#include "calls.h"
#include "log.h"
#include "scripts.h"

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

void rtq__deadletter(rtq_worker *w, const char *env, size_t len, const char *code,
                     const char *reason, const char *id, const char *queue) {
  char size[24];
  snprintf(size, sizeof size, "%zu", len);
  rtq_log(RTQ_LOG_WARNING, "dead-lettering a bad envelope", "code", code, "reason", reason, "task",
          id, "queue", queue, "bytes", size, NULL);
  if (rtq__call_deadletter(&w->argv, &w->keys, w->use_eval, w->k_processing, env, len, code,
                           reason, w->id, queue, id, w->o.result_ttl_s, w->o.history) != 0 ||
      rtq__rconn_send(w->cmd, &w->argv, rtq__deadletter_reply, NULL, 0) != 0) {
    w->need_reconcile = true;
  } else {
    w->claims_in_flight++;
  }
  /* The scratch argv now holds a copy of the payload; a hostile 10 MB one
   * must not stay resident until the next command. */
  if (len > 64 * 1024) {
    rtq_argv_destroy(&w->argv);
    rtq_argv_init(&w->argv);
  }
}
