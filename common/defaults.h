/*
 * defaults.h - protocol-wide constants and interval defaults.
 *
 * Why these intervals (docs/OPERATIONS.md repeats this for operators):
 * - A worker refreshes its heartbeat every RTQ_HEARTBEAT_INTERVAL_MS and
 *   the record lives RTQ_HEARTBEAT_TTL_MS: six missed beats (a GC-like
 *   stall, a slow Redis failover) before the broker calls it dead, yet a
 *   crashed worker's tasks come back within about half a minute.
 * - The broker sweeps every RTQ_SWEEP_INTERVAL_MS, so a delayed task is
 *   promoted within 1 s of its due time and a deadline is noticed within
 *   one sweep.
 * - The leader lease (RTQ_LEASE_TTL_MS) is renewed every third of its life;
 *   a dead leader is replaced within the lease time.
 * - RTQ_TIMEOUT_GRACE_MS is how long past a deadline the broker waits
 *   before it steps in for a silent worker; RTQ_KILL_GRACE_MS is how long a
 *   worker lets a cancelled handler wind down before it kills the child
 *   (process isolation) or abandons the thread.
 */
#ifndef RTQ_DEFAULTS_H
#define RTQ_DEFAULTS_H

#define RTQ_DEFAULT_QUEUE "default"
#define RTQ_HEARTBEAT_INTERVAL_MS 5000
#define RTQ_HEARTBEAT_TTL_MS 30000
#define RTQ_SWEEP_INTERVAL_MS 1000
#define RTQ_LEASE_TTL_MS 10000
#define RTQ_TIMEOUT_GRACE_MS 5000
#define RTQ_KILL_GRACE_MS 5000
#define RTQ_SHUTDOWN_GRACE_MS 25000
#define RTQ_MAX_DELIVERIES 3
#define RTQ_RETRY_BACKOFF_MS 1000
#define RTQ_CANCEL_FLAG_TTL_MS 3600000
#define RTQ_PROGRESS_MIN_INTERVAL_MS 100
#define RTQ_DEAD_LETTER_MAX 10000
#define RTQ_DEAD_PAYLOAD_EXCERPT 4096
#define RTQ_BLOCK_TIMEOUT_S 2
/* rtq-worker --unknown-task requeue: a task no handler of this worker
 * serves waits this long in P:delayed, at most this many times. */
#define RTQ_UNKNOWN_TASK_DELAY_MS 5000
#define RTQ_UNKNOWN_TASK_MAX_HANDBACKS 5

/* Redis connection timeouts (rtq_conn_options): opening a connection, and
 * waiting for one reply. The broker waits less for a reply than producers
 * and workers do: a sweep that hangs on a slow server holds up every
 * timeout, promotion and recovery behind it. */
#define RTQ_CONNECT_TIMEOUT_MS 2000
#define RTQ_COMMAND_TIMEOUT_MS 5000
#define RTQ_BROKER_COMMAND_TIMEOUT_MS 2000

/* Error codes written to error_code by rtq itself (handlers use their own). */
#define RTQ_CODE_WORKER_LOST "WORKER_LOST"
#define RTQ_CODE_WORKER_CRASH "WORKER_CRASH"
#define RTQ_CODE_TIMEOUT "TIMEOUT"
#define RTQ_CODE_CANCELLED "CANCELLED"
#define RTQ_CODE_TOO_LARGE "PAYLOAD_TOO_LARGE"
#define RTQ_CODE_UNKNOWN_TASK "UNKNOWN_TASK"
#define RTQ_CODE_NO_TASK_RECORD "NO_TASK_RECORD"
#define RTQ_CODE_BAD_SIGNATURE "BAD_SIGNATURE"
#define RTQ_CODE_HANDLER_ERROR "HANDLER_ERROR"

/* Reconnect backoff cap for redis-sentinel:// and redis+cluster:// URLs
 * (rtq_conn and the worker's connections): a failover changes the address,
 * and the new one is tried within this long of being named. */
#define RTQ_FAILOVER_BACKOFF_MAX_MS 1000

#endif
