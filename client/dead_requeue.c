/*
 * dead_requeue.c - putting dead letters back on their queues, and deleting
 * them: rtq_dead_requeue, rtq_dead_requeue_if, rtq_dead_requeue_all,
 * rtq_dead_purge. The names are checked here; dead2.c does the work (which
 * letters can be requeued, and how the lists are walked).
 */
#include "client_internal.h"

static int requeue_at(rtq_client *c, size_t index, const char *expect_id, const char *queue, char **id_out) {
  if (id_out != NULL) *id_out = NULL;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (queue != NULL && rtq__check_name(c, "queue", queue) != 0) return RTQ_EINVAL;
  if (expect_id != NULL && rtq__check_name(c, "task id", expect_id) != 0) return RTQ_EINVAL;
  return rtq__dead2_requeue(c, index, expect_id, queue, id_out);
}

RTQ_EXTERN int rtq_dead_requeue(rtq_client *c, size_t index, const char *queue, char **id_out) {
  return requeue_at(c, index, NULL, queue, id_out);
}

RTQ_EXTERN int rtq_dead_requeue_if(rtq_client *c, size_t index, const char *expect_id, const char *queue,
                                   char **id_out) {
  return requeue_at(c, index, expect_id, queue, id_out);
}

RTQ_EXTERN int rtq_dead_requeue_all(rtq_client *c, const char *queue, rtq_dead_counts *out) {
  rtq_dead_counts n = {0};
  if (out != NULL) *out = n;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (queue != NULL && rtq__check_name(c, "queue", queue) != 0) return RTQ_EINVAL;
  int rc = rtq__dead2_requeue_all(c, queue, &n);
  if (rc == 0) rtq__client_clear_err(c); /* a refusal's detail is not an error */
  if (out != NULL) *out = n;
  return rc;
}

RTQ_EXTERN int rtq_dead_purge(rtq_client *c, const char *queue, rtq_dead_counts *out) {
  rtq_dead_counts n = {0};
  if (out != NULL) *out = n;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (queue != NULL && rtq__check_name(c, "queue", queue) != 0) return RTQ_EINVAL;
  int rc = rtq__dead2_purge(c, queue, &n);
  if (out != NULL) *out = n;
  return rc;
}
