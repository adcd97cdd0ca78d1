/*
 * heartbeat.c - the worker record P:worker:<wid> and its place in
 * P:workers, refreshed every heartbeat_interval_ms with a TTL of
 * heartbeat_ttl_ms (heartbeat.lua stamps it with Redis time). The broker
 * treats a worker whose record expired as dead and recovers its processing
 * list, so claiming starts only after the first heartbeat is written.
 *
 * Fields: host, pid, queues ("a:3,b:1"), strict, busy, slots, started_at
 * (ms), isolation, version, max_history, state, under thread isolation
 * abandoned (handler threads given up on and still running), stop_reason
 * once the worker stops itself (rtq__shutdown_retire), exec_unavailable
 * (the --exec commands that keep failing, exec_pool.c), plus last_seen
 * from the script.
 * On a clean exit the record is deleted (DEL + ZREM) once the processing
 * list is known to be empty.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "health.h"
#include "internal.h"

#include "exec.h"
#include "log.h"
#include "scripts.h"

static void on_heartbeat(rtq_worker *w, redisReply *r, void *pd) {
  (void)pd;
  w->hb_in_flight = false;
  if (r == NULL) {
    w->next_heartbeat = 0; /* again as soon as the connection is back */
    return;
  }
  if (rtq__noscript(w, r)) {
    w->next_heartbeat = 0;
    return;
  }
  if (r->type == REDIS_REPLY_ERROR) {
    rtq_log(RTQ_LOG_ERROR, "heartbeat failed", "error", r->str, NULL);
    w->next_heartbeat = rtq__mono_ms() + RTQ__RETRY_WRITE_MS;
    return;
  }
  if (!w->hb_ok) {
    char slots[16];
    snprintf(slots, sizeof slots, "%d", w->o.concurrency);
    char q[512];
    rtq__queues_describe(&w->queues, q, sizeof q);
    rtq_log(RTQ_LOG_INFO, "worker ready", "worker", w->id, "queues", q, "slots", slots, "isolation",
            w->o.isolation == RTQ_ISOLATION_PROCESS ? "process" : "thread", NULL);
  }
  w->hb_ok = true;
  if (w->o.health_file != NULL && rtq_health_touch(w->o.health_file) != 0)
    rtq_log(RTQ_LOG_WARNING, "cannot refresh the health file", "path", w->o.health_file, "error",
            strerror(errno), NULL);
}

static const char *u64s(uint64_t v, char buf[24]) {
  snprintf(buf, 24, "%" PRIu64, v);
  return buf;
}

void rtq__heartbeat_tick(rtq_worker *w, uint64_t now) {
  if (w->hb_in_flight || now < w->next_heartbeat || !rtq__rconn_up(w->cmd)) return;
  if (w->phase == RTQ__DONE) return;
  char queues[2048];
  rtq__queues_describe(&w->queues, queues, sizeof queues);
  char pid[24], busy[24], slots[24], started[24], maxhist[24], abandoned[24], exec_bad[1024];
  rtq__exec_status(w, exec_bad, sizeof exec_bad);
  rtq__hb_field fields[] = {
      {"host", w->host},
      {"pid", u64s((uint64_t)getpid(), pid)},
      {"queues", queues},
      {"strict", w->o.strict_priority ? "1" : "0"},
      {"busy", u64s((uint64_t)w->running_jobs, busy)},
      {"slots", u64s((uint64_t)w->o.concurrency, slots)},
      {"started_at", u64s(w->started_at_ms, started)},
      {"isolation", w->o.isolation == RTQ_ISOLATION_PROCESS ? "process" : "thread"},
      {"version", RTQ_VERSION_STRING},
      {"max_history", u64s((uint64_t)w->o.max_history, maxhist)},
      {"state", w->phase == RTQ__RUN ? "running" : "stopping"},
      {"exec_unavailable", exec_bad}, /* always sent: "" clears an old value */
      {NULL, NULL}, /* room for the optional fields below */
      {NULL, NULL},
      {NULL, NULL},
  };
  int nfields = (int)(sizeof fields / sizeof fields[0]) - 3;
  if (w->pool != NULL)
    fields[nfields++] = (rtq__hb_field){"abandoned", u64s((uint64_t)rtq__pool_abandoned(w->pool), abandoned)};
  char unreplicated[24];
  if (w->o.wait_replicas > 0)
    fields[nfields++] = (rtq__hb_field){"unreplicated", u64s(w->n_unreplicated, unreplicated)};
  if (w->stop_reason[0] != '\0') fields[nfields++] = (rtq__hb_field){"stop_reason", w->stop_reason};
  int rc = rtq__heartbeat2_argv(w, fields, nfields);
  if (rc != 0 ||
      rtq__rconn_send(w->cmd, &w->argv, on_heartbeat, NULL, 0) != 0)
    return;
  w->hb_in_flight = true;
  w->next_heartbeat = now + (uint64_t)w->o.heartbeat_interval_ms;
}

static void on_deleted(rtq_worker *w, redisReply *r, void *pd) {
  (void)pd;
  w->record_delete_pending--;
  if (r == NULL || r->type == REDIS_REPLY_ERROR) w->record_delete_failed = true;
  if (w->record_delete_pending == 0 && !w->record_delete_failed) {
    rtq_log(RTQ_LOG_INFO, "worker record deleted; exiting", "worker", w->id, NULL);
    w->phase = RTQ__DONE;
    rtq__ev_break(w->ev);
  }
}

void rtq__worker_record_delete(rtq_worker *w) {
  if (w->record_delete_pending > 0 || !rtq__rconn_up(w->cmd)) return;
  w->record_delete_failed = false;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "DEL");
  rtq__argv_add_key2(&w->argv, w->k_worker);
  if (rtq__rconn_send(w->cmd, &w->argv, on_deleted, NULL, 0) != 0) return;
  w->record_delete_pending++;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "ZREM");
  rtq__argv_add_key2(&w->argv, w->k_workers);
  rtq_argv_add_str(&w->argv, w->id);
  if (rtq__rconn_send(w->cmd, &w->argv, on_deleted, NULL, 0) == 0) w->record_delete_pending++;
}
