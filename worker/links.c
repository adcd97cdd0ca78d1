/*
 * links.c - protocol 2 on a redis+cluster:// URL: each queue's keys live
 * in the queue's own slot (docs/PROTOCOL.md), so the worker
 * holds one cmd and one pop connection per node that serves one of its
 * queues (a link), beside the cmd and sub connections of the namespace's
 * node (heartbeat, worker set, paused set, cancel channel).
 *
 * The plan (which node serves each queue) comes from the slot map: a
 * CLUSTER SLOTS sent on a connection that is up (the namespace's cmd or a
 * link's cmd, taking turns, so a node that stopped answering is not asked
 * twice in a row), whose reply is applied when it comes. Nothing waits for
 * it: the loop goes on serving the other queues' heartbeats, progress and
 * finishes while a node is down. It is read at start and again, at most
 * once a second, after a link's connection was lost or failed to connect:
 * a MOVED reply drops the connection (rconn.c), a failover loses it.
 * Queues whose node changed move to the link of their new node (opened
 * then); a link no queue uses any more is closed, its pending callbacks
 * running with NULL like any lost connection (the claim code then
 * reconciles). Until a queue has a link that is up, it is planned like a
 * paused one.
 *
 * ASK (a slot being migrated, and the key already on the importing node):
 * the links' connections and the namespace's cmd and pop hand the command
 * over (rconn.h's on_ask), and it
 * goes to the importing node as ASKING then the command, once, on a side
 * link (a cmd and a pop connection) to that node; the plan is not changed.
 * A blocking pop goes to the side's pop connection, and CLIENT UNBLOCK
 * reaches it there. Side links are opened on the first ASK that names
 * their node and closed after SIDE_IDLE_MS without one.
 *
 * A single-node or Sentinel URL has no links: every
 * queue uses cmd and pop.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "internal.h"
#include "log.h"

#define REPLAN_MS 1000
#define SIDE_IDLE_MS 10000
#define MAX_SIDES 8

/* One command an ASK sent to a side link. */
typedef struct shot {
  rtq__link *side;
  rtq__cmdcopy *cmd;
  int extra_ms;
  bool pop;
  rtq__reply_fn fn;
  void *pd;
  uint64_t deadline; /* while waiting for the side to come up */
  struct shot *next;
} shot;

struct rtq__link {
  rtq_redis_endpoint node;
  rtq__rconn *cmd, *pop;
  rtq__waitq waitq;
  /* side links only */
  shot *waiting, **waiting_tail;
  int in_flight, pops_in_flight;
  uint64_t used_at, asked;
};

static bool is_pop(const rtq_worker *w, const rtq__rconn *c);

int rtq__links_init(rtq_worker *w, const rtq__rconn_cfg *base) {
  if (w->url.kind != RTQ_URL_CLUSTER) return 0;
  w->links_on = true;
  w->link_cfg = *base;
  w->link_cfg.fixed_node = true;
  w->link_cfg.on_ask = rtq__links_on_ask;
  w->qlink = malloc((size_t)w->queues.n * sizeof *w->qlink);
  w->links_next = malloc((size_t)w->queues.n * sizeof *w->links_next);
  /* A re-plan opens the new links before closing the old: at most one
   * per queue of each. */
  w->links = calloc(2 * (size_t)w->queues.n, sizeof *w->links);
  if (w->qlink == NULL || w->links == NULL || w->links_next == NULL) return RTQ_ENOMEM;
  for (int q = 0; q < w->queues.n; q++) w->qlink[q] = -1;
  return 0;
}

static void shot_end(rtq_worker *w, shot *s, redisReply *r) {
  rtq__reply_fn fn = s->fn;
  void *pd = s->pd;
  free(s->cmd);
  free(s);
  fn(w, r, pd);
}

static void link_free(rtq_worker *w, rtq__link *l) {
  if (l == NULL) return;
  while (l->waiting != NULL) {
    shot *s = l->waiting;
    l->waiting = s->next;
    shot_end(w, s, NULL);
  }
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
  l->waiting_tail = &l->waiting;
  if (l->cmd == NULL || l->pop == NULL) {
    link_free(w, l);
    return NULL;
  }
  return l;
}

static bool same_node(const rtq_redis_endpoint *a, const rtq_redis_endpoint *b) {
  return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Moves each queue to the link of node[q]. 0, or RTQ_ENOMEM with that
 * queue left without a link (planned again later). */
static int apply_plan(rtq_worker *w, const rtq_redis_endpoint *node) {
  int rc = 0;
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
  for (int i = 0; i < ngone; i++) link_free(w, gone[i]);
  return rc;
}

/* The CLUSTER SLOTS reply: pd is the host of the node asked (malloc'd),
 * which an entry's empty host stands for. */
static void on_slots(rtq_worker *w, redisReply *r, void *pd) {
  char *asked = pd;
  w->links_reading = false;
  rtq_redis_endpoint node[RTQ_WORKER_MAX_QUEUES];
  const char *why = r == NULL ? "connection lost" : r->type == REDIS_REPLY_ERROR ? r->str : NULL;
  for (int q = 0; why == NULL && q < w->queues.n; q++)
    if (rtq__cluster_slots_owner(r, rtq_keys2_slot(&w->keys2, w->queues.q[q].name), asked, &node[q]) != 0)
      why = "no node serves a queue's slot";
  free(asked);
  if (why != NULL) {
    if (w->phase != RTQ__DONE)
      rtq_log(RTQ_LOG_WARNING, "cannot read the cluster's slot map; will try again", "error", why, NULL);
    return;
  }
  /* Applied by links_service: a link closed now could be the connection
   * this reply came on. */
  memcpy(w->links_next, node, (size_t)w->queues.n * sizeof *node);
  w->links_next_ready = true;
}

/* Sends CLUSTER SLOTS on the next connection that is up, in turn: the
 * namespace's cmd, then each link's cmd. */
static void read_map(rtq_worker *w) {
  int n = 1 + w->nlinks;
  for (int k = 0; k < n; k++) {
    unsigned i = (w->links_from + (unsigned)k) % (unsigned)n;
    rtq__rconn *c = i == 0 ? w->cmd : w->links[i - 1]->cmd;
    if (!rtq__rconn_up(c)) continue;
    char *asked = strdup(rtq__rconn_node(c)->host);
    if (asked == NULL) return;
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "CLUSTER");
    rtq_argv_add_str(&a, "SLOTS");
    int rc = rtq__rconn_send(c, &a, on_slots, asked, 0);
    rtq_argv_destroy(&a);
    if (rc != 0) {
      free(asked);
      continue;
    }
    w->links_reading = true;
    w->links_from = i + 1;
    w->links_plan_at = rtq__mono_ms() + REPLAN_MS;
    return;
  }
}

/* ---- ASK ---- */

static void on_shot(rtq_worker *w, redisReply *r, void *pd) {
  shot *s = pd;
  s->side->in_flight--;
  if (s->pop) s->side->pops_in_flight--;
  s->side->used_at = rtq__mono_ms();
  shot_end(w, s, r);
}

/* ASKING, then the command, on the side's connection (up). */
static void fire(rtq_worker *w, shot *s) {
  rtq__rconn *c = s->pop ? s->side->pop : s->side->cmd;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ASKING");
  int rc = rtq__rconn_send(c, &a, rtq__reply_ignore, NULL, 0);
  rtq_argv_destroy(&a);
  rtq_argv v = {.argc = s->cmd->argc, .argv = s->cmd->argv, .argvlen = s->cmd->argvlen};
  if (rc == 0) rc = rtq__rconn_send(c, &v, on_shot, s, s->extra_ms);
  if (rc != 0) {
    shot_end(w, s, NULL); /* not sent: as after a lost connection */
    return;
  }
  s->side->in_flight++;
  if (s->pop) s->side->pops_in_flight++;
  s->side->asked++;
  w->n_asked++;
}

static rtq__link *side_for(rtq_worker *w, const rtq_redis_endpoint *to) {
  for (int i = 0; i < w->nsides; i++)
    if (same_node(&w->sides[i]->node, to)) return w->sides[i];
  if (w->sides == NULL && (w->sides = calloc(MAX_SIDES, sizeof *w->sides)) == NULL) return NULL;
  if (w->nsides == MAX_SIDES) return NULL;
  rtq__rconn_cfg cfg = w->link_cfg;
  cfg.on_ask = NULL; /* an ASK from the importing node itself is the caller's */
  cfg.on_up = cfg.on_down = NULL;
  rtq__rconn_cfg keep = w->link_cfg;
  w->link_cfg = cfg;
  rtq__link *l = link_new(w, to);
  w->link_cfg = keep;
  if (l == NULL) return NULL;
  char port[16];
  snprintf(port, sizeof port, "%d", to->port);
  rtq_log(RTQ_LOG_INFO, "following ASK to a cluster node importing a slot", "host", to->host, "port", port, NULL);
  w->sides[w->nsides++] = l;
  return l;
}

void rtq__links_on_ask(rtq_worker *w, rtq__rconn *from, const rtq_redis_endpoint *to, rtq__cmdcopy *cmd,
                       int extra_ms, rtq__reply_fn fn, void *pd) {
  rtq__link *side = w->phase == RTQ__DONE ? NULL : side_for(w, to);
  shot *s = side != NULL ? calloc(1, sizeof *s) : NULL;
  if (s == NULL) {
    /* Cannot follow: as if the connection had been lost (the callers
     * reconcile or try again). */
    free(cmd);
    fn(w, NULL, pd);
    return;
  }
  *s = (shot){.side = side, .cmd = cmd, .extra_ms = extra_ms, .fn = fn, .pd = pd};
  s->pop = from != NULL && is_pop(w, from);
  side->used_at = rtq__mono_ms();
  rtq__rconn *c = s->pop ? side->pop : side->cmd;
  if (rtq__rconn_up(c)) {
    fire(w, s);
    return;
  }
  s->deadline = side->used_at + (uint64_t)w->link_cfg.connect_timeout_ms + (uint64_t)w->link_cfg.command_timeout_ms;
  *side->waiting_tail = s;
  side->waiting_tail = &s->next;
}

/* Sends what waited for a side to come up, fails what waited too long,
 * and closes idle sides. */
static void service_sides(rtq_worker *w, uint64_t now) {
  for (int i = 0; i < w->nsides; i++) {
    rtq__link *l = w->sides[i];
    rtq__rconn_service(l->cmd, now);
    rtq__rconn_service(l->pop, now);
    shot **pp = &l->waiting;
    while (*pp != NULL) {
      shot *s = *pp;
      rtq__rconn *c = s->pop ? l->pop : l->cmd;
      bool up = rtq__rconn_up(c);
      if (!up && now <= s->deadline && !rtq__rconn_failed(c)) {
        pp = &s->next;
        continue;
      }
      *pp = s->next;
      if (up)
        fire(w, s);
      else
        shot_end(w, s, NULL);
    }
    l->waiting_tail = pp;
  }
  for (int i = 0; i < w->nsides; i++) {
    rtq__link *l = w->sides[i];
    if (l->waiting != NULL || l->in_flight > 0 || now - l->used_at < SIDE_IDLE_MS) continue;
    char port[16], asked[24];
    snprintf(port, sizeof port, "%d", l->node.port);
    snprintf(asked, sizeof asked, "%" PRIu64, l->asked);
    rtq_log(RTQ_LOG_INFO, "closing the ASK connection of an idle cluster node", "host", l->node.host, "port", port,
            "asks", asked, NULL);
    w->sides[i] = w->sides[--w->nsides];
    link_free(w, l);
    i--;
  }
}

void rtq__links_unblock_asks(rtq_worker *w) {
  for (int i = 0; i < w->nsides; i++) {
    rtq__link *l = w->sides[i];
    long long id = rtq__rconn_client_id(l->pop);
    if (l->pops_in_flight == 0 || id <= 0) continue;
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "CLIENT");
    rtq_argv_add_str(&a, "UNBLOCK");
    rtq_argv_add_i64(&a, id);
    (void)rtq__rconn_send(l->cmd, &a, rtq__reply_ignore, NULL, 0);
    rtq_argv_destroy(&a);
  }
}

void rtq__links_service(rtq_worker *w, uint64_t now) {
  if (!w->links_on) return;
  for (int l = 0; l < w->nlinks; l++)
    if (rtq__rconn_failed(w->links[l]->cmd) || rtq__rconn_failed(w->links[l]->pop)) w->links_dirty = true;
  if (w->links_next_ready) {
    w->links_next_ready = false;
    if (apply_plan(w, w->links_next) == 0) {
      w->links_planned = true;
      w->links_dirty = false;
    }
  }
  if ((!w->links_planned || w->links_dirty) && !w->links_reading && now >= w->links_plan_at) read_map(w);
  for (int l = 0; l < w->nlinks; l++) {
    rtq__rconn_service(w->links[l]->cmd, now);
    rtq__rconn_service(w->links[l]->pop, now);
  }
  service_sides(w, now);
}

void rtq__links_free(rtq_worker *w) {
  if (w->n_asked > 0) {
    char asked[24];
    snprintf(asked, sizeof asked, "%" PRIu64, w->n_asked);
    rtq_log(RTQ_LOG_INFO, "cluster ASK redirections followed", "asks", asked, NULL);
    w->n_asked = 0; /* said once (links_free runs at teardown and at free) */
  }
  for (int i = 0; i < w->nsides; i++) link_free(w, w->sides[i]);
  w->nsides = 0;
  free(w->sides);
  w->sides = NULL;
  for (int l = 0; l < w->nlinks; l++) link_free(w, w->links[l]);
  w->nlinks = 0;
  if (w->qlink != NULL)
    for (int q = 0; q < w->queues.n; q++) w->qlink[q] = -1;
}

void rtq__links_shrink(rtq_worker *w) {
  for (int l = 0; l < w->nlinks + w->nsides; l++) {
    rtq__link *k = l < w->nlinks ? w->links[l] : w->sides[l - w->nlinks];
    rtq__rconn_shrink(k->cmd);
    rtq__rconn_shrink(k->pop);
  }
}

void rtq__links_close_fds(rtq_worker *w) {
  for (int l = 0; l < w->nlinks + w->nsides; l++) {
    rtq__link *k = l < w->nlinks ? w->links[l] : w->sides[l - w->nlinks];
    int fds[2] = {rtq__rconn_fd(k->cmd), rtq__rconn_fd(k->pop)};
    for (int i = 0; i < 2; i++)
      if (fds[i] >= 0) close(fds[i]);
  }
}

static bool is_pop(const rtq_worker *w, const rtq__rconn *c) {
  if (c == w->pop) return true;
  for (int l = 0; l < w->nlinks; l++)
    if (w->links[l]->pop == c) return true;
  return false;
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
