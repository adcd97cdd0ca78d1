/*
 * util.c - helpers the broker's phases share (recover.c, promote.c,
 * cleanup.c, ...), kept apart from broker.c so that no phase calls back
 * into the file that runs the phases.
 */
#include "internal.h"

#include <stdio.h>

#include "calls.h"
#include "rtq/common.h"

const char *rtq__u64s(uint64_t v, char *buf) {
  snprintf(buf, 24, "%llu", (unsigned long long)v);
  return buf;
}

int rtq__queue_deadletter(rtq_broker *b, rtq__batch *bt, const char *payload, size_t len,
                          rtq_key from, const char *code, const char *reason,
                          const char *worker, const char *queue, const char *id) {
  if (rtq_validate_name(queue) != 0) queue = RTQ_BROKER_UNKNOWN_QUEUE;
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return RTQ_ENOMEM;
  return rtq__call_deadletter(a, &b->keys, false, from, payload, len, code, reason, worker, queue,
                              id, b->o.config.task_result_ttl, b->o.config.enable_task_history);
}
