/*
 * claim.c - taking envelopes off the queues and marking them running.
 *
 * Rounds. One round at a time is in flight: up to k moves (k = free
 * slots, at most claim_batch and RTQ__BATCH_MAX) planned by queues.c. A
 * slot is reserved from the moment its move is sent, so the worker never
 * holds more envelopes than slots. A round is one of two kinds:
 *   take   Whenever the plan does not block: with one queue, while the
 *          last round found work and drained nothing; with several, every
 *          round that has an eligible queue, probes included. One take.lua
 *          call on the cmd connection makes the k moves and claims every
 *          pending task it can identify, in one round trip that rides in
 *          the same pipeline as the finish calls. Envelopes it hands back
 *          ('raw') are decoded here and go through claim.lua, like popped
 *          ones.
 *   pop    Otherwise the worker waits: a pipeline of BLMOVE and LMOVEs on
 *          the pop connection (a script cannot block). Each envelope that
 *          arrives is decoded at once; a bad one is dead-lettered, a good
 *          one waits for the end of the round. Then one claim.lua call on
 *          the cmd connection claims them all, and its reply has one entry
 *          per envelope.
 *
 * Reconcile. When a round or a claim lost its connection, the move or the
 * claim may have happened without the worker hearing of it, leaving an
 * envelope in its processing list that nothing tracks. Once nothing is in
 * flight, the worker reads the list (LRANGE) and adopts every envelope it
 * does not track:
 *   1. HMGET the task: running under this worker id means the claim ran
 *      and its reply was lost, so the job runs with the hash's attempt;
 *   2. otherwise claim.lua decides as usual (pending: run; ended or taken
 *      elsewhere: dropped; no hash: dead-lettered).
 * The same read, at the end of a shutdown, proves the list empty before
 * the worker record is deleted.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls.h"
#include "defaults.h"
#include "internal.h"
#include "log.h"
#include "scripts.h"

/* The jobs of one claim.lua call, in the order of its reply. */
typedef struct claimset {
  int n;
  rtq__job *jobs[];
} claimset;

struct rtq__round {
  int n, replies;
  bool blocking;
  bool got_any;
  uint64_t sent_at;
  claimset *claims;              /* good envelopes, claimed at the round's end */
  int qidx[];
};

static claimset *claimset_new(int cap) {
  claimset *cs = malloc(sizeof *cs + (size_t)cap * sizeof cs->jobs[0]);
  if (cs != NULL) cs->n = 0;
  return cs;
}

static rtq__job *take_envelope(rtq_worker *w, const char *buf, size_t len, const char *queue,
                               const char *known_id, bool adopt);
static void send_claims(rtq_worker *w, claimset *cs);
static void send_take(rtq_worker *w, rtq__round *round);
static void on_take(rtq_worker *w, redisReply *r, void *pd);
static void claimed_ok(rtq_worker *w, rtq__job *j, long long attempt, long long timeout);
static const char *elem_str(const redisReply *r, size_t i);
static long long elem_int(const redisReply *r, size_t i);
static void send_claim(rtq_worker *w, rtq__job *j);

/* ---- rounds ---- */

/* The last reply of a round is in: claims what is left to claim. */
static void round_end(rtq_worker *w, rtq__round *round, uint64_t now) {
  if (w->round == round) w->round = NULL;
  rtq__queues_round_end(&w->queues, round->got_any, round->blocking ? round->qidx[0] : -1);
  if (round->claims->n > 0 && w->phase != RTQ__DONE) {
    send_claims(w, round->claims);
  } else {
    /* Teardown frees the connections one by one: cmd may be gone. */
    for (int k = 0; k < round->claims->n; k++) rtq__job_free(w, round->claims->jobs[k]);
    free(round->claims);
  }
  free(round);
  if (w->trim_rounds > 0) {
    w->trim_rounds--;
    w->trim_at = now + 50;
  }
}

static void on_pop(rtq_worker *w, redisReply *r, void *pd) {
  rtq__round *round = pd;
  int i = round->replies++;
  int qi = round->qidx[i];
  uint64_t now = rtq__mono_ms();
  w->reserved--;
  if (r == NULL) {
    /* The move may or may not have happened: look at the list later. */
    w->need_reconcile = true;
  } else if (r->type == REDIS_REPLY_STRING) {
    rtq__note_payload(w, r->len);
    round->got_any = true;
    rtq__queues_result(&w->queues, qi, true, now, w->o.poll_ms);
    rtq__job *j = take_envelope(w, r->str, r->len, w->queues.q[qi].name, NULL, false);
    if (j != NULL) round->claims->jobs[round->claims->n++] = j;
  } else {
    if (r->type == REDIS_REPLY_ERROR)
      rtq_log(RTQ_LOG_ERROR, "pop failed", "queue", w->queues.q[qi].name, "error", r->str, NULL);
    rtq__queues_result(&w->queues, qi, false, now, w->o.poll_ms);
  }
  if (round->replies == round->n) round_end(w, round, now);
}

void rtq__claim_pump(rtq_worker *w) {
  if (w->protocol == 2) {
    rtq__claim2_pump(w);
    return;
  }
  if (w->phase != RTQ__RUN || w->round != NULL || !w->hb_ok || !w->paused_known) return;
  if (w->need_reconcile || w->reconcile_in_flight) return;
  if (!rtq__rconn_up(w->pop) || !rtq__rconn_up(w->cmd)) return;
  int k = rtq__free_slots(w);
  if (k <= 0) return;
  if (k > w->o.claim_batch) k = w->o.claim_batch;
  if (k > RTQ__BATCH_MAX) k = RTQ__BATCH_MAX;
  rtq__round *round = malloc(sizeof *round + (size_t)k * sizeof(int));
  if (round == NULL) return;
  round->claims = claimset_new(k);
  if (round->claims == NULL) {
    free(round);
    return;
  }
  round->n = round->replies = 0;
  round->got_any = false;
  round->sent_at = rtq__mono_ms();
  k = rtq__queues_plan(&w->queues, k, round->sent_at, round->qidx, &round->blocking);
  if (k == 0) { /* every queue is paused: nothing to claim until one resumes */
    free(round->claims);
    free(round);
    return;
  }
  /* One queue is always planned blocking; it is taken from while the
   * last round found work and none of its moves came back empty (a queue
   * just drained is waited on at once, without a take that finds nothing
   * in between). */
  bool take = !round->blocking ||
              (w->queues.n == 1 && !w->queues.idle && round->sent_at >= w->queues.q[0].empty_until);
  if (take) {
    round->blocking = false;
    round->n = k;
    w->reserved += k;
    w->round = round;
    send_take(w, round);
    return;
  }
  /* With several queues the wait is cut short after poll_ms by CLIENT
   * UNBLOCK (rtq__claim_tick); the block timeout is only a backstop. */
  int block_ms = w->o.block_timeout_ms;
  char tmo[32];
  snprintf(tmo, sizeof tmo, "%d.%03d", block_ms / 1000, block_ms % 1000);
  for (int i = 0; i < k; i++) {
    bool blocking = round->blocking && i == 0;
    const rtq_key *src = &w->k_queue[round->qidx[i]];
    rtq_argv_reset(&w->argv);
    rtq_argv_add_str(&w->argv, blocking ? "BLMOVE" : "LMOVE");
    rtq_argv_add(&w->argv, src->s, src->len);
    rtq__argv_add_key(&w->argv, w->k_processing);
    rtq_argv_add_str(&w->argv, "RIGHT");
    rtq_argv_add_str(&w->argv, "LEFT");
    if (blocking) rtq_argv_add_str(&w->argv, tmo);
    /* Moves queued behind a BLMOVE wait as long as it does. */
    if (rtq__rconn_send(w->pop, &w->argv, on_pop, round, round->blocking ? block_ms : 0) != 0) break;
    round->n++;
    w->reserved++;
  }
  if (round->n == 0) {
    free(round->claims);
    free(round);
    return;
  }
  w->round = round;
}

/* Shutdown: a BLMOVE may sit in Redis for the whole block timeout; CLIENT
 * UNBLOCK makes it return nil now (an envelope it already moved still
 * arrives and is handed back). */
void rtq__reply_ignore(rtq_worker *w, redisReply *r, void *pd) {
  (void)w;
  (void)r;
  (void)pd;
}

void rtq__claim_unblock(rtq_worker *w) {
  if (w->protocol == 2) {
    rtq__claim2_unblock(w);
    return;
  }
  if (w->round != NULL && w->round->blocking) rtq__unblock_pop(w);
}

void rtq__unblock_pop(rtq_worker *w) {
  long long id = rtq__rconn_client_id(w->pop);
  if (id <= 0 || !rtq__rconn_up(w->cmd)) return;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "CLIENT");
  rtq_argv_add_str(&w->argv, "UNBLOCK");
  rtq_argv_add_i64(&w->argv, id);
  (void)rtq__rconn_send(w->cmd, &w->argv, rtq__reply_ignore, NULL, 0);
}

/* Several queues: a blocking round has watched one queue for poll_ms;
 * end it so the others are probed (repeated each tick until it ends, since
 * an UNBLOCK that overtakes its BLMOVE does nothing). */
void rtq__claim_tick(rtq_worker *w, uint64_t now) {
  if (w->protocol == 2) {
    rtq__claim2_tick(w, now);
    return;
  }
  if (w->queues.n < 2 || w->round == NULL || !w->round->blocking) return;
  if (now < w->round->sent_at + (uint64_t)w->o.poll_ms) return;
  rtq__claim_unblock(w);
}

/* ---- paused queues ---- */

static void on_paused(rtq_worker *w, redisReply *r, void *pd) {
  (void)pd;
  w->paused_in_flight = false;
  if (r != NULL && r->type == REDIS_REPLY_ERROR && !w->paused_known)
    rtq_log(RTQ_LOG_WARNING, "cannot read the paused queues; claiming as if none were paused", "error", r->str,
            NULL);
  /* Claiming waits for the first answer, so a worker that starts while a
   * queue is paused takes nothing from it; an error answer (a user without
   * SMEMBERS) must not stop the worker for good. */
  if (r != NULL) w->paused_known = true;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) return; /* read again next time */
  const char *names[RTQ_WORKER_MAX_QUEUES];
  size_t n = 0;
  /* Only this worker's queues matter; names of other queues are skipped. */
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_STRING) continue;
    for (int q = 0; q < w->queues.n && n < RTQ_WORKER_MAX_QUEUES; q++)
      if (strcmp(w->queues.q[q].name, e->str) == 0) names[n++] = w->queues.q[q].name;
  }
  bool was[RTQ_WORKER_MAX_QUEUES];
  for (int q = 0; q < w->queues.n; q++) was[q] = w->queues.q[q].paused;
  if (rtq__queues_set_paused(&w->queues, names, n) == 0) return;
  for (int q = 0; q < w->queues.n; q++)
    if (was[q] != w->queues.q[q].paused)
      rtq_log(RTQ_LOG_INFO, w->queues.q[q].paused ? "queue paused: not claiming from it" : "queue resumed",
              "queue", w->queues.q[q].name, NULL);
  /* A BLMOVE waiting on a queue that is now paused would still take what
   * arrives there: end the round. */
  if (w->protocol == 2) rtq__claim2_tick(w, rtq__mono_ms());
  else if (w->round != NULL && w->round->blocking && w->queues.q[w->round->qidx[0]].paused) rtq__claim_unblock(w);
}

void rtq__claim_paused_tick(rtq_worker *w, uint64_t now) {
  if (w->paused_in_flight || now < w->next_paused_poll || !rtq__rconn_up(w->cmd)) return;
  w->next_paused_poll = now + RTQ__PAUSED_POLL_MS;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "SMEMBERS");
  rtq__argv_add_key(&w->argv, w->k_paused);
  if (rtq__rconn_send(w->cmd, &w->argv, on_paused, NULL, 0) == 0) w->paused_in_flight = true;
}

void rtq__claim_on_conn_down(rtq_worker *w, rtq__rconn *c) {
  (void)c;
  w->need_reconcile = true;
}

/* ---- one envelope ---- */

static void send_adopt(rtq_worker *w, rtq__job *j);

/* Decodes an envelope and tracks it as a job: NULL when it was
 * dead-lettered (bad bytes, no handler) or could not be tracked. An
 * adopted one gets its HMGET at once; a claimed one is the caller's to
 * send. known_id: the id take.lua read from the envelope (its task may
 * already be running under this worker, and a dead letter must fail it),
 * or NULL. */
static rtq__job *take_envelope(rtq_worker *w, const char *buf, size_t len, const char *queue,
                               const char *known_id, bool adopt) {
  rtq_envelope e;
  char err[512] = "";
  rtq_envelope_init(&e);
  int rc = rtq_envelope_decode(buf, len, w->o.max_payload, &e, err, sizeof err);
  char peek[sizeof e.id];
  const char *id = known_id != NULL ? known_id : e.id[0] != '\0' ? e.id : NULL;
  if (rc != 0 && id == NULL && rtq_envelope_peek_id(buf, len, peek) == 0) id = peek;
  if (queue == NULL) queue = rc == 0 ? e.queue : "unknown";
  if (rc != 0) {
    rtq__deadletter(w, buf, len, rtq__decode_code(rc), err, id, queue);
    rtq_envelope_destroy(&e);
    return NULL;
  }
  if (rtq__handler_find(w, e.name) == NULL) {
    rtq__unknown_task(w, buf, len, e.name, id, queue);
    rtq_envelope_destroy(&e);
    return NULL;
  }
  rtq__job *j = rtq__job_new(w, buf, len, &e);
  if (j == NULL) {
    rtq_envelope_destroy(&e);
    rtq_log(RTQ_LOG_ERROR, "out of memory tracking a claimed envelope; will look again", NULL);
    w->need_reconcile = true;
    return NULL;
  }
  if (adopt) {
    rtq__job_set_state(w, j, RTQ__JOB_ADOPTING);
    send_adopt(w, j);
    return NULL;
  }
  return j;
}

void rtq__claim_envelope(rtq_worker *w, const char *buf, size_t len, const char *queue, bool adopt) {
  rtq__job *j = take_envelope(w, buf, len, queue, NULL, adopt);
  if (j != NULL) send_claim(w, j);
}

/* ---- claim.lua ---- */

static void lost_track(rtq_worker *w, rtq__job *j) {
  rtq__job_free(w, j);
  w->need_reconcile = true;
}

static const char *elem_str(const redisReply *r, size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || i >= r->elements) return NULL;
  const redisReply *e = r->element[i];
  return e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS ? e->str : NULL;
}

static long long elem_int(const redisReply *r, size_t i) {
  if (r->type != REDIS_REPLY_ARRAY || i >= r->elements) return 0;
  const redisReply *e = r->element[i];
  if (e->type == REDIS_REPLY_INTEGER) return e->integer;
  if (e->type == REDIS_REPLY_STRING) return strtoll(e->str, NULL, 10);
  return 0;
}

/* The task of j is running under this worker: start its handler. */
static void claimed_ok(rtq_worker *w, rtq__job *j, long long attempt, long long timeout) {
  j->attempt = attempt > 0 && attempt <= UINT32_MAX ? (uint32_t)attempt : 1;
  j->timeout_ms = timeout > 0 ? (uint64_t)timeout : (uint64_t)w->o.default_timeout_s * 1000u;
  rtq__job_start(w, j);
}

/* One entry of claim.lua's reply, for job j. */
static void claim_result(rtq_worker *w, rtq__job *j, const redisReply *e) {
  const char *kind = elem_str(e, 0);
  if (kind == NULL) {
    rtq_log(RTQ_LOG_ERROR, "unexpected claim reply; will look at the processing list again", "task",
            j->id, NULL);
    w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
    lost_track(w, j);
  } else if (strcmp(kind, "ok") == 0) {
    claimed_ok(w, j, elem_int(e, 1), elem_int(e, 3));
  } else if (strcmp(kind, "skip") == 0) {
    const char *st = elem_str(e, 1);
    rtq_log(RTQ_LOG_INFO, "task not run: no longer pending", "task", j->id, "status", st ? st : "?",
            NULL);
    rtq__job_free(w, j);
  } else if (strcmp(kind, "missing") == 0) {
    rtq__deadletter(w, j->env, j->env_len, RTQ_CODE_NO_TASK_RECORD,
                    "the envelope has no task hash (never created, or expired)", j->id, j->queue);
    rtq__job_free(w, j);
  } else {
    rtq_log(RTQ_LOG_ERROR, "unexpected claim reply", "task", j->id, "reply", kind, NULL);
    lost_track(w, j);
  }
}

static void on_claims(rtq_worker *w, redisReply *r, void *pd) {
  claimset *cs = pd;
  w->claims_in_flight--;
  for (int i = 0; i < cs->n; i++) cs->jobs[i]->in_flight = false;
  if (r != NULL && rtq__noscript(w, r)) {
    send_claims(w, cs);
    return;
  }
  if (r == NULL) {
    for (int i = 0; i < cs->n; i++) lost_track(w, cs->jobs[i]);
  } else if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)cs->n) {
    rtq_log(RTQ_LOG_ERROR, "claim failed; will look at the processing list again", "task",
            cs->jobs[0]->id, "error", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply",
            NULL);
    w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
    for (int i = 0; i < cs->n; i++) lost_track(w, cs->jobs[i]);
  } else {
    for (int i = 0; i < cs->n; i++) claim_result(w, cs->jobs[i], r->element[i]);
  }
  free(cs);
}

/* One claim.lua call for the jobs of cs (1..RTQ__BATCH_MAX); takes cs. */
static void send_claims(rtq_worker *w, claimset *cs) {
  rtq__claim_task t[RTQ__BATCH_MAX];
  for (int i = 0; i < cs->n; i++) {
    rtq__job *j = cs->jobs[i];
    t[i] = (rtq__claim_task){j->id, j->env, j->env_len};
    rtq__job_set_state(w, j, RTQ__JOB_CLAIMING);
    j->claimed_running = w->phase == RTQ__RUN;
  }
  if (rtq__call_claim(&w->argv, &w->keys, w->use_eval, w->id,
                      (uint64_t)w->o.default_timeout_s * 1000u, t, cs->n) != 0 ||
      rtq__rconn_send(w->cmd, &w->argv, on_claims, cs, 0) != 0) {
    for (int i = 0; i < cs->n; i++) lost_track(w, cs->jobs[i]);
    free(cs);
    return;
  }
  for (int i = 0; i < cs->n; i++) cs->jobs[i]->in_flight = true;
  w->claims_in_flight++;
}

/* A claim of one job (adoption). */
static void send_claim(rtq_worker *w, rtq__job *j) {
  claimset *cs = claimset_new(1);
  if (cs == NULL) {
    lost_track(w, j);
    return;
  }
  cs->jobs[cs->n++] = j;
  send_claims(w, cs);
}

/* ---- take.lua ---- */

/* A take stops moving once the envelopes it moved reach this many bytes,
 * so that one reply on the cmd connection stays small enough not to hold
 * up the heartbeats and completions behind it. */
#define TAKE_REPLY_BUDGET (4u * 1024u * 1024u)

static void send_take(rtq_worker *w, rtq__round *round) {
  if (rtq__call_take(&w->argv, &w->keys, w->use_eval, w->id,
                     (uint64_t)w->o.default_timeout_s * 1000u, w->queue_names, w->queues.n,
                     w->o.max_payload, TAKE_REPLY_BUDGET, round->qidx, round->n) != 0 ||
      rtq__rconn_send(w->cmd, &w->argv, on_take, round, 0) != 0) {
    /* Nothing left: the next round tries again. */
    w->reserved -= round->n;
    round->n = 0;
    round_end(w, round, rtq__mono_ms());
  }
}

/* One entry of take.lua's reply, for move i of the round. */
static void take_unexpected(rtq_worker *w, const char *kind) {
  rtq_log(RTQ_LOG_ERROR, "unexpected take reply; will look at the processing list again", "reply",
          kind != NULL ? kind : "?", NULL);
  w->need_reconcile = true;
}

static void take_result(rtq_worker *w, rtq__round *round, int i, const redisReply *e, uint64_t now) {
  int qi = round->qidx[i];
  const char *queue = w->queues.q[qi].name;
  const char *kind = elem_str(e, 0);
  if (kind != NULL && strcmp(kind, "later") == 0) return;
  bool error = kind != NULL && strcmp(kind, "error") == 0;
  if (kind == NULL || error || strcmp(kind, "empty") == 0) {
    if (kind == NULL) take_unexpected(w, NULL);
    if (error) {
      const char *msg = elem_str(e, 1);
      rtq_log(RTQ_LOG_ERROR, "pop failed", "queue", queue, "error", msg ? msg : "?", NULL);
    }
    rtq__queues_result(&w->queues, qi, false, now, w->o.poll_ms);
    return;
  }
  round->got_any = true;
  rtq__queues_result(&w->queues, qi, true, now, w->o.poll_ms);
  const redisReply *env = e->elements > 1 ? e->element[1] : NULL;
  const char *id = elem_str(e, 2);
  bool raw = strcmp(kind, "raw") == 0, missing = strcmp(kind, "missing") == 0;
  bool ok = strcmp(kind, "ok") == 0;
  if (env == NULL || env->type != REDIS_REPLY_STRING || (!raw && (id == NULL || !(ok || missing)))) {
    take_unexpected(w, kind);
    return;
  }
  rtq__note_payload(w, env->len);
  rtq__job *j = take_envelope(w, env->str, env->len, queue, raw ? NULL : id, false);
  if (j == NULL) return;
  if (raw) {
    round->claims->jobs[round->claims->n++] = j;
  } else if (missing) {
    rtq__deadletter(w, j->env, j->env_len, RTQ_CODE_NO_TASK_RECORD,
                    "the envelope has no task hash (never created, or expired)", j->id, j->queue);
    rtq__job_free(w, j);
  } else if (w->phase == RTQ__DONE) {
    /* Teardown: the broker recovers it from the processing list. */
    rtq__job_free(w, j);
  } else {
    j->claimed_running = true; /* takes are sent only while the worker runs */
    claimed_ok(w, j, elem_int(e, 3), elem_int(e, 5));
  }
}

static void on_take(rtq_worker *w, redisReply *r, void *pd) {
  rtq__round *round = pd;
  uint64_t now = rtq__mono_ms();
  bool noscript = r != NULL && rtq__noscript(w, r);
  if (noscript && w->phase == RTQ__RUN) {
    send_take(w, round);
    return;
  }
  w->reserved -= round->n;
  if (noscript) {
    /* Nothing ran, and the worker is stopping: no new claims. */
  } else if (r == NULL) {
    /* The moves may or may not have happened: look at the list later. */
    w->need_reconcile = true;
  } else if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)round->n) {
    rtq_log(RTQ_LOG_ERROR, "take failed; will look at the processing list again", "error",
            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply", NULL);
    w->need_reconcile = true;
    w->reconcile_at = now + RTQ__RETRY_WRITE_MS;
  } else {
    for (int i = 0; i < round->n; i++) take_result(w, round, i, r->element[i], now);
  }
  round->replies = round->n;
  round_end(w, round, now);
}

/* ---- adoption after a lost reply ---- */

static void on_adopt(rtq_worker *w, redisReply *r, void *pd) {
  rtq__job *j = pd;
  w->claims_in_flight--;
  j->in_flight = false;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
    if (r != NULL) w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
    lost_track(w, j);
    return;
  }
  const char *st = elem_str(r, 0), *owner = elem_str(r, 1);
  if (st != NULL && owner != NULL && strcmp(st, "running") == 0 && strcmp(owner, w->id) == 0) {
    long long attempt = elem_int(r, 2), timeout = elem_int(r, 3);
    j->attempt = attempt > 0 && attempt <= UINT32_MAX ? (uint32_t)attempt : 1;
    j->timeout_ms = timeout > 0 ? (uint64_t)timeout : (uint64_t)w->o.default_timeout_s * 1000u;
    rtq_log(RTQ_LOG_INFO, "adopted a task claimed before a connection loss", "task", j->id, NULL);
    rtq__job_start(w, j);
    return;
  }
  send_claim(w, j);
}

static void send_adopt(rtq_worker *w, rtq__job *j) {
  rtq_key task = rtq_keys_task(&w->keys, j->id);
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "HMGET");
  rtq__argv_add_key(&w->argv, task);
  rtq_argv_add_str(&w->argv, "status");
  rtq_argv_add_str(&w->argv, "worker");
  rtq_argv_add_str(&w->argv, "attempt");
  rtq_argv_add_str(&w->argv, "timeout_ms");
  if (rtq__rconn_send(w->cmd, &w->argv, on_adopt, j, 0) != 0) {
    lost_track(w, j);
    return;
  }
  j->in_flight = true;
  w->claims_in_flight++;
}

/* ---- reconcile ---- */

static void on_reconcile(rtq_worker *w, redisReply *r, void *pd) {
  (void)pd;
  w->reconcile_in_flight = false;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
      rtq_log(RTQ_LOG_ERROR, "reading the processing list failed", "error", r->str, NULL);
    w->need_reconcile = true;
    w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
    return;
  }
  int adopted = 0;
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_STRING || rtq__job_by_env(w, e->str, e->len) != NULL) continue;
    rtq__claim_envelope(w, e->str, e->len, NULL, true);
    adopted++;
  }
  w->last_processing_len = (long)r->elements;
  if (adopted > 0) {
    char n[24];
    snprintf(n, sizeof n, "%d", adopted);
    rtq_log(RTQ_LOG_INFO, "found untracked envelopes in the processing list", "count", n, NULL);
  }
}

void rtq__reconcile_pump(rtq_worker *w) {
  if (w->protocol == 2) {
    rtq__reconcile2_pump(w);
    return;
  }
  if (!w->need_reconcile || w->reconcile_in_flight || w->round != NULL || w->claims_in_flight > 0) return;
  if (!rtq__rconn_up(w->cmd) || rtq__mono_ms() < w->reconcile_at) return;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "LRANGE");
  rtq__argv_add_key(&w->argv, w->k_processing);
  rtq_argv_add_str(&w->argv, "0");
  rtq_argv_add_str(&w->argv, "-1");
  if (rtq__rconn_send(w->cmd, &w->argv, on_reconcile, NULL, 0) != 0) return;
  w->need_reconcile = false;
  w->reconcile_in_flight = true;
}
