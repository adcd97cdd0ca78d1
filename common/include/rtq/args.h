/*
 * rtq/args.h - keyword arguments and results as a small value tree.
 *
 * An rtq_args is a msgpack value tree: a map (the usual case, keyword
 * arguments), an array, or a scalar. Producers build one and pass it to
 * rtq_create_task(); handlers read typed values by key. It converts to and
 * from msgpack bytes and JSON text.
 *
 * Ownership: rtq_args_new*() return a handle the caller frees with
 * rtq_args_free(). A setter that takes a child rtq_args takes ownership of
 * it, also on error. Getters return borrowed pointers valid until the parent
 * is modified or freed. Not thread-safe: one handle, one thread at a time.
 *
 * Limits on decoding: input size (caller-given), nesting depth
 * (RTQ_ARGS_MAX_DEPTH) and declared lengths, which are checked against the
 * bytes remaining before anything is allocated.
 */
#ifndef RTQ_ARGS_H
#define RTQ_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtq/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RTQ_ARGS_MAX_DEPTH 32

typedef struct rtq_args rtq_args;

typedef enum rtq_type {
  RTQ_TYPE_NIL = 0,
  RTQ_TYPE_BOOL,
  RTQ_TYPE_INT,    /* int64 (positive values above INT64_MAX are RTQ_TYPE_UINT) */
  RTQ_TYPE_UINT,
  RTQ_TYPE_DOUBLE,
  RTQ_TYPE_STR,
  RTQ_TYPE_BIN,
  RTQ_TYPE_ARRAY,
  RTQ_TYPE_MAP
} rtq_type;

/* New empty map / empty array. NULL only when out of memory. */
RTQ_EXTERN rtq_args *rtq_args_new(void);
RTQ_EXTERN rtq_args *rtq_args_new_array(void);
/* Frees the tree. NULL does nothing. */
RTQ_EXTERN void rtq_args_free(rtq_args *a);

/* The type of the top-level value. */
RTQ_EXTERN rtq_type rtq_args_type(const rtq_args *a);

/*
 * Map setters. key is copied; a key already present is replaced.
 * RTQ_EINVAL if a is not a map or key is NULL; RTQ_ENOMEM.
 */
RTQ_EXTERN int rtq_args_set_str(rtq_args *a, const char *key, const char *val);
RTQ_EXTERN int rtq_args_set_strn(rtq_args *a, const char *key, const char *val, size_t len);
RTQ_EXTERN int rtq_args_set_int(rtq_args *a, const char *key, int64_t val);
RTQ_EXTERN int rtq_args_set_double(rtq_args *a, const char *key, double val);
RTQ_EXTERN int rtq_args_set_bool(rtq_args *a, const char *key, bool val);
RTQ_EXTERN int rtq_args_set_nil(rtq_args *a, const char *key);
RTQ_EXTERN int rtq_args_set_bin(rtq_args *a, const char *key, const void *val, size_t len);
/* Takes ownership of child (a map or an array), also on error; except when
 * child == a (RTQ_EINVAL, nothing freed). RTQ_EDEPTH when a would nest
 * deeper than RTQ_ARGS_MAX_DEPTH. */
RTQ_EXTERN int rtq_args_set_child(rtq_args *a, const char *key, rtq_args *child);

/* Array appenders: same contracts as the map setters, without a key. */
RTQ_EXTERN int rtq_args_push_str(rtq_args *arr, const char *val);
RTQ_EXTERN int rtq_args_push_strn(rtq_args *arr, const char *val, size_t len);
RTQ_EXTERN int rtq_args_push_bin(rtq_args *arr, const void *val, size_t len);
RTQ_EXTERN int rtq_args_push_int(rtq_args *arr, int64_t val);
RTQ_EXTERN int rtq_args_push_double(rtq_args *arr, double val);
RTQ_EXTERN int rtq_args_push_bool(rtq_args *arr, bool val);
RTQ_EXTERN int rtq_args_push_nil(rtq_args *arr);
RTQ_EXTERN int rtq_args_push_child(rtq_args *arr, rtq_args *child);

/*
 * Map getters. RTQ_ENOTFOUND when the key is absent, RTQ_ETYPE when the
 * value has another type, RTQ_EINVAL when a is not a map.
 * get_int accepts an integral value that fits int64_t (an integral double
 * too; RTQ_ERANGE when it does not fit); get_uint the same for uint64_t;
 * get_double accepts any number. Strings are not NUL-terminated inside
 * msgpack, so get_str returns a borrowed pointer and a length; get_cstr
 * copies into buf (NUL terminated, RTQ_ERANGE if it does not fit).
 * get_bin accepts bin and str (older msgpack producers write bytes as str).
 * A key present twice (possible in decoded msgpack) reads as its last value.
 */
/* 1 if key is present in map a, else 0. */
RTQ_EXTERN int rtq_args_has(const rtq_args *a, const char *key);
RTQ_EXTERN int rtq_args_get_type(const rtq_args *a, const char *key, rtq_type *out);
RTQ_EXTERN int rtq_args_get_str(const rtq_args *a, const char *key, const char **val, size_t *len);
RTQ_EXTERN int rtq_args_get_cstr(const rtq_args *a, const char *key, char *buf, size_t cap);
RTQ_EXTERN int rtq_args_get_int(const rtq_args *a, const char *key, int64_t *val);
RTQ_EXTERN int rtq_args_get_uint(const rtq_args *a, const char *key, uint64_t *val);
RTQ_EXTERN int rtq_args_get_double(const rtq_args *a, const char *key, double *val);
RTQ_EXTERN int rtq_args_get_bool(const rtq_args *a, const char *key, bool *val);
RTQ_EXTERN int rtq_args_get_bin(const rtq_args *a, const char *key, const void **val, size_t *len);
/* Borrowed child map or array. */
RTQ_EXTERN int rtq_args_get_child(const rtq_args *a, const char *key, const rtq_args **child);

/* Map entry count, or array length; 0 for a scalar. */
RTQ_EXTERN size_t rtq_args_count(const rtq_args *a);
/* Map iteration: i-th key (borrowed, not NUL-terminated) and its value.
 * RTQ_EINVAL when a is not a map, RTQ_ERANGE when i >= count. */
RTQ_EXTERN int rtq_args_key_at(const rtq_args *a, size_t i, const char **key, size_t *len);
/* i-th value of a map or array as a borrowed sub-tree (RTQ_ERANGE past
 * the end). */
RTQ_EXTERN int rtq_args_at(const rtq_args *a, size_t i, const rtq_args **val);
/* Scalar readers for a sub-tree obtained from rtq_args_at(). */
RTQ_EXTERN int rtq_args_as_str(const rtq_args *v, const char **val, size_t *len);
RTQ_EXTERN int rtq_args_as_int(const rtq_args *v, int64_t *val);
RTQ_EXTERN int rtq_args_as_uint(const rtq_args *v, uint64_t *val);
RTQ_EXTERN int rtq_args_as_bin(const rtq_args *v, const void **val, size_t *len);
RTQ_EXTERN int rtq_args_as_double(const rtq_args *v, double *val);
RTQ_EXTERN int rtq_args_as_bool(const rtq_args *v, bool *val);

/* Encodes the tree as msgpack. *buf is malloc'd; the caller frees it.
 * Deterministic: insertion order, shortest integer forms, doubles as
 * float64. */
RTQ_EXTERN int rtq_args_pack(const rtq_args *a, char **buf, size_t *len);
/*
 * Decodes msgpack bytes (any value, usually a map) into a new tree.
 * max_size 0 means the default of 1 MiB. Returns RTQ_EDECODE (truncated,
 * trailing bytes, bad type byte, declared length past the end), RTQ_EDEPTH,
 * RTQ_ETOOBIG or RTQ_ENOMEM; *out is set only on success. Also
 * RTQ_EDECODE for a map key that is not a str and for ext values, which
 * have no rtq_type. Peak memory is bounded by len: at most about 64 times
 * len (an array of 1-byte values), whatever the input declares.
 */
RTQ_EXTERN int rtq_args_unpack(const void *buf, size_t len, size_t max_size, rtq_args **out);

/* JSON text -> tree. errbuf (may be NULL) receives a reason on RTQ_EJSON,
 * and on RTQ_EDEPTH (nesting deeper than RTQ_ARGS_MAX_DEPTH). Integer
 * literals become RTQ_TYPE_INT (outside int64_t: RTQ_EJSON), other numbers
 * RTQ_TYPE_DOUBLE. No size limit: the caller sized the text. */
RTQ_EXTERN int rtq_args_from_json(const char *json, rtq_args **out, char *errbuf, size_t errcap);
/* Tree -> compact JSON text, malloc'd. bin becomes a base64 string; a uint
 * above INT64_MAX a JSON real; NaN and infinities null; invalid UTF-8 in
 * strings and keys is replaced by U+FFFD per bad byte. */
RTQ_EXTERN int rtq_args_to_json(const rtq_args *a, char **json);

/* Largest msgpack value rtq_msgpack_to_json turns into JSON: above every
 * result a worker stores (16 MiB by default), below what a hostile value
 * could make of the 64x expansion rtq_args_unpack allows. */
#define RTQ_MSGPACK_JSON_MAX (64u << 20)

/* Shortcuts over bytes: msgpack <-> JSON text, both malloc'd.
 * rtq_msgpack_to_json takes values up to RTQ_MSGPACK_JSON_MAX bytes. */
RTQ_EXTERN int rtq_msgpack_to_json(const void *buf, size_t len, char **json);
RTQ_EXTERN int rtq_json_to_msgpack(const char *json, char **buf, size_t *len, char *errbuf, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
