/*
 * fuzz_parsers.c - libFuzzer target for the parsers of what a person or a
 * deployment types: the Redis URL (rtq_redis_url_parse) and durations
 * (rtq_parse_duration_ms).
 *
 * Properties checked besides "no crash, no sanitizer report":
 *   1. the URL parser returns 0 or RTQ_EINVAL; on error the reason is a
 *      NUL-terminated line within its buffer; on success every field is
 *      NUL-terminated within its array and the port and db are in range;
 *   2. the duration parser returns 0, RTQ_EINVAL or RTQ_ERANGE, and a
 *      value it accepts lies within the bounds it was given.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conn.h"
#include "rtq/common.h"

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

static void check_url(const char *s) {
  rtq_redis_url u;
  char err[256];
  memset(err, 'x', sizeof err);
  int rc = rtq_redis_url_parse(s, &u, err, sizeof err);
  REQUIRE(rc == 0 || rc == RTQ_EINVAL);
  if (rc != 0) {
    REQUIRE(memchr(err, '\0', sizeof err) != NULL);
    REQUIRE(strchr(err, '\n') == NULL);
    return;
  }
  REQUIRE(memchr(u.host, '\0', sizeof u.host) != NULL);
  REQUIRE(memchr(u.path, '\0', sizeof u.path) != NULL);
  REQUIRE(memchr(u.user, '\0', sizeof u.user) != NULL);
  REQUIRE(memchr(u.password, '\0', sizeof u.password) != NULL);
  if (!u.is_unix) REQUIRE(u.port >= 1 && u.port <= 65535);
  REQUIRE(u.db >= 0);
  REQUIRE(u.nseeds >= 0 && u.nseeds <= RTQ_URL_MAX_SEEDS);
  REQUIRE((u.nseeds > 0) == (u.kind == RTQ_URL_CLUSTER || u.kind == RTQ_URL_SENTINEL));
  for (int i = 0; i < u.nseeds; i++) {
    REQUIRE(memchr(u.seeds[i].host, '\0', sizeof u.seeds[i].host) != NULL && u.seeds[i].host[0] != '\0');
    REQUIRE(u.seeds[i].port >= 1 && u.seeds[i].port <= 65535);
  }
  REQUIRE(memchr(u.master, '\0', sizeof u.master) != NULL);
  REQUIRE((u.master[0] != '\0') == (u.kind == RTQ_URL_SENTINEL));
  REQUIRE(u.kind != RTQ_URL_CLUSTER || u.db == 0);
}

static void check_duration(const char *s, long min_ms, long max_ms) {
  long v = -12345;
  int rc = rtq_parse_duration_ms(s, min_ms, max_ms, &v);
  REQUIRE(rc == 0 || rc == RTQ_EINVAL || rc == RTQ_ERANGE);
  if (rc == 0) REQUIRE(v >= min_ms && v <= max_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) return 0;
  char *s = malloc(size + 1);
  if (s == NULL) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  check_url(s);
  check_duration(s, 0, 86400000L);
  check_duration(s, 1, 1000);
  check_duration(s, 0, (long)(((unsigned long)-1) >> 1));
  free(s);
  return 0;
}
