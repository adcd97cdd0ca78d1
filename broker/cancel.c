/*
 * cancel.c - the cancellation backstop.
 *
 * cancel.lua asks a running task to stop with two signals: the flag
 * P:cancel:<id> (with a TTL) and one message on P:chan:cancel. Pub/sub is
 * fire-and-forget, so a worker whose subscription was down at that moment
 * would only learn of it by polling the flag. Every
 * RTQ_BROKER_CANCEL_REPUBLISH_MS the broker walks the running index and
 * publishes the id again for each running task whose flag is still set.
 *
 * Cleaning up: the terminal step deletes the flag, and the flag has a TTL
 * anyway, so flags never accumulate. A flag on a task that recovery puts
 * back on its queue is honoured there (recover.c).
 */
#include "internal.h"

#include <string.h>

#include "log.h"

int rtq__broker_cancel_pass(rtq_broker *b) {
  if (b->protocol == 2) return 0; /* workers read the task's `cr` themselves */
  if (b->cancel_offset == 0) {
    if (b->last_cancel_pass != 0 && b->now < b->last_cancel_pass + RTQ_BROKER_CANCEL_REPUBLISH_MS)
      return 0;
    b->last_cancel_pass = b->now;
  }
  rtq_key running = b->k.status[RTQ_STATUS_RUNNING];
  long long budget = RTQ_BROKER_CANCEL_PER_SWEEP;
  int rc = 0;
  while (budget > 0 && rc == 0) {
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "ZRANGE");
    rtq__argv_add_key(&a, running);
    rtq_argv_add_i64(&a, b->cancel_offset);
    rtq_argv_add_i64(&a, b->cancel_offset + RTQ_BROKER_PAGE - 1);
    redisReply *ids = NULL;
    rc = rtq_conn_command(b->conn, &a, &ids);
    rtq_argv_destroy(&a);
    if (rc != 0) {
      if (ids != NULL) freeReplyObject(ids);
      break;
    }
    /* Two commands per valid id: EXISTS flag, HGET status; which[k] is the
     * id of commands 2k and 2k+1. */
    const redisReply *which[RTQ_BROKER_PAGE];
    int nwhich = 0;
    rtq__batch *bt = &b->batch, *pub = &b->batch2;
    rtq__batch_clear(bt);
    rtq__batch_clear(pub);
    for (size_t i = 0; i < ids->elements && rc == 0; i++) {
      const redisReply *id = ids->element[i];
      if (id->type != REDIS_REPLY_STRING || rtq_validate_name(id->str) != 0) continue;
      which[nwhich++] = id;
      rtq_argv *x = rtq__batch_add(bt);
      rtq_argv *y = rtq__batch_add(bt);
      if (x == NULL || y == NULL) {
        rc = RTQ_ENOMEM;
        break;
      }
      rtq_argv_add_str(x, "EXISTS");
      rtq__argv_add_key(x, rtq_keys_cancel(&b->keys, id->str));
      rtq_argv_add_str(y, "HGET");
      rtq__argv_add_key(y, rtq_keys_task(&b->keys, id->str));
      rtq_argv_add_str(y, "status");
    }
    if (rc == 0 && bt->n > 0) rc = rtq__batch_run(b->conn, bt);
    for (int i = 0; rc == 0 && i + 1 < bt->n; i += 2) {
      const redisReply *st = bt->replies[i + 1];
      if (rtq__reply_int(bt->replies[i], 0) != 1 || st == NULL || st->type != REDIS_REPLY_STRING ||
          strcmp(st->str, "running") != 0)
        continue;
      rtq_argv *p = rtq__batch_add(pub);
      if (p == NULL) {
        rc = RTQ_ENOMEM;
        break;
      }
      rtq_argv_add_str(p, "PUBLISH");
      rtq__argv_add_key(p, b->k.chan_cancel);
      rtq_argv_add(p, which[i / 2]->str, which[i / 2]->len);
    }
    long long got = (long long)ids->elements;
    freeReplyObject(ids);
    if (rc == 0 && pub->n > 0) rc = rtq__batch_run(b->conn, pub);
    if (rc == 0) RTQ__COUNT(b, cancel_republished, pub->n);
    if (rc != 0) break;
    b->cancel_offset += got;
    budget -= got;
    if (got < RTQ_BROKER_PAGE) {
      b->cancel_offset = 0;
      break;
    }
  }
  return rc;
}
