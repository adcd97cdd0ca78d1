/*
 * exec.h - handler processes (rtq-worker --exec, docs/EXEC.md).
 *
 * An --exec NAME=COMMAND registers one handler (NAME may be a pattern)
 * whose function (exec_handler in exec_pool.c) runs in a pool thread like any C
 * handler: it borrows a long-lived process of the command's pool, writes
 * the task to it and relays what comes back through the handler API
 * (rtq_task_progress, rtq_task_set_result_json, rtq_task_fail). So claims,
 * fencing, heartbeats, the progress coalescing, cancellation, timeouts and
 * the finish path are the worker's own; this code adds only what a process
 * needs: start, ready, the cancel frame, TERM/KILL of its process group,
 * crash reports and respawn with backoff. That is why --exec needs thread
 * isolation.
 *
 *   exec_pool.c  the pool: spawn, ready, borrow/return, backoff, shutdown
 *   exec_run.c   one task on one borrowed process
 *   exec_oneshot.c  --exec-oneshot: one process per task, args on stdin
 *   exec_proto.c JSON-line framing (pure)
 */
#ifndef RTQ_WORKER_EXEC_H
#define RTQ_WORKER_EXEC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "exec_proto.h"
#include "rtq/worker.h"

#define RTQ__EXEC_POOL_MAX 64
#define RTQ__EXEC_START_TIMEOUT_MS 10000
#define RTQ__EXEC_START_FAILS_MAX 5
#define RTQ__EXEC_BACKOFF_MIN_MS 100
#define RTQ__EXEC_BACKOFF_MAX_MS 30000
#define RTQ__EXEC_TAIL_LINES 20
#define RTQ__EXEC_TAIL_BYTES 4096
#define RTQ__EXEC_STDERR_LINE 4096

#define RTQ_CODE_EXEC_PROTOCOL "EXEC_PROTOCOL"
#define RTQ_CODE_EXEC_UNAVAILABLE "EXEC_UNAVAILABLE"

/* One handler process. Its fields belong to whoever holds it: the pool
 * (under mu) while idle, the borrowing thread while busy. */
typedef struct rtq__xproc {
  pid_t pid;                  /* 0: no process in this place */
  int in, out, err;           /* its stdin (write end), stdout, stderr */
  bool busy;                  /* borrowed, or being started */
  bool respawn;               /* start a process here once the backoff allows (exec_idle.c) */
  rtq__xline rd;              /* stdout lines */
  char errline[RTQ__EXEC_STDERR_LINE];
  size_t errlen;              /* an unfinished stderr line */
  char *tail[RTQ__EXEC_TAIL_LINES]; /* last stderr lines, a ring */
  int tail_next;
} rtq__xproc;

/* A task waiting for a process of the pool (exec_pool.c). A process
 * that comes back goes straight to the first waiter, with its task frame
 * already written: the process starts on it while the waiter wakes up.
 * Lives on the waiter's stack; linked and handed over under mu. */
typedef struct rtq__xwait {
  struct rtq__xwait *next;
  rtq_task_ctx *t;
  pthread_cond_t cv;          /* signalled under mu: look again, or ready */
  struct rtq__xproc *got;     /* the process handed over */
  bool ready;                 /* the hand-over is done (the frame written) */
  const char *frame;          /* the task frame, borrowed */
  size_t len;
  size_t sent;                /* bytes of frame already written to got */
} rtq__xwait;

typedef struct rtq__exec {
  char *pattern;
  char *command;
  char **argv;                /* command split into words */
  char **envp;                /* the worker's environment without RTQ_REDIS_URL */
  int kill_grace_ms;
  bool oneshot;               /* --exec-oneshot: a process per task, no pool */
  int size;
  rtq__xproc *procs;
  pthread_mutex_t mu;
  pthread_cond_t cv;          /* a process was returned (the drain waits on it) */
  rtq__xwait *waiters;        /* tasks waiting for a process, first come first */
  int refs;                   /* the worker's, plus one per running task */
  bool closing;               /* written under mu with an atomic store: start() reads it unlocked */
  int start_fails;            /* failed starts in a row */
  int bad_runs;               /* starts or processes that failed in a row (backoff) */
  int deaths;                 /* processes ended badly in a row (not failed starts) */
  uint64_t next_start;        /* mono ms: no start before this (backoff) */
  char last_error[256];       /* why the last start failed or the last process ended */
  pthread_t watcher;          /* exec_idle.c, while watching */
  bool watching;
  pthread_cond_t watch_cv;    /* wakes the watcher at shutdown */
  struct rtq__exec *next;
} rtq__exec;

/* exec_pool.c */
/* Starts COMMAND in p (own process group, pipes, filtered environment).
 * 0, or -1 with msg set. */
int rtq__exec_spawn(rtq__exec *x, rtq__xproc *p, char *msg, size_t cap);
rtq__exec *rtq__exec_new(const char *pattern, const char *command, int size, int kill_grace_ms);
/* Takes a reference for one running task (the handlers do, for as long
 * as they run); rtq__exec_unref drops one and frees x with the last. */
void rtq__exec_ref(rtq__exec *x);
void rtq__exec_unref(rtq__exec *x);
/* Borrows a ready process for task t, whose frame (len bytes, borrowed
 * for the call) is what it will write first; *sent gets how many of its
 * bytes are already written to the process (a process handed over by
 * rtq__exec_return comes with them). NULL with *code and msg set when
 * none can be had (EXEC_UNAVAILABLE, or cancelled while waiting: code
 * NULL). */
rtq__xproc *rtq__exec_borrow(rtq__exec *x, rtq_task_ctx *t, const char *frame, size_t len, size_t *sent,
                             const char **code, char *msg, size_t cap);
/* Returns a process: with why NULL it goes to the first waiting task
 * that is not cancelled (its frame written here), else back to the idle
 * set; otherwise it is ended (process group killed, reaped), counted against
 * the command for why, and started again after the backoff. */
void rtq__exec_return(rtq__exec *x, rtq__xproc *p, const char *why);
/* True when p's process has ended (not reaped: its group stays ours). */
bool rtq__exec_exited(const rtq__xproc *p);
/* Ends the process group of p, reaps it and closes its pipes. *wstatus
 * gets its wait status (or -1). */
void rtq__exec_end(rtq__xproc *p, int *wstatus);
/* Reads stderr of p: each whole line is logged with the task id (NULL
 * when idle) and kept in the tail. False at end of file. */
bool rtq__exec_read_stderr(rtq__xproc *p, const char *task_id);
/* The stderr tail as one malloc'd text (NULL when empty). */
char *rtq__exec_tail(const rtq__xproc *p);
/* Starts a process in p and waits for its "ready". 0, or -1 with msg set
 * and p empty again. Gives up when x starts closing. */
int rtq__exec_start(rtq__exec *x, rtq__xproc *p, char *msg, size_t cap);
/* Under mu: wakes the first waiting task (all with all) to look at the
 * pool again: a process became idle, or a start failed. */
void rtq__exec_wake_waiters(rtq__exec *x, bool all);
/* Under mu: one more process ended badly for why: pushes the next start
 * back (backoff) and keeps why for the heartbeat. */
void rtq__exec_count_bad(rtq__exec *x, const char *why);
/* Under mu: a start failed for why (counted, logged). */
void rtq__exec_start_failed(rtq__exec *x, const char *why);
/* True when x's command is unavailable: it failed to start, or its
 * processes ended badly, RTQ__EXEC_START_FAILS_MAX times in a row (a
 * successful start clears the first, a completed task both). Under mu. */
bool rtq__exec_unavailable(const rtq__exec *x);
/* The worker record's exec_unavailable field (docs/PROTOCOL.md): one
 * "NAME=REASON" line per unavailable command, "" when none. */
void rtq__exec_status(rtq_worker *w, char *out, size_t cap);
/* Graceful end of a pool at worker shutdown: "shutdown" to idle
 * processes, up to the kill grace for them to exit, then TERM, then KILL;
 * busy ones (their task was handed back) are killed. */
void rtq__exec_drain(rtq__exec *x);

/* exec_idle.c: a thread per pool that reads the stderr of idle processes
 * (a process is never blocked on a full stderr pipe between tasks),
 * notices an idle process that dies, and starts ended processes again
 * after the backoff. rtq__exec_watch_stop joins it (not under mu). */
int rtq__exec_watch_start(rtq__exec *x);
void rtq__exec_watch_stop(rtq__exec *x);

/* exec_run.c: task t on a process borrowed from x's pool (--exec).
 * args: the task's args as JSON object text, borrowed. */
int rtq__exec_run_pooled(rtq__exec *x, rtq_task_ctx *t, const char *args);
/* exec_oneshot.c: task t on a process of its own (--exec-oneshot). */
int rtq__exec_run_oneshot(rtq__exec *x, rtq_task_ctx *t, const char *args);

#endif
