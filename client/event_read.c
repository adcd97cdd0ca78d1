/*
 * event_read.c - an event as `rtq watch` reads it (event_read.h). Kept
 * apart from the CLI so that the event fuzzer (tests/fuzz/fuzz_events.c)
 * runs the same code on what the unbatcher produces.
 */
#include "event_read.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

int rtq__event_read(const char *text, rtq__event *e) {
  memset(e, 0, sizeof *e);
  json_t *o = text != NULL ? json_loads(text, 0, NULL) : NULL;
  const char *id = json_string_value(json_object_get(o, "id"));
  const char *st = json_string_value(json_object_get(o, "status"));
  /* The id's length, not its C string: "a\u0000b" is not "a". */
  size_t id_len = json_string_length(json_object_get(o, "id"));
  int rc = RTQ_EDECODE;
  if (id != NULL && strlen(id) == id_len && rtq_validate_name(id) == 0 && st != NULL &&
      rtq_status_parse(st, &e->status) == 0) {
    memcpy(e->id, id, id_len + 1);
    e->started = json_object_get(o, "attempt") != NULL;
    json_t *p = json_object_get(o, "progress");
    e->has_progress = json_is_number(p);
    if (e->has_progress) e->progress = json_number_value(p);
    const char *m = json_string_value(json_object_get(o, "message"));
    rc = m != NULL && (e->message = strdup(m)) == NULL ? RTQ_ENOMEM : 0;
  }
  json_decref(o);
  return rc;
}

void rtq__event_clear(rtq__event *e) {
  free(e->message);
  e->message = NULL;
}
