/*
 * test_client_queues2.c - protocol v2's queue registry in the client
 * (client/queues2.c) on a private redis-server: registering a queue once
 * per client, reading the registry without the junk a writer may add, and
 * finding the queue of a task id by its slot or by probing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_internal.h"
#include "harness.h"
#include "keys2.h"
#include "registry2.h"
#include "test_client_fixture2.h"

static void test_client_queues2_register_once_per_client(void **state) {
  (void)state;
  assert_int_equal(rtq__queues2_register(CL, "mail"), 0);
  assert_int_equal(rtq_test_cmd_int(C, "SISMEMBER", "{rtq}:queues", "mail", NULL), 1);
  /* Removed behind the client's back: the cache does not send it again,
   * a new client does. */
  rtq_test_cmd_int(C, "SREM", "{rtq}:queues", "mail", NULL);
  assert_int_equal(rtq__queues2_register(CL, "mail"), 0);
  assert_int_equal(rtq_test_cmd_int(C, "SISMEMBER", "{rtq}:queues", "mail", NULL), 0);
  assert_int_equal(rtq__queues2_register(CL, "bill"), 0);
  assert_int_equal(rtq_test_cmd_int(C, "SCARD", "{rtq}:queues", NULL), 1);
}

static void test_client_queues2_read_skips_junk(void **state) {
  (void)state;
  rtq_test_cmd_int(C, "SADD", "{rtq}:queues", "b", "a", "bad name", "{x}", "", NULL);
  char **names;
  size_t n;
  assert_int_equal(rtq__queues2_read(CL, &names, &n), 0);
  assert_int_equal(n, 2);
  assert_string_equal(names[0], "a");
  assert_string_equal(names[1], "b");
  rtq__queues2_free(names, n);
  /* The wrong type is an error, not a crash. */
  rtq_test_cmd_int(C, "DEL", "{rtq}:queues", NULL);
  rtq_test_cmd_ok(C, "SET", "{rtq}:queues", "x", NULL);
  assert_int_equal(rtq__queues2_read(CL, &names, &n), RTQ_EREDIS);
}

/* A registry over the cap, padded with junk, is read in SSCAN pages (no
 * SMEMBERS walks the whole set while Redis waits) and gives at most
 * RTQ_REGISTRY2_MAX names, sorted, each once. */
static void test_client_queues2_read_large_registry_in_pages(void **state) {
  (void)state;
  const int valid = RTQ_REGISTRY2_MAX + 500, junk = 3000;
  for (int base = 0; base < valid + junk; base += 1000) {
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "SADD");
    rtq_argv_add_str(&a, "{rtq}:queues");
    for (int i = base; i < base + 1000 && i < valid + junk; i++) {
      char name[32];
      snprintf(name, sizeof name, i < valid ? "q%07d" : "bad name %d", i);
      rtq_argv_add_str(&a, name);
    }
    assert_int_equal(rtq_conn_command(C, &a, NULL), 0);
    rtq_argv_destroy(&a);
  }
  rtq_test_cmd_ok(C, "CONFIG", "RESETSTAT", NULL);
  char **names;
  size_t n;
  assert_int_equal(rtq__queues2_read(CL, &names, &n), 0);
  assert_int_equal(n, RTQ_REGISTRY2_MAX);
  for (size_t i = 1; i < n; i++) assert_true(strcmp(names[i - 1], names[i]) < 0);
  rtq__queues2_free(names, n);
  char *stats = rtq_test_cmd_str(C, "INFO", "commandstats", NULL);
  assert_non_null(stats);
  assert_null(strstr(stats, "cmdstat_smembers"));
  const char *sscan = strstr(stats, "cmdstat_sscan:calls=");
  assert_non_null(sscan);
  long calls = strtol(sscan + strlen("cmdstat_sscan:calls="), NULL, 10);
  printf("registry of %d members: %ld SSCAN calls\n", valid + junk, calls);
  assert_true(calls >= RTQ_REGISTRY2_MAX / RTQ_REGISTRY2_PAGE);
  free(stats);
}

static void test_client_queues2_queue_of_id(void **state) {
  (void)state;
  rtq_keys2 k;
  assert_int_equal(rtq_keys2_init(&k, "rtq"), 0);
  char id[RTQ_ID2_LEN + 1];
  assert_int_equal(rtq_id2_new(id, rtq_keys2_slot(&k, "q7")), 0);
  rtq_test_cmd_int(C, "SADD", "{rtq}:queues", "q1", "q2", "q7", "q9", NULL);
  rtq_test_cmd_int(C, "HSET", "{rtq:q7}:t:", "s", "pending", NULL); /* no id: a decoy */
  rtq_key2 t = rtq_keys2_task(&k, "q7", id);
  rtq_test_cmd_int(C, "HSET", t.s, "s", "pending", NULL);
  char q[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq__queue_of_id2(CL, id, NULL, q), 0);
  assert_string_equal(q, "q7");
  assert_int_equal(rtq__queue_of_id2(CL, id, "q7", q), 0);
  assert_int_equal(rtq__queue_of_id2(CL, id, "q2", q), RTQ_ENOTFOUND);
  assert_string_equal(q, "");
  /* A caller-supplied id has no slot: found by probing. */
  rtq_key2 own = rtq_keys2_task(&k, "q9", "order-17");
  rtq_test_cmd_int(C, "HSET", own.s, "s", "pending", NULL);
  assert_int_equal(rtq__queue_of_id2(CL, "order-17", NULL, q), 0);
  assert_string_equal(q, "q9");
  assert_int_equal(rtq__queue_of_id2(CL, "order-18", NULL, q), RTQ_ENOTFOUND);
  assert_int_equal(rtq__queue_of_id2(CL, "bad id", NULL, q), RTQ_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_client_queues2_register_once_per_client, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_queues2_read_skips_junk, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_queues2_read_large_registry_in_pages, setup, teardown),
      cmocka_unit_test_setup_teardown(test_client_queues2_queue_of_id, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
