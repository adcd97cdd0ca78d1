/*
 * test_protocol_take.c - protocol 2's take (common/lua2/take.lua), the
 * worker's non-blocking pop round and claim in one call, on what the
 * other suites leave out: a reply stays within its byte budget (the moves
 * after it are not made and their ids stay queued), an id delivered twice
 * runs once (the second copy is skipped, the attempt counted once), and
 * one call publishes one 'running' event naming every task it claimed.
 *
 * (Each move's entry, missing and bad ids, wedging values and a malformed
 * call writing nothing: tests/lua2 and test_calls2.)
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

#include "test_ops2_util.h"

#define Q "default"

static rtq_client *CL;
static rtq_conn *C;
static rtq_keys2 K;

static int setup(void **state) {
  (void)state;
  ops2_fixture(&CL, &C, &K);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_client_free(CL);
  rtq_conn_free(C);
  return 0;
}

/* One take call of up to moves moves with budget bytes of args; the reply
 * is the caller's. */
static redisReply *take(int moves, uint64_t budget) {
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = ops2_run(C, &a, rtq__call2_take(&a, &K, false, Q, OPS2_WID, 300000, moves, budget));
  rtq_argv_destroy(&a);
  return r;
}

static void test_protocol_take_stops_at_the_reply_budget(void **state) {
  (void)state;
  /* Ten tasks whose args are 1000 bytes each (a map of one str). */
  unsigned char args[1000];
  memset(args, 'a', sizeof args);
  args[0] = 0x81;
  args[1] = 0xa1;
  args[2] = 'x';
  args[3] = 0xda; /* str 16 */
  args[4] = (unsigned char)((sizeof args - 6) >> 8);
  args[5] = (unsigned char)(sizeof args - 6);
  ops2_spec sp = {.args = args, .args_len = sizeof args};
  char ids[10][RTQ_ID2_LEN + 1];
  ops2_create_ex(C, &K, Q, 10, &sp, ids);
  /* 2500 bytes: the third move reaches it, the fourth is not made. */
  redisReply *r = take(10, 2500);
  rtq__claim2_entry e[RTQ__V2_MAX_TASKS];
  int n = 0;
  assert_int_equal(rtq__reply2_claim(r, e, RTQ__V2_MAX_TASKS, &n), 0);
  assert_int_equal(n, 3);
  for (int i = 0; i < n; i++) {
    assert_int_equal(e[i].kind, RTQ__CLAIM2_OK);
    assert_int_equal(e[i].args_len, sizeof args);
    assert_memory_equal(e[i].id, ids[i], RTQ_ID2_LEN); /* oldest first */
  }
  freeReplyObject(r);
  assert_int_equal(ops2_llen(C, rtq_keys2_processing(&K, Q, OPS2_WID)), 3);
  assert_int_equal(ops2_llen(C, rtq_keys2_queue(&K, Q)), 7);
  char st[16];
  assert_string_equal(ops2_status(C, &K, Q, ids[3], st), "pending");
  /* The next call goes on from there. */
  r = take(10, 1 << 20);
  assert_int_equal(rtq__reply2_claim(r, e, RTQ__V2_MAX_TASKS, &n), 0);
  assert_int_equal(n, 7);
  assert_memory_equal(e[0].id, ids[3], RTQ_ID2_LEN);
  freeReplyObject(r);
}

static void test_protocol_take_duplicate_id_is_skipped(void **state) {
  (void)state;
  char ids[1][RTQ_ID2_LEN + 1];
  ops2_create(C, &K, Q, 1, 0, ids);
  /* A second copy of the id on the queue (a lost reply's redelivery). */
  rtq_test_cmd_int(C, "LPUSH", rtq_keys2_queue(&K, Q).s, ids[0], NULL);
  redisReply *r = take(2, 1 << 20);
  rtq__claim2_entry e[2];
  int n = 0;
  assert_int_equal(rtq__reply2_claim(r, e, 2, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(e[0].kind, RTQ__CLAIM2_OK);
  assert_int_equal(e[0].attempt, 1);
  assert_int_equal(e[1].kind, RTQ__CLAIM2_SKIP);
  assert_string_equal(e[1].status, "running");
  freeReplyObject(r);
  char st[16];
  assert_string_equal(ops2_status(C, &K, Q, ids[0], st), "running");
  char *a = rtq_test_cmd_str(C, "HGET", rtq_keys2_task(&K, Q, ids[0]).s, "a", NULL);
  assert_non_null(a);
  assert_string_equal(a, "1"); /* counted once */
  free(a);
  /* The skipped copy left the processing list; the claimed one is there. */
  assert_int_equal(ops2_llen(C, rtq_keys2_processing(&K, Q, OPS2_WID)), 1);
  assert_int_equal(ops2_llen(C, rtq_keys2_queue(&K, Q)), 0);
}

static void test_protocol_take_publishes_running_per_call(void **state) {
  (void)state;
  char ids[5][RTQ_ID2_LEN + 1];
  ops2_create(C, &K, Q, 5, 0, ids);
  rtq_conn *sub = rtq_test_conn();
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "SSUBSCRIBE");
  assert_int_equal(rtq__argv_add_key2(&a, rtq_keys2_chan_events(&K, Q)), 0);
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_command(sub, &a, &r), 0);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
  assert_int_equal(ops2_take(C, &K, Q, 3, NULL, NULL), 3);
  assert_int_equal(ops2_take(C, &K, Q, 3, NULL, NULL), 2);
  /* Two calls, two messages: {"s": "running", "w": wid, "t": [{id, a}]}. */
  for (int call = 0; call < 2; call++) {
    r = NULL;
    assert_int_equal(rtq_conn_get_reply(sub, &r), 0);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    json_t *m = json_loadb(r->element[2]->str, r->element[2]->len, 0, NULL);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "s")), "running");
    assert_string_equal(json_string_value(json_object_get(m, "w")), OPS2_WID);
    json_t *t = json_object_get(m, "t");
    size_t want = call == 0 ? 3 : 2;
    assert_int_equal(json_array_size(t), want);
    for (size_t i = 0; i < want; i++) {
      json_t *e = json_array_get(t, i);
      assert_string_equal(json_string_value(json_object_get(e, "id")), ids[call * 3 + i]);
      assert_int_equal(json_integer_value(json_object_get(e, "a")), 1);
    }
    json_decref(m);
    freeReplyObject(r);
  }
  rtq_conn_free(sub);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_protocol_take_stops_at_the_reply_budget, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_duplicate_id_is_skipped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_take_publishes_running_per_call, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
