/*
 * test_schedule.c - periodic tasks (client.h, "periodic tasks") against a
 * real redis-server: the library's calls, the scheduler's step with a
 * chosen "now" (so the runs owed are exact), exactly once when a leader
 * died between a run and its bookkeeping or when two run the step at
 * once, pause and resume, each change seen whole by a concurrent reader,
 * and the broker's sweep running a schedule.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cron.h"
#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "test_client_fixture2.h"

static uint64_t redis_now(void) {
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(C, &ms), 0);
  return ms;
}

static rtq_schedule *find(rtq_schedule *l, size_t n, const char *id) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(l[i].id, id) == 0) return &l[i];
  return NULL;
}

static long long queue_len(const char *q) {
  return rtq_test_cmd_int(C, "LLEN", rtq_keys2_queue(&K, q).s, NULL);
}

static int task_exists(const char *sid, uint64_t due) {
  char id[160];
  snprintf(id, sizeof id, "cron:%s:%llu", sid, (unsigned long long)due);
  return (int)rtq_test_cmd_int(C, "EXISTS", rtq_keys2_task(&K, "default", id).s, NULL);
}

static void test_schedule_add_list_remove_and_refusals(void **state) {
  (void)state;
  rtq_args *args = NULL;
  char why[128];
  assert_int_equal(rtq_args_from_json("{\"to\":\"ops\"}", &args, why, sizeof why), 0);
  rtq_schedule_options o = {.queue = "reports", .timeout_ms = 60000, .tz = "Europe/Berlin"};
  uint64_t before = redis_now();
  assert_int_equal(rtq_schedule_add(CL, "nightly", "30 2 * * *", "report.build", args, &o), 0);
  assert_int_equal(rtq_schedule_add(CL, "tick", "@every 10s", "rtq.noop", NULL, NULL), 0);
  rtq_args_free(args);

  rtq_schedule *l = NULL;
  size_t n = 0;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(l[0].id, "nightly"); /* sorted by id */
  rtq_schedule *s = find(l, n, "nightly");
  assert_string_equal(s->cron, "30 2 * * *");
  assert_string_equal(s->queue, "reports");
  assert_string_equal(s->tz, "Europe/Berlin");
  assert_string_equal(s->args_json, "{\"to\":\"ops\"}");
  assert_int_equal(s->timeout_ms, 60000);
  assert_int_equal(s->last_run_ms, 0);
  rtq_cron c;
  int64_t want = 0;
  assert_int_equal(rtq_cron_parse("30 2 * * *", &c, NULL, 0), 0);
  assert_int_equal(rtq_cron_next(&c, "Europe/Berlin", 0, (int64_t)s->created_at, &want), 0);
  assert_int_equal(s->next_run_ms, (uint64_t)want);
  s = find(l, n, "tick");
  assert_string_equal(s->queue, "default");
  assert_true(s->next_run_ms >= before + 10000 && s->next_run_ms <= redis_now() + 10000);
  rtq_schedules_free(l, n);

  /* Refusals name what is wrong and write nothing. */
  static const struct {
    const char *id, *cron, *name, *tz, *says;
  } bad[] = {
      {"x", "61 * * * *", "job", NULL, "minute"},
      {"x", "@every 0s", "job", NULL, "@every"},
      {"x", "@hourly", "job", "Mars/Olympus", "time zone"},
      {"bad id", "@hourly", "job", NULL, "schedule id"},
      {"x", "@hourly", "bad name", NULL, "name"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rtq_schedule_options bo = {.tz = bad[i].tz};
    assert_int_equal(rtq_schedule_add(CL, bad[i].id, bad[i].cron, bad[i].name, NULL, &bo), RTQ_EINVAL);
    if (strstr(rtq_client_errstr(CL), bad[i].says) == NULL)
      fail_msg("%s: \"%s\" does not say %s", bad[i].cron, rtq_client_errstr(CL), bad[i].says);
  }
  char long_id[RTQ_SCHEDULE_ID_MAX + 2];
  memset(long_id, 'a', sizeof long_id - 1);
  long_id[sizeof long_id - 1] = '\0';
  assert_int_equal(rtq_schedule_add(CL, long_id, "@hourly", "job", NULL, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_test_cmd_int(C, "HLEN", rtq_keys2_schedules(&K).s, NULL), 2);

  assert_int_equal(rtq_schedule_remove(CL, "tick"), 0);
  assert_int_equal(rtq_schedule_remove(CL, "tick"), RTQ_ENOTFOUND);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_schedules_due(&K).s, NULL), 1);
}

/* The step with a chosen now: the latest run owed, once. */
static void test_schedule_fire_due_runs_the_latest_missed_once(void **state) {
  (void)state;
  assert_int_equal(rtq_schedule_add(CL, "tick", "@every 10s", "rtq.noop", NULL, NULL), 0);
  rtq_schedule *l = NULL;
  size_t n = 0, fired = 9;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  uint64_t t0 = l[0].created_at;
  rtq_schedules_free(l, n);

  assert_int_equal(rtq_schedule_fire_due(CL, t0 + 5000, 100, &fired), 0);
  assert_int_equal(fired, 0); /* not due yet */
  /* 35 s later: runs at t0+10, +20, +30 were owed; only +30 runs. */
  assert_int_equal(rtq_schedule_fire_due(CL, t0 + 35000, 100, &fired), 0);
  assert_int_equal(fired, 1);
  assert_int_equal(task_exists("tick", t0 + 30000), 1);
  assert_int_equal(task_exists("tick", t0 + 20000), 0);
  assert_int_equal(queue_len("default"), 1);
  assert_int_equal(rtq_schedule_fire_due(CL, t0 + 35000, 100, &fired), 0);
  assert_int_equal(fired, 0);
  assert_int_equal(rtq_schedule_fire_due(CL, t0 + 40000, 100, &fired), 0);
  assert_int_equal(fired, 1);
  assert_int_equal(task_exists("tick", t0 + 40000), 1);
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_int_equal(l[0].last_run_ms, t0 + 40000);
  assert_int_equal(l[0].next_run_ms, t0 + 50000);
  rtq_schedules_free(l, n);
}

/* Args holding a NUL byte ("\u0000") are kept by the definition, listed,
 * and reach the task a run creates whole. */
static void test_schedule_args_with_a_nul_byte_reach_the_task(void **state) {
  (void)state;
  rtq_args *args = NULL;
  char why[128];
  assert_int_equal(rtq_args_from_json("{\"v\":\"a\\u0000b\"}", &args, why, sizeof why), 0);
  assert_int_equal(rtq_schedule_add(CL, "nul", "@every 10s", "rtq.noop", args, NULL), 0);
  rtq_args_free(args);
  rtq_schedule *l = NULL;
  size_t n = 0, fired = 0;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(l[0].args_json, "{\"v\":\"a\\u0000b\"}");
  uint64_t t0 = l[0].created_at;
  rtq_schedules_free(l, n);
  assert_int_equal(rtq_schedule_fire_due(CL, t0 + 10000, 100, &fired), 0);
  assert_int_equal(fired, 1);
  char id[160];
  snprintf(id, sizeof id, "cron:nul:%llu", (unsigned long long)(t0 + 10000));
  rtq_task *t = NULL;
  char *json = NULL;
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  assert_int_equal(rtq_task_args_json(t, &json), 0);
  assert_string_equal(json, "{\"v\":\"a\\u0000b\"}");
  free(json);
  rtq_task_free(t);
}

/* A leader that created the run and died before recording it; then two
 * schedulers at once: still one task per run. */
static void test_schedule_exactly_once_at_the_worst_moment(void **state) {
  (void)state;
  assert_int_equal(rtq_schedule_add(CL, "tick", "@every 10s", "rtq.noop", NULL, NULL), 0);
  rtq_schedule *l = NULL;
  size_t n = 0, fired = 0, fired2 = 0;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  uint64_t t0 = l[0].created_at;
  rtq_schedules_free(l, n);

  /* The dead leader's half step: the run's task exists, nothing recorded. */
  char id[160];
  snprintf(id, sizeof id, "cron:tick:%llu", (unsigned long long)(t0 + 10000));
  rtq_task_options o = {.id = id};
  assert_int_equal(rtq_create_task(CL, "rtq.noop", NULL, &o, NULL, NULL), 0);
  assert_int_equal(rtq_schedule_fire_due(CL, t0 + 12000, 100, &fired), 0);
  assert_int_equal(fired, 0); /* it existed */
  assert_int_equal(queue_len("default"), 1);
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_int_equal(l[0].last_run_ms, t0 + 10000); /* recorded now */
  rtq_schedules_free(l, n);

  /* Two schedulers that both think they lead, with their own clients. */
  rtq_client *other = NULL;
  rtq_client_options co = {.redis_url = rtq_test_redis_url(), .protocol = 2};
  assert_int_equal(rtq_client_new(&co, &other), 0);
  assert_int_equal(rtq_schedule_fire_due(CL, t0 + 21000, 100, &fired), 0);
  assert_int_equal(rtq_schedule_fire_due(other, t0 + 21000, 100, &fired2), 0);
  assert_int_equal(fired + fired2, 1);
  /* The same run recomputed by a scheduler that read the old last run:
   * put the bookkeeping back and fire again. */
  char last[24];
  snprintf(last, sizeof last, "%llu", (unsigned long long)(t0 + 10000));
  rtq_test_cmd_int(C, "HSET", rtq_keys2_schedules_last(&K).s, "tick", last, NULL);
  rtq_test_cmd_int(C, "ZADD", rtq_keys2_schedules_due(&K).s, "0", "tick", NULL);
  assert_int_equal(rtq_schedule_fire_due(other, t0 + 21000, 100, &fired2), 0);
  assert_int_equal(fired2, 0);
  assert_int_equal(queue_len("default"), 2);
  rtq_client_free(other);
}

static void test_schedule_pause_and_resume(void **state) {
  (void)state;
  assert_int_equal(rtq_schedule_add(CL, "tick", "@every 10s", "rtq.noop", NULL, NULL), 0);
  assert_int_equal(rtq_schedule_set_paused(CL, "tick", true), 0);
  size_t fired = 0, n = 0;
  uint64_t now = redis_now();
  assert_int_equal(rtq_schedule_fire_due(CL, now + 3600000, 100, &fired), 0);
  assert_int_equal(fired, 0);
  rtq_schedule *l = NULL;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_true(l[0].paused);
  assert_int_equal(l[0].next_run_ms, 0);
  rtq_schedules_free(l, n);
  /* Re-adding keeps it paused. */
  assert_int_equal(rtq_schedule_add(CL, "tick", "@every 20s", "rtq.noop", NULL, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_schedules_due(&K).s, NULL), 0);
  assert_int_equal(rtq_schedule_set_paused(CL, "tick", false), 0);
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_false(l[0].paused);
  assert_true(l[0].next_run_ms > now);
  assert_string_equal(l[0].cron, "@every 20s");
  rtq_schedules_free(l, n);
  assert_int_equal(rtq_schedule_set_paused(CL, "nope", true), RTQ_ENOTFOUND);
}

/* What a reader sees of schedule "flip" in one MULTI: bit 0 its
 * definition, bit 1 its due entry, bit 2 its last-run record; bit 3 set
 * when the definition says paused. */
static int snapshot(rtq_conn *r) {
  rtq_keys2 k = K;
  rtq_argv a[5];
  const char *words[5][3] = {{"MULTI"},
                             {"HGET", rtq_keys2_schedules(&k).s, "flip"},
                             {"ZSCORE", rtq_keys2_schedules_due(&k).s, "flip"},
                             {"HEXISTS", rtq_keys2_schedules_last(&k).s, "flip"},
                             {"EXEC"}};
  for (int i = 0; i < 5; i++) {
    rtq_argv_init(&a[i]);
    for (int w = 0; w < 3 && words[i][w] != NULL; w++) rtq_argv_add_str(&a[i], words[i][w]);
    assert_int_equal(rtq_conn_append(r, &a[i]), 0);
  }
  redisReply *x = NULL;
  int bits = -1;
  for (int i = 0; i < 5; i++) {
    assert_int_equal(rtq_conn_get_reply(r, &x), 0);
    if (i == 4) {
      assert_int_equal(x->type, REDIS_REPLY_ARRAY);
      assert_int_equal(x->elements, 3);
      const redisReply *def = x->element[0];
      bits = (def->type == REDIS_REPLY_STRING) | (x->element[1]->type == REDIS_REPLY_STRING) << 1 |
             (x->element[2]->integer == 1) << 2;
      if (def->type == REDIS_REPLY_STRING && strstr(def->str, "\"paused\":true") != NULL) bits |= 8;
    }
    freeReplyObject(x);
    rtq_argv_destroy(&a[i]);
  }
  return bits;
}

static atomic_int flipping, flip_failures;

/* cmocka's asserts belong to the main thread: this one counts failures. */
static void *flipper(void *arg) {
  (void)arg;
  for (int i = 0; i < 150; i++) {
    int rc = rtq_schedule_add(CL, "flip", "@every 10s", "rtq.noop", NULL, NULL);
    if (rc == 0) rc = rtq_schedule_set_paused(CL, "flip", true);
    if (rc == 0) rc = rtq_schedule_set_paused(CL, "flip", false);
    if (rc == 0) rc = rtq_schedule_remove(CL, "flip");
    if (rc != 0) atomic_fetch_add(&flip_failures, 1);
  }
  atomic_store(&flipping, 0);
  return NULL;
}

/* Each call's writes land together: a reader taking snapshots while a
 * schedule is added, paused, resumed and removed over and over sees only
 * whole states: none of its keys; an unpaused definition scored, with its
 * last-run record; or a paused one, unscored, with its record. Written
 * one command at a time, the reader saw the definition without its score. */
static void test_schedule_changes_are_seen_whole(void **state) {
  (void)state;
  rtq_conn *reader = rtq_test_conn();
  pthread_t t;
  atomic_store(&flipping, 1);
  assert_int_equal(pthread_create(&t, NULL, flipper, NULL), 0);
  int seen[16] = {0};
  /* Bounded: the flipper makes 600 calls, each a round trip. */
  for (int i = 0; i < 200000 && atomic_load(&flipping); i++) {
    int bits = snapshot(reader);
    assert_in_range(bits, 0, 15);
    seen[bits]++;
  }
  assert_int_equal(pthread_join(t, NULL), 0);
  rtq_conn_free(reader);
  assert_int_equal(atomic_load(&flip_failures), 0);
  for (int b = 0; b < 16; b++)
    if (b != 0 && b != 7 && b != 13 && seen[b] != 0) fail_msg("a reader saw a part of a change: state %d, %d times", b, seen[b]);
  assert_true(seen[0] + seen[7] + seen[13] > 0);
}

/* A Redis user that may not run MULTI gets the refusal and nothing is
 * written: the commands wait for MULTI's answer. Pipelined behind a
 * refused MULTI, each ran on its own: the schedule was there, and the call
 * still failed. */
static void test_schedule_refused_multi_writes_nothing(void **state) {
  (void)state;
  rtq_test_cmd_ok(C, "ACL", "SETUSER", "nomulti", "reset", "on", ">pw", "~*", "&*", "+@all", "-multi", NULL);
  const char *url = rtq_test_redis_url(); /* redis://host:port/0 */
  assert_true(strncmp(url, "redis://", 8) == 0);
  char with_user[256];
  snprintf(with_user, sizeof with_user, "redis://nomulti:pw@%s", url + 8);
  rtq_client_options o = {.redis_url = with_user, .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&o, &c), 0);
  assert_int_equal(rtq_schedule_add(c, "nomulti", "@every 10s", "rtq.noop", NULL, NULL), RTQ_EREDIS);
  assert_non_null(strstr(rtq_client_errstr(c), "multi"));
  assert_int_equal(rtq_test_cmd_int(C, "HEXISTS", rtq_keys2_schedules(&K).s, "nomulti", NULL), 0);
  assert_int_equal(rtq_test_cmd_int(C, "HEXISTS", rtq_keys2_schedules_last(&K).s, "nomulti", NULL), 0);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_schedules_due(&K).s, NULL), 0);
  /* The connection stays in step: the next call's replies are its own. */
  assert_int_equal(rtq_schedule_remove(c, "nomulti"), RTQ_EREDIS);
  assert_int_equal(rtq_create_task(c, "rtq.noop", NULL, NULL, NULL, NULL), 0);
  rtq_client_free(c);
  assert_int_equal(rtq_test_cmd_int(C, "ACL", "DELUSER", "nomulti", NULL), 1);
}

/* An expression that parses but never matches a day (30 February) is
 * refused before anything is written: no new schedule appears, and an
 * existing one keeps its definition and its next run. */
static void test_schedule_add_refuses_a_cron_that_never_runs(void **state) {
  (void)state;
  assert_int_equal(rtq_schedule_add(CL, "never", "0 0 30 2 *", "job", NULL, NULL), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(CL), "no next run"));
  assert_int_equal(rtq_test_cmd_int(C, "EXISTS", rtq_keys2_schedules(&K).s, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(C, "EXISTS", rtq_keys2_schedules_last(&K).s, NULL), 0);

  assert_int_equal(rtq_schedule_add(CL, "daily", "@daily", "job", NULL, NULL), 0);
  rtq_schedule *l = NULL;
  size_t n = 0;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  uint64_t next = l[0].next_run_ms;
  rtq_schedules_free(l, n);
  assert_int_equal(rtq_schedule_add(CL, "daily", "0 0 31 2 *", "job", NULL, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(l[0].cron, "@daily");
  assert_int_equal(l[0].next_run_ms, next);
  rtq_schedules_free(l, n);
}

/* A definition written by hand without args lists them as an empty map
 * (and the listing frees what it made for that: the --sanitize build's
 * leak check sees it). */
static void test_schedule_list_definition_without_args(void **state) {
  (void)state;
  rtq_test_cmd_int(C, "HSET", rtq_keys2_schedules(&K).s, "bare",
                   "{\"cron\":\"@hourly\",\"name\":\"job\",\"queue\":\"default\"}", NULL);
  rtq_schedule *l = NULL;
  size_t n = 0;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_int_equal(n, 1);
  assert_string_equal(l[0].id, "bare");
  assert_string_equal(l[0].args_json, "{}");
  rtq_schedules_free(l, n);
}

/* A definition broken by hand is set aside; the others still run. */
static void test_schedule_broken_definition_does_not_block_others(void **state) {
  (void)state;
  assert_int_equal(rtq_schedule_add(CL, "good", "@every 10s", "rtq.noop", NULL, NULL), 0);
  rtq_test_cmd_int(C, "HSET", rtq_keys2_schedules(&K).s, "broken", "{not json", NULL);
  rtq_test_cmd_int(C, "ZADD", rtq_keys2_schedules_due(&K).s, "0", "broken", NULL);
  size_t fired = 0;
  int rc = rtq_schedule_fire_due(CL, redis_now() + 11000, 100, &fired);
  assert_true(rc == 0 || rc == RTQ_EDECODE);
  assert_int_equal(fired, 1);
  char *score = rtq_test_cmd_str(C, "ZSCORE", rtq_keys2_schedules_due(&K).s, "broken", NULL);
  assert_null(score); /* set aside: not due again every sweep */
  rtq_schedule *l = NULL;
  size_t n = 0;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_int_equal(n, 1); /* the broken one is not listed */
  rtq_schedules_free(l, n);
}

/* rtq-broker's sweep runs a due schedule (deadline, not a sleep). */
static void test_schedule_broker_sweep_enqueues_runs(void **state) {
  (void)state;
  assert_int_equal(rtq_schedule_add(CL, "sec", "@every 1s", "rtq.noop", NULL, NULL), 0);
  char bin[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  char cmdline[1200];
  snprintf(cmdline, sizeof cmdline, "%s --once --protocol 2 --redis '%s' >/dev/null 2>&1", bin, rtq_test_redis_url());
  RTQ_TEST_WAIT_FOR((system(cmdline), queue_len("default") >= 1), 5000);
  rtq_schedule *l = NULL;
  size_t n = 0;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_true(l[0].last_run_ms > 0);
  assert_int_equal(task_exists("sec", l[0].last_run_ms), 1);
  rtq_schedules_free(l, n);
  char *runs = rtq_test_cmd_str(C, "HGET", rtq_keys2_broker(&K).s, "schedule_runs", NULL);
  assert_non_null(runs);
  assert_true(atoi(runs) >= 1);
  free(runs);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_schedule_add_list_remove_and_refusals),
      T(test_schedule_fire_due_runs_the_latest_missed_once),
      T(test_schedule_args_with_a_nul_byte_reach_the_task),
      T(test_schedule_exactly_once_at_the_worst_moment),
      T(test_schedule_pause_and_resume),
      T(test_schedule_changes_are_seen_whole),
      T(test_schedule_refused_multi_writes_nothing),
      T(test_schedule_add_refuses_a_cron_that_never_runs),
      T(test_schedule_list_definition_without_args),
      T(test_schedule_broken_definition_does_not_block_others),
      T(test_schedule_broker_sweep_enqueues_runs),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
