/*
 * retry.c - rtq_retry_task: an ended task (failed, timeout, cancelled) goes
 * back to pending under the same id (retry2.c, common/lua2/retry.lua,
 * which re-checks the status, so a task that changed in between is never
 * retried by mistake).
 */
#include "client_internal.h"

RTQ_EXTERN int rtq_retry_task(rtq_client *c, const char *id) {
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  return rtq__retry2(c, id, NULL);
}
