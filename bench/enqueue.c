/*
 * enqueue.c - the producer side: the workload's tasks, enqueued one
 * awaited call at a time or in rtq_create_tasks chunks.
 *
 * The args trees are built before the clock starts; what is timed is the
 * public API call (packing, envelope, ids, the round trip, the reply).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench.h"

rtq_args *rtq__bench_task_args(size_t i) {
  static const char data[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
  _Static_assert(sizeof data == 65, "64 x's");
  rtq_args *a = rtq_args_new();
  if (a == NULL) return NULL;
  if (rtq_args_set_int(a, "i", (int64_t)i) != 0 || rtq_args_set_str(a, "data", data) != 0) {
    rtq_args_free(a);
    return NULL;
  }
  return a;
}

rtq_client *rtq__bench_client(rtq__bench *b, const char *ns) {
  rtq_client_options co = {.redis_url = b->redis.url, .ns = ns, .history = 1, .protocol = b->o->protocol};
  rtq_client *c = NULL;
  if (rtq_client_new(&co, &c) != 0) {
    fprintf(stderr, "rtq-bench: client: %s\n", rtq_client_errstr(NULL));
    return NULL;
  }
  return c;
}

static rtq_args **make_args(size_t n) {
  rtq_args **v = calloc(n, sizeof *v);
  for (size_t i = 0; v != NULL && i < n; i++) {
    if ((v[i] = rtq__bench_task_args(i)) == NULL) {
      for (size_t j = 0; j < i; j++) rtq_args_free(v[j]);
      free(v);
      return NULL;
    }
  }
  if (v == NULL) fprintf(stderr, "rtq-bench: out of memory\n");
  return v;
}

static void free_args(rtq_args **v, size_t n) {
  for (size_t i = 0; v && i < n; i++) rtq_args_free(v[i]);
  free(v);
}

/* CPU time of this process, s. The enqueue phases run on one thread. */
static double self_cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

/* Sets the figures every enqueue phase reports. */
static void put_common(json_t *res, size_t n, uint64_t ns, double cpu_s, rtq__bench_info *a,
                       rtq__bench_info *z) {
  double s = (double)ns / 1e9;
  json_object_set_new(res, "client_cpu_us_per_task", json_real(cpu_s * 1e6 / (double)n));
  json_object_set_new(res, "n", json_integer((json_int_t)n));
  json_object_set_new(res, "seconds", json_real(s));
  json_object_set_new(res, "tasks_per_s", json_real((double)n / s));
  rtq__bench_info_delta(res, a, z, n, true);
  json_object_set_new(res, "redis_memory_per_pending_task_bytes",
                      json_real(((double)z->used_memory - (double)a->used_memory) / (double)n));
}

int rtq__bench_enqueue_single(rtq__bench *b, const char *ns, size_t n, char *ids, json_t *res) {
  rtq_client *c = rtq__bench_client(b, ns);
  rtq_args **args = make_args(n);
  double *us = calloc(n, sizeof *us);
  int rc = c && args && us ? 0 : -1;
  rtq__bench_info a = {0}, z = {0};
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &a);
  double cpu0 = self_cpu_s();
  uint64_t t0 = rtq__bench_now_ns(), end = t0 + (uint64_t)b->o->phase_timeout_s * 1000000000u;
  size_t done = 0;
  for (; rc == 0 && done < n; done++) {
    char id[RTQ_TASK_ID_SIZE];
    int created = 0;
    uint64_t c0 = rtq__bench_now_ns();
    rc = rtq_create_task(c, "rtq.noop", args[done], NULL, id, &created);
    uint64_t c1 = rtq__bench_now_ns();
    us[done] = (double)(c1 - c0) / 1e3;
    if (rc != 0 || !created) {
      fprintf(stderr, "rtq-bench: create %zu: %s\n", done, rc ? rtq_client_errstr(c) : "not new");
      rc = -1;
    } else if (ids != NULL) {
      memcpy(ids + done * RTQ_TASK_ID_SIZE, id, RTQ_TASK_ID_SIZE);
    }
    if (rc == 0 && c1 > end) {
      fprintf(stderr, "rtq-bench: enqueue took over %d s\n", b->o->phase_timeout_s);
      rc = -1;
    }
  }
  uint64_t t1 = rtq__bench_now_ns();
  double cpu = self_cpu_s() - cpu0;
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &z);
  if (rc == 0) {
    put_common(res, n, t1 - t0, cpu, &a, &z);
    json_object_set_new(res, "call_us", rtq__bench_quantiles_json(us, n));
  }
  rtq__bench_info_destroy(&a);
  rtq__bench_info_destroy(&z);
  free(us);
  free_args(args, n);
  rtq_client_free(c);
  return rc;
}

int rtq__bench_enqueue_batch(rtq__bench *b, const char *ns, size_t n, char *ids, json_t *res) {
  size_t chunk = b->o->chunk;
  rtq_client *c = rtq__bench_client(b, ns);
  rtq_args **args = make_args(n);
  rtq_task_spec *specs = calloc(chunk, sizeof *specs);
  int rc = c && args && specs ? 0 : -1;
  rtq__bench_info a = {0}, z = {0};
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &a);
  double cpu0 = self_cpu_s();
  uint64_t t0 = rtq__bench_now_ns(), end = t0 + (uint64_t)b->o->phase_timeout_s * 1000000000u;
  for (size_t base = 0; rc == 0 && base < n; base += chunk) {
    size_t k = n - base < chunk ? n - base : chunk;
    for (size_t i = 0; i < k; i++) {
      memset(&specs[i], 0, sizeof specs[i]);
      specs[i].name = "rtq.noop";
      specs[i].args = args[base + i];
    }
    if (rtq_create_tasks(c, specs, k) != 0) {
      fprintf(stderr, "rtq-bench: create_tasks at %zu: %s\n", base, rtq_client_errstr(c));
      rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < k; i++) {
      if (!specs[i].created) {
        fprintf(stderr, "rtq-bench: task %zu was not created\n", base + i);
        rc = -1;
      } else if (ids != NULL) {
        memcpy(ids + (base + i) * RTQ_TASK_ID_SIZE, specs[i].id, RTQ_TASK_ID_SIZE);
      }
    }
    if (rc == 0 && rtq__bench_now_ns() > end) {
      fprintf(stderr, "rtq-bench: enqueue took over %d s\n", b->o->phase_timeout_s);
      rc = -1;
    }
  }
  uint64_t t1 = rtq__bench_now_ns();
  double cpu = self_cpu_s() - cpu0;
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &z);
  if (rc == 0) {
    put_common(res, n, t1 - t0, cpu, &a, &z);
    json_object_set_new(res, "chunk", json_integer((json_int_t)chunk));
  }
  rtq__bench_info_destroy(&a);
  rtq__bench_info_destroy(&z);
  free(specs);
  free_args(args, n);
  rtq_client_free(c);
  return rc;
}
