/* test_keys2.c - the protocol v2 key schema, cluster slots and task ids
 * (keys2.c, crc16.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "crc16.h"
#include "keys2.h"

#define ID "01JDQ3ZK5V8X4M2T9QH7R6W1YB"

static rtq_keys2 ns(const char *name) {
  rtq_keys2 k;
  assert_int_equal(rtq_keys2_init(&k, name), 0);
  return k;
}

static void test_keys2_namespace_keys(void **state) {
  (void)state;
  rtq_keys2 k = ns("rtq");
  rtq_key2 v = rtq_keys2_version(&k);
  assert_string_equal(v.s, "{rtq}:version");
  assert_int_equal(v.len, strlen(v.s));
  assert_string_equal(rtq_keys2_queues(&k).s, "{rtq}:queues");
  assert_string_equal(rtq_keys2_workers(&k).s, "{rtq}:workers");
  assert_string_equal(rtq_keys2_worker(&k, "host-12-ab").s, "{rtq}:worker:host-12-ab");
  assert_string_equal(rtq_keys2_lease(&k).s, "{rtq}:lease");
  assert_string_equal(rtq_keys2_throughput(&k, 29946000).s, "{rtq}:throughput:29946000");
  assert_string_equal(rtq_keys2_throughput(&k, 0).s, "{rtq}:throughput:0");
  assert_string_equal(rtq_keys2_chan_cancel(&k).s, "{rtq}:cancel");
  assert_string_equal(rtq_keys2_paused(&k).s, "{rtq}:paused");
  assert_string_equal(rtq_keys2_schedules(&k).s, "{rtq}:schedules");
  assert_string_equal(rtq_keys2_schedules_due(&k).s, "{rtq}:schedules:due");
  assert_string_equal(rtq_keys2_schedules_last(&k).s, "{rtq}:schedules:last");
}

static void test_keys2_queue_keys(void **state) {
  (void)state;
  rtq_keys2 k = ns("app.prod");
  const char *q = "emails:high";
  assert_string_equal(rtq_keys2_queue(&k, q).s, "{app.prod:emails:high}:q");
  assert_string_equal(rtq_keys2_processing(&k, q, "w1").s, "{app.prod:emails:high}:p:w1");
  assert_string_equal(rtq_keys2_delayed(&k, q).s, "{app.prod:emails:high}:delayed");
  assert_string_equal(rtq_keys2_done(&k, q, RTQ_STATUS_COMPLETED).s,
                      "{app.prod:emails:high}:done:completed");
  assert_string_equal(rtq_keys2_done(&k, q, RTQ_STATUS_FAILED).s, "{app.prod:emails:high}:done:failed");
  assert_string_equal(rtq_keys2_done(&k, q, RTQ_STATUS_CANCELLED).s,
                      "{app.prod:emails:high}:done:cancelled");
  assert_string_equal(rtq_keys2_done(&k, q, RTQ_STATUS_TIMEOUT).s,
                      "{app.prod:emails:high}:done:timeout");
  assert_string_equal(rtq_keys2_task(&k, q, ID).s, "{app.prod:emails:high}:t:" ID);
  assert_string_equal(rtq_keys2_side(&k, q, ID).s, "{app.prod:emails:high}:x:" ID);
  assert_string_equal(rtq_keys2_stats(&k, q).s, "{app.prod:emails:high}:stats");
  assert_string_equal(rtq_keys2_runtime(&k, q).s, "{app.prod:emails:high}:rt");
  assert_string_equal(rtq_keys2_dead(&k, q).s, "{app.prod:emails:high}:dead");
  assert_string_equal(rtq_keys2_limit(&k, q).s, "{app.prod:emails:high}:limit");
  assert_string_equal(rtq_keys2_bucket(&k, q).s, "{app.prod:emails:high}:bucket");
  assert_string_equal(rtq_keys2_slots(&k, q).s, "{app.prod:emails:high}:slots");
  assert_string_equal(rtq_keys2_chan_events(&k, q).s, "{app.prod:emails:high}:ev");
  assert_string_equal(rtq_keys2_chan_waiter(&k, q, ID).s, "{app.prod:emails:high}:w:" ID);
  assert_string_equal(rtq_keys2_task_prefix(&k, q).s, "{app.prod:emails:high}:t:");
  assert_string_equal(rtq_keys2_side_prefix(&k, q).s, "{app.prod:emails:high}:x:");
  assert_string_equal(rtq_keys2_chan_waiter_prefix(&k, q).s, "{app.prod:emails:high}:w:");
  /* A prefix and an id make exactly the key the scripts will address. */
  rtq_key2 p = rtq_keys2_task_prefix(&k, q);
  char joined[RTQ_KEY2_CAP + sizeof ID];
  memcpy(joined, p.s, p.len);
  memcpy(joined + p.len, ID, sizeof ID);
  assert_string_equal(joined, rtq_keys2_task(&k, q, ID).s);
}

static void test_keys2_bad_names_give_len_zero(void **state) {
  (void)state;
  rtq_keys2 k = ns("rtq");
  const char *bad[] = {"", "a b", "a{b", "a}b", "a*b", "a\nb", "\xc3\xa9", NULL};
  for (int i = 0; bad[i] != NULL; i++) {
    assert_int_equal(rtq_keys2_queue(&k, bad[i]).len, 0);
    assert_int_equal(rtq_keys2_worker(&k, bad[i]).len, 0);
    assert_int_equal(rtq_keys2_processing(&k, "q", bad[i]).len, 0);
    assert_int_equal(rtq_keys2_processing(&k, bad[i], "w").len, 0);
    assert_int_equal(rtq_keys2_task(&k, "q", bad[i]).len, 0);
    assert_int_equal(rtq_keys2_side(&k, "q", bad[i]).len, 0);
    assert_int_equal(rtq_keys2_chan_waiter(&k, "q", bad[i]).len, 0);
    assert_int_equal(rtq_keys2_task_prefix(&k, bad[i]).len, 0);
    assert_int_equal(rtq_keys2_stats(&k, bad[i]).len, 0);
    assert_int_equal(rtq_keys2_slots(&k, bad[i]).len, 0);
    assert_string_equal(rtq_keys2_stats(&k, bad[i]).s, "");
  }
  /* NULL is a bad name, never "no name part". */
  assert_int_equal(rtq_keys2_queue(&k, NULL).len, 0);
  assert_int_equal(rtq_keys2_delayed(&k, NULL).len, 0);
  assert_int_equal(rtq_keys2_task(&k, "q", NULL).len, 0);
  assert_int_equal(rtq_keys2_worker(&k, NULL).len, 0);
  /* Only terminal statuses have a done list. */
  assert_int_equal(rtq_keys2_done(&k, "q", RTQ_STATUS_PENDING).len, 0);
  assert_int_equal(rtq_keys2_done(&k, "q", RTQ_STATUS_RUNNING).len, 0);
  assert_int_equal(rtq_keys2_done(&k, "q", (rtq_status)99).len, 0);
  assert_int_equal(rtq_keys2_done(&k, "q", (rtq_status)-1).len, 0);
  /* A len-0 key is never appended. */
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__argv_add_key2(&a, rtq_keys2_queue(&k, "a b")), RTQ_EINVAL);
  assert_int_equal(a.argc, 0);
  assert_int_equal(rtq__argv_add_key2(&a, rtq_keys2_queue(&k, "ok")), 0);
  assert_int_equal(a.argc, 1);
  rtq_argv_destroy(&a);
}

static void test_keys2_namespace_validated_as_v1(void **state) {
  (void)state;
  rtq_keys2 k;
  const char *bad[] = {"", "a:b", "{a}", "a b", "a*", NULL};
  for (int i = 0; bad[i] != NULL; i++) assert_int_equal(rtq_keys2_init(&k, bad[i]), RTQ_EINVAL);
  assert_int_equal(rtq_keys2_init(&k, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_keys2_init(NULL, "rtq"), RTQ_EINVAL);
  char longest[65];
  memset(longest, 'n', 64);
  longest[64] = '\0';
  assert_int_equal(rtq_keys2_init(&k, longest), 0);
  char too_long[66];
  memset(too_long, 'n', 65);
  too_long[65] = '\0';
  assert_int_equal(rtq_keys2_init(&k, too_long), RTQ_EINVAL);
}

/* The longest namespace, queue and id still make every key. */
static void test_keys2_longest_names_fit(void **state) {
  (void)state;
  char n[65], q[129], id[129];
  memset(n, 'n', 64);
  n[64] = '\0';
  memset(q, 'q', 128);
  q[128] = '\0';
  memset(id, 'i', 128);
  id[128] = '\0';
  rtq_keys2 k = ns(n);
  rtq_key2 t = rtq_keys2_task(&k, q, id);
  assert_int_equal(t.len, 1 + 64 + 1 + 128 + 1 + 3 + 128);
  assert_int_equal(rtq_keys2_chan_waiter(&k, q, id).len, t.len);
  assert_int_equal(rtq_keys2_done(&k, q, RTQ_STATUS_CANCELLED).len, 1 + 64 + 1 + 128 + 1 + 15);
  assert_int_equal(rtq_keys2_processing(&k, q, id).len, t.len);
}

/* Every queue key carries the queue's tag, every namespace key {ns}. */
static void test_keys2_every_key_has_its_tag(void **state) {
  (void)state;
  rtq_keys2 k = ns("rtq");
  rtq_key2 qk[] = {rtq_keys2_queue(&k, "Q"), rtq_keys2_processing(&k, "Q", "w"),
                   rtq_keys2_delayed(&k, "Q"), rtq_keys2_done(&k, "Q", RTQ_STATUS_FAILED),
                   rtq_keys2_task(&k, "Q", "i"), rtq_keys2_side(&k, "Q", "i"),
                   rtq_keys2_stats(&k, "Q"), rtq_keys2_runtime(&k, "Q"), rtq_keys2_dead(&k, "Q"),
                   rtq_keys2_chan_events(&k, "Q"), rtq_keys2_chan_waiter(&k, "Q", "i"),
                   rtq_keys2_limit(&k, "Q"), rtq_keys2_bucket(&k, "Q"), rtq_keys2_slots(&k, "Q")};
  for (size_t i = 0; i < sizeof qk / sizeof qk[0]; i++) {
    assert_true(qk[i].len > 0);
    assert_memory_equal(qk[i].s, "{rtq:Q}:", 8);
  }
  rtq_key2 nk[] = {rtq_keys2_version(&k), rtq_keys2_queues(&k), rtq_keys2_workers(&k),
                   rtq_keys2_worker(&k, "w"), rtq_keys2_lease(&k), rtq_keys2_throughput(&k, 1),
                   rtq_keys2_chan_cancel(&k), rtq_keys2_paused(&k)};
  for (size_t i = 0; i < sizeof nk / sizeof nk[0]; i++) assert_memory_equal(nk[i].s, "{rtq}:", 6);
}

/* A processing list's key reads back as its queue and worker id, the
 * longest names included, and every name rtq_keys2_processing builds
 * round-trips; the SCAN pattern is the namespace's. */
static void test_keys2_processing_parse_round_trip(void **state) {
  (void)state;
  rtq_keys2 k = ns("app.prod");
  assert_string_equal(rtq_keys2_processing_pattern(&k).s, "{app.prod:*}:p:*");
  char q[RTQ_NAME_MAX + 1], w[RTQ_NAME_MAX + 1], longq[129], longw[129];
  memset(longq, 'q', 128);
  longq[128] = '\0';
  memset(longw, 'w', 128);
  longw[128] = '\0';
  const char *pairs[][2] = {{"emails", "host-1-2-ab"}, {"a:b", "w:p:x"}, {"p", "p"},
                            {longq, longw}, {"q", "}:p:"} /* no name: never built */};
  for (size_t i = 0; i < 4; i++) {
    rtq_key2 key = rtq_keys2_processing(&k, pairs[i][0], pairs[i][1]);
    assert_true(key.len > 0);
    assert_int_equal(rtq_keys2_parse_processing(&k, key.s, key.len, q, w), 0);
    assert_string_equal(q, pairs[i][0]);
    assert_string_equal(w, pairs[i][1]);
  }
  assert_int_equal(rtq_keys2_processing(&k, pairs[4][0], pairs[4][1]).len, 0);
}

/* Names that match the pattern (or nearly) but are no processing list of
 * this namespace: each is refused, with both outputs empty. */
static void test_keys2_processing_parse_refuses_others(void **state) {
  (void)state;
  rtq_keys2 k = ns("rtq");
  char longw[140];
  snprintf(longw, sizeof longw, "{rtq:q}:p:%0129d", 0); /* a worker id of 129 bytes */
  const char *bad[] = {"",
                       "{rtq:q}:p:",          /* no worker */
                       "{rtq:}:p:w",          /* no queue */
                       "{rtq}:p:w",           /* a namespace key */
                       "{rtq2:q}:p:w",        /* another namespace */
                       "{rt:q}:p:w",
                       "rtq:q}:p:w",
                       "{rtq:q}:t:w",         /* a task hash */
                       "{rtq:q}:pp:w",
                       "{rtq:q}:t:x}:p:w",    /* '}' in a name */
                       "{rtq:q}:p:w}",
                       "{rtq:q w}:p:w",       /* a space */
                       "{rtq:q}:p:w x",
                       "{rtq:q}:p:w\n",
                       "{rtq:q}:p:\xff",
                       longw};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char q[RTQ_NAME_MAX + 1] = "x", w[RTQ_NAME_MAX + 1] = "x";
    if (rtq_keys2_parse_processing(&k, bad[i], strlen(bad[i]), q, w) != RTQ_EINVAL)
      fail_msg("parsed \"%s\"", bad[i]);
    assert_string_equal(q, "");
    assert_string_equal(w, "");
  }
  /* A NUL inside the name (a binary key) is refused, not cut short. */
  char q[RTQ_NAME_MAX + 1], w[RTQ_NAME_MAX + 1];
  static const char nul[] = "{rtq:q}:p:w\0x";
  assert_int_equal(rtq_keys2_parse_processing(&k, nul, sizeof nul - 1, q, w), RTQ_EINVAL);
  assert_int_equal(rtq_keys2_parse_processing(&k, "{rtq:q}:p:w", 11, q, w), 0);
}

static void test_keys2_crc16_vectors(void **state) {
  (void)state;
  assert_int_equal(rtq_crc16("123456789", 9), 0x31C3);
  assert_int_equal(rtq_crc16("", 0), 0);
  /* Redis's CLUSTER KEYSLOT documentation: somekey 11058, foo{hash_tag} 2515. */
  assert_int_equal(rtq_crc16("somekey", 7) % RTQ_SLOTS, 11058);
  assert_int_equal(rtq_crc16("hash_tag", 8) % RTQ_SLOTS, 2515);
  assert_int_equal(rtq_crc16("foo", 3) % RTQ_SLOTS, 12182);
}

static void test_keys2_slot_of_a_queue(void **state) {
  (void)state;
  rtq_keys2 k = ns("rtq");
  assert_int_equal(rtq_keys2_slot(&k, "default"), 10395); /* CRC16("rtq:default") */
  assert_int_equal(rtq_keys2_slot(&k, "emails"), 9651);
  assert_int_equal(rtq_keys2_slot(&k, "a b"), -1);
  assert_int_equal(rtq_keys2_slot(&k, NULL), -1);
}

static int crockford(char c) { return c != '\0' && strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) != NULL; }

static void test_keys2_id_format_and_slot_round_trip(void **state) {
  (void)state;
  int slots[] = {0, 1, 31, 32, 1023, 1024, 10395, 16383};
  for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
    char id[RTQ_ID2_LEN + 1];
    assert_int_equal(rtq_id2_new(id, slots[i]), 0);
    assert_int_equal(strlen(id), RTQ_ID2_LEN);
    for (int c = 0; c < RTQ_ID2_LEN; c++) assert_true(crockford(id[c]));
    assert_int_equal(rtq_id2_slot(id), slots[i]);
    assert_int_equal(rtq_validate_name(id), 0);
  }
  char id[RTQ_ID2_LEN + 1];
  rtq__id2_state st = {0};
  assert_int_equal(rtq__id2_next(&st, 1733540000123ULL, 10395, id), 0);
  uint64_t ms = 0;
  int slot = -1;
  assert_int_equal(rtq_id2_parse(id, &ms, &slot), 0);
  assert_int_equal(ms, 1733540000123ULL);
  assert_int_equal(slot, 10395);
  /* The top 45 bits of the time fill the first 9 characters. */
  assert_memory_equal(id, "069SY29HF", 9);
}

/* Vectors of docs/PROTOCOL.md section 1's layout
 * (ms << 82 | r << 14 | slot), computed independently. */
static void test_keys2_id_layout_vectors(void **state) {
  (void)state;
  char id[RTQ_ID2_LEN + 1];
  rtq__id2_encode(id, 1733540000123ULL, 0x9, 0x0123456789ABCDEFULL, 10395);
  assert_string_equal(id, "069SY29HFE814D2PF2DBSQQT4V");
  rtq__id2_encode(id, 1733540000123ULL, 0, 0, 0);
  assert_string_equal(id, "069SY29HFC0000000000000000");
  rtq__id2_encode(id, (1ULL << 48) - 1, 15, UINT64_MAX, 16383);
  assert_string_equal(id, "ZZZZZZZZZZZZZZZZZZZZZZZZZZ");
  rtq__id2_encode(id, 0, 0, 0, 16383);
  assert_string_equal(id, "00000000000000000000000FZZ");
  uint64_t ms = 0;
  int slot = -1;
  assert_int_equal(rtq_id2_parse("069SY29HFE814D2PF2DBSQQT4V", &ms, &slot), 0);
  assert_int_equal(ms, 1733540000123ULL);
  assert_int_equal(slot, 10395);
  assert_int_equal(rtq_id2_parse("ZZZZZZZZZZZZZZZZZZZZZZZZZZ", &ms, &slot), 0);
  assert_int_equal(ms, (1ULL << 48) - 1);
  assert_int_equal(slot, 16383);
}

static void test_keys2_id_bad_input(void **state) {
  (void)state;
  char id[RTQ_ID2_LEN + 1];
  assert_int_equal(rtq_id2_new(id, -1), RTQ_EINVAL);
  assert_string_equal(id, "");
  assert_int_equal(rtq_id2_new(id, RTQ_SLOTS), RTQ_EINVAL);
  rtq__id2_state st = {0};
  assert_int_equal(rtq__id2_next(&st, 1ULL << 48, 0, id), RTQ_ERANGE);
  /* Not of the generated shape: a caller's id. */
  const char *other[] = {"",
                         "job-1",
                         "01JDQ3ZK5V8X4M2T9QH7R6W1Y",   /* 25 */
                         "01JDQ3ZK5V8X4M2T9QH7R6W1YBB", /* 27 */
                         "01jdq3zk5v8x4m2t9qh7r6w1yb",  /* lower case */
                         "01JDQ3ZK5V8X4M2T9QH7R6W1YU",  /* U is not Crockford */
                         NULL};
  for (int i = 0; other[i] != NULL; i++) {
    uint64_t ms = 7;
    int slot = 7;
    assert_int_equal(rtq_id2_parse(other[i], &ms, &slot), RTQ_EINVAL);
    assert_int_equal(ms, 7);
    assert_int_equal(slot, 7);
    assert_int_equal(rtq_id2_slot(other[i]), -1);
  }
  assert_int_equal(rtq_id2_slot(NULL), -1);
  assert_int_equal(rtq_id2_slot("00000000000000000000000FZZ"), 16383);
  assert_int_equal(rtq_id2_slot("00000000000000000000000G00"), 0); /* r's bit */
}

/* Within one millisecond, and when the clock steps back, ids still rise;
 * the slot part is left alone by the increment. */
static void test_keys2_id_monotonic_within_a_ms(void **state) {
  (void)state;
  rtq__id2_state st = {0};
  char prev[RTQ_ID2_LEN + 1], id[RTQ_ID2_LEN + 1];
  assert_int_equal(rtq__id2_next(&st, 1000, 5, prev), 0);
  for (int i = 0; i < 1000; i++) {
    uint64_t ms = i < 500 ? 1000 : 999; /* the second half: a clock step back */
    assert_int_equal(rtq__id2_next(&st, ms, i % 2 ? 16383 : 0, id), 0);
    assert_true(strcmp(prev, id) < 0);
    uint64_t at = 0;
    assert_int_equal(rtq_id2_parse(id, &at, NULL), 0);
    assert_int_equal(at, 1000); /* still the first ms */
    memcpy(prev, id, sizeof id);
  }
  /* The random part at its top carries into the time. */
  st.lo = UINT64_MAX;
  st.hi = 15;
  assert_int_equal(rtq__id2_next(&st, 1000, 5, id), 0);
  assert_true(strcmp(prev, id) < 0);
  uint64_t ms;
  assert_int_equal(rtq_id2_parse(id, &ms, NULL), 0);
  assert_int_equal(ms, 1001);
}

/* Ids of later milliseconds sort after earlier ones as plain strings,
 * whatever their slots and random parts. */
static void test_keys2_id_sortable_by_time(void **state) {
  (void)state;
  char ids[64][RTQ_ID2_LEN + 1];
  for (int i = 0; i < 64; i++) {
    rtq__id2_state st = {0}; /* a fresh process each: only time orders them */
    assert_int_equal(rtq__id2_next(&st, 1700000000000ULL + (uint64_t)i * 37, (63 - i) * 255, ids[i]),
                     0);
  }
  for (int i = 1; i < 64; i++) assert_true(strcmp(ids[i - 1], ids[i]) < 0);
  /* And the process generator's ids rise from call to call. */
  char a[RTQ_ID2_LEN + 1], b[RTQ_ID2_LEN + 1];
  assert_int_equal(rtq_id2_new(a, 9), 0);
  for (int i = 0; i < 100; i++) {
    assert_int_equal(rtq_id2_new(b, 9), 0);
    assert_true(strcmp(a, b) < 0);
    memcpy(a, b, sizeof b);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys2_namespace_keys),
      cmocka_unit_test(test_keys2_queue_keys),
      cmocka_unit_test(test_keys2_bad_names_give_len_zero),
      cmocka_unit_test(test_keys2_namespace_validated_as_v1),
      cmocka_unit_test(test_keys2_longest_names_fit),
      cmocka_unit_test(test_keys2_every_key_has_its_tag),
      cmocka_unit_test(test_keys2_processing_parse_round_trip),
      cmocka_unit_test(test_keys2_processing_parse_refuses_others),
      cmocka_unit_test(test_keys2_crc16_vectors),
      cmocka_unit_test(test_keys2_slot_of_a_queue),
      cmocka_unit_test(test_keys2_id_format_and_slot_round_trip),
      cmocka_unit_test(test_keys2_id_layout_vectors),
      cmocka_unit_test(test_keys2_id_bad_input),
      cmocka_unit_test(test_keys2_id_monotonic_within_a_ms),
      cmocka_unit_test(test_keys2_id_sortable_by_time),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
