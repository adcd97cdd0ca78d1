/*
 * test_worker_readback.c - task hashes whose stored attempt (`a`) or
 * timeout (`to`) does not check out, queued among good tasks, before a
 * real rtq-worker starts: take reports each bad one (docs/PROTOCOL.md
 * section 8), the worker dead-letters it BAD_TASK_RECORD and its task
 * fails with that code; the good ones complete, and nothing stays running
 * or in the worker's processing list.
 */
#include "test_worker_util.h"

#include "calls2.h"
#include "keys2.h"
#include "scripts2.h"

static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wk;
static rtq_keys2 k2;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc_, &wk);
  assert_int_equal(rtq_keys2_init(&k2, "rtq"), 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc_, &wk, true);
  return 0;
}

/* Creates task id of rtq.echo on "default" through the create script,
 * then overwrites one of its stored fields with value, as a writer that
 * skips every check would. No worker runs yet: nothing claims it first. */
static void create_bad(const char *id, const char *field, const char *value) {
  rtq_test_cmd_int(rc_, "SADD", rtq_keys2_queues(&k2).s, "default", NULL);
  rtq__create2_task t = {.id = id, .name = "rtq.echo", .args = "\x80", .args_len = 1};
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_create(&a, &k2, false, "default", &t, 1), 0);
  redisReply *r = NULL;
  assert_int_equal(rtq_script2_run(rc_, &a, &r), 0);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
  rtq_key2 k = rtq_keys2_task(&k2, "default", id);
  rtq_test_cmd_int(rc_, "HSET", k.s, field, value, NULL);
}

static void test_worker_readback_bad_attempt_and_timeout_are_dead_lettered(void **state) {
  (void)state;
  static const char *const bad[][3] = {
      {"BADA1", "a", "-1"},    {"BADA2", "a", "4294967295"}, {"BADA3", "a", "1e308"}, {"BADA4", "a", "nan"},
      {"BADTO1", "to", "-1"},  {"BADTO2", "to", "1e308"},    {"BADTO3", "to", "nan"}, {"BADTO4", "to", "abc"},
      {"BADTO5", "to", "0"},   {"BADTO6", "to", "99999999999999999999"}};
  enum { NBAD = sizeof bad / sizeof bad[0], NGOOD = 4 };
  char good[NGOOD][RTQ_TASK_ID_SIZE];
  /* Good and bad interleaved, so the worker's takes hold both. */
  for (int i = 0; i < NBAD; i++) {
    create_bad(bad[i][0], bad[i][1], bad[i][2]);
    if (i % 3 == 0) tw_enqueue(cl, "rtq.echo", "{\"good\":true}", NULL, good[i / 3]);
  }
  tw_start(&wk, rtq_test_redis_url(), NULL);

  rtq_key2 dead = rtq_keys2_dead(&k2, "default");
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "LLEN", dead.s, NULL) == NBAD, 10000);
  /* One letter per bad task, each BAD_TASK_RECORD with a reason. */
  redisReply *r = rtq_test_command(rc_, "LRANGE", dead.s, "0", "-1", NULL);
  assert_int_equal(r->elements, NBAD);
  bool seen[NBAD] = {false};
  for (size_t i = 0; i < r->elements; i++) {
    rtq_args *rec = NULL;
    assert_int_equal(rtq_args_unpack(r->element[i]->str, r->element[i]->len, 0, &rec), 0);
    char code[64] = "", reason[256] = "", id[160] = "";
    assert_int_equal(rtq_args_get_cstr(rec, "code", code, sizeof code), 0);
    assert_int_equal(rtq_args_get_cstr(rec, "reason", reason, sizeof reason), 0);
    assert_int_equal(rtq_args_get_cstr(rec, "id", id, sizeof id), 0);
    assert_string_equal(code, "BAD_TASK_RECORD");
    assert_true(reason[0] != '\0');
    int j = 0;
    while (j < NBAD && strcmp(bad[j][0], id) != 0) j++;
    assert_true(j < NBAD && !seen[j]);
    seen[j] = true;
    rtq_args_free(rec);
  }
  freeReplyObject(r);

  /* The bad tasks failed with that code, their field as it was planted;
   * the good ones completed. */
  for (int i = 0; i < NBAD; i++) {
    rtq_task *t = tw_wait(cl, bad[i][0], 5000);
    assert_int_equal(t->status, RTQ_STATUS_FAILED);
    assert_string_equal(t->error_code, "BAD_TASK_RECORD");
    rtq_task_free(t);
    rtq_key2 k = rtq_keys2_task(&k2, "default", bad[i][0]);
    char *v = rtq_test_cmd_str(rc_, "HGET", k.s, bad[i][1], NULL);
    assert_non_null(v);
    assert_string_equal(v, bad[i][2]);
    free(v);
  }
  for (int i = 0; i < NGOOD; i++) {
    rtq_task *t = tw_wait(cl, good[i], 5000);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    rtq_task_free(t);
  }

  /* Nothing left running, queued or held. */
  rtq_key2 proc = rtq_keys2_processing(&k2, "default", wk.id), q = rtq_keys2_queue(&k2, "default");
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL) == 0, 5000);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", q.s, NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_readback_bad_attempt_and_timeout_are_dead_lettered, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
