/*
 * test_sign2.c - signed tasks and outcomes under protocol 2 (docs/SECURITY.md),
 * with a real rtq-worker, the library and the `rtq` binary:
 *   - a signed task runs and its outcome verifies; keys rotate (a task
 *     signed with the old kid still runs while the kid is listed);
 *   - a forged outcome (raw HSET of the task hash + SPUBLISH) makes
 *     `rtq wait --result-keys` exit 7 and rtq_get_task RTQ_EUNVERIFIED,
 *     and `rtq watch --result-keys` exit 7 at once (following: a task it
 *     adopts is shown unverified, and it exits 7 at its end);
 *   - a victim's task whose args were rewritten, an unsigned task and a
 *     victim's signature copied onto another id never run: BAD_SIGNATURE;
 *   - a producer key cannot sign an outcome, a worker key cannot sign a
 *     task;
 *   - with signing off everything runs as before (and a forged outcome
 *     then passes: what SECURITY.md says a writer can do);
 *   - a key file others may read is refused.
 * Every process is given --protocol 2, the one protocol, explicitly.
 */
#include "test_worker_util.h"

#include <sys/stat.h>

#include "argv.h"
#include "sign.h"
#include "test_cli_run.h"

#define P1 "p1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
#define P2 "p2:2233445566778899aabbccddeeff00112233445566778899aabbccddeeff0011\n"
#define P3 "p3:445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233\n"
#define W1 "w1:ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100\n"

static rtq_keys2 k2;
static rtq_conn *rc_;
static tw_worker wk;
static char dir[64], producer_old[128], producer_rotated[128], producer_other[128], worker_keys[128],
    worker_as_w1[128];
static char url_env[300];
static const char *env[] = {url_env, "RTQ_NAMESPACE", "RTQ_PROTOCOL", NULL};

static void write_key(char *path, size_t cap, const char *name, const char *text, mode_t mode) {
  snprintf(path, cap, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  assert_int_equal(rtq_keys2_init(&k2, "rtq"), 0);
  rc_ = rtq_test_conn();
  wk.pid = -1;
  snprintf(url_env, sizeof url_env, "RTQ_REDIS_URL=%s", rtq_test_redis_url());
  snprintf(dir, sizeof dir, "/tmp/rtq-test-sign2-XXXXXX");
  assert_non_null(mkdtemp(dir));
  write_key(producer_old, sizeof producer_old, "producer-old.keys", P1, 0600);
  /* Rotated: p2 signs, p1 still verifies. */
  write_key(producer_rotated, sizeof producer_rotated, "producer.keys", P2 P1, 0600);
  write_key(producer_other, sizeof producer_other, "unlisted.keys", P3, 0600);
  write_key(worker_keys, sizeof worker_keys, "worker.keys", W1, 0600);
  /* A producer's secret under the worker's kid: still not the worker's key. */
  write_key(worker_as_w1, sizeof worker_as_w1, "fake-w1.keys",
            "w1:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (wk.pid > 0) assert_int_equal(tw_stop(&wk, 15000), 0);
  rtq_conn_free(rc_);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : -1;
}

/* A protocol 2 client; sign/verify: key files or NULL. */
static rtq_client *client(const char *sign, const char *verify) {
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.protocol = 2;
  o.signing_key_file = sign;
  o.result_keys_file = verify;
  rtq_client *c = NULL;
  int rc = rtq_client_new(&o, &c);
  if (rc != 0) fail_msg("rtq_client_new: %s", rtq_client_errstr(NULL));
  return c;
}

/* rtq-worker --protocol 2 with its keys (NULL: none). */
static void start_worker(const char *sign, const char *task_keys) {
  const char *argv[12] = {"--protocol", "2"};
  int n = 2;
  if (sign != NULL) argv[n++] = "--signing-key-file", argv[n++] = sign;
  if (task_keys != NULL) argv[n++] = "--task-keys", argv[n++] = task_keys;
  argv[n] = NULL;
  tw_start_v(&wk, rtq_test_redis_url(), argv);
}

static void create(rtq_client *c, const char *name, const char *json, char *id) {
  int created = 0;
  int rc = rtq_create_task_json(c, name, json, NULL, id, &created);
  if (rc != 0) fail_msg("create: %s", rtq_client_errstr(c));
  assert_int_equal(created, 1);
}

static char *field(const char *id, const char *f) {
  rtq_key2 k = rtq_keys2_task(&k2, "default", id);
  return rtq_test_cmd_str(rc_, "HGET", k.s, f, NULL);
}

static bool field_is(const char *id, const char *f, const char *want) {
  char *v = field(id, f);
  bool ok = v != NULL && strcmp(v, want) == 0;
  free(v);
  return ok;
}

/* Whether queue default's dead list holds a BAD_SIGNATURE letter of id. */
static bool dead_for(const char *id) {
  rtq_key2 d = rtq_keys2_dead(&k2, "default");
  redisReply *r = rtq_test_command(rc_, "LRANGE", d.s, "0", "-1", NULL);
  bool found = false;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (memmem(e->str, e->len, "BAD_SIGNATURE", 13) != NULL && memmem(e->str, e->len, id, strlen(id)) != NULL)
      found = true;
  }
  freeReplyObject(r);
  return found;
}

/* Writes a completed outcome into id's hash as a raw writer would, with rs
 * (NULL: none), and announces it on the task's waiter channel. */
static void forge_completed(const char *id, const char *rs) {
  rtq_key2 t = rtq_keys2_task(&k2, "default", id), ch = rtq_keys2_chan_waiter(&k2, "default", id);
  rtq_argv a;
  rtq_argv_init(&a);
  const char *kv[] = {"HSET", t.s, "s", "completed", "r", "\xa6" "forged", "e", "1700000000000", "a", "1"};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) rtq_argv_add_str(&a, kv[i]);
  if (rs != NULL) rtq_argv_add_str(&a, "rs"), rtq_argv_add_str(&a, rs);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
  char msg[256];
  snprintf(msg, sizeof msg, "{\"id\":\"%s\",\"s\":\"completed\",\"at\":1700000000000}", id);
  rtq_test_cmd_int(rc_, "SPUBLISH", ch.s, msg, NULL);
}

static long long shard_subscribers(const char *id) {
  rtq_key2 ch = rtq_keys2_chan_waiter(&k2, "default", id);
  redisReply *r = rtq_test_command(rc_, "PUBSUB", "SHARDNUMSUB", ch.s, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

static void test_sign2_signed_tasks_run_and_keys_rotate(void **state) {
  (void)state;
  start_worker(worker_keys, producer_rotated);
  rtq_client *old = client(producer_old, worker_keys), *cur = client(producer_rotated, worker_keys);
  char a[RTQ_TASK_ID_SIZE], b[RTQ_TASK_ID_SIZE];
  create(old, "rtq.echo", "{\"n\":1}", a);
  create(cur, "rtq.echo", "{\"n\":2}", b);
  char *sa = field(a, "sg"), *sb = field(b, "sg");
  assert_true(sa != NULL && strncmp(sa, "p1:", 3) == 0 && strlen(sa) == 67);
  assert_true(sb != NULL && strncmp(sb, "p2:", 3) == 0);
  free(sa);
  free(sb);
  rtq_task *t = NULL;
  int rc = rtq_wait_for_task(cur, a, 10000, &t);
  if (rc != 0) fail_msg("wait: %s", rtq_client_errstr(cur));
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  assert_int_equal(rtq_wait_for_task(old, b, 10000, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  char *rs = field(b, "rs");
  assert_true(rs != NULL && strncmp(rs, "w1:", 3) == 0);
  free(rs);
  /* The CLI verifies it too. */
  cli_run r;
  cli(&r, (const char *const[]){"--protocol", "2", "--result-keys", worker_keys, "wait", b, "--timeout", "5s",
                                NULL},
      env);
  assert_int_equal(r.code, 0);
  cli_free(&r);
  /* A failure is signed as well, and verifies. */
  char f[RTQ_TASK_ID_SIZE];
  create(cur, "rtq.fail", "{\"code\":\"E_TEST\",\"message\":\"boom\"}", f);
  assert_int_equal(rtq_wait_for_task(cur, f, 10000, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_FAILED);
  rtq_task_free(t);
  assert_true(field_is(f, "ec", "E_TEST"));
  /* A key no longer listed (p3) signs nothing this worker runs. */
  rtq_client *gone = client(producer_other, worker_keys);
  char g[RTQ_TASK_ID_SIZE];
  create(gone, "rtq.echo", "{}", g);
  RTQ_TEST_WAIT_FOR(field_is(g, "s", "failed"), 10000);
  assert_true(field_is(g, "ec", "BAD_SIGNATURE"));
  rtq_client_free(gone);
  rtq_client_free(old);
  rtq_client_free(cur);
}

static void test_sign2_forged_outcome_is_unverified(void **state) {
  (void)state;
  rtq_client *c = client(producer_rotated, worker_keys);
  char id[RTQ_TASK_ID_SIZE];
  create(c, "rtq.echo", "{\"amount\":1}", id); /* no worker: it stays pending */
  cli_run r;
  cli_start(&r, (const char *const[]){"--protocol", "2", "--result-keys", worker_keys, "wait", id, "--timeout",
                                      "10s", NULL},
            env);
  RTQ_TEST_WAIT_FOR(shard_subscribers(id) == 1, 10000);
  forge_completed(id, NULL);
  cli_finish(&r, 10000);
  assert_int_equal(r.code, 7);
  assert_non_null(strstr(r.err, "RTQ_EUNVERIFIED") != NULL ? r.err : strstr(r.err, "signature"));
  cli_free(&r);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(c, id, &t), RTQ_EUNVERIFIED);
  assert_null(t);
  assert_non_null(strstr(rtq_client_errstr(c), "forged"));
  assert_int_equal(rtq_wait_for_task(c, id, 1000, &t), RTQ_EUNVERIFIED);
  /* A made-up rs under the worker's kid does not verify either. */
  forge_completed(id, "w1:00000000000000000000000000000000000000000000000000000000deadbeef");
  assert_int_equal(rtq_get_task(c, id, &t), RTQ_EUNVERIFIED);
  /* Nor one made with a producer's key, even one that calls itself w1. */
  char err[256];
  rtq_sign_keys *pk = NULL;
  assert_int_equal(rtq_sign_keys_load(worker_as_w1, &pk, err, sizeof err), 0);
  char rs[RTQ_SIGN_SIZE];
  rtq_sign_outcome o = {.id = id, .queue = "default", .attempt = "1", .status = "completed",
                        .r = {"\xa6" "forged", 7}};
  assert_int_equal(rtq_sign_outcome_sig(pk, &o, rs), 0);
  rtq_sign_keys_free(pk);
  forge_completed(id, rs);
  assert_int_equal(rtq_get_task(c, id, &t), RTQ_EUNVERIFIED);
  cli(&r, (const char *const[]){"--protocol", "2", "--result-keys", worker_keys, "status", id, NULL}, env);
  assert_int_equal(r.code, 7);
  cli_free(&r);
  /* Without the workers' keys the reader cannot tell: SECURITY.md says so. */
  rtq_client *plain = client(NULL, NULL);
  assert_int_equal(rtq_get_task(plain, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  rtq_client_free(plain);
  rtq_client_free(c);
}

static long long shard_subscribers_of(const char *ch) {
  redisReply *r = rtq_test_command(rc_, "PUBSUB", "SHARDNUMSUB", ch, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

static bool printed(const cli_run *r, const char *needle) {
  char *out = cli_peek(r);
  bool yes = strstr(out, needle) != NULL;
  free(out);
  return yes;
}

/* `rtq watch --result-keys` believes an end only once the hash verifies:
 * a forged end announced on the events channel (the status in the task's
 * entry, or the message's) reports unverified at once (exit 7). */
static void test_sign2_watch_reports_forged_end_at_once(void **state) {
  (void)state;
  rtq_client *c = client(producer_rotated, worker_keys);
  rtq_key2 ev = rtq_keys2_chan_events(&k2, "default");
  for (int per_task = 0; per_task < 2; per_task++) {
    char id[RTQ_TASK_ID_SIZE];
    create(c, "rtq.echo", "{\"amount\":1}", id); /* no worker: it stays pending */
    cli_run r;
    cli_start(&r, (const char *const[]){"--protocol", "2", "--result-keys", worker_keys, "--json", "watch", id,
                                        "--timeout", "20s", NULL},
              env);
    RTQ_TEST_WAIT_FOR(shard_subscribers_of(ev.s) == 1, 10000);
    /* Subscribed first, then the task read: forge once that read is done. */
    RTQ_TEST_WAIT_FOR(printed(&r, "\"status\":\"pending\""), 10000);
    forge_completed(id, NULL);
    char msg[256];
    if (per_task)
      snprintf(msg, sizeof msg, "{\"at\":1700000000000,\"t\":[{\"id\":\"%s\",\"s\":\"completed\"}]}", id);
    else
      snprintf(msg, sizeof msg, "{\"at\":1700000000000,\"s\":\"completed\",\"t\":[{\"id\":\"%s\"}]}", id);
    rtq_test_cmd_int(rc_, "SPUBLISH", ev.s, msg, NULL);
    cli_finish(&r, 10000);
    if (r.code != 7) fail_msg("watch: exit %d\n%s\n%s", r.code, r.out, r.err);
    assert_true(r.ms < 10000); /* not the 20 s timeout */
    assert_non_null(strstr(r.err, "RTQ_EUNVERIFIED"));
    if (strstr(r.out, "\"status\":\"unverified\"") == NULL) fail_msg("watch printed:\n%s", r.out);
    assert_non_null(strstr(r.out, "\"unverified\":true"));
    assert_null(strstr(r.out, "\"status\":\"completed\""));
    cli_free(&r);
  }
  rtq_client_free(c);
}

/* Following (no ids), a task the watch adopts from its start event whose
 * end does not verify is shown unverified, not passed over, and the watch
 * exits 7 at its end, as `rtq wait` would for that task. */
static void test_sign2_watch_follow_reports_adopted_forged_end(void **state) {
  (void)state;
  rtq_client *c = client(producer_rotated, worker_keys);
  rtq_key2 ev = rtq_keys2_chan_events(&k2, "default");
  char id[RTQ_TASK_ID_SIZE];
  create(c, "rtq.echo", "{\"amount\":1}", id); /* no worker: it stays pending */
  cli_run r;
  cli_start(&r, (const char *const[]){"--protocol", "2", "--result-keys", worker_keys, "--json", "watch",
                                      "--timeout", "3s", NULL},
            env);
  RTQ_TEST_WAIT_FOR(shard_subscribers_of(ev.s) == 1, 10000);
  /* An end written by hand, then the claim's event announcing its start. */
  forge_completed(id, NULL);
  char msg[RTQ_TASK_ID_SIZE + 128];
  snprintf(msg, sizeof msg, "{\"at\":1700000000000,\"s\":\"running\",\"w\":\"w-x\",\"t\":[{\"id\":\"%s\",\"a\":1}]}",
           id);
  rtq_test_cmd_int(rc_, "SPUBLISH", ev.s, msg, NULL);
  cli_finish(&r, 15000);
  if (r.code != 7) fail_msg("watch: exit %d\n%s\n%s", r.code, r.out, r.err);
  assert_non_null(strstr(r.err, "RTQ_EUNVERIFIED"));
  char want[RTQ_TASK_ID_SIZE + 16];
  snprintf(want, sizeof want, "\"id\":\"%s\"", id);
  if (strstr(r.out, want) == NULL || strstr(r.out, "\"status\":\"unverified\"") == NULL)
    fail_msg("watch printed:\n%s", r.out);
  assert_non_null(strstr(r.out, "\"unverified\":true"));
  assert_null(strstr(r.out, "\"status\":\"completed\""));
  cli_free(&r);
  rtq_client_free(c);
}

/* Copies fields (NULL-terminated) of the HGETALL reply h into id's hash. */
static void paste(const redisReply *h, const char *id, const char *const *fields) {
  rtq_key2 t = rtq_keys2_task(&k2, "default", id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HSET");
  rtq_argv_add_str(&a, t.s);
  for (int i = 0; fields[i] != NULL; i++)
    for (size_t j = 0; j + 1 < h->elements; j += 2)
      if (strcmp(h->element[j]->str, fields[i]) == 0) {
        rtq_argv_add_str(&a, fields[i]);
        rtq_argv_add(&a, h->element[j + 1]->str, h->element[j + 1]->len);
      }
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
}

static void create_as(rtq_client *c, const char *id, const char *json) {
  rtq_task_options o = {.id = id};
  int created = 0;
  if (rtq_create_task_json(c, "rtq.echo", json, &o, NULL, &created) != 0)
    fail_msg("create: %s", rtq_client_errstr(c));
  assert_int_equal(created, 1);
}

/* Replays. A signed outcome belongs to one task (its sg) and one run (its
 * start b, which must not precede the hash's creation c): copied back
 * onto a task created again under the same id after the first expired, it
 * does not verify, whether the new task has other args or the same. Only
 * the whole old hash put back as it was (c too) still verifies: with keys
 * alone nothing tells it from the old task (docs/SECURITY.md). */
static void test_sign2_copied_outcome_does_not_verify(void **state) {
  (void)state;
  start_worker(worker_keys, producer_rotated);
  rtq_client *c = client(producer_rotated, worker_keys);
  const char *id = "PAY-1";
  create_as(c, id, "{\"amount\":1}");
  rtq_task *t = NULL;
  assert_int_equal(rtq_wait_for_task(c, id, 10000, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  rtq_key2 tk = rtq_keys2_task(&k2, "default", id);
  redisReply *old = rtq_test_command(rc_, "HGETALL", tk.s, NULL);
  assert_int_equal(tw_stop(&wk, 15000), 0);
  wk.pid = -1;
  const char *outcome[] = {"s", "r", "a", "b", "e", "rs", NULL};
  /* Expired; the id is used again for other work. */
  rtq_test_cmd_int(rc_, "DEL", tk.s, NULL);
  create_as(c, id, "{\"amount\":1000}");
  paste(old, id, outcome);
  assert_int_equal(rtq_get_task(c, id, &t), RTQ_EUNVERIFIED);
  /* The same work again: the same sg, but a run older than the task. */
  rtq_test_cmd_int(rc_, "DEL", tk.s, NULL);
  create_as(c, id, "{\"amount\":1}"); /* its c: Redis time now, after the old run's b */
  char *old_sg = NULL;
  for (size_t j = 0; j + 1 < old->elements; j += 2)
    if (strcmp(old->element[j]->str, "sg") == 0) old_sg = old->element[j + 1]->str;
  assert_true(old_sg != NULL && field_is(id, "sg", old_sg));
  paste(old, id, outcome);
  assert_int_equal(rtq_get_task(c, id, &t), RTQ_EUNVERIFIED);
  /* The whole hash as it was: indistinguishable with keys alone. */
  paste(old, id, (const char *const[]){"c", NULL});
  assert_int_equal(rtq_get_task(c, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  freeReplyObject(old);
  rtq_client_free(c);
}

static void test_sign2_tampered_and_unsigned_tasks_never_run(void **state) {
  (void)state;
  rtq_client *c = client(producer_rotated, worker_keys), *unsigned_c = client(NULL, NULL);
  char victim[RTQ_TASK_ID_SIZE], bare[RTQ_TASK_ID_SIZE], good[RTQ_TASK_ID_SIZE];
  create(c, "rtq.echo", "{\"amount\":1,\"to\":\"bob\"}", victim);
  /* The victim's args rewritten in place. */
  char *evil = NULL;
  size_t evil_len = 0;
  assert_int_equal(rtq_json_to_msgpack("{\"amount\":1000000,\"to\":\"attacker\"}", &evil, &evil_len, NULL, 0), 0);
  rtq_key2 t = rtq_keys2_task(&k2, "default", victim);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HSET");
  rtq_argv_add_str(&a, t.s);
  rtq_argv_add_str(&a, "x");
  rtq_argv_add(&a, evil, evil_len);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
  free(evil);
  /* A task with the victim's signature under another id, by raw writes. */
  const char *copy = "COPYID1";
  char *sg = field(victim, "sg");
  rtq_key2 ct = rtq_keys2_task(&k2, "default", copy), q = rtq_keys2_queue(&k2, "default");
  rtq_test_cmd_int(rc_, "HSET", ct.s, "s", "pending", "n", "rtq.echo", "c", "1", "sg", sg, NULL);
  rtq_test_cmd_int(rc_, "LPUSH", q.s, copy, NULL);
  free(sg);
  create(unsigned_c, "rtq.echo", "{\"n\":3}", bare);
  create(c, "rtq.echo", "{\"n\":4}", good);
  start_worker(worker_keys, producer_rotated);
  const char *bad[] = {victim, copy, bare};
  for (int i = 0; i < 3; i++) {
    RTQ_TEST_WAIT_FOR(field_is(bad[i], "s", "failed"), 10000);
    assert_true(field_is(bad[i], "ec", "BAD_SIGNATURE"));
    char *r = field(bad[i], "r");
    assert_null(r); /* never ran: no result */
    assert_true(dead_for(bad[i]));
  }
  /* The good one beside them ran. */
  rtq_task *done = NULL;
  assert_int_equal(rtq_wait_for_task(c, good, 10000, &done), 0);
  assert_int_equal(done->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(done);
  /* The reader sees the refusal as it is (a dead letter's end carries no
   * worker signature, and is no completion). */
  rtq_task *v = NULL;
  assert_int_equal(rtq_get_task(c, victim, &v), 0);
  assert_int_equal(v->status, RTQ_STATUS_FAILED);
  assert_string_equal(v->error_code, "BAD_SIGNATURE");
  rtq_task_free(v);
  rtq_client_free(unsigned_c);
  rtq_client_free(c);
}

static void test_sign2_worker_key_cannot_create_tasks(void **state) {
  (void)state;
  start_worker(worker_keys, producer_rotated);
  rtq_client *w_as_producer = client(worker_keys, NULL);
  char id[RTQ_TASK_ID_SIZE];
  create(w_as_producer, "rtq.echo", "{}", id);
  RTQ_TEST_WAIT_FOR(field_is(id, "s", "failed"), 10000);
  assert_true(field_is(id, "ec", "BAD_SIGNATURE"));
  rtq_client_free(w_as_producer);
}

static void test_sign2_off_runs_as_before(void **state) {
  (void)state;
  start_worker(NULL, NULL);
  rtq_client *c = client(NULL, NULL);
  char id[RTQ_TASK_ID_SIZE];
  create(c, "rtq.echo", "{\"n\":5}", id);
  rtq_task *t = NULL;
  assert_int_equal(rtq_wait_for_task(c, id, 10000, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_COMPLETED);
  rtq_task_free(t);
  char *sg = field(id, "sg"), *rs = field(id, "rs");
  assert_null(sg);
  assert_null(rs);
  rtq_client_free(c);
}

static long long stat_of(const char *f) {
  char *v = rtq_test_cmd_str(rc_, "HGET", rtq_keys2_stats(&k2, "default").s, f, NULL);
  long long n = v != NULL ? atoll(v) : 0;
  free(v);
  return n;
}

/* The broker signs the tasks schedules create: they run under task keys. */
static void test_sign2_broker_signs_scheduled_tasks(void **state) {
  (void)state;
  rtq_client *c = client(NULL, NULL);
  assert_int_equal(rtq_schedule_add(c, "sec", "@every 1s", "rtq.echo", NULL, NULL), 0);
  rtq_client_free(c);
  start_worker(worker_keys, producer_rotated);
  char bin[512], cmdline[1500];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  snprintf(cmdline, sizeof cmdline, "%s --once --protocol 2 --redis '%s' --signing-key-file '%s' >/dev/null 2>&1",
           bin, rtq_test_redis_url(), producer_rotated);
  RTQ_TEST_WAIT_FOR((system(cmdline), stat_of("completed") >= 1), 10000);
  assert_int_equal(stat_of("failed"), 0);
  /* Without the key its runs are refused. */
  snprintf(cmdline, sizeof cmdline, "%s --once --protocol 2 --redis '%s' >/dev/null 2>&1", bin,
           rtq_test_redis_url());
  RTQ_TEST_WAIT_FOR((system(cmdline), stat_of("failed") >= 1), 10000);
}

/* A key file others may read is refused by the library, the CLI and the
 * worker, naming the file and never showing a key. */
static void test_sign2_loose_key_files_refused(void **state) {
  (void)state;
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.protocol = 2;
  char loose[128];
  write_key(loose, sizeof loose, "loose.keys", P1, 0644);
  o.signing_key_file = loose;
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(NULL), loose));
  assert_null(strstr(rtq_client_errstr(NULL), "00112233"));
  cli_run r;
  cli(&r, (const char *const[]){"--signing-key-file", loose, "enqueue", "x", NULL}, env);
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, loose));
  assert_null(strstr(r.err, "00112233"));
  cli_free(&r);
  /* The worker refuses to start. */
  tw_spawn_v(&wk, rtq_test_redis_url(), (const char *const[]){"--task-keys", loose, NULL});
  int st = 0;
  assert_int_equal(rtq_test_wait_exit(wk.pid, 10000, &st), 0);
  wk.pid = -1;
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 0);
  char *log = cli_slurp(wk.log);
  assert_non_null(strstr(log, loose));
  assert_null(strstr(log, "00112233"));
  free(log);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_sign2_signed_tasks_run_and_keys_rotate),
      T(test_sign2_forged_outcome_is_unverified),
      T(test_sign2_watch_reports_forged_end_at_once),
      T(test_sign2_watch_follow_reports_adopted_forged_end),
      T(test_sign2_copied_outcome_does_not_verify),
      T(test_sign2_tampered_and_unsigned_tasks_never_run),
      T(test_sign2_worker_key_cannot_create_tasks),
      T(test_sign2_off_runs_as_before),
      T(test_sign2_broker_signs_scheduled_tasks),
      T(test_sign2_loose_key_files_refused),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
