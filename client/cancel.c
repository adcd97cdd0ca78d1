/*
 * cancel.c - rtq_cancel_task: checks the id, then the cancel script on the
 * task's queue (cancel2.c, common/lua2/cancel.lua).
 *
 *   task is    the script does                         we return
 *   pending    ends it cancelled (claim drops it)      0, *requested = 0
 *   running    flags it, publishes the id              0, *requested = 1
 *   terminal   nothing                                 RTQ_ESTATE
 *   absent     nothing                                 RTQ_ENOTFOUND
 */
#include "client_internal.h"

RTQ_EXTERN int rtq_cancel_task(rtq_client *c, const char *id, int *requested) {
  if (requested != NULL) *requested = 0;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  return rtq__cancel2(c, id, NULL, requested);
}
