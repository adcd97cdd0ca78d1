/*
 * slots_process.c - process isolation, the worker's side: a forked child
 * per task, a pipe back from it, and a page of cancel flags shared with
 * every child.
 *
 *   worker (loop thread)                      child
 *   ---------------------------------------   ---------------------------
 *   flag = cancel_page[slot]    <- shared ->  rtq_task_cancelled() reads it
 *   reads frames from the pipe  <- pipe ----  progress, outcome, crash text
 *   SIGCHLD -> waitpid(pid)                   _exit(0) / killed by a signal
 *
 * The outcome is decided when the child is reaped (not at pipe EOF, which a
 * grandchild holding the pipe could delay forever): the bytes still in the
 * pipe are read, then
 *   1. killed by a signal the worker did not send: failed, WORKER_CRASH,
 *      the signal's name in the message and the backtrace text from the
 *      child's crash handler as the traceback;
 *   2. killed by the worker after the kill grace: cancelled or timeout;
 *   3. exited after writing its outcome frame: that outcome;
 *   4. anything else (exited early, garbled pipe): failed, WORKER_CRASH.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "defaults.h"
#include "internal.h"
#include "log.h"

int rtq__proc_init(rtq_worker *w) {
  long page = sysconf(_SC_PAGESIZE);
  size_t len = (size_t)w->o.concurrency * sizeof(atomic_int);
  len = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return RTQ_EIO;
  w->cancel_page = p;
  w->cancel_page_len = len;
  w->free_slots = malloc((size_t)w->o.concurrency * sizeof(int));
  if (w->free_slots == NULL) {
    munmap(p, len);
    w->cancel_page = NULL;
    return RTQ_ENOMEM;
  }
  for (int i = 0; i < w->o.concurrency; i++) {
    atomic_init(&w->cancel_page[i], 0);
    w->free_slots[i] = w->o.concurrency - 1 - i;
  }
  w->nfree_slots = w->o.concurrency;
  return 0;
}

void rtq__proc_destroy(rtq_worker *w) {
  if (w->cancel_page != NULL) munmap(w->cancel_page, w->cancel_page_len);
  free(w->free_slots);
  w->cancel_page = NULL;
  w->free_slots = NULL;
  w->nfree_slots = 0;
}

static void close_pipe(rtq__job *j) {
  rtq__ev_io_free(j->proc.io);
  j->proc.io = NULL;
  if (j->proc.fd >= 0) close(j->proc.fd);
  j->proc.fd = -1;
}

static void on_frame(rtq__job *j, char type, const char *p, size_t len) {
  rtq__field f[7];
  if (type == 'P') {
    char pct[16];
    if (rtq__frame_field(p, len, 0, &f[0]) != 0 || rtq__frame_field(p, len, 1, &f[1]) != 0 ||
        rtq__frame_field(p, len, 2, &f[2]) != 0 || f[0].len >= sizeof pct || f[1].len != 1) {
      j->proc.proto_error = true;
      return;
    }
    memcpy(pct, f[0].p, f[0].len);
    pct[f[0].len] = '\0';
    bool has_msg = *(const char *)f[1].p == '1';
    (void)rtq__prog_set(&j->prog, strtod(pct, NULL), has_msg ? f[2].p : NULL, f[2].len);
    return;
  }
  if (type != 'R') return; /* 'C': the reader collects the tail itself */
  for (int i = 0; i < 7; i++) {
    if (rtq__frame_field(p, len, i, &f[i]) != 0) {
      j->proc.proto_error = true;
      return;
    }
  }
  rtq__outcome_destroy(&j->out);
  j->cancel_at_return = f[0].len == 1 && *(const char *)f[0].p == '1';
  int st = f[1].len == 1 ? *(const char *)f[1].p - '0' : -1;
  /* The child runs the handler: its frame gets the same limits and
   * checks as a thread's outcome (outcome.h). */
  if (st == RTQ_STATUS_COMPLETED) {
    j->out.status = RTQ_STATUS_COMPLETED;
    int rc = f[2].len > 0 ? rtq__outcome_set_result(&j->out, f[2].p, f[2].len, j->w->o.max_result) : 0;
    if (rc == RTQ_ETOOBIG || rc == RTQ_EINVAL) {
      const char *why = rc == RTQ_ETOOBIG ? "the handler's result is over the worker's max_result"
                                          : "the handler's result is not valid msgpack";
      (void)rtq__outcome_set_error(&j->out, "BAD_RESULT", 10, why, strlen(why), NULL, 0, NULL, 0);
    }
  } else {
    (void)rtq__outcome_set_error(&j->out, f[3].p, f[3].len, f[4].p, f[4].len, f[5].p, f[5].len,
                                 f[6].p, f[6].len);
  }
  j->proc.got_final = true;
}

/* Reads what the pipe holds now; stops at EAGAIN, EOF or an error. */
static void read_pipe(rtq__job *j) {
  char buf[16384];
  while (j->proc.fd >= 0) {
    ssize_t n = read(j->proc.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      close_pipe(j);
      return;
    }
    if (rtq__frame_feed(&j->proc.rd, buf, (size_t)n) != 0) {
      j->proc.proto_error = true;
      close_pipe(j);
      return;
    }
    char type;
    const char *p;
    size_t len;
    int rc;
    while ((rc = rtq__frame_next(&j->proc.rd, &type, &p, &len)) == 1) on_frame(j, type, p, len);
    if (rc < 0 || j->proc.proto_error) {
      j->proc.proto_error = true;
      close_pipe(j);
      return;
    }
  }
}

static void on_readable(void *data) { read_pipe(data); }

int rtq__proc_start(rtq_worker *w, rtq__job *j, rtq_task_ctx *t) {
  if (w->nfree_slots == 0) return RTQ_ESTATE;
  int slot = w->free_slots[--w->nfree_slots];
  atomic_store(&w->cancel_page[slot], j->stop_reason);
  t->cancel = &w->cancel_page[slot];
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    w->free_slots[w->nfree_slots++] = slot;
    return RTQ_EIO;
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    w->free_slots[w->nfree_slots++] = slot;
    return RTQ_EIO;
  }
  if (pid == 0) {
    /* The child must not hold the worker's sockets: their copies would
     * keep a dropped connection (and its epoll registration) alive. */
    close(fds[0]);
    int own[3] = {rtq__rconn_fd(w->cmd), rtq__rconn_fd(w->pop), rtq__rconn_fd(w->sub)};
    for (int i = 0; i < 3; i++)
      if (own[i] >= 0) close(own[i]);
    rtq__links_close_fds(w);
    for (rtq__job *o = w->jobs; o != NULL; o = o->next)
      if (o->proc.fd >= 0) close(o->proc.fd);
    rtq__child_main(t, fds[1], parent, w->o.rlimit_as_mb, w->o.rlimit_cpu_s);
  }
  close(fds[1]);
  (void)fcntl(fds[0], F_SETFL, O_NONBLOCK);
  j->proc.pid = pid;
  j->proc.slot = slot;
  j->proc.fd = fds[0];
  j->proc.rd.max_frame = w->o.max_result + 3 * RTQ__MESSAGE_MAX + 4096;
  j->proc.io = rtq__ev_io_new(w->ev, fds[0], on_readable, j);
  return 0;
}

void rtq__proc_set_cancel(rtq_worker *w, rtq__job *j, int reason) {
  if (j->proc.slot >= 0 && w->cancel_page != NULL) atomic_store(&w->cancel_page[j->proc.slot], reason);
}

void rtq__proc_kill(rtq_worker *w, rtq__job *j) {
  (void)w;
  if (j->proc.pid <= 0 || j->proc.reaped) return;
  (void)kill(-j->proc.pid, SIGKILL);
  (void)kill(j->proc.pid, SIGKILL);
  j->killed = true;
}

static void crash_outcome(rtq__job *j, const char *msg, const char *tb) {
  rtq__outcome_destroy(&j->out);
  j->out.status = RTQ_STATUS_FAILED;
  j->out.code = strdup(RTQ_CODE_WORKER_CRASH);
  j->out.message = strdup(msg);
  if (tb != NULL) j->out.traceback = strdup(tb);
}

static void settle(rtq_worker *w, rtq__job *j) {
  int st = j->proc.wstatus;
  char msg[256];
  read_pipe(j);
  close_pipe(j);
  rtq__proc_release(w, j);
  if (j->state == RTQ__JOB_REQUEUING || j->state == RTQ__JOB_REQUEUED || j->killed) {
    rtq__job_done(w, j);
    return;
  }
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    snprintf(msg, sizeof msg, "handler process killed by %s (%s)", rtq__signal_name(sig), strsignal(sig));
    char head[300];
    snprintf(head, sizeof head, "%s\n", msg);
    size_t hl = strlen(head), tl = j->proc.rd.tail ? j->proc.rd.tail_len : 0;
    char *tb = malloc(hl + tl + 1);
    if (tb != NULL) {
      memcpy(tb, head, hl);
      if (tl) memcpy(tb + hl, j->proc.rd.tail, tl);
      tb[hl + tl] = '\0';
    }
    crash_outcome(j, msg, tb);
    free(tb);
    rtq_log(RTQ_LOG_WARNING, "handler process crashed", "task", j->id, "signal", rtq__signal_name(sig),
            NULL);
  } else if (!j->proc.got_final || j->proc.proto_error) {
    snprintf(msg, sizeof msg, "handler process exited with status %d %s", WEXITSTATUS(st),
             j->proc.proto_error ? "after garbling its pipe" : "without reporting an outcome");
    crash_outcome(j, msg, NULL);
  }
  rtq__job_done(w, j);
}

void rtq__proc_reap(rtq_worker *w) {
  rtq__job *next;
  for (rtq__job *j = w->jobs; j != NULL; j = next) {
    next = j->next;
    if (j->proc.pid <= 0 || j->proc.reaped) continue;
    siginfo_t si;
    si.si_pid = 0;
    if (waitid(P_PID, (id_t)j->proc.pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
      continue;
    /* The child has ended but is not reaped yet, so its pid, which is its
     * process group's id, cannot be reused: whatever the handler started
     * in its group (a forgotten background job) ends with it. */
    (void)kill(-j->proc.pid, SIGKILL);
    int st;
    pid_t r = waitpid(j->proc.pid, &st, WNOHANG);
    if (r != j->proc.pid) continue;
    j->proc.reaped = true;
    j->proc.wstatus = st;
    settle(w, j);
  }
}

void rtq__proc_release(rtq_worker *w, rtq__job *j) {
  close_pipe(j);
  if (j->proc.pid > 0 && !j->proc.reaped) {
    /* Only at teardown: a child the worker no longer waits for. */
    (void)kill(-j->proc.pid, SIGKILL);
    (void)kill(j->proc.pid, SIGKILL);
    while (waitpid(j->proc.pid, NULL, 0) < 0 && errno == EINTR) {
    }
    j->proc.reaped = true;
  }
  if (j->proc.slot >= 0 && w->free_slots != NULL) {
    atomic_store(&w->cancel_page[j->proc.slot], 0);
    w->free_slots[w->nfree_slots++] = j->proc.slot;
  }
  j->proc.slot = -1;
}
