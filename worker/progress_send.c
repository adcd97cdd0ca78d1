/*
 * progress_send.c - writing coalesced progress (the coalescer itself is
 * progress.c). Every tick, each running task's newest report is picked up
 * (from its context under thread isolation; process isolation feeds the
 * pipe's reports in directly) and the progress script is sent for those
 * due (steps2.c builds it). The
 * write is fenced like finish, so a task that was taken from this worker
 * keeps its new owner's progress.
 */
#include "internal.h"

#include "log.h"

static void on_progress(rtq_worker *w, redisReply *r, void *pd) {
  (void)pd;
  if (r != NULL && rtq__noscript(w, r)) return; /* the next report goes with EVAL */
  if (r != NULL && r->type == REDIS_REPLY_ERROR)
    rtq_log(RTQ_LOG_WARNING, "progress write failed", "error", r->str, NULL);
}

static void send_progress(rtq_worker *w, rtq__job *j) {
  if (rtq__progress2_argv(w, j) == 0) (void)rtq__rconn_send(rtq__qcmd_of(w, j->queue), &w->argv, on_progress, NULL, 0);
}

void rtq__progress_tick(rtq_worker *w, uint64_t now) {
  bool up = rtq__rconn_up(w->cmd);
  for (rtq__job *j = w->jobs; j != NULL; j = j->next) {
    if (j->state != RTQ__JOB_RUNNING) continue;
    if (j->task != NULL) (void)rtq__task_take_progress(j->task, &j->prog_seq, &j->prog);
    /* With per-node links, each task's write waits for its queue's node. */
    bool ok = w->links_on ? rtq__rconn_up(rtq__qcmd_of(w, j->queue)) : up;
    if (ok && rtq__prog_due(&j->prog, now, w->o.progress_interval_ms)) {
      send_progress(w, j);
      rtq__prog_sent(&j->prog, now);
    }
  }
}
