/*
 * test_client_task2.c - reading, cancelling, retrying and waiting for
 * tasks under protocol 2 on a private redis-server (the client given
 * protocol 2 explicitly), with the worker's part played
 * through the v2 scripts (test_client_fake_worker2.h): every field of the
 * short-named hash, the side hash merged, hostile hashes read without a
 * crash, cancel in each state, retry, and a wait whose task ends in the
 * window between the subscription and the wait script.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "clock.h"
#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "test_client_fixture2.h"
#include "test_client_fake_worker2.h"

static void create(const char *name, const char *queue, const char *json, char *id) {
  rtq_task_options o = {.queue = queue};
  if (rtq_create_task_json(CL, name, json, &o, id, NULL) != 0)
    fail_msg("create: %s", rtq_client_errstr(CL));
}

/* msgpack of a JSON value, for finish's result and details. */
static char *pack(const char *json, size_t *len) {
  char *buf = NULL;
  char why[128];
  if (rtq_json_to_msgpack(json, &buf, len, why, sizeof why) != 0) fail_msg("pack: %s", why);
  return buf;
}

static void test_client_task2_get_every_field(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create("export", "reports", "{\"year\":2026}", id);
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "reports", "w1", &j), 0);
  assert_int_equal(fw2_progress(C, &K, &j, 40, "page 4 of 10"), 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  assert_string_equal(t->id, id);
  assert_string_equal(t->queue, "reports");
  assert_string_equal(t->name, "export");
  assert_int_equal(t->status, RTQ_STATUS_RUNNING);
  assert_true(t->progress == 40.0);
  assert_string_equal(t->progress_message, "page 4 of 10");
  assert_string_equal(t->worker, "w1");
  assert_int_equal(t->attempts, 1);
  assert_true(t->created_at > 0 && t->started_at >= t->created_at);
  assert_true(t->deadline >= t->started_at + 300000);
  rtq_task_free(t);

  size_t dlen;
  char *details = pack("{\"free\":0,\"path\":\"/tmp\"}", &dlen);
  rtq__finish2_task f = {.status = RTQ_STATUS_FAILED, .error_code = "E_DISK",
                         .error_message = "disk full", .traceback = "line 1\nline 2",
                         .error_details = details, .error_details_len = dlen};
  assert_int_equal(fw2_finish(C, &K, &j, f), 0);
  free(details);
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_true(t->completed_at >= t->started_at);
  assert_string_equal(t->error_code, "E_DISK");
  assert_string_equal(t->error_message, "disk full");
  assert_string_equal(t->error_traceback, "line 1\nline 2");
  char *json = NULL;
  assert_int_equal(rtq_task_error_details_json(t, &json), 0);
  assert_string_equal(json, "{\"free\":0,\"path\":\"/tmp\"}");
  free(json);
  assert_int_equal(rtq_task_args_json(t, &json), 0);
  assert_string_equal(json, "{\"year\":2026}");
  free(json);
  rtq_task_free(t);
}

static void test_client_task2_side_hash_merged(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create("sum", NULL, NULL, id);
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "default", "w1", &j), 0);
  /* A result of 300 bytes: stored in the side hash, not the task hash. */
  char text[320];
  memset(text, 'r', 300);
  text[300] = '\0';
  char jtext[330];
  snprintf(jtext, sizeof jtext, "[\"%s\"]", text);
  size_t rlen;
  char *result = pack(jtext, &rlen);
  rtq__finish2_task f = {.status = RTQ_STATUS_COMPLETED, .result = result, .result_len = rlen};
  assert_int_equal(fw2_finish(C, &K, &j, f), 0);
  char *xs = rtq_test_cmd_str(C, "HGET", rtq_keys2_task(&K, "default", id).s, "xs", NULL);
  assert_non_null(xs);
  free(xs);
  assert_int_equal(rtq_test_cmd_int(C, "HEXISTS", rtq_keys2_task(&K, "default", id).s, "r", NULL), 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_int_equal(t->result_len, rlen);
  assert_memory_equal(t->result, result, rlen);
  /* Completed: its args are dropped. */
  assert_null(t->args);
  rtq_task_free(t);
  free(result);
  /* A side hash the task hash does not name (no xs) is not merged. */
  create("sum", NULL, NULL, id);
  rtq_test_cmd_int(C, "HSET", rtq_keys2_side(&K, "default", id).s, "s", "completed", NULL);
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);
}

/* Args of 65..256 bytes are stored in 64-byte chunks x, x2, x3, x4:
 * rtq_get_task joins them; args over 256 bytes come from the side hash. */
static void test_client_task2_chunked_args_joined(void **state) {
  (void)state;
  int sizes[] = {65, 128, 200, 256, 257, 300};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    /* msgpack {"t": text} is n bytes: fixmap, fixstr "t", then a str8
     * header (2 bytes) up to 255 bytes of text, str16 (3) over that. */
    int n = sizes[i], tl = n - 5 <= 255 ? n - 5 : n - 6;
    char text[300], json[320];
    memset(text, 'b', (size_t)tl);
    snprintf(json, sizeof json, "{\"t\":\"%.*s\"}", tl, text);
    size_t len = 0;
    char *want = pack(json, &len);
    assert_int_equal(len, n);
    char id[RTQ_TASK_ID_SIZE];
    create("chunks", NULL, json, id);
    rtq_key2 tk = rtq_keys2_task(&K, "default", id);
    bool chunked = len > 64 && len <= 256;
    assert_int_equal(rtq_test_cmd_int(C, "HEXISTS", tk.s, "x2", NULL), chunked);
    assert_int_equal(rtq_test_cmd_int(C, "HEXISTS", tk.s, "xs", NULL), len > 256);
    char *enc = rtq_test_cmd_str(C, "OBJECT", "ENCODING", tk.s, NULL);
    assert_string_equal(enc, "listpack");
    free(enc);
    rtq_task *t = NULL;
    assert_int_equal(rtq_get_task(CL, id, &t), 0);
    assert_int_equal(t->args_len, len);
    assert_memory_equal(t->args, want, len);
    rtq_task_free(t);
    free(want);
  }
}

/* Chunks laid out by hand are joined by the rule the claim script uses
 * (tests/lua2 test_take_joins_hostile_chunk_layouts_by_the_rule): x2
 * present, x x2 x3 x4 as present, in order; else x alone. */
static void test_client_task2_hostile_chunks_follow_the_rule(void **state) {
  (void)state;
  struct {
    const char *f[3], *v[3];
    const char *want;
  } cases[] = {
      {{"x2", NULL, NULL}, {"BBBB", NULL, NULL}, "BBBB"},
      {{"x", "x3", NULL}, {"AA", "CC", NULL}, "AA"},
      {{"x", "x2", "x4"}, {"A", "BB", "D"}, "ABBD"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char id[RTQ_TASK_ID_SIZE];
    create("chunks", NULL, NULL, id);
    rtq_key2 tk = rtq_keys2_task(&K, "default", id);
    for (int k = 0; k < 3 && cases[i].f[k] != NULL; k++)
      rtq_test_cmd_int(C, "HSET", tk.s, cases[i].f[k], cases[i].v[k], NULL);
    rtq_task *t = NULL;
    assert_int_equal(rtq_get_task(CL, id, &t), 0);
    assert_int_equal(t->args_len, strlen(cases[i].want));
    assert_memory_equal(t->args, cases[i].want, t->args_len);
    rtq_task_free(t);
  }
}

static void test_client_task2_get_errors(void **state) {
  (void)state;
  rtq_task *t = (rtq_task *)1;
  assert_int_equal(rtq_get_task(CL, "no-such", &t), RTQ_ENOTFOUND);
  assert_null(t);
  assert_int_equal(rtq_get_task(CL, "bad id", &t), RTQ_EINVAL);
  char id[RTQ_TASK_ID_SIZE];
  create("t", "elsewhere", NULL, id);
  /* A generated id of a queue the registry lost: the client that
   * registered the queue remembers it and reads the task in one round
   * trip; another one must go by the registry, finds nothing, and says so. */
  rtq_test_cmd_int(C, "SREM", "{rtq}:queues", "elsewhere", NULL);
  rtq_test_cmd_ok(C, "CONFIG", "RESETSTAT", NULL);
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  rtq_task_free(t);
  char *info = rtq_test_cmd_str(C, "INFO", "commandstats", NULL);
  assert_null(strstr(info, "cmdstat_smembers"));
  assert_null(strstr(info, "cmdstat_exists"));
  free(info);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.protocol = 2;
  rtq_client *other = NULL;
  assert_int_equal(rtq_client_new(&o, &other), 0);
  assert_int_equal(rtq_get_task(other, id, &t), RTQ_ENOTFOUND);
  assert_non_null(strstr(rtq_client_errstr(other), id));
  rtq_client_free(other);
}

/* Writes a task hash of queue "default" field by field (NULL-ended
 * pairs), the queue registered. */
static void seed(const char *id, ...) {
  rtq_test_cmd_int(C, "SADD", "{rtq}:queues", "default", NULL);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HSET");
  rtq_key2 key = rtq_keys2_task(&K, "default", id);
  rtq_argv_add(&a, key.s, key.len);
  va_list ap;
  va_start(ap, id);
  for (const char *f; (f = va_arg(ap, const char *)) != NULL;) {
    const char *v = va_arg(ap, const char *);
    size_t vlen = va_arg(ap, size_t);
    rtq_argv_add_str(&a, f);
    rtq_argv_add(&a, v, vlen);
  }
  va_end(ap);
  freeReplyObject(rtq_test_command_argv(C, &a));
  rtq_argv_destroy(&a);
}

static void test_client_task2_hostile_hashes(void **state) {
  (void)state;
  rtq_task *t = NULL;
  /* No status, or one that is not a status: RTQ_EDECODE. */
  seed("h1", "n", "x", (size_t)1, (const char *)NULL);
  assert_int_equal(rtq_get_task(CL, "h1", &t), RTQ_EDECODE);
  assert_null(t);
  seed("h2", "s", "bogus-status-that-is-long", (size_t)25, (const char *)NULL);
  assert_int_equal(rtq_get_task(CL, "h2", &t), RTQ_EDECODE);
  seed("h2b", "s", "pend\0ing", (size_t)8, (const char *)NULL);
  assert_int_equal(rtq_get_task(CL, "h2b", &t), RTQ_EDECODE);
  /* Junk everywhere else reads as absent or clamped. */
  char longname[300];
  memset(longname, 'n', sizeof longname);
  seed("h3", "s", "running", (size_t)7, "a", "-1", (size_t)2, "c", "abc", (size_t)3, "p", "nan",
       (size_t)3, "b", "99999999999999999999999", (size_t)23, "n", longname, sizeof longname,
       "w", "w\0x", (size_t)3, "x", "\xc1\xff", (size_t)2, "r", "", (size_t)0, "mr", "1e9",
       (size_t)3, "zz", "unknown", (size_t)7, "xs", "1", (size_t)1, (const char *)NULL);
  assert_int_equal(rtq_get_task(CL, "h3", &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_RUNNING);
  assert_int_equal(t->attempts, 0);
  assert_int_equal(t->created_at, 0);
  assert_int_equal(t->started_at, 0);
  assert_true(t->progress == 0.0);
  assert_int_equal(strlen(t->name), RTQ_TASK_ID_MAX);
  assert_int_equal(t->max_retries, 0);
  assert_int_equal(t->args_len, 2);
  char *json = NULL;
  assert_int_equal(rtq_task_args_json(t, &json), RTQ_EDECODE);
  assert_int_equal(rtq_task_to_json(t, &json), 0);
  free(json);
  rtq_task_free(t);
  /* xs set and the side hash of another type: an error, not a crash. */
  rtq_test_cmd_ok(C, "SET", rtq_keys2_side(&K, "default", "h3").s, "junk", NULL);
  assert_int_equal(rtq_get_task(CL, "h3", &t), RTQ_EDECODE);
  assert_null(t);
  /* The task key of another type. */
  rtq_test_cmd_int(C, "SADD", "{rtq}:queues", "default", NULL);
  rtq_test_cmd_ok(C, "SET", rtq_keys2_task(&K, "default", "h4").s, "junk", NULL);
  assert_int_equal(rtq_get_task(CL, "h4", &t), RTQ_EDECODE);
  assert_null(t);
  /* The client goes on. */
  assert_int_equal(rtq_get_task(CL, "h1", &t), RTQ_EDECODE);
}

static void test_client_task2_cancel_each_state(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  int requested = -1;
  create("t", NULL, NULL, id);
  assert_int_equal(rtq_cancel_task(CL, id, &requested), 0);
  assert_int_equal(requested, 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  assert_string_equal(t->error_code, "CANCELLED");
  rtq_task_free(t);
  assert_int_equal(rtq_cancel_task(CL, id, &requested), RTQ_ESTATE);
  assert_non_null(strstr(rtq_client_errstr(CL), "cancelled"));
  /* A worker drops it. */
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "default", "w", &j), RTQ_ESTATE);

  /* Running: a request. */
  create("t", NULL, NULL, id);
  assert_int_equal(fw2_take(C, &K, "default", "w", &j), 0);
  assert_int_equal(rtq_cancel_task(CL, id, &requested), 0);
  assert_int_equal(requested, 1);
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_RUNNING);
  assert_true(t->cancel_requested > 0);
  rtq_task_free(t);
  assert_int_equal(fw2_end(C, &K, &j, RTQ_STATUS_COMPLETED), 0);
  assert_int_equal(rtq_cancel_task(CL, id, &requested), RTQ_ESTATE);
  assert_int_equal(rtq_cancel_task(CL, "nope", &requested), RTQ_ENOTFOUND);
  assert_int_equal(rtq_cancel_task(CL, "bad id", &requested), RTQ_EINVAL);
}

static void test_client_task2_retry(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create("t", "jobs", "{\"k\":1}", id);
  assert_int_equal(rtq_retry_task(CL, id), RTQ_ESTATE); /* pending */
  fake_job2 j;
  assert_int_equal(fw2_take(C, &K, "jobs", "w", &j), 0);
  rtq__finish2_task f = {.status = RTQ_STATUS_FAILED, .error_code = "E", .error_message = "boom"};
  assert_int_equal(fw2_finish(C, &K, &j, f), 0);
  assert_int_equal(rtq_retry_task(CL, id), 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(CL, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  assert_int_equal(t->attempts, 0);
  assert_null(t->error_code);
  char *json = NULL;
  assert_int_equal(rtq_task_args_json(t, &json), 0);
  assert_string_equal(json, "{\"k\":1}");
  free(json);
  rtq_task_free(t);
  /* Back in its queue: a worker takes it again, attempt 1. */
  assert_int_equal(fw2_take(C, &K, "jobs", "w", &j), 0);
  assert_string_equal(j.id, id);
  assert_int_equal(j.attempt, 1);
  assert_int_equal(fw2_end(C, &K, &j, RTQ_STATUS_COMPLETED), 0);
  assert_int_equal(rtq_retry_task(CL, id), RTQ_ESTATE);
  assert_int_equal(rtq_retry_task(CL, "nope"), RTQ_ENOTFOUND);
}

/* ---- waiting ---- */

typedef struct ender {
  char queue[64];
  char id[RTQ_TASK_ID_SIZE];
  int delay_ms;
  int rc;
} ender;

/* Takes and completes the task after delay_ms, on a connection of its own. */
static void *end_later(void *arg) {
  ender *e = arg;
  struct timespec ts = {e->delay_ms / 1000, (long)(e->delay_ms % 1000) * 1000000L};
  nanosleep(&ts, NULL); /* the waiter must be waiting by then; it may not be: both are fine */
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url());
  fake_job2 j;
  e->rc = fw2_take(c, &K, e->queue, "wx", &j);
  if (e->rc == 0) e->rc = fw2_end(c, &K, &j, RTQ_STATUS_COMPLETED);
  rtq_conn_free(c);
  return NULL;
}

static void test_client_task2_wait_for_end(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  create("t", "wq", NULL, id);
  rtq_task *t = (rtq_task *)1;
  /* 0: checks once. */
  assert_int_equal(rtq_wait_for_task(CL, id, 0, &t), RTQ_ETIMEDOUT);
  assert_null(t);
  uint64_t t0 = rtq__mono_ms();
  assert_int_equal(rtq_wait_for_task(CL, id, 200, &t), RTQ_ETIMEDOUT);
  assert_true(rtq__mono_ms() - t0 >= 200);
  ender e = {.queue = "wq", .delay_ms = 300};
  snprintf(e.id, sizeof e.id, "%s", id);
  pthread_t th;
  pthread_create(&th, NULL, end_later, &e);
  assert_int_equal(rtq_wait_for_task(CL, id, 10000, &t), 0);
  pthread_join(th, NULL);
  assert_int_equal(e.rc, 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  assert_string_equal(t->queue, "wq");
  rtq_task_free(t);
  /* Already ended: at once. */
  assert_int_equal(rtq_wait_for_task(CL, id, 0, &t), 0);
  rtq_task_free(t);
  assert_int_equal(rtq_wait_for_task(CL, "nope", 100, &t), RTQ_ENOTFOUND);
}

static char seam_queue[64];

/* The seam: ends the task after the subscription, before the wait script
 * reads its status. */
static void end_in_window(const char *id) {
  (void)id;
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url());
  fake_job2 j;
  if (fw2_take(c, &K, seam_queue, "ws", &j) == 0) fw2_end(c, &K, &j, RTQ_STATUS_FAILED);
  rtq_conn_free(c);
}

static void test_client_task2_wait_seam_window(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  snprintf(seam_queue, sizeof seam_queue, "seam");
  create("t", "seam", NULL, id);
  rtq__wait_subscribed_hook = end_in_window;
  rtq_task *t = NULL;
  uint64_t t0 = rtq__mono_ms();
  assert_int_equal(rtq_wait_for_task(CL, id, 5000, &t), 0);
  assert_true(rtq__mono_ms() - t0 < 4000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  rtq_task_free(t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_task2_get_every_field, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_side_hash_merged, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_chunked_args_joined, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_hostile_chunks_follow_the_rule, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_get_errors, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_hostile_hashes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_cancel_each_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_retry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_wait_for_end, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_task2_wait_seam_window, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
