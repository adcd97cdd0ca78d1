/*
 * queues2.c - protocol v2: the namespace's queue registry ({ns}:queues) and
 * the queue a task id belongs to (docs/PROTOCOL.md section 1).
 *
 * A v2 task's keys live under its queue's hash tag, so a call given only
 * an id must find the queue first. The queues this client registered or
 * found are remembered (at most RTQ__KNOWN_QUEUES), and the one of a
 * generated id's slot among them is tried first, without reading the
 * registry. A generated id carries the cluster slot
 * of its queue's tag in its last 3 characters: the queues of that slot
 * (almost always one) are probed first, then, for a caller-supplied id or
 * a miss, every queue, one EXISTS each.
 */
#include "client_internal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys2.h"
#include "registry2.h"

void rtq__queues2_free(char **names, size_t n) { rtq_registry2_free(names, n); }

int rtq__queues2_read(rtq_client *c, char ***names, size_t *n) {
  *names = NULL;
  *n = 0;
  rtq_conn *conn;
  int rc = rtq__pool_get(c, &conn);
  if (rc != 0) return rc;
  rc = rtq_registry2_read(conn, &c->keys2, RTQ_REGISTRY2_MAX, names, n, NULL);
  /* An idle pooled connection may have been closed by Redis: a read is
   * tried again at once, as rtq__client_command does. */
  if (rc == RTQ_ECONN) rc = rtq_registry2_read(conn, &c->keys2, RTQ_REGISTRY2_MAX, names, n, NULL);
  if (rc == RTQ_EREDIS)
    rtq__client_err(c, "reading the queue registry %s: %s", rtq_keys2_queues(&c->keys2).s, rtq_conn_errstr(conn));
  else if (rc == RTQ_ENOMEM)
    rtq__client_err(c, "out of memory");
  else if (rc != 0)
    rtq__client_conn_err(c, conn, rc, "redis");
  rtq__pool_put(c, conn);
  return rc;
}

static bool is_known(rtq_client *c, const char *queue) {
  pthread_mutex_lock(&c->mu);
  bool known = false;
  for (int i = 0; i < c->nknown && !known; i++) known = strcmp(c->known[i], queue) == 0;
  pthread_mutex_unlock(&c->mu);
  return known;
}

/* Remembers a queue that is in the registry (registered here, or found
 * there). A full cache only costs a repeated SADD or lookup. */
static void remember(rtq_client *c, const char *queue) {
  pthread_mutex_lock(&c->mu);
  bool known = false;
  for (int i = 0; i < c->nknown && !known; i++) known = strcmp(c->known[i], queue) == 0;
  if (!known && c->nknown < RTQ__KNOWN_QUEUES) {
    snprintf(c->known[c->nknown], sizeof c->known[0], "%s", queue);
    c->nknown++;
  }
  pthread_mutex_unlock(&c->mu);
}

int rtq__queues2_register(rtq_client *c, const char *queue) {
  if (is_known(c, queue)) return 0;
  rtq_key2 key = rtq_keys2_queues(&c->keys2);
  const char *w[] = {"SADD", key.s, queue};
  int rc = rtq__client_words(c, NULL, 3, w);
  if (rc != 0) return rc;
  remember(c, queue);
  return 0;
}

int rtq__queues2_cached(rtq_client *c, const char *id, char queue[RTQ_TASK_ID_SIZE]) {
  int slot = rtq_id2_slot(id), found = 0;
  if (slot < 0) return 0;
  pthread_mutex_lock(&c->mu);
  for (int i = 0; i < c->nknown; i++)
    if (rtq_keys2_slot(&c->keys2, c->known[i]) == slot && found++ == 0)
      snprintf(queue, RTQ_TASK_ID_SIZE, "%s", c->known[i]);
  pthread_mutex_unlock(&c->mu);
  return found == 1;
}

/* 1 when queue holds task id, 0 when not; < 0 an error. */
static int has_task(rtq_client *c, const char *queue, const char *id) {
  rtq_key2 key = rtq_keys2_task(&c->keys2, queue, id);
  if (key.len == 0) return 0;
  const char *w[] = {"EXISTS", key.s};
  redisReply *r = NULL;
  int rc = rtq__client_words(c, &r, 2, w);
  if (rc != 0) return rc;
  int found = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
  freeReplyObject(r);
  return found;
}

int rtq__queue_of_id2(rtq_client *c, const char *id, const char *hint, char queue[RTQ_TASK_ID_SIZE]) {
  queue[0] = '\0';
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  if (hint != NULL) {
    if (rtq__check_name(c, "queue", hint) != 0) return RTQ_EINVAL;
    int got = has_task(c, hint, id);
    if (got < 0) return got;
    if (got == 0) {
      rtq__client_err(c, "no task %s in queue %s", id, hint);
      return RTQ_ENOTFOUND;
    }
    snprintf(queue, RTQ_TASK_ID_SIZE, "%s", hint);
    return 0;
  }
  /* The one queue of the id's slot this client knows: one EXISTS. */
  char cached[RTQ_TASK_ID_SIZE];
  if (rtq__queues2_cached(c, id, cached)) {
    int got = has_task(c, cached, id);
    if (got < 0) return got;
    if (got > 0) {
      snprintf(queue, RTQ_TASK_ID_SIZE, "%s", cached);
      return 0;
    }
  }
  char **names;
  size_t n;
  int rc = rtq__queues2_read(c, &names, &n);
  if (rc != 0) return rc;
  int slot = rtq_id2_slot(id);
  /* Two passes: the queues of the id's slot, then the others. */
  for (int pass = 0; pass < 2 && queue[0] == '\0' && rc == 0; pass++) {
    for (size_t i = 0; i < n; i++) {
      bool same_slot = slot >= 0 && rtq_keys2_slot(&c->keys2, names[i]) == slot;
      if ((pass == 0) != same_slot) continue;
      int got = has_task(c, names[i], id);
      if (got < 0) {
        rc = got;
        break;
      }
      if (got > 0) {
        snprintf(queue, RTQ_TASK_ID_SIZE, "%s", names[i]);
        break;
      }
    }
  }
  rtq__queues2_free(names, n);
  if (rc == 0 && queue[0] != '\0') remember(c, queue);
  if (rc == 0 && queue[0] == '\0') {
    rtq__client_err(c, "no task %s", id);
    rc = RTQ_ENOTFOUND;
  }
  return rc;
}
