/*
 * rtq/worker.h - run rtq tasks: the worker handle and the handler API.
 *
 * A worker claims tasks from one or more queues, runs the registered handler
 * for each in a slot (a pool thread, or a forked child under process
 * isolation), reports progress, honours cancellation and timeouts, and
 * writes each task's terminal state once. docs/WORKER.md explains the model;
 * docs/PROTOCOL.md the Redis side.
 *
 *   rtq_worker_options o;
 *   rtq_worker_options_init(&o);              // defaults, see below
 *   o.redis_url = "redis://127.0.0.1:6379/0";
 *   rtq_worker *w;
 *   char err[256];
 *   if (rtq_worker_new(&o, &w, err, sizeof err) != 0) die(err);
 *   rtq_worker_register(w, "resize", resize_image, NULL);
 *   int rc = rtq_worker_run(w);               // until rtq_worker_stop()
 *   rtq_worker_free(w);
 *
 * Threads: rtq_worker_run() owns the calling thread and does all Redis I/O
 * there. Handlers run on other threads (or in children); the rtq_task_*
 * functions may be called only by the handler that received the task, from
 * the thread it runs on, until it returns. rtq_worker_stop() is the only
 * function that may be called from anywhere, signal handlers included.
 *
 * One worker runs per process at a time (it owns SIGCHLD under process
 * isolation, and SIGTERM/SIGINT when handle_signals is set).
 */
#ifndef RTQ_WORKER_H
#define RTQ_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtq/args.h"
#include "rtq/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rtq_worker rtq_worker;
/* One task as its handler sees it (the context); valid until the handler
 * returns. (rtq/client.h's rtq_task is the stored record, a different type.) */
typedef struct rtq_task_ctx rtq_task_ctx;

/*
 * A handler. It returns 0 when it has done its job: the task completes with
 * the result set by rtq_task_set_result*() (nil when none), or fails when it
 * called rtq_task_fail(). Any other return value without rtq_task_fail()
 * fails the task with code HANDLER_ERROR. A handler that sees
 * rtq_task_cancelled() should return soon; the task then ends cancelled or
 * timeout whatever it returns. userdata is what rtq_worker_register got.
 */
typedef int (*rtq_handler_fn)(rtq_task_ctx *task, void *userdata);

typedef enum rtq_isolation {
  RTQ_ISOLATION_THREAD = 0, /* a pool thread per slot; a crash takes the worker down */
  RTQ_ISOLATION_PROCESS     /* a forked child per task; crashes, rlimits, hard kill */
} rtq_isolation;

/* Value type: a queue to serve and its weight (>= 1). The name is borrowed
 * until rtq_worker_new() returns. */
typedef struct rtq_worker_queue {
  const char *name;
  int weight;
} rtq_worker_queue;

#define RTQ_WORKER_MAX_QUEUES 64

/*
 * Value type. rtq_worker_options_init() fills every field with the default
 * shown; rtq_worker_new() copies what it needs (strings included), so the
 * struct and its strings may go away after that call. 0 in a numeric field
 * means "the default", except where noted.
 */
typedef struct rtq_worker_options {
  const char *redis_url;          /* "redis://127.0.0.1:6379/0" */
  const char *ns;                 /* namespace, "rtq" */
  bool cluster;                   /* deprecated, ignored: a redis+cluster:// URL
                                   * selects Redis Cluster, and every key carries
                                   * a hash tag. true logs one warning at
                                   * rtq_worker_new; kept so that callers setting
                                   * it still build and run */
  const rtq_worker_queue *queues; /* NULL: the one queue "default" */
  size_t nqueues;                 /* 0..RTQ_WORKER_MAX_QUEUES */
  bool strict_priority;           /* false: weighted; true: queues in the order given */
  int concurrency;                /* slots, 50 (max_concurrent_tasks) */
  rtq_isolation isolation;        /* RTQ_ISOLATION_THREAD */
  int rlimit_as_mb;               /* 0 = none; RLIMIT_AS of each child (process isolation) */
  int rlimit_cpu_s;               /* 0 = none; RLIMIT_CPU of each child (process isolation) */
  int heartbeat_interval_ms;      /* 5000 */
  int heartbeat_ttl_ms;           /* 30000 */
  int shutdown_grace_ms;          /* 25000: running tasks get this long after a stop */
  int kill_grace_ms;              /* 5000: a cancelled/timed-out handler gets this long */
  int default_timeout_s;          /* 300: tasks created without a timeout */
  int result_ttl_s;               /* 86400 (task_result_ttl) */
  bool history;                   /* true (enable_task_history) */
  int max_history;                /* 10000; reported in the worker record (the broker trims) */
  int block_timeout_ms;           /* 2000: BLMOVE timeout with one queue */
  int poll_ms;                    /* 100: with several queues, how long an empty queue
                                   * is skipped and how long one is watched alone */
  int connect_timeout_ms;         /* 2000 */
  int command_timeout_ms;         /* 5000: a connection whose oldest reply is older is dropped */
  int progress_interval_ms;       /* 100: at most one progress write per task per interval */
  size_t max_payload;             /* 1 MiB: larger envelopes are dead-lettered */
  size_t max_result;              /* 16 MiB: larger results are refused */
  size_t thread_stack_kb;         /* 256: stack of each handler thread */
  int max_abandoned_threads;      /* 0 = concurrency (thread isolation): once more than
                                   * this many abandoned handler threads still run, the
                                   * worker stops claiming, lets its other tasks finish
                                   * and rtq_worker_run returns RTQ_ESTATE (restart it) */
  int claim_batch;                /* 0 = concurrency: most tasks taken per round trip */
  bool unknown_task_requeue;      /* false: a task whose name no handler here serves fails
                                   * UNKNOWN_TASK; true: it is handed back for another
                                   * worker (rtq-worker --unknown-task requeue) */
  int unknown_task_delay_ms;      /* 5000: how long a handed-back task waits */
  int unknown_task_max_handbacks; /* 5: handbacks of one task before it fails UNKNOWN_TASK */
  bool handle_signals;            /* false; true: SIGTERM/SIGINT stop the worker
                                   * (a second one skips the grace), SIGPIPE ignored */
  const char *health_file;        /* NULL; else a file whose mtime is set to now each time
                                   * Redis accepts a heartbeat (rtq-worker --health);
                                   * borrowed for the worker's life */
  const char *redis_url_file;     /* NULL; else a file holding the URL (one line, a
                                   * trailing newline stripped), read by
                                   * rtq_worker_new, replacing redis_url: the
                                   * password stays out of argv and code */
  int wait_replicas;              /* 0: none; N (1..64): each finish call is followed
                                   * by WAIT N on its connection (its reply arrives
                                   * later; the loop does not block); tasks fewer
                                   * replicas acknowledged are logged at WARNING and
                                   * counted (worker record field unreplicated) */
  int wait_timeout_ms;            /* 1000: that WAIT's timeout; below command_timeout_ms */
  int protocol;                   /* 0: RTQ_PROTOCOL, else 2; only 2 (the wire
                                   * protocol, docs/PROTOCOL.md; 1 is refused,
                                   * RTQ_EINVAL); rtq_worker_run refuses
                                   * (RTQ_EPROTOCOL) a namespace that holds
                                   * protocol 1's data */
  const char *signing_key_file;   /* NULL; else this worker's key file
                                   * (kid:hex lines, mode 0600; docs/SECURITY.md):
                                   * each outcome it writes carries the first
                                   * key's signature (rs) */
  const char *task_keys_file;     /* NULL; else the producers' key file;
                                   * a task without a valid signature under it is
                                   * not run: it fails BAD_SIGNATURE and its id is
                                   * dead-lettered */
} rtq_worker_options;

/* Fills o with the defaults above. */
RTQ_EXTERN void rtq_worker_options_init(rtq_worker_options *o);

/*
 * Validates o and creates a worker (nothing is connected yet). Returns 0 and
 * sets *out, which the caller frees with rtq_worker_free(); or RTQ_EINVAL
 * (a bad option, named in errbuf), RTQ_ENOMEM or RTQ_EIO; *out is then NULL.
 * errbuf may be NULL.
 */
RTQ_EXTERN int rtq_worker_new(const rtq_worker_options *o, rtq_worker **out, char *errbuf,
                              size_t errcap);
/* Frees the worker. Not while rtq_worker_run() runs. NULL does nothing.
 * Threads of abandoned handlers (see docs/WORKER.md) are left to finish. */
RTQ_EXTERN void rtq_worker_free(rtq_worker *w);

/*
 * Registers fn for task name (a valid name, ^[A-Za-z0-9._:-]{1,128}$; copied).
 * userdata is borrowed for the worker's life. Call before rtq_worker_run().
 * Returns 0, RTQ_EINVAL (bad name, NULL fn, or the worker is running),
 * RTQ_EEXIST (name taken) or RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_worker_register(rtq_worker *w, const char *name, rtq_handler_fn fn,
                                   void *userdata);
/*
 * Registers a handler served by external processes speaking the exec
 * protocol (docs/EXEC.md): name is a task name or a pattern with '*' and
 * '?'; command is split into words (blanks separate, quotes group; no
 * shell) and run as a pool of pool_size long-lived processes (0: the
 * concurrency, at most 64). Needs thread isolation. Same returns as
 * rtq_worker_register, plus RTQ_EINVAL for an empty command or process
 * isolation.
 */
RTQ_EXTERN int rtq_worker_register_exec(rtq_worker *w, const char *name, const char *command,
                                        int pool_size);
/* One process per task (docs/EXEC.md, one-shot mode): the args as JSON on
 * its stdin, the result as JSON on its stdout, exit 0 = completed. */
RTQ_EXTERN int rtq_worker_register_exec_oneshot(rtq_worker *w, const char *name, const char *command);
/* Registers rtq.echo, rtq.sleep, rtq.fail, rtq.crash, rtq.noop and
 * rtq.progress (docs/WORKER.md). Same returns as rtq_worker_register. */
RTQ_EXTERN int rtq_worker_register_demo_handlers(rtq_worker *w);
/* Marks a plugin's registration function as exported (plugins built with
 * -fvisibility=hidden need it; elsewhere it is harmless). */
#if defined(__GNUC__)
#define RTQ_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define RTQ_PLUGIN_EXPORT
#endif

/*
 * dlopen()s a handler plugin and calls its registration function,
 *     RTQ_PLUGIN_EXPORT int rtq_plugin_register(rtq_worker *w);
 * which registers handlers and returns 0. The library stays loaded for the
 * life of the process. Returns 0, RTQ_EIO (dlopen/dlsym failed) or the
 * plugin's own non-zero return (RTQ_EINVAL when it returned a positive
 * value); rtq_worker_errstr() says why.
 */
RTQ_EXTERN int rtq_worker_load_plugin(rtq_worker *w, const char *path);

/*
 * Runs the worker on the calling thread until it is stopped and has shut
 * down gracefully (see docs/WORKER.md). Returns 0 after a clean shutdown
 * (every task finished or handed back); RTQ_ECONN when Redis stayed
 * unreachable during shutdown, so some writes were left to the broker;
 * RTQ_EINVAL when no handler is registered, or the worker runs or ran
 * already (a worker runs once); RTQ_ENOMEM / RTQ_EIO on a local failure.
 * RTQ_ESTATE when it stopped itself because more than max_abandoned_threads
 * handler threads it abandoned are still running (restart the process to get rid
 * of them; its other tasks were finished or handed back first).
 * rtq_worker_errstr() says why. Redis being down at start is not an error:
 * it is retried with backoff. SIGPIPE is blocked on the calling thread
 * while it runs (a closed socket then fails with EPIPE instead).
 */
RTQ_EXTERN int rtq_worker_run(rtq_worker *w);
/* Asks a worker to stop: no new claims; running tasks get shutdown_grace_ms.
 * Async-signal-safe and thread-safe; may be called before rtq_worker_run()
 * (which then returns at once, 0). Calling it again skips the grace. */
RTQ_EXTERN void rtq_worker_stop(rtq_worker *w);

/* The worker id ("<host>-<pid>-<hex>"); borrowed for the worker's life. */
RTQ_EXTERN const char *rtq_worker_id(const rtq_worker *w);
/* Why the last call failed; "" when nothing did. Borrowed until the next call. */
RTQ_EXTERN const char *rtq_worker_errstr(const rtq_worker *w);

/* ---- The handler API. t is the task the handler received. ---- */

/* Task id, handler name and queue: borrowed, valid until the handler returns. */
RTQ_EXTERN const char *rtq_task_id(const rtq_task_ctx *t);
RTQ_EXTERN const char *rtq_task_name(const rtq_task_ctx *t);
RTQ_EXTERN const char *rtq_task_queue(const rtq_task_ctx *t);
/* Delivery number, 1 for the first run. */
RTQ_EXTERN uint32_t rtq_task_attempt(const rtq_task_ctx *t);
/* The task's timeout in ms (its own or default_timeout). */
RTQ_EXTERN uint64_t rtq_task_timeout_ms(const rtq_task_ctx *t);

/* The keyword arguments, decoded on first use; borrowed until the handler
 * returns. NULL only when out of memory (the worker checked the bytes). */
RTQ_EXTERN const rtq_args *rtq_task_args(rtq_task_ctx *t);
/* The raw msgpack map of the arguments; borrowed until the handler returns. */
RTQ_EXTERN const void *rtq_task_args_msgpack(const rtq_task_ctx *t, size_t *len);

/*
 * Reports progress: percent is clamped to 0..100 (NaN is 0), message may be
 * NULL and is cut to 1024 bytes. Cheap: the worker writes at most one update
 * per progress_interval_ms and always writes the last one. Returns 0 or
 * RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_task_progress(rtq_task_ctx *t, double percent, const char *message);
/* True once a cancel or the task's timeout has been requested; then return
 * soon. Cheap (one atomic load): poll it in loops. */
RTQ_EXTERN bool rtq_task_cancelled(const rtq_task_ctx *t);
/* Sleeps ms milliseconds, waking early when the task is cancelled. Returns
 * 0 after the full sleep, RTQ_ESTATE when cancelled. */
RTQ_EXTERN int rtq_task_sleep_ms(rtq_task_ctx *t, uint64_t ms);

/*
 * Sets the result (replacing an earlier one); the value is copied. Returns
 * 0, RTQ_EINVAL (NULL or bad msgpack/JSON: RTQ_EJSON for bad JSON),
 * RTQ_ETOOBIG (over max_result) or RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_task_set_result(rtq_task_ctx *t, const rtq_args *result);
RTQ_EXTERN int rtq_task_set_result_json(rtq_task_ctx *t, const char *json);
RTQ_EXTERN int rtq_task_set_result_msgpack(rtq_task_ctx *t, const void *buf, size_t len);

/*
 * Marks the task failed with an error code (non-empty, at most 64 bytes),
 * a message (may be NULL) and details (a map, may be NULL); all copied. The
 * handler should then return. The last call wins. A task with retries left
 * is retried later (the protocol decides). Returns 0, RTQ_EINVAL or RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_task_fail(rtq_task_ctx *t, const char *code, const char *message,
                             const rtq_args *details);
/* Attaches a traceback text to the failure (copied, cut to 64 KiB). */
RTQ_EXTERN int rtq_task_set_traceback(rtq_task_ctx *t, const char *text);

#ifdef __cplusplus
}
#endif
#endif
