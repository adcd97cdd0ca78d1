/*
 * test_protocol_fields.c - what protocol 2's steps store, as
 * docs/PROTOCOL.md promises it to readers in other languages:
 * dead letters are msgpack maps with the entry's first 4096 bytes as a bin
 * and its full size beside it, from both writers (deadletter, and the
 * broker's recover); finish writes the CANCELLED and TIMEOUT codes itself;
 * a retry's backoff stays within 1 h with its jitter; run_at (ra) and
 * retry_at (ry) outlive the claim; and recovery puts a promoted task that
 * was moved but never claimed back on its queue.
 *
 * The test plays the producer and the worker through the v2 call builders
 * (test_ops2_util.h); the broker is the real binary, run with --once.
 */
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "test_ops2_util.h"

static const rtq__keep2 KEEP = {.result_ttl_s = 86400, .history = true, .cap = 10000};

static rtq_client *CL;
static rtq_conn *C;
static rtq_keys2 K2;

static int setup(void **state) {
  (void)state;
  ops2_fixture(&CL, &C, &K2);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_client_free(CL);
  rtq_conn_free(C);
  return 0;
}

/* Runs the call a builder laid out; the script must accept it. */
static redisReply *run(rtq_argv *a, int built) {
  redisReply *r = ops2_run(C, a, built);
  rtq_argv_destroy(a);
  return r;
}

static uint64_t redis_now(void) {
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(C, &ms), 0);
  return ms;
}

/* A task field (malloc'd; NULL when absent). */
static char *field(const char *queue, const char *id, const char *f) {
  return rtq_test_cmd_str(C, "HGET", rtq_keys2_task(&K2, queue, id).s, f, NULL);
}

/* A heartbeat of worker wid serving queues, then its score set 5 s into
 * the past: with --heartbeat-ttl 1s the broker finds it dead. */
static void dead_worker(const char *wid, const char *queues) {
  rtq__field2 f[2] = {{"host", "test"}, {"queues", queues}};
  rtq_argv a;
  rtq_argv_init(&a);
  freeReplyObject(run(&a, rtq__call2_heartbeat(&a, &K2, false, wid, 1000, f, 2)));
  char score[32];
  snprintf(score, sizeof score, "%llu", (unsigned long long)(redis_now() - 5000));
  rtq_test_cmd_int(C, "ZADD", rtq_keys2_workers(&K2).s, score, wid, NULL);
}

/* One sweep: `rtq-broker --once --protocol 2 --heartbeat-ttl 1s`, which
 * must exit 0 within 20 s. */
static void broker_once(void) {
  char bin[512], log[600];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  snprintf(log, sizeof log, "%s/broker-once.log", rtq_test_redis_dir(rtq_test_redis_default()));
  const char *argv[] = {bin, "--redis", rtq_test_redis_url(), "--once", "--protocol", "2",
                        "--heartbeat-ttl", "1s", NULL};
  rtq_test_spawn_options o = {.path = bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&o);
  assert_true(pid > 0);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 20000, &status), 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("rtq-broker --once: status 0x%x (%s)", status, log);
}

/* ---- dead letters ---------------------------------------------------- */

/* What a strict decoder checks of a dead-letter record. */
typedef struct dead_rec {
  bool payload_is_bin;
  char payload[4200];
  size_t payload_len;
  uint64_t size, at;
  char code[64], worker[64], queue[64];
  int strings_not_str; /* code/reason/worker/queue/id values that are not str */
} dead_rec;

static void copy_str(const msgpack_object *o, char *dst, size_t cap, int *bad) {
  if (o->type != MSGPACK_OBJECT_STR) {
    (*bad)++;
    return;
  }
  size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
  memcpy(dst, o->via.str.ptr, n);
  dst[n] = '\0';
}

static bool key_is(const msgpack_object *k, const char *name) {
  return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
         memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

static void decode_dead(const redisReply *e, dead_rec *d) {
  memset(d, 0, sizeof *d);
  msgpack_unpacked u;
  msgpack_unpacked_init(&u);
  size_t off = 0;
  assert_int_equal(msgpack_unpack_next(&u, e->str, e->len, &off), MSGPACK_UNPACK_SUCCESS);
  assert_int_equal(off, e->len); /* one object, nothing after it */
  assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
  char scratch[512];
  for (uint32_t i = 0; i < u.data.via.map.size; i++) {
    const msgpack_object *k = &u.data.via.map.ptr[i].key, *v = &u.data.via.map.ptr[i].val;
    assert_int_equal(k->type, MSGPACK_OBJECT_STR);
    if (key_is(k, "payload")) {
      d->payload_is_bin = v->type == MSGPACK_OBJECT_BIN;
      if (d->payload_is_bin) {
        assert_true(v->via.bin.size <= sizeof d->payload);
        memcpy(d->payload, v->via.bin.ptr, v->via.bin.size);
        d->payload_len = v->via.bin.size;
      }
    } else if (key_is(k, "size")) {
      assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
      d->size = v->via.u64;
    } else if (key_is(k, "at")) {
      assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
      d->at = v->via.u64;
    } else if (key_is(k, "code")) {
      copy_str(v, d->code, sizeof d->code, &d->strings_not_str);
    } else if (key_is(k, "worker")) {
      copy_str(v, d->worker, sizeof d->worker, &d->strings_not_str);
    } else if (key_is(k, "queue")) {
      copy_str(v, d->queue, sizeof d->queue, &d->strings_not_str);
    } else {
      copy_str(v, scratch, sizeof scratch, &d->strings_not_str);
    }
  }
  msgpack_unpacked_destroy(&u);
}

static void lpush(rtq_key2 k, const char *p, size_t len) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  assert_int_equal(rtq__argv_add_key2(&a, k), 0);
  rtq_argv_add(&a, p, len);
  freeReplyObject(rtq_test_command_argv(C, &a));
  rtq_argv_destroy(&a);
}

/* Not UTF-8, and long enough to need a bin 16 and the 4096-byte cut. */
static char junk[5000];
static const char shortjunk[] = "\xff\xfe not an id \xc1";

/* The records of queue's dead list are maps of strings, whole numbers and
 * the payload bin (cut at 4096 bytes, size the whole), by worker; each of
 * the n payloads given is there once, with its code. */
static void check_dead(const char *queue, const char *worker, const char *const *payloads,
                       const size_t *lens, const char *const *codes, int n) {
  redisReply *r = rtq_test_command(C, "LRANGE", rtq_keys2_dead(&K2, queue).s, "0", "-1", NULL);
  assert_int_equal(r->elements, (size_t)n);
  int seen = 0;
  for (size_t i = 0; i < r->elements; i++) {
    dead_rec d;
    decode_dead(r->element[i], &d);
    assert_true(d.payload_is_bin);
    assert_int_equal(d.strings_not_str, 0);
    assert_true(d.at > 0);
    assert_string_equal(d.worker, worker);
    assert_string_equal(d.queue, queue);
    int which = -1;
    for (int j = 0; j < n; j++)
      if (d.size == lens[j]) which = j;
    if (which < 0) fail_msg("a record of %llu bytes, none such was pushed", (unsigned long long)d.size);
    size_t want = d.size < 4096 ? d.size : 4096;
    assert_int_equal(d.payload_len, want);
    assert_memory_equal(d.payload, payloads[which], want);
    assert_string_equal(d.code, codes[which]);
    seen |= 1 << which;
  }
  assert_int_equal(seen, (1 << n) - 1);
  freeReplyObject(r);
}

/* The broker's recover, for the entries of a dead worker's processing
 * list: entries that are no id (BAD_ID) and an id with no task hash
 * (NO_TASK_RECORD). */
static void test_protocol_fields_dead_letter_from_recover(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(0x80 + (i * 7) % 0x7f);
  rtq_test_cmd_int(C, "SADD", rtq_keys2_queues(&K2).s, "qx", NULL);
  rtq_key2 proc = rtq_keys2_processing(&K2, "qx", "w-bad");
  lpush(proc, junk, sizeof junk);
  lpush(proc, shortjunk, sizeof shortjunk - 1);
  lpush(proc, "no-such-task", 12);
  dead_worker("w-bad", "qx");
  broker_once();
  const char *payloads[] = {junk, shortjunk, "no-such-task"};
  const size_t lens[] = {sizeof junk, sizeof shortjunk - 1, 12};
  const char *codes[] = {"BAD_ID", "BAD_ID", "NO_TASK_RECORD"};
  check_dead("qx", "w-bad", payloads, lens, codes, 3);
  assert_int_equal(ops2_llen(C, proc), 0);
}

/* The worker's deadletter, for entries of its own processing list. */
static void test_protocol_fields_dead_letter_from_deadletter(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(0x80 + (i * 7) % 0x7f);
  rtq_key2 proc = rtq_keys2_processing(&K2, "qx", "w-1");
  const char *payloads[] = {junk, shortjunk};
  const size_t lens[] = {sizeof junk, sizeof shortjunk - 1};
  const char *codes[] = {"BAD_ID", "BAD_ID"};
  for (int i = 0; i < 2; i++) {
    lpush(proc, payloads[i], lens[i]);
    rtq_argv a;
    rtq_argv_init(&a);
    assert_int_equal(rtq__call2_deadletter(&a, &K2, false, "qx", (rtq__bytes2){payloads[i], lens[i]}, "BAD_ID",
                                           "not a valid task id", "w-1", false, &KEEP),
                     0);
    freeReplyObject(run(&a, 0));
  }
  check_dead("qx", "w-1", payloads, lens, codes, 2);
  assert_int_equal(ops2_llen(C, proc), 0);
}

/* ---- finish ---------------------------------------------------------- */

/* Creates task id of queue with the options (0: not given). */
static void create(const char *queue, const char *id, uint64_t max_retries, uint64_t backoff_ms,
                   uint64_t delay_ms) {
  rtq_test_cmd_int(C, "SADD", rtq_keys2_queues(&K2).s, queue, NULL);
  rtq__create2_task ct = {.id = id, .name = "noop", .max_retries = max_retries, .retry_backoff_ms = backoff_ms,
                          .delay_ms = delay_ms};
  rtq_argv a;
  rtq_argv_init(&a);
  freeReplyObject(run(&a, rtq__call2_create(&a, &K2, false, queue, &ct, 1)));
}

/* Takes one task of queue as wid: its id (out, 64 bytes) and attempt. */
static int64_t take_one(const char *wid, const char *queue, char out[64]) {
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = run(&a, rtq__call2_take(&a, &K2, false, queue, wid, 300000, 1, 1 << 20));
  rtq__claim2_entry e[2];
  int n = 0;
  assert_int_equal(rtq__reply2_claim(r, e, 2, &n), 0);
  assert_int_equal(n, 1);
  assert_int_equal(e[0].kind, RTQ__CLAIM2_OK);
  snprintf(out, 64, "%.*s", (int)e[0].id_len, e[0].id);
  int64_t att = e[0].attempt;
  freeReplyObject(r);
  return att;
}

/* Finishes f (of queue, as w-1); returns the reply entry. */
static rtq__finish2_entry finish(const char *queue, rtq__finish2_task f) {
  if (f.progress == 0) f.progress = -1;
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = run(&a, rtq__call2_finish(&a, &K2, false, queue, "w-1", &KEEP, NULL, 0, &f, 1));
  rtq__finish2_entry e[1];
  int n = 0;
  assert_int_equal(rtq__reply2_finish(r, e, 1, &n), 0);
  assert_int_equal(n, 1);
  freeReplyObject(r);
  e[0].status = NULL; /* borrowed from the freed reply */
  return e[0];
}

static void assert_field(const char *queue, const char *id, const char *f, const char *want) {
  char *v = field(queue, id, f);
  if (want == NULL ? v != NULL : v == NULL || strcmp(v, want) != 0)
    fail_msg("%s.%s = %s, want %s", id, f, v ? v : "(nil)", want ? want : "(nil)");
  free(v);
}

/* A worker that sends only the final status still leaves a cancelled
 * task with CANCELLED and a timed-out one with TIMEOUT, and a message; a
 * message it sends is kept, and a code it sends for these outcomes gives
 * way to theirs; the terminal event names the code too. */
static void test_protocol_fields_finish_writes_stop_codes(void **state) {
  (void)state;
  const char *ids[5] = {"s-cancel", "s-timeout", "s-cancel-msg", "s-timeout-code", "s-failed"};
  for (int i = 0; i < 5; i++) create("default", ids[i], 0, 0, 0);
  char got[5][64];
  for (int i = 0; i < 5; i++) {
    assert_int_equal(take_one("w-1", "default", got[i]), 1);
    assert_string_equal(got[i], ids[i]);
  }
  /* The queue's event channel, a shard channel. */
  rtq_conn *sub = rtq_test_conn();
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "SSUBSCRIBE");
  assert_int_equal(rtq__argv_add_key2(&a, rtq_keys2_chan_events(&K2, "default")), 0);
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_command(sub, &a, &r), 0);
  freeReplyObject(r);
  rtq_argv_destroy(&a);
  rtq__finish2_task f[5] = {
      {.id = ids[0], .attempt = 1, .status = RTQ_STATUS_CANCELLED},
      {.id = ids[1], .attempt = 1, .status = RTQ_STATUS_TIMEOUT},
      {.id = ids[2], .attempt = 1, .status = RTQ_STATUS_CANCELLED, .error_message = "stopped by the operator"},
      {.id = ids[3], .attempt = 1, .status = RTQ_STATUS_TIMEOUT, .error_code = "MY_CODE", .error_message = "took 3 s"},
      {.id = ids[4], .attempt = 1, .status = RTQ_STATUS_FAILED, .error_code = "E_MINE"},
  };
  for (int i = 0; i < 5; i++) assert_int_equal(finish("default", f[i]).kind, RTQ__FINISH2_OK);
  assert_field("default", "s-cancel", "s", "cancelled");
  assert_field("default", "s-cancel", "ec", "CANCELLED");
  assert_field("default", "s-cancel", "em", "cancelled while running");
  assert_field("default", "s-timeout", "s", "timeout");
  assert_field("default", "s-timeout", "ec", "TIMEOUT");
  assert_field("default", "s-timeout", "em", "exceeded its timeout");
  assert_field("default", "s-cancel-msg", "ec", "CANCELLED");
  assert_field("default", "s-cancel-msg", "em", "stopped by the operator");
  assert_field("default", "s-timeout-code", "ec", "TIMEOUT");
  assert_field("default", "s-timeout-code", "em", "took 3 s");
  /* Other outcomes keep the worker's own code, and get no message. */
  assert_field("default", "s-failed", "ec", "E_MINE");
  assert_field("default", "s-failed", "em", NULL);
  /* The terminal event of the first names the code. */
  r = NULL;
  assert_int_equal(rtq_conn_get_reply(sub, &r), 0);
  assert_true(r->type == REDIS_REPLY_ARRAY && r->elements == 3);
  const char *msg = r->element[2]->str;
  assert_non_null(strstr(msg, "\"s-cancel\""));
  assert_non_null(strstr(msg, "\"ec\":\"CANCELLED\""));
  freeReplyObject(r);
  rtq_conn_free(sub);
}

/* A retry waits retry_backoff_ms * 2^(attempt-1) plus the jitter, and never
 * more than 1 h, jitter included. */
static void test_protocol_fields_retry_backoff_cap_holds_with_jitter(void **state) {
  (void)state;
  create("qr", "r-capped", 5, 3600000, 0);
  create("qr", "r-small", 5, 1000, 0);
  char id[64];
  take_one("w-1", "qr", id);
  take_one("w-1", "qr", id);
  uint64_t before = redis_now();
  rtq__finish2_entry e = finish("qr", (rtq__finish2_task){.id = "r-capped", .attempt = 1,
                                                             .status = RTQ_STATUS_FAILED, .error_code = "E",
                                                             .jitter_ms = 499});
  uint64_t after = redis_now();
  assert_int_equal(e.kind, RTQ__FINISH2_RETRY);
  printf("capped retry: due %lld ms after the call began\n", (long long)(e.run_at_ms - (int64_t)before));
  assert_true(e.run_at_ms >= (int64_t)before + 3600000);
  assert_true(e.run_at_ms <= (int64_t)after + 3600000); /* not 3600499 */
  char *stored = field("qr", "r-capped", "ry");
  assert_non_null(stored);
  assert_int_equal(strtoll(stored, NULL, 10), e.run_at_ms);
  free(stored);
  before = redis_now();
  e = finish("qr", (rtq__finish2_task){.id = "r-small", .attempt = 1, .status = RTQ_STATUS_FAILED,
                                          .error_code = "E", .jitter_ms = 499});
  after = redis_now();
  assert_int_equal(e.kind, RTQ__FINISH2_RETRY);
  assert_true(e.run_at_ms >= (int64_t)before + 1499);
  assert_true(e.run_at_ms <= (int64_t)after + 1499);
}

/* ---- run_at and retry_at --------------------------------------------- */

/* Makes every id of queue's delayed set due, then promote (as the broker
 * does once they are due). */
static void promote_now(const char *queue) {
  rtq_key2 d = rtq_keys2_delayed(&K2, queue);
  redisReply *r = rtq_test_command(C, "ZRANGE", d.s, "0", "-1", NULL);
  assert_true(r->elements >= 1);
  for (size_t i = 0; i < r->elements; i++) rtq_test_cmd_int(C, "ZADD", d.s, "1", r->element[i]->str, NULL);
  freeReplyObject(r);
  rtq_argv a;
  rtq_argv_init(&a);
  r = run(&a, rtq__call2_promote(&a, &K2, false, queue, 100));
  rtq__promote2_result p;
  assert_int_equal(rtq__reply2_promote(r, &p), 0);
  assert_true(p.moved >= 1);
  freeReplyObject(r);
}

/* A delayed task keeps run_at (ra) through its claim, and a retried one
 * keeps both ra and retry_at (ry) through the next: "when was this due?"
 * has an answer while the task runs and after it ended. */
static void test_protocol_fields_due_times_survive_the_claim(void **state) {
  (void)state;
  create("qd", "d-1", 1, 50, 60000);
  char *run_at = field("qd", "d-1", "ra");
  assert_non_null(run_at);
  promote_now("qd");
  char id[64];
  assert_int_equal(take_one("w-1", "qd", id), 1);
  assert_field("qd", "d-1", "s", "running");
  assert_field("qd", "d-1", "ra", run_at);
  rtq__finish2_entry e =
      finish("qd", (rtq__finish2_task){.id = "d-1", .attempt = 1, .status = RTQ_STATUS_FAILED, .error_code = "E"});
  assert_int_equal(e.kind, RTQ__FINISH2_RETRY);
  char *retry_at = field("qd", "d-1", "ry");
  assert_non_null(retry_at);
  promote_now("qd");
  assert_int_equal(take_one("w-1", "qd", id), 2);
  assert_field("qd", "d-1", "s", "running");
  assert_field("qd", "d-1", "ra", run_at);
  assert_field("qd", "d-1", "ry", retry_at);
  e = finish("qd", (rtq__finish2_task){.id = "d-1", .attempt = 2, .status = RTQ_STATUS_COMPLETED});
  assert_int_equal(e.kind, RTQ__FINISH2_OK);
  assert_field("qd", "d-1", "ra", run_at);
  assert_field("qd", "d-1", "ry", retry_at);
  free(run_at);
  free(retry_at);
}

/* A delayed task that was promoted and moved by a worker that died before
 * it claimed it: its ra is still set, but it is no longer in the delayed
 * set, so recovery puts it back on its queue (dropping it would leave it
 * pending for ever). */
static void test_protocol_fields_recovery_requeues_a_promoted_task(void **state) {
  (void)state;
  create("qp", "p-1", 0, 0, 60000);
  promote_now("qp");
  rtq_key2 q = rtq_keys2_queue(&K2, "qp"), proc = rtq_keys2_processing(&K2, "qp", "w-gone");
  char *moved = rtq_test_cmd_str(C, "LMOVE", q.s, proc.s, "RIGHT", "LEFT", NULL); /* BLMOVE, then death */
  assert_non_null(moved);
  assert_string_equal(moved, "p-1");
  free(moved);
  dead_worker("w-gone", "qp");
  broker_once();
  assert_int_equal(ops2_llen(C, proc), 0);
  assert_int_equal(ops2_llen(C, q), 1);
  assert_field("qp", "p-1", "s", "pending");
  char id[64];
  take_one("w-2", "qp", id);
  assert_string_equal(id, "p-1");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_protocol_fields_dead_letter_from_recover, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_dead_letter_from_deadletter, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_finish_writes_stop_codes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_retry_backoff_cap_holds_with_jitter, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_due_times_survive_the_claim, setup, teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_recovery_requeues_a_promoted_task, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
