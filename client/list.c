/*
 * list.c - rtq_list_tasks and rtq_task_list_free. The listing itself
 * (queue by queue, filtered, cursor paging, a bounded cost per call) is
 * list2.c's.
 */
#include "client_internal.h"

#include <stdlib.h>

RTQ_EXTERN int rtq_list_tasks(rtq_client *c, const rtq_task_filter *filter, rtq_task_list **out) {
  static const rtq_task_filter all;
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  return rtq__list2(c, filter != NULL ? filter : &all, out);
}

RTQ_EXTERN void rtq_task_list_free(rtq_task_list *l) {
  if (l == NULL) return;
  for (size_t i = 0; l->tasks != NULL && i < l->count; i++) rtq_task_free(l->tasks[i]);
  free(l->tasks);
  free(l);
}
