/*
 * task_json.c - a task as JSON: times as ISO-8601 UTC with milliseconds,
 * msgpack fields (args, result, error details) as JSON values.
 */
#include "client_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "utf8.h"

RTQ_EXTERN char *rtq_format_time(uint64_t ms, char *buf, size_t cap) {
  if (buf == NULL || cap == 0) return buf;
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  if (gmtime_r(&s, &tm) == NULL) {
    snprintf(buf, cap, "?");
    return buf;
  }
  char date[32];
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, cap, "%s.%03uZ", date, (unsigned)(ms % 1000));
  return buf;
}

/* msgpack bytes -> JSON text; "null" when absent. */
static int bytes_json(const char *buf, size_t len, char **json) {
  if (json == NULL) return RTQ_EINVAL;
  *json = NULL;
  if (buf == NULL || len == 0) {
    *json = strdup("null");
    return *json != NULL ? 0 : RTQ_ENOMEM;
  }
  return rtq_msgpack_to_json(buf, len, json);
}

RTQ_EXTERN int rtq_task_result_json(const rtq_task *t, char **json) {
  if (t == NULL) return RTQ_EINVAL;
  return bytes_json(t->result, t->result_len, json);
}

RTQ_EXTERN int rtq_task_error_details_json(const rtq_task *t, char **json) {
  if (t == NULL) return RTQ_EINVAL;
  return bytes_json(t->error_details, t->error_details_len, json);
}

RTQ_EXTERN int rtq_task_args_json(const rtq_task *t, char **json) {
  if (t == NULL) return RTQ_EINVAL;
  return bytes_json(t->args, t->args_len, json);
}

/* A msgpack field as a JSON value; null when absent, a marker string
 * when it does not decode. New reference, NULL only when out of memory. */
static json_t *msgpack_value(const char *buf, size_t len) {
  char *text = NULL;
  if (bytes_json(buf, len, &text) != 0) return json_string("<undecodable msgpack>");
  /* JSON_ALLOW_NUL: a str holding a NUL byte, which create takes, comes
   * out of rtq_msgpack_to_json as "\u0000". */
  json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  free(text);
  return v != NULL ? v : json_string("<undecodable msgpack>");
}

static json_t *time_value(uint64_t ms) {
  char buf[40];
  if (ms == 0) return json_null();
  return json_string(rtq_format_time(ms, buf, sizeof buf));
}

/* Stored text as a JSON string: any bytes a handler or a writer put there
 * are shown, ill-formed UTF-8 replaced by U+FFFD (json_string refuses it,
 * which used to turn a bad byte into "out of memory"). NULL only when out
 * of memory. */
static json_t *text_value(const char *s) {
  size_t n = strlen(s);
  if (rtq__utf8_valid(s, n)) return json_stringn(s, n);
  char *clean = rtq__utf8_sanitize(s, n, &n);
  json_t *v = clean != NULL ? json_stringn(clean, n) : NULL;
  free(clean);
  return v;
}

static json_t *str_or_null(const char *s) {
  return s != NULL && s[0] != '\0' ? text_value(s) : json_null();
}

static json_t *progress_value(double p) {
  if (p == (double)(long long)p) return json_integer((json_int_t)p);
  return json_real(p);
}

/* Sets key; a NULL value (allocation failed) marks the object as bad. */
static void put(json_t *o, const char *key, json_t *v, int *bad) {
  if (v == NULL || json_object_set_new(o, key, v) != 0) *bad = 1;
}

static json_t *error_value(const rtq_task *t, int *bad) {
  if (t->error_code == NULL && t->error_message == NULL) return json_null();
  json_t *e = json_object();
  if (e == NULL) return NULL;
  put(e, "code", str_or_null(t->error_code), bad);
  put(e, "message", str_or_null(t->error_message), bad);
  put(e, "details", msgpack_value(t->error_details, t->error_details_len), bad);
  put(e, "traceback", str_or_null(t->error_traceback), bad);
  return e;
}

static json_t *u64_or_null(uint64_t v) { return v ? json_integer((json_int_t)v) : json_null(); }

/* The object behind rtq_task_to_json; NULL when out of memory. */
static json_t *task_object(const rtq_task *t) {
  int bad = 0;
  json_t *o = json_object();
  if (o == NULL) return NULL;
  put(o, "id", text_value(t->id), &bad);
  put(o, "name", text_value(t->name), &bad);
  put(o, "queue", text_value(t->queue), &bad);
  put(o, "status", json_string(rtq_status_name(t->status)), &bad);
  put(o, "progress", progress_value(t->progress), &bad);
  put(o, "progress_message", str_or_null(t->progress_message), &bad);
  put(o, "created_at", time_value(t->created_at), &bad);
  put(o, "started_at", time_value(t->started_at), &bad);
  put(o, "completed_at", time_value(t->completed_at), &bad);
  put(o, "attempts", json_integer(t->attempts), &bad);
  put(o, "max_retries", json_integer(t->max_retries), &bad);
  put(o, "worker", str_or_null(t->worker), &bad);
  put(o, "timeout_ms", u64_or_null(t->timeout_ms), &bad);
  put(o, "result_ttl_s", u64_or_null(t->result_ttl_s), &bad);
  put(o, "run_at", time_value(t->run_at), &bad);
  put(o, "retry_at", time_value(t->retry_at), &bad);
  put(o, "deadline", time_value(t->deadline), &bad);
  put(o, "cancel_requested", time_value(t->cancel_requested), &bad);
  put(o, "args", msgpack_value(t->args, t->args_len), &bad);
  put(o, "result", msgpack_value(t->result, t->result_len), &bad);
  put(o, "error", error_value(t, &bad), &bad);
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}

RTQ_EXTERN int rtq_task_to_json(const rtq_task *t, char **json) {
  if (t == NULL || json == NULL) return RTQ_EINVAL;
  *json = NULL;
  json_t *o = task_object(t);
  if (o == NULL) return RTQ_ENOMEM;
  *json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return *json != NULL ? 0 : RTQ_ENOMEM;
}
