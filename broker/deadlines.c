/*
 * deadlines.c - the timeout backstop.
 *
 * A worker enforces its own timeouts; the broker steps in only for a task
 * whose worker cannot: one past deadline + timeout_grace (both Redis time)
 * whose worker has been silent for heartbeat_ttl. expire_running.lua
 * checks all of that atomically, ends the task timeout, sets its cancel
 * flag and publishes the id on P:chan:cancel (should the worker wake up).
 * A task whose worker is alive is left to the worker.
 *
 * The set is read from a cursor, a score kept between sweeps: a sweep
 * reads at most RTQ_BROKER_DEADLINES_PER_SWEEP entries from the cursor
 * on and moves it to the last score it read, and the cursor goes back to
 * the start once a read comes up short. So a thousand overdue tasks of a
 * live worker that is slow to enforce its own timeouts do not hide the
 * ones behind them, and no sweep reads the same head of the set every
 * time. Entries that share the cursor's score are read again by the next
 * sweep (at most a page of them; scores are deadlines in ms).
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "calls.h"
#include "scripts.h"

/* Where ARGV[1], the id, sits in an expire_running command. (rtq_argv
 * keeps each argument NUL-terminated.) */
#define ID_ARG RTQ__EXPIRE_RUNNING_ID_ARG

static int queue_expire(rtq_broker *b, rtq__batch *bt, const char *id) {
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return RTQ_ENOMEM;
  return rtq__call_expire_running(a, &b->keys, false, id, b->o.timeout_grace_ms,
                                  b->o.heartbeat_ttl_ms, b->o.config.task_result_ttl,
                                  b->o.config.enable_task_history);
}

/* An id no key can be built for is removed from the set by itself. */
static int queue_drop(rtq_broker *b, rtq__batch *bt, const redisReply *id) {
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "ZREM");
  rtq__argv_add_key(a, b->k.deadlines);
  rtq_argv_add(a, id->str, id->len);
  rtq_log(RTQ_LOG_WARNING, "removed an invalid task id from the deadlines set", "task", id->str,
          NULL);
  return a->oom ? RTQ_ENOMEM : 0;
}

/* Moves the cursor after a read of got entries whose first and last
 * scores are given. */
static void advance(rtq_broker *b, size_t got, const char *first, const char *last) {
  char *cur = b->deadlines_from;
  size_t cap = sizeof b->deadlines_from;
  if (got < RTQ_BROKER_DEADLINES_PER_SWEEP) {
    cur[0] = '\0'; /* read to the end: start again next sweep */
  } else if (strcmp(first, last) == 0) {
    snprintf(cur, cap, "(%s", last); /* a whole page of one score: step past it */
  } else {
    snprintf(cur, cap, "%s", last);
  }
}

int rtq__broker_expire_deadlines(rtq_broker *b) {
  if (b->protocol == 2) return rtq__broker_backstop2(b);
  uint64_t grace = (uint64_t)b->o.timeout_grace_ms;
  if (b->now <= grace) return 0;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZRANGEBYSCORE");
  rtq__argv_add_key(&a, b->k.deadlines);
  rtq_argv_add_str(&a, b->deadlines_from[0] ? b->deadlines_from : "-inf");
  rtq_argv_add_u64(&a, b->now - grace);
  rtq_argv_add_str(&a, "WITHSCORES");
  rtq_argv_add_str(&a, "LIMIT");
  rtq_argv_add_i64(&a, 0);
  rtq_argv_add_i64(&a, RTQ_BROKER_DEADLINES_PER_SWEEP);
  redisReply *due = NULL;
  int rc = rtq_conn_command(b->conn, &a, &due);
  rtq_argv_destroy(&a);
  if (rc == 0 && (due->type != REDIS_REPLY_ARRAY || due->elements % 2 != 0)) rc = RTQ_EREDIS;
  if (rc != 0 || due->elements == 0) {
    /* Nothing due past the cursor: start from the head next sweep. */
    if (rc == 0) b->deadlines_from[0] = '\0';
    if (due != NULL) freeReplyObject(due);
    return rc;
  }
  size_t n = due->elements / 2;
  advance(b, n, rtq__reply_elem_str(due, 1), rtq__reply_elem_str(due, due->elements - 1));
  rtq__batch *bt = &b->batch;
  rtq__batch_clear(bt);
  for (size_t i = 0; i < due->elements && rc == 0; i += 2) {
    const redisReply *id = due->element[i];
    if (id->type != REDIS_REPLY_STRING) continue;
    rc = rtq_validate_name(id->str) == 0 ? queue_expire(b, bt, id->str) : queue_drop(b, bt, id);
  }
  if (rc == 0) rc = rtq__batch_run(b->conn, bt);
  for (int i = 0; rc == 0 && i < bt->n; i++) {
    if (!rtq__reply_tag_is(bt->replies[i], "timeout")) continue;
    RTQ__COUNT(b, timeouts, 1);
    rtq_log(RTQ_LOG_WARNING, "task past its deadline and its worker is silent: timeout", "task",
            bt->cmds[i].argv[ID_ARG], NULL);
  }
  freeReplyObject(due);
  return rc;
}
