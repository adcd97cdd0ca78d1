/*
 * procs.c - rtq-worker processes: spawn, peak RSS, stop.
 *
 * Only the pids spawned here are ever signalled. A stop is graceful first
 * (SIGTERM: the worker finishes or hands back its tasks), then SIGKILL once
 * the deadline passes. Peak RSS is VmHWM from /proc/<pid>/status, read just
 * before the stop. wait4's ru_maxrss would be wrong here: Linux carries the
 * RSS of the address space an exec replaces into it, and posix_spawn's
 * child shares this (bigger) process's memory until its exec.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

extern char **environ;

/* The worker binary: --worker, else the rtq-worker built with this bench
 * (its path is compiled in), else ../worker/rtq-worker next to this
 * binary, else rtq-worker on PATH. */
static const char *worker_path(const rtq__bench_opts *o, char *buf, size_t cap) {
  if (o->worker_bin != NULL) return o->worker_bin;
#ifdef RTQ_BENCH_WORKER_PATH
  if (access(RTQ_BENCH_WORKER_PATH, X_OK) == 0) return RTQ_BENCH_WORKER_PATH;
#endif
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    snprintf(buf, cap, "%s/../worker/rtq-worker", dirname(self));
    if (access(buf, X_OK) == 0) return buf;
  }
  return "rtq-worker";
}

int rtq__bench_worker_spawn(rtq__bench_proc *p, const rtq__bench_opts *o,
                            const rtq__bench_redis *r, const char *ns, const char *tag) {
  memset(p, 0, sizeof *p);
  char pathbuf[4200], conc[16], logfile[320], keep[24];
  const char *bin = worker_path(o, pathbuf, sizeof pathbuf);
  snprintf(conc, sizeof conc, "%d", o->concurrency);
  snprintf(logfile, sizeof logfile, "%s/worker-%s.log", r->dir, tag);

  const char *argv[RTQ__BENCH_MAX_WRAP + 20];
  int argc = 0;
  for (int i = 0; i < o->nwrap; i++) argv[argc++] = o->wrap[i];
  argv[argc++] = bin;
  /* A URL from a file may hold a password: the workers read the file too. */
  argv[argc++] = o->redis_url_file != NULL ? "--redis-url-file" : "--redis";
  argv[argc++] = o->redis_url_file != NULL ? o->redis_url_file : r->url;
  argv[argc++] = "--namespace";
  argv[argc++] = ns;
  argv[argc++] = "--concurrency";
  argv[argc++] = conc;
  argv[argc++] = "--isolation";
  argv[argc++] = "thread";
  argv[argc++] = "--demo-handlers";
  if (o->limit_other > 0 || o->other_queue) {
    argv[argc++] = "--queue";
    argv[argc++] = RTQ__BENCH_QUEUE;
    argv[argc++] = "--queue";
    argv[argc++] = RTQ__BENCH_LIMITED_QUEUE;
  }
  /* The finish script caps the history itself, deleting the tasks it
   * pushes out; a phase reads every task back afterwards, so it keeps
   * them all. */
  snprintf(keep, sizeof keep, "%zu", o->n > 10000 ? o->n : (size_t)10000);
  argv[argc++] = "--max-task-history";
  argv[argc++] = keep;
  argv[argc] = NULL;

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, logfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  p->started_ns = rtq__bench_now_ns();
  int rc = posix_spawnp(&p->pid, argv[0], &fa, NULL, (char **)argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    fprintf(stderr, "rtq-bench: cannot start %s: %s\n", argv[0], strerror(rc));
    p->pid = 0;
    return -1;
  }
  return 0;
}

static long read_hwm_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  long kb = 0;
  if (f == NULL) return 0;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static void reaped(rtq__bench_proc *p, int st, const struct rusage *ru) {
  p->status = st;
  p->cpu_s = (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
             (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
  p->pid = 0;
}

bool rtq__bench_proc_alive(rtq__bench_proc *p) {
  if (p->pid <= 0) return false;
  struct rusage ru;
  int st;
  pid_t w = wait4(p->pid, &st, WNOHANG, &ru);
  if (w == p->pid) {
    reaped(p, st, &ru);
    return false;
  }
  return w == 0;
}

/* Voluntary + involuntary context switches summed over every thread. */
static uint64_t read_ctxsw(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/task", (long)pid);
  DIR *d = opendir(path);
  uint64_t sum = 0;
  for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.') continue;
    char sp[400], line[256];
    snprintf(sp, sizeof sp, "%s/%s/status", path, e->d_name);
    FILE *f = fopen(sp, "r");
    while (f && fgets(line, sizeof line, f)) {
      const char *v = strchr(line, ':');
      if (v && strstr(line, "ctxt_switches") != NULL) sum += strtoull(v + 1, NULL, 10);
    }
    if (f) fclose(f);
  }
  if (d) closedir(d);
  return sum;
}

void rtq__bench_worker_stop(rtq__bench_proc *p, int timeout_ms) {
  if (p->pid <= 0) return;
  long hwm = read_hwm_kb(p->pid);
  if (hwm > 0) p->hwm_kb = hwm;
  p->ctxsw = read_ctxsw(p->pid);
  kill(p->pid, SIGTERM);
  uint64_t end = rtq__bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
  while (rtq__bench_proc_alive(p)) {
    if (rtq__bench_now_ns() >= end) {
      fprintf(stderr, "rtq-bench: worker %ld did not stop in %d ms; killing it\n", (long)p->pid,
              timeout_ms);
      kill(p->pid, SIGKILL);
      struct rusage ru;
      int st;
      if (wait4(p->pid, &st, 0, &ru) == p->pid) reaped(p, st, &ru);
      p->pid = 0;
      return;
    }
    rtq__bench_sleep_us(2000);
  }
}
