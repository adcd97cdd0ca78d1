/* test_args.c - the rtq_args value tree (args.c) and its JSON side
 * (args_json.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rtq/args.h"

#include "alloc_probe.h"

#define HEX(s) (s), (sizeof(s) - 1)

static rtq_args *unpack_ok(const char *buf, size_t len) {
  rtq_args *a = NULL;
  assert_int_equal(rtq_args_unpack(buf, len, 0, &a), 0);
  assert_non_null(a);
  return a;
}

static char *json_of(const rtq_args *a) {
  char *j = NULL;
  assert_int_equal(rtq_args_to_json(a, &j), 0);
  assert_non_null(j);
  return j;
}

static void assert_json(const rtq_args *a, const char *want) {
  char *j = json_of(a);
  assert_string_equal(j, want);
  free(j);
}

/* ---- building and reading ------------------------------------------------ */

static void test_args_new_is_empty(void **state) {
  (void)state;
  rtq_args *m = rtq_args_new();
  rtq_args *a = rtq_args_new_array();
  assert_int_equal(rtq_args_type(m), RTQ_TYPE_MAP);
  assert_int_equal(rtq_args_type(a), RTQ_TYPE_ARRAY);
  assert_int_equal(rtq_args_count(m), 0);
  assert_int_equal(rtq_args_count(a), 0);
  assert_int_equal(rtq_args_type(NULL), RTQ_TYPE_NIL);
  assert_int_equal(rtq_args_count(NULL), 0);
  rtq_args_free(m);
  rtq_args_free(a);
  rtq_args_free(NULL);
}

static void test_args_set_and_get_each_type(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_str(a, "s", "hello"), 0);
  assert_int_equal(rtq_args_set_strn(a, "sn", "a\0b", 3), 0);
  assert_int_equal(rtq_args_set_int(a, "i", INT64_MIN), 0);
  assert_int_equal(rtq_args_set_double(a, "d", 2.5), 0);
  assert_int_equal(rtq_args_set_bool(a, "t", true), 0);
  assert_int_equal(rtq_args_set_nil(a, "n"), 0);
  assert_int_equal(rtq_args_set_bin(a, "b", "\x00\xff", 2), 0);
  assert_int_equal(rtq_args_set_str(a, "", "empty key"), 0);
  assert_int_equal(rtq_args_count(a), 8);

  const char *s;
  size_t n;
  int64_t i;
  double d;
  bool t;
  const void *b;
  rtq_type ty;
  assert_int_equal(rtq_args_get_str(a, "s", &s, &n), 0);
  assert_int_equal(n, 5);
  assert_memory_equal(s, "hello", 5);
  assert_int_equal(rtq_args_get_str(a, "sn", &s, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(s, "a\0b", 3);
  assert_int_equal(rtq_args_get_int(a, "i", &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(rtq_args_get_double(a, "d", &d), 0);
  assert_true(d == 2.5);
  assert_int_equal(rtq_args_get_bool(a, "t", &t), 0);
  assert_true(t);
  assert_int_equal(rtq_args_get_type(a, "n", &ty), 0);
  assert_int_equal(ty, RTQ_TYPE_NIL);
  assert_int_equal(rtq_args_get_bin(a, "b", &b, &n), 0);
  assert_int_equal(n, 2);
  assert_memory_equal(b, "\x00\xff", 2);
  assert_int_equal(rtq_args_get_str(a, "", &s, &n), 0);
  assert_string_equal(s, "empty key");
  assert_true(rtq_args_has(a, "t"));
  assert_false(rtq_args_has(a, "missing"));
  rtq_args_free(a);
}

static void test_args_set_replaces_existing_key(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_str(a, "k", "one"), 0);
  assert_int_equal(rtq_args_set_int(a, "other", 1), 0);
  assert_int_equal(rtq_args_set_int(a, "k", 2), 0);
  assert_int_equal(rtq_args_count(a), 2);
  int64_t v;
  assert_int_equal(rtq_args_get_int(a, "k", &v), 0);
  assert_int_equal(v, 2);
  const char *key;
  assert_int_equal(rtq_args_key_at(a, 0, &key, NULL), 0);
  assert_memory_equal(key, "k", 1); /* replaced in place: order kept */
  rtq_args_free(a);
}

static void test_args_getter_errors(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  rtq_args *arr = rtq_args_new_array();
  const char *s;
  size_t n;
  int64_t i;
  bool b;
  const rtq_args *c;
  assert_int_equal(rtq_args_set_str(a, "s", "x"), 0);
  assert_int_equal(rtq_args_get_int(a, "missing", &i), RTQ_ENOTFOUND);
  assert_int_equal(rtq_args_get_int(a, "s", &i), RTQ_ETYPE);
  assert_int_equal(rtq_args_get_bool(a, "s", &b), RTQ_ETYPE);
  assert_int_equal(rtq_args_get_child(a, "s", &c), RTQ_ETYPE);
  assert_int_equal(rtq_args_get_str(arr, "s", &s, &n), RTQ_EINVAL);
  assert_int_equal(rtq_args_get_str(a, NULL, &s, &n), RTQ_EINVAL);
  assert_int_equal(rtq_args_get_str(NULL, "s", &s, &n), RTQ_EINVAL);
  assert_int_equal(rtq_args_set_int(arr, "k", 1), RTQ_EINVAL);
  assert_int_equal(rtq_args_set_int(a, NULL, 1), RTQ_EINVAL);
  assert_int_equal(rtq_args_set_str(a, "k", NULL), RTQ_EINVAL);
  assert_int_equal(rtq_args_push_int(a, 1), RTQ_EINVAL);
  assert_int_equal(rtq_args_push_str(arr, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_args_count(a), 1);
  assert_int_equal(rtq_args_count(arr), 0);
  rtq_args_free(a);
  rtq_args_free(arr);
}

static void test_args_numeric_conversions(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_double(a, "big", 1e300), 0);
  assert_int_equal(rtq_args_set_double(a, "half", 3.5), 0);
  assert_int_equal(rtq_args_set_double(a, "whole", 3.0), 0);
  assert_int_equal(rtq_args_set_double(a, "nan", NAN), 0);
  assert_int_equal(rtq_args_set_double(a, "inf", -INFINITY), 0);
  assert_int_equal(rtq_args_set_double(a, "edge", 9223372036854775808.0), 0);
  assert_int_equal(rtq_args_set_int(a, "neg", -1), 0);
  int64_t i;
  uint64_t u;
  double d;
  assert_int_equal(rtq_args_get_int(a, "whole", &i), 0);
  assert_int_equal(i, 3);
  assert_int_equal(rtq_args_get_int(a, "half", &i), RTQ_ETYPE);
  assert_int_equal(rtq_args_get_int(a, "big", &i), RTQ_ERANGE);
  assert_int_equal(rtq_args_get_int(a, "nan", &i), RTQ_ETYPE);
  assert_int_equal(rtq_args_get_int(a, "inf", &i), RTQ_ERANGE);
  assert_int_equal(rtq_args_get_uint(a, "half", &u), RTQ_ETYPE);
  assert_int_equal(rtq_args_get_int(a, "edge", &i), RTQ_ERANGE);
  assert_int_equal(rtq_args_get_uint(a, "edge", &u), 0);
  assert_true(u == 9223372036854775808ull);
  assert_int_equal(rtq_args_get_uint(a, "neg", &u), RTQ_ERANGE);
  assert_int_equal(rtq_args_get_double(a, "neg", &d), 0);
  assert_true(d == -1.0);
  rtq_args_free(a);

  /* A uint above INT64_MAX only decodes from msgpack. */
  a = unpack_ok(HEX("\x81\xa1u\xcf\xff\xff\xff\xff\xff\xff\xff\xff"));
  rtq_type t;
  assert_int_equal(rtq_args_get_type(a, "u", &t), 0);
  assert_int_equal(t, RTQ_TYPE_UINT);
  assert_int_equal(rtq_args_get_int(a, "u", &i), RTQ_ERANGE);
  assert_int_equal(rtq_args_get_uint(a, "u", &u), 0);
  assert_true(u == UINT64_MAX);
  assert_int_equal(rtq_args_get_double(a, "u", &d), 0);
  assert_true(d == 18446744073709551616.0);
  rtq_args_free(a);
}

static void test_args_get_cstr(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  char buf[6];
  assert_int_equal(rtq_args_set_str(a, "k", "hello"), 0);
  assert_int_equal(rtq_args_set_str(a, "long", "hello!"), 0);
  assert_int_equal(rtq_args_set_str(a, "e", ""), 0);
  assert_int_equal(rtq_args_get_cstr(a, "k", buf, sizeof buf), 0);
  assert_string_equal(buf, "hello");
  assert_int_equal(rtq_args_get_cstr(a, "long", buf, sizeof buf), RTQ_ERANGE);
  assert_string_equal(buf, "");
  assert_int_equal(rtq_args_get_cstr(a, "e", buf, sizeof buf), 0);
  assert_string_equal(buf, "");
  assert_int_equal(rtq_args_get_cstr(a, "k", buf, 0), RTQ_EINVAL);
  rtq_args_free(a);
}

static void test_args_children_and_iteration(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  rtq_args *arr = rtq_args_new_array();
  rtq_args *inner = rtq_args_new();
  assert_int_equal(rtq_args_set_str(inner, "x", "y"), 0);
  assert_int_equal(rtq_args_push_int(arr, 1), 0);
  assert_int_equal(rtq_args_push_str(arr, "two"), 0);
  assert_int_equal(rtq_args_push_strn(arr, "3\0", 2), 0);
  assert_int_equal(rtq_args_push_double(arr, 4.5), 0);
  assert_int_equal(rtq_args_push_bool(arr, false), 0);
  assert_int_equal(rtq_args_push_nil(arr), 0);
  assert_int_equal(rtq_args_push_bin(arr, "\x01", 1), 0);
  assert_int_equal(rtq_args_push_child(arr, inner), 0);
  assert_int_equal(rtq_args_set_child(a, "list", arr), 0);
  assert_int_equal(rtq_args_set_int(a, "after", 9), 0);

  const rtq_args *list, *v;
  assert_int_equal(rtq_args_get_child(a, "list", &list), 0);
  assert_int_equal(rtq_args_count(list), 8);
  int64_t i;
  const char *s;
  size_t n;
  double d;
  bool b;
  const void *bin;
  assert_int_equal(rtq_args_at(list, 0, &v), 0);
  assert_int_equal(rtq_args_as_int(v, &i), 0);
  assert_int_equal(i, 1);
  assert_int_equal(rtq_args_at(list, 1, &v), 0);
  assert_int_equal(rtq_args_as_str(v, &s, &n), 0);
  assert_memory_equal(s, "two", 3);
  assert_int_equal(rtq_args_at(list, 2, &v), 0);
  assert_int_equal(rtq_args_as_str(v, &s, &n), 0);
  assert_int_equal(n, 2);
  assert_int_equal(rtq_args_at(list, 3, &v), 0);
  assert_int_equal(rtq_args_as_double(v, &d), 0);
  assert_true(d == 4.5);
  assert_int_equal(rtq_args_at(list, 4, &v), 0);
  assert_int_equal(rtq_args_as_bool(v, &b), 0);
  assert_false(b);
  assert_int_equal(rtq_args_at(list, 5, &v), 0);
  assert_int_equal(rtq_args_type(v), RTQ_TYPE_NIL);
  assert_int_equal(rtq_args_as_int(v, &i), RTQ_ETYPE);
  assert_int_equal(rtq_args_at(list, 6, &v), 0);
  assert_int_equal(rtq_args_as_bin(v, &bin, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(rtq_args_at(list, 7, &v), 0);
  assert_int_equal(rtq_args_get_str(v, "x", &s, &n), 0);
  assert_int_equal(rtq_args_at(list, 8, &v), RTQ_ERANGE);

  const char *key;
  assert_int_equal(rtq_args_key_at(a, 1, &key, &n), 0);
  assert_int_equal(n, 5);
  assert_memory_equal(key, "after", 5);
  assert_int_equal(rtq_args_key_at(a, 2, &key, &n), RTQ_ERANGE);
  assert_int_equal(rtq_args_key_at(list, 0, &key, &n), RTQ_EINVAL);
  assert_int_equal(rtq_args_at(list, 0, &v), 0);
  assert_int_equal(rtq_args_at(v, 0, &v), RTQ_EINVAL); /* a scalar */
  rtq_args_free(a);
}

/* Setters own the child also on error; leaks would show under valgrind
 * and LSan. */
static void test_args_child_ownership_on_error(void **state) {
  (void)state;
  rtq_args *arr = rtq_args_new_array();
  rtq_args *child = rtq_args_new();
  assert_int_equal(rtq_args_set_str(child, "k", "v"), 0);
  assert_int_equal(rtq_args_set_child(arr, "k", child), RTQ_EINVAL); /* arr is not a map */
  child = rtq_args_new();
  assert_int_equal(rtq_args_set_child(child, NULL, rtq_args_new_array()), RTQ_EINVAL);
  assert_int_equal(rtq_args_set_child(child, "self", child), RTQ_EINVAL); /* not freed */
  assert_int_equal(rtq_args_push_child(arr, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_args_count(child), 0);
  rtq_args_free(child);
  rtq_args_free(arr);
}

static rtq_args *chain(int levels) {
  rtq_args *a = rtq_args_new_array();
  for (int i = 1; i < levels; i++) {
    rtq_args *up = rtq_args_new_array();
    assert_int_equal(rtq_args_push_child(up, a), 0);
    a = up;
  }
  return a;
}

static void test_args_depth_limit_when_building(void **state) {
  (void)state;
  rtq_args *a = chain(RTQ_ARGS_MAX_DEPTH); /* 32 levels: allowed */
  char *buf;
  size_t len;
  assert_int_equal(rtq_args_pack(a, &buf, &len), 0);
  free(buf);
  rtq_args *top = rtq_args_new();
  assert_int_equal(rtq_args_set_child(top, "deep", a), RTQ_EDEPTH); /* a is freed */
  assert_int_equal(rtq_args_count(top), 0);
  /* Replacing the tallest child lowers the height again. */
  assert_int_equal(rtq_args_set_child(top, "k", chain(RTQ_ARGS_MAX_DEPTH - 1)), 0);
  assert_int_equal(rtq_args_set_int(top, "k", 1), 0);
  rtq_args *wrap = rtq_args_new_array();
  assert_int_equal(rtq_args_push_child(wrap, chain(RTQ_ARGS_MAX_DEPTH - 2)), 0);
  assert_int_equal(rtq_args_set_child(top, "w", wrap), 0);
  rtq_args_free(top);
}

/* ---- msgpack ------------------------------------------------------------- */

static void test_args_pack_golden_bytes(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  rtq_args *l = rtq_args_new_array();
  assert_int_equal(rtq_args_set_int(a, "a", 1), 0);
  assert_int_equal(rtq_args_set_str(a, "b", "x"), 0);
  assert_int_equal(rtq_args_set_int(a, "c", -200), 0);
  assert_int_equal(rtq_args_push_bool(l, true), 0);
  assert_int_equal(rtq_args_push_double(l, 1.0), 0);
  assert_int_equal(rtq_args_set_child(a, "d", l), 0);
  static const char want[] = "\x84\xa1" "a\x01\xa1" "b\xa1x\xa1" "c\xd1\xff\x38\xa1" "d"
                             "\x92\xc3\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00";
  char *buf;
  size_t len;
  assert_int_equal(rtq_args_pack(a, &buf, &len), 0);
  assert_int_equal(len, sizeof want - 1);
  assert_memory_equal(buf, want, len);
  free(buf);
  rtq_args_free(a);
}

static void test_args_pack_unpack_roundtrip(void **state) {
  (void)state;
  /* Every format family msgpack-c can hand us, in canonical form. */
  static const char in[] =
      "\x8c"
      "\xa1n\xc0"
      "\xa1t\xc3"
      "\xa1p\x7f"
      "\xa1m\xe0"
      "\xa1u\xcf\xff\xff\xff\xff\xff\xff\xff\xff"
      "\xa1i\xd3\x80\x00\x00\x00\x00\x00\x00\x00"
      "\xa1" "d\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18"
      "\xa1s\xa3" "abc"
      "\xa1" "b\xc4\x02\x00\xff"
      "\xa1" "a\x93\x01\x90\x80"
      "\xa1" "e\xa0"
      "\xa0\x80";
  rtq_args *a = unpack_ok(HEX(in));
  assert_int_equal(rtq_args_count(a), 12);
  char *buf;
  size_t len;
  assert_int_equal(rtq_args_pack(a, &buf, &len), 0);
  assert_int_equal(len, sizeof in - 1);
  assert_memory_equal(buf, in, len);
  free(buf);
  rtq_args_free(a);

  /* A float32 and a non-minimal int read as their values. */
  a = unpack_ok(HEX("\x82\xa1" "f\xca\x3f\xc0\x00\x00\xa1i\xd2\x00\x00\x00\x05"));
  double d;
  int64_t i;
  assert_int_equal(rtq_args_get_double(a, "f", &d), 0);
  assert_true(d == 1.5);
  assert_int_equal(rtq_args_get_int(a, "i", &i), 0);
  assert_int_equal(i, 5);
  rtq_args_free(a);

  /* Scalars at the top level are values too. */
  a = unpack_ok(HEX("\x05"));
  assert_int_equal(rtq_args_type(a), RTQ_TYPE_INT);
  assert_int_equal(rtq_args_count(a), 0);
  assert_int_equal(rtq_args_pack(a, &buf, &len), 0);
  assert_int_equal(len, 1);
  free(buf);
  rtq_args_free(a);
}

static void test_args_unpack_duplicate_key_reads_last(void **state) {
  (void)state;
  rtq_args *a = unpack_ok(HEX("\x82\xa1k\x01\xa1k\x02"));
  int64_t v;
  assert_int_equal(rtq_args_count(a), 2);
  assert_int_equal(rtq_args_get_int(a, "k", &v), 0);
  assert_int_equal(v, 2);
  assert_json(a, "{\"k\":2}");
  rtq_args_free(a);
}

static void expect_unpack_error(const char *buf, size_t len, size_t max, int want) {
  rtq_args *a = (rtq_args *)&a; /* must stay untouched on error */
  probe_reset();
  int rc = rtq_args_unpack(buf, len, max, &a);
  size_t requested = probe_total;
  assert_int_equal(rc, want);
  assert_true(a == (rtq_args *)&a);
  /* Rejected before msgpack-c saw the bytes: not one allocation. Without
   * the structural check, msgpack-c allocates a zone for every input and
   * ~100 GiB for `dd ff 00 00 00`. */
  probe_total = requested;
  assert_alloc_at_most(0);
}

static void test_args_unpack_hostile_input_allocates_nothing(void **state) {
  (void)state;
  expect_unpack_error(HEX("\xdd\xff\x00\x00\x00"), 0, RTQ_EDECODE);
  expect_unpack_error(HEX("\xdf\xff\xff\xff\xff"), 0, RTQ_EDECODE);
  expect_unpack_error(HEX("\xdb\xff\xff\xff\xff" "ab"), 0, RTQ_EDECODE);
  expect_unpack_error(HEX("\xc6\xff\xff\xff\xff" "ab"), 0, RTQ_EDECODE);
  expect_unpack_error(HEX("\x81\xa1k\xdd\x01\x00\x00\x00\xc0"), 0, RTQ_EDECODE);
  expect_unpack_error(HEX("\xc1"), 0, RTQ_EDECODE);
  expect_unpack_error(HEX("\x81\xa1k"), 0, RTQ_EDECODE);    /* truncated */
  expect_unpack_error(HEX("\x80\xc0"), 0, RTQ_EDECODE);     /* trailing */
  expect_unpack_error(NULL, 0, 0, RTQ_EDECODE);
  expect_unpack_error(HEX("\x80\xc0"), 1, RTQ_ETOOBIG);

  size_t n = 100000;
  char *deep = malloc(n + 1);
  assert_non_null(deep);
  memset(deep, 0x91, n);
  deep[n] = '\xc0';
  expect_unpack_error(deep, n + 1, 0, RTQ_EDEPTH);
  expect_unpack_error(deep + n - 33, 34, 0, RTQ_EDEPTH); /* 33 levels */
  rtq_args *a;
  assert_int_equal(rtq_args_unpack(deep + n - 32, 33, 0, &a), 0); /* 32 levels */
  rtq_args_free(a);
  free(deep);

  /* 2 MiB of valid msgpack: a bin32 of 2 MiB - 5 bytes. */
  size_t big = 2u * 1024 * 1024;
  char *blob = calloc(1, big);
  assert_non_null(blob);
  memcpy(blob, "\xc6\x00\x1f\xff\xfb", 5);
  expect_unpack_error(blob, big, 0, RTQ_ETOOBIG);
  assert_int_equal(rtq_args_unpack(blob, big, big, &a), 0);
  rtq_args_free(a);
  free(blob);
  assert_int_equal(rtq_args_unpack("\x80", 1, 0, NULL), RTQ_EINVAL);
}

static void test_args_unpack_rejects_what_the_tree_cannot_hold(void **state) {
  (void)state;
  rtq_args *a = NULL;
  assert_int_equal(rtq_args_unpack(HEX("\x81\x01\x02"), 0, &a), RTQ_EDECODE); /* int key */
  assert_int_equal(rtq_args_unpack(HEX("\x81\xc4\x01k\x02"), 0, &a), RTQ_EDECODE); /* bin key */
  assert_int_equal(rtq_args_unpack(HEX("\x81\xa1k\xd4\x01\x00"), 0, &a), RTQ_EDECODE); /* ext */
  assert_int_equal(rtq_args_unpack(HEX("\x92\x01\xc7\x01\x05x"), 0, &a), RTQ_EDECODE);
  assert_null(a);
}

static uint64_t rng_state = 0xd1b54a32d192ed03ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

/* Writes a random, valid msgpack value of at most `room` bytes at b;
 * returns its length. Containers hold 0-3 values; leaves come from a mix of
 * formats, including those the tree rejects (ext, int keys). */
static size_t gen_value(unsigned char *b, size_t room, int depth) {
  static const char *const leaves[] = {"\xc0", "\xc2", "\x05", "\xf0", "\xa1x", "\xa0",
                                       "\xc4\x01\x00", "\xcb\x3f\xf0\0\0\0\0\0\0",
                                       "\xcd\x01\x00", "\xd4\x01\x00", "\xd0\x80"};
  static const size_t leaf_len[] = {1, 1, 1, 1, 2, 1, 3, 9, 3, 3, 2};
  if (room >= 2 && depth < 40 && rnd() % 3 == 0) {
    bool map = rnd() % 2;
    size_t n = rnd() % 4, len = 1;
    b[0] = (unsigned char)((map ? 0x80 : 0x90) | n);
    for (size_t i = 0; i < n * (map ? 2 : 1); i++) {
      if (room - len < 1) return gen_value(b, room, 99); /* out of room: a leaf */
      bool key = map && i % 2 == 0 && rnd() % 16;
      if (key) {
        if (room - len < 2) return gen_value(b, room, 99);
        b[len++] = 0xa1;
        b[len++] = (unsigned char)('a' + rnd() % 3);
      } else {
        len += gen_value(b + len, room - len, depth + 1);
      }
    }
    return len;
  }
  for (;;) {
    size_t k = rnd() % (sizeof leaf_len / sizeof leaf_len[0]);
    if (leaf_len[k] <= room) {
      memcpy(b, leaves[k], leaf_len[k]);
      return leaf_len[k];
    }
  }
}

/* Seeded and bounded: generated values, half of them then damaged by one
 * byte. Whatever decodes must also pack, repack to the same bytes and
 * convert to JSON; whatever does not must fail cleanly and cheaply. */
static void test_args_unpack_random_bytes(void **state) {
  (void)state;
  unsigned char buf[256];
  int ok = 0, bad = 0;
  for (int iter = 0; iter < 30000; iter++) {
    size_t len = gen_value(buf, 1 + rnd() % sizeof buf, 0);
    if (iter % 2) buf[rnd() % len] = (unsigned char)rnd();
    rtq_args *a = NULL;
    probe_reset();
    int rc = rtq_args_unpack(buf, len, 0, &a);
    assert_alloc_at_most(64 * 1024 + 64 * len);
    if (rc != 0) {
      assert_true(rc == RTQ_EDECODE || rc == RTQ_EDEPTH);
      assert_null(a);
      bad++;
      continue;
    }
    ok++;
    char *p1, *p2, *json;
    size_t l1, l2;
    assert_int_equal(rtq_args_pack(a, &p1, &l1), 0);
    rtq_args *b = unpack_ok((const char *)p1, l1);
    assert_int_equal(rtq_args_pack(b, &p2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(p1, p2, l1);
    assert_int_equal(rtq_args_to_json(a, &json), 0);
    free(json);
    free(p1);
    free(p2);
    rtq_args_free(a);
    rtq_args_free(b);
  }
  assert_true(ok > 3000 && bad > 3000); /* both paths ran */
}

/* ---- JSON ---------------------------------------------------------------- */

static void test_args_to_json_types(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  rtq_args *l = rtq_args_new_array();
  assert_int_equal(rtq_args_set_str(a, "s", "x\"y"), 0);
  assert_int_equal(rtq_args_set_int(a, "i", -5), 0);
  assert_int_equal(rtq_args_set_double(a, "d", 1.5), 0);
  assert_int_equal(rtq_args_set_double(a, "w", 2.0), 0);
  assert_int_equal(rtq_args_set_bool(a, "t", true), 0);
  assert_int_equal(rtq_args_set_nil(a, "n"), 0);
  assert_int_equal(rtq_args_set_bin(a, "b", "\x01\x02\x03", 3), 0);
  assert_int_equal(rtq_args_push_int(l, 1), 0);
  assert_int_equal(rtq_args_push_child(l, rtq_args_new()), 0);
  assert_int_equal(rtq_args_set_child(a, "l", l), 0);
  assert_json(a, "{\"s\":\"x\\\"y\",\"i\":-5,\"d\":1.5,\"w\":2.0,\"t\":true,\"n\":null,"
                 "\"b\":\"AQID\",\"l\":[1,{}]}");
  rtq_args_free(a);
}

static void test_args_to_json_base64(void **state) {
  (void)state;
  /* RFC 4648 section 10 test vectors. */
  static const char *const in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const out[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=",
                                    "Zm9vYmFy"};
  for (size_t i = 0; i < 7; i++) {
    rtq_args *a = rtq_args_new();
    char want[32];
    assert_int_equal(rtq_args_set_bin(a, "b", in[i], strlen(in[i])), 0);
    snprintf(want, sizeof want, "{\"b\":\"%s\"}", out[i]);
    assert_json(a, want);
    rtq_args_free(a);
  }
  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_bin(a, "b", "\xfb\xff\xbf", 3), 0);
  assert_json(a, "{\"b\":\"+/+/\"}");
  rtq_args_free(a);
}

static void test_args_to_json_what_json_cannot_say(void **state) {
  (void)state;
  rtq_args *a = rtq_args_new();
  assert_int_equal(rtq_args_set_double(a, "nan", NAN), 0);
  assert_int_equal(rtq_args_set_double(a, "inf", -INFINITY), 0);
  assert_int_equal(rtq_args_set_strn(a, "nul", "a\0b", 3), 0);
  assert_int_equal(rtq_args_set_str(a, "bad", "a\xff" "b\xc3"), 0);   /* invalid UTF-8 */
  assert_int_equal(rtq_args_set_str(a, "sur", "\xed\xa0\x80"), 0);    /* a surrogate */
  assert_int_equal(rtq_args_set_str(a, "ok", "caf\xc3\xa9 \xf0\x9f\x98\x80"), 0);
  assert_int_equal(rtq_args_set_int(a, "k\xfe", 1), 0);                /* bad key */
  assert_json(a, "{\"nan\":null,\"inf\":null,\"nul\":\"a\\u0000b\","
                 "\"bad\":\"a\xef\xbf\xbd" "b\xef\xbf\xbd\","
                 "\"sur\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\","
                 "\"ok\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\",\"k\xef\xbf\xbd\":1}");
  rtq_args_free(a);

  a = unpack_ok(HEX("\x91\xcf\xff\xff\xff\xff\xff\xff\xff\xff"));
  assert_json(a, "[1.8446744073709552e19]");
  rtq_args_free(a);
  a = unpack_ok(HEX("\xa2hi"));
  assert_json(a, "\"hi\"");
  rtq_args_free(a);
  char *j = NULL;
  assert_int_equal(rtq_args_to_json(NULL, &j), RTQ_EINVAL);
}

static void test_args_from_json_types(void **state) {
  (void)state;
  rtq_args *a = NULL;
  char err[128];
  assert_int_equal(rtq_args_from_json("{\"i\":12,\"neg\":-9223372036854775808,\"r\":1.0,"
                                      "\"e\":1e3,\"s\":\"\\u00e9\\u0000\",\"t\":true,"
                                      "\"f\":false,\"n\":null,\"l\":[1,[2]],\"o\":{}}",
                                      &a, err, sizeof err),
                   0);
  rtq_type t;
  int64_t i;
  const char *s;
  size_t n;
  assert_int_equal(rtq_args_get_type(a, "i", &t), 0);
  assert_int_equal(t, RTQ_TYPE_INT);
  assert_int_equal(rtq_args_get_int(a, "neg", &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(rtq_args_get_type(a, "r", &t), 0);
  assert_int_equal(t, RTQ_TYPE_DOUBLE);
  assert_int_equal(rtq_args_get_type(a, "e", &t), 0);
  assert_int_equal(t, RTQ_TYPE_DOUBLE);
  assert_int_equal(rtq_args_get_str(a, "s", &s, &n), 0);
  assert_int_equal(n, 3);
  assert_memory_equal(s, "\xc3\xa9\0", 3);
  assert_int_equal(rtq_args_get_type(a, "n", &t), 0);
  assert_int_equal(t, RTQ_TYPE_NIL);
  const rtq_args *l;
  assert_int_equal(rtq_args_get_child(a, "l", &l), 0);
  assert_int_equal(rtq_args_count(l), 2);
  rtq_args_free(a);

  assert_int_equal(rtq_args_from_json("[1, \"x\"]", &a, NULL, 0), 0);
  assert_int_equal(rtq_args_type(a), RTQ_TYPE_ARRAY);
  rtq_args_free(a);
  assert_int_equal(rtq_args_from_json("42", &a, NULL, 0), 0);
  assert_int_equal(rtq_args_type(a), RTQ_TYPE_INT);
  rtq_args_free(a);
}

static void test_args_from_json_errors(void **state) {
  (void)state;
  rtq_args *a = NULL;
  char err[160];
  assert_int_equal(rtq_args_from_json("{\"a\":", &a, err, sizeof err), RTQ_EJSON);
  assert_non_null(strstr(err, "line 1"));
  assert_null(strchr(err, '\n'));
  assert_int_equal(rtq_args_from_json("", &a, err, sizeof err), RTQ_EJSON);
  assert_int_equal(rtq_args_from_json("{} {}", &a, err, sizeof err), RTQ_EJSON);
  assert_int_equal(rtq_args_from_json("[99999999999999999999]", &a, err, sizeof err), RTQ_EJSON);
  assert_int_equal(rtq_args_from_json("\"\xff\"", &a, err, sizeof err), RTQ_EJSON);
  assert_int_equal(rtq_args_from_json(NULL, &a, err, sizeof err), RTQ_EINVAL);
  assert_int_equal(rtq_args_from_json("{}", NULL, err, sizeof err), RTQ_EINVAL);
  assert_null(a);

  /* 32 levels are allowed, 33 are not; 100000 never reach our code. */
  char deep[2 * 100000 + 1];
  for (int levels = 32; levels <= 33; levels++) {
    memset(deep, '[', (size_t)levels);
    memset(deep + levels, ']', (size_t)levels);
    deep[2 * levels] = '\0';
    int rc = rtq_args_from_json(deep, &a, err, sizeof err);
    if (levels == 32) {
      assert_int_equal(rc, 0);
      rtq_args_free(a);
      a = NULL;
    } else {
      assert_int_equal(rc, RTQ_EDEPTH);
      assert_non_null(strstr(err, "deeper than 32"));
    }
  }
  memset(deep, '[', 100000);
  memset(deep + 100000, ']', 100000);
  deep[200000] = '\0';
  assert_true(rtq_args_from_json(deep, &a, err, sizeof err) < 0);
  assert_null(a);
}

static void test_args_json_roundtrip(void **state) {
  (void)state;
  static const char *const texts[] = {
      ("{\"name\":\"report.csv\",\"rows\":[1,2,3],\"opts\":{\"gzip\":true,\"level\":0.5},"
       "\"none\":null,\"neg\":-1}"),
      "[]",
      "{}",
      "\"\\u0000x\"",
      "[1.0e-300,-0.0,123456789012345678]",
  };
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    rtq_args *a, *b;
    assert_int_equal(rtq_args_from_json(texts[i], &a, NULL, 0), 0);
    char *j1 = json_of(a);
    assert_int_equal(rtq_args_from_json(j1, &b, NULL, 0), 0);
    char *j2 = json_of(b);
    assert_string_equal(j1, j2);
    free(j1);
    free(j2);
    rtq_args_free(a);
    rtq_args_free(b);
  }
}

static void test_args_json_msgpack_shortcuts(void **state) {
  (void)state;
  char *buf, *json;
  size_t len;
  char err[128];
  assert_int_equal(rtq_json_to_msgpack("{\"a\":1,\"b\":[true]}", &buf, &len, err, sizeof err), 0);
  assert_int_equal(len, 8);
  assert_memory_equal(buf, "\x82\xa1" "a\x01\xa1" "b\x91\xc3", 8);
  assert_int_equal(rtq_msgpack_to_json(buf, len, &json), 0);
  assert_string_equal(json, "{\"a\":1,\"b\":[true]}");
  free(json);
  free(buf);
  assert_int_equal(rtq_json_to_msgpack("nope", &buf, &len, err, sizeof err), RTQ_EJSON);
  assert_null(buf);
  assert_int_equal(rtq_msgpack_to_json("\xdd\xff\x00\x00\x00", 5, &json), RTQ_EDECODE);
  assert_null(json);
  assert_int_equal(rtq_msgpack_to_json("\x81\xa1k\xd4\x01\x00", 6, &json), RTQ_EDECODE);
}

int main(void) {
  probe_active(); /* installs the probe before any test measures */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_args_new_is_empty),
      cmocka_unit_test(test_args_set_and_get_each_type),
      cmocka_unit_test(test_args_set_replaces_existing_key),
      cmocka_unit_test(test_args_getter_errors),
      cmocka_unit_test(test_args_numeric_conversions),
      cmocka_unit_test(test_args_get_cstr),
      cmocka_unit_test(test_args_children_and_iteration),
      cmocka_unit_test(test_args_child_ownership_on_error),
      cmocka_unit_test(test_args_depth_limit_when_building),
      cmocka_unit_test(test_args_pack_golden_bytes),
      cmocka_unit_test(test_args_pack_unpack_roundtrip),
      cmocka_unit_test(test_args_unpack_duplicate_key_reads_last),
      cmocka_unit_test(test_args_unpack_hostile_input_allocates_nothing),
      cmocka_unit_test(test_args_unpack_rejects_what_the_tree_cannot_hold),
      cmocka_unit_test(test_args_unpack_random_bytes),
      cmocka_unit_test(test_args_to_json_types),
      cmocka_unit_test(test_args_to_json_base64),
      cmocka_unit_test(test_args_to_json_what_json_cannot_say),
      cmocka_unit_test(test_args_from_json_types),
      cmocka_unit_test(test_args_from_json_errors),
      cmocka_unit_test(test_args_json_roundtrip),
      cmocka_unit_test(test_args_json_msgpack_shortcuts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
