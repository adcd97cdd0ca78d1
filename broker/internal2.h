/*
 * internal2.h - the broker's phases (docs/PROTOCOL.md) and their state
 * between sweeps:
 *
 *   phase           function                script (common/lua2)
 *   deadlines       rtq__broker_backstop2   backstop  (live workers' lists)
 *   recover         rtq__broker_recover2    recover   (dead workers' lists)
 *   promote         rtq__broker_promote2    promote, deadletter (per queue)
 *   cleanup round   rtq__broker_prune2      prune     (per queue and status)
 *   schedules       librtq
 *
 * There is no history trim (finish caps the done lists itself) and no
 * cancel pass (workers read the `cr` field of their running tasks).
 *
 * Every queue of {ns}:queues is swept; the set is read again at each
 * Redis clock reading (each sweep and each promotion timer).
 */
#ifndef RTQ_BROKER_INTERNAL2_H
#define RTQ_BROKER_INTERNAL2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calls2.h"
#include "internal.h"
#include "keys2.h"
#include "scripts2.h"
#include "step.h"

/* Queues read from {ns}:queues at most; past it the rest wait (logged). */
#define RTQ_BROKER2_MAX_QUEUES 100000
/* Calls of one script on one queue per sweep (promote) and per list per
 * sweep (prune): 100 entries each. */
#define RTQ_BROKER2_CALLS_PER_QUEUE 10
/* Prune calls per sweep over all queues, while a round runs. */
#define RTQ_BROKER2_PRUNE_CALLS_PER_SWEEP 400
/* Backstop calls per sweep, and how often a pass over the live workers
 * starts (Redis ms). */
#define RTQ_BROKER2_BACKSTOP_CALLS_PER_SWEEP 50
#define RTQ_BROKER2_BACKSTOP_EVERY_MS 2000
/* Entries per recover and backstop call at most. The scripts take up to
 * 100, but a recover call of 100 redelivered tasks took 1.0 ms of Redis
 * time (median; 50: 0.55 ms) on the development machine, and no call
 * should take over 1 ms (docs/BROKER.md, "Protocol 2"). Below that the
 * step is fitted to each call's time (step.h), from
 * RTQ_BROKER2_STEP_START down to RTQ_BROKER2_STEP_MIN. */
#ifndef RTQ_BROKER2_RECOVER_PER_CALL
#define RTQ_BROKER2_RECOVER_PER_CALL 50
#endif
#ifndef RTQ_BROKER2_BACKSTOP_PER_CALL
#define RTQ_BROKER2_BACKSTOP_PER_CALL 50
#endif
#define RTQ_BROKER2_STEP_START 20
#define RTQ_BROKER2_STEP_MIN 5
/* Queues named in one worker record at most. */
#define RTQ_BROKER2_MAX_WORKER_QUEUES 1000

/* audit2.c, the keyspace audit of processing lists: keys per SCAN call
 * (its COUNT), steps per sweep at most (a SCAN call, or the next keys of a
 * larger reply: RTQ_BROKER2_AUDIT_PER_LOOK), and no further step once the
 * audit has taken this much of the sweep (broker's ms); lists waiting for
 * their second look, lists recovered and entries taken per sweep. Over
 * 1,000,000 task hashes a SCAN call took about 0.15 ms of Redis time
 * (median) with COUNT 250 and 0.6 ms with COUNT 1000 (docs/BROKER.md,
 * "The audit of processing lists"); a walk of 1,000,000 keys is then
 * about 4,000 calls, 100 sweeps. */
#define RTQ_BROKER2_AUDIT_COUNT 250
#define RTQ_BROKER2_AUDIT_SCANS_PER_SWEEP 40
#define RTQ_BROKER2_AUDIT_MS_PER_SWEEP 20
#define RTQ_BROKER2_AUDIT_SUSPECTS 256
#define RTQ_BROKER2_AUDIT_RECOVER_PER_SWEEP 16
#define RTQ_BROKER2_AUDIT_ENTRIES_PER_SWEEP 1000
/* Keys of a SCAN reply looked at per step (COUNT is only a hint to Redis:
 * a larger reply takes several steps), and the recoveries of one suspect
 * that may fail in a row (an error reply) before it waits for a walk. */
#define RTQ_BROKER2_AUDIT_PER_LOOK RTQ_BROKER2_AUDIT_COUNT
#define RTQ_BROKER2_AUDIT_RETRIES 5
/* Primaries one walk visits at most (a cluster's). */
#define RTQ_BROKER2_AUDIT_MAX_NODES 64

/* A processing list whose worker was not alive at its first look. */
typedef struct rtq__audit_suspect {
  char queue[RTQ_NAME_MAX + 1];
  char wid[RTQ_NAME_MAX + 1];
  uint64_t seen_at;         /* b->now of that look */
  int failures;             /* recoveries in a row that got an error reply */
} rtq__audit_suspect;

/* The v2 state, owned by the broker (b->v2). */
typedef struct rtq__broker2 {
  char **queues;            /* valid names of {ns}:queues, sorted */
  size_t nqueues;
  uint64_t queues_at;       /* b->now when read; 0: never */
  bool queues_capped;       /* logged that the set is larger than the cap */

  /* prune2.c: the round's next list (queue name, terminal status index). */
  char prune_queue[RTQ_NAME_MAX + 1];
  int prune_status;

  /* backstop2.c: the pass's ZSCAN cursor over {ns}:workers, the index in
   * that page, and where in that worker's lists the next call starts. */
  char bs_cursor[32];
  size_t bs_index;
  char bs_worker[RTQ_NAME_MAX + 1];
  size_t bs_queue;
  int64_t bs_offset;
  bool bs_active;
  uint64_t bs_pass_at;      /* b->now when the last pass started */

  /* audit2.c: the SCAN cursor, the primary it belongs to (and its index
   * in rtq_conn_primaries' order), the reply being looked at (its keys
   * from au_page_at on; the cursor moves to its cursor once every key was
   * looked at), the suspects, and what was logged. */
  char au_cursor[32];
  rtq_redis_endpoint au_node;
  int au_shard;
  redisReply *au_page;
  size_t au_page_at;
  size_t au_per_look;       /* RTQ_BROKER2_AUDIT_PER_LOOK; tests set fewer */
  rtq__audit_suspect *au_suspects; /* RTQ_BROKER2_AUDIT_SUSPECTS, on first use */
  size_t au_nsuspects;
  uint64_t au_cycles;       /* full walks over every primary */
  uint64_t au_lists;        /* processing lists seen in this walk */
  int au_refused;           /* SCAN refused, as last logged: 0 no, 1 by the ACL, 2 else */
  bool au_junk_logged, au_full_logged;

  /* Entries of the next backstop and recover call (step.h). */
  rtq__step bs_step, rc_step;
} rtq__broker2;

/* broker2.c: the state's life, and what the phases share. */
int rtq__broker2_new(rtq_broker *b);
void rtq__broker2_free(rtq_broker *b);
/* How ended tasks are kept (the shared settings). */
rtq__keep2 rtq__broker2_keep(const rtq_broker *b);
/* Reads {ns}:queues when not read at this b->now yet. */
int rtq__broker2_queues(rtq_broker *b);
/*
 * The queues worker wid serves by its record's `queues` field (name:weight
 * entries joined by ','), else (no record, no valid name) every queue.
 * *names is the caller's (rtq__broker2_names_free), or points at the
 * broker's queue list when *owned is false. Returns 0 or an error.
 */
int rtq__broker2_worker_queues(rtq_broker *b, const char *wid, char ***names, size_t *n,
                               bool *owned);
void rtq__broker2_names_free(char **names, size_t n);
/* The reply's text of a failed call, for a log line. */
const char *rtq__broker2_why(const rtq_broker *b, const redisReply *r);

/* recover2.c: recovers wid's list of queue as for a dead worker (no
 * reaping: the caller knows why) within *budget entries; *empty when the
 * list was seen empty, *moved the entries taken off it, *failed when a
 * call got an error reply or the connection failed (then nonzero). */
int rtq__broker2_recover_list(rtq_broker *b, const char *wid, const char *queue, int *budget,
                              bool *empty, uint64_t *moved, bool *failed);

/* sign2.c: with the broker's signing key, appends to a backstop call (a)
 * the signatures of the timeouts it may write for wid's list of queue
 * from offset (n entries), or to a recover call those of the ends it may
 * write for entries (n of them). 0 without a key; else 0 or an error. */
int rtq__broker2_sign_backstop(rtq_broker *b, rtq_argv *a, const char *queue, const char *wid, int64_t offset,
                               int n);
int rtq__broker2_sign_recover(rtq_broker *b, rtq_argv *a, const char *queue, const char *wid,
                              const redisReply *const *entries, size_t n);

#endif
