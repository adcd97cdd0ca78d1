/*
 * shutdown.c - graceful stop. Nothing a worker took may be lost.
 *
 *   RUN --stop--> GRACE --all idle, or grace over--> DRAIN --writes done--> CLEANUP --> DONE
 *
 * GRACE    no new pop rounds; a blocking pop in flight is cut short with
 *          CLIENT UNBLOCK (an envelope it already moved still arrives, is
 *          claimed and handed straight back). Running tasks have
 *          shutdown_grace_ms to finish and are written as usual.
 * (grace over, or a second stop request) each task still running is handed
 *          back with requeue.lua (pending again, front of its queue, the
 *          attempt not counted) and its handler is told to stop (cancel
 *          flag) and killed (process) or abandoned (thread); a task that
 *          was already being cancelled or timed out ends that way instead.
 * DRAIN    waits for every completion and hand-back to be acknowledged;
 *          after a connection loss they are sent again.
 * CLEANUP  reads the processing list once more (claim.c's reconcile): it
 *          must be empty, else what is found is adopted and handed back.
 *          Then the worker record is deleted and rtq_worker_run returns 0.
 * The worker may also stop itself (rtq__shutdown_retire: too many abandoned
 * handler threads): the same phases, with the reason in its log and its
 * record, and rtq_worker_run returns that error instead of 0.
 * If Redis stays unreachable past kill_grace + 2 x command_timeout of
 * DRAIN, the worker gives up and returns RTQ_ECONN: what is unwritten stays
 * in its processing list, which the broker recovers once the record expires.
 * While its command connection is down, the worker does not wait that long:
 * holding no task, it exits at once (0: nothing to hand back; its record
 * expires); holding tasks, it gives up when the shutdown grace is over.
 */
#include <stdio.h>

#include "internal.h"
#include "log.h"

#define UNBLOCK_EVERY_MS 200

static void enter_drain(rtq_worker *w, uint64_t now) {
  w->phase = RTQ__DRAIN;
  w->drain_deadline = now + (uint64_t)w->o.kill_grace_ms + 2u * (uint64_t)w->o.command_timeout_ms;
}

static void hand_back_running(rtq_worker *w) {
  int n = 0;
  rtq__job *next;
  for (rtq__job *j = w->jobs; j != NULL; j = next) {
    next = j->next;
    if (j->state != RTQ__JOB_RUNNING) continue;
    if (j->stop_reason == RTQ__STOP_CANCEL || j->stop_reason == RTQ__STOP_TIMEOUT) {
      if (!j->killed) rtq__job_kill_handler(w, j);
      continue;
    }
    rtq__requeue(w, j);
    n++;
  }
  if (n > 0) {
    char c[16];
    snprintf(c, sizeof c, "%d", n);
    rtq_log(RTQ_LOG_WARNING, "shutdown grace over: handing running tasks back to their queues", "count",
            c, NULL);
  }
}

void rtq__shutdown_begin(rtq_worker *w, bool hurry) {
  uint64_t now = rtq__mono_ms();
  if (w->phase == RTQ__START) {
    w->phase = RTQ__DONE;
    rtq__ev_break(w->ev);
    return;
  }
  if (w->phase == RTQ__RUN) {
    char n[16], ms[16];
    snprintf(n, sizeof n, "%d", w->running_jobs);
    snprintf(ms, sizeof ms, "%d", w->o.shutdown_grace_ms);
    rtq_log(RTQ_LOG_INFO, "stopping: no new tasks; running tasks may finish", "running", n, "grace_ms", ms,
            NULL);
    w->phase = RTQ__GRACE;
    w->grace_deadline = now + (uint64_t)w->o.shutdown_grace_ms;
    rtq__claim_unblock(w);
    w->last_unblock = now;
  } else if (w->phase == RTQ__GRACE && hurry) {
    rtq_log(RTQ_LOG_WARNING, "second stop request: skipping the rest of the grace", NULL);
    w->grace_deadline = now;
  }
}

void rtq__shutdown_retire(rtq_worker *w, int rc, const char *reason) {
  if (w->stop_reason[0] != '\0') return;
  snprintf(w->stop_reason, sizeof w->stop_reason, "%s", reason);
  rtq_log(RTQ_LOG_ERROR, "worker stopping itself", "worker", w->id, "reason", reason, NULL);
  rtq__set_err(w, "%s", reason);
  w->exit_rc = rc;
  w->next_heartbeat = 0; /* the record says why at once */
  rtq__shutdown_begin(w, false);
}

static void give_up(rtq_worker *w) {
  char n[16];
  snprintf(n, sizeof n, "%d", w->njobs);
  rtq_log(RTQ_LOG_ERROR,
          "shutdown: redis unreachable; unwritten tasks stay in the processing list for the broker",
          "jobs", n, "worker", w->id, NULL);
  w->exit_rc = RTQ_ECONN;
  rtq__set_err(w, "redis unreachable during shutdown; %d task(s) left to the broker", w->njobs);
  w->phase = RTQ__DONE;
  rtq__ev_break(w->ev);
}

/* Redis is unreachable (the command connection is down) after the
 * running phase: nothing can be written until it is back, so there is no
 * point in waiting for the drain deadline. Returns true when the worker
 * stopped: at once when it holds no task, else once the grace is over. */
static bool unreachable_stop(rtq_worker *w, uint64_t now) {
  if (rtq__rconn_up(w->cmd)) return false;
  if (w->njobs > 0) {
    /* GRACE hands the running tasks back (and stops their handlers) first. */
    if (w->phase < RTQ__DRAIN || now < w->grace_deadline) return false;
    give_up(w);
    return true;
  }
  rtq_log(RTQ_LOG_WARNING, "shutdown: redis unreachable and no task held; exiting now (the worker record expires)",
          "worker", w->id, NULL);
  w->phase = RTQ__DONE;
  rtq__ev_break(w->ev);
  return true;
}

static bool quiet(const rtq_worker *w) {
  return w->njobs == 0 && !rtq__round_in_flight(w) && w->claims_in_flight == 0 && !w->reconcile_in_flight &&
         w->wq_head == NULL;
}

void rtq__shutdown_tick(rtq_worker *w, uint64_t now) {
  if (w->phase < RTQ__GRACE || w->phase == RTQ__DONE) return;
  if (rtq__round_in_flight(w) && now >= w->last_unblock + UNBLOCK_EVERY_MS) {
    rtq__claim_unblock(w);
    w->last_unblock = now;
  }
  if (unreachable_stop(w, now)) return;
  switch (w->phase) {
    case RTQ__GRACE:
      if (w->busy == 0 && !rtq__round_in_flight(w)) {
        enter_drain(w, now);
      } else if (now >= w->grace_deadline) {
        hand_back_running(w);
        enter_drain(w, now);
      }
      return;
    case RTQ__DRAIN:
      if (quiet(w)) {
        w->phase = RTQ__CLEANUP;
        w->need_reconcile = true;
        w->reconcile_at = 0;
        w->last_processing_len = -1;
      } else if (now >= w->drain_deadline) {
        give_up(w);
      }
      return;
    case RTQ__CLEANUP:
      if (w->njobs > 0) {
        w->phase = RTQ__DRAIN; /* the list held something: hand it back first */
        return;
      }
      if (now >= w->drain_deadline) {
        give_up(w);
        return;
      }
      if (!quiet(w) || w->need_reconcile) return;
      if (w->last_processing_len == 0) {
        if (w->record_delete_failed) {
          w->record_delete_failed = false;
          w->record_delete_pending = 0;
        }
        rtq__worker_record_delete(w);
      } else if (w->last_processing_len > 0) {
        /* Entries we could not adopt yet (e.g. a failed read): look again. */
        w->need_reconcile = true;
        w->reconcile_at = now + RTQ__RETRY_WRITE_MS;
      }
      return;
    default:
      return;
  }
}
