/*
 * test_cluster_ask2.c - protocol 2 workers follow ASK while a queue's slot
 * is half migrated: CLUSTER SETSLOT IMPORTING/MIGRATING, then MIGRATE of
 * every key of the slot, and the final SETSLOT NODE held back. The source
 * node then answers every command on the slot with ASK (its keys are
 * gone). A running task's progress (a one-key script) must reach its hash
 * on the importing node meanwhile: only ASKING then the write, sent there,
 * does that. Scripts over several keys of which some do not exist (a
 * take's limit keys, a finish's history) get TRYAGAIN from the importing
 * node until the slot is assigned (Redis refuses multi-key commands on a
 * slot in migration unless every key is there): they run after the final
 * SETSLOT NODE. The test asserts the progress moved while the slot was
 * still MIGRATING, that the worker said it followed ASK without changing
 * its plan, that the other shard's queue kept flowing, and that nothing
 * created before, during or after the migration is lost.
 *
 * Also "MOVED 1234 :7001" (cluster-preferred-endpoint-type
 * unknown-endpoint: the nodes name no host): the client follows it to the
 * host it asked, and a worker plans its queues from a CLUSTER SLOTS reply
 * whose hosts are all empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cluster/cluster2_util.h"
#include "cluster/cluster_util.h"
#include "crc16.h"
#include "harness.h"
#include "rtq/client.h"

#define SRC 0
#define DST 1
#define BATCH 100

static rtq_test_cluster *cl;
static rtq_keys2 K;
static char moving[16], staying[16], seed[128];

/* Creates n tasks into queue q from ids[at..at+n) (every create must be
 * acknowledged). */
static void create_n(rtq_client *c, const char *q, char (*ids)[40], const char **qof, int at, int n) {
  for (int i = at; i < at + n; i++) {
    rtq_task_options o = {.queue = q};
    char id[RTQ_TASK_ID_SIZE];
    int rc = rtq_create_task(c, "rtq.noop", NULL, &o, id, NULL);
    if (rc != 0) fail_msg("create %d into %s: %s", i, q, rtq_client_errstr(c));
    assert_true(strlen(id) < 40);
    memcpy(ids[i], id, strlen(id) + 1);
    qof[i] = q;
  }
}

/* How many of ids[0..n) are completed, read through the cluster (which
 * follows ASK itself). */
static int completed(rtq_conn *rc, char (*ids)[40], const char **qof, int n) {
  int done = 0, once = 0;
  if (read_back(rc, &K, ids, qof, n, &done, &once) != 0) return -1;
  return done;
}

/* "[slot->-<dst id>]" in the source's CLUSTER NODES: still migrating. */
static bool still_migrating(const char *slot, const char *dst) {
  rtq_conn *s = node_conn(cl, SRC);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "CLUSTER");
  rtq_argv_add_str(&a, "NODES");
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_command(s, &a, &r), 0);
  char mark[96];
  snprintf(mark, sizeof mark, "[%s->-%s]", slot, dst);
  bool yes = r->type == REDIS_REPLY_STRING && strstr(r->str, mark) != NULL;
  freeReplyObject(r);
  rtq_argv_destroy(&a);
  rtq_conn_free(s);
  return yes;
}

static int count_in(const char *log, const char *needle) {
  char *s = cli_slurp(log);
  int n = 0;
  for (const char *p = strstr(s, needle); p != NULL; p = strstr(p + 1, needle)) n++;
  free(s);
  return n;
}

static void test_cluster_ask2_worker_follows_ask_mid_migration(void **state) {
  (void)state;
  const char *dir = rtq_test_redis_dir(rtq_test_cluster_node(cl, 2));
  char wlog[256];
  snprintf(wlog, sizeof wlog, "%s/worker-ask.log", dir);
  pid_t w = cluster_spawn("worker/rtq-worker",
                          (const char *[]){"--protocol", "2", "--redis", seed, "--demo-handlers", "--concurrency", "8",
                                           "--queue", moving, "--queue", staying, "--poll-interval", "200ms",
                                           "--shutdown-grace", "2s", NULL},
                          wlog);
  rtq_client_options co = {.redis_url = seed, .protocol = 2};
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&co, &c), 0);
  rtq_conn *rc = rtq_test_conn_new(seed);
  int total = 3 * BATCH + 1;
  char(*ids)[40] = calloc((size_t)total, sizeof *ids);
  const char **qof = calloc((size_t)total, sizeof *qof);
  assert_non_null(ids);
  assert_non_null(qof);

  /* Before: tasks run on the moving queue, so it has keys to migrate. */
  create_n(c, moving, ids, qof, 0, BATCH);
  RTQ_TEST_WAIT_FOR(completed(rc, ids, qof, BATCH) == BATCH, 20000);
  /* A long task that reports progress every 200 ms. */
  rtq_args *la = rtq_args_new();
  assert_non_null(la);
  assert_int_equal(rtq_args_set_double(la, "seconds", 10.0), 0);
  assert_int_equal(rtq_args_set_int(la, "steps", 50), 0);
  rtq_task_options lo = {.queue = moving};
  char lid[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(c, "rtq.sleep", la, &lo, lid, NULL), 0);
  rtq_args_free(la);
  int L = total - 1;
  memcpy(ids[L], lid, strlen(lid) + 1);
  qof[L] = moving;
  char pm[64];
  RTQ_TEST_WAIT_FOR((progress_of(rc, &K, moving, lid, pm, sizeof pm), pm[0] != '\0'), 10000);

  /* Half-migrate the slot: every key moves to DST, the slot stays
   * MIGRATING on SRC, so SRC answers ASK for each of them. */
  char slot[16], src[41], dst[41];
  snprintf(slot, sizeof slot, "%d", rtq_keys2_slot(&K, moving));
  rtq_test_cluster_node_id(cl, SRC, src);
  rtq_test_cluster_node_id(cl, DST, dst);
  setslot(cl, DST, slot, "IMPORTING", src);
  setslot(cl, SRC, slot, "MIGRATING", dst);
  migrate_keys(cl, SRC, DST, slot);

  /* The long task's progress goes on: the worker's link for the queue is
   * SRC's, and the task hash is on DST only, so each write followed ASK. */
  char p0[64], p1[64];
  progress_of(rc, &K, moving, lid, p0, sizeof p0);
  assert_true(p0[0] != '\0');
  RTQ_TEST_WAIT_FOR((progress_of(rc, &K, moving, lid, p1, sizeof p1), strcmp(p1, p0) != 0), 5000);
  /* Meanwhile the other shard's queue keeps flowing. */
  create_n(c, staying, ids, qof, BATCH, BATCH);
  RTQ_TEST_WAIT_FOR(completed(rc, ids + BATCH, qof + BATCH, BATCH) == BATCH, 20000);
  assert_true(still_migrating(slot, dst));
  rtq_conn *s = node_conn(cl, SRC);
  assert_int_equal(rtq_test_cmd_int(s, "CLUSTER", "COUNTKEYSINSLOT", slot, NULL), 0);
  rtq_conn_free(s);
  assert_true(count_in(wlog, "msg=\"following ASK to a cluster node importing a slot\"") >= 1);
  /* ASK did not change the plan: the queue is still planned on SRC. */
  char needle[64];
  snprintf(needle, sizeof needle, "msg=\"queue served by cluster node\" queue=%s ", moving);
  assert_int_equal(count_in(wlog, needle), 1);
  fprintf(stderr, "slot %s of %s half migrated: progress went from \"%s\" to \"%s\" on the importing node\n", slot,
          moving, p0, p1);

  /* After: the slot is DST's (MOVED, a re-plan); the long task and new
   * tasks complete, each once. */
  for (int i = 0; i < 3; i++) setslot(cl, i, slot, "NODE", dst);
  create_n(c, moving, ids, qof, 2 * BATCH, BATCH);
  RTQ_TEST_WAIT_FOR(completed(rc, ids, qof, total) == total, 30000);
  stop_clean(w);
  int done = 0, once = 0;
  assert_int_equal(read_back(rc, &K, ids, qof, total, &done, &once), 0);
  assert_int_equal(done, total);
  assert_int_equal(once, total);
  assert_int_equal(count_in(wlog, needle), 2);
  /* The worker's own count of the ASKs it followed, logged when it stops. */
  char *log = cli_slurp(wlog);
  const char *tag = "msg=\"cluster ASK redirections followed\" asks=";
  const char *p = strstr(log, tag);
  assert_non_null(p);
  long asks = atol(p + strlen(tag));
  fprintf(stderr, "the worker followed %ld ASKs\n", asks);
  assert_true(asks >= 1);
  free(log);
  rtq_conn_free(rc);
  rtq_client_free(c);
  free(ids);
  free(qof);
}

/* Every node names no host in MOVED, ASK and CLUSTER SLOTS. */
static void endpoints_unknown(void) {
  for (int i = 0; i < 3; i++) {
    rtq_conn *d = node_conn(cl, i);
    rtq_test_cmd_ok(d, "CONFIG", "SET", "cluster-preferred-endpoint-type", "unknown-endpoint", NULL);
    rtq_conn_free(d);
  }
}

static void test_cluster_ask2_moved_with_empty_host(void **state) {
  (void)state;
  endpoints_unknown();
  rtq_conn *c = rtq_test_conn_new(seed);
  /* A key whose (empty) slot is then given from node 2 to node 0 behind
   * the connection's back: its next command meets "MOVED <slot> :<port>". */
  char key[16] = "";
  rtq_conn *d = node_conn(cl, 2);
  for (int n = 0; n < 100000 && key[0] == '\0'; n++) {
    char k[16], ks[16];
    snprintf(k, sizeof k, "e%d", n);
    int ksl = rtq_key_slot(k, strlen(k));
    snprintf(ks, sizeof ks, "%d", ksl);
    if (rtq_test_cluster_owner_at_start(cl, ksl) == 2 && rtq_test_cmd_int(d, "CLUSTER", "COUNTKEYSINSLOT", ks, NULL) == 0)
      snprintf(key, sizeof key, "%s", k);
  }
  rtq_conn_free(d);
  assert_true(key[0] != '\0');
  rtq_test_cmd_ok(c, "SET", key, "before", NULL);
  assert_int_equal(rtq_test_cmd_int(c, "DEL", key, NULL), 1);
  char slot[16], to[41];
  snprintf(slot, sizeof slot, "%d", rtq_key_slot(key, strlen(key)));
  rtq_test_cluster_node_id(cl, 0, to);
  for (int i = 0; i < 3; i++) setslot(cl, i, slot, "NODE", to);
  /* Node 2 now answers MOVED with an empty host. */
  rtq_conn *d2 = node_conn(cl, 2);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "GET");
  rtq_argv_add_str(&a, key);
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_command(d2, &a, &r), RTQ_EREDIS);
  char want[48];
  snprintf(want, sizeof want, "MOVED %s :%d", slot, rtq_test_redis_port(rtq_test_cluster_node(cl, 0)));
  assert_string_equal(r->str, want);
  freeReplyObject(r);
  rtq_conn_free(d2);
  /* The cluster connection follows it to 127.0.0.1 at that port. */
  rtq_test_cmd_ok(c, "SET", key, "after", NULL);
  rtq_conn *d0 = node_conn(cl, 0);
  rtq_argv_reset(&a);
  rtq_argv_add_str(&a, "GET");
  rtq_argv_add_str(&a, key);
  assert_int_equal(rtq_conn_command(d0, &a, &r), 0);
  assert_string_equal(r->str, "after");
  freeReplyObject(r);
  rtq_conn_free(d0);
  rtq_argv_destroy(&a);
  rtq_conn_free(c);

  /* A worker plans from CLUSTER SLOTS whose hosts are all empty. */
  char q[16];
  queue_on(cl, &K, 2, "u", q);
  assert_true(q[0] != '\0');
  char wlog[256];
  snprintf(wlog, sizeof wlog, "%s/worker-unknown.log", rtq_test_redis_dir(rtq_test_cluster_node(cl, 2)));
  pid_t w = cluster_spawn("worker/rtq-worker",
                          (const char *[]){"--protocol", "2", "--redis", seed, "--demo-handlers", "--queue", q,
                                           "--shutdown-grace", "2s", NULL},
                          wlog);
  rtq_client_options co = {.redis_url = seed, .protocol = 2};
  rtq_client *cc = NULL;
  assert_int_equal(rtq_client_new(&co, &cc), 0);
  char(*ids)[40] = calloc(50, sizeof *ids);
  const char **qof = calloc(50, sizeof *qof);
  create_n(cc, q, ids, qof, 0, 50);
  rtq_conn *rc = rtq_test_conn_new(seed);
  RTQ_TEST_WAIT_FOR(completed(rc, ids, qof, 50) == 50, 20000);
  stop_clean(w);
  rtq_conn_free(rc);
  rtq_client_free(cc);
  free(ids);
  free(qof);
}

static int setup(void **state) {
  (void)state;
  cl = rtq_test_cluster_start(3, 3);
  if (cl == NULL) return -1;
  rtq_keys2_init(&K, "rtq");
  queue_on(cl, &K, SRC, "m", moving);
  queue_on(cl, &K, 2, "s", staying);
  rtq_test_cluster_url(cl, 2, seed, sizeof seed);
  return moving[0] != '\0' && staying[0] != '\0' ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  rtq_test_cluster_stop(cl);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cluster_ask2_worker_follows_ask_mid_migration),
      cmocka_unit_test(test_cluster_ask2_moved_with_empty_host),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
