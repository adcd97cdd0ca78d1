/*
 * test_dead_util.h - dead letters as the tests write them by hand: a
 * valid envelope of rtq.echo and a P:dead record laid out as
 * deadletter.lua writes it (payload as a msgpack bin), for the tests of
 * requeue and purge (test_cli_dead_requeue.c, test_web_auth.c).
 */
#ifndef RTQ_TEST_DEAD_UTIL_H
#define RTQ_TEST_DEAD_UTIL_H

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argv.h"
#include "envelope.h"
#include "harness.h"
#include "keys.h"

/* A valid envelope of rtq.echo (id, queue), malloc'd. (asserts) */
static inline char *tdead_envelope(const char *id, const char *queue, size_t *len) {
  rtq_envelope e;
  rtq_envelope_init(&e);
  snprintf(e.id, sizeof e.id, "%s", id);
  snprintf(e.name, sizeof e.name, "rtq.echo");
  snprintf(e.queue, sizeof e.queue, "%s", queue);
  char *b = NULL;
  assert_int_equal(rtq_envelope_encode(&e, &b, len, NULL, 0), 0);
  return b;
}

/* LPUSHes onto k's P:dead a NO_TASK_RECORD record of payload (n bytes,
 * all kept) for task id of queue. */
static inline void tdead_push(rtq_conn *c, const rtq_keys *k, const char *id, const char *queue,
                              const char *payload, size_t n) {
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 8);
#define TDEAD_STR(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
  TDEAD_STR("at");
  msgpack_pack_uint64(&pk, 1796607826356ull);
  TDEAD_STR("code");
  TDEAD_STR("NO_TASK_RECORD");
  TDEAD_STR("reason");
  TDEAD_STR("written by the test");
  TDEAD_STR("worker");
  TDEAD_STR("w-test");
  TDEAD_STR("queue");
  TDEAD_STR(queue);
  TDEAD_STR("id");
  TDEAD_STR(id);
  TDEAD_STR("size");
  msgpack_pack_uint64(&pk, n);
  TDEAD_STR("payload");
  msgpack_pack_bin(&pk, n);
  msgpack_pack_bin_body(&pk, payload, n);
#undef TDEAD_STR
  rtq_key d = rtq_keys_dead(k);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq_argv_add(&a, d.s, d.len);
  rtq_argv_add(&a, sb.data, sb.size);
  freeReplyObject(rtq_test_command_argv(c, &a));
  rtq_argv_destroy(&a);
  msgpack_sbuffer_destroy(&sb);
}

/* A record of a whole rtq.echo envelope (id, queue). */
static inline void tdead_push_envelope(rtq_conn *c, const rtq_keys *k, const char *id,
                                       const char *queue) {
  size_t n = 0;
  char *env = tdead_envelope(id, queue, &n);
  tdead_push(c, k, id, queue, env, n);
  free(env);
}

#endif
