/*
 * test_client_read.c - reading and changing tasks through the client
 * against a real redis-server, with the worker's part played through the
 * protocol (test_client_fake_worker.h): rtq_get_task with every field,
 * rtq_list_tasks filters and order, rtq_cancel_task in each state,
 * rtq_retry_task, rtq_get_stats, rtq_list_workers and the event stream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "keys.h"
#include "rtq/client.h"
#include "test_client_fixture.h"
#include "test_client_fake_worker.h"

static rtq_keys keys;
static rtq_client *cl;
static rtq_conn *rc_;

static int setup(void **state) {
  (void)state;
  tc_open(&keys, &cl, &rc_);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tc_close(&cl, &rc_);
  return 0;
}

static void create(const char *name, const char *queue, const char *args_json, char *id) {
  rtq_args *a = NULL;
  if (args_json != NULL) assert_int_equal(rtq_args_from_json(args_json, &a, NULL, 0), 0);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.queue = queue;
  if (rtq_create_task(cl, name, a, &o, id, NULL) != 0) fail_msg("create: %s", rtq_client_errstr(cl));
  rtq_args_free(a);
}

static void test_client_get_every_field(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create("export", "reports", "{\"year\":2026}", id);
  fake_job j;
  assert_int_equal(fw_claim(rc_, &keys, "reports", "w1", &j), 0);
  assert_string_equal(j.id, id);
  assert_int_equal(fw_progress(rc_, &keys, "w1", &j, 40, "page 4 of 10"), 0);

  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(cl, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_RUNNING);
  assert_true(t->progress == 40.0);
  assert_string_equal(t->progress_message, "page 4 of 10");
  assert_string_equal(t->worker, "w1");
  assert_int_equal(t->attempts, 1);
  assert_true(t->started_at >= t->created_at);
  assert_true(t->deadline >= t->started_at + 300000);
  rtq_task_free(t);

  char word[16];
  assert_int_equal(fw_finish_ex(rc_, &keys, "w1", &j, "failed", NULL, "E_DISK", "disk full",
                                "{\"free\":0,\"path\":\"/tmp\"}", "line 1\nline 2", "1", word),
                   0);
  assert_string_equal(word, "ok");
  fake_job_destroy(&j);
  assert_int_equal(rtq_get_task(cl, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_true(t->completed_at >= t->started_at);
  assert_string_equal(t->error_code, "E_DISK");
  assert_string_equal(t->error_message, "disk full");
  assert_string_equal(t->error_traceback, "line 1\nline 2");
  char *json = NULL;
  assert_int_equal(rtq_task_error_details_json(t, &json), 0);
  assert_string_equal(json, "{\"free\":0,\"path\":\"/tmp\"}");
  free(json);
  assert_int_equal(rtq_task_to_json(t, &json), 0);
  assert_non_null(strstr(json, "\"status\":\"failed\""));
  assert_non_null(strstr(json, "\"error\":{\"code\":\"E_DISK\",\"message\":\"disk full\","
                               "\"details\":{\"free\":0,\"path\":\"/tmp\"},"
                               "\"traceback\":\"line 1\\nline 2\"}"));
  assert_non_null(strstr(json, "\"args\":{\"year\":2026}"));
  free(json);
  rtq_task_free(t);

  /* A completed task's result. */
  create("sum", NULL, NULL, id);
  assert_int_equal(fw_run_one(rc_, &keys, "default", "w1", "[1,2,{\"ok\":true}]"), 0);
  assert_int_equal(rtq_get_task(cl, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "[1,2,{\"ok\":true}]");
  free(json);
  rtq_task_free(t);
}

static void test_client_get_errors(void **state) {
  (void)state;
  rtq_task *t = (rtq_task *)1;
  assert_int_equal(rtq_get_task(cl, "nope", &t), RTQ_ENOTFOUND);
  assert_null(t);
  assert_non_null(strstr(rtq_client_errstr(cl), "nope"));
  assert_int_equal(rtq_get_task(cl, "a b", &t), RTQ_EINVAL);
  assert_int_equal(rtq_get_task(cl, NULL, &t), RTQ_EINVAL);
  rtq_task_free(NULL);
  rtq_task_list_free(NULL);
  rtq_stats_free(NULL);
  rtq_alive_workers_free(NULL);
  rtq_subscription_free(NULL);
  /* A hash without a valid status is reported, not misread. */
  rtq_key k = rtq_keys_task(&keys, "weird");
  rtq_test_cmd_int(rc_, "HSET", k.s, "status", "sleeping", NULL);
  assert_int_equal(rtq_get_task(cl, "weird", &t), RTQ_EDECODE);
}

static void test_client_format_time(void **state) {
  (void)state;
  char buf[32];
  assert_string_equal(rtq_format_time(1764072000123ull, buf, sizeof buf), "2025-11-25T12:00:00.123Z");
  assert_string_equal(rtq_format_time(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
}

/* Ids of a list, comma-joined, for compact assertions. */
static void joined(const rtq_task_list *l, char *out, size_t cap) {
  out[0] = '\0';
  for (size_t i = 0; i < l->count; i++) {
    strncat(out, l->tasks[i]->name, cap - strlen(out) - 1);
    if (i + 1 < l->count) strncat(out, ",", cap - strlen(out) - 1);
  }
}

static void list_names(const rtq_task_filter *f, const char *want) {
  rtq_task_list *l = NULL;
  assert_int_equal(rtq_list_tasks(cl, f, &l), 0);
  char got[512];
  joined(l, got, sizeof got);
  assert_string_equal(got, want);
  assert_false(l->truncated);
  rtq_task_list_free(l);
}

static void test_client_list_filters_and_order(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  /* Created in this order: a1 (q1), b1 (q2), a2 (q1), b2 (q2), a3 (q1).
   * created_at may tie (same ms); the ids, which then decide, are given in
   * ascending order (ULIDs of one ms are random, so we choose them). */
  const char *names[] = {"a1", "b1", "a2", "b2", "a3"};
  const char *queues[] = {"q1", "q2", "q1", "q2", "q1"};
  for (int i = 0; i < 5; i++) {
    rtq_task_options o;
    memset(&o, 0, sizeof o);
    o.queue = queues[i];
    snprintf(id, sizeof id, "task-%d", i);
    o.id = id;
    assert_int_equal(rtq_create_task(cl, names[i], NULL, &o, NULL, NULL), 0);
  }
  /* b1 runs and completes; a2 starts running. */
  fake_job j;
  assert_int_equal(fw_claim(rc_, &keys, "q2", "w", &j), 0);
  assert_int_equal(fw_finish(rc_, &keys, "w", &j, "completed", "1"), 0);
  fake_job_destroy(&j);
  assert_int_equal(fw_claim(rc_, &keys, "q1", "w", &j), 0); /* a1: oldest of q1 */
  fake_job_destroy(&j);

  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  list_names(&f, "a3,b2,a2,b1,a1");
  f.statuses = RTQ_STATUS_BIT(RTQ_STATUS_PENDING);
  list_names(&f, "a3,b2,a2");
  f.statuses = RTQ_STATUS_BIT(RTQ_STATUS_RUNNING) | RTQ_STATUS_BIT(RTQ_STATUS_COMPLETED);
  list_names(&f, "b1,a1");
  memset(&f, 0, sizeof f);
  f.queue = "q1";
  list_names(&f, "a3,a2,a1");
  f.name = "a2";
  list_names(&f, "a2");
  memset(&f, 0, sizeof f);
  f.limit = 2;
  list_names(&f, "a3,b2");
  f.offset = 2;
  list_names(&f, "a2,b1");
  f.offset = 4;
  list_names(&f, "a1");
  f.offset = 5;
  list_names(&f, "");
  f.offset = 1;
  f.queue = "q2";
  list_names(&f, "b1");
  list_names(NULL, "a3,b2,a2,b1,a1");

  rtq_task_list *l = NULL;
  memset(&f, 0, sizeof f);
  f.queue = "bad queue";
  assert_int_equal(rtq_list_tasks(cl, &f, &l), RTQ_EINVAL);
  assert_null(l);
  f.queue = NULL;
  f.statuses = 1u << 9;
  assert_int_equal(rtq_list_tasks(cl, &f, &l), RTQ_EINVAL);
}

/* Creates n tasks "<prefix>%05d" in one rtq_create_tasks call: task i on
 * queue `picked` when i % every == rem, else on queue `rest`. */
static void create_many(int n, char prefix, int every, int rem, const char *picked,
                        const char *rest) {
  rtq_task_spec *specs = calloc((size_t)n, sizeof *specs);
  rtq_task_options *opts = calloc((size_t)n, sizeof *opts);
  char (*ids)[RTQ_TASK_ID_SIZE] = calloc((size_t)n, sizeof *ids);
  assert_true(specs != NULL && opts != NULL && ids != NULL);
  for (int i = 0; i < n; i++) {
    snprintf(ids[i], sizeof ids[i], "%c%05d", prefix, i);
    opts[i].id = ids[i];
    opts[i].queue = i % every == rem ? picked : rest;
    specs[i].name = "w";
    specs[i].opts = &opts[i];
  }
  if (rtq_create_tasks(cl, specs, (size_t)n) != 0) fail_msg("create: %s", rtq_client_errstr(cl));
  free(specs);
  free(opts);
  free(ids);
}

/* Listing walks windows: more tasks than one window, newest first. */
static void test_client_list_many_windows(void **state) {
  (void)state;
  enum { N = 700 };
  create_many(N, 't', 7, 0, "seven", "other");
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  f.queue = "seven";
  f.limit = 1000;
  rtq_task_list *l = NULL;
  assert_int_equal(rtq_list_tasks(cl, &f, &l), 0);
  assert_int_equal(l->count, (N + 6) / 7);
  for (size_t i = 1; i < l->count; i++) {
    assert_true(l->tasks[i - 1]->created_at >= l->tasks[i]->created_at);
    if (l->tasks[i - 1]->created_at == l->tasks[i]->created_at)
      assert_true(strcmp(l->tasks[i - 1]->id, l->tasks[i]->id) > 0);
  }
  assert_string_equal(l->tasks[l->count - 1]->id, "t00000");
  assert_true(l->examined >= N);
  rtq_task_list_free(l);
}

/* Pages with `after` until next_after is empty; marks each id "p%05d" in
 * seen[] and fails on a repeat. Returns the pages read. */
static int page_through(rtq_task_filter *f, unsigned char *seen, int n) {
  char cursor[RTQ_TASK_ID_SIZE] = "";
  int pages = 0;
  for (;;) {
    f->after = cursor[0] ? cursor : NULL;
    rtq_task_list *l = NULL;
    if (rtq_list_tasks(cl, f, &l) != 0) fail_msg("list: %s", rtq_client_errstr(cl));
    pages++;
    for (size_t i = 0; i < l->count; i++) {
      int k = atoi(l->tasks[i]->id + 1);
      assert_true(k >= 0 && k < n);
      if (seen[k]) fail_msg("%s listed twice (page %d)", l->tasks[i]->id, pages);
      seen[k] = 1;
      if (i > 0) /* newest first, by (created_at, id) */
        assert_true(l->tasks[i - 1]->created_at > l->tasks[i]->created_at ||
                    (l->tasks[i - 1]->created_at == l->tasks[i]->created_at &&
                     strcmp(l->tasks[i - 1]->id, l->tasks[i]->id) > 0));
    }
    snprintf(cursor, sizeof cursor, "%s", l->next_after);
    rtq_task_list_free(l);
    if (cursor[0] == '\0' || pages > 1000) break;
  }
  return pages;
}

/* Paging with `after` reaches every task of a backlog larger than the
 * examination cap, each exactly once, across the pending, running and
 * completed indexes (many tasks share a created_at ms: windows of one
 * score), and with a filter so rare that pages stop at the cap. */
static void test_client_list_pages_with_after(void **state) {
  (void)state;
  enum { N = 12000 };
  unsigned char *seen = calloc(N, 1);
  assert_non_null(seen);
  create_many(N, 'p', 4000, 17, "rare", "bulk");
  /* 40 run, 20 of them complete: three indexes to merge. */
  for (int i = 0; i < 40; i++) {
    fake_job j;
    assert_int_equal(fw_claim(rc_, &keys, "bulk", "w", &j), 0);
    if (i % 2 == 0) assert_int_equal(fw_finish(rc_, &keys, "w", &j, "completed", "1"), 0);
    fake_job_destroy(&j);
  }
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  f.limit = 1000;
  int pages = page_through(&f, seen, N);
  for (int i = 0; i < N; i++)
    if (!seen[i]) fail_msg("p%05d never listed", i);
  assert_int_equal(pages, N / 1000 + 1); /* the last page is empty */

  /* Three matches, 4000 entries apart: pages stop at the cap and go on. */
  memset(seen, 0, N);
  memset(&f, 0, sizeof f);
  f.queue = "rare";
  f.statuses = RTQ_STATUS_BIT(RTQ_STATUS_PENDING);
  f.limit = 10;
  page_through(&f, seen, N);
  int found = 0;
  for (int i = 0; i < N; i++) found += seen[i];
  assert_int_equal(found, 3);
  assert_true(seen[17] && seen[4017] && seen[8017]);

  /* A cursor that names nothing is an error, not an empty page. */
  memset(&f, 0, sizeof f);
  f.after = "no-such-task";
  rtq_task_list *l = NULL;
  assert_int_equal(rtq_list_tasks(cl, &f, &l), RTQ_ENOTFOUND);
  assert_null(l);
  f.after = "bad id";
  assert_int_equal(rtq_list_tasks(cl, &f, &l), RTQ_EINVAL);
  free(seen);
}

static void test_client_cancel_each_state(void **state) {
  (void)state;
  char p[RTQ_TASK_ID_SIZE], r[RTQ_TASK_ID_SIZE];
  create("pend", NULL, NULL, p);
  int requested = -1;
  assert_int_equal(rtq_cancel_task(cl, p, &requested), 0);
  assert_int_equal(requested, 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(cl, p, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  assert_string_equal(t->error_code, "CANCELLED");
  rtq_task_free(t);
  /* The worker that later takes the envelope drops it. */
  fake_job j;
  assert_int_equal(fw_claim(rc_, &keys, "default", "w", &j), RTQ_ESTATE);
  fake_job_destroy(&j);

  /* Terminal now. */
  assert_int_equal(rtq_cancel_task(cl, p, &requested), RTQ_ESTATE);
  assert_non_null(strstr(rtq_client_errstr(cl), "cancelled"));

  create("run", NULL, NULL, r);
  assert_int_equal(fw_claim(rc_, &keys, "default", "w", &j), 0);
  assert_int_equal(rtq_cancel_task(cl, r, &requested), 0);
  assert_int_equal(requested, 1);
  rtq_key flag = rtq_keys_cancel(&keys, r);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", flag.s, NULL), 1);
  assert_int_equal(rtq_get_task(cl, r, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_RUNNING);
  assert_true(t->cancel_requested > 0);
  rtq_task_free(t);
  /* The worker honours it. */
  assert_int_equal(fw_finish(rc_, &keys, "w", &j, "cancelled", NULL), 0);
  fake_job_destroy(&j);
  assert_int_equal(rtq_get_task(cl, r, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  rtq_task_free(t);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", flag.s, NULL), 0);

  assert_int_equal(rtq_cancel_task(cl, "ghost", NULL), RTQ_ENOTFOUND);
  assert_int_equal(rtq_cancel_task(cl, "bad id", NULL), RTQ_EINVAL);
}

static void test_client_retry(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.timeout_ms = 5000;
  o.result_ttl_s = 77;
  rtq_args *a = NULL;
  assert_int_equal(rtq_args_from_json("{\"k\":\"v\"}", &a, NULL, 0), 0);
  assert_int_equal(rtq_create_task(cl, "flaky", a, &o, id, NULL), 0);
  rtq_args_free(a);
  assert_int_equal(rtq_retry_task(cl, id), RTQ_ESTATE); /* pending */
  assert_non_null(strstr(rtq_client_errstr(cl), "pending"));

  fake_job j;
  assert_int_equal(fw_claim(rc_, &keys, "default", "w", &j), 0);
  assert_int_equal(fw_finish_ex(rc_, &keys, "w", &j, "failed", NULL, "E", "boom", NULL, "tb", "1",
                                NULL),
                   0);
  fake_job_destroy(&j);
  assert_int_equal(rtq_retry_task(cl, id), 0);

  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(cl, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  assert_int_equal(t->attempts, 0);
  assert_null(t->error_code);
  assert_int_equal(t->completed_at, 0);
  rtq_task_free(t);
  rtq_key k = rtq_keys_task(&keys, id);
  assert_int_equal(rtq_test_cmd_int(rc_, "TTL", k.s, NULL), -1);

  /* The new envelope carries the task's options; it runs again. */
  assert_int_equal(fw_claim(rc_, &keys, "default", "w", &j), 0);
  rtq_envelope e;
  rtq_envelope_init(&e);
  assert_int_equal(rtq_envelope_decode(j.env, j.envlen, 0, &e, NULL, 0), 0);
  assert_string_equal(e.id, id);
  assert_string_equal(e.name, "flaky");
  assert_int_equal(e.timeout_ms, 5000);
  assert_int_equal(e.result_ttl_s, 77);
  char *json = NULL;
  assert_int_equal(rtq_msgpack_to_json(e.args, e.args_len, &json), 0);
  assert_string_equal(json, "{\"k\":\"v\"}");
  free(json);
  rtq_envelope_destroy(&e);
  assert_int_equal(j.attempt, 1);
  assert_int_equal(fw_finish(rc_, &keys, "w", &j, "completed", NULL), 0);
  fake_job_destroy(&j);
  assert_int_equal(rtq_retry_task(cl, id), RTQ_ESTATE); /* completed */
  assert_int_equal(rtq_retry_task(cl, "ghost"), RTQ_ENOTFOUND);
  assert_int_equal(rtq_retry_task(cl, ""), RTQ_EINVAL);
}

static uint64_t counter(const rtq_queue_stats *q, const char *name) {
  for (size_t i = 0; i < q->ncounters; i++)
    if (strcmp(q->counters[i].name, name) == 0) return q->counters[i].value;
  return 0;
}

static void test_client_stats_and_workers(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 3; i++) create("s", "alpha", NULL, id);
  create("s", "beta", NULL, id);
  assert_int_equal(fw_run_one(rc_, &keys, "alpha", "w-1", NULL), 0);
  fake_job j;
  assert_int_equal(fw_claim(rc_, &keys, "alpha", "w-1", &j), 0);
  fake_job_destroy(&j);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.delay_ms = 100000;
  assert_int_equal(rtq_create_task(cl, "later", NULL, &o, NULL, NULL), 0);
  assert_int_equal(fw_heartbeat(rc_, &keys, "w-1", "host-a", "4242", "alpha,beta", "1", "8"), 0);
  assert_int_equal(fw_heartbeat(rc_, &keys, "w-2", "host-b", "99", "beta", "0", "2"), 0);
  /* A worker whose last heartbeat is a minute old is not alive. */
  rtq_key ws = rtq_keys_workers(&keys);
  rtq_test_cmd_int(rc_, "ZADD", ws.s, "1000", "w-dead", NULL);

  rtq_stats *s = NULL;
  assert_int_equal(rtq_get_stats(cl, &s), 0);
  assert_true(s->now > 0);
  assert_int_equal(s->nqueues, 3);
  assert_string_equal(s->queues[0].name, "alpha");
  assert_int_equal(s->queues[0].backlog, 1);
  assert_int_equal(counter(&s->queues[0], "enqueued"), 3);
  assert_int_equal(counter(&s->queues[0], "completed"), 1);
  assert_string_equal(s->queues[1].name, "beta");
  assert_int_equal(s->queues[1].backlog, 1);
  assert_string_equal(s->queues[2].name, "default");
  assert_int_equal(s->queues[2].backlog, 0);
  assert_int_equal(s->by_status[RTQ_STATUS_PENDING], 3);
  assert_int_equal(s->by_status[RTQ_STATUS_RUNNING], 1);
  assert_int_equal(s->by_status[RTQ_STATUS_COMPLETED], 1);
  assert_int_equal(s->running, 1);
  assert_int_equal(s->delayed, 1);
  assert_int_equal(s->workers_alive, 2);
  rtq_stats_free(s);

  rtq_alive_workers *w = NULL;
  assert_int_equal(rtq_list_workers(cl, &w), 0);
  assert_int_equal(w->count, 2);
  const rtq_alive_worker *a = strcmp(w->workers[0].id, "w-1") == 0 ? &w->workers[0] : &w->workers[1];
  assert_string_equal(a->id, "w-1");
  assert_string_equal(a->host, "host-a");
  assert_int_equal(a->pid, 4242);
  assert_string_equal(a->queues, "alpha,beta");
  assert_int_equal(a->busy, 1);
  assert_int_equal(a->slots, 8);
  assert_int_equal(a->started_at, 1700000000000ull);
  assert_true(a->last_seen <= w->now && w->now - a->last_seen < 30000);
  rtq_alive_workers_free(w);
}

static void test_client_event_subscription(void **state) {
  (void)state;
  rtq_subscription *s = NULL;
  assert_int_equal(rtq_events_subscribe(cl, &s), 0);
  char *msg = NULL;
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_subscription_next(s, 100, &msg), RTQ_ETIMEDOUT);
  assert_true(rtq_test_now_ms() - t0 >= 100);
  assert_null(msg);
  /* Still usable after a timeout. */
  char id[RTQ_TASK_ID_SIZE];
  create("ev", NULL, NULL, id);
  assert_int_equal(rtq_subscription_next(s, 5000, &msg), 0);
  assert_non_null(strstr(msg, id));
  assert_non_null(strstr(msg, "\"pending\""));
  free(msg);
  fake_job j;
  assert_int_equal(fw_claim(rc_, &keys, "default", "w", &j), 0);
  assert_int_equal(fw_progress(rc_, &keys, "w", &j, 55, "half"), 0);
  assert_int_equal(rtq_subscription_next(s, 5000, &msg), 0);
  assert_non_null(strstr(msg, "\"running\""));
  free(msg);
  assert_int_equal(rtq_subscription_next(s, 5000, &msg), 0);
  assert_non_null(strstr(msg, "\"progress\":55"));
  free(msg);
  fake_job_destroy(&j);
  rtq_subscription_free(s);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_client_get_every_field),   T(test_client_get_errors),
      T(test_client_format_time),       T(test_client_list_filters_and_order),
      T(test_client_list_many_windows), T(test_client_list_pages_with_after),
      T(test_client_cancel_each_state),
      T(test_client_retry),             T(test_client_stats_and_workers),
      T(test_client_event_subscription),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
