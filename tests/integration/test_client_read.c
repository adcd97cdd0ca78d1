/*
 * test_client_read.c - reading through the client under protocol 2 against
 * a real redis-server, with the worker's part played through the v2
 * scripts (test_client_fake_worker2.h): get's argument errors,
 * rtq_format_time, paging with `after` through a backlog larger than the
 * examination cap, rtq_get_stats and rtq_list_workers with a dead worker
 * left out, and the event stream (a timeout, then pending, running and
 * progress events).
 *
 * Elsewhere: every field of a task, cancel and retry in each state
 * (test_client_task2), filters, order and windows (test_client_list2),
 * the unbatching of v2's events (test_client_ops2).
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
#include "keys2.h"
#include "rtq/client.h"
#include "test_client_fake_worker2.h"
#include "test_client_fixture2.h"

static void create(const char *name, const char *queue, const char *args_json, char *id) {
  rtq_args *a = NULL;
  if (args_json != NULL) assert_int_equal(rtq_args_from_json(args_json, &a, NULL, 0), 0);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.queue = queue;
  if (rtq_create_task(CL, name, a, &o, id, NULL) != 0) fail_msg("create: %s", rtq_client_errstr(CL));
  rtq_args_free(a);
}

/* A heartbeat of worker wid at Redis's now, or a minute before. */
static void heartbeat(const char *wid, bool alive) {
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(C, &ms), 0);
  char score[32];
  snprintf(score, sizeof score, "%llu", (unsigned long long)(alive ? ms : ms - 60000));
  rtq_test_cmd_int(C, "ZADD", rtq_keys2_workers(&K).s, score, wid, NULL);
}

static void test_client_get_errors(void **state) {
  (void)state;
  rtq_task *t = (rtq_task *)1;
  assert_int_equal(rtq_get_task(CL, "nope", &t), RTQ_ENOTFOUND);
  assert_null(t);
  assert_non_null(strstr(rtq_client_errstr(CL), "nope"));
  assert_int_equal(rtq_get_task(CL, "a b", &t), RTQ_EINVAL);
  assert_int_equal(rtq_get_task(CL, NULL, &t), RTQ_EINVAL);
  rtq_task_free(NULL);
  rtq_task_list_free(NULL);
  rtq_stats_free(NULL);
  rtq_alive_workers_free(NULL);
  rtq_subscription_free(NULL);
  /* A hash without a valid status is reported, not misread. */
  rtq_test_cmd_int(C, "SADD", rtq_keys2_queues(&K).s, "default", NULL);
  rtq_key2 k = rtq_keys2_task(&K, "default", "weird");
  rtq_test_cmd_int(C, "HSET", k.s, "s", "sleeping", NULL);
  assert_int_equal(rtq_get_task(CL, "weird", &t), RTQ_EDECODE);
}

static void test_client_format_time(void **state) {
  (void)state;
  char buf[32];
  assert_string_equal(rtq_format_time(1764072000123ull, buf, sizeof buf), "2025-11-25T12:00:00.123Z");
  assert_string_equal(rtq_format_time(0, buf, sizeof buf), "1970-01-01T00:00:00.000Z");
}

/* Creates n tasks "<prefix>%05d" on queue in one rtq_create_tasks call:
 * task i named `picked` when i % every == rem, else `rest`. */
static void create_many(const char *queue, int n, char prefix, int every, int rem, const char *picked,
                        const char *rest) {
  rtq_task_spec *specs = calloc((size_t)n, sizeof *specs);
  rtq_task_options *opts = calloc((size_t)n, sizeof *opts);
  char (*ids)[RTQ_TASK_ID_SIZE] = calloc((size_t)n, sizeof *ids);
  assert_true(specs != NULL && opts != NULL && ids != NULL);
  for (int i = 0; i < n; i++) {
    snprintf(ids[i], sizeof ids[i], "%c%05d", prefix, i);
    opts[i].id = ids[i];
    opts[i].queue = queue;
    specs[i].name = i % every == rem ? picked : rest;
    specs[i].opts = &opts[i];
  }
  if (rtq_create_tasks(CL, specs, (size_t)n) != 0) fail_msg("create: %s", rtq_client_errstr(CL));
  free(specs);
  free(opts);
  free(ids);
}

/* Pages with `after` until next_after is empty; marks each id "p%05d" in
 * seen[] and fails on a repeat. Returns the pages read; *capped counts
 * the pages the examination cap ended. */
static int page_through(rtq_task_filter *f, unsigned char *seen, int n, int *capped) {
  char cursor[RTQ_TASK_ID_SIZE] = "";
  int pages = 0;
  *capped = 0;
  for (;;) {
    f->after = cursor[0] ? cursor : NULL;
    rtq_task_list *l = NULL;
    if (rtq_list_tasks(CL, f, &l) != 0) fail_msg("list: %s", rtq_client_errstr(CL));
    pages++;
    assert_true(l->examined <= RTQ_LIST_MAX_EXAMINED);
    *capped += l->truncated;
    for (size_t i = 0; i < l->count; i++) {
      int k = atoi(l->tasks[i]->id + 1);
      assert_true(k >= 0 && k < n);
      if (seen[k]) fail_msg("%s listed twice (page %d)", l->tasks[i]->id, pages);
      seen[k] = 1;
    }
    snprintf(cursor, sizeof cursor, "%s", l->next_after);
    rtq_task_list_free(l);
    if (cursor[0] == '\0' || pages > 1000) break;
  }
  return pages;
}

/* Paging with `after` reaches every task of a backlog larger than the
 * examination cap, each exactly once, across the pending, running and
 * completed sources, and with a filter so rare that pages stop at the cap
 * and go on. */
static void test_client_list_pages_with_after(void **state) {
  (void)state;
  enum { N = 12000 };
  unsigned char *seen = calloc(N, 1);
  assert_non_null(seen);
  create_many("bulk", N, 'p', 4000, 117, "rare", "w");
  /* 40 run under a live worker, 20 of them complete: three sources. */
  heartbeat("w", true);
  for (int i = 0; i < 40; i++) {
    fake_job2 j;
    assert_int_equal(fw2_take(C, &K, "bulk", "w", &j), 0);
    if (i % 2 == 0) assert_int_equal(fw2_end(C, &K, &j, RTQ_STATUS_COMPLETED), 0);
  }
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  f.limit = 1000;
  int capped = 0;
  int pages = page_through(&f, seen, N, &capped);
  for (int i = 0; i < N; i++)
    if (!seen[i]) fail_msg("p%05d never listed", i);
  assert_true(pages >= N / 1000 && pages <= N / 1000 + 1);

  /* Three matches, 4000 entries apart: pages stop at the cap and go on. */
  memset(seen, 0, N);
  memset(&f, 0, sizeof f);
  f.name = "rare";
  f.statuses = RTQ_STATUS_BIT(RTQ_STATUS_PENDING);
  f.limit = 10;
  page_through(&f, seen, N, &capped);
  assert_true(capped >= 1);
  int found = 0;
  for (int i = 0; i < N; i++) found += seen[i];
  assert_int_equal(found, 3);
  assert_true(seen[117] && seen[4117] && seen[8117]);

  /* A cursor that names nothing is an error, not an empty page. */
  memset(&f, 0, sizeof f);
  f.after = "no-such-task";
  rtq_task_list *l = NULL;
  assert_int_equal(rtq_list_tasks(CL, &f, &l), RTQ_ENOTFOUND);
  assert_null(l);
  f.after = "bad id";
  assert_int_equal(rtq_list_tasks(CL, &f, &l), RTQ_EINVAL);
  free(seen);
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
  assert_int_equal(rtq_scripts2_load(C), 0);
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "alpha", "w-1", &j), 0);
  assert_int_equal(fw2_end(C, &K, &j, RTQ_STATUS_COMPLETED), 0);
  assert_int_equal(fw2_take(C, &K, "alpha", "w-1", &j), 0);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.delay_ms = 100000;
  assert_int_equal(rtq_create_task(CL, "later", NULL, &o, NULL, NULL), 0);
  rtq__field2 w1[] = {{"host", "host-a"}, {"pid", "4242"}, {"queues", "alpha,beta"}, {"busy", "1"},
                      {"slots", "8"}, {"started_at", "1700000000000"}};
  rtq__field2 w2[] = {{"host", "host-b"}, {"pid", "99"}, {"queues", "beta"}, {"busy", "0"}, {"slots", "2"},
                      {"started_at", "1700000000000"}};
  const char *wids[] = {"w-1", "w-2", "w-dead"};
  const rtq__field2 *fields[] = {w1, w2, w2};
  for (int i = 0; i < 3; i++) {
    rtq_argv a;
    rtq_argv_init(&a);
    assert_int_equal(rtq__call2_heartbeat(&a, &K, false, wids[i], 30000, fields[i], 6), 0);
    redisReply *r = NULL;
    assert_int_equal(rtq_script2_run(C, &a, &r), 0);
    freeReplyObject(r);
    rtq_argv_destroy(&a);
  }
  /* A worker whose last heartbeat is a minute old is not alive. */
  heartbeat("w-dead", false);

  rtq_stats *s = NULL;
  assert_int_equal(rtq_get_stats(CL, &s), 0);
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
  assert_int_equal(rtq_list_workers(CL, &w), 0);
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
  /* The stream follows the queues of the registry. */
  rtq_test_cmd_int(C, "SADD", rtq_keys2_queues(&K).s, "default", NULL);
  rtq_subscription *s = NULL;
  assert_int_equal(rtq_events_subscribe(CL, &s), 0);
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
  assert_int_equal(rtq_scripts2_load(C), 0);
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "default", "w", &j), 0);
  assert_int_equal(fw2_progress(C, &K, &j, 55, "half"), 0);
  assert_int_equal(rtq_subscription_next(s, 5000, &msg), 0);
  assert_non_null(strstr(msg, "\"running\""));
  free(msg);
  assert_int_equal(rtq_subscription_next(s, 5000, &msg), 0);
  assert_non_null(strstr(msg, "\"progress\":55"));
  free(msg);
  rtq_subscription_free(s);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_client_get_errors),        T(test_client_format_time),
      T(test_client_list_pages_with_after), T(test_client_stats_and_workers),
      T(test_client_event_subscription),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
