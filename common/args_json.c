/*
 * args_json.c - JSON text <-> rtq_args and msgpack, with jansson.
 *
 * JSON -> msgpack is packed straight from jansson's tree; JSON -> rtq_args
 * goes through those bytes and rtq_args_unpack(), so there is one
 * msgpack-to-tree path to trust. rtq_args -> JSON reads the tree through
 * the public accessors only.
 *
 * Type mapping:
 *   JSON                     msgpack / rtq_type
 *   object                   map (string keys)
 *   array                    array
 *   string                   str
 *   integer literal (12)     int
 *   other number (1.5, 1e3)  float64 (DOUBLE)
 *   true / false / null      bool / nil
 * and back, where msgpack holds more than JSON can say:
 *   bin                      base64 string (RFC 4648, padded)
 *   uint above INT64_MAX     a JSON real (nearest double)
 *   NaN and infinities       null
 *   invalid UTF-8 in str     each bad byte becomes U+FFFD
 */
#include "rtq/args.h"

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errbuf.h"
#include "utf8.h"


/* ---- rtq_args -> JSON ---------------------------------------------------- */

static char *base64(const unsigned char *p, size_t n, size_t *outlen) {
  static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (n / 3 >= (SIZE_MAX - 5) / 4) return NULL;
  size_t len = (n + 2) / 3 * 4;
  char *out = malloc(len + 1);
  if (out == NULL) return NULL;
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = tbl[v >> 18 & 63];
    *o++ = tbl[v >> 12 & 63];
    *o++ = tbl[v >> 6 & 63];
    *o++ = tbl[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
    *o++ = tbl[v >> 18 & 63];
    *o++ = tbl[v >> 12 & 63];
    *o++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  *outlen = len;
  return out;
}

/* Runs fn on s, or on a repaired copy when s is not valid UTF-8. */
typedef json_t *(*text_fn)(const char *s, size_t n, void *ctx);

static json_t *with_utf8(const char *s, size_t n, text_fn fn, void *ctx) {
  if (rtq__utf8_valid(s, n)) return fn(s, n, ctx);
  size_t m;
  char *fixed = rtq__utf8_sanitize(s, n, &m);
  if (fixed == NULL) return NULL;
  json_t *j = fn(fixed, m, ctx);
  free(fixed);
  return j;
}

static json_t *make_string(const char *s, size_t n, void *ctx) {
  (void)ctx;
  return json_stringn_nocheck(s, n);
}

typedef struct setkey {
  json_t *obj;
  json_t *val; /* stolen by json_object_setn_new */
} setkey;

/* Returns obj on success, NULL on failure. */
static json_t *set_key(const char *k, size_t n, void *ctx) {
  setkey *sk = ctx;
  json_t *v = sk->val;
  sk->val = NULL;
  return json_object_setn_new_nocheck(sk->obj, k, n, v) == 0 ? sk->obj : NULL;
}

static int to_json_node(const rtq_args *v, int depth, json_t **out);

static int container_to_json(const rtq_args *v, int depth, json_t **out) {
  bool map = rtq_args_type(v) == RTQ_TYPE_MAP;
  json_t *j = map ? json_object() : json_array();
  if (j == NULL) return RTQ_ENOMEM;
  size_t n = rtq_args_count(v);
  for (size_t i = 0; i < n; i++) {
    const rtq_args *child;
    json_t *jc;
    int rc = rtq_args_at(v, i, &child);
    if (rc == 0) rc = to_json_node(child, depth + 1, &jc);
    if (rc == 0 && map) {
      const char *k;
      size_t klen;
      rtq_args_key_at(v, i, &k, &klen);
      setkey sk = {j, jc};
      if (with_utf8(k, klen, set_key, &sk) == NULL) {
        json_decref(sk.val); /* still ours if set_key never ran */
        rc = RTQ_ENOMEM;
      }
    } else if (rc == 0) {
      rc = json_array_append_new(j, jc) == 0 ? 0 : RTQ_ENOMEM;
    }
    if (rc != 0) {
      json_decref(j);
      return rc;
    }
  }
  *out = j;
  return 0;
}

/* depth: containers enclosing v; bounded so a corrupted tree cannot
 * recurse without limit. */
static int to_json_node(const rtq_args *v, int depth, json_t **out) {
  json_t *j = NULL;
  const char *s;
  const void *b;
  size_t n;
  int64_t i;
  uint64_t u;
  double d;
  bool t;
  *out = NULL;
  switch (rtq_args_type(v)) {
  case RTQ_TYPE_NIL: j = json_null(); break;
  case RTQ_TYPE_BOOL:
    rtq_args_as_bool(v, &t);
    j = json_boolean(t);
    break;
  case RTQ_TYPE_INT:
    rtq_args_as_int(v, &i);
    j = json_integer((json_int_t)i);
    break;
  case RTQ_TYPE_UINT: /* beyond json_int_t; the nearest double says the most */
    rtq_args_as_uint(v, &u);
    j = json_real((double)u);
    break;
  case RTQ_TYPE_DOUBLE:
    rtq_args_as_double(v, &d);
    j = isfinite(d) ? json_real(d) : json_null();
    break;
  case RTQ_TYPE_STR:
    rtq_args_as_str(v, &s, &n);
    j = with_utf8(s, n, make_string, NULL);
    break;
  case RTQ_TYPE_BIN: {
    rtq_args_as_bin(v, &b, &n);
    size_t m;
    char *enc = base64(b, n, &m);
    if (enc == NULL) return RTQ_ENOMEM;
    j = json_stringn_nocheck(enc, m);
    free(enc);
    break;
  }
  case RTQ_TYPE_ARRAY:
  case RTQ_TYPE_MAP:
    if (depth + 1 > RTQ_ARGS_MAX_DEPTH) return RTQ_EDEPTH;
    return container_to_json(v, depth, out);
  }
  if (j == NULL) return RTQ_ENOMEM;
  *out = j;
  return 0;
}

int rtq_args_to_json(const rtq_args *a, char **json) {
  if (a == NULL || json == NULL) return RTQ_EINVAL;
  *json = NULL;
  json_t *j;
  int rc = to_json_node(a, 0, &j);
  if (rc != 0) return rc;
  /* Dumped into our own buffer so the result is plain malloc memory even
   * if someone installs other jansson allocators. */
  const size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
  size_t n = json_dumpb(j, NULL, 0, flags);
  char *out = n > 0 ? malloc(n + 1) : NULL;
  if (out != NULL && json_dumpb(j, out, n, flags) == n) {
    out[n] = '\0';
    *json = out;
  } else {
    free(out);
    rc = RTQ_ENOMEM;
  }
  json_decref(j);
  return rc;
}

int rtq_msgpack_to_json(const void *buf, size_t len, char **json) {
  if (json == NULL) return RTQ_EINVAL;
  *json = NULL;
  rtq_args *a;
  int rc = rtq_args_unpack(buf, len, RTQ_MSGPACK_JSON_MAX, &a);
  if (rc != 0) return rc;
  rc = rtq_args_to_json(a, json);
  rtq_args_free(a);
  return rc;
}

/* ---- JSON -> msgpack ----------------------------------------------------- */

/* depth: containers enclosing j. jansson itself stops at 2048 levels, so
 * this recursion is bounded before the check below rejects the input. */
static int pack_json(msgpack_packer *pk, const json_t *j, int depth, char *errbuf,
                     size_t errcap) {
  int bad = 0;
  switch (json_typeof(j)) {
  case JSON_OBJECT:
  case JSON_ARRAY:
    if (depth + 1 > RTQ_ARGS_MAX_DEPTH)
      return rtq__errf(RTQ_EDEPTH, errbuf, errcap, "JSON nests deeper than %d levels",
                  RTQ_ARGS_MAX_DEPTH);
    if (json_is_array(j)) {
      if (msgpack_pack_array(pk, json_array_size(j)) != 0) return RTQ_ENOMEM;
      for (size_t i = 0; i < json_array_size(j); i++) {
        int rc = pack_json(pk, json_array_get(j, i), depth + 1, errbuf, errcap);
        if (rc != 0) return rc;
      }
      return 0;
    }
    if (msgpack_pack_map(pk, json_object_size(j)) != 0) return RTQ_ENOMEM;
    for (void *it = json_object_iter((json_t *)j); it != NULL;
         it = json_object_iter_next((json_t *)j, it)) {
      const char *k = json_object_iter_key(it);
      size_t klen = json_object_iter_key_len(it);
      if (msgpack_pack_str(pk, klen) != 0 || msgpack_pack_str_body(pk, k, klen) != 0)
        return RTQ_ENOMEM;
      int rc = pack_json(pk, json_object_iter_value(it), depth + 1, errbuf, errcap);
      if (rc != 0) return rc;
    }
    return 0;
  case JSON_STRING: {
    size_t n = json_string_length(j);
    bad = msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, json_string_value(j), n);
    break;
  }
  case JSON_INTEGER: bad = msgpack_pack_int64(pk, (int64_t)json_integer_value(j)); break;
  case JSON_REAL: bad = msgpack_pack_double(pk, json_real_value(j)); break;
  case JSON_TRUE: bad = msgpack_pack_true(pk); break;
  case JSON_FALSE: bad = msgpack_pack_false(pk); break;
  case JSON_NULL: bad = msgpack_pack_nil(pk); break;
  }
  return bad ? RTQ_ENOMEM : 0;
}

int rtq_json_to_msgpack(const char *json, char **buf, size_t *len, char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (json == NULL || buf == NULL || len == NULL)
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "NULL argument");
  *buf = NULL;
  *len = 0;
  json_error_t err;
  /* JSON_ALLOW_NUL: "\u0000" is a legal JSON string character and msgpack
   * str carries it fine. */
  json_t *j = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
  if (j == NULL)
    return rtq__errf(RTQ_EJSON, errbuf, errcap, "line %d, column %d: %s", err.line, err.column,
                err.text);
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  int rc = pack_json(&pk, j, 0, errbuf, errcap);
  json_decref(j);
  if (rc != 0) {
    msgpack_sbuffer_destroy(&sb);
    if (rc == RTQ_ENOMEM) rtq__errf(rc, errbuf, errcap, "out of memory");
    return rc;
  }
  *len = sb.size;
  *buf = msgpack_sbuffer_release(&sb);
  return 0;
}

int rtq_args_from_json(const char *json, rtq_args **out, char *errbuf, size_t errcap) {
  if (out == NULL) return rtq__errf(RTQ_EINVAL, errbuf, errcap, "NULL argument");
  char *buf;
  size_t len;
  int rc = rtq_json_to_msgpack(json, &buf, &len, errbuf, errcap);
  if (rc != 0) return rc;
  /* The JSON text was the caller's to size; no payload limit applies. */
  rc = rtq_args_unpack(buf, len, len, out);
  free(buf);
  if (rc != 0) rtq__errf(rc, errbuf, errcap, "%s", rtq_strerror(rc));
  return rc;
}
