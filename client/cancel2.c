/*
 * cancel2.c - rtq_cancel_task under protocol 2: the cancel script on the
 * task's queue (common/lua2/cancel.lua), with protocol 1's returns.
 *
 *   task is    the script does                          we return
 *   pending    ends it cancelled (a claim drops it)     0, *requested = 0
 *   running    sets `cr`, publishes on {ns}:cancel      0, *requested = 1
 *   terminal   nothing                                  RTQ_ESTATE
 *   absent     nothing                                  RTQ_ENOTFOUND
 *
 * With a signing key (the producers' key file), the end of a pending task
 * is signed (docs/SECURITY.md): the task's attempt, claim time and sg are
 * read first, the fixed end "cancelled before it ran" signed for them, and
 * the script stores the signature only when the hash still holds them (a
 * task claimed in between is asked to stop instead, and its worker signs
 * its end).
 */
#include "client_internal.h"

#include <string.h>

#include "calls2.h"
#include "scripts2.h"
#include "sign.h"

/* Appends to a the signature of the pending task's end, as its hash holds
 * it now. A task that is not pending gets none (the script writes no end
 * for it). */
static int sign_pending_end(rtq_client *c, rtq_argv *a, const char *queue, const char *id) {
  rtq_key2 k = rtq_keys2_task(&c->keys2, queue, id);
  const char *w[] = {"HMGET", k.s, "s", "a", "b", "sg"};
  redisReply *r = NULL;
  int rc = rtq__client_words(c, &r, 6, w);
  if (rc != 0) return rc;
  const char *v[4] = {NULL, NULL, NULL, NULL};
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && r->elements == 4 && i < 4; i++)
    if (r->element[i]->type == REDIS_REPLY_STRING && strlen(r->element[i]->str) == r->element[i]->len)
      v[i] = r->element[i]->str;
  char sig[RTQ_SIGN_SIZE];
  if (v[0] != NULL && strcmp(v[0], "pending") == 0) {
    rc = rtq_sign_fixed_end(c->sign_keys, id, queue, v[1], v[2], v[3], "cancelled", "CANCELLED",
                            "cancelled before it ran", sig);
    if (rc == 0) rc = rtq__call2_end_sig(a, id, v[1], v[2], "cancelled", sig);
  }
  freeReplyObject(r);
  return rc;
}

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
  else if (c->sign_keys != NULL && (rc = sign_pending_end(c, &a, queue, id)) != 0)
    ; /* the read's error is set */
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
