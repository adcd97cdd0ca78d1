/*
 * test_cli_watch_follow.c - `rtq watch` with no ids follows the namespace
 * until its --timeout: it shows a task that starts, keeps running after it
 * ends, shows the next one (started after the first ended) and exits 0 at
 * the timeout. Progress lines carry a rate and an ETA (a real rtq-worker
 * runs rtq.sleep, which reports progress in steps). `rtq status` of a
 * running task shows its rate and ETA from started_at.
 */
#include "test_cli_env.h"
#include "test_client_fake_worker2.h"

static bool still_running(const cli_run *r) {
  return rtq_test_wait_exit(r->pid, 0, NULL) == RTQ_ETIMEDOUT;
}

/* Lines of the JSON watch output for id with status; counts those with a
 * positive rate and an ETA in *with_rate. */
static int json_lines(const char *out, const char *id, const char *status, int *with_rate) {
  int n = 0;
  *with_rate = 0;
  for (const char *p = out; *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    json_t *v = json_loadb(p, len, 0, NULL);
    if (v == NULL) fail_msg("watch line is not JSON: %.*s", (int)len, p);
    if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0 &&
        strcmp(json_string_value(json_object_get(v, "status")), status) == 0) {
      n++;
      json_t *rate = json_object_get(v, "rate"), *eta = json_object_get(v, "eta_s");
      assert_true(json_is_null(rate) || json_is_number(rate));
      if (json_is_number(rate) && json_number_value(rate) > 0 && json_is_number(eta) &&
          json_number_value(eta) >= 0)
        (*with_rate)++;
    }
    json_decref(v);
    p += len + (nl != NULL);
  }
  return n;
}

static void enqueue_sleep(const char *id) {
  cli_run r;
  RUN(&r, "enqueue", "rtq.sleep", "{\"seconds\":0.6,\"steps\":3}", "--id", id);
  if (r.code != 0) fail_msg("enqueue: %s", r.err);
  cli_free(&r);
}

static void test_cli_watch_follow_until_timeout(void **state) {
  (void)state;
  pid_t worker = spawn_bin("worker/rtq-worker",
                           (const char *const[]){"--demo-handlers", "--concurrency", "1",
                                                 "--heartbeat-interval", "100ms", "--log-level",
                                                 "ERROR", NULL},
                           "/dev/null");
  rtq_key2 wk = rtq_keys2_workers(&keys2);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "ZCARD", wk.s, NULL) == 1, 10000);

  /* The queue is known before the watches start, so they subscribe to its
   * channel at once rather than at their next read of the registry. */
  rtq_test_cmd_int(rc_, "SADD", rtq_keys2_queues(&keys2).s, "default", NULL);
  cli_run j, h;
  START(&j, "watch", "--json", "--timeout", "6s");
  START(&h, "watch", "--timeout", "6s");
  RTQ_TEST_WAIT_FOR(events_numsub("default") >= 2, 5000);
  uint64_t t0 = rtq_test_now_ms();

  enqueue_sleep("first");
  RTQ_TEST_WAIT_FOR(output_has(&j, "\"id\":\"first\",\"name\":\"rtq.sleep\",\"status\":\"completed\""),
                    10000);
  /* The first task ended: the watches go on. */
  assert_true(still_running(&j));
  assert_true(still_running(&h));
  enqueue_sleep("second");
  RTQ_TEST_WAIT_FOR(output_has(&j, "\"id\":\"second\",\"name\":\"rtq.sleep\",\"status\":\"completed\""),
                    10000);
  RTQ_TEST_WAIT_FOR(output_has(&h, "second"), 5000);
  if (rtq_test_now_ms() - t0 < 5500) {
    assert_true(still_running(&j));
    assert_true(still_running(&h));
  }

  cli_finish(&j, 15000);
  cli_finish(&h, 15000);
  assert_int_equal(j.code, 0);
  assert_int_equal(h.code, 0);
  assert_string_equal(j.err, "");
  assert_true(j.ms >= 6000);
  assert_true(h.ms >= 6000);

  int rated;
  assert_true(json_lines(j.out, "first", "running", &rated) >= 2);
  assert_true(rated >= 1);
  assert_int_equal(json_lines(j.out, "first", "completed", &rated), 1);
  assert_int_equal(rated, 0); /* an ended task has no rate */
  assert_true(json_lines(j.out, "second", "running", &rated) >= 2);
  assert_true(rated >= 1);
  assert_int_equal(json_lines(j.out, "second", "completed", &rated), 1);

  /* The plain lines: "<pct> <rate>%/s eta <n>s" on a running line. */
  assert_non_null(strstr(h.out, "%/s eta "));
  assert_non_null(strstr(h.out, "first"));
  assert_non_null(strstr(h.out, "second"));
  cli_free(&j);
  cli_free(&h);

  int status = 0;
  assert_int_equal(rtq_test_terminate(worker, SIGTERM, 30000, &status), 0);
}

static uint64_t redis_ms(void) {
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(rc_, &ms), 0);
  return ms;
}

static void test_cli_status_rate_and_eta(void **state) {
  (void)state;
  cli_run r;
  /* A queue of its own: no real worker of another test serves it. */
  RUN(&r, "enqueue", "job", "--id", "st-1", "--queue", "st");
  cli_free(&r);
  fake_job2 a;
  assert_int_equal(fw2_take(rc_, &keys2, "st", "w", &a), 0);
  assert_int_equal(fw2_progress(rc_, &keys2, &a, 40, "page 4"), 0);
  char *s = cli_task_field("st", "st-1", "started_at");
  uint64_t started = strtoull(s, NULL, 10);
  free(s);
  /* Some Redis time must pass for a rate. */
  RTQ_TEST_WAIT_FOR(redis_ms() > started + 5, 5000);

  RUN(&r, "status", "st-1", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  double rate = json_number_value(json_object_get(v, "rate"));
  double eta = json_number_value(json_object_get(v, "eta_s"));
  uint64_t upto = redis_ms();
  /* 40 % in (now - started_at): between the bounds of the two readings. */
  assert_true(rate > 0);
  assert_true(rate <= 40.0 * 1000.0 / 5.0);
  assert_true(rate >= 40.0 * 1000.0 / (double)(upto - started) - 1e-9);
  assert_true(eta > 0);
  assert_true(eta < 60.0 / rate + 0.01 && eta > 60.0 / rate - 0.01);
  json_decref(v);
  cli_free(&r);

  RUN(&r, "status", "st-1");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "rate:"));
  assert_non_null(strstr(r.out, "%/s, eta "));
  cli_free(&r);

  /* Ended: no rate. */
  assert_int_equal(fw2_end(rc_, &keys2, &a, RTQ_STATUS_COMPLETED), 0);
  RUN(&r, "status", "st-1", "--json");
  v = cli_json(&r);
  assert_true(json_is_null(json_object_get(v, "rate")));
  assert_true(json_is_null(json_object_get(v, "eta_s")));
  json_decref(v);
  cli_free(&r);
  RUN(&r, "status", "st-1");
  assert_null(strstr(r.out, "rate:"));
  cli_free(&r);
}

int main(void) {
  /* rtq and the binaries it starts speak protocol 2 in both test runs. */
  setenv("RTQ_PROTOCOL", "2", 1);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_watch_follow_until_timeout),
      T(test_cli_status_rate_and_eta),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
