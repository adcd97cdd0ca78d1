/*
 * fuzz_args.c - libFuzzer target for task args, the msgpack and JSON that
 * protocol 2 reads from bytes a stranger may have written: the `x` field
 * of a task hash as a worker takes it from a claim (rtq__args_check, then
 * rtq_args_unpack when a handler asks), the args and results the client
 * prints as JSON (rtq_msgpack_to_json), and the JSON a person gives `rtq
 * create` (rtq_args_from_json).
 *
 * Besides "no crash, no sanitizer report", it checks properties the rest
 * of rtq relies on, and aborts (a finding) when one breaks:
 *   1. args the worker's check accepts, rtq_args_unpack reads as a map
 *      (a handler's rtq_task_args is NULL only when out of memory), and
 *      what it refuses for its content the check refuses too;
 *   2. a failed unpack returns a documented code and no tree;
 *   3. unpack -> pack -> unpack -> pack is a fixpoint, and a packed tree
 *      passes the worker's check when it is a map within its depth;
 *   4. JSON from a tree, parsed back and printed again, is the same text.
 * Large allocations are caught by running with -malloc_limit_mb (see
 * scripts/fuzz.sh).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "rtq/args.h"

#define REQUIRE(cond)          \
  do {                         \
    if (!(cond)) abort();      \
  } while (0)

/* Reads every node through the public accessors. The tree's own depth
 * limit bounds the recursion; the guard makes that explicit. */
static void walk(const rtq_args *v, int depth) {
  REQUIRE(depth <= RTQ_ARGS_MAX_DEPTH + 1);
  const char *s;
  const void *b;
  size_t n;
  int64_t i;
  uint64_t u;
  double d;
  bool t;
  (void)rtq_args_as_str(v, &s, &n);
  (void)rtq_args_as_bin(v, &b, &n);
  (void)rtq_args_as_int(v, &i);
  (void)rtq_args_as_uint(v, &u);
  (void)rtq_args_as_double(v, &d);
  (void)rtq_args_as_bool(v, &t);
  size_t count = rtq_args_count(v);
  bool map = rtq_args_type(v) == RTQ_TYPE_MAP;
  for (size_t k = 0; k < count; k++) {
    const rtq_args *c;
    REQUIRE(rtq_args_at(v, k, &c) == 0);
    if (map) {
      const char *key;
      size_t klen;
      REQUIRE(rtq_args_key_at(v, k, &key, &klen) == 0);
      /* Lookups by a NUL-free key must find a value; the last duplicate
       * wins, so only the type family is comparable. */
      if (klen < 64 && memchr(key, '\0', klen) == NULL) {
        char kbuf[64];
        memcpy(kbuf, key, klen);
        kbuf[klen] = '\0';
        rtq_type ty;
        char cbuf[16];
        const rtq_args *child;
        REQUIRE(rtq_args_has(v, kbuf));
        REQUIRE(rtq_args_get_type(v, kbuf, &ty) == 0);
        (void)rtq_args_get_cstr(v, kbuf, cbuf, sizeof cbuf);
        (void)rtq_args_get_int(v, kbuf, &i);
        (void)rtq_args_get_double(v, kbuf, &d);
        (void)rtq_args_get_child(v, kbuf, &child);
      }
    }
    walk(c, depth + 1);
  }
  const rtq_args *past;
  REQUIRE(rtq_args_at(v, count, &past) != 0);
}

static void check_tree(const rtq_args *a) {
  walk(a, 0);

  char *p1, *p2;
  size_t l1, l2;
  REQUIRE(rtq_args_pack(a, &p1, &l1) == 0);
  rtq_args *b;
  REQUIRE(rtq_args_unpack(p1, l1, l1, &b) == 0);
  REQUIRE(rtq_args_pack(b, &p2, &l2) == 0);
  REQUIRE(l1 == l2 && memcmp(p1, p2, l1) == 0);
  free(p1);
  free(p2);
  rtq_args_free(b);

  char *j1;
  REQUIRE(rtq_args_to_json(a, &j1) == 0);
  rtq_args *c;
  /* May fail: a key holding NUL prints as \u0000, which jansson will not
   * read back as a key. */
  if (rtq_args_from_json(j1, &c, NULL, 0) == 0) {
    char *j2;
    REQUIRE(rtq_args_to_json(c, &j2) == 0);
    REQUIRE(strcmp(j1, j2) == 0);
    free(j2);
    rtq_args_free(c);
  }
  free(j1);
}

static void fuzz_args(const uint8_t *data, size_t size) {
  rtq_args *a = NULL;
  int rc = rtq_args_unpack(data, size, 0, &a);
  int check = rtq__args_check(data, size, NULL, 0);
  if (rc != 0) {
    REQUIRE(rc == RTQ_EDECODE || rc == RTQ_EDEPTH || rc == RTQ_ETOOBIG || rc == RTQ_ENOMEM);
    REQUIRE(a == NULL);
    /* A worker never hands a handler args that its tree cannot hold. */
    if (rc != RTQ_ENOMEM) REQUIRE(check != 0);
    return;
  }
  /* The worker accepts exactly the maps the tree reads within its depth
   * (the producers' limit, one below the tree's own). */
  if (check == 0) REQUIRE(rtq_args_type(a) == RTQ_TYPE_MAP);
  check_tree(a);
  char *json;
  REQUIRE(rtq_msgpack_to_json(data, size, &json) == 0);
  free(json);

  char *packed;
  size_t plen;
  REQUIRE(rtq_args_pack(a, &packed, &plen) == 0);
  if (rtq_args_type(a) == RTQ_TYPE_MAP && rtq_msgpack_check(packed, plen, RTQ_MAX_DEPTH - 1, NULL, 0) == 0)
    REQUIRE(rtq__args_check(packed, plen, NULL, 0) == 0);
  free(packed);
  rtq_args_free(a);
}

static void fuzz_json(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (text == NULL) return;
  memcpy(text, data, size);
  text[size] = '\0';
  rtq_args *a;
  char err[256];
  int rc = rtq_args_from_json(text, &a, err, sizeof err);
  if (rc == 0) {
    check_tree(a);
    rtq_args_free(a);
  } else {
    REQUIRE(rc == RTQ_EJSON || rc == RTQ_EDEPTH);
  }
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_args(data, size);
  fuzz_json(data, size);
  return 0;
}
