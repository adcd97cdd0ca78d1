/*
 * args.c - the rtq_args value tree: building, reading, and msgpack
 * conversion (JSON lives in args_json.c).
 *
 * Layout: every node is a struct rtq_args. Containers own a flat array of
 * their children stored by value (rtq_args[] for arrays, entry[] for maps),
 * which is why a borrowed child pointer dies when its parent is modified.
 * A setter that takes a child moves the child's node into the parent and
 * frees the child's shell.
 *
 * Each node records its height (0 for a scalar, 1 + the tallest child for a
 * container). Setters refuse a child that would push the height past
 * RTQ_ARGS_MAX_DEPTH, and the decoders refuse deeper input, so every
 * recursive walk in this file and in args_json.c is bounded by that limit.
 *
 * Maps keep insertion order and may hold a key twice when decoded from
 * msgpack that does; lookups take the last one, as JSON parsers do.
 */
#include "rtq/args.h"

#include <msgpack.h>
#include <msgpack/unpack_define.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"

_Static_assert(RTQ_ARGS_MAX_DEPTH <= MSGPACK_EMBED_STACK_SIZE,
               "RTQ_ARGS_MAX_DEPTH exceeds msgpack-c's parser stack");

struct rtq_args {
  rtq_type type;
  uint32_t height;
  union {
    bool b;
    int64_t i;
    uint64_t u;
    double d;
    struct {
      char *ptr; /* NULL when len is 0, else malloc'd with a NUL after len */
      size_t len;
    } s;         /* STR, BIN */
    struct {
      void *items; /* rtq_args[] (ARRAY) or entry[] (MAP) */
      size_t len, cap;
    } c;
  } v;
};

typedef struct entry {
  char *key; /* as rtq_args.v.s.ptr: NULL when klen is 0 */
  size_t klen;
  rtq_args val;
} entry;

static rtq_args *arr_items(const rtq_args *a) { return (rtq_args *)a->v.c.items; }
static entry *map_entries(const rtq_args *a) { return (entry *)a->v.c.items; }
static bool is_container(const rtq_args *a) {
  return a->type == RTQ_TYPE_ARRAY || a->type == RTQ_TYPE_MAP;
}

/* Frees what node n owns (not n itself). Recursion depth <= height. */
static void node_clear(rtq_args *n) {
  if (n->type == RTQ_TYPE_STR || n->type == RTQ_TYPE_BIN) {
    free(n->v.s.ptr);
  } else if (n->type == RTQ_TYPE_ARRAY) {
    for (size_t i = 0; i < n->v.c.len; i++) node_clear(&arr_items(n)[i]);
    free(n->v.c.items);
  } else if (n->type == RTQ_TYPE_MAP) {
    for (size_t i = 0; i < n->v.c.len; i++) {
      free(map_entries(n)[i].key);
      node_clear(&map_entries(n)[i].val);
    }
    free(n->v.c.items);
  }
  n->type = RTQ_TYPE_NIL;
  n->height = 0;
}

/* Copies len bytes into a NUL-terminated buffer; len 0 needs no memory. */
static int dup_bytes(const void *p, size_t len, char **out) {
  *out = NULL;
  if (len == 0) return 0;
  if (len == SIZE_MAX) return RTQ_ENOMEM;
  char *s = malloc(len + 1);
  if (s == NULL) return RTQ_ENOMEM;
  memcpy(s, p, len);
  s[len] = '\0';
  *out = s;
  return 0;
}

static rtq_args *node_new(rtq_type t) {
  rtq_args *a = calloc(1, sizeof *a);
  if (a != NULL) {
    a->type = t;
    a->height = 1;
  }
  return a;
}

rtq_args *rtq_args_new(void) { return node_new(RTQ_TYPE_MAP); }
rtq_args *rtq_args_new_array(void) { return node_new(RTQ_TYPE_ARRAY); }

void rtq_args_free(rtq_args *a) {
  if (a == NULL) return;
  node_clear(a);
  free(a);
}

rtq_type rtq_args_type(const rtq_args *a) { return a != NULL ? a->type : RTQ_TYPE_NIL; }

/* Makes room for one more element of size sz in container a. */
static int reserve_one(rtq_args *a, size_t sz) {
  if (a->v.c.len < a->v.c.cap) return 0;
  size_t cap = a->v.c.cap ? a->v.c.cap * 2 : 4;
  if (cap < a->v.c.cap || cap > SIZE_MAX / sz) return RTQ_ENOMEM;
  void *p = realloc(a->v.c.items, cap * sz);
  if (p == NULL) return RTQ_ENOMEM;
  a->v.c.items = p;
  a->v.c.cap = cap;
  return 0;
}

static void recompute_height(rtq_args *a) {
  uint32_t h = 0;
  for (size_t i = 0; i < a->v.c.len; i++) {
    const rtq_args *c = a->type == RTQ_TYPE_MAP ? &map_entries(a)[i].val : &arr_items(a)[i];
    if (c->height > h) h = c->height;
  }
  a->height = h + 1;
}

/* Index of the last entry with this key, or -1. */
static ptrdiff_t map_find(const rtq_args *a, const char *key, size_t klen) {
  for (size_t i = a->v.c.len; i-- > 0;) {
    const entry *e = &map_entries(a)[i];
    if (e->klen == klen && (klen == 0 || memcmp(e->key, key, klen) == 0)) return (ptrdiff_t)i;
  }
  return -1;
}

/*
 * Stores *val under key in map a, moving it in. On error *val is cleared,
 * which is how setters keep the "takes ownership, also on error" promise.
 *   1. a NULL, not a map, or key NULL -> RTQ_EINVAL
 *   2. val would make a deeper than RTQ_ARGS_MAX_DEPTH -> RTQ_EDEPTH
 *   3. an existing key: the last entry with that key is replaced in place
 */
static int map_put(rtq_args *a, const char *key, rtq_args *val) {
  int rc = 0;
  if (a == NULL || a->type != RTQ_TYPE_MAP || key == NULL) {
    rc = RTQ_EINVAL;
  } else if (val->height + 1 > RTQ_ARGS_MAX_DEPTH) {
    rc = RTQ_EDEPTH;
  } else {
    size_t klen = strlen(key);
    ptrdiff_t at = map_find(a, key, klen);
    if (at >= 0) {
      entry *e = &map_entries(a)[at];
      bool was_tallest = e->val.height + 1 >= a->height;
      node_clear(&e->val);
      e->val = *val;
      if (was_tallest) recompute_height(a);
      else if (val->height + 1 > a->height) a->height = val->height + 1;
      return 0;
    }
    char *k;
    if ((rc = reserve_one(a, sizeof(entry))) == 0 && (rc = dup_bytes(key, klen, &k)) == 0) {
      entry *e = &map_entries(a)[a->v.c.len++];
      e->key = k;
      e->klen = klen;
      e->val = *val;
      if (val->height + 1 > a->height) a->height = val->height + 1;
      return 0;
    }
  }
  node_clear(val);
  return rc;
}

/* Appends *val to array a; same ownership rule as map_put. */
static int arr_push(rtq_args *a, rtq_args *val) {
  int rc;
  if (a == NULL || a->type != RTQ_TYPE_ARRAY) {
    rc = RTQ_EINVAL;
  } else if (val->height + 1 > RTQ_ARGS_MAX_DEPTH) {
    rc = RTQ_EDEPTH;
  } else if ((rc = reserve_one(a, sizeof(rtq_args))) == 0) {
    arr_items(a)[a->v.c.len++] = *val;
    if (val->height + 1 > a->height) a->height = val->height + 1;
    return 0;
  }
  node_clear(val);
  return rc;
}

static rtq_args scalar(rtq_type t) {
  rtq_args n;
  memset(&n, 0, sizeof n);
  n.type = t;
  return n;
}

static int bytes_node(rtq_type t, const void *val, size_t len, rtq_args *n) {
  *n = scalar(t);
  if (val == NULL && len > 0) return RTQ_EINVAL;
  n->v.s.len = len;
  return dup_bytes(val, len, &n->v.s.ptr);
}

/* Moves child's node out and frees its shell. */
static int take_child(rtq_args *parent, rtq_args *child, rtq_args *n) {
  if (child == NULL) return RTQ_EINVAL;
  if (child == parent) return RTQ_EINVAL; /* still the caller's: freeing it would free parent */
  *n = *child;
  free(child);
  return 0;
}

int rtq_args_set_str(rtq_args *a, const char *key, const char *val) {
  if (val == NULL) return RTQ_EINVAL;
  return rtq_args_set_strn(a, key, val, strlen(val));
}

int rtq_args_set_strn(rtq_args *a, const char *key, const char *val, size_t len) {
  rtq_args n;
  int rc = bytes_node(RTQ_TYPE_STR, val, len, &n);
  return rc != 0 ? rc : map_put(a, key, &n);
}

int rtq_args_set_bin(rtq_args *a, const char *key, const void *val, size_t len) {
  rtq_args n;
  int rc = bytes_node(RTQ_TYPE_BIN, val, len, &n);
  return rc != 0 ? rc : map_put(a, key, &n);
}

int rtq_args_set_int(rtq_args *a, const char *key, int64_t val) {
  rtq_args n = scalar(RTQ_TYPE_INT);
  n.v.i = val;
  return map_put(a, key, &n);
}

int rtq_args_set_double(rtq_args *a, const char *key, double val) {
  rtq_args n = scalar(RTQ_TYPE_DOUBLE);
  n.v.d = val;
  return map_put(a, key, &n);
}

int rtq_args_set_bool(rtq_args *a, const char *key, bool val) {
  rtq_args n = scalar(RTQ_TYPE_BOOL);
  n.v.b = val;
  return map_put(a, key, &n);
}

int rtq_args_set_nil(rtq_args *a, const char *key) {
  rtq_args n = scalar(RTQ_TYPE_NIL);
  return map_put(a, key, &n);
}

int rtq_args_set_child(rtq_args *a, const char *key, rtq_args *child) {
  rtq_args n;
  int rc = take_child(a, child, &n);
  return rc != 0 ? rc : map_put(a, key, &n);
}

int rtq_args_push_str(rtq_args *arr, const char *val) {
  if (val == NULL) return RTQ_EINVAL;
  return rtq_args_push_strn(arr, val, strlen(val));
}

int rtq_args_push_strn(rtq_args *arr, const char *val, size_t len) {
  rtq_args n;
  int rc = bytes_node(RTQ_TYPE_STR, val, len, &n);
  return rc != 0 ? rc : arr_push(arr, &n);
}

int rtq_args_push_bin(rtq_args *arr, const void *val, size_t len) {
  rtq_args n;
  int rc = bytes_node(RTQ_TYPE_BIN, val, len, &n);
  return rc != 0 ? rc : arr_push(arr, &n);
}

int rtq_args_push_int(rtq_args *arr, int64_t val) {
  rtq_args n = scalar(RTQ_TYPE_INT);
  n.v.i = val;
  return arr_push(arr, &n);
}

int rtq_args_push_double(rtq_args *arr, double val) {
  rtq_args n = scalar(RTQ_TYPE_DOUBLE);
  n.v.d = val;
  return arr_push(arr, &n);
}

int rtq_args_push_bool(rtq_args *arr, bool val) {
  rtq_args n = scalar(RTQ_TYPE_BOOL);
  n.v.b = val;
  return arr_push(arr, &n);
}

int rtq_args_push_nil(rtq_args *arr) {
  rtq_args n = scalar(RTQ_TYPE_NIL);
  return arr_push(arr, &n);
}

int rtq_args_push_child(rtq_args *arr, rtq_args *child) {
  rtq_args n;
  int rc = take_child(arr, child, &n);
  return rc != 0 ? rc : arr_push(arr, &n);
}

/* ---- reading ---------------------------------------------------------- */

static int lookup(const rtq_args *a, const char *key, const rtq_args **out) {
  *out = NULL;
  if (a == NULL || a->type != RTQ_TYPE_MAP || key == NULL) return RTQ_EINVAL;
  ptrdiff_t at = map_find(a, key, strlen(key));
  if (at < 0) return RTQ_ENOTFOUND;
  *out = &map_entries(a)[at].val;
  return 0;
}

int rtq_args_has(const rtq_args *a, const char *key) {
  const rtq_args *v;
  return lookup(a, key, &v) == 0;
}

int rtq_args_get_type(const rtq_args *a, const char *key, rtq_type *out) {
  const rtq_args *v;
  int rc = lookup(a, key, &v);
  if (rc == 0 && out != NULL) *out = v->type;
  return rc;
}

int rtq_args_as_str(const rtq_args *v, const char **val, size_t *len) {
  if (v == NULL || val == NULL) return RTQ_EINVAL;
  if (v->type != RTQ_TYPE_STR) return RTQ_ETYPE;
  *val = v->v.s.ptr != NULL ? v->v.s.ptr : "";
  if (len != NULL) *len = v->v.s.len;
  return 0;
}

int rtq_args_as_bin(const rtq_args *v, const void **val, size_t *len) {
  if (v == NULL || val == NULL) return RTQ_EINVAL;
  if (v->type != RTQ_TYPE_BIN && v->type != RTQ_TYPE_STR) return RTQ_ETYPE;
  *val = v->v.s.ptr != NULL ? v->v.s.ptr : "";
  if (len != NULL) *len = v->v.s.len;
  return 0;
}

/* 2^63 as a double; exact, unlike INT64_MAX converted. */
#define TWO_POW_63 9223372036854775808.0

/* Whether d has no fractional part; infinities count as integral (and are
 * then out of range), NaN does not. Written without floor() so that
 * rtq_common does not need libm. */
static bool integral(double d) {
  if (d != d) return false;
  if (d >= TWO_POW_63 || d <= -TWO_POW_63) return true; /* beyond 2^53 all are */
  return (double)(int64_t)d == d;
}

int rtq_args_as_int(const rtq_args *v, int64_t *val) {
  if (v == NULL || val == NULL) return RTQ_EINVAL;
  switch (v->type) {
  case RTQ_TYPE_INT:
    *val = v->v.i;
    return 0;
  case RTQ_TYPE_UINT: /* only values above INT64_MAX are stored as UINT */
    return RTQ_ERANGE;
  case RTQ_TYPE_DOUBLE:
    if (!integral(v->v.d)) return RTQ_ETYPE;
    if (v->v.d < -TWO_POW_63 || v->v.d >= TWO_POW_63) return RTQ_ERANGE;
    *val = (int64_t)v->v.d;
    return 0;
  default:
    return RTQ_ETYPE;
  }
}

int rtq_args_as_uint(const rtq_args *v, uint64_t *val) {
  if (v == NULL || val == NULL) return RTQ_EINVAL;
  switch (v->type) {
  case RTQ_TYPE_INT:
    if (v->v.i < 0) return RTQ_ERANGE;
    *val = (uint64_t)v->v.i;
    return 0;
  case RTQ_TYPE_UINT:
    *val = v->v.u;
    return 0;
  case RTQ_TYPE_DOUBLE:
    if (!integral(v->v.d)) return RTQ_ETYPE;
    if (v->v.d < 0 || v->v.d >= 2 * TWO_POW_63) return RTQ_ERANGE;
    *val = (uint64_t)v->v.d;
    return 0;
  default:
    return RTQ_ETYPE;
  }
}

int rtq_args_as_double(const rtq_args *v, double *val) {
  if (v == NULL || val == NULL) return RTQ_EINVAL;
  switch (v->type) {
  case RTQ_TYPE_INT: *val = (double)v->v.i; return 0;
  case RTQ_TYPE_UINT: *val = (double)v->v.u; return 0;
  case RTQ_TYPE_DOUBLE: *val = v->v.d; return 0;
  default: return RTQ_ETYPE;
  }
}

int rtq_args_as_bool(const rtq_args *v, bool *val) {
  if (v == NULL || val == NULL) return RTQ_EINVAL;
  if (v->type != RTQ_TYPE_BOOL) return RTQ_ETYPE;
  *val = v->v.b;
  return 0;
}

int rtq_args_get_str(const rtq_args *a, const char *key, const char **val, size_t *len) {
  const rtq_args *v;
  int rc = lookup(a, key, &v);
  return rc != 0 ? rc : rtq_args_as_str(v, val, len);
}

int rtq_args_get_cstr(const rtq_args *a, const char *key, char *buf, size_t cap) {
  const char *s;
  size_t n;
  if (buf == NULL || cap == 0) return RTQ_EINVAL;
  buf[0] = '\0';
  int rc = rtq_args_get_str(a, key, &s, &n);
  if (rc != 0) return rc;
  if (n >= cap) return RTQ_ERANGE;
  memcpy(buf, s, n);
  buf[n] = '\0';
  return 0;
}

int rtq_args_get_int(const rtq_args *a, const char *key, int64_t *val) {
  const rtq_args *v;
  int rc = lookup(a, key, &v);
  return rc != 0 ? rc : rtq_args_as_int(v, val);
}

int rtq_args_get_uint(const rtq_args *a, const char *key, uint64_t *val) {
  const rtq_args *v;
  int rc = lookup(a, key, &v);
  return rc != 0 ? rc : rtq_args_as_uint(v, val);
}

int rtq_args_get_double(const rtq_args *a, const char *key, double *val) {
  const rtq_args *v;
  int rc = lookup(a, key, &v);
  return rc != 0 ? rc : rtq_args_as_double(v, val);
}

int rtq_args_get_bool(const rtq_args *a, const char *key, bool *val) {
  const rtq_args *v;
  int rc = lookup(a, key, &v);
  return rc != 0 ? rc : rtq_args_as_bool(v, val);
}

int rtq_args_get_bin(const rtq_args *a, const char *key, const void **val, size_t *len) {
  const rtq_args *v;
  int rc = lookup(a, key, &v);
  return rc != 0 ? rc : rtq_args_as_bin(v, val, len);
}

int rtq_args_get_child(const rtq_args *a, const char *key, const rtq_args **child) {
  const rtq_args *v;
  if (child == NULL) return RTQ_EINVAL;
  int rc = lookup(a, key, &v);
  if (rc != 0) return rc;
  if (!is_container(v)) return RTQ_ETYPE;
  *child = v;
  return 0;
}

size_t rtq_args_count(const rtq_args *a) {
  return a != NULL && is_container(a) ? a->v.c.len : 0;
}

int rtq_args_key_at(const rtq_args *a, size_t i, const char **key, size_t *len) {
  if (a == NULL || a->type != RTQ_TYPE_MAP || key == NULL) return RTQ_EINVAL;
  if (i >= a->v.c.len) return RTQ_ERANGE;
  const entry *e = &map_entries(a)[i];
  *key = e->key != NULL ? e->key : "";
  if (len != NULL) *len = e->klen;
  return 0;
}

int rtq_args_at(const rtq_args *a, size_t i, const rtq_args **val) {
  if (a == NULL || !is_container(a) || val == NULL) return RTQ_EINVAL;
  if (i >= a->v.c.len) return RTQ_ERANGE;
  *val = a->type == RTQ_TYPE_MAP ? &map_entries(a)[i].val : &arr_items(a)[i];
  return 0;
}

/* ---- msgpack ---------------------------------------------------------- */

/* depth: containers enclosing n. It is checked here too, not only at
 * build time, so that even a corrupted tree cannot recurse without bound. */
static int pack_node(msgpack_packer *pk, const rtq_args *n, int depth) {
  if (is_container(n) && depth + 1 > RTQ_ARGS_MAX_DEPTH) return RTQ_EDEPTH;
  int bad = 0;
  switch (n->type) {
  case RTQ_TYPE_NIL: bad = msgpack_pack_nil(pk); break;
  case RTQ_TYPE_BOOL: bad = n->v.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
  case RTQ_TYPE_INT: bad = msgpack_pack_int64(pk, n->v.i); break;
  case RTQ_TYPE_UINT: bad = msgpack_pack_uint64(pk, n->v.u); break;
  case RTQ_TYPE_DOUBLE: bad = msgpack_pack_double(pk, n->v.d); break;
  case RTQ_TYPE_STR:
  case RTQ_TYPE_BIN:
    if (n->v.s.len > UINT32_MAX) return RTQ_ERANGE;
    if (n->type == RTQ_TYPE_STR)
      bad = msgpack_pack_str(pk, n->v.s.len) || msgpack_pack_str_body(pk, n->v.s.ptr, n->v.s.len);
    else
      bad = msgpack_pack_bin(pk, n->v.s.len) || msgpack_pack_bin_body(pk, n->v.s.ptr, n->v.s.len);
    break;
  case RTQ_TYPE_ARRAY:
    if (n->v.c.len > UINT32_MAX) return RTQ_ERANGE;
    if (msgpack_pack_array(pk, n->v.c.len) != 0) return RTQ_ENOMEM;
    for (size_t i = 0; i < n->v.c.len; i++) {
      int rc = pack_node(pk, &arr_items(n)[i], depth + 1);
      if (rc != 0) return rc;
    }
    break;
  case RTQ_TYPE_MAP:
    if (n->v.c.len > UINT32_MAX) return RTQ_ERANGE;
    if (msgpack_pack_map(pk, n->v.c.len) != 0) return RTQ_ENOMEM;
    for (size_t i = 0; i < n->v.c.len; i++) {
      const entry *e = &map_entries(n)[i];
      if (e->klen > UINT32_MAX) return RTQ_ERANGE;
      if (msgpack_pack_str(pk, e->klen) != 0 || msgpack_pack_str_body(pk, e->key, e->klen) != 0)
        return RTQ_ENOMEM;
      int rc = pack_node(pk, &e->val, depth + 1);
      if (rc != 0) return rc;
    }
    break;
  }
  return bad ? RTQ_ENOMEM : 0;
}

int rtq_args_pack(const rtq_args *a, char **buf, size_t *len) {
  if (a == NULL || buf == NULL || len == NULL) return RTQ_EINVAL;
  *buf = NULL;
  *len = 0;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  int rc = pack_node(&pk, a, 0);
  if (rc != 0) {
    msgpack_sbuffer_destroy(&sb);
    return rc;
  }
  *len = sb.size;
  *buf = msgpack_sbuffer_release(&sb);
  return 0;
}

/* Builds node n from an unpacked object. The structural check has bounded
 * both the depth and every count, so neither the recursion nor the
 * allocations here can be driven by a lying header. On error n holds
 * nothing. */
static int from_object(const msgpack_object *o, rtq_args *n) {
  *n = scalar(RTQ_TYPE_NIL);
  switch (o->type) {
  case MSGPACK_OBJECT_NIL: return 0;
  case MSGPACK_OBJECT_BOOLEAN:
    n->type = RTQ_TYPE_BOOL;
    n->v.b = o->via.boolean;
    return 0;
  case MSGPACK_OBJECT_POSITIVE_INTEGER:
    if (o->via.u64 > INT64_MAX) {
      n->type = RTQ_TYPE_UINT;
      n->v.u = o->via.u64;
    } else {
      n->type = RTQ_TYPE_INT;
      n->v.i = (int64_t)o->via.u64;
    }
    return 0;
  case MSGPACK_OBJECT_NEGATIVE_INTEGER:
    n->type = RTQ_TYPE_INT;
    n->v.i = o->via.i64;
    return 0;
  case MSGPACK_OBJECT_FLOAT32:
  case MSGPACK_OBJECT_FLOAT64:
    n->type = RTQ_TYPE_DOUBLE;
    n->v.d = o->via.f64;
    return 0;
  case MSGPACK_OBJECT_STR: return bytes_node(RTQ_TYPE_STR, o->via.str.ptr, o->via.str.size, n);
  case MSGPACK_OBJECT_BIN: return bytes_node(RTQ_TYPE_BIN, o->via.bin.ptr, o->via.bin.size, n);
  case MSGPACK_OBJECT_ARRAY: {
    uint32_t cnt = o->via.array.size;
    n->type = RTQ_TYPE_ARRAY;
    n->height = 1;
    if (cnt == 0) return 0;
    n->v.c.items = calloc(cnt, sizeof(rtq_args));
    if (n->v.c.items == NULL) return RTQ_ENOMEM;
    n->v.c.cap = cnt;
    for (uint32_t i = 0; i < cnt; i++) {
      rtq_args *c = &arr_items(n)[i];
      int rc = from_object(&o->via.array.ptr[i], c);
      if (rc != 0) {
        node_clear(n);
        return rc;
      }
      n->v.c.len++;
      if (c->height + 1 > n->height) n->height = c->height + 1;
    }
    return 0;
  }
  case MSGPACK_OBJECT_MAP: {
    uint32_t cnt = o->via.map.size;
    n->type = RTQ_TYPE_MAP;
    n->height = 1;
    if (cnt == 0) return 0;
    n->v.c.items = calloc(cnt, sizeof(entry));
    if (n->v.c.items == NULL) return RTQ_ENOMEM;
    n->v.c.cap = cnt;
    for (uint32_t i = 0; i < cnt; i++) {
      const msgpack_object_kv *kv = &o->via.map.ptr[i];
      entry *e = &map_entries(n)[i];
      /* Keys are names: a non-string key has no place in keyword
       * arguments and no JSON form. */
      int rc = kv->key.type != MSGPACK_OBJECT_STR ? RTQ_EDECODE
               : dup_bytes(kv->key.via.str.ptr, kv->key.via.str.size, &e->key);
      if (rc == 0) {
        e->klen = kv->key.via.str.size;
        rc = from_object(&kv->val, &e->val);
        if (rc != 0) free(e->key);
      }
      if (rc != 0) {
        node_clear(n);
        return rc;
      }
      n->v.c.len++;
      if (e->val.height + 1 > n->height) n->height = e->val.height + 1;
    }
    return 0;
  }
  default: /* ext: no rtq_type for it, and no producer of ours writes one */
    return RTQ_EDECODE;
  }
}

int rtq_args_unpack(const void *buf, size_t len, size_t max_size, rtq_args **out) {
  if (out == NULL) return RTQ_EINVAL;
  if (max_size == 0) max_size = RTQ_ENVELOPE_MAX_SIZE_DEFAULT;
  if (len > max_size) return RTQ_ETOOBIG;
  int rc = rtq_msgpack_check(buf, len, RTQ_ARGS_MAX_DEPTH, NULL, 0);
  if (rc != 0) return rc;

  msgpack_unpacked u;
  size_t off = 0;
  msgpack_unpacked_init(&u);
  msgpack_unpack_return ur = msgpack_unpack_next(&u, buf, len, &off);
  rtq_args *a = NULL;
  if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
    rc = RTQ_ENOMEM;
  } else if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
    rc = RTQ_EDECODE; /* unreachable while the check agrees with msgpack-c */
  } else if ((a = malloc(sizeof *a)) == NULL) {
    rc = RTQ_ENOMEM;
  } else if ((rc = from_object(&u.data, a)) != 0) {
    free(a);
    a = NULL;
  }
  msgpack_unpacked_destroy(&u);
  if (rc == 0) *out = a;
  return rc;
}
