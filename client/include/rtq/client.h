/*
 * rtq/client.h - the producer API: create, read, list, cancel, wait for and
 * retry tasks, from any process on any machine (the state lives in Redis).
 *
 *   rtq_client *c;
 *   if (rtq_client_new(NULL, &c) != 0)            // defaults + RTQ_* env
 *     fprintf(stderr, "%s\n", rtq_client_errstr(NULL));
 *   rtq_args *a = rtq_args_new();
 *   rtq_args_set_str(a, "to", "ann@example.com");
 *   char id[RTQ_TASK_ID_SIZE];
 *   rtq_create_task(c, "send_email", a, NULL, id, NULL);
 *   rtq_args_free(a);
 *   rtq_task *t;
 *   if (rtq_wait_for_task(c, id, 30000, &t) == 0) { ...; rtq_task_free(t); }
 *   rtq_client_free(c);
 *
 * Errors: every function that can fail returns 0 or a negative RTQ_E* code
 * (rtq/common.h). rtq_client_errstr() gives the detail: a Redis error reply
 * word for word, or which argument was bad.
 *
 * Thread safety: one rtq_client may be shared by any number of threads.
 * It holds a small pool of Redis connections (pool_size, created lazily,
 * guarded by a mutex and a condition variable); a call borrows one
 * connection for its duration and blocks while all are in use. The error
 * detail is kept per thread, so concurrent calls never overwrite each
 * other's message. rtq_wait_for_task() and subscriptions open their own
 * connection and do not hold a pooled one while they block. Result objects
 * (rtq_task, lists, stats) belong to the caller and are not shared state.
 * rtq_client_free() must not race with calls on the same client.
 */
#ifndef RTQ_CLIENT_H
#define RTQ_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtq/args.h"
#include "rtq/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest task id, task name, queue name or worker id, and the buffer size
 * that holds one with its NUL. */
#define RTQ_TASK_ID_MAX 128
#define RTQ_TASK_ID_SIZE (RTQ_TASK_ID_MAX + 1)

/* rtq_list_tasks() examines at most this many index entries per call. */
#define RTQ_LIST_MAX_EXAMINED 10000
/* rtq_list_tasks() limit when the filter gives 0. */
#define RTQ_LIST_DEFAULT_LIMIT 100

typedef struct rtq_client rtq_client;

/*
 * Value type. A zeroed struct is a complete configuration: every zero or
 * NULL field takes the default shown, and the defaults for redis_url, ns,
 * task_result_ttl_s and history come from the RTQ_* environment variables
 * first (rtq_config_from_env; see docs/CLIENT.md). Strings are copied.
 */
typedef struct rtq_client_options {
  const char *redis_url;      /* RTQ_REDIS_URL, else redis://127.0.0.1:6379/0 */
  const char *ns;             /* key namespace: RTQ_NAMESPACE, else "rtq" */
  bool cluster;               /* deprecated, ignored: a redis+cluster:// URL
                               * selects Redis Cluster, and every key carries a
                               * hash tag. true logs one warning at
                               * rtq_client_new; kept so that callers setting
                               * it still build and run */
  int connect_timeout_ms;     /* 2000; bounds connect + AUTH/SELECT */
  int command_timeout_ms;     /* 5000; bounds every command's reply */
  int pool_size;              /* 8 connections at most, opened on demand */
  size_t max_payload;         /* 1 MiB: largest args rtq_create_task sends */
  const char *default_queue;  /* "default" */
  int task_result_ttl_s;      /* RTQ_TASK_RESULT_TTL, else 86400; TTL of a task
                               * this client cancels while pending */
  int history;                /* 0: RTQ_ENABLE_TASK_HISTORY (default on);
                               * 1 on; -1 off (cancelled tasks are indexed) */
  int reply_spin_us;          /* 60: poll for a reply this long before sleeping
                               * (a call to a Redis on the same host then
                               * takes half the time, for up to that much
                               * CPU per call); -1 never; at most 1000 */
  const char *redis_url_file; /* NULL; else a file holding the URL (one line; a
                               * trailing newline is stripped), read here, so
                               * the password stays out of argv and code;
                               * RTQ_REDIS_URL_FILE when neither is given.
                               * Not with redis_url (RTQ_EINVAL). */
  int wait_replicas;          /* 0: RTQ_WAIT_REPLICAS, else none; -1 none;
                               * N > 0 (at most 64): every create is followed
                               * by WAIT N on its connection, and a task that
                               * fewer than N replicas acknowledged in time
                               * is RTQ_EREPLICAS (see rtq_create_task) */
  int wait_timeout_ms;        /* 0: RTQ_WAIT_TIMEOUT, else 1000; at most
                               * 60000 and below command_timeout_ms */
  int protocol;               /* 0: RTQ_PROTOCOL, else 2; only 2 (protocol 1
                               * is refused, RTQ_EINVAL). rtq_client_new
                               * refuses (RTQ_EPROTOCOL) a namespace that
                               * holds protocol 1's data */
  const char *signing_key_file; /* NULL: tasks are not signed. Else
                               * the producers' key file (kid:hex
                               * lines, mode 0600; docs/SECURITY.md): every
                               * task created carries the first key's
                               * signature, which workers holding the file
                               * check before they run it */
  const char *result_keys_file; /* NULL: outcomes are read as they are.
                               * Protocol 2 only: the workers' key file;
                               * rtq_get_task and rtq_wait_for_task report a
                               * task that ended without a valid signature
                               * of a key allowed for its status as
                               * RTQ_EUNVERIFIED (never as completed):
                               * completed needs a worker's; failed,
                               * cancelled and timeout a worker's or a
                               * producer's (task_keys_file) */
  const char *task_keys_file; /* With result_keys_file: the producers' key
                               * file, which verifies the ends a producer or
                               * the broker signed (a cancel before the task
                               * ran, the broker's timeouts and recoveries).
                               * NULL: signing_key_file's keys do */
} rtq_client_options;

/*
 * Connects (one connection, at once: a bad URL is RTQ_EINVAL, Redis down is
 * RTQ_ECONN within connect_timeout_ms), loads the Lua scripts and warns on
 * stderr when maxmemory-policy is not noeviction. opts may be NULL. On
 * success the caller owns *out and frees it with rtq_client_free(); on
 * failure *out is NULL and rtq_client_errstr(NULL) gives the reason.
 */
RTQ_EXTERN int rtq_client_new(const rtq_client_options *opts, rtq_client **out);
/* Closes every connection and frees c. NULL does nothing. */
RTQ_EXTERN void rtq_client_free(rtq_client *c);
/*
 * Detail of the calling thread's most recent call on c: "" after a success.
 * With c NULL, the reason the calling thread's last rtq_client_new failed.
 * Never NULL; the string is thread-local and valid until this thread's next
 * call into the client library.
 */
RTQ_EXTERN const char *rtq_client_errstr(const rtq_client *c);

/* ----- creating tasks ----------------------------------------------------- */

/*
 * Value type; zeroed means every default. Times are milliseconds; run_at_ms
 * is ms since the epoch on Redis's clock.
 */
typedef struct rtq_task_options {
  const char *queue;          /* NULL: the client's default_queue */
  const char *id;             /* NULL: a new ULID; else idempotent (see below) */
  uint64_t timeout_ms;        /* 0: the worker's default_timeout (300 s) */
  uint64_t result_ttl_s;      /* 0: the worker's task_result_ttl (86400 s) */
  uint64_t delay_ms;          /* 0: runnable now */
  uint64_t run_at_ms;         /* 0: none; not together with delay_ms */
  uint32_t max_retries;       /* 0: a failure is final */
  uint64_t retry_backoff_ms;  /* 0: 1000; doubles on each retry, 1 h cap */
} rtq_task_options;

/* Upper bounds of the options above; more is RTQ_ERANGE. */
#define RTQ_TASK_MAX_TIMEOUT_MS 31536000000ull  /* 365 days */
#define RTQ_TASK_MAX_TTL_S 31536000ull          /* 365 days */
#define RTQ_TASK_MAX_DELAY_MS 31536000000ull    /* 365 days */

/*
 * Enqueues one task, atomically (the task hash and the queue or delayed
 * entry appear together or not at all). args (borrowed; NULL = empty) must
 * be a map. opts may be NULL. id_out (may be NULL, may be opts->id) receives
 * the task id, "" on error.
 * *created (may be NULL) is 1 when this call created the task, 0 when a
 * task with the caller-supplied id existed: that task is left as it is and
 * nothing is enqueued. Errors (nothing written to Redis unless noted):
 * RTQ_EINVAL bad name, queue, id, args or option mix; RTQ_ERANGE an option
 * over its bound; RTQ_EDEPTH args nested too deep; RTQ_ETOOBIG args over
 * max_payload; RTQ_EOOM Redis maxmemory (errstr has Redis's text);
 * RTQ_ECONN / RTQ_EREDIS (RTQ_ECONN: the task may or may not exist).
 * With wait_replicas N > 0: RTQ_EREPLICAS means the call did what a 0
 * would (id_out and *created are set, the task exists on the primary and
 * will run) but fewer than N replicas acknowledged it within
 * wait_timeout_ms (errstr: "1 of 2 replicas ..."), so a failover now
 * could lose it. Do not create it again under a new id; resend with the
 * same id (idempotent) or accept the risk.
 */
RTQ_EXTERN int rtq_create_task(rtq_client *c, const char *name, const rtq_args *args,
                               const rtq_task_options *opts, char id_out[RTQ_TASK_ID_SIZE],
                               int *created);

/*
 * As rtq_create_task, with the args as JSON text (borrowed, NUL-terminated;
 * NULL = empty map) that must hold one object: it is packed straight to
 * msgpack, without an rtq_args tree, which is what a binding from another
 * language wants (Python's rtq.Client.create_task calls this). Integer
 * literals become integers (outside int64_t: RTQ_EJSON), other numbers
 * doubles. Errors as rtq_create_task, plus RTQ_EJSON (text that is not
 * JSON) and RTQ_EINVAL (JSON that is not an object), nothing written.
 */
RTQ_EXTERN int rtq_create_task_json(rtq_client *c, const char *name, const char *args_json,
                                    const rtq_task_options *opts, char id_out[RTQ_TASK_ID_SIZE],
                                    int *created);

/* Value type: one task of a batch. name, args and opts are borrowed inputs;
 * rc, created and id are outputs. */
typedef struct rtq_task_spec {
  const char *name;
  const rtq_args *args;         /* NULL: empty map */
  const rtq_task_options *opts; /* NULL: defaults */
  int rc;                       /* out: 0 or RTQ_E* for this task */
  int created;                  /* out: as rtq_create_task's *created */
  char id[RTQ_TASK_ID_SIZE];    /* out: the id; "" when rc says it was not
                                 * created (bad input, a refused call); kept
                                 * with RTQ_ECONN, when it may exist */
} rtq_task_spec;

/*
 * Enqueues n tasks in one round trip (pipelined; each task is still its
 * own atomic step). Every spec gets its rc, created and id. Returns 0 when
 * every task succeeded, else the first failing task's code; errstr
 * describes that task. A task with bad input fails alone; a connection
 * failure fails the tasks whose replies did not arrive (RTQ_ECONN: they may
 * or may not exist). With wait_replicas, a created task that too few
 * replicas acknowledged has rc RTQ_EREPLICAS (its created and id set, as
 * for rtq_create_task); one WAIT follows the batch (on a cluster, one per
 * node that took a call).
 */
RTQ_EXTERN int rtq_create_tasks(rtq_client *c, rtq_task_spec *specs, size_t n);

/* ----- reading tasks ------------------------------------------------------ */

/*
 * A task as stored in Redis. Allocated by rtq, read-only for the caller,
 * freed with rtq_task_free() (which frees every pointer inside). Times are
 * ms since the epoch on Redis's clock, 0 when not (yet) set. Strings are
 * NUL-terminated; msgpack fields are NULL with length 0 when absent.
 */
typedef struct rtq_task {
  char id[RTQ_TASK_ID_SIZE];
  char name[RTQ_TASK_ID_SIZE];
  char queue[RTQ_TASK_ID_SIZE];
  rtq_status status;
  double progress;             /* 0..100 */
  char *progress_message;      /* NULL when none */
  uint64_t created_at;
  uint64_t started_at;         /* current or last delivery */
  uint64_t completed_at;       /* terminal tasks */
  uint32_t attempts;           /* deliveries so far */
  uint32_t max_retries;
  char worker[RTQ_TASK_ID_SIZE]; /* worker id of the delivery; "" when none */
  uint64_t timeout_ms;         /* 0: worker default */
  uint64_t result_ttl_s;       /* 0: worker default */
  uint64_t run_at;             /* due time of a delayed task */
  uint64_t retry_at;           /* due time of the next retry */
  uint64_t deadline;           /* running tasks */
  uint64_t cancel_requested;   /* when a cancel was asked of a running task */
  char *args;                  /* msgpack map */
  size_t args_len;
  char *result;                /* msgpack value */
  size_t result_len;
  char *error_code;            /* NULL when there was no error */
  char *error_message;
  char *error_details;         /* msgpack map */
  size_t error_details_len;
  char *error_traceback;
} rtq_task;

/* Frees t and everything in it. NULL does nothing. */
RTQ_EXTERN void rtq_task_free(rtq_task *t);

/*
 * Reads every field of task id. On success the caller frees *out with
 * rtq_task_free(). RTQ_ENOTFOUND when there is no such task (never existed
 * or expired); RTQ_EINVAL for an id outside the name pattern; RTQ_ECONN,
 * RTQ_EREDIS. *out is NULL on error.
 */
RTQ_EXTERN int rtq_get_task(rtq_client *c, const char *id, rtq_task **out);

/* result / error_details / args as JSON text, malloc'd (the caller frees).
 * "null" when the field is absent. RTQ_EDECODE when the bytes do not
 * decode; RTQ_ENOMEM. */
RTQ_EXTERN int rtq_task_result_json(const rtq_task *t, char **json);
RTQ_EXTERN int rtq_task_error_details_json(const rtq_task *t, char **json);
RTQ_EXTERN int rtq_task_args_json(const rtq_task *t, char **json);

/*
 * The whole task as one compact JSON object, malloc'd (the caller frees):
 * the fields above, times as ISO-8601 UTC strings with milliseconds (null
 * when unset), result/args as JSON values, and "error" as null or an object
 * {code, message, details, traceback}. Bytes that do not decode become the
 * string "<undecodable msgpack>". RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_task_to_json(const rtq_task *t, char **json);

/* Writes ms since the epoch as "2026-11-25T12:00:00.123Z" (cap >= 25).
 * Returns buf. */
RTQ_EXTERN char *rtq_format_time(uint64_t ms, char *buf, size_t cap);

/* ----- listing ------------------------------------------------------------ */

/* The size of the skipped-queue notes of rtq_task_list, rtq_stats and
 * rtq_queue_loads. */
#define RTQ_SKIPPED_SIZE 1024

/* A set of statuses for rtq_task_filter.statuses. */
#define RTQ_STATUS_BIT(s) (1u << (unsigned)(s))

/* Value type; zeroed means every task, newest first, the first 100. */
typedef struct rtq_task_filter {
  unsigned statuses;  /* OR of RTQ_STATUS_BIT(); 0 = all six */
  const char *queue;  /* NULL: any */
  const char *name;   /* NULL: any */
  size_t limit;       /* 0: RTQ_LIST_DEFAULT_LIMIT; at most RTQ_LIST_MAX_EXAMINED */
  size_t offset;      /* matches to skip */
  const char *after;  /* NULL: from the newest; else a task id (a previous page's
                         next_after): list what comes after it, in the same order */
} rtq_task_filter;

/* Allocated by rtq; free with rtq_task_list_free(), which frees the tasks. */
typedef struct rtq_task_list {
  size_t count;
  rtq_task **tasks;   /* newest first (by created_at, then id) */
  size_t examined;    /* index entries looked at */
  bool truncated;     /* stopped at RTQ_LIST_MAX_EXAMINED: more may match */
  char next_after[RTQ_TASK_ID_SIZE]; /* the filter's `after` for the next page;
                                        "" when the listing reached the end */
  bool running_hidden; /* this Redis user may not read the
                        * worker registry (the producer's ACL,
                        * docs/OPERATIONS.md section 3), so running
                        * tasks were not listed */
  /* Protocol 2: queues left out because one of their keys holds another
   * type of value than rtq writes there (written by hand): one line each,
   * "queue Q: key K holds the wrong type of value", cut at the size of the
   * buffer; "" when none. */
  char skipped[RTQ_SKIPPED_SIZE];
} rtq_task_list;

/*
 * Lists tasks from the lists that hold them (no KEYS, no SCAN), queue by
 * queue: pending (the queue, then the delayed set), running (the live
 * workers' processing lists), then the done lists of the ended statuses,
 * in windows, checking queue and name and examining at most
 * RTQ_LIST_MAX_EXAMINED entries (docs/CLIENT.md section 1.4). Ended tasks
 * are listed only while task history is on and until they expire or are
 * pushed out of their done list. A listing is a best-effort snapshot: a
 * task changing state during the call is reported at most once. Paging
 * with `after` (each page's next_after) reaches every entry of any
 * backlog; `offset` stays bounded by RTQ_LIST_MAX_EXAMINED. The caller
 * frees *out. RTQ_EINVAL bad filter; RTQ_ENOTFOUND `after` names no task
 * that is still listed.
 */
RTQ_EXTERN int rtq_list_tasks(rtq_client *c, const rtq_task_filter *f, rtq_task_list **out);
/* NULL does nothing. */
RTQ_EXTERN void rtq_task_list_free(rtq_task_list *l);

/* ----- cancelling, waiting, retrying -------------------------------------- */

/*
 * Cancels task id. A pending task is cancelled at once and never runs
 * (*requested = 0). A running task gets a cancel request (flag + pub/sub);
 * its worker stops it and it ends cancelled (*requested = 1). requested may
 * be NULL. RTQ_ESTATE when the task already ended (errstr names its
 * status); RTQ_ENOTFOUND; RTQ_EINVAL bad id; RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_cancel_task(rtq_client *c, const char *id, int *requested);

/*
 * Blocks until task id is terminal, then reads it into *out (may be NULL;
 * the caller frees it). It does not poll: it subscribes to the task's
 * channel on a connection of its own, then reads the status (closing the
 * race with a task that ends in between), then waits for the terminal
 * event. timeout_ms < 0 waits without limit; 0 checks once. RTQ_ETIMEDOUT
 * when the time ran out (*out NULL); RTQ_ENOTFOUND; RTQ_EINVAL; RTQ_ECONN.
 * A task whose hash expired right after its terminal event (history off)
 * is returned with the id, status and completed_at the event carried.
 */
RTQ_EXTERN int rtq_wait_for_task(rtq_client *c, const char *id, int64_t timeout_ms,
                                 rtq_task **out);

/*
 * Enqueues again a task that ended failed, timeout or cancelled, under the
 * same id, with its name, queue, args and options; its previous outcome is
 * cleared and attempts restart. RTQ_ESTATE for any other status;
 * RTQ_ENOTFOUND; RTQ_EINVAL; RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_retry_task(rtq_client *c, const char *id);

/*
 * The four calls above with the task's queue given. A task is found
 * through its queue: without one, the queues of a generated id's slot are
 * tried first, then every queue (one EXISTS each), and a caller-supplied
 * id names one task per queue, so the same id on two queues needs the
 * queue. queue NULL: as the calls above.
 * RTQ_EINVAL for a queue outside the name pattern; RTQ_ENOTFOUND when
 * that queue holds no such task.
 */
RTQ_EXTERN int rtq_get_task_in(rtq_client *c, const char *queue, const char *id, rtq_task **out);
RTQ_EXTERN int rtq_wait_for_task_in(rtq_client *c, const char *queue, const char *id,
                                    int64_t timeout_ms, rtq_task **out);
RTQ_EXTERN int rtq_cancel_task_in(rtq_client *c, const char *queue, const char *id,
                                  int *requested);
RTQ_EXTERN int rtq_retry_task_in(rtq_client *c, const char *queue, const char *id);

/* ----- live events -------------------------------------------------------- */

typedef struct rtq_subscription rtq_subscription;

/*
 * Subscribes to the namespace's event channel (every state change and
 * progress update, as JSON objects with at least "id" and "status"). The
 * subscription has its own connection; the caller frees it with
 * rtq_subscription_free(), before freeing the client. Events published
 * before this returns are not seen.
 */
RTQ_EXTERN int rtq_events_subscribe(rtq_client *c, rtq_subscription **out);
/*
 * Waits for the next message: *json (malloc'd, the caller frees) is its
 * text. timeout_ms < 0 waits without limit. RTQ_ETIMEDOUT (the
 * subscription stays usable), RTQ_ECONN (it is not), RTQ_ENOMEM. A message
 * is only consumed by a successful return. One thread at a time.
 */
RTQ_EXTERN int rtq_subscription_next(rtq_subscription *s, int64_t timeout_ms, char **json);
/* Unsubscribes and closes. NULL does nothing. */
RTQ_EXTERN void rtq_subscription_free(rtq_subscription *s);

/* ----- stats and workers -------------------------------------------------- */

/* Value type: one counter of {ns:Q}:stats ("enqueued", "completed", "retried",
 * "redelivered", ...). */
typedef struct rtq_counter {
  char name[32];
  uint64_t value;
} rtq_counter;

typedef struct rtq_queue_stats {
  char name[RTQ_TASK_ID_SIZE];
  uint64_t backlog;            /* LLEN of the queue */
  size_t ncounters;
  rtq_counter *counters;       /* cumulative, from {ns:Q}:stats */
  bool paused;                 /* rtq_queue_pause: workers claim nothing from it */
  double limit_rate;           /* its rate limit in tasks per second
                                * (rtq_queue_limit_set); 0: none */
  uint32_t limit_concurrency;  /* its concurrency limit; 0: none */
} rtq_queue_stats;

/* Allocated by rtq; free with rtq_stats_free(). */
typedef struct rtq_stats {
  uint64_t now;                            /* Redis TIME, ms */
  uint64_t by_status[RTQ_STATUS_COUNT];    /* list lengths, by rtq_status */
  uint64_t running;                        /* == by_status[RUNNING] */
  uint64_t delayed;                        /* scheduled or backing off */
  uint64_t dead;                           /* dead-letter records */
  uint64_t workers_alive;                  /* heartbeat within 30 s */
  bool workers_hidden;                     /* this user may not read {ns}:workers (a
                                            * producer's ACL): workers_alive is 0 */
  size_t nqueues;
  rtq_queue_stats *queues;                 /* sorted by name */
  /* The broker's own counters (the fields of {ns}:broker: docs/BROKER.md
   * lists them), in the order read, "last_sweep_at" (Redis ms) included. */
  size_t nbroker;
  rtq_counter *broker;
  /* Protocol 2: queues left out of every figure because one of their keys
   * holds another type of value than rtq writes there: as in
   * rtq_task_list.skipped. */
  char skipped[RTQ_SKIPPED_SIZE];
} rtq_stats;

/*
 * Pauses a queue: within about half a second no worker claims from it
 * (workers read the paused set every 500 ms and end a wait on it); its
 * backlog stays and new tasks still enqueue. Resume undoes it. Idempotent.
 * RTQ_EINVAL bad queue name; RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_queue_pause(rtq_client *c, const char *queue);
RTQ_EXTERN int rtq_queue_resume(rtq_client *c, const char *queue);

/* Reads the figures above in two round trips. The caller frees *out. */
RTQ_EXTERN int rtq_get_stats(rtq_client *c, rtq_stats **out);
/* NULL does nothing. */
RTQ_EXTERN void rtq_stats_free(rtq_stats *s);

/* A worker whose heartbeat is within 30 s of Redis TIME. Text fields are
 * "" when the worker record did not carry them. */
typedef struct rtq_alive_worker {
  char id[RTQ_TASK_ID_SIZE];
  char host[256];
  long pid;
  char queues[512];            /* as the worker wrote it */
  int busy;                    /* slots running a task */
  int slots;                   /* slots in total */
  uint64_t started_at;
  uint64_t last_seen;          /* last heartbeat, ms */
  char exec_unavailable[1024]; /* --exec commands that keep failing: one
                                * "NAME=REASON" line each; "" when none */
} rtq_alive_worker;

/* Allocated by rtq; free with rtq_alive_workers_free(). */
typedef struct rtq_alive_workers {
  uint64_t now;                /* Redis TIME, ms */
  size_t count;
  rtq_alive_worker *workers;   /* most recent heartbeat first */
} rtq_alive_workers;

/*
 * Whether w's heartbeat record says it serves queue: its "queues" field is
 * a comma-separated list of "name:weight" (or plain "name") items
 * (PROTOCOL.md). Pure; false for NULL arguments.
 */
RTQ_EXTERN bool rtq_worker_serves(const rtq_alive_worker *w, const char *queue);

/* Redis TIME in ms since the epoch: the clock every task time is on (a
 * task's age or rate is best computed against it, not the local clock).
 * RTQ_ECONN, RTQ_EREDIS. */
RTQ_EXTERN int rtq_client_time_ms(rtq_client *c, uint64_t *now_ms);

/* Lists alive workers (at most 10000). The caller frees *out. */
RTQ_EXTERN int rtq_list_workers(rtq_client *c, rtq_alive_workers **out);
/* NULL does nothing. */
RTQ_EXTERN void rtq_alive_workers_free(rtq_alive_workers *w);

/* ----- dead letters ------------------------------------------------------- */

/* rtq_dead_list() returns at most this many records per call. */
#define RTQ_DEAD_MAX_LIMIT 1000
/* rtq_dead_list() limit when 0 is given. */
#define RTQ_DEAD_DEFAULT_LIMIT 20

/*
 * One dead-letter record of a queue's {ns:Q}:dead (docs/PROTOCOL.md
 * section 8): an entry a worker or the broker could not run (a task id, or
 * bytes that are no id), with why. Allocated by rtq, read-only
 * for the caller; it belongs to the rtq_dead_letters it came in, or is freed
 * with rtq_dead_letter_free() when rtq_dead_get() returned it. Strings are
 * NUL-terminated and never NULL ("" when the record lacks the field).
 */
typedef struct rtq_dead_letter {
  uint64_t index;        /* position across the queues' lists (docs/CLIENT.md 1.7) */
  uint64_t at;           /* when it was dead-lettered, ms (Redis TIME) */
  char *code;            /* e.g. "DECODE", "UNKNOWN_TASK", "TOO_BIG" */
  char *reason;          /* one line */
  char *worker;          /* worker or broker id that dead-lettered it */
  char *queue;           /* where it waited ("" or "unknown" when unreadable) */
  char *id;              /* task id, "" when it could not be read */
  uint64_t size;         /* bytes of the original entry */
  char *payload;         /* its first bytes (at most 4096; msgpack str or bin) */
  size_t payload_len;
  char *record_error;    /* NULL, or why the record itself did not decode
                          * (then payload holds the record's raw bytes) */
} rtq_dead_letter;

/* A page of dead letters, newest first. Allocated by rtq; free with
 * rtq_dead_letters_free(), which frees every letter in it. */
typedef struct rtq_dead_letters {
  uint64_t total;        /* the lengths of the dead lists when read */
  size_t count;
  rtq_dead_letter *letters;
} rtq_dead_letters;

/*
 * Reads records offset .. offset+limit-1 (the queues' dead lists in name
 * order, each newest first) with bounded reads, never a whole list. limit 0: RTQ_DEAD_DEFAULT_LIMIT;
 * over RTQ_DEAD_MAX_LIMIT: RTQ_ERANGE. A record that does not decode is
 * returned with record_error set, not skipped. On success the caller frees
 * *out with rtq_dead_letters_free(); RTQ_ECONN, RTQ_EREDIS, RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_dead_list(rtq_client *c, size_t offset, size_t limit, rtq_dead_letters **out);
/* NULL does nothing. */
RTQ_EXTERN void rtq_dead_letters_free(rtq_dead_letters *l);

/*
 * Reads record index (LINDEX of its queue's list). RTQ_ENOTFOUND when there is none;
 * on success the caller frees *out with rtq_dead_letter_free().
 */
RTQ_EXTERN int rtq_dead_get(rtq_client *c, size_t index, rtq_dead_letter **out);
/* Frees a letter from rtq_dead_get(). NULL does nothing. Never call it on
 * a letter inside an rtq_dead_letters. */
RTQ_EXTERN void rtq_dead_letter_free(rtq_dead_letter *d);

/*
 * The record as one compact JSON object, malloc'd (the caller frees):
 * {"index", "at" (ISO-8601), "code", "reason", "worker", "queue", "id"
 * (null when ""), "size", "payload_bytes", "truncated", "task", ...}.
 * "task" is {"id", "queue"} when the payload is a task id (the rest is in
 * the task's hash), or null; then "payload_error" says why, "payload_preview" shows the
 * bytes as text (printable ASCII kept, others as \xNN; first 1024 bytes)
 * and "payload_hex" the first 256 bytes in hex. "record_error" appears
 * for a record that did not decode. RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_dead_letter_to_json(const rtq_dead_letter *d, char **json);

/* Records read per page, and requeued or purged per step, by
 * rtq_dead_requeue_all() and rtq_dead_purge(). */
#define RTQ_DEAD_STEP 100

/*
 * Requeues the dead letter at index (as rtq_dead_list shows it), in one
 * atomic step (the dead_requeue script, docs/PROTOCOL.md section 8) that
 * also takes the record out of its list: a task that ended failed,
 * timeout or cancelled is pending again at the back of its queue, as
 * rtq_retry_task makes it (outcome cleared, attempt 0). A record that
 * cannot be requeued is kept: RTQ_ESTATE when its task has no hash
 * (expired, or never written: there is nothing to enqueue) or is pending,
 * running or completed; RTQ_EDECODE when the record or the task hash does
 * not validate, or the record holds no id; RTQ_ENOTFOUND when there is no
 * record at index (or another process took it meanwhile), or queue (NULL,
 * or the queue the letter must belong to) is another. The detail
 * (rtq_client_errstr) says which. id_out: NULL, or receives the task id
 * (caller frees) on success. Connection errors: RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_dead_requeue(rtq_client *c, size_t index, const char *queue, char **id_out);
/* As rtq_dead_requeue, only when the record at index names task expect_id
 * (the letter a person saw there: a letter dead-lettered since shifts the
 * list). The record checked is the record requeued, in one read.
 * RTQ_ESTATE, nothing changed, when it names another task. */
RTQ_EXTERN int rtq_dead_requeue_if(rtq_client *c, size_t index, const char *expect_id, const char *queue,
                                   char **id_out);

/* Value type: what rtq_dead_requeue_all() or rtq_dead_purge() did. */
typedef struct rtq_dead_counts {
  uint64_t done;     /* records requeued, or purged */
  uint64_t refused;  /* requeue only: records kept because they cannot be
                      * requeued (no task, undecodable, task not ended) */
  uint64_t other;    /* records of other queues, left alone */
} rtq_dead_counts;

/*
 * Requeues every dead letter that can be (of queue, when not NULL), oldest
 * first, one atomic step each, reading RTQ_DEAD_STEP records at a time.
 * It visits at most the records present when it starts (records
 * dead-lettered meanwhile, a requeued task failing again included,
 * wait for the next run), so it always ends. Records that cannot be
 * requeued are counted in refused and kept. *out (may be NULL) holds the
 * counts so far, on error too. 0, or the first connection error.
 */
RTQ_EXTERN int rtq_dead_requeue_all(rtq_client *c, const char *queue, rtq_dead_counts *out);

/*
 * Deletes dead letters: every record present when it starts, of every
 * queue (queue NULL) or of queue, RTQ_DEAD_STEP of the oldest per RPOP.
 * Records dead-lettered meanwhile stay. *out (may be NULL)
 * holds the counts so far, on error too. 0, RTQ_EINVAL (bad queue name),
 * or a connection error.
 */
RTQ_EXTERN int rtq_dead_purge(rtq_client *c, const char *queue, rtq_dead_counts *out);

/* ----- per-queue load ----------------------------------------------------- */

/* rtq_get_queue_loads() reads at most this many running ids and delayed
 * entries. */
#define RTQ_LOAD_MAX_SCAN 10000

/* Value type: what one queue holds besides its backlog. */
typedef struct rtq_queue_load {
  char name[RTQ_TASK_ID_SIZE];
  uint64_t running;            /* the lengths of its processing lists */
  uint64_t delayed;            /* its delayed set (scheduled or backing off) */
  uint64_t oldest_pending_at;  /* created_at (ms) of the task a worker takes next;
                                * 0 when the queue is empty */
} rtq_queue_load;

/* Allocated by rtq; free with rtq_queue_loads_free(). */
typedef struct rtq_queue_loads {
  uint64_t now;                /* Redis TIME, ms */
  size_t count;
  rtq_queue_load *queues;      /* sorted by name: every known queue and any
                                * queue a running or delayed task names */
  bool running_partial;        /* over RTQ_LOAD_MAX_SCAN processing lists: counts cover the first */
  bool delayed_partial;        /* unused: each delayed set is counted whole (ZCARD) */
  /* Queues left out because one of their keys holds another type of value
   * than rtq writes there: as in rtq_task_list.skipped. */
  char skipped[RTQ_SKIPPED_SIZE];
} rtq_queue_loads;

/*
 * Reads the figures above in pipelined round trips, each bounded by the
 * number of queues and RTQ_LOAD_MAX_SCAN (no KEYS, no SCAN). A queue one
 * of whose keys holds the wrong type of value is left out with a note in
 * skipped, as rtq_get_stats does; any other error reply fails the call.
 * The caller frees *out (NULL on error). RTQ_ECONN, RTQ_EREDIS, RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_get_queue_loads(rtq_client *c, rtq_queue_loads **out);
/* NULL does nothing. */
RTQ_EXTERN void rtq_queue_loads_free(rtq_queue_loads *l);

/* ----- throughput history ------------------------------------------------- */

/* rtq_get_throughput() reads at most this many minutes (a day; snapshots
 * are kept 2 h, so older minutes are unknown). */
#define RTQ_THROUGHPUT_MAX_MINUTES 1440

/*
 * Copies the completed and failed totals of the queues' {ns:Q}:stats (all
 * queues, and each queue's) into this minute's {ns}:throughput:<minute>
 * hash (2 h TTL) unless
 * this minute has one already, so that rtq_get_throughput() can tell how
 * many tasks ended in each minute. Costs a few commands per call, nothing
 * per task; call it at least once a minute (rtq-web does every 10 s). Any
 * number of processes may call it: the first snapshot of a minute stays.
 * *recorded (may be NULL) is 1 when this call wrote the snapshot.
 * RTQ_ECONN, RTQ_EREDIS, RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_throughput_record(rtq_client *c, int *recorded);

/* Value type: one minute of history. */
typedef struct rtq_throughput_point {
  uint64_t minute_at;          /* start of the minute, ms (Redis clock) */
  bool known;                  /* snapshots of this minute and the next exist */
  uint64_t completed;          /* tasks that ended completed in it (0 when unknown) */
  uint64_t failed;             /* tasks that ended failed in it */
} rtq_throughput_point;

/* Allocated by rtq; free with rtq_throughput_free(). */
typedef struct rtq_throughput {
  uint64_t now;                /* Redis TIME, ms */
  size_t count;
  rtq_throughput_point *points;  /* the last `minutes` whole minutes, oldest first */
} rtq_throughput;

/*
 * The last `minutes` (1..RTQ_THROUGHPUT_MAX_MINUTES) whole minutes before
 * the current one, for queue (NULL: all queues), in one pipelined round
 * trip after TIME. A minute is known when snapshots were recorded in it and
 * in the next one (and the counters were not reset between them). The caller
 * frees *out. RTQ_EINVAL bad minutes or queue; RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_get_throughput(rtq_client *c, const char *queue, int minutes,
                                  rtq_throughput **out);
/* NULL does nothing. */
RTQ_EXTERN void rtq_throughput_free(rtq_throughput *t);

/* ----- periodic tasks ------------------------------------------------------ */

/*
 * A schedule enqueues a task on a cron expression (docs/CLIENT.md:
 * five-field expressions, @hourly..@yearly, "@every DURATION"), in a time
 * zone of the system tz database. Schedules live in Redis; the broker
 * leader enqueues each due run exactly once, as a task whose id is
 * "cron:<schedule id>:<due ms>", so a run enqueued twice (a leader that
 * died before its bookkeeping, two brokers that both think they lead) is
 * the same idempotent create. Runs missed while no broker ran are skipped,
 * except the most recent one, which runs once.
 */

/* Value type; zeroed means every default. */
typedef struct rtq_schedule_options {
  const char *queue;   /* NULL: the client's default_queue */
  uint64_t timeout_ms; /* 0: the worker's default_timeout */
  const char *tz;      /* NULL or "": the local zone of the process that
                        * computes a run: the caller's for the first run,
                        * the broker's after that (give a zone, or the same
                        * TZ everywhere) */
} rtq_schedule_options;

/* Schedule ids are names of at most this many characters, so that the run
 * ids "cron:<id>:<ms>" stay valid task ids. */
#define RTQ_SCHEDULE_ID_MAX 100

/*
 * Adds schedule id, or replaces the definition of an existing one (its
 * paused state and last run are kept). cron is checked here; args
 * (borrowed; NULL = empty) must be a map. Errors: RTQ_EINVAL (bad id,
 * cron, name, queue, zone or args; the reason in errstr), RTQ_ETOOBIG,
 * RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_schedule_add(rtq_client *c, const char *id, const char *cron, const char *name,
                                const rtq_args *args, const rtq_schedule_options *opts);
/* Removes schedule id: RTQ_ENOTFOUND when there is none. Tasks it already
 * enqueued are not touched. */
RTQ_EXTERN int rtq_schedule_remove(rtq_client *c, const char *id);
/* Pauses (no runs are enqueued while paused) or resumes (the next run is
 * the first after now: runs due while paused are not made up). */
RTQ_EXTERN int rtq_schedule_set_paused(rtq_client *c, const char *id, bool paused);

/* A schedule as stored. Allocated by rtq, freed with rtq_schedules_free. */
typedef struct rtq_schedule {
  char id[RTQ_TASK_ID_SIZE];
  char cron[256];
  char name[RTQ_TASK_ID_SIZE];
  char queue[RTQ_TASK_ID_SIZE];
  char tz[128];          /* "" = the local zone of the process computing the run */
  char *args_json;       /* the args as JSON */
  uint64_t timeout_ms;
  bool paused;
  uint64_t created_at;   /* ms, Redis clock */
  uint64_t last_run_ms;  /* the due time of the last run enqueued; 0 none */
  uint64_t next_run_ms;  /* the next run; 0 when paused */
} rtq_schedule;

/* Every schedule, sorted by id (at most 10,000 are read). */
RTQ_EXTERN int rtq_schedule_list(rtq_client *c, rtq_schedule **out, size_t *n);
/* NULL does nothing. */
RTQ_EXTERN void rtq_schedules_free(rtq_schedule *s, size_t n);

/*
 * The scheduler's step, run by the broker leader: enqueues the run owed by
 * each schedule due at now_ms (Redis TIME, ms), at most max schedules per
 * call, and records it. *fired (may be NULL) counts the runs this call
 * created (a run that existed already is not counted). Returns 0 or the
 * first error; a schedule whose definition no longer parses is logged and
 * left paused-in-place (no due entry) rather than retried every sweep.
 */
RTQ_EXTERN int rtq_schedule_fire_due(rtq_client *c, uint64_t now_ms, size_t max, size_t *fired);

/* ----- task run times ------------------------------------------------------ */

/* Buckets of the run-time histogram: upper bounds 0.005 0.01 0.025 0.05
 * 0.1 0.25 0.5 1 2.5 5 10 30 60 120 300 600 s, then +Inf. */
#define RTQ_RUN_BUCKETS 17

/* Bucket i's upper bound as Prometheus writes it ("0.005" .. "+Inf");
 * NULL when i is out of range. Static storage. */
RTQ_EXTERN const char *rtq_run_bucket_le(int i);

/* Value type: one queue's histogram of handler run times (claim to
 * hand-off, on the worker's monotonic clock), for every run that ended
 * in a worker: completed, failed (a failed attempt that is retried too),
 * cancelled, timeout. Counts are per bucket, not cumulative. */
typedef struct rtq_run_histogram {
  char queue[RTQ_TASK_ID_SIZE];
  uint64_t count[RTQ_RUN_BUCKETS];
  uint64_t total;              /* the sum of count[] */
  uint64_t sum_us;             /* the runs' total time, microseconds */
} rtq_run_histogram;

/* Allocated by rtq; free with rtq_run_times_free(). */
typedef struct rtq_run_times {
  size_t count;
  rtq_run_histogram *queues;   /* in the order asked; zeros when never run */
} rtq_run_times;

/*
 * The run-time histograms of n queues (0..10000 valid names), in one
 * pipelined round trip. The caller frees *out. RTQ_EINVAL a bad name or
 * n; RTQ_ECONN, RTQ_EREDIS, RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_get_run_times(rtq_client *c, const char *const *queues, size_t n,
                                 rtq_run_times **out);
/* NULL does nothing. */
RTQ_EXTERN void rtq_run_times_free(rtq_run_times *t);

/* ----- queue limits, purge, deleting ended tasks --------------------------- */

/* Bounds of a queue's limits; outside them is RTQ_ERANGE. */
#define RTQ_LIMIT_MIN_RATE 0.001        /* tasks per second */
#define RTQ_LIMIT_MAX_RATE 1000000.0
#define RTQ_LIMIT_MAX 1000000u          /* burst and concurrency */

/*
 * Value type: a queue's fleet-wide limits, checked by every worker inside
 * its claim step (docs/PROTOCOL.md section 5, "Limits"):
 * a token bucket refilled at `rate` tasks per second up to `burst` tokens,
 * one token per task started; and at most `concurrency` tasks of the queue
 * running at once. A task that finds its queue at a limit stays pending.
 */
typedef struct rtq_queue_limits {
  double rate;          /* tasks per second, RTQ_LIMIT_MIN_RATE..MAX_RATE;
                         * 0: no rate limit */
  uint32_t burst;       /* 1..RTQ_LIMIT_MAX tokens; 0: the rate rounded up */
  uint32_t concurrency; /* 1..RTQ_LIMIT_MAX running at once; 0: no limit */
} rtq_queue_limits;

/* Which limits rtq_queue_limit_set() writes. */
#define RTQ_LIMIT_RATE 1u         /* rate and burst */
#define RTQ_LIMIT_CONCURRENCY 2u

/*
 * Sets the limits of queue named in which (RTQ_LIMIT_RATE,
 * RTQ_LIMIT_CONCURRENCY, or both): a field at 0 removes that limit, the
 * others are left as they are. Takes effect at the workers' next claim.
 * The bucket keeps its tokens (capped at the new burst), so setting a
 * limit again grants no new burst. The queue is added to the namespace's
 * registry ({ns}:queues), so rtq_get_stats lists it with its limits. RTQ_EINVAL (bad queue, which 0 or
 * unknown bits, rate not a number, a burst without a rate), RTQ_ERANGE
 * (a value outside its bounds), RTQ_EPROTOCOL, RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_queue_limit_set(rtq_client *c, const char *queue, const rtq_queue_limits *l,
                                   unsigned which);
/* Removes every limit of queue (and the rate's bucket). Tasks running
 * under a concurrency lease keep it until they end. Same errors. */
RTQ_EXTERN int rtq_queue_limit_clear(rtq_client *c, const char *queue);

/* Value type: how close a queue is to its limits, as read. */
typedef struct rtq_queue_limit_usage {
  double tokens;        /* the bucket's tokens now (a task needs 1); -1
                         * without a rate limit */
  uint32_t burst;       /* the burst in force: the one set, else the rate
                         * rounded up; 0 without a rate limit */
  uint64_t running;     /* concurrency leases held (tasks running under the
                         * limit), lapsed ones left out */
} rtq_queue_limit_usage;

/*
 * Reads queue's limits into *out (zeros: no limit). A stored value the
 * workers would not apply (edited by hand, out of bounds) reads as 0.
 * usage (may be NULL) gets the bucket's tokens and the leases held (three
 * more round trips: TIME, the bucket, the leases). RTQ_EINVAL, RTQ_EPROTOCOL, RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_queue_limit_get(rtq_client *c, const char *queue, rtq_queue_limits *out,
                                   rtq_queue_limit_usage *usage);

/* How long rtq_queue_purge() and rtq_tasks_delete() go on when max_ms is 0. */
#define RTQ_SWEEP_MAX_MS 600000

/* Value type: what rtq_queue_purge() did. */
typedef struct rtq_purge_counts {
  uint64_t cancelled;   /* pending tasks that ended cancelled */
  uint64_t dropped;     /* entries only taken out: the task was no longer
                         * pending (it ran or ended meanwhile), or the entry
                         * was not a task id (dead-lettered) */
  uint64_t left;        /* entries in the queue and its delayed set when it
                         * stopped: tasks enqueued while it ran */
  uint64_t calls;       /* steps run (each at most 100 entries) */
} rtq_purge_counts;

/*
 * Cancels every pending task of queue: those in the queue and those
 * waiting in its delayed set (a delay, a retry's backoff). Each step is
 * one script over at most 100 entries, oldest first, so a queue of a
 * million tasks never blocks Redis; the tasks end cancelled ("purged with
 * its queue") as rtq_cancel_task would end them. Running tasks are not
 * touched. It visits at most the entries present at its first step, so a
 * producer that keeps enqueuing cannot keep it going: what arrived
 * meanwhile is counted in left. max_ms bounds the whole run (0:
 * RTQ_SWEEP_MAX_MS); when it runs out first: RTQ_ETIMEDOUT. *out (may be
 * NULL) holds the counts so far, on error too. RTQ_EINVAL (bad queue),
 * RTQ_EPROTOCOL, RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_queue_purge(rtq_client *c, const char *queue, int64_t max_ms, rtq_purge_counts *out);

/* Value type: what rtq_tasks_delete() did. */
typedef struct rtq_delete_counts {
  uint64_t deleted;     /* ended tasks deleted, with their index entries */
  uint64_t dropped;     /* index entries of tasks already gone (expired,
                         * retried) taken out */
  uint64_t queues;      /* queues visited */
  uint64_t calls;       /* steps run (each at most 100 entries) */
} rtq_delete_counts;

/*
 * Deletes tasks that ended with status (completed, failed, cancelled or
 * timeout; any other is RTQ_EINVAL): their hashes and their entries in the
 * status's done list, of queue (NULL: every queue of the namespace's
 * registry). older_than_ms > 0 keeps the tasks that ended less than that
 * long ago (Redis clock); 0 deletes them all. Steps of at most 100 tasks,
 * oldest first; per queue it visits at most the entries present when it
 * reached the queue. Tasks kept without a done list (history off) expire
 * on their own and are not seen. max_ms bounds the whole run (0:
 * RTQ_SWEEP_MAX_MS; RTQ_ETIMEDOUT). *out (may be NULL) holds the counts so
 * far, on error too. RTQ_EINVAL, RTQ_ERANGE (older_than_ms over 10 years),
 * RTQ_EPROTOCOL, RTQ_ECONN, RTQ_EREDIS.
 */
RTQ_EXTERN int rtq_tasks_delete(rtq_client *c, rtq_status status, const char *queue, uint64_t older_than_ms,
                                int64_t max_ms, rtq_delete_counts *out);

#ifdef __cplusplus
}
#endif
#endif
