/*
 * recover2.c - protocol 2: redelivery from dead workers (recover.lua).
 *
 * A worker is dead when its {ns}:workers score (its last heartbeat, Redis
 * time) is at least heartbeat_ttl old, lies more than 1 s in the future
 * (no heartbeat puts it there), or its record {ns}:worker:<wid> is missing
 * (PROTOCOL.md section 6; dead.c finds them). Its processing lists {ns:Q}:p:<wid>, of the
 * queues its record names, else of every queue of {ns}:queues, hold the
 * ids it took and did not finish. recover.lua takes them a step of
 * entries a call (step.h: 20 at first, then 5 to 50, fitted to what the
 * calls cost), each gated by LREM, so racing brokers recover each once:
 * back to the
 * front of the queue, or ended cancelled (cancel asked), timeout (past
 * deadline + grace) or failed WORKER_LOST (delivered max_deliveries
 * times); an entry that is no id or has no task is dead-lettered.
 *
 * The first page of every list is read in one pipeline, so a worker
 * without a record costs one round trip over all queues, not one each.
 * RTQ_BROKER_RECOVER_PER_SWEEP entries at most per sweep; the rest wait.
 *
 * When every list is empty the worker's entry and record go, in a
 * MULTI/EXEC under WATCH of the record (every heartbeat writes it), and
 * only if it is still dead: a worker that was only paused keeps its
 * entry. One that resumes between the check of its lists and the removal
 * writes its entry back at its next heartbeat (its lists are not watched:
 * on a cluster they are on other nodes).
 */
#include "internal2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* recover.lua and deadletter.lua refuse entries larger than this. */
#define MAX_ENTRY 1048576

typedef struct tally {
  uint64_t requeued, lost, cancelled, timeout, dropped, dead, gone, errors;
} tally;

static void count_entry(tally *t, const rtq__recover2_entry *e) {
  switch (e->kind) {
    case RTQ__RECOVER2_GONE: t->gone++; break;
    case RTQ__RECOVER2_REQUEUED: t->requeued++; break;
    case RTQ__RECOVER2_DROPPED: t->dropped++; break;
    case RTQ__RECOVER2_DEAD: t->dead++; break;
    case RTQ__RECOVER2_ENDED:
      if (strcmp(e->status, "cancelled") == 0) t->cancelled++;
      else if (strcmp(e->status, "timeout") == 0) t->timeout++;
      else t->lost++;
      break;
  }
}

/* LREM of an entry too large for any script: logged, then gone. */
static int drop_huge(rtq_broker *b, rtq_key2 proc, const redisReply *e, const char *wid) {
  rtq_log(RTQ_LOG_WARNING, "removed an entry over 1 MiB from a dead worker's list", "worker", wid,
          "list", proc.s, NULL);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LREM");
  rtq__argv_add_key2(&a, proc);
  rtq_argv_add_i64(&a, 1);
  rtq_argv_add(&a, e->str, e->len);
  int rc = rtq_conn_command(b->conn, &a, NULL);
  rtq_argv_destroy(&a);
  return rc == RTQ_EREDIS ? 0 : rc;
}

/* One recover call over a page (an LRANGE reply) of wid's list of queue. */
static int recover_page(rtq_broker *b, const char *wid, const char *queue, const redisReply *page,
                        tally *t) {
  rtq__bytes2 entries[RTQ_BROKER2_RECOVER_PER_CALL];
  int n = 0, rc = 0;
  rtq_key2 proc = rtq_keys2_processing(&b->keys2, queue, wid);
  for (size_t i = 0; i < page->elements && n < RTQ_BROKER2_RECOVER_PER_CALL && rc == 0; i++) {
    const redisReply *e = page->element[i];
    if (e->type != REDIS_REPLY_STRING) continue;
    if (e->len > MAX_ENTRY) rc = drop_huge(b, proc, e, wid);
    else entries[n++] = (rtq__bytes2){e->str, e->len};
  }
  if (rc != 0 || n == 0) return rc;
  rtq__keep2 keep = rtq__broker2_keep(b);
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = NULL;
  rc = rtq__call2_recover(&a, &b->keys2, false, queue, wid, (uint64_t)b->o.max_deliveries,
                          (uint64_t)b->o.timeout_grace_ms, &keep, entries, n);
  if (rc == 0)
    rc = rtq__broker2_sign_recover(b, &a, queue, wid, (const redisReply *const *)page->element, page->elements);
  uint64_t sent = rtq__mono_ns();
  if (rc == 0) rc = rtq_script2_run(b->conn, &a, &r);
  if (rc == 0) rtq__step_update(&b->v2->rc_step, n, (rtq__mono_ns() - sent) / 1000);
  rtq_argv_destroy(&a);
  rtq__recover2_entry out[RTQ_BROKER2_RECOVER_PER_CALL];
  int got = 0;
  if (rc == 0 && rtq__reply2_recover(r, out, RTQ_BROKER2_RECOVER_PER_CALL, &got) != 0) rc = RTQ_EREDIS;
  if (rc == RTQ_EREDIS) {
    t->errors++;
    rtq_log(RTQ_LOG_ERROR, "recover step failed", "worker", wid, "queue", queue, "error",
            rtq__broker2_why(b, r), NULL);
  }
  for (int i = 0; rc == 0 && i < got; i++) count_entry(t, &out[i]);
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* LRANGE p 0 <step - 1> of each queue, pipelined, on bt; *asked the step. */
static int first_pages(rtq_broker *b, rtq__batch *bt, const char *wid, char **queues, size_t nq,
                       int *asked) {
  rtq__batch_clear(bt);
  *asked = b->v2->rc_step.n;
  for (size_t i = 0; i < nq; i++) {
    rtq_argv *a = rtq__batch_add(bt);
    if (a == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "LRANGE");
    rtq__argv_add_key2(a, rtq_keys2_processing(&b->keys2, queues[i], wid));
    rtq_argv_add_i64(a, 0);
    rtq_argv_add_i64(a, *asked - 1);
  }
  return nq > 0 ? rtq__batch_run(b->conn, bt) : 0;
}

/* Drains wid's list of queue starting with the page already read, within
 * budget; *empty when the list was seen empty. */
static int drain(rtq_broker *b, const char *wid, const char *queue, redisReply *page, int asked,
                 int *budget, tally *t, bool *empty) {
  int rc = 0;
  *empty = false;
  while (rc == 0) {
    if (page->type != REDIS_REPLY_ARRAY) {
      t->errors++;
      break;
    }
    if (page->elements == 0) {
      *empty = true;
      break;
    }
    if (*budget <= 0) break;
    *budget -= (int)page->elements;
    uint64_t errors = t->errors;
    rc = recover_page(b, wid, queue, page, t);
    if (rc != 0 || t->errors != errors) break;
    if (page != NULL && page->elements < (size_t)asked) {
      *empty = true; /* reap() checks again */
      break;
    }
    if (page != NULL) freeReplyObject(page);
    page = NULL;
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "LRANGE");
    rtq__argv_add_key2(&a, rtq_keys2_processing(&b->keys2, queue, wid));
    asked = b->v2->rc_step.n;
    rtq_argv_add_i64(&a, 0);
    rtq_argv_add_i64(&a, asked - 1);
    rc = rtq_conn_command(b->conn, &a, &page);
    rtq_argv_destroy(&a);
  }
  if (page != NULL) freeReplyObject(page);
  return rc == RTQ_EREDIS ? 0 : rc;
}

/* Removes wid's entry and record when its lists are empty and it is still
 * dead (see the top of the file). */
static int reap(rtq_broker *b, const char *wid, char **queues, size_t nq, const rtq__dead_range *d) {
  rtq__batch *bt = &b->batch;
  rtq_key2 rec = rtq_keys2_worker(&b->keys2, wid), workers = rtq_keys2_workers(&b->keys2);
  /* The lists first (on a cluster they live on other nodes), then the
   * transaction on the {ns} keys alone. */
  rtq__batch_clear(bt);
  rtq_argv *a;
  for (size_t i = 0; i < nq; i++) {
    if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "LLEN");
    rtq__argv_add_key2(a, rtq_keys2_processing(&b->keys2, queues[i], wid));
  }
  int rc = nq > 0 ? rtq__batch_run(b->conn, bt) : 0;
  bool empty = rc == 0;
  for (size_t i = 0; empty && i < nq; i++)
    empty = bt->rcs[i] == 0 && rtq__reply_int(bt->replies[i], -1) == 0;
  rtq__batch_clear(bt);
  if (!empty) return rc;
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "WATCH");
  rtq__argv_add_key2(a, rec);
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "ZSCORE");
  rtq__argv_add_key2(a, workers);
  rtq_argv_add_str(a, wid);
  if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, "EXISTS");
  rtq__argv_add_key2(a, rec);
  if ((rc = rtq__batch_run(b->conn, bt)) != 0) return rc;
  bool no_record = bt->rcs[2] == 0 && rtq__reply_int(bt->replies[2], -1) == 0;
  bool dead = bt->rcs[1] == 0 && rtq__broker_still_dead(bt->replies[1], no_record, d);
  rtq__batch_clear(bt);
  const char *steps[4] = {"MULTI", "ZREM", "DEL", "EXEC"};
  int nsteps = dead ? 4 : 1;
  for (int i = 0; i < nsteps; i++) {
    if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, dead ? steps[i] : "UNWATCH");
    if (dead && i == 1) {
      rtq__argv_add_key2(a, workers);
      rtq_argv_add_str(a, wid);
    } else if (dead && i == 2) {
      rtq__argv_add_key2(a, rec);
    }
  }
  if ((rc = rtq__batch_run(b->conn, bt)) != 0 || !dead) return rc;
  /* EXEC's first reply is ZREM's: 0 when a racing broker removed it first. */
  if (bt->rcs[3] == 0 && rtq__reply_elem_int(bt->replies[3], 0, 0) == 1) {
    RTQ__COUNT(b, dead_workers, 1);
    rtq_log(RTQ_LOG_INFO, "removed dead worker", "worker", wid, NULL);
  }
  return 0;
}

static void log_tally(const char *wid, const tally *t) {
  char s[8][24];
  rtq_log(t->errors ? RTQ_LOG_WARNING : RTQ_LOG_INFO, "recovered tasks of a dead worker", "worker",
          wid, "requeued", rtq__u64s(t->requeued, s[0]), "worker_lost", rtq__u64s(t->lost, s[1]),
          "cancelled", rtq__u64s(t->cancelled, s[2]), "timeout", rtq__u64s(t->timeout, s[3]),
          "dropped", rtq__u64s(t->dropped, s[4]), "dead_lettered", rtq__u64s(t->dead, s[5]),
          "taken_by_other_broker", rtq__u64s(t->gone, s[6]), NULL);
}

/* Drains the first pages of wid's lists of queues (bt, as first_pages
 * left it, asked entries each) within budget; *all_empty when every list
 * was seen empty. */
static int drain_pages(rtq_broker *b, rtq__batch *bt, const char *wid, char **queues, size_t nq,
                       int asked, int *budget, tally *t, bool *all_empty) {
  int rc = 0;
  *all_empty = true;
  for (size_t i = 0; rc == 0 && i < nq; i++) {
    redisReply *page = bt->replies[i];
    bt->replies[i] = NULL; /* drain() frees it */
    bool empty = false;
    if (bt->rcs[i] != 0 || page == NULL) {
      rtq_log(RTQ_LOG_ERROR, "dead worker's processing key is not a list; skipping it", "worker",
              wid, "queue", queues[i], NULL);
      if (page != NULL) freeReplyObject(page);
    } else {
      rc = drain(b, wid, queues[i], page, asked, budget, t, &empty);
    }
    *all_empty = *all_empty && empty;
  }
  rtq__batch_clear(bt);
  return rc;
}

/* Adds a worker's tally to the counters, and logs it when anything moved.
 * Returns the entries the recover calls took off its lists. */
static uint64_t count_tally(rtq_broker *b, const char *wid, const tally *t) {
  RTQ__COUNT(b, recovered, t->requeued);
  RTQ__COUNT(b, worker_lost, t->lost);
  RTQ__COUNT(b, cancelled_on_recovery, t->cancelled);
  RTQ__COUNT(b, timeouts, t->timeout);
  RTQ__COUNT(b, recover_dropped, t->dropped);
  RTQ__COUNT(b, dead_lettered, t->dead);
  uint64_t moved = t->requeued + t->lost + t->cancelled + t->timeout + t->dropped + t->dead;
  if (moved + t->errors > 0) log_tally(wid, t);
  return moved;
}

/* Recovers every list of one dead worker within budget, then reaps it. */
static int recover_worker(rtq_broker *b, const char *wid, const rtq__dead_range *d, int *budget) {
  char **queues = NULL;
  size_t nq = 0;
  bool owned = false;
  int rc = rtq__broker2_worker_queues(b, wid, &queues, &nq, &owned);
  if (rc != 0) return rc;
  rtq__batch *bt = &b->batch2;
  int asked = 0;
  rc = first_pages(b, bt, wid, queues, nq, &asked);
  tally t = {0};
  bool all_empty = false;
  if (rc == 0) rc = drain_pages(b, bt, wid, queues, nq, asked, budget, &t, &all_empty);
  rtq__batch_clear(bt);
  count_tally(b, wid, &t);
  if (rc == 0 && all_empty) rc = reap(b, wid, queues, nq, d);
  if (owned) rtq__broker2_names_free(queues, nq);
  return rc;
}

int rtq__broker2_recover_list(rtq_broker *b, const char *wid, const char *queue, int *budget,
                              bool *empty, uint64_t *moved, bool *failed) {
  char *queues[1] = {(char *)queue};
  rtq__batch *bt = &b->batch2;
  int asked = 0;
  int rc = first_pages(b, bt, wid, queues, 1, &asked);
  tally t = {0};
  *empty = false;
  if (rc == 0) rc = drain_pages(b, bt, wid, queues, 1, asked, budget, &t, empty);
  rtq__batch_clear(bt);
  *moved = count_tally(b, wid, &t);
  *failed = rc != 0 || t.errors > 0;
  return rc;
}

static int workers_key(const rtq_broker *b, rtq_argv *a) {
  return rtq__argv_add_key2(a, rtq_keys2_workers(&b->keys2));
}

static int record_key(const rtq_broker *b, rtq_argv *a, const char *wid) {
  return rtq__argv_add_key2(a, rtq_keys2_worker(&b->keys2, wid));
}

int rtq__broker_recover2(rtq_broker *b) {
  int rc = rtq__broker2_queues(b);
  if (rc != 0) return rc;
  static const rtq__dead_ops ops = {workers_key, record_key, recover_worker};
  return rtq__broker_each_dead(b, &ops);
}
