/*
 * floor.c - the floor: the least Redis CPU per task that the per-task
 * Redis work of a drain can cost, with no Lua and no worker in the way.
 *
 * One connection of this process replays, as plain commands, what claim
 * and finish do for each task (common/lua/claim.lua, finish.lua and the
 * helpers of _prelude.lua), BATCH tasks per pipelined round trip: every
 * command of BATCH tasks is appended, then every reply is read. Writes to
 * shared keys (the index zsets, the stats counter) carry all BATCH members
 * in one command, as the scripts' batches do. Per batch, in order:
 *
 *   claim, per task   LMOVE queue processing RIGHT LEFT
 *                     HMGET task <the claim fields>
 *                     HSET task status running started_at worker deadline attempt
 *                     PUBLISH events <running event>
 *   claim, shared     ZREM pending, ZADD running, ZADD deadlines
 *   finish, per task  HMGET task <the finish fields>
 *                     LREM processing 1 <envelope>
 *                     HSET task status completed completed_at
 *                     HDEL task deadline args
 *                     EXPIRE task 86400
 *                     PUBLISH events <completed event>, PUBLISH task channel
 *   finish, shared    ZREM deadlines, ZREM running, ZADD status:completed,
 *                     ZADD history, HINCRBY stats "<queue>|completed"
 *
 * The second variant sends the same batch inside MULTI ... EXEC.
 *
 * Before the clock starts, N pending tasks are written the way create.lua
 * writes them (hash, envelope on the queue, id in status:pending). The
 * envelopes are pushed in task order, so LMOVE ... RIGHT yields them in
 * that order and task i of a batch is the one its LMOVE moved. The window
 * is the same as the drain's: INFO deltas on the admin connection, the
 * INFO itself taken out of the command count. No event has a subscriber.
 * After the window the keys are checked: every task went through.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "clock.h"
#include "ids.h"

#define BATCH 50
#define SETUP_CHUNK 500
#define ENV_LEN 200                 /* bytes of an envelope stand-in */
#define ARGS_LEN 90                 /* bytes of the args field */
#define TIMEOUT_MS 30000
#define RESULT_TTL_S "86400"
#define ID_CAP (RTQ_ID_LEN + 1)

/* What one task needs in a batch, rebuilt for each task. */
typedef struct floor_task {
  rtq_key task, chan;
  char env[ENV_LEN + 1];
  char ev[256];
} floor_task;

typedef struct floor_run {
  rtq__bench *b;
  rtq_conn *conn;
  redisContext *ctx;          /* borrowed from conn */
  rtq_keys keys;
  rtq_key queue, processing, pending, running, deadlines, completed, history, stats;
  rtq_key events, stats_field;
  char wid[RTQ_WORKER_ID_MAX + 1];
  char created[24];           /* created_at of every task, ms */
  char *ids;                  /* n ids, ID_CAP bytes each */
  size_t n;
  size_t queued;              /* commands appended whose replies are unread */
  bool append_failed;
  floor_task t[BATCH];
  const char *shared[2 + 2 * SETUP_CHUNK]; /* argv of a shared-key command */
} floor_run;

static const char *id_of(const floor_run *f, size_t i) {
  return f->ids + i * ID_CAP;
}

/* The envelope stand-in of task i: its id and queue, padded to ENV_LEN. */
static void make_env(const floor_run *f, size_t i, char *out) {
  int len = snprintf(out, ENV_LEN + 1, "v1|id=%s|queue=%s|name=rtq.noop|attempt=1|", id_of(f, i),
                     RTQ__BENCH_QUEUE);
  if (len < 0) len = 0;
  for (size_t k = (size_t)len; k < ENV_LEN; k++) out[k] = 'e';
  out[ENV_LEN] = '\0';
}

/* Appends one command (C-string arguments); hiredis copies them. */
static void put(floor_run *f, int argc, const char **argv) {
  if (redisAppendCommandArgv(f->ctx, argc, argv, NULL) != REDIS_OK)
    f->append_failed = true;
  else
    f->queued++;
}

/* An error reply, or a nil where a value must be (LMOVE from an empty
 * queue, an aborted EXEC). exec: r is EXEC's reply, which must hold want
 * replies, none of them an error or a nil. */
static bool bad_reply(const redisReply *r, bool exec, size_t want) {
  if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_NIL) return true;
  if (!exec) return false;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != want) return true;
  for (size_t i = 0; i < r->elements; i++)
    if (r->element[i]->type == REDIS_REPLY_ERROR || r->element[i]->type == REDIS_REPLY_NIL)
      return true;
  return false;
}

/* Reads every pending reply; multi: they are MULTI's, the QUEUED ones and
 * EXEC's. Returns 0, or -1 after printing the first problem (a broken
 * connection ends the reading at once). */
static int read_all(floor_run *f, bool multi) {
  int rc = 0;
  if (f->append_failed) {
    fprintf(stderr, "rtq-bench: floor: cannot append a command: %s\n", f->ctx->errstr);
    rc = -1;
  }
  size_t total = f->queued;
  for (; f->queued > 0; f->queued--) {
    void *v = NULL;
    if (redisGetReply(f->ctx, &v) != REDIS_OK) {
      fprintf(stderr, "rtq-bench: floor: %s\n", f->ctx->errstr);
      f->queued = 0;
      return -1;
    }
    const redisReply *r = v;
    if (rc == 0 && bad_reply(r, multi && f->queued == 1, total >= 2 ? total - 2 : 0)) {
      fprintf(stderr, "rtq-bench: floor: unexpected reply (type %d%s%s)\n", r->type,
              r->type == REDIS_REPLY_ERROR ? ": " : "", r->type == REDIS_REPLY_ERROR ? r->str : "");
      rc = -1;
    }
    freeReplyObject(v);
  }
  f->append_failed = false;
  return rc;
}

/* Writes the n pending tasks as create.lua would, SETUP_CHUNK per round
 * trip: the hash, the envelope LPUSHed in task order, the id in
 * status:pending. */
static int setup(floor_run *f) {
  char args[ARGS_LEN + 1];
  memset(args, 'a', ARGS_LEN);
  args[ARGS_LEN] = '\0';
  char *envs = malloc((size_t)SETUP_CHUNK * (ENV_LEN + 1));
  if (envs == NULL) return -1;
  int rc = 0;
  for (size_t base = 0; rc == 0 && base < f->n; base += SETUP_CHUNK) {
    size_t m = f->n - base < SETUP_CHUNK ? f->n - base : SETUP_CHUNK;
    for (size_t i = 0; i < m; i++) {
      rtq_key tk = rtq_keys_task(&f->keys, id_of(f, base + i));
      const char *hset[] = {"HSET", tk.s, "name", "rtq.noop", "queue", RTQ__BENCH_QUEUE,
                            "status", "pending", "created_at", f->created, "args", args,
                            "attempt", "0", "timeout_ms", "30000", "max_retries", "3",
                            "result_ttl", RESULT_TTL_S};
      put(f, (int)(sizeof hset / sizeof hset[0]), hset);
    }
    f->shared[0] = "LPUSH";
    f->shared[1] = f->queue.s;
    for (size_t i = 0; i < m; i++) {
      make_env(f, base + i, envs + i * (ENV_LEN + 1));
      f->shared[2 + i] = envs + i * (ENV_LEN + 1);
    }
    put(f, (int)(2 + m), f->shared);
    f->shared[0] = "ZADD";
    f->shared[1] = f->pending.s;
    for (size_t i = 0; i < m; i++) {
      f->shared[2 + 2 * i] = f->created;
      f->shared[3 + 2 * i] = id_of(f, base + i);
    }
    put(f, (int)(2 + 2 * m), f->shared);
    rc = read_all(f, false);
  }
  free(envs);
  return rc;
}

/* One shared-key command over the ids of a batch: "CMD key [score] id ...". */
static void put_ids(floor_run *f, const char *cmd, const rtq_key *key, const char *score,
                    size_t base, size_t m) {
  int argc = 0;
  f->shared[argc++] = cmd;
  f->shared[argc++] = key->s;
  for (size_t i = 0; i < m; i++) {
    if (score != NULL) f->shared[argc++] = score;
    f->shared[argc++] = id_of(f, base + i);
  }
  put(f, argc, f->shared);
}

/* Appends the commands of tasks base..base+m (see the top of the file),
 * in MULTI ... EXEC when multi, then reads every reply. */
static int batch(floor_run *f, size_t base, size_t m, bool multi) {
  char now[24], deadline[24], count[24];
  uint64_t ms = rtq__wall_ms();
  snprintf(now, sizeof now, "%llu", (unsigned long long)ms);
  snprintf(deadline, sizeof deadline, "%llu", (unsigned long long)(ms + TIMEOUT_MS));
  snprintf(count, sizeof count, "%zu", m);
  if (multi) put(f, 1, (const char *[]){"MULTI"});
  for (size_t i = 0; i < m; i++) {
    floor_task *t = &f->t[i];
    const char *id = id_of(f, base + i);
    t->task = rtq_keys_task(&f->keys, id);
    t->chan = rtq_keys_chan_task(&f->keys, id);
    make_env(f, base + i, t->env);
    snprintf(t->ev, sizeof t->ev,
             "{\"id\":\"%s\",\"status\":\"running\",\"worker\":\"%s\",\"attempt\":1,\"at\":%s}",
             id, f->wid, now);
    const char *lmove[] = {"LMOVE", f->queue.s, f->processing.s, "RIGHT", "LEFT"};
    const char *hmget[] = {"HMGET", t->task.s, "status", "timeout_ms", "created_at", "attempt"};
    const char *hset[] = {"HSET", t->task.s, "status", "running", "started_at", now,
                          "worker", f->wid, "deadline", deadline, "attempt", "1"};
    const char *pub[] = {"PUBLISH", f->events.s, t->ev};
    put(f, 5, lmove);
    put(f, 6, hmget);
    put(f, 12, hset);
    put(f, 3, pub);
  }
  put_ids(f, "ZREM", &f->pending, NULL, base, m);
  put_ids(f, "ZADD", &f->running, f->created, base, m);
  put_ids(f, "ZADD", &f->deadlines, deadline, base, m);
  for (size_t i = 0; i < m; i++) {
    floor_task *t = &f->t[i];
    snprintf(t->ev, sizeof t->ev, "{\"id\":\"%s\",\"status\":\"completed\",\"at\":%s}",
             id_of(f, base + i), now);
    const char *hmget[] = {"HMGET", t->task.s, "status", "worker", "attempt", "max_retries",
                           "retry_backoff_ms", "created_at", "queue", "result_ttl",
                           "cancel_requested"};
    const char *lrem[] = {"LREM", f->processing.s, "1", t->env};
    const char *hset[] = {"HSET", t->task.s, "status", "completed", "completed_at", now};
    const char *hdel[] = {"HDEL", t->task.s, "deadline", "args"};
    const char *expire[] = {"EXPIRE", t->task.s, RESULT_TTL_S};
    const char *pub_ev[] = {"PUBLISH", f->events.s, t->ev};
    const char *pub_task[] = {"PUBLISH", t->chan.s, t->ev};
    put(f, 11, hmget);
    put(f, 4, lrem);
    put(f, 6, hset);
    put(f, 4, hdel);
    put(f, 3, expire);
    put(f, 3, pub_ev);
    put(f, 3, pub_task);
  }
  put_ids(f, "ZREM", &f->deadlines, NULL, base, m);
  put_ids(f, "ZREM", &f->running, NULL, base, m);
  put_ids(f, "ZADD", &f->completed, f->created, base, m);
  put_ids(f, "ZADD", &f->history, now, base, m);
  put(f, 4, (const char *[]){"HINCRBY", f->stats.s, f->stats_field.s, count});
  if (multi) put(f, 1, (const char *[]){"EXEC"});
  return read_all(f, multi);
}

/* An integer reply (LLEN, ZCARD), or a number in a string reply (HGET);
 * -1 when neither. */
static long long count_of(rtq__bench *b, int argc, const char **argv) {
  redisReply *r = NULL;
  long long v = -1;
  if (rtq__bench_cmd(&b->redis, &r, argc, argv) != 0) return -1;
  if (r->type == REDIS_REPLY_INTEGER) v = r->integer;
  if (r->type == REDIS_REPLY_STRING) v = strtoll(r->str, NULL, 10);
  freeReplyObject(r);
  return v;
}

/* After the window: every task went from the queue to status:completed
 * and history, and nothing was left behind. Returns 0 or -1. */
static int check(floor_run *f) {
  rtq__bench *b = f->b;
  long long n = (long long)f->n;
  const struct {
    const char *cmd, *key, *field;
    long long want;
  } want[] = {
      {"LLEN", f->queue.s, NULL, 0},         {"LLEN", f->processing.s, NULL, 0},
      {"ZCARD", f->pending.s, NULL, 0},      {"ZCARD", f->running.s, NULL, 0},
      {"ZCARD", f->deadlines.s, NULL, 0},    {"ZCARD", f->completed.s, NULL, n},
      {"ZCARD", f->history.s, NULL, n},      {"HGET", f->stats.s, f->stats_field.s, n},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    const char *argv[] = {want[i].cmd, want[i].key, want[i].field};
    long long got = count_of(b, want[i].field ? 3 : 2, argv);
    if (got != want[i].want) {
      fprintf(stderr, "rtq-bench: floor: %s %s gave %lld, not %lld\n", want[i].cmd, want[i].key,
              got, want[i].want);
      return -1;
    }
  }
  return 0;
}

/* The keys of namespace ns, the worker id, the task ids and the
 * connection. Returns 0 or -1 after printing why. */
static int open_run(floor_run *f, rtq__bench *b, const char *ns) {
  f->b = b;
  f->n = b->o->n;
  if (rtq_keys_init(&f->keys, ns, false) != 0 || rtq_worker_id_new(f->wid, sizeof f->wid) != 0) {
    fprintf(stderr, "rtq-bench: floor: bad namespace or no worker id\n");
    return -1;
  }
  f->queue = rtq_keys_queue(&f->keys, RTQ__BENCH_QUEUE);
  f->processing = rtq_keys_processing(&f->keys, f->wid);
  f->pending = rtq_keys_status(&f->keys, RTQ_STATUS_PENDING);
  f->running = rtq_keys_status(&f->keys, RTQ_STATUS_RUNNING);
  f->completed = rtq_keys_status(&f->keys, RTQ_STATUS_COMPLETED);
  f->deadlines = rtq_keys_deadlines(&f->keys);
  f->history = rtq_keys_history(&f->keys);
  f->stats = rtq_keys_stats(&f->keys);
  f->events = rtq_keys_chan_events(&f->keys);
  f->stats_field = rtq_keys_stats_field(RTQ__BENCH_QUEUE, "completed");
  snprintf(f->created, sizeof f->created, "%llu", (unsigned long long)rtq__wall_ms());
  if ((f->ids = malloc(f->n * ID_CAP)) == NULL) return -1;
  for (size_t i = 0; i < f->n; i++)
    if (rtq_id_new(f->ids + i * ID_CAP) != 0) return -1;
  char err[512] = "";
  rtq_conn_options co = {.url = b->redis.url, .connect_timeout_ms = 2000,
                         .command_timeout_ms = b->o->phase_timeout_s * 1000};
  if (rtq_conn_new(&co, &f->conn, err, sizeof err) != 0) {
    fprintf(stderr, "rtq-bench: floor: connect: %s\n", err);
    return -1;
  }
  f->ctx = rtq_conn_ctx(f->conn);
  return 0;
}

/* One variant on a fresh namespace: setup, the timed window, the check.
 * Fills res. Returns 0 when every task went through in time, else -1. */
static int run_variant(rtq__bench *b, bool multi, json_t *res) {
  char ns[96];
  rtq__bench_ns(b, multi ? "floor-multi" : "floor", ns, sizeof ns);
  floor_run *f = calloc(1, sizeof *f);
  int rc = f ? rtq__bench_flush(&b->redis) : -1;
  if (rc == 0) rc = open_run(f, b, ns);
  if (rc == 0) rc = setup(f);
  rtq__bench_info a = {0}, z = {0};
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &a);
  uint64_t t0 = rtq__bench_now_ns(), t1 = t0;
  uint64_t end = t0 + (uint64_t)b->o->phase_timeout_s * 1000000000u;
  for (size_t base = 0; rc == 0 && base < f->n; base += BATCH) {
    rc = batch(f, base, f->n - base < BATCH ? f->n - base : BATCH, multi);
    t1 = rtq__bench_now_ns();
    if (rc == 0 && t1 > end) {
      fprintf(stderr, "rtq-bench: floor: not done after %d s\n", b->o->phase_timeout_s);
      rc = -1;
    }
  }
  if (rc == 0) rc = rtq__bench_info_take(&b->redis, &z);
  if (rc == 0) {
    double s = (double)(t1 - t0) / 1e9;
    json_object_set_new(res, "n", json_integer((json_int_t)f->n));
    json_object_set_new(res, "batch", json_integer(BATCH));
    json_object_set_new(res, "seconds", json_real(s));
    json_object_set_new(res, "tasks_per_s", json_real((double)f->n / s));
    rtq__bench_info_delta(res, &a, &z, f->n, false);
    rc = check(f);
  }
  rtq__bench_info_destroy(&a);
  rtq__bench_info_destroy(&z);
  if (f != NULL) {
    rtq_conn_free(f->conn);
    free(f->ids);
    free(f);
  }
  rtq__bench_drop_ns(&b->redis, ns);
  return rc;
}

int rtq__bench_phase_floor(rtq__bench *b) {
  rtq__bench_say(b, "floor: %zu tasks as plain commands, %d per round trip", b->o->n, BATCH);
  json_t *plain = json_object();
  int rc = run_variant(b, false, plain);
  json_object_set_new(b->out, "floor", plain);
  if (rc != 0) return rc;
  rtq__bench_say(b, "floor: the same in MULTI/EXEC, one per %d tasks", BATCH);
  json_t *multi = json_object();
  rc = run_variant(b, true, multi);
  json_object_set_new(b->out, "floor_multi", multi);
  return rc;
}
