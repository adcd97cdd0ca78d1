/*
 * test_conn.c - connections against a real redis-server (conn.c, url.c,
 * scripts.c): AUTH, SELECT, timeouts, reconnect and backoff, error
 * classification, the eviction-policy warning, pipelining, and EVALSHA
 * with the NOSCRIPT fallback.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "rtq/common.h"
#include "scripts.h"
#include "scripts2.h"

/* ---- helpers ---------------------------------------------------------- */

static int ping(rtq_conn *c) {
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "PING");
  int rc = rtq_conn_command(c, &a, NULL);
  rtq_argv_destroy(&a);
  return rc;
}

static rtq_conn *connect_opts(const char *url, int command_timeout_ms, int backoff_min, int backoff_max) {
  rtq_conn_options o = {.url = url,
                        .connect_timeout_ms = 1000,
                        .command_timeout_ms = command_timeout_ms,
                        .backoff_min_ms = backoff_min,
                        .backoff_max_ms = backoff_max};
  rtq_conn *c = NULL;
  char err[512];
  int rc = rtq_conn_new(&o, &c, err, sizeof err);
  if (rc != 0) fail_msg("connect %s: %s", url, err);
  return c;
}

/* "redis://<user>:<pass>@127.0.0.1:<port>/<db>" for the default server. */
static void url_with(char *buf, size_t cap, const char *userinfo, int db) {
  snprintf(buf, cap, "redis://%s127.0.0.1:%d/%d", userinfo, rtq_test_redis_port(rtq_test_redis_default()), db);
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* Binds 127.0.0.1:port without listening, so connects to it are refused
 * and no other test's server can take the port meanwhile. Returns the fd. */
static int hold_port(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  int one = 1; /* the stopped server's side of old connections may linger in TIME_WAIT */
  assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* ---- basics ----------------------------------------------------------- */

static void test_conn_connects_and_pings(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn();
  assert_non_null(rtq_conn_ctx(c));
  assert_int_equal(ping(c), 0);
  assert_string_equal(rtq_conn_errstr(c), "");
  const rtq_redis_url *u = rtq_conn_url(c);
  assert_string_equal(u->host, "127.0.0.1");
  assert_int_equal(u->port, rtq_test_redis_port(rtq_test_redis_default()));
  char *pong = rtq_test_cmd_str(c, "ECHO", "hello", NULL);
  assert_string_equal(pong, "hello");
  free(pong);
  rtq_conn_free(c);
  rtq_conn_free(NULL);
}

static void test_conn_unix_socket_and_db(void **state) {
  (void)state;
  char url[300];
  snprintf(url, sizeof url, "%s?db=2", rtq_test_redis_unix_url(rtq_test_redis_default()));
  rtq_conn *c = rtq_test_conn_new(url);
  assert_true(rtq_conn_url(c)->is_unix);
  char *info = rtq_test_cmd_str(c, "CLIENT", "INFO", NULL);
  assert_non_null(strstr(info, " db=2 "));
  free(info);
  rtq_conn_free(c);
}

static void test_conn_select_db(void **state) {
  (void)state;
  char url[128];
  url_with(url, sizeof url, "", 3);
  rtq_conn *c3 = rtq_test_conn_new(url);
  rtq_conn *c0 = rtq_test_conn();
  rtq_test_cmd_ok(c3, "SET", "conn:select", "in-db-3", NULL);
  char *v = rtq_test_cmd_str(c0, "GET", "conn:select", NULL);
  assert_null(v); /* not in db 0 */
  rtq_test_cmd_ok(c0, "SELECT", "3", NULL);
  v = rtq_test_cmd_str(c0, "GET", "conn:select", NULL);
  assert_string_equal(v, "in-db-3");
  free(v);
  rtq_conn_free(c3);
  rtq_conn_free(c0);
}

static void test_conn_refused_names_the_endpoint(void **state) {
  (void)state;
  /* A port nobody listens on: one a dedicated server held until it
   * stopped. */
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  char url[128];
  snprintf(url, sizeof url, "%s", rtq_test_redis_url_of(r));
  int port = rtq_test_redis_port(r);
  rtq_test_redis_stop(r);
  int held = hold_port(port);

  rtq_conn_options o = {.url = url, .connect_timeout_ms = 1000};
  rtq_conn *c = (rtq_conn *)1;
  char err[512], want[64];
  assert_int_equal(rtq_conn_new(&o, &c, err, sizeof err), RTQ_ECONN);
  assert_null(c);
  snprintf(want, sizeof want, "connect 127.0.0.1:%d: ", port);
  assert_memory_equal(err, want, strlen(want));

  assert_int_equal(rtq_conn_new(&(rtq_conn_options){.url = "redis://h:bad"}, &c, err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "port"));
  assert_int_equal(rtq_conn_new(&(rtq_conn_options){0}, &c, err, sizeof err), RTQ_EINVAL);
  close(held);
}

/* ---- AUTH ------------------------------------------------------------- */

static void test_conn_acl_user_auth(void **state) {
  (void)state;
  rtq_conn *admin = rtq_test_conn();
  rtq_test_cmd_ok(admin, "ACL", "SETUSER", "rtq_acl", "reset", "on", ">pa:ss@w%rd", "~*", "&*", "+@all", NULL);
  char url[256];
  url_with(url, sizeof url, "rtq_acl:pa%3Ass%40w%25rd@", 0);
  rtq_conn *c = rtq_test_conn_new(url);
  char *who = rtq_test_cmd_str(c, "ACL", "WHOAMI", NULL);
  assert_string_equal(who, "rtq_acl");
  free(who);
  /* A reconnect authenticates again. */
  rtq_conn_drop(c);
  who = rtq_test_cmd_str(c, "ACL", "WHOAMI", NULL);
  assert_string_equal(who, "rtq_acl");
  free(who);
  rtq_conn_free(c);
  rtq_test_cmd_int(admin, "ACL", "DELUSER", "rtq_acl", NULL);
  rtq_conn_free(admin);
}

static void test_conn_wrong_password_error_verbatim(void **state) {
  (void)state;
  rtq_conn *admin = rtq_test_conn();
  rtq_test_cmd_ok(admin, "ACL", "SETUSER", "rtq_acl2", "reset", "on", ">right", "~*", "+@all", NULL);
  /* What Redis itself answers, to compare word for word. */
  redisReply *r = rtq_test_command(admin, "AUTH", "rtq_acl2", "wrong", NULL);
  assert_int_equal(r->type, REDIS_REPLY_ERROR);
  char want[256];
  snprintf(want, sizeof want, "%s", r->str);
  freeReplyObject(r);
  assert_memory_equal(want, "WRONGPASS", 9);

  char url[256], err[512];
  url_with(url, sizeof url, "rtq_acl2:wrong@", 0);
  rtq_conn *c = NULL;
  assert_int_equal(rtq_conn_new(&(rtq_conn_options){.url = url}, &c, err, sizeof err), RTQ_EREDIS);
  assert_null(c);
  assert_string_equal(err, want);
  rtq_test_cmd_int(admin, "ACL", "DELUSER", "rtq_acl2", NULL);
  rtq_conn_free(admin);
}

static void test_conn_password_only_auth(void **state) {
  (void)state;
  const char *extra[] = {"requirepass \"p@ss word\"", NULL};
  rtq_test_redis_options o = {.extra_config = extra};
  rtq_test_redis *r = rtq_test_redis_start(&o);
  assert_non_null(r);
  char url[128];

  /* "AUTH <password>" for the default user. */
  snprintf(url, sizeof url, "redis://:p%%40ss%%20word@127.0.0.1:%d", rtq_test_redis_port(r));
  rtq_conn *c = rtq_test_conn_new(url);
  char *who = rtq_test_cmd_str(c, "ACL", "WHOAMI", NULL);
  assert_string_equal(who, "default");
  free(who);
  rtq_conn_free(c);

  /* No password: the connection opens, commands get NOAUTH verbatim. */
  c = rtq_test_conn_new(rtq_test_redis_url_of(r));
  assert_int_equal(ping(c), RTQ_EREDIS);
  assert_memory_equal(rtq_conn_errstr(c), "NOAUTH ", 7);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

/* ---- errors ----------------------------------------------------------- */

static void test_conn_error_reply_verbatim(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn();
  rtq_test_cmd_ok(c, "SET", "conn:str", "x", NULL);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "INCR");
  rtq_argv_add_str(&a, "conn:str");
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_command(c, &a, &r), RTQ_EREDIS);
  assert_non_null(r); /* error replies are handed over too */
  assert_int_equal(r->type, REDIS_REPLY_ERROR);
  assert_string_equal(rtq_conn_errstr(c), r->str);
  assert_string_equal(rtq_conn_errstr(c), "ERR value is not an integer or out of range");
  assert_int_equal(rtq_reply_error_code(r), RTQ_EREDIS);
  freeReplyObject(r);
  /* The connection is still usable after an error reply. */
  assert_int_equal(ping(c), 0);
  rtq_argv_destroy(&a);

  rtq_argv_init(&a);
  assert_int_equal(rtq_conn_command(c, &a, NULL), RTQ_EINVAL);
  a.oom = 1;
  assert_int_equal(rtq_conn_command(c, &a, NULL), RTQ_ENOMEM);
  rtq_argv_destroy(&a);
  rtq_conn_free(c);
}

static void test_conn_oom_reply_is_classified(void **state) {
  (void)state;
  rtq_test_redis_options o = {.maxmemory = "1"};
  rtq_test_redis *r = rtq_test_redis_start(&o);
  assert_non_null(r);
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(r));
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "SET");
  rtq_argv_add_str(&a, "k");
  rtq_argv_add_str(&a, "v");
  assert_int_equal(rtq_conn_command(c, &a, NULL), RTQ_EOOM);
  assert_memory_equal(rtq_conn_errstr(c), "OOM command not allowed", 23);
  assert_int_equal(ping(c), 0); /* reads still work */
  rtq_argv_destroy(&a);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

/* ---- timeouts, reconnect, backoff ------------------------------------ */

static void test_conn_command_timeout_on_stopped_server(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  rtq_conn *c = connect_opts(rtq_test_redis_url_of(r), 300, 10, 50);
  assert_int_equal(ping(c), 0);
  assert_int_equal(rtq_test_redis_sigstop(r), 0);

  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(ping(c), RTQ_ECONN);
  uint64_t took = rtq_test_now_ms() - t0;
  assert_in_range(took, 250, 2000);
  assert_non_null(strstr(rtq_conn_errstr(c), "timed out after 300 ms"));
  assert_null(rtq_conn_ctx(c)); /* dropped: the stream position is unknown */

  assert_int_equal(rtq_test_redis_sigcont(r), 0);
  RTQ_TEST_WAIT_FOR(ping(c) == 0, 5000);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_conn_handshake_is_bounded_on_stopped_server(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  char url[128];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/1", rtq_test_redis_port(r));
  assert_int_equal(rtq_test_redis_sigstop(r), 0);
  /* The kernel still accepts the TCP connection; SELECT then never gets an
   * answer. Even with no command timeout, the connect timeout bounds it. */
  rtq_conn_options o = {.url = url, .connect_timeout_ms = 300, .command_timeout_ms = RTQ_CONN_DISABLED};
  rtq_conn *c = NULL;
  char err[512];
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_conn_new(&o, &c, err, sizeof err), RTQ_ECONN);
  assert_in_range(rtq_test_now_ms() - t0, 250, 2000);
  assert_null(c);
  assert_int_equal(rtq_test_redis_sigcont(r), 0);
  rtq_test_redis_stop(r);
}

static void test_conn_reconnects_after_restart(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  rtq_conn *c = connect_opts(rtq_test_redis_url_of(r), 1000, 10, 100);
  assert_int_equal(ping(c), 0);
  assert_int_equal(rtq_test_redis_kill9(r), 0);
  assert_int_equal(ping(c), RTQ_ECONN);
  assert_int_equal(ping(c), RTQ_ECONN); /* refused, or waiting out the backoff */
  assert_int_equal(rtq_test_redis_restart(r), 0);
  RTQ_TEST_WAIT_FOR(ping(c) == 0, 5000);
  assert_string_equal(rtq_conn_errstr(c), "");
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_conn_reconnect_waits_out_the_backoff(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  rtq_conn *c = connect_opts(rtq_test_redis_url_of(r), 1000, 2000, 4000);
  assert_int_equal(rtq_test_redis_kill9(r), 0);
  assert_int_equal(ping(c), RTQ_ECONN);            /* the old socket fails */
  assert_int_equal(rtq_conn_reconnect(c), RTQ_ECONN); /* first attempt: immediate, refused */
  uint64_t failed_at = rtq_test_now_ms();
  assert_int_equal(rtq_test_redis_restart(r), 0);

  /* The server is back, but the backoff holds the next attempt. */
  assert_int_equal(rtq_conn_reconnect(c), RTQ_ECONN);
  assert_non_null(strstr(rtq_conn_errstr(c), "reconnect backoff"));
  assert_non_null(strstr(rtq_conn_errstr(c), "refused"));
  RTQ_TEST_WAIT_FOR(rtq_conn_reconnect(c) == 0, 5000);
  assert_true(rtq_test_now_ms() - failed_at >= 1900);
  assert_int_equal(ping(c), 0);

  /* A deliberate drop is not a failure: no backoff after it. */
  rtq_conn_drop(c);
  assert_int_equal(rtq_conn_reconnect(c), 0);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

/* The N of "reconnect backoff: next attempt in N ms", or -1. */
static long backoff_left(rtq_conn *c) {
  const char *p = strstr(rtq_conn_errstr(c), "next attempt in ");
  return p ? strtol(p + strlen("next attempt in "), NULL, 10) : -1;
}

/* Polls until a reconnect attempt really went to the network (and was
 * refused), then returns the backoff that attempt set. */
static long next_backoff(rtq_conn *c) {
  RTQ_TEST_WAIT_FOR(rtq_conn_reconnect(c) == RTQ_ECONN && strncmp(rtq_conn_errstr(c), "connect ", 8) == 0, 5000);
  assert_int_equal(rtq_conn_reconnect(c), RTQ_ECONN);
  return backoff_left(c);
}

static void test_conn_backoff_doubles_up_to_the_cap(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  rtq_conn *c = connect_opts(rtq_test_redis_url_of(r), 1000, 50, 100);
  int port = rtq_test_redis_port(r);
  rtq_test_redis_stop(r);
  int held = hold_port(port); /* nothing listens on the port any more */
  assert_int_equal(ping(c), RTQ_ECONN);

  long first = next_backoff(c);
  assert_in_range(first, 1, 50);
  long second = next_backoff(c);
  assert_in_range(second, 60, 100); /* doubled */
  long third = next_backoff(c);
  assert_in_range(third, 60, 100); /* capped at backoff_max_ms, not 200 */
  rtq_conn_free(c);
  close(held);
}

/* ---- eviction policy -------------------------------------------------- */

static void test_conn_eviction_policy_warns_once(void **state) {
  (void)state;
  rtq_test_redis_options o = {.maxmemory = "64mb", .maxmemory_policy = "allkeys-lru"};
  rtq_test_redis *r = rtq_test_redis_start(&o);
  assert_non_null(r);
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(r));
  int fd = rtq_test_log_capture_start();
  assert_int_equal(rtq_conn_check_eviction_policy(c), 1);
  char *log = rtq_test_log_capture_end(fd);
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, "level=WARNING"));
  assert_non_null(strstr(log, "policy=allkeys-lru"));
  assert_non_null(strstr(log, "noeviction"));
  free(log);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_conn_eviction_policy_noeviction_is_quiet(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn();
  int fd = rtq_test_log_capture_start();
  assert_int_equal(rtq_conn_check_eviction_policy(c), 0);
  char *log = rtq_test_log_capture_end(fd);
  assert_string_equal(log, "");
  free(log);
  rtq_conn_free(c);
}

static void test_conn_eviction_policy_without_config_permission(void **state) {
  (void)state;
  rtq_conn *admin = rtq_test_conn();
  rtq_test_cmd_ok(admin, "ACL", "SETUSER", "rtq_noconf", "reset", "on", ">pw", "~*", "+@all", "-config", NULL);
  char url[256];
  url_with(url, sizeof url, "rtq_noconf:pw@", 0);
  rtq_conn *c = rtq_test_conn_new(url);
  int fd = rtq_test_log_capture_start();
  assert_int_equal(rtq_conn_check_eviction_policy(c), 0);
  char *log = rtq_test_log_capture_end(fd);
  assert_int_equal(count_lines(log), 1);
  assert_non_null(strstr(log, "level=INFO"));
  assert_non_null(strstr(log, "NOPERM"));
  free(log);
  rtq_conn_free(c);
  rtq_test_cmd_int(admin, "ACL", "DELUSER", "rtq_noconf", NULL);
  rtq_conn_free(admin);
}

/* ---- pipelining and TIME ---------------------------------------------- */

static void test_conn_pipelining_keeps_order(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn();
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; i < 50; i++) {
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "RPUSH");
    rtq_argv_add_str(&a, "conn:pipe");
    rtq_argv_add_i64(&a, i);
    assert_int_equal(rtq_conn_append(c, &a), 0);
  }
  rtq_argv_reset(&a);
  rtq_argv_add_str(&a, "INCR");
  rtq_argv_add_str(&a, "conn:pipe"); /* a list: an error reply mid-pipeline */
  assert_int_equal(rtq_conn_append(c, &a), 0);
  for (int i = 0; i < 50; i++) {
    redisReply *r = NULL;
    assert_int_equal(rtq_conn_get_reply(c, &r), 0);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, i + 1);
    freeReplyObject(r);
  }
  redisReply *r = NULL;
  assert_int_equal(rtq_conn_get_reply(c, &r), RTQ_EREDIS);
  assert_memory_equal(rtq_conn_errstr(c), "WRONGTYPE", 9);
  freeReplyObject(r);
  assert_int_equal(rtq_test_cmd_int(c, "DEL", "conn:pipe", NULL), 1);
  rtq_argv_destroy(&a);
  rtq_conn_free(c);
}

static void test_conn_broken_pipeline_never_reads_a_new_connection(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  rtq_conn *c = connect_opts(rtq_test_redis_url_of(r), 1000, 10, 50);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "PING");
  assert_int_equal(rtq_conn_append(c, &a), 0);
  assert_int_equal(rtq_conn_append(c, &a), 0);
  assert_int_equal(rtq_test_redis_kill9(r), 0);
  assert_int_equal(rtq_conn_get_reply(c, NULL), RTQ_ECONN);
  assert_int_equal(rtq_test_redis_restart(r), 0);
  /* The second reply belonged to the dead connection. */
  assert_int_equal(rtq_conn_get_reply(c, NULL), RTQ_ECONN);
  RTQ_TEST_WAIT_FOR(ping(c) == 0, 5000);
  rtq_argv_destroy(&a);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

/* rtq_conn_send puts the appended commands on the wire: Redis runs them
 * before any reply is read (another connection sees their writes), and
 * their replies still come in order. */
static void test_conn_send_runs_appended_commands_before_the_read(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn();
  rtq_conn *other = rtq_test_conn();
  rtq_argv a;
  rtq_argv_init(&a);
  for (int i = 0; i < 3; i++) {
    rtq_argv_reset(&a);
    rtq_argv_add_str(&a, "RPUSH");
    rtq_argv_add_str(&a, "conn:sent");
    rtq_argv_add_i64(&a, i);
    assert_int_equal(rtq_conn_append(c, &a), 0);
  }
  assert_int_equal(rtq_conn_send(c), 0);
  RTQ_TEST_WAIT_FOR(rtq_test_cmd_int(other, "LLEN", "conn:sent", NULL) == 3, 5000);
  for (int i = 0; i < 3; i++) {
    redisReply *r = NULL;
    assert_int_equal(rtq_conn_get_reply(c, &r), 0);
    assert_int_equal(r->integer, i + 1);
    freeReplyObject(r);
  }
  /* Nothing appended: nothing to write. */
  assert_int_equal(rtq_conn_send(c), 0);
  assert_int_equal(rtq_test_cmd_int(c, "DEL", "conn:sent", NULL), 1);
  rtq_argv_destroy(&a);
  rtq_conn_free(other);
  rtq_conn_free(c);
}

/* rtq_conn_send never fails: on a connection whose server died it
 * returns 0, and the read reports the broken pipeline; none of its replies
 * is read from a new connection. */
static void test_conn_send_leaves_a_dead_server_to_the_read(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  rtq_conn *c = connect_opts(rtq_test_redis_url_of(r), 1000, 10, 50);
  assert_int_equal(ping(c), 0);
  assert_int_equal(rtq_test_redis_kill9(r), 0);
  rtq_argv a;
  rtq_argv_init(&a);
  rtq_argv_add_str(&a, "PING");
  for (int i = 0; i < 50; i++) {
    assert_int_equal(rtq_conn_append(c, &a), 0);
    assert_int_equal(rtq_conn_send(c), 0);
  }
  assert_int_equal(rtq_conn_get_reply(c, NULL), RTQ_ECONN);
  assert_int_equal(rtq_conn_get_reply(c, NULL), RTQ_ECONN);
  assert_int_equal(rtq_test_redis_restart(r), 0);
  RTQ_TEST_WAIT_FOR(ping(c) == 0, 5000);
  rtq_argv_destroy(&a);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_conn_time_ms_is_redis_time(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn();
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t local = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
  uint64_t ms = 0;
  assert_int_equal(rtq_conn_time_ms(c, &ms), 0);
  /* Same machine, same clock: within a second of ours. */
  assert_in_range(ms, local - 1000, local + 1000);
  uint64_t ms2 = 0;
  assert_int_equal(rtq_conn_time_ms(c, &ms2), 0);
  assert_true(ms2 >= ms);
  rtq_conn_free(c);
}

/* ---- scripts ---------------------------------------------------------- */

/* calls= of one command in INFO commandstats, 0 when absent. */
static long long calls_of(rtq_conn *c, const char *cmd) {
  char *info = rtq_test_cmd_str(c, "INFO", "commandstats", NULL);
  char needle[64];
  snprintf(needle, sizeof needle, "cmdstat_%s:calls=", cmd);
  const char *p = strstr(info, needle);
  long long n = p ? atoll(p + strlen(needle)) : 0;
  free(info);
  return n;
}

static int is_hex40(const char *s) {
  if (s == NULL || strlen(s) != 40) return 0;
  return strspn(s, "0123456789abcdef") == 40;
}

static void test_conn_scripts_evalsha_then_noscript_fallback(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  rtq_conn *c = rtq_test_conn_new(rtq_test_redis_url_of(r));
  assert_int_equal(rtq_scripts2_load(c), 0);
  for (int i = 0; i < RTQ_SCRIPT2_COUNT; i++) {
    const char *sha = rtq_script2_sha((rtq_script2_id)i);
    assert_true(is_hex40(sha));
    assert_true(strlen(rtq_script2_body((rtq_script2_id)i)) > 0);
    redisReply *ex = rtq_test_command(c, "SCRIPT", "EXISTS", sha, NULL);
    assert_int_equal(ex->type, REDIS_REPLY_ARRAY);
    assert_int_equal(ex->element[0]->integer, 1);
    freeReplyObject(ex);
  }
  assert_string_equal(rtq_script2_name(RTQ_SCRIPT2_LEASE), "lease");

  /* The lease step with one key, as the broker runs it. Its exact reply is
   * the Lua's business; here it only has to run and not be NOSCRIPT. */
  rtq_argv a;
  rtq_argv_init(&a);
  assert_int_equal(rtq_script2_argv(&a, RTQ_SCRIPT2_LEASE, 1, false), 0);
  assert_string_equal(a.argv[0], "EVALSHA");
  assert_string_equal(a.argv[1], rtq_script2_sha(RTQ_SCRIPT2_LEASE));
  assert_string_equal(a.argv[2], "1");
  rtq_argv_add_str(&a, "conn-test:lease");
  rtq_argv_add_str(&a, "owner-1");
  rtq_argv_add_str(&a, "10000");
  rtq_argv_add_str(&a, "acquire");

  rtq_test_cmd_ok(c, "CONFIG", "RESETSTAT", NULL);
  redisReply *rep = NULL;
  int rc = rtq_script2_run(c, &a, &rep);
  assert_true(rc == 0 || rc == RTQ_EREDIS);
  assert_false(rtq_reply_is_noscript(rep));
  freeReplyObject(rep);
  assert_true(calls_of(c, "evalsha") >= 1);
  assert_int_equal(calls_of(c, "eval"), 0);

  /* A flushed script cache (or a restarted server) answers NOSCRIPT; the
   * run falls back to EVAL, which also caches the script again. */
  rtq_test_cmd_ok(c, "SCRIPT", "FLUSH", NULL);
  assert_int_equal(rtq_script2_argv(&a, RTQ_SCRIPT2_LEASE, 1, false), 0);
  rtq_argv_add_str(&a, "conn-test:lease");
  rtq_argv_add_str(&a, "owner-1");
  rtq_argv_add_str(&a, "10000");
  rtq_argv_add_str(&a, "acquire");
  rep = NULL;
  int rc2 = rtq_script2_run(c, &a, &rep);
  assert_int_equal(rc2, rc); /* same outcome as through EVALSHA */
  assert_false(rtq_reply_is_noscript(rep));
  freeReplyObject(rep);
  assert_int_equal(calls_of(c, "eval"), 1);
  assert_string_equal(a.argv[0], "EVAL");
  redisReply *ex = rtq_test_command(c, "SCRIPT", "EXISTS", rtq_script2_sha(RTQ_SCRIPT2_LEASE), NULL);
  assert_int_equal(ex->element[0]->integer, 1);
  freeReplyObject(ex);

  rtq_argv_destroy(&a);
  rtq_conn_free(c);
  rtq_test_redis_stop(r);
}

static void test_conn_scripts_eval_form_and_foreign_noscript(void **state) {
  (void)state;
  rtq_conn *c = rtq_test_conn();
  rtq_argv a;
  rtq_argv_init(&a);
  /* use_eval sends the body itself. */
  assert_int_equal(rtq_script2_argv(&a, RTQ_SCRIPT2_CREATE, 0, true), 0);
  assert_string_equal(a.argv[0], "EVAL");
  assert_string_equal(a.argv[1], rtq_script2_body(RTQ_SCRIPT2_CREATE));
  assert_int_equal(rtq_script2_argv(&a, RTQ_SCRIPT2_COUNT, 0, false), RTQ_EINVAL);
  assert_int_equal(rtq_script2_argv(&a, RTQ_SCRIPT2_CREATE, -1, false), RTQ_EINVAL);

  /* An EVALSHA that is not one of ours cannot be rewritten: its NOSCRIPT
   * reaches the caller. */
  rtq_argv_reset(&a);
  rtq_argv_add_str(&a, "EVALSHA");
  rtq_argv_add_str(&a, "0000000000000000000000000000000000000000");
  rtq_argv_add_str(&a, "0");
  redisReply *rep = NULL;
  assert_int_equal(rtq_script2_run(c, &a, &rep), RTQ_EREDIS);
  assert_true(rtq_reply_is_noscript(rep));
  assert_memory_equal(rtq_conn_errstr(c), "NOSCRIPT", 8);
  freeReplyObject(rep);

  /* Our own EVAL runs as is. */
  rtq_argv_reset(&a);
  rtq_argv_add_str(&a, "EVAL");
  rtq_argv_add_str(&a, "return ARGV[1] .. KEYS[1]");
  rtq_argv_add_str(&a, "1");
  rtq_argv_add_str(&a, "k");
  rtq_argv_add_str(&a, "v");
  rep = NULL;
  assert_int_equal(rtq_script2_run(c, &a, &rep), 0);
  assert_int_equal(rep->type, REDIS_REPLY_STRING);
  assert_string_equal(rep->str, "vk");
  assert_false(rtq_reply_is_noscript(rep));
  freeReplyObject(rep);
  assert_false(rtq_reply_is_noscript(NULL));
  rtq_argv_destroy(&a);
  rtq_conn_free(c);
}

static int group_setup(void **state) {
  (void)state;
  /* Start the shared server up front so its start-up is not timed by the
   * first test. */
  return rtq_test_redis_default() != NULL ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conn_connects_and_pings),
      cmocka_unit_test(test_conn_unix_socket_and_db),
      cmocka_unit_test(test_conn_select_db),
      cmocka_unit_test(test_conn_refused_names_the_endpoint),
      cmocka_unit_test(test_conn_acl_user_auth),
      cmocka_unit_test(test_conn_wrong_password_error_verbatim),
      cmocka_unit_test(test_conn_password_only_auth),
      cmocka_unit_test(test_conn_error_reply_verbatim),
      cmocka_unit_test(test_conn_oom_reply_is_classified),
      cmocka_unit_test(test_conn_command_timeout_on_stopped_server),
      cmocka_unit_test(test_conn_handshake_is_bounded_on_stopped_server),
      cmocka_unit_test(test_conn_reconnects_after_restart),
      cmocka_unit_test(test_conn_reconnect_waits_out_the_backoff),
      cmocka_unit_test(test_conn_backoff_doubles_up_to_the_cap),
      cmocka_unit_test(test_conn_eviction_policy_warns_once),
      cmocka_unit_test(test_conn_eviction_policy_noeviction_is_quiet),
      cmocka_unit_test(test_conn_eviction_policy_without_config_permission),
      cmocka_unit_test(test_conn_pipelining_keeps_order),
      cmocka_unit_test(test_conn_broken_pipeline_never_reads_a_new_connection),
      cmocka_unit_test(test_conn_send_runs_appended_commands_before_the_read),
      cmocka_unit_test(test_conn_send_leaves_a_dead_server_to_the_read),
      cmocka_unit_test(test_conn_time_ms_is_redis_time),
      cmocka_unit_test(test_conn_scripts_evalsha_then_noscript_fallback),
      cmocka_unit_test(test_conn_scripts_eval_form_and_foreign_noscript),
  };
  return cmocka_run_group_tests(tests, group_setup, NULL);
}
