/*
 * envelope.c - encoding and decoding the task envelope (see envelope.h).
 *
 * Decoding trusts nothing: the bytes come from a Redis list any client can
 * write to. The order is fixed and matters: size limit, then the
 * non-allocating structural check (msgpack_check.c), and only then
 * msgpack-c's unpacker, whose allocations the check has bounded.
 */
#include "envelope.h"
#include "defaults.h"
#include "errbuf.h"

#include <msgpack.h>
#include <msgpack/unpack_define.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A value the check lets through must never exceed what msgpack-c's
 * fixed-size parse stack holds, or a legal envelope would fail to unpack
 * with a misleading out-of-memory error. */
_Static_assert(RTQ_MAX_DEPTH <= MSGPACK_EMBED_STACK_SIZE,
               "RTQ_MAX_DEPTH exceeds msgpack-c's parser stack");

/* The fields, in the order encode writes them. Changing this order changes
 * the bytes of every envelope, which is harmless across versions (decode
 * does not care) but not within a running fleet mid-LREM, so leave it. */
enum field {
  F_V,
  F_ID,
  F_NAME,
  F_QUEUE,
  F_ARGS,
  F_CREATED_AT,
  F_TIMEOUT,
  F_MAX_RETRIES,
  F_ATTEMPT,
  F_RESULT_TTL,
  F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "v", "id", "name", "queue", "args", "created_at", "timeout", "max_retries", "attempt",
    "result_ttl"};


void rtq_envelope_init(rtq_envelope *e) {
  if (e != NULL) memset(e, 0, sizeof *e);
}

void rtq_envelope_destroy(rtq_envelope *e) {
  if (e == NULL) return;
  free(e->args);
  memset(e, 0, sizeof *e);
}

/* A name field must be NUL-terminated inside its array before
 * rtq_validate_name may call strlen on it. */
static bool name_ok(const char *s, size_t cap) {
  return memchr(s, '\0', cap) != NULL && rtq_validate_name(s) == 0;
}

static int pack_cstr(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  if (msgpack_pack_str(pk, n) != 0) return -1;
  return msgpack_pack_str_body(pk, s, n);
}

static int pack_uint_field(msgpack_packer *pk, enum field f, uint64_t v) {
  if (pack_cstr(pk, field_names[f]) != 0) return -1;
  return msgpack_pack_uint64(pk, v);
}

static int pack_str_field(msgpack_packer *pk, enum field f, const char *v) {
  if (pack_cstr(pk, field_names[f]) != 0) return -1;
  return pack_cstr(pk, v);
}

/* Validates e->args: a single msgpack map that still fits the depth limit
 * once the envelope map wraps it. */
static int check_args(const rtq_envelope *e, char *errbuf, size_t errcap) {
  char why[160];
  if (e->args == NULL) return 0;
  int rc = rtq_msgpack_check(e->args, e->args_len, RTQ_MAX_DEPTH - 1, why, sizeof why);
  if (rc == RTQ_EDEPTH)
    return rtq__errf(RTQ_EDEPTH, errbuf, errcap, "field \"args\": %s (limit %d inside an envelope)",
                why, RTQ_MAX_DEPTH - 1);
  if (rc != 0) return rtq__errf(RTQ_EINVAL, errbuf, errcap, "field \"args\": %s", why);
  uint8_t t = (uint8_t)e->args[0];
  if (!((t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf))
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "field \"args\" is not a msgpack map");
  return 0;
}

int rtq_envelope_encode(const rtq_envelope *e, char **buf, size_t *len, char *errbuf,
                        size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (e == NULL || buf == NULL || len == NULL)
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "NULL argument");
  *buf = NULL;
  *len = 0;
  if (!name_ok(e->id, sizeof e->id))
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "field \"id\" is not a valid name");
  if (!name_ok(e->name, sizeof e->name))
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "field \"name\" is not a valid name");
  if (!name_ok(e->queue, sizeof e->queue))
    return rtq__errf(RTQ_EINVAL, errbuf, errcap, "field \"queue\" is not a valid name");
  int rc = check_args(e, errbuf, errcap);
  if (rc != 0) return rc;

  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);

  /* Every field is always written, in field order: the same envelope
   * always yields the same bytes, which LREM relies on. */
  int bad = msgpack_pack_map(&pk, F_COUNT) != 0 ||
            pack_uint_field(&pk, F_V, RTQ_ENVELOPE_VERSION) != 0 ||
            pack_str_field(&pk, F_ID, e->id) != 0 || pack_str_field(&pk, F_NAME, e->name) != 0 ||
            pack_str_field(&pk, F_QUEUE, e->queue) != 0 ||
            pack_cstr(&pk, field_names[F_ARGS]) != 0;
  if (!bad) {
    if (e->args != NULL)
      bad = msgpack_sbuffer_write(&sb, e->args, e->args_len) != 0;
    else
      bad = msgpack_pack_map(&pk, 0) != 0;
  }
  bad = bad || pack_uint_field(&pk, F_CREATED_AT, e->created_at) != 0 ||
        pack_uint_field(&pk, F_TIMEOUT, e->timeout_ms) != 0 ||
        pack_uint_field(&pk, F_MAX_RETRIES, e->max_retries) != 0 ||
        pack_uint_field(&pk, F_ATTEMPT, e->attempt) != 0 ||
        pack_uint_field(&pk, F_RESULT_TTL, e->result_ttl_s) != 0;
  if (bad) {
    msgpack_sbuffer_destroy(&sb);
    return rtq__errf(RTQ_ENOMEM, errbuf, errcap, "out of memory encoding the envelope");
  }
  *len = sb.size;
  *buf = msgpack_sbuffer_release(&sb);
  return 0;
}

static int field_index(const msgpack_object *key) {
  if (key->type != MSGPACK_OBJECT_STR) return -1;
  for (int i = 0; i < F_COUNT; i++) {
    size_t n = strlen(field_names[i]);
    if (key->via.str.size == n && memcmp(key->via.str.ptr, field_names[i], n) == 0) return i;
  }
  return -1;
}

/* Copies a name field into out (129 bytes). Returns 0, or RTQ_EDECODE with
 * the reason in errbuf. */
static int read_name(const msgpack_object *o, enum field f, char out[129], char *errbuf,
                     size_t errcap) {
  if (o == NULL)
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"%s\" is missing", field_names[f]);
  if (o->type != MSGPACK_OBJECT_STR)
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"%s\" is not a string", field_names[f]);
  uint32_t n = o->via.str.size;
  /* Too long, or a NUL inside that would hide the tail from the check. */
  if (n > 128 || (n > 0 && memchr(o->via.str.ptr, '\0', n) != NULL))
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"%s\" is not a valid name", field_names[f]);
  memcpy(out, o->via.str.ptr, n);
  out[n] = '\0';
  if (rtq_validate_name(out) != 0) {
    out[0] = '\0';
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"%s\" is not a valid name", field_names[f]);
  }
  return 0;
}

/* An optional unsigned field: absent means 0. */
static int read_uint(const msgpack_object *o, enum field f, uint64_t max, uint64_t *out,
                     char *errbuf, size_t errcap) {
  *out = 0;
  if (o == NULL) return 0;
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"%s\" is not an unsigned integer",
                field_names[f]);
  if (o->via.u64 > max)
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"%s\" is out of range", field_names[f]);
  *out = o->via.u64;
  return 0;
}

/* Fills e from an unpacked top-level map. e->id is set as soon as it is
 * known to be valid, so the caller sees it also when a later field fails. */
static int read_fields(const msgpack_object *top, rtq_envelope *e, char *errbuf, size_t errcap) {
  const msgpack_object *f[F_COUNT] = {NULL};
  const msgpack_object_map *m = &top->via.map;

  for (uint32_t i = 0; i < m->size; i++) {
    int idx = field_index(&m->ptr[i].key);
    if (idx < 0) continue; /* unknown keys are ignored: forward compatibility */
    /* Two values for one field could be read differently by another
     * implementation; refuse rather than pick one. */
    if (f[idx] != NULL)
      return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"%s\" appears twice", field_names[idx]);
    f[idx] = &m->ptr[i].val;
  }

  char id[129];
  if (read_name(f[F_ID], F_ID, id, NULL, 0) == 0) memcpy(e->id, id, sizeof id);

  if (f[F_V] == NULL) return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"v\" is missing");
  if (f[F_V]->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"v\" is not an unsigned integer");
  uint64_t v = f[F_V]->via.u64;
  if (v == 0 || v > RTQ_ENVELOPE_VERSION)
    return rtq__errf(RTQ_EVERSION, errbuf, errcap, "envelope version %llu, this build reads 1 to %d",
                (unsigned long long)v, RTQ_ENVELOPE_VERSION);
  e->version = (uint32_t)v;

  int rc;
  if ((rc = read_name(f[F_ID], F_ID, id, errbuf, errcap)) != 0 ||
      (rc = read_name(f[F_NAME], F_NAME, e->name, errbuf, errcap)) != 0 ||
      (rc = read_name(f[F_QUEUE], F_QUEUE, e->queue, errbuf, errcap)) != 0)
    return rc;
  if (f[F_ARGS] == NULL) return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"args\" is missing");
  if (f[F_ARGS]->type != MSGPACK_OBJECT_MAP)
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "field \"args\" is not a map");

  uint64_t retries, attempt;
  if ((rc = read_uint(f[F_CREATED_AT], F_CREATED_AT, UINT64_MAX, &e->created_at, errbuf,
                      errcap)) != 0 ||
      (rc = read_uint(f[F_TIMEOUT], F_TIMEOUT, UINT64_MAX, &e->timeout_ms, errbuf, errcap)) != 0 ||
      (rc = read_uint(f[F_MAX_RETRIES], F_MAX_RETRIES, UINT32_MAX, &retries, errbuf, errcap)) !=
          0 ||
      (rc = read_uint(f[F_ATTEMPT], F_ATTEMPT, UINT32_MAX, &attempt, errbuf, errcap)) != 0 ||
      (rc = read_uint(f[F_RESULT_TTL], F_RESULT_TTL, UINT64_MAX, &e->result_ttl_s, errbuf,
                      errcap)) != 0)
    return rc;
  e->max_retries = (uint32_t)retries;
  e->attempt = (uint32_t)attempt;

  /* args is re-packed from the unpacked tree rather than sliced out of the
   * input: the result is the canonical encoding of the same value, and the
   * tree is already depth-checked, so the recursion here is bounded. */
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  if (msgpack_pack_object(&pk, *f[F_ARGS]) != 0) {
    msgpack_sbuffer_destroy(&sb);
    return rtq__errf(RTQ_ENOMEM, errbuf, errcap, "out of memory copying args");
  }
  e->args_len = sb.size;
  e->args = msgpack_sbuffer_release(&sb);
  return 0;
}

int rtq_envelope_decode(const void *buf, size_t len, size_t max_size, rtq_envelope *e,
                        char *errbuf, size_t errcap) {
  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (e == NULL) return rtq__errf(RTQ_EINVAL, errbuf, errcap, "NULL envelope");
  rtq_envelope_destroy(e);
  if (max_size == 0) max_size = RTQ_ENVELOPE_MAX_SIZE_DEFAULT;
  if (len > max_size)
    return rtq__errf(RTQ_ETOOBIG, errbuf, errcap, "envelope is %zu bytes, the limit is %zu", len,
                max_size);

  char why[160];
  int rc = rtq_msgpack_check(buf, len, RTQ_MAX_DEPTH, why, sizeof why);
  if (rc != 0) return rtq__errf(rc, errbuf, errcap, "envelope: %s", why);
  uint8_t t = *(const uint8_t *)buf;
  if (!((t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf))
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "envelope is not a msgpack map");

  msgpack_unpacked u;
  size_t off = 0;
  msgpack_unpacked_init(&u);
  msgpack_unpack_return ur = msgpack_unpack_next(&u, buf, len, &off);
  if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
    rc = rtq__errf(RTQ_ENOMEM, errbuf, errcap, "out of memory unpacking the envelope");
  } else if (ur != MSGPACK_UNPACK_SUCCESS || off != len || u.data.type != MSGPACK_OBJECT_MAP) {
    /* Unreachable while the check agrees with msgpack-c; kept so a
     * disagreement surfaces as a decode error, not as a crash. */
    rc = rtq__errf(RTQ_EDECODE, errbuf, errcap, "envelope rejected by the msgpack parser (%d)",
              (int)ur);
  } else {
    rc = read_fields(&u.data, e, errbuf, errcap);
  }
  msgpack_unpacked_destroy(&u);
  if (rc != 0) {
    /* Keep only the id, so the caller can still mark that task failed. */
    char id[sizeof e->id];
    memcpy(id, e->id, sizeof id);
    rtq_envelope_destroy(e);
    memcpy(e->id, id, sizeof id);
  }
  return rc;
}

int rtq_envelope_peek_id(const void *buf, size_t len, char id[129]) {
  const uint8_t *b = buf;
  id[0] = '\0';
  if (buf == NULL || len < 9) return RTQ_EDECODE;
  bool layout = b[0] >= 0x80 && b[0] <= 0x8f && b[1] == 0xa1 && b[2] == 'v' && b[3] <= 0x7f &&
                b[4] == 0xa2 && b[5] == 'i' && b[6] == 'd';
  if (!layout) return RTQ_EDECODE;
  size_t from = 8, n = 0;
  if (b[7] >= 0xa1 && b[7] <= 0xbf) {
    n = b[7] - 0xa0u;
  } else if (b[7] == 0xd9) {
    from = 9;
    n = b[8];
  }
  if (n == 0 || n > 128 || from + n > len) return RTQ_EDECODE;
  memcpy(id, b + from, n);
  id[n] = '\0';
  if (rtq_validate_name(id) != 0) {
    id[0] = '\0';
    return RTQ_EDECODE;
  }
  return 0;
}

const char rtq__empty_map[1] = {(char)0x80};

const char *rtq__decode_code(int rc) {
  switch (rc) {
    case RTQ_ETOOBIG: return RTQ_CODE_TOO_LARGE;
    case RTQ_EDEPTH: return RTQ_CODE_TOO_DEEP;
    case RTQ_EVERSION: return RTQ_CODE_VERSION;
    default: return RTQ_CODE_DECODE;
  }
}
