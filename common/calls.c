/*
 * calls.c - the script call builders (calls.h). Each function follows the
 * KEYS and ARGV lines of its script's header comment, in that order.
 */
#include "calls.h"

#include <string.h>

#include "scripts.h"

/* A call being laid out: the first error is kept, so a builder reads as
 * the list of its arguments and checks once at the end. */
typedef struct call {
  rtq_argv *a;
  const rtq_keys *k;
  int rc;
} call;

static void begin(call *c, rtq_argv *a, const rtq_keys *k, rtq_script_id id, int numkeys,
                  bool use_eval) {
  c->a = a;
  c->k = k;
  c->rc = rtq_script_argv(a, id, numkeys, use_eval);
}

static void key(call *c, rtq_key k) {
  int rc = rtq__argv_add_key(c->a, k);
  if (rc != 0 && c->rc == 0) c->rc = rc;
}

static void status_key(call *c, rtq_status s) { key(c, rtq_keys_status(c->k, s)); }
static void str(call *c, const char *s) { rtq_argv_add_str(c->a, s != NULL ? s : ""); }
static void bytes(call *c, const void *p, size_t n) { rtq_argv_add(c->a, p, n); }
static void u64(call *c, uint64_t v) { rtq_argv_add_u64(c->a, v); }
static void i64(call *c, int64_t v) { rtq_argv_add_i64(c->a, v); }
static void flag(call *c, bool v) { str(c, v ? "1" : "0"); }

static int end(const call *c) {
  if (c->rc != 0) return c->rc;
  return c->a->oom ? RTQ_ENOMEM : 0;
}

/* ---- create ---- */

int rtq__call_create_task(rtq_argv *keys, rtq_argv *vals, const rtq_keys *k,
                          const rtq__create_task *t) {
  call c = {keys, k, 0};
  key(&c, rtq_keys_task(k, t->id));
  key(&c, rtq_keys_queue(k, t->queue));
  c.a = vals;
  str(&c, t->id);
  str(&c, t->name);
  str(&c, t->queue);
  bytes(&c, t->env, t->env_len);
  bytes(&c, t->args, t->args_len);
  u64(&c, t->timeout_ms);
  u64(&c, t->max_retries);
  u64(&c, t->result_ttl_s);
  u64(&c, t->delay_ms);
  u64(&c, t->run_at_ms);
  u64(&c, t->retry_backoff_ms);
  if (c.rc != 0) return c.rc;
  return keys->oom || vals->oom ? RTQ_ENOMEM : 0;
}

int rtq__call_create(rtq_argv *a, const rtq_keys *k, bool use_eval, const rtq_argv *keys,
                     const rtq_argv *vals) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_CREATE, 4 + keys->argc, use_eval);
  key(&c, rtq_keys_delayed(k));
  status_key(&c, RTQ_STATUS_PENDING);
  key(&c, rtq_keys_queues(k));
  key(&c, rtq_keys_stats(k));
  for (int i = 0; i < keys->argc; i++) bytes(&c, keys->argv[i], keys->argvlen[i]);
  key(&c, rtq_keys_chan_events(k));
  for (int i = 0; i < vals->argc; i++) bytes(&c, vals->argv[i], vals->argvlen[i]);
  return end(&c);
}

/* ---- claim and take ---- */

int rtq__call_claim(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *worker_id,
                    uint64_t default_timeout_ms, const rtq__claim_task *t, int n) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_CLAIM, 4 + n, use_eval);
  key(&c, rtq_keys_processing(k, worker_id));
  status_key(&c, RTQ_STATUS_PENDING);
  status_key(&c, RTQ_STATUS_RUNNING);
  key(&c, rtq_keys_deadlines(k));
  for (int i = 0; i < n; i++) key(&c, rtq_keys_task(k, t[i].id));
  str(&c, worker_id);
  u64(&c, default_timeout_ms);
  key(&c, rtq_keys_chan_events(k));
  for (int i = 0; i < n; i++) {
    str(&c, t[i].id);
    bytes(&c, t[i].env, t[i].env_len);
  }
  return end(&c);
}

int rtq__call_take(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *worker_id,
                   uint64_t default_timeout_ms, const char *const *queues, int nqueues,
                   uint64_t max_envelope, uint64_t reply_budget, const int *moves, int nmoves) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_TAKE, 4 + nqueues, use_eval);
  key(&c, rtq_keys_processing(k, worker_id));
  status_key(&c, RTQ_STATUS_PENDING);
  status_key(&c, RTQ_STATUS_RUNNING);
  key(&c, rtq_keys_deadlines(k));
  for (int i = 0; i < nqueues; i++) key(&c, rtq_keys_queue(k, queues[i]));
  str(&c, worker_id);
  u64(&c, default_timeout_ms);
  key(&c, rtq_keys_chan_events(k));
  key(&c, rtq_keys_task_prefix(k));
  u64(&c, max_envelope);
  u64(&c, reply_budget);
  for (int i = 0; i < nmoves; i++) i64(&c, moves[i] + 1);
  return end(&c);
}

/* ---- finish ---- */

void rtq__finish_field(rtq__finish_task *t, const char *name, const void *val, size_t len) {
  if (val == NULL || len == 0 || t->nfields > RTQ__FINISH_FIELDS_MAX) return;
  if (t->nfields == RTQ__FINISH_FIELDS_MAX) {
    t->nfields++; /* one too many: rtq__call_finish_task refuses the task */
    return;
  }
  t->field[t->nfields] = name;
  t->val[t->nfields] = val;
  t->val_len[t->nfields++] = len;
}

void rtq__finish_field_str(rtq__finish_task *t, const char *name, const char *val) {
  rtq__finish_field(t, name, val, val != NULL ? strlen(val) : 0);
}

int rtq__call_finish(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *worker_id,
                     int64_t result_ttl_s, bool history, const rtq__run_group *runs, int nruns) {
  if (nruns < 0 || nruns > 256 || (nruns > 0 && runs == NULL)) return RTQ_EINVAL;
  call c;
  begin(&c, a, k, RTQ_SCRIPT_FINISH, 11, use_eval);
  key(&c, rtq_keys_processing(k, worker_id));
  status_key(&c, RTQ_STATUS_RUNNING);
  key(&c, rtq_keys_deadlines(k));
  key(&c, rtq_keys_history(k));
  key(&c, rtq_keys_stats(k));
  status_key(&c, RTQ_STATUS_PENDING);
  key(&c, rtq_keys_delayed(k));
  status_key(&c, RTQ_STATUS_COMPLETED);
  status_key(&c, RTQ_STATUS_FAILED);
  status_key(&c, RTQ_STATUS_CANCELLED);
  status_key(&c, RTQ_STATUS_TIMEOUT);
  str(&c, worker_id);
  i64(&c, result_ttl_s);
  flag(&c, history);
  key(&c, rtq_keys_chan_events(k));
  key(&c, rtq_keys_task_prefix(k));
  key(&c, rtq_keys_cancel_prefix(k));
  key(&c, rtq_keys_chan_task_prefix(k));
  key(&c, rtq_keys_runtime_prefix(k));
  i64(&c, nruns);
  for (int g = 0; g < nruns; g++) {
    int touched = 0;
    for (int i = 0; i < RTQ__RUN_BUCKETS; i++) touched += runs[g].count[i] > 0;
    if (runs[g].queue == NULL || rtq_validate_name(runs[g].queue) != 0) return RTQ_EINVAL;
    str(&c, runs[g].queue);
    u64(&c, runs[g].sum_us);
    i64(&c, touched);
    for (int i = 0; i < RTQ__RUN_BUCKETS; i++) {
      if (runs[g].count[i] == 0) continue;
      i64(&c, i);
      u64(&c, runs[g].count[i]);
    }
  }
  return end(&c);
}

int rtq__call_finish_task(rtq_argv *a, const rtq__finish_task *t) {
  if (t->nfields < 0 || t->nfields > RTQ__FINISH_FIELDS_MAX) return RTQ_EINVAL;
  call c = {a, NULL, 0};
  str(&c, t->id);
  bytes(&c, t->env, t->env_len);
  u64(&c, t->attempt);
  str(&c, rtq_status_name(t->status));
  bytes(&c, t->result, t->result != NULL ? t->result_len : 0);
  i64(&c, t->nfields);
  for (int i = 0; i < t->nfields; i++) {
    str(&c, t->field[i]);
    bytes(&c, t->val[i], t->val_len[i]);
  }
  return end(&c);
}

/* ---- one task at a time ---- */

int rtq__call_cancel(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                     int64_t result_ttl_s, bool history, int64_t flag_ttl_ms) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_CANCEL, 7, use_eval);
  key(&c, rtq_keys_task(k, id));
  status_key(&c, RTQ_STATUS_PENDING);
  status_key(&c, RTQ_STATUS_CANCELLED);
  key(&c, rtq_keys_history(k));
  key(&c, rtq_keys_cancel(k, id));
  key(&c, rtq_keys_stats(k));
  status_key(&c, RTQ_STATUS_RUNNING);
  str(&c, id);
  i64(&c, result_ttl_s);
  flag(&c, history);
  key(&c, rtq_keys_chan_events(k));
  key(&c, rtq_keys_chan_task(k, id));
  key(&c, rtq_keys_chan_cancel(k));
  i64(&c, flag_ttl_ms);
  return end(&c);
}

int rtq__call_progress(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                       const char *worker_id, uint64_t attempt, const char *pct,
                       const char *message) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_PROGRESS, 1, use_eval);
  key(&c, rtq_keys_task(k, id));
  str(&c, id);
  str(&c, worker_id);
  u64(&c, attempt);
  str(&c, pct);
  str(&c, message);
  key(&c, rtq_keys_chan_events(k));
  return end(&c);
}

int rtq__call_deadletter(rtq_argv *a, const rtq_keys *k, bool use_eval, rtq_key source,
                         const void *env, size_t env_len, const char *code, const char *reason,
                         const char *worker_id, const char *queue, const char *id,
                         int64_t result_ttl_s, bool history) {
  rtq_key task = {0}, cancel = {0};
  if (id != NULL && id[0] != '\0') {
    task = rtq_keys_task(k, id);
    cancel = rtq_keys_cancel(k, id);
  }
  bool with_task = task.len > 0 && cancel.len > 0;
  call c;
  begin(&c, a, k, RTQ_SCRIPT_DEADLETTER, with_task ? 10 : 3, use_eval);
  key(&c, rtq_keys_dead(k));
  key(&c, source);
  key(&c, rtq_keys_stats(k));
  if (with_task) {
    key(&c, task);
    status_key(&c, RTQ_STATUS_PENDING);
    status_key(&c, RTQ_STATUS_RUNNING);
    status_key(&c, RTQ_STATUS_FAILED);
    key(&c, rtq_keys_history(k));
    key(&c, cancel);
    key(&c, rtq_keys_deadlines(k));
  }
  bytes(&c, env, env_len);
  str(&c, code);
  str(&c, reason);
  str(&c, worker_id);
  str(&c, queue);
  str(&c, with_task ? id : "");
  i64(&c, result_ttl_s);
  flag(&c, history);
  key(&c, rtq_keys_chan_events(k));
  if (with_task)
    key(&c, rtq_keys_chan_task(k, id));
  else
    str(&c, ""); /* no task: the script publishes nothing for one */
  return end(&c);
}

int rtq__call_requeue(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                      const char *queue, const void *env, size_t env_len, const char *worker_id,
                      uint64_t attempt) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_REQUEUE, 6, use_eval);
  key(&c, rtq_keys_task(k, id));
  key(&c, rtq_keys_processing(k, worker_id));
  key(&c, rtq_keys_queue(k, queue));
  status_key(&c, RTQ_STATUS_RUNNING);
  status_key(&c, RTQ_STATUS_PENDING);
  key(&c, rtq_keys_deadlines(k));
  str(&c, id);
  bytes(&c, env, env_len);
  str(&c, worker_id);
  u64(&c, attempt);
  key(&c, rtq_keys_chan_events(k));
  return end(&c);
}

int rtq__call_retry(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                    const char *queue, const void *env, size_t env_len, rtq_status current) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_RETRY, 6, use_eval);
  key(&c, rtq_keys_task(k, id));
  key(&c, rtq_keys_queue(k, queue));
  status_key(&c, current);
  status_key(&c, RTQ_STATUS_PENDING);
  key(&c, rtq_keys_history(k));
  key(&c, rtq_keys_cancel(k, id));
  str(&c, id);
  bytes(&c, env, env_len);
  str(&c, rtq_status_name(current));
  key(&c, rtq_keys_chan_events(k));
  return end(&c);
}

int rtq__call_dead_requeue(rtq_argv *a, const rtq_keys *k, bool use_eval,
                           const rtq__dead_requeue *d) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_DEAD_REQUEUE, 11, use_eval);
  key(&c, rtq_keys_dead(k));
  key(&c, rtq_keys_task(k, d->id));
  key(&c, rtq_keys_queue(k, d->queue));
  key(&c, rtq_keys_queues(k));
  key(&c, rtq_keys_stats(k));
  status_key(&c, RTQ_STATUS_PENDING);
  status_key(&c, RTQ_STATUS_FAILED);
  status_key(&c, RTQ_STATUS_TIMEOUT);
  status_key(&c, RTQ_STATUS_CANCELLED);
  key(&c, rtq_keys_history(k));
  key(&c, rtq_keys_cancel(k, d->id));
  bytes(&c, d->record, d->record_len);
  bytes(&c, d->env, d->env_len);
  str(&c, d->id);
  str(&c, d->name);
  str(&c, d->queue);
  bytes(&c, d->args, d->args_len);
  u64(&c, d->timeout_ms);
  u64(&c, d->max_retries);
  u64(&c, d->result_ttl_s);
  key(&c, rtq_keys_chan_events(k));
  return end(&c);
}

int rtq__call_dead_purge(rtq_argv *a, const rtq_keys *k, bool use_eval, uint64_t most) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_DEAD_PURGE, 1, use_eval);
  key(&c, rtq_keys_dead(k));
  u64(&c, most);
  return end(&c);
}

int rtq__call_recover(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *dead_wid,
                      const char *id, const char *queue, const void *env, size_t env_len,
                      int64_t max_deliveries, int64_t result_ttl_s, bool history) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_RECOVER, 13, use_eval);
  key(&c, rtq_keys_processing(k, dead_wid));
  key(&c, rtq_keys_task(k, id));
  key(&c, rtq_keys_queue(k, queue));
  status_key(&c, RTQ_STATUS_PENDING);
  status_key(&c, RTQ_STATUS_RUNNING);
  key(&c, rtq_keys_deadlines(k));
  status_key(&c, RTQ_STATUS_FAILED);
  key(&c, rtq_keys_history(k));
  key(&c, rtq_keys_stats(k));
  key(&c, rtq_keys_cancel(k, id));
  key(&c, rtq_keys_dead(k));
  status_key(&c, RTQ_STATUS_CANCELLED);
  key(&c, rtq_keys_delayed(k));
  bytes(&c, env, env_len);
  str(&c, id);
  str(&c, dead_wid);
  i64(&c, max_deliveries);
  i64(&c, result_ttl_s);
  flag(&c, history);
  key(&c, rtq_keys_chan_events(k));
  key(&c, rtq_keys_chan_task(k, id));
  return end(&c);
}

int rtq__call_expire_running(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                             int64_t grace_ms, int64_t heartbeat_ttl_ms, int64_t result_ttl_s,
                             bool history) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_EXPIRE_RUNNING, 8, use_eval);
  key(&c, rtq_keys_task(k, id));
  key(&c, rtq_keys_deadlines(k));
  status_key(&c, RTQ_STATUS_RUNNING);
  status_key(&c, RTQ_STATUS_TIMEOUT);
  key(&c, rtq_keys_history(k));
  key(&c, rtq_keys_cancel(k, id));
  key(&c, rtq_keys_stats(k));
  key(&c, rtq_keys_workers(k));
  str(&c, id);
  i64(&c, grace_ms);
  i64(&c, heartbeat_ttl_ms);
  i64(&c, result_ttl_s);
  flag(&c, history);
  key(&c, rtq_keys_chan_events(k));
  key(&c, rtq_keys_chan_task(k, id));
  key(&c, rtq_keys_chan_cancel(k));
  return end(&c);
}

int rtq__call_promote(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *queue,
                      const void *env, size_t env_len) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_PROMOTE, 2, use_eval);
  key(&c, rtq_keys_delayed(k));
  key(&c, rtq_keys_queue(k, queue));
  bytes(&c, env, env_len);
  return end(&c);
}

int rtq__call_forget(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_FORGET, 6, use_eval);
  key(&c, rtq_keys_task(k, id));
  key(&c, rtq_keys_history(k));
  status_key(&c, RTQ_STATUS_COMPLETED);
  status_key(&c, RTQ_STATUS_FAILED);
  status_key(&c, RTQ_STATUS_CANCELLED);
  status_key(&c, RTQ_STATUS_TIMEOUT);
  str(&c, id);
  return end(&c);
}

int rtq__call_trim(rtq_argv *a, const rtq_keys *k, bool use_eval, int64_t cap, int64_t most,
                   int64_t budget_us) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_TRIM, 5, use_eval);
  key(&c, rtq_keys_history(k));
  status_key(&c, RTQ_STATUS_COMPLETED);
  status_key(&c, RTQ_STATUS_FAILED);
  status_key(&c, RTQ_STATUS_CANCELLED);
  status_key(&c, RTQ_STATUS_TIMEOUT);
  i64(&c, cap);
  i64(&c, most);
  i64(&c, budget_us);
  key(&c, rtq_keys_task_prefix(k));
  return end(&c);
}

int rtq__call_handback(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                       const void *env, size_t env_len, const char *worker_id, int64_t delay_ms,
                       int64_t most) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_HANDBACK, 6, use_eval);
  key(&c, rtq_keys_task(k, id));
  key(&c, rtq_keys_processing(k, worker_id));
  key(&c, rtq_keys_delayed(k));
  status_key(&c, RTQ_STATUS_PENDING);
  status_key(&c, RTQ_STATUS_RUNNING);
  key(&c, rtq_keys_deadlines(k));
  str(&c, id);
  bytes(&c, env, env_len);
  str(&c, worker_id);
  i64(&c, delay_ms);
  i64(&c, most);
  key(&c, rtq_keys_chan_events(k));
  return end(&c);
}

int rtq__call_lease(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *owner,
                    int64_t ttl_ms, bool acquire) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_LEASE, 1, use_eval);
  key(&c, rtq_keys_lease(k));
  str(&c, owner);
  i64(&c, ttl_ms);
  str(&c, acquire ? "acquire" : "release");
  return end(&c);
}

int rtq__call_heartbeat(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *worker_id,
                        int64_t ttl_ms, const rtq__hb_field *fields, int nfields) {
  call c;
  begin(&c, a, k, RTQ_SCRIPT_HEARTBEAT, 2, use_eval);
  key(&c, rtq_keys_worker(k, worker_id));
  key(&c, rtq_keys_workers(k));
  str(&c, worker_id);
  i64(&c, ttl_ms);
  for (int i = 0; i < nfields; i++) {
    str(&c, fields[i].name);
    str(&c, fields[i].value);
  }
  return end(&c);
}
