/*
 * exec_idle.c - the watcher of a pool's idle processes (exec.h).
 *
 * Between tasks nobody else reads a process: without the watcher, one
 * that writes more than a pipe's buffer (64 KiB) to stderr while idle
 * would block until its next task, and one that dies while idle would be
 * noticed only when a task borrows it. The watcher polls the idle
 * processes' stderr (POLLIN) and stdout (hang-up only) every WATCH_MS at
 * most, and under mu, for each process still idle:
 *
 *   1. reads what its stderr holds (logged without a task id, kept in the
 *      tail);
 *   2. when it has exited, or hung up its stdout (it can serve no task
 *      then), ends its process group, counts it against the command
 *      (backoff) and marks its place for a respawn;
 *   3. starts a marked place again once the backoff allows (marked too by
 *      rtq__exec_return for a process ended after a task, and the first
 *      place when the pool is made: one process starts at once).
 *
 * A process borrowed meanwhile is left alone: its task's thread owns it.
 * mu is never held across a wait: a process that hung up is held busy
 * while the watcher gives it a moment to exit.
 * The watcher wakes a waiting borrower only for a process it started;
 * only the drain wakes the watcher (watch_cv).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "clock.h"
#include "exec.h"
#include "internal.h"
#include "log.h"

#define WATCH_MS 50

static bool closing(rtq__exec *x) { return __atomic_load_n(&x->closing, __ATOMIC_ACQUIRE); }

/* Under mu: p is idle with a live process and something happened on it. */
static void look_at(rtq__exec *x, rtq__xproc *p, bool hangup) {
  (void)rtq__exec_read_stderr(p, NULL);
  bool dead = rtq__exec_exited(p);
  if (!dead && !hangup) return;
  if (!dead) {
    /* An exiting process closes its pipes a moment before it becomes a
     * zombie: a hang-up gets that moment (up to 100 ms), so its status is
     * the report. The place is held busy, so no borrower takes it, and mu
     * is let go meanwhile, so borrowers of other places never wait. */
    p->busy = true;
    pthread_mutex_unlock(&x->mu);
    for (int i = 0; !dead && i < 50; i++) {
      struct timespec ts = {0, 2 * 1000000L};
      nanosleep(&ts, NULL);
      dead = rtq__exec_exited(p);
    }
    pthread_mutex_lock(&x->mu);
    p->busy = false;
  }
  char why[160];
  int st;
  if (!dead) {
    snprintf(why, sizeof why, "a handler process closed its stdout while idle");
    rtq__exec_end(p, NULL);
  } else {
    rtq__exec_end(p, &st);
    if (st != -1 && WIFSIGNALED(st))
      snprintf(why, sizeof why, "a handler process was killed by %s while idle", rtq__signal_name(WTERMSIG(st)));
    else
      snprintf(why, sizeof why, "a handler process exited with status %d while idle",
               st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1);
  }
  rtq_log(RTQ_LOG_WARNING, "idle handler process ended", "handler", x->pattern, "error", why, NULL);
  rtq__exec_count_bad(x, why);
  p->respawn = true;
}

/* Under mu: starts the first place marked for a respawn once the backoff
 * allows. Unlocks mu while the process starts (the place is busy then). */
static void respawn_one(rtq__exec *x) {
  for (int i = 0; i < x->size; i++) {
    rtq__xproc *p = &x->procs[i];
    if (!p->respawn || p->busy || p->pid != 0 || rtq__mono_ms() < x->next_start || closing(x)) continue;
    p->busy = true;
    pthread_mutex_unlock(&x->mu);
    char why[512];
    int rc = rtq__exec_start(x, p, why, sizeof why);
    pthread_mutex_lock(&x->mu);
    p->busy = false;
    if (rc == 0) {
      p->respawn = false;
      x->start_fails = 0;
      rtq__exec_wake_waiters(x, false); /* a borrower may be waiting for it */
    } else if (!closing(x)) {
      rtq__exec_start_failed(x, why);
    }
    return;
  }
}

static void *watch(void *arg) {
  rtq__exec *x = arg;
  struct pollfd pf[2 * RTQ__EXEC_POOL_MAX];
  int who[2 * RTQ__EXEC_POOL_MAX];
  pid_t pids[2 * RTQ__EXEC_POOL_MAX];
  pthread_mutex_lock(&x->mu);
  while (!closing(x)) {
    respawn_one(x);
    int n = 0;
    for (int i = 0; i < x->size; i++) {
      rtq__xproc *p = &x->procs[i];
      if (p->busy || p->pid == 0) continue;
      if (p->err >= 0) {
        pf[n] = (struct pollfd){p->err, POLLIN, 0};
        pids[n] = p->pid;
        who[n++] = i;
      }
      if (p->out >= 0) {
        pf[n] = (struct pollfd){p->out, 0, 0}; /* hang-up only: stdout is read by tasks */
        pids[n] = p->pid;
        who[n++] = i;
      }
    }
    if (n == 0) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_nsec += WATCH_MS * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      (void)pthread_cond_timedwait(&x->watch_cv, &x->mu, &ts);
      continue;
    }
    pthread_mutex_unlock(&x->mu);
    int ready = poll(pf, (nfds_t)n, WATCH_MS);
    pthread_mutex_lock(&x->mu);
    /* Fds are matched again under mu: a place may have been borrowed,
     * ended or started again during the poll. A quiet round still checks
     * each idle process's exit (a grandchild may hold its pipes open). */
    for (int k = 0; k < n; k++) {
      rtq__xproc *p = &x->procs[who[k]];
      if (p->busy || p->pid != pids[k] || (pf[k].fd != p->err && pf[k].fd != p->out)) continue;
      bool hangup = pf[k].fd == p->out && (pf[k].revents & (POLLHUP | POLLERR)) != 0;
      if (ready > 0 && pf[k].revents == 0) continue;
      if (ready <= 0 && pf[k].fd != p->out) continue; /* once per process */
      look_at(x, p, hangup);
    }
  }
  pthread_mutex_unlock(&x->mu);
  return NULL;
}

int rtq__exec_watch_start(rtq__exec *x) {
  /* One process at once, not at the first task: a command that cannot
   * run is then reported (heartbeat) before any task needs it. */
  x->procs[0].respawn = true;
  if (pthread_create(&x->watcher, NULL, watch, x) != 0) return RTQ_ENOMEM;
  x->watching = true;
  return 0;
}

void rtq__exec_watch_stop(rtq__exec *x) {
  pthread_mutex_lock(&x->mu);
  __atomic_store_n(&x->closing, true, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&x->watch_cv);
  bool join = x->watching;
  x->watching = false;
  pthread_mutex_unlock(&x->mu);
  if (join) pthread_join(x->watcher, NULL);
}
