/*
 * links.c - protocol 2 on a redis+cluster:// URL: each queue's keys live
 * in the queue's own slot (docs/PROTOCOL.md), so the worker
 * holds one cmd and one pop connection per node that serves one of its
 * queues (a link), beside the cmd and sub connections of the namespace's
 * node (heartbeat, worker set, paused set, cancel channel).
 *
 * The plan (which node serves each queue) comes from the slot map, read
 * with a blocking CLUSTER SLOTS (rtq__cluster) bounded by the connect
 * timeout per node asked. It is read at start and again, at most once a
 * second, after a link's connection was lost or failed to connect: a
 * MOVED reply drops the connection (rconn.c), a failover loses it. Queues
 * whose node changed move to the link of their new node (opened then);
 * a link no queue uses any more is closed, its pending callbacks running
 * with NULL like any lost connection (the claim code then reconciles).
 * Until a queue has a link that is up, it is planned like a paused one.
 *
 * A single-node or Sentinel URL, and protocol 1, have no links: every
 * queue uses cmd and pop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "internal.h"
#include "log.h"

#define REPLAN_MS 1000

struct rtq__link {
  rtq_redis_endpoint node;
  rtq__rconn *cmd, *pop;
  rtq__waitq waitq;
};

int rtq__links_init(rtq_worker *w, const rtq__rconn_cfg *base) {
  if (w->url.kind != RTQ_URL_CLUSTER) return 0;
  w->links_on = true;
  w->link_cfg = *base;
  w->link_cfg.fixed_node = true;
  w->qlink = malloc((size_t)w->queues.n * sizeof *w->qlink);
  /* A re-plan opens the new links before closing the old: at most one
   * per queue of each. */
  w->links = calloc(2 * (size_t)w->queues.n, sizeof *w->links);
  if (w->qlink == NULL || w->links == NULL) return RTQ_ENOMEM;
  for (int q = 0; q < w->queues.n; q++) w->qlink[q] = -1;
  return 0;
}

static void link_free(rtq__link *l) {
  if (l == NULL) return;
  /* Pending callbacks (WAIT's included) run now, with l still valid. */
  rtq__rconn_free(l->cmd);
  rtq__rconn_free(l->pop);
  free(l->waitq.pending);
  free(l);
}

static rtq__link *link_new(rtq_worker *w, const rtq_redis_endpoint *node) {
  rtq__link *l = calloc(1, sizeof *l);
  if (l == NULL) return NULL;
  l->node = *node;
  rtq__rconn_cfg cfg = w->link_cfg;
  cfg.node = *node;
  l->cmd = rtq__rconn_new(w, w->ev, RTQ__CONN_CMD, &cfg);
  l->pop = rtq__rconn_new(w, w->ev, RTQ__CONN_POP, &cfg);
  if (l->cmd == NULL || l->pop == NULL) {
    link_free(l);
    return NULL;
  }
  return l;
}

static bool same_node(const rtq_redis_endpoint *a, const rtq_redis_endpoint *b) {
  return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Reads the slot map and moves each queue to its node's link. 0, or an
 * error with the plan left as it was. */
static int plan(rtq_worker *w) {
  rtq_conn_options o = {.url = "",
                        .connect_timeout_ms = w->o.connect_timeout_ms,
                        .command_timeout_ms = w->o.command_timeout_ms};
  o.keepalive_s = RTQ_CONN_DISABLED;
  o.backoff_min_ms = o.backoff_max_ms = 1;
  rtq__cluster *cl = rtq__cluster_new(&o, &w->url);
  if (cl == NULL) return RTQ_ENOMEM;
  rtq_redis_endpoint node[RTQ_WORKER_MAX_QUEUES];
  int rc = rtq__cluster_connect(cl);
  for (int q = 0; rc == 0 && q < w->queues.n; q++)
    rc = rtq__cluster_node_for_key(cl, w->k2_queue[q].s, w->k2_queue[q].len, &node[q]);
  if (rc != 0) {
    rtq_log(RTQ_LOG_WARNING, "cannot read the cluster's slot map; will try again", "error",
            rtq__cluster_errstr(cl), NULL);
    rtq__cluster_free(cl);
    return rc;
  }
  rtq__cluster_free(cl);
  /* Each queue to the link of its node, opening links as needed. */
  int nq = w->queues.n;
  for (int q = 0; q < nq; q++) {
    int l = 0;
    while (l < w->nlinks && !same_node(&w->links[l]->node, &node[q])) l++;
    if (l == w->nlinks) {
      rtq__link *nl = link_new(w, &node[q]);
      if (nl == NULL) {
        w->qlink[q] = -1;
        rc = RTQ_ENOMEM;
        continue;
      }
      w->links[w->nlinks++] = nl;
    }
    if (w->qlink[q] != l) {
      char port[16];
      snprintf(port, sizeof port, "%d", node[q].port);
      rtq_log(RTQ_LOG_INFO, "queue served by cluster node", "queue", w->queues.q[q].name, "host", node[q].host,
              "port", port, NULL);
    }
    w->qlink[q] = l;
  }
  /* Close the links no queue uses; keep the others in order. */
  int remap[2 * RTQ_WORKER_MAX_QUEUES], kept = 0, ngone = 0;
  rtq__link *gone[2 * RTQ_WORKER_MAX_QUEUES];
  for (int l = 0; l < w->nlinks; l++) {
    bool used = false;
    for (int q = 0; q < nq && !used; q++) used = w->qlink[q] == l;
    remap[l] = used ? kept : -1;
    if (used)
      w->links[kept++] = w->links[l];
    else
      gone[ngone++] = w->links[l];
  }
  w->nlinks = kept;
  for (int q = 0; q < nq; q++) w->qlink[q] = w->qlink[q] >= 0 ? remap[w->qlink[q]] : -1;
  /* Freed last: their callbacks see the new plan. */
  for (int i = 0; i < ngone; i++) link_free(gone[i]);
  return rc;
}

void rtq__links_service(rtq_worker *w, uint64_t now) {
  if (!w->links_on) return;
  for (int l = 0; l < w->nlinks; l++)
    if (rtq__rconn_failed(w->links[l]->cmd) || rtq__rconn_failed(w->links[l]->pop)) w->links_dirty = true;
  if ((!w->links_planned || w->links_dirty) && now >= w->links_plan_at) {
    w->links_plan_at = now + REPLAN_MS;
    if (plan(w) == 0) {
      w->links_planned = true;
      w->links_dirty = false;
    }
  }
  for (int l = 0; l < w->nlinks; l++) {
    rtq__rconn_service(w->links[l]->cmd, now);
    rtq__rconn_service(w->links[l]->pop, now);
  }
}

void rtq__links_free(rtq_worker *w) {
  for (int l = 0; l < w->nlinks; l++) link_free(w->links[l]);
  w->nlinks = 0;
  if (w->qlink != NULL)
    for (int q = 0; q < w->queues.n; q++) w->qlink[q] = -1;
}

void rtq__links_shrink(rtq_worker *w) {
  for (int l = 0; l < w->nlinks; l++) {
    rtq__rconn_shrink(w->links[l]->cmd);
    rtq__rconn_shrink(w->links[l]->pop);
  }
}

void rtq__links_close_fds(rtq_worker *w) {
  for (int l = 0; l < w->nlinks; l++) {
    int fds[2] = {rtq__rconn_fd(w->links[l]->cmd), rtq__rconn_fd(w->links[l]->pop)};
    for (int i = 0; i < 2; i++)
      if (fds[i] >= 0) close(fds[i]);
  }
}

bool rtq__links_owns(const rtq_worker *w, const rtq__rconn *c) {
  for (int l = 0; l < w->nlinks; l++)
    if (w->links[l]->cmd == c || w->links[l]->pop == c) return true;
  return false;
}

rtq__rconn *rtq__qcmd(rtq_worker *w, int qi) {
  if (!w->links_on) return w->cmd;
  int l = qi >= 0 && qi < w->queues.n ? w->qlink[qi] : -1;
  return l >= 0 ? w->links[l]->cmd : NULL;
}

rtq__rconn *rtq__qpop(rtq_worker *w, int qi) {
  if (!w->links_on) return w->pop;
  int l = qi >= 0 && qi < w->queues.n ? w->qlink[qi] : -1;
  return l >= 0 ? w->links[l]->pop : NULL;
}

rtq__rconn *rtq__qcmd_of(rtq_worker *w, const char *queue) {
  if (!w->links_on) return w->cmd;
  int qi = rtq__queue_index(w, queue);
  return qi >= 0 ? rtq__qcmd(w, qi) : w->cmd;
}

rtq__waitq *rtq__waitq_of(rtq_worker *w, const rtq__rconn *c) {
  for (int l = 0; l < w->nlinks; l++)
    if (w->links[l]->cmd == c) return &w->links[l]->waitq;
  return &w->waitq;
}
