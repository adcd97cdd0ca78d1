/*
 * runtime.c - reading the task run-time histograms (runtime2.c reads
 * {ns:Q}:rt, kept by the finish script from the workers' per-call
 * aggregates; the buckets are in common/runtime.h).
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>

#include "runtime.h"

#define MAX_QUEUES 10000

_Static_assert(RTQ_RUN_BUCKETS == RTQ__RUN_BUCKETS, "one bucket list");

RTQ_EXTERN const char *rtq_run_bucket_le(int i) {
  return i >= 0 && i < RTQ_RUN_BUCKETS ? rtq__run_le[i] : NULL;
}

RTQ_EXTERN int rtq_get_run_times(rtq_client *c, const char *const *queues, size_t n,
                                 rtq_run_times **out) {
  if (c == NULL || out == NULL || n > MAX_QUEUES || (n > 0 && queues == NULL)) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  for (size_t i = 0; i < n; i++) {
    int rc = rtq__check_name(c, "queue", queues[i]);
    if (rc != 0) return rc;
  }
  rtq_run_times *t = calloc(1, sizeof *t);
  if (t == NULL || (n > 0 && (t->queues = calloc(n, sizeof *t->queues)) == NULL)) {
    free(t);
    return RTQ_ENOMEM;
  }
  t->count = n;
  for (size_t i = 0; i < n; i++) strcpy(t->queues[i].queue, queues[i]);
  if (n == 0) {
    *out = t;
    return 0;
  }
  int rc = rtq__get_run_times2(c, queues, n, t);
  if (rc != 0) {
    rtq_run_times_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

RTQ_EXTERN void rtq_run_times_free(rtq_run_times *t) {
  if (t == NULL) return;
  free(t->queues);
  free(t);
}
