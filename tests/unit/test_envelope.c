/* test_envelope.c - envelope encode/decode (envelope.c), including the
 * hostile-input limits and the "no large allocation" guarantee. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "envelope.h"

#include "alloc_probe.h"

/* ---- building envelopes by hand --------------------------------------- */

/* A field to write: kind 'u' uint, 'i' negative int, 's' str, 'r' raw
 * msgpack bytes, 'n' nil. */
typedef struct field {
  const char *key;
  char kind;
  uint64_t u;
  const char *s;
  size_t slen;
} field;

#define ARGS_RAW "\x81\xa2" "to\xa5" "a@b.c" /* {"to": "a@b.c"} */

static const field base_fields[] = {
    {"v", 'u', 1, NULL, 0},
    {"id", 's', 0, "01JDQ3ZK5V8X4M2T9QH7R6W1YB", 0},
    {"name", 's', 0, "send_email", 0},
    {"queue", 's', 0, "default", 0},
    {"args", 'r', 0, ARGS_RAW, sizeof ARGS_RAW - 1},
    {"created_at", 'u', 1700000000000ull, NULL, 0},
    {"timeout", 'u', 30000, NULL, 0},
    {"max_retries", 'u', 3, NULL, 0},
    {"attempt", 'u', 2, NULL, 0},
    {"result_ttl", 'u', 600, NULL, 0},
};
#define NBASE (sizeof base_fields / sizeof base_fields[0])

static void pack_field(msgpack_packer *pk, msgpack_sbuffer *sb, const field *f) {
  msgpack_pack_str(pk, strlen(f->key));
  msgpack_pack_str_body(pk, f->key, strlen(f->key));
  size_t n = f->s != NULL && f->slen == 0 ? strlen(f->s) : f->slen;
  switch (f->kind) {
  case 'u': msgpack_pack_uint64(pk, f->u); break;
  case 'i': msgpack_pack_int64(pk, -(int64_t)f->u); break;
  case 's':
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, f->s, n);
    break;
  case 'r': msgpack_sbuffer_write(sb, f->s, n); break;
  default: msgpack_pack_nil(pk); break;
  }
}

/* The base envelope without the field named drop, with repl replacing the
 * field of the same key (or appended when base has none). Either may be
 * NULL. Returns malloc'd bytes. */
static char *build(const char *drop, const field *repl, size_t *len) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  const field *out[NBASE + 1];
  size_t n = 0;
  bool replaced = false;
  for (size_t i = 0; i < NBASE; i++) {
    if (drop != NULL && strcmp(base_fields[i].key, drop) == 0) continue;
    if (repl != NULL && strcmp(base_fields[i].key, repl->key) == 0) {
      out[n++] = repl;
      replaced = true;
    } else {
      out[n++] = &base_fields[i];
    }
  }
  if (repl != NULL && !replaced) out[n++] = repl;
  msgpack_pack_map(&pk, n);
  for (size_t i = 0; i < n; i++) pack_field(&pk, &sb, out[i]);
  *len = sb.size;
  return msgpack_sbuffer_release(&sb);
}

static int decode(const char *buf, size_t len, rtq_envelope *e, char *err, size_t cap) {
  rtq_envelope_init(e);
  return rtq_envelope_decode(buf, len, 0, e, err, cap);
}

static void fill(rtq_envelope *e) {
  rtq_envelope_init(e);
  strcpy(e->id, "01JDQ3ZK5V8X4M2T9QH7R6W1YB");
  strcpy(e->name, "send_email");
  strcpy(e->queue, "default");
  e->args = malloc(sizeof ARGS_RAW - 1);
  assert_non_null(e->args);
  memcpy(e->args, ARGS_RAW, sizeof ARGS_RAW - 1);
  e->args_len = sizeof ARGS_RAW - 1;
  e->created_at = 1700000000000ull;
  e->timeout_ms = 30000;
  e->max_retries = 3;
  e->attempt = 2;
  e->result_ttl_s = 600;
}

/* ---- encode --------------------------------------------------------------- */

static void test_envelope_roundtrip(void **state) {
  (void)state;
  rtq_envelope in, out;
  char *buf;
  size_t len;
  char err[128];
  fill(&in);
  in.max_retries = UINT32_MAX;
  in.timeout_ms = UINT64_MAX;
  assert_int_equal(rtq_envelope_encode(&in, &buf, &len, err, sizeof err), 0);
  assert_int_equal(decode(buf, len, &out, err, sizeof err), 0);
  assert_string_equal(err, "");
  assert_int_equal(out.version, RTQ_ENVELOPE_VERSION);
  assert_string_equal(out.id, in.id);
  assert_string_equal(out.name, in.name);
  assert_string_equal(out.queue, in.queue);
  assert_int_equal(out.args_len, in.args_len);
  assert_memory_equal(out.args, in.args, in.args_len);
  assert_true(out.created_at == in.created_at);
  assert_true(out.timeout_ms == UINT64_MAX);
  assert_int_equal(out.max_retries, UINT32_MAX);
  assert_int_equal(out.attempt, 2);
  assert_true(out.result_ttl_s == 600);
  free(buf);
  rtq_envelope_destroy(&in);
  rtq_envelope_destroy(&out);
  assert_null(out.args);
}

/* peek_id reads the id from the first bytes of what encode writes, for
 * ids written as fixstr (up to 31 bytes) and as str8, and nothing else. */
static void test_envelope_peek_id(void **state) {
  (void)state;
  rtq_envelope in;
  char *buf, id[129], err[128];
  size_t len;
  const char *ids[] = {"a", "01JDQ3ZK5V8X4M2T9QH7R6W1YB", "id-with:all.the_chars-0123456789-abcdefghij"};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    fill(&in);
    snprintf(in.id, sizeof in.id, "%s", ids[i]);
    assert_int_equal(rtq_envelope_encode(&in, &buf, &len, err, sizeof err), 0);
    assert_int_equal(rtq_envelope_peek_id(buf, len, id), 0);
    assert_string_equal(id, ids[i]);
    /* Only the leading bytes matter: a cut tail still names the task. */
    assert_int_equal(rtq_envelope_peek_id(buf, 8 + strlen(ids[i]) + (strlen(ids[i]) > 31), id), 0);
    assert_string_equal(id, ids[i]);
    assert_int_equal(rtq_envelope_peek_id(buf, 7 + strlen(ids[i]), id), RTQ_EDECODE);
    assert_string_equal(id, "");
    free(buf);
    rtq_envelope_destroy(&in);
  }
  /* Other layouts, and ids that are not valid names. */
  const char *bad[] = {"garbage-garbage", "\x8a\xa1v\x01\xa2id\xa5" "ab cd...",
                       "\x8a\xa2id\xa5" "abcde\xa1v\x01", "\x8a\xa1v\x01\xa2id\xa0......",
                       "\x8a\xa1v\xcc\x01\xa2id\xa3" "abc"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(rtq_envelope_peek_id(bad[i], strlen(bad[i]), id), RTQ_EDECODE);
  assert_int_equal(rtq_envelope_peek_id(NULL, 0, id), RTQ_EDECODE);
  /* A short id in a str8 is still msgpack for that string. */
  assert_int_equal(rtq_envelope_peek_id("\x8a\xa1v\x01\xa2id\xd9\x03" "abc", 12, id), 0);
  assert_string_equal(id, "abc");
}

/* The wire format is pinned: another implementation, or LREM of bytes
 * written by an older worker, depends on it. */
static void test_envelope_encode_golden_bytes(void **state) {
  (void)state;
  static const char golden[] =
      "\x8a"
      "\xa1v\x01"
      "\xa2id\xa2t1"
      "\xa4name\xa1n"
      "\xa5queue\xa1q"
      "\xa4" "args\x80"
      "\xaa" "created_at\xcd\x03\xe8"
      "\xa7timeout\x00"
      "\xab" "max_retries\x00"
      "\xa7" "attempt\x01"
      "\xaa" "result_ttl\x00";
  rtq_envelope e;
  rtq_envelope_init(&e);
  strcpy(e.id, "t1");
  strcpy(e.name, "n");
  strcpy(e.queue, "q");
  e.created_at = 1000;
  e.attempt = 1;
  e.version = 77; /* ignored: the encoder writes its own version */
  char *buf;
  size_t len;
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, NULL, 0), 0);
  assert_int_equal(len, sizeof golden - 1);
  assert_memory_equal(buf, golden, len);
  free(buf);
}

static void test_envelope_encode_deterministic(void **state) {
  (void)state;
  rtq_envelope e;
  char *a, *b;
  size_t alen, blen;
  fill(&e);
  assert_int_equal(rtq_envelope_encode(&e, &a, &alen, NULL, 0), 0);
  assert_int_equal(rtq_envelope_encode(&e, &b, &blen, NULL, 0), 0);
  assert_int_equal(alen, blen);
  assert_memory_equal(a, b, alen);
  /* decode -> encode gives the same bytes back, which is what lets a
   * worker LREM the envelope it decoded. */
  rtq_envelope d;
  char *c;
  size_t clen;
  assert_int_equal(decode(a, alen, &d, NULL, 0), 0);
  assert_int_equal(rtq_envelope_encode(&d, &c, &clen, NULL, 0), 0);
  assert_int_equal(clen, alen);
  assert_memory_equal(c, a, alen);
  free(a);
  free(b);
  free(c);
  rtq_envelope_destroy(&e);
  rtq_envelope_destroy(&d);
}

static void test_envelope_encode_null_args_is_empty_map(void **state) {
  (void)state;
  rtq_envelope e, d;
  char *buf;
  size_t len;
  fill(&e);
  free(e.args);
  e.args = NULL;
  e.args_len = 0;
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, NULL, 0), 0);
  assert_int_equal(decode(buf, len, &d, NULL, 0), 0);
  assert_int_equal(d.args_len, 1);
  assert_int_equal((unsigned char)d.args[0], 0x80);
  free(buf);
  rtq_envelope_destroy(&d);
}

static void test_envelope_encode_rejects_bad_names(void **state) {
  (void)state;
  rtq_envelope e;
  char *buf = (char *)1;
  size_t len = 1;
  char err[128];
  fill(&e);
  strcpy(e.id, "has space");
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "\"id\""));
  assert_null(buf);
  assert_int_equal(len, 0);
  strcpy(e.id, "ok");
  e.name[0] = '\0';
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "\"name\""));
  strcpy(e.name, "ok");
  memset(e.queue, 'q', sizeof e.queue); /* no NUL anywhere */
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "\"queue\""));
  assert_int_equal(rtq_envelope_encode(NULL, &buf, &len, NULL, 0), RTQ_EINVAL);
  rtq_envelope_destroy(&e);
}

static void set_args(rtq_envelope *e, const char *bytes, size_t len) {
  free(e->args);
  e->args = malloc(len);
  assert_non_null(e->args);
  memcpy(e->args, bytes, len);
  e->args_len = len;
}

/* "{"a": [[...[nil]...]]}": a map plus `arrays` nested arrays. */
static char *deep_args(size_t arrays, size_t *len) {
  char *b = malloc(arrays + 4);
  assert_non_null(b);
  memcpy(b, "\x81\xa1" "a", 3);
  memset(b + 3, 0x91, arrays);
  b[3 + arrays] = '\xc0';
  *len = arrays + 4;
  return b;
}

static void test_envelope_encode_rejects_bad_args(void **state) {
  (void)state;
  rtq_envelope e;
  char *buf;
  size_t len;
  char err[160];
  fill(&e);
  set_args(&e, "\x91\x01", 2); /* an array */
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "\"args\""));
  set_args(&e, "\x81\xa1" "a\x01\x01", 5); /* trailing byte */
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), RTQ_EINVAL);
  set_args(&e, "\x82\xa1" "a\x01", 4); /* truncated */
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), RTQ_EINVAL);
  set_args(&e, "\xdf\xff\xff\xff\xff", 5);
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), RTQ_EINVAL);

  /* The envelope map is level 1, so args may nest RTQ_MAX_DEPTH - 1. */
  size_t alen;
  char *deep = deep_args(RTQ_MAX_DEPTH - 1, &alen); /* map + 31 arrays = 32 */
  set_args(&e, deep, alen);
  free(deep);
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), RTQ_EDEPTH);
  assert_non_null(strstr(err, "\"args\""));
  deep = deep_args(RTQ_MAX_DEPTH - 2, &alen); /* 31 levels */
  set_args(&e, deep, alen);
  free(deep);
  assert_int_equal(rtq_envelope_encode(&e, &buf, &len, err, sizeof err), 0);
  rtq_envelope d;
  assert_int_equal(decode(buf, len, &d, err, sizeof err), 0);
  assert_int_equal(d.args_len, alen);
  free(buf);
  rtq_envelope_destroy(&d);
  rtq_envelope_destroy(&e);
}

/* ---- decode: fields ------------------------------------------------------- */

static void test_envelope_decode_missing_required_fields(void **state) {
  (void)state;
  static const char *const required[] = {"v", "id", "name", "queue", "args"};
  for (size_t i = 0; i < 5; i++) {
    size_t len;
    char *buf = build(required[i], NULL, &len);
    rtq_envelope e;
    char err[128], want[32];
    assert_int_equal(decode(buf, len, &e, err, sizeof err), RTQ_EDECODE);
    snprintf(want, sizeof want, "\"%s\" is missing", required[i]);
    assert_non_null(strstr(err, want));
    assert_null(e.args);
    assert_string_equal(e.name, "");
    free(buf);
  }
}

static void test_envelope_decode_wrongly_typed_fields(void **state) {
  (void)state;
  static const field bad[] = {
      {"v", 's', 0, "1", 0},         {"v", 'i', 1, NULL, 0},
      {"id", 'u', 7, NULL, 0},       {"name", 'n', 0, NULL, 0},
      {"queue", 'r', 0, "\x90", 1},  {"args", 'r', 0, "\x91\x01", 2},
      {"args", 's', 0, "{}", 0},     {"timeout", 's', 0, "10", 0},
      {"attempt", 'i', 1, NULL, 0},  {"created_at", 'r', 0, "\xcb\x3f\xf0\0\0\0\0\0\0", 9},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len;
    char *buf = build(NULL, &bad[i], &len);
    rtq_envelope e;
    char err[128], want[32];
    assert_int_equal(decode(buf, len, &e, err, sizeof err), RTQ_EDECODE);
    snprintf(want, sizeof want, "\"%s\"", bad[i].key);
    assert_non_null(strstr(err, want));
    assert_null(e.args);
    free(buf);
  }
}

static void test_envelope_decode_invalid_names(void **state) {
  (void)state;
  char long_name[130];
  memset(long_name, 'a', 129);
  long_name[129] = '\0';
  const field bad[] = {
      {"id", 's', 0, "a b", 0},      {"id", 's', 0, "", 0},
      {"name", 's', 0, "x\0y", 3},   {"queue", 's', 0, long_name, 0},
      {"queue", 's', 0, "q\n", 0},   {"name", 's', 0, "caf\xc3\xa9", 0},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len;
    char *buf = build(NULL, &bad[i], &len);
    rtq_envelope e;
    char err[128];
    assert_int_equal(decode(buf, len, &e, err, sizeof err), RTQ_EDECODE);
    assert_non_null(strstr(err, "not a valid name"));
    assert_non_null(strstr(err, bad[i].key));
    free(buf);
  }
  /* 128 characters is the longest valid name. */
  long_name[128] = '\0';
  field ok = {"queue", 's', 0, long_name, 0};
  size_t len;
  char *buf = build(NULL, &ok, &len);
  rtq_envelope e;
  assert_int_equal(decode(buf, len, &e, NULL, 0), 0);
  assert_string_equal(e.queue, long_name);
  rtq_envelope_destroy(&e);
  free(buf);
}

static void test_envelope_decode_keeps_valid_id_on_error(void **state) {
  (void)state;
  size_t len;
  char *buf = build("name", NULL, &len);
  rtq_envelope e;
  assert_int_equal(decode(buf, len, &e, NULL, 0), RTQ_EDECODE);
  assert_string_equal(e.id, "01JDQ3ZK5V8X4M2T9QH7R6W1YB");
  assert_string_equal(e.queue, "");
  assert_null(e.args);
  assert_int_equal(e.attempt, 0);
  free(buf);
  /* An invalid id is not copied. */
  field bad_id = {"id", 's', 0, "bad id", 0};
  buf = build("name", &bad_id, &len);
  assert_int_equal(decode(buf, len, &e, NULL, 0), RTQ_EDECODE);
  assert_string_equal(e.id, "");
  free(buf);
}

static void test_envelope_decode_version(void **state) {
  (void)state;
  field v2 = {"v", 'u', RTQ_ENVELOPE_VERSION + 1, NULL, 0};
  size_t len;
  char *buf = build("name", &v2, &len); /* version wins over later errors */
  rtq_envelope e;
  char err[128];
  assert_int_equal(decode(buf, len, &e, err, sizeof err), RTQ_EVERSION);
  assert_non_null(strstr(err, "version 2"));
  assert_string_equal(e.id, "01JDQ3ZK5V8X4M2T9QH7R6W1YB");
  assert_null(e.args);
  free(buf);
  field v0 = {"v", 'u', 0, NULL, 0};
  buf = build(NULL, &v0, &len);
  assert_int_equal(decode(buf, len, &e, err, sizeof err), RTQ_EVERSION);
  free(buf);
  field vhuge = {"v", 'u', UINT64_MAX, NULL, 0};
  buf = build(NULL, &vhuge, &len);
  assert_int_equal(decode(buf, len, &e, err, sizeof err), RTQ_EVERSION);
  free(buf);
}

static void test_envelope_decode_optional_fields_default_to_zero(void **state) {
  (void)state;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 5);
  for (size_t i = 0; i < 5; i++) pack_field(&pk, &sb, &base_fields[i]);
  rtq_envelope e;
  e.created_at = 99; /* decode must not trust what e held */
  rtq_envelope_init(&e);
  assert_int_equal(rtq_envelope_decode(sb.data, sb.size, 0, &e, NULL, 0), 0);
  assert_true(e.created_at == 0 && e.timeout_ms == 0 && e.result_ttl_s == 0);
  assert_int_equal(e.max_retries, 0);
  assert_int_equal(e.attempt, 0);
  rtq_envelope_destroy(&e);
  msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_decode_ignores_unknown_keys(void **state) {
  (void)state;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, NBASE + 3);
  for (size_t i = 0; i < NBASE; i++) pack_field(&pk, &sb, &base_fields[i]);
  msgpack_pack_str(&pk, 8);
  msgpack_pack_str_body(&pk, "priority", 8);
  msgpack_pack_array(&pk, 1);
  msgpack_pack_int(&pk, -1);
  msgpack_pack_int(&pk, 42); /* a non-string key */
  msgpack_pack_nil(&pk);
  msgpack_pack_bin(&pk, 1);
  msgpack_pack_bin_body(&pk, "v", 1); /* bin "v" is not the field "v" */
  msgpack_pack_uint64(&pk, 999);
  rtq_envelope e;
  rtq_envelope_init(&e);
  assert_int_equal(rtq_envelope_decode(sb.data, sb.size, 0, &e, NULL, 0), 0);
  assert_int_equal(e.version, 1);
  assert_string_equal(e.name, "send_email");
  rtq_envelope_destroy(&e);
  msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_decode_rejects_duplicate_field(void **state) {
  (void)state;
  field dup = {"queue", 's', 0, "other", 0};
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, NBASE + 1);
  for (size_t i = 0; i < NBASE; i++) pack_field(&pk, &sb, &base_fields[i]);
  pack_field(&pk, &sb, &dup);
  rtq_envelope e;
  char err[128];
  assert_int_equal(decode(sb.data, sb.size, &e, err, sizeof err), RTQ_EDECODE);
  assert_non_null(strstr(err, "\"queue\" appears twice"));
  msgpack_sbuffer_destroy(&sb);
}

static void test_envelope_decode_range_of_uint32_fields(void **state) {
  (void)state;
  field big = {"attempt", 'u', (uint64_t)UINT32_MAX + 1, NULL, 0};
  size_t len;
  char *buf = build(NULL, &big, &len);
  rtq_envelope e;
  char err[128];
  assert_int_equal(decode(buf, len, &e, err, sizeof err), RTQ_EDECODE);
  assert_non_null(strstr(err, "\"attempt\" is out of range"));
  free(buf);
}

static void test_envelope_decode_rejects_non_map(void **state) {
  (void)state;
  rtq_envelope e;
  char err[128];
  assert_int_equal(decode("\x91\x80", 2, &e, err, sizeof err), RTQ_EDECODE);
  assert_non_null(strstr(err, "not a msgpack map"));
  assert_int_equal(decode("\xa1x", 2, &e, err, sizeof err), RTQ_EDECODE);
  assert_int_equal(decode("", 0, &e, err, sizeof err), RTQ_EDECODE);
  assert_int_equal(decode(NULL, 0, &e, err, sizeof err), RTQ_EDECODE);
  assert_int_equal(rtq_envelope_decode("\x80", 1, 0, NULL, err, sizeof err), RTQ_EINVAL);
}

static void test_envelope_decode_keeps_ext_in_args(void **state) {
  (void)state;
  field args = {"args", 'r', 0, "\x81\xa1t\xd6\xff\x00\x00\x00\x01", 9};
  size_t len;
  char *buf = build(NULL, &args, &len);
  rtq_envelope e;
  assert_int_equal(decode(buf, len, &e, NULL, 0), 0);
  assert_int_equal(e.args_len, 9);
  assert_memory_equal(e.args, args.s, 9);
  rtq_envelope_destroy(&e);
  free(buf);
}

/* A decode into an envelope that still owns args frees them first. Leaks
 * show under valgrind / LSan. */
static void test_envelope_decode_reuses_envelope(void **state) {
  (void)state;
  size_t len;
  char *buf = build(NULL, NULL, &len);
  rtq_envelope e;
  rtq_envelope_init(&e);
  for (int i = 0; i < 3; i++) assert_int_equal(rtq_envelope_decode(buf, len, 0, &e, NULL, 0), 0);
  assert_int_equal(rtq_envelope_decode("\xc1", 1, 0, &e, NULL, 0), RTQ_EDECODE);
  assert_null(e.args);
  rtq_envelope_destroy(&e);
  rtq_envelope_destroy(&e);
  rtq_envelope_destroy(NULL);
  rtq_envelope_init(NULL);
  free(buf);
}

/* ---- decode: hostile input --------------------------------------------- */

static void expect_rejected(const char *buf, size_t len, int want) {
  rtq_envelope e;
  char err[160];
  rtq_envelope_init(&e);
  probe_reset();
  int rc = rtq_envelope_decode(buf, len, 0, &e, err, sizeof err);
  size_t requested = probe_total;
  assert_int_equal(rc, want);
  /* Rejected before msgpack-c saw the bytes: not one allocation. */
  probe_total = requested;
  assert_alloc_at_most(0);
  assert_true(strlen(err) > 0);
  assert_null(strchr(err, '\n'));
  assert_null(e.args);
}

static void test_envelope_decode_hostile_lengths_allocate_nothing(void **state) {
  (void)state;
  expect_rejected("\xdd\xff\x00\x00\x00", 5, RTQ_EDECODE);       /* array32, 4G elements */
  expect_rejected("\xdf\xff\xff\xff\xff", 5, RTQ_EDECODE);       /* map32 */
  expect_rejected("\xdb\xff\xff\xff\xff" "ab", 7, RTQ_EDECODE);  /* str32 */
  expect_rejected("\xc6\xff\xff\xff\xff" "ab", 7, RTQ_EDECODE);  /* bin32 */
  expect_rejected("\xc9\xff\xff\xff\xff\x01", 6, RTQ_EDECODE);   /* ext32 */
  /* The same inside an otherwise plausible envelope. */
  expect_rejected("\x82\xa1v\x01\xa4" "args\xdf\x10\x00\x00\x00", 13, RTQ_EDECODE);
  expect_rejected("\x82\xa1v\x01\xa4" "args\x81\xa1k\xdd\x10\x00\x00\x00\xc0", 17,
                  RTQ_EDECODE);
  expect_rejected("\x81\xa2id\xdb\x7f\xff\xff\xff", 9, RTQ_EDECODE);
  expect_rejected("\x80\x80", 2, RTQ_EDECODE); /* trailing */
}

static void test_envelope_decode_depth_100000(void **state) {
  (void)state;
  size_t n = 100000;
  char *buf = malloc(n + 1);
  assert_non_null(buf);
  memset(buf, 0x91, n);
  buf[n] = '\xc0';
  expect_rejected(buf, n + 1, RTQ_EDEPTH);
  /* The same depth below a valid envelope prefix. */
  memcpy(buf, "\x81\xa4" "args", 6);
  expect_rejected(buf, n + 1, RTQ_EDEPTH);
  free(buf);
}

static void test_envelope_decode_depth_limit(void **state) {
  (void)state;
  size_t alen;
  char *deep = deep_args(RTQ_MAX_DEPTH - 2, &alen); /* args nest 31: total 32 */
  field args = {"args", 'r', 0, deep, alen};
  size_t len;
  char *buf = build(NULL, &args, &len);
  rtq_envelope e;
  assert_int_equal(decode(buf, len, &e, NULL, 0), 0);
  rtq_envelope_destroy(&e);
  free(buf);
  free(deep);
  deep = deep_args(RTQ_MAX_DEPTH - 1, &alen); /* total 33 */
  args.s = deep;
  args.slen = alen;
  buf = build(NULL, &args, &len);
  expect_rejected(buf, len, RTQ_EDEPTH);
  free(buf);
  free(deep);
}

/* A 2 MiB envelope: valid msgpack, refused on size alone. */
static void test_envelope_decode_too_big(void **state) {
  (void)state;
  size_t blob = 2u * 1024 * 1024;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 5);
  for (size_t i = 0; i < 4; i++) pack_field(&pk, &sb, &base_fields[i]);
  msgpack_pack_str(&pk, 4);
  msgpack_pack_str_body(&pk, "args", 4);
  msgpack_pack_map(&pk, 1);
  msgpack_pack_str(&pk, 4);
  msgpack_pack_str_body(&pk, "blob", 4);
  char *data = calloc(1, blob);
  assert_non_null(data);
  msgpack_pack_bin(&pk, blob);
  msgpack_pack_bin_body(&pk, data, blob);
  free(data);
  assert_true(sb.size > blob);

  char err[128];
  expect_rejected(sb.data, sb.size, RTQ_ETOOBIG);
  rtq_envelope e;
  rtq_envelope_init(&e);
  assert_int_equal(rtq_envelope_decode(sb.data, sb.size, 1000, &e, err, sizeof err), RTQ_ETOOBIG);
  assert_non_null(strstr(err, "limit is 1000"));
  /* The limit is inclusive, and a caller may raise it. */
  assert_int_equal(rtq_envelope_decode(sb.data, sb.size, sb.size, &e, err, sizeof err), 0);
  assert_true(e.args_len > blob);
  rtq_envelope_destroy(&e);
  assert_int_equal(rtq_envelope_decode(sb.data, sb.size, sb.size - 1, &e, err, sizeof err),
                   RTQ_ETOOBIG);
  msgpack_sbuffer_destroy(&sb);
}

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state >> 16);
}

static void decode_any(const unsigned char *buf, size_t len) {
  rtq_envelope e;
  char err[160];
  rtq_envelope_init(&e);
  probe_reset();
  int rc = rtq_envelope_decode(buf, len, 0, &e, err, sizeof err);
  /* msgpack-c's first zone chunk and the args copy are the fixed cost;
   * beyond that, memory grows with the input, never with a declared count. */
  assert_alloc_at_most(64 * 1024 + 64 * len);
  if (rc == 0) {
    assert_int_equal(rtq_validate_name(e.id), 0);
    assert_int_equal(rtq_validate_name(e.name), 0);
    assert_int_equal(rtq_validate_name(e.queue), 0);
    assert_int_equal(rtq_msgpack_check(e.args, e.args_len, RTQ_MAX_DEPTH - 1, NULL, 0), 0);
  } else {
    assert_true(rc == RTQ_EDECODE || rc == RTQ_EDEPTH || rc == RTQ_EVERSION);
    assert_true(strlen(err) > 0);
    assert_null(e.args);
  }
  rtq_envelope_destroy(&e);
}

/* Seeded, bounded: plain random bytes, then mutations of a valid envelope
 * (which get much further into the field checks). */
static void test_envelope_decode_random_bytes(void **state) {
  (void)state;
  unsigned char buf[512];
  for (int i = 0; i < 20000; i++) {
    size_t len = rnd() % 300;
    for (size_t k = 0; k < len; k++) buf[k] = (unsigned char)rnd();
    if (len > 0 && i % 3 == 0) buf[0] = (unsigned char)(0x80 | (rnd() & 0x0f)); /* a fixmap */
    decode_any(buf, len);
  }
  size_t vlen;
  char *valid = build(NULL, NULL, &vlen);
  assert_true(vlen < sizeof buf);
  int ok = 0;
  for (int i = 0; i < 20000; i++) {
    size_t len = vlen;
    memcpy(buf, valid, vlen);
    for (uint32_t k = 1 + rnd() % 4; k > 0; k--) {
      switch (rnd() % 4) {
      case 0: buf[rnd() % len] = (unsigned char)rnd(); break;
      case 1: buf[rnd() % len] ^= (unsigned char)(1u << (rnd() % 8)); break;
      case 2: len = 1 + rnd() % len; break;
      default:
        if (len < sizeof buf) buf[len++] = (unsigned char)rnd();
      }
    }
    rtq_envelope e;
    rtq_envelope_init(&e);
    ok += rtq_envelope_decode(buf, len, 0, &e, NULL, 0) == 0;
    rtq_envelope_destroy(&e);
    decode_any(buf, len);
  }
  assert_true(ok > 0); /* some mutations stay valid: the success path ran too */
  free(valid);
}

int main(void) {
  probe_active(); /* installs the probe before any test measures */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_envelope_roundtrip),
      cmocka_unit_test(test_envelope_peek_id),
      cmocka_unit_test(test_envelope_encode_golden_bytes),
      cmocka_unit_test(test_envelope_encode_deterministic),
      cmocka_unit_test(test_envelope_encode_null_args_is_empty_map),
      cmocka_unit_test(test_envelope_encode_rejects_bad_names),
      cmocka_unit_test(test_envelope_encode_rejects_bad_args),
      cmocka_unit_test(test_envelope_decode_missing_required_fields),
      cmocka_unit_test(test_envelope_decode_wrongly_typed_fields),
      cmocka_unit_test(test_envelope_decode_invalid_names),
      cmocka_unit_test(test_envelope_decode_keeps_valid_id_on_error),
      cmocka_unit_test(test_envelope_decode_version),
      cmocka_unit_test(test_envelope_decode_optional_fields_default_to_zero),
      cmocka_unit_test(test_envelope_decode_ignores_unknown_keys),
      cmocka_unit_test(test_envelope_decode_rejects_duplicate_field),
      cmocka_unit_test(test_envelope_decode_range_of_uint32_fields),
      cmocka_unit_test(test_envelope_decode_rejects_non_map),
      cmocka_unit_test(test_envelope_decode_keeps_ext_in_args),
      cmocka_unit_test(test_envelope_decode_reuses_envelope),
      cmocka_unit_test(test_envelope_decode_hostile_lengths_allocate_nothing),
      cmocka_unit_test(test_envelope_decode_depth_100000),
      cmocka_unit_test(test_envelope_decode_depth_limit),
      cmocka_unit_test(test_envelope_decode_too_big),
      cmocka_unit_test(test_envelope_decode_random_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
