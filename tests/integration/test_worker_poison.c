/*
 * test_worker_poison.c - hostile entries pushed straight onto a queue and
 * hostile args in task hashes: each is dead-lettered with its reason (and
 * its task, where one exists, fails with the same code), the worker
 * neither crashes nor blocks, its RSS does not keep the 10 MB ones, and
 * the next normal task completes.
 */
#include "test_worker_util.h"

#include "calls2.h"
#include "keys2.h"
#include "scripts2.h"

static rtq_client *cl;
static rtq_conn *rc_;
static tw_worker wk;
static rtq_keys2 k2;

static int setup(void **state) {
  (void)state;
  tw_open(&cl, &rc_, &wk);
  assert_int_equal(rtq_keys2_init(&k2, "rtq"), 0);
  tw_start(&wk, rtq_test_redis_url(), NULL);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  tw_close(cl, rc_, &wk, true);
  return 0;
}

/* LPUSHes bytes onto the queue "default" (registered first). */
static void push(const void *bytes, size_t len) {
  rtq_test_cmd_int(rc_, "SADD", rtq_keys2_queues(&k2).s, "default", NULL);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  assert_int_equal(rtq__argv_add_key2(&a, rtq_keys2_queue(&k2, "default")), 0);
  rtq_argv_add(&a, bytes, len);
  redisReply *r = rtq_test_command_argv(rc_, &a);
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
}

/* Creates task id of rtq.echo on "default" with args as given (any
 * bytes: the create script stores them as they are), as a producer
 * that skips the client's checks would. */
static void create_raw(const char *id, const void *args, size_t len) {
  rtq_test_cmd_int(rc_, "SADD", rtq_keys2_queues(&k2).s, "default", NULL);
  rtq__create2_task t = {.id = id, .name = "rtq.echo", .args = args, .args_len = len};
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_create(&a, &k2, false, "default", &t, 1), 0);
  redisReply *r = NULL;
  assert_int_equal(rtq_script2_run(rc_, &a, &r), 0);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The codes of every dead-letter record, sorted, each followed by ','. */
static void dead_codes(char *out, size_t cap) {
  rtq_key2 dead = rtq_keys2_dead(&k2, "default");
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

static void test_worker_poison_entries_are_dead_lettered(void **state) {
  (void)state;
  /* Warm up, so the baseline RSS includes a normal task's footprint. */
  char id[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "rtq.echo", "{\"warm\":1}", NULL, id);
  rtq_task *t = tw_wait(cl, id, 5000);
  rtq_task_free(t);
  long rss0 = rtq_test_rss_kb(wk.pid);

  /* Queue entries: 1 garbage, 2 an id with glob and line-break bytes,
   * 3 an id with no task hash. Task hashes whose args are 4 not msgpack,
   * 5 a truncated map, 6 nested 100000 deep, 7 a 10 MB map, 8 a map with
   * an ext value and 9 one with an integer key (msgpack, but not what a
   * handler's rtq_task_args reads); 10 a task of an unknown handler. */
  push("garbage bytes \x01\x02\xff", 17);
  push("bad:*?[{\r\nid", 12);
  push("NOHASH1", 7);
  create_raw("ARGSJUNK1", "\xc1junk", 5);
  create_raw("ARGSCUT1", "\x82\xa1x\x01\xa1", 5);
  size_t deep = 100000;
  char *nest = malloc(deep + 4);
  memcpy(nest, "\x81\xa1x", 3); /* {"x": [[[...nil]]]} */
  memset(nest + 3, 0x91, deep);
  nest[deep + 3] = (char)0xc0;
  create_raw("ARGSDEEP1", nest, deep + 4);
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
  create_raw("ARGSHUGE1", huge, big);
  free(huge);
  create_raw("ARGSEXT1", "\x81\xa1x\xd4\x01\x01", 6);
  create_raw("ARGSKEY1", "\x81\x01\x02", 3);
  char unknown[RTQ_TASK_ID_SIZE];
  tw_enqueue(cl, "no.such.handler", "{}", NULL, unknown);

  rtq_key2 dead = rtq_keys2_dead(&k2, "default");
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(rc_, "LLEN", dead.s, NULL) == 10, 10000);
  char codes[512];
  dead_codes(codes, sizeof codes);
  printf("  dead-letter codes: %s\n", codes);
  assert_string_equal(codes,
                      "BAD_ID,BAD_ID,BAD_TASK_RECORD,BAD_TASK_RECORD,BAD_TASK_RECORD,BAD_TASK_RECORD,"
                      "BAD_TASK_RECORD,"
                      "NO_TASK_RECORD,PAYLOAD_TOO_LARGE,UNKNOWN_TASK,");

  /* The tasks behind them are failed with the same code. */
  static const char *const failed[][2] = {{"ARGSJUNK1", "BAD_TASK_RECORD"}, {"ARGSCUT1", "BAD_TASK_RECORD"},
                                          {"ARGSDEEP1", "BAD_TASK_RECORD"}, {"ARGSHUGE1", "PAYLOAD_TOO_LARGE"},
                                          {"ARGSEXT1", "BAD_TASK_RECORD"}, {"ARGSKEY1", "BAD_TASK_RECORD"},
                                          {NULL, "UNKNOWN_TASK"}};
  for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++) {
    t = tw_wait(cl, failed[i][0] != NULL ? failed[i][0] : unknown, 5000);
    assert_int_equal(t->status, RTQ_STATUS_FAILED);
    assert_string_equal(t->error_code, failed[i][1]);
    rtq_task_free(t);
  }

  /* Nothing left behind, and the worker goes on. */
  rtq_key2 proc = rtq_keys2_processing(&k2, "default", wk.id), q = rtq_keys2_queue(&k2, "default");
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
      cmocka_unit_test_setup_teardown(test_worker_poison_entries_are_dead_lettered, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
