/*
 * cancel.c - rtq_cancel_task through cancel.lua.
 *
 *   task is    cancel.lua does                         we return
 *   pending    ends it cancelled (claim drops it)      0, *requested = 0
 *   running    sets P:cancel:<id>, publishes the id    0, *requested = 1
 *   terminal   nothing                                 RTQ_ESTATE
 *   absent     nothing                                 RTQ_ENOTFOUND
 */
#include "client_internal.h"

#include <string.h>

#include "defaults.h"
#include "calls.h"
#include "scripts.h"

static int reply_is(const redisReply *e, const char *s) {
  return e->type == REDIS_REPLY_STRING && e->len == strlen(s) && memcmp(e->str, s, e->len) == 0;
}

RTQ_EXTERN int rtq_cancel_task(rtq_client *c, const char *id, int *requested) {
  if (requested != NULL) *requested = 0;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  if (c->protocol == 2) return rtq__cancel2(c, id, NULL, requested);
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = rtq__call_cancel(&a, &c->keys, false, id, c->result_ttl_s, c->history != 0,
                            RTQ_CANCEL_FLAG_TTL_MS);
  if (rc != 0) {
    rtq_argv_destroy(&a);
    rtq__client_err(c, "%s", rtq_strerror(rc));
    return rc;
  }

  rtq_conn *conn = NULL;
  redisReply *r = NULL;
  rc = rtq__pool_get(c, &conn);
  /* Not resent on a lost connection: a second run would report the
   * first one's outcome as RTQ_ESTATE. */
  if (rc == 0 && (rc = rtq_script_run(conn, &a, &r)) != 0)
    rtq__client_conn_err(c, conn, rc, "redis");
  rtq__pool_put(c, conn);
  rtq_argv_destroy(&a);
  if (rc != 0) {
    if (r != NULL) freeReplyObject(r);
    return rc;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
    rc = RTQ_EREDIS;
    rtq__client_err(c, "unexpected reply from cancel.lua");
  } else if (reply_is(r->element[0], "cancelled")) {
    rc = 0;
  } else if (reply_is(r->element[0], "requested")) {
    if (requested != NULL) *requested = 1;
  } else if (reply_is(r->element[0], "notfound")) {
    rc = RTQ_ENOTFOUND;
    rtq__client_err(c, "no task %s (it never existed or has expired)", id);
  } else if (reply_is(r->element[0], "state") && r->elements == 2 &&
             r->element[1]->type == REDIS_REPLY_STRING) {
    rc = RTQ_ESTATE;
    rtq__client_err(c, "task %s has already ended: %.*s", id, (int)r->element[1]->len,
                    r->element[1]->str);
  } else {
    rc = RTQ_EREDIS;
    rtq__client_err(c, "unexpected reply from cancel.lua");
  }
  freeReplyObject(r);
  return rc;
}
