/*
 * test_cli_env.h - the fixture of the test_cli_*.c programs: a flushed
 * default redis-server per test, the key schema of namespace "rtq"
 * (keys2), a connection for assertions, and the environment that points the `rtq` binary at that
 * server (RTQ_REDIS_URL set, RTQ_NAMESPACE removed).
 *
 *   RUN(&r, "status", id)     runs rtq to completion (test_cli_run.h)
 *   START(&r, "wait", id)     starts it; cli_finish() later
 *   run_bin("broker/rtq-broker", args)  another built binary, to its end
 */
#ifndef RTQ_TEST_CLI_ENV_H
#define RTQ_TEST_CLI_ENV_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"
#include "test_cli_run.h"

static rtq_keys2 keys2;
static rtq_conn *rc_;
static char url_env[300];
static const char *env[] = {url_env, "RTQ_NAMESPACE", NULL};

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  rtq_keys2_init(&keys2, "rtq");
  snprintf(url_env, sizeof url_env, "RTQ_REDIS_URL=%s", rtq_test_redis_url());
  rc_ = rtq_test_conn();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rtq_conn_free(rc_);
  return 0;
}

#define RUN(r, ...) cli(r, (const char *const[]){__VA_ARGS__, NULL}, env)
#define START(r, ...) cli_start(r, (const char *const[]){__VA_ARGS__, NULL}, env)

/* Subscribers of a task's waiter channel, the shard channel
 * {ns:default}:w:<id> (tasks of queue default). */
static inline long long task_numsub(const char *id) {
  rtq_key2 ch = rtq_keys2_chan_waiter(&keys2, "default", id);
  redisReply *r = rtq_test_command(rc_, "PUBSUB", "SHARDNUMSUB", ch.s, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

/* Subscribers of queue's event channel, protocol 2's shard channel
 * {ns:Q}:ev: a watch that waits has subscribed. */
static inline long long events_numsub(const char *queue) {
  rtq_key2 ch = rtq_keys2_chan_events(&keys2, queue);
  redisReply *r = rtq_test_command(rc_, "PUBSUB", "SHARDNUMSUB", ch.s, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

/* A task hash field's short name (docs/PROTOCOL.md section 3)
 * from its long one ("status" -> "s"). */
static inline const char *field_name(const char *name) {
  static const char *const map[][2] = {
      {"status", "s"},        {"name", "n"},           {"created_at", "c"},
      {"timeout_ms", "to"},   {"max_retries", "mr"},   {"result_ttl", "rt"},
      {"run_at", "ra"},       {"progress", "p"},       {"progress_message", "pm"},
      {"worker", "w"},        {"error_code", "ec"},    {"error_message", "em"},
      {"error_traceback", "et"}, {"started_at", "b"},       {"completed_at", "e"},
      {"deadline", "dl"},     {"attempt", "a"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i][0], name) == 0) return map[i][1];
  return name;
}

/* A field of task id of queue by its long name; the caller frees it. */
static inline char *cli_task_field(const char *queue, const char *id, const char *field) {
  return rtq_test_cmd_str(rc_, "HGET", rtq_keys2_task(&keys2, queue, id).s, field_name(field), NULL);
}

/* Pending tasks in a queue's list. */
static inline long long queue_len(const char *queue) {
  return rtq_test_cmd_int(rc_, "LLEN", rtq_keys2_queue(&keys2, queue).s, NULL);
}

/* Whether the output so far of a running command holds needle. */
static inline int output_has(const cli_run *r, const char *needle) {
  char *out = cli_peek(r);
  int has = strstr(out, needle) != NULL;
  free(out);
  return has;
}

/* Starts the built binary rel ("worker/rtq-worker") with --redis and args
 * (NULL-terminated); its output goes to log_path. Returns the pid. (asserts) */
static inline pid_t spawn_bin(const char *rel, const char *const *args, const char *log_path) {
  char bin[512];
  assert_non_null(rtq_test_bin_path(rel, bin, sizeof bin));
  const char *argv[CLI_MAX_ARGS + 4];
  int n = 0;
  argv[n++] = bin;
  argv[n++] = "--redis";
  argv[n++] = rtq_test_redis_url();
  for (int i = 0; args[i] != NULL; i++) {
    assert_true(n < CLI_MAX_ARGS + 3);
    argv[n++] = args[i];
  }
  argv[n] = NULL;
  rtq_test_spawn_options o;
  memset(&o, 0, sizeof o);
  o.path = bin;
  o.argv = argv;
  o.env = (const char *const[]){"RTQ_NAMESPACE", NULL};
  o.output_path = log_path;
  pid_t pid = rtq_test_spawn_ex(&o);
  assert_true(pid > 0);
  return pid;
}

/* Runs it to a clean exit within 20 s. (asserts) */
static inline void run_bin(const char *rel, const char *const *args) {
  pid_t pid = spawn_bin(rel, args, "/dev/null");
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 20000, &status), 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail_msg("%s: status 0x%x", rel, status);
}

#endif
