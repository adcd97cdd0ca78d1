/*
 * lease2.c - the broker's own keys under either protocol: the leader lease
 * ({ns}:lease under protocol 2, lease.lua of common/lua2) and the broker's
 * counters, which protocol 2 keeps in a hash of their own ({ns}:broker,
 * one field per counter) since it has no namespace-wide stats hash.
 */
#include "internal2.h"

#include "calls.h"
#include "scripts2.h"

int rtq__broker_lease2(rtq_broker *b, bool acquire, long long *held) {
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = NULL;
  int rc = rtq__call2_lease(&a, &b->keys2, false, b->id, b->o.lease_ttl_ms, acquire);
  if (rc == 0) rc = rtq_script2_run(b->conn, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0) *held = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
  if (r != NULL) freeReplyObject(r);
  return rc;
}

int rtq__broker_argv_lease(const rtq_broker *b, rtq_argv *a) {
  if (b->protocol == 2) return rtq__argv_add_key2(a, rtq_keys2_lease(&b->keys2));
  return rtq__argv_add_key(a, b->k.lease);
}

int rtq__broker_argv_stat(const rtq_broker *b, rtq_argv *a, const char *counter) {
  if (b->protocol == 2) {
    int rc = rtq__argv_add_key2(a, rtq_keys2_broker(&b->keys2));
    if (rc == 0) rtq_argv_add_str(a, counter);
    return rc != 0 ? rc : a->oom ? RTQ_ENOMEM : 0;
  }
  rtq__argv_add_key(a, b->k.stats);
  return rtq__argv_add_key(a, rtq_keys_stats_field(RTQ_BROKER_STATS_QUEUE, counter));
}
