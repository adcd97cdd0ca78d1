/*
 * main.c - rtq-bench: throughput, latency and memory figures of rtq.
 *
 *   rtq-bench                      every phase, the human table
 *   rtq-bench --json               the same figures as JSON
 *   rtq-bench --smoke              a small run for CI (no timing judged)
 *
 * docs/PERFORMANCE.md explains each figure and how it is measured; bench.h
 * the phases. The exit status is 0 when every phase ran and every task was
 * read back as completed, 1 otherwise; the figures never decide it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "bench.h"
#include "rtq/version.h"

/* The 1-minute load average: other work on the machine skews every figure. */
static double loadavg(void) {
  double l = -1;
  FILE *f = fopen("/proc/loadavg", "r");
  if (f != NULL && fscanf(f, "%lf", &l) != 1) l = -1;
  if (f != NULL) fclose(f);
  return l;
}

static json_t *machine(rtq__bench *b) {
  json_t *m = json_object();
  json_object_set_new(m, "cpus", json_integer(sysconf(_SC_NPROCESSORS_ONLN)));
  char line[256], model[256] = "?";
  FILE *f = fopen("/proc/cpuinfo", "r");
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
      snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
      model[strcspn(model, "\n")] = '\0';
      break;
    }
  }
  if (f) fclose(f);
  json_object_set_new(m, "cpu_model", json_string(model));
  struct utsname u;
  if (uname(&u) == 0) json_object_set_new(m, "kernel", json_string(u.release));
  char v[64];
  if (rtq__bench_info_field(&b->redis, "server", "redis_version", v, sizeof v) == 0)
    json_object_set_new(m, "redis_version", json_string(v));
  json_object_set_new(m, "loadavg_at_start", json_real(loadavg()));
  json_object_set_new(m, "redis", json_string(b->redis.own ? "private, persistence off"
                                                           : "external (--redis)"));
  return m;
}

static json_t *config(const rtq__bench_opts *o) {
  json_t *c = json_pack("{sIsIsIsisisb}", "n", (json_int_t)o->n, "chunk", (json_int_t)o->chunk,
                        "latency_n", (json_int_t)o->latency_n, "latency_gap_us",
                        o->latency_gap_us, "concurrency", o->concurrency, "smoke", o->smoke);
  json_object_set_new(c, "rtq_version", json_string(RTQ_VERSION_STRING));
  return c;
}

static int run(rtq__bench_opts *o) {
  rtq__bench b;
  memset(&b, 0, sizeof b);
  b.o = o;
  if (rtq__bench_redis_start(&b.redis, o) != 0) {
    rtq__bench_redis_stop(&b.redis, o->keep);
    return 1;
  }
  b.out = json_object();
  json_object_set_new(b.out, "rtq_bench", json_integer(1));
  json_object_set_new(b.out, "machine", machine(&b));
  json_object_set_new(b.out, "config", config(o));
  int rc = 0;
  if (rc == 0 && (o->phases & RTQ__PH_BATCH)) rc = rtq__bench_phase_enqueue_batch(&b);
  if (rc == 0 && (o->phases & RTQ__PH_SINGLE)) rc = rtq__bench_phase_single_and_drain(&b);
  if (rc == 0 && (o->phases & RTQ__PH_LATENCY)) rc = rtq__bench_phase_latency(&b);
  if (rc == 0 && (o->phases & RTQ__PH_SCALING)) rc = rtq__bench_phase_scaling(&b);
  json_object_set_new(json_object_get(b.out, "machine"), "loadavg_at_end", json_real(loadavg()));
  rtq__bench_redis_stop(&b.redis, o->keep || rc != 0);
  if (o->json) {
    json_dumpf(b.out, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    fputc('\n', stdout);
  } else {
    rtq__bench_print_table(b.out, stdout);
  }
  json_decref(b.out);
  if (rc != 0) fprintf(stderr, "rtq-bench: FAILED (figures above are partial)\n");
  return rc == 0 ? 0 : 1;
}

static json_t *load(const char *path) {
  json_error_t err;
  json_t *j = json_load_file(path, 0, &err);
  if (j == NULL) fprintf(stderr, "rtq-bench: %s:%d: %s\n", path, err.line, err.text);
  return j;
}

static int offline(const rtq__bench_opts *o) {
  json_t *runs[64];
  int n = o->nfiles < 64 ? o->nfiles : 64, rc = 0;
  for (int i = 0; i < n; i++) {
    if ((runs[i] = load(o->files[i])) == NULL) {
      for (int j = 0; j < i; j++) json_decref(runs[j]);
      return 1;
    }
  }
  if (o->mode == RTQ__BENCH_MODE_MEDIAN) {
    json_t *m = rtq__bench_median(runs, (size_t)n);
    rc = json_dumpf(m, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) != 0;
    fputc('\n', stdout);
    json_decref(m);
  } else if (o->mode == RTQ__BENCH_MODE_TABLE) {
    rtq__bench_print_table(runs[0], stdout);
  } else {
    rtq__bench_print_scaling_dat(runs[0], stdout);
  }
  for (int i = 0; i < n; i++) json_decref(runs[i]);
  return rc;
}

int main(int argc, char **argv) {
  rtq__bench_opts o;
  int rc = rtq__bench_opts_parse(&o, argc, argv);
  if (rc != 0) return rc > 0 ? 0 : 2;
  /* hiredis writes with write(2): a server that went away must not kill us */
  signal(SIGPIPE, SIG_IGN);
  return o.mode == RTQ__BENCH_MODE_RUN ? run(&o) : offline(&o);
}
