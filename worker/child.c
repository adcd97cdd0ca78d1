/*
 * child.c - the forked side of process isolation. Runs one handler, sends
 * progress and the outcome down the pipe (frame.h), and _exit()s. Nothing
 * of the worker's loop, connections or threads is touched here.
 *
 * Crash capture: SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGXCPU, SIGTRAP
 * and SIGSYS run a handler on an alternate stack (a stack overflow still
 * reports) that writes a 'C' frame with the signal number, a line naming
 * the signal, and backtrace_symbols_fd() output, then re-raises the signal
 * with its default action, so the worker sees the real cause in the exit
 * status. backtrace() is called once up front so the handler never has to
 * load libgcc (which would allocate) while the heap may be corrupt.
 *
 * The handler needs the pipe's fd and cannot be passed a context, so this
 * file keeps the one piece of process-wide state of the worker: crash_fd,
 * written once in the child before any handler code runs.
 */
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"

static volatile sig_atomic_t crash_fd = -1;

const char *rtq__signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGXCPU: return "SIGXCPU";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGQUIT: return "SIGQUIT";
    case SIGPIPE: return "SIGPIPE";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGALRM: return "SIGALRM";
    case SIGXFSZ: return "SIGXFSZ";
    default: return "SIG?";
  }
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t k = write(fd, c, n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    c += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Async-signal-safe: only write(2), backtrace() (preloaded) and raise(). */
static void on_fatal(int sig) {
  int fd = crash_fd;
  if (fd >= 0) {
    char num[12];
    int n = 0;
    for (int v = sig; v > 0 && n < 10; v /= 10) num[n++] = (char)('0' + v % 10);
    char frame[32];
    frame[0] = 'C';
    frame[1] = frame[2] = frame[3] = 0;
    frame[4] = (char)(4 + n);
    frame[5] = frame[6] = frame[7] = 0;
    frame[8] = (char)n;
    for (int i = 0; i < n; i++) frame[9 + i] = num[n - 1 - i];
    (void)write_all(fd, frame, (size_t)(9 + n));
    const char *name = rtq__signal_name(sig);
    (void)write_all(fd, "fatal signal ", 13);
    (void)write_all(fd, name, strlen(name));
    (void)write_all(fd, " in the handler process\nbacktrace:\n", 35);
    void *frames[64];
    int k = backtrace(frames, 64);
    backtrace_symbols_fd(frames, k, fd);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

int rtq__child_write_progress(rtq_task_ctx *t, bool force) {
  uint64_t now = rtq__mono_ms();
  if (!t->prog.pending) return 0;
  /* The worker coalesces again; writing at twice its rate keeps the pipe
   * quiet without delaying what it shows. */
  if (!force && t->child_last_write != 0 &&
      now < t->child_last_write + (uint64_t)(t->progress_interval_ms / 2)) {
    return 0;
  }
  char pct[16];
  rtq__pct_format(t->prog.pct, pct);
  rtq__field f[3] = {{pct, strlen(pct)},
                     {t->prog.msg ? "1" : "0", 1},
                     {t->prog.msg ? t->prog.msg : "", t->prog.msg ? strlen(t->prog.msg) : 0}};
  char *buf;
  size_t len;
  if (rtq__frame_build('P', f, 3, &buf, &len) != 0) return RTQ_ENOMEM;
  int rc = write_all(t->pipe_fd, buf, len);
  free(buf);
  t->child_last_write = now;
  t->prog.pending = false;
  return rc == 0 ? 0 : RTQ_EIO;
}

static void write_outcome(rtq_task_ctx *t) {
  const rtq__outcome *o = &t->out;
  char st[4];
  snprintf(st, sizeof st, "%d", (int)o->status);
  const char *c = t->cancel_at_return ? "1" : "0";
#define S(x) {(x) ? (x) : "", (x) ? strlen(x) : 0}
  rtq__field f[7] = {{c, 1},
                     {st, strlen(st)},
                     {o->result ? o->result : "", o->result ? o->result_len : 0},
                     S(o->code),
                     S(o->message),
                     {o->details ? o->details : "", o->details ? o->details_len : 0},
                     S(o->traceback)};
#undef S
  char *buf;
  size_t len;
  if (rtq__frame_build('R', f, 7, &buf, &len) != 0) _exit(3);
  if (write_all(t->pipe_fd, buf, len) != 0) _exit(4);
  free(buf);
}

void rtq__child_main(rtq_task_ctx *t, int fd, pid_t parent, int rlimit_as_mb, int rlimit_cpu_s) {
  /* Own process group: a terminal's Ctrl-C reaches the worker only, and
   * a kill after the grace takes whatever the handler started. */
  (void)setpgid(0, 0);
  (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(5);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGTERM, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);

  void *warm[4];
  (void)backtrace(warm, 4);
  crash_fd = fd;
  stack_t ss;
  ss.ss_size = 64 * 1024;
  ss.ss_sp = malloc(ss.ss_size);
  ss.ss_flags = 0;
  if (ss.ss_sp != NULL) (void)sigaltstack(&ss, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_fatal;
  sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGXCPU, SIGTRAP, SIGSYS};
  for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) sigaction(fatal[i], &sa, NULL);

  if (rlimit_as_mb > 0) {
    struct rlimit rl = {(rlim_t)rlimit_as_mb << 20, (rlim_t)rlimit_as_mb << 20};
    (void)setrlimit(RLIMIT_AS, &rl);
  }
  if (rlimit_cpu_s > 0) {
    /* The soft limit raises SIGXCPU (reported with a backtrace); the hard
     * limit a second later is the kernel's SIGKILL. */
    struct rlimit rl = {(rlim_t)rlimit_cpu_s, (rlim_t)rlimit_cpu_s + 1};
    (void)setrlimit(RLIMIT_CPU, &rl);
  }

  t->in_child = true;
  t->pipe_fd = fd;
  rtq__task_run(t);
  (void)rtq__child_write_progress(t, true);
  write_outcome(t);
  _exit(0);
}
