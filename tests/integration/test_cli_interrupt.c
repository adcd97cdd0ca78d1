/*
 * test_cli_interrupt.c - Ctrl-C (SIGINT, sent to the `rtq` process by pid
 * once it is subscribed and waiting) during `rtq wait` and `rtq enqueue
 * --wait`: it names the task, says the task goes on, exits 130, and the
 * task is still there, untouched.
 */
#include "test_cli_env.h"


static char *status_of(const char *id) {
  return cli_task_field("default", id, "status");
}

static void test_cli_interrupt_wait_names_the_task(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "enqueue", "t", "--id", "int-1");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  START(&r, "wait", "int-1");
  RTQ_TEST_WAIT_FOR(task_numsub("int-1") == 1, 5000);
  assert_int_equal(rtq_test_kill(r.pid, SIGINT), 0);
  cli_finish(&r, 5000);
  assert_int_equal(r.code, 130);
  assert_string_equal(r.out, "");
  assert_string_equal(r.err, "rtq: interrupted; task int-1 goes on (rtq status int-1)\n");
  char *s = status_of("int-1");
  assert_string_equal(s, "pending");
  free(s);
  cli_free(&r);
  /* It no longer listens. */
  RTQ_TEST_WAIT_FOR(task_numsub("int-1") == 0, 5000);
}

static void test_cli_interrupt_enqueue_wait_json(void **state) {
  (void)state;
  cli_run r;
  START(&r, "enqueue", "t", "{\"n\":1}", "--wait", "--json");
  /* The id is one we do not know yet: find it in the queue's list. */
  rtq_key2 q2 = rtq_keys2_queue(&keys2, "default");
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "LLEN", q2.s, NULL) == 1, 5000);
  redisReply *z = rtq_test_command(rc_, "LRANGE", q2.s, "0", "0", NULL);
  assert_int_equal(z->type, REDIS_REPLY_ARRAY);
  assert_int_equal(z->elements, 1);
  char id[RTQ_TASK_ID_SIZE];
  snprintf(id, sizeof id, "%s", z->element[0]->str);
  freeReplyObject(z);
  RTQ_TEST_WAIT_FOR(task_numsub(id) == 1, 5000);
  assert_int_equal(rtq_test_kill(r.pid, SIGINT), 0);
  cli_finish(&r, 5000);
  assert_int_equal(r.code, 130);
  assert_string_equal(r.out, "");
  json_t *v = json_loads(r.err, 0, NULL);
  if (v == NULL) fail_msg("stderr is not one JSON object: %s", r.err);
  json_t *e = json_object_get(v, "error");
  assert_string_equal(json_string_value(json_object_get(e, "code")), "INTERRUPTED");
  assert_string_equal(json_string_value(json_object_get(e, "id")), id);
  assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "goes on"));
  json_decref(v);
  cli_free(&r);
  char *s = status_of(id);
  assert_string_equal(s, "pending");
  free(s);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_interrupt_wait_names_the_task),
      T(test_cli_interrupt_enqueue_wait_json),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
