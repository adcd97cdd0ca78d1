/*
 * steps2.c - protocol 2: the worker's one-task steps besides claim and
 * finish (docs/PROTOCOL.md section 5): dead letters, handbacks
 * of names no handler here serves, progress, the cancel backstop (the
 * task's `cr` field) and the heartbeat's call.
 *
 * A dead letter or a handback keeps no job: until the
 * script answers, the id is still in the processing list, and a lost
 * reply is recovered by the next look at that list.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "calls2.h"
#include "defaults.h"
#include "log.h"
#include "scripts2.h"

rtq__keep2 rtq__keep2_of(const rtq_worker *w) {
  return rtq__keep2_settings(w->o.result_ttl_s, w->o.history, w->o.max_history);
}

/* ---- deadletter ---- */

/* With a signing key and the run the failure ends (attempt > 0), the
 * worker's signature of it goes with the call (sign2.c). */
static void deadletter(rtq_worker *w, const char *queue, const char *entry, size_t len, const char *code,
                       const char *reason, const rtq__run2 *run) {
  char size[24], id[RTQ_NAME_MAX + 1];
  snprintf(size, sizeof size, "%zu", len);
  snprintf(id, sizeof id, "%.*s", (int)(len < sizeof id ? len : sizeof id - 1), entry);
  rtq_log(RTQ_LOG_WARNING, "dead-lettering a bad entry", "code", code, "reason", reason, "task", id, "queue", queue,
          "bytes", size, NULL);
  rtq__keep2 keep = rtq__keep2_of(w);
  if (rtq__call2_deadletter(&w->argv, &w->keys2, w->use_eval, queue, (rtq__bytes2){entry, len}, code, reason, w->id,
                            false, &keep) != 0 ||
      (run != NULL && rtq__sign2_failure(w, queue, id, code, reason, run) != 0) ||
      rtq__rconn_send(rtq__qcmd_of(w, queue), &w->argv, rtq__deadletter_reply, NULL, 0) != 0) {
    w->need_reconcile = true;
    return;
  }
  w->claims_in_flight++;
}

void rtq__deadletter2(rtq_worker *w, const char *queue, const char *entry, size_t len, const char *code,
                      const char *reason) {
  deadletter(w, queue, entry, len, code, reason, NULL);
}

void rtq__deadletter2_run(rtq_worker *w, const rtq__job *j, const char *code, const char *reason) {
  rtq__run2 run = rtq__run2_of(j);
  deadletter(w, j->queue, j->id, strlen(j->id), code, reason, &run);
}

/* ---- handback ---- */

typedef struct handback {
  char id[RTQ_NAME_MAX + 1];
  char name[RTQ_NAME_MAX + 1];
  char queue[RTQ_NAME_MAX + 1];
  rtq__run2 run; /* the run it ends when dead-lettered */
} handback;

static void unknown_dead(rtq_worker *w, const handback *hb, int64_t handbacks) {
  char err[512];
  if (handbacks > 0)
    snprintf(err, sizeof err,
             "no handler named %s is registered on worker %s; handed back %" PRId64
             " times, and no worker serving the queue took it",
             hb->name, w->id, handbacks);
  else
    snprintf(err, sizeof err, "no handler named %s is registered on worker %s", hb->name, w->id);
  deadletter(w, hb->queue, hb->id, strlen(hb->id), RTQ_CODE_UNKNOWN_TASK, err, &hb->run);
}

static void on_handback(rtq_worker *w, redisReply *r, void *pd) {
  handback *hb = pd;
  w->claims_in_flight--;
  rtq__tag2 t;
  if (r == NULL || rtq__noscript(w, r)) {
    w->need_reconcile = true; /* the id is still listed, or handed back */
  } else if (r->type == REDIS_REPLY_ERROR || rtq__reply2_tag(r, &t) != 0) {
    rtq_log(RTQ_LOG_ERROR, "handing back a task without a handler failed; will retry", "task", hb->id, "error",
            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply", NULL);
    w->need_reconcile = true;
    w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
  } else if (strcmp(t.tag, "handed_back") == 0) {
    char n[24], delay[24];
    snprintf(n, sizeof n, "%" PRId64, t.n > 0 ? t.num[0] : 0);
    snprintf(delay, sizeof delay, "%d", w->o.unknown_task_delay_ms);
    rtq_log(RTQ_LOG_INFO, "no handler here; task handed back for another worker", "task", hb->id, "name", hb->name,
            "handbacks", n, "delay_ms", delay, NULL);
  } else if (strcmp(t.tag, "exhausted") == 0 || strcmp(t.tag, "missing") == 0) {
    unknown_dead(w, hb, t.n > 0 ? t.num[0] : 0);
  } else {
    rtq_log(RTQ_LOG_DEBUG, "task without a handler not handed back", "task", hb->id, "reply", t.tag, NULL);
  }
  free(hb);
}

void rtq__unknown_task2(rtq_worker *w, const rtq__job *j) {
  const char *queue = j->queue, *id = j->id;
  uint32_t attempt = j->attempt;
  handback *hb = calloc(1, sizeof *hb);
  if (hb == NULL) {
    w->need_reconcile = true;
    return;
  }
  snprintf(hb->id, sizeof hb->id, "%s", id);
  snprintf(hb->name, sizeof hb->name, "%s", j->name);
  snprintf(hb->queue, sizeof hb->queue, "%s", queue);
  hb->run = rtq__run2_of(j);
  if (!w->o.unknown_task_requeue) {
    unknown_dead(w, hb, 0);
    free(hb);
    return;
  }
  if (rtq__call2_handback(&w->argv, &w->keys2, w->use_eval, queue, id, w->id, attempt,
                          (uint64_t)w->o.unknown_task_delay_ms, (uint64_t)w->o.unknown_task_max_handbacks) != 0 ||
      rtq__rconn_send(rtq__qcmd_of(w, queue), &w->argv, on_handback, hb, 0) != 0) {
    free(hb);
    w->need_reconcile = true;
    return;
  }
  w->claims_in_flight++;
}

/* ---- progress ---- */

/* The progress script takes a whole percent and a message of at most
 * 64 KiB; the coalescer keeps 1 KiB. Reply 0 (fenced off) needs nothing. */
int rtq__progress2_argv(rtq_worker *w, const rtq__job *j) {
  double p = j->prog.pct;
  int pct = p <= 0 ? 0 : p >= 100 ? 100 : (int)p;
  return rtq__call2_progress(&w->argv, &w->keys2, w->use_eval, j->queue, j->id, w->id, j->attempt, pct,
                             j->prog.msg);
}

/* ---- the cancel backstop: the `cr` field of each running task ---- */

typedef struct cr_check cr_check;

/* One HGET: its task, and the check it belongs to. The HGETs of a check
 * may go to several nodes (one per queue's node), so replies come in no
 * set order. */
typedef struct cr_entry {
  cr_check *cc;
  char id[RTQ_NAME_MAX + 1];
} cr_entry;

struct cr_check {
  int n, replies;
  cr_entry e[];
};

static void on_cr(rtq_worker *w, redisReply *r, void *pd) {
  cr_entry *e = pd;
  cr_check *cc = e->cc;
  cc->replies++;
  if (r != NULL && r->type == REDIS_REPLY_STRING && r->len > 0) {
    size_t len = strlen(e->id);
    for (rtq__job *j = rtq__job_find(w, e->id, len); j != NULL; j = rtq__job_find_next(j, e->id, len))
      rtq__job_request_stop(w, j, RTQ__STOP_CANCEL);
  }
  if (cc->replies == cc->n) {
    w->cancel_check_in_flight = false;
    free(cc);
  }
}

void rtq__cancel2_check(rtq_worker *w) {
  int n = 0;
  for (rtq__job *j = w->jobs; j != NULL; j = j->next)
    if (j->state == RTQ__JOB_RUNNING && j->stop_reason == RTQ__STOP_NONE) n++;
  if (n == 0) return;
  cr_check *cc = malloc(sizeof *cc + (size_t)n * sizeof cc->e[0]);
  if (cc == NULL) return;
  cc->n = cc->replies = 0;
  /* n counts the HGETs sent; a reply cannot come before this returns. */
  for (rtq__job *j = w->jobs; j != NULL && cc->n < n; j = j->next) {
    if (j->state != RTQ__JOB_RUNNING || j->stop_reason != RTQ__STOP_NONE) continue;
    rtq_argv_reset(&w->argv);
    rtq_argv_add_str(&w->argv, "HGET");
    rtq__argv_add_key2(&w->argv, rtq_keys2_task(&w->keys2, j->queue, j->id));
    rtq_argv_add_str(&w->argv, "cr");
    cr_entry *e = &cc->e[cc->n];
    e->cc = cc;
    memcpy(e->id, j->id, sizeof e->id);
    if (rtq__rconn_send(rtq__qcmd_of(w, j->queue), &w->argv, on_cr, e, 0) != 0) continue;
    cc->n++;
  }
  if (cc->n == 0) {
    free(cc);
    return;
  }
  w->cancel_check_in_flight = true;
}

/* ---- heartbeat ---- */

int rtq__heartbeat2_argv(rtq_worker *w, const rtq__hb_field *fields, int n) {
  rtq__field2 f[RTQ__V2_MAX_PAIRS];
  if (n > RTQ__V2_MAX_PAIRS) n = RTQ__V2_MAX_PAIRS;
  for (int i = 0; i < n; i++) f[i] = (rtq__field2){fields[i].name, fields[i].value};
  return rtq__call2_heartbeat(&w->argv, &w->keys2, w->use_eval, w->id, w->o.heartbeat_ttl_ms, f, n);
}
