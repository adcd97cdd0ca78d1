/*
 * exec_pool.c - the processes of one --exec command: started on demand
 * (posix_spawn, own process group, stdin/stdout/stderr pipes, no fd of the
 * worker but those three), ready within RTQ__EXEC_START_TIMEOUT_MS, lent
 * to one task at a time, and ended when they misbehave.
 *
 * Backoff: every failed start and every process that has to be ended
 * (crash, protocol error, kill after a stop) pushes the next start back,
 * 100 ms doubling to 30 s; a task that completes clears it. After
 * RTQ__EXEC_START_FAILS_MAX failed starts in a row the command counts as
 * unavailable: a task that finds no idle process fails EXEC_UNAVAILABLE at
 * once instead of waiting, until a start after the backoff succeeds. That
 * many failed starts, or processes ended badly, in a row put the command
 * in the worker record (rtq__exec_status, heartbeat.c). exec_idle.c
 * watches the idle processes and starts ended ones again.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "exec.h"
#include "internal.h"
#include "log.h"

extern char **environ;

static char **env_without_redis(void) {
  size_t n = 0;
  while (environ != NULL && environ[n] != NULL) n++;
  char **e = calloc(n + 1, sizeof *e);
  if (e == NULL) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(environ[i], "RTQ_REDIS_URL=", 14) == 0) continue;
    if ((e[k] = strdup(environ[i])) == NULL) {
      rtq__exec_words_free(e);
      return NULL;
    }
    k++;
  }
  return e;
}

rtq__exec *rtq__exec_new(const char *pattern, const char *command, int size, int kill_grace_ms) {
  rtq__exec *x = calloc(1, sizeof *x);
  if (x == NULL) return NULL;
  x->pattern = strdup(pattern);
  x->command = strdup(command);
  x->argv = rtq__exec_split(command);
  x->envp = env_without_redis();
  x->size = size;
  x->procs = calloc((size_t)size, sizeof *x->procs);
  x->kill_grace_ms = kill_grace_ms;
  x->refs = 1;
  pthread_mutex_init(&x->mu, NULL);
  pthread_cond_init(&x->cv, NULL);
  pthread_cond_init(&x->watch_cv, NULL);
  if (!x->pattern || !x->command || !x->argv || !x->envp || !x->procs) {
    rtq__exec_unref(x);
    return NULL;
  }
  for (int i = 0; i < size; i++) {
    x->procs[i].in = x->procs[i].out = x->procs[i].err = -1;
    x->procs[i].rd.max = RTQ__XLINE_MAX;
  }
  return x;
}

static void free_exec(rtq__exec *x) {
  rtq__exec_watch_stop(x);
  for (int i = 0; x->procs != NULL && i < x->size; i++) rtq__exec_end(&x->procs[i], NULL);
  free(x->procs);
  rtq__exec_words_free(x->argv);
  rtq__exec_words_free(x->envp);
  free(x->pattern);
  free(x->command);
  pthread_mutex_destroy(&x->mu);
  pthread_cond_destroy(&x->cv);
  pthread_cond_destroy(&x->watch_cv);
  free(x);
}

void rtq__exec_ref(rtq__exec *x) {
  pthread_mutex_lock(&x->mu);
  x->refs++;
  pthread_mutex_unlock(&x->mu);
}

void rtq__exec_unref(rtq__exec *x) {
  if (x == NULL) return;
  pthread_mutex_lock(&x->mu);
  bool last = --x->refs == 0;
  /* Only rtq__exec_drain waits for the tasks out; waking the borrowers
   * for every task that ends would be a herd for nothing. */
  if (x->closing) {
    pthread_cond_broadcast(&x->cv);
    rtq__exec_wake_waiters(x, true);
  }
  pthread_mutex_unlock(&x->mu);
  if (last) free_exec(x);
}

/* True when p's process has ended (it stays a zombie until reaped, so its
 * process group cannot be reused meanwhile). */
bool rtq__exec_exited(const rtq__xproc *p) {
  siginfo_t si;
  memset(&si, 0, sizeof si);
  if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
  return si.si_pid == p->pid;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

void rtq__exec_end(rtq__xproc *p, int *wstatus) {
  if (wstatus != NULL) *wstatus = -1;
  pid_t pid = p->pid;
  if (pid > 0) {
    /* The group first, while the leader is at worst a zombie: the pgid
     * is still ours, and grandchildren go with it. pid is cleared before
     * the reap, so rtq__exec_drain never signals a reaped (reusable) id. */
    (void)kill(-pid, SIGKILL);
    (void)kill(pid, SIGKILL);
    __atomic_store_n(&p->pid, 0, __ATOMIC_RELEASE);
    int st = -1;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (wstatus != NULL) *wstatus = st;
  }
  p->pid = 0;
  close_fd(&p->in);
  close_fd(&p->out);
  close_fd(&p->err);
  rtq__xline_destroy(&p->rd);
  p->rd.max = RTQ__XLINE_MAX;
  p->errlen = 0;
  for (int i = 0; i < RTQ__EXEC_TAIL_LINES; i++) {
    free(p->tail[i]);
    p->tail[i] = NULL;
  }
  p->tail_next = 0;
}

static void keep_line(rtq__xproc *p, const char *task_id) {
  p->errline[p->errlen] = '\0';
  rtq_log(RTQ_LOG_INFO, "handler stderr", "task", task_id ? task_id : "-", "line", p->errline, NULL);
  free(p->tail[p->tail_next]);
  p->tail[p->tail_next] = strdup(p->errline);
  p->tail_next = (p->tail_next + 1) % RTQ__EXEC_TAIL_LINES;
  p->errlen = 0;
}

bool rtq__exec_read_stderr(rtq__xproc *p, const char *task_id) {
  char buf[4096];
  for (int rounds = 0; p->err >= 0 && rounds < 16; rounds++) {
    ssize_t n = read(p->err, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return true; /* EAGAIN */
    if (n == 0) {
      if (p->errlen > 0) keep_line(p, task_id);
      close_fd(&p->err);
      return false;
    }
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') {
        keep_line(p, task_id);
      } else {
        p->errline[p->errlen++] = buf[i];
        if (p->errlen == sizeof p->errline - 1) keep_line(p, task_id); /* an endless line, cut */
      }
    }
  }
  return p->err >= 0;
}

char *rtq__exec_tail(const rtq__xproc *p) {
  /* The newest lines that fit in RTQ__EXEC_TAIL_BYTES, oldest first. */
  size_t total = 0;
  int first = RTQ__EXEC_TAIL_LINES;
  for (int k = 1; k <= RTQ__EXEC_TAIL_LINES; k++) {
    const char *l = p->tail[(p->tail_next - k + RTQ__EXEC_TAIL_LINES) % RTQ__EXEC_TAIL_LINES];
    if (l == NULL || total + strlen(l) + 1 > RTQ__EXEC_TAIL_BYTES) break;
    total += strlen(l) + 1;
    first = k;
  }
  if (total == 0) return NULL;
  char *s = malloc(total + 1);
  if (s == NULL) return NULL;
  size_t off = 0;
  for (int k = first; k >= 1; k--) {
    const char *l = p->tail[(p->tail_next - k + RTQ__EXEC_TAIL_LINES) % RTQ__EXEC_TAIL_LINES];
    size_t n = strlen(l);
    memcpy(s + off, l, n);
    s[off + n] = '\n';
    off += n + 1;
  }
  s[off] = '\0';
  return s;
}

int rtq__exec_spawn(rtq__exec *x, rtq__xproc *p, char *msg, size_t cap) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    snprintf(msg, cap, "pipe: %s", strerror(errno));
    int *all[] = {in, out, err};
    for (int i = 0; i < 3; i++)
      for (int k = 0; k < 2; k++)
        if (all[i][k] >= 0) close(all[i][k]);
    return -1;
  }
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&at);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  /* Nothing else of the worker (Redis sockets, other handlers' pipes). */
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  sigset_t none, dfl;
  sigemptyset(&none);
  sigemptyset(&dfl);
  const int reset[] = {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGCHLD};
  for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++) sigaddset(&dfl, reset[i]);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setsigdefault(&at, &dfl);
  posix_spawnattr_setpgroup(&at, 0);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid;
  int rc = posix_spawnp(&pid, x->argv[0], &fa, &at, x->argv, x->envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    snprintf(msg, cap, "cannot run %s: %s", x->argv[0], strerror(rc));
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return -1;
  }
  p->pid = pid;
  p->in = in[1];
  p->out = out[0];
  p->err = err[0];
  (void)fcntl(p->in, F_SETFL, O_NONBLOCK);
  (void)fcntl(p->out, F_SETFL, O_NONBLOCK);
  (void)fcntl(p->err, F_SETFL, O_NONBLOCK);
  return 0;
}

int rtq__exec_start(rtq__exec *x, rtq__xproc *p, char *msg, size_t cap) {
  if (rtq__exec_spawn(x, p, msg, cap) != 0) return -1;
  uint64_t deadline = rtq__mono_ms() + RTQ__EXEC_START_TIMEOUT_MS;
  char buf[65536];
  for (;;) {
    char *line;
    size_t len;
    int r;
    while ((r = rtq__xline_next(&p->rd, &line, &len)) == 1) {
      rtq__xmsg m;
      char why[160];
      int pr = rtq__xmsg_parse(line, len, &m, why, sizeof why);
      if (pr == 1) continue;
      if (pr == 0 && m.type == RTQ__X_READY) {
        const char *runner = json_string_value(json_object_get(m.root, "runner"));
        rtq_log(RTQ_LOG_INFO, "handler process ready", "handler", x->pattern, "runner", runner ? runner : "-",
                NULL);
        json_decref(m.root);
        return 0;
      }
      if (pr == 0) json_decref(m.root);
      snprintf(msg, cap, "%s sent something else than \"ready\" first: %s", x->argv[0],
               pr == 0 ? "a message of another type" : why);
      rtq__exec_end(p, NULL);
      return -1;
    }
    if (r < 0) break;
    int st;
    if (rtq__exec_exited(p)) {
      rtq__exec_read_stderr(p, NULL);
      rtq__exec_end(p, &st);
      if (WIFSIGNALED(st))
        snprintf(msg, cap, "%s was killed by %s before it was ready", x->argv[0], rtq__signal_name(WTERMSIG(st)));
      else
        snprintf(msg, cap, "%s exited with status %d before it was ready", x->argv[0], WEXITSTATUS(st));
      return -1;
    }
    uint64_t now = rtq__mono_ms();
    if (__atomic_load_n(&x->closing, __ATOMIC_ACQUIRE)) {
      snprintf(msg, cap, "the worker is shutting down");
      rtq__exec_end(p, NULL);
      return -1;
    }
    if (now >= deadline) {
      snprintf(msg, cap, "%s was not ready within %d ms", x->argv[0], RTQ__EXEC_START_TIMEOUT_MS);
      rtq__exec_end(p, NULL);
      return -1;
    }
    struct pollfd pf[2] = {{p->out, POLLIN, 0}, {p->err, POLLIN, 0}};
    (void)poll(pf, p->err >= 0 ? 2 : 1, 20);
    rtq__exec_read_stderr(p, NULL);
    ssize_t n = p->out >= 0 ? read(p->out, buf, sizeof buf) : 0;
    if (n > 0 && rtq__xline_feed(&p->rd, buf, (size_t)n) != 0) break;
    if (n == 0 && p->out >= 0) close_fd(&p->out); /* the exit check above reports it */
  }
  snprintf(msg, cap, "%s sent an over-long line before it was ready", x->argv[0]);
  rtq__exec_end(p, NULL);
  return -1;
}

static struct timespec in_20ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 20 * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  return ts;
}

/* Under mu: waits until a process is returned, or 20 ms. */
static void wait_a_moment(rtq__exec *x) {
  struct timespec ts = in_20ms();
  (void)pthread_cond_timedwait(&x->cv, &x->mu, &ts);
}

static uint64_t backoff_ms(int bad) {
  uint64_t ms = RTQ__EXEC_BACKOFF_MIN_MS;
  for (int i = 1; i < bad && ms < RTQ__EXEC_BACKOFF_MAX_MS; i++) ms *= 2;
  return ms < RTQ__EXEC_BACKOFF_MAX_MS ? ms : RTQ__EXEC_BACKOFF_MAX_MS;
}

static void push_back(rtq__exec *x, const char *why) {
  x->bad_runs++;
  x->next_start = rtq__mono_ms() + backoff_ms(x->bad_runs);
  size_t n = strnlen(why, sizeof x->last_error - 1); /* cut to fit */
  memcpy(x->last_error, why, n);
  x->last_error[n] = '\0';
}

void rtq__exec_count_bad(rtq__exec *x, const char *why) {
  x->deaths++;
  push_back(x, why);
}

void rtq__exec_start_failed(rtq__exec *x, const char *why) {
  x->start_fails++;
  push_back(x, why);
  bool gave_up = x->start_fails >= RTQ__EXEC_START_FAILS_MAX;
  rtq_log(gave_up ? RTQ_LOG_ERROR : RTQ_LOG_WARNING,
          gave_up ? "handler command keeps failing to start; its tasks fail EXEC_UNAVAILABLE"
                  : "handler process failed to start",
          "handler", x->pattern, "error", why, NULL);
}

bool rtq__exec_unavailable(const rtq__exec *x) {
  return x->deaths >= RTQ__EXEC_START_FAILS_MAX || x->start_fails >= RTQ__EXEC_START_FAILS_MAX;
}

void rtq__exec_wake_waiters(rtq__exec *x, bool all) {
  for (rtq__xwait *w = x->waiters; w != NULL; w = all ? w->next : NULL) pthread_cond_signal(&w->cv);
}

/* Under mu. */
static void enqueue(rtq__exec *x, rtq__xwait *w) {
  rtq__xwait **pp = &x->waiters;
  while (*pp != NULL) pp = &(*pp)->next;
  w->next = NULL;
  *pp = w;
}

/* Under mu: takes w out of the queue (it may be out already). */
static void dequeue(rtq__exec *x, rtq__xwait *w) {
  for (rtq__xwait **pp = &x->waiters; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == w) {
      *pp = w->next;
      return;
    }
  }
}

/* Under mu: the first idle live process, marked busy; NULL when none. A
 * process found dead is ended and counted (*again: look again). */
static rtq__xproc *take_idle(rtq__exec *x, rtq__xproc **empty, bool *again) {
  *empty = NULL;
  *again = false;
  for (int i = 0; i < x->size; i++) {
    rtq__xproc *p = &x->procs[i];
    if (p->busy) continue;
    if (p->pid == 0) {
      if (*empty == NULL) *empty = p;
      continue;
    }
    if (rtq__exec_exited(p)) {
      /* Died while idle: not a task's failure, but it counts. */
      int st;
      rtq__exec_read_stderr(p, NULL);
      rtq__exec_end(p, &st);
      rtq_log(RTQ_LOG_WARNING, "idle handler process ended", "handler", x->pattern, NULL);
      rtq__exec_count_bad(x, "a handler process ended while idle");
      *again = true;
      return NULL;
    }
    p->busy = true;
    return p;
  }
  return NULL;
}

rtq__xproc *rtq__exec_borrow(rtq__exec *x, rtq_task_ctx *t, const char *frame, size_t len, size_t *sent,
                             const char **code, char *msg, size_t cap) {
  *code = NULL;
  *sent = 0;
  rtq__xwait w = {.t = t, .frame = frame, .len = len};
  pthread_cond_init(&w.cv, NULL);
  bool queued = false;
  rtq__xproc *got = NULL;
  pthread_mutex_lock(&x->mu);
  for (;;) {
    if (w.got != NULL) {
      /* Handed over by rtq__exec_return, which dequeued us and writes our
       * frame outside mu; ready says it is done with w. */
      while (!w.ready) pthread_cond_wait(&w.cv, &x->mu);
      got = w.got;
      *sent = w.sent;
      queued = false;
      break;
    }
    if (x->closing) {
      *code = RTQ_CODE_EXEC_UNAVAILABLE;
      snprintf(msg, cap, "the worker is shutting down");
      break;
    }
    rtq__xproc *empty;
    bool again;
    if ((got = take_idle(x, &empty, &again)) != NULL) break;
    if (again) continue;
    uint64_t now = rtq__mono_ms();
    if (empty != NULL && x->start_fails >= RTQ__EXEC_START_FAILS_MAX && now < x->next_start) {
      *code = RTQ_CODE_EXEC_UNAVAILABLE;
      snprintf(msg, cap, "handler command \"%s\" failed to start %d times in a row", x->command, x->start_fails);
      break;
    }
    if (empty != NULL && now >= x->next_start) {
      empty->busy = true;
      if (queued) dequeue(x, &w); /* no hand-over while it starts one */
      queued = false;
      pthread_mutex_unlock(&x->mu);
      char why[512];
      int rc = rtq__exec_start(x, empty, why, sizeof why);
      pthread_mutex_lock(&x->mu);
      if (rc == 0) {
        x->start_fails = 0;
        empty->respawn = false;
        got = empty;
        break;
      }
      empty->busy = false;
      rtq__exec_start_failed(x, why);
      rtq__exec_wake_waiters(x, true);
      continue;
    }
    if (rtq_task_cancelled(t)) break;
    if (!queued) enqueue(x, &w);
    queued = true;
    struct timespec ts = in_20ms();
    (void)pthread_cond_timedwait(&w.cv, &x->mu, &ts);
  }
  if (queued) {
    dequeue(x, &w);
    /* Leaving without a process: a wake-up meant for the queue goes on. */
    if (got == NULL) rtq__exec_wake_waiters(x, false);
  }
  pthread_mutex_unlock(&x->mu);
  pthread_cond_destroy(&w.cv);
  return got;
}

/* Writes what it can of w's frame to p without blocking (the rest is w's
 * to write). Not under mu: p and w are the caller's until w->ready. */
static void write_frame(rtq__xproc *p, rtq__xwait *w) {
  while (p->in >= 0 && w->sent < w->len) {
    ssize_t n = write(p->in, w->frame + w->sent, w->len - w->sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* full, or gone: the waiter's own loop handles it */
    w->sent += (size_t)n;
  }
}

void rtq__exec_return(rtq__exec *x, rtq__xproc *p, const char *why) {
  if (why != NULL) rtq__exec_end(p, NULL);
  pthread_mutex_lock(&x->mu);
  rtq__xwait *to = NULL;
  if (why == NULL) {
    x->bad_runs = x->deaths = 0;
    /* The first waiter not cancelled gets p as it is (busy); a cancelled
     * one notices by itself within 20 ms and leaves the queue. */
    if (!x->closing)
      for (to = x->waiters; to != NULL && rtq_task_cancelled(to->t); to = to->next) {
      }
  } else {
    rtq__exec_count_bad(x, why);
    p->respawn = true;
  }
  if (to != NULL) {
    dequeue(x, to);
    to->got = p;
  } else {
    p->busy = false;
    if (why == NULL) rtq__exec_wake_waiters(x, false);
  }
  bool all = x->closing;
  pthread_mutex_unlock(&x->mu);
  if (to != NULL) {
    write_frame(p, to);
    pthread_mutex_lock(&x->mu);
    to->ready = true;
    pthread_cond_signal(&to->cv);
    pthread_mutex_unlock(&x->mu);
  }
  /* At shutdown the drain waits on cv for every process to come back. */
  if (all) pthread_cond_broadcast(&x->cv);
}

/* Waits up to ms for every live process of x to exit. Under mu. */
static bool wait_exits(rtq__exec *x, int ms) {
  uint64_t until = rtq__mono_ms() + (uint64_t)ms;
  for (;;) {
    bool all = true;
    for (int i = 0; i < x->size; i++)
      if (x->procs[i].pid > 0 && !rtq__exec_exited(&x->procs[i])) all = false;
    if (all || rtq__mono_ms() >= until) return all;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void signal_all(rtq__exec *x, int sig) {
  for (int i = 0; i < x->size; i++)
    if (x->procs[i].pid > 0 && !rtq__exec_exited(&x->procs[i])) (void)kill(-x->procs[i].pid, sig);
}

void rtq__exec_drain(rtq__exec *x) {
  rtq__exec_watch_stop(x);
  pthread_mutex_lock(&x->mu);
  /* Tasks still out were handed back at shutdown: their threads are
   * stopping them (cancel, TERM, KILL); give them that long. */
  uint64_t until = rtq__mono_ms() + 2 * (uint64_t)x->kill_grace_ms + 1000;
  for (;;) {
    bool busy = x->refs > 1; /* a task still runs (one-shot, or waiting to borrow) */
    for (int i = 0; i < x->size; i++) busy = busy || x->procs[i].busy;
    if (!busy || rtq__mono_ms() >= until) break;
    wait_a_moment(x);
  }
  for (int i = 0; i < x->size; i++) {
    rtq__xproc *p = &x->procs[i];
    if (p->busy) {
      /* Its thread was abandoned and is still stopping it; the worker is
       * about to exit, so the group goes now. (The thread may be reaping
       * it at this very moment: hence the atomic read.) */
      pid_t pid = __atomic_load_n(&p->pid, __ATOMIC_ACQUIRE);
      if (pid > 0) (void)kill(-pid, SIGKILL);
      continue;
    }
    if (p->pid > 0 && p->in >= 0) {
      static const char bye[] = "{\"type\":\"shutdown\"}\n";
      (void)!write(p->in, bye, sizeof bye - 1);
      close_fd(&p->in);
    }
  }
  if (!wait_exits(x, x->kill_grace_ms)) {
    signal_all(x, SIGTERM);
    if (!wait_exits(x, x->kill_grace_ms)) signal_all(x, SIGKILL);
  }
  for (int i = 0; i < x->size; i++) {
    rtq__xproc *p = &x->procs[i];
    if (p->busy || p->pid == 0) continue;
    rtq__exec_read_stderr(p, NULL);
    rtq__exec_end(p, NULL);
  }
  pthread_mutex_unlock(&x->mu);
}

/* ---- the worker's side: registration and teardown ---- */

/* The handler function of every --exec and --exec-oneshot (ud: x). The
 * reference keeps x alive and lets rtq__exec_drain count the tasks out. */
static int exec_handler(rtq_task_ctx *t, void *ud) {
  rtq__exec *x = ud;
  if (rtq_task_cancelled(t)) return 0; /* the worker ends it cancelled */
  char *args = NULL;
  size_t alen = 0;
  const void *mp = rtq_task_args_msgpack(t, &alen);
  if (mp != NULL && alen > 0 && rtq_msgpack_to_json(mp, alen, &args) != 0) {
    rtq_task_fail(t, "BAD_ARGS", "the task's args cannot be given as JSON", NULL);
    return 0;
  }
  rtq__exec_ref(x);
  const char *a = args != NULL ? args : "{}";
  int rc = x->oneshot ? rtq__exec_run_oneshot(x, t, a) : rtq__exec_run_pooled(x, t, a);
  rtq__exec_unref(x);
  free(args);
  return rc;
}

static int register_exec(rtq_worker *w, const char *name, const char *command, int pool_size, bool oneshot) {
  if (w == NULL || name == NULL || command == NULL) return RTQ_EINVAL;
  if (w->o.isolation != RTQ_ISOLATION_THREAD) {
    rtq__set_err(w, "handler processes (--exec) need thread isolation");
    return RTQ_EINVAL;
  }
  char **words = rtq__exec_split(command);
  if (words == NULL) {
    rtq__set_err(w, "--exec %s: the command is empty or has an unclosed quote", name);
    return RTQ_EINVAL;
  }
  rtq__exec_words_free(words);
  int size = pool_size > 0 ? pool_size : w->o.concurrency;
  if (size > RTQ__EXEC_POOL_MAX) size = RTQ__EXEC_POOL_MAX;
  rtq__exec *x = rtq__exec_new(name, command, size, w->o.kill_grace_ms);
  if (x == NULL) return RTQ_ENOMEM;
  bool pattern = strpbrk(name, "*?") != NULL;
  x->oneshot = oneshot;
  int rc = rtq__handler_add(w, name, exec_handler, x, pattern);
  if (rc == 0 && !oneshot) rc = rtq__exec_watch_start(x);
  if (rc != 0) {
    rtq__exec_unref(x);
    return rc;
  }
  x->next = w->exec;
  w->exec = x;
  return 0;
}

int rtq_worker_register_exec(rtq_worker *w, const char *name, const char *command, int pool_size) {
  return register_exec(w, name, command, pool_size, false);
}

int rtq_worker_register_exec_oneshot(rtq_worker *w, const char *name, const char *command) {
  return register_exec(w, name, command, 1, true);
}

void rtq__exec_status(rtq_worker *w, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  for (rtq__exec *x = w->exec; x != NULL && n + 1 < cap; x = x->next) {
    pthread_mutex_lock(&x->mu);
    if (rtq__exec_unavailable(x)) {
      int k = snprintf(out + n, cap - n, "%s%s=%s", n > 0 ? "\n" : "", x->pattern, x->last_error);
      size_t end = k < 0 ? n : n + (size_t)k < cap ? n + (size_t)k : cap - 1;
      /* One line per command: a newline inside a reason would split it. */
      for (size_t i = n + (n > 0); i < end; i++)
        if ((unsigned char)out[i] < 0x20) out[i] = ' ';
      n = end;
    }
    pthread_mutex_unlock(&x->mu);
  }
}

void rtq__exec_drain_all(rtq_worker *w) {
  for (rtq__exec *x = w->exec; x != NULL; x = x->next) rtq__exec_drain(x);
}

void rtq__exec_free_all(rtq_worker *w) {
  rtq__exec *next;
  for (rtq__exec *x = w->exec; x != NULL; x = next) {
    next = x->next;
    rtq__exec_unref(x);
  }
  w->exec = NULL;
}
