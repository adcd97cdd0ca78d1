/*
 * commands.c - the asserting helpers: connections, Redis commands and the
 * wait-failure report. The only harness file that includes cmocka.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "internal.h"
#include "log.h"
#include "rtq/common.h"

void rtq__test_wait_failed(const char *expr, int timeout_ms, const char *file, int line) {
  print_error("timed out after %d ms waiting for: %s\n", timeout_ms, expr);
  _fail(file, line);
}

rtq_test_redis *rtq_test_redis_default(void) {
  rtq_test_redis *r = rtq__test_redis_default_or_null();
  if (r == NULL) fail_msg("the default test redis-server did not start (see above)");
  return r;
}

const char *rtq_test_redis_url(void) { return rtq_test_redis_url_of(rtq_test_redis_default()); }

rtq_conn *rtq_test_conn_new(const char *url) {
  rtq_conn_options o = {
      .url = url,
      .connect_timeout_ms = 2000,
      .command_timeout_ms = 5000,
      .backoff_min_ms = 10,
      .backoff_max_ms = 200,
  };
  rtq_conn *c = NULL;
  char err[512];
  int rc = rtq_conn_new(&o, &c, err, sizeof err);
  if (rc != 0) fail_msg("connect %s: %s (%s)", url, err, rtq_err_name(rc));
  return c;
}

rtq_conn *rtq_test_conn(void) { return rtq_test_conn_new(rtq_test_redis_url()); }

redisReply *rtq_test_command_argv(rtq_conn *c, const rtq_argv *a) {
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, a, &r);
  if (r == NULL) {
    fail_msg("%.*s: no reply: %s (%s)", a->argc > 0 ? (int)a->argvlen[0] : 0, a->argc > 0 ? a->argv[0] : "",
             rtq_conn_errstr(c), rtq_err_name(rc));
  }
  return r;
}

static redisReply *vcommand(rtq_conn *c, const char *arg0, va_list ap) {
  rtq_argv a;
  rtq_argv_init(&a);
  for (const char *s = arg0; s != NULL; s = va_arg(ap, const char *)) rtq_argv_add_str(&a, s);
  if (a.oom) {
    rtq_argv_destroy(&a);
    fail_msg("out of memory building a command");
  }
  redisReply *r = NULL;
  int rc = rtq_conn_command(c, &a, &r);
  if (r == NULL) {
    rtq_argv_destroy(&a);
    fail_msg("%s: no reply: %s (%s)", arg0, rtq_conn_errstr(c), rtq_err_name(rc));
  }
  rtq_argv_destroy(&a);
  return r;
}

redisReply *rtq_test_command(rtq_conn *c, const char *arg0, ...) {
  va_list ap;
  va_start(ap, arg0);
  redisReply *r = vcommand(c, arg0, ap);
  va_end(ap);
  return r;
}

/* Fails the test with the reply described, after freeing it (cmocka's
 * failure longjmps, so the reply must not be needed afterwards). */
static void fail_reply(const char *cmd, redisReply *r, const char *wanted) {
  char got[256];
  if (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING)
    snprintf(got, sizeof got, "type %d \"%.*s\"", r->type, (int)(r->len < 200 ? r->len : 200), r->str);
  else
    snprintf(got, sizeof got, "type %d", r->type);
  freeReplyObject(r);
  fail_msg("%s: expected %s, got %s", cmd, wanted, got);
}

long long rtq_test_cmd_int(rtq_conn *c, const char *arg0, ...) {
  va_list ap;
  va_start(ap, arg0);
  redisReply *r = vcommand(c, arg0, ap);
  va_end(ap);
  if (r->type != REDIS_REPLY_INTEGER) fail_reply(arg0, r, "an integer");
  long long v = r->integer;
  freeReplyObject(r);
  return v;
}

char *rtq_test_cmd_str(rtq_conn *c, const char *arg0, ...) {
  va_list ap;
  va_start(ap, arg0);
  redisReply *r = vcommand(c, arg0, ap);
  va_end(ap);
  if (r->type == REDIS_REPLY_NIL) {
    freeReplyObject(r);
    return NULL;
  }
  if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) fail_reply(arg0, r, "a string");
  char *s = malloc(r->len + 1);
  assert_non_null(s);
  memcpy(s, r->str, r->len);
  s[r->len] = '\0';
  freeReplyObject(r);
  return s;
}

void rtq_test_cmd_ok(rtq_conn *c, const char *arg0, ...) {
  va_list ap;
  va_start(ap, arg0);
  redisReply *r = vcommand(c, arg0, ap);
  va_end(ap);
  if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0) fail_reply(arg0, r, "OK");
  freeReplyObject(r);
}

void rtq_test_redis_flush(void) {
  rtq_conn *c = rtq_test_conn();
  rtq_test_cmd_ok(c, "FLUSHALL", NULL);
  rtq_test_cmd_ok(c, "SCRIPT", "FLUSH", NULL);
  rtq_conn_free(c);
}

int rtq_test_log_capture_start(void) {
  int fd = memfd_create("rtq-test-log", 0);
  assert_true(fd >= 0);
  assert_int_equal(fcntl(fd, F_SETFL, O_APPEND), 0);
  rtq_log_set_fd(fd);
  return fd;
}

char *rtq_test_log_capture_end(int fd) {
  rtq_log_set_fd(-1);
  off_t size = lseek(fd, 0, SEEK_END);
  assert_true(size >= 0);
  char *buf = malloc((size_t)size + 1);
  assert_non_null(buf);
  assert_int_equal(pread(fd, buf, (size_t)size, 0), size);
  buf[size] = '\0';
  close(fd);
  return buf;
}
