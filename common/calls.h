/*
 * calls.h - one typed call builder per Lua script: the only place that
 * knows the order of a script's KEYS and ARGV.
 *
 * Every caller (client, worker, broker, rtq-bench and the tests that play
 * a worker or a broker) builds its script calls here, so a script's layout
 * and the header comment of common/lua/<name>.lua (copied in the appendix
 * of docs/PROTOCOL.md; tests/unit/test_calls.c keeps the two equal) change
 * together. Keys are built from the key schema (keys.h), channels too.
 *
 * Each builder resets a and lays out "EVALSHA <sha> <numkeys> KEYS... ARGV..."
 * (EVAL <body> when use_eval or while the SHA is unknown, see
 * rtq_script_argv). Returns 0; RTQ_EINVAL when a name gave no key (an
 * invalid id, queue or worker id: a must not be sent); RTQ_ENOMEM (a->oom
 * is set). Strings are borrowed for the call only: a keeps copies.
 */
#ifndef RTQ_CALLS_H
#define RTQ_CALLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "argv.h"
#include "keys.h"
#include "rtq/common.h"
#include "runtime.h"

/* ---- create: a batch of tasks, all or nothing ---- */

/* Value type: one task of a create call. */
typedef struct rtq__create_task {
  const char *id, *name, *queue;
  const void *env;  /* the encoded envelope */
  size_t env_len;
  const void *args; /* the args map (msgpack) */
  size_t args_len;
  uint64_t timeout_ms, max_retries, result_ttl_s, delay_ms, run_at_ms, retry_backoff_ms;
} rtq__create_task;

/* Appends one task's keys to keys and its values to vals, so a caller can
 * gather a batch task by task (and roll one back with rtq_argv_pop). */
int rtq__call_create_task(rtq_argv *keys, rtq_argv *vals, const rtq_keys *k,
                          const rtq__create_task *t);
/* The call for the tasks gathered by rtq__call_create_task. */
int rtq__call_create(rtq_argv *a, const rtq_keys *k, bool use_eval, const rtq_argv *keys,
                     const rtq_argv *vals);

/* ---- claim: the tasks of envelopes a worker moved with BLMOVE ---- */

typedef struct rtq__claim_task {
  const char *id;
  const void *env;
  size_t env_len;
} rtq__claim_task;

int rtq__call_claim(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *worker_id,
                    uint64_t default_timeout_ms, const rtq__claim_task *t, int n);

/* ---- take: a non-blocking pop round and its claims ---- */

/* queues: the worker's queue names (KEYS 5..); moves: for each move, the
 * 0-based index of its queue in queues. */
int rtq__call_take(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *worker_id,
                   uint64_t default_timeout_ms, const char *const *queues, int nqueues,
                   uint64_t max_envelope, uint64_t reply_budget, const int *moves, int nmoves);

/* ---- finish: a batch of completions ---- */

#define RTQ__FINISH_FIELDS_MAX 7

/* Value type: one completion. fields are optional name/value pairs among
 * those finish.lua accepts (error_code, error_message, error_details,
 * error_traceback, progress, progress_message, jitter). */
typedef struct rtq__finish_task {
  const char *id;
  const void *env;
  size_t env_len;
  uint64_t attempt;
  rtq_status status;
  const void *result; /* msgpack, NULL = none */
  size_t result_len;
  int nfields;
  const char *field[RTQ__FINISH_FIELDS_MAX];
  const void *val[RTQ__FINISH_FIELDS_MAX];
  size_t val_len[RTQ__FINISH_FIELDS_MAX];
} rtq__finish_task;

/* Adds a field when value is non-empty (NULL or len 0: left out). More
 * than RTQ__FINISH_FIELDS_MAX makes rtq__call_finish_task refuse the task
 * (RTQ_EINVAL) rather than drop one silently. */
void rtq__finish_field(rtq__finish_task *t, const char *name, const void *val, size_t len);
void rtq__finish_field_str(rtq__finish_task *t, const char *name, const char *val);

/* Value type: the runs of one queue that a finish call adds to its
 * run-time histogram (runtime.h): count[i] runs in bucket i (0 = none,
 * left out of the call) and their total in microseconds. */
typedef struct rtq__run_group {
  const char *queue;
  uint64_t sum_us;
  uint64_t count[RTQ__RUN_BUCKETS];
} rtq__run_group;

/* Starts a finish call with nruns run-time groups (runs may be NULL when
 * nruns is 0; at most 256, each queue once, the counts' total at most the
 * tasks of the call); rtq__call_finish_task then appends each task. */
int rtq__call_finish(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *worker_id,
                     int64_t result_ttl_s, bool history, const rtq__run_group *runs, int nruns);
int rtq__call_finish_task(rtq_argv *a, const rtq__finish_task *t);

/* ---- one task at a time ---- */

int rtq__call_cancel(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                     int64_t result_ttl_s, bool history, int64_t flag_ttl_ms);
/* pct: the progress as text ("42.5"); message may be NULL. */
int rtq__call_progress(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                       const char *worker_id, uint64_t attempt, const char *pct,
                       const char *message);
/* source: the list or zset the envelope waits in (a processing list, or
 * the delayed set); id NULL or "" when it could not be read, or when it
 * gives no key: the task part is then left out. */
int rtq__call_deadletter(rtq_argv *a, const rtq_keys *k, bool use_eval, rtq_key source,
                         const void *env, size_t env_len, const char *code, const char *reason,
                         const char *worker_id, const char *queue, const char *id,
                         int64_t result_ttl_s, bool history);
int rtq__call_requeue(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                      const char *queue, const void *env, size_t env_len, const char *worker_id,
                      uint64_t attempt);
/* current: the status the task is expected to have (and leave). */
int rtq__call_retry(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                    const char *queue, const void *env, size_t env_len, rtq_status current);
/* Value type: a dead letter to requeue, its payload decoded by the caller
 * (dead_requeue.lua). record: the record's bytes as P:dead holds them. */
typedef struct rtq__dead_requeue {
  const void *record, *env, *args;
  size_t record_len, env_len, args_len;
  const char *id, *name, *queue;
  uint64_t timeout_ms, max_retries, result_ttl_s;
} rtq__dead_requeue;
int rtq__call_dead_requeue(rtq_argv *a, const rtq_keys *k, bool use_eval,
                           const rtq__dead_requeue *d);
/* Drops the most oldest records of P:dead (1..1000). */
int rtq__call_dead_purge(rtq_argv *a, const rtq_keys *k, bool use_eval, uint64_t most);
/* The envelope of task id (queue) in dead worker dead_wid's processing list. */
int rtq__call_recover(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *dead_wid,
                      const char *id, const char *queue, const void *env, size_t env_len,
                      int64_t max_deliveries, int64_t result_ttl_s, bool history);
int rtq__call_expire_running(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                             int64_t grace_ms, int64_t heartbeat_ttl_ms, int64_t result_ttl_s,
                             bool history);
/* Where ARGV[1] (the id) sits in an expire_running call. */
#define RTQ__EXPIRE_RUNNING_ID_ARG (3 + 8)
int rtq__call_promote(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *queue,
                      const void *env, size_t env_len);
/* An expired task id, out of the indexes. */
int rtq__call_forget(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id);
/* One bounded step of the history cap: at most `most` entries (1..1000;
 * 0: settle the sets' tables instead) and about budget_us of Redis time;
 * trim.lua replies {removed, over} ({0, 0, rounds} when settling). */
int rtq__call_trim(rtq_argv *a, const rtq_keys *k, bool use_eval, int64_t cap, int64_t most,
                   int64_t budget_us);
/* The envelope of task id in worker_id's processing list, handed back
 * (delay_ms, at most most handbacks in all). */
int rtq__call_handback(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *id,
                       const void *env, size_t env_len, const char *worker_id, int64_t delay_ms,
                       int64_t most);
/* acquire, or release. */
int rtq__call_lease(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *owner,
                    int64_t ttl_ms, bool acquire);

/* Value type: one field of a worker record. */
typedef struct rtq__hb_field {
  const char *name, *value;
} rtq__hb_field;
int rtq__call_heartbeat(rtq_argv *a, const rtq_keys *k, bool use_eval, const char *worker_id,
                        int64_t ttl_ms, const rtq__hb_field *fields, int nfields);

#endif
