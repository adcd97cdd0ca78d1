/*
 * test_settings.c - the README's settings table is what the binaries do.
 *
 * The test reads the table in README.md ("## Configuration") and, for
 * each of rtq-worker, rtq-broker and rtq, checks with --print-config that
 * every flag the table lists for that binary is accepted and sets its
 * setting, that the RTQ_<NAME> variable is read, and that a binary whose
 * cell is a dash refuses the setting's flag (exit 2). The table and the
 * binaries therefore cannot drift apart (--print-config exits before
 * connecting). A row marked "(deprecated)" lists flags that are accepted
 * with one warning line and change nothing that --print-config shows, and
 * no variable. Last, a password given in --redis does not stay visible in
 * /proc/<pid>/cmdline of a running worker, broker, rtq or rtq-web, and one in a
 * --redis-url-file (RTQ_REDIS_URL_FILE) shows in neither the process's
 * cmdline, its environment nor any error. The protocol setting takes 2
 * only: every binary, rtq-web and rtq-bench included, refuses 1 (flag or
 * variable) with exit 2 and says so, and refuses a namespace that holds
 * protocol 1's data.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "keys2.h"

#define MAX_ROWS 32
#define MAX_FLAGS 8

enum { WORKER, BROKER, CLI, NBINS };
static const char *const bin_rel[NBINS] = {"worker/rtq-worker", "broker/rtq-broker", "client/rtq"};

typedef struct row {
  bool deprecated; /* "NAME (deprecated)": accepted with a warning, ignored */
  char setting[64];
  char env[64];
  char flags[NBINS][MAX_FLAGS][64];
  int nflags[NBINS];
} row;

static row rows[MAX_ROWS];
static int nrows;

/* A file holding a URL, for redis_url_file (written by setup_group). */
static char url_file[256];

/* A value to give each setting and how --print-config shows it back. */
static const struct sample {
  const char *setting, *given, *shown;
} samples[] = {
    {"max_concurrent_tasks", "7", "7"},
    {"default_timeout", "42", "42"},
    {"task_result_ttl", "99", "99"},
    {"enable_task_history", "false", "false"},
    {"log_level", "debug", "DEBUG"},
    {"cleanup_interval", "77", "77"},
    {"max_task_history", "55", "55"},
    {"redis_url", "redis://127.0.0.1:1/3", "redis://127.0.0.1:1/3"},
    {"redis_url_file", url_file, url_file},
    {"namespace", "ns-test", "ns-test"},
    {"wait_replicas", "2", "2"},
    {"wait_timeout", "250", "250"},
    {"protocol", "2", "2"},
};
#define NSAMPLES (sizeof samples / sizeof samples[0])

static const struct sample *sample_of(const char *setting) {
  for (size_t i = 0; i < NSAMPLES; i++)
    if (strcmp(samples[i].setting, setting) == 0) return &samples[i];
  return NULL;
}

/* Copies each `...` span of cell that starts with prefix into out. */
static int backticked(const char *cell, const char *prefix, char out[][64], int max) {
  int n = 0;
  const char *p = cell;
  while (n < max && (p = strchr(p, '`')) != NULL) {
    const char *end = strchr(p + 1, '`');
    if (end == NULL) break;
    size_t len = (size_t)(end - p - 1);
    if (len < 64 && strncmp(p + 1, prefix, strlen(prefix)) == 0) {
      memcpy(out[n], p + 1, len);
      out[n][len] = '\0';
      n++;
    }
    p = end + 1;
  }
  return n;
}

static void trim(char *s) {
  size_t n = strlen(s);
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n')) s[--n] = '\0';
  size_t i = 0;
  while (s[i] == ' ') i++;
  memmove(s, s + i, strlen(s + i) + 1);
}

static void read_table(void) {
  const char *src = getenv("RTQ_SOURCE_DIR");
  assert_non_null(src);
  char path[1024], line[2048];
  snprintf(path, sizeof path, "%s/README.md", src);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  int in_table = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (!in_table) {
      in_table = strncmp(line, "| setting | default | environment | rtq-worker | rtq-broker | rtq |", 67) == 0;
      continue;
    }
    if (line[0] != '|') break;
    if (strncmp(line, "|---", 4) == 0) continue;
    assert_true(nrows < MAX_ROWS);
    row *r = &rows[nrows++];
    memset(r, 0, sizeof *r);
    char *cells[8] = {0};
    int ncells = 0;
    for (char *p = line; *p != '\0' && ncells < 8; p++) {
      if (*p != '|') continue;
      *p = '\0';
      cells[ncells++] = p + 1;
    }
    assert_true(ncells >= 7);
    trim(cells[0]);
    char *mark = strstr(cells[0], " (deprecated)");
    r->deprecated = mark != NULL;
    if (mark != NULL) *mark = '\0';
    snprintf(r->setting, sizeof r->setting, "%s", cells[0]);
    char env[1][64];
    /* A deprecated setting has no variable. */
    assert_int_equal(backticked(cells[2], "RTQ_", env, 1), r->deprecated ? 0 : 1);
    if (!r->deprecated) snprintf(r->env, sizeof r->env, "%s", env[0]);
    for (int b = 0; b < NBINS; b++) r->nflags[b] = backticked(cells[3 + b], "--", r->flags[b], MAX_FLAGS);
  }
  fclose(f);
  assert_true(in_table);
}

/* Runs the built binary rel ("client/rtq") with args (and env, may be
 * NULL) to its end (10 s); returns its exit status, its output in out. */
static int run_rel(const char *rel, const char *const *args, const char *const *env, char *out, size_t cap) {
  char path[1024], log[1024];
  assert_non_null(rtq_test_bin_path(rel, path, sizeof path));
  snprintf(log, sizeof log, "%s/settings-%d.out", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  unlink(log);
  const char *argv[8] = {path};
  int n = 1;
  for (int i = 0; args[i] != NULL && n < 7; i++) argv[n++] = args[i];
  argv[n] = NULL;
  rtq_test_spawn_options so = {.path = path, .argv = argv, .env = env, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&so);
  assert_true(pid > 0);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &status), 0);
  out[0] = '\0';
  FILE *f = fopen(log, "r");
  if (f != NULL) {
    size_t got = fread(out, 1, cap - 1, f);
    out[got] = '\0';
    fclose(f);
  }
  unlink(log);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run(int bin, const char *const *args, const char *const *env, char *out, size_t cap) {
  return run_rel(bin_rel[bin], args, env, out, cap);
}

static void expect_shown(int bin, const char *how, const char *out, const struct sample *s) {
  char want[256];
  snprintf(want, sizeof want, "%s=%s\n", s->setting, s->shown);
  if (strstr(out, want) == NULL)
    fail_msg("%s %s: --print-config does not show %s; it printed:\n%s", bin_rel[bin], how, want, out);
}

/* Environment for one variable, every other RTQ_ setting unset. */
static void env_with(const char **env, const char *var_eq) {
  int n = 0;
  for (size_t i = 0; i < NSAMPLES; i++) {
    static char names[NSAMPLES][64];
    snprintf(names[i], sizeof names[i], "RTQ_");
    for (size_t k = 0; samples[i].setting[k] != '\0' && k < 58; k++) {
      char c = samples[i].setting[k];
      names[i][4 + k] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
      names[i][5 + k] = '\0';
    }
    env[n++] = names[i];
  }
  env[n++] = var_eq;
  env[n] = NULL;
}

static void test_settings_table_lists_every_setting(void **state) {
  (void)state;
  int live = 0;
  for (int i = 0; i < nrows; i++) live += !rows[i].deprecated;
  assert_int_equal(live, (int)NSAMPLES);
  for (int i = 0; i < nrows; i++) {
    if (rows[i].deprecated) continue;
    if (sample_of(rows[i].setting) == NULL) fail_msg("README lists an unknown setting %s", rows[i].setting);
    char env[80];
    snprintf(env, sizeof env, "RTQ_%.60s", rows[i].setting);
    for (char *p = env; *p; p++)
      if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32);
    assert_string_equal(rows[i].env, env);
  }
}

static void test_settings_every_listed_flag_is_accepted(void **state) {
  (void)state;
  char out[8192];
  int checked = 0;
  for (int i = 0; i < nrows; i++) {
    if (rows[i].deprecated) continue;
    const struct sample *s = sample_of(rows[i].setting);
    for (int b = 0; b < NBINS; b++) {
      for (int k = 0; k < rows[i].nflags[b]; k++) {
        const char *flag = rows[i].flags[b][k];
        /* --no-history is the one switch: enable_task_history false. */
        bool sw = strncmp(flag, "--no-", 5) == 0;
        const char *args[] = {"--print-config", flag, sw ? NULL : s->given, NULL};
        int rc = run(b, args, NULL, out, sizeof out);
        if (rc != 0) fail_msg("%s refuses %s (exit %d):\n%s", bin_rel[b], flag, rc, out);
        expect_shown(b, flag, out, s);
        checked++;
      }
    }
  }
  printf("%d flags checked\n", checked);
  assert_true(checked >= 30);
}

static void test_settings_every_variable_is_read(void **state) {
  (void)state;
  char out[8192], var_eq[256];
  const char *env[NSAMPLES + 2];
  for (int i = 0; i < nrows; i++) {
    if (rows[i].deprecated) continue;
    const struct sample *s = sample_of(rows[i].setting);
    snprintf(var_eq, sizeof var_eq, "%s=%s", rows[i].env, s->given);
    env_with(env, var_eq);
    for (int b = 0; b < NBINS; b++) {
      if (rows[i].nflags[b] == 0) continue;
      const char *args[] = {"--print-config", NULL};
      int rc = run(b, args, env, out, sizeof out);
      if (rc != 0) fail_msg("%s with %s: exit %d:\n%s", bin_rel[b], var_eq, rc, out);
      expect_shown(b, rows[i].env, out, s);
    }
  }
}

/* A dash in the table: the binary refuses the setting's flag. */
static void test_settings_unlisted_flags_are_refused(void **state) {
  (void)state;
  char out[8192], flag[80];
  for (int i = 0; i < nrows; i++) {
    snprintf(flag, sizeof flag, "--%.60s", rows[i].setting);
    for (char *p = flag + 2; *p; p++)
      if (*p == '_') *p = '-';
    for (int b = 0; b < NBINS; b++) {
      if (rows[i].nflags[b] != 0) continue;
      /* A deprecated setting's flag is a switch. */
      const char *args[] = {"--print-config", flag, rows[i].deprecated ? NULL : sample_of(rows[i].setting)->given,
                            NULL};
      int rc = run(b, args, NULL, out, sizeof out);
      if (rc != 2) fail_msg("%s %s: exit %d, expected 2 (the table says it does not apply):\n%s", bin_rel[b],
                            flag, rc, out);
    }
  }
}

/* A deprecated flag: accepted, one warning line that says so, and the
 * settings --print-config shows are those of the same command without it
 * (existing command lines keep working and mean what they meant). */
static void test_settings_deprecated_flags_warn_and_change_nothing(void **state) {
  (void)state;
  char plain[8192], out[8192];
  int checked = 0;
  for (int i = 0; i < nrows; i++) {
    if (!rows[i].deprecated) continue;
    for (int b = 0; b < NBINS; b++) {
      for (int k = 0; k < rows[i].nflags[b]; k++) {
        const char *flag = rows[i].flags[b][k];
        const char *bare[] = {"--print-config", NULL}, *with[] = {"--print-config", flag, NULL};
        assert_int_equal(run(b, bare, NULL, plain, sizeof plain), 0);
        int rc = run(b, with, NULL, out, sizeof out);
        if (rc != 0) fail_msg("%s refuses deprecated %s (exit %d):\n%s", bin_rel[b], flag, rc, out);
        char *warn = strstr(out, "deprecated");
        if (warn == NULL) fail_msg("%s %s: no deprecation warning:\n%s", bin_rel[b], flag, out);
        assert_null(strstr(warn + 1, "deprecated"));
        /* Cut the warning's line out: the rest is the plain output. */
        char *from = warn;
        while (from > out && from[-1] != '\n') from--;
        char *to = strchr(warn, '\n');
        assert_non_null(to);
        assert_non_null(strstr(from, flag));
        memmove(from, to + 1, strlen(to + 1) + 1);
        assert_string_equal(out, plain);
        checked++;
      }
    }
  }
  assert_true(checked >= 1);
}

/* The password of a URL never shows in --print-config. */
static void test_settings_print_config_hides_the_password(void **state) {
  (void)state;
  char out[8192];
  for (int b = 0; b < NBINS; b++) {
    const char *args[] = {"--print-config", "--redis", "redis://app:s3cret-pw@127.0.0.1:1/0", NULL};
    assert_int_equal(run(b, args, NULL, out, sizeof out), 0);
    assert_null(strstr(out, "s3cret-pw"));
    assert_non_null(strstr(out, "redis_url=redis://app:***@127.0.0.1:1/0\n"));
  }
}

/* /proc/<pid>/cmdline, its NULs shown as spaces. */
static void cmdline_of(pid_t pid, char *out, size_t cap) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL) return;
  size_t n = fread(out, 1, cap - 1, f);
  fclose(f);
  for (size_t i = 0; i < n; i++)
    if (out[i] == '\0') out[i] = ' ';
  out[n] = '\0';
}

static bool cmdline_shows(pid_t pid, const char *needle) {
  char line[4096];
  cmdline_of(pid, line, sizeof line);
  return strstr(line, needle) != NULL;
}

static bool file_has(const char *path, const char *needle) {
  char buf[8192];
  FILE *f = fopen(path, "r");
  size_t got = f != NULL ? fread(buf, 1, sizeof buf - 1, f) : 0;
  if (f != NULL) fclose(f);
  buf[got] = '\0';
  return strstr(buf, needle) != NULL;
}

/* The key that shows each binary at work: the workers set, the broker's
 * lease, queue "nobody". Static storage, one per kind. */
enum { KEY_WORKERS, KEY_LEASE, KEY_NOBODY };
static const char *work_key(int which) {
  static char keys_[3][RTQ_KEY2_CAP];
  rtq_keys2 k2;
  rtq_keys2_init(&k2, "rtq");
  const char *s = which == KEY_WORKERS ? rtq_keys2_workers(&k2).s
                  : which == KEY_LEASE ? rtq_keys2_lease(&k2).s
                                       : rtq_keys2_queue(&k2, "nobody").s;
  snprintf(keys_[which], sizeof keys_[which], "%s", s);
  return keys_[which];
}

/* Starts bin with args; once `cmd key` answers 1 (the process is at
 * work), asserts its cmdline shows `shown` and not the password. */
static pid_t run_hiding(int bin, const char *const *args, rtq_conn *c, const char *cmd, const char *key,
                        const char *shown) {
  char path[1024];
  assert_non_null(rtq_test_bin_path(bin_rel[bin], path, sizeof path));
  const char *argv[16] = {path};
  int n = 1;
  for (int i = 0; args[i] != NULL && n < 15; i++) argv[n++] = args[i];
  argv[n] = NULL;
  pid_t pid = rtq_test_spawn_ex(&(rtq_test_spawn_options){.path = path, .argv = argv});
  assert_true(pid > 0);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(c, cmd, key, NULL) == 1, 10000);
  assert_false(cmdline_shows(pid, "Sup3rSecretPw"));
  assert_true(cmdline_shows(pid, shown));
  return pid;
}

/* Each binary, running against Redis with a password in its --redis URL
 * (the default user has none, so any password is accepted): once it has
 * read its flags, /proc/<pid>/cmdline shows '*' in its place, while it
 * keeps working with the real one. */
static void test_settings_password_hidden_from_cmdline(void **state) {
  (void)state;
  const char *base = rtq_test_redis_url(); /* redis://127.0.0.1:PORT/0 */
  char url[256], inline_url[300];
  snprintf(url, sizeof url, "redis://default:Sup3rSecretPw@%s", base + strlen("redis://"));
  snprintf(inline_url, sizeof inline_url, "--redis=%s", url);
  rtq_conn *c = rtq_test_conn();
  rtq_test_redis_flush();

  /* rtq-worker, the URL as a separate word; registered means connected. */
  const char *wargs[] = {"--redis", url, "--demo-handlers", NULL};
  pid_t w = run_hiding(WORKER, wargs, c, "ZCARD", work_key(KEY_WORKERS), "redis://default:*************@127.0.0.1:");
  /* rtq-broker, the URL inline; holding the lease means connected. */
  const char *bargs[] = {inline_url, NULL};
  pid_t b = run_hiding(BROKER, bargs, c, "EXISTS", work_key(KEY_LEASE),
                       "--redis=redis://default:*************@127.0.0.1:");
  /* rtq, waiting on a task that stays pending (no worker serves "nobody"). */
  const char *eargs[] = {"--redis", url, "enqueue", "rtq.noop", "--queue", "nobody", "--wait=30", NULL};
  pid_t r = run_hiding(CLI, eargs, c, "LLEN", work_key(KEY_NOBODY),
                       "redis://default:*************@127.0.0.1:");

  /* rtq-web; listening means it has read its flags and connected. */
  char web[1024], log[400];
  assert_non_null(rtq_test_bin_path("web/rtq-web", web, sizeof web));
  snprintf(log, sizeof log, "%s/settings-web-run-%d.out", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
           (int)getpid());
  unlink(log);
  const char *webargv[] = {web, "--listen", "127.0.0.1:0", "--redis", url, NULL};
  pid_t h = rtq_test_spawn_ex(&(rtq_test_spawn_options){.path = web, .argv = webargv, .output_path = log});
  assert_true(h > 0);
  RTQ_TEST_WAIT_FOR(file_has(log, "listening"), 10000);
  assert_false(cmdline_shows(h, "Sup3rSecretPw"));
  assert_true(cmdline_shows(h, "redis://default:*************@127.0.0.1:"));
  unlink(log);

  int st = 0;
  assert_int_equal(rtq_test_terminate(h, SIGTERM, 10000, &st), 0);
  assert_int_equal(rtq_test_terminate(r, SIGTERM, 10000, &st), 0);
  assert_int_equal(rtq_test_terminate(b, SIGTERM, 10000, &st), 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 10000, &st), 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  rtq_conn_free(c);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  unlink(path);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
}

static const char *tmpdir(void) { return getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp"; }

/* The URL read from the file is the one used: --print-config shows it
 * (password masked) next to the path. */
static void test_settings_url_file_sets_the_url(void **state) {
  (void)state;
  char out[8192], path[300];
  snprintf(path, sizeof path, "%s/settings-url-pw-%d", tmpdir(), (int)getpid());
  write_file(path, "redis://app:F1leSecret@127.0.0.1:2/5\r\n", 0600);
  for (int b = 0; b < NBINS; b++) {
    const char *args[] = {"--print-config", "--redis-url-file", path, NULL};
    int rc = run(b, args, NULL, out, sizeof out);
    if (rc != 0) fail_msg("%s --redis-url-file: exit %d\n%s", bin_rel[b], rc, out);
    assert_non_null(strstr(out, "redis_url=redis://app:***@127.0.0.1:2/5\n"));
    assert_null(strstr(out, "F1leSecret"));
    assert_null(strstr(out, "warning"));
  }
  unlink(path);
}

/* A missing file, a file with a bad URL, an empty one: exit 2 with the
 * path and the reason, never the content; a file others may read works,
 * with a warning. Each binary, rtq-web included. */
static void test_settings_url_file_errors_never_show_the_content(void **state) {
  (void)state;
  char out[8192], missing[300], bad[300], empty[300], open_[300];
  snprintf(missing, sizeof missing, "%s/settings-no-such-file-%d", tmpdir(), (int)getpid());
  snprintf(bad, sizeof bad, "%s/settings-bad-url-%d", tmpdir(), (int)getpid());
  snprintf(empty, sizeof empty, "%s/settings-empty-url-%d", tmpdir(), (int)getpid());
  snprintf(open_, sizeof open_, "%s/settings-open-url-%d", tmpdir(), (int)getpid());
  unlink(missing);
  write_file(bad, "redis://u:Se/cretPw@h\n", 0600);
  write_file(empty, "\n", 0600);
  write_file(open_, "redis://u:OpenPw@127.0.0.1:2/0\n", 0644);
  for (int b = 0; b < NBINS; b++) {
    const char *a1[] = {"--print-config", "--redis-url-file", missing, NULL};
    assert_int_equal(run(b, a1, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, missing));
    assert_non_null(strstr(out, "No such file"));
    const char *a2[] = {"--print-config", "--redis-url-file", bad, NULL};
    assert_int_equal(run(b, a2, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, bad));
    assert_null(strstr(out, "cretPw"));
    const char *a3[] = {"--print-config", "--redis-url-file", empty, NULL};
    assert_int_equal(run(b, a3, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "is empty"));
    /* The variable, with the same errors. */
    char var[400];
    snprintf(var, sizeof var, "RTQ_REDIS_URL_FILE=%s", bad);
    const char *env[NSAMPLES + 2];
    env_with(env, var);
    const char *a4[] = {"--print-config", NULL};
    assert_int_equal(run(b, a4, env, out, sizeof out), 2);
    assert_non_null(strstr(out, "RTQ_REDIS_URL_FILE"));
    assert_null(strstr(out, "cretPw"));
    const char *a5[] = {"--print-config", "--redis-url-file", open_, NULL};
    assert_int_equal(run(b, a5, NULL, out, sizeof out), 0);
    assert_non_null(strstr(out, "readable or writable by other users"));
    assert_null(strstr(out, "OpenPw"));
  }
  /* rtq-web reads it through the client library. */
  char web[1024];
  assert_non_null(rtq_test_bin_path("web/rtq-web", web, sizeof web));
  const char *wargv[] = {web, "--listen", "127.0.0.1:0", "--redis-url-file", bad, NULL};
  char log[400];
  snprintf(log, sizeof log, "%s/settings-web-%d.out", tmpdir(), (int)getpid());
  pid_t pid = rtq_test_spawn_ex(&(rtq_test_spawn_options){.path = web, .argv = wargv, .output_path = log});
  int st = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &st), 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
  FILE *f = fopen(log, "r");
  assert_non_null(f);
  size_t got = fread(out, 1, sizeof out - 1, f);
  out[got] = '\0';
  fclose(f);
  assert_non_null(strstr(out, bad));
  assert_null(strstr(out, "cretPw"));
  unlink(log);
  unlink(bad);
  unlink(empty);
  unlink(open_);
}

/* Each binary runs against Redis with the URL, password included, from a
 * file (the flag, or RTQ_REDIS_URL_FILE for the broker): it works, and
 * the password is in neither its cmdline nor its environment. */
static void test_settings_url_file_keeps_the_password_out_of_proc(void **state) {
  (void)state;
  const char *base = rtq_test_redis_url();
  char url[256], path[300], var[400];
  snprintf(url, sizeof url, "redis://default:Sup3rSecretPw@%s\n", base + strlen("redis://"));
  snprintf(path, sizeof path, "%s/settings-url-run-%d", tmpdir(), (int)getpid());
  write_file(path, url, 0600);
  snprintf(var, sizeof var, "RTQ_REDIS_URL_FILE=%s", path);
  rtq_conn *c = rtq_test_conn();
  rtq_test_redis_flush();

  const char *wargs[] = {"--redis-url-file", path, "--demo-handlers", NULL};
  pid_t w = run_hiding(WORKER, wargs, c, "ZCARD", work_key(KEY_WORKERS), "--redis-url-file");
  char bin[1024];
  assert_non_null(rtq_test_bin_path(bin_rel[BROKER], bin, sizeof bin));
  const char *bargv[] = {bin, NULL};
  const char *benv[] = {var, NULL};
  pid_t b = rtq_test_spawn_ex(&(rtq_test_spawn_options){.path = bin, .argv = bargv, .env = benv});
  assert_true(b > 0);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(c, "EXISTS", work_key(KEY_LEASE), NULL) == 1, 10000);
  const char *eargs[] = {"--redis-url-file", path, "enqueue", "rtq.noop", "--queue", "nobody", "--wait=30", NULL};
  pid_t r = run_hiding(CLI, eargs, c, "LLEN", work_key(KEY_NOBODY), "--redis-url-file");
  pid_t all[] = {w, b, r};
  for (int i = 0; i < 3; i++) {
    char p[64], env[8192];
    snprintf(p, sizeof p, "/proc/%d/environ", (int)all[i]);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    size_t n = fread(env, 1, sizeof env - 1, f);
    fclose(f);
    for (size_t j = 0; j < n; j++)
      if (env[j] == '\0') env[j] = ' ';
    env[n] = '\0';
    assert_null(strstr(env, "Sup3rSecretPw"));
    assert_false(cmdline_shows(all[i], "Sup3rSecretPw"));
  }
  int st = 0;
  assert_int_equal(rtq_test_terminate(r, SIGTERM, 10000, &st), 0);
  assert_int_equal(rtq_test_terminate(b, SIGTERM, 10000, &st), 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(rtq_test_terminate(w, SIGTERM, 10000, &st), 0);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  rtq_conn_free(c);
  unlink(path);
}

/* The binaries, each with arguments that would set it to work on the test
 * server: rtq, rtq-worker, rtq-broker, rtq-web and rtq-bench. */
static const struct proto_bin {
  const char *rel;
  const char *args[4];
} proto_bins[] = {
    {"client/rtq", {"list", NULL}},
    {"worker/rtq-worker", {"--demo-handlers", NULL}},
    {"broker/rtq-broker", {"--once", NULL}},
    {"web/rtq-web", {"--listen", "127.0.0.1:0", NULL}},
    {"bench/rtq-bench", {"--smoke", NULL}},
};
#define NPROTO_BINS (sizeof proto_bins / sizeof proto_bins[0])

/* proto_bins[i] with --redis (the test server), then extra, then its
 * own arguments, NULL-terminated in argv (8 entries). */
static void proto_argv(size_t i, const char *extra, const char *extra_value, const char **argv) {
  int n = 0;
  argv[n++] = "--redis";
  argv[n++] = rtq_test_redis_url();
  if (extra != NULL) {
    argv[n++] = extra;
    argv[n++] = extra_value;
  }
  for (int k = 0; proto_bins[i].args[k] != NULL; k++) argv[n++] = proto_bins[i].args[k];
  argv[n] = NULL;
}

/* Protocol 1 is gone: --protocol 1 and RTQ_PROTOCOL=1 stop every binary
 * before it connects (exit 2), saying so, and nothing is written. */
static void test_settings_protocol_1_is_refused(void **state) {
  (void)state;
  char out[8192];
  rtq_conn *c = rtq_test_conn();
  rtq_test_redis_flush();
  const char *env1[] = {"RTQ_PROTOCOL=1", NULL};
  for (size_t i = 0; i < NPROTO_BINS; i++) {
    const char *argv[8];
    proto_argv(i, "--protocol", "1", argv);
    int rc = run_rel(proto_bins[i].rel, argv, NULL, out, sizeof out);
    if (rc != 2 || strstr(out, "protocol 1 is no longer supported") == NULL)
      fail_msg("%s --protocol 1: exit %d:\n%s", proto_bins[i].rel, rc, out);
    proto_argv(i, NULL, NULL, argv);
    rc = run_rel(proto_bins[i].rel, argv, env1, out, sizeof out);
    if (rc != 2 || strstr(out, "RTQ_PROTOCOL") == NULL || strstr(out, "protocol 1 is no longer supported") == NULL)
      fail_msg("%s with RTQ_PROTOCOL=1: exit %d:\n%s", proto_bins[i].rel, rc, out);
    /* 2 is the one value; 3 is refused too. */
    proto_argv(i, "--protocol", "3", argv);
    rc = run_rel(proto_bins[i].rel, argv, NULL, out, sizeof out);
    if (rc != 2 || strstr(out, "protocol") == NULL)
      fail_msg("%s --protocol 3: exit %d:\n%s", proto_bins[i].rel, rc, out);
  }
  assert_int_equal(rtq_test_cmd_int(c, "DBSIZE", NULL), 0);
  rtq_conn_free(c);
}

/* A namespace holding protocol 1's data (its counters, ns:stats, or
 * {ns}:stats of a cluster namespace) and no mark: each binary that works
 * on the namespace refuses to start with the reason, marks nothing and
 * leaves the data alone. rtq exits 4 (RTQ_EPROTOCOL is a Redis-side
 * refusal), the worker and the broker 1, rtq-web 2. (rtq-bench works in
 * fresh namespaces of its own, never "rtq".) */
static void test_settings_protocol_1_data_is_refused(void **state) {
  (void)state;
  static const char *const v1_stats[] = {"rtq:stats", "{rtq}:stats"};
  static const int code[] = {4, 1, 1, 2};
  char out[8192];
  rtq_conn *c = rtq_test_conn();
  for (int s = 0; s < 2; s++) {
    rtq_test_redis_flush();
    rtq_test_cmd_int(c, "HSET", v1_stats[s], "default|enqueued", "3", NULL);
    for (size_t i = 0; i < 4; i++) {
      const char *argv[8];
      proto_argv(i, NULL, NULL, argv);
      int rc = run_rel(proto_bins[i].rel, argv, NULL, out, sizeof out);
      if (rc != code[i] || strstr(out, "holds protocol-1 data") == NULL)
        fail_msg("%s on %s: exit %d, wanted %d:\n%s", proto_bins[i].rel, v1_stats[s], rc, code[i], out);
      assert_non_null(strstr(out, "OPERATIONS.md"));
    }
    assert_int_equal(rtq_test_cmd_int(c, "DBSIZE", NULL), 1);
    char *v = rtq_test_cmd_str(c, "HGET", v1_stats[s], "default|enqueued", NULL);
    assert_string_equal(v, "3");
    free(v);
  }
  rtq_conn_free(c);
}

static int setup_group(void **state) {
  (void)state;
  read_table();
  snprintf(url_file, sizeof url_file, "%s/settings-url-%d", tmpdir(), (int)getpid());
  write_file(url_file, "redis://127.0.0.1:1/4\n", 0600);
  return 0;
}

static int teardown_group(void **state) {
  (void)state;
  unlink(url_file);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_settings_table_lists_every_setting),
      cmocka_unit_test(test_settings_every_listed_flag_is_accepted),
      cmocka_unit_test(test_settings_every_variable_is_read),
      cmocka_unit_test(test_settings_unlisted_flags_are_refused),
      cmocka_unit_test(test_settings_deprecated_flags_warn_and_change_nothing),
      cmocka_unit_test(test_settings_print_config_hides_the_password),
      cmocka_unit_test(test_settings_password_hidden_from_cmdline),
      cmocka_unit_test(test_settings_url_file_sets_the_url),
      cmocka_unit_test(test_settings_url_file_errors_never_show_the_content),
      cmocka_unit_test(test_settings_url_file_keeps_the_password_out_of_proc),
      cmocka_unit_test(test_settings_protocol_1_is_refused),
      cmocka_unit_test(test_settings_protocol_1_data_is_refused),
  };
  return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
