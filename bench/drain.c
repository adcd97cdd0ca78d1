/*
 * drain.c - the drain phases: a backlog of N tasks, then worker processes
 * started on it, timed from the first spawn until the completion counter
 * that finish.lua keeps (P:stats "<queue>|completed") reaches N. Every task
 * is then checked to be `completed` one by one, outside the timed window.
 *
 * The counter is polled every POLL_US with one HMGET; those polls (and the
 * INFO that opens the window) are the bench's own commands and are taken
 * out of the command figures. Their CPU share stays in (about 1 µs each,
 * 500 per second: under 0.1% of a core).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "keys2.h"
#include "scripts2.h"

#define POLL_US 2000
#define STOP_TIMEOUT_MS 10000

void rtq__bench_ns(rtq__bench *b, const char *what, char *ns, size_t cap) {
  snprintf(ns, cap, "rtqb-%ld-%u-%s", (long)getpid(), ++b->seq, what);
}

/* The namespace's keys, for the bench's own reads. */
typedef struct ns_keys {
  rtq_keys2 v2;
} ns_keys;

static void ns_keys_init(ns_keys *k, const char *ns) { rtq_keys2_init(&k->v2, ns); }

/* completed and failed counts of the benchmark queue in ns. */
static int read_counts(rtq__bench *b, const ns_keys *k, uint64_t *done, uint64_t *failed) {
  rtq_key2 stats = rtq_keys2_stats(&k->v2, RTQ__BENCH_QUEUE);
  const char *argv[] = {"HMGET", stats.s, "completed", "failed"};
  redisReply *r = NULL;
  int rc = rtq__bench_cmd(&b->redis, &r, 4, argv);
  if (rc != 0) return rc;
  *done = *failed = 0;
  if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
    if (r->element[0]->type == REDIS_REPLY_STRING) *done = strtoull(r->element[0]->str, NULL, 10);
    if (r->element[1]->type == REDIS_REPLY_STRING) *failed = strtoull(r->element[1]->str, NULL, 10);
  }
  freeReplyObject(r);
  return 0;
}

/* Counts the tasks whose status is completed, pipelined in windows. */
static size_t verify(rtq__bench *b, const ns_keys *k, const char *ids, size_t n) {
  size_t ok = 0;
  rtq_conn *c = b->redis.admin;
  for (size_t base = 0; base < n; base += 1000) {
    size_t m = n - base < 1000 ? n - base : 1000;
    size_t sent = 0;
    for (size_t i = 0; i < m; i++, sent++) {
      const char *id = ids + (base + i) * RTQ_TASK_ID_SIZE;
      rtq_argv a;
      rtq_argv_init(&a);
      rtq_argv_add_str(&a, "HGET");
      rtq__argv_add_key2(&a, rtq_keys2_task(&k->v2, RTQ__BENCH_QUEUE, id));
      rtq_argv_add_str(&a, "s");
      int rc = rtq_conn_append(c, &a);
      rtq_argv_destroy(&a);
      if (rc != 0) break;
    }
    for (size_t i = 0; i < sent; i++) {
      redisReply *r = NULL;
      if (rtq_conn_get_reply(c, &r) == 0 && r->type == REDIS_REPLY_STRING &&
          strcmp(r->str, "completed") == 0)
        ok++;
      if (r != NULL) freeReplyObject(r);
    }
    b->redis.own_cmds += sent;
    if (sent < m) break;
  }
  return ok;
}

static json_t *reply_num(rtq__bench *b, int argc, const char **argv) {
  redisReply *r = NULL;
  json_t *v = json_null();
  if (rtq__bench_cmd(&b->redis, &r, argc, argv) == 0) {
    if (r->type == REDIS_REPLY_INTEGER) v = json_integer((json_int_t)r->integer);
    if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) v = json_string(r->str);
    freeReplyObject(r);
  }
  return v;
}

/* Where the kept memory goes: one task hash, and per task the done list
 * ({ns:Q}:done:completed). */
static json_t *memory_breakdown(rtq__bench *b, const ns_keys *k, const char *id0, size_t n) {
  rtq_key2 task2 = rtq_keys2_task(&k->v2, RTQ__BENCH_QUEUE, id0);
  rtq_key2 done2 = rtq_keys2_done(&k->v2, RTQ__BENCH_QUEUE, RTQ_STATUS_COMPLETED);
  const char *task = task2.s, *done = done2.s;
  const char *mu_task[] = {"MEMORY", "USAGE", task, "SAMPLES", "0"};
  const char *enc_task[] = {"OBJECT", "ENCODING", task};
  const char *mu_done[] = {"MEMORY", "USAGE", done, "SAMPLES", "0"};
  const char *hlen[] = {"HLEN", task};
  const char *hargs[] = {"HSTRLEN", task, "x"};
  json_t *m = json_object();
  json_object_set_new(m, "task_hash_bytes", reply_num(b, 5, mu_task));
  json_object_set_new(m, "task_hash_encoding", reply_num(b, 3, enc_task));
  json_object_set_new(m, "task_hash_fields", reply_num(b, 2, hlen));
  json_object_set_new(m, "task_args_bytes", reply_num(b, 3, hargs));
  json_t *d = reply_num(b, 5, mu_done);
  json_object_set_new(m, "status_index_bytes_per_task",
                      json_real(json_is_integer(d) ? (double)json_integer_value(d) / (double)n : 0));
  json_decref(d);
  return m;
}

/* --script-profile: every command goes to SLOWLOG with its duration. */
static void profile_begin(rtq__bench *b, size_t n) {
  char len[32];
  /* Redis 7 logs the commands a script runs too: about 30 entries a task */
  snprintf(len, sizeof len, "%zu", 40 * n + 10000);
  const char *a1[] = {"CONFIG", "SET", "slowlog-max-len", len};
  const char *a2[] = {"CONFIG", "SET", "slowlog-log-slower-than", "0"};
  const char *a3[] = {"SLOWLOG", "RESET"};
  rtq__bench_cmd(&b->redis, NULL, 4, a1);
  rtq__bench_cmd(&b->redis, NULL, 4, a2);
  rtq__bench_cmd(&b->redis, NULL, 2, a3);
}

/* Aggregates SLOWLOG into {"<script or command>": {calls, usec_per_call}},
 * and for scripts also usec_p50, usec_p99 and usec_max over their calls
 * (the longest call is what stalls every other client). */
static json_t *profile_end(rtq__bench *b) {
  const char *a1[] = {"CONFIG", "SET", "slowlog-log-slower-than", "10000"};
  rtq__bench_cmd(&b->redis, NULL, 4, a1);
  const char *a2[] = {"SLOWLOG", "GET", "-1"};
  redisReply *r = NULL;
  json_t *acc = json_object();
  if (rtq__bench_cmd(&b->redis, &r, 3, a2) != 0) return acc;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
    const redisReply *e = r->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 4) continue;
    const redisReply *argv = e->element[3];
    if (argv->type != REDIS_REPLY_ARRAY || argv->elements < 1) continue;
    char name[64];
    snprintf(name, sizeof name, "%s", argv->element[0]->str);
    for (char *p = name; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    if (strcmp(name, "evalsha") == 0 && argv->elements > 1) {
      for (int s = 0; s < RTQ_SCRIPT2_COUNT; s++) {
        const char *sha = rtq_script2_sha((rtq_script2_id)s);
        if (sha && strcmp(sha, argv->element[1]->str) == 0)
          snprintf(name, sizeof name, "script2:%s", rtq_script2_name((rtq_script2_id)s));
      }
    }
    /* slot: [calls, usec total, [usec of each call] (scripts only)] */
    json_t *slot = json_object_get(acc, name);
    if (slot == NULL) {
      json_object_set_new(acc, name, slot = json_pack("[ff]", 0.0, 0.0));
      if (strncmp(name, "script", 6) == 0) json_array_append_new(slot, json_array());
    }
    double us = (double)e->element[2]->integer;
    json_array_set_new(slot, 0, json_real(json_real_value(json_array_get(slot, 0)) + 1));
    json_array_set_new(slot, 1, json_real(json_real_value(json_array_get(slot, 1)) + us));
    json_t *each = json_array_get(slot, 2);
    if (each != NULL) json_array_append_new(each, json_real(us));
  }
  freeReplyObject(r);
  const char *a3[] = {"SLOWLOG", "RESET"};
  rtq__bench_cmd(&b->redis, NULL, 2, a3);
  json_t *out = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(acc, k, v) {
    double calls = json_real_value(json_array_get(v, 0));
    json_t *o = json_pack("{sfsf}", "calls", calls, "usec_per_call",
                          json_real_value(json_array_get(v, 1)) / calls);
    json_t *each = json_array_get(v, 2);
    size_t n = json_array_size(each);
    double *d = n ? calloc(n, sizeof *d) : NULL;
    for (size_t i = 0; d && i < n; i++) d[i] = json_real_value(json_array_get(each, i));
    if (d) {
      json_object_set_new(o, "usec_p50", json_real(rtq__bench_quantile(d, n, 0.5)));
      json_object_set_new(o, "usec_p99", json_real(rtq__bench_quantile(d, n, 0.99)));
      json_object_set_new(o, "usec_max", json_real(rtq__bench_quantile(d, n, 1.0)));
    }
    free(d);
    json_object_set_new(out, k, o);
  }
  json_decref(acc);
  return out;
}

/*
 * Drains the n tasks waiting in ns (ids: their ids) with k worker
 * processes; fills res. full: also commandstats, the kept memory against
 * mem_base (used_memory before the backlog was made) and its breakdown.
 * Returns 0 when every task completed in time, else -1.
 */
static int drain(rtq__bench *b, const char *ns, const char *ids, size_t n, int k, bool full,
                 uint64_t mem_base, json_t *res) {
  ns_keys keys;
  ns_keys_init(&keys, ns);
  rtq__bench_proc procs[RTQ__BENCH_MAX_WORKERS];
  memset(procs, 0, sizeof procs);
  bool profile = full && b->o->script_profile && b->redis.own;
  int rc = b->o->limit_other > 0 ? rtq__bench_limited_setup(b, ns, res) : 0;
  if (profile) profile_begin(b, n);
  rtq__bench_info a = {0}, z = {0};
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &a);
  uint64_t t0 = rtq__bench_now_ns();
  for (int i = 0; rc == 0 && i < k; i++) {
    char tag[64];
    snprintf(tag, sizeof tag, "%s-%d", ns, i);
    rc = rtq__bench_worker_spawn(&procs[i], b->o, &b->redis, ns, tag);
  }
  uint64_t done = 0, failed = 0, t1 = t0;
  uint64_t end = t0 + (uint64_t)b->o->phase_timeout_s * 1000000000u;
  while (rc == 0) {
    rc = read_counts(b, &keys, &done, &failed);
    t1 = rtq__bench_now_ns();
    if (rc != 0 || done + failed >= n) break;
    int alive = 0;
    for (int i = 0; i < k; i++) alive += rtq__bench_proc_alive(&procs[i]);
    if (alive < k) {
      fprintf(stderr, "rtq-bench: a worker exited early (see %s/worker-*.log)\n", b->redis.dir);
      rc = -1;
    } else if (t1 > end) {
      fprintf(stderr, "rtq-bench: drain: %llu of %zu done after %d s\n",
              (unsigned long long)done, n, b->o->phase_timeout_s);
      rc = -1;
    } else {
      rtq__bench_sleep_us(POLL_US);
    }
  }
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &z);
  json_t *scripts = profile ? profile_end(b) : NULL;
  long hwm = 0;
  double cpu = 0, ctxsw = 0;
  for (int i = 0; i < k; i++) {
    rtq__bench_worker_stop(&procs[i], STOP_TIMEOUT_MS);
    ctxsw += (double)procs[i].ctxsw;
    hwm = procs[i].hwm_kb > hwm ? procs[i].hwm_kb : hwm;
    cpu += procs[i].cpu_s;
  }
  if (rc == 0 && failed > 0) {
    fprintf(stderr, "rtq-bench: %llu tasks failed\n", (unsigned long long)failed);
    rc = -1;
  }
  if (rc == 0) {
    double s = (double)(t1 - t0) / 1e9;
    json_object_set_new(res, "workers", json_integer(k));
    json_object_set_new(res, "n", json_integer((json_int_t)n));
    json_object_set_new(res, "seconds", json_real(s));
    json_object_set_new(res, "tasks_per_s", json_real((double)n / s));
    rtq__bench_info_delta(res, &a, &z, n, full);
    json_object_set_new(res, "worker_peak_rss_kb", json_integer(hwm));
    json_object_set_new(res, "worker_cpu_us_per_task", json_real(cpu * 1e6 / (double)n));
    json_object_set_new(res, "worker_ctx_switches_per_task", json_real(ctxsw / (double)n));
    size_t ok = verify(b, &keys, ids, n);
    json_object_set_new(res, "verified_completed", json_integer((json_int_t)ok));
    if (ok != n) {
      fprintf(stderr, "rtq-bench: only %zu of %zu tasks read back as completed\n", ok, n);
      rc = -1;
    }
  }
  if (rc == 0 && full) {
    rtq__bench_info m = {0};
    if (rtq__bench_info_take(&b->redis, &m) == 0) {
      json_object_set_new(res, "redis_memory_per_task_bytes",
                          json_real(((double)m.used_memory - (double)mem_base) / (double)n));
      json_object_set_new(res, "memory", memory_breakdown(b, &keys, ids, n));
    }
    rtq__bench_info_destroy(&m);
  }
  if (scripts != NULL) json_object_set_new(res, "script_profile", scripts);
  rtq__bench_info_destroy(&a);
  rtq__bench_info_destroy(&z);
  return rc;
}

int rtq__bench_phase_enqueue_batch(rtq__bench *b) {
  char ns[96];
  rtq__bench_ns(b, "batch", ns, sizeof ns);
  json_t *res = json_object();
  rtq__bench_say(b, "enqueue batch: %zu tasks in chunks of %zu", b->o->n, b->o->chunk);
  int rc = rtq__bench_flush(&b->redis);
  if (rc == 0) rc = rtq__bench_enqueue_batch(b, ns, b->o->n, NULL, res);
  json_object_set_new(b->out, "enqueue_batch", res);
  rtq__bench_drop_ns(&b->redis, ns);
  return rc;
}

int rtq__bench_phase_single_and_drain(rtq__bench *b) {
  size_t n = b->o->n;
  char ns[96];
  rtq__bench_ns(b, "drain", ns, sizeof ns);
  char *ids = calloc(n, RTQ_TASK_ID_SIZE);
  rtq__bench_info base = {0};
  int rc = ids ? rtq__bench_flush(&b->redis) : -1;
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &base);
  rtq__bench_say(b, "enqueue 1-by-1: %zu tasks", n);
  json_t *single = json_object();
  if (rc == 0) rc = rtq__bench_enqueue_single(b, ns, n, ids, single);
  json_object_set_new(b->out, "enqueue_single", single);
  if (rc == 0 && (b->o->phases & RTQ__PH_DRAIN)) {
    rtq__bench_say(b, "drain: %zu tasks, 1 worker process, %d slots", n, b->o->concurrency);
    json_t *res = json_object();
    rc = drain(b, ns, ids, n, 1, true, base.used_memory, res);
    json_object_set_new(b->out, "drain", res);
  }
  rtq__bench_info_destroy(&base);
  free(ids);
  rtq__bench_drop_ns(&b->redis, ns);
  return rc;
}

int rtq__bench_phase_scaling(rtq__bench *b) {
  size_t n = b->o->n;
  char *ids = calloc(n, RTQ_TASK_ID_SIZE);
  json_t *arr = json_array();
  json_object_set_new(b->out, "scaling", arr);
  int rc = ids ? 0 : -1;
  for (int s = 0; rc == 0 && s < b->o->nscaling; s++) {
    int k = b->o->scaling[s];
    char ns[96], what[32];
    snprintf(what, sizeof what, "scale%d", k);
    rtq__bench_ns(b, what, ns, sizeof ns);
    rtq__bench_say(b, "scaling: %zu tasks, %d worker process%s", n, k, k == 1 ? "" : "es");
    json_t *res = json_object();
    json_t *enq = json_object();
    rc = rtq__bench_flush(&b->redis);
    if (rc == 0) rc = rtq__bench_enqueue_batch(b, ns, n, ids, enq);
    json_decref(enq);
    if (rc == 0) rc = drain(b, ns, ids, n, k, false, 0, res);
    json_array_append_new(arr, res);
    rtq__bench_drop_ns(&b->redis, ns);
  }
  free(ids);
  return rc;
}
