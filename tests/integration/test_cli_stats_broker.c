/*
 * test_cli_stats_broker.c - `rtq stats` keeps the broker's figures (a real
 * rtq-broker's sweep counters, {ns}:broker) in their own section, human
 * and JSON, and a real queue called "broker" is a queue like any other:
 * its backlog and counters ({ns:broker}:stats) in its row, none of the
 * broker's counters mixed in.
 */
#include "test_cli_env.h"
#include "test_client_fake_worker2.h"

static long long hget_ll(const char *key, const char *field) {
  char *s = rtq_test_cmd_str(rc_, "HGET", key, field, NULL);
  long long v = s != NULL ? strtoll(s, NULL, 10) : 0;
  free(s);
  return v;
}

static void test_cli_stats_broker_apart_from_queues(void **state) {
  (void)state;
  /* A real queue named "broker": two enqueued, one completed. */
  cli_run r;
  RUN(&r, "enqueue", "t", "--queue", "broker");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  RUN(&r, "enqueue", "t", "--queue", "broker");
  cli_free(&r);
  fake_job2 j;
  assert_int_equal(fw2_take(rc_, &keys2, "broker", "w", &j), 0);
  assert_int_equal(fw2_end(rc_, &keys2, &j, RTQ_STATUS_COMPLETED), 0);
  /* A real broker sweeps once. */
  run_bin("broker/rtq-broker", (const char *const[]){"--once", NULL});
  assert_true(hget_ll(rtq_keys2_broker(&keys2).s, "sweeps") >= 1);
  assert_int_equal(hget_ll(rtq_keys2_stats(&keys2, "broker").s, "enqueued"), 2);

  RUN(&r, "stats", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  json_t *queues = json_object_get(v, "queues");
  assert_int_equal(json_array_size(queues), 1);
  json_t *q = json_array_get(queues, 0);
  assert_string_equal(json_string_value(json_object_get(q, "name")), "broker");
  assert_int_equal(json_integer_value(json_object_get(q, "backlog")), 1);
  json_t *qc = json_object_get(q, "counters");
  assert_int_equal(json_integer_value(json_object_get(qc, "enqueued")), 2);
  assert_int_equal(json_integer_value(json_object_get(qc, "completed")), 1);
  assert_null(json_object_get(qc, "sweeps"));
  assert_null(json_object_get(qc, "last_sweep_at"));
  json_t *b = json_object_get(v, "broker");
  json_t *bc = json_object_get(b, "counters");
  assert_true(json_integer_value(json_object_get(bc, "sweeps")) >= 1);
  assert_null(json_object_get(bc, "enqueued"));
  assert_null(json_object_get(bc, "completed"));
  assert_true(json_is_string(json_object_get(b, "last_sweep_at")));
  json_decref(v);
  cli_free(&r);

  RUN(&r, "stats");
  assert_int_equal(r.code, 0);
  /* The queue row: name, backlog 1, enqueued 2, completed 1. */
  assert_non_null(strstr(r.out, "\nbroker "));
  const char *row = strstr(r.out, "\nbroker ");
  char name[16];
  unsigned long long backlog, enq, done;
  assert_int_equal(sscanf(row, " %15s %llu %llu %llu", name, &backlog, &enq, &done), 4);
  assert_int_equal(backlog, 1);
  assert_int_equal(enq, 2);
  assert_int_equal(done, 1);
  /* The broker's section. */
  const char *sec = strstr(r.out, "\nbroker: sweeps ");
  if (sec == NULL) fail_msg("no broker section: %s", r.out);
  assert_null(strstr(sec, "enqueued"));
  assert_non_null(strstr(r.out, "last sweep: "));
  cli_free(&r);
}

/* No broker has run: an empty section, and no "broker" queue appears. */
static void test_cli_stats_without_broker(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "enqueue", "t");
  cli_free(&r);
  RUN(&r, "stats", "--json");
  json_t *v = cli_json(&r);
  assert_int_equal(json_array_size(json_object_get(v, "queues")), 1);
  json_t *b = json_object_get(v, "broker");
  assert_int_equal(json_object_size(json_object_get(b, "counters")), 0);
  assert_true(json_is_null(json_object_get(b, "last_sweep_at")));
  json_decref(v);
  cli_free(&r);
  RUN(&r, "stats");
  assert_non_null(strstr(r.out, "broker: no figures"));
  cli_free(&r);
}

int main(void) {
  /* rtq and the binaries it starts speak protocol 2 in both test runs. */
  setenv("RTQ_PROTOCOL", "2", 1);
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_stats_broker_apart_from_queues),
      T(test_cli_stats_without_broker),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
