/* ids.c - ULID-style task ids and worker ids; the layout is drawn in ids.h. */
#include "ids.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "rtq/common.h"

/* Crockford's base32: no I, L, O or U, so an id read aloud or retyped from
 * a log cannot be confused. */
static const char crockford[32] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#define HOST_PART_MAX 64

int rtq_random_bytes(void *buf, size_t len) {
  unsigned char *p = buf;
  while (len > 0) {
    ssize_t n = getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return RTQ_EIO;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/*
 * Encodes the 128-bit value (ms << 80 | rnd) as 26 base32 digits, most
 * significant first. 26 * 5 = 130 bits, so the first digit carries only the
 * top 3 bits of the time and is always 0..7.
 */
static void encode(char out[RTQ_ID_LEN + 1], uint64_t ms, const unsigned char rnd[10]) {
  unsigned char bytes[16];
  for (int i = 0; i < 6; i++) bytes[i] = (unsigned char)(ms >> (40 - 8 * i));
  memcpy(bytes + 6, rnd, 10);

  /* Walk the 130-bit number 5 bits at a time; bit 0 of digit 0 is bit 129,
   * and the two bits above bit 127 are zero. */
  for (int d = 0; d < RTQ_ID_LEN; d++) {
    unsigned v = 0;
    for (int b = 0; b < 5; b++) {
      int bit = 129 - (d * 5 + b); /* bit index counted from the LSB */
      unsigned one = 0;
      if (bit < 128) {
        int byte = 15 - bit / 8;
        one = (bytes[byte] >> (bit % 8)) & 1u;
      }
      v = (v << 1) | one;
    }
    out[d] = crockford[v];
  }
  out[RTQ_ID_LEN] = '\0';
}

int rtq_id_new_at(char out[RTQ_ID_LEN + 1], uint64_t ms) {
  out[0] = '\0';
  if (ms >> 48) return RTQ_ERANGE;
  unsigned char rnd[10];
  int rc = rtq_random_bytes(rnd, sizeof rnd);
  if (rc != 0) return rc;
  encode(out, ms, rnd);
  return 0;
}

int rtq_id_new(char out[RTQ_ID_LEN + 1]) {
  return rtq_id_new_at(out, rtq__wall_ms());
}

static int host_char_ok(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

int rtq__worker_id_format(char *out, size_t cap, const char *host, long pid, uint32_t rnd) {
  char h[HOST_PART_MAX + 1];
  size_t n = 0;
  if (host != NULL) {
    for (; host[n] != '\0' && n < HOST_PART_MAX; n++) {
      h[n] = host_char_ok((unsigned char)host[n]) ? host[n] : '-';
    }
  }
  if (n == 0) {
    memcpy(h, "host", 4);
    n = 4;
  }
  h[n] = '\0';

  if (out == NULL || cap == 0) return RTQ_ERANGE;
  /* pid is printed unsigned so a negative value cannot add a second '-'
   * sign that looks like a field separator. */
  int len = snprintf(out, cap, "%s-%lu-%08x", h, (unsigned long)pid, (unsigned)rnd);
  if (len < 0 || (size_t)len >= cap) {
    out[0] = '\0';
    return RTQ_ERANGE;
  }
  return 0;
}

int rtq_worker_id_new(char *out, size_t cap) {
  if (out != NULL && cap > 0) out[0] = '\0';
  char host[256];
  /* gethostname may truncate without a NUL; the buffer end guarantees one. */
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  host[sizeof host - 1] = '\0';
  uint32_t rnd;
  int rc = rtq_random_bytes(&rnd, sizeof rnd);
  if (rc != 0) return rc;
  return rtq__worker_id_format(out, cap, host, (long)getpid(), rnd);
}
