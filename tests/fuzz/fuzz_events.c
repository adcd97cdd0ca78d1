/*
 * fuzz_events.c - libFuzzer target for event JSON as `rtq wait` and `rtq
 * watch` parse it. Under protocol 2 any writer of a queue's events channel
 * ({ns:Q}:ev, a producer's or a worker's password) chooses its messages;
 * the subscription unbatches each into events with long field names
 * (rtq__sub2_unbatch_text), which rtq__event_parse and watch's
 * rtq__event_read read.
 *
 * The input is one message's text. It goes to the unbatcher, each event
 * it produces to both readers, and the input itself to both readers too
 * (a reader must survive any text).
 *
 * Properties checked:
 *   1. the unbatcher returns 0 or -1, and -1 exactly when the text is not
 *      a JSON object with an array "t" (or is too long);
 *   2. it produces at most one event per entry of "t" and at most 1024,
 *      and counts the entries past 1024 as dropped;
 *   3. every event is a JSON object whose "id" is a valid name, whose
 *      "status" is a known status and whose "queue" is the channel's;
 *   4. both readers accept every event it produces, with its status and
 *      id: a well-formed message never makes watch re-read everything, or
 *      wait miss a terminal event;
 *   5. on any text the readers return 0, RTQ_EDECODE or RTQ_ENOMEM, and a
 *      watch event read has a valid id.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "event_read.h"

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

#define QUEUE "default"
#define MAX_TASKS 1024

typedef struct seen {
  size_t events;
} seen;

static void check_readers(const char *text) {
  rtq_status st;
  uint64_t at;
  int rc = rtq__event_parse(text, &st, &at);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  rtq__event ev;
  rc = rtq__event_read(text, &ev);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE || rc == RTQ_ENOMEM);
  if (rc == 0) REQUIRE(rtq_validate_name(ev.id) == 0);
  rtq__event_clear(&ev);
}

static void each(char *event, void *arg) {
  seen *s = arg;
  s->events++;
  json_t *o = json_loads(event, 0, NULL);
  REQUIRE(json_is_object(o));
  const char *id = json_string_value(json_object_get(o, "id"));
  const char *status = json_string_value(json_object_get(o, "status"));
  const char *queue = json_string_value(json_object_get(o, "queue"));
  rtq_status want;
  REQUIRE(id != NULL && rtq_validate_name(id) == 0);
  REQUIRE(status != NULL && rtq_status_parse(status, &want) == 0);
  REQUIRE(queue != NULL && strcmp(queue, QUEUE) == 0);

  rtq_status st;
  uint64_t at;
  REQUIRE(rtq__event_parse(event, &st, &at) == 0 && st == want);
  rtq__event ev;
  int rc = rtq__event_read(event, &ev);
  REQUIRE(rc == 0 || rc == RTQ_ENOMEM);
  if (rc == 0) REQUIRE(ev.status == want && strcmp(ev.id, id) == 0);
  rtq__event_clear(&ev);
  json_decref(o);
  free(event);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* What the unbatcher should make of the text, judged independently. */
  json_t *msg = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
  const json_t *t = json_object_get(msg, "t");
  bool batch = json_is_object(msg) && json_is_array(t);
  size_t entries = batch ? json_array_size(t) : 0;
  json_decref(msg);

  seen s = {0};
  uint64_t dropped = 0;
  int rc = rtq__sub2_unbatch_text(QUEUE, (const char *)data, size, each, &s, &dropped);
  REQUIRE(rc == 0 || rc == -1);
  /* Inputs are far below the unbatcher's 1 MiB message cap. */
  REQUIRE((rc == 0) == batch);
  REQUIRE(s.events <= entries && s.events <= MAX_TASKS);
  REQUIRE(dropped == (entries > MAX_TASKS ? entries - MAX_TASKS : 0));

  char *text = malloc(size + 1);
  if (text == NULL) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  check_readers(text);
  free(text);
  return 0;
}
