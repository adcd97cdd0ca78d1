/*
 * exec_run.c - one task on one handler process, from the pool thread that
 * runs the task (exec.h). A loop of 20 ms polls: write the pending frames
 * (non-blocking, so a process that never reads stdin cannot block us),
 * read stdout lines and stderr, watch the cancel flag and the process.
 *
 * The cancel flag is the worker's (a cancel message, the timeout or a
 * shutdown hand-back set it); the first poll after it is set queues the
 * cancel frame, well within the 100 ms promise. kill_grace_ms later the
 * process group gets SIGTERM, and SIGKILL after another grace. Whatever
 * the handler answers then, the worker ends the task cancelled or timeout.
 *
 * A process that dies, closes its stdout, or breaks the protocol is ended
 * with its process group and its place in the pool is started again later.
 */
#include <errno.h>
#include <inttypes.h>
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
#define READS_PER_ROUND 16
#define LOG_MESSAGE_MAX 4096

typedef struct outbuf {
  char *b;
  size_t len, off;
} outbuf;

static int out_append(outbuf *o, char *line, size_t len) {
  if (line == NULL) return RTQ_ENOMEM;
  if (o->off == o->len) {
    free(o->b);
    o->b = line;
    o->len = len;
    o->off = 0;
    return 0;
  }
  char *n = realloc(o->b, o->len + len);
  if (n == NULL) {
    free(line);
    return RTQ_ENOMEM;
  }
  memcpy(n + o->len, line, len);
  o->b = n;
  o->len += len;
  free(line);
  return 0;
}

/* How one task's conversation ended. */
enum { GOING, ANSWERED, PROTOCOL, DEAD };

typedef struct run {
  rtq__exec *x;
  rtq__xproc *p;
  rtq_task_ctx *t;
  int end;
  char why[256];
  bool stdout_closed;
  json_t *answer;  /* the result or error message, applied once the process is back */
} run;

static void protocol_error(run *r, const char *fmt, const char *a) {
  snprintf(r->why, sizeof r->why, fmt, a);
  r->end = PROTOCOL;
}

static void on_result(const run *r, json_t *root) {
  json_t *v = json_object_get(root, "result");
  char *s = v == NULL ? strdup("null") : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  int rc = s == NULL ? RTQ_ENOMEM : rtq_task_set_result_json(r->t, s);
  free(s);
  if (rc == RTQ_ETOOBIG) {
    char msg[128];
    snprintf(msg, sizeof msg, "the result is larger than the limit of %zu bytes", r->t->max_result);
    rtq_task_fail(r->t, "RESULT_TOO_BIG", msg, NULL);
  } else if (rc != 0) {
    rtq_task_fail(r->t, RTQ_CODE_EXEC_PROTOCOL, "the handler's result could not be stored", NULL);
  }
}

static void on_error(const run *r, json_t *root) {
  char code[RTQ__CODE_MAX + 1];
  rtq__xcode_clean(json_string_value(json_object_get(root, "code")), code, sizeof code);
  const char *msg = json_string_value(json_object_get(root, "message"));
  rtq_args *details = NULL;
  json_t *d = json_object_get(root, "details");
  if (json_is_object(d)) {
    char *s = json_dumps(d, JSON_COMPACT);
    if (s != NULL) (void)rtq_args_from_json(s, &details, NULL, 0);
    free(s);
  }
  if (rtq_task_fail(r->t, code, msg ? msg : "the handler failed", details) != 0)
    rtq_task_fail(r->t, code, msg ? msg : "the handler failed", NULL);
  rtq_args_free(details);
  const char *tb = json_string_value(json_object_get(root, "traceback"));
  if (tb != NULL) rtq_task_set_traceback(r->t, tb);
}

static rtq_log_level log_level(const char *s) {
  if (s != NULL && strcmp(s, "debug") == 0) return RTQ_LOG_DEBUG;
  if (s != NULL && strcmp(s, "warning") == 0) return RTQ_LOG_WARNING;
  if (s != NULL && strcmp(s, "error") == 0) return RTQ_LOG_ERROR;
  return RTQ_LOG_INFO;
}

static void on_line(run *r, const char *line, size_t len) {
  rtq__xmsg m;
  char why[200];
  int pr = rtq__xmsg_parse(line, len, &m, why, sizeof why);
  if (pr == 1) return;
  if (pr != 0) {
    protocol_error(r, "%s", why);
    return;
  }
  json_t *jid = json_object_get(m.root, "id");
  const char *id = json_string_value(jid);
  /* By length too: a NUL byte would end the C string early. */
  bool other = id != NULL && (strcmp(id, r->t->id) != 0 || json_string_length(jid) != strlen(id));
  if (m.type != RTQ__X_READY && other) {
    protocol_error(r, "handler sent a message for task %.64s, which is not the running task", id);
  } else if (m.type == RTQ__X_READY) {
    /* A second ready changes nothing. */
  } else if (m.type == RTQ__X_PROGRESS) {
    json_t *pct = json_object_get(m.root, "percent");
    if (!json_is_number(pct)) {
      protocol_error(r, "%s", "handler sent progress without a numeric percent");
    } else {
      double v = json_number_value(pct);
      (void)rtq_task_progress(r->t, v < 0 ? 0 : v > 100 ? 100 : v,
                              json_string_value(json_object_get(m.root, "message")));
    }
  } else if (m.type == RTQ__X_LOG) {
    const char *msg = json_string_value(json_object_get(m.root, "message"));
    char cut[LOG_MESSAGE_MAX + 1];
    snprintf(cut, sizeof cut, "%s", msg ? msg : "");
    rtq_log(log_level(json_string_value(json_object_get(m.root, "level"))), "handler log", "task", r->t->id,
            "message", cut, NULL);
  } else {
    /* result or error: the conversation is over. */
    r->answer = m.root;
    r->end = ANSWERED;
    return;
  }
  json_decref(m.root);
}

static void read_stdout(run *r) {
  char buf[65536];
  for (int i = 0; i < READS_PER_ROUND && r->end == GOING && r->p->out >= 0; i++) {
    ssize_t n = read(r->p->out, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    if (n == 0) {
      r->stdout_closed = true;
      return;
    }
    int rc = rtq__xline_feed(&r->p->rd, buf, (size_t)n);
    if (rc == RTQ_ETOOBIG) {
      char lim[32];
      snprintf(lim, sizeof lim, "%u", RTQ__XLINE_MAX);
      protocol_error(r, "handler sent a line longer than %s bytes", lim);
      return;
    }
    if (rc != 0) {
      protocol_error(r, "%s", "out of memory reading the handler's output");
      return;
    }
    char *line;
    size_t len;
    int k;
    while (r->end == GOING && (k = rtq__xline_next(&r->p->rd, &line, &len)) == 1) on_line(r, line, len);
  }
}

static void write_pending(rtq__xproc *p, outbuf *o) {
  while (p->in >= 0 && o->off < o->len) {
    ssize_t n = write(p->in, o->b + o->off, o->len - o->off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) { /* EPIPE: it closed stdin; its exit will tell */
      close(p->in);
      p->in = -1;
      return;
    }
    o->off += (size_t)n;
  }
}

static const char *reason_name(int stop) {
  return stop == RTQ__STOP_TIMEOUT ? "timeout" : stop == RTQ__STOP_SHUTDOWN ? "shutdown" : "cancelled";
}

/* Talks to the process until the task is answered or the process is lost. */
static void converse(run *r, outbuf *o) {
  rtq__xproc *p = r->p;
  uint64_t stop_at = 0, term_at = 0;
  bool cancel_sent = false, killed = false;
  uint64_t exit_check = rtq__mono_ms() + POLL_MS;
  uint64_t grace = (uint64_t)r->x->kill_grace_ms;
  while (r->end == GOING) {
    uint64_t now = rtq__mono_ms();
    int stop = atomic_load(r->t->cancel);
    if (stop != RTQ__STOP_NONE && !cancel_sent) {
      size_t len;
      char *line = rtq__xmsg_cancel(r->t->id, reason_name(stop), &len);
      (void)out_append(o, line, len);
      cancel_sent = true;
      stop_at = now;
    }
    if (cancel_sent && term_at == 0 && now >= stop_at + grace) {
      rtq_log(RTQ_LOG_WARNING, "handler process ignored the cancel; sending SIGTERM to its group", "task",
              r->t->id, NULL);
      (void)kill(-p->pid, SIGTERM);
      term_at = now;
    }
    if (term_at != 0 && !killed && now >= term_at + grace) {
      (void)kill(-p->pid, SIGKILL);
      killed = true;
    }
    write_pending(p, o);
    /* Wait first: right after a frame went out there is nothing to read
     * yet, and a task's whole conversation is then one poll and one read
     * of the answer. A process that dies hangs up its stdout (seen at
     * once); one whose stdout a grandchild keeps open is seen by the
     * exit check every POLL_MS. */
    struct pollfd pf[3];
    int n = 0;
    pf[n++] = (struct pollfd){p->out, POLLIN, 0};
    int ei = p->err >= 0 ? n : -1;
    if (ei >= 0) pf[n++] = (struct pollfd){p->err, POLLIN, 0};
    if (p->in >= 0 && o->off < o->len) pf[n++] = (struct pollfd){p->in, POLLOUT, 0};
    int ready = poll(pf, (nfds_t)n, POLL_MS);
    if (ready > 0 && pf[0].revents != 0) read_stdout(r);
    if (ei >= 0 && pf[ei].revents != 0) (void)rtq__exec_read_stderr(p, r->t->id);
    if (r->end != GOING) return;
    now = rtq__mono_ms();
    bool hup = ready > 0 && (pf[0].revents & (POLLHUP | POLLERR)) != 0;
    if (r->stdout_closed || ((hup || ready <= 0 || now >= exit_check) && rtq__exec_exited(p))) {
      (void)rtq__exec_read_stderr(p, r->t->id);
      r->end = DEAD;
      return;
    }
    if (now >= exit_check) exit_check = now + POLL_MS;
  }
}

/* The process is gone or closed stdout: fail the task WORKER_CRASH. */
static void report_death(run *r) {
  rtq__xproc *p = r->p;
  /* A process that closed stdout but lives on gets a moment to exit by
   * itself (its status is the better report), then it is ended. */
  for (int i = 0; i < 10 && !rtq__exec_exited(p); i++) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
  for (int i = 0; i < 4 && rtq__exec_read_stderr(p, r->t->id); i++) {
  }
  char *tail = rtq__exec_tail(p);
  int st;
  rtq__exec_end(p, &st);
  char msg[256];
  if (st != -1 && WIFSIGNALED(st))
    snprintf(msg, sizeof msg, "handler process killed by %s (%s)", rtq__signal_name(WTERMSIG(st)),
             strsignal(WTERMSIG(st)));
  else if (st != -1 && WIFEXITED(st))
    snprintf(msg, sizeof msg, "handler process exited with status %d%s", WEXITSTATUS(st),
             r->stdout_closed ? " (it closed its stdout)" : "");
  else
    snprintf(msg, sizeof msg, "handler process lost");
  rtq_log(RTQ_LOG_WARNING, "handler process died during a task", "task", r->t->id, "error", msg, NULL);
  rtq_task_fail(r->t, RTQ_CODE_WORKER_CRASH, msg, NULL);
  snprintf(r->why, sizeof r->why, "%s", msg);
  if (tail != NULL) rtq_task_set_traceback(r->t, tail);
  free(tail);
}

int rtq__exec_run_pooled(rtq__exec *x, rtq_task_ctx *t, const char *args) {
  /* The frame is made before a process is borrowed: a process handed
   * from one task to the next then waits for one write only. Its
   * deadline_ms is absolute, the same whenever it is computed. */
  const rtq__job *j = t->job;
  uint64_t now = rtq__mono_ms();
  uint64_t left = j != NULL && j->deadline > now ? j->deadline - now : 0;
  size_t len = 0;
  outbuf o = {NULL, 0, 0};
  char *line = rtq__xmsg_task(t->id, t->name, t->queue, t->attempt, t->timeout_ms, rtq__wall_ms() + left,
                              args, &len);
  (void)out_append(&o, line, len);
  if (o.b == NULL) {
    rtq_task_fail(t, "OUT_OF_MEMORY", "could not build the task frame", NULL);
    return 0;
  }
  const char *code;
  char msg[512];
  size_t sent;
  rtq__xproc *p = rtq__exec_borrow(x, t, o.b, o.len, &sent, &code, msg, sizeof msg);
  if (p == NULL) {
    free(o.b);
    if (code != NULL) rtq_task_fail(t, code, msg, NULL);
    return 0;
  }
  o.off = sent;
  if (sent == 0 && rtq_task_cancelled(t)) { /* stopped while it waited for a process */
    free(o.b);
    rtq__exec_return(x, p, NULL);
    return 0;
  }
  /* With the frame (partly) sent the process has the task: the
   * conversation goes on, and its first round sends the cancel. */
  run r = {.x = x, .p = p, .t = t, .end = GOING};
  converse(&r, &o);
  free(o.b);
  if (r.end == ANSWERED) {
    /* The process goes back first: the next task need not wait while
     * this one's answer is stored. */
    rtq__exec_return(x, p, NULL);
    const char *type = json_string_value(json_object_get(r.answer, "type"));
    if (type != NULL && strcmp(type, "result") == 0)
      on_result(&r, r.answer);
    else
      on_error(&r, r.answer);
    json_decref(r.answer);
  } else if (r.end == PROTOCOL) {
    rtq_log(RTQ_LOG_WARNING, "handler process broke the protocol; restarting it", "task", t->id, "error", r.why,
            NULL);
    rtq_task_fail(t, RTQ_CODE_EXEC_PROTOCOL, r.why, NULL);
    rtq__exec_return(x, p, r.why);
  } else {
    report_death(&r);
    rtq__exec_return(x, p, r.why);
  }
  return 0;
}
