/*
 * client_internal.h - what the client's source files share: the handle,
 * the connection pool, the per-thread error detail and small helpers.
 * Not installed; producers see only rtq/client.h.
 */
#ifndef RTQ_CLIENT_INTERNAL_H
#define RTQ_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "argv.h"
#include "clock.h"
#include "conn.h"
#include "keys2.h"
#include "rtq/client.h"
#include "sign.h"

struct rtq_client {
  uint64_t serial;           /* tells this client's thread-local errors apart */
  rtq_keys2 keys2;           /* the namespace's keys */
  char *url;
  char default_queue[RTQ_TASK_ID_SIZE];
  int connect_timeout_ms;
  int command_timeout_ms;
  int reply_spin_us;         /* conn spin_us: 0 never, else microseconds */
  size_t max_payload;
  int result_ttl_s;
  int history;               /* 1 or 0 */
  int history_cap;           /* max_task_history: protocol 2's cancel caps
                              * the done list itself */
  int wait_replicas;         /* 0: no WAIT after a create */
  int wait_timeout_ms;
  rtq_sign_keys *sign_keys;   /* protocol 2: signs the tasks it creates */
  rtq_sign_keys *result_keys; /* protocol 2: verifies the outcomes it reads */
  rtq_sign_keys *task_keys;   /* protocol 2: verifies the ends producers and
                               * the broker signed (NULL: sign_keys do) */

  /* Protocol 2: queues this client knows are in {ns}:queues (it
   * registered them, or found a task there), under mu. */
  char (*known)[RTQ_TASK_ID_SIZE];
  int nknown;

  /* The pool: idle holds connections nobody uses; total counts those that
   * exist or are being opened. Waiters sleep on cv until one comes back. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  rtq_conn **idle;
  int nidle;
  int total;
  int max;
};

/* How many registered queues a client remembers (then it SADDs again). */
#define RTQ__KNOWN_QUEUES 64

/* Sets the calling thread's error detail for c (NULL: for rtq_client_new). */
void rtq__client_err(const rtq_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Clears it: called at the start of each public call. */
void rtq__client_clear_err(const rtq_client *c);
/* Copies a connection's error text as the detail; returns rc. */
int rtq__client_conn_err(const rtq_client *c, rtq_conn *conn, int rc, const char *what);

/* Borrows a pooled connection, opening one when none is idle and the pool
 * is not full, else waiting. RTQ_ECONN (detail set) when opening fails. */
int rtq__pool_get(rtq_client *c, rtq_conn **out);
/* Gives it back (dropped connections too: they reconnect on next use). */
void rtq__pool_put(rtq_client *c, rtq_conn *conn);
/* Closes the idle pooled connections when no call holds one, so a client
 * that only waits (a CLI `rtq wait`) keeps one connection, its
 * subscription, instead of two. A client busy in other threads keeps its
 * pool. */
void rtq__pool_trim(rtq_client *c);
/* Opens a connection outside the pool with the client's URL and timeouts;
 * command_timeout_ms 0 means the client's. */
int rtq__client_connect(rtq_client *c, int command_timeout_ms, rtq_conn **out);

/* One command on a pooled connection; on RTQ_ECONN it is sent once more on
 * a fresh connection (use only for commands that are safe to repeat). The
 * detail is set on error; *reply is the caller's (may be NULL on error). */
int rtq__client_command(rtq_client *c, const rtq_argv *a, redisReply **reply);
/* rtq__client_command for a command of n NUL-terminated words (keys as
 * keys.c built them). reply may be NULL to discard it; on success *reply
 * is the caller's to free. An error reply is RTQ_EREDIS with its text in
 * errstr, as for rtq__client_command. */
int rtq__client_words(rtq_client *c, redisReply **reply, int n, const char *const *words);

/* Up to RTQ__MULTI_MAX commands, steps[i] the NULL-ended words of one
 * (each naming its key first, keys of one hash tag; steps NULL-ended too),
 * run as one MULTI/EXEC on a pooled connection, so no reader sees a part
 * of them and a process that dies between them leaves none half done.
 * MULTI's answer is awaited before the commands go: behind a refused
 * MULTI each would run on its own. On success *exec (may be NULL) gets
 * EXEC's array of replies, the caller's to free. RTQ_EREDIS when MULTI or
 * a command was refused (nothing ran) or a command failed as it ran (a key
 * of the wrong type; the others ran: Redis has no rollback); RTQ_ECONN
 * when the connection failed (it may or may not have run). On a cluster, a
 * transaction refused because its slot moved (MOVED: nothing ran) goes
 * once more, to the new node; otherwise never resent. Detail set on
 * error. */
#define RTQ__MULTI_MAX 4
int rtq__client_multi(rtq_client *c, redisReply **exec, const char *const *const *steps);

/* One script call on a pooled connection (rtq_script2_run: EVALSHA, EVAL
 * on NOSCRIPT); never resent on a lost connection, since a script is not
 * safe to repeat in general. Detail set on error; *reply is the caller's
 * (may be NULL on error). */
int rtq__client_script2(rtq_client *c, rtq_argv *a, redisReply **reply);

/* After a write on conn: WAIT for c's wait_replicas (nothing when 0).
 * 0 when enough replicas acknowledged; otherwise RTQ_EREPLICAS with the
 * detail set (a failed WAIT included: the write's replication is then
 * unknown). *acked (may be NULL) gets the count. */
int rtq__client_wait_replicas(rtq_client *c, rtq_conn *conn, int *acked);

/* Checks a caller-given name against the name pattern; RTQ_EINVAL with a
 * detail naming the argument ("task id") otherwise. */
int rtq__check_name(const rtq_client *c, const char *what, const char *s);

/* ---- protocol 2 operations (limits.c, purge.c, tasks_delete.c) ---- */

/* Test seam: called after each step of rtq_queue_purge and
 * rtq_tasks_delete with the queue, so a test can enqueue meanwhile or let
 * time pass. NULL (the default) in production. */
extern void (*rtq__sweep_step_hook)(const char *queue);
/* Runs the purge or delete call a builder laid out in a (built: the
 * builder's return) and reads its three counts into v; destroys a. what
 * names the step in the detail. */
int rtq__sweep2_step(rtq_client *c, rtq_argv *a, int built, const char *what, int64_t v[3]);
/* A queue's limits from the reply of HMGET {ns:Q}:limit rate burst conc,
 * as the workers' gate reads them (a value it would not apply reads 0). */
void rtq__limits2_from_reply(const redisReply *r, rtq_queue_limits *out);

/* ---- protocol 2: the queue registry (queues2.c) ---- */

/* The valid names of {ns}:queues, sorted, at most RTQ_REGISTRY2_MAX
 * (read in SSCAN pages: registry2.h); *names (n entries) is the caller's,
 * freed with rtq__queues2_free. Detail set on error. */
int rtq__queues2_read(rtq_client *c, char ***names, size_t *n);
void rtq__queues2_free(char **names, size_t n);
/* SADD queue to {ns}:queues, once per client and queue (before a queue's
 * first create, so the registry never misses a queue with tasks). */
int rtq__queues2_register(rtq_client *c, const char *queue);
/* The one queue of a generated id's slot among those this client has
 * registered or found (1, queue set), or 0 (none, several, or an id
 * without a slot). No Redis call. */
int rtq__queues2_cached(rtq_client *c, const char *id, char queue[RTQ_TASK_ID_SIZE]);
/* The queue holding task id: hint when given (RTQ_ENOTFOUND when it does
 * not hold it), else the queues of the id's slot first, then every queue.
 * 0 with queue set; RTQ_ENOTFOUND, RTQ_EINVAL (bad id or hint) or a
 * connection error, detail set. */
int rtq__queue_of_id2(rtq_client *c, const char *id, const char *hint, char queue[RTQ_TASK_ID_SIZE]);

/* ---- protocol 2: creating tasks (create2.c) ---- */

/* What create.c and create2.c share: the options' bounds (detail set),
 * and args packed as a msgpack map (NULL: the empty map; *owned, to free,
 * is NULL then). */
int rtq__create_check_options(rtq_client *c, const rtq_task_options *o);
int rtq__create_pack_args(rtq_client *c, const rtq_args *args, const char **buf, size_t *len,
                          char **owned);
/* rtq_create_task under protocol 2, its args packed (pack_rc: how packing
 * went, detail set) ; c is not NULL. */
int rtq__create2_one(rtq_client *c, const char *name, const char *args, size_t args_len,
                     int pack_rc, const rtq_task_options *opts, char id_out[RTQ_TASK_ID_SIZE],
                     int *created);
/* rtq_create_tasks under protocol 2; n > 0. */
int rtq__create2_batch(rtq_client *c, rtq_task_spec *specs, size_t n);
/* Sets every one of the n specs' outcome to rc, for a batch that failed
 * before its first task: the header promises each spec its rc, and a
 * spec left as the caller zeroed it would read as created with no id. */
void rtq__create2_fail_all(rtq_task_spec *specs, size_t n, int rc);

/* A hash field of a task and where it goes in rtq_task (task.c). */
typedef enum rtq__task_kind {
  RTQ__K_NAME, RTQ__K_STR, RTQ__K_BYTES, RTQ__K_U64, RTQ__K_U32, RTQ__K_STATUS, RTQ__K_PROGRESS
} rtq__task_kind;
typedef struct rtq__task_field {
  const char *name;
  rtq__task_kind kind;
  size_t off;
  size_t len_off; /* RTQ__K_BYTES: offset of the length */
} rtq__task_field;
/* Stores the fields of an HGETALL reply found in table[0..n) into t (a
 * later call overrides an earlier one's values; other fields and values
 * that are not strings are skipped). *have_status is set when a valid
 * status was read. 0, RTQ_ENOMEM, or RTQ_EDECODE for a bad status. */
int rtq__task_apply(rtq_task *t, const rtq__task_field *table, size_t n, const redisReply *r,
                    int *have_status);

/* ---- protocol 2: reading tasks (task2.c) ---- */

/* Tasks ids[0..n) of queue, pipelined (both hashes of each): out[i] and
 * rcs[i] (0, RTQ_ENOTFOUND, RTQ_EDECODE for a bad status or a key of
 * another type, RTQ_ENOMEM) per id. Returns 0, or
 * a connection error (detail set; every out[i] NULL). */
int rtq__task2_read_many(rtq_client *c, const char *queue, const char *const *ids, size_t n,
                         rtq_task **out, int *rcs);
/* One task of queue; detail set on error. */
int rtq__task2_read(rtq_client *c, const char *queue, const char *id, rtq_task **out);
/* rtq_get_task under protocol 2; queue_hint NULL: found by the id. */
int rtq__get_task2(rtq_client *c, const char *id, const char *queue_hint, rtq_task **out);

/* Builds task id of queue from the HGETALL replies of its hash (th) and
 * side hash (xh, read when th names one; may be NULL). RTQ_ENOTFOUND for
 * an empty th, RTQ_EDECODE, RTQ_ENOMEM; with keys (the workers'),
 * RTQ_EUNVERIFIED for an end that no worker key signed. *out is the
 * caller's. */
int rtq__task2_from_hashes(const char *queue, const char *id, const redisReply *th, const redisReply *xh,
                           const rtq_sign_keys *keys, rtq_task **out);

/* Reads the status ("s") and time ("at", ms; 0 when absent or not a
 * positive integer) of a message on a task's waiter channel {ns:Q}:w:<id>
 * ({"id", "s", "at"}, docs/PROTOCOL.md section 7), as rtq_wait_for_task
 * reads it. 0, or RTQ_EDECODE for text that is not an object with a known
 * status (NULL included). */
int rtq__wait2_message_parse(const char *json, rtq_status *st, uint64_t *at);
/* Parses a decimal unsigned integer of a reply string; 0 when absent or
 * malformed. */
uint64_t rtq__parse_u64(const char *s, size_t len);

/* Decodes one dead-letter record into d (zeroed by the caller; the caller
 * frees its fields with rtq__dead_letter_destroy, on error too). 0 also
 * for a record that does not decode (record_error set); RTQ_ENOMEM. */
int rtq__dead_decode(rtq_dead_letter *d, uint64_t index, const char *buf, size_t len);
void rtq__dead_letter_destroy(rtq_dead_letter *d);
/* The letter of record r (a string reply read for index, or NULL when rc,
 * the read's return, is not 0): *out on 0; r is freed either way. */
int rtq__dead_letter_of(rtq_client *c, size_t index, int rc, redisReply *r, rtq_dead_letter **out);
/* 0 when record r (a string reply) is task expect_id's letter, else
 * RTQ_ESTATE with the detail set (the list moved since it was read). */
int rtq__dead_is_task(rtq_client *c, size_t index, const redisReply *r, const char *expect_id);

/* A subscriber: a connection of its own in SSUBSCRIBE mode, on the node
 * of the shard channel's slot (the per-queue channels); its messages
 * ("smessage") come out of rtq__sub_next. */
int rtq__sub_open_shard(rtq_client *c, const rtq_key2 *chan, rtq_subscription **out);
/* Next message payload: 0 (*payload malloc'd, NUL-terminated), RTQ_ETIMEDOUT,
 * RTQ_ECONN (the subscription is then dead), RTQ_ENOMEM. deadline_ms is
 * CLOCK_MONOTONIC ms; UINT64_MAX waits without limit. */
int rtq__sub_next(rtq_subscription *s, uint64_t deadline_ms, char **payload, size_t *len);

/* A task holding only what a terminal event told (id, status, completed
 * at), for a task whose hash expired right after it. */
int rtq__task_from_event(const char *id, rtq_status st, uint64_t at, rtq_task **out);
/* Times a waiter re-establishes a lost subscription before RTQ_ECONN;
 * each time the status is checked again, so nothing is missed. */
#define RTQ__WAIT_RESUBSCRIBE 3
/* The end of a wait: the detail of a timeout, and t handed to *out (out
 * may be NULL) on success, else freed. Returns rc. */
int rtq__wait_done(rtq_client *c, const char *id, int64_t timeout_ms, int rc, rtq_task *t,
                   rtq_task **out);
/* rtq_wait_for_task under protocol 2 (wait2.c); queue_hint as for
 * rtq__get_task2. Sets *out on success only when out is not NULL. */
int rtq__wait2(rtq_client *c, const char *id, const char *queue_hint, int64_t timeout_ms,
               rtq_task **out);

/* rtq_cancel_task and rtq_retry_task under protocol 2 (cancel2.c,
 * retry2.c); queue_hint as for rtq__get_task2. */
int rtq__cancel2(rtq_client *c, const char *id, const char *queue_hint, int *requested);
int rtq__retry2(rtq_client *c, const char *id, const char *queue_hint);

/* rtq_list_tasks under protocol 2 (list2.c); f is not NULL. */
int rtq__list2(rtq_client *c, const rtq_task_filter *f, rtq_task_list **out);

/* Test seam (like rtq__argv_realloc): called by rtq_wait_for_task between
 * its SUBSCRIBE and its status check, so a test can end the task exactly
 * in that window. NULL (the default) in production. */
extern void (*rtq__wait_subscribed_hook)(const char *id);

/* ---- protocol 2: reading and operating (stats2.c, sub2.c, dead2.c, ...) ---- */

/* Sends n commands on conn and reads their n replies into r[] (NULL where
 * none came). The first error, detail set; an error reply is RTQ_EREDIS
 * with every reply still read. */
int rtq__pipe2(rtq_client *c, rtq_conn *conn, const rtq_argv *cmds, size_t n, redisReply **r);
/* Destroys cmds[0..n) and frees r[0..n), then both arrays (either NULL). */
void rtq__pipe2_free(rtq_argv *cmds, redisReply **r, size_t n);
/* An integer reply, or a decimal string reply; 0 otherwise. */
uint64_t rtq__reply_u64(const redisReply *r);
/* cancel2.c: with a signing key, appends to a (a cancel or purge call just
 * built) the producer's signature of the end "cancelled" with message of
 * each pending task of ids (n) of queue, for the attempt and claim time
 * its hash holds now (docs/SECURITY.md). 0 without a key. */
int rtq__sign2_pending_ends(rtq_client *c, rtq_argv *a, const char *queue, const char *const *ids, size_t n,
                            const char *message);
/* Whether r is a WRONGTYPE error reply (a key of the wrong type). */
bool rtq__wrong_type(const redisReply *r);
/* Appends "queue Q: key K holds the wrong type of value" as a line to
 * buf (cap bytes, skipped-queue notes), cut to fit. */
void rtq__skip_note(char *buf, size_t cap, const char *queue, const char *key);

int rtq__get_stats2(rtq_client *c, rtq_stats **out);
int rtq__get_queue_loads2(rtq_client *c, rtq_queue_loads **out);
int rtq__get_run_times2(rtq_client *c, const char *const *queues, size_t n, rtq_run_times *t);
int rtq__throughput2_record(rtq_client *c, int *recorded);

/* Dead letters across the queues' lists (dead2.c): the public calls'
 * work once their arguments are checked. */
int rtq__dead2_list(rtq_client *c, size_t offset, size_t limit, rtq_dead_letters **out);
int rtq__dead2_get(rtq_client *c, size_t index, rtq_dead_letter **out);
int rtq__dead2_requeue(rtq_client *c, size_t index, const char *expect_id, const char *queue, char **id_out);
int rtq__dead2_requeue_all(rtq_client *c, const char *queue, rtq_dead_counts *n);
int rtq__dead2_purge(rtq_client *c, const char *queue, rtq_dead_counts *n);

/* The v2 event stream behind an rtq_subscription (sub2.c). */
typedef struct rtq__sub2 rtq__sub2;
int rtq__sub2_open(rtq_client *c, rtq__sub2 **out);
int rtq__sub2_next(rtq__sub2 *s, uint64_t deadline_ms, char **json);
void rtq__sub2_free(rtq__sub2 *s);
/* Task events left out (past the per-message cap) and messages skipped
 * whole (not a v2 events message) so far. */
void rtq__sub2_counts(const rtq__sub2 *s, uint64_t *dropped, uint64_t *skipped);
/* The same for a subscription. */
void rtq__sub_counts(const rtq_subscription *s, uint64_t *dropped, uint64_t *skipped);
/* The unbatching step of a subscription alone (for the event fuzzer):
 * the text of one message on queue's events channel becomes one-task
 * events, each given to each(event, arg), which owns the malloc'd text,
 * in the message's order; tasks past the per-message cap are left out and
 * added to *dropped. 0, or -1 when the message is skipped whole (too
 * long, not JSON, not an object, "t" not an array); a task entry without
 * a valid id or a known status is skipped alone. */
typedef void (*rtq__sub2_each)(char *event, void *arg);
int rtq__sub2_unbatch_text(const char *queue, const char *text, size_t len, rtq__sub2_each each, void *arg,
                           uint64_t *dropped);

#endif
