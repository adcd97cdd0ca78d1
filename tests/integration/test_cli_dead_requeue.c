/*
 * test_cli_dead_requeue.c - `rtq dead requeue INDEX|--all [--queue Q]` and
 * `rtq dead purge [--queue Q]` (librtq's rtq_dead_requeue,
 * rtq_dead_requeue_all, rtq_dead_purge) against a real redis-server and
 * real rtq-worker processes: dead letters a worker wrote (an envelope over
 * its --max-payload whose task it failed, one cut at 4096 bytes, bytes
 * that are no envelope, an envelope without a task hash) are requeued or
 * refused and kept; the requeued ones run to completion under a worker;
 * a task that has ended completed is left alone; --all pages through more
 * records than one step reads; purge counts what it deletes.
 */
#include "test_cli_env.h"
#include "test_cli_dead.h"
#include "test_dead_util.h"

static char *task_field(const char *id, const char *field) {
  rtq_key t = rtq_keys_task(&keys, id);
  return rtq_test_cmd_str(rc_, "HGET", t.s, field, NULL);
}

static int task_is(const char *id, const char *status) {
  char *s = task_field(id, "status");
  int is = s != NULL && strcmp(s, status) == 0;
  free(s);
  return is;
}

static char *envelope(const char *id, const char *queue, size_t *len) {
  return tdead_envelope(id, queue, len);
}

static void push_record(const char *id, const char *queue, const char *payload, size_t n) {
  tdead_push(rc_, &keys, id, queue, payload, n);
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
  enqueue_blob("small-big", 700); /* over 512, kept whole: requeueable */
  enqueue_blob("huge", 5000);     /* cut at 4096 in the record: refused */
  rtq_key q = rtq_keys_queue(&keys, "default");
  static const char junk[] = "\x01\xffhello";
  freeReplyObject(rtq_test_command(rc_, "LPUSH", q.s, junk, NULL));
  size_t n = 0;
  char *orphan = envelope("orphan", "default", &n); /* no task hash */
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq_argv_add(&a, q.s, q.len);
  rtq_argv_add(&a, orphan, n);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);

  pid_t w = spawn_bin("worker/rtq-worker",
                      (const char *const[]){"--demo-handlers", "--max-payload", "512",
                                            "--log-level", "ERROR", NULL},
                      "/dev/null");
  RTQ_TEST_WAIT_FOR(dead_len() == 4, 10000);
  int status = 0;
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 30000, &status), 0);
  assert_true(task_is("small-big", "failed"));
  assert_true(task_is("huge", "failed"));
  char *none = task_field("orphan", "status");
  assert_null(none);

  /* Refused, and kept: a cut envelope, bytes that are no envelope. */
  cli_run r;
  char idx[16];
  snprintf(idx, sizeof idx, "%d", index_of("huge"));
  RUN(&r, "dead", "requeue", idx);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "only the first 4096"));
  cli_free(&r);
  snprintf(idx, sizeof idx, "%d", index_of(NULL));
  RUN(&r, "dead", "requeue", idx, "--json");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "RTQ_EDECODE"));
  cli_free(&r);
  assert_int_equal(dead_len(), 4);
  assert_true(task_is("huge", "failed"));
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
  assert_int_equal(json_int(&r, "other_queues"), 4);
  cli_free(&r);
  assert_int_equal(dead_len(), 4);

  /* --all of default: the whole envelopes go back, the cut one stays. */
  RUN(&r, "dead", "requeue", "--all", "--queue", "default", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "requeued"), 2);
  assert_int_equal(json_int(&r, "refused"), 2); /* the cut one, the junk */
  assert_int_equal(json_int(&r, "other_queues"), 0);
  cli_free(&r);
  assert_int_equal(dead_len(), 2);
  assert_true(task_is("small-big", "pending"));
  char *err = task_field("small-big", "error_code");
  assert_null(err);
  assert_true(task_is("orphan", "pending"));
  char *name = task_field("orphan", "name");
  assert_string_equal(name, "rtq.echo");
  free(name);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", q.s, NULL), 2);

  /* Under a worker without the small limit both run to completion. */
  w = spawn_bin("worker/rtq-worker", (const char *const[]){"--demo-handlers", "--log-level",
                                                          "ERROR", NULL},
                "/dev/null");
  RTQ_TEST_WAIT_FOR(task_is("small-big", "completed") && task_is("orphan", "completed"), 15000);
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 30000, &status), 0);

  /* A letter of a task that has completed meanwhile is left alone. */
  push_record("orphan", "default", orphan, n);
  RUN(&r, "dead", "requeue", "0");
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.err, "completed"));
  cli_free(&r);
  assert_true(task_is("orphan", "completed"));
  assert_int_equal(dead_len(), 3);
  free(orphan);

  /* Purge: by queue (the record's, or its envelope's), then the rest. */
  push_record("x", "b", "x", 1);
  RUN(&r, "dead", "purge", "--queue", "default", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "purged"), 3);
  assert_int_equal(json_int(&r, "other_queues"), 1);
  cli_free(&r);
  RUN(&r, "dead", "purge");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "purged 1 dead letter"));
  cli_free(&r);
  assert_int_equal(dead_len(), 0);
}

/* More records than one step reads: every one is requeued, none twice;
 * a purge of many drops them all in steps. */
static void test_cli_dead_requeue_pages(void **state) {
  (void)state;
  enum { N = 2 * RTQ_DEAD_STEP + 37 };
  for (int i = 0; i < N; i++) {
    char id[32];
    snprintf(id, sizeof id, "p-%d", i);
    size_t n = 0;
    char *env = envelope(id, i % 2 ? "odd" : "even", &n);
    push_record(id, i % 2 ? "odd" : "even", env, n);
    free(env);
  }
  cli_run r;
  RUN(&r, "dead", "requeue", "--all", "--queue", "odd", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "requeued"), N / 2);
  assert_int_equal(json_int(&r, "other_queues"), N - N / 2);
  cli_free(&r);
  rtq_key odd = rtq_keys_queue(&keys, "odd");
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", odd.s, NULL), N / 2);
  assert_int_equal(dead_len(), N - N / 2);
  assert_true(task_is("p-1", "pending"));
  assert_true(task_is("p-235", "pending"));
  char *s = task_field("p-0", "status");
  assert_null(s);

  /* Requeued again: each task is pending already, so each is refused. */
  for (int i = 1; i < 6; i += 2) {
    char id[32];
    snprintf(id, sizeof id, "p-%d", i);
    size_t n = 0;
    char *env = envelope(id, "odd", &n);
    push_record(id, "odd", env, n);
    free(env);
  }
  RUN(&r, "dead", "requeue", "--all", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "requeued"), N - N / 2);
  assert_int_equal(json_int(&r, "refused"), 3);
  cli_free(&r);
  assert_int_equal(dead_len(), 3);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", odd.s, NULL), N / 2);

  for (int i = 0; i < N; i++) push_record("x", "even", "x", 1);
  RUN(&r, "dead", "purge", "--json");
  assert_int_equal(r.code, 0);
  assert_int_equal(json_int(&r, "purged"), N + 3);
  cli_free(&r);
  assert_int_equal(dead_len(), 0);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_dead_requeue_real_worker),
      T(test_cli_dead_requeue_pages),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
