/*
 * metrics.c - /metrics: the overview in the Prometheus text format 0.0.4.
 *
 * Names follow the Prometheus conventions: counters end in _total, times
 * are in seconds, one metric family per name with its HELP and TYPE lines
 * first. Counters come from P:stats (cumulative, kept by the Lua steps);
 * gauges from the indexes and queue lists at scrape time. Every figure is
 * read through librtq (overview.c), never from keys built here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "overview.h"

typedef struct sb {
  char *s;
  size_t len, cap;
  int oom;
} sb;

static void put(sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sb *b, const char *fmt, ...) {
  if (b->oom) return;
  if (b->s == NULL && (b->s = malloc(b->cap = 8192)) == NULL) {
    b->oom = 1;
    return;
  }
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if ((size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *p = realloc(b->s, cap);
    if (p == NULL) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
}

/* Label values: queue names are validated names, but the format's three
 * escapes are applied all the same. */
static const char *label(const char *v, char *buf, size_t cap) {
  size_t k = 0;
  for (; *v != '\0' && k + 3 < cap; v++) {
    if (*v == '\\' || *v == '"') {
      buf[k++] = '\\';
      buf[k++] = *v;
    } else if (*v == '\n') {
      buf[k++] = '\\';
      buf[k++] = 'n';
    } else {
      buf[k++] = *v;
    }
  }
  buf[k] = '\0';
  return buf;
}

static void family(sb *b, const char *name, const char *type, const char *help) {
  put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Terminal outcomes, as the status label of rtq_tasks_total. */
static const char *const outcomes[] = {"completed", "failed", "cancelled", "timeout"};

/* Per-queue counters other than the outcomes: P:stats name -> metric. */
static const struct {
  const char *counter, *metric, *help;
} queue_counters[] = {
    {"enqueued", "rtq_tasks_enqueued_total", "Tasks enqueued, by queue."},
    {"retried", "rtq_task_retries_total", "Failed attempts scheduled to run again, by queue."},
    {"redelivered", "rtq_task_redeliveries_total",
     "Tasks put back on their queue after their worker died, by queue."},
    {"dead", "rtq_dead_letters_total", "Payloads moved to the dead-letter list, by queue."},
};

typedef struct qrow {
  const char *name;
  const rtq_queue_stats *stats;  /* NULL: known from the loads only */
  const rtq_queue_load *load;    /* NULL: not in the loads */
} qrow;

/* Every queue once: P:stats queues, then those only the loads name. */
static qrow *queue_rows(const web_overview *o, size_t *n) {
  size_t cap = o->stats->nqueues + (o->loads != NULL ? o->loads->count : 0);
  qrow *rows = calloc(cap + 1, sizeof *rows);
  if (rows == NULL) return NULL;
  size_t k = 0;
  for (size_t i = 0; i < o->stats->nqueues; i++) {
    const rtq_queue_stats *q = &o->stats->queues[i];
    rows[k++] = (qrow){q->name, q, web_overview_load(o, q->name)};
  }
  for (size_t i = 0; o->loads != NULL && i < o->loads->count; i++) {
    const rtq_queue_load *l = &o->loads->queues[i];
    int found = 0;
    for (size_t j = 0; j < o->stats->nqueues && !found; j++)
      found = strcmp(o->stats->queues[j].name, l->name) == 0;
    if (!found) rows[k++] = (qrow){l->name, NULL, l};
  }
  *n = k;
  return rows;
}

static void counters(sb *b, const qrow *rows, size_t n) {
  char lb[300];
  family(b, "rtq_tasks_total", "counter", "Tasks that ended, by queue and final status.");
  for (size_t i = 0; i < n; i++)
    for (size_t s = 0; s < sizeof outcomes / sizeof outcomes[0]; s++)
      put(b, "rtq_tasks_total{queue=\"%s\",status=\"%s\"} %llu\n", label(rows[i].name, lb, sizeof lb),
          outcomes[s],
          (unsigned long long)(rows[i].stats ? web_counter(rows[i].stats->counters, rows[i].stats->ncounters, outcomes[s]) : 0));
  for (size_t c = 0; c < sizeof queue_counters / sizeof queue_counters[0]; c++) {
    family(b, queue_counters[c].metric, "counter", queue_counters[c].help);
    for (size_t i = 0; i < n; i++)
      put(b, "%s{queue=\"%s\"} %llu\n", queue_counters[c].metric, label(rows[i].name, lb, sizeof lb),
          (unsigned long long)(rows[i].stats ? web_counter(rows[i].stats->counters, rows[i].stats->ncounters,
                                                         queue_counters[c].counter)
                                             : 0));
  }
}

static void gauges(sb *b, const web_overview *o, const qrow *rows, size_t n) {
  char lb[300];
  uint64_t now = o->stats->now;
  family(b, "rtq_queue_backlog", "gauge", "Tasks waiting on the queue list.");
  for (size_t i = 0; i < n; i++)
    put(b, "rtq_queue_backlog{queue=\"%s\"} %llu\n", label(rows[i].name, lb, sizeof lb),
        (unsigned long long)(rows[i].stats ? rows[i].stats->backlog : 0));
  family(b, "rtq_queue_running", "gauge", "Tasks of the queue that are running.");
  for (size_t i = 0; i < n; i++)
    put(b, "rtq_queue_running{queue=\"%s\"} %llu\n", label(rows[i].name, lb, sizeof lb),
        (unsigned long long)(rows[i].load ? rows[i].load->running : 0));
  family(b, "rtq_queue_delayed", "gauge",
         "Tasks of the queue that wait for their run time or their next retry.");
  for (size_t i = 0; i < n; i++)
    put(b, "rtq_queue_delayed{queue=\"%s\"} %llu\n", label(rows[i].name, lb, sizeof lb),
        (unsigned long long)(rows[i].load ? rows[i].load->delayed : 0));
  family(b, "rtq_queue_oldest_pending_age_seconds", "gauge",
         "Age of the task a worker takes next from the queue; 0 when it is empty.");
  for (size_t i = 0; i < n; i++) {
    uint64_t at = rows[i].load ? rows[i].load->oldest_pending_at : 0;
    double age = at != 0 && now > at ? (double)(now - at) / 1000.0 : 0.0;
    put(b, "rtq_queue_oldest_pending_age_seconds{queue=\"%s\"} %.3f\n",
        label(rows[i].name, lb, sizeof lb), age);
  }
  family(b, "rtq_tasks", "gauge", "Tasks in each status index.");
  for (int s = 0; s < RTQ_STATUS_COUNT; s++)
    put(b, "rtq_tasks{status=\"%s\"} %llu\n", rtq_status_name((rtq_status)s),
        (unsigned long long)o->stats->by_status[s]);
  family(b, "rtq_delayed_tasks", "gauge", "Tasks scheduled for later or backing off, all queues.");
  put(b, "rtq_delayed_tasks %llu\n", (unsigned long long)o->stats->delayed);
  family(b, "rtq_dead_letters", "gauge", "Records in the dead-letter list.");
  put(b, "rtq_dead_letters %llu\n", (unsigned long long)o->stats->dead);
  family(b, "rtq_workers_alive", "gauge", "Workers whose heartbeat is recent.");
  put(b, "rtq_workers_alive %llu\n", (unsigned long long)o->stats->workers_alive);
  family(b, "rtq_worker_slots_busy", "gauge", "Slots of alive workers running a task.");
  put(b, "rtq_worker_slots_busy %llu\n", (unsigned long long)o->busy_slots);
  family(b, "rtq_worker_slots", "gauge", "Slots of alive workers in total.");
  put(b, "rtq_worker_slots %llu\n", (unsigned long long)o->slots);
}

/* The run-time histogram per queue: P:runtime:<queue> keeps a count per
 * bucket, so the cumulative counts Prometheus wants are summed here. A
 * queue never run shows zeros. */
static void run_times(sb *b, const web_overview *o, const qrow *rows, size_t n) {
  char lb[300];
  family(b, "rtq_task_run_seconds", "histogram",
         "Handler run time of the runs that ended in a worker (completed, failed, cancelled, "
         "timeout), by queue.");
  for (size_t i = 0; i < n; i++) {
    const rtq_run_histogram *h = NULL;
    for (size_t k = 0; o->runs != NULL && k < o->runs->count && h == NULL; k++)
      if (strcmp(o->runs->queues[k].queue, rows[i].name) == 0) h = &o->runs->queues[k];
    label(rows[i].name, lb, sizeof lb);
    uint64_t cum = 0;
    for (int k = 0; k < RTQ_RUN_BUCKETS; k++) {
      cum += h != NULL ? h->count[k] : 0;
      put(b, "rtq_task_run_seconds_bucket{queue=\"%s\",le=\"%s\"} %llu\n", lb, rtq_run_bucket_le(k),
          (unsigned long long)cum);
    }
    put(b, "rtq_task_run_seconds_sum{queue=\"%s\"} %.6f\n", lb,
        h != NULL ? (double)h->sum_us / 1e6 : 0.0);
    put(b, "rtq_task_run_seconds_count{queue=\"%s\"} %llu\n", lb, (unsigned long long)cum);
  }
}

/* The broker's own counters (broker|<name> in P:stats). */
static void broker(sb *b, const web_overview *o) {
  const rtq_stats *s = o->stats;
  family(b, "rtq_broker_actions_total", "counter",
         "What the leading broker did, by action (docs/BROKER.md).");
  for (size_t i = 0; i < s->nbroker; i++) {
    if (strcmp(s->broker[i].name, "last_sweep_at") == 0) continue;
    char lb[80];
    put(b, "rtq_broker_actions_total{action=\"%s\"} %llu\n", label(s->broker[i].name, lb, sizeof lb),
        (unsigned long long)s->broker[i].value);
  }
  uint64_t last = web_counter(s->broker, s->nbroker, "last_sweep_at");
  family(b, "rtq_broker_last_sweep_timestamp_seconds", "gauge",
         "When the leading broker last finished a sweep (Unix time); 0 when never.");
  put(b, "rtq_broker_last_sweep_timestamp_seconds %.3f\n", (double)last / 1000.0);
}

static int finish(sb *b, char **text, size_t *len) {
  if (b->oom) {
    free(b->s);
    return RTQ_ENOMEM;
  }
  *text = b->s;
  *len = b->len;
  return 0;
}

int web_metrics_text(const web_overview *o, char **text, size_t *len) {
  sb b = {0};
  size_t n = 0;
  qrow *rows = queue_rows(o, &n);
  if (rows == NULL) return RTQ_ENOMEM;
  family(&b, "rtq_up", "gauge", "Whether Redis could be read for this scrape.");
  put(&b, "rtq_up 1\n");
  counters(&b, rows, n);
  gauges(&b, o, rows, n);
  run_times(&b, o, rows, n);
  broker(&b, o);
  free(rows);
  return finish(&b, text, len);
}

int web_metrics_down(char **text, size_t *len) {
  sb b = {0};
  family(&b, "rtq_up", "gauge", "Whether Redis could be read for this scrape.");
  put(&b, "rtq_up 0\n");
  return finish(&b, text, len);
}

/* The run times of the queues the overview names (one more round trip). */
static int read_runs(rtq_client *c, web_overview *o) {
  size_t n = 0;
  qrow *rows = queue_rows(o, &n);
  const char **names = rows != NULL ? calloc(n + 1, sizeof *names) : NULL;
  if (names == NULL) {
    free(rows);
    return RTQ_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) names[i] = rows[i].name;
  int rc = rtq_get_run_times(c, names, n, &o->runs);
  free(names);
  free(rows);
  return rc;
}

int web_metrics_scrape(rtq_client *c, char **text, size_t *len) {
  web_overview o;
  if (web_overview_read(c, &o) != 0) return web_metrics_down(text, len);
  if (read_runs(c, &o) != 0) {
    web_overview_destroy(&o);
    return web_metrics_down(text, len);
  }
  int rc = web_metrics_text(&o, text, len);
  web_overview_destroy(&o);
  return rc;
}
