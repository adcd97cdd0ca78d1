/*
 * create.c - enqueueing tasks: one (rtq_create_task) or many in one round
 * trip (rtq_create_tasks), each through create.lua.
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

#include "envelope.h"
#include "ids.h"
#include "scripts.h"

static const char empty_map[1] = {(char)0x80};

static int check_options(rtq_client *c, const rtq_task_options *o) {
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

/* Packs args (borrowed; NULL = empty map). *owned is what to free. */
static int pack_args(rtq_client *c, const rtq_args *args, const char **buf, size_t *len,
                     char **owned) {
  *owned = NULL;
  if (args == NULL) {
    *buf = empty_map;
    *len = sizeof empty_map;
    return 0;
  }
  if (rtq_args_type(args) != RTQ_TYPE_MAP) {
    rtq__client_err(c, "task args must be a map (a JSON object)");
    return RTQ_EINVAL;
  }
  int rc = rtq_args_pack(args, owned, len);
  if (rc != 0) {
    rtq__client_err(c, "packing the args: %s", rtq_strerror(rc));
    return rc;
  }
  *buf = *owned;
  return 0;
}

static int add_key(rtq_argv *a, rtq_key k) { return rtq_argv_add(a, k.s, k.len); }

/*
 * Validates one task and builds its create.lua command in a (initialised
 * by the caller). Writes the id it will use into id. Returns 0 or the
 * error, with the detail set; nothing is sent.
 */
static int prepare_task(rtq_client *c, const char *name, const rtq_args *args,
                        const rtq_task_options *opts, char id[RTQ_TASK_ID_SIZE], rtq_argv *a) {
  static const rtq_task_options none;
  const rtq_task_options *o = opts != NULL ? opts : &none;
  const char *queue = o->queue != NULL ? o->queue : c->default_queue;
  int rc = rtq__check_name(c, "task name", name);
  if (rc == 0) rc = rtq__check_name(c, "queue name", queue);
  if (rc == 0 && o->id != NULL) rc = rtq__check_name(c, "task id", o->id);
  if (rc == 0) rc = check_options(c, o);
  if (rc != 0) return rc;

  const char *abuf;
  size_t alen;
  char *owned;
  rc = pack_args(c, args, &abuf, &alen, &owned);
  if (rc != 0) return rc;

  rtq_envelope e;
  rtq_envelope_init(&e);
  if (o->id != NULL) {
    snprintf(e.id, sizeof e.id, "%s", o->id);
  } else if ((rc = rtq_id_new(e.id)) != 0) {
    free(owned);
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
    rtq_script_argv(a, RTQ_SCRIPT_CREATE, 6, false);
    add_key(a, rtq_keys_task(&c->keys, e.id));
    add_key(a, rtq_keys_queue(&c->keys, queue));
    add_key(a, rtq_keys_delayed(&c->keys));
    add_key(a, rtq_keys_status(&c->keys, RTQ_STATUS_PENDING));
    add_key(a, rtq_keys_queues(&c->keys));
    add_key(a, rtq_keys_stats(&c->keys));
    rtq_argv_add_str(a, e.id);
    rtq_argv_add_str(a, name);
    rtq_argv_add_str(a, queue);
    rtq_argv_add(a, env, envlen);
    rtq_argv_add(a, abuf, alen);
    rtq_argv_add_u64(a, o->timeout_ms);
    rtq_argv_add_u64(a, o->max_retries);
    rtq_argv_add_u64(a, o->result_ttl_s);
    rtq_argv_add_u64(a, o->delay_ms);
    rtq_argv_add_u64(a, o->run_at_ms);
    rtq_argv_add_u64(a, o->retry_backoff_ms);
    add_key(a, rtq_keys_chan_events(&c->keys));
    if (a->oom) {
      rtq__client_err(c, "out of memory");
      rc = RTQ_ENOMEM;
    } else {
      memcpy(id, e.id, sizeof e.id);
    }
  }
  free(env);
  free(owned);
  return rc;
}

/* prepare_task, clearing id on failure. opts->id may be id itself (a
 * batch re-sent with its own output ids): it is read before id is written. */
static int prepare(rtq_client *c, const char *name, const rtq_args *args,
                   const rtq_task_options *opts, char id[RTQ_TASK_ID_SIZE], rtq_argv *a) {
  int rc = prepare_task(c, name, args, opts, id, a);
  if (rc != 0) id[0] = '\0';
  return rc;
}

/* Reads create.lua's reply: {1, created_at} or {0, status}. */
static int parse_reply(rtq_client *c, const redisReply *r, int *created) {
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    rtq__client_err(c, "unexpected reply from create.lua");
    return RTQ_EREDIS;
  }
  *created = r->element[0]->integer == 1;
  return 0;
}

RTQ_EXTERN int rtq_create_task(rtq_client *c, const char *name, const rtq_args *args,
                               const rtq_task_options *opts, char id_out[RTQ_TASK_ID_SIZE],
                               int *created) {
  char id[RTQ_TASK_ID_SIZE];
  /* id_out is written last: opts->id may point at it. */
  if (created != NULL) *created = 0;
  if (c == NULL) {
    if (id_out != NULL) id_out[0] = '\0';
    return RTQ_EINVAL;
  }
  rtq__client_clear_err(c);
  rtq_argv a;
  rtq_argv_init(&a);
  int rc = prepare(c, name, args, opts, id, &a);
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
    } else if ((rc = parse_reply(c, r, &was_new)) == 0) {
      /* A resend that found our own id means the first send created it. */
      if (resent && (opts == NULL || opts->id == NULL)) was_new = 1;
      if (created != NULL) *created = was_new;
      if (id_out != NULL) memcpy(id_out, id, sizeof id);
    }
    if (r != NULL) freeReplyObject(r);
    rtq__pool_put(c, conn);
  }
  if (rc != 0 && id_out != NULL) id_out[0] = '\0';
  rtq_argv_destroy(&a);
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

static int task_conn_err(rtq_client *c, rtq_conn *conn, int rc, const rtq_task_spec *s) {
  char what[RTQ_TASK_ID_SIZE + 16];
  snprintf(what, sizeof what, "task %s", s->id);
  return rtq__client_conn_err(c, conn, rc, what);
}

/* A reply that was NOSCRIPT: resent with EVAL after the pipeline. */
#define NOSCRIPT_PENDING 1

/* Reads the pipeline's replies, one per prepared task, in order. */
static void read_replies(rtq_client *c, rtq_conn *conn, rtq_task_spec *specs,
                         const rtq_argv *argvs, size_t n, struct first_failure *f) {
  for (size_t i = 0; i < n; i++) {
    if (argvs[i].argc == 0) continue;
    redisReply *r = NULL;
    int rc = rtq_conn_get_reply(conn, &r);
    if (rc == RTQ_EREDIS && rtq_reply_is_noscript(r)) {
      rc = NOSCRIPT_PENDING;
    } else if (rc != 0) {
      note_failure(c, f, i, task_conn_err(c, conn, rc, &specs[i]));
    } else if ((rc = parse_reply(c, r, &specs[i].created)) != 0) {
      note_failure(c, f, i, rc);
    }
    specs[i].rc = rc;
    if (r != NULL) freeReplyObject(r);
  }
}

/* Sends again, one by one with EVAL (which also caches the script), the
 * tasks whose EVALSHA met a server that had lost its scripts. */
static void resend_noscript(rtq_client *c, rtq_conn *conn, rtq_task_spec *specs, rtq_argv *argvs,
                            size_t n, struct first_failure *f) {
  const char *body = rtq_script_body(RTQ_SCRIPT_CREATE);
  for (size_t i = 0; i < n; i++) {
    if (specs[i].rc != NOSCRIPT_PENDING) continue;
    redisReply *r = NULL;
    int rc = rtq_argv_set(&argvs[i], 0, "EVAL", 4);
    if (rc == 0) rc = rtq_argv_set(&argvs[i], 1, body, strlen(body));
    if (rc == 0) rc = rtq_conn_command(conn, &argvs[i], &r);
    if (rc != 0)
      task_conn_err(c, conn, rc, &specs[i]);
    else
      rc = parse_reply(c, r, &specs[i].created);
    if (rc != 0) note_failure(c, f, i, rc);
    specs[i].rc = rc;
    if (r != NULL) freeReplyObject(r);
  }
}

RTQ_EXTERN int rtq_create_tasks(rtq_client *c, rtq_task_spec *specs, size_t n) {
  if (c == NULL || (specs == NULL && n > 0)) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (n == 0) return 0;
  rtq_argv *argvs = calloc(n, sizeof *argvs);
  if (argvs == NULL) {
    rtq__client_err(c, "out of memory");
    return RTQ_ENOMEM;
  }
  struct first_failure f = {0, 0, ""};
  size_t nvalid = 0;
  for (size_t i = 0; i < n; i++) {
    rtq_argv_init(&argvs[i]);
    specs[i].created = 0;
    specs[i].rc = prepare(c, specs[i].name, specs[i].args, specs[i].opts, specs[i].id, &argvs[i]);
    if (specs[i].rc != 0) {
      note_failure(c, &f, i, specs[i].rc);
      rtq_argv_reset(&argvs[i]);
    } else {
      nvalid++;
    }
  }
  rtq_conn *conn = NULL;
  int rc = nvalid > 0 ? rtq__pool_get(c, &conn) : 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (argvs[i].argc > 0 && (rc = rtq_conn_append(conn, &argvs[i])) != 0)
      rtq__client_conn_err(c, conn, rc, "redis");
  }
  if (rc != 0) {
    /* Nothing was sent: every prepared task fails alike. */
    for (size_t i = 0; i < n; i++) {
      if (argvs[i].argc == 0) continue;
      specs[i].rc = rc;
      note_failure(c, &f, i, rc);
    }
  } else if (nvalid > 0) {
    read_replies(c, conn, specs, argvs, n, &f);
    resend_noscript(c, conn, specs, argvs, n, &f);
  }
  rtq__pool_put(c, conn);
  for (size_t i = 0; i < n; i++) rtq_argv_destroy(&argvs[i]);
  free(argvs);
  if (f.rc != 0) rtq__client_err(c, "%s", f.msg);
  return f.rc;
}
