/*
 * envelope.c - the worker's task description (see envelope.h).
 */
#include "envelope.h"

#include <stdlib.h>
#include <string.h>

void rtq_envelope_init(rtq_envelope *e) {
  if (e != NULL) memset(e, 0, sizeof *e);
}

void rtq_envelope_destroy(rtq_envelope *e) {
  if (e == NULL) return;
  free(e->args);
  memset(e, 0, sizeof *e);
}

const char rtq__empty_map[1] = {(char)0x80};
