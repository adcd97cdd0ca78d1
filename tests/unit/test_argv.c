/* test_argv.c - command argument vectors (argv.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "argv.h"
#include "rtq/common.h"

/* Fault seam: fail the allocation number fail_at (0-based), count all. */
static int alloc_count;
static int fail_at = -1;

static void *failing_realloc(void *p, size_t n) {
  if (alloc_count++ == fail_at) return NULL;
  return realloc(p, n);
}

static int use_seam(void **state) {
  (void)state;
  alloc_count = 0;
  fail_at = -1;
  rtq__argv_realloc = failing_realloc;
  return 0;
}

static int restore_seam(void **state) {
  (void)state;
  rtq__argv_realloc = realloc;
  return 0;
}

static void test_argv_add_copies_arguments(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(a.argc, 0);
  char buf[16];
  strcpy(buf, "HSET");
  assert_int_equal(rtq_argv_add_str(&a, buf), 0);
  strcpy(buf, "overwritten");
  assert_int_equal(rtq_argv_add_str(&a, "key"), 0);
  assert_int_equal(a.argc, 2);
  assert_int_equal(a.argvlen[0], 4);
  assert_memory_equal(a.argv[0], "HSET", 4);
  assert_string_equal(a.argv[0], "HSET"); /* NUL-terminated copies */
  assert_string_equal(a.argv[1], "key");
  rtq_argv_destroy(&a);
}

static void test_argv_binary_safe(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  const char bin[] = {'a', '\0', 'b', '\xff', '\n'};
  assert_int_equal(rtq_argv_add(&a, bin, sizeof bin), 0);
  assert_int_equal(rtq_argv_add(&a, NULL, 0), 0);
  assert_int_equal(a.argc, 2);
  assert_int_equal(a.argvlen[0], sizeof bin);
  assert_memory_equal(a.argv[0], bin, sizeof bin);
  assert_int_equal(a.argvlen[1], 0);
  assert_string_equal(a.argv[1], "");
  rtq_argv_destroy(&a);
}

static void test_argv_integers(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq_argv_add_i64(&a, 0), 0);
  assert_int_equal(rtq_argv_add_i64(&a, -42), 0);
  assert_int_equal(rtq_argv_add_i64(&a, INT64_MIN), 0);
  assert_int_equal(rtq_argv_add_u64(&a, UINT64_MAX), 0);
  assert_string_equal(a.argv[0], "0");
  assert_string_equal(a.argv[1], "-42");
  assert_string_equal(a.argv[2], "-9223372036854775808");
  assert_string_equal(a.argv[3], "18446744073709551615");
  assert_int_equal(a.argvlen[3], 20);
  rtq_argv_destroy(&a);
}

static void test_argv_grows_past_initial_capacity(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; i < 1000; i++) assert_int_equal(rtq_argv_add_i64(&a, i), 0);
  assert_int_equal(a.argc, 1000);
  assert_true(a.cap >= 1000);
  for (int i = 0; i < 1000; i++) assert_int_equal(atoi(a.argv[i]), i);
  rtq_argv_destroy(&a);
}

static void test_argv_reset_keeps_capacity(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; i < 20; i++) rtq_argv_add_str(&a, "x");
  int cap = a.cap;
  const char **arr = a.argv;
  rtq_argv_reset(&a);
  assert_int_equal(a.argc, 0);
  assert_int_equal(a.cap, cap);
  assert_ptr_equal(a.argv, arr);
  assert_int_equal(rtq_argv_add_str(&a, "again"), 0);
  assert_string_equal(a.argv[0], "again");
  rtq_argv_destroy(&a);
  rtq_argv_destroy(&a); /* destroy leaves an empty, destroyable vector */
}

static void test_argv_set_replaces_one_argument(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "EVALSHA");
  rtq_argv_add_str(&a, "0123456789012345678901234567890123456789");
  rtq_argv_add_str(&a, "1");
  assert_int_equal(rtq_argv_set(&a, 0, "EVAL", 4), 0);
  assert_int_equal(rtq_argv_set(&a, 1, "return 1", 8), 0);
  assert_int_equal(a.argc, 3);
  assert_string_equal(a.argv[0], "EVAL");
  assert_int_equal(a.argvlen[1], 8);
  assert_string_equal(a.argv[1], "return 1");
  assert_string_equal(a.argv[2], "1");
  assert_int_equal(rtq_argv_set(&a, 3, "x", 1), RTQ_EINVAL);
  assert_int_equal(rtq_argv_set(&a, -1, "x", 1), RTQ_EINVAL);
  rtq_argv_destroy(&a);
}

static void test_argv_oom_is_sticky_until_reset(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  /* Allocations: 3 arrays on the first add, then one copy per argument. */
  fail_at = 4; /* the second argument's copy */
  assert_int_equal(rtq_argv_add_str(&a, "SET"), 0);
  assert_int_equal(rtq_argv_add_str(&a, "k"), RTQ_ENOMEM);
  assert_true(a.oom);
  assert_int_equal(a.argc, 1);
  fail_at = -1;
  assert_int_equal(rtq_argv_add_str(&a, "v"), RTQ_ENOMEM); /* still refused */
  assert_int_equal(a.argc, 1);
  rtq_argv_reset(&a);
  assert_false(a.oom);
  assert_int_equal(rtq_argv_add_str(&a, "PING"), 0);
  rtq_argv_destroy(&a);
}

static void test_argv_oom_on_every_allocation_leaks_nothing(void **state) {
  (void)state;
  /* Fail each allocation in turn while building a 20-argument vector;
   * valgrind/ASan confirm nothing leaks on any of these paths. */
  for (int n = 0; n < 40; n++) {
    alloc_count = 0;
    fail_at = n;
    rtq_argv a;
    rtq_argv_init(&a);
    int failed = 0;
    for (int i = 0; i < 20; i++) failed |= rtq_argv_add_i64(&a, i) != 0;
    assert_int_equal(failed, a.oom != 0);
    if (n < alloc_count) assert_true(a.oom);
    for (int i = 0; i < a.argc; i++) assert_int_equal(atoi(a.argv[i]), i);
    rtq_argv_destroy(&a);
  }
  fail_at = -1;
}

static void test_argv_set_oom_keeps_old_argument(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "keep");
  fail_at = alloc_count;
  assert_int_equal(rtq_argv_set(&a, 0, "new", 3), RTQ_ENOMEM);
  assert_string_equal(a.argv[0], "keep");
  rtq_argv_destroy(&a);
}

static void test_argv_huge_length_fails_cleanly(void **state) {
  (void)state;
  rtq_argv a;
  rtq_argv_init(&a);
  /* len + 1 would wrap to 0: must be refused, not allocated as 0 bytes. */
  assert_int_equal(rtq_argv_add(&a, "x", SIZE_MAX), RTQ_ENOMEM);
  assert_true(a.oom);
  rtq_argv_destroy(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_argv_add_copies_arguments),
      cmocka_unit_test(test_argv_binary_safe),
      cmocka_unit_test(test_argv_integers),
      cmocka_unit_test(test_argv_grows_past_initial_capacity),
      cmocka_unit_test(test_argv_reset_keeps_capacity),
      cmocka_unit_test(test_argv_set_replaces_one_argument),
      cmocka_unit_test_setup_teardown(test_argv_oom_is_sticky_until_reset, use_seam, restore_seam),
      cmocka_unit_test_setup_teardown(test_argv_oom_on_every_allocation_leaks_nothing, use_seam, restore_seam),
      cmocka_unit_test_setup_teardown(test_argv_set_oom_keeps_old_argument, use_seam, restore_seam),
      cmocka_unit_test(test_argv_huge_length_fails_cleanly),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
