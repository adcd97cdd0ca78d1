/*
 * fuzz_replies.c - libFuzzer target for the parsers of the protocol 2
 * scripts' structured replies (common/replies2.c): take's and claim's
 * entries, which carry a task hash's fields (name, args, signature, the
 * option texts) that any writer of the namespace chose, and create's,
 * finish's, recover's, promote's, backstop's, the counts and the tagged
 * replies.
 *
 * The input is RESP, read by hiredis's own reader into the reply tree a
 * connection would give (a server or proxy that answers oddly included);
 * every parser reads each reply the input holds. Inputs whose arrays
 * declare more than MAX_COUNT entries are left out (see counts_small).
 *
 * Properties checked:
 *   1. each parser returns 0 or RTQ_EDECODE, and never reports more
 *      entries than its cap;
 *   2. on 0, every string a kind promises is there and NUL-terminated
 *      within its length (the worker copies and logs them), and the
 *      numbers come from integer replies as given;
 *   3. an ok claim entry's args, checked as the worker checks them
 *      (rtq__args_check), either pass or are refused with RTQ_EDECODE or
 *      RTQ_EDEPTH.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "calls2.h"
#include "envelope.h"

#define REQUIRE(cond)     \
  do {                    \
    if (!(cond)) abort(); \
  } while (0)

#define MAX_REPLIES 8
#define MAX_COUNT 4096

/* hiredis (0.14) allocates an array's element pointers from the count its
 * header declares, before any element arrives: "*200000000" asks for
 * 1.6 GB. Redis is trusted not to send that, and the scripts' replies hold
 * at most a few hundred entries, so inputs with a '*' anywhere followed by
 * a larger number are left out (where the reader would see a header is
 * its business; bytes inside a bulk string that look like one are left
 * out too, which costs nothing). */
static bool counts_small(const uint8_t *data, size_t size) {
  for (size_t i = 0; i < size; i++) {
    if (data[i] != '*') continue;
    uint64_t n = 0;
    for (size_t j = i + 1; j < size && data[j] >= '0' && data[j] <= '9'; j++)
      if ((n = n * 10 + (data[j] - '0')) > MAX_COUNT) return false;
  }
  return true;
}

/* s is a hiredis string: its bytes then a NUL. */
static void text_ok(const char *s, size_t len) {
  REQUIRE(s != NULL);
  REQUIRE(s[len] == '\0');
}

static void check_claim(const redisReply *r) {
  rtq__claim2_entry e[RTQ__V2_MAX_TASKS];
  int n = -1;
  int rc = rtq__reply2_claim(r, e, RTQ__V2_MAX_TASKS, &n);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  if (rc != 0) return;
  REQUIRE(n >= 0 && n <= RTQ__V2_MAX_TASKS && (size_t)n == r->elements);
  for (int i = 0; i < n; i++) {
    const rtq__claim2_entry *x = &e[i];
    if (x->kind != RTQ__CLAIM2_LIMITED || x->id != NULL) text_ok(x->id, x->id_len);
    switch (x->kind) {
      case RTQ__CLAIM2_OK: {
        text_ok(x->name, strlen(x->name));
        text_ok(x->args, x->args_len);
        REQUIRE(x->signature != NULL);
        REQUIRE((x->to_s == NULL) == (x->bo_s == NULL));
        REQUIRE((x->mr_s == NULL) == (x->rt_s == NULL) && (x->to_s == NULL) == (x->mr_s == NULL));
        if (x->args_len > 0) {
          int crc = rtq__args_check(x->args, x->args_len, NULL, 0);
          REQUIRE(crc == 0 || crc == RTQ_EDECODE || crc == RTQ_EDEPTH);
        }
        break;
      }
      case RTQ__CLAIM2_SKIP: REQUIRE(x->status != NULL); break;
      case RTQ__CLAIM2_BAD: REQUIRE(x->reason != NULL); break;
      case RTQ__CLAIM2_MISSING: break;
      case RTQ__CLAIM2_LIMITED: break;
      default: REQUIRE(0);
    }
  }
}

static void check_others(const redisReply *r) {
  int n = -1;
  rtq__create2_result cr[RTQ__V2_MAX_TASKS];
  int rc = rtq__reply2_create(r, cr, RTQ__V2_MAX_TASKS, &n);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  for (int i = 0; rc == 0 && i < n; i++) REQUIRE(cr[i].created || cr[i].status != NULL);

  rtq__finish2_entry fe[RTQ__V2_MAX_TASKS];
  rc = rtq__reply2_finish(r, fe, RTQ__V2_MAX_TASKS, &n);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  for (int i = 0; rc == 0 && i < n; i++) REQUIRE(fe[i].kind == RTQ__FINISH2_RETRY || fe[i].status != NULL);

  rtq__recover2_entry re[RTQ__V2_MAX_SWEEP];
  rc = rtq__reply2_recover(r, re, RTQ__V2_MAX_SWEEP, &n);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  for (int i = 0; rc == 0 && i < n; i++) {
    if (re[i].kind == RTQ__RECOVER2_ENDED || re[i].kind == RTQ__RECOVER2_DROPPED) REQUIRE(re[i].status != NULL);
    if (re[i].kind == RTQ__RECOVER2_DEAD) REQUIRE(re[i].code != NULL);
  }

  rtq__promote2_result pr;
  rc = rtq__reply2_promote(r, &pr);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  for (size_t i = 0; rc == 0 && i < pr.nbad; i++) text_ok(pr.bad[i]->str, pr.bad[i]->len);

  rtq__backstop2_result br;
  rc = rtq__reply2_backstop(r, &br);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  for (size_t i = 0; rc == 0 && i < br.nended; i++) text_ok(br.ended[i]->str, br.ended[i]->len);

  int64_t counts[3];
  rc = rtq__reply2_counts(r, counts);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);

  rtq__tag2 tag;
  rc = rtq__reply2_tag(r, &tag);
  REQUIRE(rc == 0 || rc == RTQ_EDECODE);
  if (rc == 0) REQUIRE(tag.tag != NULL && tag.n >= 0 && tag.n <= 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 65536 || !counts_small(data, size)) return 0;
  redisReader *rd = redisReaderCreate();
  if (rd == NULL) return 0;
  if (redisReaderFeed(rd, (const char *)data, size) == REDIS_OK) {
    for (int i = 0; i < MAX_REPLIES; i++) {
      void *reply = NULL;
      if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL) break;
      check_claim(reply);
      check_others(reply);
      freeReplyObject(reply);
    }
  }
  redisReaderFree(rd);
  return 0;
}
