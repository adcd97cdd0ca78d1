/*
 * cluster.c - a Redis Cluster and a Sentinel set for tests, built from the
 * harness's private redis-servers (see harness.h).
 *
 * The cluster is joined with CLUSTER ADDSLOTSRANGE and CLUSTER MEET rather
 * than redis-cli --cluster create: the same result, without parsing an
 * interactive tool's output. Sentinels run Debian's redis-sentinel when
 * that package is installed (scripts/install-deps.sh installs it), else
 * redis-server --sentinel, the same program (redis_server.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "crc16.h"
#include "internal.h"
#include "rtq/common.h"

#define MAX_NODES 8
#define FORM_TIMEOUT_MS 30000

struct rtq_test_cluster {
  int n;
  int masters; /* nodes 0..masters-1 serve slots */
  rtq_test_redis *node[MAX_NODES];
  int bus[MAX_NODES]; /* cluster bus ports */
};

struct rtq_test_sentinels {
  rtq_test_redis *data[2];
  rtq_test_redis *sent[3];
  char url[160];
};

/* One command on a fresh connection to 127.0.0.1:port; NULL on I/O
 * failure. Arguments are C strings ended by NULL. */
static redisReply *run(int port, const char *arg0, ...) {
  const char *argv[16];
  size_t lens[16];
  int argc = 0;
  va_list ap;
  va_start(ap, arg0);
  for (const char *a = arg0; a != NULL && argc < 16; a = va_arg(ap, const char *)) {
    argv[argc] = a;
    lens[argc++] = strlen(a);
  }
  va_end(ap);
  struct timeval tv = {2, 0};
  redisContext *ctx = redisConnectWithTimeout("127.0.0.1", port, tv);
  redisReply *r = NULL;
  if (ctx != NULL && ctx->err == 0 && redisSetTimeout(ctx, tv) == REDIS_OK)
    r = redisCommandArgv(ctx, argc, argv, lens);
  if (ctx != NULL) redisFree(ctx);
  return r;
}

static bool reply_ok(redisReply *r) {
  bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
  if (r != NULL && !ok) fprintf(stderr, "rtq harness: %s\n", r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
  if (r != NULL) freeReplyObject(r);
  return ok;
}

/* True when INFO-style text (CLUSTER INFO) holds line. */
static bool info_has(int port, const char *a0, const char *a1, const char *line) {
  redisReply *r = run(port, a0, a1, NULL);
  bool yes = r != NULL && r->type == REDIS_REPLY_STRING && strstr(r->str, line) != NULL;
  if (r != NULL) freeReplyObject(r);
  return yes;
}

static bool formed(void *arg) {
  rtq_test_cluster *c = arg;
  char known[64];
  snprintf(known, sizeof known, "cluster_known_nodes:%d\r", c->n);
  for (int i = 0; i < c->n; i++) {
    int p = rtq_test_redis_port(c->node[i]);
    if (!info_has(p, "CLUSTER", "INFO", "cluster_state:ok") || !info_has(p, "CLUSTER", "INFO", known)) return false;
  }
  return true;
}

static int range_lo(int n, int i) { return i * 16384 / n; }

int rtq_test_cluster_owner_at_start(const rtq_test_cluster *c, int slot) {
  for (int i = c->masters - 1; i >= 0; i--)
    if (slot >= range_lo(c->masters, i)) return i;
  return 0;
}

rtq_test_cluster *rtq_test_cluster_start(int n, int masters) {
  if (n < 1 || n > MAX_NODES || masters < 1 || masters > n) return NULL;
  rtq_test_cluster *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->masters = masters;
  bool ok = true;
  for (int i = 0; i < n && ok; i++) {
    /* The bus port is named: the default (port + 10000) does not exist
     * for the ephemeral ports above 55535 the harness often gets. */
    char bus[32];
    c->bus[i] = rtq__test_free_port();
    snprintf(bus, sizeof bus, "cluster-port %d", c->bus[i]);
    const char *conf[] = {"cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 1000",
                          bus, NULL};
    rtq_test_redis_options o = {.extra_config = conf};
    c->node[i] = rtq_test_redis_start(&o);
    ok = c->node[i] != NULL;
    c->n = i + 1;
  }
  for (int i = 0; i < masters && ok; i++) {
    char lo[16], hi[16];
    snprintf(lo, sizeof lo, "%d", range_lo(masters, i));
    snprintf(hi, sizeof hi, "%d", range_lo(masters, i + 1) - 1);
    ok = reply_ok(run(rtq_test_redis_port(c->node[i]), "CLUSTER", "ADDSLOTSRANGE", lo, hi, NULL));
  }
  for (int i = 1; i < n && ok; i++) {
    char port[16], bus[16];
    snprintf(port, sizeof port, "%d", rtq_test_redis_port(c->node[i]));
    snprintf(bus, sizeof bus, "%d", c->bus[i]);
    ok = reply_ok(run(rtq_test_redis_port(c->node[0]), "CLUSTER", "MEET", "127.0.0.1", port, bus, NULL));
  }
  if (ok && !rtq_test_wait_until(formed, c, FORM_TIMEOUT_MS)) {
    fprintf(stderr, "rtq harness: the cluster did not reach cluster_state:ok within %d ms\n", FORM_TIMEOUT_MS);
    ok = false;
  }
  if (!ok) {
    rtq_test_cluster_stop(c);
    return NULL;
  }
  return c;
}

void rtq_test_cluster_stop(rtq_test_cluster *c) {
  if (c == NULL) return;
  for (int i = 0; i < c->n; i++) rtq_test_redis_stop(c->node[i]);
  free(c);
}

rtq_test_redis *rtq_test_cluster_node(const rtq_test_cluster *c, int i) { return c->node[i]; }

const char *rtq_test_cluster_url(const rtq_test_cluster *c, int i, char *buf, size_t cap) {
  snprintf(buf, cap, "redis+cluster://127.0.0.1:%d", rtq_test_redis_port(c->node[i]));
  return buf;
}

const char *rtq_test_cluster_node_id(const rtq_test_cluster *c, int i, char *buf) {
  redisReply *r = run(rtq_test_redis_port(c->node[i]), "CLUSTER", "MYID", NULL);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_int_equal(r->len, 40);
  memcpy(buf, r->str, 41);
  freeReplyObject(r);
  return buf;
}

static bool replica_synced(void *arg) {
  int *port = arg;
  return info_has(*port, "INFO", "replication", "master_link_status:up");
}

/* A key the node on port serves ("" when it serves no slot), from
 * CLUSTER SLOTS: a hash tag whose slot falls in its first range. */
static void key_served_by(int port, char key[32]) {
  key[0] = '\0';
  redisReply *r = run(port, "CLUSTER", "SLOTS", NULL);
  for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements && key[0] == '\0'; i++) {
    redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[2]->type != REDIS_REPLY_ARRAY ||
        e->element[2]->elements < 2 || e->element[2]->element[1]->integer != port)
      continue;
    long long lo = e->element[0]->integer, hi = e->element[1]->integer;
    for (int k = 0; k < 100000 && key[0] == '\0'; k++) {
      char cand[32];
      snprintf(cand, sizeof cand, "{sync-%d}", k);
      int slot = rtq_key_slot(cand, strlen(cand));
      if (slot >= lo && slot <= hi) memcpy(key, cand, strlen(cand) + 1);
    }
  }
  if (r != NULL) freeReplyObject(r);
}

typedef struct stream_probe {
  int port; /* the primary */
  char key[32];
} stream_probe;

/* True once a write on the primary reaches the replica: WAIT 1 answers 1.
 * After a diskless full sync Redis 7.0 sends the replica nothing until the
 * replica's first REPLCONF ACK (up to a second later; WAIT asks for one),
 * so "link up" alone does not mean writes are being replicated. */
static bool streaming(void *arg) {
  stream_probe *p = arg;
  struct timeval tv = {2, 0};
  redisContext *ctx = redisConnectWithTimeout("127.0.0.1", p->port, tv);
  bool yes = false;
  if (ctx != NULL && ctx->err == 0 && redisSetTimeout(ctx, tv) == REDIS_OK) {
    const char *set[] = {"SET", p->key, "1", "PX", "10000"}, *wait[] = {"WAIT", "1", "200"};
    size_t setlen[] = {3, strlen(p->key), 1, 2, 5}, waitlen[] = {4, 1, 3};
    redisReply *r = redisCommandArgv(ctx, 5, set, setlen);
    if (r != NULL) freeReplyObject(r);
    r = redisCommandArgv(ctx, 3, wait, waitlen);
    yes = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= 1;
    if (r != NULL) freeReplyObject(r);
  }
  if (ctx != NULL) redisFree(ctx);
  return yes;
}

int rtq_test_cluster_replicate(rtq_test_cluster *c, int replica, int of) {
  char id[41];
  redisReply *r = run(rtq_test_redis_port(c->node[of]), "CLUSTER", "MYID", NULL);
  bool ok = r != NULL && r->type == REDIS_REPLY_STRING && r->len == 40;
  if (ok) memcpy(id, r->str, 41);
  if (r != NULL) freeReplyObject(r);
  if (!ok) return -1;
  int port = rtq_test_redis_port(c->node[replica]);
  /* The replica must have learnt of the primary through gossip first. */
  uint64_t deadline = rtq_test_now_ms() + FORM_TIMEOUT_MS;
  for (int i = 0;; i++) {
    r = run(port, "CLUSTER", "REPLICATE", id, NULL);
    ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL) freeReplyObject(r);
    if (ok) break;
    if (rtq_test_now_ms() >= deadline) return -1;
    rtq__test_poll_pause(i);
  }
  if (!rtq_test_wait_until(replica_synced, &port, FORM_TIMEOUT_MS)) return -1;
  stream_probe probe = {.port = rtq_test_redis_port(c->node[of])};
  key_served_by(probe.port, probe.key);
  if (probe.key[0] == '\0') return 0; /* no slot: nothing written there to replicate */
  return rtq_test_wait_until(streaming, &probe, FORM_TIMEOUT_MS) ? 0 : -1;
}

/* ---- sentinels ---- */

static long long sentinel_count(int port, const char *what) {
  redisReply *r = run(port, "SENTINEL", what, "rtqm", NULL);
  long long n = r != NULL && r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
  if (r != NULL) freeReplyObject(r);
  return n;
}

static bool watching(void *arg) {
  rtq_test_sentinels *s = arg;
  if (!info_has(rtq_test_redis_port(s->data[1]), "INFO", "replication", "master_link_status:up")) return false;
  for (int i = 0; i < 3; i++) {
    int p = rtq_test_redis_port(s->sent[i]);
    if (sentinel_count(p, "replicas") != 1 || sentinel_count(p, "sentinels") != 2) return false;
  }
  return true;
}

rtq_test_sentinels *rtq_test_sentinels_start(void) {
  rtq_test_sentinels *s = calloc(1, sizeof *s);
  if (s == NULL) return NULL;
  bool ok = (s->data[0] = rtq_test_redis_start(NULL)) != NULL;
  char replicaof[64], monitor[96];
  if (ok) {
    int p = rtq_test_redis_port(s->data[0]);
    snprintf(replicaof, sizeof replicaof, "replicaof 127.0.0.1 %d", p);
    snprintf(monitor, sizeof monitor, "sentinel monitor rtqm 127.0.0.1 %d 2", p);
    const char *rconf[] = {replicaof, NULL};
    rtq_test_redis_options ro = {.extra_config = rconf};
    ok = (s->data[1] = rtq_test_redis_start(&ro)) != NULL;
  }
  const char *sconf[] = {monitor, "sentinel down-after-milliseconds rtqm 1000",
                         "sentinel failover-timeout rtqm 3000", "sentinel parallel-syncs rtqm 1", NULL};
  rtq_test_redis_options so = {.sentinel = true, .extra_config = sconf};
  for (int i = 0; i < 3 && ok; i++) ok = (s->sent[i] = rtq_test_redis_start(&so)) != NULL;
  if (ok && !rtq_test_wait_until(watching, s, FORM_TIMEOUT_MS)) {
    fprintf(stderr, "rtq harness: the sentinels did not see the replica and each other within %d ms\n",
            FORM_TIMEOUT_MS);
    ok = false;
  }
  if (!ok) {
    rtq_test_sentinels_stop(s);
    return NULL;
  }
  snprintf(s->url, sizeof s->url, "redis-sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/rtqm",
           rtq_test_redis_port(s->sent[0]), rtq_test_redis_port(s->sent[1]), rtq_test_redis_port(s->sent[2]));
  return s;
}

void rtq_test_sentinels_stop(rtq_test_sentinels *s) {
  if (s == NULL) return;
  for (int i = 0; i < 3; i++) rtq_test_redis_stop(s->sent[i]);
  for (int i = 0; i < 2; i++) rtq_test_redis_stop(s->data[i]);
  free(s);
}

const char *rtq_test_sentinels_url(const rtq_test_sentinels *s) { return s->url; }
rtq_test_redis *rtq_test_sentinels_node(const rtq_test_sentinels *s, int i) { return s->data[i]; }

int rtq_test_sentinels_primary_port(const rtq_test_sentinels *s) {
  for (int i = 0; i < 3; i++) {
    redisReply *r = run(rtq_test_redis_port(s->sent[i]), "SENTINEL", "get-master-addr-by-name", "rtqm", NULL);
    int port = 0;
    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING)
      port = atoi(r->element[1]->str);
    if (r != NULL) freeReplyObject(r);
    if (port > 0) return port;
  }
  return 0;
}
