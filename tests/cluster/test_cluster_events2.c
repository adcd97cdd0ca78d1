/*
 * test_cluster_events2.c - protocol 2's event stream on a 3-primary Redis
 * Cluster: queues whose channels live on three different nodes, all heard
 * by one subscription (a connection per node), a queue registered later
 * included, and a queue whose slot moves to another node heard again
 * after the server unsubscribes its channel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "calls2.h"
#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "scripts2.h"

static rtq_test_cluster *cl;
static char seed[128];
static rtq_keys2 K;
/* Queue names owned by nodes 0, 1, 2 at start, and one more of node 0. */
static char qn[4][16];

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(3, 3);
  if (cl == NULL) return -1;
  if (rtq_keys2_init(&K, "rtq") != 0) return -1;
  rtq_test_cluster_url(cl, 0, seed, sizeof seed);
  int found = 0;
  for (int i = 0; i < 1000 && found < 4; i++) {
    char name[16];
    snprintf(name, sizeof name, "q%d", i);
    int owner = rtq_test_cluster_owner_at_start(cl, rtq_keys2_slot(&K, name));
    int want = found < 3 ? found : 0;
    if (owner == want) snprintf(qn[found++], sizeof qn[0], "%s", name);
  }
  return found == 4 ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  rtq_test_cluster_stop(cl);
  return 0;
}

/* One task "<queue>-<n>" created on queue through the cluster. */
static void create_one(rtq_conn *c, const char *queue, int n) {
  char id[32];
  snprintf(id, sizeof id, "%s-%d", queue, n);
  rtq__create2_task t = {.id = id, .name = "job"};
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq__call2_create(&a, &K, false, queue, &t, 1), 0);
  redisReply *r = NULL;
  int rc = rtq_script2_run(c, &a, &r);
  if (rc != 0) fail_msg("create: %s", r != NULL && r->str ? r->str : rtq_strerror(rc));
  freeReplyObject(r);
  rtq_argv_destroy(&a);
}

static void add_queue(rtq_conn *c, const char *queue) {
  rtq_test_cmd_int(c, "SADD", rtq_keys2_queues(&K).s, queue, NULL);
}

/* Creates a task on queue every 200 ms until its event arrives (10 s). */
static void see_queue(rtq_conn *c, rtq_subscription *s, const char *queue) {
  uint64_t deadline = rtq_test_now_ms() + 10000;
  for (int n = 0; rtq_test_now_ms() < deadline; n++) {
    create_one(c, queue, n);
    char *text = NULL;
    int rc = rtq_subscription_next(s, 200, &text);
    while (rc == 0) {
      json_t *e = json_loads(text, 0, NULL);
      free(text);
      bool hit = e != NULL && strcmp(json_string_value(json_object_get(e, "queue")), queue) == 0;
      json_decref(e);
      if (hit) return;
      rc = rtq_subscription_next(s, 0, &text);
    }
    assert_int_equal(rc, RTQ_ETIMEDOUT);
  }
  fail_msg("no event of queue %s within 10 s", queue);
}

static rtq_conn *direct(int i) { return rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, i))); }

static void setslot(int node, const char *slot, const char *how, const char *id) {
  rtq_conn *d = direct(node);
  rtq_test_cmd_ok(d, "CLUSTER", "SETSLOT", slot, how, id, NULL);
  rtq_conn_free(d);
}

/* Moves slot (and its keys, at most 100) from node from to node to. */
static void move_slot(int slot_n, int from, int to) {
  char slot[16], src[41], dst[41], port[16];
  snprintf(slot, sizeof slot, "%d", slot_n);
  rtq_test_cluster_node_id(cl, from, src);
  rtq_test_cluster_node_id(cl, to, dst);
  setslot(to, slot, "IMPORTING", src);
  setslot(from, slot, "MIGRATING", dst);
  rtq_conn *d = direct(from);
  redisReply *keys = rtq_test_command(d, "CLUSTER", "GETKEYSINSLOT", slot, "100", NULL);
  assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
  snprintf(port, sizeof port, "%d", rtq_test_redis_port(rtq_test_cluster_node(cl, to)));
  for (size_t i = 0; i < keys->elements; i++)
    rtq_test_cmd_ok(d, "MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS", keys->element[i]->str, NULL);
  freeReplyObject(keys);
  rtq_conn_free(d);
  for (int i = 0; i < 3; i++) setslot(i, slot, "NODE", dst);
}

static void test_cluster_events2_every_node_heard(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn_new(seed);
  for (int i = 0; i < 3; i++) add_queue(c, qn[i]);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = seed;
  o.protocol = 2;
  rtq_client *client;
  if (rtq_client_new(&o, &client) != 0) fail_msg("client: %s", rtq_client_errstr(NULL));
  rtq_subscription *s;
  if (rtq_events_subscribe(client, &s) != 0) fail_msg("subscribe: %s", rtq_client_errstr(client));
  /* Subscribed before it returned: the first task of each is seen. */
  for (int i = 0; i < 3; i++) create_one(c, qn[i], 0);
  bool seen[3] = {false, false, false};
  for (int k = 0; k < 3; k++) {
    char *text = NULL;
    int rc = rtq_subscription_next(s, 5000, &text);
    if (rc != 0) fail_msg("event %d: %s (%s)", k, rtq_strerror(rc), rtq_client_errstr(client));
    json_t *e = json_loads(text, 0, NULL);
    free(text);
    for (int i = 0; i < 3; i++)
      if (strcmp(json_string_value(json_object_get(e, "queue")), qn[i]) == 0) seen[i] = true;
    json_decref(e);
  }
  assert_true(seen[0] && seen[1] && seen[2]);
  /* A queue registered now, on a node already connected. */
  add_queue(c, qn[3]);
  see_queue(c, s, qn[3]);
  /* qn[0]'s slot moves from node 0 to node 1 with its keys: the server
   * unsubscribes its channel, and the stream finds it on node 1. */
  move_slot(rtq_keys2_slot(&K, qn[0]), 0, 1);
  see_queue(c, s, qn[0]);
  rtq_subscription_free(s);
  rtq_client_free(client);
  rtq_conn_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_cluster_events2_every_node_heard, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
