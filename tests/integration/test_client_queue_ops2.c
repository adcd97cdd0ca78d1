/*
 * test_client_queue_ops2.c - protocol 2 operations in librtq on a private
 * redis-server: a queue's limits (set, read, cleared, refused when
 * invalid, and applied by the claim step), purging a queue in bounded
 * steps, and deleting ended tasks by status, queue and age. The producer
 * and worker sides are played with the scripts' call builders
 * (test_ops2_util.h).
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "client_internal.h"
#include "harness.h"
#include "keys2.h"
#include "test_ops2_util.h"

static rtq_client *CL;
static rtq_conn *C;
static rtq_keys2 K;

static int setup(void **state) {
  (void)state;
  ops2_fixture(&CL, &C, &K);
  rtq__sweep_step_hook = NULL;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq__sweep_step_hook = NULL;
  rtq_client_free(CL);
  rtq_conn_free(C);
  return 0;
}

static long long key_exists(rtq_key2 k) { return rtq_test_cmd_int(C, "EXISTS", k.s, NULL); }

static void test_client_queue_ops2_limits_set_read_clear(void **state) {
  (void)state;
  rtq_queue_limits l = {.rate = 2.5};
  rtq_queue_limit_usage u;
  assert_int_equal(rtq_queue_limit_set(CL, "mail", &l, RTQ_LIMIT_RATE), 0);
  rtq_key2 kl = rtq_keys2_limit(&K, "mail");
  char *rate = rtq_test_cmd_str(C, "HGET", kl.s, "rate", NULL);
  assert_string_equal(rate, "2.5");
  free(rate);
  rtq_queue_limits got;
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, &u), 0);
  assert_true(got.rate == 2.5);
  assert_int_equal(got.burst, 0);
  assert_int_equal(got.concurrency, 0);
  assert_int_equal(u.burst, 3); /* 2.5 rounded up */
  assert_true(u.tokens == 3);   /* a bucket not used yet is full */
  /* A concurrency limit leaves the rate as it is. */
  l = (rtq_queue_limits){.concurrency = 4};
  assert_int_equal(rtq_queue_limit_set(CL, "mail", &l, RTQ_LIMIT_CONCURRENCY), 0);
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, NULL), 0);
  assert_true(got.rate == 2.5);
  assert_int_equal(got.concurrency, 4);
  /* rate 0 removes the rate, and burst with it; concurrency stays. */
  l = (rtq_queue_limits){.rate = 7, .burst = 20};
  assert_int_equal(rtq_queue_limit_set(CL, "mail", &l, RTQ_LIMIT_RATE), 0);
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, &u), 0);
  assert_true(got.rate == 7);
  assert_int_equal(got.burst, 20);
  assert_int_equal(u.burst, 20);
  l = (rtq_queue_limits){0};
  assert_int_equal(rtq_queue_limit_set(CL, "mail", &l, RTQ_LIMIT_RATE), 0);
  assert_int_equal(rtq_test_cmd_int(C, "HEXISTS", kl.s, "rate", NULL), 0);
  assert_int_equal(rtq_test_cmd_int(C, "HEXISTS", kl.s, "burst", NULL), 0);
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, &u), 0);
  assert_true(got.rate == 0);
  assert_true(u.tokens == -1);
  assert_int_equal(got.concurrency, 4);
  /* Clear: the limit and the bucket go. */
  l = (rtq_queue_limits){.rate = 1};
  assert_int_equal(rtq_queue_limit_set(CL, "mail", &l, RTQ_LIMIT_RATE), 0);
  rtq_key2 kb = rtq_keys2_bucket(&K, "mail");
  rtq_test_cmd_int(C, "HSET", kb.s, "t", "0.5", "ts", "1", NULL);
  assert_int_equal(rtq_queue_limit_clear(CL, "mail"), 0);
  assert_int_equal(key_exists(kl), 0);
  assert_int_equal(key_exists(kb), 0);
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, &u), 0);
  assert_true(got.rate == 0 && got.burst == 0 && got.concurrency == 0);
}

static void test_client_queue_ops2_limits_refused_when_invalid(void **state) {
  (void)state;
  static const struct {
    rtq_queue_limits l;
    unsigned which;
    int rc;
    const char *says;
  } cases[] = {
      {{.rate = -1}, RTQ_LIMIT_RATE, RTQ_ERANGE, "out of range"},
      {{.rate = 0.0001}, RTQ_LIMIT_RATE, RTQ_ERANGE, "out of range"},
      {{.rate = 2e6}, RTQ_LIMIT_RATE, RTQ_ERANGE, "out of range"},
      {{.rate = INFINITY}, RTQ_LIMIT_RATE, RTQ_ERANGE, "out of range"},
      {{.rate = NAN}, RTQ_LIMIT_RATE, RTQ_EINVAL, "not a number"},
      {{.rate = 5, .burst = 1000001}, RTQ_LIMIT_RATE, RTQ_ERANGE, "burst"},
      {{.burst = 5}, RTQ_LIMIT_RATE, RTQ_EINVAL, "burst needs a rate"},
      {{.concurrency = 1000001}, RTQ_LIMIT_CONCURRENCY, RTQ_ERANGE, "concurrency"},
      {{.rate = 5}, 0, RTQ_EINVAL, "RTQ_LIMIT_RATE"},
      {{.rate = 5}, 4, RTQ_EINVAL, "RTQ_LIMIT_RATE"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = rtq_queue_limit_set(CL, "mail", &cases[i].l, cases[i].which);
    if (rc != cases[i].rc) fail_msg("case %zu: %d (%s)", i, rc, rtq_client_errstr(CL));
    if (strstr(rtq_client_errstr(CL), cases[i].says) == NULL)
      fail_msg("case %zu: \"%s\" does not say %s", i, rtq_client_errstr(CL), cases[i].says);
  }
  rtq_queue_limits ok = {.rate = 5};
  assert_int_equal(rtq_queue_limit_set(CL, "bad name", &ok, RTQ_LIMIT_RATE), RTQ_EINVAL);
  assert_int_equal(rtq_queue_limit_set(CL, "mail", NULL, RTQ_LIMIT_RATE), RTQ_EINVAL);
  assert_int_equal(rtq_queue_limit_get(CL, "mail", NULL, NULL), RTQ_EINVAL);
  /* Nothing refused was written. */
  assert_int_equal(key_exists(rtq_keys2_limit(&K, "mail")), 0);
  /* A value the workers would not apply (edited by hand) reads as none. */
  rtq_key2 kl = rtq_keys2_limit(&K, "mail");
  rtq_test_cmd_int(C, "HSET", kl.s, "rate", "nan", "burst", "-3", "conc", "1e3", NULL);
  rtq_queue_limits got;
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, NULL), 0);
  assert_true(got.rate == 0 && got.burst == 0 && got.concurrency == 0);
  /* The wrong type under the key: a Redis error, not a crash. */
  rtq_test_cmd_int(C, "DEL", kl.s, NULL);
  rtq_test_cmd_ok(C, "SET", kl.s, "x", NULL);
  assert_int_equal(rtq_queue_limit_set(CL, "mail", &ok, RTQ_LIMIT_RATE), RTQ_EREDIS);
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, NULL), RTQ_EREDIS);
}

/* What rtq_queue_limit_set writes is what the claim step applies. */
static void test_client_queue_ops2_limits_apply_in_the_claim_step(void **state) {
  (void)state;
  ops2_create(C, &K, "mail", 10, 0, NULL);
  rtq_queue_limits l = {.rate = 2, .burst = 3};
  assert_int_equal(rtq_queue_limit_set(CL, "mail", &l, RTQ_LIMIT_RATE), 0);
  assert_int_equal(ops2_take(C, &K, "mail", 10, NULL, NULL), 3);
  rtq_queue_limit_usage u;
  rtq_queue_limits got;
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, &u), 0);
  assert_true(u.tokens >= 0 && u.tokens < 1);
  /* Concurrency: 3 running already, limit 4: one more, then none. */
  l = (rtq_queue_limits){.concurrency = 4};
  assert_int_equal(rtq_queue_limit_clear(CL, "mail"), 0);
  assert_int_equal(rtq_queue_limit_set(CL, "mail", &l, RTQ_LIMIT_CONCURRENCY), 0);
  /* The three taken before the limit hold no lease: 4 more fit. */
  assert_int_equal(ops2_take(C, &K, "mail", 10, NULL, NULL), 4);
  assert_int_equal(rtq_queue_limit_get(CL, "mail", &got, &u), 0);
  assert_int_equal(u.running, 4);
  assert_int_equal(ops2_take(C, &K, "mail", 10, NULL, NULL), 0);
  /* Cleared: the rest run. */
  assert_int_equal(rtq_queue_limit_clear(CL, "mail"), 0);
  assert_int_equal(ops2_take(C, &K, "mail", 10, NULL, NULL), 3);
}

static void test_client_queue_ops2_purge_a_thousand_pending(void **state) {
  (void)state;
  static char ids[1000][RTQ_ID2_LEN + 1];
  static char later[60][RTQ_ID2_LEN + 1];
  char other[5][RTQ_ID2_LEN + 1], run1[1][RTQ_ID2_LEN + 1];
  ops2_create(C, &K, "bulk", 1, 0, NULL);
  assert_int_equal(ops2_take(C, &K, "bulk", 1, run1, NULL), 1); /* running: not touched */
  ops2_create(C, &K, "bulk", 1000, 0, ids);
  ops2_create(C, &K, "bulk", 60, 3600000, later);
  ops2_create(C, &K, "other", 5, 0, other);
  rtq_purge_counts n;
  assert_int_equal(rtq_queue_purge(CL, "bulk", 0, &n), 0);
  assert_int_equal(n.cancelled, 1060);
  assert_int_equal(n.dropped, 0);
  assert_int_equal(n.left, 0);
  assert_int_equal(n.calls, 11); /* 100 per step */
  char s[16];
  for (int i = 0; i < 1000; i++) assert_string_equal(ops2_status(C, &K, "bulk", ids[i], s), "cancelled");
  for (int i = 0; i < 60; i++) assert_string_equal(ops2_status(C, &K, "bulk", later[i], s), "cancelled");
  assert_string_equal(ops2_status(C, &K, "bulk", run1[0], s), "running");
  for (int i = 0; i < 5; i++) assert_string_equal(ops2_status(C, &K, "other", other[i], s), "pending");
  assert_int_equal(ops2_llen(C, rtq_keys2_queue(&K, "bulk")), 0);
  assert_int_equal(rtq_test_cmd_int(C, "ZCARD", rtq_keys2_delayed(&K, "bulk").s, NULL), 0);
  assert_int_equal(ops2_llen(C, rtq_keys2_done(&K, "bulk", RTQ_STATUS_CANCELLED)), 1060);
  char *cancelled = rtq_test_cmd_str(C, "HGET", rtq_keys2_stats(&K, "bulk").s, "cancelled", NULL);
  assert_string_equal(cancelled, "1060");
  free(cancelled);
  /* Again: nothing left to do, one step. */
  assert_int_equal(rtq_queue_purge(CL, "bulk", 0, &n), 0);
  assert_int_equal(n.cancelled, 0);
  assert_int_equal(n.calls, 1);
  assert_int_equal(rtq_queue_purge(CL, "bad name", 0, &n), RTQ_EINVAL);
  assert_int_equal(rtq_queue_purge(CL, "bulk", -1, &n), RTQ_EINVAL);
}

/* A producer that keeps enqueuing: each step of the purge, 100 more. */
static rtq_conn *HOOK_C;
static int hook_steps;
static void enqueue_meanwhile(const char *queue) {
  hook_steps++;
  assert_true(hook_steps < 100); /* the purge must end long before */
  ops2_create(HOOK_C, &K, queue, 100, 0, NULL);
}

static void test_client_queue_ops2_purge_ends_while_tasks_keep_coming(void **state) {
  (void)state;
  static char ids[500][RTQ_ID2_LEN + 1];
  ops2_create(C, &K, "bulk", 500, 0, ids);
  HOOK_C = C;
  hook_steps = 0;
  rtq__sweep_step_hook = enqueue_meanwhile;
  rtq_purge_counts n;
  assert_int_equal(rtq_queue_purge(CL, "bulk", 0, &n), 0);
  rtq__sweep_step_hook = NULL;
  /* The 500 present at the start, oldest first; what came since stays. */
  assert_int_equal(n.cancelled, 500);
  assert_int_equal(n.calls, 5);
  assert_int_equal(n.left, 400); /* as its last step saw them */
  char s[16];
  for (int i = 0; i < 500; i++) assert_string_equal(ops2_status(C, &K, "bulk", ids[i], s), "cancelled");
  assert_int_equal(ops2_llen(C, rtq_keys2_queue(&K, "bulk")), 500);
}

static void let_time_pass(const char *queue) {
  (void)queue;
  struct timespec ts = {0, 5 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

static void test_client_queue_ops2_purge_stops_at_its_time_bound(void **state) {
  (void)state;
  ops2_create(C, &K, "bulk", 1000, 0, NULL);
  rtq__sweep_step_hook = let_time_pass;
  rtq_purge_counts n;
  assert_int_equal(rtq_queue_purge(CL, "bulk", 1, &n), RTQ_ETIMEDOUT);
  assert_int_equal(n.calls, 1);
  assert_int_equal(n.cancelled, 100);
  assert_int_equal(n.left, 900);
  assert_non_null(strstr(rtq_client_errstr(CL), "run it again"));
  rtq__sweep_step_hook = NULL;
  /* Run again, it finishes. */
  assert_int_equal(rtq_queue_purge(CL, "bulk", 0, &n), 0);
  assert_int_equal(n.cancelled, 900);
}

/* Pretends task id of queue ended at e (ms). */
static void set_ended_at(const char *queue, const char *id, uint64_t e) {
  rtq_key2 t = rtq_keys2_task(&K, queue, id);
  char v[24];
  snprintf(v, sizeof v, "%llu", (unsigned long long)e);
  rtq_test_cmd_int(C, "HSET", t.s, "e", v, NULL);
}

static void test_client_queue_ops2_delete_by_status_queue_and_age(void **state) {
  (void)state;
  /* a: 250 completed, 3 failed, 2 pending; b: 4 completed. */
  ops2_create(C, &K, "a", 255, 0, NULL);
  ops2_end(C, &K, "a", 250, RTQ_STATUS_COMPLETED);
  ops2_end(C, &K, "a", 3, RTQ_STATUS_FAILED);
  ops2_create(C, &K, "b", 4, 0, NULL);
  ops2_end(C, &K, "b", 4, RTQ_STATUS_COMPLETED);
  rtq_key2 a_done = rtq_keys2_done(&K, "a", RTQ_STATUS_COMPLETED);
  rtq_key2 a_failed = rtq_keys2_done(&K, "a", RTQ_STATUS_FAILED);
  rtq_key2 b_done = rtq_keys2_done(&K, "b", RTQ_STATUS_COMPLETED);
  assert_int_equal(ops2_llen(C, a_done), 250);
  /* One index entry whose task is already gone. */
  char *gone = rtq_test_cmd_str(C, "LINDEX", a_done.s, "-1", NULL);
  rtq_test_cmd_int(C, "DEL", rtq_keys2_task(&K, "a", gone).s, NULL);
  free(gone);
  rtq_delete_counts n;
  assert_int_equal(rtq_tasks_delete(CL, RTQ_STATUS_COMPLETED, "a", 0, 0, &n), 0);
  assert_int_equal(n.deleted, 249);
  assert_int_equal(n.dropped, 1);
  assert_int_equal(n.queues, 1);
  assert_int_equal(n.calls, 3);
  assert_int_equal(ops2_llen(C, a_done), 0);
  assert_int_equal(ops2_llen(C, a_failed), 3);
  assert_int_equal(ops2_llen(C, b_done), 4);
  /* The pending tasks and the failed ones are still there. */
  assert_int_equal(ops2_llen(C, rtq_keys2_queue(&K, "a")), 2);
  /* By age: two failed tasks ended two hours ago, one just now. */
  uint64_t now;
  assert_int_equal(rtq_client_time_ms(CL, &now), 0);
  char old1[RTQ_ID2_LEN + 1], old2[RTQ_ID2_LEN + 1], young[RTQ_ID2_LEN + 1];
  char *s = rtq_test_cmd_str(C, "LINDEX", a_failed.s, "-1", NULL);
  snprintf(old1, sizeof old1, "%s", s);
  free(s);
  s = rtq_test_cmd_str(C, "LINDEX", a_failed.s, "-2", NULL);
  snprintf(old2, sizeof old2, "%s", s);
  free(s);
  s = rtq_test_cmd_str(C, "LINDEX", a_failed.s, "0", NULL);
  snprintf(young, sizeof young, "%s", s);
  free(s);
  set_ended_at("a", old1, now - 7200000);
  set_ended_at("a", old2, now - 7100000);
  assert_int_equal(rtq_tasks_delete(CL, RTQ_STATUS_FAILED, "a", 3600000, 0, &n), 0);
  assert_int_equal(n.deleted, 2);
  char st[16];
  assert_string_equal(ops2_status(C, &K, "a", old1, st), "");
  assert_string_equal(ops2_status(C, &K, "a", young, st), "failed");
  assert_int_equal(ops2_llen(C, a_failed), 1);
  /* Every queue of the registry. */
  assert_int_equal(rtq_tasks_delete(CL, RTQ_STATUS_COMPLETED, NULL, 0, 0, &n), 0);
  assert_int_equal(n.deleted, 4);
  assert_int_equal(n.queues, 2);
  assert_int_equal(ops2_llen(C, b_done), 0);
  /* Refused: a status that has not ended, bad queue, age out of range. */
  assert_int_equal(rtq_tasks_delete(CL, RTQ_STATUS_PENDING, NULL, 0, 0, &n), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(CL), "only ended tasks"));
  assert_int_equal(rtq_tasks_delete(CL, RTQ_STATUS_RUNNING, "a", 0, 0, &n), RTQ_EINVAL);
  assert_int_equal(rtq_tasks_delete(CL, (rtq_status)42, "a", 0, 0, &n), RTQ_EINVAL);
  assert_int_equal(rtq_tasks_delete(CL, RTQ_STATUS_FAILED, "bad name", 0, 0, &n), RTQ_EINVAL);
  assert_int_equal(rtq_tasks_delete(CL, RTQ_STATUS_FAILED, "a", 315360000001ull, 0, &n), RTQ_ERANGE);
  assert_int_equal(ops2_llen(C, rtq_keys2_queue(&K, "a")), 2);
  assert_int_equal(ops2_llen(C, a_failed), 1);
}

/* Finishing meanwhile: a worker that keeps ending tasks while the delete
 * runs cannot keep it going. */
static void finish_meanwhile(const char *queue) {
  hook_steps++;
  assert_true(hook_steps < 100);
  ops2_create(HOOK_C, &K, queue, 50, 0, NULL);
  ops2_end(HOOK_C, &K, queue, 50, RTQ_STATUS_COMPLETED);
}

static void test_client_queue_ops2_delete_ends_while_tasks_keep_ending(void **state) {
  (void)state;
  ops2_create(C, &K, "a", 300, 0, NULL);
  ops2_end(C, &K, "a", 300, RTQ_STATUS_COMPLETED);
  HOOK_C = C;
  hook_steps = 0;
  rtq__sweep_step_hook = finish_meanwhile;
  rtq_delete_counts n;
  assert_int_equal(rtq_tasks_delete(CL, RTQ_STATUS_COMPLETED, "a", 0, 0, &n), 0);
  rtq__sweep_step_hook = NULL;
  assert_int_equal(n.deleted, 300);
  assert_int_equal(n.calls, 3);
  assert_int_equal(ops2_llen(C, rtq_keys2_done(&K, "a", RTQ_STATUS_COMPLETED)), 150);
}

/* Every max_task_history the settings take (0..100000000) works with the
 * scripts, whose cap is 1..10000000: 0 keeps no done list, a larger one is
 * cut to the scripts' bound. A cancel and a purge under each. */
static void test_client_queue_ops2_any_history_setting_cancels_and_purges(void **state) {
  (void)state;
  const char *settings[] = {"0", "100000000"};
  for (int i = 0; i < 2; i++) {
    rtq_test_redis_flush();
    assert_int_equal(rtq_scripts2_load(C), 0);
    setenv("RTQ_MAX_TASK_HISTORY", settings[i], 1);
    rtq_client *cl = ops2_client();
    unsetenv("RTQ_MAX_TASK_HISTORY");
    char one[1][RTQ_ID2_LEN + 1], more[3][RTQ_ID2_LEN + 1];
    ops2_create(C, &K, "hist", 1, 0, one);
    int requested = -1;
    assert_int_equal(rtq_cancel_task(cl, one[0], &requested), 0);
    assert_int_equal(requested, 0);
    char s[16];
    assert_string_equal(ops2_status(C, &K, "hist", one[0], s), "cancelled");
    ops2_create(C, &K, "hist", 3, 0, more);
    rtq_purge_counts n;
    assert_int_equal(rtq_queue_purge(cl, "hist", 0, &n), 0);
    assert_int_equal(n.cancelled, 3);
    /* 0: no done list; otherwise every cancelled id is listed. */
    assert_int_equal(ops2_llen(C, rtq_keys2_done(&K, "hist", RTQ_STATUS_CANCELLED)), i == 0 ? 0 : 4);
    rtq_client_free(cl);
  }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_client_queue_ops2_limits_set_read_clear),
      T(test_client_queue_ops2_limits_refused_when_invalid),
      T(test_client_queue_ops2_limits_apply_in_the_claim_step),
      T(test_client_queue_ops2_purge_a_thousand_pending),
      T(test_client_queue_ops2_purge_ends_while_tasks_keep_coming),
      T(test_client_queue_ops2_purge_stops_at_its_time_bound),
      T(test_client_queue_ops2_delete_by_status_queue_and_age),
      T(test_client_queue_ops2_delete_ends_while_tasks_keep_ending),
      T(test_client_queue_ops2_any_history_setting_cancels_and_purges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
