/*
 * clock.h - the process clocks every rtq component reads.
 *
 * Monotonic time measures intervals (timeouts, backoff, deadlines a process
 * keeps for itself); wall time stamps what other processes read
 * (created_at, a worker's start time). Deadlines that decide anything
 * across processes come from Redis TIME, never from these.
 */
#ifndef RTQ_CLOCK_H
#define RTQ_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in ns and in ms. */
uint64_t rtq__mono_ns(void);
uint64_t rtq__mono_ms(void);
/* CLOCK_REALTIME in ms since the Unix epoch. */
uint64_t rtq__wall_ms(void);

#endif
