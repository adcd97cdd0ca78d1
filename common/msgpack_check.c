/*
 * msgpack_check.c - a structural check of msgpack bytes that allocates
 * nothing.
 *
 * Why it exists: msgpack-c's unpacker sizes its zone allocations from the
 * counts an array or map header declares, before it has seen a single
 * element. The 5 bytes `dd ff 00 00 00` (array32, 4 billion elements) make
 * it ask for ~100 GiB. Every decoder in rtq runs this walker first and hands
 * bytes to msgpack-c only when it passes, so a declared count can never
 * exceed the bytes that actually follow it.
 *
 * The walk is iterative: an explicit stack holds, per open container, how
 * many values it still expects. `pending` is the sum over the stack: values
 * declared but not yet read. Every msgpack value takes at least one byte, so
 * a header may only declare n more values when pending + n bytes remain.
 * That keeps the total of all declared counts below the input length, which
 * bounds what msgpack-c allocates to a small multiple of the input size.
 */
#include "envelope.h"
#include "errbuf.h"

#include <stdbool.h>
#include <stdio.h>

/* Size of the walker's stack; max_depth above it is treated as this. It is
 * well above RTQ_MAX_DEPTH and the 32 levels msgpack-c's own parser holds
 * (MSGPACK_EMBED_STACK_SIZE), so no caller needs more. */
#define CHECK_STACK_MAX 64


static uint64_t load_be(const uint8_t *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

/* What one header byte says: how many header bytes follow it (`lenbytes`
 * bytes of which are a big-endian length), then either a fixed payload, a
 * payload of the read length, or a container of the read count. */
typedef struct header {
  size_t fixed;     /* header bytes after the type byte, length included */
  size_t lenbytes;  /* 0, or the width of a length/count in the header */
  uint64_t payload; /* payload bytes (for str/bin/ext: added to the length) */
  int container;    /* 0, 1 = array, 2 = map (values per declared entry) */
  uint64_t count;   /* fixmap/fixarray/fixstr count carried in the type byte */
} header;

/* Decodes a type byte; returns false for 0xc1, the one byte msgpack
 * reserves as never used. */
static bool classify(uint8_t t, header *h) {
  *h = (header){0, 0, 0, 0, 0};
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return true;
  if (t <= 0x8f) {
    h->container = 2;
    h->count = t & 0x0f;
    return true;
  }
  if (t <= 0x9f) {
    h->container = 1;
    h->count = t & 0x0f;
    return true;
  }
  if (t <= 0xbf) {
    h->payload = t & 0x1f;
    return true;
  }
  switch (t) {
  case 0xc4: case 0xc5: case 0xc6: /* bin 8/16/32 */
    h->lenbytes = (size_t)1 << (t - 0xc4);
    h->fixed = h->lenbytes;
    return true;
  case 0xc7: case 0xc8: case 0xc9: /* ext 8/16/32: length, then a type byte */
    h->lenbytes = (size_t)1 << (t - 0xc7);
    h->fixed = h->lenbytes + 1;
    return true;
  case 0xca: h->payload = 4; return true;
  case 0xcb: h->payload = 8; return true;
  case 0xcc: case 0xcd: case 0xce: case 0xcf:
    h->payload = (uint64_t)1 << (t - 0xcc);
    return true;
  case 0xd0: case 0xd1: case 0xd2: case 0xd3:
    h->payload = (uint64_t)1 << (t - 0xd0);
    return true;
  case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8: /* fixext 1..16 */
    h->fixed = 1;
    h->payload = (uint64_t)1 << (t - 0xd4);
    return true;
  case 0xd9: case 0xda: case 0xdb: /* str 8/16/32 */
    h->lenbytes = (size_t)1 << (t - 0xd9);
    h->fixed = h->lenbytes;
    return true;
  case 0xdc: case 0xdd: /* array 16/32 */
    h->container = 1;
    h->lenbytes = t == 0xdc ? 2 : 4;
    h->fixed = h->lenbytes;
    return true;
  case 0xde: case 0xdf: /* map 16/32 */
    h->container = 2;
    h->lenbytes = t == 0xde ? 2 : 4;
    h->fixed = h->lenbytes;
    return true;
  default: /* 0xc1 */
    return false;
  }
}

static bool is_ext(uint8_t t) { return (t >= 0xc7 && t <= 0xc9) || (t >= 0xd4 && t <= 0xd8); }
static bool is_str(uint8_t t) { return (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb); }
static bool is_map(uint8_t t) { return (t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf; }

/* The walk of both checks below; args: also refuse what an rtq_args tree
 * cannot hold (a top level other than a map, a key that is not a string,
 * an ext value). */
static int walk(const void *buf, size_t len, int max_depth, bool args, char *errbuf, size_t errcap) {
  const uint8_t *p = buf;
  uint64_t stack[CHECK_STACK_MAX]; /* values still expected per open container */
  bool in_map[CHECK_STACK_MAX];    /* that container is a map */
  int depth = 0;
  uint64_t pending = 1; /* the single top-level value */
  size_t pos = 0;

  if (errbuf != NULL && errcap > 0) errbuf[0] = '\0';
  if (buf == NULL || len == 0) return rtq__errf(RTQ_EDECODE, errbuf, errcap, "empty input");
  if (max_depth < 0) max_depth = 0;
  if (max_depth > CHECK_STACK_MAX) max_depth = CHECK_STACK_MAX;

  while (pending > 0) {
    header h;
    size_t at = pos;
    if (pos >= len)
      return rtq__errf(RTQ_EDECODE, errbuf, errcap, "truncated: %llu value(s) missing at offset %zu",
                  (unsigned long long)pending, pos);
    if (!classify(p[pos], &h))
      return rtq__errf(RTQ_EDECODE, errbuf, errcap, "reserved type byte 0xc1 at offset %zu", pos);
    if (args) {
      /* A map's entries alternate key, value: a key is read while an even
       * number of its values remain. */
      bool key = depth > 0 && in_map[depth - 1] && stack[depth - 1] % 2 == 0;
      if (depth == 0 && !is_map(p[pos]))
        return rtq__errf(RTQ_EDECODE, errbuf, errcap, "not a msgpack map");
      if (key && !is_str(p[pos]))
        return rtq__errf(RTQ_EDECODE, errbuf, errcap, "a map key at offset %zu is not a string", pos);
      if (is_ext(p[pos]))
        return rtq__errf(RTQ_EDECODE, errbuf, errcap, "an ext value at offset %zu", pos);
    }
    pos++;
    if (h.fixed > len - pos)
      return rtq__errf(RTQ_EDECODE, errbuf, errcap, "truncated header at offset %zu", at);
    uint64_t declared = h.lenbytes ? load_be(p + pos, h.lenbytes) : h.count;
    pos += h.fixed;
    size_t left = len - pos;

    pending--;
    if (depth > 0) stack[depth - 1]--;

    if (h.container) {
      if (depth >= max_depth)
        return rtq__errf(RTQ_EDEPTH, errbuf, errcap, "nesting deeper than %d at offset %zu", max_depth,
                    at);
      uint64_t values = declared * (uint64_t)h.container; /* < 2^33, no overflow */
      if (pending + values > left)
        return rtq__errf(RTQ_EDECODE, errbuf, errcap,
                    "%s at offset %zu declares %llu entries, only %zu bytes remain",
                    h.container == 2 ? "map" : "array", at, (unsigned long long)declared, left);
      if (values > 0) {
        in_map[depth] = h.container == 2;
        stack[depth++] = values;
        pending += values;
        continue;
      }
    } else {
      /* str/bin/ext: payload is the declared length; fixed types: their
       * width. At most 2^32 + 16, so no overflow in 64 bits. */
      uint64_t need = h.payload + (h.lenbytes ? declared : 0);
      if (need > left)
        return rtq__errf(RTQ_EDECODE, errbuf, errcap,
                    "value at offset %zu declares %llu bytes, only %zu remain", at,
                    (unsigned long long)need, left);
      pos += (size_t)need;
    }
    while (depth > 0 && stack[depth - 1] == 0) depth--;
  }
  if (pos != len)
    return rtq__errf(RTQ_EDECODE, errbuf, errcap, "%zu trailing byte(s) after the value", len - pos);
  return 0;
}

int rtq_msgpack_check(const void *buf, size_t len, int max_depth, char *errbuf, size_t errcap) {
  return walk(buf, len, max_depth, false, errbuf, errcap);
}

int rtq__args_check(const void *buf, size_t len, char *errbuf, size_t errcap) {
  return walk(buf, len, RTQ_MAX_DEPTH - 1, true, errbuf, errcap);
}
