/*
 * test_worker_poison.c - hostile payloads pushed straight onto a queue:
 * each is dead-lettered with its reason (and its task, where one exists,
 * fails with the same code), the worker neither crashes nor blocks, its
 * RSS does not keep the 10 MB one, and the next normal task completes.
 */
#include <msgpack.h>

#include "test_worker_util.h"

#include "defaults.h"
#include "envelope.h"

static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wk;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc_, &wk);
  tw_start(&wk, rtq_test_redis_url(), NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc_, &wk, true);
  return 0;
}

static void push(const void *bytes, size_t len) {
  rtq_key q = rtq_keys_queue(&tw_keys, "default");
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key(&a, q);
  rtq_argv_add(&a, bytes, len);
  redisReply *r = rtq_test_command_argv(rc_, &a);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
}

/* A valid envelope for id/name (no task hash behind it). */
static void encode(const char *id, const char *name, uint32_t version_unused, char **buf, size_t *len) {
  (void)version_unused;
  rtq_envelope e;
  rtq_envelope_init(&e);
  snprintf(e.id, sizeof e.id, "%s", id);
  snprintf(e.name, sizeof e.name, "%s", name);
  snprintf(e.queue, sizeof e.queue, "default");
  e.attempt = 1;
  assert_int_equal(rtq_envelope_encode(&e, buf, len, NULL, 0), 0);
}

/* A map envelope written by hand: {v, id, name, queue, args}. */
static void hand_envelope(msgpack_sbuffer *sb, unsigned v, const char *id, const char *name) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 5);
  const char *keys[] = {"v", "id", "name", "queue", "args"};
  msgpack_pack_str(&pk, 1);
  msgpack_pack_str_body(&pk, keys[0], 1);
  msgpack_pack_unsigned_int(&pk, v);
  msgpack_pack_str(&pk, 2);
  msgpack_pack_str_body(&pk, keys[1], 2);
  msgpack_pack_str(&pk, strlen(id));
  msgpack_pack_str_body(&pk, id, strlen(id));
  msgpack_pack_str(&pk, 4);
  msgpack_pack_str_body(&pk, keys[2], 4);
  msgpack_pack_str(&pk, strlen(name));
  msgpack_pack_str_body(&pk, name, strlen(name));
  msgpack_pack_str(&pk, 5);
  msgpack_pack_str_body(&pk, keys[3], 5);
  msgpack_pack_str(&pk, 7);
  msgpack_pack_str_body(&pk, "default", 7);
  msgpack_pack_str(&pk, 4);
  msgpack_pack_str_body(&pk, keys[4], 4);
  msgpack_pack_map(&pk, 0);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The codes of every dead-letter record, sorted, each followed by ','. */
static void dead_codes(char *out, size_t cap) {
  rtq_key dead = rtq_keys_dead(&tw_keys);
  redisReply *r = rtq_test_command(rc_, "LRANGE", dead.s, "0", "-1", NULL);
  out[0] = '\0';
  char *codes[64];
  size_t nc = 0;
  for (size_t i = 0; i < r->elements && nc < 64; i++) {
    rtq_args *rec = NULL;
    assert_int_equal(rtq_args_unpack(r->element[i]->str, r->element[i]->len, 0, &rec), 0);
    char code[64] = "";
    assert_int_equal(rtq_args_get_cstr(rec, "code", code, sizeof code), 0);
    char reason[256] = "";
    assert_int_equal(rtq_args_get_cstr(rec, "reason", reason, sizeof reason), 0);
    assert_true(reason[0] != '\0');
    codes[nc++] = strdup(code);
    rtq_args_free(rec);
  }
  freeReplyObject(r);
  qsort(codes, nc, sizeof codes[0], cmp_str);
  for (size_t i = 0; i < nc; i++) {
    strncat(out, codes[i], cap - strlen(out) - 1);
    strncat(out, ",", cap - strlen(out) - 1);
    free(codes[i]);
  }
}

static void test_worker_poison_envelopes_are_dead_lettered(void **state) {
  (void)state;
  /* Warm up, so the baseline RSS includes a normal task's footprint. */
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.echo", "{\"warm\":1}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 5000);
  rtq_task_free(t);
  long rss0 = rtq_test_rss_kb(wk.pid);

  /* 1 garbage, 2 a huge declared array, 3 truncated, 4 depth 100000,
   * 5 10 MB, 6 an id with glob and line-break bytes, 7 version 99,
   * 8 no task hash, 9 an unknown handler whose task exists. */
  push("garbage bytes \x01\x02\xff", 17);
  push("\xdd\xff\x00\x00\x00", 5);
  char *env;
  size_t len;
  encode("TRUNCATED1", "rtq.echo", 0, &env, &len);
  push(env, len / 2);
  free(env);
  size_t deep = 100000;
  char *nest = malloc(deep + 1);
  memset(nest, 0x91, deep);
  nest[deep] = (char)0xc0;
  push(nest, deep + 1);
  free(nest);
  size_t big = 10u * 1024 * 1024;
  char *huge = malloc(big);
  memset(huge, 'a', big);
  huge[0] = (char)0x81; /* a map whose value is a 10 MB str */
  huge[1] = (char)0xa1;
  huge[2] = 'x';
  huge[3] = (char)0xdb;
  uint32_t n = (uint32_t)(big - 8);
  huge[4] = (char)(n >> 24);
  huge[5] = (char)(n >> 16);
  huge[6] = (char)(n >> 8);
  huge[7] = (char)n;
  push(huge, big);
  free(huge);
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  hand_envelope(&sb, 1, "bad:*?[{\r\nid", "rtq.echo");
  push(sb.data, sb.size);
  msgpack_sbuffer_clear(&sb);
  hand_envelope(&sb, 99, "FUTURE1", "rtq.echo");
  push(sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  encode("NOHASH1", "rtq.echo", 0, &env, &len);
  push(env, len);
  free(env);
  char unknown[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "no.such.handler", "{}", NULL, unknown);

  rtq_key dead = rtq_keys_dead(&tw_keys);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "LLEN", dead.s, NULL) == 9, 10000);
  char codes[512];
  dead_codes(codes, sizeof codes);
  printf("  dead-letter codes: %s\n", codes);
  assert_string_equal(codes,
                      "DECODE_ERROR,DECODE_ERROR,DECODE_ERROR,DECODE_ERROR,NO_TASK_RECORD,"
                      "PAYLOAD_TOO_DEEP,PAYLOAD_TOO_LARGE,UNKNOWN_TASK,UNSUPPORTED_VERSION,");

  /* The task behind the unknown name is failed with the same code. */
  t = tw_wait(cl, unknown, 5000);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  assert_string_equal(t->error_code, "UNKNOWN_TASK");
  rtq_task_free(t);

  /* Nothing left behind, and the worker goes on. */
  rtq_key proc = rtq_keys_processing(&tw_keys, wk.id), q = rtq_keys_queue(&tw_keys, "default");
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", proc.s, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(rc_, "LLEN", q.s, NULL), 0);
  tw_enqueue(cl, "rtq.echo", "{\"after\":true}", NULL, id);
  t = tw_wait(cl, id, 5000);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);

  if (TW_SANITIZED) return; /* RSS is meaningless under ASan */
  long peak = rtq_test_rss_kb(wk.pid);
  /* The worker hands the pages back shortly after the payload passed. */
  RTQ_TEST_WAIT_FOR(rtq_test_rss_kb(wk.pid) - rss0 < 1024, 5000);
  long rss1 = rtq_test_rss_kb(wk.pid);
  printf("  worker RSS before %ld KiB, right after the poison %ld KiB, settled %ld KiB (+%ld)\n", rss0,
         peak, rss1, rss1 - rss0);
  assert_true(rss1 - rss0 < 1024);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_worker_poison_envelopes_are_dead_lettered, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
