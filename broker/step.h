/*
 * step.h - how many entries the next call of a sweep script takes.
 *
 * A recover or backstop call's Redis time grows with its entries, and by
 * how much depends on what it finds (an entry it ends or redelivers costs
 * about three times one it only reads) and on the machine. So the step is
 * fitted to what the calls cost: each call's round trip is timed, a call
 * over RTQ__STEP_TARGET_US scales the next one down in proportion, and a
 * full call well under it doubles the next one, within [min, max]. The
 * round trip bounds the call's Redis time from above, so a loaded machine
 * only makes the steps smaller.
 */
#ifndef RTQ_BROKER_STEP_H
#define RTQ_BROKER_STEP_H

#include <stdint.h>

/* Round trip a call aims at: about 100 µs of Redis time plus loopback. */
#define RTQ__STEP_TARGET_US 150

typedef struct rtq__step {
  int n, min, max;
} rtq__step;

/* min <= start <= max, all >= 1. */
void rtq__step_init(rtq__step *s, int min, int start, int max);
/* After a call that asked for s->n entries, got `used` of them, and took
 * elapsed_us from send to reply. */
void rtq__step_update(rtq__step *s, int used, uint64_t elapsed_us);

#endif
