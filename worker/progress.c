/* progress.c - the progress coalescer (model in progress.h). */
#include "progress.h"

#include "utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtq/common.h"

void rtq__prog_init(rtq__prog *p) { memset(p, 0, sizeof *p); }

void rtq__prog_destroy(rtq__prog *p) {
  free(p->msg);
  memset(p, 0, sizeof *p);
}

double rtq__pct_clamp(double pct) {
  if (isnan(pct) || pct < 0) return 0;
  return pct > 100 ? 100 : pct;
}

int rtq__prog_set(rtq__prog *p, double pct, const char *msg, size_t len) {
  p->pct = rtq__pct_clamp(pct);
  p->pending = true;
  if (msg == NULL) {
    free(p->msg);
    p->msg = NULL;
    return 0;
  }
  if (len > RTQ__PROGRESS_MSG_MAX) len = RTQ__PROGRESS_MSG_MAX;
  if (p->msg != NULL && strlen(p->msg) == len && memcmp(p->msg, msg, len) == 0) return 0;
  /* It goes into JSON events: bytes that are not UTF-8 become U+FFFD. */
  char *m = rtq__utf8_sanitize(msg, len, NULL);
  if (m == NULL) return RTQ_ENOMEM;
  free(p->msg);
  p->msg = m;
  return 0;
}

bool rtq__prog_due(const rtq__prog *p, uint64_t now, int interval_ms) {
  return p->pending && (p->last_sent == 0 || now >= p->last_sent + (uint64_t)interval_ms);
}

void rtq__prog_sent(rtq__prog *p, uint64_t now) {
  p->pending = false;
  p->last_sent = now ? now : 1;
}

const char *rtq__pct_format(double pct, char *buf) {
  snprintf(buf, 16, "%.2f", rtq__pct_clamp(pct));
  char *dot = strchr(buf, '.');
  if (dot != NULL) {
    char *end = buf + strlen(buf) - 1;
    while (end > dot && *end == '0') *end-- = '\0';
    if (end == dot) *end = '\0';
  }
  return buf;
}
