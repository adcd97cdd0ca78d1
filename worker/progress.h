/*
 * progress.h - coalescing of progress reports. Pure logic, no I/O.
 *
 * A handler may report progress a million times a second; Redis sees at
 * most one write per task per interval. The coalescer keeps only the
 * latest value; a write is due when there is an unwritten value and the
 * interval has passed since the last write (the first is due at once).
 * Whatever is still unwritten when the task ends rides along with the
 * completion step (finish.lua takes progress arguments), so the last
 * report is always delivered.
 */
#ifndef RTQ_WORKER_PROGRESS_H
#define RTQ_WORKER_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTQ__PROGRESS_MSG_MAX 1024

/* Storage the caller owns: zero it (or rtq__prog_init), rtq__prog_destroy. */
typedef struct rtq__prog {
  double pct;
  char *msg;        /* malloc'd, NUL-terminated; NULL = no message */
  bool pending;     /* a value not yet written */
  uint64_t last_sent; /* ms; 0 = never written */
} rtq__prog;

void rtq__prog_init(rtq__prog *p);
void rtq__prog_destroy(rtq__prog *p);
/* Records the latest report (pct clamped to 0..100, NaN = 0; msg copied,
 * cut to RTQ__PROGRESS_MSG_MAX bytes, NULL = none). 0 or RTQ_ENOMEM. */
int rtq__prog_set(rtq__prog *p, double pct, const char *msg, size_t len);
/* True when a write is due at now (ms). */
bool rtq__prog_due(const rtq__prog *p, uint64_t now, int interval_ms);
/* The pending value was written at now. */
void rtq__prog_sent(rtq__prog *p, uint64_t now);

/* Clamps like rtq__prog_set. */
double rtq__pct_clamp(double pct);
/* Formats a percentage for Redis: at most two decimals, no trailing zeros
 * ("42", "42.5", "0.01"). buf must hold 16 bytes. */
const char *rtq__pct_format(double pct, char *buf);

#endif
