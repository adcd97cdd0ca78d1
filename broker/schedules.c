/*
 * schedules.c - the leader runs the periodic tasks (client.h, "periodic
 * tasks"): each sweep, the schedules due by Redis TIME get their run
 * enqueued through librtq's rtq_schedule_fire_due, at most
 * RTQ_BROKER_SCHEDULES_PER_SWEEP of them; the rest wait for the next sweep.
 * Runs are tasks with ids made from (schedule, due time), so a leader that
 * dies between a run and its bookkeeping, or a second broker that thinks it
 * leads, enqueues nothing twice.
 *
 * The library call uses a client of its own (its connection pool), opened
 * on the first sweep with the broker's URL and namespace.
 */
#include "internal.h"

#include "log.h"
#include "rtq/client.h"

#define RTQ_BROKER_SCHEDULES_PER_SWEEP 100

static int open_client(rtq_broker *b) {
  if (b->client != NULL) return 0;
  rtq_client_options o = {.redis_url = b->o.config.redis_url,
                          .ns = b->o.config.ns,
                          .max_payload = (size_t)b->o.max_payload,
                          .task_result_ttl_s = b->o.config.task_result_ttl,
                          .history = b->o.config.enable_task_history ? 1 : -1,
                          .reply_spin_us = -1,
                          /* The broker's own bounds: a frozen Redis must
                           * not hold a sweep (or a SIGTERM) longer than
                           * the broker's other calls. */
                          .connect_timeout_ms = b->o.connect_timeout_ms,
                          .command_timeout_ms = b->o.command_timeout_ms,
                          .signing_key_file = b->o.signing_key_file};
  int rc = rtq_client_new(&o, &b->client);
  if (rc != 0)
    rtq_log(RTQ_LOG_ERROR, "cannot open a client for the schedules", "error", rtq_client_errstr(NULL), NULL);
  return rc;
}

int rtq__broker_schedules(rtq_broker *b) {
  int rc = open_client(b);
  if (rc != 0) return rc;
  size_t fired = 0;
  rc = rtq_schedule_fire_due(b->client, b->now, RTQ_BROKER_SCHEDULES_PER_SWEEP, &fired);
  RTQ__COUNT(b, schedule_runs, fired);
  if (rc != 0)
    rtq_log(RTQ_LOG_WARNING, "a schedule could not run; it is tried again next sweep", "error",
            rtq_client_errstr(b->client), NULL);
  return rc;
}

void rtq__broker_schedules_close(rtq_broker *b) {
  rtq_client_free(b->client);
  b->client = NULL;
}
