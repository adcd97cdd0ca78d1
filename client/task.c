/*
 * task.c - the task hash (docs/PROTOCOL.md section 4) read into an rtq_task,
 * and rtq_get_task.
 */
#include "client_internal.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"

uint64_t rtq__parse_u64(const char *s, size_t len) {
  uint64_t v = 0;
  if (s == NULL || len == 0 || len > 20) return 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  return v;
}

RTQ_EXTERN void rtq_task_free(rtq_task *t) {
  if (t == NULL) return;
  free(t->progress_message);
  free(t->args);
  free(t->result);
  free(t->error_code);
  free(t->error_message);
  free(t->error_details);
  free(t->error_traceback);
  free(t);
}

/* A NUL-terminated copy of a reply string (binary-safe for msgpack). */
static char *dup_bytes(const redisReply *v, size_t *len) {
  char *p = malloc(v->len + 1);
  if (p == NULL) return NULL;
  memcpy(p, v->str, v->len);
  p[v->len] = '\0';
  if (len != NULL) *len = v->len;
  return p;
}

static void copy_name(char dst[RTQ_TASK_ID_SIZE], const redisReply *v) {
  size_t n = v->len < RTQ_TASK_ID_MAX ? v->len : RTQ_TASK_ID_MAX;
  memcpy(dst, v->str, n);
  dst[n] = '\0';
}

static uint32_t clamp_u32(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v; }

/* The hash fields rtq_task carries, and where each goes. Unknown fields
 * (a newer writer's) are ignored. */
static const rtq__task_field fields[] = {
#define F(n, k, m) {n, RTQ__##k, offsetof(rtq_task, m), 0}
#define B(n, m, l) {n, RTQ__K_BYTES, offsetof(rtq_task, m), offsetof(rtq_task, l)}
    F("name", K_NAME, name),
    F("queue", K_NAME, queue),
    F("status", K_STATUS, status),
    F("progress", K_PROGRESS, progress),
    F("progress_message", K_STR, progress_message),
    F("created_at", K_U64, created_at),
    F("started_at", K_U64, started_at),
    F("completed_at", K_U64, completed_at),
    F("attempt", K_U32, attempts),
    F("max_retries", K_U32, max_retries),
    F("worker", K_NAME, worker),
    F("timeout_ms", K_U64, timeout_ms),
    F("result_ttl", K_U64, result_ttl_s),
    F("run_at", K_U64, run_at),
    F("retry_at", K_U64, retry_at),
    F("deadline", K_U64, deadline),
    F("cancel_requested", K_U64, cancel_requested),
    B("args", args, args_len),
    B("result", result, result_len),
    F("error_code", K_STR, error_code),
    F("error_message", K_STR, error_message),
    B("error_details", error_details, error_details_len),
    F("error_traceback", K_STR, error_traceback),
#undef F
#undef B
};

/* Stores one field value; 0, RTQ_ENOMEM, or RTQ_EDECODE for a bad status. */
static int set_field(rtq_task *t, const rtq__task_field *f, const redisReply *v, int *have_status) {
  char *base = (char *)t;
  switch (f->kind) {
    case RTQ__K_NAME:
      copy_name((char *)(base + f->off), v);
      return 0;
    case RTQ__K_STR:
    case RTQ__K_BYTES: {
      char **dst = (char **)(base + f->off);
      free(*dst);
      *dst = dup_bytes(v, f->kind == RTQ__K_BYTES ? (size_t *)(base + f->len_off) : NULL);
      return *dst != NULL ? 0 : RTQ_ENOMEM;
    }
    case RTQ__K_U64:
      *(uint64_t *)(base + f->off) = rtq__parse_u64(v->str, v->len);
      return 0;
    case RTQ__K_U32:
      *(uint32_t *)(base + f->off) = clamp_u32(rtq__parse_u64(v->str, v->len));
      return 0;
    case RTQ__K_STATUS: {
      char s[16];
      if (v->len >= sizeof s) return RTQ_EDECODE;
      memcpy(s, v->str, v->len);
      s[v->len] = '\0';
      if (rtq_status_parse(s, &t->status) != 0) return RTQ_EDECODE;
      *have_status = 1;
      return 0;
    }
    case RTQ__K_PROGRESS: {
      char s[32];
      size_t n = v->len < sizeof s - 1 ? v->len : sizeof s - 1;
      memcpy(s, v->str, n);
      s[n] = '\0';
      char *end;
      double p = strtod(s, &end);
      if (end == s || p != p) p = 0; /* p != p: NaN */
      t->progress = p < 0 ? 0 : p > 100 ? 100 : p;
      return 0;
    }
  }
  return 0;
}

int rtq__task_apply(rtq_task *t, const rtq__task_field *table, size_t n, const redisReply *r,
                    int *have_status) {
  int rc = 0;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) return 0;
  for (size_t i = 0; rc == 0 && i + 1 < r->elements; i += 2) {
    const redisReply *k = r->element[i], *v = r->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
    for (size_t j = 0; j < n; j++) {
      if (strlen(table[j].name) == k->len && memcmp(table[j].name, k->str, k->len) == 0) {
        rc = set_field(t, &table[j], v, have_status);
        break;
      }
    }
  }
  return rc;
}

int rtq__task_from_hash(const char *id, const redisReply *r, rtq_task **out) {
  *out = NULL;
  if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) return RTQ_ENOTFOUND;
  rtq_task *t = calloc(1, sizeof *t);
  if (t == NULL) return RTQ_ENOMEM;
  snprintf(t->id, sizeof t->id, "%s", id);
  int have_status = 0;
  int rc = rtq__task_apply(t, fields, sizeof fields / sizeof fields[0], r, &have_status);
  if (rc == 0 && !have_status) rc = RTQ_EDECODE;
  if (rc != 0) {
    rtq_task_free(t);
    return rc;
  }
  *out = t;
  return 0;
}

RTQ_EXTERN int rtq_get_task(rtq_client *c, const char *id, rtq_task **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  if (c->protocol == 2) return rtq__get_task2(c, id, NULL, out);
  rtq_key key = rtq_keys_task(&c->keys, id);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "HGETALL");
  rtq__argv_add_key(&a, key);
  redisReply *r = NULL;
  int rc = rtq__client_command(c, &a, &r);
  rtq_argv_destroy(&a);
  if (rc == 0) {
    rc = rtq__task_from_hash(id, r, out);
    if (rc == RTQ_ENOTFOUND)
      rtq__client_err(c, "no task %s (it never existed or has expired)", id);
    else if (rc == RTQ_EDECODE)
      rtq__client_err(c, "task %s: its hash has no valid status field", id);
    else if (rc != 0)
      rtq__client_err(c, "out of memory");
  }
  if (r != NULL) freeReplyObject(r);
  return rc;
}
