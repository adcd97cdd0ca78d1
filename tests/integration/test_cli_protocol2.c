/*
 * test_cli_protocol2.c - the `rtq` commands about tasks (given
 * --protocol 2, the one protocol, explicitly): ids that carry their
 * queue's slot, one caller-supplied id on two queues told apart with
 * --queue, status, cancel, retry and wait through the queue or through
 * the id alone, list pages; protocol 1 refused, as a setting and as a
 * namespace's data.
 */
#include "test_cli_env.h"
#include "test_client_fake_worker2.h"

#define RUN2(r, ...) RUN(r, "--protocol", "2", __VA_ARGS__)

/* The "id" of a --json task or enqueue answer (malloc'd). */
static char *json_id(const cli_run *r) {
  json_t *v = cli_json(r);
  char *id = strdup(json_string_value(json_object_get(v, "id")));
  json_decref(v);
  return id;
}

static void test_cli_protocol2_enqueue_and_status(void **state) {
  (void)state;
  cli_run r;
  RUN2(&r, "enqueue", "mail", "{\"to\":\"ann\"}", "--queue", "emails", "--json");
  assert_int_equal(r.code, 0);
  char *id = json_id(&r);
  cli_free(&r);
  assert_int_equal(strlen(id), RTQ_ID2_LEN);
  assert_int_equal(rtq_id2_slot(id), rtq_keys2_slot(&keys2, "emails"));
  /* Found from the id alone, and with its queue. */
  RUN2(&r, "status", id, "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "queue")), "emails");
  assert_string_equal(json_string_value(json_object_get(v, "status")), "pending");
  assert_string_equal(json_string_value(json_object_get(json_object_get(v, "args"), "to")), "ann");
  json_decref(v);
  cli_free(&r);
  RUN2(&r, "status", id, "--queue", "emails");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  RUN2(&r, "status", id, "--queue", "other");
  cli_assert_error(&r, 3, "no task");
  cli_free(&r);
  RUN2(&r, "status", id, "--queue", "bad queue");
  cli_assert_error(&r, 2, "queue name");
  cli_free(&r);
  free(id);
}

static void test_cli_protocol2_one_id_on_two_queues(void **state) {
  (void)state;
  cli_run r;
  RUN2(&r, "enqueue", "a-job", "--id", "order-1", "--queue", "qa");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  RUN2(&r, "enqueue", "b-job", "--id", "order-1", "--queue", "qb");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.err, ""); /* a new task: the id is per queue */
  cli_free(&r);
  RUN2(&r, "status", "order-1", "--queue", "qb", "--json");
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "name")), "b-job");
  json_decref(v);
  cli_free(&r);
  /* Cancel the one on qb; qa's stays pending. */
  RUN2(&r, "cancel", "order-1", "--queue", "qb");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "cancelled"));
  cli_free(&r);
  RUN2(&r, "status", "order-1", "--queue", "qa", "--json");
  v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "status")), "pending");
  json_decref(v);
  cli_free(&r);
  /* Retry it there, and wait for it with a worker taking it. */
  RUN2(&r, "retry", "order-1", "--queue", "qb");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  fake_job2 j;
  assert_int_equal(fw2_take(rc_, &keys2, "qb", "w", &j), 0);
  assert_int_equal(fw2_end(rc_, &keys2, &j, RTQ_STATUS_COMPLETED), 0);
  RUN2(&r, "wait", "order-1", "--queue", "qb", "--timeout", "5s");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "completed"));
  cli_free(&r);
  RUN2(&r, "wait", "order-1", "--queue", "qa", "--timeout", "100ms");
  assert_int_equal(r.code, 5);
  cli_free(&r);
}

static void test_cli_protocol2_list_pages(void **state) {
  (void)state;
  cli_run r;
  char ids[5][RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 5; i++) {
    RUN2(&r, "enqueue", "t", "--queue", "pq", "--json");
    char *id = json_id(&r);
    snprintf(ids[i], sizeof ids[i], "%s", id);
    free(id);
    cli_free(&r);
  }
  RUN2(&r, "list", "--queue", "pq", "--limit", "3", "--json");
  json_t *v = cli_json(&r);
  assert_int_equal(json_array_size(v), 3);
  assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "id")), ids[0]);
  json_decref(v);
  const char *p = strstr(r.err, "--after ");
  assert_non_null(p);
  char after[200];
  snprintf(after, sizeof after, "%s", p + strlen("--after "));
  after[strcspn(after, " \n\"")] = '\0';
  cli_free(&r);
  RUN2(&r, "list", "--queue", "pq", "--after", after, "--json");
  v = cli_json(&r);
  assert_int_equal(json_array_size(v), 2);
  assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "id")), ids[3]);
  json_decref(v);
  cli_free(&r);
}

static void test_cli_protocol2_protocol_1_refused(void **state) {
  (void)state;
  cli_run r;
  RUN2(&r, "enqueue", "t");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  RUN(&r, "--protocol", "1", "list");
  cli_assert_error(&r, 2, "protocol 1 is no longer supported");
  cli_free(&r);
  const char *env1[] = {url_env, "RTQ_NAMESPACE", "RTQ_PROTOCOL=1", NULL};
  cli(&r, (const char *const[]){"list", NULL}, env1);
  cli_assert_error(&r, 2, "RTQ_PROTOCOL: protocol 1 is no longer supported");
  cli_free(&r);
  RUN(&r, "--protocol", "3", "list");
  cli_assert_error(&r, 2, "protocol");
  cli_free(&r);
  /* Without a flag or variable: 2, the default. */
  const char *env0[] = {url_env, "RTQ_NAMESPACE", "RTQ_PROTOCOL", NULL};
  cli(&r, (const char *const[]){"list", "--json", NULL}, env0);
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_int_equal(json_array_size(v), 1);
  json_decref(v);
  cli_free(&r);
}

/* A namespace holding protocol 1's data (its counters, ns:stats, or
 * {ns}:stats of a cluster namespace) and no mark: refused, exit 4, with
 * where to read how to move it; nothing is written. */
static void test_cli_protocol2_protocol_1_data_refused(void **state) {
  (void)state;
  static const char *const v1_stats[] = {"rtq:stats", "{rtq}:stats"};
  for (int i = 0; i < 2; i++) {
    rtq_test_redis_flush();
    rtq_test_cmd_int(rc_, "HSET", v1_stats[i], "default|enqueued", "1", NULL);
    cli_run r;
    RUN(&r, "enqueue", "t");
    cli_assert_error(&r, 4, "holds protocol-1 data");
    assert_non_null(strstr(r.err, "OPERATIONS.md"));
    cli_free(&r);
    assert_int_equal(rtq_test_cmd_int(rc_, "DBSIZE", NULL), 1);
    /* Another namespace on the same Redis is its own. */
    RUN(&r, "--namespace", "rtq2", "enqueue", "t");
    assert_int_equal(r.code, 0);
    cli_free(&r);
  }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_protocol2_enqueue_and_status),
      T(test_cli_protocol2_one_id_on_two_queues),
      T(test_cli_protocol2_list_pages),
      T(test_cli_protocol2_protocol_1_refused),
      T(test_cli_protocol2_protocol_1_data_refused),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
