/* batch.c - pipelined commands with per-command replies (see batch.h). */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "rtq/common.h"
#include "scripts.h"
#include "scripts2.h"

void rtq__batch_init(rtq__batch *bt) { memset(bt, 0, sizeof *bt); }

void rtq__batch_clear(rtq__batch *bt) {
  for (int i = 0; i < bt->n; i++) {
    if (bt->replies[i] != NULL) freeReplyObject(bt->replies[i]);
    bt->replies[i] = NULL;
    bt->rcs[i] = 0;
  }
  bt->n = 0;
  bt->oom = 0;
}

void rtq__batch_destroy(rtq__batch *bt) {
  rtq__batch_clear(bt);
  for (int i = 0; i < bt->cap; i++) rtq_argv_destroy(&bt->cmds[i]);
  free(bt->cmds);
  free(bt->replies);
  free(bt->rcs);
  memset(bt, 0, sizeof *bt);
}

/* Grows the three parallel arrays together, so an index valid in one is
 * valid in all; on failure nothing changes. */
static int grow(rtq__batch *bt) {
  int cap = bt->cap == 0 ? 64 : bt->cap * 2;
  rtq_argv *cmds = realloc(bt->cmds, (size_t)cap * sizeof *cmds);
  if (cmds == NULL) return RTQ_ENOMEM;
  bt->cmds = cmds;
  redisReply **replies = realloc(bt->replies, (size_t)cap * sizeof *replies);
  if (replies == NULL) return RTQ_ENOMEM;
  bt->replies = replies;
  int *rcs = realloc(bt->rcs, (size_t)cap * sizeof *rcs);
  if (rcs == NULL) return RTQ_ENOMEM;
  bt->rcs = rcs;
  for (int i = bt->cap; i < cap; i++) {
    rtq_argv_init(&bt->cmds[i]);
    bt->replies[i] = NULL;
    bt->rcs[i] = 0;
  }
  bt->cap = cap;
  return 0;
}

rtq_argv *rtq__batch_add(rtq__batch *bt) {
  if (bt->n == bt->cap && grow(bt) != 0) {
    bt->oom = 1;
    return NULL;
  }
  rtq_argv *a = &bt->cmds[bt->n++];
  rtq_argv_reset(a);
  return a;
}

int rtq__batch_run(rtq_conn *c, rtq__batch *bt) {
  if (bt->oom) return RTQ_ENOMEM;
  for (int i = 0; i < bt->n; i++) {
    if (bt->cmds[i].oom) return RTQ_ENOMEM;
  }
  for (int i = 0; i < bt->n; i++) {
    int rc = rtq_conn_append(c, &bt->cmds[i]);
    if (rc != 0) {
      /* Commands already buffered must never reach the server later, where
       * their replies would be read as the replies of other commands. */
      rtq_conn_drop(c);
      return rc;
    }
  }
  int noscript = 0;
  for (int i = 0; i < bt->n; i++) {
    int rc = rtq_conn_get_reply(c, &bt->replies[i]);
    bt->rcs[i] = rc;
    if (rc == RTQ_ECONN || rc == RTQ_ENOMEM) return rc;
    if (rtq_reply_is_noscript(bt->replies[i])) noscript++;
  }
  if (noscript == 0) return 0;
  int rc = rtq_scripts2_load(c);
  if (rc == RTQ_ECONN || rc == RTQ_ENOMEM) return rc;
  for (int i = 0; i < bt->n; i++) {
    if (!rtq_reply_is_noscript(bt->replies[i])) continue;
    freeReplyObject(bt->replies[i]);
    bt->replies[i] = NULL;
    /* rtq_script2_run falls back to EVAL itself if the load did not help. */
    bt->rcs[i] = rtq_script2_run(c, &bt->cmds[i], &bt->replies[i]);
    if (bt->rcs[i] == RTQ_ECONN || bt->rcs[i] == RTQ_ENOMEM) return bt->rcs[i];
  }
  return 0;
}

static const redisReply *elem(const redisReply *r, size_t i) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return NULL;
  return r->element[i];
}

const char *rtq__reply_elem_str(const redisReply *r, size_t i) {
  const redisReply *e = elem(r, i);
  if (e == NULL || (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS)) return "";
  return e->str;
}

long long rtq__reply_int(const redisReply *r, long long def) {
  if (r == NULL) return def;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING && r->len > 0) {
    char *end = NULL;
    long long v = strtoll(r->str, &end, 10);
    if (end != NULL && *end == '\0') return v;
  }
  return def;
}

long long rtq__reply_elem_int(const redisReply *r, size_t i, long long def) {
  return rtq__reply_int(elem(r, i), def);
}

bool rtq__reply_tag_is(const redisReply *r, const char *s) {
  const redisReply *e = elem(r, 0);
  return e != NULL && e->type == REDIS_REPLY_STRING && strcmp(e->str, s) == 0;
}
