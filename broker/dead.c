/*
 * dead.c - finding dead workers: the walk over the workers set, which hands
 * each dead one to its recovery (rtq__dead_ops; recover2.c).
 *
 * A worker is dead when its score (its last heartbeat, Redis time) is at
 * least heartbeat_ttl old; when its score lies in the future (heartbeat
 * scripts take it from Redis TIME, so only a hand or a hostile writer puts
 * one there, to keep a dead worker "alive"); or when its record is missing
 * (the heartbeat writes both at once, and the record expires with the
 * heartbeat). Each sweep reads at most RTQ_BROKER_DEAD_WORKERS_PER_SWEEP
 * of the first two kinds, and checks a window of as many live-looking
 * workers for their record, the window moving on every sweep, so a large
 * fleet is covered over a few sweeps at a bounded cost.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* A score this far past Redis TIME is no heartbeat of ours. The margin
 * only absorbs rounding. */
#define FUTURE_MARGIN_MS 1000

/* Worker ids of ZRANGEBYSCORE <workers> min max LIMIT off <per sweep>; the
 * caller frees the reply. */
static int workers_between(rtq_broker *b, const rtq__dead_ops *ops, const char *min,
                           const char *max, uint64_t off, redisReply **out) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZRANGEBYSCORE");
  ops->workers_key(b, &a);
  rtq_argv_add_str(&a, min);
  rtq_argv_add_str(&a, max);
  rtq_argv_add_str(&a, "LIMIT");
  rtq_argv_add_u64(&a, off);
  rtq_argv_add_i64(&a, RTQ_BROKER_DEAD_WORKERS_PER_SWEEP);
  int rc = rtq_conn_command(b->conn, &a, out);
  rtq_argv_destroy(&a);
  if (rc == 0 && (*out)->type != REDIS_REPLY_ARRAY) rc = RTQ_EREDIS;
  if (rc != 0 && *out != NULL) {
    freeReplyObject(*out);
    *out = NULL;
  }
  return rc;
}

/* The live-looking window: *alive gets the ids looked at and gone[i] says
 * whether id i has no record. */
static int recordless(rtq_broker *b, const rtq__dead_ops *ops, const rtq__dead_range *d,
                      redisReply **alive, bool *gone) {
  char lo[32], hi[32];
  snprintf(lo, sizeof lo, "(%llu", (unsigned long long)d->cutoff);
  snprintf(hi, sizeof hi, "%llu", (unsigned long long)d->ceiling);
  int rc = workers_between(b, ops, lo, hi, b->record_check_offset, alive);
  if (rc != 0) return rc;
  size_t n = (*alive)->elements;
  b->record_check_offset = n < RTQ_BROKER_DEAD_WORKERS_PER_SWEEP ? 0 : b->record_check_offset + n;
  rtq__batch *bt = &b->batch;
  rtq__batch_clear(bt);
  for (size_t i = 0; i < n; i++) {
    const redisReply *w = (*alive)->element[i];
    rtq_argv *e = rtq__batch_add(bt);
    if (e == NULL) return RTQ_ENOMEM;
    if (w->type != REDIS_REPLY_STRING || rtq_validate_name(w->str) != 0) {
      rtq_argv_add_str(e, "PING"); /* keeps the replies in step */
      continue;
    }
    rtq_argv_add_str(e, "EXISTS");
    ops->record_key(b, e, w->str);
  }
  if (n > 0 && (rc = rtq__batch_run(b->conn, bt)) != 0) return rc;
  for (size_t i = 0; i < n; i++)
    gone[i] = bt->rcs[i] == 0 && bt->replies[i] != NULL &&
              bt->replies[i]->type == REDIS_REPLY_INTEGER && bt->replies[i]->integer == 0;
  return 0;
}

/* Hands each worker id of list (those with only[i] set, when only is
 * given) to ops->recover, within budget. */
static int recover_list(rtq_broker *b, const rtq__dead_ops *ops, const redisReply *list,
                        const bool *only, const rtq__dead_range *d, int *budget, const char *why) {
  int rc = 0;
  for (size_t i = 0; list != NULL && i < list->elements && *budget > 0 && rc == 0; i++) {
    const redisReply *w = list->element[i];
    if (w->type != REDIS_REPLY_STRING || (only != NULL && !only[i])) continue;
    if (memchr(w->str, '\0', w->len) != NULL || rtq_validate_name(w->str) != 0) {
      /* No key can be built for it, so it can own no processing list. */
      rtq_argv a;
      rtq_argv_init(&a);
      rtq_argv_add_str(&a, "ZREM");
      ops->workers_key(b, &a);
      rtq_argv_add(&a, w->str, w->len);
      rc = rtq_conn_command(b->conn, &a, NULL);
      rtq_argv_destroy(&a);
      rtq_log(RTQ_LOG_WARNING, "removed an invalid worker id from the workers set", "worker",
              w->str, NULL);
      continue;
    }
    if (why != NULL)
      rtq_log(RTQ_LOG_WARNING, "counting a worker as dead", "worker", w->str, "why", why, NULL);
    rc = ops->recover(b, w->str, d, budget);
  }
  return rc;
}

bool rtq__broker_dead_range(const rtq_broker *b, rtq__dead_range *d) {
  uint64_t ttl = (uint64_t)b->o.heartbeat_ttl_ms;
  if (b->now <= ttl) return false;
  *d = (rtq__dead_range){b->now - ttl, b->now + FUTURE_MARGIN_MS};
  return true;
}

int rtq__broker_each_dead(rtq_broker *b, const rtq__dead_ops *ops) {
  rtq__dead_range d;
  if (!rtq__broker_dead_range(b, &d)) return 0;
  char cut[32], ceil_s[32];
  snprintf(cut, sizeof cut, "%llu", (unsigned long long)d.cutoff);
  snprintf(ceil_s, sizeof ceil_s, "(%llu", (unsigned long long)d.ceiling);
  redisReply *silent = NULL, *future = NULL, *alive = NULL;
  bool gone[RTQ_BROKER_DEAD_WORKERS_PER_SWEEP];
  int budget = RTQ_BROKER_RECOVER_PER_SWEEP;
  int rc = workers_between(b, ops, "-inf", cut, 0, &silent);
  if (rc == 0) rc = recover_list(b, ops, silent, NULL, &d, &budget, NULL);
  if (rc == 0) rc = workers_between(b, ops, ceil_s, "+inf", 0, &future);
  if (rc == 0)
    rc = recover_list(b, ops, future, NULL, &d, &budget, "its heartbeat score is in the future");
  if (rc == 0) rc = recordless(b, ops, &d, &alive, gone);
  if (rc == 0)
    rc = recover_list(b, ops, alive, gone, &d, &budget, "its worker record is missing");
  if (silent != NULL) freeReplyObject(silent);
  if (future != NULL) freeReplyObject(future);
  if (alive != NULL) freeReplyObject(alive);
  return rc;
}

bool rtq__broker_still_dead(const redisReply *score, bool no_record, const rtq__dead_range *d) {
  if (score == NULL || score->type != REDIS_REPLY_STRING) return false;
  double sc = strtod(score->str, NULL);
  return sc <= (double)d->cutoff || sc > (double)d->ceiling || no_record;
}
