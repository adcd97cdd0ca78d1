/*
 * hub.h - one subscription to the events channel, fanned out to every
 * Server-Sent Events client.
 *
 * A pump thread reads P:chan:events through librtq (rtq_events_subscribe)
 * and frames each event once ("data: <json>\n\n") into a batch. Every
 * FLUSH_MS (100 ms), or sooner once the batch is large, the batch becomes
 * one reference-counted block that every all-events stream queues by
 * reference: the bytes exist once however many clients read them.
 *
 *   pump --frame--> batch --flush--> [block, refs] <-- client queues --> socket
 *
 * A client's queue is a short list of block references; its bytes are
 * bounded by the --sse-buffer cap. A client whose queue would pass the cap
 * is dropped (its references are released and its socket shut down at
 * once), never buffered without bound. A ?task= stream gets a block of its
 * own with that task's events; a ?ticks=1 stream one small tick a second.
 *
 * The HTTP server never blocks a thread on a stream: web_sse_read hands
 * over what is queued, and when nothing is it parks the stream through
 * the suspend callback it was given; the pump calls the resume callback
 * (under the hub's lock, so a wake-up cannot slip in between) as soon as
 * the stream has bytes again, is dropped, hangs up or the hub closes. The
 * pump polls parked streams' sockets once a second to notice hang-ups, and
 * sends a ": ping" comment to a stream that got nothing for 15 s. When the
 * subscription is lost it is opened again and every client gets "event:
 * reset" (it may have missed events and should re-read what it shows).
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

/* Parks and wakes one stream's connection (http.c's, on libmicrohttpd's
 * suspend/resume). Both are called with the hub's lock held: they must not
 * call back into the hub. */
typedef struct web_sse_waker {
  void (*suspend)(void *arg);
  void (*resume)(void *arg);
  void *arg;
} web_sse_waker;

/* Starts the pump on client c (borrowed; must outlive the hub). 0 or RTQ_E*. */
int web_hub_new(rtq_client *c, int max_clients, size_t buffer, web_hub **out);
/* Ends every stream, stops the pump and frees. Streams still attached are
 * freed by web_sse_release. NULL does nothing. */
void web_hub_free(web_hub *h);
/* Stops the streams (each parked one is woken and reads its end) without
 * freeing: before the HTTP server stops. */
void web_hub_close(web_hub *h);
int web_hub_max_clients(const web_hub *h);
void web_hub_stats_get(web_hub *h, web_hub_stats *out);

/* Attaches a stream; task (may be NULL) keeps only that task's events;
 * ticks replaces the events by at most one "event: tick" a second with
 * their count (task is then ignored); fd is the client's socket (-1: not
 * polled). RTQ_ERANGE when max_clients are attached already. The stream
 * never parks until web_sse_set_waker gives it a waker. */
int web_hub_attach(web_hub *h, const char *task, bool ticks, int fd, web_sse **out);
/* Sets how s is parked and woken (copied). Call before the first read. */
void web_sse_set_waker(web_sse *s, const web_sse_waker *wk);

#define WEB_SSE_PARKED (-2)
/*
 * Copies queued bytes into buf (at most max) without blocking. Returns:
 *   > 0             the count
 *   0               the end of the stream (hub closing)
 *   -1              the client was dropped or hung up
 *   WEB_SSE_PARKED  nothing queued: the stream was suspended (through its
 *                   waker) and is resumed once there is something to read
 * Without a waker an empty stream returns WEB_SSE_PARKED and stays awake.
 */
ssize_t web_sse_read(web_sse *s, char *buf, size_t max);
/* Detaches and frees the stream (the connection is closed). */
void web_sse_release(web_sse *s);

#endif
