/*
 * cmd_stats.c - `rtq stats` (backlogs, counts, counters, workers alive) and
 * `rtq workers` (one line per alive worker).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static int no_args(cli *ctx, int argc, char **argv) {
  const char *pos[1];
  int npos;
  int rc = cli_parse(ctx, argc, argv, NULL, 0, pos, 0, &npos);
  if (rc == CLI_OK) rc = cli_connect(ctx);
  return rc;
}

static uint64_t counter(const rtq_queue_stats *q, const char *name) {
  for (size_t i = 0; i < q->ncounters; i++)
    if (strcmp(q->counters[i].name, name) == 0) return q->counters[i].value;
  return 0;
}

/* The counters a person looks at first; JSON carries all of them. */
static const char *const shown[] = {"enqueued", "completed", "failed",  "cancelled",
                                    "timeout",  "retried",   "redelivered"};
#define NSHOWN (sizeof shown / sizeof shown[0])

/* The broker's figures, apart from the queues: they count its sweeps, not
 * a queue's tasks. */
static void print_broker(const rtq_stats *s) {
  char buf[32];
  uint64_t last = 0;
  int shown_any = 0;
  printf("\nbroker:");
  for (size_t i = 0; i < s->nbroker; i++) {
    if (strcmp(s->broker[i].name, "last_sweep_at") == 0) {
      last = s->broker[i].value;
      continue;
    }
    char name[sizeof s->broker[i].name];
    cli_clean(name, sizeof name, s->broker[i].name, false);
    printf("%s %s %llu", shown_any ? "," : "", name,
           (unsigned long long)s->broker[i].value);
    shown_any = 1;
  }
  if (s->nbroker == 0) printf(" no figures (no broker has swept this namespace)");
  printf("\n");
  if (last != 0)
    printf("last sweep: %s (%.1f s ago)\n", cli_time(last, buf),
           s->now > last ? (double)(s->now - last) / 1000.0 : 0.0);
}

static void print_stats(const rtq_stats *s) {
  int w = 5;
  for (size_t i = 0; i < s->nqueues; i++) {
    int n = (int)strlen(s->queues[i].name);
    if (n > w) w = n > 40 ? 40 : n;
  }
  printf("%-*s  %9s", w, "QUEUE", "BACKLOG");
  for (size_t c = 0; c < NSHOWN; c++) {
    char up[16];
    size_t k = 0;
    for (; shown[c][k] != '\0' && k < sizeof up - 1; k++) up[k] = (char)toupper((unsigned char)shown[c][k]);
    up[k] = '\0';
    printf("  %11s", up);
  }
  printf("\n");
  for (size_t i = 0; i < s->nqueues; i++) {
    const rtq_queue_stats *q = &s->queues[i];
    printf("%-*.*s  %9llu", w, w, q->name, (unsigned long long)q->backlog);
    for (size_t c = 0; c < NSHOWN; c++) printf("  %11llu", (unsigned long long)counter(q, shown[c]));
    printf("%s", q->paused ? "  (paused)" : "");
    if (q->limit_rate > 0) printf("  (limit %g/s)", q->limit_rate);
    if (q->limit_concurrency > 0) printf("  (limit %u at once)", q->limit_concurrency);
    printf("\n");
  }
  printf("\ntasks by status:");
  for (int i = 0; i < RTQ_STATUS_COUNT; i++)
    printf(" %s %llu%s", rtq_status_name((rtq_status)i), (unsigned long long)s->by_status[i],
           i + 1 < RTQ_STATUS_COUNT ? "," : "\n");
  printf("running: %llu  delayed: %llu  dead letters: %llu  ", (unsigned long long)s->running,
         (unsigned long long)s->delayed, (unsigned long long)s->dead);
  if (s->workers_hidden)
    printf("workers alive: ? (this Redis user may not read the worker registry; the monitor may)\n");
  else
    printf("workers alive: %llu\n", (unsigned long long)s->workers_alive);
  print_broker(s);
}

/* {"counters": {...}, "last_sweep_at": ISO or null}. */
static json_t *broker_json(const rtq_stats *s) {
  char buf[32];
  uint64_t last = 0;
  json_t *ctrs = json_object();
  for (size_t i = 0; ctrs != NULL && i < s->nbroker; i++) {
    if (strcmp(s->broker[i].name, "last_sweep_at") == 0) last = s->broker[i].value;
    json_object_set_new(ctrs, s->broker[i].name, json_integer((json_int_t)s->broker[i].value));
  }
  return json_pack("{s:o*, s:s?}", "counters", ctrs, "last_sweep_at",
                   last != 0 ? cli_time(last, buf) : NULL);
}

static json_t *stats_json(const rtq_stats *s) {
  char buf[32];
  json_t *queues = json_array(), *statuses = json_object();
  for (size_t i = 0; queues != NULL && i < s->nqueues; i++) {
    const rtq_queue_stats *q = &s->queues[i];
    json_t *ctrs = json_object();
    for (size_t c = 0; ctrs != NULL && c < q->ncounters; c++)
      json_object_set_new(ctrs, q->counters[c].name, json_integer((json_int_t)q->counters[c].value));
    json_array_append_new(queues, json_pack("{s:s, s:I, s:b, s:o*, s:o, s:o}", "name", q->name, "backlog",
                                            (json_int_t)q->backlog, "paused", q->paused, "counters", ctrs,
                                            "rate_limit", q->limit_rate > 0 ? json_real(q->limit_rate) : json_null(),
                                            "concurrency_limit",
                                            q->limit_concurrency ? json_integer(q->limit_concurrency) : json_null()));
  }
  for (int i = 0; statuses != NULL && i < RTQ_STATUS_COUNT; i++)
    json_object_set_new(statuses, rtq_status_name((rtq_status)i),
                        json_integer((json_int_t)s->by_status[i]));
  return json_pack("{s:s, s:o*, s:o*, s:I, s:I, s:I, s:o, s:o*}", "now", cli_time(s->now, buf),
                   "queues", queues, "statuses", statuses, "running", (json_int_t)s->running,
                   "delayed", (json_int_t)s->delayed, "dead", (json_int_t)s->dead,
                   "workers_alive",
                   s->workers_hidden ? json_null() : json_integer((json_int_t)s->workers_alive),
                   "broker", broker_json(s));
}

int cmd_stats(cli *ctx, int argc, char **argv) {
  int rc = no_args(ctx, argc, argv);
  if (rc != CLI_OK) return rc;
  rtq_stats *s = NULL;
  int err = rtq_get_stats(ctx->client, &s);
  if (err != 0) return cli_fail(ctx, err, "stats");
  cli_warn_skipped(s->skipped);
  if (ctx->json)
    rc = cli_print_json(stats_json(s));
  else
    print_stats(s);
  rtq_stats_free(s);
  return rc;
}

static json_t *workers_json(const rtq_alive_workers *l) {
  char a[32], b[32];
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < l->count; i++) {
    const rtq_alive_worker *w = &l->workers[i];
    uint64_t age = l->now > w->last_seen ? l->now - w->last_seen : 0;
    json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:i, s:i, s:s?, s:s, s:I}", "id", w->id, "host",
                          w->host, "pid", (json_int_t)w->pid, "queues", w->queues, "busy",
                          w->busy, "slots", w->slots, "started_at",
                          w->started_at ? cli_time(w->started_at, a) : NULL, "last_heartbeat",
                          cli_time(w->last_seen, b), "heartbeat_age_ms", (json_int_t)age);
    json_t *un = json_string(w->exec_unavailable); /* the worker's text: may not be UTF-8 */
    if (o != NULL && json_object_set_new(o, "exec_unavailable", un ? un : json_string("(not UTF-8)")) != 0) {
      json_decref(o);
      o = NULL;
    }
    if (o == NULL || json_array_append_new(arr, o) != 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

static void print_workers(const rtq_alive_workers *l) {
  char buf[32];
  printf("%-40s %-24s %8s %-24s %9s  %s\n", "ID", "HOST", "PID", "QUEUES", "BUSY", "LAST HEARTBEAT");
  for (size_t i = 0; i < l->count; i++) {
    const rtq_alive_worker *w = &l->workers[i];
    char slots[32];
    snprintf(slots, sizeof slots, "%d/%d", w->busy, w->slots);
    double age = l->now > w->last_seen ? (double)(l->now - w->last_seen) / 1000.0 : 0;
    char id[RTQ_TASK_ID_SIZE], host[256], queues[512];
    cli_clean(id, sizeof id, w->id, false);
    cli_clean(host, sizeof host, w->host, false);
    cli_clean(queues, sizeof queues, w->queues, false);
    printf("%-40.40s %-24.24s %8ld %-24.24s %9s  %s (%.1f s ago)\n", id, host, w->pid, queues,
           slots, cli_time(w->last_seen, buf), age);
    /* Each handler command that keeps failing, on a line of its own. */
    for (const char *u = w->exec_unavailable; *u != '\0';) {
      size_t n = strcspn(u, "\n");
      char line[1024];
      snprintf(line, sizeof line, "%.*s", (int)n, u);
      char clean[1024];
      cli_clean(clean, sizeof clean, line, false);
      printf("  handler unavailable: %s\n", clean);
      u += n + (u[n] == '\n');
    }
  }
}

int cmd_workers(cli *ctx, int argc, char **argv) {
  int rc = no_args(ctx, argc, argv);
  if (rc != CLI_OK) return rc;
  rtq_alive_workers *l = NULL;
  int err = rtq_list_workers(ctx->client, &l);
  if (err != 0) return cli_fail(ctx, err, "workers");
  if (ctx->json)
    rc = cli_print_json(workers_json(l));
  else
    print_workers(l);
  rtq_alive_workers_free(l);
  return rc;
}
