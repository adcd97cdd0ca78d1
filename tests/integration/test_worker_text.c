/*
 * test_worker_text.c - a handler that fails with bytes that are not UTF-8
 * in its code and message, in thread and in process isolation: the task
 * ends failed at once with the same cleaned text both ways (code cut to
 * its characters, bad bytes as U+FFFD), and every event published about it
 * is valid JSON, so `rtq wait` and `rtq watch` never stall on it.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "rtq/client.h"
#include "test_worker_util.h"

static void run_case(const char *isolation) {
  rtq_client *cl;
  rtq_conn *rc;
  tw_worker wk;
  tw_open(&cl, &rc, &wk);
  tw_start(&wk, rtq_test_redis_url(), "--isolation", isolation, NULL);
  /* A first task makes the queue known, so that a protocol-2
   * subscription listens on its channel from the start. */
  char warm[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.echo", NULL, NULL, warm);
  rtq_task_free(tw_wait(cl, warm, 10000));
  rtq_subscription *sub = NULL;
  assert_int_equal(rtq_events_subscribe(cl, &sub), 0);

  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_strn(a, "code", "BAD\xff", 4), 0);
  assert_int_equal(rtq_args_set_strn(a, "message", "x\xc0y", 3), 0);
  char id[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(cl, "rtq.fail", a, NULL, id, NULL), 0);
  rtq_args_free(a);

  rtq_task *t = tw_wait(cl, id, 10000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "BAD_");
  assert_string_equal(t->error_message, "x\xef\xbf\xbdy");
  rtq_task_free(t);

  /* Every event about the task parses, up to its terminal one. */
  int terminal = 0;
  for (int i = 0; i < 50 && !terminal; i++) {
    char *msg = NULL;
    assert_int_equal(rtq_subscription_next(sub, 5000, &msg), 0);
    json_t *o = json_loads(msg, 0, NULL);
    if (o == NULL) fail_msg("%s isolation: an event is not JSON: %s", isolation, msg);
    const char *eid = json_string_value(json_object_get(o, "id"));
    const char *st = json_string_value(json_object_get(o, "status"));
    terminal = eid != NULL && strcmp(eid, id) == 0 && st != NULL && strcmp(st, "failed") == 0;
    json_decref(o);
    free(msg);
  }
  assert_true(terminal);
  rtq_subscription_free(sub);
  tw_close(cl, rc, &wk, true);
}

static void test_worker_text_bad_bytes_thread(void **state) {
  (void)state;
  run_case("thread");
}

static void test_worker_text_bad_bytes_process(void **state) {
  (void)state;
  run_case("process");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_worker_text_bad_bytes_thread),
      cmocka_unit_test(test_worker_text_bad_bytes_process),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
