/*
 * test_cli_env.h - the fixture of the test_cli_*.c programs: a flushed
 * default redis-server per test, the rtq key schema, a connection for
 * assertions, and the environment that points the `rtq` binary at that
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
#include "keys.h"
#include "rtq/client.h"
#include "test_cli_run.h"

static rtq_keys keys;
static rtq_conn *rc_;
static char url_env[300];
static const char *env[] = {url_env, "RTQ_NAMESPACE", NULL};

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  rtq_keys_init(&keys, "rtq", false);
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

/* Subscribers of a channel: a command that waits has subscribed. */
static inline long long numsub(const rtq_key *ch) {
  redisReply *r = rtq_test_command(rc_, "PUBSUB", "NUMSUB", ch->s, NULL);
  long long n = r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : -1;
  freeReplyObject(r);
  return n;
}

/* Subscribers of P:chan:task:<id>. */
static inline long long task_numsub(const char *id) {
  rtq_key ch = rtq_keys_chan_task(&keys, id);
  return numsub(&ch);
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
