/*
 * rconn.c - an asynchronous Redis connection with a watchdog, a handshake
 * and reconnection (see rconn.h for the model).
 *
 * hiredis 0.14 facts this file relies on:
 *   1. redisAsyncConnect never blocks and has no timeout; commands queued
 *      before the connect completes are sent once it does.
 *   2. A failed connect calls onConnect(REDIS_ERR), then frees the context,
 *      running every queued callback with a NULL reply; onDisconnect is not
 *      called for a context that never connected.
 *   3. A lost connection runs every pending callback with NULL, then
 *      onDisconnect, then frees the context.
 *   4. redisAsyncFree outside a callback does the same synchronously,
 *      calling onDisconnect with REDIS_OK.
 *   5. After SUBSCRIBE, replies to earlier commands still reach their own
 *      callbacks first; channel messages go to the SUBSCRIBE callback.
 * So the ring of pending callbacks always matches the context it was
 * filled for: a new context is only made by service(), after the old one
 * has been freed.
 */
#include "rconn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <hiredis/read.h>
#include <hiredis/sds.h>

#include "cluster.h"
#include "defaults.h"
#include "keys2.h"
#include "log.h"
#include "loop.h"
#include "rtq/common.h"
#include "scripts.h"
#include "scripts2.h"
#include "sentinel.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define KEEPALIVE_IDLE_S 15
/* A connection that stayed up this long is healthy: its loss is retried at
 * once instead of continuing the backoff of earlier failures. */
#define STABLE_MS 5000

enum { ST_DOWN, ST_CONNECTING, ST_UP };

typedef struct pending {
  rtq__reply_fn fn;
  void *pd;
  uint64_t deadline;
  rtq__cmdcopy *cmd; /* kept for an ASK (cfg.on_ask), else NULL */
  int extra_ms;
} pending;

struct rtq__rconn {
  rtq_worker *w;
  rtq__ev *ev;
  rtq__conn_kind kind;
  rtq__rconn_cfg cfg;
  char sub_channel[RTQ_KEY2_CAP];
  redisAsyncContext *ac;
  int state;
  pending *ring;
  int cap, head, count;
  uint64_t connect_deadline;
  uint64_t retry_at;
  uint64_t up_at;
  int backoff_ms;
  int hs_pending;
  bool drop_requested;
  bool moved_hint; /* the plain-URL MOVED warning was logged */
  bool in_multi;   /* between MULTI and EXEC/DISCARD: no ASK is followed */
  rtq_redis_endpoint ep; /* the node connected to (host "" for unix://) */
  char drop_why[160];
  long long client_id;
  uint64_t next_probe;
  uint64_t probe_deadline;
};

static const char *role(const rtq__rconn *c) {
  return c->kind == RTQ__CONN_CMD ? "cmd" : c->kind == RTQ__CONN_POP ? "pop" : "sub";
}

/* ---- the ring of pending callbacks ---- */

static int ring_push(rtq__rconn *c, rtq__reply_fn fn, void *pd, uint64_t deadline) {
  if (c->count == c->cap) {
    int ncap = c->cap ? c->cap * 2 : 16;
    pending *n = malloc((size_t)ncap * sizeof *n);
    if (n == NULL) return RTQ_ENOMEM;
    for (int i = 0; i < c->count; i++) n[i] = c->ring[(c->head + i) % c->cap];
    free(c->ring);
    c->ring = n;
    c->cap = ncap;
    c->head = 0;
  }
  pending *p = &c->ring[(c->head + c->count) % c->cap];
  p->fn = fn;
  p->pd = pd;
  p->deadline = deadline;
  p->cmd = NULL;
  p->extra_ms = 0;
  c->count++;
  return 0;
}

static void ring_drop_tail(rtq__rconn *c) {
  if (c->count == 0) return;
  c->count--;
  pending *p = &c->ring[(c->head + c->count) % c->cap];
  free(p->cmd);
  p->cmd = NULL;
}

/* One allocation holding argv's vectors and bytes, for sending it again. */
static rtq__cmdcopy *cmd_copy(const rtq_argv *a) {
  size_t bytes = 0;
  for (int i = 0; i < a->argc; i++) bytes += a->argvlen[i] + 1;
  size_t head = sizeof(rtq__cmdcopy) + (size_t)a->argc * (sizeof(char *) + sizeof(size_t));
  rtq__cmdcopy *k = malloc(head + bytes);
  if (k == NULL) return NULL;
  k->argc = a->argc;
  k->argv = (const char **)(void *)(k + 1);
  k->argvlen = (size_t *)(void *)(k->argv + a->argc);
  char *d = (char *)(k->argvlen + a->argc);
  for (int i = 0; i < a->argc; i++) {
    memcpy(d, a->argv[i], a->argvlen[i]);
    d[a->argvlen[i]] = '\0';
    k->argv[i] = d;
    k->argvlen[i] = a->argvlen[i];
    d += a->argvlen[i] + 1;
  }
  return k;
}

static bool is_word(const rtq_argv *a, const char *w) {
  return a->argc > 0 && a->argvlen[0] == strlen(w) && strncasecmp(a->argv[0], w, a->argvlen[0]) == 0;
}

static int ring_shift(rtq__rconn *c, pending *out) {
  if (c->count == 0) return -1;
  *out = c->ring[c->head];
  c->head = (c->head + 1) % c->cap;
  c->count--;
  return 0;
}

static void trampoline(redisAsyncContext *ac, void *reply, void *privdata) {
  (void)ac;
  rtq__rconn *c = privdata;
  pending p;
  if (ring_shift(c, &p) != 0) return; /* cannot happen: one entry per command */
  int slot;
  rtq_redis_endpoint to;
  int kind = rtq__cluster_redirect(reply, &slot, &to);
  if (kind == 'A' && p.cmd != NULL) {
    /* ASK: the command did not run here; on_ask sends ASKING and the
     * command to the importing node, once, and calls p.fn with that reply. */
    if (to.host[0] == '\0') snprintf(to.host, sizeof to.host, "%s", c->ep.host);
    c->cfg.on_ask(c->w, c, &to, p.cmd, p.extra_ms, p.fn, p.pd);
    return;
  }
  free(p.cmd);
  if (kind == 'M') {
    if (c->cfg.url->kind == RTQ_URL_CLUSTER) {
      rtq__rconn_drop(c, "MOVED: the slot is served by another node now");
    } else if (!c->moved_hint) {
      /* A plain URL cannot follow it: say what would. */
      c->moved_hint = true;
      rtq_log(RTQ_LOG_WARNING, "redis is a cluster node and the namespace's slot is elsewhere; use a "
              "redis+cluster:// URL (docs/OPERATIONS.md section 2.5)", "conn", role(c), NULL);
    }
  }
  p.fn(c->w, reply, p.pd);
}

/* ---- state changes ---- */

static void schedule_retry(rtq__rconn *c, uint64_t now) {
  if (c->up_at != 0 && now - c->up_at >= STABLE_MS) c->backoff_ms = 0;
  c->up_at = 0;
  c->retry_at = now + (uint64_t)c->backoff_ms;
  c->backoff_ms = c->backoff_ms == 0 ? BACKOFF_MIN_MS : c->backoff_ms * 2;
  /* Behind sentinels or a cluster, the address changes at a failover; a
   * retry a second after it is named keeps the outage close to the
   * failover's own time. A reconnect then costs one question to a
   * sentinel or node a second while down. */
  int max = c->cfg.url->kind == RTQ_URL_SENTINEL || c->cfg.url->kind == RTQ_URL_CLUSTER ? RTQ_FAILOVER_BACKOFF_MAX_MS
                                                                                       : BACKOFF_MAX_MS;
  if (c->backoff_ms > max) c->backoff_ms = max;
}

/* The context is gone (freed by hiredis or by us): forget it. */
static void went_down(rtq__rconn *c) {
  bool was_up = c->state == ST_UP;
  c->ac = NULL;
  c->state = ST_DOWN;
  c->hs_pending = 0;
  c->client_id = 0;
  c->probe_deadline = 0;
  schedule_retry(c, rtq__mono_ms());
  if (was_up && c->cfg.on_down != NULL) c->cfg.on_down(c->w, c);
}

static void hs_done_one(rtq__rconn *c) {
  if (c->state != ST_CONNECTING || --c->hs_pending > 0) return;
  c->state = ST_UP;
  c->up_at = rtq__mono_ms();
  c->next_probe = c->up_at + (uint64_t)c->cfg.probe_interval_ms;
  rtq_log(RTQ_LOG_INFO, "redis connected", "conn", role(c), NULL);
  if (c->cfg.on_up != NULL) c->cfg.on_up(c->w, c);
}

static void on_connect(const redisAsyncContext *ac, int status) {
  rtq__rconn *c = ac->data;
  if (status == REDIS_OK || c->ac != ac) return;
  rtq_log(RTQ_LOG_WARNING, "redis connect failed", "conn", role(c), "error", ac->errstr, NULL);
  went_down(c); /* hiredis frees the context after this callback */
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
  rtq__rconn *c = ac->data;
  if (c->ac != ac) return; /* we dropped it ourselves */
  rtq_log(status == REDIS_OK ? RTQ_LOG_INFO : RTQ_LOG_WARNING, "redis connection lost", "conn",
          role(c), "error", ac->errstr ? ac->errstr : "", NULL);
  went_down(c);
}

/* Handshake replies: an error (WRONGPASS, NOPERM, ...) is logged word for
 * word and the connection retried with backoff. */
static void on_handshake(rtq_worker *w, redisReply *r, void *pd) {
  (void)w;
  rtq__rconn *c = pd;
  if (r == NULL) return;
  if (r->type == REDIS_REPLY_ERROR) {
    rtq_log(RTQ_LOG_ERROR, "redis refused the connection handshake", "conn", role(c), "error",
            r->str, NULL);
    rtq__rconn_drop(c, "handshake refused");
    return;
  }
  if (c->kind == RTQ__CONN_POP && r->type == REDIS_REPLY_INTEGER) c->client_id = r->integer;
  hs_done_one(c);
}

/* Sentinel URLs: the node must still be the primary. */
static void on_role(rtq_worker *w, redisReply *r, void *pd) {
  (void)w;
  rtq__rconn *c = pd;
  char why[160];
  if (r == NULL) return;
  if (rtq__sentinel_check_role(r, why, sizeof why) != 0) {
    rtq_log(RTQ_LOG_WARNING, "redis connection refused", "conn", role(c), "error", why, NULL);
    rtq__rconn_drop(c, "not the primary");
    return;
  }
  hs_done_one(c);
}

static void on_sub(redisAsyncContext *ac, void *reply, void *privdata) {
  (void)ac;
  rtq__rconn *c = privdata;
  redisReply *r = reply;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  redisReply *kind = r->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  if (strcasecmp(kind->str, "message") == 0) {
    redisReply *msg = r->element[2];
    if (msg->type == REDIS_REPLY_STRING) c->cfg.on_message(c->w, msg->str, msg->len);
  } else if (strcasecmp(kind->str, "subscribe") == 0) {
    if (c->state == ST_CONNECTING)
      hs_done_one(c);
    else
      c->probe_deadline = 0;
  }
}

static int hs_send_fn(rtq__rconn *c, const rtq_argv *a, rtq__reply_fn fn) {
  if (a->oom || ring_push(c, fn, c, c->connect_deadline) != 0) return RTQ_ENOMEM;
  if (redisAsyncCommandArgv(c->ac, trampoline, c, a->argc, a->argv, a->argvlen) != REDIS_OK) {
    ring_drop_tail(c);
    return RTQ_ECONN;
  }
  c->hs_pending++;
  return 0;
}

static int hs_send(rtq__rconn *c, const rtq_argv *a) { return hs_send_fn(c, a, on_handshake); }

static int sub_send(rtq__rconn *c) {
  const char *argv[2] = {"SUBSCRIBE", c->sub_channel};
  size_t lens[2] = {9, strlen(c->sub_channel)};
  return redisAsyncCommandArgv(c->ac, on_sub, c, 2, argv, lens) == REDIS_OK ? 0 : RTQ_ECONN;
}

/* The handshake is queued right behind the connect, so nothing the worker
 * sends can overtake it: AUTH, SELECT, then per role SCRIPT LOAD of every
 * script (a restarted server has an empty cache), CLIENT ID, or SUBSCRIBE. */
static int queue_handshake(rtq__rconn *c) {
  const rtq_redis_url *u = c->cfg.url;
  rtq_argv a;
  int rc = 0;
  rtq_argv_init(&a);
  if (u->password[0] != '\0' || u->user[0] != '\0') {
    rtq_argv_add_str(&a, "AUTH");
    if (u->user[0] != '\0') rtq_argv_add_str(&a, u->user);
    rtq_argv_add_str(&a, u->password);
    rc = hs_send(c, &a);
  }
  if (rc == 0 && u->db != 0) {
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "SELECT");
    rtq_argv_add_i64(&a, u->db);
    rc = hs_send(c, &a);
  }
  if (rc == 0 && u->kind == RTQ_URL_SENTINEL) {
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "ROLE");
    rc = hs_send_fn(c, &a, on_role);
  }
  if (rc == 0 && c->kind == RTQ__CONN_CMD) {
    for (int i = 0; i < RTQ_SCRIPT2_COUNT && rc == 0; i++) {
      rtq_argv_reset(&a);
      rtq_argv_add_str(&a, "SCRIPT");
      rtq_argv_add_str(&a, "LOAD");
      rtq_argv_add_str(&a, rtq_script2_body((rtq_script2_id)i));
      rc = hs_send(c, &a);
    }
  } else if (rc == 0 && c->kind == RTQ__CONN_POP) {
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "CLIENT");
    rtq_argv_add_str(&a, "ID");
    rc = hs_send(c, &a);
  } else if (rc == 0 && c->kind == RTQ__CONN_SUB) {
    rc = sub_send(c);
    if (rc == 0) c->hs_pending++;
  }
  rtq_argv_destroy(&a);
  return rc;
}

/* Keepalive probes after 15 s idle, every 5 s, 3 misses: a peer that
 * vanished is noticed in about 30 s even on a connection with nothing to
 * send (the subscriber between probes). */
static void set_keepalive(redisAsyncContext *ac) {
  redisEnableKeepAlive(&ac->c);
  int idle = KEEPALIVE_IDLE_S, intvl = KEEPALIVE_IDLE_S / 3, cnt = 3;
  (void)setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  (void)setsockopt(ac->c.fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static void start_connect(rtq__rconn *c, uint64_t now) {
  const rtq_redis_url *u = c->cfg.url;
  rtq_redis_endpoint ep;
  snprintf(ep.host, sizeof ep.host, "%s", u->host);
  ep.port = u->port;
  if (c->cfg.fixed_node) {
    ep = c->cfg.node;
  } else if (u->kind == RTQ_URL_CLUSTER || u->kind == RTQ_URL_SENTINEL) {
    char err[512];
    const char *k = c->cfg.route_key;
    if (rtq_redis_resolve(u, k, k != NULL ? strlen(k) : 0, c->cfg.connect_timeout_ms, &ep, err, sizeof err) != 0) {
      rtq_log(RTQ_LOG_WARNING, "redis connect failed", "conn", role(c), "error", err, NULL);
      schedule_retry(c, rtq__mono_ms());
      return;
    }
  }
  c->ep = ep;
  if (u->is_unix) c->ep.host[0] = '\0';
  redisAsyncContext *ac = u->is_unix ? redisAsyncConnectUnix(u->path) : redisAsyncConnect(ep.host, ep.port);
  if (ac == NULL) {
    schedule_retry(c, now);
    return;
  }
  if (ac->err) {
    rtq_log(RTQ_LOG_WARNING, "redis connect failed", "conn", role(c), "error", ac->errstr, NULL);
    redisAsyncFree(ac);
    schedule_retry(c, now);
    return;
  }
  ac->data = c;
  if (!u->is_unix) set_keepalive(ac);
  if (rtq__ev_attach_redis(c->ev, ac) != 0) {
    redisAsyncFree(ac);
    schedule_retry(c, now);
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  c->ac = ac;
  c->state = ST_CONNECTING;
  c->count = c->head = 0;
  c->hs_pending = 0;
  c->drop_requested = false;
  c->in_multi = false;
  c->connect_deadline = now + (uint64_t)c->cfg.connect_timeout_ms + (uint64_t)c->cfg.command_timeout_ms;
  if (queue_handshake(c) != 0 || c->hs_pending == 0) {
    /* Nothing to wait for (no AUTH, db 0, nothing per role) cannot happen
     * for cmd/pop/sub; a failed queueing is retried like a failed connect. */
    rtq__rconn_drop(c, "could not queue the handshake");
  }
}

static void do_drop(rtq__rconn *c) {
  redisAsyncContext *ac = c->ac;
  rtq_log(RTQ_LOG_WARNING, "dropping redis connection", "conn", role(c), "reason", c->drop_why, NULL);
  c->drop_requested = false;
  bool was_up = c->state == ST_UP;
  c->ac = NULL;
  c->state = ST_DOWN;
  /* Runs every pending callback with NULL; on_disconnect then sees that
   * the context is no longer ours and does nothing. */
  if (ac != NULL) redisAsyncFree(ac);
  c->count = c->head = 0;
  c->hs_pending = 0;
  c->client_id = 0;
  c->probe_deadline = 0;
  schedule_retry(c, rtq__mono_ms());
  if (was_up && c->cfg.on_down != NULL) c->cfg.on_down(c->w, c);
}

void rtq__rconn_drop(rtq__rconn *c, const char *why) {
  if (c == NULL || c->ac == NULL) return;
  c->drop_requested = true;
  snprintf(c->drop_why, sizeof c->drop_why, "%s", why);
}

void rtq__rconn_service(rtq__rconn *c, uint64_t now) {
  if (c->state == ST_DOWN) {
    if (now >= c->retry_at) start_connect(c, now);
    return;
  }
  if (c->drop_requested) {
    do_drop(c);
    return;
  }
  if (c->state == ST_CONNECTING && now > c->connect_deadline) {
    snprintf(c->drop_why, sizeof c->drop_why, "connect and handshake took over %d ms",
             c->cfg.connect_timeout_ms + c->cfg.command_timeout_ms);
    do_drop(c);
    return;
  }
  if (c->count > 0 && now > c->ring[c->head].deadline) {
    snprintf(c->drop_why, sizeof c->drop_why, "no reply within the command timeout (%d ms)",
             c->cfg.command_timeout_ms);
    do_drop(c);
    return;
  }
  if (c->kind != RTQ__CONN_SUB || c->state != ST_UP) return;
  if (c->probe_deadline != 0 && now > c->probe_deadline) {
    snprintf(c->drop_why, sizeof c->drop_why, "subscriber probe unanswered for %d ms",
             c->cfg.command_timeout_ms);
    do_drop(c);
  } else if (c->probe_deadline == 0 && now >= c->next_probe) {
    if (sub_send(c) == 0) c->probe_deadline = now + (uint64_t)c->cfg.command_timeout_ms;
    c->next_probe = now + (uint64_t)c->cfg.probe_interval_ms;
  }
}

rtq__rconn *rtq__rconn_new(rtq_worker *w, rtq__ev *ev, rtq__conn_kind kind, const rtq__rconn_cfg *cfg) {
  rtq__rconn *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->w = w;
  c->ev = ev;
  c->kind = kind;
  c->cfg = *cfg;
  if (cfg->sub_channel != NULL) snprintf(c->sub_channel, sizeof c->sub_channel, "%s", cfg->sub_channel);
  c->state = ST_DOWN;
  return c;
}

void rtq__rconn_free(rtq__rconn *c) {
  if (c == NULL) return;
  if (c->ac != NULL) {
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    c->state = ST_DOWN;
    redisAsyncFree(ac);
  }
  free(c->ring);
  free(c);
}

void rtq__rconn_shrink(rtq__rconn *c) {
  if (c == NULL || c->ac == NULL || c->ac->c.reader == NULL) return;
  redisReader *r = c->ac->c.reader;
  /* Idle means every byte parsed and no reply begun: hiredis parks an
   * empty task (ridx 0, type unread) after each reply. */
  bool idle = r->ridx == -1 || (r->ridx == 0 && r->rstack[0].type < 0);
  if (r->buf == NULL || r->pos != r->len || !idle) return;
  if (sdsalloc(r->buf) <= (r->maxbuf ? r->maxbuf : 16 * 1024)) return;
  sds fresh = sdsempty();
  if (fresh == NULL) return;
  sdsfree(r->buf);
  r->buf = fresh;
  r->pos = r->len = 0;
}

int rtq__rconn_fd(const rtq__rconn *c) { return c != NULL && c->ac != NULL ? c->ac->c.fd : -1; }

bool rtq__rconn_up(const rtq__rconn *c) { return c != NULL && c->state == ST_UP && !c->drop_requested; }
long long rtq__rconn_client_id(const rtq__rconn *c) { return c != NULL ? c->client_id : 0; }
bool rtq__rconn_failed(const rtq__rconn *c) { return c != NULL && c->state == ST_DOWN && c->retry_at != 0; }

int rtq__rconn_send(rtq__rconn *c, const rtq_argv *a, rtq__reply_fn fn, void *pd, int extra_ms) {
  if (!rtq__rconn_up(c)) return RTQ_ECONN;
  if (a->oom) return RTQ_ENOMEM;
  uint64_t deadline = rtq__mono_ms() + (uint64_t)c->cfg.command_timeout_ms + (uint64_t)(extra_ms > 0 ? extra_ms : 0);
  if (ring_push(c, fn, pd, deadline) != 0) return RTQ_ENOMEM;
  /* A command inside MULTI that meets an ASK is refused by EXEC
   * (EXECABORT) whatever is done with it: none is followed there. */
  bool multi_edge = is_word(a, "MULTI") || is_word(a, "EXEC") || is_word(a, "DISCARD");
  if (c->cfg.on_ask != NULL && c->cfg.url->kind == RTQ_URL_CLUSTER && !c->in_multi && !multi_edge) {
    pending *p = &c->ring[(c->head + c->count - 1) % c->cap];
    p->cmd = cmd_copy(a);
    p->extra_ms = extra_ms;
    if (p->cmd == NULL) {
      ring_drop_tail(c);
      return RTQ_ENOMEM;
    }
  }
  if (redisAsyncCommandArgv(c->ac, trampoline, c, a->argc, a->argv, a->argvlen) != REDIS_OK) {
    ring_drop_tail(c);
    return RTQ_ECONN;
  }
  if (is_word(a, "MULTI")) c->in_multi = true;
  if (is_word(a, "EXEC") || is_word(a, "DISCARD")) c->in_multi = false;
  return 0;
}

const rtq_redis_endpoint *rtq__rconn_node(const rtq__rconn *c) { return &c->ep; }
