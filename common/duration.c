/* duration.c - the one parser of duration flags (see config.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rtq/common.h"

/* Length of the leading plain decimal ("12", "1.5", "0.25"), 0 when there
 * is none. strtod alone would also take "0x1p3", "1e3", "inf" or leading
 * white space, none of which is a spelling a person means as a duration. */
static size_t decimal_len(const char *s) {
  size_t i = 0, digits = 0;
  while (s[i] >= '0' && s[i] <= '9') i++, digits++;
  if (s[i] == '.') {
    i++;
    while (s[i] >= '0' && s[i] <= '9') i++, digits++;
  }
  return digits > 0 ? i : 0;
}

int rtq_parse_duration_ms(const char *s, long min_ms, long max_ms, long *out) {
  if (s == NULL || out == NULL) return RTQ_EINVAL;
  size_t n = decimal_len(s);
  if (n == 0) return RTQ_EINVAL;
  errno = 0;
  char *end = NULL;
  double v = strtod(s, &end);
  if (errno != 0 || end != s + n || !isfinite(v) || v < 0) return RTQ_EINVAL;
  double scale;
  if (*end == '\0' || strcmp(end, "s") == 0) scale = 1000;
  else if (strcmp(end, "ms") == 0) scale = 1;
  else if (strcmp(end, "m") == 0) scale = 60000;
  else if (strcmp(end, "h") == 0) scale = 3600000;
  else return RTQ_EINVAL;
  double ms = v * scale + 0.5;
  if (ms < (double)min_ms || ms >= (double)max_ms + 1.0) return RTQ_ERANGE;
  *out = (long)ms;
  return 0;
}
