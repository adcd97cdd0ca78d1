/*
 * wait.c - rtq_wait_for_task: block until a task is terminal, without
 * polling.
 *
 * The order closes the race with a task that ends while we set up:
 *
 *   1. SUBSCRIBE P:chan:task:<id>   (own connection)
 *   2. HGETALL P:task:<id>          terminal already? return it.
 *   3. wait for the terminal event  (poll(2) on the subscriber socket)
 *   4. HGETALL again and return it.
 *
 * A task ending before 1 is seen by 2; one ending after 1 publishes an
 * event we are subscribed for. With task history off, a terminal hash
 * lives only 60 s more; if it is gone by step 4 the event itself
 * (id, status, at) is the answer.
 */
#include "client_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* See client_internal.h. */
int rtq__event_parse(const char *json, rtq_status *st, uint64_t *at) {
  json_t *o = json != NULL ? json_loads(json, 0, NULL) : NULL;
  if (o == NULL) return RTQ_EDECODE;
  int rc = RTQ_EDECODE;
  const char *s = json_string_value(json_object_get(o, "status"));
  if (s != NULL && rtq_status_parse(s, st) == 0) {
    json_t *t = json_object_get(o, "at");
    *at = json_is_integer(t) && json_integer_value(t) > 0 ? (uint64_t)json_integer_value(t) : 0;
    rc = 0;
  }
  json_decref(o);
  return rc;
}

/* See client_internal.h. */
int rtq__task_from_event(const char *id, rtq_status st, uint64_t at, rtq_task **out) {
  rtq_task *t = calloc(1, sizeof *t);
  if (t == NULL) return RTQ_ENOMEM;
  snprintf(t->id, sizeof t->id, "%s", id);
  t->status = st;
  t->completed_at = at;
  *out = t;
  return 0;
}

/* Step 3 and 4: waits for events until one leaves the task terminal.
 * Any message on the channel is a reason to read the task again, not
 * only a well-formed terminal event: an event that does not parse (text
 * that is not UTF-8, a newer writer's shape) must not leave a finished
 * task's waiter asleep until its timeout. Progress events are coalesced
 * by the worker, so this costs at most a few HGETALLs a second. */
static int wait_events(rtq_client *c, rtq_subscription *s, const char *id, uint64_t deadline,
                       rtq_task **out) {
  for (;;) {
    char *msg = NULL;
    size_t len;
    rtq__pool_trim(c);
    int rc = rtq__sub_next(s, deadline, &msg, &len);
    if (rc != 0) return rc;
    rtq_status st;
    uint64_t at = 0;
    int terminal_event = rtq__event_parse(msg, &st, &at) == 0 && rtq_status_is_terminal(st);
    free(msg);
    rtq_task *t = NULL;
    rc = rtq_get_task(c, id, &t);
    if (rc == RTQ_ENOTFOUND && terminal_event) {
      rtq__client_clear_err(c);
      return rtq__task_from_event(id, st, at, out);
    }
    if (rc != 0) return rc;
    if (rtq_status_is_terminal(t->status)) {
      *out = t;
      return 0;
    }
    /* Still running, or ended and already retried: wait for its next end. */
    rtq_task_free(t);
  }
}

void (*rtq__wait_subscribed_hook)(const char *id) = NULL;

/* Steps 1-4 once. RTQ_ECONN from step 3 means the subscription was lost
 * (a Redis restart, a failover); the caller may start over. */
static int wait_once(rtq_client *c, const char *id, int64_t timeout_ms, uint64_t deadline,
                     rtq_task **out) {
  rtq_subscription *s = NULL;
  rtq_key chan = rtq_keys_chan_task(&c->keys, id);
  int rc = timeout_ms != 0 ? rtq__sub_open(c, &chan, &s) : 0;
  if (rc == 0 && rtq__wait_subscribed_hook != NULL) rtq__wait_subscribed_hook(id);
  rtq_task *t = NULL;
  if (rc == 0) rc = rtq_get_task(c, id, &t);
  if (rc == 0 && !rtq_status_is_terminal(t->status)) {
    rtq_task_free(t);
    t = NULL;
    rc = timeout_ms != 0 ? wait_events(c, s, id, deadline, &t) : RTQ_ETIMEDOUT;
  }
  rtq_subscription_free(s);
  *out = t;
  return rc;
}

/* See client_internal.h. */
int rtq__wait_done(rtq_client *c, const char *id, int64_t timeout_ms, int rc, rtq_task *t,
                   rtq_task **out) {
  if (rc == RTQ_ETIMEDOUT)
    rtq__client_err(c, "task %s did not end within %lld ms", id, (long long)timeout_ms);
  if (rc == 0 && out != NULL)
    *out = t;
  else
    rtq_task_free(t);
  return rc;
}

RTQ_EXTERN int rtq_wait_for_task(rtq_client *c, const char *id, int64_t timeout_ms,
                                 rtq_task **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  if (c->protocol == 2) return rtq__wait2(c, id, NULL, timeout_ms, out);
  uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : rtq__mono_ms() + (uint64_t)timeout_ms;
  rtq_task *t = NULL;
  int rc = wait_once(c, id, timeout_ms, deadline, &t);
  for (int again = 0; rc == RTQ_ECONN && t == NULL && again < RTQ__WAIT_RESUBSCRIBE; again++) {
    if (deadline != UINT64_MAX && rtq__mono_ms() >= deadline) break;
    rc = wait_once(c, id, timeout_ms, deadline, &t);
  }
  return rtq__wait_done(c, id, timeout_ms, rc, t, out);
}
