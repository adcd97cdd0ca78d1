/*
 * retry.c - rtq_retry_task: an ended task (failed, timeout, cancelled) goes
 * back to pending under the same id, with a new envelope rebuilt from its
 * hash (name, queue, args, timeout, max_retries, result_ttl), through
 * retry.lua. The script re-checks the status it was told to expect, so a
 * task that changed in between is never retried by mistake.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "calls.h"
#include "scripts.h"

static int retryable(rtq_status s) {
  return s == RTQ_STATUS_FAILED || s == RTQ_STATUS_TIMEOUT || s == RTQ_STATUS_CANCELLED;
}

/* Builds the envelope of a retried task from what its hash holds. */
static int rebuild_envelope(rtq_client *c, const rtq_task *t, char **env, size_t *len) {
  rtq_envelope e;
  rtq_envelope_init(&e);
  snprintf(e.id, sizeof e.id, "%s", t->id);
  snprintf(e.name, sizeof e.name, "%s", t->name);
  snprintf(e.queue, sizeof e.queue, "%s", t->queue);
  e.args = t->args != NULL ? t->args : (char *)rtq__empty_map; /* borrowed */
  e.args_len = t->args != NULL ? t->args_len : sizeof rtq__empty_map;
  e.created_at = rtq__wall_ms();
  e.timeout_ms = t->timeout_ms;
  e.max_retries = t->max_retries;
  e.attempt = 1;
  e.result_ttl_s = t->result_ttl_s;
  char why[256];
  int rc = rtq_envelope_encode(&e, env, len, why, sizeof why);
  if (rc != 0) {
    rtq__client_err(c, "task %s cannot be re-encoded: %s", t->id, why);
  } else if (*len > c->max_payload) {
    /* Args written by a client with a larger limit, or by hand: workers
     * would dead-letter the envelope, so it is not sent. */
    rtq__client_err(c, "task %s: its payload would be %zu bytes; the limit is %zu", t->id, *len,
                    c->max_payload);
    free(*env);
    *env = NULL;
    rc = RTQ_ETOOBIG;
  }
  return rc;
}

/* One attempt: 0, RTQ_ESTATE, RTQ_ENOTFOUND, or a connection error.
 * *changed is set when the script saw another status than t's. */
static int run_retry(rtq_client *c, const rtq_task *t, int *changed) {
  char *env = NULL;
  size_t envlen = 0;
  *changed = 0;
  int rc = rebuild_envelope(c, t, &env, &envlen);
  if (rc != 0) return rc;
  rtq_argv a;
  rtq_argv_init(&a);
  rc = rtq__call_retry(&a, &c->keys, false, t->id, t->queue, env, envlen, t->status);
  free(env);
  if (rc != 0) {
    rtq_argv_destroy(&a);
    rtq__client_err(c, "%s", rtq_strerror(rc));
    return rc;
  }

  rtq_conn *conn = NULL;
  redisReply *r = NULL;
  rc = rtq__pool_get(c, &conn);
  if (rc == 0 && (rc = rtq_script_run(conn, &a, &r)) != 0)
    rtq__client_conn_err(c, conn, rc, "redis");
  rtq__pool_put(c, conn);
  rtq_argv_destroy(&a);
  if (rc == 0) {
    const redisReply *e0 = r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->element[0] : NULL;
    if (e0 == NULL || e0->type != REDIS_REPLY_STRING) {
      rc = RTQ_EREDIS;
      rtq__client_err(c, "unexpected reply from retry.lua");
    } else if (strcmp(e0->str, "notfound") == 0) {
      rc = RTQ_ENOTFOUND;
      rtq__client_err(c, "no task %s (it never existed or has expired)", t->id);
    } else if (strcmp(e0->str, "state") == 0) {
      rc = RTQ_ESTATE;
      *changed = 1;
    } else if (strcmp(e0->str, "ok") != 0) {
      rc = RTQ_EREDIS;
      rtq__client_err(c, "unexpected reply from retry.lua");
    }
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

RTQ_EXTERN int rtq_retry_task(rtq_client *c, const char *id) {
  if (c == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  if (c->protocol == 2) return rtq__retry2(c, id, NULL);
  /* A status that changes between the read and the script (a worker
   * finishing, another operator retrying) is read again, a few times. */
  for (int tries = 0; tries < 3; tries++) {
    rtq_task *t = NULL;
    int rc = rtq_get_task(c, id, &t);
    if (rc != 0) return rc;
    if (!retryable(t->status)) {
      rtq__client_err(c, "task %s is %s; only failed, timeout or cancelled tasks can be retried",
                      id, rtq_status_name(t->status));
      rtq_task_free(t);
      return RTQ_ESTATE;
    }
    int changed;
    rc = run_retry(c, t, &changed);
    rtq_task_free(t);
    if (!changed) return rc;
  }
  rtq__client_err(c, "task %s kept changing state; not retried", id);
  return RTQ_ESTATE;
}
