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
#include "log.h"
#include "scripts.h"

static void on_dead(rtq_worker *w, redisReply *r, void *pd) {
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
  rtq_key task = {0}, cancel = {0};
  if (id != NULL) {
    task = rtq_keys_task(&w->keys, id);
    cancel = rtq_keys_cancel(&w->keys, id);
  }
  bool with_task = task.len > 0 && cancel.len > 0;
  rtq__script_begin(w, RTQ_SCRIPT_DEADLETTER, with_task ? 10 : 3);
  rtq__argv_key(w, &w->k_dead);
  rtq__argv_key(w, &w->k_processing);
  rtq__argv_key(w, &w->k_stats);
  if (with_task) {
    rtq__argv_key(w, &task);
    rtq__argv_key(w, &w->k_status[RTQ_STATUS_PENDING]);
    rtq__argv_key(w, &w->k_status[RTQ_STATUS_RUNNING]);
    rtq__argv_key(w, &w->k_status[RTQ_STATUS_FAILED]);
    rtq__argv_key(w, &w->k_history);
    rtq__argv_key(w, &cancel);
    rtq__argv_key(w, &w->k_deadlines);
  }
  rtq_argv_add(&w->argv, env, len);
  rtq_argv_add_str(&w->argv, code);
  rtq_argv_add_str(&w->argv, reason);
  rtq_argv_add_str(&w->argv, w->id);
  rtq_argv_add_str(&w->argv, queue);
  rtq_argv_add_str(&w->argv, with_task ? id : "");
  rtq_argv_add_u64(&w->argv, (uint64_t)w->o.result_ttl_s);
  rtq_argv_add_str(&w->argv, w->o.history ? "1" : "0");
  rtq__argv_key(w, &w->k_events);
  if (with_task) {
    rtq_key chan = rtq_keys_chan_task(&w->keys, id);
    rtq__argv_key(w, &chan);
  } else {
    rtq_argv_add_str(&w->argv, "");
  }
  if (rtq__rconn_send(w->cmd, &w->argv, on_dead, NULL, 0) != 0) {
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
