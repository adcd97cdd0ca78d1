/*
 * test_cli_dead_requeue.c - `rtq dead requeue INDEX|--all [--queue Q]` and
 * `rtq dead purge [--queue Q]` (librtq's rtq_dead_requeue,
 * rtq_dead_requeue_all, rtq_dead_purge) against a real redis-server and
 * real rtq-worker processes: dead letters a worker wrote (tasks whose args
 * are over its --max-payload, which it failed; bytes that are no id; an id
 * without a task hash) are requeued or refused and kept; the requeued ones
 * run to completion under a worker; a task that has ended completed is
 * left alone; --all pages through more records than one step reads; purge
 * counts what it deletes.
 */
#include "test_cli_env.h"
#include "test_cli_dead.h"
#include "test_client_fake_worker2.h"

static int task_is(const char *id, const char *status) {
  char *s = cli_task_field("default", id, "status");
  int is = s != NULL && strcmp(s, status) == 0;
  free(s);
  return is;
}

/* The index in `rtq dead list` of the letter whose id is id (NULL: the
 * one without an id). */
static int index_of(const char *id) {
  cli_run r;
  RUN(&r, "dead", "list", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  json_t *arr = json_object_get(v, "letters");
  int found = -1;
  for (size_t i = 0; i < json_array_size(arr); i++) {
    json_t *x = json_object_get(json_array_get(arr, i), "id");
    if (id == NULL ? json_is_null(x) : json_is_string(x) && strcmp(json_string_value(x), id) == 0)
      found = (int)json_integer_value(json_object_get(json_array_get(arr, i), "index"));
  }
  json_decref(v);
  cli_free(&r);
  if (found < 0) fail_msg("no dead letter with id %s", id != NULL ? id : "(none)");
  return found;
}

static long long json_int(const cli_run *r, const char *field) {
  json_t *v = json_loads(r->out, 0, NULL);
  if (v == NULL) fail_msg("not JSON: %s", r->out);
  long long n = json_integer_value(json_object_get(v, field));
  json_decref(v);
  return n;
}

static void test_cli_dead_requeue_real_worker(void **state) {
  (void)state;
  enqueue_blob("small-big", 700); /* over 512: failed, requeueable */
  enqueue_blob("big-2", 600);
  static const char junk[] = "\x01\xffhello";
  push_entry("default", junk, sizeof junk - 1);
  push_entry("default", "orphan", 6); /* no task hash */

  pid_t w = spawn_bin("worker/rtq-worker",
                      (const char *const[]){"--demo-handlers", "--max-payload", "512",
                                            "--log-level", "ERROR", NULL},
                      "/dev/null");
  RTQ_TEST_WAIT_FOR(dead_len("default") == 4, 10000);
  int status = 0;
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 30000, &status), 0);
  assert_true(task_is("small-big", "failed"));
  assert_true(task_is("big-2", "failed"));
  char *none = cli_task_field("default", "orphan", "status");
  assert_null(none);

  /* Refused, and kept: bytes that are no id, an id without a task. */
  cli_run r;
  char idx[16];
  snprintf(idx, sizeof idx, "%d", index_of(NULL));
  RUN(&r, "dead", "requeue", idx, "--json");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "RTQ_EDECODE"));
  cli_free(&r);
  snprintf(idx, sizeof idx, "%d", index_of("orphan"));
  RUN(&r, "dead", "requeue", idx);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "has no record"));
  cli_free(&r);
  assert_int_equal(dead_len("default"), 4);
  RUN(&r, "dead", "requeue", "99");
  assert_int_equal(r.code, 3);
  cli_free(&r);
  RUN(&r, "dead", "requeue", "0", "--all");
  assert_int_equal(r.code, 2);
  cli_free(&r);

  /* --all of another queue touches nothing. */
  RUN(&r, "dead", "requeue", "--all", "--queue", "other", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "requeued"), 0);
  assert_int_equal(json_int(&r, "refused"), 0);
  cli_free(&r);
  assert_int_equal(dead_len("default"), 4);

  /* --all of default: the failed tasks go back, the rest stays. */
  RUN(&r, "dead", "requeue", "--all", "--queue", "default", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "requeued"), 2);
  assert_int_equal(json_int(&r, "refused"), 2); /* the junk, the orphan */
  cli_free(&r);
  assert_int_equal(dead_len("default"), 2);
  assert_true(task_is("small-big", "pending"));
  assert_true(task_is("big-2", "pending"));
  char *err = cli_task_field("default", "small-big", "error_code");
  assert_null(err);
  assert_int_equal(queue_len("default"), 2);

  /* Under a worker without the small limit both run to completion. */
  w = spawn_bin("worker/rtq-worker", (const char *const[]){"--demo-handlers", "--log-level",
                                                          "ERROR", NULL},
                "/dev/null");
  RTQ_TEST_WAIT_FOR(task_is("small-big", "completed") && task_is("big-2", "completed"), 15000);
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 30000, &status), 0);

  /* A letter of a task that has completed meanwhile is left alone. */
  dead_push("default", "small-big", "PAYLOAD_TOO_LARGE", "small-big", 9, true);
  RUN(&r, "dead", "requeue", "0");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "completed"));
  cli_free(&r);
  assert_true(task_is("small-big", "completed"));
  assert_int_equal(dead_len("default"), 3);

  /* Purge: by queue, then the rest. */
  dead_push("b", "x", "C", "x", 1, true);
  RUN(&r, "dead", "purge", "--queue", "default", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "purged"), 3);
  cli_free(&r);
  assert_int_equal(dead_len("default"), 0);
  assert_int_equal(dead_len("b"), 1);
  RUN(&r, "dead", "purge");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "purged 1 dead letter"));
  cli_free(&r);
  assert_int_equal(dead_len("default") + dead_len("b"), 0);
}

/* Task id of queue, failed by a worker, with a dead letter naming it. */
static void failed_letter(const char *queue, const char *id) {
  rtq_test_cmd_int(rc_, "SADD", rtq_keys2_queues(&keys2).s, queue, NULL);
  rtq__create2_task ct = {.id = id, .name = "rtq.echo"};
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_create(&a, &keys2, false, queue, &ct, 1), 0);
  redisReply *r = NULL;
  assert_int_equal(rtq_script2_run(rc_, &a, &r), 0);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
  fake_job2 j;
  assert_int_equal(fw2_take(rc_, &keys2, queue, "w-p", &j), 0);
  assert_string_equal(j.id, id);
  assert_int_equal(fw2_end(rc_, &keys2, &j, RTQ_STATUS_FAILED), 0);
  dead_push(queue, id, "BAD_SIGNATURE", id, strlen(id), true);
}

static char *field_of(const char *queue, const char *id, const char *field) {
  return rtq_test_cmd_str(rc_, "HGET", rtq_keys2_task(&keys2, queue, id).s, field, NULL);
}

static bool status_is(const char *queue, const char *id, const char *want) {
  char *s = field_of(queue, id, "s");
  bool is = s != NULL && strcmp(s, want) == 0;
  free(s);
  return is;
}

/* More records than one step reads: every one is requeued, none twice;
 * a purge of many drops them all in steps. */
static void test_cli_dead_requeue_pages(void **state) {
  (void)state;
  enum { N = 2 * RTQ_DEAD_STEP + 37 };
  for (int i = 0; i < N; i++) {
    char id[32];
    snprintf(id, sizeof id, "p-%d", i);
    failed_letter(i % 2 ? "odd" : "even", id);
  }
  long long dead = dead_len("odd") + dead_len("even");
  assert_int_equal(dead, N);
  cli_run r;
  RUN(&r, "dead", "requeue", "--all", "--queue", "odd", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "requeued"), N / 2);
  cli_free(&r);
  assert_int_equal(dead_len("even"), N - N / 2); /* another queue's: untouched */
  assert_int_equal(queue_len("odd"), N / 2);
  assert_int_equal(dead_len("odd") + dead_len("even"), N - N / 2);
  assert_true(status_is("odd", "p-1", "pending"));
  assert_true(status_is("odd", "p-235", "pending"));
  assert_true(status_is("even", "p-0", "failed"));

  /* Letters again of tasks pending already: each is refused. */
  for (int i = 1; i < 6; i += 2) {
    char id[32];
    snprintf(id, sizeof id, "p-%d", i);
    dead_push("odd", id, "BAD_SIGNATURE", id, strlen(id), true);
  }
  RUN(&r, "dead", "requeue", "--all", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "requeued"), N - N / 2);
  assert_int_equal(json_int(&r, "refused"), 3);
  cli_free(&r);
  assert_int_equal(dead_len("odd") + dead_len("even"), 3);
  assert_int_equal(queue_len("odd"), N / 2);
  assert_int_equal(queue_len("even"), N - N / 2);

  for (int i = 0; i < N; i++) dead_push("even", "x", "C", "x", 1, true);
  RUN(&r, "dead", "purge", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "purged"), N + 3);
  cli_free(&r);
  assert_int_equal(dead_len("odd") + dead_len("even"), 0);
}

int main(void) {
  /* rtq and the workers it starts speak protocol 2 in both test runs. */
  setenv("RTQ_PROTOCOL", "2", 1);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_dead_requeue_real_worker),
      T(test_cli_dead_requeue_pages),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
