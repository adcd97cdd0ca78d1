/*
 * queue_control.c - pausing and resuming a queue (client.h).
 *
 * {ns}:paused is the set of paused queue names. Workers read it every
 * RTQ__PAUSED_POLL_MS (500 ms, worker/claim2.c) and plan no move on a paused
 * queue, ending a BLMOVE that waits on one; so within about half a second
 * of the call no worker claims from the queue. Its backlog stays, and
 * producers still enqueue to it.
 */
#include "client_internal.h"

static int set_paused(rtq_client *c, const char *queue, bool paused) {
  rtq__client_clear_err(c);
  int rc = rtq__check_name(c, "queue", queue);
  if (rc != 0) return rc;
  rtq_key2 k = rtq_keys2_paused(&c->keys2);
  return rtq__client_words(c, NULL, 3, (const char *[]){paused ? "SADD" : "SREM", k.s, queue});
}

RTQ_EXTERN int rtq_queue_pause(rtq_client *c, const char *queue) { return set_paused(c, queue, true); }
RTQ_EXTERN int rtq_queue_resume(rtq_client *c, const char *queue) { return set_paused(c, queue, false); }
