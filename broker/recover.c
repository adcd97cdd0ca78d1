/*
 * recover.c - redelivery from dead workers.
 *
 * A worker is dead when its P:workers score (its last heartbeat, Redis
 * time) is at least heartbeat_ttl old. So is one whose score lies in the
 * future (heartbeat.lua takes the score from Redis TIME, so only a hand or
 * a hostile writer puts one there, to keep a dead worker "alive"), and one
 * whose P:worker:<wid> record is missing (heartbeat.lua writes both at
 * once, and the record expires with the heartbeat); dead.c finds them,
 * for either protocol. Its processing list
 * holds the envelopes it had claimed and not finished. For each one:
 *
 *   decodes      recover.lua: back to the front of its queue, to be claimed
 *                with the next attempt; failed WORKER_LOST once the task has
 *                been delivered max_deliveries times; left alone when the
 *                task ended or runs elsewhere; dead-lettered when it has no
 *                task hash. A task still pending (claimed but never marked
 *                running) goes back too.
 *   undecodable  deadletter.lua: the payload goes to P:dead with the
 *                reason, and its task, when the id could be read, fails.
 *
 * Exactly once: recover.lua starts with LREM of the envelope, so when two
 * brokers race over one list each envelope is moved by one of them; the
 * other gets 'gone'.
 *
 * A recovered task whose cancel flag is set was asked to stop while its
 * worker died; recover.lua ends it cancelled in the same atomic step, so
 * no worker can claim it in between.
 *
 * The worker's P:workers entry is what points the broker at the list, so it
 * is removed only once the list is empty, and only if the worker is still
 * silent: WATCH on the processing list and the worker record (which every
 * heartbeat rewrites) makes that check and the removal one atomic step.
 * A worker that was only paused and comes back keeps its entry; its late
 * results are fenced off by finish.lua.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "defaults.h"
#include "envelope.h"
#include "log.h"
#include "calls.h"
#include "scripts.h"

/* What the broker learnt about one envelope while building the batch. */
typedef struct item {
  bool decoded;      /* recover.lua queued; else deadletter */
  char id[RTQ_NAME_MAX + 1];
} item;

typedef struct tally {
  uint64_t requeued, failed, dropped, gone, dead, cancelled, errors;
} tally;

static int queue_recover(rtq_broker *b, rtq__batch *bt, const rtq_envelope *e, const char *env,
                         size_t len, const char *wid) {
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return RTQ_ENOMEM;
  return rtq__call_recover(a, &b->keys, false, wid, e->id, e->queue, env, len,
                           b->o.max_deliveries, b->o.config.task_result_ttl,
                           b->o.config.enable_task_history);
}

/* Queues the step for one envelope of a dead worker's list. */
static int queue_envelope(rtq_broker *b, rtq__batch *bt, const redisReply *env, rtq_key proc,
                          const char *wid, item *it) {
  rtq_envelope e;
  char why[160];
  rtq_envelope_init(&e);
  int err = env->type == REDIS_REPLY_STRING
                ? rtq_envelope_decode(env->str, env->len, (size_t)b->o.max_payload, &e, why, sizeof why)
                : RTQ_EDECODE;
  int rc;
  snprintf(it->id, sizeof it->id, "%s", e.id);
  if (err == 0) {
    it->decoded = true;
    rc = queue_recover(b, bt, &e, env->str, env->len, wid);
  } else {
    it->decoded = false;
    rtq_log(RTQ_LOG_WARNING, "dead worker's envelope does not decode; dead-lettering it", "worker",
            wid, "task", e.id[0] ? e.id : NULL, "error", why, NULL);
    rc = rtq__queue_deadletter(b, bt, env->str, env->len, proc, rtq__decode_code(err), why, wid,
                               RTQ_BROKER_UNKNOWN_QUEUE, e.id);
  }
  rtq_envelope_destroy(&e);
  return rc;
}

/* Reads the replies of a recovery batch into the tally. */
static void read_replies(rtq_broker *b, const item *items, int n, tally *t, const char *wid) {
  rtq__batch *bt = &b->batch;
  for (int i = 0; i < n; i++) {
    const redisReply *r = bt->replies[i];
    if (!items[i].decoded) {
      if (bt->rcs[i] == 0) t->dead++;
      else t->errors++;
    } else if (bt->rcs[i] != 0) {
      t->errors++;
      rtq_log(RTQ_LOG_ERROR, "recover step failed", "worker", wid, "task", items[i].id, "error",
              r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "no reply", NULL);
    } else if (rtq__reply_tag_is(r, "requeued")) {
      t->requeued++;
    } else if (rtq__reply_tag_is(r, "cancelled")) {
      t->cancelled++;
    } else if (rtq__reply_tag_is(r, "failed")) {
      t->failed++;
    } else if (rtq__reply_tag_is(r, "missing")) {
      t->dead++;
    } else if (rtq__reply_tag_is(r, "gone")) {
      t->gone++;
    } else {
      t->dropped++;
    }
  }
}

/*
 * Removes a dead worker's P:workers entry and record once its processing
 * list is empty, in one optimistic transaction:
 *   1. WATCH the list and the record; a claim or a heartbeat in between
 *      touches one of them and makes EXEC abort;
 *   2. the list must be empty and the worker still dead: its score at or
 *      below cutoff or above ceiling, or its record gone;
 *   3. MULTI ZREM + DEL EXEC. An abort is not an error: the next sweep
 *      looks again.
 */
static int reap(rtq_broker *b, const char *wid, rtq_key proc, const rtq__dead_range *d) {
  rtq__batch *bt = &b->batch;
  rtq_key rec = rtq_keys_worker(&b->keys, wid);
  rtq__batch_clear(bt);
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "WATCH");
  rtq__argv_add_key(a, proc);
  rtq__argv_add_key(a, rec);
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "LLEN");
  rtq__argv_add_key(a, proc);
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "ZSCORE");
  rtq__argv_add_key(a, b->k.workers);
  rtq_argv_add_str(a, wid);
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "EXISTS");
  rtq__argv_add_key(a, rec);
  int rc = rtq__batch_run(b->conn, bt);
  if (rc != 0) return rc;
  bool no_record = bt->rcs[3] == 0 && rtq__reply_int(bt->replies[3], -1) == 0;
  bool dead = bt->rcs[1] == 0 && rtq__reply_int(bt->replies[1], -1) == 0 && bt->rcs[2] == 0 &&
              rtq__broker_still_dead(bt->replies[2], no_record, d);
  rtq__batch_clear(bt);
  if (!dead) {
    if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "UNWATCH");
    return rtq__batch_run(b->conn, bt);
  }
  const char *steps[4] = {"MULTI", "ZREM", "DEL", "EXEC"};
  for (int i = 0; i < 4; i++) {
    if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, steps[i]);
    if (i == 1) {
      rtq__argv_add_key(a, b->k.workers);
      rtq_argv_add_str(a, wid);
    } else if (i == 2) {
      rtq__argv_add_key(a, rec);
    }
  }
  if ((rc = rtq__batch_run(b->conn, bt)) != 0) return rc;
  const redisReply *ex = bt->replies[3];
  /* EXEC's first reply is ZREM's: 0 when a racing broker removed it first. */
  if (bt->rcs[3] == 0 && rtq__reply_elem_int(ex, 0, 0) == 1) {
    RTQ__COUNT(b, dead_workers, 1);
    rtq_log(RTQ_LOG_INFO, "removed dead worker", "worker", wid, NULL);
  } else if (ex == NULL || ex->type != REDIS_REPLY_ARRAY) {
    rtq_log(RTQ_LOG_DEBUG, "dead worker changed while being removed; retrying next sweep",
            "worker", wid, NULL);
  }
  return 0;
}

static void log_tally(const char *wid, const tally *t, int n) {
  char s[7][24];
  rtq_log(t->errors ? RTQ_LOG_WARNING : RTQ_LOG_INFO, "recovered tasks of a dead worker", "worker",
          wid, "envelopes", rtq__u64s((uint64_t)n, s[0]), "requeued", rtq__u64s(t->requeued, s[1]),
          "worker_lost", rtq__u64s(t->failed, s[2]), "dropped", rtq__u64s(t->dropped, s[3]),
          "dead_lettered", rtq__u64s(t->dead, s[4]), "cancelled", rtq__u64s(t->cancelled, s[5]),
          "taken_by_other_broker", rtq__u64s(t->gone, s[6]), NULL);
}

/*
 * One page of a dead worker's list (its newest `want` envelopes), through
 * recover.lua or deadletter.lua. Every step removes its envelope from the
 * list, so the next page starts at the head again. Sets *got to the page's
 * length (0: the list is empty).
 */
static int recover_page(rtq_broker *b, const char *wid, rtq_key proc, int want, tally *t, int *got) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LRANGE");
  rtq__argv_add_key(&a, proc);
  rtq_argv_add_i64(&a, 0);
  rtq_argv_add_i64(&a, want - 1);
  redisReply *list = NULL;
  int rc = rtq_conn_command(b->conn, &a, &list);
  rtq_argv_destroy(&a);
  *got = 0;
  if (rc != 0) {
    if (list != NULL) freeReplyObject(list);
    return rc;
  }
  int n = list->type == REDIS_REPLY_ARRAY ? (int)list->elements : 0;
  item *items = n > 0 ? calloc((size_t)n, sizeof *items) : NULL;
  if (n > 0 && items == NULL) rc = RTQ_ENOMEM;
  rtq__batch_clear(&b->batch);
  for (int i = 0; i < n && rc == 0; i++)
    rc = queue_envelope(b, &b->batch, list->element[i], proc, wid, &items[i]);
  if (rc == 0 && n > 0) rc = rtq__batch_run(b->conn, &b->batch);
  if (rc == 0 && n > 0) read_replies(b, items, n, t, wid);
  free(items);
  freeReplyObject(list);
  *got = n;
  return rc;
}

/* Recovers up to *budget envelopes of one dead worker, a page at a time
 * (pages bound the memory a list of large envelopes can take), then tries
 * to remove the worker once its list is drained. */
static int recover_worker(rtq_broker *b, const char *wid, const rtq__dead_range *d, int *budget) {
  rtq_key proc = rtq_keys_processing(&b->keys, wid);
  tally t = {0};
  int seen = 0, rc = 0;
  bool drained = false;
  while (*budget > 0 && !drained) {
    int want = *budget < RTQ_BROKER_RECOVER_PAGE ? *budget : RTQ_BROKER_RECOVER_PAGE;
    int got = 0;
    rc = recover_page(b, wid, proc, want, &t, &got);
    if (rc != 0) break;
    *budget -= got;
    seen += got;
    drained = got < want;
  }
  RTQ__COUNT(b, recovered, t.requeued);
  RTQ__COUNT(b, worker_lost, t.failed);
  RTQ__COUNT(b, recover_dropped, t.dropped);
  RTQ__COUNT(b, dead_lettered, t.dead);
  RTQ__COUNT(b, cancelled_on_recovery, t.cancelled);
  if (rc == RTQ_EREDIS) { /* not a list: someone wrote that key by hand */
    rtq_log(RTQ_LOG_ERROR, "dead worker's processing key is not a list; skipping it", "worker",
            wid, "error", rtq_conn_errstr(b->conn), NULL);
    return 0;
  }
  if (rc != 0) return rc;
  if ((uint64_t)seen > t.gone) log_tally(wid, &t, seen);
  return drained ? reap(b, wid, proc, d) : 0;
}

static int workers_key(const rtq_broker *b, rtq_argv *a) { return rtq__argv_add_key(a, b->k.workers); }

static int record_key(const rtq_broker *b, rtq_argv *a, const char *wid) {
  return rtq__argv_add_key(a, rtq_keys_worker(&b->keys, wid));
}

int rtq__broker_recover_dead(rtq_broker *b) {
  if (b->protocol == 2) return rtq__broker_recover2(b);
  static const rtq__dead_ops ops = {workers_key, record_key, recover_worker};
  return rtq__broker_each_dead(b, &ops);
}
