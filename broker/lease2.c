/*
 * lease2.c - the broker's own keys: the leader lease ({ns}:lease, the
 * lease script of common/lua2) and the broker's counters, kept in a hash
 * of their own ({ns}:broker, one field per counter) since the namespace
 * has no namespace-wide stats hash.
 */
#include "internal2.h"

#include "calls2.h"
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
  return rtq__argv_add_key2(a, rtq_keys2_lease(&b->keys2));
}

int rtq__broker_argv_stat(const rtq_broker *b, rtq_argv *a, const char *counter) {
  int rc = rtq__argv_add_key2(a, rtq_keys2_broker(&b->keys2));
  if (rc == 0) rtq_argv_add_str(a, counter);
  return rc != 0 ? rc : a->oom ? RTQ_ENOMEM : 0;
}
