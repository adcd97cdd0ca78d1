/*
 * errors.c - error codes, task states and name validation.
 *
 * The messages and symbolic names are generated from RTQ_ERRNO_MAP so the
 * list in rtq/common.h stays the only place a code is defined.
 */
#include "rtq/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "errbuf.h"

RTQ_EXTERN const char *rtq_strerror(int err) {
  switch (err) {
    case RTQ_OK:
      return "success";
#define RTQ__ERRNO_MSG(name, val, msg) \
  case RTQ_E##name:                    \
    return msg;
      RTQ_ERRNO_MAP(RTQ__ERRNO_MSG)
#undef RTQ__ERRNO_MSG
    default:
      return "unrecognised error code";
  }
}

RTQ_EXTERN const char *rtq_err_name(int err) {
  switch (err) {
    case RTQ_OK:
      return "RTQ_OK";
#define RTQ__ERRNO_NAME(name, val, msg) \
  case RTQ_E##name:                     \
    return "RTQ_E" #name;
      RTQ_ERRNO_MAP(RTQ__ERRNO_NAME)
#undef RTQ__ERRNO_NAME
    default:
      /* Not a valid C identifier on purpose: it cannot be mistaken for a
       * real code in logs. */
      return "RTQ_E?";
  }
}

/* Indexed by rtq_status; the strings are the protocol's, see common.h. */
static const char *const status_names[RTQ_STATUS_COUNT] = {
    "pending", "running", "completed", "failed", "cancelled", "timeout",
};

RTQ_EXTERN const char *rtq_status_name(rtq_status s) {
  if ((int)s < 0 || (int)s >= RTQ_STATUS_COUNT) return "unknown";
  return status_names[s];
}

RTQ_EXTERN int rtq_status_parse(const char *s, rtq_status *out) {
  if (s == NULL || out == NULL) return RTQ_EINVAL;
  for (int i = 0; i < RTQ_STATUS_COUNT; i++) {
    if (strcmp(s, status_names[i]) == 0) {
      *out = (rtq_status)i;
      return 0;
    }
  }
  return RTQ_EINVAL;
}

RTQ_EXTERN int rtq_status_is_terminal(rtq_status s) {
  return s == RTQ_STATUS_COMPLETED || s == RTQ_STATUS_FAILED || s == RTQ_STATUS_CANCELLED ||
         s == RTQ_STATUS_TIMEOUT;
}

/* ASCII only, independent of the locale: a name must mean the same bytes on
 * every machine that reads it. */
static int name_char_ok(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

RTQ_EXTERN int rtq_validate_name(const char *s) {
  if (s == NULL) return RTQ_EINVAL;
  size_t n = 0;
  for (; s[n] != '\0'; n++) {
    if (n >= 128 || !name_char_ok((unsigned char)s[n])) return RTQ_EINVAL;
  }
  return n > 0 ? 0 : RTQ_EINVAL;
}

int rtq__errf(int code, char *errbuf, size_t errcap, const char *fmt, ...) {
  if (errbuf != NULL && errcap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, errcap, fmt, ap);
    va_end(ap);
  }
  return code;
}
