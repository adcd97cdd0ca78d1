/*
 * cancel2.c - rtq_cancel_task under protocol 2: the cancel script on the
 * task's queue (common/lua2/cancel.lua), with protocol 1's returns.
 *
 *   task is    the script does                          we return
 *   pending    ends it cancelled (a claim drops it)     0, *requested = 0
 *   running    sets `cr`, publishes on {ns}:cancel      0, *requested = 1
 *   terminal   nothing                                  RTQ_ESTATE
 *   absent     nothing                                  RTQ_ENOTFOUND
 */
#include "client_internal.h"

#include <string.h>

#include "calls2.h"
#include "scripts2.h"

int rtq__cancel2(rtq_client *c, const char *id, const char *queue_hint, int *requested) {
  char queue[RTQ_TASK_ID_SIZE];
  int rc = rtq__queue_of_id2(c, id, queue_hint, queue);
  if (rc == RTQ_ENOTFOUND) rtq__client_err(c, "no task %s (it never existed or has expired)", id);
  if (rc != 0) return rc;
  rtq__keep2 keep = rtq__keep2_settings(c->result_ttl_s, c->history != 0, c->history_cap);
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = NULL;
  rc = rtq__call2_cancel(&a, &c->keys2, false, queue, id, &keep);
  if (rc != 0)
    rtq__client_err(c, "%s", rtq_strerror(rc));
  else /* Not resent on a lost connection: a second run would report the
        * first one's outcome as RTQ_ESTATE. */
    rc = rtq__client_script2(c, &a, &r);
  rtq_argv_destroy(&a);
  rtq__tag2 tag;
  if (rc == 0 && rtq__reply2_tag(r, &tag) != 0) {
    rc = RTQ_EREDIS;
    rtq__client_err(c, "unexpected reply from the cancel script");
  } else if (rc == 0) {
    if (strcmp(tag.tag, "cancelled") == 0) {
      rc = 0;
    } else if (strcmp(tag.tag, "requested") == 0) {
      if (requested != NULL) *requested = 1;
    } else if (strcmp(tag.tag, "notfound") == 0) {
      rc = RTQ_ENOTFOUND;
      rtq__client_err(c, "no task %s (it never existed or has expired)", id);
    } else if (strcmp(tag.tag, "state") == 0 && tag.n == 1 && tag.str[0] != NULL) {
      rc = RTQ_ESTATE;
      rtq__client_err(c, "task %s has already ended: %s", id, tag.str[0]);
    } else {
      rc = RTQ_EREDIS;
      rtq__client_err(c, "unexpected reply from the cancel script");
    }
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}
