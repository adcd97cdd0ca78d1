/*
 * report.c - results out: the human table (rendered from the result JSON,
 * so a saved run prints the same), the element-wise median of several
 * runs, and the scaling points for gnuplot.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* The targets of issue 7, for the last column. */
#define T_SINGLE 12000.0
#define T_BATCH 200000.0
#define T_DRAIN 50000.0
#define T_CPU_US 15.0
#define T_MEM_B 300.0
#define T_RSS_KB (10.0 * 1024)
#define T_P50_MS 0.2
#define T_P99_MS 1.0

static const char *verdict(double v, double target, bool at_least) {
  if (isnan(v)) return "";
  return (at_least ? v >= target : v <= target) ? "met" : "MISSED";
}

static const char *jstr(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "?";
}

static void row(FILE *f, const char *what, const char *value, const char *target,
                const char *verdict_s) {
  fprintf(f, "  %-40s %-28s %-14s %s\n", what, value, target, verdict_s);
}

static void rowf(FILE *f, const char *what, double v, const char *unit, int decimals,
                 const char *target, const char *verdict_s) {
  char buf[64];
  if (isnan(v))
    snprintf(buf, sizeof buf, "-");
  else
    snprintf(buf, sizeof buf, "%.*f %s", decimals, v, unit);
  row(f, what, buf, target, verdict_s);
}

static double sub(const json_t *o, const char *a, const char *b) {
  return rtq__bench_num(json_object_get(o, a), b);
}

/* One row of the commandstats listing, for sorting. */
typedef struct cmd_row {
  const char *name;
  double calls, usec;
} cmd_row;

static int by_usec_desc(const void *a, const void *b) {
  double x = ((const cmd_row *)a)->usec, y = ((const cmd_row *)b)->usec;
  return (x < y) - (x > y);
}

static void print_commandstats(const json_t *cs, FILE *f) {
  if (!json_is_object(cs)) return;
  cmd_row rows[128];
  size_t n = 0;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)cs, k, v) {
    if (n == sizeof rows / sizeof rows[0]) break;
    rows[n].name = k;
    rows[n].calls = rtq__bench_num(v, "calls_per_task");
    rows[n].usec = rtq__bench_num(v, "usec_per_task");
    if (rows[n].calls >= 0.0005) n++;
  }
  qsort(rows, n, sizeof rows[0], by_usec_desc);
  fprintf(f, "\n  Redis commands per task during the drain (INFO commandstats; script-internal\n"
             "  calls included, the bench's own polls removed; usec is wall time in Redis,\n"
             "  evalsha's includes the commands its scripts ran):\n");
  fprintf(f, "    %-22s %10s %12s\n", "command", "calls", "usec");
  for (size_t i = 0; i < n; i++)
    fprintf(f, "    %-22s %10.3f %12.3f\n", rows[i].name, rows[i].calls, rows[i].usec);
}

static void print_scripts(const json_t *sp, FILE *f) {
  if (!json_is_object(sp)) return;
  fprintf(f, "\n  Script profile (SLOWLOG at 0 us; adds its own overhead):\n");
  fprintf(f, "    %-22s %10s %10s %8s %8s %8s\n", "step", "calls", "usec/call", "p50", "p99",
          "max");
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)sp, k, v) {
    fprintf(f, "    %-22s %10.0f %10.2f", k, rtq__bench_num(v, "calls"),
            rtq__bench_num(v, "usec_per_call"));
    if (json_object_get(v, "usec_max") != NULL)
      fprintf(f, " %8.0f %8.0f %8.0f", rtq__bench_num(v, "usec_p50"),
              rtq__bench_num(v, "usec_p99"), rtq__bench_num(v, "usec_max"));
    fprintf(f, "\n");
  }
}

void rtq__bench_print_table(const json_t *res, FILE *f) {
  const json_t *m = json_object_get(res, "machine");
  const json_t *cfg = json_object_get(res, "config");
  fprintf(f, "rtq-bench: %.0f tasks/phase, %.0f slots per worker, redis %s (%s), %.0f CPUs (%s)\n\n",
          rtq__bench_num(cfg, "n"), rtq__bench_num(cfg, "concurrency"),
          jstr(m, "redis_version"),
          jstr(m, "redis"), rtq__bench_num(m, "cpus"),
          jstr(m, "cpu_model"));
  fprintf(f, "load average (1 min) at start / end: %.2f / %.2f\n\n",
          rtq__bench_num(m, "loadavg_at_start"), rtq__bench_num(m, "loadavg_at_end"));
  fprintf(f, "  %-40s %-28s %-14s %s\n", "measure", "value", "target", "");
  char buf[96];

  const json_t *es = json_object_get(res, "enqueue_single");
  if (es) {
    double v = rtq__bench_num(es, "tasks_per_s");
    rowf(f, "enqueue 1-by-1", v, "tasks/s", 0, ">= 12000", verdict(v, T_SINGLE, true));
    snprintf(buf, sizeof buf, "%.0f / %.0f us", sub(es, "call_us", "p50"), sub(es, "call_us", "p99"));
    row(f, "  call p50 / p99", buf, "", "");
    snprintf(buf, sizeof buf, "%.2f us, %.1f", rtq__bench_num(es, "redis_cpu_us_per_task"),
             rtq__bench_num(es, "commands_per_task"));
    row(f, "  redis CPU, commands per task", buf, "", "");
    rowf(f, "  producer CPU per task", rtq__bench_num(es, "client_cpu_us_per_task"), "us", 2, "", "");
  }
  const json_t *eb = json_object_get(res, "enqueue_batch");
  if (eb) {
    double v = rtq__bench_num(eb, "tasks_per_s");
    snprintf(buf, sizeof buf, "enqueue batch (chunks of %.0f)", rtq__bench_num(eb, "chunk"));
    rowf(f, buf, v, "tasks/s", 0, ">= 200000", verdict(v, T_BATCH, true));
    snprintf(buf, sizeof buf, "%.2f us, %.1f", rtq__bench_num(eb, "redis_cpu_us_per_task"),
             rtq__bench_num(eb, "commands_per_task"));
    row(f, "  redis CPU, commands per task", buf, "", "");
    rowf(f, "  producer CPU per task", rtq__bench_num(eb, "client_cpu_us_per_task"), "us", 2, "", "");
  }
  const json_t *d = json_object_get(res, "drain");
  if (d) {
    double v = rtq__bench_num(d, "tasks_per_s");
    rowf(f, "drain, 1 worker process", v, "tasks/s", 0, ">= 50000", verdict(v, T_DRAIN, true));
    v = rtq__bench_num(d, "redis_cpu_us_per_task");
    rowf(f, "  redis CPU per task", v, "us", 2, "<= 15 us", verdict(v, T_CPU_US, false));
    rowf(f, "  redis commands per task", rtq__bench_num(d, "commands_per_task"), "", 2, "", "");
    rowf(f, "  redis read+write syscalls per task", rtq__bench_num(d, "redis_syscalls_per_task"), "",
         2, "", "");
    v = rtq__bench_num(d, "redis_memory_per_task_bytes");
    rowf(f, "  redis memory kept per finished task", v, "B", 0, "<= 300 B",
         verdict(v, T_MEM_B, false));
    v = rtq__bench_num(d, "worker_peak_rss_kb");
    rowf(f, "  worker peak RSS (VmHWM)", v / 1024, "MB", 1, "<= 10 MB",
         verdict(v, T_RSS_KB, false));
    rowf(f, "  worker CPU per task", rtq__bench_num(d, "worker_cpu_us_per_task"), "us", 2, "", "");
    rowf(f, "  worker context switches per task", rtq__bench_num(d, "worker_ctx_switches_per_task"),
         "", 2, "", "");
    const json_t *mem = json_object_get(d, "memory");
    if (mem) {
      snprintf(buf, sizeof buf, "%.0f B (%s, %.0f fields)", rtq__bench_num(mem, "task_hash_bytes"),
               jstr(mem, "task_hash_encoding"),
               rtq__bench_num(mem, "task_hash_fields"));
      row(f, "  one finished task hash", buf, "", "");
      snprintf(buf, sizeof buf, "%.0f B", rtq__bench_num(mem, "status_index_bytes_per_task"));
      row(f, "  done list, per task", buf, "", "");
    }
  }
  const json_t *l = json_object_get(res, "latency");
  if (l) {
    const json_t *s = json_object_get(l, "start_ms"), *c = json_object_get(l, "complete_ms");
    snprintf(buf, sizeof buf, "%.3f/%.3f/%.3f/%.3f ms", rtq__bench_num(s, "p50"),
             rtq__bench_num(s, "p90"), rtq__bench_num(s, "p99"), rtq__bench_num(s, "max"));
    char verdicts[64];
    snprintf(verdicts, sizeof verdicts, "p50 %s, p99 %s",
             verdict(rtq__bench_num(s, "p50"), T_P50_MS, false),
             verdict(rtq__bench_num(s, "p99"), T_P99_MS, false));
    row(f, "enqueue->start p50/p90/p99/max", buf, "0.2/-/1/- ms", verdicts);
    snprintf(buf, sizeof buf, "%.3f/%.3f/%.3f/%.3f ms", rtq__bench_num(c, "p50"),
             rtq__bench_num(c, "p90"), rtq__bench_num(c, "p99"), rtq__bench_num(c, "max"));
    row(f, "enqueue->complete p50/p90/p99/max", buf, "", "");
    snprintf(buf, sizeof buf, "%.0f us", rtq__bench_num(l, "event_hop_us"));
    row(f, "  of which event delivery, at most", buf, "", "");
    snprintf(buf, sizeof buf, "%.0f / %.0f us", sub(l, "create_call_us", "p50"),
             sub(l, "create_call_us", "p99"));
    row(f, "  create call p50 / p99, this phase", buf, "", "");
    snprintf(buf, sizeof buf, "%.0f / %.0f us", sub(l, "idle_ping_rtt_us", "p50"),
             sub(l, "idle_ping_rtt_us", "p99"));
    row(f, "  idle PING round trip p50 / p99", buf, "", "");
  }
  const json_t *sc = json_object_get(res, "scaling");
  size_t i;
  const json_t *step;
  json_array_foreach(sc, i, step) {
    snprintf(buf, sizeof buf, "scaling: drain, %.0f worker process%s", rtq__bench_num(step, "workers"),
             rtq__bench_num(step, "workers") == 1 ? "" : "es");
    char val[64];
    snprintf(val, sizeof val, "%.0f tasks/s", rtq__bench_num(step, "tasks_per_s"));
    row(f, buf, val, "", "");
  }
  if (d) print_commandstats(json_object_get(d, "commandstats"), f);
  if (d) print_scripts(json_object_get(d, "script_profile"), f);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Median of one node across the runs: numbers by value, objects by key
 * (the first run's keys), arrays by index; anything else from run 0. */
static json_t *median_node(json_t **v, size_t n) {
  if (json_is_number(v[0])) {
    double x[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 64; i++)
      if (json_is_number(v[i])) x[k++] = json_number_value(v[i]);
    qsort(x, k, sizeof *x, cmp_double);
    return json_real(k % 2 ? x[k / 2] : (x[k / 2 - 1] + x[k / 2]) / 2);
  }
  json_t *kids[64];
  if (json_is_object(v[0])) {
    json_t *o = json_object();
    const char *key;
    json_t *val;
    json_object_foreach(v[0], key, val) {
      size_t k = 0;
      for (size_t i = 0; i < n && k < 64; i++) {
        json_t *c = json_object_get(v[i], key);
        if (c != NULL) kids[k++] = c;
      }
      json_object_set_new(o, key, median_node(kids, k));
    }
    return o;
  }
  if (json_is_array(v[0])) {
    json_t *a = json_array();
    for (size_t j = 0; j < json_array_size(v[0]); j++) {
      size_t k = 0;
      for (size_t i = 0; i < n && k < 64; i++) {
        json_t *c = json_array_get(v[i], j);
        if (c != NULL) kids[k++] = c;
      }
      json_array_append_new(a, median_node(kids, k));
    }
    return a;
  }
  return json_deep_copy(v[0]);
}

json_t *rtq__bench_median(json_t **runs, size_t n) {
  json_t *m = median_node(runs, n > 64 ? 64 : n);
  json_object_set_new(m, "median_of", json_integer((json_int_t)n));
  return m;
}

void rtq__bench_print_scaling_dat(const json_t *res, FILE *f) {
  size_t i;
  const json_t *step;
  /* The third column is the rate at which Redis alone would be saturated:
   * one core divided by its CPU per task in that step. */
  fprintf(f, "# workers tasks_per_s redis_bound_tasks_per_s\n");
  json_array_foreach(json_object_get(res, "scaling"), i, step) {
    double cpu = rtq__bench_num(step, "redis_cpu_us_per_task");
    fprintf(f, "%.0f %.1f %.1f\n", rtq__bench_num(step, "workers"),
            rtq__bench_num(step, "tasks_per_s"), cpu > 0 ? 1e6 / cpu : 0);
  }
}
