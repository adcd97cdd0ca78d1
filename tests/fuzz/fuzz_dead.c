/*
 * fuzz_dead.c - libFuzzer target for the dead-letter records the client
 * reads from a queue's dead list ({ns:Q}:dead), which any writer with
 * access to the namespace could have written: rtq__dead_decode (the
 * record, checked before msgpack-c sees it; payload as str or bin) and
 * rtq_dead_letter_to_json (the payload decoded as an envelope, or
 * previewed).
 *
 * Properties checked:
 *   1. decoding returns 0 (a record that does not decode is kept with
 *      record_error set, its raw bytes as the payload);
 *   2. every string field is non-NULL;
 *   3. the letter always converts to JSON, and that JSON parses back as an
 *      object whose "code" is a string and whose "task" is an object or
 *      null (then with a "payload_preview" string).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rtq_dead_letter d;
  memset(&d, 0, sizeof d);
  REQUIRE(rtq__dead_decode(&d, 7, (const char *)data, size) == 0);
  REQUIRE(d.code != NULL && d.reason != NULL && d.worker != NULL && d.queue != NULL &&
          d.id != NULL && d.index == 7);
  REQUIRE(d.record_error == NULL || d.payload_len == size);
  char *text = NULL;
  REQUIRE(rtq_dead_letter_to_json(&d, &text) == 0);
  json_t *v = json_loads(text, JSON_ALLOW_NUL, NULL); /* "\u0000" is JSON */
  REQUIRE(json_is_object(v));
  REQUIRE(json_is_string(json_object_get(v, "code")));
  json_t *task = json_object_get(v, "task");
  REQUIRE(json_is_object(task) || json_is_null(task));
  if (json_is_null(task)) REQUIRE(json_is_string(json_object_get(v, "payload_preview")));
  json_decref(v);
  free(text);
  rtq__dead_letter_destroy(&d);
  return 0;
}
