/*
 * broker2.c - what the protocol 2 phases share: their state, the queue
 * registry {ns}:queues as the broker reads it, and the queues of a worker.
 *
 * {ns}:queues is read as the client reads it (registry2.h: SSCAN pages,
 * each bounded), at most RTQ_BROKER2_MAX_QUEUES names; only valid names
 * become keys, so junk a writer put there is skipped, not swept.
 */
#include "internal2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "registry2.h"

int rtq__broker2_new(rtq_broker *b) {
  b->v2 = calloc(1, sizeof *b->v2);
  if (b->v2 == NULL) return RTQ_ENOMEM;
  rtq__step_init(&b->v2->bs_step, RTQ_BROKER2_STEP_MIN, RTQ_BROKER2_STEP_START,
                 RTQ_BROKER2_BACKSTOP_PER_CALL);
  rtq__step_init(&b->v2->rc_step, RTQ_BROKER2_STEP_MIN, RTQ_BROKER2_STEP_START,
                 RTQ_BROKER2_RECOVER_PER_CALL);
  b->v2->au_per_look = RTQ_BROKER2_AUDIT_PER_LOOK;
  return 0;
}

void rtq__broker2_names_free(char **names, size_t n) {
  for (size_t i = 0; names != NULL && i < n; i++) free(names[i]);
  free(names);
}

void rtq__broker2_free(rtq_broker *b) {
  if (b->v2 == NULL) return;
  rtq__broker2_names_free(b->v2->queues, b->v2->nqueues);
  free(b->v2->au_suspects);
  if (b->v2->au_page != NULL) freeReplyObject(b->v2->au_page);
  free(b->v2);
  b->v2 = NULL;
}

rtq__keep2 rtq__broker2_keep(const rtq_broker *b) {
  return rtq__keep2_settings(b->o.config.task_result_ttl, b->o.config.enable_task_history,
                             b->o.config.max_task_history);
}

const char *rtq__broker2_why(const rtq_broker *b, const redisReply *r) {
  if (r != NULL && r->type == REDIS_REPLY_ERROR) return r->str;
  return b->conn != NULL ? rtq_conn_errstr(b->conn) : "no reply";
}

int rtq__broker2_queues(rtq_broker *b) {
  rtq__broker2 *s = b->v2;
  if (s->queues_at != 0 && s->queues_at == b->now) return 0;
  char **v = NULL;
  size_t n = 0;
  bool capped = false;
  int rc = rtq_registry2_read(b->conn, &b->keys2, RTQ_BROKER2_MAX_QUEUES, &v, &n, &capped);
  rtq_key2 key = rtq_keys2_queues(&b->keys2);
  if (rc != 0) {
    if (rc == RTQ_EREDIS)
      rtq_log(RTQ_LOG_ERROR, "cannot read the queue registry; no queue is swept", "key", key.s,
              "error", rtq__broker2_why(b, NULL), NULL);
    return rc;
  }
  if (capped && !s->queues_capped)
    rtq_log(RTQ_LOG_WARNING, "more queues than the broker sweeps; the rest are left out", "key",
            key.s, NULL);
  s->queues_capped = capped;
  rtq__broker2_names_free(s->queues, s->nqueues);
  s->queues = v;
  s->nqueues = n;
  s->queues_at = b->now;
  return 0;
}

/* The valid queue names of a record's `queues` text ("a:1,b:2"): each
 * entry is name:weight, and a name may itself hold ':', so the weight is
 * what follows the last one. */
static int parse_queues(const char *text, size_t len, char ***out, size_t *n) {
  size_t cap = 0;
  *out = NULL;
  *n = 0;
  const char *p = text, *end = text + len;
  while (p < end && *n < RTQ_BROKER2_MAX_WORKER_QUEUES) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma != NULL ? comma : end;
    const char *colon = NULL;
    for (const char *c = p; c < stop; c++)
      if (*c == ':') colon = c;
    size_t nl = (size_t)((colon != NULL ? colon : stop) - p);
    if (nl >= 1 && nl <= RTQ_NAME_MAX) {
      char name[RTQ_NAME_MAX + 1];
      memcpy(name, p, nl);
      name[nl] = '\0';
      int rc = rtq__names_push(out, n, &cap, name, nl);
      if (rc != 0) return rc;
    }
    p = stop + 1;
  }
  rtq__names_sort_unique(*out, n);
  return 0;
}

int rtq__broker2_worker_queues(rtq_broker *b, const char *wid, char ***names, size_t *n,
                               bool *owned) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HGET");
  rtq__argv_add_key2(&a, rtq_keys2_worker(&b->keys2, wid));
  rtq_argv_add_str(&a, "queues");
  redisReply *r = NULL;
  int rc = rtq_conn_command(b->conn, &a, &r);
  rtq_argv_destroy(&a);
  *names = NULL;
  *n = 0;
  *owned = false;
  /* A record of another type (RTQ_EREDIS) names nothing: every queue. */
  if (rc == RTQ_ECONN || rc == RTQ_ENOMEM) {
    if (r != NULL) freeReplyObject(r);
    return rc;
  }
  if (rc == 0 && r->type == REDIS_REPLY_STRING && r->len > 0) {
    rc = parse_queues(r->str, r->len, names, n);
    *owned = true;
  } else {
    rc = 0;
  }
  if (r != NULL) freeReplyObject(r);
  if (rc != 0 || *n > 0) return rc;
  rtq__broker2_names_free(*names, *n);
  *names = b->v2->queues;
  *n = b->v2->nqueues;
  *owned = false;
  return 0;
}
