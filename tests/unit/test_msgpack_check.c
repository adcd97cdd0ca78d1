/* test_msgpack_check.c - the non-allocating structural check (msgpack_check.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "envelope.h"
#include "rtq/args.h"

#define HEX(s) (s), (sizeof(s) - 1)

static int check(const char *buf, size_t len, int depth) {
  char err[128];
  return rtq_msgpack_check(buf, len, depth, err, sizeof err);
}

/* One valid encoding of every msgpack format family. */
static const struct {
  const char *bytes;
  size_t len;
} samples[] = {
    {HEX("\xc0")},                                 /* nil */
    {HEX("\xc3")},                                 /* true */
    {HEX("\x7f")},                                 /* positive fixint */
    {HEX("\xe0")},                                 /* negative fixint */
    {HEX("\xcc\xff")},                             /* uint8 */
    {HEX("\xcd\x01\x00")},                         /* uint16 */
    {HEX("\xce\x00\x01\x00\x00")},                 /* uint32 */
    {HEX("\xcf\x00\x00\x00\x01\x00\x00\x00\x00")}, /* uint64 */
    {HEX("\xd0\x80")},                             /* int8 */
    {HEX("\xd1\x80\x00")},                         /* int16 */
    {HEX("\xd2\x80\x00\x00\x00")},                 /* int32 */
    {HEX("\xd3\x80\x00\x00\x00\x00\x00\x00\x00")}, /* int64 */
    {HEX("\xca\x3f\x80\x00\x00")},                 /* float32 */
    {HEX("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00")}, /* float64 */
    {HEX("\xa3" "abc")},                           /* fixstr */
    {HEX("\xd9\x02" "ab")},                        /* str8 */
    {HEX("\xda\x00\x01" "a")},                     /* str16 */
    {HEX("\xdb\x00\x00\x00\x01" "a")},             /* str32 */
    {HEX("\xc4\x02\x01\x02")},                     /* bin8 */
    {HEX("\xc5\x00\x01\x01")},                     /* bin16 */
    {HEX("\xc6\x00\x00\x00\x01\x01")},             /* bin32 */
    {HEX("\xd4\x01\x01")},                         /* fixext1 */
    {HEX("\xd8\x01" "0123456789abcdef")},          /* fixext16 */
    {HEX("\xc7\x02\x05" "ab")},                    /* ext8 */
    {HEX("\xc8\x00\x01\x05" "a")},                 /* ext16 */
    {HEX("\xc9\x00\x00\x00\x01\x05" "a")},         /* ext32 */
    {HEX("\x92\x01\x02")},                         /* fixarray */
    {HEX("\xdc\x00\x01\xc0")},                     /* array16 */
    {HEX("\xdd\x00\x00\x00\x01\xc0")},             /* array32 */
    {HEX("\x81\xa1" "a" "\x01")},                  /* fixmap */
    {HEX("\xde\x00\x01\x01\x02")},                 /* map16 */
    {HEX("\xdf\x00\x00\x00\x01\x01\x02")},         /* map32 */
    {HEX("\x82\xa1" "a" "\x91\x90\xa1" "b" "\x80")}, /* nested, empty containers */
};

static void test_msgpack_check_accepts_every_format(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
    assert_int_equal(check(samples[i].bytes, samples[i].len, 8), 0);
}

static void test_msgpack_check_rejects_every_truncation(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
    for (size_t cut = 0; cut < samples[i].len; cut++)
      assert_int_equal(check(samples[i].bytes, cut, 8), RTQ_EDECODE);
}

static void test_msgpack_check_rejects_trailing_bytes(void **state) {
  (void)state;
  char err[128];
  assert_int_equal(rtq_msgpack_check("\xc0\xc0", 2, 8, err, sizeof err), RTQ_EDECODE);
  assert_non_null(strstr(err, "trailing"));
  assert_int_equal(check(HEX("\x91\x01\x02"), 8), RTQ_EDECODE);
}

static void test_msgpack_check_rejects_empty_and_null(void **state) {
  (void)state;
  assert_int_equal(check("", 0, 8), RTQ_EDECODE);
  assert_int_equal(rtq_msgpack_check(NULL, 4, 8, NULL, 0), RTQ_EDECODE);
}

static void test_msgpack_check_rejects_reserved_byte(void **state) {
  (void)state;
  char err[128];
  assert_int_equal(rtq_msgpack_check("\xc1", 1, 8, err, sizeof err), RTQ_EDECODE);
  assert_non_null(strstr(err, "0xc1"));
  assert_int_equal(check(HEX("\x91\xc1"), 8), RTQ_EDECODE);
}

static void test_msgpack_check_rejects_huge_declared_lengths(void **state) {
  (void)state;
  char err[128];
  assert_int_equal(rtq_msgpack_check("\xdd\xff\x00\x00\x00", 5, 8, err, sizeof err), RTQ_EDECODE);
  assert_non_null(strstr(err, "array"));
  assert_int_equal(check(HEX("\xdf\xff\xff\xff\xff"), 8), RTQ_EDECODE);          /* map32 */
  assert_int_equal(check(HEX("\xdb\xff\xff\xff\xff" "abc"), 8), RTQ_EDECODE);    /* str32 */
  assert_int_equal(check(HEX("\xc6\xff\xff\xff\xff" "abc"), 8), RTQ_EDECODE);    /* bin32 */
  /* ext32 with length 2^32-1: msgpack-c computes length + 1 in 32 bits,
   * which wraps to 0; the check does the sum in 64 bits. */
  assert_int_equal(check(HEX("\xc9\xff\xff\xff\xff\x01"), 8), RTQ_EDECODE);
  assert_int_equal(check(HEX("\xdc\xff\xff\xc0\xc0"), 8), RTQ_EDECODE);          /* array16 */
  assert_int_equal(check(HEX("\xde\xff\xff\xc0\xc0"), 8), RTQ_EDECODE);          /* map16 */
}

static void test_msgpack_check_counts_need_bytes(void **state) {
  (void)state;
  /* An array of n needs n bytes, a map of n entries 2n. */
  assert_int_equal(check(HEX("\x93\xc0\xc0"), 8), RTQ_EDECODE);
  assert_int_equal(check(HEX("\x93\xc0\xc0\xc0"), 8), 0);
  assert_int_equal(check(HEX("\x82\xc0\xc0\xc0"), 8), RTQ_EDECODE);
  assert_int_equal(check(HEX("\x82\xc0\xc0\xc0\xc0"), 8), 0);
  /* The values an enclosing container still owes count too: the inner
   * array's 2 elements plus the outer's second element need 3 bytes. */
  char err[128];
  assert_int_equal(rtq_msgpack_check("\x92\x92\xc0\xc0", 4, 8, err, sizeof err), RTQ_EDECODE);
  assert_non_null(strstr(err, "declares 2"));
}

static char *nested(size_t levels, char leaf, size_t *len) {
  char *b = malloc(levels + 1);
  assert_non_null(b);
  memset(b, 0x91, levels);
  b[levels] = leaf;
  *len = levels + 1;
  return b;
}

static void test_msgpack_check_depth_limit(void **state) {
  (void)state;
  size_t len;
  char *b = nested(32, '\xc0', &len);
  assert_int_equal(check(b, len, 32), 0);
  assert_int_equal(check(b, len, 31), RTQ_EDEPTH);
  free(b);
  /* An empty container is a level too. */
  b = nested(32, '\x90', &len);
  assert_int_equal(check(b, len, 32), RTQ_EDEPTH);
  assert_int_equal(check(b, len, 33), 0);
  free(b);
  assert_int_equal(check(HEX("\x05"), 0), 0);
  assert_int_equal(check(HEX("\x90"), 0), RTQ_EDEPTH);
  assert_int_equal(check(HEX("\x90"), -3), RTQ_EDEPTH);
  /* Depth is the open containers, not the count of containers seen. */
  assert_int_equal(check(HEX("\x93\x91\xc0\x91\xc0\x80"), 2), 0);
}

static void test_msgpack_check_depth_100000(void **state) {
  (void)state;
  size_t len;
  char err[128];
  char *b = nested(100000, '\xc0', &len);
  assert_int_equal(rtq_msgpack_check(b, len, 32, err, sizeof err), RTQ_EDEPTH);
  assert_non_null(strstr(err, "deeper than 32"));
  free(b);
}

static void test_msgpack_check_clamps_max_depth(void **state) {
  (void)state;
  size_t len;
  char *b = nested(64, '\xc0', &len);
  assert_int_equal(check(b, len, 1000), 0);
  free(b);
  b = nested(65, '\xc0', &len);
  assert_int_equal(check(b, len, 1000), RTQ_EDEPTH);
  free(b);
}

static void test_msgpack_check_errbuf_is_one_line_and_bounded(void **state) {
  (void)state;
  char err[128];
  memset(err, 'x', sizeof err);
  assert_int_equal(rtq_msgpack_check("\xdd\xff\x00\x00\x00", 5, 8, err, sizeof err), RTQ_EDECODE);
  assert_null(strchr(err, '\n'));
  assert_true(strlen(err) > 0);
  char tiny[6];
  memset(tiny, 'x', sizeof tiny);
  assert_int_equal(rtq_msgpack_check("\xc1", 1, 8, tiny, sizeof tiny), RTQ_EDECODE);
  assert_int_equal(strlen(tiny), sizeof tiny - 1);
  /* Success clears the buffer. */
  assert_int_equal(rtq_msgpack_check("\xc0", 1, 8, err, sizeof err), 0);
  assert_string_equal(err, "");
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

/* Whatever the check passes, msgpack-c must parse completely: the decoders
 * rely on the two agreeing. Inputs are small random byte strings, many of
 * them valid, plus mutations of the samples. */
static void test_msgpack_check_agrees_with_msgpack_c(void **state) {
  (void)state;
  unsigned char buf[64];
  int passed = 0;
  for (int iter = 0; iter < 200000; iter++) {
    size_t len;
    if (iter % 2 == 0) {
      len = 1 + rnd() % 12;
      /* Bias toward small containers and scalars so valid values occur. */
      static const unsigned char pick[] = {0x90, 0x91, 0x92, 0x81, 0x82, 0xc0, 0xc3, 0x01,
                                           0xa1, 0xa2, 0xd4, 0xc4, 0xdc, 0xde, 0xcc, 0xe5};
      for (size_t i = 0; i < len; i++) buf[i] = rnd() % 4 ? pick[rnd() % sizeof pick] : rnd();
    } else {
      size_t s = rnd() % (sizeof samples / sizeof samples[0]);
      len = samples[s].len;
      memcpy(buf, samples[s].bytes, len);
      buf[rnd() % len] ^= (unsigned char)(1u << (rnd() % 8));
    }
    if (rtq_msgpack_check(buf, len, 32, NULL, 0) != 0) continue;
    passed++;
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    msgpack_unpacked_destroy(&u);
  }
  assert_true(passed > 1000); /* the loop did test the agreement */
}

static int args_check(const char *buf, size_t len) {
  char err[128];
  int rc = rtq__args_check(buf, len, err, sizeof err);
  if (rc != 0) assert_true(err[0] != '\0' && strchr(err, '\n') == NULL);
  return rc;
}

/* A worker hands a handler only args its rtq_args tree reads: maps with
 * string keys, no ext anywhere, within the producers' depth. */
static void test_msgpack_check_args_refuses_what_args_cannot_hold(void **state) {
  (void)state;
  assert_int_equal(args_check(HEX("\x80")), 0);
  assert_int_equal(args_check(HEX("\x82\xa1" "a" "\x01\xd9\x01" "b" "\x92\x81\xa1" "c" "\xc0\xc4\x00")), 0);
  /* Keys of every str width, values of every non-ext family. */
  assert_int_equal(args_check(HEX("\x83\xda\x00\x01" "a" "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"
                                  "\xdb\x00\x00\x00\x01" "b" "\xc3\xa1" "c" "\xdc\x00\x01\xe0")), 0);
  assert_int_equal(args_check(HEX("\x91\x01")), RTQ_EDECODE);                    /* not a map */
  assert_int_equal(args_check(HEX("\xa1" "a")), RTQ_EDECODE);                     /* not a map */
  assert_int_equal(args_check(HEX("\x81\x01\x02")), RTQ_EDECODE);               /* int key */
  assert_int_equal(args_check(HEX("\x81\xc4\x01" "a" "\x02")), RTQ_EDECODE);   /* bin key */
  assert_int_equal(args_check(HEX("\x81\xa1" "a" "\x81\x90\x01")), RTQ_EDECODE); /* nested array key */
  assert_int_equal(args_check(HEX("\x81\xa1" "a" "\xd4\x01\x01")), RTQ_EDECODE); /* fixext value */
  assert_int_equal(args_check(HEX("\x81\xa1" "a" "\x91\xc7\x01\x05" "a")), RTQ_EDECODE); /* ext8 in an array */
  assert_int_equal(args_check(HEX("\x82\xa1" "a" "\x01\xa1" "b" "\xc9\x00\x00\x00\x00\x05")),
                   RTQ_EDECODE); /* ext32, second entry */
  /* A map value that is a string is fine; the key rule applies to keys only. */
  assert_int_equal(args_check(HEX("\x81\xa1" "a" "\x81\xa1" "b" "\xa1" "c")), 0);
  /* The structural rules still hold. */
  assert_int_equal(args_check(HEX("\x81\xa1" "a")), RTQ_EDECODE);
  assert_int_equal(args_check(HEX("\x80\x80")), RTQ_EDECODE);
  char deep[40];
  deep[0] = (char)0x81;
  deep[1] = (char)0xa1;
  deep[2] = 'x';
  memset(deep + 3, 0x91, 30); /* map + 30 arrays = 31 levels */
  deep[33] = (char)0xc0;
  assert_int_equal(args_check(deep, 34), 0);
  deep[33] = (char)0x91;
  deep[34] = (char)0xc0; /* 32 levels: over the producers' limit */
  assert_int_equal(args_check(deep, 35), RTQ_EDEPTH);
}

/* What rtq__args_check passes, rtq_args_unpack reads, and what the
 * unpacker refuses for its content (not memory) the check refuses too. */
static void test_msgpack_check_args_agrees_with_unpack(void **state) {
  (void)state;
  unsigned char buf[64];
  int passed = 0, refused = 0;
  for (int iter = 0; iter < 200000; iter++) {
    size_t len = 2 + rnd() % 8;
    static const unsigned char pick[] = {0x91, 0x92, 0x81, 0x82, 0xc0, 0xc3, 0x01, 0xa1,
                                         0xa2, 0xd4, 0xc4, 0xde, 0xcc, 0xe5, 0xc7, 0xd9};
    buf[0] = rnd() % 2 ? 0x81 : 0x82;
    for (size_t i = 1; i < len; i++) buf[i] = rnd() % 4 ? pick[rnd() % sizeof pick] : rnd();
    int check = rtq__args_check(buf, len, NULL, 0);
    if (rtq_msgpack_check(buf, len, 31, NULL, 0) != 0) {
      assert_int_not_equal(check, 0);
      continue;
    }
    rtq_args *a = NULL;
    int unpack = rtq_args_unpack(buf, len, 0, &a);
    rtq_args_free(a);
    assert_int_equal(check == 0, unpack == 0);
    if (check == 0) passed++; else refused++;
  }
  printf("  %d passed, %d refused\n", passed, refused);
  assert_true(passed > 500 && refused > 1000); /* both sides were tested */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_msgpack_check_accepts_every_format),
      cmocka_unit_test(test_msgpack_check_rejects_every_truncation),
      cmocka_unit_test(test_msgpack_check_rejects_trailing_bytes),
      cmocka_unit_test(test_msgpack_check_rejects_empty_and_null),
      cmocka_unit_test(test_msgpack_check_rejects_reserved_byte),
      cmocka_unit_test(test_msgpack_check_rejects_huge_declared_lengths),
      cmocka_unit_test(test_msgpack_check_counts_need_bytes),
      cmocka_unit_test(test_msgpack_check_depth_limit),
      cmocka_unit_test(test_msgpack_check_depth_100000),
      cmocka_unit_test(test_msgpack_check_clamps_max_depth),
      cmocka_unit_test(test_msgpack_check_errbuf_is_one_line_and_bounded),
      cmocka_unit_test(test_msgpack_check_agrees_with_msgpack_c),
      cmocka_unit_test(test_msgpack_check_args_refuses_what_args_cannot_hold),
      cmocka_unit_test(test_msgpack_check_args_agrees_with_unpack),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
