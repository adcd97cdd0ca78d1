/*
 * complete.c - starting a claimed task, and writing how it ended.
 *
 * Batching: a finished job is only queued here (the write queue); the
 * queue is flushed from the loop's prepare hook, right before the loop
 * sleeps, so the completions that arrived in one loop iteration leave in
 * one finish call per queue (complete2.c builds it; RTQ__V2_MAX_TASKS at
 * most per call) on the queue's connection; its reply has one entry per
 * task.
 *
 * Fencing: the finish script writes only while the task is running under this
 * worker id and attempt. A 'stale' reply means the task was taken from us
 * (the broker redelivered it, or timed it out while we were silent): the
 * late result is dropped and logged at WARNING.
 *
 * A lost connection loses nothing: a write whose reply did not come stays
 * queued and is sent again once the connection is back. Sending it twice
 * is safe, because the second run finds the task ended and replies
 * 'stale' (logged at INFO then, since the first run did write it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls2.h"
#include "defaults.h"
#include "internal.h"
#include "log.h"
#include "replicas.h"

static void set_outcome(rtq__job *j, rtq_status st, const char *code, const char *msg) {
  rtq__outcome_destroy(&j->out);
  j->out.status = st;
  j->out.code = strdup(code);
  j->out.message = strdup(msg);
}

/* The job is written off without running (start failure). */
static void fail_start(rtq_worker *w, rtq__job *j, const char *why) {
  set_outcome(j, RTQ_STATUS_FAILED, RTQ_CODE_WORKER_CRASH, why);
  rtq_log(RTQ_LOG_ERROR, "could not start a handler", "task", j->id, "error", why, NULL);
  j->handler_live = false;
  rtq__job_set_state(w, j, RTQ__JOB_FINISHING);
  rtq__wq_push(w, j);
}

void rtq__job_start(rtq_worker *w, rtq__job *j) {
  uint64_t now = rtq__mono_ms();
  rtq__job_set_state(w, j, RTQ__JOB_RUNNING);
  j->started = now;
  j->started_ns = rtq__mono_ns();
  j->deadline = now + j->timeout_ms;
  w->n_claimed++;
  if (w->phase > RTQ__GRACE || (w->phase == RTQ__GRACE && !j->claimed_running)) {
    /* Taken while stopping (a pop already in flight, or found by the last
     * look at the processing list): hand it back without running it. A
     * claim sent before the stop runs, within the grace. */
    rtq__requeue(w, j);
    return;
  }
  const rtq__handler *h = rtq__handler_find(w, j->name);
  rtq_task_ctx *t = h ? rtq__task_new(&j->e, h->fn, h->userdata, w->o.max_result, w->o.progress_interval_ms) : NULL;
  if (t == NULL) {
    fail_start(w, j, "out of memory creating the task context");
    return;
  }
  free(j->e.args); /* the task has its own copy */
  j->e.args = NULL;
  j->e.args_len = 0;
  t->attempt = j->attempt;
  t->timeout_ms = j->timeout_ms;
  t->job = j;
  if (j->stop_reason != RTQ__STOP_NONE) atomic_store(t->cancel, j->stop_reason);
  j->handler_live = true;
  if (w->o.isolation == RTQ_ISOLATION_THREAD) {
    j->task = t;
    rtq__pool_submit(w->pool, t);
    return;
  }
  int rc = rtq__proc_start(w, j, t);
  rtq__task_free(t); /* the child has its own copy */
  if (rc == RTQ_ESTATE) {
    /* Every slot taken (more adopted envelopes than slots): hand it back. */
    j->handler_live = false;
    rtq__requeue(w, j);
  } else if (rc != 0) {
    fail_start(w, j, "could not fork a handler process");
  }
}

/* How a stopped task ends: cancelled or timeout, whatever the handler did. */
static void stop_outcome(rtq__job *j) {
  char msg[200];
  const char *how = j->killed ? "; the handler did not stop within the kill grace and was killed" : "";
  if (j->stop_reason == RTQ__STOP_TIMEOUT) {
    snprintf(msg, sizeof msg, "exceeded its timeout of %" PRIu64 " ms%s", j->timeout_ms, how);
    set_outcome(j, RTQ_STATUS_TIMEOUT, RTQ_CODE_TIMEOUT, msg);
  } else {
    snprintf(msg, sizeof msg, "cancelled while running%s", how);
    set_outcome(j, RTQ_STATUS_CANCELLED, RTQ_CODE_CANCELLED, msg);
  }
}

static void maybe_free(rtq_worker *w, rtq__job *j) {
  if (!j->handler_live && !j->in_flight && !j->queued) rtq__job_free(w, j);
}

void rtq__job_done(rtq_worker *w, rtq__job *j) {
  j->handler_live = false;
  if (j->state == RTQ__JOB_REQUEUING || j->state == RTQ__JOB_REQUEUED) {
    /* Handed back at shutdown: whatever the handler produced is void. */
    if (j->state == RTQ__JOB_REQUEUED) maybe_free(w, j);
    return;
  }
  if (j->killed || (j->stop_reason != RTQ__STOP_NONE && j->cancel_at_return)) stop_outcome(j);
  if (!j->ran) {
    j->run_us = (rtq__mono_ns() - j->started_ns) / 1000u;
    j->ran = true;
  }
  rtq__job_set_state(w, j, RTQ__JOB_FINISHING);
  rtq__wq_push(w, j);
}

void rtq__requeue(rtq_worker *w, rtq__job *j) {
  rtq__job_set_state(w, j, RTQ__JOB_REQUEUING);
  if (j->handler_live) {
    j->stop_reason = RTQ__STOP_SHUTDOWN;
    if (w->o.isolation == RTQ_ISOLATION_THREAD) {
      if (j->task != NULL) {
        atomic_store(j->task->cancel, RTQ__STOP_SHUTDOWN);
        if (rtq__pool_abandon(w->pool, j->task) == 0) {
          j->task = NULL;
          j->handler_live = false;
        }
      }
    } else {
      rtq__proc_set_cancel(w, j, RTQ__STOP_SHUTDOWN);
      rtq__proc_kill(w, j);
    }
  }
  rtq__wq_push(w, j);
}

/* ---- finish.lua ---- */

uint64_t rtq__jitter_ms(rtq_worker *w) {
  /* xorshift64: spreads retries of tasks that failed together. */
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 7;
  w->rng ^= w->rng << 17;
  return w->rng % (RTQ_RETRY_BACKOFF_MS / 2);
}

/* The jobs of one finish call, in the order of its reply. */
typedef struct finishset {
  int n;
  size_t bytes; /* results, details and tracebacks in the call so far */
  rtq__job *jobs[RTQ__V2_MAX_TASKS];
} finishset;

/* The finish script takes at most 256 KiB of values per call of several
 * tasks; the margin covers the short fields outcome_bytes leaves out. A
 * larger outcome goes in a call of its own. */
#define FINISH2_BATCH_BYTES (240u * 1024u)

static size_t outcome_bytes(const rtq__outcome *o) {
  return o->result_len + o->details_len + (o->traceback ? strlen(o->traceback) : 0) +
         (o->message ? strlen(o->message) : 0);
}

static void on_finishes(rtq_worker *w, redisReply *r, void *pd);

/*
 * wait_replicas: WAIT after finish calls. One WAIT covers every write sent
 * before it on the connection, and Redis answers a client's commands in
 * order, so the connection keeps at most one WAIT in flight: finish calls
 * sent meanwhile go out at once (Redis runs them when that WAIT returns,
 * within its timeout) and their tasks are collected in wait_pending, for
 * the one WAIT sent when the reply comes. A finish call thus waits for at
 * most one timeout, however many calls a dead replica holds up.
 */
static void send_wait(rtq_worker *w, rtq__rconn *c, rtq__waitq *q);

static void on_wait(rtq_worker *w, redisReply *r, void *pd) {
  rtq__waitset *ws = pd;
  rtq__waitq *q = ws->q;
  q->in_flight = false;
  if (r == NULL) {
    /* Connection lost: these finish calls and the pending ones are resent,
     * each followed by a WAIT again. */
    free(ws);
    free(q->pending);
    q->pending = NULL;
    return;
  }
  int acked = 0;
  char got[16], want[16], n[16];
  snprintf(want, sizeof want, "%d", w->o.wait_replicas);
  snprintf(n, sizeof n, "%d", ws->n);
  if (rtq_replicas_parse(r, &acked) != 0) {
    w->n_unreplicated += (uint64_t)ws->n;
    rtq_log(RTQ_LOG_WARNING, "completions written, but WAIT failed: their replication is unknown", "tasks", n,
            "error", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply", NULL);
    acked = -1;
  } else if (acked < w->o.wait_replicas) {
    w->n_unreplicated += (uint64_t)ws->n;
    snprintf(got, sizeof got, "%d", acked);
    rtq_log(RTQ_LOG_WARNING, "completions written, but fewer replicas than asked acknowledged them", "tasks", n,
            "replicas", got, "wanted", want, NULL);
  }
  if (acked >= 0 && rtq_log_get_level() == RTQ_LOG_DEBUG) {
    snprintf(got, sizeof got, "%d", acked);
    for (int i = 0; i < ws->n; i++)
      rtq_log(RTQ_LOG_DEBUG, "completion acknowledged", "task", ws->ids[i], "replicas", got, NULL);
  }
  free(ws);
  /* The connection is the one the WAIT went on: it is still up (a lost
   * one calls back with NULL). */
  send_wait(w, NULL, q);
}

/* Sends WAIT on c (NULL: the connection q belongs to) for q's pending
 * tasks unless one is in flight or none is pending. */
static void send_wait(rtq_worker *w, rtq__rconn *c, rtq__waitq *q) {
  rtq__waitset *ws = q->pending;
  if (q->in_flight || ws == NULL || ws->n == 0) return;
  if (c == NULL) c = q == &w->waitq ? w->cmd : ws->conn;
  q->pending = NULL;
  /* The reply may take the whole timeout: the watchdog allows for it. */
  if (rtq_replicas_argv(&w->argv, w->o.wait_replicas, w->o.wait_timeout_ms) != 0 ||
      rtq__rconn_send(c, &w->argv, on_wait, ws, w->o.wait_timeout_ms) != 0) {
    /* Not sent: the connection is down, and the finish calls before it
     * are resent once it is back. */
    free(ws);
    return;
  }
  q->in_flight = true;
}

/* Adds the call's tasks to the pending WAIT of connection c. */
static void want_wait(rtq_worker *w, rtq__rconn *c, const finishset *fs) {
  rtq__waitq *q = rtq__waitq_of(w, c);
  rtq__waitset *ws = q->pending;
  int have = ws != NULL ? ws->n : 0;
  rtq__waitset *more = realloc(ws, sizeof *ws + (size_t)(have + fs->n) * sizeof ws->ids[0]);
  if (more == NULL) {
    w->n_unreplicated += (uint64_t)fs->n;
    rtq_log(RTQ_LOG_WARNING, "out of memory: completions not followed by WAIT", NULL);
    return;
  }
  more->q = q;
  more->conn = c;
  more->n = have;
  for (int i = 0; i < fs->n; i++) snprintf(more->ids[more->n++], sizeof more->ids[0], "%s", fs->jobs[i]->id);
  q->pending = more;
  send_wait(w, c, q);
}

static int send_finishes(rtq_worker *w, finishset *fs) {
  rtq__rconn *c = rtq__qcmd_of(w, fs->jobs[0]->queue);
  int rc = rtq__finish2_argv(w, fs->jobs, fs->n, true, rtq__jitter_ms);
  if (rc == 0) rc = rtq__rconn_send(c, &w->argv, on_finishes, fs, 0);
  if (rc == 0 && w->o.wait_replicas > 0) want_wait(w, c, fs);
  return rc;
}

/* A write that failed with an error reply (OOM under noeviction, a
 * read-only replica after a failover) is retried every second. */
static void retry_later(rtq_worker *w, rtq__job *j, const char *what, const char *err) {
  rtq_log(RTQ_LOG_WARNING, what, "task", j->id, "error", err, NULL);
  j->retry_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
  rtq__wq_push(w, j);
}

/* One entry of finish.lua's reply, for job j. */
static void finish_result(rtq_worker *w, rtq__job *j, const redisReply *e) {
  const char *kind = e->type == REDIS_REPLY_ARRAY && e->elements >= 2 &&
                             e->element[0]->type == REDIS_REPLY_STRING
                         ? e->element[0]->str
                         : "";
  const char *st = rtq_status_name(j->out.status);
  if (strcmp(kind, "ok") == 0) {
    w->n_finished++;
    rtq_log(RTQ_LOG_DEBUG, "task finished", "task", j->id, "status", st, NULL);
  } else if (strcmp(kind, "retry") == 0) {
    w->n_finished++;
    rtq_log(RTQ_LOG_INFO, "task failed; retry scheduled", "task", j->id, "code", j->out.code, NULL);
  } else if (strcmp(kind, "stale") == 0) {
    const char *now = e->element[1]->type == REDIS_REPLY_STRING ? e->element[1]->str : "";
    w->n_stale++;
    rtq_log(j->resent ? RTQ_LOG_INFO : RTQ_LOG_WARNING,
            j->resent ? "completion already written before the connection dropped"
                      : "late result rejected: the task is no longer ours (fenced)",
            "task", j->id, "attempt_status", st, "task_status", now, NULL);
  } else {
    rtq_log(RTQ_LOG_ERROR, "unexpected finish reply", "task", j->id, NULL);
  }
  maybe_free(w, j);
}

static void on_finishes(rtq_worker *w, redisReply *r, void *pd) {
  finishset *fs = pd;
  for (int i = 0; i < fs->n; i++) fs->jobs[i]->in_flight = false;
  if (r == NULL) {
    for (int i = 0; i < fs->n; i++) {
      fs->jobs[i]->resent = true;
      rtq__wq_push(w, fs->jobs[i]);
    }
  } else if (rtq__noscript(w, r)) {
    /* The script did not run: the runs go out again with the resend. */
    for (int i = 0; i < fs->n; i++) {
      fs->jobs[i]->run_counted = false;
      rtq__wq_push(w, fs->jobs[i]);
    }
  } else if (r->type == REDIS_REPLY_ERROR) {
    for (int i = 0; i < fs->n; i++) {
      fs->jobs[i]->run_counted = false;
      retry_later(w, fs->jobs[i], "writing a completion failed; retrying", r->str);
    }
  } else if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)fs->n) {
    for (int i = 0; i < fs->n; i++) {
      rtq_log(RTQ_LOG_ERROR, "unexpected finish reply", "task", fs->jobs[i]->id, NULL);
      maybe_free(w, fs->jobs[i]);
    }
  } else {
    for (int i = 0; i < fs->n; i++) finish_result(w, fs->jobs[i], r->element[i]);
  }
  free(fs);
}

/* ---- handing a task back (requeue) ---- */

static void on_requeue(rtq_worker *w, redisReply *r, void *pd);

static int send_requeue(rtq_worker *w, rtq__job *j) {
  int rc = rtq__requeue2_argv(w, j);
  return rc != 0 ? rc : rtq__rconn_send(rtq__qcmd_of(w, j->queue), &w->argv, on_requeue, j, 0);
}

static void on_requeue(rtq_worker *w, redisReply *r, void *pd) {
  rtq__job *j = pd;
  j->in_flight = false;
  if (r == NULL || rtq__noscript(w, r)) {
    rtq__wq_push(w, j);
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    retry_later(w, j, "handing a task back failed; retrying", r->str);
    return;
  }
  const char *kind = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                             r->element[0]->type == REDIS_REPLY_STRING
                         ? r->element[0]->str
                         : "";
  rtq_log(strcmp(kind, "requeued") == 0 ? RTQ_LOG_INFO : RTQ_LOG_WARNING,
          strcmp(kind, "requeued") == 0 ? "task handed back to its queue"
                                        : "task not handed back: no longer ours",
          "task", j->id, NULL);
  rtq__job_set_state(w, j, RTQ__JOB_REQUEUED);
  maybe_free(w, j);
}

/* ---- the write queue ---- */

/* Sends the finish batch *fs, if any; on failure its jobs go back on the
 * write queue. Takes *fs. */
static int flush_finishes(rtq_worker *w, finishset **fs) {
  finishset *f = *fs;
  *fs = NULL;
  if (f == NULL) return 0;
  if (send_finishes(w, f) != 0) {
    for (int i = 0; i < f->n; i++) rtq__wq_push(w, f->jobs[i]);
    free(f);
    return -1;
  }
  /* A reply that never comes (lost connection) leaves them counted: the
   * call may have run, and a run is better missed than counted twice. */
  for (int i = 0; i < f->n; i++) {
    f->jobs[i]->in_flight = true;
    f->jobs[i]->run_counted = f->jobs[i]->ran;
  }
  return 0;
}

void rtq__complete_pump(rtq_worker *w) {
  /* With per-node links a batch whose node is down is pushed back below. */
  if (w->wq_head == NULL || (!w->links_on && !rtq__rconn_up(w->cmd))) return;
  uint64_t now = rtq__mono_ms();
  rtq__job *later = NULL, **later_tail = &later;
  finishset *fs = NULL;
  rtq__job *j;
  while ((j = rtq__wq_pop(w)) != NULL) {
    if (j->retry_at > now) {
      *later_tail = j;
      later_tail = &j->qnext;
      continue;
    }
    if (j->state == RTQ__JOB_REQUEUING) {
      if (send_requeue(w, j) != 0) {
        rtq__wq_push(w, j);
        break;
      }
      j->in_flight = true;
      continue;
    }
    /* A finish call holds one queue's tasks, at most RTQ__V2_MAX_TASKS
     * and FINISH2_BATCH_BYTES of outcomes (the script refuses more). */
    size_t bytes = outcome_bytes(&j->out) + (j->prog.msg ? strlen(j->prog.msg) : 0);
    if (fs != NULL && fs->n > 0 &&
        (strcmp(fs->jobs[0]->queue, j->queue) != 0 || fs->bytes + bytes > FINISH2_BATCH_BYTES) &&
        flush_finishes(w, &fs) != 0) {
      rtq__wq_push(w, j);
      break;
    }
    if (fs == NULL && (fs = malloc(sizeof *fs)) != NULL) fs->n = 0, fs->bytes = 0;
    if (fs == NULL) {
      rtq__wq_push(w, j);
      break;
    }
    fs->jobs[fs->n++] = j;
    fs->bytes += bytes;
    if ((fs->n == RTQ__V2_MAX_TASKS || fs->bytes >= FINISH2_BATCH_BYTES) && flush_finishes(w, &fs) != 0)
      break;
  }
  (void)flush_finishes(w, &fs);
  while (later != NULL) {
    rtq__job *next = later->qnext;
    rtq__wq_push(w, later);
    later = next;
  }
}
