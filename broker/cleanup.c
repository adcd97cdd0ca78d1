/*
 * cleanup.c - keeping every index bounded.
 *
 * A terminal task hash expires by itself (task_result_ttl, set by the
 * terminal step), but Redis cannot expire a member of a sorted set, so the
 * indexes that point at tasks are trimmed here:
 *
 *   history cap    every sweep and every RTQ_BROKER_TRIM_EVERY_MS: while
 *                  P:history holds more than max_task_history ids, the
 *                  oldest go, together with their task hashes (trim.lua,
 *                  bounded steps, budgeted in time per call).
 *   cleanup round  every cleanup_interval: walk P:history, the terminal
 *                  indexes and the running index a page at a time; an
 *                  entry whose task hash has expired goes (forget.lua
 *                  'expired' for the terminal ones; a WATCHed check for
 *                  running, whose hash never expires, so an entry there
 *                  without a hash is debris of a hand-deleted key). The
 *                  terminal indexes hold at most max_task_history ids each
 *                  (trimmed with the history) and the running index one id
 *                  per busy slot, so a round costs O(cap + slots), whatever
 *                  the backlog. The pending index is not walked: with a
 *                  million tasks waiting, a walk would cost a million
 *                  EXISTS an hour for debris that only a hand-deleted hash
 *                  leaves, and that listing already skips (a pending entry
 *                  without a hash does not match any status). A round may
 *                  span several sweeps: each sweep walks at most
 *                  RTQ_BROKER_CLEANUP_PER_SWEEP entries, resuming at its
 *                  offset.
 *
 * The other keys bound themselves: P:dead is LTRIMmed by its writers,
 * P:delayed and P:deadlines empty as tasks move on, cancel flags and worker
 * records carry a TTL, P:workers loses dead workers in recover.c.
 */
#include "internal.h"

#include <string.h>

#include "log.h"
#include "calls.h"
#include "scripts.h"

/* The history-cap line: at most one this often (report_trim). */
#define TRIM_LOG_EVERY_MS 60000u

static rtq_key index_key(const rtq_broker *b, int idx) {
  switch (idx) {
    case RTQ__IDX_HISTORY:
      return b->k.history;
    case RTQ__IDX_COMPLETED:
      return b->k.status[RTQ_STATUS_COMPLETED];
    case RTQ__IDX_FAILED:
      return b->k.status[RTQ_STATUS_FAILED];
    case RTQ__IDX_CANCELLED:
      return b->k.status[RTQ_STATUS_CANCELLED];
    case RTQ__IDX_TIMEOUT:
      return b->k.status[RTQ_STATUS_TIMEOUT];
    default:
      return b->k.status[RTQ_STATUS_RUNNING];
  }
}

/* Ids of an index page: ZRANGE key start start+count-1. */
static int page(rtq_broker *b, rtq_key key, long long start, long long count, redisReply **out) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZRANGE");
  rtq__argv_add_key(&a, key);
  rtq_argv_add_i64(&a, start);
  rtq_argv_add_i64(&a, start + count - 1);
  int rc = rtq_conn_command(b->conn, &a, out);
  rtq_argv_destroy(&a);
  if (rc != 0 && *out != NULL) {
    freeReplyObject(*out);
    *out = NULL;
  }
  return rc;
}

/* forget.lua for one id, or a plain ZREM from `from` when the id is not a
 * valid name (no key can be built for it, so it points at nothing). */
static int queue_forget(rtq_broker *b, rtq__batch *bt, const redisReply *id, rtq_key from) {
  rtq_argv *a;
  if (rtq_validate_name(id->str) != 0) {
    if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "ZREM");
    rtq__argv_add_key(a, from);
    rtq_argv_add(a, id->str, id->len);
    return a->oom ? RTQ_ENOMEM : 0;
  }
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  return rtq__call_forget(a, &b->keys, false, id->str);
}

/* Counts the replies equal to 1 of a batch built by queue_forget: forget
 * removed the task's entries (*forgot), or the ZREM of an invalid id
 * removed it (*invalid). Returns their sum. */
static uint64_t count_removed(const rtq__batch *bt, uint64_t *forgot, uint64_t *invalid) {
  uint64_t f = 0, z = 0;
  for (int i = 0; i < bt->n; i++) {
    if (bt->rcs[i] != 0 || rtq__reply_int(bt->replies[i], 0) != 1) continue;
    if (strcmp(bt->cmds[i].argv[0], "ZREM") == 0) z++;
    else f++;
  }
  *forgot += f;
  *invalid += z;
  return f + z;
}

/* The history cap is a condition, not an event of every sweep (at steady
 * load nearly every sweep trims): a line when trimming starts, one a
 * minute while it goes on, one when a sweep finds nothing to trim
 * (condlog.h). */
static void report_trim(rtq_broker *b, uint64_t trimmed) {
  static const char *const msg[] = {
      [RTQ_CONDLOG_START] = "history over max_task_history; deleting the oldest tasks "
                            "(logged at most once a minute until it ends)",
      [RTQ_CONDLOG_STILL] = "history still over max_task_history; deleting the oldest tasks",
      [RTQ_CONDLOG_END] = "history within max_task_history again",
  };
  if (b->trim_log.every_ms == 0) b->trim_log.every_ms = TRIM_LOG_EVERY_MS;
  uint64_t deleted = 0;
  rtq_condlog_line line = rtq_condlog_note(&b->trim_log, rtq__mono_ms(), trimmed, &deleted);
  if (line == RTQ_CONDLOG_NONE) return;
  char n[24], m[24];
  rtq_log(RTQ_LOG_INFO, msg[line], "deleted", rtq__u64s(deleted, n), "max_task_history",
          rtq__u64s((uint64_t)b->o.config.max_task_history, m), NULL);
}

/*
 * The history cap: trim.lua over and over, each call bounded in entries
 * and in Redis time, until P:history is within max_task_history or this
 * call's own budget (RTQ_BROKER_TRIM_BUDGET_MS, broker clock) is spent.
 * A budget in time rather than in entries keeps up with any drain rate:
 * at steady load the cap is restored on every call (every sweep, and
 * every RTQ_BROKER_TRIM_EVERY_MS in between, ev_glue.c); a backlog left
 * over is taken up by the next call. The calls go
 * RTQ_BROKER_TRIM_PIPELINE at a time: under load a round trip waits
 * behind every worker's commands, so one call per round trip would trim
 * slower than the workers finish (the first round is a single call, so a
 * run at rest costs one script). Each call reads ZCARD first, so the
 * calls of a pipeline that find the history within its cap cost one O(1)
 * script each and never trim past it.
 */
/* Runs trim.lua calls on bt, `depth` at a time, `most` entries each (0:
 * settling), and sums their replies. Returns 0 or the first error. */
static int trim_round(rtq_broker *b, int depth, int most, long long *removed, long long *over,
                      long long *rounds) {
  rtq__batch *bt = &b->batch;
  long long cap = (long long)b->o.config.max_task_history;
  int rc = 0;
  rtq__batch_clear(bt);
  for (int i = 0; i < depth && rc == 0; i++) {
    rtq_argv *a = rtq__batch_add(bt);
    rc = a == NULL ? RTQ_ENOMEM
                   : rtq__call_trim(a, &b->keys, false, cap, most, RTQ_BROKER_TRIM_CALL_US);
  }
  if (rc == 0) rc = rtq__batch_run(b->conn, bt);
  *removed = *over = *rounds = 0;
  for (int i = 0; rc == 0 && i < bt->n; i++) {
    if ((rc = bt->rcs[i]) != 0) break;
    long long r = rtq__reply_elem_int(bt->replies[i], 0, 0);
    *over = rtq__reply_elem_int(bt->replies[i], 1, 0);
    *rounds += rtq__reply_elem_int(bt->replies[i], 2, 0);
    *removed += r;
    /* The set's size when this call started: the largest of the episode. */
    if (cap + r + *over > b->trim_peak) b->trim_peak = cap + r + *over;
  }
  rtq__batch_clear(bt);
  return rc;
}

int rtq__broker_trim_history(rtq_broker *b) {
  if (b->protocol == 2) return 0; /* finish caps the done lists itself */
  uint64_t started = rtq__mono_ms();
  uint64_t trimmed = 0;
  long long removed = 0, over = 0, rounds = 0;
  int rc = 0;
  /* One call first: at rest it finds nothing to trim, and the run costs
   * one O(1) script. */
  for (int depth = 1;; depth = RTQ_BROKER_TRIM_PIPELINE) {
    if ((rc = trim_round(b, depth, RTQ_BROKER_TRIM_PER_CALL, &removed, &over, &rounds)) != 0) break;
    if (removed > 0) trimmed += (uint64_t)removed;
    if (over <= 0 || removed <= 0 || rtq__mono_ms() - started >= RTQ_BROKER_TRIM_BUDGET_MS)
      break;
  }
  RTQ__COUNT(b, trimmed, trimmed);
  if (rc != 0) return rc;
  report_trim(b, trimmed);
  if (over > 0) return 0;
  /* The episode is over. After a large one the sets' tables are left far
   * too big until operations on them step their rehash along: settle them,
   * about one lookup per 4 entries the largest set held (trim.lua). */
  long long cap = (long long)b->o.config.max_task_history;
  if (b->trim_peak > 4 * cap && b->trim_peak > RTQ_BROKER_SETTLE_MIN) {
    char n[24];
    rtq_log(RTQ_LOG_INFO, "history shrank from a large size; settling the index tables", "from",
            rtq__u64s((uint64_t)b->trim_peak, n), NULL);
    b->settle_left += b->trim_peak / 4;
  }
  b->trim_peak = 0;
  while (b->settle_left > 0 && rtq__mono_ms() - started < RTQ_BROKER_TRIM_BUDGET_MS) {
    if ((rc = trim_round(b, RTQ_BROKER_TRIM_PIPELINE, 0, &removed, &over, &rounds)) != 0) break;
    b->settle_left = rounds <= 0 || rounds >= b->settle_left ? 0 : b->settle_left - rounds;
  }
  return rc;
}

/*
 * Removes a running index entry whose task hash is gone, with the
 * hash WATCHed so a task re-created under the same id in between (a
 * producer-supplied id) keeps its entry. Returns 0 or a connection error;
 * *removed is 1 when the entry went.
 */
static int remove_stale(rtq_broker *b, const char *id, int *removed) {
  rtq__batch *bt = &b->batch2;
  rtq_key task = rtq_keys_task(&b->keys, id);
  rtq__batch_clear(bt);
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "WATCH");
  rtq__argv_add_key(a, task);
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "EXISTS");
  rtq__argv_add_key(a, task);
  int rc = rtq__batch_run(b->conn, bt);
  if (rc != 0) return rc;
  bool gone = bt->rcs[1] == 0 && rtq__reply_int(bt->replies[1], 1) == 0;
  rtq__batch_clear(bt);
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, gone ? "MULTI" : "UNWATCH");
  if (gone) {
    rtq_key from[3] = {b->k.status[RTQ_STATUS_PENDING], b->k.status[RTQ_STATUS_RUNNING],
                       b->k.deadlines};
    for (int i = 0; i < 3; i++) {
      if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
      rtq_argv_add_str(a, "ZREM");
      rtq__argv_add_key(a, from[i]);
      rtq_argv_add_str(a, id);
    }
    if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "EXEC");
  }
  if ((rc = rtq__batch_run(b->conn, bt)) != 0) return rc;
  const redisReply *ex = bt->replies[bt->n - 1];
  *removed = gone && ex != NULL && ex->type == REDIS_REPLY_ARRAY;
  return 0;
}

/* One page of the running index: EXISTS for each id, then the
 * WATCHed removal for the (rare) ones without a hash. */
static int stale_page(rtq_broker *b, const redisReply *ids, rtq_key from, uint64_t *removed) {
  rtq__batch *bt = &b->batch;
  rtq__batch_clear(bt);
  for (size_t i = 0; i < ids->elements; i++) {
    const redisReply *id = ids->element[i];
    rtq_argv *a = rtq__batch_add(bt);
    if (a == NULL) return RTQ_ENOMEM;
    bool valid = id->type == REDIS_REPLY_STRING && rtq_validate_name(id->str) == 0;
    /* An invalid id is removed at once: ZREM replies 1 like a missing hash. */
    rtq_argv_add_str(a, valid ? "EXISTS" : "ZREM");
    if (valid) {
      rtq__argv_add_key(a, rtq_keys_task(&b->keys, id->str));
    } else {
      rtq__argv_add_key(a, from);
      rtq_argv_add(a, id->str, id->len);
    }
  }
  int rc = rtq__batch_run(b->conn, bt);
  for (size_t i = 0; rc == 0 && i < ids->elements; i++) {
    const redisReply *id = ids->element[i];
    if (strcmp(bt->cmds[i].argv[0], "ZREM") == 0) {
      *removed += bt->rcs[i] == 0 && rtq__reply_int(bt->replies[i], 0) == 1;
      continue;
    }
    if (bt->rcs[i] != 0 || rtq__reply_int(bt->replies[i], 1) != 0) continue;
    int gone = 0;
    rc = remove_stale(b, id->str, &gone);
    if (gone) {
      *removed += 1;
      rtq_log(RTQ_LOG_WARNING, "removed an index entry whose task hash is gone", "task", id->str,
              NULL);
    }
  }
  return rc;
}

static void end_round(rtq_broker *b) {
  b->cleanup_active = false;
  char n[24];
  rtq_log(b->cleanup_removed > 0 ? RTQ_LOG_INFO : RTQ_LOG_DEBUG, "cleanup round done",
          "removed_index_entries", rtq__u64s(b->cleanup_removed, n), NULL);
  b->cleanup_removed = 0;
}

int rtq__broker_cleanup_step(rtq_broker *b) {
  if (b->protocol == 2) return rtq__broker_prune2(b);
  long long budget = RTQ_BROKER_CLEANUP_PER_SWEEP;
  int rc = 0;
  while (b->cleanup_active && budget > 0 && rc == 0) {
    rtq_key key = index_key(b, b->cleanup_index);
    redisReply *ids = NULL;
    if ((rc = page(b, key, b->cleanup_offset, RTQ_BROKER_PAGE, &ids)) != 0) {
      /* An index that cannot be read (a key of another type) is skipped,
       * so it cannot hold the rest of the round up forever. */
      if (rc == RTQ_EREDIS) {
        b->cleanup_offset = 0;
        if (++b->cleanup_index == RTQ__IDX_COUNT) end_round(b);
      }
      break;
    }
    uint64_t removed = 0;
    bool terminal = b->cleanup_index < RTQ__IDX_RUNNING;
    if (terminal) {
      rtq__batch *bt = &b->batch;
      rtq__batch_clear(bt);
      for (size_t i = 0; i < ids->elements && rc == 0; i++)
        if (ids->element[i]->type == REDIS_REPLY_STRING)
          rc = queue_forget(b, bt, ids->element[i], key);
      if (rc == 0 && bt->n > 0) rc = rtq__batch_run(b->conn, bt);
      uint64_t forgot = 0, invalid = 0;
      if (rc == 0) removed = count_removed(bt, &forgot, &invalid);
      RTQ__COUNT(b, forgotten, forgot);
      RTQ__COUNT(b, stale_index, invalid);
    } else if (ids->elements > 0) {
      rc = stale_page(b, ids, key, &removed);
      RTQ__COUNT(b, stale_index, removed);
    }
    long long got = (long long)ids->elements;
    freeReplyObject(ids);
    if (rc != 0) break;
    b->cleanup_removed += removed;
    /* Removed entries shift the rest of the set down. */
    b->cleanup_offset += got - (long long)removed;
    budget -= got;
    if (got < RTQ_BROKER_PAGE) {
      b->cleanup_offset = 0;
      if (++b->cleanup_index == RTQ__IDX_COUNT) end_round(b);
    }
  }
  return rc;
}
