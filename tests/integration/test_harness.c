/*
 * test_harness.c - the test harness itself (tests/harness): every other
 * integration test trusts it to start, restart, stop and clean up servers
 * and processes, so its promises are checked here.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rtq/common.h"

static int path_exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static char *config_get(rtq_conn *c, const char *name) {
  redisReply *r = rtq_test_command(c, "CONFIG", "GET", name, NULL);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 2);
  char *v = strdup(r->element[1]->str);
  freeReplyObject(r);
  return v;
}

static void test_harness_default_server_is_private_and_volatile(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_default();
  assert_ptr_equal(r, rtq_test_redis_default()); /* one per process */
  assert_true(rtq_test_redis_pid(r) > 0);
  assert_true(rtq_test_redis_port(r) > 0);
  assert_int_not_equal(rtq_test_redis_port(r), 6379);
  assert_true(path_exists(rtq_test_redis_dir(r)));
  char want[64];
  snprintf(want, sizeof want, "redis://127.0.0.1:%d/0", rtq_test_redis_port(r));
  assert_string_equal(rtq_test_redis_url(), want);

  rtq_conn *c = rtq_test_conn();
  char *v = config_get(c, "save");
  assert_string_equal(v, "");
  free(v);
  v = config_get(c, "appendonly");
  assert_string_equal(v, "no");
  free(v);
  v = config_get(c, "bind");
  assert_string_equal(v, "127.0.0.1");
  free(v);
  v = config_get(c, "maxmemory-policy");
  assert_string_equal(v, "noeviction");
  free(v);
  v = config_get(c, "dir");
  assert_string_equal(v, rtq_test_redis_dir(r));
  free(v);

  rtq_test_cmd_ok(c, "SET", "harness:k", "v", NULL);
  rtq_test_redis_flush();
  assert_int_equal(rtq_test_cmd_int(c, "DBSIZE", NULL), 0);
  rtq_conn_free(c);
}

static void test_harness_options_reach_the_config(void **state) {
  (void)state;
  const char *extra[] = {"hz 25", "notify-keyspace-events Kx", NULL};
  rtq_test_redis_options o = {.maxmemory = "32mb", .maxmemory_policy = "volatile-lru", .extra_config = extra};
  rtq_test_redis *r = rtq_test_redis_start(&o);
  assert_non_null(r);
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(r));
  char *v = config_get(c, "maxmemory");
  assert_string_equal(v, "33554432");
  free(v);
  v = config_get(c, "maxmemory-policy");
  assert_string_equal(v, "volatile-lru");
  free(v);
  v = config_get(c, "hz");
  assert_string_equal(v, "25");
  free(v);
  v = config_get(c, "notify-keyspace-events");
  assert_non_null(strchr(v, 'x'));
  free(v);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_harness_bad_config_fails_fast(void **state) {
  (void)state;
  /* A config redis-server rejects is not a port collision: no retries, a
   * NULL within a couple of seconds (the reason goes to stderr). */
  const char *extra[] = {"no-such-directive yes", NULL};
  rtq_test_redis_options o = {.extra_config = extra};
  uint64_t t0 = rtq_test_now_ms();
  assert_null(rtq_test_redis_start(&o));
  assert_true(rtq_test_now_ms() - t0 < 2000);
}

static void test_harness_unix_only_server(void **state) {
  (void)state;
  rtq_test_redis_options o = {.unix_only = true};
  rtq_test_redis *r = rtq_test_redis_start(&o);
  assert_non_null(r);
  assert_int_equal(rtq_test_redis_port(r), 0);
  assert_memory_equal(rtq_test_redis_url_of(r), "unix://", 7);
  assert_string_equal(rtq_test_redis_url_of(r), rtq_test_redis_unix_url(r));
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(r));
  char *v = config_get(c, "port");
  assert_string_equal(v, "0");
  free(v);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_harness_stop_removes_process_and_dir(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  pid_t pid = rtq_test_redis_pid(r);
  char dir[256];
  snprintf(dir, sizeof dir, "%s", rtq_test_redis_dir(r));
  assert_true(path_exists(dir));
  rtq_test_redis_stop(r);
  assert_false(path_exists(dir));
  assert_int_equal(kill(pid, 0), -1); /* reaped, so no zombie either */
  assert_int_equal(errno, ESRCH);
  rtq_test_redis_stop(NULL);
}

static bool pings(void *arg) {
  rtq_conn *c = arg;
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "PING");
  int rc = rtq_conn_command(c, &a, NULL);
  rtq_argv_destroy(&a);
  return rc == 0;
}

static void test_harness_appendonly_survives_kill9_and_restart(void **state) {
  (void)state;
  rtq_test_redis_options o = {.appendonly = true};
  rtq_test_redis *r = rtq_test_redis_start(&o);
  assert_non_null(r);
  int port = rtq_test_redis_port(r);
  pid_t old = rtq_test_redis_pid(r);
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(r));
  rtq_test_cmd_ok(c, "SET", "harness:aof", "kept", NULL);

  assert_int_equal(rtq_test_redis_kill9(r), 0);
  assert_int_equal(rtq_test_redis_pid(r), -1);
  assert_int_equal(kill(old, 0), -1);
  assert_int_equal(rtq_test_redis_restart(r), 0);
  assert_int_equal(rtq_test_redis_port(r), port);
  assert_true(rtq_test_redis_pid(r) > 0);
  assert_int_not_equal(rtq_test_redis_pid(r), old);

  RTQ_TEST_WAIT_FOR(pings(c), 5000);
  char *v = rtq_test_cmd_str(c, "GET", "harness:aof", NULL);
  assert_string_equal(v, "kept");
  free(v);
  /* restart also works on a running server. */
  assert_int_equal(rtq_test_redis_restart(r), 0);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_harness_sigstop_and_sigcont(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  rtq_conn_options o = {.url = rtq_test_redis_url_of(r), .command_timeout_ms = 200, .backoff_min_ms = 5,
                        .backoff_max_ms = 20};
  rtq_conn *c = NULL;
  assert_int_equal(rtq_conn_new(&o, &c, NULL, 0), 0);
  assert_int_equal(rtq_test_redis_sigstop(r), 0);
  assert_false(pings(c));
  assert_int_equal(rtq_test_redis_sigcont(r), 0);
  assert_true(rtq_test_wait_until(pings, c, 5000));
  /* Stopping a stopped server at exit must still work. */
  assert_int_equal(rtq_test_redis_sigstop(r), 0);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_harness_spawn_reports_exit_status(void **state) {
  (void)state;
  const char *argv[] = {"sh", "-c", "exit 7", NULL};
  pid_t pid = rtq_test_spawn("sh", argv, NULL);
  assert_true(pid > 1);
  int st = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 5000, &st), 0);
  assert_true(WIFEXITED(st));
  assert_int_equal(WEXITSTATUS(st), 7);
  /* Reaped: a second wait knows it is gone. */
  assert_int_equal(rtq_test_wait_exit(pid, 10, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_test_spawn("/nonexistent/binary", NULL, NULL), -1);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_harness_spawn_env_and_output(void **state) {
  (void)state;
  char out[256];
  snprintf(out, sizeof out, "%s/spawn.out", rtq_test_redis_dir(rtq_test_redis_default()));
  setenv("RTQ_HARNESS_DROP", "present", 1);
  setenv("RTQ_HARNESS_KEEP", "kept", 1);
  const char *argv[] = {"sh", "-c", "echo \"$RTQ_HARNESS_SET ${RTQ_HARNESS_DROP-unset} $RTQ_HARNESS_KEEP\"; echo err >&2",
                        NULL};
  const char *env[] = {"RTQ_HARNESS_SET=hello world", "RTQ_HARNESS_DROP", NULL};
  rtq_test_spawn_options o = {.path = "sh", .argv = argv, .env = env, .output_path = out};
  pid_t pid = rtq_test_spawn_ex(&o);
  assert_true(pid > 1);
  int st = -1;
  assert_int_equal(rtq_test_wait_exit(pid, 5000, &st), 0);
  assert_int_equal(st, 0);
  assert_string_equal(slurp(out), "hello world unset kept\nerr\n");
  unsetenv("RTQ_HARNESS_DROP");
  unsetenv("RTQ_HARNESS_KEEP");
}

static void test_harness_wait_exit_has_a_deadline(void **state) {
  (void)state;
  const char *argv[] = {"sleep", "30", NULL};
  pid_t pid = rtq_test_spawn("sleep", argv, NULL);
  assert_true(pid > 1);
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_test_wait_exit(pid, 100, NULL), RTQ_ETIMEDOUT);
  assert_in_range(rtq_test_now_ms() - t0, 100, 2000);
  int st = 0;
  assert_int_equal(rtq_test_terminate(pid, SIGTERM, 5000, &st), 0);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGTERM);
}

/* True once pid runs "sleep" with SIGTERM ignored (read from /proc), so
 * the test never races the shell's trap. */
static bool ignores_term(void *arg) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)(intptr_t)arg);
  FILE *f = fopen(path, "r");
  if (f == NULL) return false;
  bool is_sleep = false, ign = false;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "Name:", 5) == 0) is_sleep = strstr(line, "sleep") != NULL;
    if (strncmp(line, "SigIgn:", 7) == 0) ign = (strtoull(line + 7, NULL, 16) >> (SIGTERM - 1)) & 1u;
  }
  fclose(f);
  return is_sleep && ign;
}

static void test_harness_terminate_escalates_to_sigkill(void **state) {
  (void)state;
  const char *argv[] = {"sh", "-c", "trap '' TERM; exec sleep 30", NULL};
  pid_t pid = rtq_test_spawn("sh", argv, NULL);
  assert_true(pid > 1);
  assert_true(rtq_test_wait_until(ignores_term, (void *)(intptr_t)pid, 5000));
  int st = 0;
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_test_terminate(pid, SIGTERM, 200, &st), RTQ_ETIMEDOUT);
  assert_in_range(rtq_test_now_ms() - t0, 200, 3000);
  assert_true(WIFSIGNALED(st));
  assert_int_equal(WTERMSIG(st), SIGKILL);
}

static void test_harness_kill_refuses_group_pids(void **state) {
  (void)state;
  assert_int_equal(rtq_test_kill(0, 0), RTQ_EINVAL);
  assert_int_equal(rtq_test_kill(-1, 0), RTQ_EINVAL);
  assert_int_equal(rtq_test_kill(1, 0), RTQ_EINVAL);
  assert_int_equal(rtq_test_terminate(-1, SIGTERM, 10, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_test_wait_exit(0, 10, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_test_kill(getpid(), 0), 0);
}

/* State in a /proc/<pid>/stat line, or 0 when the process is gone. */
static char proc_state(pid_t pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL) return 0;
  char buf[512];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *rp = strrchr(buf, ')');
  return rp != NULL && rp[1] == ' ' ? rp[2] : 0;
}

static bool dead(void *arg) {
  char s = proc_state((pid_t)(intptr_t)arg);
  return s == 0 || s == 'Z' || s == 'X';
}

static void test_harness_children_die_with_their_parent(void **state) {
  (void)state;
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t mid = fork();
  assert_true(mid >= 0);
  if (mid == 0) {
    /* An intermediate "test process" that spawns and then dies at once,
     * as a crashed test would. */
    const char *argv[] = {"sleep", "30", NULL};
    pid_t p = rtq_test_spawn("sleep", argv, NULL);
    ssize_t w = write(fds[1], &p, sizeof p);
    _exit(w == (ssize_t)sizeof p ? 0 : 1);
  }
  close(fds[1]);
  pid_t grandchild = -1;
  assert_int_equal(read(fds[0], &grandchild, sizeof grandchild), (ssize_t)sizeof grandchild);
  close(fds[0]);
  int st;
  assert_int_equal(waitpid(mid, &st, 0), mid);
  assert_true(grandchild > 1);
  assert_true(rtq_test_wait_until(dead, (void *)(intptr_t)grandchild, 5000));
}

static int counter;
static bool third_call(void *arg) {
  (void)arg;
  return ++counter >= 3;
}
static bool never(void *arg) {
  (void)arg;
  counter++;
  return false;
}

static void test_harness_wait_until_polls_to_a_deadline(void **state) {
  (void)state;
  counter = 0;
  assert_true(rtq_test_wait_until(third_call, NULL, 5000));
  assert_int_equal(counter, 3);
  counter = 0;
  uint64_t t0 = rtq_test_now_ms();
  assert_false(rtq_test_wait_until(never, NULL, 100));
  uint64_t took = rtq_test_now_ms() - t0;
  assert_in_range(took, 100, 1000);
  assert_true(counter >= 5); /* it polled, not slept through */
  counter = 0;
  RTQ_TEST_WAIT_FOR(third_call(NULL), 1000);
  assert_int_equal(counter, 3);
}

static void test_harness_bin_path(void **state) {
  (void)state;
  char buf[64];
  const char *saved = getenv("RTQ_BIN_DIR");
  char *copy = saved ? strdup(saved) : NULL;
  setenv("RTQ_BIN_DIR", "/build", 1);
  assert_string_equal(rtq_test_bin_path("worker/rtq-worker", buf, sizeof buf), "/build/worker/rtq-worker");
  assert_null(rtq_test_bin_path("worker/rtq-worker", buf, 8));
  unsetenv("RTQ_BIN_DIR");
  assert_null(rtq_test_bin_path("x", buf, sizeof buf));
  if (copy != NULL) setenv("RTQ_BIN_DIR", copy, 1);
  free(copy);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_harness_default_server_is_private_and_volatile),
      cmocka_unit_test(test_harness_options_reach_the_config),
      cmocka_unit_test(test_harness_bad_config_fails_fast),
      cmocka_unit_test(test_harness_unix_only_server),
      cmocka_unit_test(test_harness_stop_removes_process_and_dir),
      cmocka_unit_test(test_harness_appendonly_survives_kill9_and_restart),
      cmocka_unit_test(test_harness_sigstop_and_sigcont),
      cmocka_unit_test(test_harness_spawn_reports_exit_status),
      cmocka_unit_test(test_harness_spawn_env_and_output),
      cmocka_unit_test(test_harness_wait_exit_has_a_deadline),
      cmocka_unit_test(test_harness_terminate_escalates_to_sigkill),
      cmocka_unit_test(test_harness_kill_refuses_group_pids),
      cmocka_unit_test(test_harness_children_die_with_their_parent),
      cmocka_unit_test(test_harness_wait_until_polls_to_a_deadline),
      cmocka_unit_test(test_harness_bin_path),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
