/*
 * test_client_hostile.c - the client reading what a hostile or buggy
 * writer left in Redis: task fields that are not UTF-8, a result as large
 * as a worker stores, messages on a task's waiter channel that are not
 * events, and an empty namespace. (List entries that are not task ids:
 * test_client_list2; task hashes of the wrong shape: test_client_task2.)
 */
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "test_client_fake_worker2.h"
#include "test_client_fixture2.h"

/* Creates a task of name on the queue "default". */
static void create(const char *name, char *id) {
  if (rtq_create_task(CL, name, NULL, NULL, id, NULL) != 0)
    fail_msg("create: %s", rtq_client_errstr(CL));
}

/* Fields a handler filled with bytes that are not UTF-8 still give JSON,
 * with U+FFFD where the bad bytes were (this used to fail as "out of
 * memory"). */
static void test_client_hostile_task_json_replaces_bad_bytes(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create("job", id);
  rtq_key2 k = rtq_keys2_task(&K, "default", id);
  rtq_test_cmd_int(C, "HSET", k.s, "s", "failed", "ec", "BAD\xff", "em", "caf\xc3\xa9 \xc0\xaf", "et",
                   "\xed\xa0\x80", "pm", "\xfe\xfe", "w", "w\x80", NULL);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  char *json = NULL;
  assert_int_equal(rtq_task_to_json(t, &json), 0);
  json_t *o = json_loads(json, 0, NULL);
  assert_non_null(o);
  json_t *e = json_object_get(o, "error");
  assert_string_equal(json_string_value(json_object_get(e, "code")), "BAD\xef\xbf\xbd");
  assert_string_equal(json_string_value(json_object_get(e, "message")),
                      "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd");
  assert_string_equal(json_string_value(json_object_get(o, "progress_message")),
                      "\xef\xbf\xbd\xef\xbf\xbd");
  assert_string_equal(json_string_value(json_object_get(o, "status")), "failed");
  json_decref(o);
  free(json);
  rtq_task_free(t);
}

/* Results as large as a worker stores (16 MiB by default) show as JSON,
 * not as "<undecodable msgpack>" past the 1 MiB args limit: one stored by
 * finish (in the side hash), one written into the task hash itself. */
static void test_client_hostile_large_result_shows_as_json(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create("job", id);
  size_t n = 3u << 20;
  char *mp = malloc(n + 5);
  assert_non_null(mp);
  mp[0] = (char)0xdb; /* str 32 */
  mp[1] = (char)(n >> 24);
  mp[2] = (char)(n >> 16);
  mp[3] = (char)(n >> 8);
  mp[4] = (char)n;
  memset(mp + 5, 'r', n);
  fake_job2 j;
  assert_int_equal(rtq_scripts2_load(C), 0);
  assert_int_equal(fw2_take(C, &K, "default", "w1", &j), 0);
  rtq__finish2_task f = {.status = RTQ_STATUS_COMPLETED, .result = mp, .result_len = n + 5};
  assert_int_equal(fw2_finish(C, &K, &j, f), 0);
  char other[RTQ_TASK_ID_SIZE];
  create("job", other);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HSET");
  assert_int_equal(rtq__argv_add_key2(&a, rtq_keys2_task(&K, "default", other)), 0);
  rtq_argv_add_str(&a, "s");
  rtq_argv_add_str(&a, "completed");
  rtq_argv_add_str(&a, "r");
  rtq_argv_add(&a, mp, n + 5);
  freeReplyObject(rtq_test_command_argv(C, &a));
  rtq_argv_destroy(&a);
  free(mp);
  const char *both[2] = {id, other};
  for (int i = 0; i < 2; i++) {
    rtq_task *t = NULL;
    assert_int_equal(rtq_get_task(CL, both[i], &t), 0);
    char *json = NULL;
    assert_int_equal(rtq_task_to_json(t, &json), 0);
    json_t *o = json_loads(json, 0, NULL);
    assert_non_null(o);
    const char *r = json_string_value(json_object_get(o, "result"));
    assert_non_null(r);
    assert_int_equal(strlen(r), n);
    json_decref(o);
    free(json);
    rtq_task_free(t);
  }
}

struct waiter {
  char id[RTQ_TASK_ID_SIZE];
  int rc;
  rtq_status status;
  uint64_t took_ms;
};

static void *wait_thread(void *arg) {
  struct waiter *w = arg;
  uint64_t t0 = rtq_test_now_ms();
  rtq_task *t = NULL;
  w->rc = rtq_wait_for_task(CL, w->id, 20000, &t);
  w->took_ms = rtq_test_now_ms() - t0;
  if (t != NULL) w->status = t->status;
  rtq_task_free(t);
  return NULL;
}

static volatile int subscribed;
static void on_subscribed(const char *id) {
  (void)id;
  __atomic_store_n(&subscribed, 1, __ATOMIC_SEQ_CST);
}

/* The wait script has registered a waiter on task id (its `wt`). */
static bool registered(const char *id) {
  char *wt = rtq_test_cmd_str(C, "HGET", rtq_keys2_task(&K, "default", id).s, "wt", NULL);
  bool yes = wt != NULL;
  free(wt);
  return yes;
}

/* A task that ends while its waiter is subscribed, announced by a message
 * that is not a well-formed event (bad bytes, a writer of another shape):
 * the waiter reads the task again and returns at once instead of
 * sleeping until its timeout. */
static void test_client_hostile_wait_wakes_on_any_message(void **state) {
  (void)state;
  struct waiter w;
  memset(&w, 0, sizeof w);
  create("job", w.id);
  subscribed = 0;
  rtq__wait_subscribed_hook = on_subscribed;
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
  uint64_t deadline = rtq_test_now_ms() + 5000;
  while (!__atomic_load_n(&subscribed, __ATOMIC_SEQ_CST) || !registered(w.id)) {
    if (rtq_test_now_ms() > deadline) fail_msg("the waiter did not subscribe and read in 5 s");
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  rtq_key2 k = rtq_keys2_task(&K, "default", w.id);
  rtq_test_cmd_int(C, "HSET", k.s, "s", "completed", "ec", "BAD\xff", NULL);
  rtq_key2 chan = rtq_keys2_chan_waiter(&K, "default", w.id);
  rtq_test_cmd_int(C, "SPUBLISH", chan.s, "{\"status\":\"compl\xff", NULL);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(w.rc, 0);
  assert_int_equal(w.status, RTQ_STATUS_COMPLETED);
  assert_true(w.took_ms < 10000);
}

/* Stats of a namespace that holds nothing: no queues, all counts 0 (and
 * no sort of an empty array, which UBSan reports). */
static void test_client_hostile_stats_of_empty_namespace(void **state) {
  (void)state;
  rtq_stats *s = NULL;
  if (rtq_get_stats(CL, &s) != 0) fail_msg("stats: %s", rtq_client_errstr(CL));
  assert_int_equal(s->nqueues, 0);
  rtq_stats_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_hostile_task_json_replaces_bad_bytes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_hostile_large_result_shows_as_json, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_hostile_wait_wakes_on_any_message, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_hostile_stats_of_empty_namespace, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
