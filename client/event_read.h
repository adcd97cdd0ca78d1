/*
 * event_read.h - an event as `rtq watch` reads it: one JSON object of
 * rtq_subscription_next ({"id", "status", "progress"?, "message"?,
 * "attempt"?, ...}; docs/PROTOCOL.md section 7), whoever wrote it.
 */
#ifndef RTQ_EVENT_READ_H
#define RTQ_EVENT_READ_H

#include <stdbool.h>
#include <stdint.h>

#include "rtq/client.h"

/* Value type: what a watcher takes from one event. */
typedef struct rtq__event {
  char id[RTQ_TASK_ID_SIZE]; /* a valid name */
  rtq_status status;
  bool started;              /* "attempt" present: a claim's event */
  bool has_progress;
  double progress;           /* as sent (a number; the reader clamps it) */
  char *message;             /* "message", malloc'd; NULL when absent */
} rtq__event;

/* Reads text into *e. 0, or RTQ_EDECODE (nothing to free) when it is not
 * an object with a valid "id" and a known "status": the message cannot
 * say which task it is about. RTQ_ENOMEM. Free with rtq__event_clear. */
int rtq__event_read(const char *text, rtq__event *e);
void rtq__event_clear(rtq__event *e);

/* sub.c: the messages of subscription s that were dropped (past its
 * buffer) and skipped (not events messages) so far. */
void rtq__sub_counts(const rtq_subscription *s, uint64_t *dropped, uint64_t *skipped);

#endif
