/*
 * wait2.c - rtq_wait_for_task under protocol 2: block until a task is
 * terminal, without polling (docs/PROTOCOL.md section 5, "A
 * producer").
 *
 * A task's terminal event goes to the shard channel {ns:Q}:w:<id>, and only
 * while a waiter is registered on it (`wt`, set by the wait script). The
 * order closes the race with a task that ends while we set up:
 *
 *   1. SSUBSCRIBE {ns:Q}:w:<id>        (own connection, the queue's node)
 *   2. the wait script                 registers, replies the status now:
 *                                      terminal already? read it and return.
 *   3. wait for a message              (poll(2) with the time left)
 *   4. the wait script again           terminal? read it and return; else
 *                                      (retried meanwhile) it registered
 *                                      once more: back to 3.
 *
 * A task ending before 2 is seen by 2; one ending after 2 finds `wt` set
 * and publishes to a channel we listen on. If the hash has expired by the
 * time it is read (history off), the message itself is the answer.
 */
#include "client_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls2.h"
#include "scripts2.h"

/* Runs the wait script: *st the task's status. RTQ_ENOTFOUND (no such
 * task), RTQ_EDECODE (a status that is not one), or a connection error;
 * detail set. */
static int register_waiter(rtq_client *c, const char *queue, const char *id, rtq_status *st) {
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = rtq__call2_wait(&a, &c->keys2, false, queue, id);
  redisReply *r = NULL;
  if (rc != 0)
    rtq__client_err(c, "%s", rtq_strerror(rc));
  else
    rc = rtq__client_script2(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0) {
    char s[16];
    if (r->type == REDIS_REPLY_NIL) {
      rtq__client_err(c, "no task %s (it never existed or has expired)", id);
      rc = RTQ_ENOTFOUND;
    } else if (r->type != REDIS_REPLY_STRING || r->len >= sizeof s) {
      rtq__client_err(c, "unexpected reply from the wait script");
      rc = RTQ_EREDIS;
    } else {
      memcpy(s, r->str, r->len);
      s[r->len] = '\0';
      if (rtq_status_parse(s, st) != 0) {
        rtq__client_err(c, "task %s: its hash has no valid status field", id);
        rc = RTQ_EDECODE;
      }
    }
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* See client_internal.h. */
int rtq__wait2_message_parse(const char *json, rtq_status *st, uint64_t *at) {
  json_t *o = json != NULL ? json_loads(json, 0, NULL) : NULL;
  if (o == NULL) return RTQ_EDECODE;
  int rc = RTQ_EDECODE;
  const char *s = json_string_value(json_object_get(o, "s"));
  if (s != NULL && rtq_status_parse(s, st) == 0) {
    json_t *t = json_object_get(o, "at");
    *at = json_is_integer(t) && json_integer_value(t) > 0 ? (uint64_t)json_integer_value(t) : 0;
    rc = 0;
  }
  json_decref(o);
  return rc;
}

/* The task as a terminal message told it, its hash gone. A message can be
 * sent by anyone who may publish: with the workers' keys, an end known
 * only from one is not believed. */
static int from_event(rtq_client *c, const char *id, rtq_status st, uint64_t at, rtq_task **out) {
  rtq__client_clear_err(c);
  if (c->result_keys != NULL) {
    rtq__client_err(c, "task %s: its end was announced but its hash is gone, so its outcome cannot be "
                       "verified", id);
    return RTQ_EUNVERIFIED;
  }
  return rtq__task_from_event(id, st, at, out);
}

/* The terminal task: read it, or when its hash has just expired, what the
 * message said (ev: 1 when there was one). */
static int read_ended(rtq_client *c, const char *queue, const char *id, int ev, rtq_status st,
                      uint64_t at, rtq_task **out) {
  int rc = rtq__task2_read(c, queue, id, out);
  if (rc == RTQ_ENOTFOUND && ev) return from_event(c, id, st, at, out);
  if (rc == 0 && !rtq_status_is_terminal((*out)->status)) {
    /* Retried between the script and the read: not ended after all. */
    rtq_task_free(*out);
    *out = NULL;
    return 1;
  }
  return rc;
}

/* Steps 3 and 4 until the task is terminal. Any message is a reason to
 * look again, not only a well-formed one: a message that does not parse
 * must not leave a finished task's waiter asleep. */
static int wait_messages(rtq_client *c, rtq_subscription *s, const char *queue, const char *id,
                         uint64_t deadline, rtq_task **out) {
  for (;;) {
    char *msg = NULL;
    size_t len;
    rtq__pool_trim(c);
    int rc = rtq__sub_next(s, deadline, &msg, &len);
    if (rc != 0) return rc;
    rtq_status ev_st = RTQ_STATUS_PENDING;
    uint64_t at = 0;
    int ev = rtq__wait2_message_parse(msg, &ev_st, &at) == 0 && rtq_status_is_terminal(ev_st);
    free(msg);
    rtq_status st;
    rc = register_waiter(c, queue, id, &st);
    if (rc == RTQ_ENOTFOUND && ev) return from_event(c, id, ev_st, at, out);
    if (rc != 0) return rc;
    if (!rtq_status_is_terminal(st)) continue;
    rc = read_ended(c, queue, id, ev, ev_st, at, out);
    if (rc != 1) return rc;
  }
}

/* Steps 1-4 once. RTQ_ECONN from step 3 means the subscription was lost;
 * the caller may start over. */
static int wait_once(rtq_client *c, const char *queue, const char *id, uint64_t deadline,
                     rtq_task **out) {
  rtq_subscription *s = NULL;
  rtq_key2 chan = rtq_keys2_chan_waiter(&c->keys2, queue, id);
  int rc = rtq__sub_open_shard(c, &chan, &s);
  if (rc == 0 && rtq__wait_subscribed_hook != NULL) rtq__wait_subscribed_hook(id);
  rtq_status st;
  if (rc == 0) rc = register_waiter(c, queue, id, &st);
  if (rc == 0 && rtq_status_is_terminal(st)) rc = read_ended(c, queue, id, 0, st, 0, out);
  if (rc == 0 && *out == NULL) rc = 1;
  if (rc == 1) rc = wait_messages(c, s, queue, id, deadline, out);
  rtq_subscription_free(s);
  return rc;
}

int rtq__wait2(rtq_client *c, const char *id, const char *queue_hint, int64_t timeout_ms,
               rtq_task **out) {
  char queue[RTQ_TASK_ID_SIZE];
  int rc = rtq__queue_of_id2(c, id, queue_hint, queue);
  if (rc == RTQ_ENOTFOUND) rtq__client_err(c, "no task %s (it never existed or has expired)", id);
  if (rc != 0) return rc;
  rtq_task *t = NULL;
  if (timeout_ms == 0) {
    /* Checks once: no subscription, no waiter left registered. */
    rc = rtq__task2_read(c, queue, id, &t);
    if (rc == 0 && !rtq_status_is_terminal(t->status)) rc = RTQ_ETIMEDOUT;
  } else {
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : rtq__mono_ms() + (uint64_t)timeout_ms;
    rc = wait_once(c, queue, id, deadline, &t);
    for (int again = 0; rc == RTQ_ECONN && t == NULL && again < RTQ__WAIT_RESUBSCRIBE; again++) {
      if (deadline != UINT64_MAX && rtq__mono_ms() >= deadline) break;
      rc = wait_once(c, queue, id, deadline, &t);
    }
  }
  return rtq__wait_done(c, id, timeout_ms, rc, t, out);
}
