/*
 * heartbeat.c - the worker record P:worker:<wid> and its place in
 * P:workers, refreshed every heartbeat_interval_ms with a TTL of
 * heartbeat_ttl_ms (heartbeat.lua stamps it with Redis time). The broker
 * treats a worker whose record expired as dead and recovers its processing
 * list, so claiming starts only after the first heartbeat is written.
 *
 * Fields: host, pid, queues ("a:3,b:1"), strict, busy, slots, started_at
 * (ms), isolation, version, max_history, plus last_seen from the script.
 * On a clean exit the record is deleted (DEL + ZREM) once the processing
 * list is known to be empty.
 */
#include <stdio.h>
#include <unistd.h>

#include "internal.h"
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
}

static void field_u64(rtq_worker *w, const char *name, uint64_t v) {
  rtq_argv_add_str(&w->argv, name);
  rtq_argv_add_u64(&w->argv, v);
}

static void field_str(rtq_worker *w, const char *name, const char *v) {
  rtq_argv_add_str(&w->argv, name);
  rtq_argv_add_str(&w->argv, v);
}

void rtq__heartbeat_tick(rtq_worker *w, uint64_t now) {
  if (w->hb_in_flight || now < w->next_heartbeat || !rtq__rconn_up(w->cmd)) return;
  if (w->phase == RTQ__DONE) return;
  char queues[2048];
  rtq__queues_describe(&w->queues, queues, sizeof queues);
  rtq__script_begin(w, RTQ_SCRIPT_HEARTBEAT, 2);
  rtq__argv_key(w, &w->k_worker);
  rtq__argv_key(w, &w->k_workers);
  rtq_argv_add_str(&w->argv, w->id);
  rtq_argv_add_u64(&w->argv, (uint64_t)w->o.heartbeat_ttl_ms);
  field_str(w, "host", w->host);
  field_u64(w, "pid", (uint64_t)getpid());
  field_str(w, "queues", queues);
  field_str(w, "strict", w->o.strict_priority ? "1" : "0");
  field_u64(w, "busy", (uint64_t)w->running_jobs);
  field_u64(w, "slots", (uint64_t)w->o.concurrency);
  field_u64(w, "started_at", w->started_at_ms);
  field_str(w, "isolation", w->o.isolation == RTQ_ISOLATION_PROCESS ? "process" : "thread");
  field_str(w, "version", RTQ_VERSION_STRING);
  field_u64(w, "max_history", (uint64_t)w->o.max_history);
  field_str(w, "state", w->phase == RTQ__RUN ? "running" : "stopping");
  if (rtq__rconn_send(w->cmd, &w->argv, on_heartbeat, NULL, 0) != 0) return;
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
  rtq__argv_key(w, &w->k_worker);
  if (rtq__rconn_send(w->cmd, &w->argv, on_deleted, NULL, 0) != 0) return;
  w->record_delete_pending++;
  rtq_argv_reset(&w->argv);
  rtq_argv_add_str(&w->argv, "ZREM");
  rtq__argv_key(w, &w->k_workers);
  rtq_argv_add_str(&w->argv, w->id);
  if (rtq__rconn_send(w->cmd, &w->argv, on_deleted, NULL, 0) == 0) w->record_delete_pending++;
}
