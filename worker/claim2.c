/*
 * claim2.c - protocol 2: taking task ids off the queues and marking them
 * running (docs/PROTOCOL.md sections 5 and "A worker in another
 * language").
 *
 * The queues hold ids, not envelopes, and a claim returns what the
 * handler needs (name, attempt, timeout, args) from the task hash, so a
 * job is created from the claim's reply. Each queue has its own
 * processing list {ns:Q}:p:<wid>.
 *
 * Rounds. One round at a time is in flight, planned by queues.c over the
 * queues that are neither paused nor limited (below):
 *   take   one take call per planned queue on the cmd connection, each
 *          with the moves planned for it (at most claim_batch and 64) and
 *          a reply byte budget; every 'ok' entry runs.
 *   wait   when every open queue came back empty: one BLMOVE on the pop
 *          connection (a script cannot block), then one claim call for
 *          the id it moved. With several queues it is cut short after
 *          poll_ms by CLIENT UNBLOCK.
 * Entries: ok runs (or, with no handler here, is handed back or fails
 * UNKNOWN_TASK: unknown2 in steps2.c); skip is dropped by the script;
 * missing and bad are dead-lettered (NO_TASK_RECORD, BAD_ID or
 * BAD_TASK_RECORD), as are args that are not one msgpack map within
 * max_payload.
 *
 * Limits. A queue whose rate or concurrency limit ({ns:Q}:limit) allows
 * no claim now answers 'limited' with wait_ms (take stops its moves; claim
 * puts the id back at the front of the queue). The queue is then left out
 * of every plan until wait_ms has passed: no take and no BLMOVE goes to
 * it, so a worker at its limit sends nothing for that queue meanwhile. The
 * loop's 50 ms tick plans again; when every queue is limited or paused no
 * round is sent at all. A queue that was limited is taken from (not
 * waited on with BLMOVE) once its wait is over.
 *
 * Reconcile. After a lost reply a take, BLMOVE or claim may have run
 * unheard, leaving ids in the processing lists that no job tracks. Once
 * nothing is in flight, the worker reads every processing list (LRANGE)
 * and adopts each untracked id: HMGET of its hash; running under this
 * worker means the claim ran and its reply was lost, so it runs with the
 * hash's attempt (its args read from the hash); otherwise a claim call
 * decides (pending: run; ended or someone else's: dropped; no hash:
 * dead-lettered). Shutdown's last look uses the same read.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls2.h"
#include "defaults.h"
#include "internal.h"
#include "log.h"
#include "scripts2.h"

#define CODE_BAD_ID "BAD_ID"
#define CODE_BAD_TASK_RECORD "BAD_TASK_RECORD"

/* A take stops once the args it returned reach this many bytes, so one
 * reply on the cmd connection does not hold up the heartbeats and
 * completions behind it. */
#define TAKE_REPLY_BUDGET (4u * 1024u * 1024u)
/* A take refused with TRYAGAIN (a slot in migration) is tried again
 * after this long. */
#define TRYAGAIN_MS 200

struct rtq__round2 {
  int calls;       /* replies owed */
  bool blocking;   /* a BLMOVE round */
  int bq;          /* its queue */
  bool got_any;
  uint64_t sent_at;
};

/* One take call of a round. */
typedef struct take_call {
  rtq__round2 *round;
  int qi, moves;
} take_call;

/* One claim call: the jobs of its ids, in order. */
typedef struct claim_call {
  int qi, n;
  rtq__job *jobs[RTQ__V2_MAX_TASKS];
} claim_call;

static void send_take(rtq_worker *w, take_call *tc);
static void send_claim(rtq_worker *w, claim_call *cc);
static void send_adopt(rtq_worker *w, rtq__job *j);
static void on_blmove(rtq_worker *w, redisReply *r, void *pd);

static uint64_t default_timeout_ms(const rtq_worker *w) { return (uint64_t)w->o.default_timeout_s * 1000u; }

int rtq__queue_index(const rtq_worker *w, const char *name) {
  for (int i = 0; i < w->queues.n; i++)
    if (strcmp(w->queues.q[i].name, name) == 0) return i;
  return -1;
}

/* An entry that can be a task id: 1..RTQ_NAME_MAX bytes without a NUL
 * (whether its characters are valid is the claim script's to say). Any
 * other entry only a dead letter takes out of a processing list. */
static bool id_shaped(const char *id, size_t len) {
  return len > 0 && len <= RTQ_NAME_MAX && memchr(id, '\0', len) == NULL;
}

/* A job for an id of queue qi that is being claimed or adopted; its name,
 * args and attempt come from the claim. NULL for an entry that is not
 * id-shaped, or when out of memory. */
static rtq__job *job_for_id(rtq_worker *w, int qi, const char *id, size_t len) {
  rtq_envelope e;
  rtq_envelope_init(&e);
  if (!id_shaped(id, len)) return NULL;
  memcpy(e.id, id, len);
  e.id[len] = '\0';
  snprintf(e.queue, sizeof e.queue, "%s", w->queues.q[qi].name);
  rtq__job *j = rtq__job_new(w, id, len, &e);
  if (j == NULL) rtq_log(RTQ_LOG_ERROR, "out of memory tracking a claimed task; will look again", NULL);
  return j;
}

static void lost_track(rtq_worker *w, rtq__job *j) {
  rtq__job_free(w, j);
  w->need_reconcile = true;
}

/* The queue may not be claimed from for wait_ms. */
static void set_limited(rtq_worker *w, int qi, int64_t wait_ms, uint64_t now) {
  if (wait_ms < 1) wait_ms = 1;
  if (wait_ms > 60000) wait_ms = 60000;
  w->limited_until[qi] = now + (uint64_t)wait_ms;
  rtq_log(RTQ_LOG_DEBUG, "queue at its limit; not claiming from it for a while", "queue", w->queues.q[qi].name,
          NULL);
}

/* Why args read from a task hash may not reach a handler, or NULL. */
static const char *bad_args(const rtq_worker *w, const char *args, size_t len, const char **code) {
  *code = CODE_BAD_TASK_RECORD;
  if (len == 0) return NULL;
  if (len > w->o.max_payload) {
    *code = RTQ_CODE_TOO_LARGE;
    return "the task's args are larger than max_payload";
  }
  /* Exactly what rtq_task_args can read: a handler never gets bytes its
   * args tree refuses (a non-string key, an ext value). */
  if (rtq__args_check(args, len, NULL, 0) != 0)
    return "the task's args are not one msgpack map with string keys and no ext values";
  return NULL;
}

/* The task of j runs under this worker now (e is ok): start it, or hand
 * it on when it cannot run here. */
static void claimed(rtq_worker *w, rtq__job *j, const rtq__claim2_entry *e) {
  j->attempt = e->attempt > 0 && e->attempt <= UINT32_MAX ? (uint32_t)e->attempt : 1;
  j->timeout_ms = e->timeout_ms > 0 ? (uint64_t)e->timeout_ms : default_timeout_ms(w);
  rtq__sign2_bind(j, e);
  if (!rtq__sign2_task_ok(w, j->queue, e)) {
    rtq__deadletter2_run(w, j, RTQ_CODE_BAD_SIGNATURE, "the task carries no valid producer signature (sg)");
    rtq__job_free(w, j);
    return;
  }
  snprintf(j->name, sizeof j->name, "%.*s", (int)sizeof j->name - 1, e->name ? e->name : "");
  snprintf(j->e.name, sizeof j->e.name, "%s", j->name);
  /* Large args grew hiredis's buffers: hand the pages back once freed. */
  rtq__note_payload(w, e->args_len);
  const char *code, *why = bad_args(w, e->args, e->args_len, &code);
  if (why != NULL) {
    rtq__deadletter2_run(w, j, code, why);
    rtq__job_free(w, j);
    return;
  }
  if (rtq__handler_find(w, j->name) == NULL) {
    rtq__unknown_task2(w, j);
    rtq__job_free(w, j);
    return;
  }
  if (w->phase == RTQ__DONE) { /* teardown: the broker recovers it */
    rtq__job_free(w, j);
    return;
  }
  /* An absent x is no args: the handler sees an empty map. */
  size_t len = e->args_len ? e->args_len : 1;
  j->e.args = malloc(len);
  if (j->e.args == NULL) {
    lost_track(w, j);
    return;
  }
  if (e->args_len)
    memcpy(j->e.args, e->args, len);
  else
    j->e.args[0] = (char)0x80;
  j->e.args_len = len;
  j->e.timeout_ms = j->timeout_ms;
  rtq__job_start(w, j);
}

/* One entry of a take or claim reply about j (NULL for take: the job is
 * made here for an ok entry). Returns true when the entry held an id. */
static bool entry(rtq_worker *w, int qi, rtq__job *j, const rtq__claim2_entry *e, uint64_t now) {
  const char *queue = w->queues.q[qi].name;
  switch (e->kind) {
    case RTQ__CLAIM2_OK:
      if (j == NULL && (j = job_for_id(w, qi, e->id, e->id_len)) != NULL)
        j->claimed_running = true; /* takes are sent only while the worker runs */
      if (j == NULL) {
        w->need_reconcile = true; /* out of memory: the id stays listed */
        return true;
      }
      claimed(w, j, e);
      return true;
    case RTQ__CLAIM2_SKIP:
      rtq_log(RTQ_LOG_INFO, "task not run: no longer pending", "task", e->id, "queue", queue, "status",
              e->status ? e->status : "?", NULL);
      break;
    case RTQ__CLAIM2_MISSING:
      rtq__deadletter2(w, queue, e->id, e->id_len, RTQ_CODE_NO_TASK_RECORD,
                       "the id has no task hash (never created, or expired)");
      break;
    case RTQ__CLAIM2_BAD:
      rtq__deadletter2(w, queue, e->id, e->id_len,
                       strcmp(e->reason ? e->reason : "", "the id is not a valid name") == 0 ? CODE_BAD_ID
                                                                                            : CODE_BAD_TASK_RECORD,
                       e->reason ? e->reason : "the task hash does not validate");
      break;
    case RTQ__CLAIM2_LIMITED:
      set_limited(w, qi, e->wait_ms, now);
      if (j != NULL) rtq__job_free(w, j);
      return false;
  }
  if (j != NULL) rtq__job_free(w, j);
  return true;
}

/* ---- rounds ---- */

static void round_done(rtq_worker *w, rtq__round2 *round) {
  if (--round->calls > 0) return;
  if (w->round2 == round) w->round2 = NULL;
  rtq__queues_round_end(&w->queues, round->got_any, round->blocking ? round->bq : -1);
  free(round);
}

void rtq__claim2_pump(rtq_worker *w) {
  if (w->phase != RTQ__RUN || w->round2 != NULL || !w->hb_ok || !w->paused_known) return;
  if (w->need_reconcile || w->reconcile_in_flight) return;
  if (!w->links_on && (!rtq__rconn_up(w->pop) || !rtq__rconn_up(w->cmd))) return;
  int k = rtq__free_slots(w);
  if (k > w->o.claim_batch) k = w->o.claim_batch;
  if (k > RTQ__V2_MAX_TASKS) k = RTQ__V2_MAX_TASKS;
  if (k <= 0) return;
  uint64_t now = rtq__mono_ms();
  /* A limited queue is planned like a paused one: not at all. */
  bool paused[RTQ_WORKER_MAX_QUEUES];
  int nopen = 0, open = -1;
  for (int q = 0; q < w->queues.n; q++) {
    paused[q] = w->queues.q[q].paused;
    if (w->limited_until[q] > now) w->queues.q[q].paused = true;
    /* A queue whose node has no link up yet (cluster) waits the same way. */
    if (!rtq__rconn_up(rtq__qcmd(w, q)) || !rtq__rconn_up(rtq__qpop(w, q))) w->queues.q[q].paused = true;
    if (!w->queues.q[q].paused) nopen++, open = q;
  }
  int qidx[RTQ__V2_MAX_TASKS];
  bool blocking = false;
  int n = rtq__queues_plan(&w->queues, k, now, qidx, &blocking);
  for (int q = 0; q < w->queues.n; q++) w->queues.q[q].paused = paused[q];
  if (n == 0) return; /* every queue paused or limited: the tick plans again */
  /* One open queue is always planned blocking; it is taken from while the
   * last round found work and its last take did not come back empty, or
   * when its limit just let it go (its work is likely still there). */
  if (blocking && nopen == 1 && open == qidx[0] &&
      ((!w->queues.idle && now >= w->queues.q[open].empty_until) || w->limited_until[open] != 0))
    blocking = false;
  rtq__round2 *round = calloc(1, sizeof *round);
  if (round == NULL) return;
  round->sent_at = now;
  w->round2 = round;
  if (!blocking) {
    int moves[RTQ_WORKER_MAX_QUEUES] = {0};
    for (int i = 0; i < n; i++) moves[qidx[i]]++;
    round->calls = 1; /* held until every take is sent */
    for (int q = 0; q < w->queues.n; q++) {
      if (moves[q] == 0) continue;
      take_call *tc = malloc(sizeof *tc);
      if (tc == NULL) break;
      *tc = (take_call){round, q, moves[q]};
      round->calls++;
      w->reserved += tc->moves;
      send_take(w, tc);
    }
    round_done(w, round);
    return;
  }
  int q = qidx[0];
  round->blocking = true;
  round->bq = q;
  int block_ms = w->o.block_timeout_ms;
  char tmo[32];
  snprintf(tmo, sizeof tmo, "%d.%03d", block_ms / 1000, block_ms % 1000);
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "BLMOVE");
  rtq__argv_add_key2(&w->argv, w->k2_queue[q]);
  rtq__argv_add_key2(&w->argv, w->k2_proc[q]);
  rtq_argv_add_str(&w->argv, "RIGHT");
  rtq_argv_add_str(&w->argv, "LEFT");
  rtq_argv_add_str(&w->argv, tmo);
  if (rtq__rconn_send(rtq__qpop(w, q), &w->argv, on_blmove, round, block_ms) != 0) {
    w->round2 = NULL;
    free(round);
    return;
  }
  round->calls = 1;
  w->reserved++;
}

/* ---- take ---- */

static void on_take(rtq_worker *w, redisReply *r, void *pd) {
  take_call *tc = pd;
  rtq__round2 *round = tc->round;
  uint64_t now = rtq__mono_ms();
  bool noscript = r != NULL && rtq__noscript(w, r);
  if (noscript && w->phase == RTQ__RUN) {
    send_take(w, tc);
    return;
  }
  w->reserved -= tc->moves;
  const char *queue = w->queues.q[tc->qi].name;
  rtq__claim2_entry es[RTQ__V2_MAX_TASKS + 1];
  int n = 0;
  if (noscript) {
    /* Nothing ran, and the worker is stopping: no new claims. */
  } else if (r == NULL) {
    w->need_reconcile = true; /* the moves may or may not have happened */
  } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "TRYAGAIN", 8) == 0) {
    /* The queue's slot is being migrated and its keys are split between
     * the nodes (cluster): the script did not run, so nothing needs a
     * reconcile. The queue waits like a limited one; the others go on. */
    rtq_log(RTQ_LOG_DEBUG, "queue's slot is being migrated; taking again shortly", "queue", queue, NULL);
    w->limited_until[tc->qi] = now + TRYAGAIN_MS;
  } else if (r->type == REDIS_REPLY_ERROR || rtq__reply2_claim(r, es, RTQ__V2_MAX_TASKS + 1, &n) != 0) {
    rtq_log(RTQ_LOG_ERROR, "take failed; will look at the processing list again", "queue", queue, "error",
            r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply", NULL);
    w->need_reconcile = true;
    w->reconcile_at = now + RTQ__RETRY_WRITE_MS;
  } else {
    int ids = 0;
    bool limited = false;
    for (int i = 0; i < n; i++) {
      if (es[i].kind == RTQ__CLAIM2_LIMITED) limited = true;
      if (entry(w, tc->qi, NULL, &es[i], now)) ids++;
    }
    if (!limited) w->limited_until[tc->qi] = 0;
    if (ids > 0) round->got_any = true;
    /* Fewer moves than asked without a limit: the queue ran dry. */
    rtq__queues_result(&w->queues, tc->qi, ids > 0 && (ids == tc->moves || limited), now, w->o.poll_ms);
  }
  free(tc);
  round_done(w, round);
}

static void send_take(rtq_worker *w, take_call *tc) {
  if (rtq__call2_take(&w->argv, &w->keys2, w->use_eval, w->queues.q[tc->qi].name, w->id, default_timeout_ms(w),
                      tc->moves, TAKE_REPLY_BUDGET) != 0 ||
      rtq__rconn_send(rtq__qcmd(w, tc->qi), &w->argv, on_take, tc, 0) != 0) {
    /* Nothing was sent: the next round tries again. */
    w->reserved -= tc->moves;
    rtq__round2 *round = tc->round;
    free(tc);
    round_done(w, round);
  }
}

/* ---- BLMOVE and claim ---- */

static void on_blmove(rtq_worker *w, redisReply *r, void *pd) {
  rtq__round2 *round = pd;
  int q = round->bq;
  uint64_t now = rtq__mono_ms();
  w->reserved--;
  if (r == NULL) {
    w->need_reconcile = true; /* the move may or may not have happened */
  } else if (r->type == REDIS_REPLY_STRING) {
    round->got_any = true;
    rtq__queues_result(&w->queues, q, true, now, w->o.poll_ms);
    claim_call *cc = malloc(sizeof *cc);
    rtq__job *j = cc != NULL ? job_for_id(w, q, r->str, r->len) : NULL;
    if (j == NULL) {
      free(cc);
      w->need_reconcile = true;
    } else {
      cc->qi = q;
      cc->n = 1;
      cc->jobs[0] = j;
      send_claim(w, cc);
    }
  } else {
    if (r->type == REDIS_REPLY_ERROR)
      rtq_log(RTQ_LOG_ERROR, "pop failed", "queue", w->queues.q[q].name, "error", r->str, NULL);
    rtq__queues_result(&w->queues, q, false, now, w->o.poll_ms);
  }
  round_done(w, round);
}

static void on_claim(rtq_worker *w, redisReply *r, void *pd) {
  claim_call *cc = pd;
  uint64_t now = rtq__mono_ms();
  w->claims_in_flight--;
  for (int i = 0; i < cc->n; i++) cc->jobs[i]->in_flight = false;
  if (r != NULL && rtq__noscript(w, r)) {
    send_claim(w, cc);
    return;
  }
  rtq__claim2_entry es[RTQ__V2_MAX_TASKS];
  int n = 0;
  if (r == NULL) {
    for (int i = 0; i < cc->n; i++) lost_track(w, cc->jobs[i]);
  } else if (r->type == REDIS_REPLY_ERROR || rtq__reply2_claim(r, es, RTQ__V2_MAX_TASKS, &n) != 0 || n != cc->n) {
    rtq_log(RTQ_LOG_ERROR, "claim failed; will look at the processing list again", "task", cc->jobs[0]->id,
            "error", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply", NULL);
    w->reconcile_at = now + RTQ__RETRY_WRITE_MS;
    for (int i = 0; i < cc->n; i++) lost_track(w, cc->jobs[i]);
  } else {
    bool limited = false;
    for (int i = 0; i < n; i++) {
      limited = limited || es[i].kind == RTQ__CLAIM2_LIMITED;
      (void)entry(w, cc->qi, cc->jobs[i], &es[i], now);
    }
    if (!limited) w->limited_until[cc->qi] = 0;
  }
  free(cc);
}

/* One claim call for the jobs of cc (1..64, one queue); takes cc. */
static void send_claim(rtq_worker *w, claim_call *cc) {
  const char *ids[RTQ__V2_MAX_TASKS];
  for (int i = 0; i < cc->n; i++) {
    ids[i] = cc->jobs[i]->id;
    rtq__job_set_state(w, cc->jobs[i], RTQ__JOB_CLAIMING);
    cc->jobs[i]->claimed_running = w->phase == RTQ__RUN;
  }
  if (rtq__call2_claim(&w->argv, &w->keys2, w->use_eval, w->queues.q[cc->qi].name, w->id, default_timeout_ms(w),
                       ids, cc->n) != 0 ||
      rtq__rconn_send(rtq__qcmd(w, cc->qi), &w->argv, on_claim, cc, 0) != 0) {
    for (int i = 0; i < cc->n; i++) lost_track(w, cc->jobs[i]);
    free(cc);
    return;
  }
  for (int i = 0; i < cc->n; i++) cc->jobs[i]->in_flight = true;
  w->claims_in_flight++;
}

/* Shutdown, a paused queue, or poll_ms over with several queues: a
 * BLMOVE may sit in Redis for the whole block timeout; CLIENT UNBLOCK
 * makes it return nil now (an id it already moved still arrives). */
void rtq__claim2_unblock(rtq_worker *w) {
  if (w->round2 == NULL || !w->round2->blocking) return;
  if (!w->links_on) {
    rtq__unblock_pop(w);
    return;
  }
  /* The BLMOVE waits on its queue's node: CLIENT UNBLOCK goes there, and
   * to the node an ASK sent it to. */
  rtq__links_unblock_asks(w);
  int q = w->round2->bq;
  long long id = rtq__rconn_client_id(rtq__qpop(w, q));
  if (id <= 0) return;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "CLIENT");
  rtq_argv_add_str(&w->argv, "UNBLOCK");
  rtq_argv_add_i64(&w->argv, id);
  (void)rtq__rconn_send(rtq__qcmd(w, q), &w->argv, rtq__reply_ignore, NULL, 0);
}

void rtq__claim2_tick(rtq_worker *w, uint64_t now) {
  rtq__round2 *round = w->round2;
  if (round == NULL || !round->blocking) return;
  /* A paused queue must not take what arrives; with several queues the
   * others (and those whose limit wait ended) are probed after poll_ms. */
  if (w->queues.q[round->bq].paused ||
      (w->queues.n > 1 && now >= round->sent_at + (uint64_t)w->o.poll_ms))
    rtq__claim2_unblock(w);
}

/* ---- adoption after a lost reply ---- */

/* The fields of a task hash adoption reads: s w a n x xs to, and the
 * signature with the rest of what it covers: sg mr rt bo; b, the claim's
 * time, which the outcome's signature covers; and x2 x3 x4, the chunks
 * of args of 65..256 bytes. */
#define NFIELDS 15

static void on_adopt(rtq_worker *w, redisReply *r, void *pd) {
  rtq__job *j = pd;
  w->claims_in_flight--;
  j->in_flight = false;
  int qi = rtq__queue_index(w, j->queue);
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 || qi < 0 ||
      r->element[0]->type != REDIS_REPLY_ARRAY || r->element[0]->elements != NFIELDS) {
    if (r != NULL) w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
    lost_track(w, j);
    return;
  }
  const redisReply *h = r->element[0], *side = r->element[1];
  const char *f[NFIELDS];
  for (int i = 0; i < NFIELDS; i++) f[i] = h->element[i]->type == REDIS_REPLY_STRING ? h->element[i]->str : NULL;
  if (f[0] != NULL && f[1] != NULL && strcmp(f[0], "running") == 0 && strcmp(f[1], w->id) == 0) {
    /* Its claim ran and the reply was lost: it runs with the hash's attempt. */
    /* The side hash's x, when there is one: a side hash may hold only an
     * earlier attempt's long error, the args then being in the task hash. */
    bool side_args = f[5] != NULL && strcmp(f[5], "1") == 0 && side->type == REDIS_REPLY_STRING;
    const redisReply *x = side_args ? side : h->element[4];
    /* Args of 65..256 bytes: chunks x, x2, x3, x4, joined in order. */
    size_t joined_len = 0;
    char *joined = NULL;
    const redisReply *part[4] = {h->element[4], h->element[12], h->element[13], h->element[14]};
    if (!side_args && rtq__args2_join(part, &joined, &joined_len) != 0) {
      w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
      lost_track(w, j);
      return;
    }
    rtq__claim2_entry e = {.kind = RTQ__CLAIM2_OK,
                           .id = j->id,
                           .id_len = strlen(j->id),
                           .name = f[3] ? f[3] : "",
                           .attempt = f[2] ? strtoll(f[2], NULL, 10) : 1,
                           .timeout_ms = f[6] ? strtoll(f[6], NULL, 10) : 0,
                           .args = joined ? joined : x->type == REDIS_REPLY_STRING ? x->str : "",
                           .args_len = joined ? joined_len : x->type == REDIS_REPLY_STRING ? x->len : 0,
                           .signature = f[7] ? f[7] : "",
                           .to_s = f[6] ? f[6] : "",
                           .mr_s = f[8] ? f[8] : "",
                           .rt_s = f[9] ? f[9] : "",
                           .bo_s = f[10] ? f[10] : ""};
    /* The claim's deadline is its time b plus the timeout it used. */
    int64_t to = e.timeout_ms > 0 ? e.timeout_ms : (int64_t)default_timeout_ms(w);
    e.deadline_ms = f[11] ? strtoll(f[11], NULL, 10) + to : 0;
    rtq_log(RTQ_LOG_INFO, "adopted a task claimed before a connection loss", "task", j->id, NULL);
    rtq__job_set_state(w, j, RTQ__JOB_CLAIMING);
    j->claimed_running = w->phase == RTQ__RUN;
    claimed(w, j, &e);
    free(joined);
    return;
  }
  claim_call *cc = malloc(sizeof *cc);
  if (cc == NULL) {
    lost_track(w, j);
    return;
  }
  cc->qi = qi;
  cc->n = 1;
  cc->jobs[0] = j;
  send_claim(w, cc);
}

/* Reads the task's fields (and the side hash's x) in one MULTI, so the
 * two replies arrive as one. */
static void send_adopt(rtq_worker *w, rtq__job *j) {
  rtq__rconn *c = rtq__qcmd_of(w, j->queue);
  rtq_key2 t = rtq_keys2_task(&w->keys2, j->queue, j->id), x = rtq_keys2_side(&w->keys2, j->queue, j->id);
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "MULTI");
  int rc = rtq__rconn_send(c, &w->argv, rtq__reply_ignore, NULL, 0);
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "HMGET");
  rtq__argv_add_key2(&w->argv, t);
  const char *fields[NFIELDS] = {"s",  "w",  "a",  "n",  "x",  "xs", "to", "sg",
                                 "mr", "rt", "bo", "b",  "x2", "x3", "x4"};
  for (int i = 0; i < NFIELDS; i++) rtq_argv_add_str(&w->argv, fields[i]);
  if (rc == 0) rc = rtq__rconn_send(c, &w->argv, rtq__reply_ignore, NULL, 0);
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "HGET");
  rtq__argv_add_key2(&w->argv, x);
  rtq_argv_add_str(&w->argv, "x");
  if (rc == 0) rc = rtq__rconn_send(c, &w->argv, rtq__reply_ignore, NULL, 0);
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "EXEC");
  if (rc == 0) rc = rtq__rconn_send(c, &w->argv, on_adopt, j, 0);
  if (rc != 0) {
    lost_track(w, j);
    return;
  }
  j->in_flight = true;
  w->claims_in_flight++;
}

/* ---- reconcile ---- */

static void on_reconcile(rtq_worker *w, redisReply *r, void *pd) {
  int qi = (int)(intptr_t)pd;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
      rtq_log(RTQ_LOG_ERROR, "reading the processing list failed", "error", r->str, NULL);
    w->need_reconcile = true;
    w->reconcile_at = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
    w->reconcile_len = -1;
  } else {
    int adopted = 0;
    for (size_t i = 0; i < r->elements; i++) {
      const redisReply *e = r->element[i];
      if (e->type != REDIS_REPLY_STRING || rtq__job_by_env(w, e->str, e->len) != NULL) continue;
      if (!id_shaped(e->str, e->len)) {
        /* Empty, too long or holding a NUL: only a dead letter of its
         * exact bytes takes it out (else every reconcile finds it again). */
        rtq__deadletter2(w, w->queues.q[qi].name, e->str, e->len, CODE_BAD_ID,
                         "the processing entry is not a valid id");
        continue;
      }
      rtq__job *j = job_for_id(w, qi, e->str, e->len);
      if (j == NULL) {
        w->need_reconcile = true; /* out of memory: look again later */
        continue;
      }
      rtq__job_set_state(w, j, RTQ__JOB_ADOPTING);
      send_adopt(w, j);
      adopted++;
    }
    if (w->reconcile_len >= 0) w->reconcile_len += (long)r->elements;
    if (adopted > 0) {
      char n[24];
      snprintf(n, sizeof n, "%d", adopted);
      rtq_log(RTQ_LOG_INFO, "found untracked ids in the processing list", "queue", w->queues.q[qi].name, "count",
              n, NULL);
    }
  }
  if (--w->reconcile_replies == 0) {
    w->reconcile_in_flight = false;
    w->last_processing_len = w->reconcile_len;
  }
}

void rtq__reconcile2_pump(rtq_worker *w) {
  if (!w->need_reconcile || w->reconcile_in_flight || w->round2 != NULL || w->claims_in_flight > 0) return;
  if (rtq__mono_ms() < w->reconcile_at) return;
  w->reconcile_len = 0;
  w->reconcile_replies = 0;
  int skipped = 0;
  for (int q = 0; q < w->queues.n; q++) {
    /* Cluster: a list whose node is unreachable is read once a connection
     * to its node is up again (worker.c), so the other queues' claims do
     * not wait for a failover. */
    if (w->links_on && !rtq__rconn_up(rtq__qcmd(w, q))) {
      skipped++;
      continue;
    }
    rtq_argv_reset(&w->argv);
    rtq_argv_add_str(&w->argv, "LRANGE");
    rtq__argv_add_key2(&w->argv, w->k2_proc[q]);
    rtq_argv_add_str(&w->argv, "0");
    rtq_argv_add_str(&w->argv, "-1");
    /* A list whose node is unreachable now is read at the next look. */
    if (rtq__rconn_send(rtq__qcmd(w, q), &w->argv, on_reconcile, (void *)(intptr_t)q, 0) != 0) continue;
    w->reconcile_replies++;
  }
  if (skipped > 0) w->reconcile_deferred = true;
  if (w->reconcile_replies == 0) {
    if (skipped == w->queues.n) w->need_reconcile = false;
    return;
  }
  if (w->reconcile_replies < w->queues.n) w->reconcile_len = -1; /* not every list was read: look again */
  w->need_reconcile = w->reconcile_replies + skipped < w->queues.n;
  w->reconcile_in_flight = true;
}
