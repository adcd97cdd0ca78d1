/*
 * crc16.c - CRC16/XMODEM and Redis Cluster key slots (see crc16.h).
 *
 * Bit by bit rather than a 256-entry table: keys are short, a slot is
 * computed once per command, and the loop is easier to check against the
 * definition than a table.
 */
#include "crc16.h"

#include <string.h>

uint16_t rtq_crc16(const void *p, size_t n) {
  const unsigned char *s = p;
  uint16_t crc = 0;
  for (size_t i = 0; i < n; i++) {
    crc ^= (uint16_t)(s[i] << 8);
    for (int b = 0; b < 8; b++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
  }
  return crc;
}

int rtq_key_slot(const void *key, size_t n) {
  const char *k = key;
  const char *open = n > 0 ? memchr(k, '{', n) : NULL;
  if (open != NULL) {
    size_t from = (size_t)(open - k) + 1;
    const char *close = memchr(k + from, '}', n - from);
    if (close != NULL && close > k + from) return rtq_crc16(k + from, (size_t)(close - (k + from))) & (RTQ_CLUSTER_SLOTS - 1);
  }
  return rtq_crc16(k, n) & (RTQ_CLUSTER_SLOTS - 1);
}
