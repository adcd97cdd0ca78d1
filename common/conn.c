/*
 * conn.c - blocking Redis connections: timeouts, keepalive, AUTH, SELECT,
 * reconnect with backoff, pipelining and error classification.
 *
 * Written against hiredis 0.14's blocking API (also in 1.x), which has no
 * connect options struct, so the timeouts are applied by hand: redisConnect*WithTimeout bounds the TCP/unix connect, and
 * redisSetTimeout (SO_RCVTIMEO/SO_SNDTIMEO) bounds every later read and
 * write. A timed-out blocking read leaves the protocol stream in an unknown
 * position, so any I/O error drops the context instead of reusing it.
 */
#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "cluster.h"
#include "defaults.h"
#include "log.h"
#include "rtq/common.h"
#include "sentinel.h"

#define DEF_KEEPALIVE_S 15
#define DEF_BACKOFF_MIN_MS 100
#define DEF_BACKOFF_MAX_MS 5000

struct rtq_conn {
  rtq_conn_options opts; /* defaults filled in; opts.url points at url_copy */
  char *url_copy;
  rtq_redis_url url;
  redisContext *ctx;
  rtq__cluster *cl;       /* redis+cluster://: the router; ctx stays NULL */
  rtq_redis_endpoint target; /* where do_connect goes: the URL's host, or the
                              * primary the sentinels named last */
  char errstr[512];
  char last_connect_err[512];
  int backoff_ms;         /* wait applied after the next failed attempt */
  uint64_t retry_at_ms;   /* CLOCK_MONOTONIC; no attempt before this */
  int spin_skip;          /* calls left that do not spin */
  int spin_backoff;       /* calls to skip after the next spin that runs out */
};

static struct timeval ms_to_tv(int ms) {
  struct timeval tv;
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

static void set_err(rtq_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(rtq_conn *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->errstr, sizeof c->errstr, fmt, ap);
  va_end(ap);
}

/* Error replies are copied as they are, even with embedded NULs cut: the
 * caller and the logs must see exactly what Redis said. */
static void set_err_reply(rtq_conn *c, const redisReply *r) {
  size_t n = r->len < sizeof c->errstr - 1 ? r->len : sizeof c->errstr - 1;
  memcpy(c->errstr, r->str, n);
  c->errstr[n] = '\0';
}

static const char *endpoint(const rtq_conn *c, char *buf, size_t cap) {
  if (c->url.is_unix)
    snprintf(buf, cap, "unix:%s", c->url.path);
  else
    snprintf(buf, cap, "%s:%d", c->target.host, c->target.port);
  return buf;
}

static void free_ctx(rtq_conn *c) {
  if (c->ctx != NULL) redisFree(c->ctx);
  c->ctx = NULL;
}

/* Records why the context failed, drops it, and says which code that is. */
static int io_failure(rtq_conn *c) {
  int code = RTQ_ECONN;
  if (c->ctx == NULL) {
    set_err(c, "not connected");
  } else if (c->ctx->err == REDIS_ERR_OOM) {
    set_err(c, "out of memory in hiredis");
    code = RTQ_ENOMEM;
  } else if (c->ctx->err == REDIS_ERR_IO && strcmp(c->ctx->errstr, strerror(EAGAIN)) == 0) {
    /* SO_RCVTIMEO expired: hiredis reports it as EAGAIN. */
    set_err(c, "redis command timed out after %d ms", c->opts.command_timeout_ms);
  } else if (c->ctx->err == REDIS_ERR_EOF) {
    set_err(c, "redis closed the connection");
  } else {
    set_err(c, "redis I/O error: %s", c->ctx->errstr);
  }
  free_ctx(c);
  return code;
}

int rtq_reply_error_code(const redisReply *r) {
  if (r == NULL || r->type != REDIS_REPLY_ERROR) return 0;
  if (r->len >= 3 && strncmp(r->str, "OOM", 3) == 0) return RTQ_EOOM;
  return RTQ_EREDIS;
}

/* Takes ownership of r (NULL means hiredis failed) and turns it into the
 * return convention of rtq_conn_command. */
static int finish_reply(rtq_conn *c, redisReply *r, redisReply **reply) {
  if (reply != NULL) *reply = NULL;
  if (r == NULL) return io_failure(c);
  int rc = 0;
  if (r->type == REDIS_REPLY_ERROR) {
    set_err_reply(c, r);
    rc = rtq_reply_error_code(r);
  }
  if (reply != NULL)
    *reply = r;
  else
    freeReplyObject(r);
  return rc;
}

/* One command on the raw context, used by the handshake (no reconnect). */
static int raw_command(rtq_conn *c, const rtq_argv *a) {
  redisReply *r = redisCommandArgv(c->ctx, a->argc, a->argv, a->argvlen);
  return finish_reply(c, r, NULL);
}

/* Keepalive probes start after keepalive_s idle seconds, then every
 * keepalive_s/3 s, and give up after 3 misses: a dead peer is noticed in
 * about 2 * keepalive_s instead of the kernel's two hours. */
static void set_keepalive(rtq_conn *c) {
  int idle = c->opts.keepalive_s;
  if (c->url.is_unix || idle <= 0) return;
  redisEnableKeepAlive(c->ctx);
  int intvl = idle / 3 > 0 ? idle / 3 : 1, cnt = 3;
  /* Failures only lose the tuning, not the connection: ignore them. */
  (void)setsockopt(c->ctx->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  (void)setsockopt(c->ctx->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
  (void)setsockopt(c->ctx->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

static int handshake(rtq_conn *c) {
  rtq_argv a;
  int rc = 0;
  rtq_argv_init(&a);
  if (c->url.password[0] != '\0' || c->url.user[0] != '\0') {
    rtq_argv_add_str(&a, "AUTH");
    /* With a user, the ACL form; a password alone authenticates the
     * default user, which also works on servers older than 6. */
    if (c->url.user[0] != '\0') rtq_argv_add_str(&a, c->url.user);
    rtq_argv_add_str(&a, c->url.password);
    rc = a.oom ? RTQ_ENOMEM : raw_command(c, &a);
  }
  if (rc == 0 && c->url.db != 0) {
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "SELECT");
    rtq_argv_add_i64(&a, c->url.db);
    rc = a.oom ? RTQ_ENOMEM : raw_command(c, &a);
  }
  rtq_argv_destroy(&a);
  return rc;
}

/* A sentinel URL's node must say it is the primary: during a failover
 * the old address can answer as a replica (or a demoted primary). */
static int check_role(rtq_conn *c) {
  const char *argv[1] = {"ROLE"};
  size_t lens[1] = {4};
  redisReply *r = redisCommandArgv(c->ctx, 1, argv, lens);
  if (r == NULL) return io_failure(c);
  int rc = rtq__sentinel_check_role(r, c->errstr, sizeof c->errstr);
  freeReplyObject(r);
  return rc;
}

/* Opens a fresh context; on failure c->errstr says why and c->ctx is NULL. */
static int do_connect(rtq_conn *c) {
  char ep[300];
  struct timeval ctv = ms_to_tv(c->opts.connect_timeout_ms);
  free_ctx(c);
  if (c->url.kind == RTQ_URL_SENTINEL) {
    /* Asked on every connect, so a failover is followed by the next one. */
    int rc = rtq__sentinel_resolve(&c->url, c->opts.connect_timeout_ms, &c->target, c->errstr, sizeof c->errstr);
    if (rc != 0) return rc;
  }
  c->ctx = c->url.is_unix ? redisConnectUnixWithTimeout(c->url.path, ctv)
                          : redisConnectWithTimeout(c->target.host, c->target.port, ctv);
  if (c->ctx == NULL) {
    set_err(c, "out of memory creating a redis context");
    return RTQ_ENOMEM;
  }
  if (c->ctx->err) {
    set_err(c, "connect %s: %s", endpoint(c, ep, sizeof ep), c->ctx->errstr);
    free_ctx(c);
    return RTQ_ECONN;
  }
  set_keepalive(c);
  /* The handshake is bounded by the connect timeout even for a subscriber
   * that will wait forever afterwards: a stopped server must not hang it. */
  if (redisSetTimeout(c->ctx, ctv) != REDIS_OK) return io_failure(c);
  int rc = handshake(c);
  if (rc == 0 && c->url.kind == RTQ_URL_SENTINEL) rc = check_role(c);
  if (rc != 0) {
    free_ctx(c);
    return rc;
  }
  struct timeval cmd = {0, 0}; /* zero: no timeout */
  if (c->opts.command_timeout_ms > 0) cmd = ms_to_tv(c->opts.command_timeout_ms);
  if (redisSetTimeout(c->ctx, cmd) != REDIS_OK) return io_failure(c);
  c->errstr[0] = '\0';
  return 0;
}

int rtq_conn_reconnect(rtq_conn *c) {
  if (c->cl != NULL) return rtq__cluster_reconnect(c->cl);
  if (c->ctx != NULL) return 0;
  uint64_t now = rtq__mono_ms();
  if (now < c->retry_at_ms) {
    set_err(c, "reconnect backoff: next attempt in %llu ms; last error: %s",
            (unsigned long long)(c->retry_at_ms - now), c->last_connect_err);
    return RTQ_ECONN;
  }
  int rc = do_connect(c);
  if (rc == 0) {
    c->backoff_ms = 0;
    c->retry_at_ms = 0;
    return 0;
  }
  snprintf(c->last_connect_err, sizeof c->last_connect_err, "%s", c->errstr);
  int max = c->opts.backoff_max_ms;
  int wait = c->backoff_ms == 0 ? c->opts.backoff_min_ms : (c->backoff_ms > max / 2 ? max : c->backoff_ms * 2);
  if (wait > max) wait = max;
  c->backoff_ms = wait;
  c->retry_at_ms = rtq__mono_ms() + (uint64_t)wait;
  return rc;
}

static int def(int v, int d) { return v == 0 ? d : v; }

/* A connection object for url (already parsed; copied), options with
 * their defaults, not connected. */
static rtq_conn *conn_alloc(const rtq_conn_options *opts, const rtq_redis_url *url, const char *url_text) {
  rtq_conn *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->url = *url;
  c->target.port = url->port;
  memcpy(c->target.host, url->host, sizeof c->target.host);
  c->url_copy = strdup(url_text);
  if (c->url_copy == NULL) {
    free(c);
    return NULL;
  }
  c->opts = *opts;
  c->opts.url = c->url_copy;
  c->opts.connect_timeout_ms = def(opts->connect_timeout_ms, RTQ_CONNECT_TIMEOUT_MS);
  if (c->opts.connect_timeout_ms < 0) c->opts.connect_timeout_ms = RTQ_CONNECT_TIMEOUT_MS;
  c->opts.command_timeout_ms = def(opts->command_timeout_ms, RTQ_COMMAND_TIMEOUT_MS);
  c->opts.keepalive_s = def(opts->keepalive_s, DEF_KEEPALIVE_S);
  c->opts.backoff_min_ms = def(opts->backoff_min_ms, DEF_BACKOFF_MIN_MS);
  if (c->opts.backoff_min_ms < 1) c->opts.backoff_min_ms = 1;
  c->opts.backoff_max_ms = def(opts->backoff_max_ms, DEF_BACKOFF_MAX_MS);
  if (c->opts.spin_us > 1000) c->opts.spin_us = 1000;
  /* Behind sentinels or a cluster a failover changes the address: retry
   * at least every second, so the new primary is used soon after it is
   * named (one question to a sentinel or node per retry). */
  if ((url->kind == RTQ_URL_SENTINEL || url->kind == RTQ_URL_CLUSTER) && c->opts.backoff_max_ms > RTQ_FAILOVER_BACKOFF_MAX_MS)
    c->opts.backoff_max_ms = RTQ_FAILOVER_BACKOFF_MAX_MS;
  if (c->opts.backoff_max_ms < c->opts.backoff_min_ms) c->opts.backoff_max_ms = c->opts.backoff_min_ms;
  return c;
}

int rtq__conn_new_node(const rtq_conn_options *o, const rtq_redis_url *u, const char *host, int port,
                       rtq_conn **out) {
  rtq_redis_url nu = *u;
  nu.kind = RTQ_URL_TCP;
  nu.is_unix = false;
  nu.nseeds = 0;
  snprintf(nu.host, sizeof nu.host, "%s", host);
  nu.port = port;
  /* The text is only shown by rtq_conn_url's callers; the node's address
   * is what matters, and the password stays out of it. */
  char text[300];
  snprintf(text, sizeof text, "redis://%s:%d", host, port);
  *out = conn_alloc(o, &nu, text);
  memset(&nu, 0, sizeof nu);
  return *out == NULL ? RTQ_ENOMEM : 0;
}

int rtq_conn_new(const rtq_conn_options *opts, rtq_conn **out, char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (out == NULL) return RTQ_EINVAL;
  *out = NULL;
  if (opts == NULL || opts->url == NULL) {
    if (errbuf != NULL && errcap > 0) snprintf(errbuf, errcap, "no redis URL given");
    return RTQ_EINVAL;
  }
  rtq_redis_url url;
  int rc = rtq_redis_url_parse(opts->url, &url, errbuf, errcap);
  if (rc != 0) return rc;
  rtq_conn *c = conn_alloc(opts, &url, opts->url);
  memset(&url, 0, sizeof url);
  if (c == NULL) return RTQ_ENOMEM;
  if (c->url.kind == RTQ_URL_CLUSTER) {
    c->cl = rtq__cluster_new(&c->opts, &c->url);
    if (c->cl == NULL) {
      rtq_conn_free(c);
      return RTQ_ENOMEM;
    }
    rc = rtq__cluster_connect(c->cl);
  } else {
    rc = do_connect(c);
  }
  if (rc != 0) {
    if (errbuf != NULL && errcap > 0) snprintf(errbuf, errcap, "%s", rtq_conn_errstr(c));
    rtq_conn_free(c);
    return rc;
  }
  *out = c;
  return 0;
}

void rtq_conn_free(rtq_conn *c) {
  if (c == NULL) return;
  free_ctx(c);
  rtq__cluster_free(c->cl);
  /* Both hold the password. */
  memset(c->url_copy, 0, strlen(c->url_copy));
  free(c->url_copy);
  memset(&c->url, 0, sizeof c->url);
  free(c);
}

redisContext *rtq_conn_ctx(rtq_conn *c) { return c->cl != NULL ? rtq__cluster_ctx(c->cl) : c->ctx; }
const rtq_redis_url *rtq_conn_url(const rtq_conn *c) { return &c->url; }
const char *rtq_conn_errstr(const rtq_conn *c) { return c->cl != NULL ? rtq__cluster_errstr(c->cl) : c->errstr; }

int rtq_conn_route_key(rtq_conn *c, const void *key, size_t n) {
  return c->cl != NULL ? rtq__cluster_route(c->cl, key, n) : rtq_conn_reconnect(c);
}

void rtq_conn_drop(rtq_conn *c) {
  if (c->cl != NULL) rtq__cluster_drop(c->cl);
  free_ctx(c);
  c->backoff_ms = 0;
  c->retry_at_ms = 0;
}

static int check_argv(rtq_conn *c, const rtq_argv *a) {
  if (a->oom) {
    set_err(c, "out of memory building the command");
    return RTQ_ENOMEM;
  }
  if (a->argc == 0) {
    set_err(c, "empty command");
    return RTQ_EINVAL;
  }
  return 0;
}

/*
 * After a write failed (the server closed the connection, say, after it
 * refused a command of a pipeline), the replies it sent before are still
 * in the socket: they are read into hiredis's reader without blocking, so
 * that the calls Redis ran are reported as run, not as lost. The context
 * keeps its error: once those replies are read, the next read fails.
 */
static void salvage_replies(redisContext *ctx) {
  char buf[16384];
  for (int i = 0; i < 4096; i++) {
    ssize_t n = recv(ctx->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0 || redisReaderFeed(ctx->reader, buf, (size_t)n) != REDIS_OK) return;
  }
}

/*
 * The next reply, as redisGetReply gives it, but before sleeping in a
 * blocking read, polls the socket without blocking for up to spin_us (when
 * the connection has one: the client's do, the broker's do not). A reply
 * from a Redis on the same host usually arrives within that, and a caller
 * that is still running when it does is not woken up from sleep, which on
 * a virtual machine costs both sides tens of microseconds (the cross-CPU
 * wake-up; docs/PERFORMANCE.md §5.1: an awaited create went from 95 to
 * 46-48 µs). Readable data is read by hiredis itself (redisBufferRead), so
 * errors are reported as on any read. The spin is adaptive: after a spin
 * that ran out with nothing received, the next 1, 2, 4 ... 64 calls do not
 * spin (a reply that comes in time resets it), so a remote or busy server
 * costs next to no CPU, and the spin does not take a shared CPU from the
 * processes that would answer sooner without it.
 */
static int await_reply(rtq_conn *c, void **r) {
  redisContext *ctx = c->ctx;
  *r = NULL;
  if (redisGetReplyFromReader(ctx, r) != REDIS_OK) return REDIS_ERR;
  if (*r != NULL) return REDIS_OK;
  int done = 0;
  do {
    if (redisBufferWrite(ctx, &done) != REDIS_OK) {
      salvage_replies(ctx);
      if (redisGetReplyFromReader(ctx, r) != REDIS_OK || *r == NULL) return REDIS_ERR;
      return REDIS_OK;
    }
  } while (!done);
  if (c->opts.spin_us <= 0) return redisGetReply(ctx, r);
  if (c->spin_skip > 0) {
    c->spin_skip--;
    return redisGetReply(ctx, r);
  }
  uint64_t t0 = rtq__mono_ns(), spin_ns = (uint64_t)c->opts.spin_us * 1000u;
  struct pollfd p = {.fd = ctx->fd, .events = POLLIN};
  bool got = false;
  while (rtq__mono_ns() - t0 < spin_ns) {
    int n = poll(&p, 1, 0);
    if (n < 0 && errno != EINTR) break; /* the blocking read reports it */
    if (n <= 0) continue;
    /* Readable (data, EOF or an error): one read, which does not block. */
    if (redisBufferRead(ctx) != REDIS_OK || redisGetReplyFromReader(ctx, r) != REDIS_OK)
      return REDIS_ERR;
    if (*r != NULL) {
      c->spin_backoff = 0;
      return REDIS_OK;
    }
    got = true; /* part of a reply: it is on its way */
  }
  if (!got) {
    c->spin_backoff = c->spin_backoff == 0 ? 1 : c->spin_backoff < 64 ? 2 * c->spin_backoff : 64;
    c->spin_skip = c->spin_backoff;
  }
  return redisGetReply(ctx, r);
}

int rtq_conn_command(rtq_conn *c, const rtq_argv *a, redisReply **reply) {
  if (c->cl != NULL) return rtq__cluster_command(c->cl, a, reply);
  if (reply != NULL) *reply = NULL;
  int rc = check_argv(c, a);
  if (rc == 0) rc = rtq_conn_reconnect(c);
  if (rc != 0) return rc;
  if (redisAppendCommandArgv(c->ctx, a->argc, a->argv, a->argvlen) != REDIS_OK) return io_failure(c);
  void *r = NULL;
  if (await_reply(c, &r) != REDIS_OK) return io_failure(c);
  return finish_reply(c, r, reply);
}

int rtq_conn_append(rtq_conn *c, const rtq_argv *a) {
  if (c->cl != NULL) return rtq__cluster_append(c->cl, a);
  int rc = check_argv(c, a);
  if (rc != 0) {
    /* Commands appended before this one would otherwise stay buffered and
     * answer the next caller's reads: a failed append drops the pipeline. */
    rtq_conn_drop(c);
    return rc;
  }
  rc = rtq_conn_reconnect(c);
  if (rc != 0) return rc;
  /* Appending only buffers; it fails on allocation alone. */
  if (redisAppendCommandArgv(c->ctx, a->argc, a->argv, a->argvlen) != REDIS_OK) return io_failure(c);
  return 0;
}

int rtq_conn_send(rtq_conn *c) {
  if (c->cl != NULL || c->ctx == NULL) return 0;
  redisContext *ctx = c->ctx;
  /* Best effort, without blocking: what the socket does not take now, and
   * any error, is left to the next read, which writes the rest first and
   * reports the failure after reading every reply that did arrive (a
   * failed write here must not drop replies Redis already sent). */
  while (ctx->err == 0 && sdslen(ctx->obuf) > 0) {
    ssize_t n = send(ctx->fd, ctx->obuf, sdslen(ctx->obuf), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n <= 0) break;
    sdsrange(ctx->obuf, n, -1);
  }
  return 0;
}

int rtq_conn_get_reply(rtq_conn *c, redisReply **reply) {
  if (c->cl != NULL) return rtq__cluster_get_reply(c->cl, reply);
  if (reply != NULL) *reply = NULL;
  if (c->ctx == NULL) {
    set_err(c, "not connected (a pipeline broke or the connection was dropped)");
    return RTQ_ECONN;
  }
  void *r = NULL;
  if (await_reply(c, &r) != REDIS_OK) {
    /* hiredis sets no reply when it fails. */
    return io_failure(c);
  }
  return finish_reply(c, r, reply);
}

int rtq_conn_primaries(rtq_conn *c, rtq_redis_endpoint *out, int max, int *n) {
  *n = 0;
  if (max < 1) return RTQ_EINVAL;
  if (c->cl != NULL) return rtq__cluster_primaries(c->cl, out, max, n);
  if (c->url.is_unix) {
    memcpy(out[0].host, c->url.path, sizeof out[0].host);
    out[0].port = 0;
  } else {
    out[0] = c->target;
  }
  *n = 1;
  return 0;
}

int rtq_conn_command_at(rtq_conn *c, const rtq_redis_endpoint *ep, const rtq_argv *a, redisReply **reply) {
  if (c->cl != NULL) return rtq__cluster_command_at(c->cl, ep, a, reply);
  return rtq_conn_command(c, a, reply);
}

int rtq_conn_check_eviction_policy(rtq_conn *c) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "CONFIG");
  rtq_argv_add_str(&a, "GET");
  rtq_argv_add_str(&a, "maxmemory-policy");
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == RTQ_ECONN || rc == RTQ_ENOMEM) return rc; /* no reply then */
  int warned = 0;
  if (rc != 0 || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[1]->type != REDIS_REPLY_STRING) {
    /* ACL users without +config, or CONFIG renamed away: say so quietly,
     * an operator who locked CONFIG is expected to know the policy. */
    rtq_log(RTQ_LOG_INFO, "could not check maxmemory-policy; it must be noeviction", "error",
            rc != 0 ? rtq_conn_errstr(c) : "unexpected CONFIG GET reply", NULL);
  } else if (strcmp(r->element[1]->str, "noeviction") != 0) {
    rtq_log(RTQ_LOG_WARNING,
            "redis maxmemory-policy is not noeviction: tasks can be silently evicted; "
            "set maxmemory-policy noeviction",
            "policy", r->element[1]->str, NULL);
    warned = 1;
  }
  if (r != NULL) freeReplyObject(r);
  return warned;
}

int rtq_conn_time_ms(rtq_conn *c, uint64_t *ms) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "TIME");
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc != 0) {
    if (r != NULL) freeReplyObject(r);
    return rc;
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
      r->element[1]->type != REDIS_REPLY_STRING) {
    set_err(c, "unexpected TIME reply");
    freeReplyObject(r);
    return RTQ_EREDIS;
  }
  unsigned long long s = strtoull(r->element[0]->str, NULL, 10);
  unsigned long long us = strtoull(r->element[1]->str, NULL, 10);
  *ms = (uint64_t)s * 1000u + (uint64_t)us / 1000u;
  freeReplyObject(r);
  return 0;
}

int rtq_redis_resolve(const rtq_redis_url *u, const void *key, size_t n, int timeout_ms, rtq_redis_endpoint *out,
                      char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  char scratch[512];
  char *err = errbuf != NULL && errcap > 0 ? errbuf : scratch;
  size_t cap = errbuf != NULL && errcap > 0 ? errcap : sizeof scratch;
  if (u->kind == RTQ_URL_SENTINEL) return rtq__sentinel_resolve(u, timeout_ms, out, err, cap);
  if (u->kind != RTQ_URL_CLUSTER) {
    snprintf(out->host, sizeof out->host, "%s", u->is_unix ? u->path : u->host);
    out->port = u->is_unix ? 0 : u->port;
    return 0;
  }
  rtq_conn_options o = {.url = "", .connect_timeout_ms = timeout_ms, .command_timeout_ms = timeout_ms};
  o.keepalive_s = RTQ_CONN_DISABLED;
  o.backoff_min_ms = o.backoff_max_ms = 1;
  rtq__cluster *cl = rtq__cluster_new(&o, u);
  if (cl == NULL) return RTQ_ENOMEM;
  int rc = rtq__cluster_connect(cl);
  if (rc == 0) rc = rtq__cluster_node_for_key(cl, key, n, out);
  if (rc != 0) snprintf(err, cap, "%s", rtq__cluster_errstr(cl));
  rtq__cluster_free(cl);
  return rc;
}
