/* test_keys.c - the key schema (keys.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keys.h"
#include "runtime.h"

static void test_keys_plain_names(void **state) {
  (void)state;
  rtq_keys k;
  assert_int_equal(rtq_keys_init(&k, "rtq", false), 0);
  assert_string_equal(k.prefix, "rtq");
  assert_int_equal(k.prefix_len, 3);

  rtq_key key = rtq_keys_task(&k, "01JDQ3ZK5V8X4M2T9QH7R6W1YB");
  assert_string_equal(key.s, "rtq:task:01JDQ3ZK5V8X4M2T9QH7R6W1YB");
  assert_int_equal(key.len, strlen(key.s));
  assert_string_equal(rtq_keys_queue(&k, "default").s, "rtq:queue:default");
  assert_string_equal(rtq_keys_queues(&k).s, "rtq:queues");
  assert_string_equal(rtq_keys_processing(&k, "w1").s, "rtq:processing:w1");
  assert_string_equal(rtq_keys_worker(&k, "w1").s, "rtq:worker:w1");
  assert_string_equal(rtq_keys_workers(&k).s, "rtq:workers");
  assert_string_equal(rtq_keys_cancel(&k, "t1").s, "rtq:cancel:t1");
  assert_string_equal(rtq_keys_delayed(&k).s, "rtq:delayed");
  assert_string_equal(rtq_keys_deadlines(&k).s, "rtq:deadlines");
  assert_string_equal(rtq_keys_status(&k, RTQ_STATUS_PENDING).s, "rtq:status:pending");
  assert_string_equal(rtq_keys_status(&k, RTQ_STATUS_TIMEOUT).s, "rtq:status:timeout");
  assert_string_equal(rtq_keys_history(&k).s, "rtq:history");
  assert_string_equal(rtq_keys_dead(&k).s, "rtq:dead");
  assert_string_equal(rtq_keys_stats(&k).s, "rtq:stats");
  assert_string_equal(rtq_keys_lease(&k).s, "rtq:lease");
  assert_string_equal(rtq_keys_throughput(&k, 29946000).s, "rtq:throughput:29946000");
  assert_string_equal(rtq_keys_throughput(&k, 0).s, "rtq:throughput:0");
  assert_string_equal(rtq_keys_chan_events(&k).s, "rtq:chan:events");
  assert_string_equal(rtq_keys_chan_task(&k, "t1").s, "rtq:chan:task:t1");
  assert_string_equal(rtq_keys_chan_cancel(&k).s, "rtq:chan:cancel");
  assert_string_equal(rtq_keys_acl_pattern(&k).s, "rtq:*");
  /* The prefixes take.lua and finish.lua put before an id. */
  char joined[RTQ_KEY_CAP + 8];
  snprintf(joined, sizeof joined, "%st1", rtq_keys_task_prefix(&k).s);
  assert_string_equal(joined, rtq_keys_task(&k, "t1").s);
  snprintf(joined, sizeof joined, "%st1", rtq_keys_cancel_prefix(&k).s);
  assert_string_equal(joined, rtq_keys_cancel(&k, "t1").s);
  snprintf(joined, sizeof joined, "%st1", rtq_keys_chan_task_prefix(&k).s);
  assert_string_equal(joined, rtq_keys_chan_task(&k, "t1").s);
}

static void test_keys_cluster_hash_tag(void **state) {
  (void)state;
  rtq_keys k;
  assert_int_equal(rtq_keys_init(&k, "jobs", true), 0);
  assert_string_equal(k.prefix, "{jobs}");
  assert_string_equal(rtq_keys_task(&k, "t1").s, "{jobs}:task:t1");
  assert_string_equal(rtq_keys_queue(&k, "q").s, "{jobs}:queue:q");
  assert_string_equal(rtq_keys_chan_events(&k).s, "{jobs}:chan:events");
  assert_string_equal(rtq_keys_acl_pattern(&k).s, "{jobs}:*");
  assert_string_equal(rtq_keys_task_prefix(&k).s, "{jobs}:task:");

  assert_int_equal(rtq_keys_init(&k, "rtq", true), 0);
  assert_string_equal(rtq_keys_workers(&k).s, "{rtq}:workers");
  assert_string_equal(rtq_keys_throughput(&k, 7).s, "{rtq}:throughput:7");
}

static void test_keys_invalid_names_give_len_zero(void **state) {
  (void)state;
  rtq_keys k;
  assert_int_equal(rtq_keys_init(&k, "rtq", false), 0);
  const char *bad[] = {"", "a b", "a*", "x\ny", "{tag}", "a?b", "[x]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rtq_key key = rtq_keys_task(&k, bad[i]);
    assert_int_equal(key.len, 0);
    assert_string_equal(key.s, "");
    assert_int_equal(rtq_keys_queue(&k, bad[i]).len, 0);
    assert_int_equal(rtq_keys_processing(&k, bad[i]).len, 0);
    assert_int_equal(rtq_keys_worker(&k, bad[i]).len, 0);
    assert_int_equal(rtq_keys_cancel(&k, bad[i]).len, 0);
    assert_int_equal(rtq_keys_chan_task(&k, bad[i]).len, 0);
  }
  char long_name[130];
  memset(long_name, 'a', 129);
  long_name[129] = '\0';
  assert_int_equal(rtq_keys_task(&k, long_name).len, 0);
}

/* A missing name or an out-of-range status is as unusable as a bad name:
 * "rtq:task" or "rtq:status:unknown" must never be addressed. */
static void test_keys_null_or_unknown_parts_give_len_zero(void **state) {
  (void)state;
  rtq_keys k;
  assert_int_equal(rtq_keys_init(&k, "rtq", false), 0);
  assert_int_equal(rtq_keys_task(&k, NULL).len, 0);
  assert_int_equal(rtq_keys_queue(&k, NULL).len, 0);
  assert_int_equal(rtq_keys_processing(&k, NULL).len, 0);
  assert_int_equal(rtq_keys_worker(&k, NULL).len, 0);
  assert_int_equal(rtq_keys_cancel(&k, NULL).len, 0);
  assert_int_equal(rtq_keys_chan_task(&k, NULL).len, 0);
  assert_int_equal(rtq_keys_status(&k, (rtq_status)99).len, 0);
  assert_int_equal(rtq_keys_status(&k, (rtq_status)-1).len, 0);
}

static void test_keys_longest_name_fits(void **state) {
  (void)state;
  rtq_keys k;
  char ns[65], name[129];
  memset(ns, 'n', 64);
  ns[64] = '\0';
  memset(name, 'x', 128);
  name[128] = '\0';
  assert_int_equal(rtq_keys_init(&k, ns, true), 0);
  rtq_key key = rtq_keys_processing(&k, name);
  assert_int_equal(key.len, 66 + strlen(":processing:") + 128);
  assert_int_equal(key.len, strlen(key.s));
  key = rtq_keys_chan_task(&k, name);
  assert_true(key.len > 0);
}

static void test_keys_invalid_namespace(void **state) {
  (void)state;
  rtq_keys k;
  const char *bad[] = {"", "a b", "a:b", "{x}", "a*", "x\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_int_equal(rtq_keys_init(&k, bad[i], false), RTQ_EINVAL);
  assert_int_equal(rtq_keys_init(&k, NULL, false), RTQ_EINVAL);
  assert_int_equal(rtq_keys_init(NULL, "rtq", false), RTQ_EINVAL);
  char ns[66];
  memset(ns, 'n', 65);
  ns[65] = '\0';
  assert_int_equal(rtq_keys_init(&k, ns, false), RTQ_EINVAL);
  assert_int_equal(rtq_keys_init(&k, "a.b_c-9", false), 0);
}

static void test_keys_every_key_begins_with_prefix(void **state) {
  (void)state;
  const char *namespaces[] = {"rtq", "my-app.prod"};
  for (int ns = 0; ns < 2; ns++) {
    for (int cluster = 0; cluster < 2; cluster++) {
      rtq_keys k;
      assert_int_equal(rtq_keys_init(&k, namespaces[ns], cluster != 0), 0);
      rtq_key keys[] = {
          rtq_keys_task(&k, "t"),        rtq_keys_queue(&k, "q"),      rtq_keys_queues(&k),
          rtq_keys_processing(&k, "w"),  rtq_keys_worker(&k, "w"),     rtq_keys_workers(&k),
          rtq_keys_cancel(&k, "t"),      rtq_keys_delayed(&k),         rtq_keys_deadlines(&k),
          rtq_keys_status(&k, RTQ_STATUS_FAILED), rtq_keys_history(&k), rtq_keys_dead(&k),
          rtq_keys_stats(&k),            rtq_keys_lease(&k),           rtq_keys_chan_events(&k),
          rtq_keys_chan_task(&k, "t"),   rtq_keys_chan_cancel(&k),     rtq_keys_throughput(&k, 1),
          rtq_keys_runtime(&k, "q"),
      };
      for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        assert_true(keys[i].len > k.prefix_len + 1);
        assert_memory_equal(keys[i].s, k.prefix, k.prefix_len);
        assert_int_equal(keys[i].s[k.prefix_len], ':');
        /* Distinct kinds never collide. */
        for (size_t j = 0; j < i; j++) assert_string_not_equal(keys[i].s, keys[j].s);
      }
    }
  }
}

static void test_keys_stats_field(void **state) {
  (void)state;
  assert_string_equal(rtq_keys_stats_field("default", "enqueued").s, "default|enqueued");
  assert_string_equal(rtq_keys_stats_field("emails", "completed").s, "emails|completed");
  assert_int_equal(rtq_keys_stats_field("bad queue", "enqueued").len, 0);
  assert_int_equal(rtq_keys_stats_field("q", NULL).len, 0);
  assert_int_equal(rtq_keys_stats_field(NULL, "x").len, 0);
}

static void test_keys_runtime(void **state) {
  (void)state;
  rtq_keys k;
  assert_int_equal(rtq_keys_init(&k, "rtq", false), 0);
  assert_string_equal(rtq_keys_runtime(&k, "default").s, "rtq:runtime:default");
  assert_string_equal(rtq_keys_runtime_prefix(&k).s, "rtq:runtime:");
  assert_int_equal(rtq_keys_runtime(&k, "a b").len, 0);
  assert_int_equal(rtq_keys_runtime(&k, NULL).len, 0);
}

/* A bucket's bound is inclusive; past the last bound is +Inf. */
static void test_keys_run_buckets(void **state) {
  (void)state;
  assert_int_equal(rtq__run_bucket(0), 0);
  assert_int_equal(rtq__run_bucket(5000), 0);
  assert_int_equal(rtq__run_bucket(5001), 1);
  assert_int_equal(rtq__run_bucket(1000000), 7);
  assert_string_equal(rtq__run_le[7], "1");
  assert_int_equal(rtq__run_bucket(600000000), 15);
  assert_int_equal(rtq__run_bucket(600000001), 16);
  assert_int_equal(rtq__run_bucket(UINT64_MAX), 16);
  assert_string_equal(rtq__run_le[16], "+Inf");
  for (int i = 1; i < RTQ__RUN_BUCKETS - 1; i++) {
    assert_true(rtq__run_bound_us[i] > rtq__run_bound_us[i - 1]);
    /* The name is the bound in seconds. */
    assert_true(strtod(rtq__run_le[i], NULL) * 1e6 == (double)rtq__run_bound_us[i]);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_plain_names),
      cmocka_unit_test(test_keys_cluster_hash_tag),
      cmocka_unit_test(test_keys_invalid_names_give_len_zero),
      cmocka_unit_test(test_keys_null_or_unknown_parts_give_len_zero),
      cmocka_unit_test(test_keys_longest_name_fits),
      cmocka_unit_test(test_keys_invalid_namespace),
      cmocka_unit_test(test_keys_every_key_begins_with_prefix),
      cmocka_unit_test(test_keys_stats_field),
      cmocka_unit_test(test_keys_runtime),
      cmocka_unit_test(test_keys_run_buckets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
