/*
 * task2.c - reading a task under protocol 2 (docs/PROTOCOL.md
 * section 3): the task hash {ns:Q}:t:<id>, with its short field names, and
 * the side hash {ns:Q}:x:<id> of its values longer than 64 bytes merged
 * over it, into the public rtq_task.
 *
 * Given only an id, the queue is found first (rtq__queue_of_id2: the
 * queues of the id's slot, then a probe of every queue). Both hashes are
 * read in one round trip, pipelined; the side hash is used only when the
 * task hash says it exists (xs), so a stale side hash is never mixed in.
 * Whatever a writer put in the hashes is read without trust: unknown
 * fields are skipped, numbers that are not plain decimals read as 0, and a
 * missing or unknown status is RTQ_EDECODE.
 */
#include "client_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls2.h"

/* The short names of the task hash, and where each goes in rtq_task. `bo`
 * (retry backoff), `sg` (signature), `wt`, `hb` and `xs` have no place in
 * it. */
static const rtq__task_field fields2[] = {
#define F(n, k, m) {n, RTQ__##k, offsetof(rtq_task, m), 0}
#define B(n, m, l) {n, RTQ__K_BYTES, offsetof(rtq_task, m), offsetof(rtq_task, l)}
    F("s", K_STATUS, status),
    F("n", K_NAME, name),
    F("c", K_U64, created_at),
    B("x", args, args_len),
    F("to", K_U64, timeout_ms),
    F("mr", K_U32, max_retries),
    F("rt", K_U64, result_ttl_s),
    F("ra", K_U64, run_at),
    F("a", K_U32, attempts),
    F("w", K_NAME, worker),
    F("b", K_U64, started_at),
    F("dl", K_U64, deadline),
    F("p", K_PROGRESS, progress),
    F("pm", K_STR, progress_message),
    F("cr", K_U64, cancel_requested),
    F("ry", K_U64, retry_at),
    F("e", K_U64, completed_at),
    B("r", result, result_len),
    F("ec", K_STR, error_code),
    F("em", K_STR, error_message),
    B("ed", error_details, error_details_len),
    F("et", K_STR, error_traceback),
#undef F
#undef B
};

/* Whether an HGETALL reply has field xs = "1". */
static bool has_side(const redisReply *r) {
  for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
    const redisReply *k = r->element[i], *v = r->element[i + 1];
    if (k->type == REDIS_REPLY_STRING && k->len == 2 && memcmp(k->str, "xs", 2) == 0)
      return v->type == REDIS_REPLY_STRING && v->len == 1 && v->str[0] == '1';
  }
  return false;
}

/* The value of field name in an HGETALL reply, or NULL. */
static const redisReply *field_of(const redisReply *r, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
    const redisReply *k = r->element[i], *v = r->element[i + 1];
    if (k->type == REDIS_REPLY_STRING && k->len == n && memcmp(k->str, name, n) == 0)
      return v->type == REDIS_REPLY_STRING ? v : NULL;
  }
  return NULL;
}

/* Args of 65..256 bytes: the task hash's chunks, joined over what x
 * gave (rtq__args2_join). */
static int join_args(rtq_task *t, const redisReply *th) {
  const redisReply *part[4] = {field_of(th, "x"), field_of(th, "x2"), field_of(th, "x3"), field_of(th, "x4")};
  char *joined = NULL;
  size_t len = 0;
  int rc = rtq__args2_join(part, &joined, &len);
  if (joined != NULL) {
    free(t->args);
    t->args = joined;
    t->args_len = len;
  }
  return rc;
}

/* A field as a reader sees it: the side hash's value over the task hash's. */
static rtq_sign_bytes merged(const redisReply *th, const redisReply *xh, bool side, const char *name) {
  const redisReply *v = side ? field_of(xh, name) : NULL;
  if (v == NULL) v = field_of(th, name);
  return v != NULL ? (rtq_sign_bytes){v->str, v->len} : (rtq_sign_bytes){NULL, 0};
}

/* A short text field as a C string into buf ("" when absent or too long). */
static const char *text_of(rtq_sign_bytes v, char *buf, size_t cap) {
  buf[0] = '\0';
  if (v.p != NULL && v.len < cap && memchr(v.p, '\0', v.len) == NULL) memcpy(buf, v.p, v.len), buf[v.len] = '\0';
  return buf;
}

/* With the workers' keys: 0 when the end of ended task t carries a valid
 * signature `rs` of a key allowed for its status, else RTQ_EUNVERIFIED:
 * completed, a worker's (role rtq2r); failed, cancelled and timeout, a
 * worker's or a producer's (role rtq2e, with the producers' keys:
 * task_keys, else the client's own signing keys), which signs the ends of
 * the steps that hold no worker key (a cancel before the task ran, the
 * broker's timeouts and recoveries). The signature covers the task's
 * `sg` and the run's start `b`; a run that started before the task hash
 * says it was created (`c` later than `b`) is an outcome copied from an
 * earlier task of the same id, and does not verify either. */
static int check_outcome(const rtq_sign_keys *keys, const rtq_sign_keys *producers, const char *queue,
                         const char *id, const rtq_task *t, const redisReply *th, const redisReply *xh,
                         bool side) {
  if (keys == NULL || !rtq_status_is_terminal(t->status)) return 0;
  rtq_sign_bytes rs = merged(th, xh, side, "rs");
  char attempt[24], sg[RTQ_SIGN_SIZE], b[24], c[24], sig[RTQ_SIGN_SIZE];
  if (text_of(rs, sig, sizeof sig)[0] == '\0') return RTQ_EUNVERIFIED;
  text_of(merged(th, xh, side, "a"), attempt, sizeof attempt);
  text_of(merged(th, xh, side, "b"), b, sizeof b);
  text_of(merged(th, xh, side, "c"), c, sizeof c);
  if (b[0] != '\0' && c[0] != '\0' && strtoull(c, NULL, 10) > strtoull(b, NULL, 10)) return RTQ_EUNVERIFIED;
  rtq_sign_outcome o = {.id = id, .queue = queue, .attempt = attempt, .status = rtq_status_name(t->status),
                        .r = merged(th, xh, side, "r"), .ec = merged(th, xh, side, "ec"),
                        .em = merged(th, xh, side, "em"), .ed = merged(th, xh, side, "ed"),
                        .et = merged(th, xh, side, "et"),
                        .task_sig = text_of(merged(th, xh, side, "sg"), sg, sizeof sg), .started = b};
  if (rtq_sign_outcome_check(keys, &o, sig) == 0) return 0;
  return producers != NULL && rtq_sign_end_check(producers, &o, sig) == 0 ? 0 : RTQ_EUNVERIFIED;
}

/* Builds task id of queue from its two HGETALL replies. RTQ_ENOTFOUND for
 * an empty task hash, RTQ_EDECODE, RTQ_ENOMEM; with keys, RTQ_EUNVERIFIED
 * for an outcome that does not verify (check_outcome). */
static int from_hashes(const char *queue, const char *id, const redisReply *th,
                       const redisReply *xh, const rtq_sign_keys *keys, const rtq_sign_keys *producers,
                       rtq_task **out) {
  *out = NULL;
  if (th == NULL || th->type != REDIS_REPLY_ARRAY || th->elements == 0) return RTQ_ENOTFOUND;
  rtq_task *t = calloc(1, sizeof *t);
  if (t == NULL) return RTQ_ENOMEM;
  snprintf(t->id, sizeof t->id, "%s", id);
  snprintf(t->queue, sizeof t->queue, "%s", queue);
  int have_status = 0;
  size_t n = sizeof fields2 / sizeof fields2[0];
  bool side = has_side(th);
  int rc = rtq__task_apply(t, fields2, n, th, &have_status);
  if (rc == 0) rc = join_args(t, th);
  if (rc == 0 && side) rc = rtq__task_apply(t, fields2, n, xh, &have_status);
  if (rc == 0 && !have_status) rc = RTQ_EDECODE;
  if (rc == 0) rc = check_outcome(keys, producers, queue, id, t, th, xh, side);
  if (rc != 0) {
    rtq_task_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

/* The keys that verify the ends producers and the broker sign. */
static const rtq_sign_keys *producer_keys(const rtq_client *c) {
  return c->task_keys != NULL ? c->task_keys : c->sign_keys;
}

static int read_many(rtq_client *c, const char *queue, const char *const *ids, size_t n, rtq_task **out,
                     int *rcs, const rtq_sign_keys *keys) {
  for (size_t i = 0; i < n; i++) out[i] = NULL, rcs[i] = RTQ_ENOTFOUND;
  if (n == 0) return 0;
  rtq_conn *conn = NULL;
  int rc = rtq__pool_get(c, &conn);
  if (rc != 0) return rc;
  rtq_argv a;
  rtq_argv_init(&a);
  size_t sent = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rtq_key2 keys[2] = {rtq_keys2_task(&c->keys2, queue, ids[i]),
                        rtq_keys2_side(&c->keys2, queue, ids[i])};
    for (int h = 0; rc == 0 && h < 2; h++) {
      rtq_argv_reset(&a);
      rtq_argv_add_str(&a, "HGETALL");
      rc = rtq__argv_add_key2(&a, keys[h]);
      if (rc == 0) rc = rtq_conn_append(conn, &a);
    }
    if (rc == 0) sent = i + 1;
  }
  rtq_argv_destroy(&a);
  if (rc != 0) rtq__client_conn_err(c, conn, rc, "redis");
  for (size_t i = 0; i < sent; i++) {
    redisReply *r[2] = {NULL, NULL};
    int g = rtq_conn_get_reply(conn, &r[0]);
    int g2 = rtq_conn_get_reply(conn, &r[1]);
    if (g == 0 || g == RTQ_EREDIS) g = g2 == 0 ? g : g2;
    if (g == RTQ_EREDIS) {
      /* An error reply (a key of another type): this task is unreadable,
       * the connection and the other tasks are fine. */
      rcs[i] = RTQ_EDECODE;
    } else if (g != 0) {
      if (rc == 0) rc = rtq__client_conn_err(c, conn, g, "redis");
    } else {
      rcs[i] = from_hashes(queue, ids[i], r[0], r[1], keys, keys != NULL ? producer_keys(c) : NULL, &out[i]);
    }
    if (r[0] != NULL) freeReplyObject(r[0]);
    if (r[1] != NULL) freeReplyObject(r[1]);
  }
  rtq__pool_put(c, conn);
  if (rc != 0) {
    for (size_t i = 0; i < n; i++) rtq_task_free(out[i]), out[i] = NULL;
  }
  return rc;
}

/* Lists read tasks as they are: the outcome check belongs to the reads of
 * one task (rtq_get_task, rtq_wait_for_task). */
int rtq__task2_read_many(rtq_client *c, const char *queue, const char *const *ids, size_t n,
                         rtq_task **out, int *rcs) {
  return read_many(c, queue, ids, n, out, rcs, NULL);
}

int rtq__task2_read(rtq_client *c, const char *queue, const char *id, rtq_task **out) {
  int one = 0;
  int rc = read_many(c, queue, &id, 1, out, &one, c->result_keys);
  if (rc != 0) return rc;
  if (one == RTQ_EUNVERIFIED)
    rtq__client_err(c, "task %s: its end carries no valid signature (rs) of a key allowed for its status "
                       "(completed: a worker's; failed, cancelled, timeout: a worker's or a producer's): it "
                       "may be forged", id);
  else if (one == RTQ_ENOTFOUND)
    rtq__client_err(c, "no task %s (it never existed or has expired)", id);
  else if (one == RTQ_EDECODE)
    rtq__client_err(c, "task %s: its hash has no valid status field, or a key of it is not a hash", id);
  else if (one != 0)
    rtq__client_err(c, "out of memory");
  return one;
}

int rtq__get_task2(rtq_client *c, const char *id, const char *queue_hint, rtq_task **out) {
  char queue[RTQ_TASK_ID_SIZE];
  /* A generated id of a queue this client knows: read it there at once,
   * one round trip; not there, the lookup below. */
  if (queue_hint == NULL && rtq__queues2_cached(c, id, queue)) {
    int rc = rtq__task2_read(c, queue, id, out);
    if (rc != RTQ_ENOTFOUND) return rc;
    rtq__client_clear_err(c);
  }
  int rc = rtq__queue_of_id2(c, id, queue_hint, queue);
  if (rc == RTQ_ENOTFOUND)
    rtq__client_err(c, "no task %s (it never existed or has expired)", id);
  if (rc != 0) return rc;
  /* A task that expires between the lookup and the read is not found. */
  return rtq__task2_read(c, queue, id, out);
}

int rtq__task2_from_hashes(const char *queue, const char *id, const redisReply *th, const redisReply *xh,
                           const rtq_sign_keys *keys, rtq_task **out) {
  return from_hashes(queue, id, th, xh, keys, NULL, out);
}
