/*
 * runtime2.c - protocol 2: the run-time histograms of {ns:Q}:rt, which
 * finish adds the workers' per-call counts to (docs/PROTOCOL.md
 * section 2). A bucket's field is its upper bound as /metrics writes it
 * ("0.1", "+Inf"), with or without an "le_" prefix (the workers write
 * runtime.h's rtq__run_le2: "le_0.1" .. "le_inf"); the total time is
 * "sum_ms" (or "sum_us"). Other fields ("count") are not needed: the total
 * is the sum of the buckets.
 */
#include "client_internal.h"

#include <stdlib.h>
#include <string.h>

#include "runtime.h"

static void fill2(rtq_run_histogram *h, const redisReply *r) {
  for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
    const redisReply *f = r->element[i], *v = r->element[i + 1];
    if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    uint64_t n = rtq__parse_u64(v->str, v->len);
    const char *name = f->str;
    size_t len = f->len;
    if (len == 6 && memcmp(name, "sum_ms", 6) == 0) {
      h->sum_us = n * 1000u;
      continue;
    }
    if (len == 6 && memcmp(name, "sum_us", 6) == 0) {
      h->sum_us = n;
      continue;
    }
    if (len > 3 && memcmp(name, "le_", 3) == 0) {
      name += 3;
      len -= 3;
    }
    /* The workers' name for the last bucket ("+Inf" is not a valid field
     * name for the finish script): runtime.h's rtq__run_le2. */
    if (len == 3 && memcmp(name, "inf", 3) == 0) {
      name = rtq__run_le[RTQ_RUN_BUCKETS - 1];
      len = strlen(name);
    }
    for (int b = 0; b < RTQ_RUN_BUCKETS; b++)
      if (strlen(rtq__run_le[b]) == len && memcmp(rtq__run_le[b], name, len) == 0) {
        h->count[b] += n;
        h->total += n;
        break;
      }
  }
}

int rtq__get_run_times2(rtq_client *c, const char *const *queues, size_t n, rtq_run_times *t) {
  rtq_argv *cmds = calloc(n, sizeof *cmds);
  redisReply **r = calloc(n, sizeof *r);
  rtq_conn *conn = NULL;
  int rc = cmds != NULL && r != NULL ? rtq__pool_get(c, &conn) : RTQ_ENOMEM;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    rtq_argv_init(&cmds[i]);
    rtq_argv_add_str(&cmds[i], "HGETALL");
    rc = rtq__argv_add_key2(&cmds[i], rtq_keys2_runtime(&c->keys2, queues[i]));
  }
  if (rc == 0) rc = rtq__pipe2(c, conn, cmds, n, r);
  for (size_t i = 0; rc == 0 && i < n; i++) fill2(&t->queues[i], r[i]);
  if (conn != NULL) rtq__pool_put(c, conn);
  if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
  rtq__pipe2_free(cmds, r, cmds != NULL && r != NULL ? n : 0);
  return rc;
}
