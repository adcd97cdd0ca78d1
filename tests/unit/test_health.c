/* test_health.c - the liveness file and the health flags (health.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "health.h"
#include "rtq/common.h"

/* A fresh temp dir per test, and the file name inside it. */
typedef struct fixture {
  char dir[64];
  char file[128];
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  if (f == NULL) return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/rtq-health-test.XXXXXX");
  if (mkdtemp(f->dir) == NULL) return -1;
  snprintf(f->file, sizeof f->file, "%s/w.health", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char link[160];
  snprintf(link, sizeof link, "%s/link", f->dir);
  unlink(link);
  unlink(f->file);
  rmdir(f->dir);
  free(f);
  return 0;
}

/* Takes the health flags out of a copy of words; returns take_args' rc. */
static int take(rtq_health_args *h, int *argc, char **argv, const char *const *words, char *err) {
  int n = 0;
  for (; words[n] != NULL; n++) argv[n] = (char *)words[n];
  argv[n] = NULL;
  *argc = n;
  return rtq_health_take_args(h, argc, argv, "/tmp/default.health", err, 256);
}

static void test_health_args_are_taken_out_of_argv(void **state) {
  (void)state;
  unsetenv("RTQ_HEALTH_FILE");
  rtq_health_args h;
  char *argv[16], err[256];
  int argc;
  const char *const words[] = {"rtq-worker", "--health-file", "/x/a", "--queue", "q",
                               "--health", "--max-age=2s", "--", "--health", NULL};
  assert_int_equal(take(&h, &argc, argv, words, err), 0);
  assert_true(h.check);
  assert_string_equal(h.path, "/x/a");
  assert_int_equal(h.max_age_ms, 2000);
  /* What the binary's parser sees: the rest, in order; after "--" untouched. */
  assert_int_equal(argc, 5);
  assert_string_equal(argv[0], "rtq-worker");
  assert_string_equal(argv[1], "--queue");
  assert_string_equal(argv[2], "q");
  assert_string_equal(argv[3], "--");
  assert_string_equal(argv[4], "--health");
  assert_null(argv[5]);
}

static void test_health_args_defaults_and_environment(void **state) {
  (void)state;
  rtq_health_args h;
  char *argv[8], err[256];
  int argc;
  const char *const words[] = {"rtq-broker", "--once", NULL};
  unsetenv("RTQ_HEALTH_FILE");
  assert_int_equal(take(&h, &argc, argv, words, err), 0);
  assert_false(h.check);
  assert_string_equal(h.path, "/tmp/default.health");
  assert_int_equal(h.max_age_ms, RTQ_HEALTH_MAX_AGE_MS);
  assert_int_equal(argc, 2);
  setenv("RTQ_HEALTH_FILE", "/env/b.health", 1);
  assert_int_equal(take(&h, &argc, argv, words, err), 0);
  assert_string_equal(h.path, "/env/b.health");
  const char *const flag[] = {"rtq-broker", "--health-file=/flag.health", NULL};
  assert_int_equal(take(&h, &argc, argv, flag, err), 0); /* the flag wins */
  assert_string_equal(h.path, "/flag.health");
  unsetenv("RTQ_HEALTH_FILE");
}

static void test_health_args_bad_values_are_refused(void **state) {
  (void)state;
  unsetenv("RTQ_HEALTH_FILE");
  rtq_health_args h;
  char *argv[8], err[256];
  int argc;
  const char *const missing[] = {"w", "--health-file", NULL};
  assert_int_equal(take(&h, &argc, argv, missing, err), RTQ_EINVAL);
  assert_string_equal(err, "--health-file needs a path");
  const char *const empty[] = {"w", "--health-file=", NULL};
  assert_int_equal(take(&h, &argc, argv, empty, err), RTQ_EINVAL);
  const char *const bad_age[] = {"w", "--health", "--max-age", "soon", NULL};
  assert_int_equal(take(&h, &argc, argv, bad_age, err), RTQ_EINVAL);
  assert_non_null(strstr(err, "invalid --max-age soon"));
  const char *const zero_age[] = {"w", "--health", "--max-age", "0", NULL};
  assert_int_equal(take(&h, &argc, argv, zero_age, err), RTQ_EINVAL);
  const char *const lone_age[] = {"w", "--max-age", "5s", NULL};
  assert_int_equal(take(&h, &argc, argv, lone_age, err), RTQ_EINVAL);
  assert_string_equal(err, "--max-age is only for --health");
  char long_path[600];
  memset(long_path, 'a', sizeof long_path - 1);
  long_path[sizeof long_path - 1] = '\0';
  const char *const too_long[] = {"w", "--health-file", long_path, NULL};
  assert_int_equal(take(&h, &argc, argv, too_long, err), RTQ_EINVAL);
  /* Another flag that only starts like ours is left for the binary. */
  const char *const other[] = {"w", "--healthy", "--health=1", NULL};
  assert_int_equal(take(&h, &argc, argv, other, err), 0);
  assert_false(h.check);
  assert_int_equal(argc, 3);
}

static void test_health_missing_file_fails(void **state) {
  fixture *f = *state;
  long age;
  assert_int_equal(rtq_health_check(f->file, 1000, &age), RTQ_ENOTFOUND);
}

static void test_health_reset_fails_until_touched(void **state) {
  fixture *f = *state;
  long age;
  char err[256];
  assert_int_equal(rtq_health_reset(f->file, err, sizeof err), 0);
  assert_int_equal(rtq_health_check(f->file, 60000, &age), RTQ_ESTATE);
  assert_int_equal(rtq_health_touch(f->file), 0);
  assert_int_equal(rtq_health_check(f->file, 60000, &age), 0);
  assert_in_range(age, 0, 5000);
  /* A restart resets the file its predecessor kept fresh. */
  assert_int_equal(rtq_health_reset(f->file, err, sizeof err), 0);
  assert_int_equal(rtq_health_check(f->file, 60000, &age), RTQ_ESTATE);
}

static void test_health_old_file_is_stale(void **state) {
  fixture *f = *state;
  long age;
  char err[256];
  assert_int_equal(rtq_health_reset(f->file, err, sizeof err), 0);
  struct timespec t[2];
  clock_gettime(CLOCK_REALTIME, &t[0]);
  t[0].tv_sec -= 20; /* 20 s ago */
  t[1] = t[0];
  assert_int_equal(utimensat(AT_FDCWD, f->file, t, 0), 0);
  assert_int_equal(rtq_health_check(f->file, 15000, &age), RTQ_ETIMEDOUT);
  assert_in_range(age, 19000, 25000);
  assert_int_equal(rtq_health_check(f->file, 30000, &age), 0);
  /* A file touched "in the future" (clock steps) counts as fresh. */
  t[0].tv_sec += 3600;
  t[1] = t[0];
  assert_int_equal(utimensat(AT_FDCWD, f->file, t, 0), 0);
  assert_int_equal(rtq_health_check(f->file, 1000, &age), 0);
  assert_int_equal(age, 0);
}

static void test_health_touch_recreates_a_removed_file(void **state) {
  fixture *f = *state;
  long age;
  char err[256];
  assert_int_equal(rtq_health_reset(f->file, err, sizeof err), 0);
  assert_int_equal(unlink(f->file), 0);
  assert_int_equal(rtq_health_touch(f->file), 0);
  assert_int_equal(rtq_health_check(f->file, 60000, &age), 0);
}

static void test_health_refuses_symlinks_and_bad_dirs(void **state) {
  fixture *f = *state;
  char link[160], err[256];
  snprintf(link, sizeof link, "%s/link", f->dir);
  assert_int_equal(symlink(f->file, link), 0);
  assert_int_equal(rtq_health_reset(link, err, sizeof err), RTQ_EIO);
  assert_non_null(strstr(err, link));
  (void)rtq_health_touch(link);                /* the link's own time at most */
  assert_int_equal(access(f->file, F_OK), -1); /* the target was never created */
  assert_int_equal(rtq_health_reset("/nonexistent-dir/x.health", err, sizeof err), RTQ_EIO);
  assert_non_null(strstr(err, "No such file or directory"));
}

/* The command's exit status and line, through a pipe on stdout. */
static int command_line(const char *path, long max_age_ms, char *line, size_t cap) {
  rtq_health_args h;
  memset(&h, 0, sizeof h);
  snprintf(h.path, sizeof h.path, "%s", path);
  h.max_age_ms = max_age_ms;
  fflush(stdout);
  int saved = dup(STDOUT_FILENO), fds[2];
  if (saved < 0 || pipe(fds) != 0) return -1;
  dup2(fds[1], STDOUT_FILENO);
  close(fds[1]);
  int rc = rtq_health_command("rtq-worker", "heartbeat", &h);
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  ssize_t n = read(fds[0], line, cap - 1);
  close(fds[0]);
  line[n > 0 ? n : 0] = '\0';
  return rc;
}

static void test_health_command_prints_one_line(void **state) {
  fixture *f = *state;
  char line[1024], err[256];
  assert_int_equal(command_line(f->file, 1000, line, sizeof line), 1);
  assert_non_null(strstr(line, "rtq-worker: unhealthy: no health file"));
  assert_int_equal(rtq_health_reset(f->file, err, sizeof err), 0);
  assert_int_equal(command_line(f->file, 1000, line, sizeof line), 1);
  assert_non_null(strstr(line, "unhealthy: no heartbeat yet since the process started"));
  assert_int_equal(rtq_health_touch(f->file), 0);
  assert_int_equal(command_line(f->file, 60000, line, sizeof line), 0);
  assert_non_null(strstr(line, "rtq-worker: healthy: last heartbeat "));
  assert_non_null(strchr(line, '\n'));
  assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1); /* one line */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_health_args_are_taken_out_of_argv),
      cmocka_unit_test(test_health_args_defaults_and_environment),
      cmocka_unit_test(test_health_args_bad_values_are_refused),
      cmocka_unit_test_setup_teardown(test_health_missing_file_fails, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_reset_fails_until_touched, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_old_file_is_stale, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_touch_recreates_a_removed_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_refuses_symlinks_and_bad_dirs, setup, teardown),
      cmocka_unit_test_setup_teardown(test_health_command_prints_one_line, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
