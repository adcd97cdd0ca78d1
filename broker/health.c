/* health.c - the broker's side of the liveness file (common/health.h):
 * refreshed after each completed sweep and each lease step Redis answered,
 * so a standby broker stays healthy as long as it can reach Redis. */
#include <errno.h>
#include <string.h>

#include "health.h"
#include "internal.h"
#include "log.h"

void rtq__broker_health_touch(const rtq_broker *b) {
  if (b->o.health_file == NULL) return;
  if (rtq_health_touch(b->o.health_file) != 0)
    rtq_log(RTQ_LOG_WARNING, "cannot refresh the health file", "path", b->o.health_file, "error",
            strerror(errno), "broker", b->id, NULL);
}
