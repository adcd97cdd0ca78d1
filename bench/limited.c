/*
 * limited.c - rtq-bench --limit-other R: before a drain, a second queue of
 * the phase's namespace gets a rate limit of R tasks per second and a
 * backlog of RTQ__BENCH_LIMITED_BACKLOG tasks, and the drain's workers
 * serve it besides the bench queue (procs.c). The drain is timed on the
 * bench queue as always, so the run against one without the option shows
 * what a queue sitting at its limit costs the unlimited queue beside it:
 * the claim steps the limited queue answers `limited`, and the workers'
 * back-off.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int rtq__bench_limited_setup(rtq__bench *b, const char *ns, json_t *res) {
  rtq_client *c = rtq__bench_client(b, ns);
  if (c == NULL) return -1;
  rtq_queue_limits l = {.rate = b->o->limit_other};
  int rc = rtq_queue_limit_set(c, RTQ__BENCH_LIMITED_QUEUE, &l, RTQ_LIMIT_RATE);
  if (rc != 0) fprintf(stderr, "rtq-bench: queue limit: %s\n", rtq_client_errstr(c));
  rtq_task_spec specs[100];
  rtq_args *args[100] = {NULL};
  rtq_task_options opts = {.queue = RTQ__BENCH_LIMITED_QUEUE};
  for (size_t done = 0; rc == 0 && done < RTQ__BENCH_LIMITED_BACKLOG; done += 100) {
    memset(specs, 0, sizeof specs);
    for (size_t i = 0; i < 100 && rc == 0; i++) {
      if ((args[i] = rtq__bench_task_args(done + i)) == NULL) rc = -1;
      specs[i].name = "rtq.noop";
      specs[i].args = args[i];
      specs[i].opts = &opts;
    }
    if (rc == 0 && rtq_create_tasks(c, specs, 100) != 0) {
      fprintf(stderr, "rtq-bench: backlog of the limited queue: %s\n", rtq_client_errstr(c));
      rc = -1;
    }
    for (size_t i = 0; i < 100; i++) {
      rtq_args_free(args[i]);
      args[i] = NULL;
    }
  }
  rtq_client_free(c);
  json_object_set_new(res, "limit_other", json_pack("{s:s, s:f, s:I}", "queue", RTQ__BENCH_LIMITED_QUEUE,
                                                    "rate", b->o->limit_other, "backlog",
                                                    (json_int_t)RTQ__BENCH_LIMITED_BACKLOG));
  return rc == 0 ? 0 : -1;
}
