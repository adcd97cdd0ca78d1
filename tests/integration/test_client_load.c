/*
 * test_client_load.c - rtq_get_queue_loads against a real redis-server
 * and rtq-worker: running tasks counted by queue, delayed tasks by
 * queue, the created_at of the task a worker takes next, empty queues.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "keys2.h"
#include "rtq/client.h"
#include "test_web_util.h"

static rtq_status status_of(const char *id) {
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(tw_client, id, &t), 0);
  rtq_status s = t->status;
  rtq_task_free(t);
  return s;
}

static const rtq_queue_load *find(const rtq_queue_loads *l, const char *name) {
  for (size_t i = 0; i < l->count; i++)
    if (strcmp(l->queues[i].name, name) == 0) return &l->queues[i];
  fail_msg("no queue %s", name);
  return NULL;
}

static void test_client_load_counts(void **state) {
  (void)state;
  rtq_queue_loads *l = NULL;
  assert_int_equal(rtq_get_queue_loads(tw_client, &l), 0);
  assert_int_equal(l->count, 0);
  assert_true(l->now > 0);
  rtq_queue_loads_free(l);

  pid_t worker = web_worker_start("rtq");
  char run1[RTQ_TASK_ID_SIZE], run2[RTQ_TASK_ID_SIZE], later[RTQ_TASK_ID_SIZE];
  char first[RTQ_TASK_ID_SIZE], second[RTQ_TASK_ID_SIZE];
  tw_create("rtq.sleep", NULL, "{\"seconds\":30,\"steps\":300}", 0, run1);
  tw_create("rtq.sleep", NULL, "{\"seconds\":30,\"steps\":300}", 0, run2);
  tw_create("rtq.sleep", "later", "{\"seconds\":30,\"steps\":300}", 600000, later);
  tw_create("rtq.sleep", "idle", "{\"seconds\":30,\"steps\":300}", 0, first);
  tw_create("rtq.sleep", "idle", "{\"seconds\":30,\"steps\":300}", 0, second);
  RTQ_TEST_WAIT_FOR(status_of(run1) == RTQ_STATUS_RUNNING && status_of(run2) == RTQ_STATUS_RUNNING, 10000);

  assert_int_equal(rtq_get_queue_loads(tw_client, &l), 0);
  assert_false(l->running_partial);
  assert_false(l->delayed_partial);
  const rtq_queue_load *d = find(l, "default"), *lt = find(l, "later"), *id = find(l, "idle");
  assert_int_equal(d->running, 2);
  assert_int_equal(d->delayed, 0);
  assert_int_equal(d->oldest_pending_at, 0);
  assert_int_equal(lt->delayed, 1);
  assert_int_equal(lt->running, 0);
  assert_int_equal(id->running, 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(tw_client, first, &t), 0);
  assert_int_equal(id->oldest_pending_at, t->created_at);
  rtq_task_free(t);
  for (size_t i = 1; i < l->count; i++) assert_true(strcmp(l->queues[i - 1].name, l->queues[i].name) < 0);
  rtq_queue_loads_free(l);
  rtq_queue_loads_free(NULL);

  assert_int_equal(rtq_cancel_task(tw_client, run1, NULL), 0);
  assert_int_equal(rtq_cancel_task(tw_client, run2, NULL), 0);
  rtq_test_terminate(worker, SIGTERM, 10000, NULL);
}

static uint64_t redis_minute(rtq_conn *c) {
  redisReply *r = rtq_test_command(c, "TIME", NULL);
  uint64_t ms = strtoull(r->element[0]->str, NULL, 10) * 1000u + strtoull(r->element[1]->str, NULL, 10) / 1000u;
  freeReplyObject(r);
  return ms / 60000u;
}

static void snapshot(rtq_conn *c, const rtq_keys2 *k, uint64_t minute, const char *completed, const char *failed) {
  freeReplyObject(rtq_test_command(c, "HSET", rtq_keys2_throughput(k, minute).s, "completed", completed, "failed",
                                   failed, "q1|completed", completed, "q1|failed", "0", NULL));
}

/* The history: one snapshot a minute from the queues' counters, minutes
 * as differences of snapshots, unknown where one is missing or the
 * counters went back. */
static void test_client_throughput(void **state) {
  (void)state;
  rtq_keys2 k;
  rtq_keys2_init(&k, "rtq");
  rtq_conn *c = rtq_test_conn();
  freeReplyObject(rtq_test_command(c, "SADD", rtq_keys2_queues(&k).s, "q1", "q2", NULL));
  freeReplyObject(rtq_test_command(c, "HSET", rtq_keys2_stats(&k, "q1").s, "completed", "7", NULL));
  freeReplyObject(rtq_test_command(c, "HSET", rtq_keys2_stats(&k, "q2").s, "failed", "2", "enqueued", "9", NULL));
  int recorded = -1;
  assert_int_equal(rtq_throughput_record(tw_client, &recorded), 0);
  uint64_t now = redis_minute(c);
  if (recorded == 0) { /* the minute turned between TIME and the write: once more */
    assert_int_equal(rtq_throughput_record(tw_client, &recorded), 0);
    now = redis_minute(c);
  }
  assert_int_equal(recorded, 1);
  assert_int_equal(rtq_throughput_record(tw_client, &recorded), 0);
  if (redis_minute(c) == now) assert_int_equal(recorded, 0);
  char *v = rtq_test_cmd_str(c, "HGET", rtq_keys2_throughput(&k, now).s, "completed", NULL);
  assert_string_equal(v, "7");
  free(v);
  v = rtq_test_cmd_str(c, "HGET", rtq_keys2_throughput(&k, now).s, "failed", NULL);
  assert_string_equal(v, "2");
  free(v);
  v = rtq_test_cmd_str(c, "HGET", rtq_keys2_throughput(&k, now).s, "q1|completed", NULL);
  assert_string_equal(v, "7");
  free(v);
  assert_null(rtq_test_cmd_str(c, "HGET", rtq_keys2_throughput(&k, now).s, "q2|enqueued", NULL));
  long long ttl = rtq_test_cmd_int(c, "TTL", rtq_keys2_throughput(&k, now).s, NULL);
  assert_true(ttl > 7000 && ttl <= 7200);

  /* Minutes now-5 .. now-1: 10, 25, 20 (went back), none, 5 completed;
   * then this minute's 7. */
  snapshot(c, &k, now - 5, "10", "1");
  snapshot(c, &k, now - 4, "25", "1");
  snapshot(c, &k, now - 3, "20", "1");
  snapshot(c, &k, now - 1, "5", "1");
  rtq_throughput *t = NULL;
  assert_int_equal(rtq_get_throughput(tw_client, NULL, 5, &t), 0);
  assert_int_equal(t->count, 5);
  assert_int_equal(t->points[0].minute_at, (now - 5) * 60000u);
  assert_true(t->points[0].known);
  assert_int_equal(t->points[0].completed, 15);
  assert_int_equal(t->points[0].failed, 0);
  assert_false(t->points[1].known); /* the counters went back */
  assert_false(t->points[2].known); /* no snapshot in now-2 */
  assert_false(t->points[3].known);
  assert_true(t->points[4].known);  /* now-1 -> now: 5 -> 7, 1 -> 2 */
  assert_int_equal(t->points[4].completed, 2);
  assert_int_equal(t->points[4].failed, 1);
  rtq_throughput_free(t);
  assert_int_equal(rtq_get_throughput(tw_client, "q1", 2, &t), 0);
  assert_int_equal(t->count, 2);
  rtq_throughput_free(t);
  assert_int_equal(rtq_get_throughput(tw_client, NULL, 0, &t), RTQ_EINVAL);
  assert_int_equal(rtq_get_throughput(tw_client, "bad queue", 5, &t), RTQ_EINVAL);
  assert_int_equal(rtq_get_throughput(tw_client, NULL, RTQ_THROUGHPUT_MAX_MINUTES + 1, &t), RTQ_EINVAL);
  rtq_throughput_free(NULL);
  rtq_conn_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_load_counts, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_client_throughput, tw_setup, tw_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
