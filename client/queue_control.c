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
  /* Protocol 2 keeps the same set under the namespace's tag ({ns}:paused). */
  if (c->protocol == 2) {
    rtq_key2 k2 = rtq_keys2_paused(&c->keys2);
    return rtq__client_words(c, NULL, 3, (const char *[]){paused ? "SADD" : "SREM", k2.s, queue});
  }
  rtq_key k = rtq_keys_paused(&c->keys);
  return rtq__client_words(c, NULL, 3, (const char *[]){paused ? "SADD" : "SREM", k.s, queue});
}

RTQ_EXTERN int rtq_queue_pause(rtq_client *c, const char *queue) { return set_paused(c, queue, true); }
RTQ_EXTERN int rtq_queue_resume(rtq_client *c, const char *queue) { return set_paused(c, queue, false); }
