/*
 * broker.c - the broker's life: creation and the order of the phases in a
 * sweep. The phases live in their own files (backstop2.c, recover2.c,
 * promote2.c, prune2.c), the lease in lease.c, the Redis connection in
 * connection.c, what the phases share in util.c; nothing here knows about
 * an event loop.
 */
#include "internal.h"
#include "internal2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "defaults.h"
#include "envelope.h"
#include "ids.h"
#include "log.h"
#include "sign.h"
#include "replicas.h"

static void seterr(char *errbuf, size_t errcap, const char *msg) {
  if (errbuf != NULL && errcap > 0) snprintf(errbuf, errcap, "%s", msg);
}

int rtq_broker_new(const rtq_broker_options *o, rtq_broker **out, char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (o == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq_redis_url url;
  int rc = rtq_redis_url_parse(o->config.redis_url, &url, errbuf, errcap);
  memset(&url, 0, sizeof url); /* it may hold a password */
  if (rc != 0) return rc;
  if (o->config.wait_replicas > 0 && o->config.wait_timeout >= o->command_timeout_ms) {
    /* The WAIT's reply must come before the command timeout drops it. */
    if (errbuf != NULL && errcap > 0)
      snprintf(errbuf, errcap, "wait_timeout (%d ms) must be below the command timeout (%d ms)", o->config.wait_timeout,
             o->command_timeout_ms);
    return RTQ_EINVAL;
  }

  rtq_sign_keys *k = NULL;
  if (o->signing_key_file != NULL) {
    /* Checked now, not at the first schedule's run, and kept: it also
     * signs the ends the broker writes (sign2.c). */
    char err[512];
    rc = rtq_sign_keys_load(o->signing_key_file, &k, err, sizeof err);
    if (rc != 0) {
      if (errbuf != NULL && errcap > 0) snprintf(errbuf, errcap, "signing key: %s", err);
      return rc;
    }
  }
  rtq_broker *b = calloc(1, sizeof *b);
  if (b == NULL) {
    rtq_sign_keys_free(k);
    return RTQ_ENOMEM;
  }
  b->sign_keys = k;
  b->o = *o;
  b->next_due_in_ms = -1;
  rtq__batch_init(&b->batch);
  rtq__batch_init(&b->batch2);
  if (rtq_keys2_init(&b->keys2, o->config.ns) != 0) {
    seterr(errbuf, errcap, "invalid namespace");
    rtq_broker_free(b);
    return RTQ_EINVAL;
  }
  if (o->id[0] != '\0') {
    if (rtq_validate_name(o->id) != 0) {
      seterr(errbuf, errcap, "invalid broker id: expected [A-Za-z0-9._:-]{1,128}");
      rtq_broker_free(b);
      return RTQ_EINVAL;
    }
    snprintf(b->id, sizeof b->id, "%s", o->id);
  } else if ((rc = rtq_worker_id_new(b->id, sizeof b->id)) != 0) {
    seterr(errbuf, errcap, "could not make a broker id: no random bytes");
    rtq_broker_free(b);
    return rc;
  }
  if (rtq__broker2_new(b) != 0) {
    rtq_broker_free(b);
    return RTQ_ENOMEM;
  }
  /* A Redis that is down now is an outage like any later one: logged, and
   * retried from the ticks. A namespace of protocol 1's data is not. */
  if (rtq__broker_connected(b) == RTQ_EPROTOCOL) {
    seterr(errbuf, errcap, b->refused_why);
    rtq_broker_free(b);
    return RTQ_EPROTOCOL;
  }
  *out = b;
  return 0;
}

void rtq_broker_free(rtq_broker *b) {
  if (b == NULL) return;
  if (b->conn != NULL && b->leader) (void)rtq_broker_lease_release(b);
  rtq_conn_free(b->conn);
  rtq__broker_schedules_close(b);
  rtq__batch_destroy(&b->batch);
  rtq__batch_destroy(&b->batch2);
  rtq__broker2_free(b);
  rtq_sign_keys_free(b->sign_keys);
  free(b);
}

const char *rtq_broker_id(const rtq_broker *b) { return b->id; }
const rtq_broker_options *rtq_broker_options_of(const rtq_broker *b) { return &b->o; }
const rtq_broker_counters *rtq_broker_counters_of(const rtq_broker *b) { return &b->total; }
int64_t rtq_broker_next_due_in_ms(const rtq_broker *b) { return b->next_due_in_ms; }

/* Between phases: renew the lease when due, and stop when it was lost.
 * A sweep never acts on a lapsed lease. */
static bool still_leader(rtq_broker *b) {
  int rc = rtq_broker_lease_tick(b);
  return rc == 0 || (rc < 0 && rtq_broker_is_leader(b));
}

/* Redis TIME, the clock every decision of this sweep is measured with. */
static int read_clock(rtq_broker *b) {
  int rc = rtq_conn_time_ms(b->conn, &b->now);
  if (rc == 0) rtq__broker_redis_up(b);
  return rc;
}

/* Starts a cleanup round every cleanup_interval, then prunes the done
 * lists a bounded step per sweep (prune2.c, which resumes where it
 * stopped) until the round is done. */
static int cleanup_phase(rtq_broker *b) {
  uint64_t every = (uint64_t)b->o.config.cleanup_interval * 1000u;
  if (!b->cleanup_active && (b->last_cleanup == 0 || b->now >= b->last_cleanup + every)) {
    b->cleanup_active = true;
    b->last_cleanup = b->now;
  }
  return b->cleanup_active ? rtq__broker_prune2(b) : 0;
}

typedef struct phase {
  const char *name;
  int (*run)(rtq_broker *b);
} phase;

/* Deadlines go before recovery: a task past deadline + grace whose worker
 * is silent ends timeout (what the timeout backstop promises) rather than
 * being redelivered to run past its deadline again; recovery then finds it
 * ended and only clears its processing entry. */
static const phase phases[] = {
    {"deadlines", rtq__broker_backstop2},
    {"recover", rtq__broker_recover2},
    {"audit", rtq__broker_audit2},
    {"promote", rtq__broker_promote2},
    {"cleanup", cleanup_phase},
    {"schedules", rtq__broker_schedules},
};

/* Writes of the phases that end or redeliver tasks (their counters). */
static uint64_t outcome_writes(const rtq_broker_counters *u) {
  return u->recovered + u->worker_lost + u->dead_lettered + u->cancelled_on_recovery + u->timeouts;
}

/*
 * wait_replicas: one WAIT after a sweep whose phases ended or redelivered
 * tasks (n writes), on the sweep's connection, so a failover cannot undo
 * an outcome the replicas acknowledged. Too few replicas is logged and
 * counted (unreplicated); the sweep goes on either way.
 */
static int wait_outcomes(rtq_broker *b, uint64_t n) {
  int acked = 0, want = b->o.config.wait_replicas;
  int rc = rtq_replicas_wait(b->conn, want, b->o.config.wait_timeout, &acked);
  if (rc == RTQ_ECONN || rc == RTQ_ENOMEM) return rc;
  if (rc == 0 && acked >= want) return 0;
  char writes[24], got[16], wanted[16];
  snprintf(writes, sizeof writes, "%llu", (unsigned long long)n);
  snprintf(got, sizeof got, "%d", acked);
  snprintf(wanted, sizeof wanted, "%d", want);
  rtq_log(RTQ_LOG_WARNING, "task outcomes written, but fewer replicas than asked acknowledged them", "writes",
          writes, "replicas", rc == 0 ? got : NULL, "wanted", wanted, "error",
          rc != 0 ? rtq_conn_errstr(b->conn) : NULL, NULL);
  RTQ__COUNT(b, unreplicated, n);
  return 0;
}

int rtq_broker_sweep(rtq_broker *b) {
  /* Only a promotion phase that ran sets it again: a failed or standby
   * tick must not aim the promotion timer at anything. */
  b->next_due_in_ms = -1;
  int rc = rtq_broker_lease_tick(b);
  if (rc == 1) return 0; /* standing by */
  if (rc != 0) return rtq__broker_failed(b, "lease", rc);
  if ((rc = read_clock(b)) != 0) return rtq__broker_failed(b, "time", rc);
  /* A phase that meets an unexpected reply (a key of the wrong type
   * written by hand, say) must not starve the phases after it; a lost
   * connection ends the sweep, since nothing after it could run. */
  int first_err = 0;
  uint64_t before = outcome_writes(&b->unflushed);
  for (size_t i = 0; i < sizeof phases / sizeof phases[0]; i++) {
    if (!still_leader(b)) return first_err;
    rc = phases[i].run(b);
    rtq__batch_clear(&b->batch);
    rtq__batch_clear(&b->batch2);
    if (rc == 0) continue;
    rtq__broker_failed(b, phases[i].name, rc);
    if (rc == RTQ_ECONN || rc == RTQ_ENOMEM) return rc;
    if (first_err == 0) first_err = rc;
  }
  uint64_t wrote = outcome_writes(&b->unflushed) - before;
  if (b->o.config.wait_replicas > 0 && wrote > 0 && (rc = wait_outcomes(b, wrote)) != 0)
    return rtq__broker_failed(b, "wait", rc);
  RTQ__COUNT(b, sweeps, 1);
  rc = rtq__broker_flush_stats(b, true);
  rtq__batch_clear(&b->batch);
  if (rc != 0) return rtq__broker_failed(b, "stats", rc);
  rtq__broker_health_touch(b);
  return first_err;
}

int rtq_broker_promote_due(rtq_broker *b) {
  b->next_due_in_ms = -1;
  int rc = rtq_broker_lease_tick(b);
  if (rc == 1) return 0;
  if (rc != 0) return rtq__broker_failed(b, "lease", rc);
  if ((rc = read_clock(b)) != 0) return rtq__broker_failed(b, "time", rc);
  rc = rtq__broker_promote2(b);
  rtq__batch_clear(&b->batch);
  rtq__batch_clear(&b->batch2);
  if (rc != 0) return rtq__broker_failed(b, "promote", rc);
  if (b->unflushed.promoted == 0) return 0;
  rc = rtq__broker_flush_stats(b, false);
  rtq__batch_clear(&b->batch);
  return rc != 0 ? rtq__broker_failed(b, "stats", rc) : 0;
}

