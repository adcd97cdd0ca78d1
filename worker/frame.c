/* frame.c - framing of the child -> worker pipe (format in frame.h). */
#include "frame.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rtq/common.h"

static void put32(char *p, uint32_t v) {
  p[0] = (char)(v >> 24);
  p[1] = (char)(v >> 16);
  p[2] = (char)(v >> 8);
  p[3] = (char)v;
}

static uint32_t get32(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

int rtq__frame_build(char type, const rtq__field *fields, int n, char **out, size_t *outlen) {
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    if (fields[i].len > UINT32_MAX - 4 || total > UINT32_MAX - 4 - fields[i].len) return RTQ_ETOOBIG;
    total += 4 + fields[i].len;
  }
  char *b = malloc(RTQ__FRAME_HDR + total);
  if (b == NULL) return RTQ_ENOMEM;
  b[0] = type;
  put32(b + 1, (uint32_t)total);
  char *p = b + RTQ__FRAME_HDR;
  for (int i = 0; i < n; i++) {
    put32(p, (uint32_t)fields[i].len);
    if (fields[i].len > 0) memcpy(p + 4, fields[i].p, fields[i].len);
    p += 4 + fields[i].len;
  }
  *out = b;
  *outlen = RTQ__FRAME_HDR + total;
  return 0;
}

int rtq__frame_field(const char *payload, size_t len, int idx, rtq__field *out) {
  size_t off = 0;
  for (int i = 0;; i++) {
    if (len - off < 4) return RTQ_EDECODE;
    size_t flen = get32(payload + off);
    off += 4;
    if (flen > len - off) return RTQ_EDECODE;
    if (i == idx) {
      out->p = payload + off;
      out->len = flen;
      return 0;
    }
    off += flen;
  }
}

void rtq__frame_reader_destroy(rtq__frame_reader *r) {
  free(r->buf);
  free(r->tail);
  r->buf = r->tail = NULL;
  r->len = r->cap = r->off = r->tail_len = 0;
}

static int tail_append(rtq__frame_reader *r, const void *data, size_t n) {
  if (r->tail_len >= RTQ__CRASH_TAIL_MAX) return 0;
  if (n > RTQ__CRASH_TAIL_MAX - r->tail_len) n = RTQ__CRASH_TAIL_MAX - r->tail_len;
  char *t = realloc(r->tail, r->tail_len + n + 1);
  if (t == NULL) return RTQ_ENOMEM;
  memcpy(t + r->tail_len, data, n);
  r->tail = t;
  r->tail_len += n;
  t[r->tail_len] = '\0';
  return 0;
}

int rtq__frame_feed(rtq__frame_reader *r, const void *data, size_t n) {
  if (r->crashed) return tail_append(r, data, n);
  if (r->off > 0 && r->off == r->len) r->off = r->len = 0;
  if (r->len + n > r->cap) {
    if (r->off > 0) {
      memmove(r->buf, r->buf + r->off, r->len - r->off);
      r->len -= r->off;
      r->off = 0;
    }
    size_t ncap = r->cap ? r->cap : 4096;
    while (ncap < r->len + n) ncap *= 2;
    if (ncap != r->cap) {
      char *b = realloc(r->buf, ncap);
      if (b == NULL) return RTQ_ENOMEM;
      r->buf = b;
      r->cap = ncap;
    }
  }
  memcpy(r->buf + r->len, data, n);
  r->len += n;
  return 0;
}

int rtq__frame_next(rtq__frame_reader *r, char *type, const char **payload, size_t *len) {
  if (r->crashed) return 0;
  size_t avail = r->len - r->off;
  if (avail < RTQ__FRAME_HDR) return 0;
  const char *h = r->buf + r->off;
  char t = h[0];
  size_t flen = get32(h + 1);
  if ((t != 'P' && t != 'R' && t != 'F' && t != 'C') || flen > r->max_frame) return RTQ_EDECODE;
  if (avail - RTQ__FRAME_HDR < flen) return 0;
  *type = t;
  *payload = h + RTQ__FRAME_HDR;
  *len = flen;
  r->off += RTQ__FRAME_HDR + flen;
  if (t == 'C') {
    /* Whatever followed the crash frame in this read is backtrace text. */
    r->crashed = true;
    if (r->off < r->len && tail_append(r, r->buf + r->off, r->len - r->off) != 0) return RTQ_ENOMEM;
    /* payload stays valid: buf is not touched again once crashed. */
  }
  return 1;
}
