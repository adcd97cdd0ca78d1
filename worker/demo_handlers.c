/*
 * demo_handlers.c - built-in handlers for demos and tests
 * (rtq-worker --demo-handlers). Arguments are keyword arguments:
 *
 *   rtq.echo                      result = the args map, unchanged
 *   rtq.sleep {seconds=1, steps=10, ignore_cancel=false}
 *                                 sleeps in steps, reporting progress
 *                                 after each; stops early when cancelled
 *                                 unless ignore_cancel (a hung handler)
 *   rtq.fail {code="DEMO_FAILURE", message, details}
 *                                 fails with that error
 *   rtq.crash {how="segv"|"abort", force=false}
 *                                 crashes its process; under thread
 *                                 isolation it refuses unless force
 *   rtq.noop                      does nothing
 *   rtq.progress {count=1000, seconds=0}
 *                                 reports progress count times, spread evenly
 *                                 over seconds (the last at `seconds`);
 *                                 shows the coalescing at work
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static double arg_double(rtq_task_ctx *t, const char *key, double def) {
  double v;
  return rtq_args_get_double(rtq_task_args(t), key, &v) == 0 ? v : def;
}

static int64_t arg_int(rtq_task_ctx *t, const char *key, int64_t def) {
  int64_t v;
  return rtq_args_get_int(rtq_task_args(t), key, &v) == 0 ? v : def;
}

static bool arg_bool(rtq_task_ctx *t, const char *key, bool def) {
  bool v;
  return rtq_args_get_bool(rtq_task_args(t), key, &v) == 0 ? v : def;
}

static int demo_echo(rtq_task_ctx *t, void *ud) {
  (void)ud;
  size_t len;
  const void *args = rtq_task_args_msgpack(t, &len);
  return rtq_task_set_result_msgpack(t, args, len);
}

static void plain_sleep(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static int demo_sleep(rtq_task_ctx *t, void *ud) {
  (void)ud;
  double seconds = arg_double(t, "seconds", 1.0);
  int64_t steps = arg_int(t, "steps", 10);
  bool ignore = arg_bool(t, "ignore_cancel", false);
  if (seconds < 0) seconds = 0;
  if (steps < 1) steps = 1;
  if (steps > 1000000) steps = 1000000;
  uint64_t step_ms = (uint64_t)(seconds * 1000.0 / (double)steps);
  for (int64_t i = 0; i < steps; i++) {
    if (ignore)
      plain_sleep(step_ms);
    else if (rtq_task_sleep_ms(t, step_ms) != 0)
      return 0; /* cancelled or timed out: the worker records which */
    char msg[64];
    snprintf(msg, sizeof msg, "step %lld/%lld", (long long)(i + 1), (long long)steps);
    rtq_task_progress(t, (double)(i + 1) * 100.0 / (double)steps, msg);
  }
  rtq_args *r = rtq_args_new();
  if (r == NULL) return RTQ_ENOMEM;
  rtq_args_set_double(r, "slept", seconds);
  rtq_args_set_int(r, "steps", steps);
  int rc = rtq_task_set_result(t, r);
  rtq_args_free(r);
  return rc;
}

static int demo_fail(rtq_task_ctx *t, void *ud) {
  (void)ud;
  const rtq_args *a = rtq_task_args(t);
  char code[RTQ__CODE_MAX + 1] = "DEMO_FAILURE";
  char *message = NULL;
  const char *m;
  size_t mlen;
  (void)rtq_args_get_cstr(a, "code", code, sizeof code);
  if (rtq_args_get_str(a, "message", &m, &mlen) == 0 && (message = malloc(mlen + 1)) != NULL) {
    memcpy(message, m, mlen);
    message[mlen] = '\0';
  }
  const rtq_args *details = NULL;
  if (rtq_args_get_child(a, "details", &details) != 0 || rtq_args_type(details) != RTQ_TYPE_MAP)
    details = NULL;
  int rc = rtq_task_fail(t, code[0] ? code : "DEMO_FAILURE", message ? message : "rtq.fail was asked to fail",
                         details);
  free(message);
  return rc;
}

static int demo_crash(rtq_task_ctx *t, void *ud) {
  (void)ud;
  char how[16] = "segv";
  (void)rtq_args_get_cstr(rtq_task_args(t), "how", how, sizeof how);
  if (!t->in_child && !arg_bool(t, "force", false))
    return rtq_task_fail(t, "CRASH_REFUSED",
                         "rtq.crash crashes only under process isolation (force=true crashes the worker)",
                         NULL);
  if (strcmp(how, "abort") == 0) abort();
  volatile int *p = NULL;
  *p = 42;
  raise(SIGSEGV); /* not reached */
  return 0;
}

static int demo_noop(rtq_task_ctx *t, void *ud) {
  (void)t;
  (void)ud;
  return 0;
}

static int demo_progress(rtq_task_ctx *t, void *ud) {
  (void)ud;
  int64_t count = arg_int(t, "count", 1000);
  double seconds = arg_double(t, "seconds", 0);
  if (count < 1) count = 1;
  if (!(seconds > 0)) seconds = 0; /* also NaN */
  /* Report i is due at seconds * i / count after the start, so the last
   * comes at `seconds` whatever the count. The handler waits for a due
   * time at most 1000 times (every report when count <= 1000, else every
   * count/1000 reports), so a huge count does not mean millions of
   * sleeps. */
  int64_t every = count > 1000 ? (count + 999) / 1000 : 1;
  uint64_t start = rtq__mono_ms();
  char msg[64];
  for (int64_t i = 0; i < count; i++) {
    if (seconds > 0 && ((i + 1) % every == 0 || i + 1 == count)) {
      uint64_t due = start + (uint64_t)(seconds * 1000.0 * (double)(i + 1) / (double)count);
      uint64_t now = rtq__mono_ms();
      if (due > now && rtq_task_sleep_ms(t, due - now) != 0) return 0;
    }
    snprintf(msg, sizeof msg, "%lld/%lld", (long long)(i + 1), (long long)count);
    rtq_task_progress(t, (double)(i + 1) * 100.0 / (double)count, msg);
  }
  rtq_args *r = rtq_args_new();
  if (r == NULL) return RTQ_ENOMEM;
  rtq_args_set_int(r, "reported", count);
  int rc = rtq_task_set_result(t, r);
  rtq_args_free(r);
  return rc;
}

int rtq_worker_register_demo_handlers(rtq_worker *w) {
  static const struct {
    const char *name;
    rtq_handler_fn fn;
  } list[] = {{"rtq.echo", demo_echo},   {"rtq.sleep", demo_sleep}, {"rtq.fail", demo_fail},
              {"rtq.crash", demo_crash}, {"rtq.noop", demo_noop},   {"rtq.progress", demo_progress}};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
    int rc = rtq_worker_register(w, list[i].name, list[i].fn, NULL);
    if (rc != 0) return rc;
  }
  return 0;
}
