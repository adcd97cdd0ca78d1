/* step.c - the entries per call of the recover and backstop calls (step.h). */
#include "step.h"

void rtq__step_init(rtq__step *s, int min, int start, int max) {
  s->min = min;
  s->max = max;
  s->n = start < min ? min : start > max ? max : start;
}

void rtq__step_update(rtq__step *s, int used, uint64_t elapsed_us) {
  if (elapsed_us > RTQ__STEP_TARGET_US) {
    uint64_t n = (uint64_t)s->n * RTQ__STEP_TARGET_US / elapsed_us;
    s->n = n < (uint64_t)s->min ? s->min : (int)n;
  } else if (used >= s->n && elapsed_us * 2 <= RTQ__STEP_TARGET_US) {
    /* Only a full call says that a larger one has the entries to read. */
    s->n = s->n > s->max / 2 ? s->max : s->n * 2;
  }
}
