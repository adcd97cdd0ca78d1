/*
 * test_worker_error_limits.c - a handler that fails with a 100 kB error
 * code and 48 MB of error details stores the same capped fields in thread
 * and in process isolation. A process-isolation child that bypasses the
 * API and writes its own outcome frame (the largest the worker reads, with
 * a 100 kB code) gets exactly the limits the API gives, and one over the
 * frame limit fails the task; the worker serves on and exits cleanly.
 */
#include "test_worker_util.h"

#define CODE_MAX 64                /* worker/outcome.h RTQ__CODE_MAX */
#define TEXT_MAX (64 * 1024)       /* RTQ__MESSAGE_MAX, RTQ__TRACEBACK_MAX */
#define MAX_RESULT (16u << 20)     /* the worker's default max_result */
#define FRAME_MAX (MAX_RESULT + 3 * TEXT_MAX + 4096) /* worker/slots_process.c */
#define BIG_DETAILS (48u << 20)

static rtq_client *cl;
static rtq_conn *rc;
static tw_worker wk;
static char plugin[512];

static int setup(void **state) {
  (void)state;
  assert_non_null(rtq_test_bin_path("tests/rtq-test-hostile-plugin.so", plugin, sizeof plugin));
  tw_open(&cl, &rc, &wk);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc, &wk, false);
  return 0;
}

typedef struct stored {
  char *status, *code, *message, *details, *traceback;
} stored;

static void stored_free(stored *s) {
  free(s->status), free(s->code), free(s->message), free(s->details), free(s->traceback);
}

static stored run_one(const char *name, const char *json) {
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, name, json, NULL, id);
  rtq_task_free(tw_wait(cl, id, 60000));
  stored s = {tw_hget(rc, id, "status"), tw_hget(rc, id, "error_code"), tw_hget(rc, id, "error_message"),
              tw_hget(rc, id, "error_details"), tw_hget(rc, id, "error_traceback")};
  return s;
}

static void assert_same(const char *a, const char *b, const char *what) {
  if ((a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0))
    fail_msg("%s differs: thread %.80s (%zu bytes), process %.80s (%zu bytes)", what, a ? a : "(none)",
             a ? strlen(a) : 0, b ? b : "(none)", b ? strlen(b) : 0);
}

/* The worker still serves: a plain task completes. */
static void assert_serves(void) {
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "test.badprogress", NULL, NULL, id);
  rtq_task *t = tw_wait(cl, id, 20000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
}

static void stop_clean(void) {
  assert_int_equal(tw_stop(&wk, 15000), 0);
  wk.pid = -1;
}

static void test_worker_error_limits_agree_across_isolation(void **state) {
  (void)state;
  char huge[128], capped[128], code64[CODE_MAX + 1];
  snprintf(huge, sizeof huge, "{\"code_bytes\":102400,\"details_bytes\":%u}", BIG_DETAILS);
  snprintf(capped, sizeof capped, "{\"code_bytes\":%d,\"details_bytes\":%u}", CODE_MAX, BIG_DETAILS);
  memset(code64, 'C', CODE_MAX);
  code64[CODE_MAX] = '\0';

  stored th[2], pr[2];
  tw_start(&wk, rtq_test_redis_url(), "--isolation", "thread", "--plugin", plugin, NULL);
  th[0] = run_one("test.bigfail", huge);
  th[1] = run_one("test.bigfail", capped);
  assert_serves();
  stop_clean();
  tw_start(&wk, rtq_test_redis_url(), "--isolation", "process", "--plugin", plugin, NULL);
  pr[0] = run_one("test.bigfail", huge);
  pr[1] = run_one("test.bigfail", capped);
  assert_serves();

  for (int i = 0; i < 2; i++) {
    assert_string_equal(th[i].status, "failed");
    assert_same(th[i].status, pr[i].status, "status");
    assert_same(th[i].code, pr[i].code, "error_code");
    assert_same(th[i].message, pr[i].message, "error_message");
    assert_same(th[i].details, pr[i].details, "error_details");
    assert_same(th[i].traceback, pr[i].traceback, "error_traceback");
    assert_non_null(th[i].code);
    assert_true(strlen(th[i].code) <= CODE_MAX);
  }
  /* A 100 kB code is refused by rtq_task_fail; the handler's bare failure stays. */
  assert_string_equal(th[0].code, "HANDLER_ERROR");
  /* A code at the limit is kept; 48 MB of details are dropped, and said so. */
  assert_string_equal(th[1].code, code64);
  assert_null(th[1].details);
  assert_string_equal(th[1].message, "big failure (error details dropped: over 64 KiB)");

  /* The same limits for a frame written by hand: the largest the worker
   * reads, holding a 100 kB code, a 100 kB traceback and ~16 MB details. */
  char raw[128];
  snprintf(raw, sizeof raw, "{\"code_bytes\":102400,\"payload_bytes\":%u}", FRAME_MAX);
  stored r = run_one("test.rawfail", raw);
  assert_string_equal(r.status, "failed");
  assert_string_equal(r.code, code64);
  assert_null(r.details);
  assert_string_equal(r.message, "raw failure (error details dropped: over 64 KiB)");
  assert_non_null(r.traceback);
  assert_int_equal(strlen(r.traceback), TEXT_MAX);
  stored_free(&r);
  /* One byte over, or 48 MB: the frame is refused and the task fails. */
  snprintf(raw, sizeof raw, "{\"code_bytes\":102400,\"payload_bytes\":%u}", FRAME_MAX + 1);
  r = run_one("test.rawfail", raw);
  assert_string_equal(r.status, "failed");
  assert_string_equal(r.code, "WORKER_CRASH");
  assert_non_null(strstr(r.message, "garbling its pipe"));
  stored_free(&r);
  snprintf(raw, sizeof raw, "{\"code_bytes\":102400,\"payload_bytes\":%u}", BIG_DETAILS);
  stored r2 = run_one("test.rawfail", raw);
  assert_string_equal(r2.status, "failed");
  assert_string_equal(r2.code, "WORKER_CRASH");
  stored_free(&r2);
  assert_serves();
  stop_clean();
  for (int i = 0; i < 2; i++) stored_free(&th[i]), stored_free(&pr[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_error_limits_agree_across_isolation, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
