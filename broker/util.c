/*
 * util.c - what the phases share.
 */
#include "internal.h"

#include <stdio.h>

const char *rtq__u64s(uint64_t v, char *buf) {
  snprintf(buf, 24, "%llu", (unsigned long long)v);
  return buf;
}
