/*
 * wait.c - rtq_wait_for_task: block until a task is terminal, without
 * polling (wait2.c: the waiter registers, subscribes, then reads the task,
 * so a task that ends meanwhile is never missed), and the helpers it
 * shares with the event stream.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* See client_internal.h. */
int rtq__task_from_event(const char *id, rtq_status st, uint64_t at, rtq_task **out) {
  rtq_task *t = calloc(1, sizeof *t);
  if (t == NULL) return RTQ_ENOMEM;
  snprintf(t->id, sizeof t->id, "%s", id);
  t->status = st;
  t->completed_at = at;
  *out = t;
  return 0;
}

/* Tests set it to act between the subscription and the first read. */
void (*rtq__wait_subscribed_hook)(const char *id) = NULL;

/* See client_internal.h. */
int rtq__wait_done(rtq_client *c, const char *id, int64_t timeout_ms, int rc, rtq_task *t,
                   rtq_task **out) {
  if (rc == RTQ_ETIMEDOUT)
    rtq__client_err(c, "task %s did not end within %lld ms", id, (long long)timeout_ms);
  if (rc == 0 && out != NULL)
    *out = t;
  else
    rtq_task_free(t);
  return rc;
}

RTQ_EXTERN int rtq_wait_for_task(rtq_client *c, const char *id, int64_t timeout_ms,
                                 rtq_task **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  return rtq__wait2(c, id, NULL, timeout_ms, out);
}
