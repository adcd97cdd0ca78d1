/*
 * test_client_ops2.c - the client's reading and operating calls under
 * protocol 2 on a private redis-server: the event stream (v2's batched
 * shard-channel messages unbatched into v1-shaped events, queues added
 * later picked up, hostile messages skipped), stats summed over queues,
 * queue loads, workers, pause, throughput and run times. The producer and
 * worker sides are played with the v2 scripts' call builders.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "client_internal.h"
#include "clock.h"
#include "test_v2_play.h"

static rtq_client *CL;
static v2_play P;

static int setup(void **state) {
  (void)state;
  CL = v2_play_client();
  v2_play_init(&P);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  v2_play_destroy(&P);
  rtq_client_free(CL);
  return 0;
}

/* The next event as JSON, within 5 s. */
static json_t *next_event(rtq_subscription *s) {
  char *text = NULL;
  int rc = rtq_subscription_next(s, 5000, &text);
  if (rc != 0) fail_msg("next: %s (%s)", rtq_strerror(rc), rtq_client_errstr(CL));
  json_t *e = json_loads(text, 0, NULL);
  free(text);
  assert_non_null(e);
  return e;
}

static const char *str_of(const json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  if (v == NULL) fail_msg("event without %s", k);
  return v;
}

static void test_client_ops2_events_unbatch_64_in_order(void **state) {
  (void)state;
  assert_int_equal(rtq__queues2_register(CL, "q1"), 0);
  rtq_subscription *s;
  assert_int_equal(rtq_events_subscribe(CL, &s), 0);
  v2_create_n(&P, "q1", "T", 64);
  for (int i = 0; i < 64; i++) {
    json_t *e = next_event(s);
    char want[8];
    snprintf(want, sizeof want, "T%02d", i);
    assert_string_equal(str_of(e, "id"), want);
    assert_string_equal(str_of(e, "status"), "pending");
    assert_string_equal(str_of(e, "queue"), "q1");
    assert_string_equal(str_of(e, "name"), "job");
    assert_true(json_integer_value(json_object_get(e, "at")) > 0);
    json_decref(e);
  }
  /* A take: the message's status and worker reach each task's event. */
  assert_int_equal(v2_take(&P, "q1", "w1", 2), 2);
  for (int i = 0; i < 2; i++) {
    json_t *e = next_event(s);
    assert_string_equal(str_of(e, "status"), "running");
    assert_string_equal(str_of(e, "worker"), "w1");
    assert_int_equal(json_integer_value(json_object_get(e, "attempt")), 1);
    json_decref(e);
  }
  v2_finish(&P, "q1", "w1", "T00", RTQ_STATUS_FAILED);
  json_t *e = next_event(s);
  assert_string_equal(str_of(e, "id"), "T00");
  assert_string_equal(str_of(e, "status"), "failed");
  json_decref(e);
  char *none = NULL;
  assert_int_equal(rtq_subscription_next(s, 50, &none), RTQ_ETIMEDOUT);
  assert_null(none);
  uint64_t dropped, skipped;
  rtq__sub_counts(s, &dropped, &skipped);
  assert_int_equal(dropped, 0);
  assert_int_equal(skipped, 0);
  rtq_subscription_free(s);
}

/* A queue registered after the subscription: its events arrive without a
 * new subscription, once the registry is read again (about a second). */
static void test_client_ops2_events_new_queue_seen(void **state) {
  (void)state;
  rtq_subscription *s;
  assert_int_equal(rtq_events_subscribe(CL, &s), 0);
  assert_int_equal(rtq__queues2_register(CL, "late"), 0);
  uint64_t deadline = rtq__mono_ms() + 10000;
  int round = 0;
  json_t *e = NULL;
  while (e == NULL && rtq__mono_ms() < deadline) {
    char prefix[16];
    snprintf(prefix, sizeof prefix, "L%d-", round++);
    v2_create_n(&P, "late", prefix, 1);
    char *text = NULL;
    int rc = rtq_subscription_next(s, 200, &text);
    if (rc == RTQ_ETIMEDOUT) continue;
    assert_int_equal(rc, 0);
    e = json_loads(text, 0, NULL);
    free(text);
  }
  if (e == NULL) fail_msg("no event of the new queue within 10 s");
  assert_string_equal(str_of(e, "queue"), "late");
  assert_string_equal(str_of(e, "status"), "pending");
  json_decref(e);
  rtq_subscription_free(s);
}

static void spublish(const char *chan, const char *msg, size_t len) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "SPUBLISH");
  rtq_argv_add_str(&a, chan);
  rtq_argv_add(&a, msg, len);
  freeReplyObject(rtq_test_command_argv(P.c, &a));
  rtq_argv_destroy(&a);
}

/* Messages no v2 script sends are skipped (whole, or the bad task
 * entries alone); the stream goes on with the next good one. */
static void test_client_ops2_events_hostile_skipped(void **state) {
  (void)state;
  assert_int_equal(rtq__queues2_register(CL, "q1"), 0);
  rtq_subscription *s;
  assert_int_equal(rtq_events_subscribe(CL, &s), 0);
  const char *ch = rtq_keys2_chan_events(&P.k, "q1").s;
  const char *bad[] = {"not json", "[1,2]", "{\"t\":5}", "{\"t\":[1,\"x\",null]}", "{\"t\":",
                       "{\"s\":\"pending\",\"t\":[{\"id\":\"bad id\"},{\"id\":\"X1\",\"s\":\"weird\"},"
                       "{\"id\":7},{\"s\":\"pending\"}]}",
                       "{\"s\":\"pending\",\"t\":[],\"t\":[{\"id\":\"DUP\"}]}"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) spublish(ch, bad[i], strlen(bad[i]));
  /* Over the size cap: 2 MiB of a valid-looking message. */
  size_t big = 2u << 20;
  char *huge = malloc(big);
  assert_non_null(huge);
  memset(huge, ' ', big);
  memcpy(huge, "{\"s\":\"pending\",\"t\":[{\"id\":\"HUGE\"}]", 34);
  huge[big - 1] = '}';
  spublish(ch, huge, big);
  free(huge);
  /* More tasks than a message may carry: the first 1024 come through. */
  size_t cap = 1100 * 16 + 64, off = 0;
  char *many = malloc(cap);
  assert_non_null(many);
  off += (size_t)snprintf(many + off, cap - off, "{\"s\":\"pending\",\"t\":[");
  for (int i = 0; i < 1100; i++)
    off += (size_t)snprintf(many + off, cap - off, "%s{\"id\":\"M%d\"}", i ? "," : "", i);
  off += (size_t)snprintf(many + off, cap - off, "]}");
  spublish(ch, many, off);
  free(many);
  const char *good = "{\"at\":1,\"s\":\"pending\",\"t\":[{\"id\":\"OK1\",\"hb\":2,\"cr\":5,\"pm\":\"half\"}]}";
  spublish(ch, good, strlen(good));
  for (int i = 0; i < 1024; i++) {
    json_t *e = next_event(s);
    char want[16];
    snprintf(want, sizeof want, "M%d", i);
    assert_string_equal(str_of(e, "id"), want);
    json_decref(e);
  }
  json_t *e = next_event(s);
  assert_string_equal(str_of(e, "id"), "OK1");
  assert_string_equal(str_of(e, "status"), "pending");
  assert_int_equal(json_integer_value(json_object_get(e, "handed_back")), 2);
  assert_true(json_is_true(json_object_get(e, "cancel_requested")));
  assert_string_equal(str_of(e, "message"), "half");
  json_decref(e);
  uint64_t dropped, skipped;
  rtq__sub_counts(s, &dropped, &skipped);
  assert_int_equal(dropped, 1100 - 1024);
  /* Not JSON, an array, "t" not an array, cut short, a duplicate key, and
   * the huge one; a message of bad entries is not skipped whole. */
  assert_int_equal(skipped, 6);
  rtq_subscription_free(s);
}

static uint64_t counter(const rtq_queue_stats *q, const char *name) {
  for (size_t i = 0; i < q->ncounters; i++)
    if (strcmp(q->counters[i].name, name) == 0) return q->counters[i].value;
  return 0;
}

static void test_client_ops2_stats_summed_over_queues(void **state) {
  (void)state;
  v2_create_n(&P, "q1", "A", 2);
  v2_create_n(&P, "q2", "B", 3);
  v2_create_n(&P, "q3", "C", 4);
  v2_heartbeat(&P, "w1", "q1,q2");
  assert_int_equal(v2_take(&P, "q2", "w1", 1), 1);
  v2_finish(&P, "q2", "w1", "B00", RTQ_STATUS_COMPLETED);
  assert_int_equal(v2_take(&P, "q1", "w1", 1), 1);
  assert_int_equal(rtq_queue_pause(CL, "q3"), 0);
  assert_int_equal(rtq_test_cmd_int(P.c, "SISMEMBER", "{rtq}:paused", "q3", NULL), 1);
  rtq_stats *st;
  assert_int_equal(rtq_get_stats(CL, &st), 0);
  assert_int_equal(st->nqueues, 3);
  assert_string_equal(st->queues[0].name, "q1");
  assert_string_equal(st->queues[2].name, "q3");
  assert_int_equal(st->queues[0].backlog, 1);
  assert_int_equal(st->queues[1].backlog, 2);
  assert_int_equal(st->queues[2].backlog, 4);
  assert_int_equal(counter(&st->queues[1], "enqueued"), 3);
  assert_int_equal(counter(&st->queues[1], "completed"), 1);
  assert_false(st->queues[0].paused);
  assert_true(st->queues[2].paused);
  assert_int_equal(st->by_status[RTQ_STATUS_PENDING], 7);
  assert_int_equal(st->by_status[RTQ_STATUS_RUNNING], 1);
  assert_int_equal(st->running, 1);
  assert_int_equal(st->by_status[RTQ_STATUS_COMPLETED], 1);
  assert_int_equal(st->workers_alive, 1);
  assert_true(st->now > 0);
  assert_int_equal(st->nbroker, 0);
  rtq_stats_free(st);
  /* The broker's counters, apart from the queues. */
  rtq_test_cmd_int(P.c, "HSET", rtq_keys2_broker(&P.k).s, "sweeps", "7", "last_sweep_at", "123", NULL);
  assert_int_equal(rtq_get_stats(CL, &st), 0);
  assert_int_equal(st->nbroker, 2);
  assert_int_equal(st->nqueues, 3);
  for (size_t i = 0; i < st->nbroker; i++)
    if (strcmp(st->broker[i].name, "sweeps") == 0) assert_int_equal(st->broker[i].value, 7);
  rtq_stats_free(st);
  assert_int_equal(rtq_queue_resume(CL, "q3"), 0);
  assert_int_equal(rtq_get_stats(CL, &st), 0);
  assert_false(st->queues[2].paused);
  rtq_stats_free(st);

  rtq_queue_loads *l;
  assert_int_equal(rtq_get_queue_loads(CL, &l), 0);
  assert_int_equal(l->count, 3);
  assert_int_equal(l->queues[0].running, 1);
  assert_int_equal(l->queues[1].running, 0);
  assert_true(l->queues[2].oldest_pending_at > 0);
  assert_false(l->running_partial);
  rtq_queue_loads_free(l);

  rtq_alive_workers *w;
  assert_int_equal(rtq_list_workers(CL, &w), 0);
  assert_int_equal(w->count, 1);
  assert_string_equal(w->workers[0].id, "w1");
  assert_string_equal(w->workers[0].host, "h1");
  assert_int_equal(w->workers[0].pid, 42);
  assert_true(rtq_worker_serves(&w->workers[0], "q2"));
  rtq_alive_workers_free(w);
}

static void test_client_ops2_throughput_and_run_times(void **state) {
  (void)state;
  v2_create_n(&P, "q1", "A", 2);
  v2_create_n(&P, "q2", "B", 1);
  assert_int_equal(v2_take(&P, "q1", "w1", 2), 2);
  v2_finish(&P, "q1", "w1", "A00", RTQ_STATUS_COMPLETED);
  v2_finish(&P, "q1", "w1", "A01", RTQ_STATUS_FAILED);
  uint64_t now;
  assert_int_equal(rtq_client_time_ms(CL, &now), 0);
  /* The previous minute's snapshot, as a recorder then would have left it. */
  char prev[64];
  snprintf(prev, sizeof prev, "{rtq}:throughput:%llu", (unsigned long long)(now / 60000 - 1));
  rtq_test_cmd_int(P.c, "HSET", prev, "completed", "0", "failed", "0", "q1|completed", "0", "q1|failed", "0",
                   NULL);
  int recorded = 0;
  assert_int_equal(rtq_throughput_record(CL, &recorded), 0);
  uint64_t after;
  assert_int_equal(rtq_client_time_ms(CL, &after), 0);
  if (after / 60000 != now / 60000) skip(); /* the minute turned meanwhile */
  assert_int_equal(recorded, 1);
  assert_int_equal(rtq_throughput_record(CL, &recorded), 0);
  assert_int_equal(recorded, 0);
  rtq_throughput *t;
  assert_int_equal(rtq_get_throughput(CL, NULL, 1, &t), 0);
  assert_int_equal(t->count, 1);
  assert_true(t->points[0].known);
  assert_int_equal(t->points[0].completed, 1);
  assert_int_equal(t->points[0].failed, 1);
  rtq_throughput_free(t);
  assert_int_equal(rtq_get_throughput(CL, "q2", 1, &t), 0);
  assert_false(t->points[0].known); /* q2 had no snapshot the minute before */
  rtq_throughput_free(t);

  /* Run times as finish keeps them: bucket counts and the sum in ms. */
  rtq_test_cmd_int(P.c, "HSET", rtq_keys2_runtime(&P.k, "q1").s, "le_0.1", "2", "0.5", "1", "sum_ms", "42",
                   "count", "3", NULL);
  const char *qs[] = {"q1", "q2"};
  rtq_run_times *rt;
  assert_int_equal(rtq_get_run_times(CL, qs, 2, &rt), 0);
  assert_int_equal(rt->count, 2);
  assert_int_equal(rt->queues[0].count[4], 2); /* 0.1 */
  assert_int_equal(rt->queues[0].count[6], 1); /* 0.5 */
  assert_int_equal(rt->queues[0].total, 3);
  assert_int_equal(rt->queues[0].sum_us, 42000);
  assert_int_equal(rt->queues[1].total, 0);
  rtq_run_times_free(rt);
}

static void test_client_ops2_schedule_keys(void **state) {
  (void)state;
  assert_int_equal(rtq_schedule_add(CL, "nightly", "0 3 * * *", "job", NULL, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(P.c, "HEXISTS", "{rtq}:schedules", "nightly", NULL), 1);
  assert_int_equal(rtq_test_cmd_int(P.c, "ZCARD", "{rtq}:schedules:due", NULL), 1);
  rtq_schedule *list;
  size_t n;
  assert_int_equal(rtq_schedule_list(CL, &list, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(list[0].id, "nightly");
  assert_true(list[0].next_run_ms > 0);
  uint64_t due = list[0].next_run_ms;
  rtq_schedules_free(list, n);
  /* The run at its due time: a v2 task of the default queue, made once. */
  size_t fired = 0;
  assert_int_equal(rtq_schedule_fire_due(CL, due, 10, &fired), 0);
  assert_int_equal(fired, 1);
  char run_id[64];
  snprintf(run_id, sizeof run_id, "cron:nightly:%llu", (unsigned long long)due);
  assert_int_equal(rtq_test_cmd_int(P.c, "EXISTS", rtq_keys2_task(&P.k, "default", run_id).s, NULL), 1);
  assert_int_equal(rtq_test_cmd_int(P.c, "HEXISTS", "{rtq}:schedules:last", "nightly", NULL), 1);
  assert_int_equal(rtq_schedule_fire_due(CL, due, 10, &fired), 0);
  assert_int_equal(fired, 0);
  assert_int_equal(rtq_schedule_set_paused(CL, "nightly", true), 0);
  assert_int_equal(rtq_test_cmd_int(P.c, "ZCARD", "{rtq}:schedules:due", NULL), 0);
  assert_int_equal(rtq_schedule_remove(CL, "nightly"), 0);
  assert_int_equal(rtq_test_cmd_int(P.c, "EXISTS", "{rtq}:schedules", NULL), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_ops2_events_unbatch_64_in_order, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_ops2_events_new_queue_seen, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_ops2_events_hostile_skipped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_ops2_stats_summed_over_queues, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_ops2_throughput_and_run_times, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_ops2_schedule_keys, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
