/*
 * internal.h - the broker's state and the phases of a sweep. Included only
 * by the broker's own .c files.
 *
 * Batch sizes bound the work of one sweep, so a sweep stays short (and the
 * lease is renewed on time) however large a backlog is; whatever is left
 * waits for the next sweep, one sweep_interval later.
 */
#ifndef RTQ_BROKER_INTERNAL_H
#define RTQ_BROKER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "broker.h"
#include "clock.h"
#include "conn.h"
#include "keys2.h"

/* Dead workers looked at per sweep. */
#define RTQ_BROKER_DEAD_WORKERS_PER_SWEEP 100
/* Entries recovered per sweep, over all dead workers. */
#define RTQ_BROKER_RECOVER_PER_SWEEP 2000
struct rtq_broker {
  rtq_broker_options o;
  rtq_keys2 keys2;
  struct rtq__broker2 *v2;   /* the sweeps' cursors (internal2.h) */
  struct rtq_sign_keys *sign_keys; /* the producers' key that signs the ends
                                    * the broker writes (sign2.c) */
  bool refused;              /* the namespace holds protocol 1's data */
  char refused_why[512];
  char id[RTQ_NAME_MAX + 1];
  rtq_conn *conn;            /* NULL until the first connect succeeds */
  struct rtq_client *client; /* librtq, for the schedules; NULL until used */
  rtq__batch batch;          /* scratch, cleared before each use */
  rtq__batch batch2;

  /* Connection state (monotonic ms). */
  uint64_t connect_at;       /* no connect attempt before this */
  int connect_backoff_ms;
  bool redis_down;           /* an outage was logged; log the recovery */

  /* Lease (monotonic ms). */
  bool leader;
  uint64_t lease_renewed_at;
  uint64_t lease_valid_until;
  bool standby_logged;
  /* lease.c, standing by: who held the lease, the last sweep seen, since
   * when both stayed the same (monotonic ms), and whether the stats field
   * that reports an unswept lease is set. */
  char held_by[RTQ_NAME_MAX + 1];
  char held_sweep[32];
  uint64_t held_since;
  bool lease_alarm;
  uint64_t record_check_offset;  /* dead.c: where the next sweep's record check starts */

  /* Schedule, in Redis time (ms). */
  uint64_t now;              /* Redis TIME at the start of this sweep */
  uint64_t last_cleanup;     /* start of the last cleanup round; 0 = never */
  bool cleanup_active;
  int64_t next_due_in_ms;

  rtq_broker_counters total;
  rtq_broker_counters unflushed;
};

/* ---- connection.c ---- */

/* A connection that is up, connecting first when due. Returns 0 or
 * RTQ_ECONN/RTQ_EREDIS/RTQ_ENOMEM (logged once per outage). */
int rtq__broker_connected(rtq_broker *b);
/* Logs a failed phase: a connection error once per outage, anything else
 * every time. Returns rc. */
int rtq__broker_failed(rtq_broker *b, const char *phase, int rc);
/* Redis answered: ends a logged outage ("redis reachable again"). */
void rtq__broker_redis_up(rtq_broker *b);

/* ---- health.c ---- */

/* Sets the health file's mtime to now, when the options name one. */
void rtq__broker_health_touch(const rtq_broker *b);

/* Adds n to a counter in both the totals and the unflushed deltas. */
#define RTQ__COUNT(b, field, n)                 \
  do {                                          \
    (b)->total.field += (uint64_t)(n);          \
    (b)->unflushed.field += (uint64_t)(n);      \
  } while (0)

/* schedules.c: enqueue the runs of due schedules; close its client. */
int rtq__broker_schedules(rtq_broker *b);
void rtq__broker_schedules_close(rtq_broker *b);
/* Adds the unflushed counters to {ns}:broker; sweep_done also stamps
 * last_sweep_at. */
int rtq__broker_flush_stats(rtq_broker *b, bool sweep_done);

/* ---- dead.c: finding dead workers ---- */

/* A worker is dead when its score is at or below cutoff (silent for
 * heartbeat_ttl) or above ceiling (a heartbeat "from the future"), or when
 * its record is gone. */
typedef struct rtq__dead_range {
  uint64_t cutoff, ceiling;
} rtq__dead_range;

/* The walk's keys, and the recovery of one dead worker within *budget
 * entries (recover2.c). */
typedef struct rtq__dead_ops {
  int (*workers_key)(const rtq_broker *b, rtq_argv *a);
  int (*record_key)(const rtq_broker *b, rtq_argv *a, const char *wid);
  int (*recover)(rtq_broker *b, const char *wid, const rtq__dead_range *d, int *budget);
} rtq__dead_ops;

/* The scores of live workers at b->now: false while b->now is within
 * heartbeat_ttl of the epoch (nobody can be dead yet). */
bool rtq__broker_dead_range(const rtq_broker *b, rtq__dead_range *d);
/* Hands every dead worker found this sweep to ops->recover (at most
 * RTQ_BROKER_RECOVER_PER_SWEEP entries over all of them); an id that is
 * no valid name leaves the workers set. */
int rtq__broker_each_dead(rtq_broker *b, const rtq__dead_ops *ops);
/* Whether a worker is still dead by its score (a ZSCORE reply) and
 * whether its record is missing: the check before its entry goes. */
bool rtq__broker_still_dead(const redisReply *score, bool no_record, const rtq__dead_range *d);

/* ---- the phases (internal2.h); each returns 0 or an error code (not
 * logged yet) ---- */
int rtq__broker_promote2(rtq_broker *b);
int rtq__broker_recover2(rtq_broker *b);
int rtq__broker_audit2(rtq_broker *b);
int rtq__broker_prune2(rtq_broker *b);
int rtq__broker_backstop2(rtq_broker *b);
/* lease2.c: the lease script's step; the lease key and a broker counter
 * field ({ns}:broker "<counter>") appended to a command. */
int rtq__broker_lease2(rtq_broker *b, bool acquire, long long *held);
int rtq__broker_argv_lease(const rtq_broker *b, rtq_argv *a);
int rtq__broker_argv_stat(const rtq_broker *b, rtq_argv *a, const char *counter);

/* ---- util.c: shared by the phases ---- */

/* Decimal text of v in buf (at least 24 bytes). */
const char *rtq__u64s(uint64_t v, char *buf);

#endif
