/*
 * queue_control.c - pausing and resuming a queue (client.h).
 *
 * P:paused is the set of paused queue names. Workers read it every
 * RTQ__PAUSED_POLL_MS (500 ms, worker/claim.c) and plan no move on a paused
 * queue, ending a BLMOVE that waits on one; so within about half a second
 * of the call no worker claims from the queue. Its backlog stays, and
 * producers still enqueue to it.
 */
#include "client_internal.h"

static int set_paused(rtq_client *c, const char *queue, bool paused) {
  rtq__client_clear_err(c);
  int rc = rtq__check_name(c, "queue", queue);
  if (rc != 0) return rc;
  rtq_key k = rtq_keys_paused(&c->keys);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, paused ? "SADD" : "SREM");
  rtq__argv_add_key(&a, k);
  rtq_argv_add_str(&a, queue);
  redisReply *r = NULL;
  rc = rtq__client_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0 && r->type == REDIS_REPLY_ERROR) {
    rtq__client_err(c, "redis: %s", r->str);
    rc = RTQ_EREDIS;
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

RTQ_EXTERN int rtq_queue_pause(rtq_client *c, const char *queue) { return set_paused(c, queue, true); }
RTQ_EXTERN int rtq_queue_resume(rtq_client *c, const char *queue) { return set_paused(c, queue, false); }
