/*
 * test_cli_watch.c - the blocking commands of the `rtq` binary, driven from
 * the test while they run: `watch` with ids and with none (adopting tasks
 * that start), its --timeout, `wait` and `enqueue --wait` released by a
 * task that ends while they listen. The test plays a protocol 2 worker
 * (test_client_fake_worker2.h) and waits for the command's SSUBSCRIBE
 * (PUBSUB SHARDNUMSUB) before it, so no step relies on timing.
 */
#include <unistd.h>

#include "test_cli_env.h"
#include "rtq/args.h"
#include "test_client_fake_worker2.h"

/* Tasks of queue "default" taken, moved and ended as worker "w". */
static void take(fake_job2 *j) { assert_int_equal(fw2_take(rc_, &keys2, "default", "w", j), 0); }

/* msgpack of a JSON text (NULL: none), malloc'd. */
static char *pack(const char *json, size_t *len) {
  char *b = NULL;
  *len = 0;
  if (json != NULL) assert_int_equal(rtq_json_to_msgpack(json, &b, len, NULL, 0), 0);
  return b;
}

/* Ends j as s; result and details are JSON texts or NULL. */
static void end_as(const fake_job2 *j, rtq_status s, const char *result, const char *code,
                   const char *msg, const char *details) {
  rtq__finish2_task t;
  memset(&t, 0, sizeof t);
  t.status = s;
  t.error_code = code;
  t.error_message = msg;
  char *res = pack(result, &t.result_len), *det = pack(details, &t.error_details_len);
  t.result = res;
  t.error_details = det;
  assert_int_equal(fw2_finish(rc_, &keys2, j, t), 0);
  free(res);
  free(det);
}

/* Worker "w" alive, serving "default": its running tasks are listed. */
static void heartbeat(void) {
  rtq__field2 f[1] = {{"queues", "default:1"}};
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_heartbeat(&a, &keys2, false, "w", 30000, f, 1), 0);
  assert_int_equal(rtq_script2_run(rc_, &a, NULL), 0);
  rtq_argv_destroy(&a);
}

static void complete(const fake_job2 *j) { end_as(j, RTQ_STATUS_COMPLETED, NULL, NULL, NULL, NULL); }

static void create(const char *id) {
  cli_run r;
  RUN(&r, "enqueue", "job", "--id", id);
  if (r.code != 0) fail_msg("enqueue: %s", r.err);
  cli_free(&r);
}

/* Counts the JSON lines of a watch for one id, checking each parses. */
static int lines_for(const char *out, const char *id, const char *status, double progress) {
  int n = 0;
  const char *p = out;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    json_t *v = json_loadb(p, len, 0, NULL);
    if (v == NULL) fail_msg("watch line is not JSON: %.*s", (int)len, p);
    if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0 &&
        strcmp(json_string_value(json_object_get(v, "status")), status) == 0 &&
        json_number_value(json_object_get(v, "progress")) == progress)
      n++;
    json_decref(v);
    p += len + (nl != NULL);
  }
  return n;
}

static void test_cli_watch_ids_until_they_end(void **state) {
  (void)state;
  create("wa");
  create("wb");
  cli_run r;
  START(&r, "watch", "wa", "wb", "--json", "--timeout", "20");
  RTQ_TEST_WAIT_FOR(events_numsub("default") >= 1, 5000);
  /* Both initial lines are out before we change anything. */
  RTQ_TEST_WAIT_FOR(output_has(&r, "\"wb\""), 5000);

  fake_job2 a, b;
  take(&a);
  take(&b);
  assert_int_equal(fw2_progress(rc_, &keys2, &a, 50, "half way"), 0);
  RTQ_TEST_WAIT_FOR(output_has(&r, "half way"), 5000);
  complete(&a);
  end_as(&b, RTQ_STATUS_FAILED, NULL, "E", "x", NULL);
  cli_finish(&r, 10000);
  assert_int_equal(r.code, 1); /* wb failed */
  assert_string_equal(r.err, "");
  assert_int_equal(lines_for(r.out, "wa", "pending", 0), 1);
  assert_int_equal(lines_for(r.out, "wa", "running", 50), 1);
  assert_int_equal(lines_for(r.out, "wa", "completed", 50), 1);
  assert_int_equal(lines_for(r.out, "wb", "failed", 0), 1);
  cli_free(&r);
}

/* A task whose end came with a message the subscription skipped (not an
 * events message) still ends the watch: watch sees the skip and reads
 * its tasks again, within a second, not at --timeout. */
static void test_cli_watch_ends_on_a_skipped_message(void **state) {
  (void)state;
  create("g1");
  cli_run r;
  START(&r, "watch", "g1", "--json", "--timeout", "20");
  RTQ_TEST_WAIT_FOR(events_numsub("default") >= 1, 5000);
  RTQ_TEST_WAIT_FOR(output_has(&r, "\"g1\""), 5000);
  /* The end is written by hand, and announced by garbage. */
  rtq_key2 t = rtq_keys2_task(&keys2, "default", "g1");
  rtq_test_cmd_int(rc_, "HSET", t.s, "s", "completed", "e", "1", NULL);
  rtq_key2 ch = rtq_keys2_chan_events(&keys2, "default");
  rtq_test_cmd_int(rc_, "SPUBLISH", ch.s, "garbage{", NULL);
  /* Within 10 s, and exit 0: at --timeout it would be 20 s and exit 5. */
  cli_finish(&r, 10000);
  assert_int_equal(r.code, 0);
  assert_int_equal(lines_for(r.out, "g1", "completed", 0), 1);
  cli_free(&r);
}

/* Not a terminal: plain lines with a progress bar; all completed: exit 0.
 * A task that already ended is shown and counts as ended. */
static void test_cli_watch_plain_lines(void **state) {
  (void)state;
  create("p1");
  create("p2");
  fake_job2 j;
  take(&j);
  complete(&j); /* p1 done */
  cli_run r;
  START(&r, "watch", "p1", "p2", "--timeout", "20");
  RTQ_TEST_WAIT_FOR(events_numsub("default") >= 1, 5000);
  RTQ_TEST_WAIT_FOR(output_has(&r, "p2"), 5000);
  take(&j);
  assert_int_equal(fw2_progress(rc_, &keys2, &j, 50, "copying"), 0);
  RTQ_TEST_WAIT_FOR(output_has(&r, "copying"), 5000);
  complete(&j);
  cli_finish(&r, 10000);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "running   [##########----------]   50% "));
  assert_non_null(strstr(r.out, " copying\n"));
  assert_non_null(strstr(r.out, "completed [####################]  100%"));
  assert_null(strstr(r.out, "\033[")); /* no ANSI when not a terminal */
  cli_free(&r);
}

/* On a terminal (a pty from script(1)) the lines are redrawn in place. */
static void test_cli_watch_tty_redraws_in_place(void **state) {
  (void)state;
  if (access("/usr/bin/script", X_OK) != 0) skip();
  create("tty1");
  char bin[512], cmd[1024], out[] = "/tmp/rtq-cli-tty-XXXXXX";
  assert_non_null(rtq_test_bin_path("client/rtq", bin, sizeof bin));
  snprintf(cmd, sizeof cmd, "'%s' watch tty1 --timeout 20", bin);
  int fd = mkstemp(out);
  close(fd);
  const char *argv[] = {"script", "-qfec", cmd, "/dev/null", NULL};
  rtq_test_spawn_options o;
  memset(&o, 0, sizeof o);
  o.path = "/usr/bin/script";
  o.argv = argv;
  o.env = env;
  o.output_path = out;
  pid_t pid = rtq_test_spawn_ex(&o);
  assert_true(pid > 0);
  RTQ_TEST_WAIT_FOR(events_numsub("default") >= 1, 5000);
  /* Its first drawing is out (it has read the task): only then may the
   * task move, or it could read it ended and never redraw. */
  cli_run drawn = {.out_path = ""};
  snprintf(drawn.out_path, sizeof drawn.out_path, "%s", out);
  RTQ_TEST_WAIT_FOR(output_has(&drawn, "pending"), 5000);
  fake_job2 j;
  take(&j);
  assert_int_equal(fw2_progress(rc_, &keys2, &j, 25, "quarter"), 0);
  complete(&j);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  char *text = cli_slurp(out);
  unlink(out);
  assert_non_null(strstr(text, "\033[1A"));  /* cursor back up one line */
  assert_non_null(strstr(text, "\033[2K"));  /* erase it */
  assert_non_null(strstr(text, "running   [#####---------------]   25%"));
  free(text);
}

static void test_cli_watch_running_and_adopted(void **state) {
  (void)state;
  create("r1");
  create("r2");
  fake_job2 a, b;
  heartbeat();
  take(&a); /* r1 running */
  cli_run r;
  START(&r, "watch", "--json", "--timeout", "20");
  RTQ_TEST_WAIT_FOR(events_numsub("default") >= 1, 5000);
  RTQ_TEST_WAIT_FOR(output_has(&r, "\"r1\""), 5000);
  take(&b); /* r2 starts: adopted */
  RTQ_TEST_WAIT_FOR(output_has(&r, "\"r2\""), 5000);
  complete(&a);
  complete(&b);
  /* Following, it outlives the tasks: Ctrl-C ends it. */
  RTQ_TEST_WAIT_FOR(output_has(&r, "\"r2\",\"name\":\"job\",\"status\":\"completed\""), 5000);
  assert_int_equal(rtq_test_kill(r.pid, SIGINT), 0);
  cli_finish(&r, 10000);
  assert_int_equal(r.code, 130);
  assert_int_equal(lines_for(r.out, "r1", "completed", 0), 1);
  assert_int_equal(lines_for(r.out, "r2", "completed", 0), 1);
  cli_free(&r);
}

static void test_cli_watch_timeout_and_not_found(void **state) {
  (void)state;
  create("stuck");
  cli_run r;
  RUN(&r, "watch", "stuck", "--timeout", "0.3");
  assert_int_equal(r.code, 5);
  assert_non_null(strstr(r.err, "timed out"));
  assert_true(r.ms >= 300);
  cli_free(&r);
  RUN(&r, "watch", "ghost");
  cli_assert_error(&r, 3, "ghost");
  cli_free(&r);
  /* No ids and nothing running: follows until --timeout, which is the
   * end asked for (exit 0). */
  RUN(&r, "watch", "--timeout", "0.2");
  assert_int_equal(r.code, 0);
  assert_true(r.ms >= 200);
  cli_free(&r);
}

static void test_cli_wait_released_by_worker(void **state) {
  (void)state;
  create("bw");
  cli_run r;
  START(&r, "wait", "bw", "--json", "--timeout", "20");
  RTQ_TEST_WAIT_FOR(task_numsub("bw") >= 1, 5000);
  fake_job2 j;
  take(&j);
  end_as(&j, RTQ_STATUS_COMPLETED, "[true]", NULL, NULL, NULL);
  cli_finish(&r, 10000);
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "status")), "completed");
  assert_true(json_is_true(json_array_get(json_object_get(v, "result"), 0)));
  json_decref(v);
  cli_free(&r);
}

static void test_cli_enqueue_wait(void **state) {
  (void)state;
  cli_run r;
  START(&r, "enqueue", "ew", "{\"n\":2}", "--id", "ew-1", "--wait=20", "--json");
  RTQ_TEST_WAIT_FOR(task_numsub("ew-1") >= 1, 5000);
  fake_job2 j;
  take(&j);
  end_as(&j, RTQ_STATUS_FAILED, NULL, "E", "nope", "{}");
  cli_finish(&r, 10000);
  assert_int_equal(r.code, 1); /* ended other than completed */
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "id")), "ew-1");
  assert_string_equal(json_string_value(json_object_get(v, "status")), "failed");
  assert_int_equal(json_object_size(json_object_get(json_object_get(v, "error"), "details")), 0);
  json_decref(v);
  cli_free(&r);

  /* --wait with a bound that passes: exit 5. */
  RUN(&r, "enqueue", "ew", "--wait=0.2");
  assert_int_equal(r.code, 5);
  assert_non_null(strstr(r.err, "did not end"));
  cli_free(&r);
}

int main(void) {
  /* rtq and the binaries it starts speak protocol 2 in both test runs. */
  setenv("RTQ_PROTOCOL", "2", 1);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_watch_ends_on_a_skipped_message),
      T(test_cli_watch_ids_until_they_end),
      T(test_cli_watch_plain_lines),
      T(test_cli_watch_tty_redraws_in_place),
      T(test_cli_watch_running_and_adopted),
      T(test_cli_watch_timeout_and_not_found),
      T(test_cli_wait_released_by_worker),
      T(test_cli_enqueue_wait),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
