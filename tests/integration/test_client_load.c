/*
 * test_client_load.c - rtq_get_queue_loads against a real redis-server
 * and rtq-worker: running tasks counted by queue, delayed envelopes by
 * queue, the created_at of the task a worker takes next, empty queues.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_load_counts, tw_setup, tw_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
