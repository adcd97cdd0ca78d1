/*
 * load.c - rtq_get_queue_loads: per-queue figures that rtq_get_stats does
 * not carry (running, delayed, the oldest pending task), for the dashboard
 * and /metrics. They are read by stats2.c (rtq__get_queue_loads2).
 */
#include "client_internal.h"

#include <stdlib.h>

RTQ_EXTERN int rtq_get_queue_loads(rtq_client *c, rtq_queue_loads **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  return rtq__get_queue_loads2(c, out);
}

RTQ_EXTERN void rtq_queue_loads_free(rtq_queue_loads *l) {
  if (l == NULL) return;
  free(l->queues);
  free(l);
}
