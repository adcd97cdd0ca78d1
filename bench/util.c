/* util.c - clocks, pacing, quantiles and progress lines for rtq-bench. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "clock.h"

uint64_t rtq__bench_now_ns(void) { return rtq__mono_ns(); }

void rtq__bench_sleep_us(uint64_t us) {
  struct timespec ts = {(time_t)(us / 1000000u), (long)(us % 1000000u) * 1000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

void rtq__bench_say(const rtq__bench *b, const char *fmt, ...) {
  if (b->o->quiet) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "rtq-bench: %s\n", line);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

double rtq__bench_quantile(double *v, size_t n, double q) {
  if (n == 0) return 0;
  qsort(v, n, sizeof *v, cmp_double);
  /* nearest rank: the smallest value with at least q*n values at or below */
  size_t rank = (size_t)ceil(q * (double)n);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return v[rank - 1];
}

json_t *rtq__bench_quantiles_json(double *v, size_t n) {
  json_t *o = json_object();
  json_object_set_new(o, "p50", json_real(rtq__bench_quantile(v, n, 0.50)));
  json_object_set_new(o, "p90", json_real(rtq__bench_quantile(v, n, 0.90)));
  json_object_set_new(o, "p99", json_real(rtq__bench_quantile(v, n, 0.99)));
  json_object_set_new(o, "max", json_real(n ? v[n - 1] : 0));
  return o;
}

double rtq__bench_num(const json_t *obj, const char *key) {
  const json_t *v = obj ? json_object_get(obj, key) : NULL;
  return json_is_number(v) ? json_number_value(v) : NAN;
}
