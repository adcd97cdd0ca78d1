/*
 * test_client_threads.c - one rtq_client shared by 8 threads for 10,000
 * operations (creates, reads, listings, batches and deliberate errors),
 * with a pool smaller than the thread count so threads queue for
 * connections. Afterwards every task a thread created must exist with
 * exactly its fields, no task may be lost or duplicated, and each thread
 * must have read only its own error details.
 */
#include <pthread.h>
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

#define THREADS 8
#define OPS_PER_THREAD 1250 /* 8 x 1250 = 10,000 operations */

typedef struct worker_state {
  pthread_t th;
  int index;
  rtq_client *c;
  char (*ids)[RTQ_TASK_ID_SIZE];
  int *seq;          /* the "i" each created task carries */
  int nids;
  int failures;      /* calls that failed unexpectedly */
  int mismatches;    /* a read that did not match what was written */
  int foreign_errs;  /* an error detail that was not this thread's */
  char first_problem[256];
} worker_state;

static void problem(worker_state *w, int *counter, const char *what, const char *detail) {
  if (w->first_problem[0] == '\0')
    snprintf(w->first_problem, sizeof w->first_problem, "%s: %s", what, detail);
  (*counter)++;
}

static void do_create(worker_state *w, int i) {
  rtq_args *a = rtq_args_new();
  rtq_args_set_int(a, "t", w->index);
  rtq_args_set_int(a, "i", i);
  char name[32], queue[32];
  snprintf(name, sizeof name, "thr%d", w->index);
  snprintf(queue, sizeof queue, "q%d", w->index % 3);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.queue = queue;
  int created = 0;
  int rc = rtq_create_task(w->c, name, a, &o, w->ids[w->nids], &created);
  rtq_args_free(a);
  if (rc != 0 || !created) {
    problem(w, &w->failures, "create", rtq_client_errstr(w->c));
    return;
  }
  w->seq[w->nids++] = i;
}

/* Reads back one of this thread's tasks and compares every field set. */
static void do_get(worker_state *w, int pick) {
  if (w->nids == 0) return;
  int k = pick % w->nids;
  rtq_task *t = NULL;
  int rc = rtq_get_task(w->c, w->ids[k], &t);
  if (rc != 0) {
    problem(w, &w->failures, "get", rtq_client_errstr(w->c));
    return;
  }
  char want[64], name[32];
  snprintf(want, sizeof want, "{\"t\":%d,\"i\":%d}", w->index, w->seq[k]);
  snprintf(name, sizeof name, "thr%d", w->index);
  char *json = NULL;
  if (rtq_task_args_json(t, &json) != 0 || strcmp(json, want) != 0 || strcmp(t->name, name) != 0 ||
      strcmp(t->id, w->ids[k]) != 0 || t->status != RTQ_STATUS_PENDING)
    problem(w, &w->mismatches, "get", json != NULL ? json : "?");
  free(json);
  rtq_task_free(t);
}

/* A bad call: its detail must name this thread's own bad input. */
static void do_bad(worker_state *w, int i) {
  char bad[64];
  snprintf(bad, sizeof bad, "bad name %d-%d", w->index, i);
  int rc = rtq_create_task(w->c, bad, NULL, NULL, NULL, NULL);
  if (rc != RTQ_EINVAL) problem(w, &w->failures, "bad create", "accepted");
  if (strstr(rtq_client_errstr(w->c), bad) == NULL)
    problem(w, &w->foreign_errs, "errstr", rtq_client_errstr(w->c));
}

static void do_list(worker_state *w) {
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  f.limit = 3;
  f.statuses = RTQ_STATUS_BIT(RTQ_STATUS_PENDING);
  rtq_task_list *l = NULL;
  if (rtq_list_tasks(w->c, &f, &l) != 0) problem(w, &w->failures, "list", rtq_client_errstr(w->c));
  else if (rtq_client_errstr(w->c)[0] != '\0') problem(w, &w->foreign_errs, "list errstr", "set");
  rtq_task_list_free(l);
}

/* A small batch: 5 tasks in one round trip. */
static void do_batch(worker_state *w, int i) {
  rtq_task_spec specs[5];
  rtq_args *args[5];
  char name[32];
  snprintf(name, sizeof name, "thr%d", w->index);
  memset(specs, 0, sizeof specs);
  for (int k = 0; k < 5; k++) {
    args[k] = rtq_args_new();
    rtq_args_set_int(args[k], "t", w->index);
    rtq_args_set_int(args[k], "i", i * 10 + k);
    specs[k].name = name;
    specs[k].args = args[k];
  }
  char queue[32];
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  snprintf(queue, sizeof queue, "q%d", w->index % 3);
  o.queue = queue;
  for (int k = 0; k < 5; k++) specs[k].opts = &o;
  if (rtq_create_tasks(w->c, specs, 5) != 0) problem(w, &w->failures, "batch", rtq_client_errstr(w->c));
  for (int k = 0; k < 5; k++) {
    if (specs[k].rc == 0) {
      memcpy(w->ids[w->nids], specs[k].id, RTQ_TASK_ID_SIZE);
      w->seq[w->nids++] = i * 10 + k;
    }
    rtq_args_free(args[k]);
  }
}

static void *thread_main(void *arg) {
  worker_state *w = arg;
  for (int i = 0; i < OPS_PER_THREAD; i++) {
    if (i % 50 == 49)
      do_bad(w, i);
    else if (i % 100 == 98)
      do_list(w);
    else if (i % 100 == 97)
      do_batch(w, i);
    else if (i % 4 == 3)
      do_get(w, i * 7919);
    else
      do_create(w, i);
  }
  return NULL;
}

static void test_client_threads_share_one_client(void **state) {
  (void)state;
  rtq_test_redis_flush();
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.pool_size = 4; /* fewer connections than threads */
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&o, &c), 0);

  worker_state w[THREADS];
  memset(w, 0, sizeof w);
  for (int t = 0; t < THREADS; t++) {
    w[t].index = t;
    w[t].c = c;
    w[t].ids = calloc(OPS_PER_THREAD * 2, sizeof *w[t].ids);
    w[t].seq = calloc(OPS_PER_THREAD * 2, sizeof *w[t].seq);
  }
  uint64_t t0 = rtq_test_now_ms();
  for (int t = 0; t < THREADS; t++) assert_int_equal(pthread_create(&w[t].th, NULL, thread_main, &w[t]), 0);
  for (int t = 0; t < THREADS; t++) pthread_join(w[t].th, NULL);
  print_message("8 threads x %d operations: %llu ms\n", OPS_PER_THREAD,
                (unsigned long long)(rtq_test_now_ms() - t0));

  int total = 0;
  for (int t = 0; t < THREADS; t++) {
    if (w[t].first_problem[0] != '\0') print_message("thread %d: %s\n", t, w[t].first_problem);
    assert_int_equal(w[t].failures, 0);
    assert_int_equal(w[t].mismatches, 0);
    assert_int_equal(w[t].foreign_errs, 0);
    total += w[t].nids;
  }

  /* No task lost, none duplicated, each exactly as written. */
  rtq_conn *rc = rtq_test_conn();
  rtq_keys2 keys2;
  rtq_keys2_init(&keys2, "rtq");
  long long queued = 0;
  for (int q = 0; q < 3; q++) {
    char name[8];
    snprintf(name, sizeof name, "q%d", q);
    queued += rtq_test_cmd_int(rc, "LLEN", rtq_keys2_queue(&keys2, name).s, NULL);
  }
  /* The queues are the pending set. */
  assert_int_equal(queued, total);
  for (int t = 0; t < THREADS; t++) {
    for (int k = 0; k < w[t].nids; k++) {
      rtq_task *task = NULL;
      assert_int_equal(rtq_get_task(c, w[t].ids[k], &task), 0);
      char want[64], name[32], queue[8];
      snprintf(want, sizeof want, "{\"t\":%d,\"i\":%d}", t, w[t].seq[k]);
      snprintf(name, sizeof name, "thr%d", t);
      snprintf(queue, sizeof queue, "q%d", t % 3);
      char *json = NULL;
      assert_int_equal(rtq_task_args_json(task, &json), 0);
      assert_string_equal(json, want);
      assert_string_equal(task->name, name);
      assert_string_equal(task->queue, queue);
      free(json);
      rtq_task_free(task);
    }
    free(w[t].ids);
    free(w[t].seq);
  }
  rtq_conn_free(rc);
  rtq_client_free(c);
}

/* Two clients on one thread keep their details apart, and a success
 * clears the previous detail. */
static void test_client_errstr_per_client(void **state) {
  (void)state;
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  rtq_client *a = NULL, *b = NULL;
  assert_int_equal(rtq_client_new(&o, &a), 0);
  assert_int_equal(rtq_client_new(&o, &b), 0);
  assert_int_equal(rtq_get_task(a, "missing-a", &(rtq_task *){NULL}), RTQ_ENOTFOUND);
  assert_non_null(strstr(rtq_client_errstr(a), "missing-a"));
  assert_string_equal(rtq_client_errstr(b), "");
  assert_int_equal(rtq_create_task(a, "ok", NULL, NULL, NULL, NULL), 0);
  assert_string_equal(rtq_client_errstr(a), "");
  rtq_client_free(a);
  rtq_client_free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_client_threads_share_one_client),
      cmocka_unit_test(test_client_errstr_per_client),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
