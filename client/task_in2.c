/*
 * task_in2.c - rtq_get_task_in, rtq_wait_for_task_in, rtq_cancel_task_in
 * and rtq_retry_task_in: the calls about one task with its queue given,
 * which spares the lookup of the queue from the id (client/queues2.c)
 * and picks one task of a caller-supplied id used on several queues.
 */
#include "client_internal.h"

#include <stddef.h>

/* Whether the queue is given: 1 yes, 0 no (the plain call then), < 0 a
 * bad id or queue (detail set). */
static int with_queue(rtq_client *c, const char *queue, const char *id) {
  rtq__client_clear_err(c);
  if (queue != NULL && rtq__check_name(c, "queue name", queue) != 0) return RTQ_EINVAL;
  if (queue == NULL) return 0;
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  return 1;
}

RTQ_EXTERN int rtq_get_task_in(rtq_client *c, const char *queue, const char *id, rtq_task **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  int how = with_queue(c, queue, id);
  if (how < 0) return how;
  return how ? rtq__get_task2(c, id, queue, out) : rtq_get_task(c, id, out);
}

RTQ_EXTERN int rtq_wait_for_task_in(rtq_client *c, const char *queue, const char *id,
                                    int64_t timeout_ms, rtq_task **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL) return RTQ_EINVAL;
  int how = with_queue(c, queue, id);
  if (how < 0) return how;
  return how ? rtq__wait2(c, id, queue, timeout_ms, out) : rtq_wait_for_task(c, id, timeout_ms, out);
}

RTQ_EXTERN int rtq_cancel_task_in(rtq_client *c, const char *queue, const char *id,
                                  int *requested) {
  if (requested != NULL) *requested = 0;
  if (c == NULL) return RTQ_EINVAL;
  int how = with_queue(c, queue, id);
  if (how < 0) return how;
  return how ? rtq__cancel2(c, id, queue, requested) : rtq_cancel_task(c, id, requested);
}

RTQ_EXTERN int rtq_retry_task_in(rtq_client *c, const char *queue, const char *id) {
  if (c == NULL) return RTQ_EINVAL;
  int how = with_queue(c, queue, id);
  if (how < 0) return how;
  return how ? rtq__retry2(c, id, queue) : rtq_retry_task(c, id);
}
