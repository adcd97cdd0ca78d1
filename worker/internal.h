/*
 * internal.h - the worker's internal model, shared by the worker's own files only.
 *
 * Threads. The loop thread (the one in rtq_worker_run) owns everything in
 * this file except struct rtq_task_ctx, which it shares with the handler that
 * runs the task: the handler writes progress under task->mu and its
 * outcome before handing the task back through the pool's done list.
 *
 * A job is the loop thread's record of one task id it took:
 *
 *   round ---> CLAIMING --claim ok--> RUNNING --handler done--> FINISHING
 *     |           |  skip: dropped       |                          |
 *     | bad entry |  missing: dead-      | shutdown grace over      | finish
 *     v           v  lettered            v                          v
 *   dead-lettered (freed)            REQUEUING --requeue--> (freed)
 *
 * ADOPTING is CLAIMING's twin for an id found in a processing list after a
 * connection loss (see claim2.c, "reconcile"). The lists hold ids: a job's
 * env is its id, and its name and args come from the claim's reply. A slot
 * is busy from the move that reserves it until the handler is done;
 * FINISHING jobs hold no slot, only their unwritten completion.
 */
#ifndef RTQ_WORKER_INTERNAL_H
#define RTQ_WORKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "argv.h"
#include "calls2.h"
#include "conn.h"
#include "envelope.h"
#include "frame.h"
#include "job_state.h"
#include "keys2.h"
#include "loop.h"
#include "progress.h"
#include "outcome.h"
#include "queues.h"
#include "sign.h"
#include "rconn.h"
#include "rtq/worker.h"

/* The cancel backstop reads the `cr` field of each running task this often. */
#define RTQ__CANCEL_CHECK2_MS 3000
#define RTQ__RETRY_WRITE_MS 1000
/* How often a worker reads {ns}:paused: a paused queue stops being claimed
 * from within this (plus a round trip). */
#define RTQ__PAUSED_POLL_MS 500

/* Why a running task is being stopped (also the value of its cancel flag). */
enum { RTQ__STOP_NONE = 0, RTQ__STOP_CANCEL = 1, RTQ__STOP_TIMEOUT = 2, RTQ__STOP_SHUTDOWN = 3 };

/* What finish.lua will write. Strings are malloc'd; NULL means none. */

/* struct rtq_task_ctx: what a handler sees (task.c). */
enum { RTQ__TASK_QUEUED, RTQ__TASK_RUNNING, RTQ__TASK_DONE, RTQ__TASK_ABANDONED };

struct rtq_task_ctx {
  char id[RTQ_NAME_MAX + 1];
  char name[RTQ_NAME_MAX + 1];
  char queue[RTQ_NAME_MAX + 1];
  uint32_t attempt;
  uint64_t timeout_ms;
  char *args;               /* msgpack map, owned */
  size_t args_len;
  rtq_args *args_tree;      /* decoded on first rtq_task_args() */
  rtq_handler_fn fn;
  void *userdata;
  size_t max_result;
  atomic_int *cancel;       /* &cancel_local, or a slot of the shared page */
  atomic_int cancel_local;
  bool in_child;            /* process isolation: runs in a forked child */
  int pipe_fd;              /* in the child: the write end to the worker */
  int progress_interval_ms;
  uint64_t child_last_write;
  /* progress, thread isolation: written by the handler under mu */
  pthread_mutex_t mu;
  rtq__prog prog;
  uint64_t prog_seq;
  /* the outcome, written by the handler thread before hand-off */
  rtq__outcome out;
  bool failed;
  int rc;
  int cancel_at_return;     /* the cancel flag when the handler returned */
  /* pool bookkeeping */
  atomic_int state;
  struct rtq_task_ctx *next;
  void *thread;
  void *job;
};

/* task.c */
rtq_task_ctx *rtq__task_new(const rtq_envelope *e, rtq_handler_fn fn, void *ud, size_t max_result,
                        int progress_interval_ms);
void rtq__task_free(rtq_task_ctx *t);
/* Runs the handler and records rc and the cancel flag at return. */
void rtq__task_run(rtq_task_ctx *t);
/* Thread isolation: copies a newer progress report into p. True if any. */
bool rtq__task_take_progress(rtq_task_ctx *t, uint64_t *seq, rtq__prog *p);

typedef struct rtq__job {
  rtq_worker *w;
  struct rtq__job *prev, *next;  /* all jobs */
  struct rtq__job *hnext;        /* id hash chain */
  struct rtq__job *qnext;        /* write queue (finish / requeue) */
  int state;                     /* rtq__job_state; only rtq__job_set_state moves it */
  bool queued;                   /* on the write queue */
  bool in_flight;                /* a script call for it awaits its reply */
  bool handler_live;             /* thread still owes a hand-off / child alive */
  char id[RTQ_NAME_MAX + 1];
  char name[RTQ_NAME_MAX + 1];
  char queue[RTQ_NAME_MAX + 1];
  char *env;                     /* the exact envelope bytes (LREM) */
  size_t env_len;
  rtq_envelope e;                /* decoded; e.args moves to the task */
  uint32_t attempt;
  uint64_t timeout_ms;
  /* protocol 2 signing: what ties the outcome's signature to this run of
   * this task (sign2.c): the task's sg as claimed, the claim's Redis ms */
  char task_sig[RTQ_SIGN_SIZE];
  int64_t run_started_ms;
  uint64_t started;              /* mono ms */
  uint64_t started_ns;           /* mono ns, for the run time */
  uint64_t run_us;               /* claim to hand-off, once ran */
  bool ran;                      /* the handler ran and ended: run_us counts */
  bool run_counted;              /* run_us went out in a finish call */
  uint64_t deadline;             /* mono ms */
  int stop_reason;               /* RTQ__STOP_* */
  uint64_t stop_at;              /* mono ms the stop was requested */
  bool killed;                   /* SIGKILL sent / thread abandoned */
  uint64_t retry_at;             /* mono ms; a failed write waits until then */
  rtq__prog prog;
  uint64_t prog_seq;
  rtq_task_ctx *task;                /* thread isolation */
  /* Process isolation: facts about the child, not states of the job. */
  struct {
    pid_t pid;
    int slot;                    /* index into the shared cancel page */
    int fd;
    rtq__io *io;
    rtq__frame_reader rd;
    bool reaped, got_final, proto_error;
    int wstatus;
  } proc;
  rtq__outcome out;
  int cancel_at_return;
  bool resent;                   /* finish sent again after a lost reply */
  bool claimed_running;          /* its claim left before a stop request */
} rtq__job;

typedef struct rtq__handler {
  char name[RTQ_NAME_MAX + 1];
  rtq_handler_fn fn;
  void *userdata;
  bool pattern;                  /* name is a glob (--exec 'billing.*=...') */
} rtq__handler;

typedef struct rtq__pool rtq__pool;
typedef struct rtq__round2 rtq__round2;
typedef struct rtq__link rtq__link;

/* wait_replicas (complete.c): the tasks of finish calls sent on one
 * command connection since the WAIT in flight there, for the next one. */
typedef struct rtq__waitq {
  struct rtq__waitset *pending;
  bool in_flight;
} rtq__waitq;

/* Shutdown phases. */
enum { RTQ__START, RTQ__RUN, RTQ__GRACE, RTQ__DRAIN, RTQ__CLEANUP, RTQ__DONE };

struct rtq_worker {
  rtq_worker_options o;
  char *redis_url;
  char *ns;
  rtq_redis_url url;
  rtq__queues queues;
  char id[RTQ_NAME_MAX + 1];
  char host[256];
  uint64_t started_at_ms;        /* wall clock */
  /* Namespace keys the worker uses outside the script calls (calls2.h
   * builds those): the record's DEL and ZREM, SUBSCRIBE, SMEMBERS. */
  rtq_key2 k_worker, k_workers, k_cancel_chan, k_paused;

  rtq__handler *handlers;
  size_t nhandlers, caphandlers;
  struct rtq__exec *exec;        /* --exec commands (exec.h), a list */

  rtq__ev *ev;
  rtq__rconn *cmd, *pop, *sub;
  atomic_int stop_requests;      /* rtq_worker_stop() count: the async-safe part */
  int stops_seen;
  bool running;
  int phase;
  uint64_t grace_deadline, drain_deadline, last_unblock;
  uint64_t next_paused_poll;     /* monotonic ms: next read of P:paused */
  bool paused_in_flight;         /* that read awaits its reply */
  bool paused_known;             /* a read answered: claiming may start */
  uint64_t start_retry_at;       /* START: next blocking start-up attempt */
  int start_backoff_ms;
  int start_failures;
  int exit_rc;
  /* Why the worker stopped itself (max_abandoned_threads), "" otherwise:
   * logged, and the stop_reason field of its record while it drains. */
  char stop_reason[200];

  /* jobs */
  rtq__job *jobs;                /* doubly linked list */
  rtq__job **htab;
  size_t hcap;
  int njobs, busy, running_jobs;
  rtq__job *wq_head, *wq_tail;   /* completions and requeues waiting to be sent */

  /* claiming */
  int reserved;                  /* slots reserved by the round in flight */
  bool hb_ok;                    /* first heartbeat written: may claim */
  int claims_in_flight;          /* claim / adopt / deadletter replies owed */
  bool need_reconcile;
  bool reconcile_in_flight;
  uint64_t reconcile_at;
  long last_processing_len;      /* entries the last reconcile saw; -1 unknown */
  bool use_eval;                 /* NOSCRIPT seen: send EVAL until reloaded */

  /* timers (mono ms) */
  uint64_t next_heartbeat, next_cancel_check;
  bool hb_in_flight, cancel_check_in_flight;
  int record_delete_pending;
  bool record_delete_failed;

  /* slots */
  rtq__pool *pool;               /* thread isolation */
  atomic_int *cancel_page;       /* process isolation: one flag per slot */
  size_t cancel_page_len;
  int *free_slots;
  int nfree_slots;

  rtq_argv argv;                 /* scratch, loop thread only */
  uint64_t rng;                  /* xorshift state for retry jitter */
  uint64_t trim_at;              /* mono ms of the next heap trim; 0 none */
  char errstr[256];
  /* protocol 2 (claim2.c and the other *2.c files): the per-queue keys
   * the worker sends outside the scripts (BLMOVE, LRANGE), the round in
   * flight, and until when each queue's limit allows no claim (mono ms) */
  rtq_keys2 keys2;
  rtq_key2 *k2_queue, *k2_proc;  /* per queue */
  uint64_t *limited_until;       /* per queue */
  rtq__round2 *round2;
  int reconcile_replies;         /* LRANGE replies owed (one per queue) */
  long reconcile_len;            /* entries those replies listed so far */
  /* protocol 2 on a redis+cluster:// URL (links.c): one cmd and pop
   * connection per node serving one of the queues; qlink[q] indexes links
   * (-1 while the queue has no node). links_on false: every queue uses
   * cmd and pop. */
  bool links_on, links_planned, links_dirty;
  bool reconcile_deferred;       /* a processing list was skipped: its node
                                  * was down; read when a link comes up */
  rtq__link **links;
  int nlinks;
  int *qlink;
  uint64_t links_plan_at;
  rtq__rconn_cfg link_cfg;
  bool links_reading;            /* a CLUSTER SLOTS is in flight */
  bool links_next_ready;         /* links_next holds a plan to apply */
  rtq_redis_endpoint *links_next; /* per queue: its node in that plan */
  unsigned links_from;           /* which connection asks for it next */
  /* ASK targets (links.c): a cmd and pop connection per importing node
   * an ASK named, closed once idle; asks followed in all */
  rtq__link **sides;
  int nsides;
  uint64_t n_asked;

  /* counters for logs and tests */
  uint64_t n_claimed, n_finished, n_dead, n_stale;
  rtq__waitq waitq;              /* wait_replicas on cmd */
  /* wait_replicas: tasks whose completion fewer replicas acknowledged
   * than asked (or whose WAIT failed) */
  uint64_t n_unreplicated;
  /* protocol 2 signing (sign2.c): the worker's own key, which signs its
   * outcomes, and the producers' keys, which every task must verify under */
  struct rtq_sign_keys *sign_keys, *task_keys;
};

/* Task ids of finish calls a WAIT covers (complete.c). */
typedef struct rtq__waitset {
  rtq__waitq *q;     /* whose WAIT it is */
  rtq__rconn *conn;  /* the connection it goes on */
  int n;
  char ids[][RTQ_NAME_MAX + 1];
} rtq__waitset;

/* worker.c */
/* A payload of len bytes went through: when large, return the heap pages
 * hiredis grew for it to the kernel once its buffers are freed. */
void rtq__note_payload(rtq_worker *w, size_t len);
void rtq__set_err(rtq_worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* handlers.c */
/* An exact name wins over patterns; patterns are tried in order. */
const rtq__handler *rtq__handler_find(const rtq_worker *w, const char *name);
int rtq__handler_add(rtq_worker *w, const char *name, rtq_handler_fn fn, void *userdata, bool pattern);
/* exec_pool.c: at teardown, drain every --exec pool; at free, drop them. */
void rtq__exec_drain_all(rtq_worker *w);
void rtq__exec_free_all(rtq_worker *w);
/* Handles a NOSCRIPT reply: true when r is one (the caller then resends). */
bool rtq__noscript(rtq_worker *w, const redisReply *r);
/* worker.c: the connections' on_up / on_down (rtq__rconn_cfg). */
void rtq__worker_on_conn_up(rtq_worker *w, rtq__rconn *c);
void rtq__worker_on_conn_down(rtq_worker *w, rtq__rconn *c);
int rtq__free_slots(const rtq_worker *w);

/* links.c: the connections of each queue (see the fields above). */
int rtq__links_init(rtq_worker *w, const rtq__rconn_cfg *base);
void rtq__links_service(rtq_worker *w, uint64_t now);
void rtq__links_free(rtq_worker *w);
void rtq__links_shrink(rtq_worker *w);
/* Closes the links' sockets (a forked child's copies). */
void rtq__links_close_fds(rtq_worker *w);
/* True when c is a link's connection. */
bool rtq__links_owns(const rtq_worker *w, const rtq__rconn *c);
/* The cmd and pop connection of queue qi (cmd, pop without links); NULL
 * while the queue has no node. */
rtq__rconn *rtq__qcmd(rtq_worker *w, int qi);
rtq__rconn *rtq__qpop(rtq_worker *w, int qi);
/* The cmd connection of a queue by name (cmd for a name not served). */
rtq__rconn *rtq__qcmd_of(rtq_worker *w, const char *queue);
/* rtq__rconn_cfg.on_ask of a cluster worker's connections (protocol 2). */
void rtq__links_on_ask(rtq_worker *w, rtq__rconn *from, const rtq_redis_endpoint *to, rtq__cmdcopy *cmd,
                       int extra_ms, rtq__reply_fn fn, void *pd);
/* Sends CLIENT UNBLOCK for a BLMOVE an ASK sent to another node. */
void rtq__links_unblock_asks(rtq_worker *w);
/* The wait_replicas state of a command connection. */
rtq__waitq *rtq__waitq_of(rtq_worker *w, const rtq__rconn *c);

/* jobs.c */
rtq__job *rtq__job_new(rtq_worker *w, const char *env, size_t len, rtq_envelope *e);
void rtq__job_free(rtq_worker *w, rtq__job *j);
rtq__job *rtq__job_find(const rtq_worker *w, const char *id, size_t len);
rtq__job *rtq__job_find_next(const rtq__job *j, const char *id, size_t len);
rtq__job *rtq__job_by_env(const rtq_worker *w, const char *env, size_t len);
/* Moves j to state, keeping the slot and running counts; the one place a
 * job's state changes. A move the table (job_state.h) does not allow is
 * refused: logged, asserted in debug builds, RTQ_ESTATE and j unchanged. */
int rtq__job_set_state(rtq_worker *w, rtq__job *j, int state);
void rtq__wq_push(rtq_worker *w, rtq__job *j);
rtq__job *rtq__wq_pop(rtq_worker *w);
int rtq__jobs_init(rtq_worker *w);
void rtq__jobs_destroy(rtq_worker *w);

/* claim.c */
void rtq__claim_pump(rtq_worker *w);
void rtq__claim_on_conn_down(rtq_worker *w, rtq__rconn *c);
void rtq__claim_unblock(rtq_worker *w);
/* CLIENT UNBLOCK of the pop connection's blocking command, if any. */
void rtq__unblock_pop(rtq_worker *w);
/* A reply callback for commands whose reply says nothing. */
void rtq__reply_ignore(rtq_worker *w, redisReply *r, void *pd);
void rtq__claim_tick(rtq_worker *w, uint64_t now);
/* Reads {ns}:paused every RTQ__PAUSED_POLL_MS and applies it to the queues. */
void rtq__claim_paused_tick(rtq_worker *w, uint64_t now);
void rtq__reconcile_pump(rtq_worker *w);

/* deadletter.c: the reply of a dead-letter call (pd unused). */
void rtq__deadletter_reply(rtq_worker *w, redisReply *r, void *pd);

/* complete.c */
void rtq__job_start(rtq_worker *w, rtq__job *j);
void rtq__job_done(rtq_worker *w, rtq__job *j);
void rtq__complete_pump(rtq_worker *w);
void rtq__requeue(rtq_worker *w, rtq__job *j);

/* slots_thread.c */
rtq__pool *rtq__pool_new(rtq_worker *w, int nthreads, size_t stack_kb);
void rtq__pool_free(rtq__pool *p);
int rtq__pool_submit(rtq__pool *p, rtq_task_ctx *t);
/* Moves finished tasks to the loop thread: fn(w, task) for each. */
void rtq__pool_drain(rtq__pool *p, void (*fn)(rtq_worker *w, rtq_task_ctx *t));
/* Gives up on a task whose handler will not return: 0 when abandoned (its
 * thread is replaced and frees the task when it returns), RTQ_ESTATE when
 * it finished meanwhile (it is then on the done list). */
int rtq__pool_abandon(rtq__pool *p, rtq_task_ctx *t);
/* Abandoned threads whose handler has not returned yet. Any thread. */
int rtq__pool_abandoned(rtq__pool *p);

/* slots_process.c */
int rtq__proc_init(rtq_worker *w);
void rtq__proc_destroy(rtq_worker *w);
int rtq__proc_start(rtq_worker *w, rtq__job *j, rtq_task_ctx *t);
void rtq__proc_kill(rtq_worker *w, rtq__job *j);
void rtq__proc_reap(rtq_worker *w);
void rtq__proc_set_cancel(rtq_worker *w, rtq__job *j, int reason);
void rtq__proc_release(rtq_worker *w, rtq__job *j);

/* child.c (runs in the forked child, never returns) */
void rtq__child_main(rtq_task_ctx *t, int fd, pid_t parent, int rlimit_as_mb, int rlimit_cpu_s)
    __attribute__((noreturn));
int rtq__child_write_progress(rtq_task_ctx *t, bool force);
/* "SIGSEGV", ...; "SIG?" for others. Async-signal-safe (static strings). */
const char *rtq__signal_name(int sig);

/* cancel.c */
void rtq__cancel_on_message(rtq_worker *w, const char *msg, size_t len);
void rtq__job_request_stop(rtq_worker *w, rtq__job *j, int reason);
/* Kills (process) or abandons (thread) a handler that ignored its stop. */
void rtq__job_kill_handler(rtq_worker *w, rtq__job *j);
void rtq__cancel_tick(rtq_worker *w, uint64_t now);

/* progress_send.c */
void rtq__progress_tick(rtq_worker *w, uint64_t now);

/* heartbeat.c */
void rtq__heartbeat_tick(rtq_worker *w, uint64_t now);
void rtq__worker_record_delete(rtq_worker *w);

/* shutdown.c */
void rtq__shutdown_begin(rtq_worker *w, bool hurry);
/* Stops the worker on its own account: the reason goes to the log and the
 * worker record, the stop is graceful, and rtq_worker_run returns rc. */
void rtq__shutdown_retire(rtq_worker *w, int rc, const char *reason);
void rtq__shutdown_tick(rtq_worker *w, uint64_t now);

/* ---- protocol 2 (the *2.c files; see claim2.c) ---- */

/* True while a claim round is in flight. */
static inline bool rtq__round_in_flight(const rtq_worker *w) { return w->round2 != NULL; }
/* claim2.c */
void rtq__claim2_pump(rtq_worker *w);
void rtq__claim2_unblock(rtq_worker *w);
void rtq__claim2_tick(rtq_worker *w, uint64_t now);
void rtq__reconcile2_pump(rtq_worker *w);
/* The index of the worker's queue name, or -1. */
int rtq__queue_index(const rtq_worker *w, const char *name);
/* steps2.c */
/* How ended tasks are kept (result_ttl_s, history, max_history). */
rtq__keep2 rtq__keep2_of(const rtq_worker *w);
/* entry (len bytes, as read from queue's processing list) to {ns:Q}:dead. */
void rtq__deadletter2(rtq_worker *w, const char *queue, const char *entry, size_t len, const char *code,
                      const char *reason);
/* A claimed task whose name no handler here serves: handback, or
 * UNKNOWN_TASK (unknown_task_requeue off, or handed back too often). */
/* Dead-letters the task of claimed job j as a failure of its run, which
 * the worker signs when it holds a signing key. */
void rtq__deadletter2_run(rtq_worker *w, const rtq__job *j, const char *code, const char *reason);
void rtq__unknown_task2(rtq_worker *w, const rtq__job *j);
/* Builds the call in w->argv: 0 or the builders' returns. */
int rtq__progress2_argv(rtq_worker *w, const rtq__job *j);
int rtq__heartbeat2_argv(rtq_worker *w, const rtq__hb_field *fields, int n);
/* One HGET of `cr` per running task not being stopped. */
void rtq__cancel2_check(rtq_worker *w);
/* complete2.c: 1..64 jobs of one queue; their runs counted when count_runs. */
int rtq__finish2_argv(rtq_worker *w, rtq__job *const *jobs, int n, bool count_runs,
                      uint64_t (*jitter)(rtq_worker *));
int rtq__requeue2_argv(rtq_worker *w, const rtq__job *j);
/* sign2.c: loads the key files of w->o; frees them. */
int rtq__sign2_load(rtq_worker *w, char *errbuf, size_t errcap);
void rtq__sign2_free(rtq_worker *w);
/* true when no task keys are held, or the ok entry e of queue carries a
 * valid producer signature. */
bool rtq__sign2_task_ok(const rtq_worker *w, const char *queue, const rtq__claim2_entry *e);
/* Keeps in j what its outcome's signature is tied to: the task's sg and
 * the claim's time (its deadline less the timeout j runs with). */
void rtq__sign2_bind(rtq__job *j, const rtq__claim2_entry *e);
/* One run of a task, as its end's signature covers it. */
typedef struct rtq__run2 {
  uint32_t attempt;
  int64_t started_ms;
  char task_sig[RTQ_SIGN_SIZE];
} rtq__run2;
rtq__run2 rtq__run2_of(const rtq__job *j);
/* With a signing key: appends to w->argv (a deadletter call just built)
 * the worker's signature of the failure code/reason that ends run of
 * task id. 0 (also without a key) or RTQ_ENOMEM. */
int rtq__sign2_failure(rtq_worker *w, const char *queue, const char *id, const char *code, const char *reason,
                       const rtq__run2 *run);
/* With a signing key: sets t's outcome_signature to the outcome's (written
 * into sig, RTQ_SIGN_SIZE bytes), making t's code and message of a
 * cancelled or timeout end the ones finish stores. 0 or RTQ_ENOMEM. */
int rtq__sign2_outcome(const rtq_worker *w, const rtq__job *j, rtq__finish2_task *t, char *sig);
/* complete.c: the jitter added to a retry's backoff. */
uint64_t rtq__jitter_ms(rtq_worker *w);

#endif
