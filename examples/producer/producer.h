/*
 * producer.h - what the files of rtq-example-producer share.
 *
 * The producer plays the part of a web application: each subcommand is what
 * one of its endpoints would do with the client library.
 *
 *   start KIND [JSON]   POST   /tasks/KIND      enqueue, answer the id at once
 *   status ID           GET    /tasks/ID        status, progress, result, error
 *   list                GET    /tasks           recent tasks
 *   cancel ID           DELETE /tasks/ID        cancel
 *   result ID           GET    /tasks/ID/result wait for the end, then the result
 *   demo                the three examples, one cancelled and one timed-out task
 */
#ifndef RTQ_EXAMPLE_PRODUCER_H
#define RTQ_EXAMPLE_PRODUCER_H

#include <stdint.h>

#include "rtq/client.h"

/* Exit codes, the same as the rtq CLI's. */
enum {
  PRODUCER_OK = 0,
  PRODUCER_ENDED = 1,    /* the task ended other than completed; the demo went wrong */
  PRODUCER_USAGE = 2,
  PRODUCER_NOTFOUND = 3,
  PRODUCER_REDIS = 4,
  PRODUCER_TIMEOUT = 5
};

/* One run: the parsed command line and the client. */
typedef struct producer {
  const char *redis_url;   /* --redis; NULL: RTQ_REDIS_URL or the default */
  const char *redis_url_file; /* --redis-url-file; NULL: RTQ_REDIS_URL_FILE or none */
  const char *ns;          /* --namespace; NULL: RTQ_NAMESPACE or "rtq" */
  const char *queue;       /* --queue; NULL: "default" */
  const char *status;      /* --status, for list */
  const char *file;        /* --file, for demo */
  int64_t timeout_ms;      /* --timeout S; -1 when not given */
  rtq_client *client;
} producer;

/* An example the producer can start: start's KIND and its handler. */
typedef struct example_kind {
  const char *kind;        /* "file", "email", "export" */
  const char *handler;     /* "examples.process_file", ... */
  const char *default_args; /* JSON used when start gets none */
} example_kind;

/* The kind called name, or NULL. */
const example_kind *example_kind_find(const char *name);

/* Prints "rtq-example-producer: <what>: <detail>" for an API error and
 * returns the exit code it maps to. */
int producer_fail(const producer *p, int rc, const char *what);

/* `demo`: see demo.c. Returns an exit code. */
int producer_demo(producer *p);

#endif
