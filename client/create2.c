/*
 * create2.c - enqueueing tasks under protocol 2 (docs/PROTOCOL.md
 * section 5, "A producer"): rtq_create_task, rtq_create_task_json and
 * rtq_create_tasks when the client speaks protocol 2.
 *
 * A task's keys live under its queue's hash tag, so the id is made here
 * with the queue's cluster slot in it (rtq_id2_new); a caller-supplied id
 * is used as it is. Before a queue's first create the queue goes into the
 * namespace's registry ({ns}:queues), so that a reader given only an id can
 * find it. The create script takes 1..64 tasks of ONE queue and at most
 * 256 KiB of args per call (one larger task goes alone): a batch is taken
 * 128 tasks at a time, split per queue, then into calls within those
 * bounds, pipelined on one connection, each call written as soon as it is
 * built. Everything that can be checked locally is checked before a
 * byte goes to Redis, and the script checks it again.
 */
#include "client_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calls2.h"
#include "envelope.h"
#include "scripts.h"
#include "scripts2.h"
#include "sign.h"

/* Per call, as common/lua2/create.lua bounds it. */
#define CALL_TASKS RTQ__V2_MAX_TASKS
#define CALL_BYTES (256 * 1024)
/* The script's bounds that are tighter than rtq_task_options' own. */
#define MAX_RETRIES_V2 1000u
#define MAX_BACKOFF_MS_V2 86400000ull

/* One task ready to send: its queue, id and values (args borrowed). */
typedef struct prepared {
  char queue[RTQ_TASK_ID_SIZE];
  char id[RTQ_TASK_ID_SIZE];
  rtq__create2_task t;
  int rc;
  char sig[RTQ_SIGN_SIZE]; /* t.signature, with a signing key */
} prepared;

/* The option as create stores it: "" when 0 (not stored). */
static void opt_text(char *out, size_t cap, uint64_t v) {
  if (v == 0)
    out[0] = '\0';
  else
    snprintf(out, cap, "%" PRIu64, v);
}

/* Signs p's task with the client's producer key (PROTOCOL.md 9). */
static int sign(rtq_client *c, prepared *p) {
  char to[24], mr[24], rt[24], bo[24];
  opt_text(to, sizeof to, p->t.timeout_ms);
  opt_text(mr, sizeof mr, p->t.max_retries);
  opt_text(rt, sizeof rt, p->t.result_ttl_s);
  opt_text(bo, sizeof bo, p->t.retry_backoff_ms);
  rtq_sign_task st = {.id = p->id, .queue = p->queue, .name = p->t.name, .args = p->t.args,
                      .args_len = p->t.args_len, .to = to, .mr = mr, .rt = rt, .bo = bo};
  if (rtq_sign_task_sig(c->sign_keys, &st, p->sig) != 0) {
    rtq__client_err(c, "out of memory signing the task");
    return RTQ_ENOMEM;
  }
  p->t.signature = p->sig;
  return 0;
}

/* The queue a task goes to: its option, else the client's default. */
static const char *queue_of(const rtq_client *c, const rtq_task_options *o) {
  return o != NULL && o->queue != NULL ? o->queue : c->default_queue;
}

/* Validates one task and fills p (p->t.id and name point into p and the
 * caller's name). args is the packed map; the empty map is sent as no
 * args, which is how protocol 2 stores it. Detail set on error. */
static int prepare(rtq_client *c, const char *name, const char *args, size_t args_len,
                   const rtq_task_options *opts, prepared *p) {
  static const rtq_task_options none;
  const rtq_task_options *o = opts != NULL ? opts : &none;
  const char *queue = queue_of(c, opts);
  memset(p, 0, sizeof *p);
  int rc = rtq__check_name(c, "task name", name);
  if (rc == 0) rc = rtq__check_name(c, "queue name", queue);
  if (rc == 0 && o->id != NULL) rc = rtq__check_name(c, "task id", o->id);
  if (rc == 0) rc = rtq__create_check_options(c, o);
  if (rc != 0) return rc;
  if (o->max_retries > MAX_RETRIES_V2 || o->retry_backoff_ms > MAX_BACKOFF_MS_V2) {
    rtq__client_err(c, "max_retries over %u or a retry backoff over one day", MAX_RETRIES_V2);
    return RTQ_ERANGE;
  }
  char why[256];
  rc = rtq_msgpack_check(args, args_len, RTQ_MAX_DEPTH - 1, why, sizeof why);
  if (rc != 0) {
    rtq__client_err(c, "task args: %s", why);
    return rc == RTQ_EDEPTH ? RTQ_EDEPTH : RTQ_EINVAL;
  }
  if (args_len > c->max_payload) {
    rtq__client_err(c, "task args are %zu bytes; the limit is %zu", args_len, c->max_payload);
    return RTQ_ETOOBIG;
  }
  snprintf(p->queue, sizeof p->queue, "%s", queue);
  if (o->id != NULL) {
    snprintf(p->id, sizeof p->id, "%s", o->id);
  } else {
    char id[RTQ_ID2_LEN + 1];
    if (rtq_id2_new(id, rtq_keys2_slot(&c->keys2, queue)) != 0) {
      rtq__client_err(c, "could not make a task id: getrandom failed");
      return RTQ_EIO;
    }
    memcpy(p->id, id, sizeof id);
  }
  bool empty = args_len == 1 && (unsigned char)args[0] == 0x80;
  p->t = (rtq__create2_task){.id = p->id, .name = name, .args = empty ? NULL : args,
                             .args_len = empty ? 0 : args_len, .timeout_ms = o->timeout_ms,
                             .max_retries = o->max_retries, .result_ttl_s = o->result_ttl_s,
                             .retry_backoff_ms = o->retry_backoff_ms, .delay_ms = o->delay_ms,
                             .run_at_ms = o->run_at_ms, .fresh_id = o->id == NULL};
  return c->sign_keys != NULL ? sign(c, p) : 0;
}

/* Reads the reply of a call of n tasks into created[0..n). */
static int read_reply(rtq_client *c, const redisReply *r, int n, int *created) {
  rtq__create2_result res[CALL_TASKS];
  int got = 0;
  if (rtq__reply2_create(r, res, CALL_TASKS, &got) != 0 || got != n) {
    rtq__client_err(c, "unexpected reply from the create script");
    return RTQ_EREDIS;
  }
  for (int i = 0; i < n; i++) created[i] = res[i].created;
  return 0;
}

int rtq__create2_one(rtq_client *c, const char *name, const char *args, size_t args_len,
                     int pack_rc, const rtq_task_options *opts, char id_out[RTQ_TASK_ID_SIZE],
                     int *created) {
  /* id_out is written last: opts->id may point at it. */
  if (created != NULL) *created = 0;
  prepared p;
  int rc = pack_rc != 0 ? pack_rc : prepare(c, name, args, args_len, opts, &p);
  if (rc == 0) rc = rtq__queues2_register(c, p.queue);
  /* Looked up even when made here: the call may be sent twice (below), and
   * for one task the look-up costs Redis what the fresh path's type check
   * of the queue would. */
  p.t.fresh_id = false;
  rtq_argv a;
  rtq_argv_init(&a);
  if (rc == 0 && (rc = rtq__call2_create(&a, &c->keys2, false, p.queue, &p.t, 1)) != 0)
    rtq__client_err(c, "%s", rtq_strerror(rc));
  rtq_conn *conn = NULL;
  if (rc == 0) rc = rtq__pool_get(c, &conn);
  if (rc == 0) {
    redisReply *r = NULL;
    int was_new = 0, resent = 0;
    rc = rtq_script2_run(conn, &a, &r);
    if (rc == RTQ_ECONN) {
      /* It may have run: the same id makes sending it again harmless. */
      resent = 1;
      rc = rtq_script2_run(conn, &a, &r);
    }
    if (rc != 0) {
      rtq__client_conn_err(c, conn, rc, rc == RTQ_EOOM ? "redis refused the task" : "redis");
    } else if ((rc = read_reply(c, r, 1, &was_new)) == 0) {
      /* A resend that found our own id means the first send created it. */
      if (resent && (opts == NULL || opts->id == NULL)) was_new = 1;
      if (created != NULL) *created = was_new;
      if (id_out != NULL) memcpy(id_out, p.id, sizeof p.id);
      /* Created either way; RTQ_EREPLICAS only says how durable it is. */
      rc = rtq__client_wait_replicas(c, conn, NULL);
    }
    if (r != NULL) freeReplyObject(r);
    rtq__pool_put(c, conn);
  }
  if (rc != 0 && rc != RTQ_EREPLICAS && id_out != NULL) id_out[0] = '\0';
  rtq_argv_destroy(&a);
  return rc;
}

/* ---- batches ---- */

/* One create call of a batch: tasks of one queue, by index into specs. */
typedef struct call2 {
  const char *queue; /* points into the first task's prepared entry */
  size_t *idx;
  int n;
  rtq_argv cmd;
  int rc;       /* of the call; 0 when its reply arrived and parsed */
  bool noscript;
} call2;

/* The first failing task of a batch and its detail. */
typedef struct first2 {
  int rc;
  size_t index;
  char msg[512];
} first2;

static void note(rtq_client *c, first2 *f, size_t i, int rc) {
  if (f->rc != 0 && f->index < i) return;
  f->rc = rc;
  f->index = i;
  snprintf(f->msg, sizeof f->msg, "task %zu: %s", i, rtq_client_errstr(c));
}

/* Groups the prepared tasks p[lo..hi) (rc 0) per queue, first queue
 * first, and cuts each queue's run into calls of at most CALL_TASKS tasks
 * and CALL_BYTES of args, appended at calls[*ncalls]. Their indexes go to
 * order[*used...] (both cursors advance; every call holds at least one
 * task, so n calls and n indexes are room enough). */
static void plan(prepared *p, size_t lo, size_t hi, size_t *order, size_t *used, call2 *calls,
                 size_t *ncalls) {
  bool *taken = calloc(hi - lo, sizeof *taken);
  size_t k = *ncalls;
  for (size_t i = lo; i < hi; i++) {
    if (p[i].rc != 0 || (taken != NULL && taken[i - lo])) continue;
    call2 *cur = NULL;
    size_t bytes = 0;
    for (size_t j = i; j < hi; j++) {
      if (p[j].rc != 0 || (taken != NULL && taken[j - lo]) || strcmp(p[j].queue, p[i].queue) != 0)
        continue;
      if (taken == NULL && j != i) break; /* out of memory: one task per call */
      size_t len = p[j].t.args_len;
      if (cur == NULL || cur->n == CALL_TASKS || bytes + len > CALL_BYTES) {
        cur = &calls[k++];
        memset(cur, 0, sizeof *cur);
        rtq_argv_init(&cur->cmd);
        cur->queue = p[j].queue;
        cur->idx = order + *used;
        bytes = 0;
      }
      cur->idx[cur->n++] = j;
      (*used)++;
      bytes += len;
      if (taken != NULL) taken[j - lo] = true;
    }
  }
  free(taken);
  *ncalls = k;
}

/* Lays out call k's command (use_eval: with the script's body). */
static int build(rtq_client *c, const prepared *p, call2 *k, bool use_eval) {
  rtq__create2_task t[CALL_TASKS];
  for (int j = 0; j < k->n; j++) t[j] = p[k->idx[j]].t;
  int rc = rtq__call2_create(&k->cmd, &c->keys2, use_eval, k->queue, t, k->n);
  if (rc != 0) rtq__client_err(c, "%s", rtq_strerror(rc));
  return rc;
}

/* Applies a call's reply (or its failure crc) to its specs. */
static void settle(rtq_client *c, rtq_conn *conn, call2 *k, rtq_task_spec *specs,
                   const redisReply *r, int crc, first2 *f) {
  int created[CALL_TASKS];
  if (crc != 0 && conn != NULL) {
    char what[64];
    snprintf(what, sizeof what, "a call of %d tasks", k->n);
    rtq__client_conn_err(c, conn, crc, what);
  } else {
    crc = read_reply(c, r, k->n, created);
  }
  k->rc = crc;
  for (int j = 0; j < k->n; j++) {
    size_t i = k->idx[j];
    specs[i].rc = crc;
    specs[i].created = crc == 0 ? created[j] : 0;
    if (crc != 0) {
      /* A call whose reply was lost may have run: its tasks keep their
       * ids, which the caller can look up (rtq.h: RTQ_ECONN). */
      if (crc != RTQ_ECONN) specs[i].id[0] = '\0';
      note(c, f, i, crc);
    }
  }
}

/* WAIT after the batch. A single server takes one WAIT for every call
 * sent before it; on a cluster each node that took a call needs its own,
 * routed by the queue's key (the calls of one queue share a node, so one
 * WAIT per queue). */
static void wait_batch(rtq_client *c, rtq_conn *conn, call2 *calls, size_t ncalls,
                       rtq_task_spec *specs, first2 *f) {
  bool cluster = rtq_conn_url(conn)->kind == RTQ_URL_CLUSTER;
  int *res = malloc(ncalls * sizeof *res); /* per call: WAIT's rc, 1 not waited */
  for (size_t k = 0; res != NULL && k < ncalls; k++) res[k] = 1;
  for (size_t k = 0; k < ncalls; k++) {
    if (calls[k].rc != 0) continue;
    int wrc = 1;
    for (size_t e = 0; res != NULL && e < k && wrc == 1; e++)
      if (res[e] != 1 && (!cluster || strcmp(calls[e].queue, calls[k].queue) == 0)) wrc = res[e];
    if (res == NULL) {
      rtq__client_err(c, "written, but out of memory before WAIT");
      wrc = RTQ_EREPLICAS;
    } else if (wrc == 1) {
      rtq_key2 key = rtq_keys2_queue(&c->keys2, calls[k].queue);
      if (cluster && rtq_conn_route_key(conn, key.s, key.len) != 0) {
        rtq__client_err(c, "written, but WAIT could not reach its node: %s", rtq_conn_errstr(conn));
        wrc = RTQ_EREPLICAS;
      } else {
        wrc = rtq__client_wait_replicas(c, conn, NULL);
      }
    }
    if (res != NULL) res[k] = wrc;
    if (wrc == 0) continue;
    for (int j = 0; j < calls[k].n; j++) {
      size_t i = calls[k].idx[j];
      specs[i].rc = RTQ_EREPLICAS;
      note(c, f, i, RTQ_EREPLICAS);
    }
  }
  free(res);
}

/* A batch's pipeline: its connection (NULL when none could be had), the
 * first failure that stopped sending, and how many calls went out. */
typedef struct pipe2 {
  rtq_conn *conn;
  int rc;
  size_t sent;
} pipe2;

/* Builds and appends calls [from, to) and writes them at once, so that
 * Redis runs them while the library prepares and builds the next: a batch
 * costs about the longer of the two, not their sum. */
static void send_some(rtq_client *c, const prepared *p, call2 *calls, size_t from, size_t to, pipe2 *pp) {
  for (size_t k = from; pp->rc == 0 && k < to; k++) {
    pp->rc = build(c, p, &calls[k], false);
    if (pp->rc == 0) pp->rc = rtq_conn_append(pp->conn, &calls[k].cmd);
    if (pp->rc == 0) pp->sent = k + 1;
  }
  if (pp->rc == 0) rtq_conn_send(pp->conn);
}

/* Reads the replies of the calls sent and settles every spec the calls
 * carry. */
static void read_calls(rtq_client *c, const prepared *p, call2 *calls, size_t ncalls, pipe2 *pp,
                       rtq_task_spec *specs, first2 *f) {
  rtq_conn *conn = pp->conn;
  int rc = pp->rc;
  size_t sent = pp->sent;
  /* Replies of what was sent, in order; a NOSCRIPT call is sent again
   * after the pipeline (rtq_script2_run then sends the body). */
  bool use_eval = false;
  for (size_t k = 0; k < ncalls; k++) {
    redisReply *r = NULL;
    int crc = k < sent ? rtq_conn_get_reply(conn, &r) : (rc != 0 ? rc : RTQ_ECONN);
    if (crc == RTQ_EREDIS && rtq_script_fallback(&use_eval, r, NULL))
      calls[k].noscript = true;
    else
      settle(c, conn, &calls[k], specs, r, crc, f);
    if (r != NULL) freeReplyObject(r);
    if (crc == RTQ_ECONN && k < sent) rc = RTQ_ECONN, sent = k + 1;
  }
  for (size_t k = 0; k < ncalls; k++) {
    if (!calls[k].noscript) continue;
    calls[k].noscript = false;
    redisReply *r = NULL;
    int crc = build(c, p, &calls[k], true);
    if (crc == 0) crc = rtq_script2_run(conn, &calls[k].cmd, &r);
    settle(c, conn, &calls[k], specs, r, crc, f);
    if (r != NULL) freeReplyObject(r);
  }
  if (conn != NULL && c->wait_replicas > 0) wait_batch(c, conn, calls, ncalls, specs, f);
  if (conn == NULL) {
    for (size_t k = 0; k < ncalls; k++) settle(c, NULL, &calls[k], specs, NULL, rc, f);
  }
}

/* Registers the queues of the batch's tasks before its pipeline holds a
 * connection: a registration is a round trip on a pooled connection of
 * its own (a known queue costs none). reg[i]: 0, or the failure of task
 * i's queue, noted. A task whose name or queue is invalid is left to
 * prepare; one whose args prepare then refuses has registered a queue
 * that may stay empty, which readers list as such. */
static void register_queues(rtq_client *c, const rtq_task_spec *specs, size_t n, int *reg, first2 *f) {
  for (size_t i = 0; i < n; i++) {
    const char *queue = queue_of(c, specs[i].opts);
    bool valid = rtq_validate_name(queue) == 0 && rtq_validate_name(specs[i].name) == 0;
    reg[i] = valid ? rtq__queues2_register(c, queue) : 0;
    if (reg[i] != 0) note(c, f, i, reg[i]);
  }
}

/* Tasks prepared before their calls go out: two full calls, so Redis
 * starts on a batch while the library prepares the rest. */
#define SEGMENT (2 * CALL_TASKS)

/* See client_internal.h. */
void rtq__create2_fail_all(rtq_task_spec *specs, size_t n, int rc) {
  for (size_t i = 0; i < n; i++) {
    specs[i].rc = rc;
    specs[i].created = 0;
    specs[i].id[0] = '\0';
  }
}

int rtq__create2_batch(rtq_client *c, rtq_task_spec *specs, size_t n) {
  prepared *p = calloc(n, sizeof *p);
  char **owned = calloc(n, sizeof *owned);
  size_t *order = calloc(n, sizeof *order);
  call2 *calls = calloc(n, sizeof *calls);
  int *reg = calloc(n, sizeof *reg);
  if (p == NULL || owned == NULL || order == NULL || calls == NULL || reg == NULL) {
    free(p);
    free(owned);
    free(order);
    free(calls);
    free(reg);
    rtq__create2_fail_all(specs, n, RTQ_ENOMEM);
    rtq__client_err(c, "out of memory");
    return RTQ_ENOMEM;
  }
  first2 f = {0, 0, ""};
  register_queues(c, specs, n, reg, &f);
  pipe2 pp = {NULL, 0, 0};
  size_t ncalls = 0, used = 0;
  for (size_t lo = 0; lo < n; lo += SEGMENT) {
    size_t hi = n - lo < SEGMENT ? n : lo + SEGMENT;
    for (size_t i = lo; i < hi; i++) {
      specs[i].created = 0;
      const char *buf;
      size_t len;
      int rc = reg[i];
      if (rc == 0) rc = rtq__create_pack_args(c, specs[i].args, &buf, &len, &owned[i]);
      /* opts->id may be specs[i].id (a batch sent again with its own
       * output ids): prepare copies it before the id is written. */
      if (rc == 0) rc = prepare(c, specs[i].name, buf, len, specs[i].opts, &p[i]);
      p[i].rc = rc;
      specs[i].rc = rc;
      if (rc != 0) {
        specs[i].id[0] = '\0';
        if (reg[i] == 0) note(c, &f, i, rc);
      } else {
        memcpy(specs[i].id, p[i].id, sizeof p[i].id);
      }
    }
    size_t first = ncalls;
    plan(p, lo, hi, order, &used, calls, &ncalls);
    /* The connection is taken for the first call: a batch that fails
     * its checks whole does not touch it. */
    if (ncalls > first && pp.conn == NULL && pp.rc == 0) pp.rc = rtq__pool_get(c, &pp.conn);
    if (pp.conn != NULL) send_some(c, p, calls, first, ncalls, &pp);
  }
  if (ncalls > 0) read_calls(c, p, calls, ncalls, &pp, specs, &f);
  if (pp.conn != NULL) rtq__pool_put(c, pp.conn);
  for (size_t k = 0; k < ncalls; k++) rtq_argv_destroy(&calls[k].cmd);
  for (size_t i = 0; i < n; i++) free(owned[i]);
  free(p);
  free(owned);
  free(order);
  free(calls);
  free(reg);
  if (f.rc != 0) rtq__client_err(c, "%s", f.msg);
  return f.rc;
}
