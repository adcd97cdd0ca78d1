/*
 * task.c - the handler API (rtq_task_*) and the task context's life.
 *
 * A task context is made by the loop thread, handed to one handler, and
 * comes back with the outcome. While the handler runs, the loop thread
 * reads only the progress (under t->mu) and writes only the cancel flag (an
 * atomic); everything else belongs to the handler. In a forked child the
 * context is the child's own copy, progress goes down the pipe, and the
 * cancel flag lives in a page shared with the worker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "defaults.h"
#include "envelope.h"
#include "internal.h"
#include "utf8.h"

rtq_task_ctx *rtq__task_new(const rtq_envelope *e, rtq_handler_fn fn, void *ud, size_t max_result,
                        int progress_interval_ms) {
  rtq_task_ctx *t = calloc(1, sizeof *t);
  if (t == NULL) return NULL;
  memcpy(t->id, e->id, sizeof t->id);
  memcpy(t->name, e->name, sizeof t->name);
  memcpy(t->queue, e->queue, sizeof t->queue);
  t->args_len = e->args_len;
  t->args = malloc(e->args_len ? e->args_len : 1);
  if (t->args == NULL || pthread_mutex_init(&t->mu, NULL) != 0) {
    free(t->args);
    free(t);
    return NULL;
  }
  if (e->args_len) memcpy(t->args, e->args, e->args_len);
  t->fn = fn;
  t->userdata = ud;
  t->max_result = max_result;
  t->progress_interval_ms = progress_interval_ms;
  t->cancel = &t->cancel_local;
  t->pipe_fd = -1;
  atomic_init(&t->cancel_local, 0);
  atomic_init(&t->state, RTQ__TASK_QUEUED);
  return t;
}

void rtq__task_free(rtq_task_ctx *t) {
  if (t == NULL) return;
  free(t->args);
  rtq_args_free(t->args_tree);
  rtq__prog_destroy(&t->prog);
  rtq__outcome_destroy(&t->out);
  pthread_mutex_destroy(&t->mu);
  free(t);
}

static char *dup_cut(const char *s, size_t max) {
  size_t n = strnlen(s, max);
  char *d = malloc(n + 1);
  if (d == NULL) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* Turns what the handler did into the outcome finish.lua writes (except
 * for cancellation and timeouts, which the worker decides). */
static void settle(rtq_task_ctx *t) {
  rtq__outcome *o = &t->out;
  if (t->failed) {
    o->status = RTQ_STATUS_FAILED;
    free(o->result);
    o->result = NULL;
    o->result_len = 0;
    return;
  }
  if (t->rc != 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "handler %s returned %d (%s)", t->name, t->rc,
             t->rc < 0 ? rtq_err_name(t->rc) : "non-zero");
    o->status = RTQ_STATUS_FAILED;
    free(o->result);
    o->result = NULL;
    o->result_len = 0;
    free(o->code);
    free(o->message);
    o->code = dup_cut(RTQ_CODE_HANDLER_ERROR, RTQ__CODE_MAX);
    o->message = dup_cut(msg, sizeof msg);
    return;
  }
  o->status = RTQ_STATUS_COMPLETED;
}

void rtq__task_run(rtq_task_ctx *t) {
  atomic_store(&t->state, RTQ__TASK_RUNNING);
  t->rc = t->fn(t, t->userdata);
  t->cancel_at_return = atomic_load(t->cancel);
  settle(t);
}

bool rtq__task_take_progress(rtq_task_ctx *t, uint64_t *seq, rtq__prog *p) {
  bool got = false;
  pthread_mutex_lock(&t->mu);
  if (t->prog_seq != *seq) {
    *seq = t->prog_seq;
    got = rtq__prog_set(p, t->prog.pct, t->prog.msg, t->prog.msg ? strlen(t->prog.msg) : 0) == 0;
  }
  pthread_mutex_unlock(&t->mu);
  return got;
}

/* ---- the public handler API ---- */

const char *rtq_task_id(const rtq_task_ctx *t) { return t->id; }
const char *rtq_task_name(const rtq_task_ctx *t) { return t->name; }
const char *rtq_task_queue(const rtq_task_ctx *t) { return t->queue; }
uint32_t rtq_task_attempt(const rtq_task_ctx *t) { return t->attempt; }
uint64_t rtq_task_timeout_ms(const rtq_task_ctx *t) { return t->timeout_ms; }

const rtq_args *rtq_task_args(rtq_task_ctx *t) {
  if (t->args_tree == NULL) {
    /* The claim checked the bytes with rtq__args_check, which accepts
     * only what this reads, so only memory can make this fail. */
    size_t max = t->args_len > RTQ_ENVELOPE_MAX_SIZE_DEFAULT ? t->args_len : 0;
    if (rtq_args_unpack(t->args, t->args_len, max, &t->args_tree) != 0) t->args_tree = NULL;
  }
  return t->args_tree;
}

const void *rtq_task_args_msgpack(const rtq_task_ctx *t, size_t *len) {
  if (len != NULL) *len = t->args_len;
  return t->args;
}

int rtq_task_progress(rtq_task_ctx *t, double percent, const char *message) {
  size_t len = message ? strnlen(message, RTQ__PROGRESS_MSG_MAX) : 0;
  pthread_mutex_lock(&t->mu);
  int rc = rtq__prog_set(&t->prog, percent, message, len);
  t->prog_seq++;
  pthread_mutex_unlock(&t->mu);
  if (rc == 0 && t->in_child) rtq__child_write_progress(t, false);
  return rc;
}

bool rtq_task_cancelled(const rtq_task_ctx *t) { return atomic_load(t->cancel) != 0; }

int rtq_task_sleep_ms(rtq_task_ctx *t, uint64_t ms) {
  /* 10 ms steps: a cancel is seen well within the 100 ms promise. */
  while (ms > 0) {
    if (rtq_task_cancelled(t)) return RTQ_ESTATE;
    uint64_t step = ms < 10 ? ms : 10;
    struct timespec ts = {(time_t)(step / 1000), (long)(step % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    ms -= step;
  }
  return rtq_task_cancelled(t) ? RTQ_ESTATE : 0;
}

static int take_result(rtq_task_ctx *t, char *buf, size_t len) {
  if (len > t->max_result) {
    free(buf);
    return RTQ_ETOOBIG;
  }
  free(t->out.result);
  t->out.result = buf;
  t->out.result_len = len;
  return 0;
}

int rtq_task_set_result(rtq_task_ctx *t, const rtq_args *result) {
  if (result == NULL) return RTQ_EINVAL;
  char *buf = NULL;
  size_t len = 0;
  int rc = rtq_args_pack(result, &buf, &len);
  if (rc != 0) return rc;
  return take_result(t, buf, len);
}

int rtq_task_set_result_json(rtq_task_ctx *t, const char *json) {
  if (json == NULL) return RTQ_EINVAL;
  char *buf = NULL;
  size_t len = 0;
  int rc = rtq_json_to_msgpack(json, &buf, &len, NULL, 0);
  if (rc != 0) return rc;
  return take_result(t, buf, len);
}

int rtq_task_set_result_msgpack(rtq_task_ctx *t, const void *buf, size_t len) {
  if (buf == NULL || len == 0) return RTQ_EINVAL;
  if (len > t->max_result) return RTQ_ETOOBIG;
  if (rtq_msgpack_check(buf, len, RTQ_MAX_DEPTH, NULL, 0) != 0) return RTQ_EINVAL;
  char *copy = malloc(len);
  if (copy == NULL) return RTQ_ENOMEM;
  memcpy(copy, buf, len);
  return take_result(t, copy, len);
}

int rtq_task_fail(rtq_task_ctx *t, const char *code, const char *message, const rtq_args *details) {
  if (code == NULL || code[0] == '\0' || strlen(code) > RTQ__CODE_MAX) return RTQ_EINVAL;
  if (details != NULL && rtq_args_type(details) != RTQ_TYPE_MAP) return RTQ_EINVAL;
  char *d = NULL;
  size_t dlen = 0;
  int rc = details != NULL ? rtq_args_pack(details, &d, &dlen) : 0;
  /* The traceback a handler set before failing stays. */
  char *tb = t->out.traceback;
  t->out.traceback = NULL;
  if (rc == 0)
    rc = rtq__outcome_set_error(&t->out, code, strlen(code), message,
                                message != NULL ? strlen(message) : 0, d, dlen, tb,
                                tb != NULL ? strlen(tb) : 0);
  free(d);
  free(tb);
  if (rc == 0) t->failed = true;
  return rc;
}

int rtq_task_set_traceback(rtq_task_ctx *t, const char *text) {
  if (text == NULL) return RTQ_EINVAL;
  size_t n = strnlen(text, RTQ__TRACEBACK_MAX);
  char *tb = rtq__utf8_sanitize(text, n, NULL);
  if (tb == NULL) return RTQ_ENOMEM;
  free(t->out.traceback);
  t->out.traceback = tb;
  return 0;
}
