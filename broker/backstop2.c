/*
 * backstop2.c - protocol 2: the timeout backstop (backstop.lua).
 *
 * A worker enforces its own timeouts. The broker steps in for a run its
 * live worker could not stop: one past its deadline plus timeout_grace
 * (Redis time). Protocol 2 keeps no deadline index (a deadline is a field
 * of the task hash), so the broker walks the live workers' processing
 * lists: a pass over {ns}:workers (ZSCAN, which returns every member
 * present for the whole pass however scores move), and for each live
 * worker its lists of the queues its record names, a step of entries per
 * call. backstop.lua ends `timeout` each overdue run of that worker and takes it
 * out of the list; the broker then publishes the id on {ns}:cancel so the
 * worker stops the handler, as a cancel would.
 *
 * A pass starts at most every RTQ_BROKER2_BACKSTOP_EVERY_MS and spends at
 * most RTQ_BROKER2_BACKSTOP_CALLS_PER_SWEEP calls a sweep, resuming at the
 * worker, queue and offset it stopped at. A call's entries follow what
 * the calls cost (step.h): 20 at first, 5 to 50. Dead workers are left to
 * recover2.c, which ends their overdue runs the same way.
 *
 * An idle worker's lists are empty, and a backstop call would cost Redis a
 * script run to read nothing; so the walk first reads the lengths of the
 * worker's lists (LLEN, one pipeline) and calls the script only on a list
 * that holds entries past the offset it resumes at.
 */
#include "internal2.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* The cancel message for each ended run; a lost one only costs the
 * worker's own timeout check. */
static int tell_workers(rtq_broker *b, const char *queue, const rtq__backstop2_result *res) {
  rtq__batch *bt = &b->batch2;
  rtq__batch_clear(bt);
  for (size_t i = 0; i < res->nended; i++) {
    const redisReply *id = res->ended[i];
    rtq_log(RTQ_LOG_WARNING, "task past its deadline and its worker did not stop it: timeout",
            "task", id->str, "queue", queue, NULL);
    rtq_argv *a = rtq__batch_add(bt);
    if (a == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "PUBLISH");
    rtq__argv_add_key2(a, rtq_keys2_chan_cancel(&b->keys2));
    rtq_argv_add(a, id->str, id->len);
  }
  int rc = bt->n > 0 ? rtq__batch_run(b->conn, bt) : 0;
  rtq__batch_clear(bt);
  return rc;
}

/* len[k] for queues[from + k]: LLEN, or LLONG_MAX when the reply is not a
 * length (a key of another type: the backstop call reports it). */
static int list_lengths(rtq_broker *b, const char *wid, char **queues, size_t from, size_t nq,
                        long long *len) {
  rtq__batch *bt = &b->batch2;
  rtq__batch_clear(bt);
  for (size_t q = from; q < nq; q++) {
    rtq_argv *a = rtq__batch_add(bt);
    if (a == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "LLEN");
    rtq__argv_add_key2(a, rtq_keys2_processing(&b->keys2, queues[q], wid));
  }
  int rc = rtq__batch_run(b->conn, bt);
  for (size_t q = from; rc == 0 && q < nq; q++) {
    const redisReply *r = bt->replies[q - from];
    len[q - from] = bt->rcs[q - from] == 0 && r != NULL && r->type == REDIS_REPLY_INTEGER
                        ? r->integer
                        : LLONG_MAX;
  }
  rtq__batch_clear(bt);
  return rc;
}

/* Walks wid's lists from the saved queue and offset while calls last.
 * *done when every list of the worker was read to its end. */
static int walk_worker(rtq_broker *b, const char *wid, int *calls, bool *done) {
  rtq__broker2 *s = b->v2;
  char **queues = NULL;
  size_t nq = 0;
  bool owned = false;
  int rc = rtq__broker2_worker_queues(b, wid, &queues, &nq, &owned);
  rtq__keep2 keep = rtq__broker2_keep(b);
  *done = false;
  size_t from = s->bs_queue;
  long long *len = NULL;
  if (rc == 0 && from < nq) {
    len = malloc((nq - from) * sizeof *len);
    rc = len == NULL ? RTQ_ENOMEM : list_lengths(b, wid, queues, from, nq, len);
  }
  while (rc == 0 && s->bs_queue < nq && *calls > 0) {
    const char *queue = queues[s->bs_queue];
    if (len[s->bs_queue - from] <= s->bs_offset) {
      s->bs_queue++; /* nothing past the offset: no call */
      s->bs_offset = 0;
      continue;
    }
    rtq_argv a;
    rtq_argv_init(&a);
    redisReply *r = NULL;
    int n = s->bs_step.n;
    rc = rtq__call2_backstop(&a, &b->keys2, false, queue, wid, (uint64_t)b->o.timeout_grace_ms,
                             &keep, s->bs_offset, n);
    if (rc == 0) rc = rtq__broker2_sign_backstop(b, &a, queue, wid, s->bs_offset, n);
    uint64_t sent = rtq__mono_ns();
    if (rc == 0) rc = rtq_script2_run(b->conn, &a, &r);
    uint64_t took_us = (rtq__mono_ns() - sent) / 1000;
    rtq_argv_destroy(&a);
    (*calls)--;
    rtq__backstop2_result res;
    if (rc == 0 && rtq__reply2_backstop(r, &res) != 0) rc = RTQ_EREDIS;
    if (rc == 0) rtq__step_update(&s->bs_step, (int)res.read, took_us);
    if (rc == RTQ_EREDIS) {
      /* A key of another type: this list is skipped, the pass goes on. */
      rtq_log(RTQ_LOG_ERROR, "timeout backstop step failed", "worker", wid, "queue", queue,
              "error", rtq__broker2_why(b, r), NULL);
      res.read = 0;
      res.nended = 0;
      rc = 0;
    } else if (rc == 0) {
      RTQ__COUNT(b, timeouts, res.nended);
      rc = tell_workers(b, queue, &res);
    }
    if (rc == 0 && res.read < n) {
      s->bs_queue++;
      s->bs_offset = 0;
    } else if (rc == 0) {
      s->bs_offset += res.read - (int64_t)res.nended;
    }
    if (r != NULL) freeReplyObject(r);
  }
  *done = rc == 0 && s->bs_queue >= nq;
  free(len);
  if (owned) rtq__broker2_names_free(queues, nq);
  return rc;
}

/* One ZSCAN page of {ns}:workers at the pass's cursor. */
static int scan_page(rtq_broker *b, redisReply **out) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ZSCAN");
  rtq__argv_add_key2(&a, rtq_keys2_workers(&b->keys2));
  rtq_argv_add_str(&a, b->v2->bs_cursor);
  rtq_argv_add_str(&a, "COUNT");
  rtq_argv_add_i64(&a, RTQ_BROKER_DEAD_WORKERS_PER_SWEEP);
  int rc = rtq_conn_command(b->conn, &a, out);
  rtq_argv_destroy(&a);
  const redisReply *r = *out;
  if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                  r->element[0]->type != REDIS_REPLY_STRING ||
                  r->element[1]->type != REDIS_REPLY_ARRAY || r->element[1]->elements % 2 != 0))
    rc = RTQ_EREDIS;
  return rc;
}

static void start_worker(rtq__broker2 *s, const char *wid) {
  if (strcmp(s->bs_worker, wid) == 0) return; /* resuming it */
  snprintf(s->bs_worker, sizeof s->bs_worker, "%s", wid);
  s->bs_queue = 0;
  s->bs_offset = 0;
}

int rtq__broker_backstop2(rtq_broker *b) {
  rtq__broker2 *s = b->v2;
  if (!s->bs_active) {
    if (s->bs_pass_at != 0 && b->now < s->bs_pass_at + RTQ_BROKER2_BACKSTOP_EVERY_MS) return 0;
    s->bs_active = true;
    s->bs_pass_at = b->now;
    snprintf(s->bs_cursor, sizeof s->bs_cursor, "0");
    s->bs_index = 0;
    s->bs_worker[0] = '\0';
  }
  int rc = rtq__broker2_queues(b);
  if (rc != 0) return rc;
  uint64_t ttl = (uint64_t)b->o.heartbeat_ttl_ms;
  double cutoff = b->now > ttl ? (double)(b->now - ttl) : 0, ceiling = (double)b->now + 1000;
  int calls = RTQ_BROKER2_BACKSTOP_CALLS_PER_SWEEP;
  /* Each page is bounded; so is the number of pages a sweep reads. */
  for (int pages = 0; rc == 0 && calls > 0 && pages < 100; pages++) {
    redisReply *r = NULL;
    rc = scan_page(b, &r);
    const redisReply *page = rc == 0 ? r->element[1] : NULL;
    bool paused = false;
    for (size_t i = 2 * s->bs_index; rc == 0 && i + 1 < page->elements && !paused; i += 2) {
      const redisReply *w = page->element[i], *sc = page->element[i + 1];
      double score = sc->type == REDIS_REPLY_STRING ? strtod(sc->str, NULL) : 0;
      bool live = score > cutoff && score <= ceiling;
      if (w->type != REDIS_REPLY_STRING || memchr(w->str, '\0', w->len) != NULL ||
          rtq_validate_name(w->str) != 0 || !live)
        continue;
      start_worker(s, w->str);
      bool done = false;
      rc = walk_worker(b, w->str, &calls, &done);
      if (rc == 0 && !done) {
        s->bs_index = i / 2; /* out of calls: resume at this worker */
        paused = true;
      }
    }
    if (rc == 0 && !paused) {
      const char *next = r->element[0]->str;
      snprintf(s->bs_cursor, sizeof s->bs_cursor, "%s", next);
      s->bs_index = 0;
      if (strcmp(next, "0") == 0) s->bs_active = false; /* the pass is over */
    }
    if (r != NULL) freeReplyObject(r);
    if (!s->bs_active || paused) break;
  }
  /* A pass that failed starts again at its next time. */
  if (rc != 0) s->bs_active = false;
  return rc;
}
