/*
 * sign2.c - protocol 2 signing in the worker (docs/SECURITY.md): the
 * producers' keys check each task before it runs (task_keys_file), and
 * the worker's own key signs each outcome it writes (signing_key_file).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "errbuf.h"
#include "internal.h"
#include "sign.h"

int rtq__sign2_load(rtq_worker *w, char *errbuf, size_t errcap) {
  const char *sk = w->o.signing_key_file, *tk = w->o.task_keys_file;
  /* Borrowed until rtq_worker_new returns: not kept. */
  w->o.signing_key_file = w->o.task_keys_file = NULL;
  if (sk == NULL && tk == NULL) return 0;
  char err[512];
  int rc = sk != NULL ? rtq_sign_keys_load(sk, &w->sign_keys, err, sizeof err) : 0;
  if (rc != 0) return rtq__errf(rc, errbuf, errcap, "signing key: %s", err);
  rc = tk != NULL ? rtq_sign_keys_load(tk, &w->task_keys, err, sizeof err) : 0;
  if (rc != 0) return rtq__errf(rc, errbuf, errcap, "task keys: %s", err);
  return 0;
}

void rtq__sign2_free(rtq_worker *w) {
  rtq_sign_keys_free(w->sign_keys);
  rtq_sign_keys_free(w->task_keys);
  w->sign_keys = w->task_keys = NULL;
}

bool rtq__sign2_task_ok(const rtq_worker *w, const char *queue, const rtq__claim2_entry *e) {
  if (w->task_keys == NULL) return true;
  if (e->to_s == NULL) return false; /* a reply without the covered values */
  char id[RTQ_NAME_MAX + 1];
  if (e->id_len == 0 || e->id_len > RTQ_NAME_MAX) return false;
  memcpy(id, e->id, e->id_len);
  id[e->id_len] = '\0';
  rtq_sign_task t = {.id = id, .queue = queue, .name = e->name, .args = e->args, .args_len = e->args_len,
                     .to = e->to_s, .mr = e->mr_s, .rt = e->rt_s, .bo = e->bo_s};
  return rtq_sign_task_check(w->task_keys, &t, e->signature) == 0;
}

void rtq__sign2_bind(rtq__job *j, const rtq__claim2_entry *e) {
  snprintf(j->task_sig, sizeof j->task_sig, "%s", e->signature != NULL ? e->signature : "");
  j->run_started_ms = e->deadline_ms > 0 ? e->deadline_ms - (int64_t)j->timeout_ms : 0;
}

rtq__run2 rtq__run2_of(const rtq__job *j) {
  rtq__run2 r = {.attempt = j->attempt, .started_ms = j->run_started_ms};
  snprintf(r.task_sig, sizeof r.task_sig, "%s", j->task_sig);
  return r;
}

int rtq__sign2_failure(rtq_worker *w, const char *queue, const char *id, const char *code, const char *reason,
                       const rtq__run2 *run) {
  if (w->sign_keys == NULL) return 0;
  char attempt[16], started[24], sig[RTQ_SIGN_SIZE];
  snprintf(attempt, sizeof attempt, "%" PRIu32, run->attempt);
  snprintf(started, sizeof started, "%" PRId64, run->started_ms);
  rtq_sign_outcome o = {.id = id, .queue = queue, .attempt = attempt, .status = "failed",
                        .ec = {code, strlen(code)}, .em = {reason, strlen(reason)},
                        .task_sig = run->task_sig, .started = started};
  int rc = rtq_sign_outcome_sig(w->sign_keys, &o, sig);
  if (rc == 0) rc = rtq__call2_end_sig(&w->argv, id, attempt, started, "failed", sig);
  return rc;
}

int rtq__sign2_outcome(const rtq_worker *w, const rtq__job *j, rtq__finish2_task *t, char *sig) {
  t->outcome_signature = NULL;
  if (w->sign_keys == NULL) return 0;
  /* What finish stores for a stopped task: its code, and a message. */
  if (t->status == RTQ_STATUS_CANCELLED || t->status == RTQ_STATUS_TIMEOUT) {
    bool c = t->status == RTQ_STATUS_CANCELLED;
    t->error_code = c ? "CANCELLED" : "TIMEOUT";
    if (t->error_message == NULL || t->error_message[0] == '\0')
      t->error_message = c ? "cancelled while running" : "exceeded its timeout";
  }
  char attempt[16], started[24];
  snprintf(attempt, sizeof attempt, "%" PRIu64, t->attempt);
  snprintf(started, sizeof started, "%" PRId64, j->run_started_ms);
#define TXT(s) ((rtq_sign_bytes){(s), (s) != NULL ? strlen(s) : 0})
  rtq_sign_outcome o = {.id = j->id, .queue = j->queue, .attempt = attempt,
                        .status = rtq_status_name(t->status),
                        .r = {t->result, t->result_len}, .ec = TXT(t->error_code),
                        .em = TXT(t->error_message), .ed = {t->error_details, t->error_details_len},
                        .et = TXT(t->traceback), .task_sig = j->task_sig, .started = started};
#undef TXT
  int rc = rtq_sign_outcome_sig(w->sign_keys, &o, sig);
  if (rc == 0) t->outcome_signature = sig;
  return rc;
}
