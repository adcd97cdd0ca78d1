/*
 * log.h - logfmt lines on stderr, one per event:
 *   ts=2026-11-25T12:00:00.123Z level=INFO msg="claimed" task=01J... attempt=1
 * Values with spaces, quotes or '=' are quoted and escaped; control bytes are
 * escaped, so a hostile task id cannot forge a line. Thread-safe: each line
 * is written with one write(2). A line is at most 4096 bytes; a longer one
 * is cut and ends with truncated=true. Logging keeps errno unchanged.
 */
#ifndef RTQ_LOG_H
#define RTQ_LOG_H

typedef enum rtq_log_level {
  RTQ_LOG_DEBUG = 0,
  RTQ_LOG_INFO,
  RTQ_LOG_WARNING,
  RTQ_LOG_ERROR
} rtq_log_level;

/* "DEBUG", "INFO", "WARNING", "ERROR". */
const char *rtq_log_level_name(rtq_log_level l);
/* Case-insensitive; also accepts "WARN". Returns 0 or RTQ_EINVAL. */
int rtq_log_level_parse(const char *s, rtq_log_level *out);
/* Process-wide threshold (atomic). Default INFO. */
void rtq_log_set_level(rtq_log_level l);
rtq_log_level rtq_log_get_level(void);
/* Redirect output (tests); fd -1 restores stderr. The fd is borrowed: the
 * caller keeps it open until it sets another one. */
void rtq_log_set_fd(int fd);

/*
 * Logs msg with key/value pairs: a NULL-terminated list of alternating
 * const char* keys and const char* values. A NULL value is skipped.
 *   rtq_log(RTQ_LOG_INFO, "claimed", "task", id, "queue", q, NULL);
 */
void rtq_log(rtq_log_level level, const char *msg, ...);

#endif
