/*
 * unknown.c - a task whose name no handler of this worker serves.
 *
 * By default (--unknown-task fail) it is dead-lettered and fails
 * UNKNOWN_TASK at once, as Celery and Sidekiq do: every worker serving a
 * queue is expected to serve every name sent to it. A mixed fleet can run
 * --unknown-task requeue instead: handback.lua puts the envelope in
 * P:delayed for unknown_task_delay_ms (the broker then promotes it onto its
 * queue, where another worker may take it) and counts the handback in the
 * task hash. After unknown_task_max_handbacks, or for a task without a hash,
 * the script refuses and the task fails UNKNOWN_TASK as by default.
 *
 * Like a dead letter, a handback keeps no job: until handback.lua answers,
 * the envelope is still in the processing list, and a lost reply is
 * recovered by the next look at that list (which finds the envelope again,
 * or not, when the handback went through).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "calls.h"
#include "defaults.h"
#include "log.h"

typedef struct handback {
  char *env;
  size_t len;
  char id[RTQ_NAME_MAX + 1];
  char name[RTQ_NAME_MAX + 1];
  char queue[RTQ_NAME_MAX + 1];
} handback;

static void dead_letter(rtq_worker *w, const char *env, size_t len, const char *name,
                        const char *id, const char *queue, long long handbacks) {
  char err[512];
  if (handbacks > 0)
    snprintf(err, sizeof err,
             "no handler named %s is registered on worker %s; handed back %lld times, and no "
             "worker serving the queue took it",
             name, w->id, handbacks);
  else
    snprintf(err, sizeof err, "no handler named %s is registered on worker %s", name, w->id);
  rtq__deadletter(w, env, len, RTQ_CODE_UNKNOWN_TASK, err, id, queue);
}

static void handback_free(handback *hb) {
  if (hb == NULL) return;
  free(hb->env);
  free(hb);
}

static long long reply_int(const redisReply *r, size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || i >= r->elements) return 0;
  const redisReply *e = r->element[i];
  if (e->type == REDIS_REPLY_INTEGER) return e->integer;
  return e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
}

static void on_handback(rtq_worker *w, redisReply *r, void *pd) {
  handback *hb = pd;
  w->claims_in_flight--;
  if (r == NULL || rtq__noscript(w, r)) {
    w->need_reconcile = true; /* the envelope is still listed, or handed back */
  } else if (r->type == REDIS_REPLY_ERROR) {
    rtq_log(RTQ_LOG_ERROR, "handing back a task without a handler failed; will retry", "task",
            hb->id, "error", r->str, NULL);
    w->need_reconcile = true;
    w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
  } else {
    const char *kind = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                               r->element[0]->type == REDIS_REPLY_STRING
                           ? r->element[0]->str
                           : "";
    char n[24];
    snprintf(n, sizeof n, "%lld", reply_int(r, 1));
    if (strcmp(kind, "handed_back") == 0) {
      char delay[24];
      snprintf(delay, sizeof delay, "%d", w->o.unknown_task_delay_ms);
      rtq_log(RTQ_LOG_INFO, "no handler here; task handed back for another worker", "task",
              hb->id, "name", hb->name, "handbacks", n, "delay_ms", delay, NULL);
    } else if (strcmp(kind, "exhausted") == 0 || strcmp(kind, "missing") == 0) {
      dead_letter(w, hb->env, hb->len, hb->name, hb->id, hb->queue, reply_int(r, 1));
    } else {
      rtq_log(RTQ_LOG_DEBUG, "task without a handler not handed back", "task", hb->id, "reply",
              kind, NULL);
    }
  }
  handback_free(hb);
}

void rtq__unknown_task(rtq_worker *w, const char *env, size_t len, const char *name,
                       const char *id, const char *queue) {
  handback *hb = NULL;
  if (!w->o.unknown_task_requeue || id == NULL || (hb = calloc(1, sizeof *hb)) == NULL ||
      (hb->env = malloc(len ? len : 1)) == NULL) {
    /* Fail mode, an unreadable id, or no memory for the handback. */
    handback_free(hb);
    dead_letter(w, env, len, name, id, queue, 0);
    return;
  }
  memcpy(hb->env, env, len);
  hb->len = len;
  snprintf(hb->id, sizeof hb->id, "%s", id);
  snprintf(hb->name, sizeof hb->name, "%s", name);
  snprintf(hb->queue, sizeof hb->queue, "%s", queue);
  if (rtq__call_handback(&w->argv, &w->keys, w->use_eval, id, env, len, w->id,
                         w->o.unknown_task_delay_ms, w->o.unknown_task_max_handbacks) != 0 ||
      rtq__rconn_send(w->cmd, &w->argv, on_handback, hb, 0) != 0) {
    /* Not sent: the envelope stays listed until the next look finds it. */
    handback_free(hb);
    w->need_reconcile = true;
    return;
  }
  w->claims_in_flight++;
}
