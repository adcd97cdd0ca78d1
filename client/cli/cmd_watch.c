/*
 * cmd_watch.c - `rtq watch [ID...]`: live progress, one line per task.
 *
 * With ids it runs until every watched task has ended. With none it
 * follows the namespace: the running tasks, and every task that starts
 * while it runs, until --timeout or Ctrl-C; an ended task leaves its final
 * line and its place goes to the tasks still running.
 *
 * It subscribes to the event channel first and reads the tasks' state
 * second, so no event falls between the two. A message that is not a
 * well-formed event (it cannot say which task it is about), or one the
 * subscription skipped or dropped (not an events message, or past its
 * buffer; checked at least every REREAD_MS), makes it read every watched
 * task again, at most once per REREAD_MS, so a task whose terminal event
 * was garbled or lost still ends the watch.
 *
 * Rate and ETA come from the progress samples this watch has seen, timed
 * on the local monotonic clock when each arrived: the first (when the
 * watch learned of the running task) and the latest. No clock of another
 * machine is involved; a task that has not moved since has none.
 *
 * With --result-keys an end is believed only once the task hash says so
 * and its outcome verifies (rtq_get_task checks the worker's signature):
 * whoever may publish on the events channel can announce any end. An
 * outcome that does not verify ends the watch at once with exit 7, as
 * `rtq wait` does (following, the watch goes on and exits 7 at its end;
 * a task it adopts whose end does not verify is reported the same way).
 *
 * Output: on a terminal, the lines are redrawn in place (ANSI cursor-up and
 * erase-line); otherwise each change is one new line; with --json each
 * change is one JSON object per line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "cli.h"
#include "event_read.h"

#define MAX_WATCHED 1000
#define REREAD_MS 500
#define BAR 20

typedef struct entry {
  char id[RTQ_TASK_ID_SIZE];
  char name[RTQ_TASK_ID_SIZE];
  rtq_status status;
  double progress;
  char msg[160];
  int done;
  int unverified;         /* --result-keys: ended, and its outcome did not verify */
  int sampled;            /* first sample taken (the task was running) */
  double p0, p1;          /* first and latest progress seen while running */
  uint64_t t0, t1;        /* when they arrived, monotonic ms */
} entry;

typedef struct watch {
  cli *ctx;
  entry *e;
  size_t n;
  int follow;   /* no ids given: adopt tasks that start, drop ended ones */
  int tty;
  int drawn;    /* lines on screen to redraw over */
  int width;
  int unverified;         /* tasks whose outcome did not verify */
  int reread_pending;     /* a message that was not an event came */
  uint64_t next_reread;   /* monotonic ms: the earliest next re-read */
  uint64_t lost_seen;     /* the subscription's dropped + skipped, last seen */
} watch;

static entry *find(watch *w, const char *id) {
  for (size_t i = 0; i < w->n; i++)
    if (strcmp(w->e[i].id, id) == 0) return &w->e[i];
  return NULL;
}

/* A progress sample of a running task: the first one, then the latest. */
static void sample(entry *x) {
  if (x->status != RTQ_STATUS_RUNNING) return;
  uint64_t now = rtq__mono_ms();
  if (!x->sampled) {
    x->sampled = 1;
    x->p0 = x->p1 = x->progress;
    x->t0 = x->t1 = now;
  } else if (x->progress != x->p1) {
    x->p1 = x->progress;
    x->t1 = now;
  }
}

static entry *add(watch *w, const rtq_task *t) {
  if (w->n >= MAX_WATCHED) return NULL;
  entry *x = &w->e[w->n++];
  memset(x, 0, sizeof *x);
  cli_clean(x->id, sizeof x->id, t->id, false);
  cli_clean(x->name, sizeof x->name, t->name, false);
  x->status = t->status;
  x->progress = t->progress;
  cli_clean(x->msg, sizeof x->msg, t->progress_message, false);
  x->done = rtq_status_is_terminal(t->status);
  sample(x);
  return x;
}

/* Rate and ETA of a running entry, the ETA counted down to now. */
static int entry_rate(const entry *x, double *rate, double *eta) {
  if (x->status != RTQ_STATUS_RUNNING || !x->sampled) return 0;
  if (!cli_rate_eta(x->p0, x->t0, x->p1, x->t1, rate, eta)) return 0;
  double since = (double)(rtq__mono_ms() - x->t1) / 1000.0;
  *eta = *eta > since ? *eta - since : 0;
  return 1;
}

static void format_line(const entry *x, char *line, size_t cap) {
  char bar[BAR + 1], pct[16], rate_s[16] = "", eta_s[32] = "";
  int filled = (int)(x->progress * BAR / 100.0 + 0.5);
  double shown = x->progress, rate, eta;
  /* A handler need not report 100 before it returns. */
  if (x->status == RTQ_STATUS_COMPLETED) {
    filled = BAR;
    shown = 100;
  }
  for (int i = 0; i < BAR; i++) bar[i] = i < filled ? '#' : '-';
  bar[BAR] = '\0';
  if (entry_rate(x, &rate, &eta)) {
    cli_rate(rate, rate_s);
    cli_eta(eta, eta_s);
  }
  /* Status before the bar: on a narrow terminal the message is cut first. */
  snprintf(line, cap, "%-26.40s %-12.32s %-9s [%s] %5s %8s %-10s %s", x->id, x->name,
           x->unverified ? "unverified" : rtq_status_name(x->status), bar, cli_percent(shown, pct), rate_s, eta_s,
           x->msg);
}

static void print_entry(watch *w, const entry *x) {
  char line[512];
  if (w->ctx->json) {
    double rate, eta;
    int known = entry_rate(x, &rate, &eta);
    json_t *o = json_pack("{s:s, s:s, s:s, s:f, s:o, s:o, s:s, s:b, s:b}", "id", x->id, "name", x->name,
                          "status", x->unverified ? "unverified" : rtq_status_name(x->status), "progress", x->progress, "rate",
                          known ? json_real(rate) : json_null(), "eta_s",
                          known ? json_real(eta) : json_null(), "message", x->msg, "done",
                          x->done, "unverified", x->unverified);
    cli_print_json(o);
  } else {
    format_line(x, line, sizeof line);
    printf("%s\n", line);
  }
  fflush(stdout);
}

/* One line at the cursor, cut to the terminal width so that none wraps and
 * the cursor-up count stays right. */
static void draw_line(watch *w, const entry *x) {
  char line[512];
  format_line(x, line, sizeof line);
  if (w->width > 1 && (int)strlen(line) >= w->width) line[w->width - 1] = '\0';
  printf("\r\033[2K%s\n", line);
}

/* Following, an ended task leaves the table: on a terminal its final line
 * stays above the live ones, which are redrawn below it. */
static void drop_ended(watch *w) {
  size_t j = 0;
  for (size_t i = 0; i < w->n; i++)
    if (!w->e[i].done) w->e[j++] = w->e[i];
  w->n = j;
}

/* Redraws in place: first the lines of tasks that ended (following: they
 * stay on screen as they are, above), then every live line. */
static void redraw(watch *w) {
  if (w->drawn > 0) printf("\033[%dA", w->drawn);
  int live = 0;
  if (w->follow)
    for (size_t i = 0; i < w->n; i++)
      if (w->e[i].done) draw_line(w, &w->e[i]);
  for (size_t i = 0; i < w->n; i++) {
    if (w->follow && w->e[i].done) continue;
    draw_line(w, &w->e[i]);
    live++;
  }
  /* Never fewer lines than before: a live line only leaves the table as
   * an ended line printed above. */
  w->drawn = live;
  fflush(stdout);
}

static void show(watch *w, const entry *changed) {
  if (w->tty && !w->ctx->json)
    redraw(w);
  else if (changed != NULL)
    print_entry(w, changed);
  if (w->follow) drop_ended(w);
}

/* x's outcome did not verify: it has ended as far as this watch goes. */
static void mark_unverified(watch *w, entry *x) {
  x->unverified = 1;
  x->done = 1;
  w->unverified++;
  cli_error_code(rtq_err_name(RTQ_EUNVERIFIED), "watch: %s", rtq_client_errstr(w->ctx->client));
}

/* With --result-keys, an end an event announced is read back from the
 * task hash (rtq_get_task verifies the outcome) before it is believed: x
 * takes the stored status, or is marked unverified (also when the hash is
 * gone: nothing vouches for the end then). Without keys the event stands. */
static void confirm_end(watch *w, entry *x) {
  if (w->ctx->result_keys == NULL || !x->done) return;
  rtq_task *t = NULL;
  int err = rtq_get_task(w->ctx->client, x->id, &t);
  if (err == RTQ_EUNVERIFIED || err == RTQ_ENOTFOUND) {
    mark_unverified(w, x);
  } else if (err != 0) {
    /* Redis did not answer: not ended yet as far as this watch knows;
     * read it again shortly. */
    x->done = 0;
    w->reread_pending = 1;
  } else {
    x->status = t->status;
    x->done = rtq_status_is_terminal(t->status);
  }
  rtq_task_free(t);
}

/* A task not watched yet that is running: following, it joins. started:
 * the event was its start (the claim's, which carries the attempt), so a
 * task that has ended already by the time it is read is shown too, once;
 * any other event of an unknown task that has ended is a late one. So a
 * started task whose end does not verify (--result-keys) is shown once
 * too, as unverified: as `rtq wait` would, the watch reports it (and exits
 * 7 at its end) rather than pass over a forged end. */
static entry *adopt(watch *w, const char *id, int started) {
  rtq_task *t = NULL;
  entry *x = NULL;
  int err = rtq_get_task(w->ctx->client, id, &t);
  if (err == 0 && (t->status == RTQ_STATUS_RUNNING || (started && rtq_status_is_terminal(t->status)))) {
    x = add(w, t);
  } else if (err == RTQ_EUNVERIFIED && started && w->n < MAX_WATCHED) {
    x = &w->e[w->n++];
    memset(x, 0, sizeof *x);
    cli_clean(x->id, sizeof x->id, id, false);
    mark_unverified(w, x);
  }
  rtq_task_free(t);
  return x;
}

/* Reads every watched task that has not ended again (a message came that
 * may have been about any of them). */
static void reread(watch *w) {
  bool tty = w->tty && !w->ctx->json;
  for (size_t i = 0; i < w->n; i++) {
    entry *x = &w->e[i];
    rtq_task *t = NULL;
    if (x->done) continue;
    int err = rtq_get_task(w->ctx->client, x->id, &t);
    if (err == RTQ_EUNVERIFIED) {
      mark_unverified(w, x);
      if (!tty) print_entry(w, x);
    }
    if (err != 0) continue;
    if (t->status != x->status || t->progress != x->progress) {
      x->status = t->status;
      x->progress = t->progress < 0 ? 0 : t->progress > 100 ? 100 : t->progress;
      cli_clean(x->msg, sizeof x->msg, t->progress_message, false);
      x->done = rtq_status_is_terminal(t->status);
      sample(x);
      if (!tty) print_entry(w, x);
    }
    rtq_task_free(t);
  }
  if (tty) redraw(w);
  if (w->follow) drop_ended(w);
}

/* Applies one event: {"id", "status", "progress"?, "message"?, ...}. */
static void apply(watch *w, const char *text) {
  rtq__event ev;
  int rc = rtq__event_read(text, &ev);
  if (rc != 0) {
    /* Not an event that says which task it is about (or no memory to
     * read it): any watched task may have changed. */
    w->reread_pending = 1;
    return;
  }
  entry *x = find(w, ev.id);
  if (x == NULL && w->follow && ev.status == RTQ_STATUS_RUNNING) {
    x = adopt(w, ev.id, ev.started);
    if (x != NULL) show(w, x);
    goto out;
  }
  /* An ended task keeps its final line: a late event cannot revive it. */
  if (x == NULL || x->done) goto out;
  x->status = ev.status;
  if (ev.has_progress) x->progress = ev.progress;
  if (x->progress < 0) x->progress = 0;
  if (x->progress > 100) x->progress = 100;
  if (ev.message != NULL) cli_clean(x->msg, sizeof x->msg, ev.message, false);
  x->done = rtq_status_is_terminal(ev.status);
  confirm_end(w, x);
  sample(x);
  show(w, x);
out:
  rtq__event_clear(&ev);
}

static int all_done(const watch *w) {
  if (w->n == 0) return 0;
  for (size_t i = 0; i < w->n; i++)
    if (!w->e[i].done) return 0;
  return 1;
}

/* Reads the starting state: the given tasks, or the running ones. */
static int load(watch *w, const char **ids, int nids) {
  for (int i = 0; i < nids; i++) {
    rtq_task *t = NULL;
    int err = rtq_get_task(w->ctx->client, ids[i], &t);
    if (err != 0) return cli_fail(w->ctx, err, "watch");
    if (find(w, t->id) == NULL) add(w, t);
    rtq_task_free(t);
  }
  if (nids > 0) return CLI_OK;
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  f.statuses = RTQ_STATUS_BIT(RTQ_STATUS_RUNNING);
  f.limit = MAX_WATCHED;
  rtq_task_list *l = NULL;
  int err = rtq_list_tasks(w->ctx->client, &f, &l);
  if (err != 0) return cli_fail(w->ctx, err, "watch");
  for (size_t i = 0; i < l->count; i++) add(w, l->tasks[i]);
  rtq_task_list_free(l);
  return CLI_OK;
}

/* Until the watched tasks end (ids), or --timeout: with ids that is a
 * timeout (exit 5), following it is the end asked for (exit 0). */
static int loop(watch *w, rtq_subscription *sub, int64_t timeout_ms) {
  uint64_t start = rtq__mono_ms();
  while (w->follow || !all_done(w)) {
    uint64_t now = rtq__mono_ms();
    if (w->reread_pending && now >= w->next_reread) {
      w->reread_pending = 0;
      w->next_reread = now + REREAD_MS;
      reread(w);
      if (!w->follow && w->unverified > 0) return CLI_UNVERIFIED;
      if (!w->follow && all_done(w)) break;
    }
    int64_t left = -1;
    if (timeout_ms >= 0) {
      left = timeout_ms - (int64_t)(rtq__mono_ms() - start);
      if (left < 0) left = 0;
    }
    /* A re-read put off: wake up for it. Otherwise wake up every
     * REREAD_MS to see whether the subscription skipped or dropped a
     * message, which may have been a watched task's end. */
    int64_t until_reread = w->reread_pending ? (int64_t)(w->next_reread - now) : REREAD_MS;
    bool for_reread = left < 0 || until_reread < left;
    char *msg = NULL;
    int err = rtq_subscription_next(sub, for_reread ? until_reread : left, &msg);
    uint64_t dropped, skipped;
    rtq__sub_counts(sub, &dropped, &skipped);
    if (dropped + skipped != w->lost_seen) {
      w->lost_seen = dropped + skipped;
      w->reread_pending = 1;
    }
    if (err == RTQ_ETIMEDOUT && for_reread) continue;
    if (err == RTQ_ETIMEDOUT && w->follow) return w->unverified > 0 ? CLI_UNVERIFIED : CLI_OK;
    if (err == RTQ_ETIMEDOUT) {
      cli_error_code(rtq_err_name(RTQ_ETIMEDOUT),
                     "watch: timed out after %.3f s; some tasks have not ended",
                     (double)timeout_ms / 1000.0);
      return CLI_TIMEOUT;
    }
    if (err != 0) return cli_fail(w->ctx, err, "watch");
    apply(w, msg);
    free(msg);
    if (!w->follow && w->unverified > 0) return CLI_UNVERIFIED;
  }
  if (w->unverified > 0) return CLI_UNVERIFIED;
  for (size_t i = 0; i < w->n; i++)
    if (w->e[i].status != RTQ_STATUS_COMPLETED) return CLI_ENDED;
  return CLI_OK;
}

int cmd_watch(cli *ctx, int argc, char **argv) {
  cli_opt opts[] = {{"timeout", OPT_VALUE, NULL}};
  const char **ids = calloc(MAX_WATCHED, sizeof *ids);
  watch w;
  memset(&w, 0, sizeof w);
  w.e = calloc(MAX_WATCHED, sizeof *w.e);
  int nids = 0, rc = CLI_OK;
  int64_t timeout_ms = -1;
  if (ids == NULL || w.e == NULL) {
    cli_error_code(rtq_err_name(RTQ_ENOMEM), "out of memory");
    rc = CLI_REDIS;
  }
  if (rc == CLI_OK) rc = cli_parse(ctx, argc, argv, opts, 1, ids, MAX_WATCHED, &nids);
  for (int i = 0; rc == CLI_OK && i < nids; i++) rc = cli_name("task id", ids[i]);
  if (rc == CLI_OK && opts[0].value != NULL) {
    uint64_t ms;
    rc = cli_duration("timeout", opts[0].value, 0, CLI_MAX_DURATION_MS, &ms);
    timeout_ms = (int64_t)ms;
  }
  if (rc == CLI_OK) rc = cli_connect(ctx);
  w.ctx = ctx;
  w.follow = nids == 0;
  w.tty = isatty(STDOUT_FILENO);
  struct winsize ws;
  w.width = w.tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;

  rtq_subscription *sub = NULL;
  if (rc == CLI_OK) {
    int err = rtq_events_subscribe(ctx->client, &sub);
    if (err != 0) rc = cli_fail(ctx, err, "watch");
  }
  if (rc == CLI_OK) rc = load(&w, ids, nids);
  if (rc == CLI_OK) {
    /* Ctrl-C ends a watch; the tasks go on regardless. */
    cli_on_interrupt(ctx, NULL);
    if (w.tty && !ctx->json) {
      redraw(&w);
    } else {
      for (size_t i = 0; i < w.n; i++) print_entry(&w, &w.e[i]);
    }
    rc = loop(&w, sub, timeout_ms);
  }
  rtq_subscription_free(sub);
  free(w.e);
  free(ids);
  return rc;
}
