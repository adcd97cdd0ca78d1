/* duration.c - the one parser of duration flags (see config.h). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "rtq/common.h"

int rtq_parse_duration_ms(const char *s, long min_ms, long max_ms, long *out) {
  if (s == NULL || *s == '\0' || *s == '-' || *s == '+' || *s == ' ' || out == NULL)
    return RTQ_EINVAL;
  errno = 0;
  char *end = NULL;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || !isfinite(v) || v < 0) return RTQ_EINVAL;
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
