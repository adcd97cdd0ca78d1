/*
 * task.c - task hash fields read into an rtq_task (rtq__task_apply, with
 * the field table of task2.c; docs/PROTOCOL.md section 4), and
 * rtq_get_task.
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

RTQ_EXTERN int rtq_get_task(rtq_client *c, const char *id, rtq_task **out) {
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  *out = NULL;
  rtq__client_clear_err(c);
  if (rtq__check_name(c, "task id", id) != 0) return RTQ_EINVAL;
  return rtq__get_task2(c, id, NULL, out);
}
