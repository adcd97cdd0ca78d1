/*
 * connection.c - the broker's Redis connection: the first connect with its
 * own backoff, reconnects, and logging an outage once while it lasts.
 * Used by the sweep (broker.c) and the lease (lease.c).
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "scripts2.h"

#define CONNECT_BACKOFF_MIN_MS 100
#define CONNECT_BACKOFF_MAX_MS 5000

static void outage(rtq_broker *b, const char *phase, const char *why) {
  if (b->redis_down) {
    rtq_log(RTQ_LOG_DEBUG, "redis still unavailable", "phase", phase, "error", why, NULL);
    return;
  }
  b->redis_down = true;
  rtq_log(RTQ_LOG_ERROR, "redis unavailable; retrying with backoff", "phase", phase, "error", why,
          NULL);
}

void rtq__broker_redis_up(rtq_broker *b) {
  if (!b->redis_down) return;
  b->redis_down = false;
  rtq_log(RTQ_LOG_INFO, "redis reachable again", NULL);
}

int rtq__broker_failed(rtq_broker *b, const char *phase, int rc) {
  const char *why = b->conn != NULL ? rtq_conn_errstr(b->conn) : "not connected";
  if (rc == RTQ_ECONN) {
    outage(b, phase, why);
  } else {
    rtq_log(RTQ_LOG_ERROR, "sweep phase failed", "phase", phase, "code", rtq_err_name(rc), "error",
            why, NULL);
  }
  return rc;
}

/* The first connection: made by hand (rtq_conn_new fails outright when
 * Redis is down, and there is no object to reconnect yet), with its own
 * backoff. Once it exists, rtq_conn_reconnect does the backing off. */
static int first_connect(rtq_broker *b) {
  uint64_t t = rtq__mono_ms();
  if (t < b->connect_at) return RTQ_ECONN;
  rtq_conn_options co;
  memset(&co, 0, sizeof co);
  co.url = b->o.config.redis_url;
  co.connect_timeout_ms = b->o.connect_timeout_ms;
  co.command_timeout_ms = b->o.command_timeout_ms;
  co.backoff_min_ms = CONNECT_BACKOFF_MIN_MS;
  co.backoff_max_ms = CONNECT_BACKOFF_MAX_MS;
  char err[256];
  int rc = rtq_conn_new(&co, &b->conn, err, sizeof err);
  if (rc != 0) {
    int wait = b->connect_backoff_ms == 0 ? CONNECT_BACKOFF_MIN_MS : b->connect_backoff_ms * 2;
    if (wait > CONNECT_BACKOFF_MAX_MS) wait = CONNECT_BACKOFF_MAX_MS;
    b->connect_backoff_ms = wait;
    b->connect_at = rtq__mono_ms() + (uint64_t)wait;
    outage(b, "connect", err);
    return rc;
  }
  b->connect_backoff_ms = 0;
  /* The namespace must speak protocol 2 (proto.h): a refusal ends the
   * broker; a failed check is an outage like a failed connect. */
  rc = rtq_proto_check(b->conn, b->o.config.ns, b->refused_why, sizeof b->refused_why);
  if (rc == RTQ_EPROTOCOL) {
    b->refused = true;
    rtq_log(RTQ_LOG_ERROR, "refusing the namespace", "error", b->refused_why, NULL);
  }
  if (rc != 0) {
    if (rc != RTQ_EPROTOCOL) outage(b, "connect", b->refused_why);
    rtq_conn_free(b->conn);
    b->conn = NULL;
    b->connect_at = rtq__mono_ms() + CONNECT_BACKOFF_MIN_MS;
    return rc;
  }
  /* Loading is an optimisation (EVALSHA); every runner falls back to EVAL. */
  if (rtq_scripts2_load(b->conn) != 0)
    rtq_log(RTQ_LOG_WARNING, "could not load the lua scripts; using EVAL", "error",
            rtq_conn_errstr(b->conn), NULL);
  (void)rtq_conn_check_eviction_policy(b->conn);
  return 0;
}

int rtq__broker_connected(rtq_broker *b) {
  if (b->refused) return RTQ_EPROTOCOL;
  if (b->conn == NULL) return first_connect(b);
  int rc = rtq_conn_reconnect(b->conn);
  if (rc != 0) outage(b, "connect", rtq_conn_errstr(b->conn));
  return rc;
}
