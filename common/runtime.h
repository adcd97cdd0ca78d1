/*
 * runtime.h - the fixed buckets of the task run-time histogram.
 *
 * A worker measures each handler run on its monotonic clock (claim to
 * hand-off), puts it in one of these buckets and sends, per finish.lua
 * call, a count per touched (queue, bucket) and the sum; finish.lua adds
 * them to P:runtime:<queue> (docs/PROTOCOL.md section 2), whose fields are
 * the buckets' upper bounds as /metrics prints them ("le"), so that
 * `redis-cli HGETALL` reads like the histogram. The counts kept are per
 * bucket (not cumulative); /metrics makes them cumulative.
 *
 * The bounds, in seconds: 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30
 * 60 120 300 600, then +Inf. Changing them changes the meaning of counts
 * already kept: keep finish.lua's RUN_LE list the same (test_keys checks).
 */
#ifndef RTQ_RUNTIME_H
#define RTQ_RUNTIME_H

#include <stdint.h>

#define RTQ__RUN_BUCKETS 17

/* Upper bound of bucket i (inclusive) in microseconds, i < RTQ__RUN_BUCKETS - 1. */
extern const uint64_t rtq__run_bound_us[RTQ__RUN_BUCKETS - 1];
/* The field names of P:runtime:<queue>, "0.005" .. "+Inf". */
extern const char *const rtq__run_le[RTQ__RUN_BUCKETS];

/* Protocol 2's field names of {ns:Q}:rt for the same buckets, "le_0.005"
 * .. "le_600", "le_inf" (field names must be valid names: no '+'); the
 * hash also holds "count" and "sum_ms". */
extern const char *const rtq__run_le2[RTQ__RUN_BUCKETS];

/* The bucket of a run of us microseconds: the first whose bound is >= us. */
int rtq__run_bucket(uint64_t us);

#endif
