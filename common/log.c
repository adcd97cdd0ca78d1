/*
 * log.c - logfmt lines, one write(2) each.
 *
 * A line is assembled in a fixed buffer on the stack and written with a
 * single write(2), so lines from concurrent threads (and processes sharing
 * the fd) never interleave, and logging needs no lock and no allocation.
 * A line that would not fit is cut and ends with truncated=true.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "rtq/common.h"

/* PIPE_BUF on Linux: a write of at most this many bytes to a pipe (stderr
 * under a supervisor or docker) is atomic, so a line is never split. */
#define LINE_MAX_BYTES 4096
/* Room kept at the end of the buffer for " truncated=true\n". */
#define TAIL_RESERVE 24

static atomic_int log_level = RTQ_LOG_INFO;
static atomic_int log_fd = -1;

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

const char *rtq_log_level_name(rtq_log_level l) {
  if ((int)l < RTQ_LOG_DEBUG || (int)l > RTQ_LOG_ERROR) return "UNKNOWN";
  return level_names[l];
}

int rtq_log_level_parse(const char *s, rtq_log_level *out) {
  if (s == NULL || out == NULL) return RTQ_EINVAL;
  for (int i = RTQ_LOG_DEBUG; i <= RTQ_LOG_ERROR; i++) {
    if (strcasecmp(s, level_names[i]) == 0) {
      *out = (rtq_log_level)i;
      return 0;
    }
  }
  if (strcasecmp(s, "WARN") == 0) {
    *out = RTQ_LOG_WARNING;
    return 0;
  }
  return RTQ_EINVAL;
}

void rtq_log_set_level(rtq_log_level l) { atomic_store(&log_level, (int)l); }
rtq_log_level rtq_log_get_level(void) { return (rtq_log_level)atomic_load(&log_level); }
void rtq_log_set_fd(int fd) { atomic_store(&log_fd, fd); }

typedef struct line {
  char buf[LINE_MAX_BYTES];
  size_t len;
  int truncated;
} line;

/* All or nothing: a piece is never cut, so an escape sequence cannot lose
 * its second half and swallow the closing quote. After the first piece that
 * does not fit, nothing more is added. */
static void put(line *l, const char *p, size_t n) {
  if (l->truncated) return;
  if (n > LINE_MAX_BYTES - TAIL_RESERVE - l->len) {
    l->truncated = 1;
    return;
  }
  memcpy(l->buf + l->len, p, n);
  l->len += n;
}

/* For the closing quote only: it uses the reserve, so a cut value still
 * ends its quotes. */
static void put_closing_quote(line *l) { l->buf[l->len++] = '"'; }

static void put_str(line *l, const char *s) { put(l, s, strlen(s)); }

static int needs_quotes(const char *s) {
  if (*s == '\0') return 1;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f) return 1;
  }
  return 0;
}

/* Writes a value, quoted when needed. Control bytes become \n, \r, \t or
 * \xHH, so no value can end the line early or inject a fake key. */
static void put_value(line *l, const char *s, int force_quotes) {
  if (!force_quotes && !needs_quotes(s)) {
    for (const char *p = s; *p; p++) put(l, p, 1);
    return;
  }
  if (l->truncated) return;
  put(l, "\"", 1);
  if (l->truncated) return; /* no opening quote, so no closing one */
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    char esc[5];
    switch (*p) {
      case '"': put(l, "\\\"", 2); break;
      case '\\': put(l, "\\\\", 2); break;
      case '\n': put(l, "\\n", 2); break;
      case '\r': put(l, "\\r", 2); break;
      case '\t': put(l, "\\t", 2); break;
      default:
        if (*p < 0x20 || *p == 0x7f) {
          snprintf(esc, sizeof esc, "\\x%02x", *p);
          put(l, esc, 4);
        } else {
          put(l, (const char *)p, 1);
        }
    }
  }
  put_closing_quote(l);
}

/* Keys come from code, but a key is never allowed to break the format:
 * anything outside [A-Za-z0-9_.-] becomes '_'. */
static void put_key(line *l, const char *k) {
  if (*k == '\0') k = "_";
  for (const unsigned char *p = (const unsigned char *)k; *p; p++) {
    int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '_' || *p == '.' || *p == '-';
    char c = ok ? (char)*p : '_';
    put(l, &c, 1);
  }
}

static void put_timestamp(line *l) {
  struct timespec ts;
  struct tm tm;
  char tbuf[40];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(tbuf + n, sizeof tbuf - n, ".%03ldZ", ts.tv_nsec / 1000000L);
  put_str(l, "ts=");
  put_str(l, tbuf);
}

static void emit(const line *l) {
  int fd = atomic_load(&log_fd);
  if (fd < 0) fd = STDERR_FILENO;
  const char *p = l->buf;
  size_t left = l->len;
  /* One write(2) in practice; the loop only covers a signal or a short
   * write on a full pipe, where nothing better than finishing is possible. */
  while (left > 0) {
    ssize_t n = write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= (size_t)n;
  }
}

void rtq_log(rtq_log_level level, const char *msg, ...) {
  if ((int)level < atomic_load(&log_level)) return;
  int saved_errno = errno; /* callers often log right before reading errno */

  line l;
  l.len = 0;
  l.truncated = 0;
  put_timestamp(&l);
  put_str(&l, " level=");
  put_str(&l, rtq_log_level_name(level));
  put_str(&l, " msg=");
  put_value(&l, msg ? msg : "", 1);

  va_list ap;
  va_start(ap, msg);
  for (;;) {
    const char *k = va_arg(ap, const char *);
    if (k == NULL) break;
    const char *v = va_arg(ap, const char *);
    if (v == NULL) continue;
    put(&l, " ", 1);
    put_key(&l, k);
    put(&l, "=", 1);
    put_value(&l, v, 0);
  }
  va_end(ap);

  if (l.truncated) {
    static const char tail[] = " truncated=true";
    memcpy(l.buf + l.len, tail, sizeof tail - 1);
    l.len += sizeof tail - 1;
  }
  l.buf[l.len++] = '\n';
  emit(&l);
  errno = saved_errno;
}
