/*
 * cancel.c - stopping running tasks: cancel requests, local timeouts, and
 * what happens to a handler that does not stop.
 *
 * Paths to a handler's cancel flag:
 *   1. {ns}:cancel (the sub connection): the cancel script publishes the id
 *      of a running task; every worker hears it and the one running it
 *      sets the flag at once. This is the path that meets the 100 ms
 *      promise.
 *   2. A backstop every RTQ__CANCEL_CHECK2_MS: the running tasks' `cr`
 *      fields (steps2.c, rtq__cancel2_check), for messages missed while
 *      the subscriber was reconnecting.
 *   3. The task's own timeout, checked every tick against the local
 *      monotonic clock from the moment the claim succeeded.
 * All three set the same flag (RTQ__STOP_*), which rtq_task_cancelled()
 * reads. A handler that has not returned kill_grace_ms later is killed
 * (process isolation: SIGKILL to its process group) or abandoned (thread
 * isolation: the terminal status is written now, the slot is free again,
 * and the thread is replaced; see slots_thread.c). Once more than
 * max_abandoned_threads abandoned threads are still running, the worker
 * stops itself for a restart (shutdown.c, rtq__shutdown_retire).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "log.h"

void rtq__job_request_stop(rtq_worker *w, rtq__job *j, int reason) {
  if (j->stop_reason != RTQ__STOP_NONE) return;
  if (j->state != RTQ__JOB_CLAIMING && j->state != RTQ__JOB_ADOPTING && j->state != RTQ__JOB_RUNNING) return;
  j->stop_reason = reason;
  j->stop_at = rtq__mono_ms();
  if (j->state == RTQ__JOB_RUNNING && j->handler_live) {
    if (j->task != NULL) atomic_store(j->task->cancel, reason);
    if (j->proc.pid > 0) rtq__proc_set_cancel(w, j, reason);
  }
  rtq_log(RTQ_LOG_INFO, reason == RTQ__STOP_TIMEOUT ? "task timed out; stopping its handler" : "task cancel requested",
          "task", j->id, NULL);
}

void rtq__cancel_on_message(rtq_worker *w, const char *msg, size_t len) {
  if (len == 0 || len > RTQ_NAME_MAX) return;
  for (rtq__job *j = rtq__job_find(w, msg, len); j != NULL; j = rtq__job_find_next(j, msg, len))
    rtq__job_request_stop(w, j, RTQ__STOP_CANCEL);
}

void rtq__job_kill_handler(rtq_worker *w, rtq__job *j) {
  char ms[24];
  snprintf(ms, sizeof ms, "%d", w->o.kill_grace_ms);
  if (w->o.isolation == RTQ_ISOLATION_PROCESS) {
    rtq_log(RTQ_LOG_WARNING, "handler ignored the stop request; killing its process", "task", j->id,
            "grace_ms", ms, NULL);
    rtq__proc_kill(w, j);
    return;
  }
  if (j->task == NULL || rtq__pool_abandon(w->pool, j->task) != 0) return; /* it just returned */
  rtq_log(RTQ_LOG_WARNING, "handler ignored the stop request; abandoning its thread", "task", j->id,
          "grace_ms", ms, NULL);
  j->task = NULL;
  j->killed = true;
  rtq__job_done(w, j);
  /* Each abandoned thread lives as long as its handler, maybe forever: past
   * the cap, a restart is the only way to get rid of them. */
  int n = rtq__pool_abandoned(w->pool);
  if (n > w->o.max_abandoned_threads && w->stop_reason[0] == '\0') {
    char why[200];
    snprintf(why, sizeof why,
             "ABANDONED_THREADS: %d abandoned handler threads still running, over max_abandoned_threads %d; "
             "no new tasks, exiting for a restart once the running ones finish",
             n, w->o.max_abandoned_threads);
    rtq__shutdown_retire(w, RTQ_ESTATE, why);
  }
}

void rtq__cancel_tick(rtq_worker *w, uint64_t now) {
  rtq__job *next;
  for (rtq__job *j = w->jobs; j != NULL; j = next) {
    next = j->next;
    if (j->state != RTQ__JOB_RUNNING || !j->handler_live) continue;
    if (j->stop_reason == RTQ__STOP_NONE && now >= j->deadline) rtq__job_request_stop(w, j, RTQ__STOP_TIMEOUT);
    if (j->stop_reason != RTQ__STOP_NONE && !j->killed && now >= j->stop_at + (uint64_t)w->o.kill_grace_ms)
      rtq__job_kill_handler(w, j);
  }
  if (now >= w->next_cancel_check && !w->cancel_check_in_flight && rtq__rconn_up(w->cmd)) {
    w->next_cancel_check = now + RTQ__CANCEL_CHECK2_MS;
    rtq__cancel2_check(w);
  }
}
