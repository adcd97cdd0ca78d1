/*
 * demo.c - `rtq-example-producer demo`: enqueues the three examples, one
 * task it cancels while it runs and one that times out, waits for all five
 * and prints how each ended.
 *
 *   task        handler                 ends
 *   file        examples.process_file   completed (--file, 40 ms a KiB)
 *   email       examples.send_emails    completed, 10 sent and 2 failed
 *   export      examples.export_data    completed, 2000 JSON records
 *   cancelled   examples.export_data    cancelled once it has reached 5 %
 *   timeout     rtq.sleep (60 s)        timeout after its 3 s limit
 *
 * The workers need the plugin and the demo handlers:
 *   rtq-worker --plugin .../examples.so --demo-handlers
 *
 * Each task's id is printed as soon as it is enqueued ("task ID NAME
 * LABEL"), so a script can hand the ids to `rtq watch`. The exit code is 0
 * when every task ended as the table above says, 1 when one did not, 5 when
 * --timeout (default 120 s) ran out first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "producer.h"

#define NTASKS 5
#define CANCEL_AT_PERCENT 5.0

typedef struct demo_task {
  const char *label;
  const char *handler;
  const char *args_json;
  uint64_t timeout_ms;        /* 0: the worker's default */
  rtq_status expect;
  char id[RTQ_TASK_ID_SIZE];
  rtq_task *final;            /* after the wait; NULL when it did not end */
} demo_task;

enum { T_FILE, T_EMAIL, T_EXPORT, T_CANCEL, T_TIMEOUT };

static const demo_task tasks_template[NTASKS] = {
    {"file", "examples.process_file", "{\"delay_ms\": 40}", 0, RTQ_STATUS_COMPLETED, "", NULL},
    {"email", "examples.send_emails",
     "{\"recipients\": [\"ann@example.com\", \"bob@example.com\", \"carol@example.com\","
     " \"dave@bounce.example\", \"erin@example.com\", \"frank@example.com\","
     " \"grace@example.com\", \"heidi@example.com\", \"ivan@example.com\","
     " \"judy@example.com\", \"mallory@bounce.example\", \"oscar@example.com\"],"
     " \"fail\": [\"dave@bounce.example\", \"mallory@bounce.example\"],"
     " \"delay_ms\": 400, \"subject\": \"rtq demo\"}",
     0, RTQ_STATUS_COMPLETED, "", NULL},
    {"export", "examples.export_data", "{\"format\": \"json\", \"records\": 2000, \"delay_ms\": 200}",
     0, RTQ_STATUS_COMPLETED, "", NULL},
    {"cancelled", "examples.export_data",
     "{\"format\": \"csv\", \"records\": 50000, \"delay_ms\": 100}", 0, RTQ_STATUS_CANCELLED, "",
     NULL},
    {"timeout", "rtq.sleep", "{\"seconds\": 60, \"steps\": 60}", 3000, RTQ_STATUS_TIMEOUT, "", NULL},
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t left_ms(int64_t deadline) {
  int64_t left = deadline - now_ms();
  return left > 0 ? left : 0;
}

/* Enqueues d; file_path (may be NULL) is added to its arguments. */
static int enqueue(producer *p, demo_task *d, const char *file_path) {
  rtq_args *args = NULL;
  char err[128];
  int rc = rtq_args_from_json(d->args_json, &args, err, sizeof err);
  if (rc == 0 && file_path != NULL) rc = rtq_args_set_str(args, "file_path", file_path);
  if (rc != 0) {
    rtq_args_free(args);
    fprintf(stderr, "rtq-example-producer: demo arguments: %s\n", rtq_strerror(rc));
    return PRODUCER_USAGE;
  }
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.queue = p->queue;
  o.timeout_ms = d->timeout_ms;
  rc = rtq_create_task(p->client, d->handler, args, &o, d->id, NULL);
  rtq_args_free(args);
  if (rc != 0) return producer_fail(p, rc, "demo: enqueue");
  printf("task %s %s %s\n", d->id, d->handler, d->label);
  fflush(stdout);
  return PRODUCER_OK;
}

/* True when event (a JSON object) says task id is running at >= pct. */
static bool reached(const char *event, const char *id, double pct) {
  rtq_args *e = NULL;
  if (rtq_args_from_json(event, &e, NULL, 0) != 0) return false;
  char eid[RTQ_TASK_ID_SIZE], status[16];
  double progress = 0;
  bool yes = rtq_args_get_cstr(e, "id", eid, sizeof eid) == 0 && strcmp(eid, id) == 0 &&
             rtq_args_get_cstr(e, "status", status, sizeof status) == 0 &&
             strcmp(status, "running") == 0 && rtq_args_get_double(e, "progress", &progress) == 0 &&
             progress >= pct;
  rtq_args_free(e);
  return yes;
}

/*
 * Waits (on the event channel, subscribed before the task was created, so
 * no event is missed) until the task to cancel has made some progress, then
 * cancels it. A worker that never comes leaves it pending until the
 * deadline; it is cancelled then all the same.
 */
static int cancel_when_running(producer *p, rtq_subscription *sub, const demo_task *d,
                               int64_t deadline) {
  for (;;) {
    char *event = NULL;
    int rc = rtq_subscription_next(sub, left_ms(deadline), &event);
    if (rc == RTQ_ETIMEDOUT) break;
    if (rc != 0) return producer_fail(p, rc, "demo: events");
    bool go = reached(event, d->id, CANCEL_AT_PERCENT);
    free(event);
    if (go) break;
  }
  int requested = 0;
  int rc = rtq_cancel_task(p->client, d->id, &requested);
  if (rc != 0 && rc != RTQ_ESTATE) return producer_fail(p, rc, "demo: cancel");
  printf("cancel %s (%s)\n", d->id,
         rc == RTQ_ESTATE ? "it had already ended" : requested ? "asked of its running handler"
                                                             : "it was still pending");
  fflush(stdout);
  return PRODUCER_OK;
}

/* The outcome column: the result JSON or the error, cut to fit a line. */
static void outcome(const rtq_task *t, char *buf, size_t cap) {
  char *json = NULL;
  if (t == NULL) {
    snprintf(buf, cap, "did not end in time");
  } else if (t->status == RTQ_STATUS_COMPLETED && rtq_task_result_json(t, &json) == 0) {
    snprintf(buf, cap, "%s", json);
  } else {
    snprintf(buf, cap, "%s %s", t->error_code ? t->error_code : "-",
             t->error_message ? t->error_message : "");
  }
  free(json);
  if (cap > 4 && strlen(buf) > 100) memcpy(buf + 97, "...", 4);
}

static int report(const demo_task *ts) {
  int as_expected = 1, unfinished = 0;
  size_t count[RTQ_STATUS_COUNT] = {0};
  printf("\n%-10s %-26s %-10s %-10s %s\n", "TASK", "ID", "STATUS", "EXPECTED", "OUTCOME");
  for (int i = 0; i < NTASKS; i++) {
    const demo_task *d = &ts[i];
    char out[256];
    outcome(d->final, out, sizeof out);
    const char *st = d->final ? rtq_status_name(d->final->status) : "unfinished";
    printf("%-10s %-26s %-10s %-10s %s\n", d->label, d->id, st, rtq_status_name(d->expect), out);
    if (d->final == NULL) unfinished = 1;
    else count[d->final->status]++;
    if (d->final == NULL || d->final->status != d->expect) as_expected = 0;
  }
  printf("\ndemo: %zu completed, %zu cancelled, %zu timeout, %zu failed, %d unfinished: %s\n",
         count[RTQ_STATUS_COMPLETED], count[RTQ_STATUS_CANCELLED], count[RTQ_STATUS_TIMEOUT],
         count[RTQ_STATUS_FAILED], unfinished, as_expected ? "as expected" : "NOT as expected");
  if (unfinished)
    printf("demo: are workers running with --plugin examples.so --demo-handlers?\n");
  return as_expected ? PRODUCER_OK : unfinished ? PRODUCER_TIMEOUT : PRODUCER_ENDED;
}

int producer_demo(producer *p) {
  demo_task ts[NTASKS];
  memcpy(ts, tasks_template, sizeof ts);
  const char *file = p->file != NULL ? p->file : "/bin/sh";
  int64_t deadline = now_ms() + (p->timeout_ms >= 0 ? p->timeout_ms : 120000);

  rtq_subscription *sub = NULL;
  int rc = rtq_events_subscribe(p->client, &sub);
  if (rc != 0) return producer_fail(p, rc, "demo: subscribe");
  int code = PRODUCER_OK;
  for (int i = 0; i < NTASKS && code == PRODUCER_OK; i++)
    code = enqueue(p, &ts[i], i == T_FILE ? file : NULL);
  if (code == PRODUCER_OK) code = cancel_when_running(p, sub, &ts[T_CANCEL], deadline);
  rtq_subscription_free(sub);
  if (code != PRODUCER_OK) return code;

  for (int i = 0; i < NTASKS; i++) {
    rc = rtq_wait_for_task(p->client, ts[i].id, left_ms(deadline), &ts[i].final);
    if (rc != 0 && rc != RTQ_ETIMEDOUT) code = producer_fail(p, rc, "demo: wait");
  }
  int verdict = report(ts);
  for (int i = 0; i < NTASKS; i++) rtq_task_free(ts[i].final);
  return code != PRODUCER_OK ? code : verdict;
}
