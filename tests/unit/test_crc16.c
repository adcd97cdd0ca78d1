/* test_crc16.c - CRC16 key slots (crc16.c) and the pure parts of cluster
 * routing (cluster.c): which key a command is routed by, and how
 * redirection replies are read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <hiredis/read.h>

#include "cluster.h"
#include "crc16.h"
#include "rtq/common.h"

static void test_crc16_spec_vectors(void **state) {
  (void)state;
  /* The Redis Cluster specification's reference value. */
  assert_int_equal(rtq_crc16("123456789", 9), 0x31C3);
  assert_int_equal(rtq_crc16("", 0), 0);
  assert_int_equal(rtq_crc16("A", 1), 0x58E5);
}

static void test_crc16_slots_known_keys(void **state) {
  (void)state;
  /* Values CLUSTER KEYSLOT gives on redis 7.0. */
  assert_int_equal(rtq_key_slot("foo", 3), 12182);
  assert_int_equal(rtq_key_slot("bar", 3), 5061);
  assert_int_equal(rtq_key_slot("rtq", 3), 7235); /* the slot of {rtq} */
  assert_int_equal(rtq_key_slot("123456789", 9), 0x31C3 & 16383);
}

static void test_crc16_hash_tags(void **state) {
  (void)state;
  int foo = rtq_key_slot("foo", 3);
  /* The first {...} with something inside is what is hashed. */
  assert_int_equal(rtq_key_slot("{foo}:a", 7), foo);
  assert_int_equal(rtq_key_slot("x{foo}y{bar}", 12), foo);
  assert_int_equal(rtq_key_slot("{foo}}", 6), foo);
  /* The first '}' after the first '{' closes it. */
  assert_int_equal(rtq_key_slot("{foo}bar}", 9), foo);
  assert_int_equal(rtq_key_slot("a{{foo}}", 8), rtq_key_slot("{foo", 4));
  /* An empty tag or an unclosed '{' hashes the whole key. */
  assert_int_equal(rtq_key_slot("{}foo", 5), rtq_crc16("{}foo", 5) & 16383);
  assert_int_equal(rtq_key_slot("{}{foo}", 7), rtq_crc16("{}{foo}", 7) & 16383);
  assert_int_equal(rtq_key_slot("{foo", 4), rtq_crc16("{foo", 4) & 16383);
  assert_int_equal(rtq_key_slot("foo}", 4), rtq_crc16("foo}", 4) & 16383);
  /* Binary-safe: bytes after a NUL count. */
  assert_int_not_equal(rtq_key_slot("a\0b", 3), rtq_key_slot("a", 1));
}

static rtq_argv argv_of(const char *const *words) {
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; words[i] != NULL; i++) rtq_argv_add_str(&a, words[i]);
  return a;
}

/* The routing key of words as a string, "" when keyless. */
static void expect_key(const char *const *words, const char *want) {
  rtq_argv a = argv_of(words);
  const char *k = NULL;
  size_t n = 0;
  int has = rtq__cluster_command_key(&a, &k, &n);
  if (want == NULL) {
    assert_int_equal(has, 0);
  } else {
    assert_int_equal(has, 1);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(k, want, n);
  }
  rtq_argv_destroy(&a);
}

static void test_crc16_command_keys(void **state) {
  (void)state;
  expect_key((const char *[]){"HGET", "{rtq}:task:1", "status", NULL}, "{rtq}:task:1");
  expect_key((const char *[]){"evalsha", "abc", "2", "k1", "k2", "arg", NULL}, "k1");
  expect_key((const char *[]){"EVAL", "return 1", "0", "notakey", NULL}, NULL);
  expect_key((const char *[]){"FCALL", "f", "1", "fk", NULL}, "fk");
  expect_key((const char *[]){"EVAL", "return 1", "x1", "k", NULL}, NULL);
  expect_key((const char *[]){"SPUBLISH", "{rtq}:chan", "m", NULL}, "{rtq}:chan");
  expect_key((const char *[]){"SSUBSCRIBE", "{rtq}:chan", NULL}, "{rtq}:chan");
  const char *keyless[] = {"PING", "TIME", "INFO", "PUBLISH", "SUBSCRIBE", "SCRIPT", "MULTI", "EXEC", "UNWATCH"};
  for (size_t i = 0; i < sizeof keyless / sizeof *keyless; i++)
    expect_key((const char *[]){keyless[i], "arg", NULL}, NULL);
  expect_key((const char *[]){"GET", NULL}, NULL);
}

static int redirect_of(const char *text, int *slot, rtq_redis_endpoint *to) {
  redisReply r;
  memset(&r, 0, sizeof r);
  r.type = REDIS_REPLY_ERROR;
  r.str = (char *)text;
  r.len = strlen(text);
  return rtq__cluster_redirect(&r, slot, to);
}

static void test_crc16_redirect_replies(void **state) {
  (void)state;
  int slot = -1;
  rtq_redis_endpoint to;
  assert_int_equal(redirect_of("MOVED 7235 127.0.0.1:7102", &slot, &to), 'M');
  assert_int_equal(slot, 7235);
  assert_string_equal(to.host, "127.0.0.1");
  assert_int_equal(to.port, 7102);
  assert_int_equal(redirect_of("ASK 1 ::1:30001", &slot, &to), 'A');
  assert_string_equal(to.host, "::1");
  assert_int_equal(to.port, 30001);
  assert_int_equal(redirect_of("TRYAGAIN Multiple keys request during rehashing of slot", &slot, &to), 'T');
  assert_int_equal(redirect_of("CLUSTERDOWN The cluster is down", &slot, &to), 'D');
  /* Malformed or other errors are not redirections. */
  assert_int_equal(redirect_of("MOVED 16384 h:1", &slot, &to), 0);
  assert_int_equal(redirect_of("MOVED 12 h", &slot, &to), 0);
  assert_int_equal(redirect_of("MOVED 12 h:0", &slot, &to), 0);
  assert_int_equal(redirect_of("MOVED x h:1", &slot, &to), 0);
  assert_int_equal(redirect_of("ERR MOVED 1 h:1", &slot, &to), 0);
  assert_int_equal(rtq__cluster_redirect(NULL, &slot, &to), 0);
}

/* "MOVED 1234 :7001": a node that does not know its own address names
 * only the port; the host is left empty for the caller to fill in with
 * the node it asked. */
static void test_crc16_redirect_empty_host(void **state) {
  (void)state;
  int slot = -1;
  rtq_redis_endpoint to;
  memset(&to, 'x', sizeof to);
  assert_int_equal(redirect_of("MOVED 1234 :7001", &slot, &to), 'M');
  assert_int_equal(slot, 1234);
  assert_string_equal(to.host, "");
  assert_int_equal(to.port, 7001);
  assert_int_equal(redirect_of("ASK 16383 :65535", &slot, &to), 'A');
  assert_int_equal(slot, 16383);
  assert_string_equal(to.host, "");
  assert_int_equal(to.port, 65535);
  /* Still no port, or a bad one: not a redirection. */
  assert_int_equal(redirect_of("MOVED 1234 :", &slot, &to), 0);
  assert_int_equal(redirect_of("MOVED 1234 :0", &slot, &to), 0);
  assert_int_equal(redirect_of("MOVED 1234 :x1", &slot, &to), 0);
}

/* A RESP text parsed by hiredis's reader. */
static redisReply *resp(const char *text) {
  redisReader *rd = redisReaderCreate();
  assert_non_null(rd);
  assert_int_equal(redisReaderFeed(rd, text, strlen(text)), REDIS_OK);
  void *r = NULL;
  assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
  assert_non_null(r);
  redisReaderFree(rd);
  return r;
}

/* CLUSTER SLOTS: each slot's primary, an empty or nil host meaning the
 * node asked, an unknown one ("?") and malformed entries skipped. */
static void test_crc16_slots_owner(void **state) {
  (void)state;
  redisReply *r = resp("*5\r\n"
                       "*3\r\n:0\r\n:99\r\n*2\r\n$9\r\n127.0.0.2\r\n:7000\r\n"
                       "*4\r\n:100\r\n:199\r\n*2\r\n$0\r\n\r\n:7001\r\n*2\r\n$1\r\nr\r\n:7101\r\n"
                       "*3\r\n:200\r\n:299\r\n*2\r\n$1\r\n?\r\n:7002\r\n"
                       "*2\r\n:300\r\n:399\r\n"
                       "*3\r\n:400\r\n:499\r\n*2\r\n$-1\r\n:7004\r\n");
  rtq_redis_endpoint ep;
  assert_int_equal(rtq__cluster_slots_owner(r, 99, "10.0.0.1", &ep), 0);
  assert_string_equal(ep.host, "127.0.0.2");
  assert_int_equal(ep.port, 7000);
  assert_int_equal(rtq__cluster_slots_owner(r, 150, "10.0.0.1", &ep), 0);
  assert_string_equal(ep.host, "10.0.0.1");
  assert_int_equal(ep.port, 7001);
  assert_int_equal(rtq__cluster_slots_owner(r, 250, "10.0.0.1", &ep), -1);
  assert_int_equal(rtq__cluster_slots_owner(r, 350, "10.0.0.1", &ep), -1);
  /* A nil host (Redis 7's unknown-endpoint) is the node asked, too. */
  assert_int_equal(rtq__cluster_slots_owner(r, 400, "10.0.0.1", &ep), 0);
  assert_string_equal(ep.host, "10.0.0.1");
  assert_int_equal(ep.port, 7004);
  assert_int_equal(rtq__cluster_slots_owner(r, 500, "10.0.0.1", &ep), -1);
  assert_int_equal(rtq__cluster_slots_owner(r, 16384, "10.0.0.1", &ep), -1);
  freeReplyObject(r);
  r = resp("-ERR This instance has cluster support disabled\r\n");
  assert_int_equal(rtq__cluster_slots_owner(r, 0, "h", &ep), -1);
  freeReplyObject(r);
  assert_int_equal(rtq__cluster_slots_owner(NULL, 0, "h", &ep), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_crc16_spec_vectors),
      cmocka_unit_test(test_crc16_slots_known_keys),
      cmocka_unit_test(test_crc16_hash_tags),
      cmocka_unit_test(test_crc16_command_keys),
      cmocka_unit_test(test_crc16_redirect_replies),
      cmocka_unit_test(test_crc16_redirect_empty_host),
      cmocka_unit_test(test_crc16_slots_owner),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
