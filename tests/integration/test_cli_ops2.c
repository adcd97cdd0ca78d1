/*
 * test_cli_ops2.c - `rtq stats`, `rtq workers`, `rtq queue pause|resume`
 * and `rtq dead list|show|requeue|purge` against a private redis-server:
 * the figures summed over the queues' own keys and the dead letters of
 * every queue as one list. Producer and worker are played with the v2
 * call builders.
 */
#include "test_cli_env.h"
#include "test_v2_play.h"

#include <jansson.h>

#define W "w1"

static v2_play P;

static int setup2(void **state) {
  setup(state);
  v2_play_init(&P);
  return 0;
}

static int teardown2(void **state) {
  v2_play_destroy(&P);
  return teardown(state);
}

static json_t *run_json(const char *const *args) {
  cli_run r;
  cli(&r, args, env);
  if (r.code != 0) fail_msg("rtq %s %s: exit %d: %s", args[0], args[1], r.code, r.err);
  json_t *v = cli_json(&r);
  cli_free(&r);
  return v;
}

static void test_cli_ops2_stats_workers_pause(void **state) {
  (void)state;
  v2_create_n(&P, "mail", "M", 3);
  v2_create_n(&P, "video", "V", 2);
  v2_heartbeat(&P, W, "mail,video");
  assert_int_equal(v2_take(&P, "mail", W, 1), 1);
  cli_run r;
  RUN(&r, "queue", "pause", "video");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  RUN(&r, "stats");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "video"));
  assert_non_null(strstr(r.out, "(paused)"));
  cli_free(&r);
  json_t *v = run_json((const char *const[]){"stats", "--json", NULL});
  json_t *qs = json_object_get(v, "queues");
  assert_int_equal(json_array_size(qs), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(qs, 0), "name")), "mail");
  assert_int_equal(json_integer_value(json_object_get(json_array_get(qs, 0), "backlog")), 2);
  assert_true(json_is_true(json_object_get(json_array_get(qs, 1), "paused")));
  json_decref(v);
  RUN(&r, "workers");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, W));
  cli_free(&r);
  /* A worker record written by anyone with access, and a score no clock
   * gives: listed without harm. */
  rtq_test_cmd_int(P.c, "HSET", rtq_keys2_worker(&P.k, "w-evil").s, "host", "h" CLI_NASTY, "queues",
                   "q" CLI_NASTY, "pid", "1", NULL);
  rtq_test_cmd_int(P.c, "ZADD", rtq_keys2_workers(&P.k).s, "+inf", "w-evil", NULL);
  RUN(&r, "workers");
  assert_int_equal(r.code, 0);
  cli_assert_inert(r.out);
  assert_non_null(strstr(r.out, "w-evil"));
  cli_free(&r);
  RUN(&r, "queue", "resume", "video");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  assert_int_equal(rtq_test_cmd_int(P.c, "SCARD", rtq_keys2_paused(&P.k).s, NULL), 0);
}

static void test_cli_ops2_dead(void **state) {
  (void)state;
  v2_create_n(&P, "qa", "A", 1);
  v2_create_n(&P, "qb", "B", 1);
  assert_int_equal(v2_take(&P, "qa", W, 1), 1);
  assert_int_equal(v2_take(&P, "qb", W, 1), 1);
  v2_deadletter(&P, "qa", W, "A00", "BAD_SIGNATURE");
  v2_deadletter(&P, "qb", W, "B00", "BAD_SIGNATURE");
  v2_deadletter(&P, "qb", W, "ghost", "NO_TASK_RECORD");
  json_t *v = run_json((const char *const[]){"dead", "list", "--json", NULL});
  assert_int_equal(json_integer_value(json_object_get(v, "total")), 3);
  json_t *l = json_object_get(v, "letters");
  assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "id")), "ghost");
  assert_string_equal(json_string_value(json_object_get(json_array_get(l, 2), "queue")), "qb");
  json_decref(v);
  v = run_json((const char *const[]){"dead", "show", "2", "--json", NULL});
  assert_string_equal(json_string_value(json_object_get(v, "id")), "B00");
  json_decref(v);
  cli_run r;
  RUN(&r, "dead", "requeue", "--all");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  char *s = rtq_test_cmd_str(P.c, "HGET", rtq_keys2_task(&P.k, "qb", "B00").s, "s", NULL);
  assert_string_equal(s, "pending");
  free(s);
  v = run_json((const char *const[]){"dead", "list", "--json", NULL});
  assert_int_equal(json_integer_value(json_object_get(v, "total")), 1); /* ghost: no task hash */
  json_decref(v);
  RUN(&r, "dead", "purge");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  assert_int_equal(rtq_test_cmd_int(P.c, "LLEN", rtq_keys2_dead(&P.k, "qb").s, NULL), 0);
}

static long long shard_subscribers(const char *queue) {
  redisReply *r = rtq_test_command(P.c, "PUBSUB", "SHARDNUMSUB", rtq_keys2_chan_events(&P.k, queue).s, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

/* `rtq watch ID` follows a task through v2's batched events to its end. */
static void test_cli_ops2_watch(void **state) {
  (void)state;
  v2_create_n(&P, "mail", "M", 1);
  cli_run r;
  START(&r, "watch", "M00", "--json", "--timeout", "20");
  RTQ_TEST_WAIT_FOR(shard_subscribers("mail") == 1, 10000);
  assert_int_equal(v2_take(&P, "mail", W, 1), 1);
  freeReplyObject(v2_run(&P, rtq__call2_progress(&P.a, &P.k, false, "mail", "M00", W, 1, 40, "almost")));
  v2_finish(&P, "mail", W, "M00", RTQ_STATUS_COMPLETED);
  cli_finish(&r, 20000);
  if (r.code != 0) fail_msg("rtq watch: exit %d: %s", r.code, r.err);
  assert_non_null(strstr(r.out, "\"progress\":40"));
  assert_non_null(strstr(r.out, "\"message\":\"almost\""));
  assert_non_null(strstr(r.out, "\"status\":\"completed\""));
  cli_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cli_ops2_stats_workers_pause, setup2, teardown2),
      cmocka_unit_test_setup_teardown(test_cli_ops2_dead, setup2, teardown2),
      cmocka_unit_test_setup_teardown(test_cli_ops2_watch, setup2, teardown2),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
