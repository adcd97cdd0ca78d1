/*
 * replies2.c - parsers for the structured replies of the protocol v2
 * scripts (declared in calls2.h beside their builders). Each checks the
 * whole shape the script's header promises; what it returns points into
 * the reply.
 */
#include <stdlib.h>
#include <string.h>

#include "calls2.h"

static const redisReply *elem(const redisReply *r, size_t i) {
  return r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements ? r->element[i] : NULL;
}

/* Element i as a string (a bulk or status reply), else NULL. */
static const char *text_at(const redisReply *r, size_t i, size_t *len) {
  const redisReply *e = elem(r, i);
  if (e == NULL || (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS)) return NULL;
  if (len != NULL) *len = e->len;
  return e->str;
}

/* Element i as an integer into *v; 0 or RTQ_EDECODE. */
static int int_at(const redisReply *r, size_t i, int64_t *v) {
  const redisReply *e = elem(r, i);
  if (e == NULL || e->type != REDIS_REPLY_INTEGER) return RTQ_EDECODE;
  *v = (int64_t)e->integer;
  return 0;
}

static int is(const char *s, const char *word) { return s != NULL && strcmp(s, word) == 0; }

/* The reply as an array of at most cap entries, each an array. */
static int entries(const redisReply *r, int cap, int *n) {
  *n = 0;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || cap < 0 || r->elements > (size_t)cap)
    return RTQ_EDECODE;
  for (size_t i = 0; i < r->elements; i++)
    if (r->element[i]->type != REDIS_REPLY_ARRAY) return RTQ_EDECODE;
  *n = (int)r->elements;
  return 0;
}

/* ---- create ---- */

/* {created_at, then per task 1 (created) or the status it has}. */
int rtq__reply2_create(const redisReply *r, rtq__create2_result *out, int cap, int *n) {
  int64_t at = 0;
  *n = 0;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2 || cap < 0 ||
      r->elements - 1 > (size_t)cap || int_at(r, 0, &at) != 0)
    return RTQ_EDECODE;
  for (size_t i = 1; i < r->elements; i++) {
    rtq__create2_result *o = &out[i - 1];
    int64_t flag = 0;
    memset(o, 0, sizeof *o);
    if (int_at(r, i, &flag) == 0) {
      if (flag != 1) return RTQ_EDECODE;
      o->created = true;
      o->created_at = at;
    } else if ((o->status = text_at(r, i, NULL)) == NULL) {
      return RTQ_EDECODE;
    }
  }
  *n = (int)r->elements - 1;
  return 0;
}

/* ---- the task hash's args ---- */

static bool present(const redisReply *v) { return v != NULL && v->type == REDIS_REPLY_STRING; }

int rtq__args2_join(const redisReply *const part[4], char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  if (!present(part[1])) return 0;
  size_t n = 0;
  for (int i = 0; i < 4; i++)
    if (present(part[i])) n += part[i]->len;
  char *p = malloc(n + 1);
  if (p == NULL) return RTQ_ENOMEM;
  n = 0;
  for (int i = 0; i < 4; i++) {
    if (!present(part[i])) continue;
    memcpy(p + n, part[i]->str, part[i]->len);
    n += part[i]->len;
  }
  p[n] = '\0';
  *out = p;
  *len = n;
  return 0;
}

/* ---- take and claim ---- */

/*
 * One claim_one entry (common/lua2/_prelude.lua):
 *   {'ok', id, name, attempt, deadline_ms, timeout_ms, args, signature,
 *    to, mr, rt, bo}
 *   {'skip', id, status} | {'missing', id} | {'bad', id, reason}
 * or a limit's: {'limited', wait_ms} (take) | {'limited', id, wait_ms} (claim)
 */
static int claim_entry(const redisReply *e, rtq__claim2_entry *o) {
  memset(o, 0, sizeof *o);
  const char *kind = text_at(e, 0, NULL);
  if (is(kind, "limited") && (e->elements == 2 || e->elements == 3)) {
    o->kind = RTQ__CLAIM2_LIMITED;
    if (e->elements == 3 && (o->id = text_at(e, 1, &o->id_len)) == NULL) return RTQ_EDECODE;
    return int_at(e, e->elements - 1, &o->wait_ms);
  }
  o->id = text_at(e, 1, &o->id_len);
  if (o->id == NULL) return RTQ_EDECODE;
  if (is(kind, "ok") && (e->elements == 8 || e->elements == 12)) {
    o->kind = RTQ__CLAIM2_OK;
    o->name = text_at(e, 2, NULL);
    o->args = text_at(e, 6, &o->args_len);
    o->signature = text_at(e, 7, NULL);
    if (o->name == NULL || o->args == NULL || o->signature == NULL) return RTQ_EDECODE;
    if (e->elements == 12 &&
        ((o->to_s = text_at(e, 8, NULL)) == NULL || (o->mr_s = text_at(e, 9, NULL)) == NULL ||
         (o->rt_s = text_at(e, 10, NULL)) == NULL || (o->bo_s = text_at(e, 11, NULL)) == NULL))
      return RTQ_EDECODE;
    if (int_at(e, 3, &o->attempt) != 0 || int_at(e, 4, &o->deadline_ms) != 0 ||
        int_at(e, 5, &o->timeout_ms) != 0)
      return RTQ_EDECODE;
    return 0;
  }
  if (is(kind, "skip") && e->elements == 3) {
    o->kind = RTQ__CLAIM2_SKIP;
    o->status = text_at(e, 2, NULL);
    return o->status != NULL ? 0 : RTQ_EDECODE;
  }
  if (is(kind, "missing") && e->elements == 2) {
    o->kind = RTQ__CLAIM2_MISSING;
    return 0;
  }
  if (is(kind, "bad") && e->elements == 3) {
    o->kind = RTQ__CLAIM2_BAD;
    o->reason = text_at(e, 2, NULL);
    return o->reason != NULL ? 0 : RTQ_EDECODE;
  }
  return RTQ_EDECODE;
}

int rtq__reply2_claim(const redisReply *r, rtq__claim2_entry *out, int cap, int *n) {
  int rc = entries(r, cap, n);
  for (int i = 0; rc == 0 && i < *n; i++) rc = claim_entry(r->element[i], &out[i]);
  return rc;
}

/* ---- finish ---- */

/* {'ok', status} | {'retry', run_at_ms} | {'stale', status} */
static int finish_entry(const redisReply *e, rtq__finish2_entry *o) {
  memset(o, 0, sizeof *o);
  const char *kind = text_at(e, 0, NULL);
  if (e->elements != 2) return RTQ_EDECODE;
  if (is(kind, "retry")) {
    o->kind = RTQ__FINISH2_RETRY;
    return int_at(e, 1, &o->run_at_ms);
  }
  if (is(kind, "ok"))
    o->kind = RTQ__FINISH2_OK;
  else if (is(kind, "stale"))
    o->kind = RTQ__FINISH2_STALE;
  else
    return RTQ_EDECODE;
  o->status = text_at(e, 1, NULL);
  return o->status != NULL ? 0 : RTQ_EDECODE;
}

int rtq__reply2_finish(const redisReply *r, rtq__finish2_entry *out, int cap, int *n) {
  int rc = entries(r, cap, n);
  for (int i = 0; rc == 0 && i < *n; i++) rc = finish_entry(r->element[i], &out[i]);
  return rc;
}

/* ---- recover ---- */

/* {'gone'} | {'requeued', a} | {'failed'|'cancelled'|'timeout', a}
 * | {'dropped', status} | {'dead', code} */
static int recover_entry(const redisReply *e, rtq__recover2_entry *o) {
  memset(o, 0, sizeof *o);
  const char *kind = text_at(e, 0, NULL);
  if (is(kind, "gone") && e->elements == 1) {
    o->kind = RTQ__RECOVER2_GONE;
    return 0;
  }
  if (e->elements != 2) return RTQ_EDECODE;
  if (is(kind, "requeued")) {
    o->kind = RTQ__RECOVER2_REQUEUED;
    return int_at(e, 1, &o->attempt);
  }
  if (is(kind, "failed") || is(kind, "cancelled") || is(kind, "timeout")) {
    o->kind = RTQ__RECOVER2_ENDED;
    o->status = kind;
    return int_at(e, 1, &o->attempt);
  }
  if (is(kind, "dropped")) {
    o->kind = RTQ__RECOVER2_DROPPED;
    o->status = text_at(e, 1, NULL);
    return o->status != NULL ? 0 : RTQ_EDECODE;
  }
  if (is(kind, "dead")) {
    o->kind = RTQ__RECOVER2_DEAD;
    o->code = text_at(e, 1, NULL);
    return o->code != NULL ? 0 : RTQ_EDECODE;
  }
  return RTQ_EDECODE;
}

int rtq__reply2_recover(const redisReply *r, rtq__recover2_entry *out, int cap, int *n) {
  int rc = entries(r, cap, n);
  for (int i = 0; rc == 0 && i < *n; i++) rc = recover_entry(r->element[i], &out[i]);
  return rc;
}

/* ---- promote ---- */

/* {moved, {bad entries}, next_due_ms or -1} */
int rtq__reply2_promote(const redisReply *r, rtq__promote2_result *out) {
  memset(out, 0, sizeof *out);
  const redisReply *bad = elem(r, 1);
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 || bad == NULL ||
      bad->type != REDIS_REPLY_ARRAY || int_at(r, 0, &out->moved) != 0 ||
      int_at(r, 2, &out->next_due_ms) != 0)
    return RTQ_EDECODE;
  for (size_t i = 0; i < bad->elements; i++)
    if (bad->element[i]->type != REDIS_REPLY_STRING) return RTQ_EDECODE;
  out->nbad = bad->elements;
  out->bad = bad->element;
  return 0;
}

int rtq__reply2_backstop(const redisReply *r, rtq__backstop2_result *out) {
  memset(out, 0, sizeof *out);
  const redisReply *ended = elem(r, 1);
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || ended == NULL ||
      ended->type != REDIS_REPLY_ARRAY || int_at(r, 0, &out->read) != 0)
    return RTQ_EDECODE;
  for (size_t i = 0; i < ended->elements; i++)
    if (ended->element[i]->type != REDIS_REPLY_STRING) return RTQ_EDECODE;
  out->nended = ended->elements;
  out->ended = ended->element;
  return 0;
}

/* ---- purge and delete ---- */

int rtq__reply2_counts(const redisReply *r, int64_t out[3]) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return RTQ_EDECODE;
  for (size_t i = 0; i < 3; i++)
    if (int_at(r, i, &out[i]) != 0) return RTQ_EDECODE;
  return 0;
}

/* ---- tagged replies ---- */

int rtq__reply2_tag(const redisReply *r, rtq__tag2 *out) {
  memset(out, 0, sizeof *out);
  out->tag = text_at(r, 0, NULL);
  if (out->tag == NULL || r->elements > 3) return RTQ_EDECODE;
  out->n = (int)r->elements - 1;
  for (int i = 0; i < out->n; i++) {
    out->str[i] = text_at(r, (size_t)i + 1, NULL);
    if (out->str[i] == NULL && int_at(r, (size_t)i + 1, &out->num[i]) != 0) return RTQ_EDECODE;
  }
  return 0;
}
