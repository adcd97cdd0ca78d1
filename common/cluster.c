/*
 * cluster.c - the slot map, per-node connections and redirections of a
 * redis+cluster:// connection (model in cluster.h).
 */
#include "cluster.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "crc16.h"
#include "rtq/common.h"

/* A stale map is refreshed at most this often, so a node that stays
 * unreachable does not turn every command into a CLUSTER SLOTS round. */
#define REFRESH_MIN_MS 100

typedef struct node {
  rtq_redis_endpoint ep;
  rtq_conn *conn; /* NULL until first used */
  bool primary;   /* serves slots in the last map */
} node;

typedef struct pend {
  int node;
  rtq_argv argv;    /* a copy, for running it again after a redirection */
  bool have;        /* read ahead of its turn: rc and r hold the result */
  bool queued;      /* inside a MULTI (its EXEC too): never run on its own */
  bool opens;       /* a MULTI */
  int rc;
  redisReply *r;
} pend;

struct rtq__cluster {
  rtq_conn_options opts;
  rtq_redis_url url;
  node nodes[RTQ__CLUSTER_MAX_NODES];
  int nnodes;
  int16_t slot[RTQ_CLUSTER_SLOTS]; /* node index, -1 unknown */
  int cur;                         /* current node, -1 none */
  bool stale;
  uint64_t refreshed_at;
  pend *q;
  int qcap, qhead, qn;
  bool multi; /* a MULTI was appended and its EXEC or DISCARD not yet */
  char errstr[512];
};

static void set_err(rtq__cluster *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(rtq__cluster *cl, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cl->errstr, sizeof cl->errstr, fmt, ap);
  va_end(ap);
}

static void take_err(rtq__cluster *cl, int i) {
  snprintf(cl->errstr, sizeof cl->errstr, "%s", rtq_conn_errstr(cl->nodes[i].conn));
}

const char *rtq__cluster_errstr(const rtq__cluster *cl) { return cl->errstr; }

/* ---- pure parts ---- */

static bool word_is(const char *s, size_t n, const char *w) { return strlen(w) == n && strncasecmp(s, w, n) == 0; }

int rtq__cluster_command_key(const rtq_argv *a, const char **key, size_t *n) {
  static const char *const keyless[] = {"PING", "TIME", "INFO", "PUBLISH", "SUBSCRIBE", "PSUBSCRIBE",
                                        "UNSUBSCRIBE", "PUNSUBSCRIBE", "SCRIPT", "CONFIG", "CLUSTER",
                                        "ROLE", "AUTH", "SELECT", "CLIENT", "DBSIZE", "MULTI", "EXEC",
                                        "DISCARD", "UNWATCH", "WAIT", "ECHO", "HELLO", "COMMAND",
                                        "FUNCTION", "ASKING", "READONLY", "FLUSHALL", "FLUSHDB", NULL};
  if (a->argc < 1) return 0;
  const char *cmd = a->argv[0];
  size_t clen = a->argvlen[0];
  for (int i = 0; keyless[i] != NULL; i++)
    if (word_is(cmd, clen, keyless[i])) return 0;
  static const char *const scripted[] = {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO", NULL};
  for (int i = 0; scripted[i] != NULL; i++) {
    if (!word_is(cmd, clen, scripted[i])) continue;
    if (a->argc < 4 || a->argvlen[2] == 0 || a->argvlen[2] > 9) return 0;
    long nk = 0;
    for (size_t j = 0; j < a->argvlen[2]; j++) {
      char d = a->argv[2][j];
      if (d < '0' || d > '9') return 0;
      nk = nk * 10 + (d - '0');
    }
    if (nk <= 0) return 0;
    *key = a->argv[3];
    *n = a->argvlen[3];
    return 1;
  }
  if (a->argc < 2) return 0;
  *key = a->argv[1];
  *n = a->argvlen[1];
  return 1;
}

/* "host:port" at s (the last ':' splits, for IPv6 addresses). The host
 * may be empty (":port"): the node that replied does not know its own
 * address, and the caller uses the one it asked. */
static int parse_addr(const char *s, size_t n, rtq_redis_endpoint *to) {
  const char *colon = NULL;
  for (size_t i = 0; i < n; i++)
    if (s[i] == ':') colon = s + i;
  if (colon == NULL) return -1;
  size_t hlen = (size_t)(colon - s);
  if (hlen >= sizeof to->host) return -1;
  long port = 0;
  size_t plen = n - hlen - 1;
  if (plen == 0 || plen > 5) return -1;
  for (size_t i = 0; i < plen; i++) {
    if (colon[1 + i] < '0' || colon[1 + i] > '9') return -1;
    port = port * 10 + (colon[1 + i] - '0');
  }
  if (port < 1 || port > 65535) return -1;
  memcpy(to->host, s, hlen);
  to->host[hlen] = '\0';
  to->port = (int)port;
  return 0;
}

int rtq__cluster_redirect(const redisReply *r, int *slot, rtq_redis_endpoint *to) {
  if (r == NULL || r->type != REDIS_REPLY_ERROR) return 0;
  if (r->len >= 8 && strncmp(r->str, "TRYAGAIN", 8) == 0) return 'T';
  if (r->len >= 11 && strncmp(r->str, "CLUSTERDOWN", 11) == 0) return 'D';
  int kind = 0;
  size_t skip = 0;
  if (r->len > 6 && strncmp(r->str, "MOVED ", 6) == 0) kind = 'M', skip = 6;
  if (r->len > 4 && strncmp(r->str, "ASK ", 4) == 0) kind = 'A', skip = 4;
  if (kind == 0) return 0;
  const char *p = r->str + skip, *end = r->str + r->len;
  long s = 0;
  int digits = 0;
  while (p < end && *p >= '0' && *p <= '9' && digits < 6) s = s * 10 + (*p++ - '0'), digits++;
  if (digits == 0 || s >= RTQ_CLUSTER_SLOTS || p >= end || *p != ' ') return 0;
  p++;
  if (parse_addr(p, (size_t)(end - p), to) != 0) return 0;
  *slot = (int)s;
  return kind;
}

/* ---- nodes ---- */

/* True while a pipelined command's reply is unread on node i. */
static bool owes_reply(const rtq__cluster *cl, int i) {
  for (int k = 0; k < cl->qn; k++) {
    const pend *p = &cl->q[(cl->qhead + k) % cl->qcap];
    if (!p->have && p->node == i) return true;
  }
  return false;
}

/* The index of node host:port, added when new. With the table full, a
 * node that serves nothing is reused: not one that owes a pipelined
 * reply, and not one taken (claimed[i], may be NULL) by the map being
 * applied, whose serving flag is still the old map's. */
static int node_index(rtq__cluster *cl, const char *host, int port, const bool *claimed) {
  for (int i = 0; i < cl->nnodes; i++)
    if (cl->nodes[i].ep.port == port && strcmp(cl->nodes[i].ep.host, host) == 0) return i;
  if (cl->nnodes == RTQ__CLUSTER_MAX_NODES) {
    /* Reuse a node that serves nothing (a seed or a node that left). */
    for (int i = 0; i < cl->nnodes; i++) {
      if (cl->nodes[i].primary || i == cl->cur || (claimed != NULL && claimed[i]) || owes_reply(cl, i))
        continue;
      rtq_conn_free(cl->nodes[i].conn);
      cl->nodes[i].conn = NULL;
      snprintf(cl->nodes[i].ep.host, sizeof cl->nodes[i].ep.host, "%s", host);
      cl->nodes[i].ep.port = port;
      return i;
    }
    return -1;
  }
  node *nd = &cl->nodes[cl->nnodes];
  memset(nd, 0, sizeof *nd);
  snprintf(nd->ep.host, sizeof nd->ep.host, "%s", host);
  nd->ep.port = port;
  return cl->nnodes++;
}

/* The node's connection, made on first use. NULL only when out of memory. */
static rtq_conn *node_conn(rtq__cluster *cl, int i) {
  node *nd = &cl->nodes[i];
  if (nd->conn == NULL && rtq__conn_new_node(&cl->opts, &cl->url, nd->ep.host, nd->ep.port, &nd->conn) != 0) {
    set_err(cl, "out of memory");
    return NULL;
  }
  return nd->conn;
}

/* ---- the slot map ---- */

static const redisReply *elem(const redisReply *r, size_t i, int type) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || i >= r->elements || r->element[i]->type != type) return NULL;
  return r->element[i];
}

/* One CLUSTER SLOTS entry [start, end, [host, port, ...], ...]: 0 with its
 * range and primary set, or -1 when malformed or its host is unknown
 * ("?"). The host may be "" or nil (cluster-preferred-endpoint-type
 * unknown-endpoint), both meaning the node asked: *host is then "". */
static int slots_entry(const redisReply *ent, int *lo, int *hi, const char **host, int *port) {
  const redisReply *l = elem(ent, 0, REDIS_REPLY_INTEGER), *h = elem(ent, 1, REDIS_REPLY_INTEGER);
  const redisReply *m = elem(ent, 2, REDIS_REPLY_ARRAY);
  const redisReply *hs = elem(m, 0, REDIS_REPLY_STRING), *p = elem(m, 1, REDIS_REPLY_INTEGER);
  if (l == NULL || h == NULL || p == NULL) return -1;
  if (hs == NULL && elem(m, 0, REDIS_REPLY_NIL) == NULL) return -1;
  if (l->integer < 0 || h->integer >= RTQ_CLUSTER_SLOTS || l->integer > h->integer) return -1;
  if (p->integer < 1 || p->integer > 65535) return -1;
  if (hs != NULL && (strcmp(hs->str, "?") == 0 || hs->len >= 256)) return -1;
  *lo = (int)l->integer;
  *hi = (int)h->integer;
  *host = hs != NULL ? hs->str : "";
  *port = (int)p->integer;
  return 0;
}

int rtq__cluster_slots_owner(const redisReply *r, int slot, const char *asked_host, rtq_redis_endpoint *out) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || slot < 0 || slot >= RTQ_CLUSTER_SLOTS) return -1;
  for (size_t e = 0; e < r->elements; e++) {
    int lo, hi, port;
    const char *host;
    if (slots_entry(r->element[e], &lo, &hi, &host, &port) != 0 || slot < lo || slot > hi) continue;
    snprintf(out->host, sizeof out->host, "%s", host[0] == '\0' ? asked_host : host);
    out->port = port;
    return 0;
  }
  return -1;
}

/*
 * Applies a CLUSTER SLOTS reply asked of node `from`. Each entry is
 * [start, end, [host, port, id, ...], replicas...]; an empty host means
 * the host we asked, "?" an unknown one (the entry is skipped). Returns 0,
 * or -1 when the reply is malformed or names no slot (the map is kept).
 */
static int apply_slots(rtq__cluster *cl, const redisReply *r, int from) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) return -1;
  int16_t *map = malloc(sizeof cl->slot);
  if (map == NULL) return -1;
  for (int s = 0; s < RTQ_CLUSTER_SLOTS; s++) map[s] = -1;
  bool primary[RTQ__CLUSTER_MAX_NODES] = {false};
  int served = 0;
  char fromhost[256];
  snprintf(fromhost, sizeof fromhost, "%s", cl->nodes[from].ep.host);
  for (size_t e = 0; e < r->elements; e++) {
    int lo, hi, port;
    const char *host;
    if (slots_entry(r->element[e], &lo, &hi, &host, &port) != 0) continue;
    int i = node_index(cl, host[0] == '\0' ? fromhost : host, port, primary);
    if (i < 0) continue;
    primary[i] = true;
    for (int s = lo; s <= hi; s++) map[s] = (int16_t)i;
    served += hi - lo + 1;
  }
  if (served == 0) {
    free(map);
    return -1;
  }
  memcpy(cl->slot, map, sizeof cl->slot);
  free(map);
  for (int i = 0; i < cl->nnodes; i++) cl->nodes[i].primary = primary[i];
  return 0;
}

/* Asks node i for the map. 0 when applied. */
static int refresh_from(rtq__cluster *cl, int i) {
  rtq_conn *c = node_conn(cl, i);
  if (c == NULL) return RTQ_ENOMEM;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "CLUSTER");
  rtq_argv_add_str(&a, "SLOTS");
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc != 0) {
    take_err(cl, i);
  } else if (apply_slots(cl, r, i) != 0) {
    set_err(cl, "%s:%d gave no usable CLUSTER SLOTS reply", cl->nodes[i].ep.host, cl->nodes[i].ep.port);
    rc = RTQ_EREDIS;
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* True while a pipelined command's reply is still unread on some node: a
 * command sent there now would read that reply as its own. */
static bool in_flight(const rtq__cluster *cl) {
  for (int k = 0; k < cl->qn; k++)
    if (!cl->q[(cl->qhead + k) % cl->qcap].have) return true;
  return false;
}

/* Refreshes the map from the current node, then any known node, then the
 * seeds: the first that answers wins. Not while a pipeline is in flight
 * (the map stays stale and is reloaded by a later command). */
static int refresh(rtq__cluster *cl) {
  if (in_flight(cl)) {
    set_err(cl, "the slot map is not reloaded in the middle of a pipeline");
    return RTQ_ECONN;
  }
  cl->refreshed_at = rtq__mono_ms();
  int rc = RTQ_ECONN;
  char first_err[512] = "";
  for (int s = 0; s < cl->url.nseeds; s++)
    if (node_index(cl, cl->url.seeds[s].host, cl->url.seeds[s].port, NULL) < 0) break;
  int n = cl->nnodes;
  for (int k = -1; k < n; k++) {
    int i = k < 0 ? cl->cur : k;
    if (i < 0 || (k >= 0 && i == cl->cur)) continue;
    rc = refresh_from(cl, i);
    if (rc == 0) {
      cl->stale = false;
      return 0;
    }
    if (rc == RTQ_ENOMEM) return rc;
    if (first_err[0] == '\0') snprintf(first_err, sizeof first_err, "%s", cl->errstr);
  }
  set_err(cl, "no cluster node gave the slot map: %s", first_err);
  return rc;
}

static int maybe_refresh(rtq__cluster *cl) {
  if (!cl->stale) return 0;
  if (rtq__mono_ms() - cl->refreshed_at < REFRESH_MIN_MS) return 0;
  return refresh(cl);
}

/* ---- routing ---- */

static int reachable_any(rtq__cluster *cl);

/* The node for a slot (-1 keyless), or a negative RTQ_E* code. */
static int pick(rtq__cluster *cl, int slot) {
  int rc = maybe_refresh(cl);
  if (rc == RTQ_ENOMEM) return rc;
  if (slot < 0) return reachable_any(cl);
  if (cl->slot[slot] < 0 && refresh(cl) == RTQ_ENOMEM) return RTQ_ENOMEM;
  if (cl->slot[slot] < 0) {
    set_err(cl, "CLUSTERDOWN no node serves slot %d", slot);
    return RTQ_EREDIS;
  }
  return cl->slot[slot];
}

static int slot_of(const rtq_argv *a) {
  const char *k;
  size_t n;
  return rtq__cluster_command_key(a, &k, &n) ? rtq_key_slot(k, n) : -1;
}

static void pause_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Connects node i, or marks the map stale and says why. */
static int node_ready(rtq__cluster *cl, int i, rtq_conn **out) {
  rtq_conn *c = node_conn(cl, i);
  if (c == NULL) return RTQ_ENOMEM;
  int rc = rtq_conn_reconnect(c);
  if (rc != 0) {
    take_err(cl, i);
    if (rc == RTQ_ECONN) cl->stale = true;
    return rc;
  }
  *out = c;
  return 0;
}

static int asking(rtq_conn *c) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "ASKING");
  int rc = rtq_conn_command(c, &a, NULL);
  rtq_argv_destroy(&a);
  return rc;
}

/*
 * A node for a keyless command: the current one when it connects, else the
 * first primary that does, else any known node; once more after reloading
 * the map when none did (a failover's promoted replica is only known from
 * a new map). The node found becomes the current one. Returns its index
 * or a negative RTQ_E* code.
 */
static int reachable_any(rtq__cluster *cl) {
  rtq_conn *c;
  int rc = maybe_refresh(cl);
  if (rc == RTQ_ENOMEM) return rc;
  for (int round = 0; round < 2; round++) {
    if (round == 1 && (rc = refresh(cl)) == RTQ_ENOMEM) return rc;
    if (cl->cur >= 0 && (rc = node_ready(cl, cl->cur, &c)) == 0) return cl->cur;
    for (int pass = 0; pass < 2; pass++) {
      for (int i = 0; i < cl->nnodes; i++) {
        if (i == cl->cur || cl->nodes[i].primary != (pass == 0)) continue;
        rc = node_ready(cl, i, &c);
        if (rc == 0) return cl->cur = i;
        if (rc == RTQ_ENOMEM) return rc;
      }
    }
  }
  return rc != 0 ? rc : RTQ_ECONN;
}

/* One command with redirections followed (cluster.h). */
static int routed(rtq__cluster *cl, const rtq_argv *a, redisReply **reply) {
  int slot = slot_of(a);
  int target = slot < 0 ? reachable_any(cl) : pick(cl, slot);
  if (target < 0) return target;
  bool ask = false;
  int waits = 0;
  for (int hop = 0; hop < RTQ__CLUSTER_MAX_HOPS; hop++) {
    rtq_conn *c = NULL;
    int rc = node_ready(cl, target, &c);
    if (rc == RTQ_ECONN && hop == 0 && refresh(cl) == 0) {
      /* A failover may have moved the slot: the command was not sent. */
      int again = pick(cl, slot);
      if (again >= 0 && again != target) {
        target = again;
        rc = node_ready(cl, target, &c);
      }
    }
    if (rc != 0) return rc;
    if (ask && (rc = asking(c)) != 0) {
      take_err(cl, target);
      if (rc == RTQ_ECONN) cl->stale = true;
      return rc;
    }
    redisReply *r = NULL;
    rc = rtq_conn_command(c, a, &r);
    take_err(cl, target);
    if (rc == RTQ_ECONN) cl->stale = true;
    int rslot = -1;
    rtq_redis_endpoint to;
    int kind = rc == RTQ_EREDIS ? rtq__cluster_redirect(r, &rslot, &to) : 0;
    if (kind == 'M' || kind == 'A') {
      if (to.host[0] == '\0') snprintf(to.host, sizeof to.host, "%s", cl->nodes[target].ep.host);
      int i = node_index(cl, to.host, to.port, NULL);
      if (i >= 0) {
        freeReplyObject(r);
        if (kind == 'M') {
          cl->slot[rslot] = (int16_t)i;
          cl->stale = true; /* more slots have probably moved too */
        }
        ask = kind == 'A';
        target = i;
        continue;
      }
    } else if ((kind == 'T' || kind == 'D') && waits < RTQ__CLUSTER_MAX_WAITS) {
      freeReplyObject(r);
      pause_ms(25 << (waits < 4 ? waits : 4));
      waits++;
      if (kind == 'D') {
        cl->stale = true;
        int again = pick(cl, slot);
        if (again < 0) return again;
        target = again;
        ask = false;
      }
      /* TRYAGAIN (a multi-key command meeting a slot in migration with
       * some of its keys moved): the same node again, with ASKING again
       * when an ASK led there (without it the importing node would answer
       * MOVED back to the source, a hop per wait). */
      continue;
    }
    if (slot >= 0 && !ask) cl->cur = target;
    if (reply != NULL)
      *reply = r;
    else if (r != NULL)
      freeReplyObject(r);
    return rc;
  }
  set_err(cl, "more than %d cluster redirections for one command", RTQ__CLUSTER_MAX_HOPS);
  return RTQ_EREDIS;
}

/* SCRIPT goes to every primary; the reply is the first primary's (the
 * same script gives the same SHA everywhere), and the first error wins. */
static int broadcast(rtq__cluster *cl, const rtq_argv *a, redisReply **reply) {
  int rc = maybe_refresh(cl);
  if (rc != 0) return rc;
  redisReply *first = NULL;
  int first_rc = RTQ_ECONN;
  bool any = false;
  for (int i = 0; i < cl->nnodes; i++) {
    if (!cl->nodes[i].primary) continue;
    rtq_conn *c = NULL;
    rc = node_ready(cl, i, &c);
    redisReply *r = NULL;
    if (rc == 0) rc = rtq_conn_command(c, a, &r);
    if (rc != 0) take_err(cl, i);
    if (rc == RTQ_ECONN) cl->stale = true;
    if (!any || (first_rc == 0 && rc != 0)) {
      if (first != NULL) freeReplyObject(first);
      first = r;
      first_rc = rc;
      any = true;
    } else if (r != NULL) {
      freeReplyObject(r);
    }
  }
  if (!any) set_err(cl, "no cluster primary known");
  if (reply != NULL)
    *reply = first;
  else if (first != NULL)
    freeReplyObject(first);
  return first_rc;
}

int rtq__cluster_command(rtq__cluster *cl, const rtq_argv *a, redisReply **reply) {
  if (reply != NULL) *reply = NULL;
  if (a->oom) {
    set_err(cl, "out of memory building the command");
    return RTQ_ENOMEM;
  }
  if (a->argc == 0) {
    set_err(cl, "empty command");
    return RTQ_EINVAL;
  }
  if (word_is(a->argv[0], a->argvlen[0], "SCRIPT")) return broadcast(cl, a, reply);
  return routed(cl, a, reply);
}

/* ---- pipelines ---- */

static void clear_queue(rtq__cluster *cl) {
  for (int k = 0; k < cl->qn; k++) {
    pend *p = &cl->q[(cl->qhead + k) % cl->qcap];
    rtq_argv_destroy(&p->argv);
    if (p->r != NULL) freeReplyObject(p->r);
  }
  cl->qn = cl->qhead = 0;
  cl->multi = false;
}

/* Reads every reply still owed into its entry, so that no node has a
 * reply in flight when a redirected command is sent again (it could go
 * to a node whose next reply belongs to a later pipelined command). */
static void read_ahead(rtq__cluster *cl) {
  for (int k = 0; k < cl->qn; k++) {
    pend *p = &cl->q[(cl->qhead + k) % cl->qcap];
    if (p->have) continue;
    p->rc = rtq_conn_get_reply(cl->nodes[p->node].conn, &p->r);
    p->have = true;
  }
}

static int copy_argv(rtq_argv *dst, const rtq_argv *src) {
  rtq_argv_init(dst);
  for (int i = 0; i < src->argc; i++) rtq_argv_add(dst, src->argv[i], src->argvlen[i]);
  return dst->oom ? RTQ_ENOMEM : 0;
}

/* Drops every node with replies still owed and forgets them: after a
 * broken pipeline no stale reply may answer a later read. */
static void break_pipeline(rtq__cluster *cl) {
  for (int k = 0; k < cl->qn; k++) {
    int i = cl->q[(cl->qhead + k) % cl->qcap].node;
    if (cl->nodes[i].conn != NULL) rtq_conn_drop(cl->nodes[i].conn);
  }
  clear_queue(cl);
}

int rtq__cluster_append(rtq__cluster *cl, const rtq_argv *a) {
  if (a->oom || a->argc == 0) {
    set_err(cl, a->oom ? "out of memory building the command" : "empty command");
    break_pipeline(cl);
    return a->oom ? RTQ_ENOMEM : RTQ_EINVAL;
  }
  if (cl->qn == cl->qcap) {
    int ncap = cl->qcap ? cl->qcap * 2 : 16;
    pend *n = malloc((size_t)ncap * sizeof *n);
    if (n == NULL) {
      set_err(cl, "out of memory");
      break_pipeline(cl);
      return RTQ_ENOMEM;
    }
    for (int k = 0; k < cl->qn; k++) n[k] = cl->q[(cl->qhead + k) % cl->qcap];
    free(cl->q);
    cl->q = n;
    cl->qcap = ncap;
    cl->qhead = 0;
  }
  int slot = slot_of(a);
  int target = slot < 0 ? reachable_any(cl) : pick(cl, slot);
  rtq_conn *c = NULL;
  int rc = target < 0 ? target : node_ready(cl, target, &c);
  pend *p = &cl->q[(cl->qhead + cl->qn) % cl->qcap];
  p->have = false;
  p->r = NULL;
  if (rc == 0) rc = copy_argv(&p->argv, a);
  if (rc == 0) {
    rc = rtq_conn_append(c, a);
    if (rc != 0) {
      take_err(cl, target);
      rtq_argv_destroy(&p->argv);
    }
  }
  if (rc != 0) {
    break_pipeline(cl);
    return rc;
  }
  p->node = target;
  /* A command queued by a MULTI that meets a redirection fails the
   * transaction (EXEC answers EXECABORT); run on its own elsewhere, it
   * would be written outside the transaction, half of it or all of it. */
  const char *w = a->argv[0];
  size_t wn = a->argvlen[0];
  bool opens = word_is(w, wn, "MULTI"), closes = word_is(w, wn, "EXEC") || word_is(w, wn, "DISCARD");
  p->queued = cl->multi && !opens;
  p->opens = opens;
  if (opens) cl->multi = true;
  if (closes) cl->multi = false;
  cl->qn++;
  return 0;
}

int rtq__cluster_get_reply(rtq__cluster *cl, redisReply **reply) {
  if (reply != NULL) *reply = NULL;
  if (cl->qn == 0) {
    set_err(cl, "not connected (a pipeline broke or the connection was dropped)");
    return RTQ_ECONN;
  }
  pend p = cl->q[cl->qhead];
  cl->qhead = (cl->qhead + 1) % cl->qcap;
  cl->qn--;
  redisReply *r = p.r;
  int rc = p.rc;
  if (!p.have) {
    rc = rtq_conn_get_reply(cl->nodes[p.node].conn, &r);
    take_err(cl, p.node);
  } else if (r != NULL && r->type == REDIS_REPLY_ERROR) {
    set_err(cl, "%.*s", (int)(r->len < 500 ? r->len : 500), r->str);
  } else if (rc != 0) {
    set_err(cl, "redis connection lost while reading a pipeline");
  }
  if (p.opens && rc != 0) cl->multi = false; /* refused: no transaction began */
  int slot;
  rtq_redis_endpoint to;
  int kind = rc == RTQ_EREDIS ? rtq__cluster_redirect(r, &slot, &to) : 0;
  if (kind == 'M') {
    if (to.host[0] == '\0') snprintf(to.host, sizeof to.host, "%s", cl->nodes[p.node].ep.host);
    int i = node_index(cl, to.host, to.port, NULL);
    if (i >= 0) cl->slot[slot] = (int16_t)i;
    cl->stale = true;
  }
  if (kind != 0 && !p.queued) {
    /* MOVED/ASK/TRYAGAIN/CLUSTERDOWN: it did not run; run it on its own.
     * (Inside a MULTI the error is the caller's: the map is fresh for its
     * next try of the whole transaction.) */
    freeReplyObject(r);
    r = NULL;
    read_ahead(cl);
    rc = routed(cl, &p.argv, &r);
  }
  rtq_argv_destroy(&p.argv);
  if (rc == RTQ_ECONN) {
    cl->stale = true;
    break_pipeline(cl);
  }
  if (reply != NULL)
    *reply = r;
  else if (r != NULL)
    freeReplyObject(r);
  return rc;
}

/* ---- lifecycle ---- */

rtq__cluster *rtq__cluster_new(const rtq_conn_options *o, const rtq_redis_url *u) {
  rtq__cluster *cl = calloc(1, sizeof *cl);
  if (cl == NULL) return NULL;
  cl->opts = *o;
  cl->url = *u;
  cl->url.kind = RTQ_URL_TCP;
  cl->cur = -1;
  for (int s = 0; s < RTQ_CLUSTER_SLOTS; s++) cl->slot[s] = -1;
  return cl;
}

void rtq__cluster_free(rtq__cluster *cl) {
  if (cl == NULL) return;
  clear_queue(cl);
  free(cl->q);
  for (int i = 0; i < cl->nnodes; i++) rtq_conn_free(cl->nodes[i].conn);
  memset(&cl->url, 0, sizeof cl->url); /* holds the password */
  free(cl);
}

int rtq__cluster_connect(rtq__cluster *cl) {
  int rc = refresh(cl);
  if (rc != 0) return rc;
  return rtq__cluster_reconnect(cl);
}

int rtq__cluster_reconnect(rtq__cluster *cl) {
  int i = reachable_any(cl);
  return i < 0 ? i : 0;
}

void rtq__cluster_drop(rtq__cluster *cl) {
  clear_queue(cl);
  for (int i = 0; i < cl->nnodes; i++)
    if (cl->nodes[i].conn != NULL) rtq_conn_drop(cl->nodes[i].conn);
}

int rtq__cluster_route(rtq__cluster *cl, const void *key, size_t n) {
  int i = pick(cl, rtq_key_slot(key, n));
  if (i < 0) return i;
  cl->cur = i;
  rtq_conn *c;
  return node_ready(cl, i, &c);
}

redisContext *rtq__cluster_ctx(rtq__cluster *cl) {
  return cl->cur >= 0 && cl->nodes[cl->cur].conn != NULL ? rtq_conn_ctx(cl->nodes[cl->cur].conn) : NULL;
}

int rtq__cluster_node_for_key(rtq__cluster *cl, const void *key, size_t n, rtq_redis_endpoint *out) {
  int i = pick(cl, key != NULL ? rtq_key_slot(key, n) : -1);
  if (i < 0) return i;
  *out = cl->nodes[i].ep;
  return 0;
}

/* ---- every primary (a keyspace walk) ---- */

static int endpoint_cmp(const void *x, const void *y) {
  const rtq_redis_endpoint *a = x, *b = y;
  int c = strcmp(a->host, b->host);
  return c != 0 ? c : (a->port > b->port) - (a->port < b->port);
}

int rtq__cluster_primaries(rtq__cluster *cl, rtq_redis_endpoint *out, int max, int *n) {
  *n = 0;
  int rc = maybe_refresh(cl);
  if (rc == RTQ_ENOMEM) return rc;
  for (int round = 0; round < 2 && *n == 0; round++) {
    if (round == 1 && (rc = refresh(cl)) != 0) return rc;
    for (int i = 0; i < cl->nnodes && *n < max; i++)
      if (cl->nodes[i].primary) out[(*n)++] = cl->nodes[i].ep;
  }
  qsort(out, (size_t)*n, sizeof *out, endpoint_cmp);
  return 0;
}

int rtq__cluster_command_at(rtq__cluster *cl, const rtq_redis_endpoint *ep, const rtq_argv *a,
                            redisReply **reply) {
  if (reply != NULL) *reply = NULL;
  for (int i = 0; i < cl->nnodes; i++) {
    if (!cl->nodes[i].primary || cl->nodes[i].ep.port != ep->port || strcmp(cl->nodes[i].ep.host, ep->host) != 0)
      continue;
    rtq_conn *c = NULL;
    int rc = node_ready(cl, i, &c);
    if (rc == 0) rc = rtq_conn_command(c, a, reply);
    if (rc != 0) take_err(cl, i);
    if (rc == RTQ_ECONN) cl->stale = true;
    return rc;
  }
  /* A failover or a resharding since the caller read the primaries. */
  cl->stale = true;
  set_err(cl, "%s:%d serves no slot any more", ep->host, ep->port);
  return RTQ_ECONN;
}
