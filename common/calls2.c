/*
 * calls2.c - the protocol v2 call builders and reply parsers (calls2.h).
 * Each builder follows the KEYS and ARGV lines of its script's header
 * comment (common/lua2/<name>.lua), in that order.
 */
#include "calls2.h"

#include <string.h>

#include "scripts2.h"

/* A call being laid out: the first error is kept, so a builder reads as
 * the list of its arguments and checks once at the end. */
typedef struct call {
  rtq_argv *a;
  const rtq_keys2 *k;
  const char *q;
  int rc;
} call;

static void fail(call *c, int rc) {
  if (c->rc == 0) c->rc = rc;
}

static void begin(call *c, rtq_argv *a, const rtq_keys2 *k, const char *queue,
                  rtq_script2_id id, int numkeys, bool use_eval) {
  c->a = a;
  c->k = k;
  c->q = queue;
  c->rc = rtq_script2_argv(a, id, numkeys, use_eval);
}

/* A key (or a channel or prefix, which travel in ARGV) from keys2. */
static void key(call *c, rtq_key2 k) {
  int rc = rtq__argv_add_key2(c->a, k);
  if (rc != 0) fail(c, rc);
}

static void str(call *c, const char *s) { rtq_argv_add_str(c->a, s != NULL ? s : ""); }
static void bytes(call *c, const void *p, size_t n) { rtq_argv_add(c->a, p, p != NULL ? n : 0); }
static void u64(call *c, uint64_t v) { rtq_argv_add_u64(c->a, v); }
static void i64(call *c, int64_t v) { rtq_argv_add_i64(c->a, v); }
static void count(call *c, int n, int lo, int hi) {
  if (n < lo || n > hi) fail(c, RTQ_EINVAL);
}

/* The three values every call that ends tasks carries: ttl, history, cap. */
static void keep(call *c, const rtq__keep2 *kp) {
  if (kp == NULL) {
    fail(c, RTQ_EINVAL);
    return;
  }
  i64(c, kp->result_ttl_s);
  str(c, kp->history ? "1" : "0");
  i64(c, kp->cap);
}

static void events(call *c) { key(c, rtq_keys2_chan_events(c->k, c->q)); }
static void task_prefix(call *c) { key(c, rtq_keys2_task_prefix(c->k, c->q)); }
static void side_prefix(call *c) { key(c, rtq_keys2_side_prefix(c->k, c->q)); }
static void waiter_prefix(call *c) { key(c, rtq_keys2_chan_waiter_prefix(c->k, c->q)); }
static void done(call *c, rtq_status s) { key(c, rtq_keys2_done(c->k, c->q, s)); }

static int end(const call *c) {
  if (c->rc != 0) return c->rc;
  return c->a->oom ? RTQ_ENOMEM : 0;
}

/* ---- create ---- */

/* True when task t gives an option or a signature: its call sends 10
 * values per task, else 3 (id, name, args), which Redis reads and the
 * script checks faster. */
static bool has_options(const rtq__create2_task *t) {
  return t->timeout_ms != 0 || t->max_retries != 0 || t->result_ttl_s != 0 ||
         t->retry_backoff_ms != 0 || t->delay_ms != 0 || t->run_at_ms != 0 ||
         (t->signature != NULL && t->signature[0] != '\0');
}

int rtq__call2_create(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                      const rtq__create2_task *t, int n) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_CREATE, 3, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_TASKS);
  key(&c, rtq_keys2_queue(k, queue));
  key(&c, rtq_keys2_delayed(k, queue));
  key(&c, rtq_keys2_stats(k, queue));
  events(&c);
  task_prefix(&c);
  side_prefix(&c);
  bool opts = false, fresh = true;
  for (int i = 0; c.rc == 0 && i < n; i++) {
    opts = opts || has_options(&t[i]);
    fresh = fresh && t[i].fresh_id;
  }
  str(&c, opts ? "10" : "3");
  str(&c, fresh ? "1" : "0");
  for (int i = 0; c.rc == 0 && i < n; i++) {
    str(&c, t[i].id);
    str(&c, t[i].name);
    bytes(&c, t[i].args, t[i].args_len);
    if (!opts) continue;
    u64(&c, t[i].timeout_ms);
    u64(&c, t[i].max_retries);
    u64(&c, t[i].result_ttl_s);
    u64(&c, t[i].retry_backoff_ms);
    u64(&c, t[i].delay_ms);
    u64(&c, t[i].run_at_ms);
    str(&c, t[i].signature);
  }
  return end(&c);
}

/* ---- take and claim ---- */

/* KEYS queue, processing, limit, bucket, slots; ARGV worker id, default
 * timeout, events, task and side prefixes: what take and claim share. */
static void claim_head(call *c, const char *worker_id, uint64_t default_timeout_ms) {
  key(c, rtq_keys2_queue(c->k, c->q));
  key(c, rtq_keys2_processing(c->k, c->q, worker_id));
  key(c, rtq_keys2_limit(c->k, c->q));
  key(c, rtq_keys2_bucket(c->k, c->q));
  key(c, rtq_keys2_slots(c->k, c->q));
  str(c, worker_id);
  u64(c, default_timeout_ms);
  events(c);
  task_prefix(c);
  side_prefix(c);
}

int rtq__call2_take(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                    const char *worker_id, uint64_t default_timeout_ms, int moves,
                    uint64_t reply_budget) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_TAKE, 5, use_eval);
  count(&c, moves, 1, RTQ__V2_MAX_TASKS);
  claim_head(&c, worker_id, default_timeout_ms);
  i64(&c, moves);
  u64(&c, reply_budget);
  return end(&c);
}

int rtq__call2_claim(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                     const char *worker_id, uint64_t default_timeout_ms,
                     const char *const *ids, int n) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_CLAIM, 5, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_TASKS);
  claim_head(&c, worker_id, default_timeout_ms);
  for (int i = 0; c.rc == 0 && i < n; i++) str(&c, ids[i]);
  return end(&c);
}

/* ---- finish ---- */

static void outcome(call *c, const char *name, const void *v, size_t len, int *m) {
  if (v == NULL || len == 0) return;
  str(c, name);
  bytes(c, v, len);
  (*m)++;
}

static void text(call *c, const char *name, const char *v, int *m) {
  outcome(c, name, v, v != NULL ? strlen(v) : 0, m);
}

/* One task's values: id, attempt, status, result, m, then m pairs. m is
 * known only once the pairs are laid out, so its slot is filled last. */
static void finish_task(call *c, const rtq__finish2_task *t) {
  if (!rtq_status_is_terminal(t->status)) fail(c, RTQ_EINVAL);
  str(c, t->id);
  u64(c, t->attempt);
  str(c, rtq_status_name(t->status));
  bytes(c, t->result, t->result_len);
  int at = c->a->argc, m = 0;
  str(c, "0");
  text(c, "ec", t->error_code, &m);
  text(c, "em", t->error_message, &m);
  outcome(c, "ed", t->error_details, t->error_details_len, &m);
  text(c, "et", t->traceback, &m);
  if (t->progress >= 0) {
    str(c, "p");
    i64(c, t->progress);
    m++;
  }
  text(c, "pm", t->progress_message, &m);
  if (t->jitter_ms > 0) {
    str(c, "j");
    u64(c, t->jitter_ms);
    m++;
  }
  text(c, "rs", t->outcome_signature, &m);
  char buf[4];
  buf[0] = (char)('0' + m); /* at most 8 pairs */
  if (!c->a->oom && rtq_argv_set(c->a, at, buf, 1) != 0) fail(c, RTQ_ENOMEM);
}

int rtq__call2_finish(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                      const char *worker_id, const rtq__keep2 *kp, const rtq__rt_pair2 *pairs,
                      int npairs, const rtq__finish2_task *t, int n) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_FINISH, 9, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_TASKS);
  count(&c, npairs, 0, RTQ__V2_MAX_PAIRS);
  key(&c, rtq_keys2_processing(k, queue, worker_id));
  key(&c, rtq_keys2_delayed(k, queue));
  key(&c, rtq_keys2_stats(k, queue));
  done(&c, RTQ_STATUS_COMPLETED);
  done(&c, RTQ_STATUS_FAILED);
  done(&c, RTQ_STATUS_CANCELLED);
  done(&c, RTQ_STATUS_TIMEOUT);
  key(&c, rtq_keys2_runtime(k, queue));
  key(&c, rtq_keys2_slots(k, queue));
  str(&c, worker_id);
  keep(&c, kp);
  events(&c);
  task_prefix(&c);
  side_prefix(&c);
  waiter_prefix(&c);
  if (c.rc != 0) return end(&c);
  i64(&c, npairs);
  for (int i = 0; i < npairs; i++) {
    str(&c, pairs[i].field);
    u64(&c, pairs[i].count);
  }
  for (int i = 0; c.rc == 0 && i < n; i++) finish_task(&c, &t[i]);
  return end(&c);
}

/* ---- one task at a time ---- */

int rtq__call2_progress(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                        const char *id, const char *worker_id, uint64_t attempt, int progress,
                        const char *message) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_PROGRESS, 1, use_eval);
  key(&c, rtq_keys2_task(k, queue, id));
  str(&c, id);
  str(&c, worker_id);
  u64(&c, attempt);
  i64(&c, progress);
  str(&c, message);
  events(&c);
  side_prefix(&c);
  return end(&c);
}

int rtq__call2_wait(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                    const char *id) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_WAIT, 1, use_eval);
  key(&c, rtq_keys2_task(k, queue, id));
  return end(&c);
}

int rtq__call2_cancel(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                      const char *id, const rtq__keep2 *kp) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_CANCEL, 4, use_eval);
  key(&c, rtq_keys2_task(k, queue, id));
  key(&c, rtq_keys2_delayed(k, queue));
  key(&c, rtq_keys2_stats(k, queue));
  done(&c, RTQ_STATUS_CANCELLED);
  str(&c, id);
  keep(&c, kp);
  events(&c);
  waiter_prefix(&c);
  key(&c, rtq_keys2_chan_cancel(k));
  task_prefix(&c);
  side_prefix(&c);
  return end(&c);
}

int rtq__call2_retry(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                     const char *id, rtq_status current) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_RETRY, 3, use_eval);
  if (current == RTQ_STATUS_COMPLETED) fail(&c, RTQ_EINVAL); /* its args are gone */
  key(&c, rtq_keys2_task(k, queue, id));
  key(&c, rtq_keys2_queue(k, queue));
  done(&c, current);
  str(&c, id);
  str(&c, c.rc == 0 ? rtq_status_name(current) : "");
  events(&c);
  side_prefix(&c);
  return end(&c);
}

int rtq__call2_requeue(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                       const char *id, const char *worker_id, uint64_t attempt) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_REQUEUE, 3, use_eval);
  key(&c, rtq_keys2_queue(k, queue));
  key(&c, rtq_keys2_processing(k, queue, worker_id));
  key(&c, rtq_keys2_slots(k, queue));
  str(&c, id);
  str(&c, worker_id);
  u64(&c, attempt);
  events(&c);
  task_prefix(&c);
  return end(&c);
}

int rtq__call2_handback(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                        const char *id, const char *worker_id, uint64_t attempt,
                        uint64_t delay_ms, uint64_t most) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_HANDBACK, 3, use_eval);
  key(&c, rtq_keys2_processing(k, queue, worker_id));
  key(&c, rtq_keys2_delayed(k, queue));
  key(&c, rtq_keys2_slots(k, queue));
  str(&c, id);
  str(&c, worker_id);
  u64(&c, attempt);
  u64(&c, delay_ms);
  u64(&c, most);
  events(&c);
  task_prefix(&c);
  return end(&c);
}

int rtq__call2_dead_requeue(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                            rtq__bytes2 record) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_DEAD_REQUEUE, 5, use_eval);
  key(&c, rtq_keys2_dead(k, queue));
  key(&c, rtq_keys2_queue(k, queue));
  done(&c, RTQ_STATUS_FAILED);
  done(&c, RTQ_STATUS_TIMEOUT);
  done(&c, RTQ_STATUS_CANCELLED);
  bytes(&c, record.p, record.len);
  str(&c, queue);
  events(&c);
  task_prefix(&c);
  side_prefix(&c);
  return end(&c);
}

int rtq__call2_deadletter(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                          rtq__bytes2 entry, const char *code, const char *reason,
                          const char *worker_id, bool from_delayed, const rtq__keep2 *kp) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_DEADLETTER, 5, use_eval);
  key(&c, rtq_keys2_dead(k, queue));
  key(&c, from_delayed ? rtq_keys2_delayed(k, queue) : rtq_keys2_processing(k, queue, worker_id));
  key(&c, rtq_keys2_stats(k, queue));
  done(&c, RTQ_STATUS_FAILED);
  key(&c, rtq_keys2_slots(k, queue));
  bytes(&c, entry.p, entry.len);
  str(&c, code);
  str(&c, reason);
  str(&c, worker_id);
  str(&c, queue);
  keep(&c, kp);
  events(&c);
  task_prefix(&c);
  side_prefix(&c);
  waiter_prefix(&c);
  return end(&c);
}

/* ---- broker sweeps ---- */

/* What recover and backstop both pass after the worker: the grace, how
 * ended tasks are kept, the events channel and the three prefixes. */
static void sweep_tail(call *c, uint64_t grace_ms, const rtq__keep2 *kp) {
  u64(c, grace_ms);
  keep(c, kp);
  events(c);
  task_prefix(c);
  side_prefix(c);
  waiter_prefix(c);
}

int rtq__call2_recover(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                       const char *dead_wid, uint64_t max_deliveries, uint64_t grace_ms,
                       const rtq__keep2 *kp, const rtq__bytes2 *entries, int n) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_RECOVER, 9, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_SWEEP);
  key(&c, rtq_keys2_processing(k, queue, dead_wid));
  key(&c, rtq_keys2_queue(k, queue));
  key(&c, rtq_keys2_dead(k, queue));
  key(&c, rtq_keys2_stats(k, queue));
  key(&c, rtq_keys2_delayed(k, queue));
  done(&c, RTQ_STATUS_FAILED);
  done(&c, RTQ_STATUS_CANCELLED);
  done(&c, RTQ_STATUS_TIMEOUT);
  key(&c, rtq_keys2_slots(k, queue));
  str(&c, dead_wid);
  u64(&c, max_deliveries);
  sweep_tail(&c, grace_ms, kp);
  str(&c, queue);
  i64(&c, n);
  for (int i = 0; c.rc == 0 && i < n; i++) bytes(&c, entries[i].p, entries[i].len);
  return end(&c);
}

int rtq__call2_end_sig(rtq_argv *a, const char *id, const char *attempt, const char *claimed_at,
                       const char *status, const char *sig) {
  const char *v[5] = {id, attempt != NULL ? attempt : "", claimed_at != NULL ? claimed_at : "", status, sig};
  for (int i = 0; i < 5; i++) {
    if (v[i] == NULL) return RTQ_EINVAL;
    rtq_argv_add_str(a, v[i]);
  }
  return 0;
}

int rtq__call2_promote(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue, int n) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_PROMOTE, 2, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_SWEEP);
  key(&c, rtq_keys2_delayed(k, queue));
  key(&c, rtq_keys2_queue(k, queue));
  i64(&c, n);
  return end(&c);
}

int rtq__call2_prune(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                     rtq_status status, int n) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_PRUNE, 1, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_SWEEP);
  done(&c, status);
  task_prefix(&c);
  i64(&c, n);
  return end(&c);
}

int rtq__call2_backstop(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                        const char *worker_id, uint64_t grace_ms, const rtq__keep2 *kp,
                        int64_t offset, int n) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_BACKSTOP, 4, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_SWEEP);
  if (offset < 0) fail(&c, RTQ_EINVAL);
  key(&c, rtq_keys2_processing(k, queue, worker_id));
  key(&c, rtq_keys2_stats(k, queue));
  done(&c, RTQ_STATUS_TIMEOUT);
  key(&c, rtq_keys2_slots(k, queue));
  str(&c, worker_id);
  sweep_tail(&c, grace_ms, kp);
  i64(&c, offset);
  i64(&c, n);
  return end(&c);
}

/* ---- operator sweeps ---- */

int rtq__call2_purge(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue, int n,
                     const rtq__keep2 *kp) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_PURGE, 5, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_SWEEP);
  key(&c, rtq_keys2_queue(k, queue));
  key(&c, rtq_keys2_delayed(k, queue));
  key(&c, rtq_keys2_stats(k, queue));
  done(&c, RTQ_STATUS_CANCELLED);
  key(&c, rtq_keys2_dead(k, queue));
  i64(&c, n);
  keep(&c, kp);
  events(&c);
  task_prefix(&c);
  side_prefix(&c);
  waiter_prefix(&c);
  str(&c, queue);
  return end(&c);
}

int rtq__call2_delete(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                      rtq_status status, int n, uint64_t cutoff_ms) {
  call c;
  begin(&c, a, k, queue, RTQ_SCRIPT2_DELETE, 1, use_eval);
  count(&c, n, 1, RTQ__V2_MAX_SWEEP);
  done(&c, status);
  task_prefix(&c);
  side_prefix(&c);
  i64(&c, n);
  u64(&c, cutoff_ms);
  return end(&c);
}

/* ---- namespace scripts ---- */

int rtq__call2_heartbeat(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *worker_id,
                         int64_t ttl_ms, const rtq__field2 *fields, int nfields) {
  call c;
  begin(&c, a, k, NULL, RTQ_SCRIPT2_HEARTBEAT, 2, use_eval);
  count(&c, nfields, 0, RTQ__V2_MAX_PAIRS);
  key(&c, rtq_keys2_worker(k, worker_id));
  key(&c, rtq_keys2_workers(k));
  str(&c, worker_id);
  i64(&c, ttl_ms);
  for (int i = 0; c.rc == 0 && i < nfields; i++) {
    str(&c, fields[i].name);
    str(&c, fields[i].value);
  }
  return end(&c);
}

int rtq__call2_lease(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *owner,
                     int64_t ttl_ms, bool acquire) {
  call c;
  begin(&c, a, k, NULL, RTQ_SCRIPT2_LEASE, 1, use_eval);
  key(&c, rtq_keys2_lease(k));
  str(&c, owner);
  i64(&c, ttl_ms);
  str(&c, acquire ? "acquire" : "release");
  return end(&c);
}

rtq__keep2 rtq__keep2_settings(int64_t result_ttl_s, bool history, int64_t max_history) {
  int64_t cap = max_history < 1 ? 1 : max_history > RTQ__V2_MAX_HISTORY ? RTQ__V2_MAX_HISTORY : max_history;
  return (rtq__keep2){.result_ttl_s = result_ttl_s, .history = history && max_history > 0, .cap = cap};
}
