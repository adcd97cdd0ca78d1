/* test_log.c - logfmt output (log.c). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "rtq/common.h"

/* Each test logs into a fresh memfd and reads it back. */
static int setup(void **state) {
  int fd = memfd_create("rtq-test-log", 0);
  if (fd < 0) return -1;
  /* As for any log file shared by threads or processes: each write lands
   * at the end, so whole lines cannot overwrite each other. */
  if (fcntl(fd, F_SETFL, O_APPEND) != 0) return -1;
  rtq_log_set_fd(fd);
  rtq_log_set_level(RTQ_LOG_DEBUG);
  *state = (void *)(intptr_t)fd;
  return 0;
}

static int teardown(void **state) {
  rtq_log_set_fd(-1);
  rtq_log_set_level(RTQ_LOG_INFO);
  close((int)(intptr_t)*state);
  return 0;
}

/* Everything logged so far, NUL-terminated; caller frees. */
static char *captured(void **state) {
  int fd = (int)(intptr_t)*state;
  off_t size = lseek(fd, 0, SEEK_END);
  char *buf = malloc((size_t)size + 1);
  assert_non_null(buf);
  assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
  buf[size] = '\0';
  return buf;
}

/* The line without its "ts=... " prefix. */
static const char *after_ts(const char *line) {
  assert_memory_equal(line, "ts=", 3);
  const char *sp = strchr(line, ' ');
  assert_non_null(sp);
  return sp + 1;
}

static void test_log_basic_line(void **state) {
  rtq_log(RTQ_LOG_INFO, "claimed", "task", "01JDQ3", "attempt", "1", NULL);
  char *out = captured(state);
  assert_string_equal(after_ts(out), "level=INFO msg=\"claimed\" task=01JDQ3 attempt=1\n");
  free(out);
}

static void test_log_timestamp_format(void **state) {
  rtq_log(RTQ_LOG_INFO, "x", NULL);
  char *out = captured(state);
  /* ts=2026-11-25T12:00:00.123Z */
  assert_true(strlen(out) > 28);
  const char *ts = out + 3;
  const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ ";
  for (size_t i = 0; i < strlen(shape); i++) {
    if (shape[i] == 'd')
      assert_true(ts[i] >= '0' && ts[i] <= '9');
    else
      assert_int_equal(ts[i], shape[i]);
  }
  free(out);
}

static void test_log_quotes_and_escapes_values(void **state) {
  rtq_log(RTQ_LOG_WARNING, "say \"hi\"", "a", "two words", "b", "x=y", "c", "q\"uote", "d", "back\\slash", "e", "",
          NULL);
  char *out = captured(state);
  assert_string_equal(after_ts(out),
                      "level=WARNING msg=\"say \\\"hi\\\"\" a=\"two words\" b=\"x=y\" c=\"q\\\"uote\" "
                      "d=\"back\\\\slash\" e=\"\"\n");
  free(out);
}

static void test_log_control_bytes_cannot_forge_a_line(void **state) {
  rtq_log(RTQ_LOG_ERROR, "bad id", "task", "x\nts=0 level=ERROR msg=\"forged\"\r\t\x01\x7f", NULL);
  char *out = captured(state);
  /* Exactly one newline, at the end. */
  assert_non_null(strchr(out, '\n'));
  assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
  assert_string_equal(after_ts(out),
                      "level=ERROR msg=\"bad id\" task=\"x\\nts=0 level=ERROR msg=\\\"forged\\\"\\r\\t\\x01\\x7f\"\n");
  free(out);
}

static void test_log_utf8_passes_through(void **state) {
  rtq_log(RTQ_LOG_INFO, "x", "name", "caf\xc3\xa9", NULL);
  char *out = captured(state);
  assert_string_equal(after_ts(out), "level=INFO msg=\"x\" name=caf\xc3\xa9\n");
  free(out);
}

static void test_log_null_value_is_skipped_and_bad_key_sanitized(void **state) {
  /* A NULL value drops its pair; only a NULL key ends the list. */
  rtq_log(RTQ_LOG_INFO, "m", "skipped", NULL, "bad key=", "v", NULL);
  char *out = captured(state);
  assert_string_equal(after_ts(out), "level=INFO msg=\"m\" bad_key_=v\n");
  free(out);
}

static void test_log_level_threshold(void **state) {
  rtq_log_set_level(RTQ_LOG_WARNING);
  rtq_log(RTQ_LOG_DEBUG, "no", NULL);
  rtq_log(RTQ_LOG_INFO, "no", NULL);
  rtq_log(RTQ_LOG_WARNING, "yes1", NULL);
  rtq_log(RTQ_LOG_ERROR, "yes2", NULL);
  assert_int_equal(rtq_log_get_level(), RTQ_LOG_WARNING);
  char *out = captured(state);
  assert_null(strstr(out, "\"no\""));
  assert_non_null(strstr(out, "msg=\"yes1\""));
  assert_non_null(strstr(out, "msg=\"yes2\""));
  free(out);
}

static void test_log_level_names_and_parse(void **state) {
  (void)state;
  assert_string_equal(rtq_log_level_name(RTQ_LOG_DEBUG), "DEBUG");
  assert_string_equal(rtq_log_level_name(RTQ_LOG_INFO), "INFO");
  assert_string_equal(rtq_log_level_name(RTQ_LOG_WARNING), "WARNING");
  assert_string_equal(rtq_log_level_name(RTQ_LOG_ERROR), "ERROR");
  rtq_log_level l;
  assert_int_equal(rtq_log_level_parse("debug", &l), 0);
  assert_int_equal(l, RTQ_LOG_DEBUG);
  assert_int_equal(rtq_log_level_parse("Info", &l), 0);
  assert_int_equal(l, RTQ_LOG_INFO);
  assert_int_equal(rtq_log_level_parse("WARN", &l), 0);
  assert_int_equal(l, RTQ_LOG_WARNING);
  assert_int_equal(rtq_log_level_parse("warning", &l), 0);
  assert_int_equal(l, RTQ_LOG_WARNING);
  assert_int_equal(rtq_log_level_parse("ERROR", &l), 0);
  assert_int_equal(l, RTQ_LOG_ERROR);
  assert_int_equal(rtq_log_level_parse("verbose", &l), RTQ_EINVAL);
  assert_int_equal(rtq_log_level_parse("", &l), RTQ_EINVAL);
  assert_int_equal(rtq_log_level_parse(NULL, &l), RTQ_EINVAL);
}

static void test_log_long_line_is_truncated_and_well_formed(void **state) {
  size_t n = 10000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  for (size_t i = 0; i < n; i++) big[i] = (i % 50 == 0) ? '\n' : 'a';
  big[n] = '\0';
  rtq_log(RTQ_LOG_INFO, "big", "v", big, "after", "x", NULL);
  free(big);
  char *out = captured(state);
  size_t len = strlen(out);
  assert_true(len <= 4096);
  assert_ptr_equal(strchr(out, '\n'), out + len - 1);
  const char *tail = "\" truncated=true\n";
  assert_string_equal(out + len - strlen(tail), tail);
  assert_null(strstr(out, "after="));
  free(out);
}

static void test_log_keeps_errno(void **state) {
  (void)state;
  errno = EPIPE;
  rtq_log(RTQ_LOG_INFO, "x", NULL);
  assert_int_equal(errno, EPIPE);
}

enum { THREADS = 8, LINES = 500 };

static void *writer(void *arg) {
  char id[16];
  snprintf(id, sizeof id, "t%d", (int)(intptr_t)arg);
  char pad[300];
  memset(pad, 'p', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  for (int i = 0; i < LINES; i++) rtq_log(RTQ_LOG_INFO, "concurrent", "thread", id, "pad", pad, NULL);
  return NULL;
}

static void test_log_threads_never_interleave(void **state) {
  pthread_t th[THREADS];
  for (int i = 0; i < THREADS; i++) assert_int_equal(pthread_create(&th[i], NULL, writer, (void *)(intptr_t)i), 0);
  for (int i = 0; i < THREADS; i++) pthread_join(th[i], NULL);
  char *out = captured(state);
  int lines = 0, per[THREADS] = {0};
  for (char *line = out, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
    *nl = '\0';
    int t = -1;
    const char *body = after_ts(line);
    assert_int_equal(sscanf(body, "level=INFO msg=\"concurrent\" thread=t%d pad=", &t), 1);
    assert_in_range(t, 0, THREADS - 1);
    assert_int_equal(strlen(strstr(body, "pad=") + 4), 299);
    per[t]++;
    lines++;
  }
  assert_int_equal(lines, THREADS * LINES);
  for (int i = 0; i < THREADS; i++) assert_int_equal(per[i], LINES);
  free(out);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_log_basic_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_timestamp_format, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_quotes_and_escapes_values, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_control_bytes_cannot_forge_a_line, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_utf8_passes_through, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_null_value_is_skipped_and_bad_key_sanitized, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_level_threshold, setup, teardown),
      cmocka_unit_test(test_log_level_names_and_parse),
      cmocka_unit_test_setup_teardown(test_log_long_line_is_truncated_and_well_formed, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_keeps_errno, setup, teardown),
      cmocka_unit_test_setup_teardown(test_log_threads_never_interleave, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
