/*
 * test_cli_dead.h - what the `rtq dead` tests share (after
 * test_cli_env.h): the length of a queue's dead list {ns:Q}:dead, a dead
 * letter written by hand as deadletter.lua writes it, and enqueueing an
 * rtq.echo task whose args hold n bytes, so that a worker with a small
 * --max-payload dead-letters it.
 */
#ifndef RTQ_TEST_CLI_DEAD_H
#define RTQ_TEST_CLI_DEAD_H

#include <msgpack.h>

static inline long long dead_len(const char *queue) {
  return rtq_test_cmd_int(rc_, "LLEN", rtq_keys2_dead(&keys2, queue).s, NULL);
}

/* LPUSHes onto queue's dead list (the queue registered, as a worker's
 * queue is) a record of task id with code whose payload is n bytes, packed
 * as bin when bin, else as str. */
static inline void dead_push(const char *queue, const char *id, const char *code,
                             const char *payload, size_t n, bool bin) {
  rtq_test_cmd_int(rc_, "SADD", rtq_keys2_queues(&keys2).s, queue, NULL);
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 8);
#define DEAD_STR(s) (msgpack_pack_str(&pk, strlen(s)), msgpack_pack_str_body(&pk, s, strlen(s)))
  DEAD_STR("at");
  msgpack_pack_uint64(&pk, 1796607826356ull);
  DEAD_STR("code");
  DEAD_STR(code);
  DEAD_STR("reason");
  DEAD_STR("written by the test");
  DEAD_STR("worker");
  DEAD_STR("w-test");
  DEAD_STR("queue");
  DEAD_STR(queue);
  DEAD_STR("id");
  DEAD_STR(id);
  DEAD_STR("size");
  msgpack_pack_uint64(&pk, n);
  DEAD_STR("payload");
#undef DEAD_STR
  if (bin) {
    msgpack_pack_bin(&pk, n);
    msgpack_pack_bin_body(&pk, payload, n);
  } else {
    msgpack_pack_str(&pk, n);
    msgpack_pack_str_body(&pk, payload, n);
  }
  rtq_key2 d = rtq_keys2_dead(&keys2, queue);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq_argv_add(&a, d.s, d.len);
  rtq_argv_add(&a, sb.data, sb.size);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
  msgpack_sbuffer_destroy(&sb);
}

static inline void enqueue_blob(const char *id, size_t n) {
  char *args = malloc(n + 16);
  snprintf(args, n + 16, "{\"blob\":\"");
  memset(args + 9, 'x', n);
  strcpy(args + 9 + n, "\"}");
  cli_run r;
  RUN(&r, "enqueue", "rtq.echo", args, "--id", id);
  free(args);
  if (r.code != 0) fail_msg("enqueue: %s", r.err);
  cli_free(&r);
}

/* LPUSHes the bytes entry (n) onto queue's list, where a worker takes it. */
static inline void push_entry(const char *queue, const char *entry, size_t n) {
  rtq_key2 q = rtq_keys2_queue(&keys2, queue);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "LPUSH");
  rtq_argv_add(&a, q.s, q.len);
  rtq_argv_add(&a, entry, n);
  freeReplyObject(rtq_test_command_argv(rc_, &a));
  rtq_argv_destroy(&a);
}

#endif
