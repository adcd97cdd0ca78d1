/*
 * test_cluster_routing.c - rtq_conn on a redis+cluster:// URL against a
 * real cluster: 3 primaries with the slots and a 4th primary with none,
 * used as the seed, so every keyed command has to follow the slot map or
 * a MOVED to reach its key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>

#include "cluster.h"
#include "crc16.h"
#include "harness.h"
#include "rtq/common.h"

static rtq_test_cluster *cl;
static char seed_url[128];

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(4, 3);
  if (cl == NULL) return -1;
  rtq_test_cluster_url(cl, 3, seed_url, sizeof seed_url);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_test_cluster_stop(cl);
  return 0;
}

/* A key "<prefix><n>" whose slot belongs to node `owner` at start. */
static void key_on(int owner, const char *prefix, char *out, size_t cap) {
  for (int n = 0; n < 100000; n++) {
    snprintf(out, cap, "%s%d", prefix, n);
    if (rtq_test_cluster_owner_at_start(cl, rtq_key_slot(out, strlen(out))) == owner) return;
  }
  fail_msg("no key found for node %d", owner);
}

/* A plain connection to node i (no routing): what is really stored there. */
static rtq_conn *direct(int i) { return rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, i))); }

/* A field of INFO commandstats on node: "calls" (executed) or
 * "rejected_calls" (refused before running, MOVED and ASK included). */
static long long stat_of(int node, const char *cmd, const char *field) {
  rtq_conn *c = direct(node);
  char *info = rtq_test_cmd_str(c, "INFO", "commandstats", NULL);
  rtq_conn_free(c);
  char needle[64];
  snprintf(needle, sizeof needle, "cmdstat_%s:", cmd);
  const char *line = strstr(info, needle);
  long long n = 0;
  if (line != NULL) {
    const char *end = strchr(line, '\r');
    snprintf(needle, sizeof needle, "%s=", field);
    for (const char *p = strstr(line, needle); p != NULL && (end == NULL || p < end); p = strstr(p + 1, needle)) {
      if (p[-1] == ':' || p[-1] == ',') {
        n = atoll(p + strlen(needle));
        break;
      }
    }
  }
  free(info);
  return n;
}

static long long calls_of(int node, const char *cmd) { return stat_of(node, cmd, "calls"); }

static void test_cluster_routing_keys_on_every_primary(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(seed_url);
  char key[3][32];
  for (int i = 0; i < 3; i++) {
    key_on(i, "k", key[i], sizeof key[i]);
    char val[16];
    snprintf(val, sizeof val, "v%d", i);
    rtq_test_cmd_ok(c, "SET", key[i], val, NULL);
  }
  for (int i = 0; i < 3; i++) {
    char *v = rtq_test_cmd_str(c, "GET", key[i], NULL);
    char want[16];
    snprintf(want, sizeof want, "v%d", i);
    assert_string_equal(v, want);
    free(v);
    /* Stored on the slot's owner, and not on the seed. */
    rtq_conn *d = direct(i);
    v = rtq_test_cmd_str(d, "GET", key[i], NULL);
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
    rtq_conn_free(d);
  }
  rtq_conn *seed = direct(3);
  assert_int_equal(rtq_test_cmd_int(seed, "DBSIZE", NULL), 0);
  rtq_conn_free(seed);
  /* Keyless commands answer from any node. */
  redisReply *r = rtq_test_command(c, "PING", NULL);
  assert_int_equal(r->type, REDIS_REPLY_STATUS);
  freeReplyObject(r);
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(c, &ms), 0);
  assert_true(ms > 0);
  rtq_conn_free(c);
}

static void test_cluster_routing_pipeline_keeps_order(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(seed_url);
  char key[6][32];
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; i < 6; i++) {
    key_on(i % 3, i < 3 ? "p" : "q", key[i], sizeof key[i]);
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "INCRBY");
    rtq_argv_add_str(&a, key[i]);
    rtq_argv_add_i64(&a, 100 + i);
    assert_int_equal(rtq_conn_append(c, &a), 0);
  }
  for (int i = 0; i < 6; i++) {
    redisReply *r = NULL;
    assert_int_equal(rtq_conn_get_reply(c, &r), 0);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 100 + i);
    freeReplyObject(r);
  }
  /* Nothing left over: the next read says so instead of answering. */
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_get_reply(c, &r), RTQ_ECONN);
  rtq_argv_destroy(&a);
  rtq_conn_free(c);
}

static void test_cluster_routing_scripts_and_transactions(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(seed_url);
  /* SCRIPT LOAD reaches every primary, so EVALSHA runs wherever its key is. */
  char *sha = rtq_test_cmd_str(c, "SCRIPT", "LOAD", "return redis.call('INCR', KEYS[1])", NULL);
  for (int i = 0; i < 3; i++) {
    char key[32];
    key_on(i, "s", key, sizeof key);
    redisReply *r = rtq_test_command(c, "EVALSHA", sha, "1", key, NULL);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
  }
  free(sha);
  /* WATCH/MULTI/EXEC stay on the node of the watched key. */
  char key[32];
  key_on(2, "t", key, sizeof key);
  rtq_test_cmd_ok(c, "WATCH", key, NULL);
  rtq_test_cmd_ok(c, "MULTI", NULL);
  redisReply *r = rtq_test_command(c, "SET", key, "x", NULL);
  assert_string_equal(r->str, "QUEUED");
  freeReplyObject(r);
  r = rtq_test_command(c, "EXEC", NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 1);
  freeReplyObject(r);
  rtq_conn *d = direct(2);
  char *v = rtq_test_cmd_str(d, "GET", key, NULL);
  assert_string_equal(v, "x");
  free(v);
  rtq_conn_free(d);
  rtq_conn_free(c);
}

static void setslot(int node, const char *slot, const char *how, const char *id) {
  rtq_conn *d = direct(node);
  rtq_test_cmd_ok(d, "CLUSTER", "SETSLOT", slot, how, id, NULL);
  rtq_conn_free(d);
}

/* A slot moved by hand from node 0 to node 1 while its key is read:
 * ASK while it migrates, MOVED once it is assigned, and the map then
 * sends the key straight to its new node. */
static void test_cluster_routing_ask_then_moved(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(seed_url);
  char key[32], slot[16], src[41], dst[41];
  key_on(0, "m", key, sizeof key);
  snprintf(slot, sizeof slot, "%d", rtq_key_slot(key, strlen(key)));
  rtq_test_cluster_node_id(cl, 0, src);
  rtq_test_cluster_node_id(cl, 1, dst);
  rtq_test_cmd_ok(c, "SET", key, "before", NULL);

  setslot(1, slot, "IMPORTING", src);
  setslot(0, slot, "MIGRATING", dst);
  rtq_conn *s = direct(0);
  char port[16];
  snprintf(port, sizeof port, "%d", rtq_test_redis_port(rtq_test_cluster_node(cl, 1)));
  rtq_test_cmd_ok(s, "MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS", key, NULL);
  rtq_conn_free(s);

  long long asking = calls_of(1, "asking");
  char *v = rtq_test_cmd_str(c, "GET", key, NULL);
  assert_string_equal(v, "before");
  free(v);
  assert_int_equal(calls_of(1, "asking"), asking + 1);
  /* ASK is one shot: the map still names node 0, so it asks again. */
  v = rtq_test_cmd_str(c, "GET", key, NULL);
  assert_string_equal(v, "before");
  free(v);
  assert_int_equal(calls_of(1, "asking"), asking + 2);

  for (int i = 0; i < 4; i++) setslot(i, slot, "NODE", dst);
  long long moved0 = stat_of(0, "get", "rejected_calls");
  v = rtq_test_cmd_str(c, "GET", key, NULL); /* MOVED from node 0 */
  assert_string_equal(v, "before");
  free(v);
  assert_int_equal(stat_of(0, "get", "rejected_calls"), moved0 + 1);
  v = rtq_test_cmd_str(c, "GET", key, NULL); /* straight to node 1 */
  assert_string_equal(v, "before");
  free(v);
  assert_int_equal(stat_of(0, "get", "rejected_calls"), moved0 + 1);
  assert_int_equal(calls_of(1, "asking"), asking + 2);
  rtq_conn_free(c);
}

/* Two GETs pipelined: the first key's slot is being migrated (ASK), then
 * has moved (MOVED); the second key lives on the node the first is sent
 * to again, whose own reply is still unread then. Each reply still comes
 * back in its place. */
static void pipeline_two_gets(rtq_conn *c, const char *k1, const char *want1, const char *k2, const char *want2) {
  rtq_argv a;
  rtq_argv_init(&a);
  const char *ks[2] = {k1, k2}, *wants[2] = {want1, want2};
  for (int i = 0; i < 2; i++) {
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "GET");
    rtq_argv_add_str(&a, ks[i]);
    assert_int_equal(rtq_conn_append(c, &a), 0);
  }
  for (int i = 0; i < 2; i++) {
    redisReply *r = NULL;
    assert_int_equal(rtq_conn_get_reply(c, &r), 0);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, wants[i]);
    freeReplyObject(r);
  }
  rtq_argv_destroy(&a);
}

static void test_cluster_routing_redirects_inside_a_pipeline(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(seed_url);
  char key[32], other[32], slot[16], src[41], dst[41], port[16];
  key_on(2, "pm", key, sizeof key);
  key_on(0, "po", other, sizeof other); /* on the node the slot moves to */
  snprintf(slot, sizeof slot, "%d", rtq_key_slot(key, strlen(key)));
  rtq_test_cluster_node_id(cl, 2, src);
  rtq_test_cluster_node_id(cl, 0, dst);
  rtq_test_cmd_ok(c, "SET", key, "moving", NULL);
  rtq_test_cmd_ok(c, "SET", other, "staying", NULL);

  setslot(0, slot, "IMPORTING", src);
  setslot(2, slot, "MIGRATING", dst);
  rtq_conn *s = direct(2);
  snprintf(port, sizeof port, "%d", rtq_test_redis_port(rtq_test_cluster_node(cl, 0)));
  rtq_test_cmd_ok(s, "MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS", key, NULL);
  rtq_conn_free(s);
  long long asking = calls_of(0, "asking");
  pipeline_two_gets(c, key, "moving", other, "staying");
  assert_int_equal(calls_of(0, "asking"), asking + 1);

  for (int i = 0; i < 4; i++) setslot(i, slot, "NODE", dst);
  long long moved = stat_of(2, "get", "rejected_calls");
  pipeline_two_gets(c, key, "moving", other, "staying");
  assert_int_equal(stat_of(2, "get", "rejected_calls"), moved + 1);
  pipeline_two_gets(c, key, "moving", other, "staying");
  assert_int_equal(stat_of(2, "get", "rejected_calls"), moved + 1);
  rtq_conn_free(c);
}

typedef struct finisher {
  int src_port, dst_port, ports[4];
  const char *slot, *dst_id, *key;
  int ok;
} finisher;

static int raw_ok(int port, int argc, const char **argv) {
  struct timeval tv = {5, 0};
  redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
  int ok = 0;
  if (ctx != NULL && ctx->err == 0) {
    size_t lens[16];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(ctx, argc, argv, lens);
    ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL) freeReplyObject(r);
  }
  if (ctx != NULL) redisFree(ctx);
  return ok;
}

/* Moves the rest of the slot 300 ms after it starts (no cmocka calls:
 * it runs beside the test thread). */
static void *finish_migration(void *arg) {
  finisher *f = arg;
  struct timespec ts = {0, 300 * 1000000L};
  nanosleep(&ts, NULL);
  char port[16];
  snprintf(port, sizeof port, "%d", f->dst_port);
  const char *mig[] = {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS", f->key};
  f->ok = raw_ok(f->src_port, 8, mig);
  const char *node[] = {"CLUSTER", "SETSLOT", f->slot, "NODE", f->dst_id};
  for (int i = 0; i < 4; i++) f->ok &= raw_ok(f->ports[i], 5, node);
  return NULL;
}

/* A multi-key command whose keys are split by a migration gets TRYAGAIN:
 * retried a bounded number of times, and it succeeds once the migration
 * is done. */
static void test_cluster_routing_tryagain_bounded_then_succeeds(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(seed_url);
  char a[32], b[40], slot[16], src[41], dst[41], port[16];
  key_on(1, "{tg}", a, sizeof a); /* every "{tg}..." key is in one slot */
  snprintf(b, sizeof b, "%sb", a);
  snprintf(slot, sizeof slot, "%d", rtq_key_slot(a, strlen(a)));
  rtq_test_cluster_node_id(cl, 1, src);
  rtq_test_cluster_node_id(cl, 2, dst);
  rtq_test_cmd_ok(c, "SET", a, "A", NULL);
  rtq_test_cmd_ok(c, "SET", b, "B", NULL);
  setslot(2, slot, "IMPORTING", src);
  setslot(1, slot, "MIGRATING", dst);
  rtq_conn *s = direct(1);
  snprintf(port, sizeof port, "%d", rtq_test_redis_port(rtq_test_cluster_node(cl, 2)));
  rtq_test_cmd_ok(s, "MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS", a, NULL);
  rtq_conn_free(s);

  /* Split for good: TRYAGAIN comes back after the bounded retries. */
  long long before = stat_of(1, "mget", "rejected_calls");
  uint64_t t0 = rtq_test_now_ms();
  redisReply *r = rtq_test_command(c, "MGET", a, b, NULL);
  uint64_t took = rtq_test_now_ms() - t0;
  assert_int_equal(r->type, REDIS_REPLY_ERROR);
  assert_memory_equal(r->str, "TRYAGAIN", 8);
  freeReplyObject(r);
  assert_int_equal(stat_of(1, "mget", "rejected_calls"), before + 1 + RTQ__CLUSTER_MAX_WAITS);
  assert_true(took < 5000);

  /* Finished while it retries: the retry succeeds. */
  finisher f = {.src_port = rtq_test_redis_port(rtq_test_cluster_node(cl, 1)),
                .dst_port = rtq_test_redis_port(rtq_test_cluster_node(cl, 2)),
                .slot = slot, .dst_id = dst, .key = b};
  for (int i = 0; i < 4; i++) f.ports[i] = rtq_test_redis_port(rtq_test_cluster_node(cl, i));
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, finish_migration, &f), 0);
  r = rtq_test_command(c, "MGET", a, b, NULL);
  pthread_join(th, NULL);
  assert_true(f.ok);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 2);
  assert_string_equal(r->element[0]->str, "A");
  assert_string_equal(r->element[1]->str, "B");
  freeReplyObject(r);
  rtq_conn_free(c);
}

/* A seed list whose first entry is down still connects. */
static void test_cluster_routing_dead_seed_skipped(void **state) {
  (void)state;
  char url[160];
  snprintf(url, sizeof url, "redis+cluster://127.0.0.1:1,127.0.0.1:%d",
           rtq_test_redis_port(rtq_test_cluster_node(cl, 2)));
  rtq_conn *c = rtq_test_conn_new(url);
  char key[32];
  key_on(0, "d", key, sizeof key);
  rtq_test_cmd_ok(c, "SET", key, "1", NULL);
  rtq_conn_free(c);
  /* No seed reachable: a clear error, no crash. */
  rtq_conn_options o = {.url = "redis+cluster://127.0.0.1:1,127.0.0.1:2", .connect_timeout_ms = 500};
  rtq_conn *bad = NULL;
  char err[512];
  assert_int_equal(rtq_conn_new(&o, &bad, err, sizeof err), RTQ_ECONN);
  assert_null(bad);
  assert_non_null(strstr(err, "no cluster node gave the slot map"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_routing_keys_on_every_primary),
      cmocka_unit_test(test_cluster_routing_pipeline_keeps_order),
      cmocka_unit_test(test_cluster_routing_scripts_and_transactions),
      cmocka_unit_test(test_cluster_routing_ask_then_moved),
      cmocka_unit_test(test_cluster_routing_redirects_inside_a_pipeline),
      cmocka_unit_test(test_cluster_routing_tryagain_bounded_then_succeeds),
      cmocka_unit_test(test_cluster_routing_dead_seed_skipped),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
