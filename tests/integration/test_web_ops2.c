/*
 * test_web_ops2.c - rtq-web --protocol 2 against a private redis-server:
 * /api/events carries each task of v2's batched event messages as its own
 * v1-shaped event (queues registered later included), /api/stats sums the
 * queues, and the dead-letter actions work on the per-queue lists.
 * Producer and worker are played with the v2 call builders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_v2_play.h"
#include "test_web_util.h"

#define AUTH "Authorization: Bearer " WEB_TOKEN "\r\n"
#define W "w1"

static v2_play P;

static int setup(void **state) {
  tw_setup(state);
  v2_play_init(&P);
  return 0;
}

static int teardown(void **state) {
  v2_play_destroy(&P);
  return tw_teardown(state);
}

static long long shard_subscribers(const char *queue) {
  redisReply *r = rtq_test_command(P.c, "PUBSUB", "SHARDNUMSUB", rtq_keys2_chan_events(&P.k, queue).s, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

static void start(web_srv *s) {
  const char *args[] = {"--protocol", "2", "--auth-token-file", web_token_file(), NULL};
  web_start(s, args);
}

static void test_web_ops2_events_and_stats(void **state) {
  (void)state;
  rtq_test_cmd_int(P.c, "SADD", rtq_keys2_queues(&P.k).s, "q1", NULL);
  web_srv s;
  start(&s);
  RTQ_TEST_WAIT_FOR(shard_subscribers("q1") == 1, 10000);
  sse_conn ev;
  sse_open(&ev, s.port, "/api/events", AUTH);
  assert_true(sse_wait_for(&ev, ": connected", 0, 5000));
  v2_create_n(&P, "q1", "T", 3);
  assert_true(sse_wait_for(&ev, "{\"id\":\"T02\",\"status\":\"pending\"", 0, 5000));
  assert_int_equal(v2_take(&P, "q1", W, 1), 1);
  assert_true(sse_wait_for(&ev, "\"status\":\"running\"", 0, 5000));
  v2_finish(&P, "q1", W, "T00", RTQ_STATUS_COMPLETED);
  assert_true(sse_wait_for(&ev, "{\"id\":\"T00\",\"status\":\"completed\"", 0, 5000));
  /* A queue registered after the start: its events come through too. */
  bool seen = false;
  uint64_t deadline = rtq_test_now_ms() + 10000;
  for (int i = 0; !seen && rtq_test_now_ms() < deadline; i++) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "U%d-", i);
    v2_create_n(&P, "q2", prefix, 1);
    seen = sse_wait_for(&ev, "\"queue\":\"q2\"", 0, 300);
  }
  assert_true(seen);
  sse_close(&ev);

  json_t *st = http_json(s.port, "/api/stats", AUTH, 200);
  json_t *queues = json_object_get(st, "queues");
  assert_true(json_array_size(queues) == 2);
  json_t *q1 = json_array_get(queues, 0);
  assert_string_equal(json_string_value(json_object_get(q1, "name")), "q1");
  assert_int_equal(json_integer_value(json_object_get(q1, "backlog")), 2);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(q1, "counters"), "completed")), 1);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "statuses"), "completed")), 1);
  json_decref(st);

  /* /metrics from the same figures, checked by promtool where it is. */
  http_resp m;
  http_req(s.port, "GET", "/metrics", AUTH, NULL, &m);
  assert_int_equal(m.status, 200);
  assert_non_null(strstr(m.body, "rtq_tasks_total{queue=\"q1\",status=\"completed\"} 1\n"));
  assert_non_null(strstr(m.body, "rtq_queue_backlog{queue=\"q1\"} 2\n"));
  assert_non_null(strstr(m.body, "rtq_queue_running{queue=\"q1\"} 0\n"));
  http_resp_free(&m);
  web_stop(&s);
}

static json_t *post(int port, const char *path, int status) {
  http_resp r;
  http_req(port, "POST", path, AUTH, NULL, &r);
  if (r.status != status) fail_msg("POST %s: %d, wanted %d: %s", path, r.status, status, r.body);
  json_t *v = json_loads(r.body, 0, NULL);
  assert_non_null(v);
  http_resp_free(&r);
  return v;
}

static void test_web_ops2_dead_letters(void **state) {
  (void)state;
  v2_create_n(&P, "qa", "A", 1);
  v2_create_n(&P, "qb", "B", 1);
  assert_int_equal(v2_take(&P, "qa", W, 1), 1);
  assert_int_equal(v2_take(&P, "qb", W, 1), 1);
  v2_deadletter(&P, "qa", W, "A00", "BAD_SIGNATURE");
  v2_deadletter(&P, "qb", W, "B00", "BAD_SIGNATURE");
  v2_deadletter(&P, "qb", W, "ghost", "NO_TASK_RECORD");
  web_srv s;
  start(&s);
  json_t *d = http_json(s.port, "/api/dead", AUTH, 200);
  assert_int_equal(json_integer_value(json_object_get(d, "total")), 3);
  json_t *l = json_object_get(d, "letters");
  assert_string_equal(json_string_value(json_object_get(json_array_get(l, 0), "id")), "A00");
  assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "id")), "ghost");
  assert_string_equal(json_string_value(json_object_get(json_array_get(l, 2), "queue")), "qb");
  json_decref(d);
  json_decref(post(s.port, "/api/dead/0/requeue?id=A00", 200));
  char *st = rtq_test_cmd_str(P.c, "HGET", rtq_keys2_task(&P.k, "qa", "A00").s, "s", NULL);
  assert_string_equal(st, "pending");
  free(st);
  /* No task hash: kept, a conflict. */
  json_decref(post(s.port, "/api/dead/0/requeue?id=ghost", 409));
  json_decref(post(s.port, "/api/dead/purge?queue=qb", 200));
  d = http_json(s.port, "/api/dead", AUTH, 200);
  assert_int_equal(json_integer_value(json_object_get(d, "total")), 0);
  json_decref(d);
  web_stop(&s);
}

/* --result-keys: a completion without a worker's signature is shown as
 * unverified (409), never as completed; a pending task reads as usual. */
static void test_web_ops2_unverified_outcome(void **state) {
  (void)state;
  char keys[] = "/tmp/rtq-web-keys-XXXXXX";
  int fd = mkstemp(keys);
  assert_true(fd >= 0);
  const char *line = "w1:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n";
  assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
  close(fd); /* mkstemp makes it 0600 */
  v2_create_n(&P, "q1", "T", 2);
  assert_int_equal(v2_take(&P, "q1", W, 1), 1);
  v2_finish(&P, "q1", W, "T00", RTQ_STATUS_COMPLETED);
  web_srv s;
  const char *args[] = {"--protocol", "2", "--auth-token-file", web_token_file(), "--result-keys", keys, NULL};
  web_start(&s, args);
  json_t *e = http_json(s.port, "/api/tasks/T00", AUTH, 409);
  const char *msg = json_string_value(json_object_get(e, "error"));
  assert_non_null(msg);
  assert_non_null(strstr(msg, "not signed by a known worker key"));
  json_decref(e);
  json_t *t = http_json(s.port, "/api/tasks/T01", AUTH, 200);
  assert_string_equal(json_string_value(json_object_get(t, "status")), "pending");
  json_decref(t);
  web_stop(&s);
  unlink(keys);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_web_ops2_events_and_stats, setup, teardown),
      cmocka_unit_test_setup_teardown(test_web_ops2_dead_letters, setup, teardown),
      cmocka_unit_test_setup_teardown(test_web_ops2_unverified_outcome, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
