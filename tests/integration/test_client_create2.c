/*
 * test_client_create2.c - enqueueing under protocol 2 on a private
 * redis-server (the client given protocol 2 explicitly):
 * ids carry their queue's slot, options land in the short fields of the
 * task hash, caller-supplied ids are idempotent per queue, and batches are
 * split per queue and into calls of at most 64 tasks and 256 KiB of args.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "test_client_fixture2.h"

/* Field f of task id in queue q (malloc'd; NULL when absent). */
static char *field(const char *q, const char *id, const char *f) {
  return rtq_test_cmd_str(C, "HGET", rtq_keys2_task(&K, q, id).s, f, NULL);
}

static void assert_field(const char *q, const char *id, const char *f, const char *want) {
  char *v = field(q, id, f);
  if (want == NULL) {
    assert_null(v);
    return;
  }
  assert_non_null(v);
  assert_string_equal(v, want);
  free(v);
}

/* How many script calls Redis ran since the last CONFIG RESETSTAT. */
static long long script_calls(void) {
  redisReply *r = rtq_test_command(C, "INFO", "commandstats", NULL);
  long long n = 0;
  const char *names[] = {"cmdstat_evalsha:calls=", "cmdstat_eval:calls="};
  for (int i = 0; i < 2; i++) {
    const char *p = strstr(r->str, names[i]);
    if (p != NULL) n += atoll(p + strlen(names[i]));
  }
  freeReplyObject(r);
  return n;
}

/* How many HGETs Redis ran since the last CONFIG RESETSTAT (scripts'
 * included): create looks an id up with one. */
static long long hgets(void) {
  redisReply *r = rtq_test_command(C, "INFO", "commandstats", NULL);
  const char *p = strstr(r->str, "cmdstat_hget:calls=");
  long long n = p != NULL ? atoll(p + strlen("cmdstat_hget:calls=")) : 0;
  freeReplyObject(r);
  return n;
}

static void test_client_create2_id_carries_the_slot(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  rtq_args *a = rtq_args_new();
  rtq_args_set_str(a, "to", "ann");
  rtq_task_options o = {.queue = "mail"};
  int created = -1;
  rtq_test_cmd_ok(C, "CONFIG", "RESETSTAT", NULL);
  assert_int_equal(rtq_create_task(CL, "send", a, &o, id, &created), 0);
  rtq_args_free(a);
  assert_int_equal(created, 1);
  /* One task, awaited: its id is looked up even though it was made here,
   * so that a send repeated after a lost connection finds it. */
  assert_int_equal(hgets(), 1);
  assert_int_equal(strlen(id), RTQ_ID2_LEN);
  assert_int_equal(rtq_id2_slot(id), rtq_keys2_slot(&K, "mail"));
  assert_field("mail", id, "s", "pending");
  assert_field("mail", id, "n", "send");
  char *x = field("mail", id, "x");
  assert_non_null(x); /* {"to": "ann"}: a map of one entry */
  assert_int_equal((unsigned char)x[0], 0x81);
  free(x);
  assert_int_equal(rtq_test_cmd_int(C, "SISMEMBER", "{rtq}:queues", "mail", NULL), 1);
  char *head = rtq_test_cmd_str(C, "LINDEX", rtq_keys2_queue(&K, "mail").s, "0", NULL);
  assert_string_equal(head, id);
  free(head);
  /* The default queue, no args: no x field at all. */
  assert_int_equal(rtq_create_task(CL, "noop", NULL, NULL, id, NULL), 0);
  assert_int_equal(rtq_id2_slot(id), rtq_keys2_slot(&K, "default"));
  assert_field("default", id, "s", "pending");
  assert_field("default", id, "x", NULL);
}

static void test_client_create2_options(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  rtq_task_options o = {.queue = "q", .timeout_ms = 1500, .max_retries = 3,
                        .result_ttl_s = 60, .retry_backoff_ms = 250};
  assert_int_equal(rtq_create_task_json(CL, "t", "{\"n\": 1}", &o, id, NULL), 0);
  assert_field("q", id, "to", "1500");
  assert_field("q", id, "mr", "3");
  assert_field("q", id, "rt", "60");
  assert_field("q", id, "bo", "250");
  assert_field("q", id, "ra", NULL);
  /* Delayed: in the delayed set, not the queue. */
  rtq_task_options d = {.queue = "q", .delay_ms = 60000};
  assert_int_equal(rtq_create_task(CL, "t", NULL, &d, id, NULL), 0);
  char *ra = field("q", id, "ra");
  assert_non_null(ra);
  free(ra);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_delayed(&K, "q").s, NULL), 1);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "q").s, NULL), 1);
  /* run_at: that due time, in the delayed set too. */
  redisReply *tm = rtq_test_command(C, "TIME", NULL);
  unsigned long long due = (unsigned long long)atoll(tm->element[0]->str) * 1000 + 3600000;
  freeReplyObject(tm);
  char want[32];
  snprintf(want, sizeof want, "%llu", due);
  rtq_task_options at = {.queue = "q", .run_at_ms = due};
  assert_int_equal(rtq_create_task(CL, "t", NULL, &at, id, NULL), 0);
  assert_field("q", id, "ra", want);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_delayed(&K, "q").s, NULL), 2);
  /* Bounds the script has that v1 does not: refused here, nothing sent. */
  rtq_task_options bad = {.queue = "q", .max_retries = 5000};
  assert_int_equal(rtq_create_task(CL, "t", NULL, &bad, id, NULL), RTQ_ERANGE);
  assert_string_equal(id, "");
  rtq_task_options both = {.queue = "q", .delay_ms = 5, .run_at_ms = 5};
  assert_int_equal(rtq_create_task(CL, "t", NULL, &both, id, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_create_task(CL, "bad name", NULL, NULL, id, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_create_task_json(CL, "t", "[1]", NULL, id, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "q").s, NULL), 1);
}

static void test_client_create2_caller_ids_per_queue(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  int created = -1;
  rtq_task_options o = {.queue = "a", .id = "order-17"};
  assert_int_equal(rtq_create_task(CL, "t", NULL, &o, id, &created), 0);
  assert_string_equal(id, "order-17");
  assert_int_equal(created, 1);
  /* Again: the task that is there, nothing enqueued. */
  assert_int_equal(rtq_create_task(CL, "other", NULL, &o, id, &created), 0);
  assert_int_equal(created, 0);
  assert_field("a", "order-17", "n", "t");
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "a").s, NULL), 1);
  /* The same id on another queue is another task. */
  rtq_task_options ob = {.queue = "b", .id = "order-17"};
  assert_int_equal(rtq_create_task(CL, "t", NULL, &ob, id, &created), 0);
  assert_int_equal(created, 1);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "b").s, NULL), 1);
  /* opts->id may be id_out itself. */
  char same[RTQ_TASK_ID_SIZE] = "self-1";
  rtq_task_options os = {.queue = "a", .id = same};
  assert_int_equal(rtq_create_task(CL, "t", NULL, &os, same, &created), 0);
  assert_string_equal(same, "self-1");
  assert_int_equal(created, 1);
}

static void test_client_create2_long_args_in_side_hash(void **state) {
  (void)state;
  char big[300];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  rtq_args *a = rtq_args_new();
  rtq_args_set_str(a, "blob", big);
  char id[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(CL, "t", a, NULL, id, NULL), 0);
  rtq_args_free(a);
  assert_field("default", id, "xs", "1");
  assert_field("default", id, "x", NULL);
  assert_int_equal(rtq_test_cmd_int(C, "HEXISTS", rtq_keys2_side(&K, "default", id).s, "x", NULL), 1);
}

static void test_client_create2_batch_split_by_count_and_queue(void **state) {
  (void)state;
  enum { N = 200 };
  rtq_task_spec *s = calloc(N, sizeof *s);
  rtq_task_options oa = {.queue = "qa"}, ob = {.queue = "qb"};
  for (int i = 0; i < N; i++) {
    s[i].name = "t";
    s[i].opts = i % 4 == 0 ? &ob : &oa; /* 50 on qb, 150 on qa */
  }
  s[7].name = "bad name"; /* fails alone */
  rtq_test_cmd_ok(C, "CONFIG", "RESETSTAT", NULL);
  assert_int_equal(rtq_create_tasks(CL, s, N), RTQ_EINVAL);
  /* Per 128 tasks, per queue, at most 64 per call: tasks 0..127 hold 95
   * valid on qa (64 + 31) and 32 on qb, tasks 128..199 54 on qa and 18 on
   * qb: 5 calls. */
  assert_int_equal(script_calls(), 5);
  /* The ids were made for these calls: sent fresh, none looked up. */
  assert_int_equal(hgets(), 0);
  assert_int_equal(s[7].rc, RTQ_EINVAL);
  assert_string_equal(s[7].id, "");
  assert_non_null(strstr(rtq_client_errstr(CL), "task 7"));
  for (int i = 0; i < N; i++) {
    if (i == 7) continue;
    assert_int_equal(s[i].rc, 0);
    assert_int_equal(s[i].created, 1);
    const char *q = i % 4 == 0 ? "qb" : "qa";
    assert_int_equal(rtq_id2_slot(s[i].id), rtq_keys2_slot(&K, q));
  }
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "qa").s, NULL), 149);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "qb").s, NULL), 50);
  /* Pending oldest first from the right: the batch's order within a queue. */
  char *first = rtq_test_cmd_str(C, "LINDEX", rtq_keys2_queue(&K, "qa").s, "-1", NULL);
  assert_string_equal(first, s[1].id);
  free(first);
  /* Sent again with its own ids: nothing new. */
  rtq_task_options *again = calloc(N, sizeof *again);
  for (int i = 0; i < N; i++) {
    again[i] = *s[i].opts;
    again[i].id = s[i].id;
    s[i].opts = &again[i];
  }
  s[7].name = "t";
  s[7].opts = &oa;
  rtq_test_cmd_ok(C, "CONFIG", "RESETSTAT", NULL);
  assert_int_equal(rtq_create_tasks(CL, s, N), 0);
  /* Caller's ids (task 7's is made, but its call holds the others): each
   * looked up. */
  assert_int_equal(hgets(), N);
  int made = 0;
  for (int i = 0; i < N; i++) made += s[i].created;
  assert_int_equal(made, 1); /* task 7 only */
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "qa").s, NULL), 150);
  free(again);
  free(s);
}

static void test_client_create2_batch_split_by_bytes(void **state) {
  (void)state;
  enum { N = 10 };
  /* 10 x 40 KiB of args: 6 fit under 256 KiB, so two calls. */
  char *big = malloc(40 * 1024 + 1);
  memset(big, 'y', 40 * 1024);
  big[40 * 1024] = '\0';
  rtq_args *a = rtq_args_new();
  rtq_args_set_str(a, "b", big);
  rtq_task_spec s[N];
  memset(s, 0, sizeof s);
  for (int i = 0; i < N; i++) s[i].name = "t", s[i].args = a;
  rtq_test_cmd_ok(C, "CONFIG", "RESETSTAT", NULL);
  assert_int_equal(rtq_create_tasks(CL, s, N), 0);
  assert_int_equal(script_calls(), 2);
  for (int i = 0; i < N; i++) assert_int_equal(s[i].created, 1);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "default").s, NULL), N);
  rtq_args_free(a);
  free(big);
}

static void test_client_create2_batch_noscript(void **state) {
  (void)state;
  rtq_task_spec s[100];
  memset(s, 0, sizeof s);
  for (int i = 0; i < 100; i++) s[i].name = "t";
  rtq_test_cmd_ok(C, "SCRIPT", "FLUSH", NULL);
  assert_int_equal(rtq_create_tasks(CL, s, 100), 0);
  for (int i = 0; i < 100; i++) assert_int_equal(s[i].created, 1);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "default").s, NULL), 100);
}

/* A batch whose second call Redis refuses midway (a bulk over its
 * proto-max-bulk-len: Redis answers the error and closes the connection):
 * the first call's tasks are reported created, with their ids, as Redis
 * created them; the refused call fails; the third, never run, fails
 * RTQ_ECONN and keeps its ids (such a task may or may not exist). */
static void test_client_create2_batch_broken_midway_reports_what_ran(void **state) {
  (void)state;
  const char *conf[] = {"proto-max-bulk-len 1mb", NULL};
  rtq_test_redis_options ro = {.extra_config = conf};
  rtq_test_redis *r = rtq_test_redis_start(&ro);
  assert_non_null(r);
  rtq_client_options o = {.redis_url = rtq_test_redis_url_of(r), .max_payload = 8u << 20};
  rtq_client *cl = NULL;
  assert_int_equal(rtq_client_new(&o, &cl), 0);
  enum { N = 129, BIG = 64 };
  size_t blen = 2u << 20;
  char *blob = malloc(blen + 1);
  assert_non_null(blob);
  memset(blob, 'q', blen);
  blob[blen] = '\0';
  rtq_args *big = rtq_args_new();
  rtq_args_set_str(big, "b", blob);
  rtq_task_spec s[N];
  memset(s, 0, sizeof s);
  for (int i = 0; i < N; i++) s[i].name = "t";
  s[BIG].args = big;
  assert_int_not_equal(rtq_create_tasks(cl, s, N), 0);
  for (int i = 0; i < BIG; i++) {
    assert_int_equal(s[i].rc, 0);
    assert_int_equal(s[i].created, 1);
    assert_true(s[i].id[0] != '\0');
  }
  assert_int_not_equal(s[BIG].rc, 0);
  for (int i = BIG + 1; i < N; i++) {
    assert_int_equal(s[i].rc, RTQ_ECONN);
    assert_true(s[i].id[0] != '\0');
  }
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(r));
  assert_int_equal(rtq_test_cmd_int(c, "LLEN", rtq_keys2_queue(&K, "default").s, NULL), BIG);
  rtq_conn_free(c);
  rtq_args_free(big);
  free(blob);
  rtq_client_free(cl);
  rtq_test_redis_stop(r);
}

/* A batch of two segments whose second brings a queue the client has not
 * registered, on a client of one pooled connection: the registration is a
 * round trip of its own, made before the batch's pipeline holds the one
 * connection (made while holding it, it would wait for ever). */
static void test_client_create2_new_queue_in_a_later_segment_with_one_connection(void **state) {
  (void)state;
  rtq_client_options o = {.redis_url = rtq_test_redis_url(), .pool_size = 1};
  rtq_client *cl = NULL;
  assert_int_equal(rtq_client_new(&o, &cl), 0);
  enum { N = 200 };
  rtq_task_spec s[N];
  memset(s, 0, sizeof s);
  rtq_task_options later = {.queue = "seg-late"};
  for (int i = 0; i < N; i++) {
    s[i].name = "t";
    if (i >= 150) s[i].opts = &later;
  }
  alarm(30); /* a deadlock fails the test instead of hanging it */
  assert_int_equal(rtq_create_tasks(cl, s, N), 0);
  alarm(0);
  for (int i = 0; i < N; i++) assert_int_equal(s[i].created, 1);
  assert_int_equal(rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, "seg-late").s, NULL), 50);
  assert_int_equal(rtq_test_cmd_int(C, "SISMEMBER", rtq_keys2_queues(&K).s, "seg-late", NULL), 1);
  rtq_client_free(cl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_create2_id_carries_the_slot, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_create2_options, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_create2_caller_ids_per_queue, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_create2_long_args_in_side_hash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_create2_batch_split_by_count_and_queue, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_create2_batch_split_by_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_create2_batch_noscript, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_create2_batch_broken_midway_reports_what_ran, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_create2_new_queue_in_a_later_segment_with_one_connection, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
