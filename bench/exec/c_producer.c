/*
 * c_producer.c - the C counterpart of the Python producer's create_task
 * loop (python_vs_c.py, producer.py): a C program linked to librtq.so, as
 * a C producer is, that creates N tasks one by one, each call awaited,
 * against a Redis it is given, and prints one JSON line with its rate, its
 * CPU time per call and the p50 and p99 of one call's time (args built,
 * call made, reply read).
 *
 *   rtq-c-producer URL NAMESPACE N json|tree [GAP_US]
 *
 * Both modes build each task's args inside the timed loop, as a producer
 * does for every task it creates, with the args of the Python loop,
 * {"i": i, "data": 64 x's}:
 *   json  formats them as JSON text and calls rtq_create_task_json, the
 *         entry point rtq.Client.create_task calls (librtq packs the text
 *         to msgpack);
 *   tree  builds an rtq_args tree (rtq_args_new, two setters), calls
 *         rtq_create_task and frees the tree.
 * The client is made with default options, as rtq.Client(url) makes it.
 *
 * GAP_US (0..1000, default 0) is a diagnostic: before each call the loop
 * spins that long, as if the producer did that much more work between
 * its calls (outside the call's own time, inside the rate). On a virtual
 * machine whose idle CPUs halt, an idle Redis answers later the longer it
 * has been idle, so each microsecond of such work costs several in the
 * rate (docs/PERFORMANCE.md, "create_task's C accelerator").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "rtq/client.h"

static const char data[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
_Static_assert(sizeof data == 65, "64 x's");

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Nearest-rank quantile q of the n sorted values v. */
static double quantile(const double *v, size_t n, double q) {
  size_t k = (size_t)(q * (double)n + 0.5);
  return v[k == 0 ? 0 : k > n ? n - 1 : k - 1];
}

static double cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

/* Task i through rtq_create_task_json, its args formatted here. */
static int create_json(rtq_client *c, size_t i, char id[RTQ_TASK_ID_SIZE]) {
  char text[128];
  snprintf(text, sizeof text, "{\"i\":%zu,\"data\":\"%s\"}", i, data);
  return rtq_create_task_json(c, "rtq.noop", text, NULL, id, NULL);
}

/* Task i through rtq_create_task, its args built here as a tree. */
static int create_tree(rtq_client *c, size_t i, char id[RTQ_TASK_ID_SIZE]) {
  rtq_args *a = rtq_args_new();
  if (a == NULL) return RTQ_ENOMEM;
  int rc = rtq_args_set_int(a, "i", (int64_t)i);
  if (rc == 0) rc = rtq_args_set_str(a, "data", data);
  if (rc == 0) rc = rtq_create_task(c, "rtq.noop", a, NULL, id, NULL);
  rtq_args_free(a);
  return rc;
}

/* Spins for us microseconds. */
static void spin_us(double us) {
  double until = now_s() + us / 1e6;
  while (now_s() < until) {
  }
}

int main(int argc, char **argv) {
  if ((argc != 5 && argc != 6) || (strcmp(argv[4], "json") != 0 && strcmp(argv[4], "tree") != 0)) {
    fprintf(stderr, "usage: rtq-c-producer URL NAMESPACE N json|tree [GAP_US]\n");
    return 2;
  }
  char *end = NULL;
  unsigned long long n = strtoull(argv[3], &end, 10);
  if (*end != '\0' || n == 0 || n > 10000000) {
    fprintf(stderr, "rtq-c-producer: N must be 1..10000000\n");
    return 2;
  }
  double gap_us = 0;
  if (argc == 6) {
    gap_us = strtod(argv[5], &end);
    if (end == argv[5] || *end != '\0' || !(gap_us >= 0 && gap_us <= 1000)) {
      fprintf(stderr, "rtq-c-producer: GAP_US must be 0..1000\n");
      return 2;
    }
  }
  int (*create)(rtq_client *, size_t, char *) = argv[4][0] == 'j' ? create_json : create_tree;
  rtq_client_options o = {.redis_url = argv[1], .ns = argv[2]};
  rtq_client *c = NULL;
  double *us = malloc(n * sizeof *us);
  if (us == NULL || rtq_client_new(&o, &c) != 0) {
    fprintf(stderr, "rtq-c-producer: %s\n", us ? rtq_client_errstr(NULL) : "out of memory");
    free(us);
    return 1;
  }
  int rc = 0;
  double cpu0 = cpu_s(), t0 = now_s(), deadline = t0 + 60;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    char id[RTQ_TASK_ID_SIZE];
    if (gap_us > 0) spin_us(gap_us);
    double c0 = now_s();
    rc = create(c, i, id);
    double c1 = now_s();
    us[i] = (c1 - c0) * 1e6;
    if (rc != 0) {
      fprintf(stderr, "rtq-c-producer: create %zu: %s\n", i, rtq_client_errstr(c));
    } else if (i % 1000 == 0 && c1 > deadline) {
      fprintf(stderr, "rtq-c-producer: enqueue took over 60 s\n");
      rc = -1;
    }
  }
  double secs = now_s() - t0, cpu = cpu_s() - cpu0;
  if (rc == 0) {
    qsort(us, n, sizeof *us, by_value);
    printf("{\"n\": %llu, \"tasks_per_s\": %.1f, \"client_cpu_us_per_task\": %.2f, \"call_us_p50\": %.1f, "
           "\"call_us_p99\": %.1f}\n",
           n, (double)n / secs, cpu * 1e6 / (double)n, quantile(us, n, 0.5), quantile(us, n, 0.99));
  }
  free(us);
  rtq_client_free(c);
  return rc == 0 ? 0 : 1;
}
