/*
 * create.c - enqueueing tasks: one (rtq_create_task) or many in one round
 * trip (rtq_create_tasks). create.lua takes a batch of tasks per call, all
 * or nothing; a batch goes out in calls of at most CREATE_CHUNK tasks and
 * about CREATE_CHUNK_BYTES of values, pipelined.
 *
 * Everything that can be checked locally is checked before a byte goes to
 * Redis: names, option bounds, the args map, the envelope size. The id is
 * chosen here, before sending, which makes every create idempotent: a
 * command that may or may not have run (a connection lost mid-reply) is
 * safely sent again with the same id.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "crc16.h"
#include "envelope.h"
#include "ids.h"
#include "calls.h"
#include "scripts.h"

int rtq__create_check_options(rtq_client *c, const rtq_task_options *o) {
  if (o->delay_ms != 0 && o->run_at_ms != 0) {
    rtq__client_err(c, "give a delay or a run_at time, not both");
    return RTQ_EINVAL;
  }
  if (o->timeout_ms > RTQ_TASK_MAX_TIMEOUT_MS || o->result_ttl_s > RTQ_TASK_MAX_TTL_S ||
      o->delay_ms > RTQ_TASK_MAX_DELAY_MS || o->retry_backoff_ms > RTQ_TASK_MAX_TIMEOUT_MS ||
      o->run_at_ms > rtq__wall_ms() + RTQ_TASK_MAX_DELAY_MS) {
    rtq__client_err(c, "a timeout, result ttl, delay or run_at is over its bound of 365 days");
    return RTQ_ERANGE;
  }
  return 0;
}

/* Task args, packed: a msgpack map (buf, len); owned is what to free. */
typedef struct packed {
  const char *buf;
  size_t len;
  char *owned;
} packed;

/* Packs args (borrowed; NULL = empty map) into p. */
static int pack_args(rtq_client *c, const rtq_args *args, packed *p) {
  p->owned = NULL;
  p->buf = rtq__empty_map;
  p->len = sizeof rtq__empty_map;
  if (args == NULL) return 0;
  if (rtq_args_type(args) != RTQ_TYPE_MAP) {
    rtq__client_err(c, "task args must be a map (a JSON object)");
    return RTQ_EINVAL;
  }
  int rc = rtq_args_pack(args, &p->owned, &p->len);
  if (rc != 0) {
    rtq__client_err(c, "packing the args: %s", rtq_strerror(rc));
    return rc;
  }
  p->buf = p->owned;
  return 0;
}

/* The work of one create.lua call in rtq_create_tasks, bounded by count
 * and by bytes, so that a call stays well under a millisecond of Redis
 * time (docs/PERFORMANCE.md: a call of 256 no-op tasks took 1.5 ms, one of
 * 64 about 0.4 ms) while amortising the call's fixed cost. A call takes no
 * more tasks once its values reach CREATE_CHUNK_BYTES: Redis copies every
 * byte into the hash and the queue, and a task's envelope and args can be
 * as large as max_payload. */
#define CREATE_CHUNK 64
#define CREATE_CHUNK_BYTES (64 * 1024)

/* One create.lua call being built: its per-task keys and values, which
 * the script takes in two runs (KEYS, then ARGV). */
typedef struct create_call {
  rtq_argv keys;
  rtq_argv vals;
  size_t ntasks;
  size_t bytes; /* of vals */
} create_call;

static void call_init(create_call *k) {
  rtq_argv_init(&k->keys);
  rtq_argv_init(&k->vals);
  k->ntasks = 0;
  k->bytes = 0;
}

static void call_destroy(create_call *k) {
  rtq_argv_destroy(&k->keys);
  rtq_argv_destroy(&k->vals);
}

/*
 * Validates one task and appends its keys and values to k. Writes the id
 * it will use into id. Returns 0 or the error, with the detail set; on
 * error k is unchanged.
 */
static int prepare_task(rtq_client *c, const char *name, const packed *args,
                        const rtq_task_options *opts, char id[RTQ_TASK_ID_SIZE], create_call *k) {
  static const rtq_task_options none;
  const rtq_task_options *o = opts != NULL ? opts : &none;
  const char *queue = o->queue != NULL ? o->queue : c->default_queue;
  int rc = rtq__check_name(c, "task name", name);
  if (rc == 0) rc = rtq__check_name(c, "queue name", queue);
  if (rc == 0 && o->id != NULL) rc = rtq__check_name(c, "task id", o->id);
  if (rc == 0) rc = rtq__create_check_options(c, o);
  if (rc != 0) return rc;

  const char *abuf = args->buf;
  size_t alen = args->len;

  rtq_envelope e;
  rtq_envelope_init(&e);
  if (o->id != NULL) {
    snprintf(e.id, sizeof e.id, "%s", o->id);
  } else if ((rc = rtq_id_new(e.id)) != 0) {
    rtq__client_err(c, "could not make a task id: getrandom failed");
    return rc;
  }
  snprintf(e.name, sizeof e.name, "%s", name);
  snprintf(e.queue, sizeof e.queue, "%s", queue);
  e.args = (char *)abuf; /* borrowed for the encode; not destroyed */
  e.args_len = alen;
  e.created_at = rtq__wall_ms();
  e.timeout_ms = o->timeout_ms;
  e.max_retries = o->max_retries;
  e.attempt = 1;
  e.result_ttl_s = o->result_ttl_s;

  char why[256];
  char *env = NULL;
  size_t envlen = 0;
  rc = rtq_envelope_encode(&e, &env, &envlen, why, sizeof why);
  if (rc != 0) {
    rtq__client_err(c, "task args: %s", why[0] ? why : rtq_strerror(rc));
  } else if (envlen > c->max_payload) {
    rtq__client_err(c, "task payload is %zu bytes; the limit is %zu", envlen, c->max_payload);
    rc = RTQ_ETOOBIG;
  }
  if (rc == 0) {
    int keys_before = k->keys.argc, vals_before = k->vals.argc;
    rtq__create_task t = {.id = e.id, .name = name, .queue = queue, .env = env,
                          .env_len = envlen, .args = abuf, .args_len = alen,
                          .timeout_ms = o->timeout_ms, .max_retries = o->max_retries,
                          .result_ttl_s = o->result_ttl_s, .delay_ms = o->delay_ms,
                          .run_at_ms = o->run_at_ms, .retry_backoff_ms = o->retry_backoff_ms};
    if ((rc = rtq__call_create_task(&k->keys, &k->vals, &c->keys, &t)) != 0) {
      rtq__client_err(c, "%s", rtq_strerror(rc));
      while (k->keys.argc > keys_before) rtq_argv_pop(&k->keys);
      while (k->vals.argc > vals_before) rtq_argv_pop(&k->vals);
    } else {
      memcpy(id, e.id, sizeof e.id);
      k->ntasks++;
    }
  }
  free(env);
  return rc;
}

/* prepare_task, clearing id on failure. opts->id may be id itself (a
 * batch re-sent with its own output ids): it is read before id is written. */
static int prepare(rtq_client *c, const char *name, const rtq_args *args,
                   const rtq_task_options *opts, char id[RTQ_TASK_ID_SIZE], create_call *k) {
  packed p;
  int rc = pack_args(c, args, &p);
  if (rc == 0) rc = prepare_task(c, name, &p, opts, id, k);
  free(p.owned);
  if (rc != 0) id[0] = '\0';
  return rc;
}

/* Builds the create.lua command for the tasks gathered in k into a. */
static int build_call(rtq_client *c, const create_call *k, bool use_eval, rtq_argv *a) {
  int rc = rtq__call_create(a, &c->keys, use_eval, &k->keys, &k->vals);
  if (rc != 0) rtq__client_err(c, "%s", rtq_strerror(rc));
  return rc;
}

/* Reads one task's entry of create.lua's reply: {1, created_at} or
 * {0, status}. */
static int parse_entry(rtq_client *c, const redisReply *r, int *created) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    rtq__client_err(c, "unexpected reply from create.lua");
    return RTQ_EREDIS;
  }
  *created = r->element[0]->integer == 1;
  return 0;
}

/* The reply of a call for n tasks: an array of n entries. */
static const redisReply *reply_entry(const redisReply *r, size_t n, size_t i) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != n) return NULL;
  return r->element[i];
}

int rtq__create_pack_args(rtq_client *c, const rtq_args *args, const char **buf, size_t *len,
                          char **owned) {
  packed p;
  int rc = pack_args(c, args, &p);
  *buf = p.buf;
  *len = p.len;
  *owned = p.owned;
  return rc;
}

/* One task, its args packed (pack_rc: how packing them went, with the
 * detail already set). rtq_create_task and rtq_create_task_json. */
static int create_one(rtq_client *c, const char *name, const packed *args, int pack_rc,
                      const rtq_task_options *opts, char id_out[RTQ_TASK_ID_SIZE], int *created) {
  if (c != NULL && c->protocol == 2)
    return rtq__create2_one(c, name, args->buf, args->len, pack_rc, opts, id_out, created);
  char id[RTQ_TASK_ID_SIZE];
  /* id_out is written last: opts->id may point at it. */
  if (created != NULL) *created = 0;
  create_call k;
  call_init(&k);
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = pack_rc != 0 ? pack_rc : prepare_task(c, name, args, opts, id, &k);
  if (rc == 0) rc = build_call(c, &k, false, &a);
  rtq_conn *conn = NULL;
  if (rc == 0) rc = rtq__pool_get(c, &conn);
  if (rc == 0) {
    redisReply *r = NULL;
    int was_new = 0, resent = 0;
    rc = rtq_script_run(conn, &a, &r);
    if (rc == RTQ_ECONN) {
      /* It may have run: the same id makes sending it again harmless. */
      resent = 1;
      rc = rtq_script_run(conn, &a, &r);
    }
    if (rc != 0) {
      rtq__client_conn_err(c, conn, rc, rc == RTQ_EOOM ? "redis refused the task" : "redis");
    } else if ((rc = parse_entry(c, reply_entry(r, 1, 0), &was_new)) == 0) {
      /* A resend that found our own id means the first send created it. */
      if (resent && (opts == NULL || opts->id == NULL)) was_new = 1;
      if (created != NULL) *created = was_new;
      if (id_out != NULL) memcpy(id_out, id, sizeof id);
      /* Created either way; RTQ_EREPLICAS only says how durable it is. */
      rc = rtq__client_wait_replicas(c, conn, NULL);
    }
    if (r != NULL) freeReplyObject(r);
    rtq__pool_put(c, conn);
  }
  if (rc != 0 && rc != RTQ_EREPLICAS && id_out != NULL) id_out[0] = '\0';
  rtq_argv_destroy(&a);
  call_destroy(&k);
  return rc;
}

RTQ_EXTERN int rtq_create_task(rtq_client *c, const char *name, const rtq_args *args,
                               const rtq_task_options *opts, char id_out[RTQ_TASK_ID_SIZE],
                               int *created) {
  packed p = {NULL, 0, NULL};
  int rc = RTQ_EINVAL; /* a NULL client: create_one only clears the outputs */
  if (c != NULL) {
    rtq__client_clear_err(c);
    rc = pack_args(c, args, &p);
  }
  rc = create_one(c, name, &p, rc, opts, id_out, created);
  free(p.owned);
  return rc;
}

/* A msgpack value is a map when its first byte says so (fixmap, map 16,
 * map 32). */
static bool is_map(const char *buf, size_t len) {
  unsigned char b = len > 0 ? (unsigned char)buf[0] : 0;
  return (b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf;
}

/* Packs JSON args (NULL = empty map) into p, as pack_args does a tree. */
static int pack_json_args(rtq_client *c, const char *args_json, packed *p) {
  p->buf = rtq__empty_map;
  p->len = sizeof rtq__empty_map;
  p->owned = NULL;
  if (args_json == NULL) return 0;
  char why[256];
  int rc = rtq_json_to_msgpack(args_json, &p->owned, &p->len, why, sizeof why);
  if (rc != 0) {
    rtq__client_err(c, "task args: %s", why);
    return rc;
  }
  p->buf = p->owned;
  if (!is_map(p->buf, p->len)) {
    rtq__client_err(c, "task args must be a map (a JSON object)");
    return RTQ_EINVAL;
  }
  return 0;
}

RTQ_EXTERN int rtq_create_task_json(rtq_client *c, const char *name, const char *args_json,
                                    const rtq_task_options *opts, char id_out[RTQ_TASK_ID_SIZE],
                                    int *created) {
  packed p = {NULL, 0, NULL};
  int rc = RTQ_EINVAL;
  if (c != NULL) {
    rtq__client_clear_err(c);
    rc = pack_json_args(c, args_json, &p);
  }
  rc = create_one(c, name, &p, rc, opts, id_out, created);
  free(p.owned);
  return rc;
}

/* The first failing task of a batch and its detail, which later
 * failures would otherwise overwrite in the thread's error slot. */
struct first_failure {
  int rc;
  size_t index;
  char msg[512];
};

static void note_failure(rtq_client *c, struct first_failure *f, size_t i, int rc) {
  if (f->rc != 0 && f->index < i) return;
  f->rc = rc;
  f->index = i;
  snprintf(f->msg, sizeof f->msg, "task %zu: %s", i, rtq_client_errstr(c));
}

/* One create.lua call of a batch: the specs it carries (their indexes). */
typedef struct chunk {
  create_call call;
  size_t *idx;
  rtq_argv cmd;
} chunk;

/* Applies a chunk's reply (or its failure rc) to its specs. */
static void settle_chunk(rtq_client *c, rtq_conn *conn, chunk *ch, rtq_task_spec *specs,
                         const redisReply *r, int rc, struct first_failure *f) {
  size_t n = ch->call.ntasks;
  if (rc != 0) {
    char what[64];
    snprintf(what, sizeof what, "a call of %zu tasks", n);
    rtq__client_conn_err(c, conn, rc, what);
  }
  for (size_t j = 0; j < n; j++) {
    size_t i = ch->idx[j];
    int trc = rc;
    if (trc == 0) trc = parse_entry(c, reply_entry(r, n, j), &specs[i].created);
    specs[i].rc = trc;
    if (trc != 0) note_failure(c, f, i, trc);
  }
}

/* Whether any task of the chunk was written. */
static bool chunk_wrote(const chunk *ch, const rtq_task_spec *specs) {
  for (size_t j = 0; j < ch->call.ntasks; j++)
    if (specs[ch->idx[j]].rc == 0) return true;
  return false;
}

/* The chunk's written tasks become RTQ_EREPLICAS (detail already set). */
static void mark_unreplicated(rtq_client *c, const chunk *ch, rtq_task_spec *specs, struct first_failure *f) {
  for (size_t j = 0; j < ch->call.ntasks; j++) {
    size_t i = ch->idx[j];
    if (specs[i].rc != 0) continue;
    specs[i].rc = RTQ_EREPLICAS;
    note_failure(c, f, i, RTQ_EREPLICAS);
  }
}

/*
 * WAIT after a batch (wait_replicas > 0). One server takes one WAIT, which
 * covers every call sent before it on the connection. On a cluster each
 * node needs its own: WAIT goes to the node of the last keyed command
 * (cluster.h), so the first key of a written chunk is routed to first,
 * once per slot (the chunks of one queue share it).
 */
static void batch_wait(rtq_client *c, rtq_conn *conn, chunk *chunks, size_t nchunks, rtq_task_spec *specs,
                       struct first_failure *f) {
  if (rtq_conn_url(conn)->kind != RTQ_URL_CLUSTER) {
    if (rtq__client_wait_replicas(c, conn, NULL) == 0) return;
    for (size_t k = 0; k < nchunks; k++) mark_unreplicated(c, &chunks[k], specs, f);
    return;
  }
  int *seen = malloc(2 * nchunks * sizeof *seen); /* pairs: slot, WAIT's rc */
  size_t nseen = 0;
  for (size_t k = 0; k < nchunks; k++) {
    chunk *ch = &chunks[k];
    if (!chunk_wrote(ch, specs)) continue;
    const char *key = NULL;
    size_t klen = 0;
    int slot = rtq__cluster_command_key(&ch->cmd, &key, &klen) ? rtq_key_slot(key, klen) : -1;
    int wrc = 1;
    for (size_t e = 0; seen != NULL && e < nseen && wrc == 1; e++)
      if (seen[2 * e] == slot) wrc = seen[2 * e + 1];
    if (wrc == 1) {
      if (seen == NULL) {
        rtq__client_err(c, "written, but out of memory before WAIT");
        wrc = RTQ_EREPLICAS;
      } else if (key != NULL && rtq_conn_route_key(conn, key, klen) != 0) {
        rtq__client_err(c, "written, but WAIT could not reach its node: %s", rtq_conn_errstr(conn));
        wrc = RTQ_EREPLICAS;
      } else {
        wrc = rtq__client_wait_replicas(c, conn, NULL);
      }
      if (seen != NULL) seen[2 * nseen] = slot, seen[2 * nseen + 1] = wrc, nseen++;
    }
    if (wrc != 0) mark_unreplicated(c, ch, specs, f);
  }
  free(seen);
}

RTQ_EXTERN int rtq_create_tasks(rtq_client *c, rtq_task_spec *specs, size_t n) {
  if (c == NULL || (specs == NULL && n > 0)) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (n == 0) return 0;
  if (c->protocol == 2) return rtq__create2_batch(c, specs, n);
  size_t cap = (n + CREATE_CHUNK - 1) / CREATE_CHUNK;
  chunk *chunks = calloc(cap, sizeof *chunks);
  size_t *idx = calloc(n, sizeof *idx);
  if (chunks == NULL || idx == NULL) {
    free(chunks);
    free(idx);
    rtq__client_err(c, "out of memory");
    return RTQ_ENOMEM;
  }
  struct first_failure f = {0, 0, ""};
  size_t nchunks = 0, used = 0;
  int rc = 0;
  for (size_t i = 0; i < n; i++) {
    specs[i].created = 0;
    if (nchunks == 0 || chunks[nchunks - 1].call.ntasks == CREATE_CHUNK ||
        chunks[nchunks - 1].call.bytes >= CREATE_CHUNK_BYTES) {
      if (nchunks == cap) { /* large tasks: more calls than counted */
        chunk *more = realloc(chunks, 2 * cap * sizeof *chunks);
        if (more == NULL) {
          rc = RTQ_ENOMEM;
          for (size_t j = i; j < n; j++) specs[j].rc = RTQ_ENOMEM;
          rtq__client_err(c, "out of memory");
          note_failure(c, &f, i, RTQ_ENOMEM);
          break;
        }
        chunks = more;
        cap *= 2;
      }
      chunk *ch = &chunks[nchunks++];
      call_init(&ch->call);
      rtq_argv_init(&ch->cmd);
      ch->idx = idx + used;
    }
    chunk *ch = &chunks[nchunks - 1];
    int before = ch->call.vals.argc;
    specs[i].rc = prepare(c, specs[i].name, specs[i].args, specs[i].opts, specs[i].id, &ch->call);
    if (specs[i].rc != 0) {
      note_failure(c, &f, i, specs[i].rc);
      continue;
    }
    for (int v = before; v < ch->call.vals.argc; v++) ch->call.bytes += ch->call.vals.argvlen[v];
    ch->idx[ch->call.ntasks - 1] = i, used++;
  }
  rtq_conn *conn = NULL;
  if (rc == 0 && used > 0) rc = rtq__pool_get(c, &conn);
  size_t sent = 0;
  for (size_t k = 0; rc == 0 && k < nchunks; k++) {
    if (chunks[k].call.ntasks == 0) continue;
    rc = build_call(c, &chunks[k].call, false, &chunks[k].cmd);
    if (rc == 0) rc = rtq_conn_append(conn, &chunks[k].cmd);
    if (rc == 0) sent = k + 1;
  }
  /* Replies for what was sent, in order; a NOSCRIPT call is sent again
   * with EVAL (which also caches the script) after the pipeline. */
  bool *noscript = calloc(nchunks, sizeof *noscript);
  bool use_eval = false;
  for (size_t k = 0; k < nchunks; k++) {
    if (chunks[k].call.ntasks == 0) continue;
    redisReply *r = NULL;
    int crc = k < sent ? rtq_conn_get_reply(conn, &r) : (rc != 0 ? rc : RTQ_ECONN);
    if (crc == RTQ_EREDIS && noscript != NULL && rtq_script_fallback(&use_eval, r, NULL))
      noscript[k] = true;
    else settle_chunk(c, conn, &chunks[k], specs, r, crc, &f);
    if (r != NULL) freeReplyObject(r);
    if (crc == RTQ_ECONN && k < sent) rc = RTQ_ECONN, sent = k + 1;
  }
  for (size_t k = 0; noscript != NULL && k < nchunks; k++) {
    if (!noscript[k]) continue;
    redisReply *r = NULL;
    int crc = build_call(c, &chunks[k].call, use_eval, &chunks[k].cmd);
    if (crc == 0) crc = rtq_conn_command(conn, &chunks[k].cmd, &r);
    settle_chunk(c, conn, &chunks[k], specs, r, crc, &f);
    if (r != NULL) freeReplyObject(r);
  }
  if (conn != NULL && c->wait_replicas > 0) batch_wait(c, conn, chunks, nchunks, specs, &f);
  if (conn != NULL) rtq__pool_put(c, conn);
  for (size_t k = 0; k < nchunks; k++) {
    call_destroy(&chunks[k].call);
    rtq_argv_destroy(&chunks[k].cmd);
  }
  free(noscript);
  free(chunks);
  free(idx);
  if (f.rc != 0) rtq__client_err(c, "%s", f.msg);
  return f.rc;
}
