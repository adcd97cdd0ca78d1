/*
 * exec_oneshot.c - rtq-worker --exec-oneshot NAME=COMMAND (docs/EXEC.md,
 * one-shot mode): a process per task, for scripts. Its stdin gets the
 * task's args as one JSON object, then end of file; its stdout is the
 * result (one JSON value; empty means null); exit status 0 = completed.
 * Any other end fails the task: EXIT_<status> or SIGNAL_<name> (SIGNAL_KILL,
 * SIGNAL_SEGV, ...), with the last lines of its stderr as the message.
 *
 * A cancel or timeout sends SIGTERM to its process group at once (there
 * is no frame to send), SIGKILL after the kill grace. When it exits, what
 * is left of its process group (grandchildren) is killed with it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "defaults.h"
#include "exec.h"
#include "internal.h"
#include "log.h"

#define POLL_MS 20

typedef struct shot {
  char *out;
  size_t len, cap;
  bool too_big;
} shot;

/* Reads what stdout holds now; false at end of file. */
static bool read_out(rtq__xproc *p, shot *s) {
  char buf[65536];
  for (int i = 0; i < 16 && p->out >= 0; i++) {
    ssize_t n = read(p->out, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return true;
    if (n == 0) {
      close(p->out);
      p->out = -1;
      return false;
    }
    if (s->too_big || s->len + (size_t)n + 1 > RTQ__XLINE_MAX) {
      s->too_big = true; /* keep reading, so the process is not blocked */
      continue;
    }
    if (s->len + (size_t)n + 1 > s->cap) {
      size_t ncap = s->cap ? s->cap : 4096;
      while (ncap < s->len + (size_t)n + 1) ncap *= 2;
      char *b = realloc(s->out, ncap);
      if (b == NULL) {
        s->too_big = true;
        continue;
      }
      s->out = b;
      s->cap = ncap;
    }
    memcpy(s->out + s->len, buf, (size_t)n);
    s->len += (size_t)n;
  }
  return p->out >= 0;
}

static void write_in(rtq__xproc *p, const char *data, size_t len, size_t *off) {
  while (p->in >= 0 && *off < len) {
    ssize_t n = write(p->in, data + *off, len - *off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) break; /* it closed stdin: fine, it may not want the args */
    *off += (size_t)n;
  }
  if (p->in >= 0) {
    close(p->in); /* all written (or refused): end of file */
    p->in = -1;
  }
}

static void settle(rtq_task_ctx *t, const char *tail, shot *s, int st) {
  if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
    if (s->too_big) {
      rtq_task_fail(t, "RESULT_TOO_BIG", "the process wrote more than 32 MiB to stdout", NULL);
    } else {
      size_t a = 0, b = s->len;
      while (a < b && (s->out[a] == ' ' || s->out[a] == '\n' || s->out[a] == '\r' || s->out[a] == '\t')) a++;
      while (b > a && (s->out[b - 1] == ' ' || s->out[b - 1] == '\n' || s->out[b - 1] == '\r' || s->out[b - 1] == '\t'))
        b--;
      int rc;
      if (a == b) {
        rc = rtq_task_set_result_json(t, "null");
      } else {
        s->out[b] = '\0';
        rc = rtq_task_set_result_json(t, s->out + a);
      }
      if (rc == RTQ_ETOOBIG)
        rtq_task_fail(t, "RESULT_TOO_BIG", "the result is larger than the worker's limit", NULL);
      else if (rc != 0)
        rtq_task_fail(t, RTQ_CODE_EXEC_PROTOCOL, "the process's stdout is not one JSON value", NULL);
    }
  } else {
    char code[32], msg[128];
    if (st != -1 && WIFSIGNALED(st)) {
      const char *name = rtq__signal_name(WTERMSIG(st));
      snprintf(code, sizeof code, "SIGNAL_%s", strncmp(name, "SIG", 3) == 0 && name[3] != '?' ? name + 3 : "OTHER");
      snprintf(msg, sizeof msg, "the process was killed by %s", name);
    } else {
      snprintf(code, sizeof code, "EXIT_%d", st != -1 ? WEXITSTATUS(st) : 255);
      snprintf(msg, sizeof msg, "the process exited with status %d", st != -1 ? WEXITSTATUS(st) : 255);
    }
    rtq_task_fail(t, code, tail != NULL ? tail : msg, NULL);
    rtq_task_set_traceback(t, msg);
  }
}

int rtq__exec_run_oneshot(rtq__exec *x, rtq_task_ctx *t, const char *args) {
  rtq__xproc p;
  memset(&p, 0, sizeof p);
  p.in = p.out = p.err = -1;
  char msg[512];
  if (rtq__exec_spawn(x, &p, msg, sizeof msg) != 0) {
    rtq_task_fail(t, RTQ_CODE_EXEC_UNAVAILABLE, msg, NULL);
    return 0;
  }
  size_t alen2 = strlen(args), off = 0;
  shot s = {NULL, 0, 0, false};
  uint64_t term_at = 0;
  bool killed = false;
  for (;;) {
    uint64_t now = rtq__mono_ms();
    if (rtq_task_cancelled(t) && term_at == 0) {
      (void)kill(-p.pid, SIGTERM);
      term_at = now;
    }
    if (term_at != 0 && !killed && now >= term_at + (uint64_t)x->kill_grace_ms) {
      (void)kill(-p.pid, SIGKILL);
      killed = true;
    }
    write_in(&p, args, alen2, &off);
    (void)read_out(&p, &s);
    (void)rtq__exec_read_stderr(&p, t->id);
    if (rtq__exec_exited(&p)) break;
    struct pollfd pf[3];
    int n = 0;
    if (p.out >= 0) pf[n++] = (struct pollfd){p.out, POLLIN, 0};
    if (p.err >= 0) pf[n++] = (struct pollfd){p.err, POLLIN, 0};
    if (p.in >= 0) pf[n++] = (struct pollfd){p.in, POLLOUT, 0};
    /* With every pipe closed the process is exiting: look again soon. */
    (void)poll(pf, (nfds_t)n, n > 0 ? POLL_MS : 1);
  }
  /* What it wrote before it exited (a grandchild holding the pipes open
   * cannot keep us here: reads stop at EAGAIN). */
  for (int i = 0; i < 4 && read_out(&p, &s); i++) {
  }
  for (int i = 0; i < 4 && rtq__exec_read_stderr(&p, t->id); i++) {
  }
  char *tail = rtq__exec_tail(&p); /* before end, which clears it */
  int st;
  rtq__exec_end(&p, &st);
  settle(t, tail, &s, st);
  free(tail);
  free(s.out);
  return 0;
}
