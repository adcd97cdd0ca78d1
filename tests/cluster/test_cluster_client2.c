/*
 * test_cluster_client2.c - the producer calls under protocol 2 on a real
 * Redis Cluster (3 primaries with the slots, a 4th without any as the
 * seed): a batch over queues on three nodes goes to each queue's node, and
 * reading, listing, cancelling, retrying and waiting (SSUBSCRIBE on the
 * queue's node) find each task there; a schedule's transactions run on
 * the namespace's node, and go whole to its new node once its slot moved.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster2_util.h"
#include "crc16.h"
#include "harness.h"
#include "integration/test_client_fake_worker2.h"
#include "keys2.h"
#include "rtq/client.h"

static rtq_test_cluster *cl;
static char seed[128];
static rtq_keys2 K;
static rtq_client *CL;
static char queues[3][16]; /* queues[i]'s slot is on node i */
static char waitq[3][16];  /* the same, for the wait test */

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(4, 3);
  if (cl == NULL) return -1;
  rtq_test_cluster_url(cl, 3, seed, sizeof seed);
  rtq_keys2_init(&K, "rtq");
  for (int node = 0; node < 3; node++) {
    queue_on(cl, &K, node, "q", queues[node]);
    queue_on(cl, &K, node, "w", waitq[node]);
  }
  rtq_client_options o = {.redis_url = seed, .protocol = 2};
  if (rtq_client_new(&o, &CL) != 0) {
    fprintf(stderr, "client: %s\n", rtq_client_errstr(NULL));
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_client_free(CL);
  rtq_test_cluster_stop(cl);
  return 0;
}

/* A plain connection to node i: what is really stored there. */
static rtq_conn *direct(int i) { return rtq_test_conn_new(rtq_test_redis_url_of(rtq_test_cluster_node(cl, i))); }

static void test_cluster_client2_batch_reads_and_lists_per_node(void **state) {
  (void)state;
  enum { N = 150 };
  rtq_task_spec *s = calloc(N, sizeof *s);
  rtq_task_options o[3];
  for (int i = 0; i < 3; i++) o[i] = (rtq_task_options){.queue = queues[i]};
  for (int i = 0; i < N; i++) s[i].name = "t", s[i].opts = &o[i % 3];
  assert_int_equal(rtq_create_tasks(CL, s, N), 0);
  for (int node = 0; node < 3; node++) {
    rtq_conn *c = direct(node);
    assert_int_equal(rtq_test_cmd_int(c, "LLEN", rtq_keys2_queue(&K, queues[node]).s, NULL), N / 3);
    rtq_conn_free(c);
  }
  for (int i = 0; i < N; i += 7) {
    rtq_task *t = NULL;
    assert_int_equal(rtq_get_task(CL, s[i].id, &t), 0);
    assert_string_equal(t->queue, queues[i % 3]);
    rtq_task_free(t);
  }
  rtq_task_filter f = {.limit = 200};
  rtq_task_list *l = NULL;
  assert_int_equal(rtq_list_tasks(CL, &f, &l), 0);
  assert_int_equal(l->count, N);
  rtq_task_list_free(l);
  /* Cancel and retry on the queue of node 2. */
  int requested = -1;
  assert_int_equal(rtq_cancel_task(CL, s[2].id, &requested), 0);
  assert_int_equal(requested, 0);
  assert_int_equal(rtq_retry_task(CL, s[2].id), 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task_in(CL, queues[2], s[2].id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);
  free(s);
}

typedef struct ender {
  pthread_t th;
  int node;
  char id[RTQ_TASK_ID_SIZE];
  int rc;
} ender;

/* Once the waiter listens on the task's shard channel (on the queue's
 * node), takes and completes the task through the cluster. */
static void *end_when_waited(void *arg) {
  ender *e = arg;
  rtq_conn *d = direct(e->node);
  rtq_key2 ch = rtq_keys2_chan_waiter(&K, waitq[e->node], e->id);
  uint64_t deadline = rtq_test_now_ms() + 10000;
  long long subs = 0;
  for (int i = 0; subs < 1 && rtq_test_now_ms() < deadline; i++) {
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "PUBSUB");
    rtq_argv_add_str(&a, "SHARDNUMSUB");
    rtq__argv_add_key2(&a, ch);
    redisReply *r = NULL;
    if (rtq_conn_command(d, &a, &r) == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
      subs = r->element[1]->integer;
    if (r != NULL) freeReplyObject(r);
    rtq_argv_destroy(&a);
    if (subs < 1) rtq__test_poll_pause(i);
  }
  rtq_conn_free(d);
  rtq_conn *c = rtq_test_conn_new(seed);
  fake_job2 j;
  e->rc = subs < 1 ? RTQ_ETIMEDOUT : fw2_take(c, &K, waitq[e->node], "w", &j);
  if (e->rc == 0) e->rc = fw2_end(c, &K, &j, RTQ_STATUS_COMPLETED);
  rtq_conn_free(c);
  return NULL;
}

static void test_cluster_client2_wait_on_the_queues_node(void **state) {
  (void)state;
  for (int node = 0; node < 3; node++) {
    ender e = {.node = node};
    rtq_task_options o = {.queue = waitq[node]};
    assert_int_equal(rtq_create_task(CL, "t", NULL, &o, e.id, NULL), 0);
    assert_int_equal(pthread_create(&e.th, NULL, end_when_waited, &e), 0);
    rtq_task *t = NULL;
    int rc = rtq_wait_for_task(CL, e.id, 15000, &t);
    pthread_join(e.th, NULL);
    assert_int_equal(e.rc, 0);
    assert_int_equal(rc, 0);
    assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
    rtq_task_free(t);
  }
}

/* Add, pause, resume, fire and remove a schedule through a client seeded
 * with a node that serves no slot: each call's MULTI/EXEC runs whole on the
 * node of {rtq}, and the run lands on its queue's node. */
static void test_cluster_client2_schedule_transactions(void **state) {
  (void)state;
  rtq_schedule_options so = {.queue = queues[1]};
  assert_int_equal(rtq_schedule_add(CL, "nightly", "@every 10s", "t", NULL, &so), 0);
  assert_int_equal(rtq_schedule_set_paused(CL, "nightly", true), 0);
  assert_int_equal(rtq_schedule_set_paused(CL, "nightly", false), 0);
  rtq_schedule *l = NULL;
  size_t n = 0;
  assert_int_equal(rtq_schedule_list(CL, &l, &n), 0);
  assert_int_equal(n, 1);
  assert_false(l[0].paused);
  assert_true(l[0].next_run_ms > 0);
  rtq_schedules_free(l, n);
  int home = rtq_test_cluster_owner_at_start(cl, rtq_crc16("rtq", 3) % 16384);
  rtq_conn *ns = direct(home);
  assert_int_equal(rtq_test_cmd_int(ns, "ZCARD", rtq_keys2_schedules_due(&K).s, NULL), 1);
  size_t fired = 0;
  uint64_t now = 0;
  rtq_conn *qn = direct(1);
  long long before = rtq_test_cmd_int(qn, "LLEN", rtq_keys2_queue(&K, queues[1]).s, NULL);
  assert_int_equal(rtq_conn_time_ms(ns, &now), 0);
  assert_int_equal(rtq_schedule_fire_due(CL, now + 60000, 10, &fired), 0);
  assert_int_equal(fired, 1);
  assert_int_equal(rtq_test_cmd_int(qn, "LLEN", rtq_keys2_queue(&K, queues[1]).s, NULL), before + 1);
  assert_int_equal(rtq_schedule_remove(CL, "nightly"), 0);
  assert_int_equal(rtq_test_cmd_int(ns, "EXISTS", rtq_keys2_schedules(&K).s, rtq_keys2_schedules_due(&K).s,
                                    rtq_keys2_schedules_last(&K).s, NULL),
                   0);
  assert_int_equal(rtq_schedule_remove(CL, "nightly"), RTQ_ENOTFOUND);
  rtq_conn_free(qn);
  rtq_conn_free(ns);
}

/* {rtq}'s slot moved to another node (every key migrated, every node
 * told) while the client's map still names the old one: schedule remove,
 * whose first command is its transaction, is refused whole there (MOVED
 * inside MULTI, then EXECABORT: nothing ran) and goes again to the new
 * node, where all of its writes land. Were the MOVED commands run one at
 * a time, they would be written outside the transaction and the call
 * would fail with EXECABORT all the same. */
static void test_cluster_client2_schedule_transaction_follows_its_slot(void **state) {
  (void)state;
  int ns_slot = rtq_crc16("rtq", 3) % 16384;
  int from = rtq_test_cluster_owner_at_start(cl, ns_slot), to = (from + 1) % 3;
  rtq_schedule_options so = {.queue = queues[1]};
  assert_int_equal(rtq_schedule_add(CL, "stays", "@every 10s", "t", NULL, &so), 0); /* the map names `from` */
  assert_int_equal(rtq_schedule_add(CL, "goes", "@every 10s", "t", NULL, &so), 0);
  char slot[16], src[41], dst[41];
  snprintf(slot, sizeof slot, "%d", ns_slot);
  rtq_test_cluster_node_id(cl, from, src);
  rtq_test_cluster_node_id(cl, to, dst);
  setslot(cl, to, slot, "IMPORTING", src);
  setslot(cl, from, slot, "MIGRATING", dst);
  migrate_keys(cl, from, to, slot);
  for (int i = 0; i < 4; i++) setslot(cl, i, slot, "NODE", dst);

  assert_int_equal(rtq_schedule_remove(CL, "goes"), 0);
  rtq_conn *old = direct(from), *now = direct(to);
  assert_int_equal(rtq_test_cmd_int(old, "CLUSTER", "COUNTKEYSINSLOT", slot, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(now, "HEXISTS", rtq_keys2_schedules(&K).s, "goes", NULL), 0);
  assert_int_equal(rtq_test_cmd_int(now, "HEXISTS", rtq_keys2_schedules_last(&K).s, "goes", NULL), 0);
  assert_int_equal(rtq_test_cmd_int(now, "ZCARD", rtq_keys2_schedules_due(&K).s, NULL), 1);
  assert_int_equal(rtq_test_cmd_int(now, "HEXISTS", rtq_keys2_schedules(&K).s, "stays", NULL), 1);
  assert_int_equal(rtq_schedule_remove(CL, "stays"), 0);
  assert_int_equal(rtq_test_cmd_int(now, "EXISTS", rtq_keys2_schedules(&K).s, rtq_keys2_schedules_due(&K).s,
                                    rtq_keys2_schedules_last(&K).s, NULL),
                   0);
  rtq_conn_free(old);
  rtq_conn_free(now);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_client2_batch_reads_and_lists_per_node),
      cmocka_unit_test(test_cluster_client2_wait_on_the_queues_node),
      cmocka_unit_test(test_cluster_client2_schedule_transactions),
      cmocka_unit_test(test_cluster_client2_schedule_transaction_follows_its_slot),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
