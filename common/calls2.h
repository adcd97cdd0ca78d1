/*
 * calls2.h - one typed call builder per protocol v2 script (common/lua2),
 * and parsers for the structured replies: the only place that knows the
 * order of a v2 script's KEYS and ARGV.
 *
 * Each builder resets a and lays out "EVALSHA <sha> <numkeys> KEYS... ARGV..."
 * following the KEYS and ARGV lines of the script's header, in that order
 * (EVAL <body> when use_eval or while the SHA is unknown, see
 * rtq_script2_argv); run it with rtq_script2_run. Keys, key prefixes and
 * channels come from keys2.h, all under the queue's hash tag (the scripts
 * refuse anything else). Returns 0; RTQ_EINVAL when a name gave no key (a
 * bad queue, worker id or id: a must not be sent) or a count is out of the
 * script's range; RTQ_ENOMEM (a->oom is set). Strings are borrowed for the
 * call only: a keeps copies. Values (numbers, ids in ARGV, texts) are
 * checked by the script itself, which refuses a bad call before its first
 * write.
 *
 * The parsers read a reply the caller still owns: strings they return
 * point into it and stay valid until it is freed. They return 0 or
 * RTQ_EDECODE when the reply does not have the script's shape (an error
 * reply included: check rtq_script2_run's return first).
 */
#ifndef RTQ_CALLS2_H
#define RTQ_CALLS2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "argv.h"
#include "keys2.h"
#include "rtq/common.h"

/* Value type: one field of a worker record (the heartbeat's call). */
typedef struct rtq__hb_field {
  const char *name, *value;
} rtq__hb_field;

/* Per call, as the scripts bound it. */
#define RTQ__V2_MAX_TASKS 64   /* create, take, claim, finish */
#define RTQ__V2_MAX_SWEEP 100  /* recover entries, promote and prune counts */
#define RTQ__V2_MAX_PAIRS 64   /* finish histogram pairs, heartbeat fields */

/* Value type: how ended tasks are kept (finish, cancel, deadletter,
 * recover). result_ttl_s: the default lifetime of an ended task (a task's
 * own `rt` wins); history: push ended ids onto the done lists (off: no
 * list, and at most 60 s of life); cap: the longest a done list gets. */
typedef struct rtq__keep2 {
  int64_t result_ttl_s;
  bool history;
  int64_t cap;
} rtq__keep2;

/* The longest done list the scripts take (their history cap's bound). */
#define RTQ__V2_MAX_HISTORY 10000000
/* How ended tasks are kept, from the task_result_ttl, enable_task_history
 * and max_task_history settings, for every process alike: a max_history
 * of 0 keeps no history, and one over
 * RTQ__V2_MAX_HISTORY is cut to it (the scripts refuse a larger cap). */
rtq__keep2 rtq__keep2_settings(int64_t result_ttl_s, bool history, int64_t max_history);

/* Value type: a byte string (an entry as read from a list, args). */
typedef struct rtq__bytes2 {
  const void *p;
  size_t len;
} rtq__bytes2;

/* ---- create ---- */

/* Value type: one task of a create call. Options at 0 are not given (the
 * defaults apply); run_at_ms wins over delay_ms. */
typedef struct rtq__create2_task {
  const char *id, *name;
  const void *args; /* msgpack; NULL or len 0: none */
  size_t args_len;
  uint64_t timeout_ms, max_retries, result_ttl_s, retry_backoff_ms, delay_ms, run_at_ms;
  const char *signature; /* "kid:hex"; NULL or "": none */
  bool fresh_id;         /* the id was made for this call (rtq_id2_new), never sent before */
} rtq__create2_task;

/* 1..64 tasks of one queue, all or nothing: 3 values per task when no
 * task gives an option or a signature, else 10; the ids are sent as
 * fresh (not looked up) when every task's is (create.lua's ARGV). */
int rtq__call2_create(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                      const rtq__create2_task *t, int n);

/* Value type: one entry of create's reply. */
typedef struct rtq__create2_result {
  bool created;        /* false: the id existed already, nothing enqueued */
  int64_t created_at;  /* created: Redis ms */
  const char *status;  /* not created: the status it has (borrowed) */
} rtq__create2_result;

/* out[0..cap): one per task; *n the count. RTQ_EDECODE also when the reply
 * holds more than cap entries. */
int rtq__reply2_create(const redisReply *r, rtq__create2_result *out, int cap, int *n);

/* ---- the task hash's args ---- */

/*
 * Args of 65..256 bytes are stored in the task hash in 64-byte chunks x,
 * x2, x3, x4 (docs/PROTOCOL.md section 3). part[0..4) are the values read
 * for those four fields (NULL or a nil reply: absent). With x2 present,
 * *out gets x x2 x3 x4, those present, joined in that order (malloc'd,
 * NUL-terminated; *len its length), the rule the claim script follows;
 * without x2 there is nothing to join and *out is NULL. 0 or RTQ_ENOMEM.
 */
int rtq__args2_join(const redisReply *const part[4], char **out, size_t *len);

/* ---- take and claim ---- */

/* moves 1..64; reply_budget: stop moving once the args returned reach it.
 * Both take and claim apply the queue's limits (rtq_keys2_limit). */
int rtq__call2_take(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                    const char *worker_id, uint64_t default_timeout_ms, int moves,
                    uint64_t reply_budget);
/* The 1..64 ids a BLMOVE put on worker_id's processing list. */
int rtq__call2_claim(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                     const char *worker_id, uint64_t default_timeout_ms,
                     const char *const *ids, int n);

typedef enum rtq__claim2_kind {
  RTQ__CLAIM2_OK,      /* running under us now: run it */
  RTQ__CLAIM2_SKIP,    /* not pending (status): dropped from the list, not run */
  RTQ__CLAIM2_MISSING, /* no task hash: dead-letter the id */
  RTQ__CLAIM2_BAD,     /* id or stored fields invalid (reason): dead-letter it */
  RTQ__CLAIM2_LIMITED  /* a limit allows no claim for wait_ms: take stopped its
                        * moves (the last entry, no id); claim put the id back
                        * at the front of the queue */
} rtq__claim2_kind;

/* Value type: one entry of take's or claim's reply; strings borrowed. */
typedef struct rtq__claim2_entry {
  rtq__claim2_kind kind;
  const char *id;
  size_t id_len;
  const char *name;                     /* ok */
  int64_t attempt, deadline_ms, timeout_ms; /* ok */
  const char *args;                     /* ok: msgpack, args_len bytes ("" none) */
  size_t args_len;
  const char *signature;                /* ok: "" when unsigned */
  const char *status;                   /* skip */
  const char *reason;                   /* bad */
  int64_t wait_ms;                      /* limited */
  /* ok: to, mr, rt, bo as the task hash stores them ("" absent), which a
   * task signature covers; NULL from a script that does not send them */
  const char *to_s, *mr_s, *rt_s, *bo_s;
} rtq__claim2_entry;

int rtq__reply2_claim(const redisReply *r, rtq__claim2_entry *out, int cap, int *n);

/* ---- finish ---- */

/* Value type: one completion. The optional fields are sent only when set:
 * a NULL (or, for bytes, len 0) text, progress < 0, jitter_ms 0. A task
 * that ends cancelled or timeout gets the code CANCELLED / TIMEOUT
 * whatever error_code says. */
typedef struct rtq__finish2_task {
  const char *id;
  uint64_t attempt;
  rtq_status status; /* completed, failed, cancelled or timeout */
  const void *result; /* msgpack; NULL or len 0: none */
  size_t result_len;
  const char *error_code, *error_message, *traceback, *progress_message;
  const void *error_details; /* msgpack */
  size_t error_details_len;
  int progress;       /* 0..100; < 0: leave it */
  uint64_t jitter_ms; /* added to a retry's backoff */
  const char *outcome_signature; /* "kid:hex" (rs); NULL: unsigned */
} rtq__finish2_task;

/* Value type: one run-time histogram bucket and how many tasks of the call
 * fell in it. */
typedef struct rtq__rt_pair2 {
  const char *field;
  uint64_t count;
} rtq__rt_pair2;

/* 1..64 completions by worker_id of tasks of queue, with 0..64 histogram
 * pairs summed over them. */
int rtq__call2_finish(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                      const char *worker_id, const rtq__keep2 *keep, const rtq__rt_pair2 *pairs,
                      int npairs, const rtq__finish2_task *t, int n);

typedef enum rtq__finish2_kind {
  RTQ__FINISH2_OK,    /* ended with status */
  RTQ__FINISH2_RETRY, /* failed with retries left: pending again at run_at_ms */
  RTQ__FINISH2_STALE  /* fenced off: not ours any more (status it has, "" none) */
} rtq__finish2_kind;

/* Value type: one entry of finish's reply; status borrowed. */
typedef struct rtq__finish2_entry {
  rtq__finish2_kind kind;
  const char *status; /* ok, stale */
  int64_t run_at_ms;  /* retry */
} rtq__finish2_entry;

int rtq__reply2_finish(const redisReply *r, rtq__finish2_entry *out, int cap, int *n);

/* ---- one task at a time ---- */

/* progress 0..100; message NULL or "" leaves the message. Reply: 1
 * written, 0 fenced off. */
int rtq__call2_progress(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                        const char *id, const char *worker_id, uint64_t attempt, int progress,
                        const char *message);
/* Registers a waiter (after SSUBSCRIBE to rtq_keys2_chan_waiter). Reply:
 * the status, or nil for no such task. */
int rtq__call2_wait(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                    const char *id);
/* Reply: {'cancelled'} | {'requested'} | {'state', s} | {'notfound'}. */
int rtq__call2_cancel(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                      const char *id, const rtq__keep2 *keep);
/* current: failed, timeout or cancelled. Reply: {'ok'} | {'state', s} |
 * {'notfound'}. */
int rtq__call2_retry(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                     const char *id, rtq_status current);
/* Reply: {'requeued'} | {'stale', s}. */
int rtq__call2_requeue(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                       const char *id, const char *worker_id, uint64_t attempt);
/* Reply: {'handed_back', n, due} | {'exhausted', n} | {'missing'} |
 * {'dropped', s} | {'gone'}. */
int rtq__call2_handback(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                        const char *id, const char *worker_id, uint64_t attempt,
                        uint64_t delay_ms, uint64_t most);
/* entry as it was read from the source: worker_id's processing list, or
 * the delayed set when from_delayed. worker_id is recorded either way.
 * Reply: {'ok', failed_task 0/1} | {'gone', 0}. */
int rtq__call2_deadletter(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                          rtq__bytes2 entry, const char *code, const char *reason,
                          const char *worker_id, bool from_delayed, const rtq__keep2 *keep);

/* ---- broker sweeps ---- */

/* 1..100 entries of dead_wid's processing list of queue, as LRANGE read
 * them. max_deliveries: a task delivered that often ends WORKER_LOST. */
int rtq__call2_recover(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                       const char *dead_wid, uint64_t max_deliveries, uint64_t grace_ms,
                       const rtq__keep2 *keep, const rtq__bytes2 *entries, int n);

/* Appends to a cancel, backstop, recover or deadletter call (built just
 * before) one end signature record: the signature sig of the end `status`
 * of task id, made for the attempt and claim time (`a`, `b`; NULL or ""
 * when absent) its hash held when read; the script stores it with the end
 * it writes only when the hash still holds them (docs/SECURITY.md). */
int rtq__call2_end_sig(rtq_argv *a, const char *id, const char *attempt, const char *claimed_at,
                       const char *status, const char *sig);

typedef enum rtq__recover2_kind {
  RTQ__RECOVER2_GONE,     /* another broker took it */
  RTQ__RECOVER2_REQUEUED, /* pending again (attempt) */
  RTQ__RECOVER2_ENDED,    /* ended with status (failed, cancelled, timeout; attempt) */
  RTQ__RECOVER2_DROPPED,  /* not ours to recover (status) */
  RTQ__RECOVER2_DEAD      /* dead-lettered (code) */
} rtq__recover2_kind;

/* Value type: one entry of recover's reply; strings borrowed. */
typedef struct rtq__recover2_entry {
  rtq__recover2_kind kind;
  int64_t attempt;    /* requeued, ended */
  const char *status; /* ended, dropped */
  const char *code;   /* dead */
} rtq__recover2_entry;

int rtq__reply2_recover(const redisReply *r, rtq__recover2_entry *out, int cap, int *n);

/* Moves up to n (1..100) due ids onto queue. */
int rtq__call2_promote(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue, int n);

/* Value type: promote's reply; bad borrowed (nbad entries, each a string
 * reply the broker dead-letters from the delayed set). */
typedef struct rtq__promote2_result {
  int64_t moved;
  size_t nbad;
  redisReply **bad;
  int64_t next_due_ms; /* -1: the delayed set is empty */
} rtq__promote2_result;

int rtq__reply2_promote(const redisReply *r, rtq__promote2_result *out);

/* Drops up to n (1..100) expired ids from the old end of done:<status>.
 * Reply: the count. */
int rtq__call2_prune(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                     rtq_status status, int n);

/* The timeout backstop over a live worker's processing list of queue: up
 * to n (1..100) entries from offset. Reply (rtq__reply2_backstop). */
int rtq__call2_backstop(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                        const char *worker_id, uint64_t grace_ms, const rtq__keep2 *keep,
                        int64_t offset, int n);

/* Value type: backstop's reply; ended borrowed (nended ids, each a string
 * reply: the tasks it ended timeout). */
typedef struct rtq__backstop2_result {
  int64_t read; /* entries read; below n: the list ended */
  size_t nended;
  redisReply **ended;
} rtq__backstop2_result;

int rtq__reply2_backstop(const redisReply *r, rtq__backstop2_result *out);

/* ---- operator sweeps ---- */

/* Cancels up to n (1..100) pending tasks of queue, oldest first, from the
 * queue then the delayed set. Reply (rtq__reply2_counts): {cancelled,
 * dropped, left}; call again while left is not 0. */
int rtq__call2_purge(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue, int n,
                     const rtq__keep2 *keep);
/* Deletes up to n (1..100) tasks that ended with status at or before
 * cutoff_ms (0: any time), oldest first. Reply (rtq__reply2_counts):
 * {deleted, dropped, more}; call again while more is 1. */
int rtq__call2_delete(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                      rtq_status status, int n, uint64_t cutoff_ms);

/* The three integers of purge's and delete's replies. */
int rtq__reply2_counts(const redisReply *r, int64_t out[3]);

/* ---- dead letters ---- */

/* The task of one dead letter of queue back to pending (dead_requeue.lua;
 * record: the letter's exact bytes as read from the queue's dead list).
 * Reply: {'ok', id} | {'gone'} | {'notask', id} | {'bad', id, why} |
 * {'state', id, status}: rtq__reply2_tag reads it. */
int rtq__call2_dead_requeue(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *queue,
                            rtq__bytes2 record);

/* ---- namespace scripts ---- */

/* Value type: one field of a worker record. */
typedef struct rtq__field2 {
  const char *name, *value;
} rtq__field2;

/* 0..64 fields. Reply: Redis now (ms). */
int rtq__call2_heartbeat(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *worker_id,
                         int64_t ttl_ms, const rtq__field2 *fields, int nfields);
/* acquire, or release. Reply: 1 held (released), 0 someone else's. */
int rtq__call2_lease(rtq_argv *a, const rtq_keys2 *k, bool use_eval, const char *owner,
                     int64_t ttl_ms, bool acquire);

/* ---- tagged replies ---- */

/* Value type: a reply of the form {tag, v1, v2} (cancel, retry, requeue,
 * handback, deadletter): each v an integer (num) or a string (str, NULL
 * when the value is an integer); n values, 0..2. Borrowed. */
typedef struct rtq__tag2 {
  const char *tag;
  int n;
  const char *str[2];
  int64_t num[2];
} rtq__tag2;

int rtq__reply2_tag(const redisReply *r, rtq__tag2 *out);

#endif
