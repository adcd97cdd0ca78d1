/* cron.c - schedule expressions and their next run time (see cron.h). */
#include "cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "errbuf.h"
#include "rtq/common.h"

#define EVERY_MIN_MS 1000L
#define EVERY_MAX_MS (366L * 86400000L)
#define SEARCH_YEARS 8
#define LOOKBACK_MS (31LL * 86400000LL)

/* ---- parsing ---- */

typedef struct field {
  const char *what;
  int lo, hi;
  const char *const *names; /* names[i] is value lo + i; NULL: numbers only */
} field;

static const char *const MONTHS[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const WDAYS[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const field FIELDS[5] = {
    {"minute", 0, 59, NULL},          {"hour", 0, 23, NULL}, {"day of month", 1, 31, NULL},
    {"month", 1, 12, MONTHS}, {"day of week", 0, 7, WDAYS},
};

/* A number or a name of f at *p; advances *p. -1 when there is none. */
static int value(const field *f, const char **p) {
  const char *s = *p;
  if (isdigit((unsigned char)*s)) {
    long v = 0;
    while (isdigit((unsigned char)*s) && v < 1000) v = v * 10 + (*s++ - '0');
    if (isdigit((unsigned char)*s)) return -1;
    *p = s;
    return (int)v;
  }
  for (int i = 0; f->names != NULL && f->names[i] != NULL; i++) {
    if (strncasecmp(s, f->names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
      *p = s + 3;
      return f->lo + i;
    }
  }
  return -1;
}

/* Parses one field (NUL-terminated text) into a bit set. */
static int parse_field(const field *f, const char *text, uint64_t *bits, bool *star, char *errbuf, size_t errcap) {
  uint64_t set = 0;
  /* As in Vixie cron, a field that starts with '*' (a star, or a star
   * with a step) counts as unrestricted when the day fields combine. */
  *star = text[0] == '*';
  const char *p = text;
  for (;;) {
    int a, b, step = 1;
    const char *part = p;
    if (*p == '*') {
      a = f->lo, b = f->hi;
      p++;
    } else {
      if ((a = value(f, &p)) < 0) goto bad;
      b = a;
      if (*p == '-') {
        p++;
        if ((b = value(f, &p)) < 0) goto bad;
      } else if (*p == '/') {
        b = f->hi;
      }
    }
    if (*p == '/') {
      p++;
      const char *q = p;
      step = value(&(field){f->what, 0, 0, NULL}, &q);
      if (step < 1 || q == p) goto bad;
      p = q;
    }
    if (a < f->lo || b > f->hi || a > b) {
      return rtq__errf(RTQ_EINVAL, errbuf, errcap, "%s: \"%.*s\" is outside %d-%d or runs backwards", f->what,
                (int)strcspn(part, ","), part, f->lo, f->hi);
    }
    for (int v = a; v <= b; v += step) set |= 1ULL << v;
    if (*p == '\0') break;
    if (*p != ',') goto bad;
    p++;
    continue;
  bad:
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "%s: \"%.*s\" is not a value, range or step", f->what, (int)strcspn(part, ","),
              part);
  }
  *bits = set;
  return 0;
}

static const struct {
  const char *name, *fields;
} SHORTHANDS[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},  {"@midnight", "0 0 * * *"}, {"@hourly", "0 * * * *"},
};

int rtq_cron_parse(const char *expr, rtq_cron *out, char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (expr == NULL || out == NULL) return RTQ_EINVAL;
  rtq_cron c = {0};
  if (strncmp(expr, "@every ", 7) == 0) {
    long ms = 0;
    if (rtq_parse_duration_ms(expr + 7, EVERY_MIN_MS, EVERY_MAX_MS, &ms) != 0) {
      return rtq__errf(RTQ_EINVAL, errbuf, errcap, "@every takes a duration from 1s to 366 days (e.g. \"@every 90s\", \"@every 2h\")");
    }
    c.every_ms = ms;
    *out = c;
    return 0;
  }
  if (expr[0] == '@') {
    for (size_t i = 0; i < sizeof SHORTHANDS / sizeof SHORTHANDS[0]; i++)
      if (strcmp(expr, SHORTHANDS[i].name) == 0) return rtq_cron_parse(SHORTHANDS[i].fields, out, errbuf, errcap);
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "unknown shorthand (expected @yearly, @monthly, @weekly, @daily, @hourly or @every)");
  }
  char buf[256];
  if (strlen(expr) >= sizeof buf) {
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "expression longer than %zu characters", sizeof buf - 1);
  }
  strcpy(buf, expr);
  char *parts[6], *save = NULL;
  int n = 0;
  for (char *t = strtok_r(buf, " \t", &save); t != NULL && n < 6; t = strtok_r(NULL, " \t", &save)) parts[n++] = t;
  if (n != 5) {
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "expected 5 fields (minute hour day-of-month month day-of-week), found %d", n);
  }
  uint64_t bits[5];
  bool star[5];
  for (int i = 0; i < 5; i++) {
    int rc = parse_field(&FIELDS[i], parts[i], &bits[i], &star[i], errbuf, errcap);
    if (rc != 0) return rc;
  }
  c.minutes = bits[0];
  c.hours = (uint32_t)bits[1];
  c.mdays = (uint32_t)bits[2];
  c.months = (uint16_t)bits[3];
  c.wdays = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f); /* 7 is Sunday too */
  c.mday_star = star[2];
  c.wday_star = star[4];
  *out = c;
  return 0;
}

/* ---- time zones ---- */

bool rtq_cron_zone_known(const char *tz) {
  if (tz == NULL || tz[0] == '\0') return true;
  if (tz[0] == '/' || strstr(tz, "..") != NULL || strlen(tz) > 200) return false;
  for (const char *p = tz; *p; p++)
    if (!isalnum((unsigned char)*p) && strchr("_+-/", *p) == NULL) return false;
  const char *dir = getenv("TZDIR");
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir != NULL && dir[0] != '\0' ? dir : "/usr/share/zoneinfo", tz);
  return access(path, R_OK) == 0;
}

/* Sets TZ for the calls that follow; restore() puts the process's back. */
typedef struct zone_switch {
  char *saved;
  bool had, switched;
} zone_switch;

static void zone_enter(zone_switch *z, const char *tz) {
  z->switched = tz != NULL && tz[0] != '\0';
  if (!z->switched) return;
  const char *cur = getenv("TZ");
  z->had = cur != NULL;
  z->saved = cur != NULL ? strdup(cur) : NULL;
  setenv("TZ", tz, 1);
  tzset();
}

static void zone_leave(zone_switch *z) {
  if (!z->switched) return;
  if (z->had && z->saved != NULL) setenv("TZ", z->saved, 1);
  else unsetenv("TZ");
  free(z->saved);
  tzset();
}

/* ---- the search ---- */

static bool day_matches(const rtq_cron *c, const struct tm *w) {
  bool md = (c->mdays >> w->tm_mday) & 1, wd = (c->wdays >> w->tm_wday) & 1;
  if (c->mday_star || c->wday_star) return md && wd;
  return md || wd;
}

/* Calendar arithmetic on a wall-clock time held as if it were UTC (no
 * daylight saving): normalises the fields and sets the weekday. */
static void normalise(struct tm *w) {
  time_t t = timegm(w);
  gmtime_r(&t, w);
}

/* Moves *w (seconds 0) forward to the first wall-clock minute at or after
 * it that matches; false when none does within SEARCH_YEARS. */
static bool next_wall(const rtq_cron *c, struct tm *w) {
  int limit = w->tm_year + SEARCH_YEARS;
  while (w->tm_year <= limit) {
    if (!((c->months >> (w->tm_mon + 1)) & 1)) {
      w->tm_mon++, w->tm_mday = 1, w->tm_hour = 0, w->tm_min = 0;
    } else if (!day_matches(c, w)) {
      w->tm_mday++, w->tm_hour = 0, w->tm_min = 0;
    } else if (!((c->hours >> w->tm_hour) & 1)) {
      w->tm_hour++, w->tm_min = 0;
    } else if (!((c->minutes >> w->tm_min) & 1)) {
      w->tm_min++;
    } else {
      return true;
    }
    normalise(w);
  }
  return false;
}

/* The absolute time (ms) of wall-clock *w in the current zone, the first
 * one after after_ms; -1 when there is none.
 * 1. A time that happens twice has two: read as daylight time and as
 *    standard time; both read back as *w, and the earlier one is taken.
 * 2. A time in a spring-forward gap reads back as neither; the later of
 *    the two readings is the time after the gap (02:30 -> 03:30).
 * glibc's mktime with tm_isdst = -1 picks between 1's two readings from a
 * cache of earlier calls, so both are asked for explicitly. */
static int64_t absolute(const struct tm *w, int64_t after_ms) {
  int64_t best = -1, later = -1;
  bool exists = false;
  for (int isdst = 0; isdst <= 1; isdst++) {
    struct tm t = *w, back;
    t.tm_isdst = isdst;
    time_t s = mktime(&t);
    if (s == (time_t)-1) continue;
    int64_t ms = (int64_t)s * 1000;
    if (ms > later) later = ms;
    localtime_r(&s, &back);
    if (back.tm_mday != w->tm_mday || back.tm_hour != w->tm_hour || back.tm_min != w->tm_min) continue;
    exists = true;
    if (ms > after_ms && (best < 0 || ms < best)) best = ms;
  }
  if (!exists && later > after_ms) best = later;
  return best;
}

/* rtq_cron_next for the five-field forms, in the zone already set. */
static int next_in_zone(const rtq_cron *c, int64_t after_ms, int64_t *next_ms) {
  time_t s = (time_t)(after_ms >= 0 ? after_ms / 1000 : (after_ms - 999) / 1000);
  struct tm local, w = {0};
  localtime_r(&s, &local);
  /* The wall-clock minute after the one after_ms is in: runs are searched
   * strictly later in wall-clock time (cron.h, 2). */
  w.tm_year = local.tm_year, w.tm_mon = local.tm_mon, w.tm_mday = local.tm_mday;
  w.tm_hour = local.tm_hour, w.tm_min = local.tm_min + 1;
  normalise(&w);
  int rc = RTQ_EINVAL;
  for (int tries = 0; tries < 100000 && next_wall(c, &w); tries++) {
    int64_t at = absolute(&w, after_ms);
    if (at > 0) {
      *next_ms = at;
      rc = 0;
      break;
    }
    w.tm_min++;
    normalise(&w);
  }
  return rc;
}

int rtq_cron_next(const rtq_cron *c, const char *tz, int64_t anchor_ms, int64_t after_ms, int64_t *next_ms) {
  if (c == NULL || next_ms == NULL) return RTQ_EINVAL;
  if (c->every_ms > 0) {
    if (after_ms < anchor_ms) {
      *next_ms = anchor_ms;
    } else {
      int64_t k = (after_ms - anchor_ms) / c->every_ms + 1;
      *next_ms = anchor_ms + k * c->every_ms;
    }
    return 0;
  }
  if (!rtq_cron_zone_known(tz)) return RTQ_EINVAL;
  zone_switch z = {0};
  zone_enter(&z, tz);
  int rc = next_in_zone(c, after_ms, next_ms);
  zone_leave(&z);
  return rc;
}

int rtq_cron_due(const rtq_cron *c, const char *tz, int64_t anchor_ms, int64_t last_ms, int64_t now_ms,
                 int64_t *due_ms) {
  if (c == NULL || due_ms == NULL) return RTQ_EINVAL;
  if (c->every_ms > 0 && now_ms >= anchor_ms) {
    /* The latest anchor + k * every in (last_ms, now_ms], by arithmetic. */
    int64_t k = (now_ms - anchor_ms) / c->every_ms;
    int64_t at = anchor_ms + k * c->every_ms;
    if (at <= last_ms) return RTQ_ENOTFOUND;
    *due_ms = at;
    return 0;
  }
  if (c->every_ms > 0) return RTQ_ENOTFOUND; /* before its anchor */
  if (!rtq_cron_zone_known(tz)) return RTQ_EINVAL;
  /* Stepping from last_ms costs one search per run: start no further back
   * than 31 days (44,640 steps for a one-minute schedule). */
  int64_t from = last_ms;
  if (now_ms - from > LOOKBACK_MS) from = now_ms - LOOKBACK_MS;
  zone_switch z = {0};
  zone_enter(&z, tz);
  int64_t at = 0, n = 0;
  int rc = next_in_zone(c, from, &n);
  if (rc == 0 && n > now_ms) rc = RTQ_ENOTFOUND;
  while (rc == 0 && n <= now_ms) {
    at = n;
    if (next_in_zone(c, at, &n) != 0) break;
  }
  zone_leave(&z);
  if (rc == 0) *due_ms = at;
  return rc;
}
