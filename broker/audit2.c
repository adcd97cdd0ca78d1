/*
 * audit2.c - the audit of processing lists: finds the lists of dead
 * workers that no index leads to, by walking the keyspace itself.
 *
 * The dead-worker walk (dead.c, recover2.c) starts from {ns}:workers and
 * from each worker's record and {ns}:queues. A worker role may write all
 * three (heartbeat.lua does), and so may a hand with redis-cli: a dead
 * worker whose entry was removed, or whose record names other queues,
 * leaves lists the walk never reaches, and their tasks would stay running
 * for ever. The keyspace is the one index no role can edit without
 * deleting the lists themselves, so the broker also walks it:
 *
 *   1. Each sweep, SCAN <cursor> MATCH {ns:*}:p:* COUNT 250 TYPE list, at
 *      most RTQ_BROKER2_AUDIT_SCANS_PER_SWEEP steps and
 *      RTQ_BROKER2_AUDIT_MS_PER_SWEEP ms, with the cursor kept between
 *      sweeps. A step looks at up to RTQ_BROKER2_AUDIT_PER_LOOK keys of the
 *      reply; COUNT is only a hint, so a larger reply is kept and its
 *      other keys looked at by the next steps (of this sweep or the next),
 *      and the cursor moves on only when every key of it was looked at.
 *      On a cluster the walk visits every primary in turn
 *      (rtq_conn_primaries), each with its own cursor; a primary that
 *      changed (a failover) starts its walk again (a reply kept from the
 *      old one is dropped). A walk ends the sweep's steps, so a small
 *      keyspace is walked once per sweep, not more.
 *   2. A name that does not parse (rtq_keys2_parse_processing) is not
 *      ours: skipped, and the first one is logged.
 *   3. A list whose worker is alive by dead.c's rules (score present,
 *      within heartbeat_ttl and not in the future, record present) is left
 *      alone. Otherwise it becomes a suspect, with the time of that look.
 *   4. A suspect is looked at again once heartbeat_ttl has passed since:
 *      alive then (a live worker's next heartbeat writes its entry and
 *      record back, so one removed by hand or by a hostile writer is
 *      alive again), it is dropped; still not alive, its list goes through
 *      the recover script like any dead worker's (recover2.c), and when
 *      that moved entries the list counts in orphans_recovered and is
 *      logged once, naming the worker. Without the second look a live
 *      worker whose entry was just removed would lose its running tasks.
 *   5. A recovery that fails (the connection drops, a call gets an error
 *      reply) keeps the suspect, and the next sweep tries again: without
 *      that, only the next walk (about 100 sweeps over 1,000,000 keys)
 *      would find the list. After RTQ_BROKER2_AUDIT_RETRIES error replies
 *      in a row it is dropped (logged) and waits for the next walk, so a
 *      list that always fails cannot hold a place in the table for ever.
 *
 * Bounds: RTQ_BROKER2_AUDIT_SUSPECTS suspects (more wait for the next
 * walk), RTQ_BROKER2_AUDIT_RECOVER_PER_SWEEP lists and
 * RTQ_BROKER2_AUDIT_ENTRIES_PER_SWEEP entries recovered per sweep.
 * A SCAN the server refuses is logged once (again when the kind of error
 * changes), with a hint to grant +scan only when the ACL refused it
 * (NOPERM); the other phases go on.
 */
#include "internal2.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

typedef struct found {
  char queue[RTQ_NAME_MAX + 1];
  char wid[RTQ_NAME_MAX + 1];
} found;

/* alive[i] for the worker of each of the n lists: one pipeline of ZSCORE
 * and EXISTS per list. */
static int check_alive(rtq_broker *b, const rtq__dead_range *d, const char *const *wids, size_t n,
                       bool *alive) {
  rtq__batch *bt = &b->batch;
  rtq__batch_clear(bt);
  rtq_key2 workers = rtq_keys2_workers(&b->keys2);
  for (size_t i = 0; i < n; i++) {
    rtq_argv *a = rtq__batch_add(bt);
    if (a == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "ZSCORE");
    rtq__argv_add_key2(a, workers);
    rtq_argv_add_str(a, wids[i]);
    if ((a = rtq__batch_add(bt)) == NULL) return RTQ_ENOMEM;
    rtq_argv_add_str(a, "EXISTS");
    rtq__argv_add_key2(a, rtq_keys2_worker(&b->keys2, wids[i]));
  }
  int rc = n > 0 ? rtq__batch_run(b->conn, bt) : 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    /* An error reply (a key of the wrong type) counts as alive: the list
     * waits for a walk that can read its worker. */
    if (bt->rcs[2 * i] != 0 || bt->rcs[2 * i + 1] != 0) {
      alive[i] = true;
      continue;
    }
    const redisReply *score = bt->replies[2 * i];
    bool record = rtq__reply_int(bt->replies[2 * i + 1], 0) == 1;
    alive[i] = score != NULL && score->type == REDIS_REPLY_STRING && !rtq__broker_still_dead(score, !record, d);
  }
  rtq__batch_clear(bt);
  return rc;
}

static bool is_suspect(const rtq__broker2 *s, const found *f) {
  for (size_t i = 0; i < s->au_nsuspects; i++)
    if (strcmp(s->au_suspects[i].wid, f->wid) == 0 && strcmp(s->au_suspects[i].queue, f->queue) == 0)
      return true;
  return false;
}

static void add_suspect(rtq_broker *b, const found *f) {
  rtq__broker2 *s = b->v2;
  if (is_suspect(s, f)) return;
  if (s->au_nsuspects == RTQ_BROKER2_AUDIT_SUSPECTS) {
    if (!s->au_full_logged)
      rtq_log(RTQ_LOG_WARNING, "too many processing lists of dead workers at once; the rest wait for the next walk",
              "worker", f->wid, "queue", f->queue, NULL);
    s->au_full_logged = true;
    return;
  }
  rtq__audit_suspect *x = &s->au_suspects[s->au_nsuspects++];
  memcpy(x->queue, f->queue, sizeof x->queue);
  memcpy(x->wid, f->wid, sizeof x->wid);
  x->seen_at = b->now;
  x->failures = 0;
  rtq_log(RTQ_LOG_DEBUG, "a processing list's worker is not alive; looking again after the heartbeat TTL", "worker",
          f->wid, "queue", f->queue, NULL);
}

/* Recovers one suspect whose worker is still not alive. Returns 0 or an
 * error; *done when the suspect can go (its list emptied, or it is no
 * list), false when the budget ran out first or the recovery failed (the
 * next sweep tries again; after RTQ_BROKER2_AUDIT_RETRIES error replies in
 * a row the suspect goes too, and the next walk finds it). */
static int recover_suspect(rtq_broker *b, rtq__audit_suspect *x, int *budget, bool *done) {
  bool empty = false, failed = false;
  uint64_t moved = 0;
  int rc = rtq__broker2_recover_list(b, x->wid, x->queue, budget, &empty, &moved, &failed);
  *done = !failed && (empty || *budget > 0);
  /* A dropped connection is no fault of the list: it does not count. */
  if (failed && rc == 0 && ++x->failures >= RTQ_BROKER2_AUDIT_RETRIES) {
    char n[24];
    rtq_log(RTQ_LOG_WARNING, "the recovery of a dead worker's processing list keeps failing; leaving it to the next "
            "walk", "worker", x->wid, "queue", x->queue, "attempts", rtq__u64s((uint64_t)x->failures, n), NULL);
    *done = true;
  } else if (!failed) {
    x->failures = 0;
  }
  if (moved > 0) {
    char n[24];
    RTQ__COUNT(b, orphans_recovered, 1);
    rtq_log(RTQ_LOG_WARNING, "recovered a dead worker's processing list that no index led to", "worker", x->wid,
            "queue", x->queue, "entries", rtq__u64s(moved, n), NULL);
  }
  return rc;
}

/* The second look at every suspect first seen heartbeat_ttl ago or more
 * (at most RTQ_BROKER2_AUDIT_RECOVER_PER_SWEEP of them). */
static int second_looks(rtq_broker *b, const rtq__dead_range *d) {
  rtq__broker2 *s = b->v2;
  size_t due[RTQ_BROKER2_AUDIT_RECOVER_PER_SWEEP];
  const char *wids[RTQ_BROKER2_AUDIT_RECOVER_PER_SWEEP] = {NULL};
  bool alive[RTQ_BROKER2_AUDIT_RECOVER_PER_SWEEP], drop[RTQ_BROKER2_AUDIT_SUSPECTS] = {false};
  size_t n = 0;
  uint64_t ttl = (uint64_t)b->o.heartbeat_ttl_ms;
  for (size_t i = 0; i < s->au_nsuspects && n < RTQ_BROKER2_AUDIT_RECOVER_PER_SWEEP; i++)
    if (s->au_suspects[i].seen_at + ttl <= b->now) {
      due[n] = i;
      wids[n++] = s->au_suspects[i].wid;
    }
  int rc = check_alive(b, d, wids, n, alive);
  int budget = RTQ_BROKER2_AUDIT_ENTRIES_PER_SWEEP;
  for (size_t k = 0; rc == 0 && k < n; k++) {
    bool done = true;
    if (!alive[k] && budget > 0) rc = recover_suspect(b, &s->au_suspects[due[k]], &budget, &done);
    else if (!alive[k]) done = false;
    drop[due[k]] = done;
  }
  size_t kept = 0;
  for (size_t i = 0; i < s->au_nsuspects; i++)
    if (!drop[i]) s->au_suspects[kept++] = s->au_suspects[i];
  s->au_nsuspects = kept;
  return rc;
}

/* A key name for a log line: at most 200 bytes, up to a NUL (rtq_log
 * escapes control bytes). */
static const char *loggable(const redisReply *k, char out[201]) {
  size_t n = k->len < 200 ? k->len : 200;
  memcpy(out, k->str, n);
  out[n] = '\0';
  return out;
}

static void drop_page(rtq__broker2 *s) {
  if (s->au_page != NULL) freeReplyObject(s->au_page);
  s->au_page = NULL;
  s->au_page_at = 0;
}

/* The next keys (up to au_per_look) of the SCAN reply being looked at:
 * the lists of workers not alive become suspects. Once its last key was
 * looked at, the walk's cursor moves to the reply's and the reply goes;
 * on an error both stay, and the next step looks at the same keys. */
static int look_at_page(rtq_broker *b, const rtq__dead_range *d) {
  rtq__broker2 *s = b->v2;
  const redisReply *keys = s->au_page->element[1];
  size_t from = s->au_page_at, per = s->au_per_look > 0 ? s->au_per_look : RTQ_BROKER2_AUDIT_PER_LOOK;
  size_t n = keys->elements - from < per ? keys->elements - from : per;
  found *f = n > 0 ? malloc(n * sizeof *f) : NULL;
  const char **wids = n > 0 ? malloc(n * sizeof *wids) : NULL;
  bool *alive = n > 0 ? malloc(n * sizeof *alive) : NULL;
  int rc = n > 0 && (f == NULL || wids == NULL || alive == NULL) ? RTQ_ENOMEM : 0;
  size_t m = 0;
  for (size_t i = from; rc == 0 && i < from + n; i++) {
    const redisReply *k = keys->element[i];
    if (k->type == REDIS_REPLY_STRING &&
        rtq_keys2_parse_processing(&b->keys2, k->str, k->len, f[m].queue, f[m].wid) == 0) {
      wids[m] = f[m].wid;
      m++;
      continue;
    }
    if (!s->au_junk_logged) {
      char name[201];
      rtq_log(RTQ_LOG_WARNING, "a key matches the processing lists' pattern but is none; skipping it (logged once)",
              "key", k->type == REDIS_REPLY_STRING ? loggable(k, name) : "(not a string)", NULL);
      s->au_junk_logged = true;
    }
  }
  if (rc == 0) rc = check_alive(b, d, wids, m, alive);
  for (size_t i = 0; rc == 0 && i < m; i++)
    if (!alive[i]) add_suspect(b, &f[i]);
  free(f);
  free(wids);
  free(alive);
  if (rc != 0) return rc;
  s->au_lists += m;
  s->au_page_at = from + n;
  if (s->au_page_at == keys->elements) {
    const redisReply *c = s->au_page->element[0];
    memcpy(s->au_cursor, c->str, c->len + 1);
    drop_page(s);
  }
  return 0;
}

/* How a refused SCAN is logged: with the hint to grant +scan only when
 * the ACL refused it (a NOPERM error); LOADING, a server that is not a
 * primary and the like are logged as they are. */
static void log_refused(rtq_broker *b, const redisReply *r) {
  rtq__broker2 *s = b->v2;
  const char *why = rtq__broker2_why(b, r);
  int kind = strncmp(why, "NOPERM", 6) == 0 ? 1 : 2;
  if (s->au_refused == kind) return;
  s->au_refused = kind;
  if (kind == 1)
    rtq_log(RTQ_LOG_ERROR, "cannot SCAN for processing lists; dead workers missing from the workers set are not found "
            "(the broker's Redis user needs +scan)", "error", why, NULL);
  else
    rtq_log(RTQ_LOG_ERROR, "cannot SCAN for processing lists; dead workers missing from the workers set are not found "
            "until it works again", "error", why, NULL);
}

/* SCAN once on node: the reply becomes the page to look at (its cursor
 * "0": the node's walk is over once its keys were looked at). Returns 0,
 * 1 when the ACL or the server refused it (logged), or a connection
 * error. */
static int scan_once(rtq_broker *b, const rtq_redis_endpoint *node) {
  rtq__broker2 *s = b->v2;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "SCAN");
  rtq_argv_add_str(&a, s->au_cursor);
  rtq_argv_add_str(&a, "MATCH");
  rtq__argv_add_key2(&a, rtq_keys2_processing_pattern(&b->keys2));
  rtq_argv_add_str(&a, "COUNT");
  rtq_argv_add_i64(&a, RTQ_BROKER2_AUDIT_COUNT);
  rtq_argv_add_str(&a, "TYPE");
  rtq_argv_add_str(&a, "list");
  redisReply *r = NULL;
  int rc = rtq_conn_command_at(b->conn, node, &a, &r);
  rtq_argv_destroy(&a);
  bool shaped = rc == 0 && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                r->element[0]->type == REDIS_REPLY_STRING && r->element[0]->len < sizeof s->au_cursor &&
                r->element[1]->type == REDIS_REPLY_ARRAY;
  if (rc == RTQ_EREDIS || rc == RTQ_EOOM || (rc == 0 && !shaped)) {
    log_refused(b, r);
    if (r != NULL) freeReplyObject(r);
    return 1;
  }
  if (rc != 0) {
    if (r != NULL) freeReplyObject(r);
    return rc;
  }
  if (s->au_refused != 0) rtq_log(RTQ_LOG_INFO, "SCAN for processing lists works again", NULL);
  s->au_refused = 0;
  drop_page(s);
  s->au_page = r;
  return 0;
}

static bool same_node(const rtq_redis_endpoint *x, const rtq_redis_endpoint *y) {
  return x->port == y->port && strcmp(x->host, y->host) == 0;
}

/* Moves the walk to the next primary; after the last, a walk is over. */
static bool next_node(rtq__broker2 *s, int nodes) {
  snprintf(s->au_cursor, sizeof s->au_cursor, "0");
  drop_page(s);
  if (++s->au_shard < nodes) return false;
  s->au_shard = 0;
  s->au_cycles++;
  char c[24], l[24];
  rtq_log(RTQ_LOG_DEBUG, "walked every processing list", "walks", rtq__u64s(s->au_cycles, c), "lists",
          rtq__u64s(s->au_lists, l), NULL);
  s->au_lists = 0;
  return true;
}

static int scan_steps(rtq_broker *b, const rtq__dead_range *d) {
  rtq__broker2 *s = b->v2;
  rtq_redis_endpoint nodes[RTQ_BROKER2_AUDIT_MAX_NODES];
  int n = 0;
  int rc = rtq_conn_primaries(b->conn, nodes, RTQ_BROKER2_AUDIT_MAX_NODES, &n);
  if (rc != 0 || n == 0) return rc;
  uint64_t start = rtq__mono_ms();
  for (int call = 0; call < RTQ_BROKER2_AUDIT_SCANS_PER_SWEEP; call++) {
    if (call > 0 && rtq__mono_ms() - start >= RTQ_BROKER2_AUDIT_MS_PER_SWEEP) break;
    if (s->au_shard >= n) s->au_shard = 0;
    if (s->au_cursor[0] == '\0' || !same_node(&nodes[s->au_shard], &s->au_node)) {
      s->au_node = nodes[s->au_shard];
      snprintf(s->au_cursor, sizeof s->au_cursor, "0");
      drop_page(s);
    }
    if (s->au_page == NULL) {
      rc = scan_once(b, &s->au_node);
      if (rc == 1) return 0;
      if (rc != 0) return rc;
    }
    if ((rc = look_at_page(b, d)) != 0) return rc;
    if (s->au_page == NULL && strcmp(s->au_cursor, "0") == 0 && next_node(s, n)) break;
  }
  return 0;
}

int rtq__broker_audit2(rtq_broker *b) {
  rtq__dead_range d;
  if (!rtq__broker_dead_range(b, &d)) return 0;
  rtq__broker2 *s = b->v2;
  if (s->au_suspects == NULL &&
      (s->au_suspects = calloc(RTQ_BROKER2_AUDIT_SUSPECTS, sizeof *s->au_suspects)) == NULL)
    return RTQ_ENOMEM;
  int rc = second_looks(b, &d);
  return rc == 0 ? scan_steps(b, &d) : rc;
}
