/*
 * test_protocol_fields.c - what the Lua steps store, as docs/PROTOCOL.md
 * promises it to readers in other languages: dead-letter payloads are
 * msgpack bin; finish writes the CANCELLED and TIMEOUT codes itself; a
 * retry's backoff stays within 1 h with its jitter; run_at and retry_at
 * outlive the claim, and recovery does not mistake a promoted task for one
 * still waiting in P:delayed.
 *
 * The test plays the producer and the worker through the scripts (as
 * test_broker_*.c do); the broker is the real binary, run with --once.
 */
#include <msgpack.h>

#include "test_broker_helpers.h"

#define HB "--heartbeat-ttl", "1s"

/* ---- dead letters ---------------------------------------------------- */

/* Bytes of a dead-letter record that a strict decoder checks. */
typedef struct dead_rec {
  bool payload_is_bin;
  char payload[4200];
  size_t payload_len;
  uint64_t size, at;
  char code[64], worker[64];
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
    } else {
      copy_str(v, scratch, sizeof scratch, &d->strings_not_str);
    }
  }
  msgpack_unpacked_destroy(&u);
}

static void lpush(tb *t, rtq_key k, const char *p, size_t len) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq__argv_add_key(&a, k);
  rtq_argv_add(&a, p, len);
  freeReplyObject(rtq_test_command_argv(t->c, &a));
  rtq_argv_destroy(&a);
}

/* Both writers of P:dead (deadletter.lua for an envelope that does not
 * decode, recover.lua for one without a task hash) store the payload as a
 * msgpack bin, cut at 4096 bytes, with the full size beside it. */
static void test_protocol_fields_dead_letter_payload_is_bin(void **state) {
  tb *t = *state;
  rtq_key proc = rtq_keys_processing(&t->k, "w-bad");
  /* Not UTF-8, and long enough to need a bin 16 and the 4096-byte cut. */
  static char junk[5000];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(0x80 + (i * 7) % 0x7f);
  static const char shortjunk[] = "\xff\xfe not msgpack \xc1";
  rtq_envelope e;
  rtq_envelope_init(&e);
  snprintf(e.id, sizeof e.id, "no-such-task");
  snprintf(e.name, sizeof e.name, "noop");
  snprintf(e.queue, sizeof e.queue, "qx");
  char *orphan = NULL;
  size_t orphan_len = 0;
  assert_int_equal(rtq_envelope_encode(&e, &orphan, &orphan_len, NULL, 0), 0);
  lpush(t, proc, junk, sizeof junk);
  lpush(t, proc, shortjunk, sizeof shortjunk - 1);
  lpush(t, proc, orphan, orphan_len);
  tb_age_worker(t, "w-bad", 5000);

  tb_broker_once(t, HB);

  redisReply *r = rtq_test_command(t->c, "LRANGE", rtq_keys_dead(&t->k).s, "0", "-1", NULL);
  assert_int_equal(r->elements, 3);
  int seen = 0;
  for (size_t i = 0; i < r->elements; i++) {
    dead_rec d;
    decode_dead(r->element[i], &d);
    assert_true(d.payload_is_bin);
    assert_int_equal(d.strings_not_str, 0);
    assert_true(d.at > 0);
    assert_string_equal(d.worker, "w-bad");
    const char *src = d.size == sizeof junk            ? junk
                      : d.size == sizeof shortjunk - 1 ? shortjunk
                      : d.size == orphan_len           ? orphan
                                                       : NULL;
    assert_non_null(src);
    size_t want = d.size < 4096 ? d.size : 4096;
    assert_int_equal(d.payload_len, want);
    assert_memory_equal(d.payload, src, want);
    if (src == orphan) assert_string_equal(d.code, "NO_TASK_RECORD"); /* recover.lua */
    else assert_string_equal(d.code, "DECODE_ERROR");                /* deadletter.lua */
    seen |= src == junk ? 1 : src == shortjunk ? 2 : 4;
  }
  assert_int_equal(seen, 7);
  freeReplyObject(r);
  free(orphan);
}

/* ---- finish ---------------------------------------------------------- */

/* finish.lua for one task as wid, with the optional pairs given (NULL
 * terminated name, value, ...); returns the reply entry's tag and, for a
 * retry, its run_at. */
static char *finish_with(tb *t, const char *wid, const tb_claim *cl, const char *status,
                         long long *run_at, ...) {
  const char *pairs[16];
  int n = 0;
  va_list ap;
  va_start(ap, run_at);
  for (const char *s; n < 16 && (s = va_arg(ap, const char *)) != NULL;) pairs[n++] = s;
  va_end(ap);
  assert_int_equal(n % 2, 0);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq__finish_task ft = {.id = cl->id, .env = cl->env, .env_len = cl->len,
                         .attempt = (uint64_t)cl->attempt};
  assert_int_equal(rtq_status_parse(status, &ft.status), 0);
  for (int i = 0; i < n; i += 2) rtq__finish_field_str(&ft, pairs[i], pairs[i + 1]);
  assert_int_equal(rtq__call_finish(&a, &t->k, false, wid, 86400, true, NULL, 0), 0);
  assert_int_equal(rtq__call_finish_task(&a, &ft), 0);
  redisReply *r = tb_script_run(t, &a);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  const redisReply *e = r->element[0];
  char *tag = strdup(e->element[0]->str);
  if (run_at != NULL && e->elements > 1 && e->element[1]->type == REDIS_REPLY_INTEGER)
    *run_at = e->element[1]->integer;
  freeReplyObject(r);
  return tag;
}

static void finish_expect(tb *t, const tb_claim *cl, const char *status, const char *code,
                          const char *message) {
  char *tag = code == NULL ? finish_with(t, "w-1", cl, status, NULL, NULL)
              : message == NULL
                  ? finish_with(t, "w-1", cl, status, NULL, "error_code", code, NULL)
                  : finish_with(t, "w-1", cl, status, NULL, "error_code", code, "error_message", message, NULL);
  assert_string_equal(tag, "ok");
  free(tag);
}

/* A worker that sends only the final status (as PROTOCOL.md section 6
 * lets it) still leaves a cancelled task with CANCELLED and a timed-out
 * one with TIMEOUT, and a message; a message it sends is kept, and a code
 * it sends for these outcomes gives way to theirs. */
static void test_protocol_fields_finish_writes_stop_codes(void **state) {
  tb *t = *state;
  const char *ids[5] = {"s-cancel", "s-timeout", "s-cancel-msg", "s-timeout-code", "s-failed"};
  tb_claim cl[5];
  for (int i = 0; i < 5; i++) free(tb_create(t, ids[i], NULL, &(size_t){0}));
  for (int i = 0; i < 5; i++) assert_true(tb_claim_next(t, "w-1", "default", &cl[i]));
  rtq_conn *sub = tb_subscribe(t, rtq_keys_chan_task(&t->k, "s-cancel"));

  finish_expect(t, &cl[0], "cancelled", NULL, NULL);
  finish_expect(t, &cl[1], "timeout", NULL, NULL);
  finish_expect(t, &cl[2], "cancelled", "", "stopped by the operator");
  finish_expect(t, &cl[3], "timeout", "MY_CODE", "took 3 s");
  finish_expect(t, &cl[4], "failed", "E_MINE", NULL);

  tb_assert_field(t, "s-cancel", "status", "cancelled");
  tb_assert_field(t, "s-cancel", "error_code", "CANCELLED");
  tb_assert_field(t, "s-cancel", "error_message", "cancelled while running");
  tb_assert_field(t, "s-timeout", "status", "timeout");
  tb_assert_field(t, "s-timeout", "error_code", "TIMEOUT");
  tb_assert_field(t, "s-timeout", "error_message", "exceeded its timeout");
  tb_assert_field(t, "s-cancel-msg", "error_code", "CANCELLED");
  tb_assert_field(t, "s-cancel-msg", "error_message", "stopped by the operator");
  tb_assert_field(t, "s-timeout-code", "error_code", "TIMEOUT");
  tb_assert_field(t, "s-timeout-code", "error_message", "took 3 s");
  /* Other outcomes keep the worker's own code, and get no message. */
  tb_assert_field(t, "s-failed", "error_code", "E_MINE");
  tb_assert_field(t, "s-failed", "error_message", "");
  /* The terminal event names the code too. */
  char *msg = tb_next_message(sub);
  assert_non_null(msg);
  assert_non_null(strstr(msg, "\"error_code\":\"CANCELLED\""));
  free(msg);
  rtq_conn_free(sub);
  for (int i = 0; i < 5; i++) tb_claim_free(&cl[i]);
}

/* A retry waits retry_backoff_ms * 2^(attempt-1) plus the jitter, and never
 * more than 1 h, jitter included. */
static void test_protocol_fields_retry_backoff_cap_holds_with_jitter(void **state) {
  tb *t = *state;
  tb_task_opts capped = {.queue = "qr", .max_retries = 5, .retry_backoff_ms = 3600000};
  tb_task_opts small = {.queue = "qr", .max_retries = 5, .retry_backoff_ms = 1000};
  free(tb_create(t, "r-capped", &capped, &(size_t){0}));
  free(tb_create(t, "r-small", &small, &(size_t){0}));
  tb_claim a, b;
  assert_true(tb_claim_next(t, "w-1", "qr", &a));
  assert_true(tb_claim_next(t, "w-1", "qr", &b));

  long long run_at = 0;
  uint64_t before = tb_redis_now(t);
  char *tag = finish_with(t, "w-1", &a, "failed", &run_at, "error_code", "E", "jitter", "499", NULL);
  uint64_t after = tb_redis_now(t);
  assert_string_equal(tag, "retry");
  free(tag);
  printf("capped retry: due %lld ms after the call began\n", run_at - (long long)before);
  assert_true(run_at >= (long long)before + 3600000);
  assert_true(run_at <= (long long)after + 3600000); /* not 3600499 */
  char *stored = tb_task_field(t, "r-capped", "retry_at");
  assert_non_null(stored);
  assert_int_equal(strtoll(stored, NULL, 10), run_at);
  free(stored);

  before = tb_redis_now(t);
  tag = finish_with(t, "w-1", &b, "failed", &run_at, "error_code", "E", "jitter", "499", NULL);
  after = tb_redis_now(t);
  assert_string_equal(tag, "retry");
  free(tag);
  assert_true(run_at >= (long long)before + 1499);
  assert_true(run_at <= (long long)after + 1499);
  tb_claim_free(&a);
  tb_claim_free(&b);
}

/* ---- run_at and retry_at --------------------------------------------- */

/* promote.lua for the one envelope of P:delayed (as the broker would once
 * it is due). */
static void promote_now(tb *t, const char *queue) {
  redisReply *r = rtq_test_command(t->c, "ZRANGE", rtq_keys_delayed(&t->k).s, "0", "0", NULL);
  assert_int_equal(r->elements, 1);
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(
      rtq__call_promote(&a, &t->k, false, queue, r->element[0]->str, r->element[0]->len), 0);
  freeReplyObject(r);
  r = tb_script_run(t, &a);
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
}

/* take.lua's round of one move on queue, as wid; returns its reply tag. */
static char *take_one(tb *t, const char *wid, const char *queue, tb_claim *out) {
  rtq_argv a;
  rtq_argv_init(&a);
  const int move = 0; /* one move, on the one queue */
  assert_int_equal(rtq__call_take(&a, &t->k, false, wid, 300000, &queue, 1, 1048576, 1048576,
                                  &move, 1),
                   0);
  redisReply *r = tb_script_run(t, &a);
  const redisReply *e = r->element[0];
  char *tag = strdup(e->element[0]->str);
  memset(out, 0, sizeof *out);
  if (strcmp(tag, "ok") == 0) {
    out->len = e->element[1]->len;
    out->env = malloc(out->len);
    assert_non_null(out->env);
    memcpy(out->env, e->element[1]->str, out->len);
    snprintf(out->id, sizeof out->id, "%s", e->element[2]->str);
    out->attempt = e->element[3]->integer;
  }
  freeReplyObject(r);
  return tag;
}

/* A delayed task keeps run_at through claim.lua, and a retried one keeps
 * both run_at and retry_at through take.lua: "when was this due?" has an
 * answer while the task runs and after it ended. */
static void test_protocol_fields_due_times_survive_the_claim(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "qd", .delay_ms = 60000, .max_retries = 1, .retry_backoff_ms = 50};
  free(tb_create(t, "d-1", &o, &(size_t){0}));
  char *run_at = tb_task_field(t, "d-1", "run_at");
  assert_non_null(run_at);
  promote_now(t, "qd");

  tb_claim cl;
  assert_true(tb_claim_next(t, "w-1", "qd", &cl)); /* claim.lua */
  tb_assert_field(t, "d-1", "status", "running");
  tb_assert_field(t, "d-1", "run_at", run_at);
  char *tag = finish_with(t, "w-1", &cl, "failed", NULL, "error_code", "E", NULL);
  assert_string_equal(tag, "retry");
  free(tag);
  tb_claim_free(&cl);
  char *retry_at = tb_task_field(t, "d-1", "retry_at");
  assert_non_null(retry_at);
  promote_now(t, "qd");

  tag = take_one(t, "w-1", "qd", &cl); /* take.lua */
  assert_string_equal(tag, "ok");
  free(tag);
  assert_int_equal(cl.attempt, 2);
  tb_assert_field(t, "d-1", "status", "running");
  tb_assert_field(t, "d-1", "run_at", run_at);
  tb_assert_field(t, "d-1", "retry_at", retry_at);
  tag = finish_with(t, "w-1", &cl, "completed", NULL, NULL);
  assert_string_equal(tag, "ok");
  free(tag);
  tb_assert_field(t, "d-1", "run_at", run_at);
  tb_assert_field(t, "d-1", "retry_at", retry_at);
  tb_claim_free(&cl);
  free(run_at);
  free(retry_at);
}

/* A delayed task that was promoted and taken by a worker that died before
 * it ran claim: its run_at is still set, but its envelope is no longer in
 * P:delayed, so recovery puts it back on its queue (it is not a leftover
 * copy, and dropping it would leave it pending for ever). */
static void test_protocol_fields_recovery_requeues_a_promoted_task(void **state) {
  tb *t = *state;
  tb_task_opts o = {.queue = "qp", .delay_ms = 60000};
  free(tb_create(t, "p-1", &o, &(size_t){0}));
  promote_now(t, "qp");
  tb_claim cl;
  assert_true(tb_take(t, "w-gone", "qp", &cl)); /* BLMOVE, then death */
  tb_claim_free(&cl);
  tb_age_worker(t, "w-gone", 5000);

  tb_broker_once(t, HB);

  assert_int_equal(tb_llen(t, rtq_keys_processing(&t->k, "w-gone")), 0);
  assert_int_equal(tb_llen(t, rtq_keys_queue(&t->k, "qp")), 1);
  tb_assert_field(t, "p-1", "status", "pending");
  assert_true(tb_claim_next(t, "w-2", "qp", &cl));
  assert_string_equal(cl.id, "p-1");
  tb_claim_free(&cl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_protocol_fields_dead_letter_payload_is_bin, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_finish_writes_stop_codes, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_retry_backoff_cap_holds_with_jitter, tb_setup,
                                      tb_teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_due_times_survive_the_claim, tb_setup, tb_teardown),
      cmocka_unit_test_setup_teardown(test_protocol_fields_recovery_requeues_a_promoted_task, tb_setup,
                                      tb_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
