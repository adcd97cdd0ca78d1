/*
 * test_worker_progress_text.c - a handler that reports a progress message
 * holding bytes that are not UTF-8 and terminal escapes, in thread
 * isolation, in process isolation and as an --exec handler process: the
 * stored message is valid UTF-8 (each bad byte replaced by U+FFFD), and
 * rtq_task_to_json and `rtq --json status` of the task work.
 */
#include "test_worker_util.h"

#include "test_cli_run.h"

/* What the plugin's "50%\xff\xfe \x1b[2J\x1b]0;owned\x07 end\xc0" is stored as. */
#define CLEANED "50%\xef\xbf\xbd\xef\xbf\xbd \x1b[2J\x1b]0;owned\x07 end\xef\xbf\xbd"

static rtq_client *cl;
static rtq_conn *rc;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc, &wk, true);
  return 0;
}

static bool utf8_valid(const char *s) {
  json_t *j = json_string(s); /* jansson refuses text that is not UTF-8 */
  json_decref(j);
  return j != NULL;
}

/* The task's stored message, its JSON form and `rtq --json status` agree
 * and are valid UTF-8; returns the stored message (caller frees). */
static char *check_task(const char *id, rtq_status want) {
  rtq_task *t = tw_wait(cl, id, 20000);
  if (t->status != want)
    fail_msg("task %s ended %s (%s: %s)", id, rtq_status_name(t->status), t->error_code ? t->error_code : "-",
             t->error_message ? t->error_message : "-");
  char *stored = tw_hget(rc, id, "progress_message");
  if (stored != NULL && !utf8_valid(stored)) fail_msg("stored progress message is not UTF-8");

  char *json = NULL;
  assert_int_equal(rtq_task_to_json(t, &json), 0);
  json_t *o = json_loads(json, 0, NULL);
  assert_non_null(o);
  const char *pm = json_string_value(json_object_get(o, "progress_message"));
  if (stored != NULL) assert_string_equal(pm, stored);
  json_decref(o);
  free(json);
  rtq_task_free(t);

  char url_env[300];
  snprintf(url_env, sizeof url_env, "RTQ_REDIS_URL=%s", rtq_test_redis_url());
  const char *env[] = {url_env, "RTQ_NAMESPACE", NULL};
  const char *args[] = {"--json", "status", id, NULL};
  cli_run r;
  cli(&r, args, env);
  if (r.code != 0) fail_msg("rtq --json status exited %d: %s", r.code, r.err);
  json_t *v = cli_json(&r);
  pm = json_string_value(json_object_get(v, "progress_message"));
  if (stored != NULL) assert_string_equal(pm, stored);
  json_decref(v);
  cli_free(&r);
  return stored;
}

static void run_plugin(const char *isolation) {
  char plugin[512], id[RTQ_TASK_ID_SIZE];
  assert_non_null(rtq_test_bin_path("tests/rtq-test-hostile-plugin.so", plugin, sizeof plugin));
  tw_start(&wk, rtq_test_redis_url(), "--isolation", isolation, "--plugin", plugin, NULL);
  tw_enqueue(cl, "test.badprogress", NULL, NULL, id);
  char *stored = check_task(id, RTQ_STATUS_COMPLETED);
  assert_non_null(stored);
  assert_string_equal(stored, CLEANED);
  free(stored);
}

static void test_worker_progress_text_thread(void **state) {
  (void)state;
  run_plugin("thread");
}

static void test_worker_progress_text_process(void **state) {
  (void)state;
  run_plugin("process");
}

static void test_worker_progress_text_exec(void **state) {
  (void)state;
  const char *s = getenv("RTQ_SOURCE_DIR");
  if (s == NULL) fail_msg("RTQ_SOURCE_DIR is not set");
  char esc[1200], raw[1200], id[RTQ_TASK_ID_SIZE], id2[RTQ_TASK_ID_SIZE];
  snprintf(esc, sizeof esc, "x.escaped=/bin/sh %s/tests/integration/exec/badtext.sh escaped", s);
  snprintf(raw, sizeof raw, "x.raw=/bin/sh %s/tests/integration/exec/badtext.sh raw", s);
  tw_start(&wk, rtq_test_redis_url(), "--exec", esc, "--exec", raw, NULL);

  /* Escapes arrive as JSON escapes: kept as the characters they are. */
  tw_enqueue(cl, "x.escaped", NULL, NULL, id);
  char *stored = check_task(id, RTQ_STATUS_COMPLETED);
  assert_non_null(stored);
  assert_string_equal(stored, "50% \x1b[2J\x1b]0;owned\x07 end");
  free(stored);

  /* Raw bytes that are not UTF-8 make the line not JSON: the handler broke
   * the protocol, and nothing of that line is stored. */
  tw_enqueue(cl, "x.raw", NULL, NULL, id2);
  stored = check_task(id2, RTQ_STATUS_FAILED);
  assert_null(stored);
  assert_true(tw_field_is(rc, id2, "error_code", "EXEC_PROTOCOL"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_progress_text_thread, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_progress_text_process, setup, teardown),
      cmocka_unit_test_setup_teardown(test_worker_progress_text_exec, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
