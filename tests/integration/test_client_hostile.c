/*
 * test_client_hostile.c - the client reading what a hostile or buggy
 * writer left in Redis: index entries that are not task ids, task fields
 * that are not UTF-8, messages on a task's channel that are not events,
 * and an empty namespace.
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
#include "keys.h"
#include "rtq/client.h"
#include "test_client_fixture.h"

extern void (*rtq__wait_subscribed_hook)(const char *id);

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
  rtq__wait_subscribed_hook = NULL;
  tc_close(&cl, &rc_);
  return 0;
}

static void create(const char *name, char *id) {
  if (rtq_create_task(cl, name, NULL, NULL, id, NULL) != 0)
    fail_msg("create: %s", rtq_client_errstr(cl));
}

/* Stray members in a status index (a ZADD by hand, a bug elsewhere) are
 * passed over; the real tasks around them are listed. */
static void test_client_hostile_list_skips_index_entries_that_are_not_ids(void **state) {
  (void)state;
  char ids[3][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 3; i++) create("job", ids[i]);
  rtq_key idx = rtq_keys_status(&keys, RTQ_STATUS_PENDING);
  char longid[300];
  memset(longid, 'a', sizeof longid - 1);
  longid[sizeof longid - 1] = '\0';
  /* Scores newer than every real task, so they come first in the merge. */
  rtq_test_cmd_int(rc_, "ZADD", idx.s, "99999999999999", "bad id", NULL);
  rtq_test_cmd_int(rc_, "ZADD", idx.s, "99999999999998", longid, NULL);
  rtq_test_cmd_int(rc_, "ZADD", idx.s, "99999999999997", "../../etc", NULL);
  rtq_test_cmd_int(rc_, "ZADD", idx.s, "99999999999996", "id\xff", NULL);

  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  f.statuses = RTQ_STATUS_BIT(RTQ_STATUS_PENDING);
  f.limit = 10;
  rtq_test_cmd_ok(rc_, "CONFIG", "RESETSTAT", NULL);
  rtq_task_list *list = NULL;
  if (rtq_list_tasks(cl, &f, &list) != 0) fail_msg("list: %s", rtq_client_errstr(cl));
  assert_int_equal(list->count, 3);
  /* Same-millisecond ids have no order of their own: compare as a set. */
  for (int i = 0; i < 3; i++) {
    int found = 0;
    for (size_t j = 0; j < list->count; j++) found += strcmp(list->tasks[j]->id, ids[i]) == 0;
    assert_int_equal(found, 1);
  }
  rtq_task_list_free(list);
  /* Only the three real ids were looked up: no key was built from the
   * stray members. */
  char *info = rtq_test_cmd_str(rc_, "INFO", "commandstats", NULL);
  assert_non_null(info);
  const char *hm = strstr(info, "cmdstat_hmget:calls=");
  assert_non_null(hm);
  assert_int_equal(atoi(hm + strlen("cmdstat_hmget:calls=")), 3);
  free(info);
}

/* Fields a handler filled with bytes that are not UTF-8 still give JSON,
 * with U+FFFD where the bad bytes were (this used to fail as "out of
 * memory"). */
static void test_client_hostile_task_json_replaces_bad_bytes(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create("job", id);
  rtq_key k = rtq_keys_task(&keys, id);
  rtq_test_cmd_int(rc_, "HSET", k.s, "status", "failed", "error_code", "BAD\xff", "error_message",
                   "caf\xc3\xa9 \xc0\xaf", "error_traceback", "\xed\xa0\x80", "progress_message",
                   "\xfe\xfe", "worker", "w\x80", NULL);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(cl, id, &t), 0);
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
 * not as "<undecodable msgpack>" past the 1 MiB args limit. */
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
  rtq_key k = rtq_keys_task(&keys, id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HSET");
  rtq_argv_add_str(&a, k.s);
  rtq_argv_add_str(&a, "status");
  rtq_argv_add_str(&a, "completed");
  rtq_argv_add_str(&a, "result");
  rtq_argv_add(&a, mp, n + 5);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
  free(mp);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(cl, id, &t), 0);
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
  w->rc = rtq_wait_for_task(cl, w->id, 20000, &t);
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

/* HGETALL calls so far (INFO commandstats). */
static long long hgetall_calls(void) {
  char *info = rtq_test_cmd_str(rc_, "INFO", "commandstats", NULL);
  const char *p = info != NULL ? strstr(info, "cmdstat_hgetall:calls=") : NULL;
  long long n = p != NULL ? atoll(p + strlen("cmdstat_hgetall:calls=")) : 0;
  free(info);
  return n;
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
  rtq_test_cmd_ok(rc_, "CONFIG", "RESETSTAT", NULL);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
  uint64_t deadline = rtq_test_now_ms() + 5000;
  while (!__atomic_load_n(&subscribed, __ATOMIC_SEQ_CST) || hgetall_calls() < 1) {
    if (rtq_test_now_ms() > deadline) fail_msg("the waiter did not subscribe and read in 5 s");
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  rtq_key k = rtq_keys_task(&keys, w.id);
  rtq_test_cmd_int(rc_, "HSET", k.s, "status", "completed", "error_code", "BAD\xff", NULL);
  rtq_key chan = rtq_keys_chan_task(&keys, w.id);
  rtq_test_cmd_int(rc_, "PUBLISH", chan.s, "{\"status\":\"compl\xff", NULL);
  assert_int_equal(pthread_join(th, NULL), 0);
  assert_int_equal(w.rc, 0);
  assert_int_equal(w.status, RTQ_STATUS_COMPLETED);
  assert_true(w.took_ms < 10000);
}

/* A retry rebuilds the envelope from the hash; args written under a
 * larger limit (another client's max_payload, or by hand) would make an
 * envelope every worker dead-letters, so the retry is refused and the task
 * stays as it was. */
static void test_client_hostile_retry_refuses_an_oversized_envelope(void **state) {
  (void)state;
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.max_payload = 4u << 20;
  rtq_client *big = NULL;
  if (rtq_client_new(&o, &big) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  size_t n = 1536u << 10; /* 1.5 MiB: over the default 1 MiB */
  char *blob = malloc(n + 1);
  assert_non_null(blob);
  memset(blob, 'x', n);
  blob[n] = '\0';
  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_str(a, "blob", blob), 0);
  free(blob);
  char id[RTQ_TASK_ID_SIZE];
  if (rtq_create_task(big, "job", a, NULL, id, NULL) != 0)
    fail_msg("create: %s", rtq_client_errstr(big));
  rtq_args_free(a);
  rtq_client_free(big);
  rtq_key q = rtq_keys_queue(&keys, "default");
  rtq_test_cmd_int(rc_, "DEL", q.s, NULL);
  rtq_key k = rtq_keys_task(&keys, id);
  rtq_test_cmd_int(rc_, "HSET", k.s, "status", "failed", NULL);

  assert_int_equal(rtq_retry_task(cl, id), RTQ_ETOOBIG);
  assert_non_null(strstr(rtq_client_errstr(cl), "the limit is 1048576"));
  char *st = rtq_test_cmd_str(rc_, "HGET", k.s, "status", NULL);
  assert_string_equal(st, "failed");
  free(st);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", q.s, NULL), 0);
}

/* Stats of a namespace that holds nothing: no queues, all counts 0 (and
 * no sort of an empty array, which UBSan reports). */
static void test_client_hostile_stats_of_empty_namespace(void **state) {
  (void)state;
  rtq_stats *s = NULL;
  if (rtq_get_stats(cl, &s) != 0) fail_msg("stats: %s", rtq_client_errstr(cl));
  assert_int_equal(s->nqueues, 0);
  rtq_stats_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_hostile_list_skips_index_entries_that_are_not_ids,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_hostile_task_json_replaces_bad_bytes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_hostile_large_result_shows_as_json, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_hostile_wait_wakes_on_any_message, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_client_hostile_retry_refuses_an_oversized_envelope,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_hostile_stats_of_empty_namespace, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
