/*
 * create.c - enqueueing tasks: one (rtq_create_task, rtq_create_task_json)
 * or many (rtq_create_tasks). Here the args are packed and checked; the
 * calls to the create script are create2.c's.
 *
 * Everything that can be checked locally is checked before a byte goes to
 * Redis: names, option bounds, the args map, the envelope size. The id is
 * chosen before sending, which makes every create idempotent: a command
 * that may or may not have run (a connection lost mid-reply) is safely
 * sent again with the same id.
 */
#include "client_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

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
  if (c == NULL) {
    if (created != NULL) *created = 0;
    if (id_out != NULL) id_out[0] = '\0';
    return RTQ_EINVAL;
  }
  return rtq__create2_one(c, name, args->buf, args->len, pack_rc, opts, id_out, created);
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

RTQ_EXTERN int rtq_create_tasks(rtq_client *c, rtq_task_spec *specs, size_t n) {
  if (specs == NULL && n > 0) return RTQ_EINVAL;
  if (c == NULL) {
    rtq__create2_fail_all(specs, n, RTQ_EINVAL);
    return RTQ_EINVAL;
  }
  rtq__client_clear_err(c);
  if (n == 0) return 0;
  return rtq__create2_batch(c, specs, n);
}
