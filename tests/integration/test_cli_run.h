/*
 * test_cli_run.h - running the built `rtq` binary from a test: stdout and
 * stderr captured in separate files, the exit code, a deadline, and
 * helpers to read the output as JSON (jansson).
 *
 * The binary is $RTQ_BIN_DIR/client/rtq. It runs through /bin/sh only to
 * send stderr to its own file (the harness appends both streams to one):
 *   sh -c 'exec "$0" "$@" 2>"$RTQ_TEST_STDERR"' rtq ARGS...
 */
#ifndef RTQ_TEST_CLI_RUN_H
#define RTQ_TEST_CLI_RUN_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define CLI_MAX_ARGS 32

typedef struct cli_run {
  pid_t pid;
  int code;        /* exit code; -1 when it did not exit normally */
  char *out;       /* stdout, NUL-terminated */
  char *err;       /* stderr */
  uint64_t ms;     /* how long it ran */
  char out_path[64];
  char err_path[64];
  uint64_t started;
} cli_run;

static inline char *cli_slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return strdup("");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  size_t got = fread(buf, 1, (size_t)n, f);
  buf[got] = '\0';
  fclose(f);
  return buf;
}

/* Starts rtq with args (NULL-terminated) and extra environment entries
 * (NULL-terminated, may be NULL). Does not wait. (asserts) */
static inline void cli_start(cli_run *r, const char *const *args, const char *const *env) {
  memset(r, 0, sizeof *r);
  char bin[512];
  assert_non_null(rtq_test_bin_path("client/rtq", bin, sizeof bin));
  const char *argv[CLI_MAX_ARGS + 5];
  int n = 0;
  argv[n++] = "sh";
  argv[n++] = "-c";
  argv[n++] = "exec \"$0\" \"$@\" 2>\"$RTQ_TEST_STDERR\"";
  argv[n++] = bin;
  for (int i = 0; args[i] != NULL; i++) {
    assert_true(i < CLI_MAX_ARGS);
    argv[n++] = args[i];
  }
  argv[n] = NULL;
  strcpy(r->out_path, "/tmp/rtq-cli-out-XXXXXX");
  strcpy(r->err_path, "/tmp/rtq-cli-err-XXXXXX");
  int fo = mkstemp(r->out_path), fe = mkstemp(r->err_path);
  assert_true(fo >= 0 && fe >= 0);
  close(fo);
  close(fe);
  char errvar[128];
  snprintf(errvar, sizeof errvar, "RTQ_TEST_STDERR=%s", r->err_path);
  const char *envs[16];
  int m = 0;
  envs[m++] = errvar;
  for (int i = 0; env != NULL && env[i] != NULL; i++) {
    assert_true(m < 15);
    envs[m++] = env[i];
  }
  envs[m] = NULL;
  rtq_test_spawn_options o;
  memset(&o, 0, sizeof o);
  o.path = "/bin/sh";
  o.argv = argv;
  o.env = envs;
  o.output_path = r->out_path;
  r->started = rtq_test_now_ms();
  r->pid = rtq_test_spawn_ex(&o);
  assert_true(r->pid > 0);
}

/* Waits for it to exit (fails the test after timeout_ms) and reads the
 * output. (asserts) */
static inline void cli_finish(cli_run *r, int timeout_ms) {
  int status = 0;
  int rc = rtq_test_wait_exit(r->pid, timeout_ms, &status);
  if (rc != 0) {
    rtq_test_terminate(r->pid, SIGKILL, 1000, NULL);
    fail_msg("rtq did not exit within %d ms", timeout_ms);
  }
  r->ms = rtq_test_now_ms() - r->started;
  r->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r->out = cli_slurp(r->out_path);
  r->err = cli_slurp(r->err_path);
  unlink(r->out_path);
  unlink(r->err_path);
}

static inline void cli_free(cli_run *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

/* Runs to completion (10 s deadline). */
static inline void cli(cli_run *r, const char *const *args, const char *const *env) {
  cli_start(r, args, env);
  cli_finish(r, 10000);
}

/* The output so far of a running command (a fresh copy; caller frees). */
static inline char *cli_peek(const cli_run *r) { return cli_slurp(r->out_path); }

/* stdout parsed as one JSON value (asserts); caller json_decref's. */
static inline json_t *cli_json(const cli_run *r) {
  json_error_t e;
  json_t *v = json_loads(r->out, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
  if (v == NULL) fail_msg("stdout is not JSON (%s): %s", e.text, r->out);
  return v;
}

/* Asserts the usual shape of a failure: code, nothing on stdout, exactly
 * one "rtq: " line on stderr that contains needle. */
static inline void cli_assert_error(const cli_run *r, int code, const char *needle) {
  if (r->code != code) fail_msg("exit %d, wanted %d; stderr: %s", r->code, code, r->err);
  assert_string_equal(r->out, "");
  assert_true(strncmp(r->err, "rtq: ", 5) == 0);
  const char *nl = strchr(r->err, '\n');
  assert_non_null(nl);
  assert_int_equal(nl[1], '\0');
  if (needle != NULL && strstr(r->err, needle) == NULL)
    fail_msg("stderr lacks \"%s\": %s", needle, r->err);
}

/* Text a hostile writer puts in a field: terminal control sequences (a
 * clear, a title, BEL, CR, a C1 CSI) and a byte that is not UTF-8. */
#define CLI_NASTY "\x1b[2J\x1b]0;pwned\x07\rX\xc2\x9b" "31m\xff"

/* No byte of a control sequence left in out: ESC, BEL, CR, C1 CSI. */
static inline void cli_assert_inert(const char *out) {
  assert_null(strchr(out, '\x1b'));
  assert_null(strchr(out, '\x07'));
  assert_null(strchr(out, '\r'));
  assert_null(strstr(out, "\xc2\x9b"));
}

#endif
