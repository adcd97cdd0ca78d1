/*
 * test_health_probe.c - `rtq-worker --health` and `rtq-broker --health`
 * against real processes: they pass while the process heartbeats (or
 * sweeps) through Redis, and fail when it is frozen (SIGSTOP), when Redis
 * is frozen under it, and once it has stopped. The probes are run as a
 * container runtime would: a separate process, exit status 0 or 1.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness/harness.h"
#include "health.h"

/* A short max age, so that each state change shows within a second. */
#define MAX_AGE "600ms"
#define WAIT_MS 10000

typedef struct probe_env {
  char dir[64];
  char file[128];
  char bin[512];
} probe_env;

static void env_init(probe_env *e, const char *binary) {
  snprintf(e->dir, sizeof e->dir, "/tmp/rtq-health-probe.XXXXXX");
  assert_non_null(mkdtemp(e->dir));
  snprintf(e->file, sizeof e->file, "%s/p.health", e->dir);
  assert_non_null(rtq_test_bin_path(binary, e->bin, sizeof e->bin));
}

static void env_destroy(probe_env *e) {
  char log[192];
  snprintf(log, sizeof log, "%s/probe.log", e->dir);
  unlink(log);
  snprintf(log, sizeof log, "%s/process.log", e->dir);
  unlink(log);
  unlink(e->file);
  rmdir(e->dir);
}

/* Runs BIN --health --health-file FILE --max-age MAX_AGE; its exit status. */
static int probe(const probe_env *e) {
  char log[192];
  snprintf(log, sizeof log, "%s/probe.log", e->dir);
  const char *argv[] = {e->bin, "--health", "--health-file", e->file, "--max-age", MAX_AGE, NULL};
  rtq_test_spawn_options so = {.path = e->bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 5000, &status), 0);
  assert_true(WIFEXITED(status));
  return WEXITSTATUS(status);
}

static pid_t start(const probe_env *e, const char *const *extra, const char *url) {
  char log[192];
  snprintf(log, sizeof log, "%s/process.log", e->dir);
  const char *argv[16] = {e->bin, "--redis", url, "--health-file", e->file, "--log-level", "ERROR"};
  int n = 7;
  for (; *extra != NULL && n < 15; extra++) argv[n++] = *extra;
  argv[n] = NULL;
  rtq_test_spawn_options so = {.path = e->bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  return pid;
}

/* The whole life of one process: healthy, frozen, thawed, Redis frozen,
 * Redis back, stopped. */
static void probe_lifecycle(const char *binary, const char *const *extra) {
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  probe_env e;
  env_init(&e, binary);
  assert_int_equal(probe(&e), 1); /* no file yet */
  pid_t pid = start(&e, extra, rtq_test_redis_url_of(r));
  RTQ_TEST_WAIT_FOR(probe(&e) == 0, WAIT_MS);

  assert_int_equal(rtq_test_kill(pid, SIGSTOP), 0);
  RTQ_TEST_WAIT_FOR(probe(&e) == 1, WAIT_MS);
  assert_int_equal(rtq_test_kill(pid, SIGCONT), 0);
  RTQ_TEST_WAIT_FOR(probe(&e) == 0, WAIT_MS);

  /* Alive but cut off from Redis: not healthy either. */
  assert_int_equal(rtq_test_redis_sigstop(r), 0);
  RTQ_TEST_WAIT_FOR(probe(&e) == 1, WAIT_MS);
  assert_int_equal(rtq_test_redis_sigcont(r), 0);
  RTQ_TEST_WAIT_FOR(probe(&e) == 0, WAIT_MS);

  int status = 0;
  assert_int_equal(rtq_test_terminate(pid, SIGTERM, WAIT_MS, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  RTQ_TEST_WAIT_FOR(probe(&e) == 1, WAIT_MS);
  env_destroy(&e);
  rtq_test_redis_stop(r);
}

static void test_health_probe_worker(void **state) {
  (void)state;
  const char *const extra[] = {"--demo-handlers", "--heartbeat-interval", "100ms", "--command-timeout",
                               "300ms", NULL};
  probe_lifecycle("worker/rtq-worker", extra);
}

static void test_health_probe_broker(void **state) {
  (void)state;
  const char *const extra[] = {"--sweep-interval", "100ms", "--command-timeout", "300ms", NULL};
  probe_lifecycle("broker/rtq-broker", extra);
}

/* A standby broker (another holds the lease) is healthy too: it reaches
 * Redis each time it asks for the lease. */
static void test_health_probe_standby_broker(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  probe_env leader, standby;
  env_init(&leader, "broker/rtq-broker");
  env_init(&standby, "broker/rtq-broker");
  const char *const extra[] = {"--sweep-interval", "100ms", NULL};
  pid_t a = start(&leader, extra, rtq_test_redis_url_of(r));
  RTQ_TEST_WAIT_FOR(probe(&leader) == 0, WAIT_MS);
  pid_t b = start(&standby, extra, rtq_test_redis_url_of(r));
  RTQ_TEST_WAIT_FOR(probe(&standby) == 0, WAIT_MS);
  /* It stays healthy while standing by (several max ages). */
  uint64_t until = rtq_test_now_ms() + 2000;
  while (rtq_test_now_ms() < until) assert_int_equal(probe(&standby), 0);
  assert_int_equal(rtq_test_terminate(b, SIGTERM, WAIT_MS, NULL), 0);
  assert_int_equal(rtq_test_terminate(a, SIGTERM, WAIT_MS, NULL), 0);
  env_destroy(&leader);
  env_destroy(&standby);
  rtq_test_redis_stop(r);
}

/* A health file the process cannot create stops it at start, clearly. */
static void test_health_probe_unwritable_file_is_refused(void **state) {
  (void)state;
  char bin[512], log[] = "/tmp/rtq-health-probe-log.XXXXXX";
  int fd = mkstemp(log);
  assert_true(fd >= 0);
  close(fd);
  assert_non_null(rtq_test_bin_path("worker/rtq-worker", bin, sizeof bin));
  const char *argv[] = {bin, "--health-file", "/nonexistent-dir/w.health", NULL};
  rtq_test_spawn_options so = {.path = bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&so);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, WAIT_MS, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 2);
  char text[512] = "";
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  unlink(log);
  assert_non_null(strstr(text, "health file /nonexistent-dir/w.health"));
}

/* The default file, when unusable (another user's, say), only costs the
 * health check: the process runs. */
static void test_health_probe_unusable_default_file_warns(void **state) {
  (void)state;
  char dir[] = "/tmp/rtq-health-probe.XXXXXX", file[64];
  assert_non_null(mkdtemp(dir));
  snprintf(file, sizeof file, "%s/none/w.health", dir);
  rtq_health_args h;
  char *argv[] = {"rtq-worker", NULL};
  int argc = 1;
  setenv("RTQ_HEALTH_FILE", file, 1);
  assert_int_equal(rtq_health_take_args(&h, &argc, argv, "/x", NULL, 0), 0);
  unsetenv("RTQ_HEALTH_FILE");
  const char *path = "unset";
  assert_int_equal(rtq_health_start(&h, "rtq-worker", &path), 2); /* given: refused */
  h.path_given = false;
  assert_int_equal(rtq_health_start(&h, "rtq-worker", &path), 0); /* default: warned */
  assert_null(path);
  snprintf(file, sizeof file, "%s/w.health", dir);
  snprintf(h.path, sizeof h.path, "%s", file);
  assert_int_equal(rtq_health_start(&h, "rtq-worker", &path), 0);
  assert_string_equal(path, file);
  unlink(file);
  rmdir(dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_health_probe_worker),
      cmocka_unit_test(test_health_probe_broker),
      cmocka_unit_test(test_health_probe_standby_broker),
      cmocka_unit_test(test_health_probe_unwritable_file_is_refused),
      cmocka_unit_test(test_health_probe_unusable_default_file_warns),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
