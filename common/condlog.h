/*
 * condlog.h - log a condition, not every event of it.
 *
 * Some conditions recur on every round of a loop while they last (the
 * broker's history over its cap trims on nearly every sweep at steady
 * load). A line per round floods the log; one line when the condition
 * starts, one a while as it goes on and one when it ends says the same.
 * rtq_condlog decides which line is due; the caller writes it.
 *
 *   note(n > 0)  the condition holds this round (n: what it did, e.g. tasks
 *                deleted); note(0) it does not.
 *   START        first round that holds after an END (or ever)
 *   STILL        it has held since the last line, every_ms ago or more
 *   END          a round that does not hold, after a START or STILL
 * No two lines come less than every_ms apart: a line that is not due yet
 * waits, and *count then sums every n since the previous line, so a
 * condition that flaps every few rounds still costs one line per every_ms.
 */
#ifndef RTQ_CONDLOG_H
#define RTQ_CONDLOG_H

#include <stdbool.h>
#include <stdint.h>

/* Value type; {.every_ms = N} is a fresh one. */
typedef struct rtq_condlog {
  uint64_t every_ms;  /* least time between two lines */
  bool on;            /* START logged, END not yet */
  bool logged;        /* a line was logged (at logged_at) */
  uint64_t logged_at; /* ms, any monotonic clock */
  uint64_t count;     /* sum of n since the last line */
} rtq_condlog;

typedef enum rtq_condlog_line {
  RTQ_CONDLOG_NONE = 0,
  RTQ_CONDLOG_START,
  RTQ_CONDLOG_STILL,
  RTQ_CONDLOG_END
} rtq_condlog_line;

/* Records one round at now_ms. Returns the line due now, or NONE; with a
 * line, *count (may be NULL) is the sum of n since the previous line. */
rtq_condlog_line rtq_condlog_note(rtq_condlog *c, uint64_t now_ms, uint64_t n, uint64_t *count);

#endif
