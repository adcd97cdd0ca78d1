/*
 * test_cli_dead.c - `rtq dead list` and `rtq dead show`: dead letters that
 * a real rtq-worker wrote (an envelope over --max-payload, one over the
 * 4096 bytes a record keeps, bytes that are no envelope at all) decoded to
 * JSON with reason and code, the payload as the task when it decodes and
 * as an escaped/hex preview when it does not; records written by hand with
 * the payload as msgpack str and as bin (both decode) and a record that is
 * not msgpack; paging with --limit/--offset and its bounds.
 */
#include <msgpack.h>

#include "envelope.h"
#include "test_cli_env.h"
#include "test_cli_dead.h"

static void test_cli_dead_from_a_real_worker(void **state) {
  (void)state;
  enqueue_blob("small-big", 700);  /* over 512, whole in the record */
  enqueue_blob("huge", 5000);      /* over 4096: the record keeps a part */
  rtq_key q = rtq_keys_queue(&keys, "default");
  static const char junk[] = "\x01\xffhello\\x";
  redisReply *rr = rtq_test_command(rc_, "LPUSH", q.s, junk, NULL);
  freeReplyObject(rr);
  pid_t w = spawn_bin("worker/rtq-worker",
                      (const char *const[]){"--demo-handlers", "--max-payload", "512",
                                            "--log-level", "ERROR", NULL},
                      "/dev/null");
  RTQ_TEST_WAIT_FOR(dead_len() == 3, 10000);
  int status = 0;
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 30000, &status), 0);

  cli_run r;
  RUN(&r, "dead", "list", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "total")), 3);
  assert_int_equal(json_array_size(json_object_get(v, "letters")), 3);

  /* Decoded: the envelope is whole. */
  json_t *l = NULL;
  json_t *arr = json_object_get(v, "letters");
  for (size_t i = 0; i < 3; i++) {
    json_t *x = json_array_get(arr, i);
    assert_int_equal(json_integer_value(json_object_get(x, "index")), (json_int_t)i);
    if (json_is_string(json_object_get(x, "id")) &&
        strcmp(json_string_value(json_object_get(x, "id")), "small-big") == 0)
      l = x;
  }
  assert_non_null(l);
  assert_non_null(strstr(json_string_value(json_object_get(l, "reason")), "limit is 512"));
  assert_true(json_string_length(json_object_get(l, "code")) > 0);
  json_t *t = json_object_get(l, "task");
  assert_string_equal(json_string_value(json_object_get(t, "name")), "rtq.echo");
  assert_string_equal(json_string_value(json_object_get(t, "id")), "small-big");
  assert_string_equal(json_string_value(json_object_get(t, "queue")), "default");
  assert_int_equal(json_string_length(json_object_get(json_object_get(t, "args"), "blob")), 700);
  assert_false(json_is_true(json_object_get(l, "truncated")));

  /* Kept in part: not decoded, said why. */
  for (size_t i = 0; i < 3; i++) {
    json_t *x = json_array_get(arr, i);
    if (json_is_string(json_object_get(x, "id")) &&
        strcmp(json_string_value(json_object_get(x, "id")), "huge") == 0)
      l = x;
  }
  assert_string_equal(json_string_value(json_object_get(l, "id")), "huge");
  assert_true(json_is_true(json_object_get(l, "truncated")));
  assert_int_equal(json_integer_value(json_object_get(l, "payload_bytes")), 4096);
  assert_true(json_integer_value(json_object_get(l, "size")) > 5000);
  assert_true(json_is_null(json_object_get(l, "task")));
  assert_non_null(strstr(json_string_value(json_object_get(l, "payload_error")), "first 4096"));

  /* No envelope at all: escaped preview and hex. */
  l = json_array_get(arr, 0); /* the newest: the worker took it last */
  for (size_t i = 0; i < 3; i++) {
    json_t *x = json_array_get(arr, i);
    if (json_is_null(json_object_get(x, "id"))) l = x;
  }
  assert_true(json_is_null(json_object_get(l, "id")));
  assert_true(json_is_null(json_object_get(l, "task")));
  assert_string_equal(json_string_value(json_object_get(l, "payload_preview")),
                      "\\x01\\xffhello\\\\x");
  assert_string_equal(json_string_value(json_object_get(l, "payload_hex")), "01ff68656c6c6f5c78");
  json_decref(v);
  cli_free(&r);

  /* Human: a table with the task's name and a footer. */
  RUN(&r, "dead", "list");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "INDEX"));
  assert_non_null(strstr(r.out, "rtq.echo"));
  assert_non_null(strstr(r.out, "<undecodable>"));
  assert_non_null(strstr(r.out, "(0 to 2 of 3;"));
  cli_free(&r);

  /* Paging. */
  RUN(&r, "dead", "list", "--limit", "1", "--offset", "2", "--json");
  v = cli_json(&r);
  assert_int_equal(json_array_size(json_object_get(v, "letters")), 1);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(v, "letters"), 0), "index")), 2);
  json_decref(v);
  cli_free(&r);
  RUN(&r, "dead", "list", "--offset", "3", "--json");
  v = cli_json(&r);
  assert_int_equal(json_array_size(json_object_get(v, "letters")), 0);
  json_decref(v);
  cli_free(&r);

  /* show: one record, indented for a person, compact with --json. */
  RUN(&r, "dead", "show", "1");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "\n  \"index\": 1,\n"));
  cli_free(&r);
  RUN(&r, "dead", "show", "0", "--json");
  v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "index")), 0);
  json_decref(v);
  cli_free(&r);
  /* Global options before the subcommand. */
  RUN(&r, "dead", "--json", "--namespace", "rtq", "show", "0");
  assert_int_equal(r.code, 0);
  v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "index")), 0);
  json_decref(v);
  cli_free(&r);
}

/* Packs a dead-letter record; payload as bin when bin, else str. */
static void push_record(const char *payload, size_t n, bool bin, const char *code) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 8);
#define KEY(k) (msgpack_pack_str(&pk, strlen(k)), msgpack_pack_str_body(&pk, k, strlen(k)))
#define STR(s) KEY(s)
  KEY("at");
  msgpack_pack_uint64(&pk, 1796607826356ull);
  KEY("code");
  STR(code);
  KEY("reason");
  STR("written by the test");
  KEY("worker");
  STR("w-test");
  KEY("queue");
  STR("default");
  KEY("id");
  STR("hand-1");
  KEY("size");
  msgpack_pack_uint64(&pk, n);
  KEY("payload");
  if (bin) {
    msgpack_pack_bin(&pk, n);
    msgpack_pack_bin_body(&pk, payload, n);
  } else {
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, payload, n);
  }
#undef KEY
#undef STR
  rtq_key d = rtq_keys_dead(&keys);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq_argv_add(&a, d.s, d.len);
  rtq_argv_add(&a, sb.data, sb.size);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
  msgpack_sbuffer_destroy(&sb);
}

static void test_cli_dead_str_and_bin_payloads(void **state) {
  (void)state;
  rtq_envelope e;
  rtq_envelope_init(&e);
  strcpy(e.id, "hand-1");
  strcpy(e.name, "resize");
  strcpy(e.queue, "default");
  char *env_bytes = NULL;
  size_t env_len = 0;
  assert_int_equal(rtq_envelope_encode(&e, &env_bytes, &env_len, NULL, 0), 0);
  push_record(env_bytes, env_len, false, "AS_STR");
  push_record(env_bytes, env_len, true, "AS_BIN");
  free(env_bytes);
  rtq_key d = rtq_keys_dead(&keys);
  freeReplyObject(rtq_test_command(rc_, "LPUSH", d.s, "not msgpack at all \xc1", NULL));

  cli_run r;
  for (int i = 1; i <= 2; i++) {
    char idx[4];
    snprintf(idx, sizeof idx, "%d", i);
    RUN(&r, "dead", "show", idx, "--json");
    assert_int_equal(r.code, 0);
    json_t *v = cli_json(&r);
    assert_string_equal(json_string_value(json_object_get(v, "code")), i == 1 ? "AS_BIN" : "AS_STR");
    assert_string_equal(json_string_value(json_object_get(v, "reason")), "written by the test");
    json_t *t = json_object_get(v, "task");
    assert_string_equal(json_string_value(json_object_get(t, "name")), "resize");
    assert_int_equal(json_object_size(json_object_get(t, "args")), 0);
    json_decref(v);
    cli_free(&r);
  }
  /* A record that does not decode is shown, not skipped. */
  RUN(&r, "dead", "show", "0", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_non_null(json_string_value(json_object_get(v, "record_error")));
  assert_non_null(strstr(json_string_value(json_object_get(v, "payload_preview")), "not msgpack"));
  json_decref(v);
  cli_free(&r);
}

static void test_cli_dead_bounds_and_errors(void **state) {
  (void)state;
  for (int i = 0; i < 25; i++) push_record("x", 1, true, "C");
  cli_run r;
  RUN(&r, "dead", "list", "--json");
  json_t *v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(v, "total")), 25);
  assert_int_equal(json_array_size(json_object_get(v, "letters")), 20); /* the default */
  json_decref(v);
  cli_free(&r);

  RUN(&r, "dead", "show", "25");
  cli_assert_error(&r, 3, "no dead letter at index 25");
  cli_free(&r);
  RUN(&r, "dead", "show", "25", "--json");
  assert_int_equal(r.code, 3);
  assert_non_null(strstr(r.err, "\"RTQ_ENOTFOUND\""));
  cli_free(&r);
  static const struct {
    const char *args[6];
    const char *needle;
  } bad[] = {
      {{"dead", NULL}, "list, show, requeue or purge"},
      {{"dead", "bury", NULL}, "list, show, requeue or purge"},
      {{"dead", "--frob", "list", NULL}, "unknown option"},
      {{"dead", "show", NULL}, "INDEX"},
      {{"dead", "show", "-1", NULL}, "\"-1\""},
      {{"dead", "show", "x", NULL}, "invalid INDEX \"x\""},
      {{"dead", "show", "1", "2", NULL}, "unexpected"},
      {{"dead", "list", "--limit", "1001", NULL}, "--limit"},
      {{"dead", "list", "--limit", "0", NULL}, "--limit"},
      {{"dead", "list", "--offset", "-1", NULL}, "--offset"},
      {{"dead", "list", "extra", NULL}, "unexpected"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    cli(&r, bad[i].args, env);
    cli_assert_error(&r, 2, bad[i].needle);
    cli_free(&r);
  }
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_dead_from_a_real_worker),
      T(test_cli_dead_str_and_bin_payloads),
      T(test_cli_dead_bounds_and_errors),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
