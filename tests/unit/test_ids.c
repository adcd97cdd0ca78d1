/* test_ids.c - task ids and worker ids (ids.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ids.h"
#include "rtq/common.h"

static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/* Decodes the 10-digit time part back to ms. */
static uint64_t time_part(const char *id) {
  uint64_t v = 0;
  for (int i = 0; i < 10; i++) v = v * 32 + (uint64_t)(strchr(alphabet, id[i]) - alphabet);
  return v;
}

static void test_ids_shape_and_alphabet(void **state) {
  (void)state;
  for (int n = 0; n < 1000; n++) {
    char id[RTQ_ID_LEN + 1];
    assert_int_equal(rtq_id_new(id), 0);
    assert_int_equal(strlen(id), RTQ_ID_LEN);
    for (int i = 0; i < RTQ_ID_LEN; i++) assert_non_null(strchr(alphabet, id[i]));
    assert_true(id[0] <= '7'); /* only 3 bits of time in the first digit */
    assert_int_equal(rtq_validate_name(id), 0);
  }
}

static void test_ids_time_part_encodes_ms(void **state) {
  (void)state;
  char id[RTQ_ID_LEN + 1];
  assert_int_equal(rtq_id_new_at(id, 0), 0);
  assert_memory_equal(id, "0000000000", 10);
  assert_int_equal(rtq_id_new_at(id, (UINT64_C(1) << 48) - 1), 0);
  assert_memory_equal(id, "7ZZZZZZZZZ", 10);
  assert_int_equal(rtq_id_new_at(id, 1), 0);
  assert_memory_equal(id, "0000000001", 10);
  assert_int_equal(rtq_id_new_at(id, 32), 0);
  assert_memory_equal(id, "0000000010", 10);
  /* The ULID spec's example: ulid(1469918176385) starts "01ARYZ6S41". */
  assert_int_equal(rtq_id_new_at(id, UINT64_C(1469918176385)), 0);
  assert_memory_equal(id, "01ARYZ6S41", 10);
  assert_int_equal(time_part(id), UINT64_C(1469918176385));
}

static void test_ids_rejects_time_beyond_48_bits(void **state) {
  (void)state;
  char id[RTQ_ID_LEN + 1] = "x";
  assert_int_equal(rtq_id_new_at(id, UINT64_C(1) << 48), RTQ_ERANGE);
  assert_string_equal(id, "");
}

static void test_ids_uses_current_time(void **state) {
  (void)state;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t before = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  char id[RTQ_ID_LEN + 1];
  assert_int_equal(rtq_id_new(id), 0);
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t after = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  assert_in_range(time_part(id), before, after);
}

static int cmp(const void *a, const void *b) { return strcmp(a, b); }

static void test_ids_unique_and_sorted_by_time(void **state) {
  (void)state;
  enum { N = 20000 };
  char(*ids)[RTQ_ID_LEN + 1] = malloc(N * sizeof *ids);
  assert_non_null(ids);
  for (int i = 0; i < N; i++) assert_int_equal(rtq_id_new_at(ids[i], 1000 + (uint64_t)(i / 100)), 0);
  /* Ids of later milliseconds sort after earlier ones as plain strings. */
  for (int i = 100; i < N; i += 100) assert_true(strcmp(ids[i - 100], ids[i]) < 0);
  qsort(ids, N, sizeof *ids, cmp);
  for (int i = 1; i < N; i++) assert_string_not_equal(ids[i - 1], ids[i]);
  free(ids);
}

static void test_ids_random_part_varies(void **state) {
  (void)state;
  /* Every random digit position takes more than one value over 200 ids:
   * a stuck position would mean bytes are not all random. */
  char seen[RTQ_ID_LEN][32];
  memset(seen, 0, sizeof seen);
  for (int n = 0; n < 200; n++) {
    char id[RTQ_ID_LEN + 1];
    assert_int_equal(rtq_id_new_at(id, 5), 0);
    for (int i = 10; i < RTQ_ID_LEN; i++) seen[i][strchr(alphabet, id[i]) - alphabet] = 1;
  }
  for (int i = 10; i < RTQ_ID_LEN; i++) {
    int distinct = 0;
    for (int d = 0; d < 32; d++) distinct += seen[i][d];
    assert_true(distinct > 8);
  }
}

static void test_ids_random_bytes_fill_buffer(void **state) {
  (void)state;
  unsigned char buf[4096];
  memset(buf, 0, sizeof buf);
  assert_int_equal(rtq_random_bytes(buf, sizeof buf), 0);
  int zeros = 0;
  for (size_t i = 0; i < sizeof buf; i++) zeros += buf[i] == 0;
  assert_true(zeros < 64); /* ~16 expected */
  assert_int_equal(rtq_random_bytes(buf, 0), 0);
}

static void test_ids_worker_id_is_a_valid_name(void **state) {
  (void)state;
  char wid[RTQ_WORKER_ID_MAX + 1];
  assert_int_equal(rtq_worker_id_new(wid, sizeof wid), 0);
  assert_int_equal(rtq_validate_name(wid), 0);
  char wid2[RTQ_WORKER_ID_MAX + 1];
  assert_int_equal(rtq_worker_id_new(wid2, sizeof wid2), 0);
  assert_string_not_equal(wid, wid2);
}

static void test_ids_worker_id_sanitizes_host(void **state) {
  (void)state;
  char out[RTQ_WORKER_ID_MAX + 1];
  assert_int_equal(rtq__worker_id_format(out, sizeof out, "web-1.example.com", 4242, 0xdeadbeef), 0);
  assert_string_equal(out, "web-1.example.com-4242-deadbeef");
  assert_int_equal(rtq__worker_id_format(out, sizeof out, "bad host/\n*{x}\xc3\xa9", 7, 1), 0);
  assert_string_equal(out, "bad-host----x----7-00000001");
  assert_int_equal(rtq_validate_name(out), 0);
  assert_int_equal(rtq__worker_id_format(out, sizeof out, "", 1, 2), 0);
  assert_string_equal(out, "host-1-00000002");
  assert_int_equal(rtq__worker_id_format(out, sizeof out, NULL, 1, 2), 0);
  assert_string_equal(out, "host-1-00000002");
}

static void test_ids_worker_id_caps_length(void **state) {
  (void)state;
  char host[300];
  memset(host, 'h', sizeof host - 1);
  host[sizeof host - 1] = '\0';
  char out[RTQ_WORKER_ID_MAX + 1];
  assert_int_equal(rtq__worker_id_format(out, sizeof out, host, 4194304, 0xffffffff), 0);
  assert_true(strlen(out) <= RTQ_WORKER_ID_MAX);
  assert_int_equal(rtq_validate_name(out), 0);
  assert_int_equal(strspn(out, "h"), 64);
  /* The longest pid still fits. */
  assert_int_equal(rtq__worker_id_format(out, sizeof out, host, -1, 0), 0);
  assert_true(strlen(out) <= RTQ_WORKER_ID_MAX);
  assert_int_equal(rtq_validate_name(out), 0);
}

static void test_ids_worker_id_too_small_buffer(void **state) {
  (void)state;
  char out[8] = "garbage";
  assert_int_equal(rtq__worker_id_format(out, sizeof out, "host", 1, 1), RTQ_ERANGE);
  assert_string_equal(out, "");
  assert_int_equal(rtq_worker_id_new(out, sizeof out), RTQ_ERANGE);
  assert_int_equal(rtq_worker_id_new(NULL, 0), RTQ_ERANGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ids_shape_and_alphabet),
      cmocka_unit_test(test_ids_time_part_encodes_ms),
      cmocka_unit_test(test_ids_rejects_time_beyond_48_bits),
      cmocka_unit_test(test_ids_uses_current_time),
      cmocka_unit_test(test_ids_unique_and_sorted_by_time),
      cmocka_unit_test(test_ids_random_part_varies),
      cmocka_unit_test(test_ids_random_bytes_fill_buffer),
      cmocka_unit_test(test_ids_worker_id_is_a_valid_name),
      cmocka_unit_test(test_ids_worker_id_sanitizes_host),
      cmocka_unit_test(test_ids_worker_id_caps_length),
      cmocka_unit_test(test_ids_worker_id_too_small_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
