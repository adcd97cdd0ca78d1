/*
 * complete2.c - the finish and requeue calls (complete.c batches, sends
 * and reads their replies, which have this shape:
 * {'ok', status} | {'retry', run_at} | {'stale', status}, and {'requeued'}
 * | {'stale', status}).
 *
 * A finish call holds 1..64 tasks of one queue (complete.c cuts its
 * batches so) with the run-time histogram of the call's runs as field,
 * increment pairs for {ns:Q}:rt: the buckets of runtime.h under the
 * names rtq__run_le2 gives them, plus count and sum_ms.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#include "calls2.h"
#include "runtime.h"
#include "sign.h"

int rtq__finish2_argv(rtq_worker *w, rtq__job *const *jobs, int n, bool count_runs, uint64_t (*jitter)(rtq_worker *)) {
  if (n < 1 || n > RTQ__V2_MAX_TASKS) return RTQ_EINVAL;
  uint64_t counts[RTQ__RUN_BUCKETS] = {0}, sum_us = 0, runs = 0;
  for (int i = 0; count_runs && i < n; i++) {
    const rtq__job *j = jobs[i];
    if (!j->ran || j->run_counted) continue;
    counts[rtq__run_bucket(j->run_us)]++;
    sum_us += j->run_us;
    runs++;
  }
  rtq__rt_pair2 pairs[RTQ__RUN_BUCKETS + 2];
  int np = 0;
  for (int b = 0; b < RTQ__RUN_BUCKETS; b++)
    if (counts[b] > 0) pairs[np++] = (rtq__rt_pair2){rtq__run_le2[b], counts[b]};
  if (runs > 0) {
    pairs[np++] = (rtq__rt_pair2){"count", runs};
    pairs[np++] = (rtq__rt_pair2){"sum_ms", (sum_us + 500) / 1000};
  }
  rtq__finish2_task t[RTQ__V2_MAX_TASKS];
  char sigs[RTQ__V2_MAX_TASKS][RTQ_SIGN_SIZE];
  for (int i = 0; i < n; i++) {
    const rtq__job *j = jobs[i];
    const rtq__outcome *o = &j->out;
    t[i] = (rtq__finish2_task){.id = j->id,
                               .attempt = j->attempt,
                               .status = o->status,
                               .result = o->result,
                               .result_len = o->result_len,
                               .error_code = o->code,
                               .error_message = o->message,
                               .traceback = o->traceback,
                               .error_details = o->details,
                               .error_details_len = o->details_len,
                               .progress = -1};
    if (j->prog.pending) {
      double p = j->prog.pct;
      t[i].progress = p <= 0 ? 0 : p >= 100 ? 100 : (int)p;
      t[i].progress_message = j->prog.msg;
    }
    if (o->status == RTQ_STATUS_FAILED) t[i].jitter_ms = jitter(w);
    if (rtq__sign2_outcome(w, j, &t[i], sigs[i]) != 0) return RTQ_ENOMEM;
  }
  rtq__keep2 keep = rtq__keep2_of(w);
  return rtq__call2_finish(&w->argv, &w->keys2, w->use_eval, jobs[0]->queue, w->id, &keep, pairs, np, t, n);
}

int rtq__requeue2_argv(rtq_worker *w, const rtq__job *j) {
  return rtq__call2_requeue(&w->argv, &w->keys2, w->use_eval, j->queue, j->id, w->id, j->attempt);
}
