/*
 * retry2.c - rtq_retry_task under protocol 2: a task that ended failed,
 * timeout or cancelled becomes pending again under the same id, at the
 * back of its queue (common/lua2/retry.lua). The task keeps its args and
 * options in its hash, so nothing is rebuilt here; the script is told the
 * status we read and re-checks it, so a task that changed in between is
 * never retried by mistake.
 */
#include "client_internal.h"

#include <string.h>

#include "calls2.h"
#include "scripts2.h"

static bool retryable(rtq_status s) {
  return s == RTQ_STATUS_FAILED || s == RTQ_STATUS_TIMEOUT || s == RTQ_STATUS_CANCELLED;
}

/* The task's status now: HGET of `s`. RTQ_ENOTFOUND, RTQ_EDECODE. */
static int read_status(rtq_client *c, const char *queue, const char *id, rtq_status *st) {
  rtq_key2 key = rtq_keys2_task(&c->keys2, queue, id);
  const char *w[] = {"HGET", key.s, "s"};
  redisReply *r = NULL;
  int rc = rtq__client_words(c, &r, 3, w);
  if (rc != 0) return rc;
  char s[16];
  if (r->type == REDIS_REPLY_NIL) {
    rtq__client_err(c, "no task %s (it never existed or has expired)", id);
    rc = RTQ_ENOTFOUND;
  } else if (r->type != REDIS_REPLY_STRING || r->len >= sizeof s) {
    rc = RTQ_EDECODE;
  } else {
    memcpy(s, r->str, r->len);
    s[r->len] = '\0';
    if (rtq_status_parse(s, st) != 0) rc = RTQ_EDECODE;
  }
  if (rc == RTQ_EDECODE) rtq__client_err(c, "task %s: its hash has no valid status field", id);
  freeReplyObject(r);
  return rc;
}

/* One run of the script: 0, RTQ_ESTATE (*changed: the status was not
 * `current` any more), RTQ_ENOTFOUND or a connection error. */
static int run_retry(rtq_client *c, const char *queue, const char *id, rtq_status current,
                     int *changed) {
  *changed = 0;
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = NULL;
  int rc = rtq__call2_retry(&a, &c->keys2, false, queue, id, current);
  if (rc != 0)
    rtq__client_err(c, "%s", rtq_strerror(rc));
  else
    rc = rtq__client_script2(c, &a, &r);
  rtq_argv_destroy(&a);
  rtq__tag2 tag;
  if (rc == 0 && rtq__reply2_tag(r, &tag) != 0) {
    rc = RTQ_EREDIS;
    rtq__client_err(c, "unexpected reply from the retry script");
  } else if (rc == 0) {
    if (strcmp(tag.tag, "notfound") == 0) {
      rc = RTQ_ENOTFOUND;
      rtq__client_err(c, "no task %s (it never existed or has expired)", id);
    } else if (strcmp(tag.tag, "state") == 0) {
      rc = RTQ_ESTATE;
      *changed = 1;
    } else if (strcmp(tag.tag, "ok") != 0) {
      rc = RTQ_EREDIS;
      rtq__client_err(c, "unexpected reply from the retry script");
    }
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

int rtq__retry2(rtq_client *c, const char *id, const char *queue_hint) {
  char queue[RTQ_TASK_ID_SIZE];
  int rc = rtq__queue_of_id2(c, id, queue_hint, queue);
  if (rc == RTQ_ENOTFOUND) rtq__client_err(c, "no task %s (it never existed or has expired)", id);
  if (rc != 0) return rc;
  /* A status that changes between the read and the script (a worker
   * finishing, another operator retrying) is read again, a few times. */
  for (int tries = 0; tries < 3; tries++) {
    rtq_status st;
    if ((rc = read_status(c, queue, id, &st)) != 0) return rc;
    if (!retryable(st)) {
      rtq__client_err(c, "task %s is %s; only failed, timeout or cancelled tasks can be retried",
                      id, rtq_status_name(st));
      return RTQ_ESTATE;
    }
    int changed;
    rc = run_retry(c, queue, id, st, &changed);
    if (!changed) return rc;
  }
  rtq__client_err(c, "task %s kept changing state; not retried", id);
  return RTQ_ESTATE;
}
