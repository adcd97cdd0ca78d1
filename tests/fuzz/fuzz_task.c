/*
 * fuzz_task.c - libFuzzer target for what the client reads back from
 * Redis that any writer with access to the namespace could have written:
 * a task hash turned into an rtq_task and then into JSON
 * (rtq__task2_from_hashes, rtq_task_to_json). (The messages `rtq wait`
 * reads are fuzz_events's.)
 *
 * The input is a sequence of fields, each a length byte then that many
 * bytes; they are paired into the (field, value) array an HGETALL returns.
 * A field named by its first byte's low bits is drawn from the real field
 * names, so the fuzzer reaches every setter quickly.
 *
 * Properties checked:
 *   1. from_hashes returns 0, RTQ_ENOTFOUND, RTQ_EDECODE or RTQ_ENOMEM;
 *   2. a task that was read always converts to JSON (never "out of
 *      memory" for bytes that are not UTF-8), and that JSON parses back
 *      as an object with the task's status;
 *   3. progress stays within 0..100.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "client_internal.h"

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

#define MAX_FIELDS 64

/* The task hash's fields (docs/PROTOCOL.md section 4), "s" twice. */
static const char *const names[] = {
    "s",  "n",  "c",  "x",  "to", "mr", "rt", "ra", "a",  "w",  "b",  "dl",
    "p",  "pm", "cr", "ry", "e",  "r",  "ec", "em", "ed", "et", "xs", "s",
};

static redisReply *string_reply(const char *p, size_t n) {
  redisReply *r = calloc(1, sizeof *r);
  if (r == NULL) return NULL;
  r->type = REDIS_REPLY_STRING;
  r->str = malloc(n + 1);
  if (r->str == NULL) {
    free(r);
    return NULL;
  }
  memcpy(r->str, p, n);
  r->str[n] = '\0';
  r->len = n;
  return r;
}

/* Builds the HGETALL-shaped array; NULL when out of memory. */
static redisReply *hash_reply(const uint8_t *data, size_t size) {
  redisReply *arr = calloc(1, sizeof *arr);
  if (arr == NULL) return NULL;
  arr->type = REDIS_REPLY_ARRAY;
  arr->element = calloc(MAX_FIELDS, sizeof *arr->element);
  if (arr->element == NULL) {
    free(arr);
    return NULL;
  }
  size_t off = 0;
  while (off < size && arr->elements < MAX_FIELDS) {
    size_t n = data[off++];
    if (n > size - off) n = size - off;
    redisReply *e;
    /* A field position whose length byte has the top bit set names a
     * real field: its low bits pick it. */
    if (arr->elements % 2 == 0 && (n & 0x80)) {
      const char *nm = names[n % (sizeof names / sizeof names[0])];
      e = string_reply(nm, strlen(nm));
      n = 0;
    } else {
      e = string_reply((const char *)data + off, n);
    }
    if (e == NULL) break;
    arr->element[arr->elements++] = e;
    off += n;
  }
  return arr;
}

static void free_reply(redisReply *r) {
  if (r == NULL) return;
  for (size_t i = 0; i < r->elements; i++) {
    free(r->element[i]->str);
    free(r->element[i]);
  }
  free(r->element);
  free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536) return 0;
  redisReply *r = hash_reply(data, size);
  if (r == NULL) return 0;
  rtq_task *t = NULL;
  int rc = rtq__task2_from_hashes("default", "fuzz-task", r, NULL, NULL, &t);
  REQUIRE(rc == 0 || rc == RTQ_ENOTFOUND || rc == RTQ_EDECODE || rc == RTQ_ENOMEM);
  if (rc == 0) {
    REQUIRE(t->progress >= 0 && t->progress <= 100);
    char *json = NULL;
    REQUIRE(rtq_task_to_json(t, &json) == 0);
    json_t *o = json_loads(json, JSON_ALLOW_NUL, NULL); /* "\u0000" is JSON */
    REQUIRE(o != NULL && json_is_object(o));
    const char *st = json_string_value(json_object_get(o, "status"));
    REQUIRE(st != NULL && strcmp(st, rtq_status_name(t->status)) == 0);
    json_decref(o);
    free(json);
  }
  rtq_task_free(t);
  free_reply(r);
  return 0;
}
