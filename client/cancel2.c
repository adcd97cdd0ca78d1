/*
 * cancel2.c - rtq_cancel_task under protocol 2: the cancel script on the
 * task's queue (common/lua2/cancel.lua), with rtq_cancel_task's returns.
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

#include <stdlib.h>
#include <string.h>

#include "calls2.h"
#include "scripts2.h"
#include "sign.h"

int rtq__sign2_pending_ends(rtq_client *c, rtq_argv *a, const char *queue, const char *const *ids, size_t n,
                            const char *message) {
  if (c->sign_keys == NULL || n == 0) return 0;
  rtq_conn *conn = NULL;
  int rc = rtq__pool_get(c, &conn);
  if (rc != 0) return rc;
  rtq_argv *cmds = calloc(n, sizeof *cmds);
  redisReply **r = calloc(n, sizeof *r);
  rc = cmds != NULL && r != NULL ? 0 : RTQ_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rtq_argv_init(&cmds[i]);
    rtq_argv_add_str(&cmds[i], "HMGET");
    rc = rtq__argv_add_key2(&cmds[i], rtq_keys2_task(&c->keys2, queue, ids[i]));
    const char *f[] = {"s", "a", "b", "sg"};
    for (int k = 0; k < 4; k++) rtq_argv_add_str(&cmds[i], f[k]);
  }
  if (rc == 0) rc = rtq__pipe2(c, conn, cmds, n, r);
  /* A task key of another type: that task gets no signature. */
  if (rc == RTQ_EREDIS) rtq__client_clear_err(c), rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const char *v[4] = {NULL, NULL, NULL, NULL};
    for (size_t k = 0; r[i] != NULL && r[i]->type == REDIS_REPLY_ARRAY && r[i]->elements == 4 && k < 4; k++)
      if (r[i]->element[k]->type == REDIS_REPLY_STRING && strlen(r[i]->element[k]->str) == r[i]->element[k]->len)
        v[k] = r[i]->element[k]->str;
    if (v[0] == NULL || strcmp(v[0], "pending") != 0) continue;
    char sig[RTQ_SIGN_SIZE];
    rc = rtq_sign_fixed_end(c->sign_keys, ids[i], queue, v[1], v[2], v[3], "cancelled", "CANCELLED", message, sig);
    if (rc == 0) rc = rtq__call2_end_sig(a, ids[i], v[1], v[2], "cancelled", sig);
  }
  rtq__pipe2_free(cmds, r, cmds != NULL && r != NULL ? n : 0);
  rtq__pool_put(c, conn);
  if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
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
  if (rc != 0) rtq__client_err(c, "%s", rtq_strerror(rc));
  /* The signature's read sets its own error. */
  if (rc == 0) rc = rtq__sign2_pending_ends(c, &a, queue, &id, 1, "cancelled before it ran");
  /* Not resent on a lost connection: a second run would report the first
   * one's outcome as RTQ_ESTATE. */
  if (rc == 0) rc = rtq__client_script2(c, &a, &r);
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
