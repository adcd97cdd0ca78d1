/*
 * sub2.c - protocol 2: the event stream behind rtq_events_subscribe.
 *
 * v2 publishes one JSON message per script call on each queue's shard
 * channel {ns:Q}:ev (docs/PROTOCOL.md section 7):
 *
 *   {"at": ms, "s": "running", "w": "w1", "t": [{"id": "A", "a": 1}, ...]}
 *
 * The public contract: one task event per rtq_subscription_next, a JSON
 * object with long names (docs/PROTOCOL.md section 7). So the
 * subscription
 *
 *   1. SSUBSCRIBEs the channel of every queue of {ns}:queues on
 *      connections of its own, and reads the registry again every
 *      REFRESH_MS while it waits, subscribing queues added since;
 *   2. unbatches each message into per-task events, in the message's
 *      order: "id", "status" (the task's "s", else the message's),
 *      "queue" (the channel's), "at", "worker" (the message's "w"), and
 *      each task field under its long name (a -> attempt, n -> name,
 *      p -> progress, pm -> message, ec -> error_code, ry -> retry_at,
 *      hb -> handed_back, cr -> cancel_requested (true), requeued,
 *      redelivered, retried);
 *   3. reads the next message only when every event of the last one was
 *      returned, so what waits in this process is one message's events:
 *      at most MAX_TASKS (v2's scripts send at most 100 per call); the
 *      tasks of a message past that are dropped and counted. What waits
 *      on the server is bounded by Redis's pubsub output buffer limit,
 *      which disconnects a subscriber that falls too far behind (then
 *      RTQ_ECONN).
 *
 * A message that is not what a v2 script sends (over MAX_MESSAGE bytes,
 * not JSON, not an object, "t" not an array) is skipped whole and
 * counted; a task entry without a valid id or a known status is skipped
 * alone. hiredis 0.14 has no SSUBSCRIBE support: the commands are
 * written on the connection's context and its "ssubscribe" confirmations
 * and "smessage" pushes read as plain replies, with poll(2) for the
 * waiting, as sub.c does for SUBSCRIBE.
 *
 * On Redis Cluster a queue's channel lives on the node of its slot: the
 * subscription keeps one connection per node that serves a subscribed
 * channel (a single Redis: one), found with a routing-only connection (the
 * probe). A channel whose slot moves is unsubscribed by the server
 * ("sunsubscribe"), and a refused SSUBSCRIBE (MOVED while the map was
 * stale) is answered with an error; either way the queue is subscribed
 * again at the next registry read, with the slot map read afresh.
 */
#include "client_internal.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TASKS 1024
#define BACKLOG_CAP MAX_TASKS
#define REFRESH_MS 1000
#define MAX_MESSAGE (1u << 20)
#define MAX_QUEUES 10000

#define MAX_NODES 64

/* A connection in subscribe mode to one node, and the queues of the
 * SSUBSCRIBEs written on it whose reply is not read yet, oldest first
 * (pending[head .. head+count)): an error reply does not say which
 * channel it refuses. */
typedef struct sub_node {
  rtq_conn *conn;
  char endpoint[300]; /* "host:port" (cluster only) */
  char **pending;
  size_t head, count, cap;
} sub_node;

struct rtq__sub2 {
  rtq_client *c;
  bool cluster;
  rtq_conn *probe; /* cluster: routes a channel to its node; never subscribes */
  sub_node nodes[MAX_NODES];
  size_t nnodes;
  char **queues; /* subscribed or being subscribed */
  size_t nqueues;
  char refused[256]; /* the last SSUBSCRIBE error ("" none) */
  uint64_t next_refresh;
  char **backlog; /* ring of BACKLOG_CAP events */
  size_t head, count;
  uint64_t dropped; /* task events left out: past MAX_TASKS in a message */
  uint64_t skipped; /* messages left out whole */
};

void rtq__sub2_counts(const rtq__sub2 *s, uint64_t *dropped, uint64_t *skipped) {
  *dropped = s->dropped;
  *skipped = s->skipped;
}

static int lost(rtq__sub2 *s, sub_node *n, const char *why) {
  rtq__client_err(s->c, "subscription lost: %s", why);
  if (n->conn != NULL) rtq_conn_drop(n->conn);
  return RTQ_ECONN;
}

static void push_event(rtq__sub2 *s, char *json) {
  if (s->count == BACKLOG_CAP) {
    free(json);
    s->dropped++;
    return;
  }
  s->backlog[(s->head + s->count) % BACKLOG_CAP] = json;
  s->count++;
}

/* Short field -> long name, as the public events call it. */
static const char *const long_names[][2] = {
    {"a", "attempt"},      {"n", "name"},          {"p", "progress"},
    {"pm", "message"},     {"ec", "error_code"},   {"ry", "retry_at"},
    {"hb", "handed_back"}, {"requeued", "requeued"}, {"redelivered", "redelivered"},
    {"retried", "retried"}};

/* One task entry of a message as a public event, or NULL to skip it. */
static json_t *event_of(const json_t *task, const json_t *msg, const char *queue) {
  if (!json_is_object(task)) return NULL;
  const char *id = json_string_value(json_object_get(task, "id"));
  if (id == NULL || strlen(id) > RTQ_TASK_ID_MAX || rtq_validate_name(id) != 0) return NULL;
  const char *st = json_string_value(json_object_get(task, "s"));
  if (st == NULL) st = json_string_value(json_object_get(msg, "s"));
  rtq_status status;
  if (st == NULL || rtq_status_parse(st, &status) != 0) return NULL;
  json_t *e = json_object();
  if (e == NULL) return NULL;
  json_object_set_new(e, "id", json_string(id));
  json_object_set_new(e, "status", json_string(rtq_status_name(status)));
  json_object_set_new(e, "queue", json_string(queue));
  const json_t *at = json_object_get(msg, "at");
  if (json_is_integer(at)) json_object_set(e, "at", (json_t *)at);
  const char *w = json_string_value(json_object_get(msg, "w"));
  if (w != NULL && rtq_validate_name(w) == 0) json_object_set_new(e, "worker", json_string(w));
  for (size_t i = 0; i < sizeof long_names / sizeof long_names[0]; i++) {
    json_t *v = json_object_get(task, long_names[i][0]);
    if (v != NULL && !json_is_object(v) && !json_is_array(v) && !json_is_null(v))
      json_object_set(e, long_names[i][1], v);
  }
  if (json_object_get(task, "cr") != NULL) json_object_set_new(e, "cancel_requested", json_true());
  return e;
}

/* The queue of an events channel "{ns:Q}:ev"; 0 with q set, or -1. */
static int queue_of_channel(const rtq__sub2 *s, const redisReply *ch, char q[RTQ_TASK_ID_SIZE]) {
  const rtq_keys2 *k = &s->c->keys2;
  size_t pre = 2 + k->ns_len, len = ch->len;
  if (ch->type != REDIS_REPLY_STRING || len < pre + 5 || len - pre - 4 > RTQ_TASK_ID_MAX) return -1;
  if (ch->str[0] != '{' || memcmp(ch->str + 1, k->ns, k->ns_len) != 0 || ch->str[pre - 1] != ':' ||
      memcmp(ch->str + len - 4, "}:ev", 4) != 0)
    return -1;
  memcpy(q, ch->str + pre, len - pre - 4);
  q[len - pre - 4] = '\0';
  return strlen(q) == len - pre - 4 && rtq_validate_name(q) == 0 ? 0 : -1;
}

/* See client_internal.h. */
int rtq__sub2_unbatch_text(const char *queue, const char *text, size_t len, rtq__sub2_each each, void *arg,
                           uint64_t *dropped) {
  if (len > MAX_MESSAGE) return -1;
  json_t *msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  const json_t *tasks = json_object_get(msg, "t");
  if (!json_is_object(msg) || !json_is_array(tasks)) {
    json_decref(msg);
    return -1;
  }
  size_t n = json_array_size(tasks);
  if (n > MAX_TASKS) {
    *dropped += n - MAX_TASKS;
    n = MAX_TASKS;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *e = event_of(json_array_get(tasks, i), msg, queue);
    char *event = e != NULL ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (event != NULL) each(event, arg);
  }
  json_decref(msg);
  return 0;
}

static void to_backlog(char *event, void *s) { push_event(s, event); }

/* Unbatches one message into the backlog; a bad message adds nothing. */
static void unbatch(rtq__sub2 *s, const redisReply *ch, const redisReply *body) {
  char queue[RTQ_TASK_ID_SIZE];
  if (body->type != REDIS_REPLY_STRING || queue_of_channel(s, ch, queue) != 0 ||
      rtq__sub2_unbatch_text(queue, body->str, body->len, to_backlog, s, &s->dropped) != 0)
    s->skipped++;
}

static size_t unconfirmed(const rtq__sub2 *s) {
  size_t n = 0;
  for (size_t i = 0; i < s->nnodes; i++) n += s->nodes[i].count;
  return n;
}

/* Appends queue (copied) to n's pending replies. */
static int pending_push(sub_node *n, const char *queue) {
  if (n->head + n->count == n->cap) {
    if (n->head > 0) {
      memmove(n->pending, n->pending + n->head, n->count * sizeof *n->pending);
      n->head = 0;
    } else {
      size_t cap = n->cap ? 2 * n->cap : 16;
      char **p = realloc(n->pending, cap * sizeof *p);
      if (p == NULL) return RTQ_ENOMEM;
      n->pending = p;
      n->cap = cap;
    }
  }
  if ((n->pending[n->head + n->count] = strdup(queue)) == NULL) return RTQ_ENOMEM;
  n->count++;
  return 0;
}

/* The queue of n's oldest pending reply (the caller frees it), or NULL. */
static char *pending_pop(sub_node *n) {
  if (n->count == 0) return NULL;
  char *q = n->pending[n->head++];
  if (--n->count == 0) n->head = 0;
  return q;
}

/* Takes queue out of the subscribed ones: the next registry read
 * subscribes it again, and, on a cluster, reads the slot map again. */
static void forget(rtq__sub2 *s, const char *queue) {
  for (size_t i = 0; queue != NULL && i < s->nqueues; i++)
    if (strcmp(s->queues[i], queue) == 0) {
      free(s->queues[i]);
      s->queues[i] = s->queues[--s->nqueues];
      break;
    }
  rtq_conn_free(s->probe);
  s->probe = NULL;
}

/* One reply on n: a push or the reply to an SSUBSCRIBE. */
static void handle(rtq__sub2 *s, sub_node *n, const redisReply *r) {
  if (r->type == REDIS_REPLY_ERROR) {
    char *q = pending_pop(n);
    snprintf(s->refused, sizeof s->refused, "SSUBSCRIBE %s: %s", q != NULL ? q : "?", r->str);
    forget(s, q);
    free(q);
    return;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
    return;
  const char *kind = r->element[0]->str;
  if (strcmp(kind, "smessage") == 0) {
    unbatch(s, r->element[1], r->element[2]);
  } else if (strcmp(kind, "ssubscribe") == 0) {
    free(pending_pop(n));
  } else if (strcmp(kind, "sunsubscribe") == 0) {
    char q[RTQ_TASK_ID_SIZE];
    if (queue_of_channel(s, r->element[1], q) == 0) forget(s, q);
  }
}

/* Reads and handles one reply of any node, waiting until deadline_ms
 * (monotonic; UINT64_MAX: no limit). 1 handled one, 0 the time ran out,
 * or RTQ_ECONN (a node's connection is gone). */
static int pump(rtq__sub2 *s, uint64_t deadline_ms) {
  for (;;) {
    struct pollfd p[MAX_NODES];
    for (size_t i = 0; i < s->nnodes; i++) {
      sub_node *n = &s->nodes[i];
      redisContext *ctx = rtq_conn_ctx(n->conn);
      if (ctx == NULL) return lost(s, n, "the connection was closed");
      void *r = NULL;
      if (redisGetReplyFromReader(ctx, &r) != REDIS_OK) return lost(s, n, ctx->errstr);
      if (r != NULL) {
        handle(s, n, r);
        freeReplyObject(r);
        return 1;
      }
      p[i] = (struct pollfd){.fd = ctx->fd, .events = POLLIN, .revents = 0};
    }
    int wait = -1;
    if (deadline_ms != UINT64_MAX) {
      uint64_t now = rtq__mono_ms(), left = deadline_ms > now ? deadline_ms - now : 0;
      wait = left > 86400000u ? 86400000 : (int)left;
    }
    /* A deadline already past still looks at the sockets once. */
    int ready = poll(p, (nfds_t)s->nnodes, wait);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) {
      rtq__client_err(s->c, "subscription lost: %s", strerror(errno));
      return RTQ_ECONN;
    }
    if (ready == 0) {
      if (deadline_ms != UINT64_MAX && rtq__mono_ms() >= deadline_ms) return 0;
      continue;
    }
    for (size_t i = 0; i < s->nnodes; i++) {
      if (p[i].revents == 0) continue;
      redisContext *ctx = rtq_conn_ctx(s->nodes[i].conn);
      if (redisBufferRead(ctx) != REDIS_OK)
        return lost(s, &s->nodes[i], ctx->err == REDIS_ERR_EOF ? "redis closed the connection" : ctx->errstr);
    }
  }
}

static bool subscribed(const rtq__sub2 *s, const char *q) {
  for (size_t i = 0; i < s->nqueues; i++)
    if (strcmp(s->queues[i], q) == 0) return true;
  return false;
}

/* "host:port" of the node conn reached. */
static void endpoint_of(rtq_conn *conn, char out[300]) {
  redisContext *ctx = rtq_conn_ctx(conn);
  out[0] = '\0';
  if (ctx != NULL && ctx->tcp.host != NULL) snprintf(out, 300, "%s:%d", ctx->tcp.host, ctx->tcp.port);
  else if (ctx != NULL && ctx->unix_sock.path != NULL) snprintf(out, 300, "%s", ctx->unix_sock.path);
}

/* The node connection for channel ch: a single Redis has one; on a
 * cluster, the probe names the node of ch's slot, and a connection to it
 * is opened the first time. */
static int node_of(rtq__sub2 *s, const rtq_key2 *ch, sub_node **out) {
  *out = NULL;
  char at[300] = "";
  int rc = 0;
  if (s->cluster) {
    if (s->probe == NULL) rc = rtq__client_connect(s->c, 0, &s->probe);
    if (rc == 0 && (rc = rtq_conn_route_key(s->probe, ch->s, ch->len)) != 0)
      rtq__client_conn_err(s->c, s->probe, rc, "redis cluster");
    if (rc != 0) return rc;
    endpoint_of(s->probe, at);
  }
  for (size_t i = 0; i < s->nnodes; i++)
    if (!s->cluster || strcmp(s->nodes[i].endpoint, at) == 0) {
      *out = &s->nodes[i];
      return 0;
    }
  if (s->nnodes == MAX_NODES) {
    rtq__client_err(s->c, "more than %d nodes serve the queues' channels", MAX_NODES);
    return RTQ_ERANGE;
  }
  sub_node *n = &s->nodes[s->nnodes];
  memset(n, 0, sizeof *n);
  rc = rtq__client_connect(s->c, 0, &n->conn);
  if (rc == 0 && s->cluster && (rc = rtq_conn_route_key(n->conn, ch->s, ch->len)) != 0)
    rtq__client_conn_err(s->c, n->conn, rc, "redis cluster");
  if (rc != 0) {
    rtq_conn_free(n->conn);
    return rc;
  }
  if (s->cluster) endpoint_of(n->conn, n->endpoint);
  s->nnodes++;
  *out = n;
  return 0;
}

/* Writes an SSUBSCRIBE of queue's channel on its node (its reply is read
 * by pump). */
static int subscribe(rtq__sub2 *s, const char *queue, bool *dirty) {
  rtq_key2 ch = rtq_keys2_chan_events(&s->c->keys2, queue);
  sub_node *n;
  int rc = node_of(s, &ch, &n);
  if (rc != 0) return rc;
  redisContext *ctx = rtq_conn_ctx(n->conn);
  if (ctx == NULL) return lost(s, n, "the connection was closed");
  const char *argv[2] = {"SSUBSCRIBE", ch.s};
  size_t lens[2] = {10, ch.len};
  if (redisAppendCommandArgv(ctx, 2, argv, lens) != REDIS_OK || pending_push(n, queue) != 0) {
    rtq__client_err(s->c, "out of memory");
    return RTQ_ENOMEM;
  }
  dirty[n - s->nodes] = true;
  return 0;
}

/* SSUBSCRIBEs the queues of the registry not subscribed yet (written, not
 * confirmed). A registry that cannot be read now is read next time, and
 * so is a queue whose node cannot be reached when strict is false. */
static int refresh(rtq__sub2 *s, bool strict) {
  char **names = NULL;
  size_t n = 0;
  int rc = rtq__queues2_read(s->c, &names, &n);
  if (rc != 0) {
    if (strict) return rc;
    rtq__client_clear_err(s->c);
    return 0;
  }
  bool dirty[MAX_NODES] = {false};
  for (size_t i = 0; rc == 0 && i < n && s->nqueues < MAX_QUEUES; i++) {
    if (subscribed(s, names[i])) continue;
    char **grown = realloc(s->queues, (s->nqueues + 1) * sizeof *grown);
    if (grown == NULL) {
      rtq__client_err(s->c, "out of memory");
      rc = RTQ_ENOMEM;
      break;
    }
    s->queues = grown;
    rc = subscribe(s, names[i], dirty);
    if (rc == 0) {
      s->queues[s->nqueues++] = names[i];
      names[i] = NULL; /* kept */
    } else if (!strict && rc != RTQ_ENOMEM && rc != RTQ_ECONN) {
      rtq__client_clear_err(s->c);
      rc = 0;
    }
  }
  rtq__queues2_free(names, n);
  for (size_t i = 0; rc == 0 && i < s->nnodes; i++) {
    redisContext *ctx = rtq_conn_ctx(s->nodes[i].conn);
    int done = !dirty[i];
    while (rc == 0 && !done)
      if (redisBufferWrite(ctx, &done) != REDIS_OK) rc = lost(s, &s->nodes[i], ctx->errstr);
  }
  return rc;
}

void rtq__sub2_free(rtq__sub2 *s) {
  if (s == NULL) return;
  for (size_t i = 0; i < s->nnodes; i++) {
    sub_node *n = &s->nodes[i];
    rtq_conn_free(n->conn);
    for (size_t j = 0; j < n->count; j++) free(n->pending[n->head + j]);
    free(n->pending);
  }
  rtq_conn_free(s->probe);
  for (size_t i = 0; i < s->nqueues; i++) free(s->queues[i]);
  free(s->queues);
  for (size_t i = 0; i < s->count; i++) free(s->backlog[(s->head + i) % BACKLOG_CAP]);
  free(s->backlog);
  free(s);
}

int rtq__sub2_open(rtq_client *c, rtq__sub2 **out) {
  *out = NULL;
  rtq__sub2 *s = calloc(1, sizeof *s);
  if (s != NULL && (s->backlog = calloc(BACKLOG_CAP, sizeof *s->backlog)) == NULL) {
    free(s);
    s = NULL;
  }
  if (s == NULL) {
    rtq__client_err(c, "out of memory");
    return RTQ_ENOMEM;
  }
  s->c = c;
  s->cluster = rtq_redis_url_is_cluster(c->url);
  int rc = refresh(s, true);
  /* The replies are awaited with the command timeout, so events published
   * after this returns are seen, and a server that does not answer cannot
   * hang us; a refused SSUBSCRIBE (a server older than 7.0) fails here. */
  uint64_t deadline = rtq__mono_ms() + (uint64_t)c->command_timeout_ms;
  while (rc == 0 && unconfirmed(s) > 0) {
    int got = pump(s, deadline);
    if (got == 0) {
      rtq__client_err(c, "timed out waiting for SSUBSCRIBE");
      rc = RTQ_ETIMEDOUT;
    } else if (got < 0) {
      rc = got;
    }
  }
  if (rc == 0 && s->refused[0] != '\0') {
    rtq__client_err(c, "%s", s->refused);
    rc = RTQ_EREDIS;
  }
  if (rc != 0) {
    rtq__sub2_free(s);
    return rc;
  }
  s->next_refresh = rtq__mono_ms() + REFRESH_MS;
  *out = s;
  return 0;
}

int rtq__sub2_next(rtq__sub2 *s, uint64_t deadline_ms, char **json) {
  *json = NULL;
  for (;;) {
    if (s->count > 0) {
      *json = s->backlog[s->head];
      s->backlog[s->head] = NULL;
      s->head = (s->head + 1) % BACKLOG_CAP;
      s->count--;
      return 0;
    }
    uint64_t now = rtq__mono_ms();
    if (now >= s->next_refresh) {
      int rc = refresh(s, false);
      if (rc != 0) return rc;
      s->next_refresh = now + REFRESH_MS;
    }
    uint64_t until = deadline_ms < s->next_refresh ? deadline_ms : s->next_refresh;
    int got = pump(s, until);
    if (got < 0) return got;
    if (got == 0 && s->count == 0 && deadline_ms != UINT64_MAX && rtq__mono_ms() >= deadline_ms) {
      rtq__client_err(s->c, "timed out waiting for a message");
      return RTQ_ETIMEDOUT;
    }
  }
}
