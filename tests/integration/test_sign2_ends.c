/*
 * test_sign2_ends.c - under signing (docs/SECURITY.md section 5) every end
 * is signed by a key allowed for its status, and a reader holding the
 * keys believes no other:
 *   - failed, cancelled and timeout ends forged by raw HSET + SPUBLISH,
 *     unsigned or signed with a made-up or a wrong-role signature, are
 *     unverified (`rtq wait` exit 7, RTQ_EUNVERIFIED);
 *   - a producer's cancel of a pending task, and its purge of a queue,
 *     are signed with its key and verify under the producers' keys, not
 *     under the workers' alone;
 *   - the broker signs the ends its timeout backstop and its recovery of
 *     a dead worker write (timeout, cancelled, failed WORKER_LOST); the
 *     same ends written by a broker without the key are unverified.
 * Real redis-server, rtq-broker and rtq processes; the workers are played
 * with the v2 call builders (a live one that overruns, a dead one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "argv.h"
#include "rtq/client.h"
#include "sign.h"
#include "test_broker2_helpers.h"
#include "test_cli_run.h"

#define PK "p2:2233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011\n"
#define WK "w1:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"

static char dir[64], producer_keys[128], worker_keys[128], url_env[300];
static const char *env[] = {url_env, "RTQ_NAMESPACE", "RTQ_PROTOCOL", NULL};

static void write_key(char *path, size_t cap, const char *name, const char *text) {
  snprintf(path, cap, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(path, 0600), 0);
}

static int setup(void **state) {
  if (tb2_setup(state) != 0) return -1;
  snprintf(url_env, sizeof url_env, "RTQ_REDIS_URL=%s", rtq_test_redis_url());
  snprintf(dir, sizeof dir, "/tmp/rtq-test-ends-XXXXXX");
  assert_non_null(mkdtemp(dir));
  write_key(producer_keys, sizeof producer_keys, "producer.keys", PK);
  write_key(worker_keys, sizeof worker_keys, "worker.keys", WK);
  return 0;
}

static int teardown(void **state) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  int rc = system(cmd);
  tb_teardown(state);
  return rc == 0 ? 0 : -1;
}

/* A protocol 2 client: sign, verify (the workers' keys), task keys (the
 * producers'): key files or NULL. */
static rtq_client *client(const char *sign, const char *verify, const char *task_keys) {
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.protocol = 2;
  o.signing_key_file = sign;
  o.result_keys_file = verify;
  o.task_keys_file = task_keys;
  rtq_client *c = NULL;
  if (rtq_client_new(&o, &c) != 0) fail_msg("rtq_client_new: %s", rtq_client_errstr(NULL));
  return c;
}

static void create(rtq_client *c, const char *queue, const char *id, uint64_t timeout_ms) {
  rtq_task_options o = {.queue = queue, .id = id, .timeout_ms = timeout_ms};
  int created = 0;
  if (rtq_create_task_json(c, "job", "{}", &o, NULL, &created) != 0) fail_msg("create: %s", rtq_client_errstr(c));
  assert_int_equal(created, 1);
}

static int read_rc(rtq_client *c, const char *id, rtq_status *st) {
  rtq_task *t = NULL;
  int rc = rtq_get_task(c, id, &t);
  if (rc == 0 && st != NULL) *st = t->status;
  rtq_task_free(t);
  return rc;
}

/* Writes an end into id's hash as a raw writer would (rs NULL: none) and
 * announces it on the task's waiter channel. */
static void forge_end(tb *t, const char *id, const char *status, const char *rs) {
  rtq_key2 k = rtq_keys2_task(&K2, "default", id), ch = rtq_keys2_chan_waiter(&K2, "default", id);
  rtq_argv a;
  rtq_argv_init(&a);
  const char *kv[] = {"HSET", k.s, "s", status, "ec", "E_FORGED", "em", "pay the attacker", "e", "1700000000000"};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) rtq_argv_add_str(&a, kv[i]);
  if (rs != NULL) rtq_argv_add_str(&a, "rs"), rtq_argv_add_str(&a, rs);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  rtq_argv_destroy(&a);
  char msg[256];
  snprintf(msg, sizeof msg, "{\"id\":\"%s\",\"s\":\"%s\",\"at\":1700000000000}", id, status);
  rtq_test_cmd_int(t->c, "SPUBLISH", ch.s, msg, NULL);
}

static long long waiters(tb *t, const char *id) {
  rtq_key2 ch = rtq_keys2_chan_waiter(&K2, "default", id);
  redisReply *r = rtq_test_command(t->c, "PUBSUB", "SHARDNUMSUB", ch.s, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

static void test_sign2_ends_forged_ends_are_unverified(void **state) {
  tb *t = *state;
  rtq_client *p = client(producer_keys, NULL, NULL), *reader = client(NULL, worker_keys, producer_keys);
  const char *statuses[] = {"failed", "cancelled", "timeout"};
  char err[256];
  rtq_sign_keys *pk = NULL;
  assert_int_equal(rtq_sign_keys_load(producer_keys, &pk, err, sizeof err), 0);
  for (int i = 0; i < 3; i++) {
    char id[32];
    snprintf(id, sizeof id, "F-%s", statuses[i]);
    create(p, "default", id, 0);
    cli_run r;
    cli_start(&r, (const char *const[]){"--protocol", "2", "--result-keys", worker_keys, "--task-keys",
                                        producer_keys, "wait", id, "--timeout", "10s", NULL},
              env);
    RTQ_TEST_WAIT_FOR(waiters(t, id) == 1, 10000);
    forge_end(t, id, statuses[i], NULL);
    cli_finish(&r, 10000);
    if (r.code != 7) fail_msg("rtq wait: exit %d: %s", r.code, r.err);
    cli_free(&r);
    assert_int_equal(read_rc(reader, id, NULL), RTQ_EUNVERIFIED);
    /* A made-up signature does not verify either. */
    forge_end(t, id, statuses[i], "p2:00000000000000000000000000000000000000000000000000000000deadbeef");
    assert_int_equal(read_rc(reader, id, NULL), RTQ_EUNVERIFIED);
  }
  /* A producer's key signs no completion, in either role's bytes. */
  char rs[RTQ_SIGN_SIZE];
  rtq_sign_outcome o = {.id = "F-failed", .queue = "default", .attempt = "", .status = "completed"};
  assert_int_equal(rtq_sign_end_sig(pk, &o, rs), RTQ_EINVAL);
  assert_int_equal(rtq_sign_outcome_sig(pk, &o, rs), 0);
  rtq_key2 k = rtq_keys2_task(&K2, "default", "F-failed");
  rtq_test_cmd_int(t->c, "HDEL", k.s, "ec", "em", NULL);
  forge_end(t, "F-failed", "completed", rs);
  assert_int_equal(read_rc(reader, "F-failed", NULL), RTQ_EUNVERIFIED);
  rtq_sign_keys_free(pk);
  rtq_client_free(reader);
  rtq_client_free(p);
}

static void test_sign2_ends_cancel_is_signed_by_the_producer(void **state) {
  (void)state;
  rtq_client *p = client(producer_keys, NULL, NULL), *plain = client(NULL, NULL, NULL);
  rtq_client *reader = client(NULL, worker_keys, producer_keys), *workers_only = client(NULL, worker_keys, NULL);
  create(p, "default", "C-1", 0);
  assert_int_equal(rtq_cancel_task(p, "C-1", NULL), 0);
  rtq_status st;
  assert_int_equal(read_rc(reader, "C-1", &st), 0);
  assert_int_equal(st, RTQ_STATUS_CANCELLED);
  /* The producers' keys are needed to verify it. */
  assert_int_equal(read_rc(workers_only, "C-1", NULL), RTQ_EUNVERIFIED);
  /* A producer that signs verifies its own cancels with its key. */
  rtq_client *own = client(producer_keys, worker_keys, NULL);
  assert_int_equal(read_rc(own, "C-1", &st), 0);
  rtq_client_free(own);
  cli_run r;
  cli(&r, (const char *const[]){"--protocol", "2", "--result-keys", worker_keys, "--task-keys", producer_keys,
                                "wait", "C-1", "--timeout", "5s", NULL},
      env);
  assert_int_equal(r.code, 1); /* ended other than completed, and verified */
  cli_free(&r);
  /* A cancel by a client without the key is an unsigned end. */
  create(p, "default", "C-2", 0);
  assert_int_equal(rtq_cancel_task(plain, "C-2", NULL), 0);
  assert_int_equal(read_rc(reader, "C-2", NULL), RTQ_EUNVERIFIED);
  /* A purge signs the end of each pending task it cancels, delayed ones
   * too. */
  create(p, "default", "C-3", 0);
  rtq_task_options later = {.id = "C-4", .delay_ms = 3600000};
  assert_int_equal(rtq_create_task_json(p, "job", "{}", &later, NULL, NULL), 0);
  rtq_purge_counts n;
  assert_int_equal(rtq_queue_purge(p, "default", 0, &n), 0);
  assert_int_equal(read_rc(reader, "C-3", &st), 0);
  assert_int_equal(st, RTQ_STATUS_CANCELLED);
  assert_int_equal(read_rc(reader, "C-4", &st), 0);
  assert_int_equal(st, RTQ_STATUS_CANCELLED);
  rtq_client_free(workers_only);
  rtq_client_free(reader);
  rtq_client_free(plain);
  rtq_client_free(p);
}

/* Worker wid (played) takes every pending task of queue default. */
static void take_all(tb *t, const char *wid) { assert_true(tb2_take_all(t, wid, "default") > 0); }

static void test_sign2_ends_broker_signs_its_ends(void **state) {
  tb *t = *state;
  rtq_client *p = client(producer_keys, NULL, NULL), *reader = client(NULL, worker_keys, producer_keys);
  for (int keyed = 1; keyed >= 0; keyed--) {
    /* A live worker whose run overran; a dead worker with three runs:
     * one asked to stop, one past its deadline, one on its last delivery. */
    char ids[4][32], slow[16], dead[16];
    const char *names[] = {"T-over", "R-cancel", "R-late", "R-lost"};
    for (int i = 0; i < 4; i++) snprintf(ids[i], sizeof ids[i], "%s-%d", names[i], keyed);
    snprintf(slow, sizeof slow, "w-slow-%d", keyed);
    snprintf(dead, sizeof dead, "w-dead-%d", keyed);
    tb2_heartbeat(t, slow, 600000, "default:1");
    create(p, "default", ids[0], 100);
    take_all(t, slow);
    tb2_heartbeat(t, dead, 600000, "default:1");
    create(p, "default", ids[1], 0);
    create(p, "default", ids[2], 100);
    create(p, "default", ids[3], 0);
    take_all(t, dead);
    rtq_test_cmd_int(t->c, "HSET", rtq_keys2_task(&K2, "default", ids[1]).s, "cr", "1", NULL);
    tb2_age_worker(t, dead, 120000);
    uint64_t until = tb_redis_now(t) + 400;
    while (tb_redis_now(t) < until) rtq__test_poll_pause(20);
    if (keyed)
      tb2_broker_once(t, "--timeout-grace", "200ms", "--max-deliveries", "1", "--signing-key-file", producer_keys);
    else
      tb2_broker_once(t, "--timeout-grace", "200ms", "--max-deliveries", "1");
    rtq_status want[] = {RTQ_STATUS_TIMEOUT, RTQ_STATUS_CANCELLED, RTQ_STATUS_TIMEOUT, RTQ_STATUS_FAILED};
    for (int i = 0; i < 4; i++) {
      rtq_status st = RTQ_STATUS_PENDING;
      int rc = read_rc(reader, ids[i], &st);
      if (keyed && rc != 0) fail_msg("%s: %s", ids[i], rtq_client_errstr(reader));
      if (keyed) assert_int_equal(st, want[i]);
      if (!keyed) assert_int_equal(rc, RTQ_EUNVERIFIED);
      assert_true(tb2_field_is(t, "default", ids[i], "s", rtq_status_name(want[i])));
    }
    assert_true(tb2_field_is(t, "default", ids[3], "ec", "WORKER_LOST"));
  }
  rtq_client_free(reader);
  rtq_client_free(p);
}

int main(void) {
  setenv("RTQ_PROTOCOL", "2", 1);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_sign2_ends_forged_ends_are_unverified, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sign2_ends_cancel_is_signed_by_the_producer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_sign2_ends_broker_signs_its_ends, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
