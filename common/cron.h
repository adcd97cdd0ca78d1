/*
 * cron.h - schedule expressions and their next run time.
 *
 * An expression is one of:
 *   - five fields "minute hour day-of-month month day-of-week", each a
 *     list (",") of "*", "N", "N-M", with an optional "/STEP" after "*",
 *     "N" (N to the field's end) or "N-M"; months take jan..dec and days
 *     of the week sun..sat (0 and 7 are both Sunday), case-insensitive.
 *     When both day fields are restricted (neither starts with '*'), a day
 *     matches either; otherwise it must match both, as in Vixie cron;
 *   - "@yearly" ("@annually"), "@monthly", "@weekly", "@daily"
 *     ("@midnight"), "@hourly": the usual five-field equivalents;
 *   - "@every DURATION": a fixed interval (the duration syntax of every
 *     rtq flag, at least 1 s, at most 366 days), counted in absolute time
 *     from the schedule's anchor.
 *
 * Time zones: the five-field forms are wall-clock times in a zone of the
 * system tz database (or the process's local zone when none is given);
 * libc's localtime_r and mktime do the calendar arithmetic, with TZ set
 * for the call. Daylight-saving changes:
 *   1. a wall-clock time that does not exist (the spring-forward gap) runs
 *      once, an hour later on the clock (02:30 -> 03:30: the time read with
 *      the offset before the change); further times of the same schedule
 *      inside the gap do not run again;
 *   2. a wall-clock time that happens twice (the fall-back hour) runs
 *      once, the first time: the next run is always searched strictly
 *      later in wall-clock time than the previous one, so a schedule that
 *      matches inside the repeated hour pauses for its second pass.
 * So a daily run is neither skipped nor doubled.
 *
 * Not thread-safe: the zone is switched with setenv("TZ") and tzset(),
 * which affect the whole process; callers are single-threaded (the broker,
 * the CLI) or serialise their calls.
 */
#ifndef RTQ_CRON_H
#define RTQ_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value type: a parsed expression. */
typedef struct rtq_cron {
  uint64_t minutes; /* bit m: minute m matches (0..59) */
  uint32_t hours;   /* bit h (0..23) */
  uint32_t mdays;   /* bit d (1..31) */
  uint16_t months;  /* bit m (1..12) */
  uint8_t wdays;    /* bit d (0..6, Sunday 0) */
  bool mday_star, wday_star;
  int64_t every_ms; /* > 0: "@every", the fields above are unused */
} rtq_cron;

/*
 * Parses expr into *out. Returns 0, or RTQ_EINVAL with the reason in errbuf
 * (naming the field and the part that is wrong). *out is unchanged on error.
 */
int rtq_cron_parse(const char *expr, rtq_cron *out, char *errbuf, size_t errcap);

/*
 * The first run strictly after after_ms (ms since the epoch), in zone tz
 * (NULL or "" = the process's local zone). For "@every", runs are
 * anchor_ms + k * every_ms; the five-field forms ignore anchor_ms, and
 * their runs fall on whole minutes.
 * Returns 0 and sets *next_ms; RTQ_EINVAL for a zone the tz database does
 * not know (checked, not silently taken as UTC) or when no run falls within
 * the next eight years (e.g. "0 0 31 2 *").
 */
int rtq_cron_next(const rtq_cron *c, const char *tz, int64_t anchor_ms, int64_t after_ms, int64_t *next_ms);

/*
 * The run a scheduler owes when it looks at a schedule at now_ms whose
 * last run was last_ms: the latest run in (last_ms, now_ms], so that runs
 * missed while no scheduler ran are skipped except the most recent one.
 * Returns 0 and sets *due_ms; RTQ_ENOTFOUND when no run is due yet; the
 * errors of rtq_cron_next. Bounded: it looks back at most 31 days from
 * now_ms (44,640 steps for a one-minute schedule).
 */
int rtq_cron_due(const rtq_cron *c, const char *tz, int64_t anchor_ms, int64_t last_ms, int64_t now_ms,
                 int64_t *due_ms);

/* True when tz names a zone of the system tz database. */
bool rtq_cron_zone_known(const char *tz);

#endif
