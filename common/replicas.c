/*
 * replicas.c - WAIT after a write (replicas.h).
 */
#include "replicas.h"

#include "rtq/common.h"

int rtq_replicas_argv(rtq_argv *a, int replicas, int timeout_ms) {
  rtq_argv_reset(a);
  rtq_argv_add_str(a, "WAIT");
  rtq_argv_add_i64(a, replicas);
  rtq_argv_add_i64(a, timeout_ms);
  return a->oom ? RTQ_ENOMEM : 0;
}

int rtq_replicas_parse(const redisReply *r, int *acked) {
  if (r == NULL || r->type != REDIS_REPLY_INTEGER || r->integer < 0) return RTQ_EREDIS;
  *acked = r->integer > RTQ_WAIT_REPLICAS_MAX * 1000 ? RTQ_WAIT_REPLICAS_MAX * 1000 : (int)r->integer;
  return 0;
}

int rtq_replicas_wait(rtq_conn *c, int replicas, int timeout_ms, int *acked) {
  *acked = 0;
  rtq_argv a;
  rtq_argv_init(&a);
  redisReply *r = NULL;
  int rc = rtq_replicas_argv(&a, replicas, timeout_ms);
  if (rc == 0) rc = rtq_conn_command(c, &a, &r);
  if (rc == 0) rc = rtq_replicas_parse(r, acked);
  if (r != NULL) freeReplyObject(r);
  rtq_argv_destroy(&a);
  return rc;
}
