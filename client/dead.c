/*
 * dead.c - the dead letters (dead2.c reads the per-queue lists {ns:Q}:dead)
 * and decoding their records: what `rtq dead` prints and the dashboard can
 * show.
 *
 * A record is a msgpack map {at, code, reason, worker, queue, id, size,
 * payload}. payload holds the first 4096 bytes of the entry that could
 * not run (a task id, or bytes that are no id); older records pack it as a
 * msgpack str, newer ones as bin, and both are read. Reads are bounded: at most RTQ_DEAD_MAX_LIMIT records
 * (each a few KiB) per call.
 *
 * Nothing here trusts the bytes: the record is checked structurally before
 * msgpack-c sees it, and a payload that is not its task's id is shown
 * escaped, never raw.
 */
#include "client_internal.h"

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h" /* rtq_msgpack_check */


/* A record is one flat map; a little room for a future nested field. */
#define RECORD_MAX_DEPTH 2
/* How much of an undecodable payload the JSON shows. */
#define PREVIEW_BYTES 1024
#define HEX_BYTES 256

static char *dup_bytes(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d == NULL) return NULL;
  if (n > 0) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

void rtq__dead_letter_destroy(rtq_dead_letter *d) {
  free(d->code);
  free(d->reason);
  free(d->worker);
  free(d->queue);
  free(d->id);
  free(d->payload);
  free(d->record_error);
  memset(d, 0, sizeof *d);
}

/* A str or bin value's bytes; NULL for another type. */
static const char *bytes_of(const msgpack_object *o, size_t *n) {
  if (o->type == MSGPACK_OBJECT_STR) {
    *n = o->via.str.size;
    return o->via.str.ptr;
  }
  if (o->type == MSGPACK_OBJECT_BIN) {
    *n = o->via.bin.size;
    return o->via.bin.ptr;
  }
  return NULL;
}

static bool key_is(const msgpack_object *k, const char *name) {
  size_t n = strlen(name);
  return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, name, n) == 0;
}

/* Fills d's fields from the decoded map; unknown keys are skipped. */
static int fill_from_map(rtq_dead_letter *d, const msgpack_object *map) {
  static const char *const names[] = {"code", "reason", "worker", "queue", "id", "payload"};
  char **dst[] = {&d->code, &d->reason, &d->worker, &d->queue, &d->id, &d->payload};
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
      if (key_is(k, "at")) d->at = v->via.u64;
      if (key_is(k, "size")) d->size = v->via.u64;
      continue;
    }
    size_t n;
    const char *b = bytes_of(v, &n);
    for (size_t f = 0; b != NULL && f < sizeof names / sizeof names[0]; f++) {
      if (!key_is(k, names[f])) continue;
      free(*dst[f]);
      if ((*dst[f] = dup_bytes(b, n)) == NULL) return RTQ_ENOMEM;
      if (dst[f] == &d->payload) d->payload_len = n;
    }
  }
  return 0;
}

/* Keeps the raw bytes of a record that did not decode, and why. */
static int keep_raw(rtq_dead_letter *d, const char *buf, size_t len, const char *why) {
  rtq__dead_letter_destroy(d);
  d->record_error = dup_bytes(why, strlen(why));
  d->payload = dup_bytes(buf, len);
  d->payload_len = len;
  d->size = len;
  return d->record_error != NULL && d->payload != NULL ? 0 : RTQ_ENOMEM;
}

int rtq__dead_decode(rtq_dead_letter *d, uint64_t index, const char *buf, size_t len) {
  char why[160] = "";
  int rc = rtq_msgpack_check(buf, len, RECORD_MAX_DEPTH, why, sizeof why);
  if (rc == 0) {
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS) {
      snprintf(why, sizeof why, "not msgpack");
      rc = RTQ_EDECODE;
    } else if (u.data.type != MSGPACK_OBJECT_MAP) {
      snprintf(why, sizeof why, "not a msgpack map");
      rc = RTQ_EDECODE;
    } else {
      rc = fill_from_map(d, &u.data);
    }
    msgpack_unpacked_destroy(&u);
  }
  if (rc == RTQ_ENOMEM) return rc;
  if (rc != 0) rc = keep_raw(d, buf, len, why[0] ? why : "does not decode");
  d->index = index;
  /* Strings are never NULL. */
  char **all[] = {&d->code, &d->reason, &d->worker, &d->queue, &d->id};
  for (size_t i = 0; rc == 0 && i < sizeof all / sizeof all[0]; i++)
    if (*all[i] == NULL && (*all[i] = dup_bytes("", 0)) == NULL) rc = RTQ_ENOMEM;
  return rc;
}

RTQ_EXTERN int rtq_dead_list(rtq_client *c, size_t offset, size_t limit, rtq_dead_letters **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  if (limit == 0) limit = RTQ_DEAD_DEFAULT_LIMIT;
  if (limit > RTQ_DEAD_MAX_LIMIT || offset > (size_t)INT64_MAX - limit) {
    rtq__client_err(c, "limit %zu over %d, or offset out of range", limit, RTQ_DEAD_MAX_LIMIT);
    return RTQ_ERANGE;
  }
  return rtq__dead2_list(c, offset, limit, out);
}

RTQ_EXTERN void rtq_dead_letters_free(rtq_dead_letters *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->count; i++) rtq__dead_letter_destroy(&l->letters[i]);
  free(l->letters);
  free(l);
}

int rtq__dead_letter_of(rtq_client *c, size_t index, int rc, redisReply *r, rtq_dead_letter **out) {
  rtq_dead_letter *d = NULL;
  if (rc == 0) {
    d = calloc(1, sizeof *d);
    rc = d != NULL ? rtq__dead_decode(d, index, r->str, r->len) : RTQ_ENOMEM;
  }
  if (r != NULL) freeReplyObject(r);
  if (rc != 0) {
    if (rc == RTQ_ENOMEM) rtq__client_err(c, "out of memory");
    rtq_dead_letter_free(d);
    return rc;
  }
  *out = d;
  return 0;
}

int rtq__dead_is_task(rtq_client *c, size_t index, const redisReply *r, const char *expect_id) {
  rtq_dead_letter d;
  memset(&d, 0, sizeof d);
  bool same = rtq__dead_decode(&d, index, r->str, r->len) == 0 && d.id != NULL && strcmp(d.id, expect_id) == 0;
  rtq__dead_letter_destroy(&d);
  if (same) return 0;
  rtq__client_err(c, "dead letter %zu is no longer task %s (the list moved: read it again)", index, expect_id);
  return RTQ_ESTATE;
}

RTQ_EXTERN int rtq_dead_get(rtq_client *c, size_t index, rtq_dead_letter **out) {
  if (out != NULL) *out = NULL;
  if (c == NULL || out == NULL) return RTQ_EINVAL;
  rtq__client_clear_err(c);
  return rtq__dead2_get(c, index, out);
}

RTQ_EXTERN void rtq_dead_letter_free(rtq_dead_letter *d) {
  if (d == NULL) return;
  rtq__dead_letter_destroy(d);
  free(d);
}

/* Bytes as text a person can read: printable ASCII as is, a backslash
 * doubled, anything else as \xNN. New reference. */
static json_t *preview(const char *b, size_t n) {
  if (n > PREVIEW_BYTES) n = PREVIEW_BYTES;
  char *s = malloc(n * 4 + 1);
  if (s == NULL) return NULL;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)b[i];
    if (ch == '\\') {
      s[j++] = '\\';
      s[j++] = '\\';
    } else if (ch >= 0x20 && ch < 0x7f) {
      s[j++] = (char)ch;
    } else {
      j += (size_t)snprintf(s + j, 5, "\\x%02x", ch);
    }
  }
  s[j] = '\0';
  json_t *v = json_string(s);
  free(s);
  return v;
}

/* A record's text field: as it is when it is UTF-8, else escaped. */
static json_t *text(const char *s) {
  json_t *v = json_string(s);
  return v != NULL ? v : preview(s, strlen(s));
}

static json_t *hex(const char *b, size_t n) {
  static const char digits[] = "0123456789abcdef";
  if (n > HEX_BYTES) n = HEX_BYTES;
  char s[HEX_BYTES * 2 + 1];
  for (size_t i = 0; i < n; i++) {
    s[2 * i] = digits[(unsigned char)b[i] >> 4];
    s[2 * i + 1] = digits[(unsigned char)b[i] & 15];
  }
  s[2 * n] = '\0';
  return json_string(s);
}

/* The letter's task, {"id", "queue"}, when its payload is its task id
 * (the rest of the task is in its queue's hash); else null with why in
 * *why. */
static json_t *task_of(const rtq_dead_letter *d, char *why, size_t cap) {
  if (d->record_error != NULL) {
    snprintf(why, cap, "the record did not decode");
    return json_null();
  }
  size_t idn = strlen(d->id);
  if (idn > 0 && rtq_validate_name(d->id) == 0 && d->payload_len == idn && memcmp(d->payload, d->id, idn) == 0)
    return json_pack("{s:s, s:o}", "id", d->id, "queue", text(d->queue));
  if (d->payload_len < d->size)
    snprintf(why, cap, "only the first %zu of %llu bytes were kept, and they are not a task id", d->payload_len,
             (unsigned long long)d->size);
  else
    snprintf(why, cap, "the payload is not a task id");
  return json_null();
}

RTQ_EXTERN int rtq_dead_letter_to_json(const rtq_dead_letter *d, char **json) {
  if (json != NULL) *json = NULL;
  if (d == NULL || json == NULL) return RTQ_EINVAL;
  char ts[32], why[256] = "";
  json_t *task = task_of(d, why, sizeof why);
  json_t *o = json_pack("{s:I, s:s?, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:b, s:o}", "index",
                        (json_int_t)d->index, "at",
                        d->at ? rtq_format_time(d->at, ts, sizeof ts) : NULL, "code", text(d->code),
                        "reason", text(d->reason), "worker", text(d->worker), "queue",
                        text(d->queue), "id", d->id[0] ? text(d->id) : json_null(), "size",
                        (json_int_t)d->size, "payload_bytes", (json_int_t)d->payload_len,
                        "truncated", d->payload_len < d->size, "task", task);
  if (o != NULL && json_is_null(json_object_get(o, "task"))) {
    json_object_set_new(o, "payload_error", json_string(why));
    json_object_set_new(o, "payload_preview", preview(d->payload, d->payload_len));
    json_object_set_new(o, "payload_hex", hex(d->payload, d->payload_len));
  }
  if (o != NULL && d->record_error != NULL)
    json_object_set_new(o, "record_error", json_string(d->record_error));
  *json = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
  json_decref(o);
  return *json != NULL ? 0 : RTQ_ENOMEM;
}
