/*
 * client.c - the client handle: options, the connection pool and the
 * per-thread error detail.
 *
 * The pool is a stack of idle connections under one mutex. A call pops one,
 * or, when none is idle and fewer than pool_size exist, opens one (outside
 * the lock, so a slow connect does not stall other threads), or waits on
 * the condition variable until a connection comes back. Connections are
 * never closed while the client lives; one that Redis dropped reconnects
 * on its next command (conn.c, with backoff).
 */
#include "client_internal.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "defaults.h"
#include "envelope.h"
#include "log.h"
#include "proto.h"
#include "replicas.h"
#include "scripts2.h"

#define DEF_POOL_SIZE 8
#define DEF_REPLY_SPIN_US 60
#define MAX_POOL_SIZE 1024

/* The detail of the calling thread's last call. owner is the serial of
 * the client it belongs to (0: rtq_client_new), so a thread using two
 * clients never reads one client's message through the other. */
static _Thread_local struct {
  uint64_t owner;
  char msg[512];
} tls_err;

static atomic_uint_fast64_t next_serial = 1;

static uint64_t serial_of(const rtq_client *c) { return c != NULL ? c->serial : 0; }

void rtq__client_err(const rtq_client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tls_err.msg, sizeof tls_err.msg, fmt, ap);
  va_end(ap);
  tls_err.owner = serial_of(c);
}

void rtq__client_clear_err(const rtq_client *c) {
  tls_err.msg[0] = '\0';
  tls_err.owner = serial_of(c);
}

RTQ_EXTERN const char *rtq_client_errstr(const rtq_client *c) {
  if (tls_err.owner != serial_of(c)) return "";
  return tls_err.msg;
}

int rtq__client_conn_err(const rtq_client *c, rtq_conn *conn, int rc, const char *what) {
  const char *detail = conn != NULL ? rtq_conn_errstr(conn) : "";
  if (detail[0] == '\0') detail = rtq_strerror(rc);
  rtq__client_err(c, "%s: %s", what, detail);
  return rc;
}

int rtq__check_name(const rtq_client *c, const char *what, const char *s) {
  if (rtq_validate_name(s) == 0) return 0;
  if (s == NULL) {
    rtq__client_err(c, "%s is missing", what);
  } else {
    /* Quote at most a prefix: the input may be hostile or huge. */
    int n = (int)strnlen(s, 64);
    rtq__client_err(c, "invalid %s \"%.*s%s\": expected 1-128 of A-Z a-z 0-9 . _ : -", what, n, s,
                    s[n] != '\0' ? "..." : "");
  }
  return RTQ_EINVAL;
}

int rtq__client_connect(rtq_client *c, int command_timeout_ms, rtq_conn **out) {
  char err[512];
  rtq_conn_options o;
  memset(&o, 0, sizeof o);
  o.url = c->url;
  o.connect_timeout_ms = c->connect_timeout_ms;
  o.command_timeout_ms = command_timeout_ms != 0 ? command_timeout_ms : c->command_timeout_ms;
  o.spin_us = c->reply_spin_us;
  int rc = rtq_conn_new(&o, out, err, sizeof err);
  if (rc != 0) rtq__client_err(c, "%s", err[0] ? err : rtq_strerror(rc));
  return rc;
}

int rtq__pool_get(rtq_client *c, rtq_conn **out) {
  pthread_mutex_lock(&c->mu);
  while (c->nidle == 0 && c->total >= c->max) pthread_cond_wait(&c->cv, &c->mu);
  if (c->nidle > 0) {
    *out = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->mu);
    return 0;
  }
  c->total++;
  pthread_mutex_unlock(&c->mu);
  int rc = rtq__client_connect(c, 0, out);
  if (rc != 0) {
    pthread_mutex_lock(&c->mu);
    c->total--;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
  }
  return rc;
}

void rtq__pool_put(rtq_client *c, rtq_conn *conn) {
  if (conn == NULL) return;
  pthread_mutex_lock(&c->mu);
  c->idle[c->nidle++] = conn; /* idle has room for max entries */
  pthread_cond_signal(&c->cv);
  pthread_mutex_unlock(&c->mu);
}

void rtq__pool_trim(rtq_client *c) {
  rtq_conn *closing[MAX_POOL_SIZE];
  int n = 0;
  pthread_mutex_lock(&c->mu);
  if (c->nidle == c->total) {
    n = c->nidle;
    memcpy(closing, c->idle, (size_t)n * sizeof *closing);
    c->total -= n;
    c->nidle = 0;
  }
  pthread_mutex_unlock(&c->mu);
  for (int i = 0; i < n; i++) rtq_conn_free(closing[i]);
}

int rtq__client_command(rtq_client *c, const rtq_argv *a, redisReply **reply) {
  rtq_conn *conn;
  *reply = NULL;
  int rc = rtq__pool_get(c, &conn);
  if (rc != 0) return rc;
  rc = rtq_conn_command(conn, a, reply);
  if (rc == RTQ_ECONN) {
    /* An idle pooled connection may have been closed by Redis (restart,
     * timeout); the first command notices. The reconnect is immediate. */
    rc = rtq_conn_command(conn, a, reply);
  }
  if (rc != 0) rtq__client_conn_err(c, conn, rc, "redis");
  rtq__pool_put(c, conn);
  return rc;
}

int rtq__client_script2(rtq_client *c, rtq_argv *a, redisReply **reply) {
  rtq_conn *conn;
  *reply = NULL;
  int rc = rtq__pool_get(c, &conn);
  if (rc != 0) return rc;
  if ((rc = rtq_script2_run(conn, a, reply)) != 0) rtq__client_conn_err(c, conn, rc, "redis");
  rtq__pool_put(c, conn);
  return rc;
}

int rtq__client_wait_replicas(rtq_client *c, rtq_conn *conn, int *acked) {
  int got = 0;
  if (acked != NULL) *acked = 0;
  if (c->wait_replicas == 0) return 0;
  int rc = rtq_replicas_wait(conn, c->wait_replicas, c->wait_timeout_ms, &got);
  if (acked != NULL) *acked = got;
  if (rc != 0) {
    rtq__client_err(c, "written, but WAIT failed, so its replication is unknown: %s", rtq_conn_errstr(conn));
    return RTQ_EREPLICAS;
  }
  if (got >= c->wait_replicas) return 0;
  rtq__client_err(c, "written, but %d of %d replicas acknowledged it within %d ms", got, c->wait_replicas,
                  c->wait_timeout_ms);
  return RTQ_EREPLICAS;
}

int rtq__client_words(rtq_client *c, redisReply **reply, int n, const char *const *words) {
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; i < n; i++) rtq_argv_add_str(&a, words[i]);
  redisReply *r = NULL;
  int rc = rtq__client_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (reply != NULL && rc == 0) *reply = r;
  else if (r != NULL) freeReplyObject(r);
  return rc;
}

/* One try of rtq__client_multi's m commands a[0..m) (MULTI ... EXEC) on a
 * pooled connection: MULTI first, then the others. Every reply is read, a refused one included, so none
 * is left for the connection's next user; the first failure is the one
 * reported. *exec gets EXEC's reply when it is one (not an error); *again
 * is set when a command met a MOVED and EXEC ran nothing: the slot map
 * knows the slot's new node then, and the whole transaction may go again. */
static int multi_once(rtq_client *c, const rtq_argv *a, int m, const char *key, redisReply **exec, bool *again) {
  *exec = NULL;
  *again = false;
  rtq_conn *conn;
  int rc = rtq__pool_get(c, &conn);
  if (rc != 0) return rc;
  /* On a cluster MULTI and EXEC, which name no key, go to the node of the
   * commands' key. */
  rc = rtq_conn_route_key(conn, key, strlen(key));
  /* MULTI's reply is awaited before the commands go: refused (a Redis
   * user without +multi), the commands would each run on their own. */
  redisReply *r0 = NULL;
  if (rc == 0 && (rc = rtq_conn_append(conn, &a[0])) == 0) rc = rtq_conn_get_reply(conn, &r0);
  if (r0 != NULL) freeReplyObject(r0);
  if (rc != 0) {
    rtq__client_conn_err(c, conn, rc, "redis");
    if (rc != RTQ_EREDIS && rc != RTQ_EOOM) rtq_conn_drop(conn);
    rtq__pool_put(c, conn);
    return rc;
  }
  for (int i = 1; rc == 0 && i < m; i++) rc = rtq_conn_append(conn, &a[i]);
  if (rc != 0) {
    rtq_conn_drop(conn); /* nothing half-sent stays buffered; the MULTI goes with the connection */
    rtq__client_conn_err(c, conn, rc, "redis");
  }
  bool moved = false, refused = false;
  int first = rc;
  for (int i = 1; rc == 0 && i < m; i++) {
    redisReply *r = NULL;
    int rrc = rtq_conn_get_reply(conn, &r);
    if (rrc != 0 && first == 0) first = rtq__client_conn_err(c, conn, rrc, "redis");
    if (rrc != 0 && r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "MOVED ", 6) == 0) moved = true;
    if (i == m - 1) refused = rrc != 0;
    if (i == m - 1 && rrc == 0) *exec = r;
    else if (r != NULL) freeReplyObject(r);
    if (rrc != 0 && rrc != RTQ_EREDIS && rrc != RTQ_EOOM) break; /* a lost connection owes no more */
  }
  rc = first;
  rtq__pool_put(c, conn);
  *again = rc == RTQ_EREDIS && moved && refused;
  return rc;
}

int rtq__client_multi(rtq_client *c, redisReply **exec, const char *const *const *steps) {
  if (exec != NULL) *exec = NULL;
  int n = 0;
  while (n <= RTQ__MULTI_MAX && steps[n] != NULL) n++;
  if (n < 1 || n > RTQ__MULTI_MAX) return RTQ_EINVAL;
  rtq_argv a[RTQ__MULTI_MAX + 2];
  for (int i = 0; i < n + 2; i++) rtq_argv_init(&a[i]);
  rtq_argv_add_str(&a[0], "MULTI");
  for (int i = 0; i < n; i++)
    for (int w = 0; steps[i][w] != NULL; w++) rtq_argv_add_str(&a[i + 1], steps[i][w]);
  rtq_argv_add_str(&a[n + 1], "EXEC");
  redisReply *done = NULL;
  /* steps[0][1]: every command here names its key first. A slot that
   * moved refuses the transaction whole: it goes once more, to the slot's
   * new node. */
  bool again = true;
  int rc = 0;
  for (int try = 0; again && try < 2; try++) rc = multi_once(c, a, n + 2, steps[0][1], &done, &again);
  /* A command that fails as it runs (a key of the wrong type) does not
   * undo the others: Redis has no rollback. It is reported all the same. */
  for (size_t i = 0; rc == 0 && done != NULL && done->type == REDIS_REPLY_ARRAY && i < done->elements; i++) {
    if (done->element[i]->type != REDIS_REPLY_ERROR) continue;
    rtq__client_err(c, "redis: %.200s", done->element[i]->str);
    rc = RTQ_EREDIS;
  }
  if (rc == 0 && (done == NULL || done->type != REDIS_REPLY_ARRAY)) {
    rtq__client_err(c, "redis: the transaction was not run");
    rc = RTQ_EREDIS;
  }
  for (int i = 0; i < n + 2; i++) rtq_argv_destroy(&a[i]);
  if (rc == 0 && exec != NULL) *exec = done;
  else if (done != NULL) freeReplyObject(done);
  return rc;
}

/* Fills c's settings from opts, the environment and the defaults. */
static int configure(rtq_client *c, const rtq_client_options *o) {
  rtq_config cfg;
  char err[512];
  int rc;
  rtq_config_defaults(&cfg);
  /* A URL the caller gives makes RTQ_REDIS_URL(_FILE) moot: not read. */
  static const char *const url_settings[] = {"redis_url", "redis_url_file", NULL};
  bool own_url = o->redis_url != NULL || o->redis_url_file != NULL;
  if (rtq_config_from_env_except(&cfg, own_url ? url_settings : NULL, err, sizeof err) != 0) {
    rtq__client_err(NULL, "%s", err);
    return RTQ_EINVAL;
  }
  if (o->redis_url != NULL && o->redis_url_file != NULL) {
    rtq__client_err(NULL, "give redis_url or redis_url_file, not both");
    return RTQ_EINVAL;
  }
  if (o->redis_url_file != NULL && rtq_config_set(&cfg, "redis_url_file", o->redis_url_file, err, sizeof err) != 0) {
    rtq__client_err(NULL, "%s", err);
    return RTQ_EINVAL;
  }
  const char *url = o->redis_url != NULL ? o->redis_url : cfg.redis_url;
  const char *ns = o->ns != NULL ? o->ns : cfg.ns;
  if (o->protocol != 0 && o->protocol != 2) {
    rtq__client_err(NULL, "invalid client options: protocol %d (0 or 2: protocol 1 is no longer supported)",
                    o->protocol);
    return RTQ_EINVAL;
  }
  if (rtq_keys2_init(&c->keys2, ns) != 0) {
    rtq__client_err(NULL, "invalid namespace \"%.64s\": expected 1-64 of A-Z a-z 0-9 . _ -", ns);
    return RTQ_EINVAL;
  }
  const char *q = o->default_queue != NULL ? o->default_queue : RTQ_DEFAULT_QUEUE;
  if (rtq__check_name(NULL, "default queue", q) != 0) return RTQ_EINVAL;
  snprintf(c->default_queue, sizeof c->default_queue, "%s", q);
  if (o->connect_timeout_ms < 0 || o->command_timeout_ms < 0 || o->pool_size < 0 ||
      o->pool_size > MAX_POOL_SIZE || o->task_result_ttl_s < 0 || o->reply_spin_us < -1 ||
      o->reply_spin_us > 1000) {
    rtq__client_err(NULL, "invalid client options: negative timeout, ttl or pool size, a "
                          "pool over %d, or a reply spin outside -1..1000 us", MAX_POOL_SIZE);
    return RTQ_EINVAL;
  }
  c->reply_spin_us = o->reply_spin_us < 0 ? 0 : o->reply_spin_us ? o->reply_spin_us : DEF_REPLY_SPIN_US;
  c->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : RTQ_CONNECT_TIMEOUT_MS;
  c->command_timeout_ms = o->command_timeout_ms ? o->command_timeout_ms : RTQ_COMMAND_TIMEOUT_MS;
  c->max = o->pool_size ? o->pool_size : DEF_POOL_SIZE;
  c->max_payload = o->max_payload ? o->max_payload : RTQ_ENVELOPE_MAX_SIZE_DEFAULT;
  c->result_ttl_s = o->task_result_ttl_s ? o->task_result_ttl_s : cfg.task_result_ttl;
  c->history = o->history == 0 ? cfg.enable_task_history : o->history > 0;
  c->history_cap = cfg.max_task_history;
  int wr = o->wait_replicas == 0 ? cfg.wait_replicas : o->wait_replicas < 0 ? 0 : o->wait_replicas;
  int wt = o->wait_timeout_ms ? o->wait_timeout_ms : cfg.wait_timeout;
  if (wr > RTQ_WAIT_REPLICAS_MAX || wt < 1 || wt > RTQ_WAIT_TIMEOUT_MAX_MS || (wr > 0 && wt >= c->command_timeout_ms)) {
    /* The WAIT's reply must come before the socket's read timeout. */
    rtq__client_err(NULL, "invalid client options: wait_replicas over %d, or a wait_timeout_ms outside 1..%d "
                          "or not below command_timeout_ms (%d)", RTQ_WAIT_REPLICAS_MAX, RTQ_WAIT_TIMEOUT_MAX_MS,
                    c->command_timeout_ms);
    return RTQ_EINVAL;
  }
  c->wait_replicas = wr;
  c->wait_timeout_ms = wt;
  if (o->signing_key_file != NULL &&
      (rc = rtq_sign_keys_load(o->signing_key_file, &c->sign_keys, err, sizeof err)) != 0) {
    rtq__client_err(NULL, "signing key: %s", err);
    return rc;
  }
  if (o->result_keys_file != NULL &&
      (rc = rtq_sign_keys_load(o->result_keys_file, &c->result_keys, err, sizeof err)) != 0) {
    rtq__client_err(NULL, "result keys: %s", err);
    return rc;
  }
  if (o->task_keys_file != NULL &&
      (rc = rtq_sign_keys_load(o->task_keys_file, &c->task_keys, err, sizeof err)) != 0) {
    rtq__client_err(NULL, "task keys: %s", err);
    return rc;
  }
  c->url = strdup(url);
  c->idle = calloc((size_t)c->max, sizeof *c->idle);
  c->known = calloc(RTQ__KNOWN_QUEUES, sizeof *c->known);
  if (c->url == NULL || c->idle == NULL || c->known == NULL) {
    rtq__client_err(NULL, "out of memory");
    return RTQ_ENOMEM;
  }
  return 0;
}

RTQ_EXTERN int rtq_client_new(const rtq_client_options *opts, rtq_client **out) {
  rtq_client_options none;
  rtq__client_clear_err(NULL);
  if (out == NULL) {
    rtq__client_err(NULL, "out is NULL");
    return RTQ_EINVAL;
  }
  *out = NULL;
  if (opts == NULL) {
    memset(&none, 0, sizeof none);
    opts = &none;
  }
  rtq_client *c = calloc(1, sizeof *c);
  if (c == NULL) {
    rtq__client_err(NULL, "out of memory");
    return RTQ_ENOMEM;
  }
  c->serial = atomic_fetch_add(&next_serial, 1);
  if (opts->cluster)
    rtq_log(RTQ_LOG_WARNING,
            "rtq_client_options.cluster is deprecated and ignored: a redis+cluster:// URL selects Redis Cluster",
            NULL);
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->cv, NULL);
  int rc = configure(c, opts);
  rtq_conn *conn = NULL;
  if (rc == 0) rc = rtq__client_connect(c, 0, &conn);
  if (rc == 0) {
    c->total = 1;
    char why[512];
    rc = rtq_proto_check(conn, c->keys2.ns, why, sizeof why);
    if (rc != 0) {
      rtq__client_err(NULL, "%s", why);
    } else if ((rc = rtq_scripts2_load(conn)) != 0) {
      rtq__client_conn_err(NULL, conn, rc, "loading the Lua scripts");
    } else {
      int ev = rtq_conn_check_eviction_policy(conn);
      if (ev < 0) rc = rtq__client_conn_err(NULL, conn, ev, "checking maxmemory-policy");
    }
  }
  if (rc != 0) {
    /* The detail belongs to "no client": rtq_client_errstr(NULL). */
    if (tls_err.msg[0] == '\0') rtq__client_err(NULL, "%s", rtq_strerror(rc));
    tls_err.owner = 0;
    rtq_conn_free(conn);
    c->total = 0;
    rtq_client_free(c);
    return rc;
  }
  rtq__pool_put(c, conn);
  *out = c;
  return 0;
}

RTQ_EXTERN void rtq_client_free(rtq_client *c) {
  if (c == NULL) return;
  /* Every borrowed connection must be back: freeing races no call. */
  for (int i = 0; i < c->nidle; i++) rtq_conn_free(c->idle[i]);
  free(c->idle);
  free(c->known);
  free(c->url);
  rtq_sign_keys_free(c->sign_keys);
  rtq_sign_keys_free(c->result_keys);
  rtq_sign_keys_free(c->task_keys);
  pthread_cond_destroy(&c->cv);
  pthread_mutex_destroy(&c->mu);
  free(c);
}
