/*
 * test_client_skip2.c - protocol 2: a queue one of whose keys holds
 * another type of value than rtq writes there (a hand-written key) is left
 * out of rtq_get_stats, rtq_list_tasks and rtq_get_queue_loads, with a
 * note that names the queue and the key, and the other queues are still
 * counted and listed;
 * `rtq stats` and `rtq list` print the note as a warning and exit 0.
 * Real redis-server; the keys are spoiled with raw commands.
 */
#include <stdio.h>
#include <stdlib.h>

#include "test_client_fixture2.h"
#include "test_cli_run.h"

static char url_env[300];

static void create(const char *queue, uint64_t delay_ms, char *id) {
  rtq_task_options o = {.queue = queue, .delay_ms = delay_ms};
  if (rtq_create_task(CL, "job", NULL, &o, id, NULL) != 0) fail_msg("create: %s", rtq_client_errstr(CL));
}

/* Tasks a1 a2 in a, b1 (delayed) in b, c1 in c. */
static void three_queues(void) {
  char id[RTQ_TASK_ID_SIZE];
  create("a", 0, id);
  create("a", 0, id);
  create("b", 3600000, id);
  create("c", 0, id);
}

static const rtq_queue_stats *find_queue(const rtq_stats *s, const char *name) {
  for (size_t i = 0; i < s->nqueues; i++)
    if (strcmp(s->queues[i].name, name) == 0) return &s->queues[i];
  return NULL;
}

static rtq_stats *stats(void) {
  rtq_stats *s = NULL;
  if (rtq_get_stats(CL, &s) != 0) fail_msg("stats: %s", rtq_client_errstr(CL));
  return s;
}

static rtq_task_list *list_all(void) {
  rtq_task_filter f = {0};
  rtq_task_list *l = NULL;
  if (rtq_list_tasks(CL, &f, &l) != 0) fail_msg("list: %s", rtq_client_errstr(CL));
  return l;
}

static size_t count_in(const rtq_task_list *l, const char *queue) {
  size_t n = 0;
  for (size_t i = 0; i < l->count; i++) n += strcmp(l->tasks[i]->queue, queue) == 0;
  return n;
}

/* Registers worker wid with a heartbeat of Redis's now. */
static void live_worker(const char *wid) {
  redisReply *t = rtq_test_command(C, "TIME", NULL);
  char score[32];
  snprintf(score, sizeof score, "%lld", atoll(t->element[0]->str) * 1000 + atoll(t->element[1]->str) / 1000);
  freeReplyObject(t);
  rtq_test_cmd_int(C, "ZADD", "{rtq}:workers", score, wid, NULL);
}

/* Replaces key with a string. */
static void spoil(const char *key) {
  rtq_test_cmd_int(C, "DEL", key, NULL);
  rtq_test_cmd_ok(C, "SET", key, "by hand", NULL);
}

static void test_client_skip2_stats_and_list_skip_a_wrong_key(void **state) {
  (void)state;
  three_queues();
  rtq_stats *s = stats();
  assert_int_equal(s->nqueues, 3);
  assert_int_equal(s->by_status[RTQ_STATUS_PENDING], 4);
  assert_string_equal(s->skipped, "");
  rtq_stats_free(s);

  spoil("{rtq:b}:delayed");
  s = stats();
  assert_int_equal(s->nqueues, 2);
  assert_non_null(find_queue(s, "a"));
  assert_non_null(find_queue(s, "c"));
  assert_null(find_queue(s, "b"));
  assert_int_equal(s->by_status[RTQ_STATUS_PENDING], 3);
  assert_string_equal(s->skipped, "queue b: key {rtq:b}:delayed holds the wrong type of value");
  rtq_stats_free(s);

  rtq_task_list *l = list_all();
  assert_int_equal(l->count, 3);
  assert_int_equal(count_in(l, "a"), 2);
  assert_int_equal(count_in(l, "c"), 1);
  assert_string_equal(l->skipped, "queue b: key {rtq:b}:delayed holds the wrong type of value");
  rtq_task_list_free(l);

  /* A second spoiled queue, another key: both named, one line each. */
  spoil("{rtq:c}:done:failed");
  s = stats();
  assert_int_equal(s->nqueues, 1);
  assert_string_equal(s->skipped, "queue b: key {rtq:b}:delayed holds the wrong type of value\n"
                                  "queue c: key {rtq:c}:done:failed holds the wrong type of value");
  rtq_stats_free(s);
  /* Listing reads a queue's sources in turn: c's pending task comes
   * before its done lists, and the listing of c stops at the bad key. */
  l = list_all();
  assert_int_equal(l->count, 3);
  assert_int_equal(count_in(l, "a"), 2);
  assert_int_equal(count_in(l, "c"), 1);
  assert_non_null(strstr(l->skipped, "queue c: key {rtq:c}:done:failed"));
  rtq_task_list_free(l);
}

/* A worker's processing list of the wrong type: the running figures and
 * the running source of that queue. */
static void test_client_skip2_processing_list(void **state) {
  (void)state;
  three_queues();
  live_worker("w1");
  spoil("{rtq:a}:p:w1");
  rtq_stats *s = stats();
  assert_int_equal(s->nqueues, 2);
  assert_null(find_queue(s, "a"));
  assert_int_equal(s->by_status[RTQ_STATUS_PENDING], 2);
  assert_string_equal(s->skipped, "queue a: key {rtq:a}:p:w1 holds the wrong type of value");
  rtq_stats_free(s);
  rtq_task_list *l = list_all();
  /* Queue a's pending tasks come before its running source is read: they
   * are listed; the queue's listing stops at the bad key. */
  assert_int_equal(count_in(l, "a"), 2);
  assert_int_equal(count_in(l, "c"), 1);
  assert_int_equal(count_in(l, "b"), 1);
  assert_string_equal(l->skipped, "queue a: key {rtq:a}:p:w1 holds the wrong type of value");
  rtq_task_list_free(l);
}

static rtq_queue_loads *loads(void) {
  rtq_queue_loads *l = NULL;
  if (rtq_get_queue_loads(CL, &l) != 0) fail_msg("loads: %s", rtq_client_errstr(CL));
  return l;
}

static const rtq_queue_load *find_load(const rtq_queue_loads *l, const char *name) {
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(l->queues[i].name, name) == 0) return &l->queues[i];
  return NULL;
}

/* rtq_get_queue_loads leaves out a queue whose key is of the wrong type,
 * in each of its three round trips: the queue or delayed set (1), a
 * processing list (2), the hash of the task a worker takes next (3). */
static void test_client_skip2_loads_skip_a_wrong_key(void **state) {
  (void)state;
  three_queues();
  rtq_queue_loads *l = loads();
  assert_int_equal(l->count, 3);
  assert_string_equal(l->skipped, "");
  assert_int_equal(find_load(l, "b")->delayed, 1);
  rtq_queue_loads_free(l);

  spoil("{rtq:b}:q");
  l = loads();
  assert_int_equal(l->count, 2);
  assert_null(find_load(l, "b"));
  assert_true(find_load(l, "a")->oldest_pending_at > 0);
  assert_true(find_load(l, "c")->oldest_pending_at > 0);
  assert_string_equal(l->skipped, "queue b: key {rtq:b}:q holds the wrong type of value");
  rtq_queue_loads_free(l);

  /* A processing list, and the next task's hash of another queue. */
  live_worker("w1");
  spoil("{rtq:a}:p:w1");
  redisReply *next = rtq_test_command(C, "LINDEX", "{rtq:c}:q", "-1", NULL);
  assert_int_equal(next->type, REDIS_REPLY_STRING);
  char task_key[128];
  snprintf(task_key, sizeof task_key, "{rtq:c}:t:%s", next->str);
  freeReplyObject(next);
  spoil(task_key);
  l = loads();
  assert_int_equal(l->count, 0);
  char want[512];
  snprintf(want, sizeof want,
           "queue b: key {rtq:b}:q holds the wrong type of value\n"
           "queue a: key {rtq:a}:p:w1 holds the wrong type of value\n"
           "queue c: key %s holds the wrong type of value",
           task_key);
  assert_string_equal(l->skipped, want);
  rtq_queue_loads_free(l);
}

/* Another error than a wrong type still fails the call: nothing is hidden. */
static void test_client_skip2_other_errors_still_fail(void **state) {
  (void)state;
  three_queues();
  spoil("{rtq}:paused");
  rtq_stats *s = NULL;
  assert_int_equal(rtq_get_stats(CL, &s), RTQ_EREDIS);
  assert_null(s);
  spoil("{rtq}:workers");
  rtq_queue_loads *l = NULL;
  assert_int_equal(rtq_get_queue_loads(CL, &l), RTQ_EREDIS);
  assert_null(l);
}

static void test_client_skip2_cli_warns(void **state) {
  (void)state;
  three_queues();
  spoil("{rtq:b}:q");
  snprintf(url_env, sizeof url_env, "RTQ_REDIS_URL=%s", rtq_test_redis_url());
  const char *env[] = {url_env, "RTQ_NAMESPACE", "RTQ_PROTOCOL=2", NULL};
  cli_run r;
  cli(&r, (const char *const[]){"stats", NULL}, env);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.err, "queue b: key {rtq:b}:q holds the wrong type of value: left out"));
  assert_non_null(strstr(r.out, "a"));
  cli_free(&r);
  cli(&r, (const char *const[]){"--json", "list", NULL}, env);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.err, "queue b: key {rtq:b}:q holds the wrong type of value: left out"));
  json_t *v = cli_json(&r);
  assert_true(json_is_array(v));
  assert_int_equal(json_array_size(v), 3);
  json_decref(v);
  cli_free(&r);
}

int main(void) {
  setenv("RTQ_PROTOCOL", "2", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_skip2_stats_and_list_skip_a_wrong_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_skip2_processing_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_skip2_loads_skip_a_wrong_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_skip2_other_errors_still_fail, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_skip2_cli_warns, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
