/*
 * process.c - child processes for tests: spawn with PDEATHSIG, wait with a
 * deadline, signal by pid.
 *
 * Spawned pids are remembered so the atexit handler can kill and reap what
 * a failed test left behind. Everything the child needs is prepared before
 * fork(); between fork and exec the child calls only async-signal-safe
 * functions, so spawning from a multi-threaded test is safe.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "rtq/common.h"

extern char **environ;

#define MAX_TRACKED 256
static pid_t tracked[MAX_TRACKED];

static void track(pid_t pid) {
  for (int i = 0; i < MAX_TRACKED; i++) {
    if (tracked[i] == 0) {
      tracked[i] = pid;
      return;
    }
  }
  /* Untracked children still die with the test through PDEATHSIG. */
}

static void untrack(pid_t pid) {
  for (int i = 0; i < MAX_TRACKED; i++)
    if (tracked[i] == pid) tracked[i] = 0;
}

void rtq__test_process_kill_all(void) {
  for (int i = 0; i < MAX_TRACKED; i++) {
    if (tracked[i] > 1) {
      kill(tracked[i], SIGKILL);
      while (waitpid(tracked[i], NULL, 0) < 0 && errno == EINTR) {
      }
      tracked[i] = 0;
    }
  }
}

/* Resolves a bare name through PATH, as execvp would, but before fork so
 * a missing binary is reported here rather than as exit status 127. */
static int resolve(const char *name, char *out, size_t cap) {
  if (strchr(name, '/') != NULL) {
    if (snprintf(out, cap, "%s", name) >= (int)cap) return -1;
    return access(out, X_OK);
  }
  const char *path = getenv("PATH");
  if (path == NULL) path = "/usr/local/bin:/usr/bin:/bin";
  while (*path) {
    const char *end = strchr(path, ':');
    size_t n = end ? (size_t)(end - path) : strlen(path);
    if (n > 0 && snprintf(out, cap, "%.*s/%s", (int)n, path, name) < (int)cap && access(out, X_OK) == 0)
      return 0;
    path += n + (end ? 1 : 0);
  }
  return -1;
}

/* environ plus the extra entries, an extra replacing a variable of the same
 * name; an extra without '=' ("NAME") removes the variable. The strings are
 * borrowed; only the array is allocated. */
static char **build_env(const char *const *extra) {
  size_t n = 0, m = 0;
  while (environ[n] != NULL) n++;
  while (extra != NULL && extra[m] != NULL) m++;
  char **env = calloc(n + m + 1, sizeof *env);
  if (env == NULL) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    int replaced = 0;
    for (size_t j = 0; j < m && !replaced; j++) {
      const char *eq = strchr(extra[j], '=');
      size_t name_len = eq ? (size_t)(eq - extra[j]) : strlen(extra[j]);
      replaced = strncmp(environ[i], extra[j], name_len) == 0 && environ[i][name_len] == '=';
    }
    if (!replaced) env[k++] = environ[i];
  }
  for (size_t j = 0; j < m; j++)
    if (strchr(extra[j], '=') != NULL) env[k++] = (char *)extra[j];
  env[k] = NULL;
  return env;
}

pid_t rtq__test_fork_exec(const rtq_test_spawn_options *o, bool track_pid) {
  char path[PATH_MAX];
  if (o == NULL || o->path == NULL || resolve(o->path, path, sizeof path) != 0) {
    fprintf(stderr, "rtq harness: cannot find executable %s\n", o && o->path ? o->path : "(null)");
    return -1;
  }
  const char *default_argv[] = {o->path, NULL};
  char *const *argv = (char *const *)(o->argv != NULL ? o->argv : default_argv);
  char **env = build_env(o->env);
  if (env == NULL) return -1;

  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out = -1;
  if (o->output_path != NULL) {
    out = open(o->output_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out < 0) {
      fprintf(stderr, "rtq harness: cannot open %s: %s\n", o->output_path, strerror(errno));
      if (in >= 0) close(in);
      free(env);
      return -1;
    }
  }

  rtq__test_cleanup_register();
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    /* The parent may have died before prctl took effect. */
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* The harness ignores SIGPIPE; an ignored signal survives exec, and the
     * program under test must see the default it would see in production. */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &dfl, NULL);
    if (in >= 0) dup2(in, STDIN_FILENO);
    if (out >= 0) {
      dup2(out, STDOUT_FILENO);
      dup2(out, STDERR_FILENO);
    }
    execve(path, argv, env);
    _exit(127);
  }
  int saved = errno;
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  free(env);
  if (pid < 0) {
    fprintf(stderr, "rtq harness: fork: %s\n", strerror(saved));
    return -1;
  }
  if (track_pid) track(pid);
  return pid;
}

pid_t rtq_test_spawn_ex(const rtq_test_spawn_options *o) { return rtq__test_fork_exec(o, true); }

pid_t rtq_test_spawn(const char *path, const char *const argv[], const char *const env[]) {
  rtq_test_spawn_options o = {.path = path, .argv = argv, .env = env};
  return rtq__test_fork_exec(&o, true);
}

int rtq_test_wait_exit(pid_t pid, int timeout_ms, int *status) {
  if (pid <= 1) return RTQ_EINVAL;
  uint64_t deadline = rtq_test_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  for (int i = 0;; i++) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      untrack(pid);
      if (status != NULL) *status = st;
      return 0;
    }
    if (r < 0 && errno != EINTR) return RTQ_EINVAL;
    if (r == 0 && rtq_test_now_ms() >= deadline) return RTQ_ETIMEDOUT;
    rtq__test_poll_pause(i);
  }
}

int rtq_test_kill(pid_t pid, int sig) {
  if (pid <= 1) return RTQ_EINVAL;
  return kill(pid, sig) == 0 ? 0 : RTQ_EIO;
}

/* The state letter of /proc/<pid>/stat ('R', 'S', 'T' stopped, 't'
 * traced...), or 0 when it cannot be read. The name before it is in
 * parentheses and may hold spaces, so the state follows the last ')'. */
static char proc_state(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *close = strrchr(buf, ')');
  return close != NULL && close[1] == ' ' ? close[2] : 0;
}

int rtq_test_resume_if_stopped(pid_t pid) {
  if (pid <= 1) return RTQ_EINVAL;
  if (proc_state(pid) != 'T') return 0;
  return kill(pid, SIGCONT) == 0 ? 0 : RTQ_EIO;
}

int rtq_test_terminate(pid_t pid, int sig, int timeout_ms, int *status) {
  if (pid <= 1) return RTQ_EINVAL;
  /* A stopped process would hold the signal until continued. */
  (void)rtq_test_resume_if_stopped(pid);
  if (kill(pid, sig) != 0 && errno != ESRCH) return RTQ_EINVAL;
  int rc = rtq_test_wait_exit(pid, timeout_ms, status);
  if (rc != RTQ_ETIMEDOUT) return rc;
  kill(pid, SIGKILL);
  rtq_test_wait_exit(pid, 10000, status);
  return RTQ_ETIMEDOUT;
}

const char *rtq_test_bin_path(const char *rel, char *buf, size_t cap) {
  const char *dir = getenv("RTQ_BIN_DIR");
  if (dir == NULL || rel == NULL) return NULL;
  int n = snprintf(buf, cap, "%s/%s", dir, rel);
  return n > 0 && (size_t)n < cap ? buf : NULL;
}

long rtq_test_rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

bool rtq_test_sigterm_handled(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return false;
  unsigned long long blk = 0, cgt = 0, m;
  while (fgets(line, sizeof line, f) != NULL) {
    if (sscanf(line, "SigBlk: %llx", &m) == 1) blk = m;
    if (sscanf(line, "SigCgt: %llx", &m) == 1) cgt = m;
  }
  fclose(f);
  return ((blk | cgt) >> (SIGTERM - 1)) & 1u;
}
