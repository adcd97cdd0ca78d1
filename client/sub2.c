/*
 * sub2.c - protocol 2: the event stream behind rtq_events_subscribe.
 *
 * v2 publishes one JSON message per script call on each queue's shard
 * channel {ns:Q}:ev (docs/design/PROTOCOL-v2.md section 7):
 *
 *   {"at": ms, "s": "running", "w": "w1", "t": [{"id": "A", "a": 1}, ...]}
 *
 * The public contract is v1's: one task event per rtq_subscription_next,
 * a JSON object with v1's long names (docs/PROTOCOL.md section 7). So the
 * subscription
 *
 *   1. SSUBSCRIBEs the channel of every queue of {ns}:queues on a
 *      connection of its own, and reads the registry again every
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
 * On Redis Cluster every queue's channel lives on its slot's node; this
 * subscription uses one connection, so it serves a single Redis (or a
 * cluster whose queues all hash to the node it reached).
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

struct rtq__sub2 {
  rtq_client *c;
  rtq_conn *conn;
  char **queues; /* subscribed, in the order subscribed */
  size_t nqueues;
  size_t unconfirmed; /* SSUBSCRIBEs sent whose confirmation is not read */
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

static int lost(rtq__sub2 *s, const char *why) {
  rtq__client_err(s->c, "subscription lost: %s", why);
  rtq_conn_drop(s->conn);
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

/* Short field -> long name, as v1's events call it. */
static const char *const long_names[][2] = {
    {"a", "attempt"},      {"n", "name"},          {"p", "progress"},
    {"pm", "message"},     {"ec", "error_code"},   {"ry", "retry_at"},
    {"hb", "handed_back"}, {"requeued", "requeued"}, {"redelivered", "redelivered"},
    {"retried", "retried"}};

/* One task entry of a message as a v1 event, or NULL to skip it. */
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

/* Unbatches one message into the backlog; a bad message adds nothing. */
static void unbatch(rtq__sub2 *s, const redisReply *ch, const redisReply *body) {
  char queue[RTQ_TASK_ID_SIZE];
  if (body->type != REDIS_REPLY_STRING || body->len > MAX_MESSAGE || queue_of_channel(s, ch, queue) != 0) {
    s->skipped++;
    return;
  }
  json_t *msg = json_loadb(body->str, body->len, JSON_REJECT_DUPLICATES, NULL);
  const json_t *tasks = json_object_get(msg, "t");
  if (!json_is_object(msg) || !json_is_array(tasks)) {
    s->skipped++;
    json_decref(msg);
    return;
  }
  size_t n = json_array_size(tasks);
  if (n > MAX_TASKS) {
    s->dropped += n - MAX_TASKS;
    n = MAX_TASKS;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *e = event_of(json_array_get(tasks, i), msg, queue);
    char *text = e != NULL ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (text != NULL) push_event(s, text);
  }
  json_decref(msg);
}

/* One reply of the subscription connection: a push or a confirmation.
 * 0, or RTQ_EREDIS for an error reply (an SSUBSCRIBE refused). */
static int handle(rtq__sub2 *s, const redisReply *r) {
  if (r->type == REDIS_REPLY_ERROR) {
    rtq__client_err(s->c, "SSUBSCRIBE: %s", r->str);
    return RTQ_EREDIS;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 || r->element[0]->type != REDIS_REPLY_STRING)
    return 0;
  const char *kind = r->element[0]->str;
  if (strcmp(kind, "smessage") == 0) unbatch(s, r->element[1], r->element[2]);
  else if (strcmp(kind, "ssubscribe") == 0 && s->unconfirmed > 0) s->unconfirmed--;
  return 0;
}

/* Reads and handles one reply, waiting until deadline_ms (monotonic; a
 * poll without limit for UINT64_MAX). 1 handled one, 0 the time ran out,
 * or an error. */
static int pump(rtq__sub2 *s, uint64_t deadline_ms) {
  for (;;) {
    redisContext *ctx = rtq_conn_ctx(s->conn);
    if (ctx == NULL) return lost(s, "the connection was closed");
    void *r = NULL;
    if (redisGetReplyFromReader(ctx, &r) != REDIS_OK) return lost(s, ctx->errstr);
    if (r != NULL) {
      int rc = handle(s, r);
      freeReplyObject(r);
      return rc != 0 ? rc : 1;
    }
    int wait = -1;
    if (deadline_ms != UINT64_MAX) {
      uint64_t now = rtq__mono_ms(), left = deadline_ms > now ? deadline_ms - now : 0;
      wait = left > 86400000u ? 86400000 : (int)left;
    }
    /* A deadline already past still looks at the socket once. */
    struct pollfd p = {.fd = ctx->fd, .events = POLLIN, .revents = 0};
    int n = poll(&p, 1, wait);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return lost(s, strerror(errno));
    if (n == 0) {
      if (deadline_ms != UINT64_MAX && rtq__mono_ms() >= deadline_ms) return 0;
      continue;
    }
    if (redisBufferRead(ctx) != REDIS_OK)
      return lost(s, ctx->err == REDIS_ERR_EOF ? "redis closed the connection" : ctx->errstr);
  }
}

static bool subscribed(const rtq__sub2 *s, const char *q) {
  for (size_t i = 0; i < s->nqueues; i++)
    if (strcmp(s->queues[i], q) == 0) return true;
  return false;
}

/* SSUBSCRIBEs the queues of the registry not subscribed yet (written, not
 * confirmed). A registry that cannot be read now is read next time. */
static int refresh(rtq__sub2 *s) {
  char **names = NULL;
  size_t n = 0;
  if (rtq__queues2_read(s->c, &names, &n) != 0) {
    rtq__client_clear_err(s->c);
    return 0;
  }
  redisContext *ctx = rtq_conn_ctx(s->conn);
  int rc = ctx != NULL ? 0 : lost(s, "the connection was closed");
  bool sent = false;
  for (size_t i = 0; rc == 0 && i < n && s->nqueues < MAX_QUEUES; i++) {
    if (subscribed(s, names[i])) continue;
    char **grown = realloc(s->queues, (s->nqueues + 1) * sizeof *grown);
    if (grown == NULL) {
      rc = RTQ_ENOMEM;
      break;
    }
    s->queues = grown;
    rtq_key2 ch = rtq_keys2_chan_events(&s->c->keys2, names[i]);
    const char *argv[2] = {"SSUBSCRIBE", ch.s};
    size_t lens[2] = {10, ch.len};
    if (redisAppendCommandArgv(ctx, 2, argv, lens) != REDIS_OK) {
      rc = lost(s, "out of memory");
      break;
    }
    s->queues[s->nqueues++] = names[i];
    names[i] = NULL; /* kept */
    s->unconfirmed++;
    sent = true;
  }
  rtq__queues2_free(names, n);
  int done = 0;
  while (rc == 0 && sent && !done)
    if (redisBufferWrite(ctx, &done) != REDIS_OK) rc = lost(s, ctx->errstr);
  if (rc == RTQ_ENOMEM) rtq__client_err(s->c, "out of memory");
  return rc;
}

void rtq__sub2_free(rtq__sub2 *s) {
  if (s == NULL) return;
  rtq_conn_free(s->conn);
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
  int rc = rtq__client_connect(c, 0, &s->conn);
  if (rc == 0) rc = refresh(s);
  /* The confirmations are awaited with the command timeout, so events
   * published after this returns are seen, and a server that does not
   * answer cannot hang us. */
  uint64_t deadline = rtq__mono_ms() + (uint64_t)c->command_timeout_ms;
  while (rc == 0 && s->unconfirmed > 0) {
    int got = pump(s, deadline);
    if (got == 0) {
      rtq__client_err(c, "timed out waiting for SSUBSCRIBE");
      rc = RTQ_ETIMEDOUT;
    } else if (got < 0) {
      rc = got;
    }
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
      int rc = refresh(s);
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
