/*
 * sub.c - pub/sub subscriptions on a connection of their own: the event
 * stream (rtq_events_subscribe, sub2.c) and the shard channel
 * rtq_wait_for_task listens on.
 *
 * Waiting uses poll(2) on the socket with the time left, not the socket's
 * read timeout: hiredis marks a context dead after a timed-out read, while
 * a poll that times out leaves the subscription usable. Messages hiredis
 * has already buffered are taken from its reader before polling, so none
 * is left waiting behind a poll.
 */
#include "client_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

struct rtq_subscription {
  rtq_client *c;
  rtq_conn *conn;
  rtq__sub2 *v2; /* the event stream (sub2.c); conn is then NULL */
};

/* Opens a subscriber routed by route[0..rlen) and sends cmd (SUBSCRIBE or
 * SSUBSCRIBE) for chan[0..clen). */
static int sub_open(rtq_client *c, const char *cmd, const char *route, size_t rlen,
                    const char *chan, size_t clen, rtq_subscription **out) {
  *out = NULL;
  rtq_subscription *s = calloc(1, sizeof *s);
  if (s == NULL) {
    rtq__client_err(c, "out of memory");
    return RTQ_ENOMEM;
  }
  s->c = c;
  int rc = rtq__client_connect(c, 0, &s->conn);
  if (rc != 0) {
    free(s);
    return rc;
  }
  /* On a cluster, the node of route's slot: for SUBSCRIBE the namespace's
   * (PUBLISH reaches every node), for SSUBSCRIBE the channel's own. */
  rc = rtq_conn_route_key(s->conn, route, rlen);
  if (rc != 0) {
    rtq__client_conn_err(c, s->conn, rc, "redis connect");
    rtq_subscription_free(s);
    return rc;
  }
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, cmd);
  rtq_argv_add(&a, chan, clen);
  redisReply *r = NULL;
  /* The confirmation is read with the command timeout: a server that
   * accepted the connection but does not answer cannot hang us. */
  rc = rtq_conn_command(s->conn, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 3)) {
    rtq__client_err(c, "unexpected reply to %s", cmd);
    rc = RTQ_EREDIS;
  } else if (rc != 0) {
    rtq__client_conn_err(c, s->conn, rc, cmd);
  }
  if (r != NULL) freeReplyObject(r);
  if (rc != 0) {
    rtq_subscription_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int rtq__sub_open_shard(rtq_client *c, const rtq_key2 *chan, rtq_subscription **out) {
  return sub_open(c, "SSUBSCRIBE", chan->s, chan->len, chan->s, chan->len, out);
}

/* Takes a "message" (or "smessage") push apart; other pushes (confirmations) are skipped.
 * Returns 1 with *payload set, 0 to skip, RTQ_ENOMEM. */
static int take_message(const redisReply *r, char **payload, size_t *len) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) return 0;
  const redisReply *kind = r->element[0], *body = r->element[2];
  if (kind->type != REDIS_REPLY_STRING ||
      (strcmp(kind->str, "message") != 0 && strcmp(kind->str, "smessage") != 0))
    return 0;
  if (body->type != REDIS_REPLY_STRING) return 0;
  char *p = malloc(body->len + 1);
  if (p == NULL) return RTQ_ENOMEM;
  memcpy(p, body->str, body->len);
  p[body->len] = '\0';
  *payload = p;
  *len = body->len;
  return 1;
}

static int lost(rtq_subscription *s, const char *why) {
  rtq__client_err(s->c, "subscription lost: %s", why);
  rtq_conn_drop(s->conn);
  return RTQ_ECONN;
}

int rtq__sub_next(rtq_subscription *s, uint64_t deadline_ms, char **payload, size_t *len) {
  *payload = NULL;
  *len = 0;
  for (;;) {
    redisContext *ctx = rtq_conn_ctx(s->conn);
    if (ctx == NULL) return lost(s, "the connection was closed");
    void *r = NULL;
    if (redisGetReplyFromReader(ctx, &r) != REDIS_OK) return lost(s, ctx->errstr);
    if (r != NULL) {
      int got = take_message(r, payload, len);
      freeReplyObject(r);
      if (got < 0) {
        rtq__client_err(s->c, "out of memory");
        return got;
      }
      if (got) return 0;
      continue;
    }
    int wait = -1;
    if (deadline_ms != UINT64_MAX) {
      uint64_t now = rtq__mono_ms();
      uint64_t left = deadline_ms > now ? deadline_ms - now : 0;
      wait = left > 86400000u ? 86400000 : (int)left;
    }
    struct pollfd p = {.fd = ctx->fd, .events = POLLIN, .revents = 0};
    int n = poll(&p, 1, wait);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return lost(s, strerror(errno));
    if (n == 0) {
      if (wait < 0 || (deadline_ms != UINT64_MAX && rtq__mono_ms() < deadline_ms)) continue;
      rtq__client_err(s->c, "timed out waiting for a message");
      return RTQ_ETIMEDOUT;
    }
    if (redisBufferRead(ctx) != REDIS_OK)
      return lost(s, ctx->err == REDIS_ERR_EOF ? "redis closed the connection" : ctx->errstr);
  }
}

RTQ_EXTERN int rtq_events_subscribe(rtq_client *c, rtq_subscription **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  *out = NULL;
  rtq_subscription *s = calloc(1, sizeof *s);
  if (s == NULL) return RTQ_ENOMEM;
  s->c = c;
  int rc = rtq__sub2_open(c, &s->v2);
  if (rc != 0) {
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

RTQ_EXTERN int rtq_subscription_next(rtq_subscription *s, int64_t timeout_ms, char **json) {
  if (s == NULL || json == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(s->c);
  uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : rtq__mono_ms() + (uint64_t)timeout_ms;
  if (s->v2 != NULL) return rtq__sub2_next(s->v2, deadline, json);
  size_t len;
  return rtq__sub_next(s, deadline, json, &len);
}

RTQ_EXTERN void rtq_subscription_free(rtq_subscription *s) {
  if (s == NULL) return;
  /* Closing the connection ends the subscription on the server. */
  rtq_conn_free(s->conn);
  rtq__sub2_free(s->v2);
  free(s);
}

void rtq__sub_counts(const rtq_subscription *s, uint64_t *dropped, uint64_t *skipped) {
  *dropped = *skipped = 0;
  if (s != NULL && s->v2 != NULL) rtq__sub2_counts(s->v2, dropped, skipped);
}
