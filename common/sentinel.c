/*
 * sentinel.c - asking sentinels for the primary, and checking ROLE (see
 * sentinel.h).
 */
#include "sentinel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rtq/common.h"

/* AUTH [user] password on a sentinel, when the URL gives its password.
 * 0 (also when there is none to send), -1 with err set when refused. */
static int auth(redisContext *ctx, const rtq_redis_url *u, const rtq_redis_endpoint *s, char *err, size_t cap) {
  if (u->sentinel_password[0] == '\0') return 0;
  const char *argv[3];
  size_t lens[3];
  int n = 0;
  argv[n] = "AUTH", lens[n++] = 4;
  if (u->sentinel_user[0] != '\0') argv[n] = u->sentinel_user, lens[n++] = strlen(u->sentinel_user);
  argv[n] = u->sentinel_password, lens[n++] = strlen(u->sentinel_password);
  redisReply *r = redisCommandArgv(ctx, n, argv, lens);
  int rc = 0;
  if (r == NULL) {
    snprintf(err, cap, "sentinel %s:%d: %s", s->host, s->port, ctx->err ? ctx->errstr : "no reply to AUTH");
    rc = -1;
  } else if (r->type == REDIS_REPLY_ERROR) {
    /* The reply never holds the password. */
    snprintf(err, cap, "sentinel %s:%d refused AUTH: %s", s->host, s->port, r->str);
    rc = -1;
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}

/* Asks one sentinel. 0 with *out set, 1 when it does not know the name,
 * -1 when it could not be asked; err says why for both. */
static int ask(const rtq_redis_url *u, const rtq_redis_endpoint *s, int timeout_ms, rtq_redis_endpoint *out,
               char *err, size_t cap) {
  const char *master = u->master;
  struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  redisContext *ctx = redisConnectWithTimeout(s->host, s->port, tv);
  if (ctx == NULL) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  int rc = -1;
  redisReply *r = NULL;
  if (ctx->err == 0 && redisSetTimeout(ctx, tv) == REDIS_OK) {
    if (auth(ctx, u, s, err, cap) != 0) {
      redisFree(ctx);
      return -1;
    }
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", master};
    size_t lens[3] = {8, 23, strlen(master)};
    r = redisCommandArgv(ctx, 3, argv, lens);
  }
  if (r == NULL) {
    snprintf(err, cap, "sentinel %s:%d: %s", s->host, s->port, ctx->err ? ctx->errstr : "no reply");
  } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
             r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len < sizeof out->host) {
    int port = atoi(r->element[1]->str);
    if (port > 0 && port <= 65535) {
      snprintf(out->host, sizeof out->host, "%s", r->element[0]->str);
      out->port = port;
      rc = 0;
    } else {
      snprintf(err, cap, "sentinel %s:%d gave a bad port", s->host, s->port);
    }
  } else if (r->type == REDIS_REPLY_ERROR) {
    snprintf(err, cap, "sentinel %s:%d: %s", s->host, s->port, r->str);
  } else {
    snprintf(err, cap, "sentinel %s:%d does not know master \"%s\"", s->host, s->port, master);
    rc = 1;
  }
  if (r != NULL) freeReplyObject(r);
  redisFree(ctx);
  return rc;
}

int rtq__sentinel_resolve(const rtq_redis_url *u, int timeout_ms, rtq_redis_endpoint *out, char *err,
                          size_t cap) {
  char why[256] = "no sentinel in the URL";
  size_t used = 0;
  err[0] = '\0';
  for (int i = 0; i < u->nseeds; i++) {
    int rc = ask(u, &u->seeds[i], timeout_ms, out, why, sizeof why);
    if (rc == 0) {
      err[0] = '\0';
      return 0;
    }
    if (used < cap) {
      int n = snprintf(err + used, cap - used, "%s%s", used ? "; " : "", why);
      if (n > 0) used += (size_t)n;
    }
  }
  if (u->nseeds == 0) snprintf(err, cap, "%s", why);
  return RTQ_ECONN;
}

int rtq__sentinel_check_role(const redisReply *r, char *err, size_t cap) {
  if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_STRING &&
      strcmp(r->element[0]->str, "master") == 0)
    return 0;
  const char *role = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                             r->element[0]->type == REDIS_REPLY_STRING
                         ? r->element[0]->str
                         : (r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "no answer");
  snprintf(err, cap, "the node the sentinels named is not a primary (ROLE: %s)", role);
  return RTQ_ECONN;
}
