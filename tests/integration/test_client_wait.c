/*
 * test_client_wait.c - rtq_wait_for_task against a real redis-server:
 * completion by another thread, a task already ended, the race where the
 * task ends between the subscribe and the status check (deterministic,
 * through the wait seam, and as a loop of free-running threads), timeouts,
 * an expired hash (history off), a cancelled running task, and proof that
 * waiting does not poll (INFO commandstats). The channel is the task's
 * shard channel and the waiter registers with the wait script.
 */
#include <pthread.h>
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
#include "test_client_fixture2.h"
#include "test_client_fake_worker2.h"

static void create(char *id) {
  if (rtq_create_task(CL, "job", NULL, NULL, id, NULL) != 0)
    fail_msg("create: %s", rtq_client_errstr(CL));
}

/* PUBSUB SHARDNUMSUB of a task's channel, on the helper's own
 * connection. */
static long long subscribers(rtq_conn *c, const char *id) {
  rtq_key2 ch2 = rtq_keys2_chan_waiter(&K, "default", id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "PUBSUB");
  rtq_argv_add_str(&a, "SHARDNUMSUB");
  rtq__argv_add_key2(&a, ch2);
  redisReply *r = NULL;
  long long n = -1;
  if (rtq_conn_command(c, &a, &r) == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
    n = r->element[1]->integer;
  if (r != NULL) freeReplyObject(r);
  rtq_argv_destroy(&a);
  return n;
}

/* A helper thread playing the worker. It never asserts; main checks rc. */
typedef struct helper {
  pthread_t th;
  rtq_conn *conn;          /* opened by main, used only here */
  const char *id;
  int wait_for_subscriber; /* finish only once the waiter listens */
  int mode;                /* 0 complete, 1 fake terminal event + DEL,
                            * 2 kill the subscription, then complete */
  int rc;
} helper;

/* Whether the waiter has read the status once since the helper started:
 * the wait script's `wt` mark on the task. */
static bool waiter_checked(helper *h) {
  rtq_key2 t = rtq_keys2_task(&K, "default", h->id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HEXISTS");
  rtq__argv_add_key2(&a, t);
  rtq_argv_add_str(&a, "wt");
  redisReply *r = NULL;
  bool yes = rtq_conn_command(h->conn, &a, &r) == 0 && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  if (r != NULL) freeReplyObject(r);
  rtq_argv_destroy(&a);
  return yes;
}

static void wait_subscriber(rtq_conn *c, const char *id) {
  uint64_t deadline = rtq_test_now_ms() + 5000;
  for (int i = 0; subscribers(c, id) < 1 && rtq_test_now_ms() < deadline; i++)
    rtq__test_poll_pause(i);
}

static void *helper_main(void *arg) {
  helper *h = arg;
  if (h->wait_for_subscriber) wait_subscriber(h->conn, h->id);
  if (h->mode == 2) {
    /* Cut the waiter's subscription; it must come back by itself. */
    rtq_argv k;
    rtq_argv_init(&k);
    rtq_argv_add_str(&k, "CLIENT");
    rtq_argv_add_str(&k, "KILL");
    rtq_argv_add_str(&k, "TYPE");
    rtq_argv_add_str(&k, "pubsub");
    h->rc = rtq_conn_command(h->conn, &k, NULL);
    rtq_argv_destroy(&k);
    /* CLIENT KILL frees the subscriber at once: the next subscriber we
     * see is the waiter's new connection. */
    wait_subscriber(h->conn, h->id);
    if (h->rc != 0) return NULL;
    h->mode = 0;
  }
  if (h->mode == 0) {
    h->rc = fw2_run_one(h->conn, &K, "default", "helper", "{\"done\":true}");
    return NULL;
  }
  /* History off: the terminal event comes, and the hash has expired by
   * the time the waiter reads it again. The waiter's first status check
   * (the wait script after it subscribed) must be over before the hash goes,
   * or the task is rightly "not found". */
  uint64_t deadline = rtq_test_now_ms() + 5000;
  for (int i = 0; !waiter_checked(h) && rtq_test_now_ms() < deadline; i++)
    rtq__test_poll_pause(i);
  rtq_key2 t2 = rtq_keys2_task(&K, "default", h->id);
  rtq_key2 ch2 = rtq_keys2_chan_waiter(&K, "default", h->id);
  char ev[256];
  snprintf(ev, sizeof ev, "{\"id\":\"%s\",\"s\":\"failed\",\"at\":1234567}", h->id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "DEL");
  rtq__argv_add_key2(&a, t2);
  h->rc = rtq_conn_command(h->conn, &a, NULL);
  rtq_argv_reset(&a);
  rtq_argv_add_str(&a, "SPUBLISH");
  rtq__argv_add_key2(&a, ch2);
  rtq_argv_add_str(&a, ev);
  if (h->rc == 0) h->rc = rtq_conn_command(h->conn, &a, NULL);
  rtq_argv_destroy(&a);
  return NULL;
}

static void helper_start(helper *h, const char *id, int wait_sub, int mode) {
  memset(h, 0, sizeof *h);
  h->conn = rtq_test_conn();
  h->id = id;
  h->wait_for_subscriber = wait_sub;
  h->mode = mode;
  assert_int_equal(pthread_create(&h->th, NULL, helper_main, h), 0);
}

static void helper_join(helper *h) {
  pthread_join(h->th, NULL);
  rtq_conn_free(h->conn);
  assert_int_equal(h->rc, 0);
}

static void test_client_wait_completed_by_thread(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create(id);
  helper h;
  helper_start(&h, id, 1, 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_wait_for_task(CL, id, 10000, &t), 0);
  helper_join(&h);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  char *json = NULL;
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "{\"done\":true}");
  free(json);
  rtq_task_free(t);
}

static void test_client_wait_survives_lost_subscription(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create(id);
  helper h;
  helper_start(&h, id, 1, 2);
  rtq_task *t = NULL;
  assert_int_equal(rtq_wait_for_task(CL, id, 10000, &t), 0);
  helper_join(&h);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
}

static void test_client_wait_already_terminal(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create(id);
  assert_int_equal(fw2_run_one(C, &K, "default", "w", NULL), 0);
  rtq_task *t = NULL;
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_wait_for_task(CL, id, 10000, &t), 0);
  assert_true(rtq_test_now_ms() - t0 < 1000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  /* timeout 0 checks once; out may be NULL. */
  assert_int_equal(rtq_wait_for_task(CL, id, 0, NULL), 0);
}

/* The seam ends the task after SUBSCRIBE and before the status check:
 * the check must see it. */
static void end_task_now(const char *id) {
  (void)id;
  rtq_conn *c = rtq_test_conn();
  int rc = fw2_run_one(c, &K, "default", "seam", NULL);
  rtq_conn_free(c);
  if (rc != 0) fail_msg("seam could not finish the task: %d", rc);
}

static void test_client_wait_race_in_window(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create(id);
  rtq__wait_subscribed_hook = end_task_now;
  rtq_task *t = NULL;
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_wait_for_task(CL, id, 10000, &t), 0);
  assert_true(rtq_test_now_ms() - t0 < 2000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
}

/* Free-running: a thread completes the task as the wait starts, with no
 * synchronisation, many times. Each wait must return promptly. */
static void test_client_wait_race_loop(void **state) {
  (void)state;
  for (int i = 0; i < 200; i++) {
    char id[RTQ_TASK_ID_SIZE];
    create(id);
    helper h;
    helper_start(&h, id, 0, 0);
    rtq_task *t = NULL;
    uint64_t t0 = rtq_test_now_ms();
    int rc = rtq_wait_for_task(CL, id, 5000, &t);
    uint64_t took = rtq_test_now_ms() - t0;
    helper_join(&h);
    if (rc != 0) fail_msg("iteration %d: %s (%s)", i, rtq_err_name(rc), rtq_client_errstr(CL));
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    assert_true(took < 2000);
    rtq_task_free(t);
  }
}

static void test_client_wait_timeout(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create(id);
  rtq_task *t = (rtq_task *)1;
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_wait_for_task(CL, id, 300, &t), RTQ_ETIMEDOUT);
  uint64_t took = rtq_test_now_ms() - t0;
  assert_true(took >= 300 && took < 2000);
  assert_null(t);
  assert_non_null(strstr(rtq_client_errstr(CL), "300 ms"));
  assert_int_equal(rtq_wait_for_task(CL, id, 0, &t), RTQ_ETIMEDOUT);
}

static void test_client_wait_errors(void **state) {
  (void)state;
  rtq_task *t = NULL;
  assert_int_equal(rtq_wait_for_task(CL, "ghost", 1000, &t), RTQ_ENOTFOUND);
  assert_int_equal(rtq_wait_for_task(CL, "ghost", 0, &t), RTQ_ENOTFOUND);
  assert_int_equal(rtq_wait_for_task(CL, "bad id", 1000, &t), RTQ_EINVAL);
  assert_int_equal(rtq_wait_for_task(NULL, "x", 1000, &t), RTQ_EINVAL);
  assert_null(t);
}

static void test_client_wait_hash_expired(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create(id);
  helper h;
  helper_start(&h, id, 1, 1);
  rtq_task *t = NULL;
  assert_int_equal(rtq_wait_for_task(CL, id, 10000, &t), 0);
  helper_join(&h);
  assert_string_equal(t->id, id);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_int_equal(t->completed_at, 1234567);
  rtq_task_free(t);
}

/* Waits for the waiter, asks the running task to cancel through the
 * shared client, then plays the worker ending it cancelled. */
typedef struct canceller {
  helper h;
  fake_job2 *job;
  int requested;
} canceller;

static void *cancel_then_finish(void *arg) {
  canceller *x = arg;
  wait_subscriber(x->h.conn, x->h.id);
  x->h.rc = rtq_cancel_task(CL, x->h.id, &x->requested);
  /* The request's mark: the task's `cr` field. */
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HEXISTS");
  rtq__argv_add_key2(&a, rtq_keys2_task(&K, "default", x->h.id));
  rtq_argv_add_str(&a, "cr");
  redisReply *r = NULL;
  if (x->h.rc == 0) x->h.rc = rtq_conn_command(x->h.conn, &a, &r);
  if (x->h.rc == 0 && r->integer != 1) x->h.rc = RTQ_ESTATE;
  if (r != NULL) freeReplyObject(r);
  rtq_argv_destroy(&a);
  if (x->h.rc == 0) x->h.rc = fw2_end(x->h.conn, &K, x->job, RTQ_STATUS_CANCELLED);
  return NULL;
}

static void test_client_wait_cancelled_running(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create(id);
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "default", "w", &j), 0);
  canceller x;
  memset(&x, 0, sizeof x);
  x.h.conn = rtq_test_conn();
  x.h.id = id;
  x.job = &j;
  assert_int_equal(pthread_create(&x.h.th, NULL, cancel_then_finish, &x), 0);
  rtq_task *t = NULL;
  int rc = rtq_wait_for_task(CL, id, 10000, &t);
  pthread_join(x.h.th, NULL);
  rtq_conn_free(x.h.conn);
  assert_int_equal(x.h.rc, 0);
  assert_int_equal(x.requested, 1);
  assert_int_equal(rc, 0);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  rtq_task_free(t);
}

/* calls= of one command in INFO commandstats. */
static long long calls_of(const char *cmd) {
  char *info = rtq_test_cmd_str(C, "INFO", "commandstats", NULL);
  char key[64];
  snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
  const char *p = strstr(info, key);
  long long n = p != NULL ? atoll(p + strlen(key)) : 0;
  free(info);
  return n;
}

static void test_client_wait_does_not_poll(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create(id);
  /* One status read in 1.5 s: the wait script. */
  const char *read = "evalsha";
  long long before = calls_of(read);
  assert_int_equal(rtq_wait_for_task(CL, id, 1500, NULL), RTQ_ETIMEDOUT);
  assert_int_equal(calls_of(read) - before, 1);
}

/* connected_clients of INFO clients. */
static long long connected_clients(void) {
  char *info = rtq_test_cmd_str(C, "INFO", "clients", NULL);
  assert_non_null(info);
  const char *p = strstr(info, "connected_clients:");
  assert_non_null(p);
  long long n = atoll(p + strlen("connected_clients:"));
  free(info);
  return n;
}

#define WAITERS 20

typedef struct waiter {
  pthread_t th;
  rtq_client *c;
  char id[RTQ_TASK_ID_SIZE];
  int rc;
  rtq_status status;
} waiter;

static void *waiter_main(void *arg) {
  waiter *w = arg;
  rtq_task *t = NULL;
  w->rc = rtq_wait_for_task(w->c, w->id, 20000, &t);
  if (t != NULL) w->status = t->status;
  rtq_task_free(t);
  return NULL;
}

/* A client that only waits holds one connection, its subscription: its
 * pooled connection is closed while it blocks. 20 waiting clients add 20
 * connections to Redis, not 40, and all still see their tasks end. */
static void test_client_wait_holds_one_connection(void **state) {
  (void)state;
  waiter w[WAITERS];
  long long base = connected_clients();
  for (int i = 0; i < WAITERS; i++) {
    memset(&w[i], 0, sizeof w[i]);
    create(w[i].id);
    rtq_client_options o;
    memset(&o, 0, sizeof o);
    o.redis_url = rtq_test_redis_url();
    o.protocol = 2;
    if (rtq_client_new(&o, &w[i].c) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
    assert_int_equal(pthread_create(&w[i].th, NULL, waiter_main, &w[i]), 0);
  }
  for (int i = 0; i < WAITERS; i++) wait_subscriber(C, w[i].id);
  RTQ_TEST_WAIT_FOR(connected_clients() == base + WAITERS, 5000);
  for (int i = 0; i < WAITERS; i++) {
    assert_int_equal(fw2_run_one(C, &K, "default", "w1", "{}"), 0);
  }
  for (int i = 0; i < WAITERS; i++) {
    assert_int_equal(pthread_join(w[i].th, NULL), 0);
    assert_int_equal(w[i].rc, 0);
    assert_int_equal(w[i].status, RTQ_STATUS_COMPLETED);
    rtq_client_free(w[i].c);
  }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_client_wait_completed_by_thread), T(test_client_wait_survives_lost_subscription),
      T(test_client_wait_already_terminal),
      T(test_client_wait_race_in_window),      T(test_client_wait_race_loop),
      T(test_client_wait_timeout),             T(test_client_wait_errors),
      T(test_client_wait_hash_expired),        T(test_client_wait_cancelled_running),
      T(test_client_wait_does_not_poll),       T(test_client_wait_holds_one_connection),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
