/*
 * fuzz_events.c - libFuzzer target for event JSON as `rtq wait` and `rtq
 * watch` parse it. Under protocol 2 any writer of a queue's channels (a
 * producer's or a worker's password) chooses its messages: watch's
 * subscription unbatches each message of the events channel ({ns:Q}:ev)
 * into events with long field names (rtq__sub2_unbatch_text), which
 * watch's rtq__event_read reads; wait reads the message of a task's
 * waiter channel ({ns:Q}:w:<id>, {"id", "s", "at"}) with
 * rtq__wait2_message_parse.
 *
 * The input is one message's text. It goes to the unbatcher, each event
 * it produces to watch's reader and, as the waiter message a script would
 * publish for it, to wait's; the input itself goes to both readers too (a
 * reader must survive any text).
 *
 * Properties checked:
 *   1. the unbatcher returns 0 or -1, and -1 exactly when the text is not
 *      a JSON object with an array "t" (or is too long);
 *   2. it produces at most one event per entry of "t" and at most 1024,
 *      and counts the entries past 1024 as dropped;
 *   3. every event is a JSON object whose "id" is a valid name, whose
 *      "status" is a known status and whose "queue" is the channel's;
 *   4. watch's reader accepts every event it produces, with its status
 *      and id, and wait's reads the same status from that event's waiter
 *      message: a well-formed message never makes watch re-read
 *      everything, or wait miss a terminal event;
 *   5. on any text the readers return 0, RTQ_EDECODE or RTQ_ENOMEM, a
 *      watch event read has a valid id, and a time wait reads is one the
 *      text gave as a positive integer (0 otherwise).
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
  uint64_t at = 12345;
  int rc = rtq__wait2_message_parse(text, &st, &at);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  if (rc == 0) {
    REQUIRE((int)st >= 0 && (int)st < RTQ_STATUS_COUNT);
    json_t *o = json_loads(text, 0, NULL);
    json_t *t = json_object_get(o, "at");
    REQUIRE(at == (json_is_integer(t) && json_integer_value(t) > 0 ? (uint64_t)json_integer_value(t) : 0));
    json_decref(o);
  }
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

  /* The waiter message a script publishes for this event. */
  json_t *w = json_pack("{s:s, s:s, s:I}", "id", id, "s", status, "at", (json_int_t)1700000000000);
  char *wtext = w != NULL ? json_dumps(w, JSON_COMPACT) : NULL;
  if (wtext != NULL) {
    rtq_status st;
    uint64_t at;
    REQUIRE(rtq__wait2_message_parse(wtext, &st, &at) == 0 && st == want && at == 1700000000000u);
  }
  free(wtext);
  json_decref(w);
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
