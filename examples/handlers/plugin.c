/*
 * plugin.c - the entry point of examples.so and the helpers the three
 * example handlers share.
 *
 *   rtq-worker --plugin /opt/rtq/lib/rtq/examples.so
 *
 * The worker dlopen()s the library and calls rtq_plugin_register(), the
 * only symbol it exports (everything else is hidden by the build).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "examples.h"

__attribute__((visibility("default"))) int rtq_plugin_register(rtq_worker *w);

int rtq_plugin_register(rtq_worker *w) {
  int rc = rtq__ex_register_file(w);
  if (rc == 0) rc = rtq__ex_register_email(w);
  if (rc == 0) rc = rtq__ex_register_export(w);
  return rc;
}

int rtq__ex_fail(rtq_task_ctx *t, const char *code, rtq_args *details, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  int rc = rtq_task_fail(t, code, msg, details);
  rtq_args_free(details);
  return rc;
}

rtq_args *rtq__ex_details(const char *key, const char *val) {
  rtq_args *d = rtq_args_new();
  if (d != NULL && rtq_args_set_str(d, key, val) != 0) {
    rtq_args_free(d);
    d = NULL;
  }
  return d;
}

int rtq__ex_int_arg(rtq_task_ctx *t, const char *key, int64_t def, int64_t lo, int64_t hi,
                    int64_t *out) {
  const rtq_args *a = rtq_task_args(t);
  if (a == NULL) {
    rtq__ex_fail(t, "INVALID_ARGUMENT", NULL, "out of memory reading the arguments");
    return -1;
  }
  if (!rtq_args_has(a, key)) {
    *out = def;
    return 0;
  }
  int64_t v;
  if (rtq_args_get_int(a, key, &v) != 0 || v < lo || v > hi) {
    rtq__ex_fail(t, "INVALID_ARGUMENT", rtq__ex_details("argument", key),
                 "%s must be an integer from %lld to %lld", key, (long long)lo, (long long)hi);
    return -1;
  }
  *out = v;
  return 0;
}

int rtq__ex_str_arg(rtq_task_ctx *t, const char *key, const char *def, char *buf, size_t cap) {
  const rtq_args *a = rtq_task_args(t);
  if (a == NULL) {
    rtq__ex_fail(t, "INVALID_ARGUMENT", NULL, "out of memory reading the arguments");
    return -1;
  }
  if (!rtq_args_has(a, key)) {
    if (def == NULL) {
      rtq__ex_fail(t, "INVALID_ARGUMENT", rtq__ex_details("argument", key), "%s is required", key);
      return -1;
    }
    snprintf(buf, cap, "%s", def);
    return 0;
  }
  const char *s;
  size_t len;
  if (rtq_args_get_str(a, key, &s, &len) != 0 || len == 0 || len >= cap ||
      memchr(s, '\0', len) != NULL) {
    rtq__ex_fail(t, "INVALID_ARGUMENT", rtq__ex_details("argument", key),
                 "%s must be a non-empty string of at most %zu bytes", key, cap - 1);
    return -1;
  }
  memcpy(buf, s, len);
  buf[len] = '\0';
  return 0;
}

const char *rtq__ex_errno_code(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return "FILE_NOT_FOUND";
    case EACCES:
    case EPERM:
      return "PERMISSION_DENIED";
    default:
      return "IO_ERROR";
  }
}

const char *rtq__ex_strerror(int err, char *buf, size_t cap) {
  /* The build defines _GNU_SOURCE: the GNU strerror_r returns the text,
   * which may or may not be buf. */
  return strerror_r(err, buf, cap);
}
