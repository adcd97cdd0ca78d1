/*
 * lease.c - the leader lease (the lease script, lease2.c): one broker
 * acts, the others wait.
 *
 * The lease is {ns}:lease = <broker id> with a PX expiry of lease_ttl. The
 * holder renews it every lease_ttl/3, so two renewals can fail before it
 * lapses. A broker that does not hold it tries on every tick, so when the
 * leader dies the lease is taken over at most lease_ttl + one tick after
 * the leader's last renewal.
 *
 * Locally the holder trusts its lease until (time it sent the last
 * successful renewal) + lease_ttl - lease_ttl/10. The request left before
 * Redis set the expiry, so the local bound ends before the server's does;
 * the tenth is a margin for clock-rate differences. After that the broker
 * stops acting, even if Redis cannot be reached to ask.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static int run_lease(rtq_broker *b, bool acquire, long long *held) {
  return rtq__broker_lease2(b, acquire, held);
}

/* Logs who holds the lease, once per stand-by period. */
static void log_standby(rtq_broker *b) {
  if (b->standby_logged) return;
  b->standby_logged = true;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "GET");
  rtq__broker_argv_lease(b, &a);
  redisReply *r = NULL;
  int rc = rtq_conn_command(b->conn, &a, &r);
  rtq_argv_destroy(&a);
  const char *holder = rc == 0 && r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "?";
  rtq_log(RTQ_LOG_INFO, "standing by: another broker holds the lease", "broker", b->id, "leader",
          holder, NULL);
  if (r != NULL) freeReplyObject(r);
}

/* Field of the broker's counters (lease_unswept_s) that says a lease holder has
 * not swept: `rtq stats` lists it with the broker's counters. */
#define UNSWEPT_FIELD "lease_unswept_s"

static void set_unswept(rtq_broker *b, uint64_t seconds) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, seconds > 0 ? "HSET" : "HDEL");
  rtq__broker_argv_stat(b, &a, UNSWEPT_FIELD);
  if (seconds > 0) rtq_argv_add_u64(&a, seconds);
  (void)rtq_conn_command(b->conn, &a, NULL);
  rtq_argv_destroy(&a);
  b->lease_alarm = seconds > 0;
}

/*
 * A standby watches the lease it cannot take. A holder that never sweeps
 * (a wedged broker, or `SET {ns}:lease attacker PX ...` by any writer of the
 * namespace) stops recovery, promotion and the timeout backstop for every
 * queue. When the same holder has kept the lease for over three lease
 * TTLs (or three sweep intervals, when those are longer) while
 * the broker's last_sweep_at has not moved, each tick logs an ERROR
 * and sets its lease_unswept_s (seconds), which `rtq stats`
 * shows; both stop once a sweep is seen or the holder changes.
 */
static void watch_holder(rtq_broker *b) {
  rtq__batch *bt = &b->batch;
  rtq__batch_clear(bt);
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return;
  rtq_argv_add_str(a, "GET");
  rtq__broker_argv_lease(b, a);
  if ((a = rtq__batch_add(bt)) == NULL) return;
  rtq_argv_add_str(a, "HGET");
  rtq__broker_argv_stat(b, a, "last_sweep_at");
  if (rtq__batch_run(b->conn, bt) != 0) return;
  const redisReply *h = bt->rcs[0] == 0 ? bt->replies[0] : NULL;
  const redisReply *sw = bt->rcs[1] == 0 ? bt->replies[1] : NULL;
  char holder[sizeof b->held_by], sweep[sizeof b->held_sweep];
  snprintf(holder, sizeof holder, "%.*s", h != NULL && h->type == REDIS_REPLY_STRING ? (int)h->len : 0,
           h != NULL && h->type == REDIS_REPLY_STRING ? h->str : "");
  snprintf(sweep, sizeof sweep, "%.*s", sw != NULL && sw->type == REDIS_REPLY_STRING ? (int)sw->len : 0,
           sw != NULL && sw->type == REDIS_REPLY_STRING ? sw->str : "");
  uint64_t now = rtq__mono_ms();
  if (holder[0] == '\0' || strcmp(holder, b->held_by) != 0 || strcmp(sweep, b->held_sweep) != 0) {
    memcpy(b->held_by, holder, sizeof holder);
    memcpy(b->held_sweep, sweep, sizeof sweep);
    b->held_since = now;
    if (b->lease_alarm) set_unswept(b, 0);
    return;
  }
  uint64_t quiet = now - b->held_since;
  /* Three lease TTLs, or three sweep intervals where sweeps are rarer: a
   * leader sweeping every minute under a 10 s lease is not stuck. */
  uint64_t period = (uint64_t)(b->o.lease_ttl_ms > b->o.sweep_interval_ms ? b->o.lease_ttl_ms
                                                                            : b->o.sweep_interval_ms);
  if (quiet <= 3 * period) return;
  char secs[32];
  snprintf(secs, sizeof secs, "%llu", (unsigned long long)(quiet / 1000));
  rtq_log(RTQ_LOG_ERROR,
          "the leader lease is held by an id that does not sweep: no recovery, promotion or "
          "timeout backstop runs (a wedged broker, or a lease written by hand)",
          "holder", holder, "seconds", secs, NULL);
  set_unswept(b, quiet / 1000 > 0 ? quiet / 1000 : 1);
}

bool rtq_broker_is_leader(const rtq_broker *b) {
  if (b->o.ignore_lease) return true;
  return b->leader && rtq__mono_ms() < b->lease_valid_until;
}

int rtq_broker_lease_tick(rtq_broker *b) {
  if (b->o.ignore_lease) return 0;
  uint64_t ttl = (uint64_t)b->o.lease_ttl_ms;
  uint64_t sent = rtq__mono_ms();
  if (b->leader && sent < b->lease_valid_until && sent < b->lease_renewed_at + ttl / 3) return 0;

  long long held = 0;
  int rc = rtq__broker_connected(b);
  if (rc == 0) rc = run_lease(b, true, &held);
  if (rc != 0) {
    if (b->leader && rtq__mono_ms() >= b->lease_valid_until) {
      b->leader = false;
      rtq_log(RTQ_LOG_WARNING, "leader lease lapsed: redis could not renew it", "broker", b->id,
              NULL);
    }
    return rc;
  }
  rtq__broker_health_touch(b); /* Redis answered: alive, leading or standing by */
  if (held == 1) {
    if (!b->leader)
      rtq_log(RTQ_LOG_INFO, "acquired the leader lease", "broker", b->id, NULL);
    if (b->lease_alarm) set_unswept(b, 0);
    b->held_by[0] = '\0';
    b->leader = true;
    b->standby_logged = false;
    b->lease_renewed_at = sent;
    b->lease_valid_until = sent + ttl - ttl / 10;
    return 0;
  }
  if (b->leader) rtq_log(RTQ_LOG_WARNING, "lost the leader lease", "broker", b->id, NULL);
  b->leader = false;
  log_standby(b);
  watch_holder(b);
  return 1;
}

int rtq_broker_lease_release(rtq_broker *b) {
  if (b->o.ignore_lease || !b->leader || b->conn == NULL) return 0;
  b->leader = false;
  long long released = 0;
  int rc = run_lease(b, false, &released);
  if (rc == 0 && released == 1)
    rtq_log(RTQ_LOG_INFO, "released the leader lease", "broker", b->id, NULL);
  return rc;
}
