/*
 * broker.h - rtq-broker, the coordinator, as a library with no event loop.
 *
 * The broker owns nothing a worker or a producer could not see: every
 * decision it takes is one of the scripts in common/lua2/, run against
 * Redis on every queue of {ns}:queues. What it adds is the clock: it
 * looks, at regular intervals, for
 *
 *   dead workers      {ns}:workers score older than the heartbeat TTL (or
 *                     in the future, or no record); each id of their
 *                     processing lists goes through the recover script
 *                     (back to its queue with the next attempt, or failed
 *                     WORKER_LOST past max_deliveries);
 *   silent deadlines  running tasks of live workers past deadline + grace:
 *                     the backstop script (timeout + cancel flag);
 *   due tasks         {ns:Q}:delayed (delays and retry backoff): promote;
 *   growth            ids in the done lists whose task hash has expired
 *                     (the prune script, a bounded round every
 *                     cleanup_interval).
 *
 * See internal2.h and docs/BROKER.md.
 *
 * Several brokers may run. A leader lease (the lease script) decides which one
 * acts; the others stand by and take over when the lease lapses. The lease
 * is an economy, not the safety net: every step is gated in Redis (LREM,
 * ZREM, status checks), so two brokers acting at once still recover,
 * promote and expire each task exactly once.
 *
 * Time: whatever decides the fate of a task (heartbeat age, deadlines, due
 * times) is measured with Redis TIME. The local monotonic clock only
 * paces the broker itself (lease renewal, reconnect backoff).
 *
 * Threading: a broker is used by one thread at a time.
 */
#ifndef RTQ_BROKER_H
#define RTQ_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Value type: every setting of a broker. rtq_broker_options_defaults()
 * fills the defaults documented in docs/BROKER.md. */
typedef struct rtq_broker_options {
  rtq_config config;       /* redis_url, ns, task_result_ttl, history, cleanup_interval,
                            * max_task_history, log_level, wait_replicas, wait_timeout
                            * (below command_timeout_ms when wait_replicas > 0) */
  int heartbeat_ttl_ms;    /* RTQ_HEARTBEAT_TTL: a worker silent this long is dead */
  int sweep_interval_ms;   /* RTQ_SWEEP_INTERVAL */
  int lease_ttl_ms;        /* RTQ_LEASE_TTL; renewed every third of it */
  int timeout_grace_ms;    /* RTQ_TIMEOUT_GRACE past a deadline before the backstop */
  int max_deliveries;      /* RTQ_MAX_DELIVERIES */
  int command_timeout_ms;  /* 2000: a frozen Redis costs at most this per command */
  int max_payload;         /* 1 MiB: larger envelopes are dead-lettered, as by workers;
                            * raise it together with the workers' --max-payload */
  int connect_timeout_ms;  /* 2000 */
  bool once;               /* one sweep, then exit */
  bool ignore_lease;       /* act without the lease (tests, diagnostics) */
  char id[128];            /* "" = host-pid-random */
  const char *health_file; /* NULL; else touched after each completed sweep and each lease
                            * step Redis answered (rtq-broker --health); borrowed */
  const char *signing_key_file; /* NULL; else the producers' key file
                            * that signs the tasks schedules create (workers
                            * with --task-keys run only signed tasks); borrowed */
} rtq_broker_options;

/* What rtq_broker_options_parse asks main() to do. */
typedef enum rtq_broker_action {
  RTQ_BROKER_RUN = 0,
  RTQ_BROKER_HELP,
  RTQ_BROKER_VERSION,
  RTQ_BROKER_PRINT_CONFIG   /* print the shared settings (config.h), exit */
} rtq_broker_action;

/* Fills o with the defaults (o is the caller's storage). */
void rtq_broker_options_defaults(rtq_broker_options *o);
/* Applies RTQ_* environment variables: the shared settings
 * (rtq_config_from_env) and the broker's own RTQ_HEARTBEAT_TTL,
 * RTQ_SWEEP_INTERVAL, RTQ_LEASE_TTL, RTQ_TIMEOUT_GRACE,
 * RTQ_MAX_DELIVERIES. Returns 0 or RTQ_EINVAL with errbuf naming the
 * variable. */
int rtq_broker_options_from_env(rtq_broker_options *o, char *errbuf, size_t errcap);
/*
 * Parses command-line flags (argv[0] is skipped) over o. "--flag value" and
 * "--flag=value" both work, and a flag's name may use '_' for '-'
 * ("--max_task_history"). Returns 0 with *action set, or RTQ_EINVAL with
 * errbuf naming the flag; o may then be half-applied and must not be used.
 */
int rtq_broker_options_parse(rtq_broker_options *o, int argc, char **argv,
                             rtq_broker_action *action, char *errbuf, size_t errcap);
/* The --help text; a static string. */
const char *rtq_broker_usage(void);

/*
 * The broker's counters; each is also a field of {ns}:broker, added to
 * after every sweep:
 *   sweeps                 sweeps run while holding the lease
 *   recovered              tasks of dead workers put back on their queue
 *   worker_lost            tasks failed WORKER_LOST (max_deliveries reached)
 *   recover_dropped        entries of tasks that had ended or moved on
 *   dead_workers           dead workers whose record was removed
 *   dead_lettered          entries that were no id or had no task
 *   cancelled_on_recovery  recovered tasks ended cancelled (cancel was asked)
 *   timeouts               running tasks ended timeout by the backstop
 *   promoted               delayed or retrying tasks put on their queue
 *   forgotten              ids of expired tasks pruned from the done lists
 *   schedule_runs          runs of periodic tasks enqueued
 *   unreplicated           outcome writes whose WAIT saw too few replicas
 *   orphans_recovered      processing lists of dead workers the worker walk
 *                          did not lead to, recovered by the audit (audit2.c)
 */
#define RTQ_BROKER_COUNTER_LIST(XX) \
  XX(sweeps)                        \
  XX(recovered)                     \
  XX(worker_lost)                   \
  XX(recover_dropped)               \
  XX(dead_workers)                  \
  XX(dead_lettered)                 \
  XX(cancelled_on_recovery)         \
  XX(timeouts)                      \
  XX(promoted)                      \
  XX(forgotten)                     \
  XX(schedule_runs)                  \
  XX(unreplicated)                   \
  XX(orphans_recovered)

/* Value type: totals since the broker started. */
typedef struct rtq_broker_counters {
#define RTQ__BROKER_COUNTER_FIELD(name) uint64_t name;
  RTQ_BROKER_COUNTER_LIST(RTQ__BROKER_COUNTER_FIELD)
#undef RTQ__BROKER_COUNTER_FIELD
} rtq_broker_counters;

typedef struct rtq_broker rtq_broker;

/*
 * Creates a broker from o (copied). Connects to Redis if it can, but a
 * Redis that is down is not an error: the broker keeps trying from its
 * ticks. Fails with RTQ_EINVAL (bad URL or namespace, errbuf says which),
 * RTQ_EPROTOCOL (the namespace holds the other protocol's data: proto.h,
 * errbuf says what to do), RTQ_ENOMEM or RTQ_EIO (no random bytes for the
 * id). The broker speaks o->config.protocol (1 or 2). The caller frees the
 * broker with rtq_broker_free.
 */
int rtq_broker_new(const rtq_broker_options *o, rtq_broker **out, char *errbuf, size_t errcap);
/* Releases the lease if held (best effort, bounded by the command
 * timeout), disconnects and frees. NULL does nothing. */
void rtq_broker_free(rtq_broker *b);

/* The broker's id (its lease owner value). Borrowed. */
const char *rtq_broker_id(const rtq_broker *b);
/* The options in force. Borrowed. */
const rtq_broker_options *rtq_broker_options_of(const rtq_broker *b);

/*
 * Takes or renews the lease when due (every lease_ttl/3 while held; every
 * call while not). Returns 0 when this broker holds a valid lease, 1 when
 * another broker does, or RTQ_ECONN/RTQ_EREDIS/RTQ_ENOMEM when Redis could
 * not answer (the lease is then kept only until it would have expired).
 */
int rtq_broker_lease_tick(rtq_broker *b);
/* True while this broker holds the lease and it has not lapsed locally. */
bool rtq_broker_is_leader(const rtq_broker *b);
/* Gives the lease back if held. Returns 0 or a connection error. */
int rtq_broker_lease_release(rtq_broker *b);

/*
 * One sweep: lease, timeout backstop, dead workers, delayed promotion,
 * history cap, and (when due) the cleanup of expired index entries and the
 * cancel-flag backstop. Each phase works on a bounded batch, so a sweep
 * stays short however large the backlog; the rest waits for the next one.
 * Returns:
 *   0          swept (or stood by: another broker holds the lease)
 *   RTQ_ECONN  Redis unreachable or timed out; logged once per outage, the
 *              next call reconnects with backoff; the sweep stopped there
 *   other      the first unexpected Redis error of a phase (logged); the
 *              later phases still ran
 */
int rtq_broker_sweep(rtq_broker *b);
/* The promotion phase alone (for a timer aimed at the next due time). Same
 * returns as rtq_broker_sweep. */
int rtq_broker_promote_due(rtq_broker *b);
/*
 * Milliseconds until the earliest delayed task is due, as learnt
 * by the last sweep or promotion: 0 when one is due now, -1 when none is
 * waiting or it is unknown.
 */
int64_t rtq_broker_next_due_in_ms(const rtq_broker *b);

/* Totals since start. Borrowed. */
const rtq_broker_counters *rtq_broker_counters_of(const rtq_broker *b);

/*
 * Runs the broker until SIGTERM or SIGINT (ev_glue.c, the one file that
 * knows libev): a sweep timer, a lease timer and a promotion timer. On a
 * signal it lets the current sweep finish, releases the lease and returns
 * 0; RTQ_EIO when the loop could not be set up; RTQ_EPROTOCOL when the
 * namespace turned out to hold the other protocol's data (a Redis that was
 * down at rtq_broker_new is checked at its first connect).
 */
int rtq_broker_run(rtq_broker *b);

/* Value type: a job run every every_ms on the loop's thread, only while
 * this broker holds the lease (rtq-broker: the throughput history). fn
 * must be bounded like a sweep step: it delays the loop while it runs. */
typedef struct rtq_broker_tick {
  int64_t every_ms;
  void (*fn)(void *arg);
  void *arg;
} rtq_broker_tick;
/* rtq_broker_run with a leader tick as well (NULL: none). */
int rtq_broker_run_with(rtq_broker *b, const rtq_broker_tick *tick);

#endif
