/* test_cron.c - schedule expressions and their run times (cron.c), with
 * the system tz database: Europe/Berlin across both daylight-saving
 * changes of 2026 (29 March 02:00 CET -> 03:00 CEST, 25 October
 * 03:00 CEST -> 02:00 CET). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cron.h"
#include "rtq/common.h"

static rtq_cron parse(const char *e) {
  rtq_cron c;
  char err[256];
  if (rtq_cron_parse(e, &c, err, sizeof err) != 0) fail_msg("\"%s\" refused: %s", e, err);
  return c;
}

/* ms of a UTC date and time. */
static int64_t utc(int y, int mo, int d, int h, int mi) {
  struct tm t = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi};
  return (int64_t)timegm(&t) * 1000;
}

static int64_t next(const char *e, const char *tz, int64_t after) {
  rtq_cron c = parse(e);
  int64_t n = 0;
  assert_int_equal(rtq_cron_next(&c, tz, 0, after, &n), 0);
  assert_true(n > after);
  return n;
}

static void test_cron_fields_names_and_steps(void **state) {
  (void)state;
  rtq_cron c = parse("*/15 9-17 1,15 jan-mar,DEC mon-fri");
  assert_int_equal(c.minutes, (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
  assert_int_equal(c.hours, 0x3fe00u); /* 9..17 */
  assert_int_equal(c.mdays, (1u << 1) | (1u << 15));
  assert_int_equal(c.months, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 12));
  assert_int_equal(c.wdays, 0x3e); /* 1..5 */
  assert_int_equal(parse("0 0 * * 7").wdays, 1);  /* 7 is Sunday */
  assert_int_equal(parse("0 0 * * 0").wdays, 1);
  assert_int_equal(parse("5/20 * * * *").minutes, (1ULL << 5) | (1ULL << 25) | (1ULL << 45));
  assert_int_equal(parse("10-20/5 * * * *").minutes, (1ULL << 10) | (1ULL << 15) | (1ULL << 20));
  rtq_cron d = parse("@daily");
  assert_int_equal(d.minutes, 1);
  assert_int_equal(d.hours, 1);
  assert_true(d.mday_star && d.wday_star);
  assert_int_equal(parse("@weekly").wdays, 1);
  assert_int_equal(parse("@every 90s").every_ms, 90000);
  assert_int_equal(parse("@every 2h").every_ms, 7200000);
}

static void test_cron_refuses_what_is_not_an_expression(void **state) {
  (void)state;
  static const struct {
    const char *expr, *says;
  } bad[] = {
      {"61 * * * *", "minute"},       {"* * * *", "expected 5 fields"}, {"* * * * * *", "expected 5 fields"},
      {"*/0 * * * *", "minute"},      {"5-1 * * * *", "minute"},        {"* 24 * * *", "hour"},
      {"* * 0 * *", "day of month"},  {"* * * 13 *", "month"},          {"* * * foo *", "month"},
      {"* * * * 8", "day of week"},   {"1,,2 * * * *", "minute"},       {"-1 * * * *", "minute"},
      {"@every 0s", "@every"},        {"@every 400d", "@every"},        {"@every soon", "@every"},
      {"@fortnightly", "shorthand"},  {"", "expected 5 fields"},         {"1-2-3 * * * *", "minute"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rtq_cron c = {.minutes = 42};
    char err[256] = "";
    if (rtq_cron_parse(bad[i].expr, &c, err, sizeof err) != RTQ_EINVAL) fail_msg("\"%s\" accepted", bad[i].expr);
    if (strstr(err, bad[i].says) == NULL) fail_msg("\"%s\": \"%s\" does not say %s", bad[i].expr, err, bad[i].says);
    assert_int_equal(c.minutes, 42);
  }
}

static void test_cron_next_in_utc(void **state) {
  (void)state;
  assert_int_equal(next("*/15 * * * *", "UTC", utc(2026, 12, 7, 10, 7)), utc(2026, 12, 7, 10, 15));
  assert_int_equal(next("*/15 * * * *", "UTC", utc(2026, 12, 7, 10, 15)), utc(2026, 12, 7, 10, 30));
  assert_int_equal(next("@yearly", "UTC", utc(2026, 12, 7, 10, 7)), utc(2027, 1, 1, 0, 0));
  assert_int_equal(next("0 9 * * mon", "UTC", utc(2026, 12, 7, 10, 0)), utc(2026, 12, 14, 9, 0)); /* a Monday */
  /* Both day fields restricted: the 13th or a Friday, whichever comes first. */
  assert_int_equal(next("0 0 13 * fri", "UTC", utc(2026, 12, 7, 0, 0)), utc(2026, 12, 11, 0, 0));
  assert_int_equal(next("0 0 29 2 *", "UTC", utc(2026, 12, 7, 0, 0)), utc(2028, 2, 29, 0, 0));
  /* A day field that starts with '*' is not a restriction: every other day
   * AND a Monday (Vixie cron), not every other day OR any Monday. 2026-12-07
   * is a Monday; the next odd-numbered Monday is the 21st. */
  assert_int_equal(next("0 0 */2 * mon", "UTC", utc(2026, 12, 7, 0, 0)), utc(2026, 12, 21, 0, 0));
  rtq_cron never = parse("0 0 31 2 *");
  int64_t n = 0;
  assert_int_equal(rtq_cron_next(&never, "UTC", 0, utc(2026, 1, 1, 0, 0), &n), RTQ_EINVAL);
  /* @every counts from its anchor. */
  rtq_cron ev = parse("@every 90s");
  assert_int_equal(rtq_cron_next(&ev, NULL, 1000, 1000, &n), 0);
  assert_int_equal(n, 91000);
  assert_int_equal(rtq_cron_next(&ev, NULL, 1000, 500, &n), 0);
  assert_int_equal(n, 1000);
}

/* Every run of a daily 02:30 schedule in Berlin from start for days days:
 * exactly one per local date, at 02:30 local, or at 03:30 on the day 02:30
 * does not exist. */
static void daily_across(int64_t start, int days, int gap_mday) {
  int64_t at = start;
  int last_mday = -1;
  for (int i = 0; i < days; i++) {
    at = next("30 2 * * *", "Europe/Berlin", at);
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    time_t s = (time_t)(at / 1000);
    struct tm l;
    localtime_r(&s, &l);
    unsetenv("TZ");
    tzset();
    assert_int_not_equal(l.tm_mday, last_mday);
    last_mday = l.tm_mday;
    if (l.tm_mday == gap_mday) {
      assert_int_equal(l.tm_hour, 3);
    } else {
      assert_int_equal(l.tm_hour, 2);
    }
    assert_int_equal(l.tm_min, 30);
  }
}

static void test_cron_daily_across_spring_forward_in_berlin(void **state) {
  (void)state;
  daily_across(utc(2026, 3, 26, 12, 0), 6, 29);
  /* The run of 29 March is at 01:30 UTC (03:30 CEST), once. */
  assert_int_equal(next("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12, 0)), utc(2026, 3, 29, 1, 30));
  assert_int_equal(next("30 2 * * *", "Europe/Berlin", utc(2026, 3, 29, 1, 30)), utc(2026, 3, 30, 0, 30));
}

static void test_cron_daily_across_fall_back_in_berlin(void **state) {
  (void)state;
  daily_across(utc(2026, 10, 22, 12, 0), 6, -1);
  /* 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET): once. */
  assert_int_equal(next("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12, 0)), utc(2026, 10, 25, 0, 30));
  assert_int_equal(next("30 2 * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 30)), utc(2026, 10, 26, 1, 30));
  /* An hourly schedule pauses for the repeated hour (cron.h, 2). */
  assert_int_equal(next("0 * * * *", "Europe/Berlin", utc(2026, 10, 25, 0, 0)), utc(2026, 10, 25, 2, 0));
}

static void test_cron_due_runs_only_the_latest_missed(void **state) {
  (void)state;
  rtq_cron h = parse("0 * * * *");
  int64_t due = 0;
  assert_int_equal(rtq_cron_due(&h, "UTC", 0, utc(2026, 12, 7, 10, 0), utc(2026, 12, 7, 13, 30), &due), 0);
  assert_int_equal(due, utc(2026, 12, 7, 13, 0));
  assert_int_equal(rtq_cron_due(&h, "UTC", 0, utc(2026, 12, 7, 13, 0), utc(2026, 12, 7, 13, 30), &due),
                   RTQ_ENOTFOUND);
  /* A minute schedule left for 60 days: bounded, still the latest run. */
  rtq_cron m = parse("* * * * *");
  assert_int_equal(rtq_cron_due(&m, "Europe/Berlin", 0, utc(2026, 6, 1, 0, 0), utc(2026, 7, 31, 0, 0) + 5000, &due),
                   0);
  assert_int_equal(due, utc(2026, 7, 31, 0, 0));
  rtq_cron ev = parse("@every 10s");
  assert_int_equal(rtq_cron_due(&ev, NULL, 0, 10000, 95000, &due), 0);
  assert_int_equal(due, 90000);
  assert_int_equal(rtq_cron_due(&ev, NULL, 0, 90000, 95000, &due), RTQ_ENOTFOUND);
}

static void test_cron_zones_are_checked_and_restored(void **state) {
  (void)state;
  assert_true(rtq_cron_zone_known("Europe/Berlin"));
  assert_true(rtq_cron_zone_known(NULL));
  assert_false(rtq_cron_zone_known("Nowhere/Atlantis"));
  assert_false(rtq_cron_zone_known("../../etc/passwd"));
  assert_false(rtq_cron_zone_known("/etc/localtime"));
  rtq_cron c = parse("@hourly");
  int64_t n = 0;
  assert_int_equal(rtq_cron_next(&c, "Nowhere/Atlantis", 0, 0, &n), RTQ_EINVAL);
  setenv("TZ", "America/New_York", 1);
  tzset();
  assert_int_equal(rtq_cron_next(&c, "Asia/Tokyo", 0, utc(2026, 12, 7, 10, 7), &n), 0);
  assert_string_equal(getenv("TZ"), "America/New_York");
  /* The process's zone (here New York) when none is given. */
  assert_int_equal(next("0 9 * * *", NULL, utc(2026, 12, 7, 0, 0)), utc(2026, 12, 7, 14, 0));
  unsetenv("TZ");
  tzset();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cron_fields_names_and_steps),
      cmocka_unit_test(test_cron_refuses_what_is_not_an_expression),
      cmocka_unit_test(test_cron_next_in_utc),
      cmocka_unit_test(test_cron_daily_across_spring_forward_in_berlin),
      cmocka_unit_test(test_cron_daily_across_fall_back_in_berlin),
      cmocka_unit_test(test_cron_due_runs_only_the_latest_missed),
      cmocka_unit_test(test_cron_zones_are_checked_and_restored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
