/*
 * hub.h - one subscription to the events channel, fanned out to every
 * Server-Sent Events client.
 *
 * A pump thread reads P:chan:events through librtq (rtq_events_subscribe)
 * and appends each event, framed as "data: <json>\n\n", to every client's
 * queue; a client's connection thread takes whatever is queued in one
 * write. Redis sees one subscriber however many browsers watch.
 *
 *   pump --append--> [client queue, at most sse_buffer bytes] --> socket
 *
 * A client's queue starts at 16 KiB and doubles while it lags, up to the
 * --sse-buffer cap. A client whose queue would overflow is dropped (its queue is freed and
 * its socket shut down at once), never buffered without bound. A client that
 * hangs up is noticed within a second while idle (the socket is polled)
 * and at its next write otherwise. When the subscription is lost it is
 * opened again and every client gets "event: reset" (it may have missed
 * events and should re-read what it shows).
 */
#ifndef RTQ_WEB_HUB_H
#define RTQ_WEB_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "rtq/client.h"

typedef struct web_hub web_hub;
typedef struct web_sse web_sse;

/* Value type: the hub's counters, for /api/info and tests. */
typedef struct web_hub_stats {
  size_t clients;
  uint64_t events;     /* events read from Redis */
  uint64_t dropped;    /* clients dropped for being slow */
  uint64_t resets;     /* subscriptions re-opened */
} web_hub_stats;

/* Starts the pump on client c (borrowed; must outlive the hub). 0 or RTQ_E*. */
int web_hub_new(rtq_client *c, int max_clients, size_t buffer, web_hub **out);
/* Ends every stream, stops the pump and frees. Streams still attached are
 * freed by web_sse_release. NULL does nothing. */
void web_hub_free(web_hub *h);
/* Stops the streams (they end) without freeing: before the HTTP server
 * joins its threads. */
void web_hub_close(web_hub *h);
int web_hub_max_clients(const web_hub *h);
void web_hub_stats_get(web_hub *h, web_hub_stats *out);

/* Attaches a stream; task (may be NULL) keeps only that task's events;
 * ticks replaces the events by at most one "event: tick" a second with
 * their count (task is then ignored); fd is the client's socket (-1: not
 * polled). RTQ_ERANGE when max_clients are attached already. */
int web_hub_attach(web_hub *h, const char *task, bool ticks, int fd, web_sse **out);
/*
 * Copies queued bytes into buf (at most max), blocking until there are
 * some. Returns the count; 0 at the end of the stream (hub closing); -1
 * when the client was dropped or hung up.
 */
ssize_t web_sse_read(web_sse *s, char *buf, size_t max);
/* Detaches and frees the stream (the connection is closed). */
void web_sse_release(web_sse *s);

#endif
