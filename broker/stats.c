/*
 * stats.c - the broker's counters in {ns}:broker (lease2.c).
 *
 * The scripts count per queue and status in {ns:Q}:stats. The broker
 * keeps its own counters (the list is in broker.h), plus last_sweep_at
 * (Redis ms of the last sweep the leader finished), so `rtq stats` and
 * redis-cli show that a broker acts. The counters are added once per
 * sweep, in one round trip; deltas that could not be written are kept for
 * the next sweep.
 */
#include "internal.h"

#include <string.h>

static int add_field(rtq_broker *b, rtq__batch *bt, const char *verb, const char *counter,
                     uint64_t v) {
  rtq_argv *a = rtq__batch_add(bt);
  if (a == NULL) return RTQ_ENOMEM;
  rtq_argv_add_str(a, verb);
  int rc = rtq__broker_argv_stat(b, a, counter);
  rtq_argv_add_u64(a, v);
  return a->oom ? RTQ_ENOMEM : rc;
}

int rtq__broker_flush_stats(rtq_broker *b, bool sweep_done) {
  rtq__batch *bt = &b->batch;
  rtq__batch_clear(bt);
  int rc = 0;
#define RTQ__FLUSH_ONE(name) \
  if (rc == 0 && b->unflushed.name > 0) rc = add_field(b, bt, "HINCRBY", #name, b->unflushed.name);
  RTQ_BROKER_COUNTER_LIST(RTQ__FLUSH_ONE)
#undef RTQ__FLUSH_ONE
  if (rc == 0 && sweep_done) rc = add_field(b, bt, "HSET", "last_sweep_at", b->now);
  if (rc == 0 && bt->n > 0) rc = rtq__batch_run(b->conn, bt);
  if (rc == 0) memset(&b->unflushed, 0, sizeof b->unflushed);
  return rc;
}
