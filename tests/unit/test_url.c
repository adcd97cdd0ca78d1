/* test_url.c - Redis URL parsing (url.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "conn.h"
#include "rtq/common.h"

static rtq_redis_url parse_ok(const char *s) {
  rtq_redis_url u;
  char err[256];
  int rc = rtq_redis_url_parse(s, &u, err, sizeof err);
  if (rc != 0) fail_msg("%s: %s", s, err);
  assert_string_equal(err, "");
  return u;
}

/* Parses s expecting failure; returns the message in a static buffer. */
static const char *parse_err(const char *s) {
  static char err[256];
  rtq_redis_url u;
  memset(&u, 0x5a, sizeof u);
  rtq_redis_url before = u;
  assert_int_equal(rtq_redis_url_parse(s, &u, err, sizeof err), RTQ_EINVAL);
  assert_memory_equal(&u, &before, sizeof u); /* out untouched on error */
  assert_memory_equal(err, "invalid redis URL: ", 19);
  return err;
}

static void test_url_host_only_takes_defaults(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("redis://localhost");
  assert_false(u.is_unix);
  assert_string_equal(u.host, "localhost");
  assert_int_equal(u.port, 6379);
  assert_int_equal(u.db, 0);
  assert_string_equal(u.user, "");
  assert_string_equal(u.password, "");
  u = parse_ok("redis://localhost/");
  assert_int_equal(u.db, 0);
}

static void test_url_host_port_db(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("redis://10.1.2.3:7000/5");
  assert_string_equal(u.host, "10.1.2.3");
  assert_int_equal(u.port, 7000);
  assert_int_equal(u.db, 5);
  u = parse_ok("REDIS://Host.Example:1/15");
  assert_string_equal(u.host, "Host.Example");
  assert_int_equal(u.port, 1);
  assert_int_equal(u.db, 15);
  u = parse_ok("redis://h:65535");
  assert_int_equal(u.port, 65535);
}

static void test_url_ipv6_host(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("redis://[::1]:6380/2");
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 6380);
  assert_int_equal(u.db, 2);
  u = parse_ok("redis://[fe80::1]");
  assert_string_equal(u.host, "fe80::1");
  assert_int_equal(u.port, 6379);
  assert_non_null(strstr(parse_err("redis://[::1:6379"), "']'"));
}

static void test_url_user_and_password(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("redis://worker:s3cret@h:1/0");
  assert_string_equal(u.user, "worker");
  assert_string_equal(u.password, "s3cret");
  u = parse_ok("redis://:onlypass@h");
  assert_string_equal(u.user, "");
  assert_string_equal(u.password, "onlypass");
  u = parse_ok("redis://justuser@h");
  assert_string_equal(u.user, "justuser");
  assert_string_equal(u.password, "");
  /* The password may hold ':' and an unescaped '@'; the last '@' splits. */
  u = parse_ok("redis://u:a:b@c@h:2");
  assert_string_equal(u.user, "u");
  assert_string_equal(u.password, "a:b@c");
  assert_string_equal(u.host, "h");
  assert_int_equal(u.port, 2);
}

static void test_url_percent_decoding(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("redis://us%65r:p%40ss%2Fw%3a%25rd@h");
  assert_string_equal(u.user, "user");
  assert_string_equal(u.password, "p@ss/w:%rd");
  assert_non_null(strstr(parse_err("redis://:bad%zzesc@h"), "percent-escape in password"));
  assert_non_null(strstr(parse_err("redis://:trunc%4@h"), "percent-escape in password"));
  assert_non_null(strstr(parse_err("redis://:trunc%@h"), "percent-escape in password"));
  assert_non_null(strstr(parse_err("redis://u%0:x@h"), "percent-escape in user"));
  /* A decoded NUL would silently shorten the password. */
  assert_non_null(strstr(parse_err("redis://:ab%00cd@h"), "percent-escape in password"));
}

static void test_url_unix_socket(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("unix:///var/run/redis/redis.sock");
  assert_true(u.is_unix);
  assert_string_equal(u.path, "/var/run/redis/redis.sock");
  assert_int_equal(u.db, 0);
  u = parse_ok("unix:///tmp/r.sock?db=7");
  assert_string_equal(u.path, "/tmp/r.sock");
  assert_int_equal(u.db, 7);
  u = parse_ok("unix://:pw@/tmp/r.sock");
  assert_string_equal(u.password, "pw");
  assert_string_equal(u.path, "/tmp/r.sock");
  assert_non_null(strstr(parse_err("unix://tmp/r.sock"), "host"));
  assert_non_null(strstr(parse_err("unix://relative"), "absolute"));
  assert_non_null(strstr(parse_err("unix:///tmp/r.sock?timeout=3"), "only ?db=N"));
  assert_non_null(strstr(parse_err("unix:///tmp/r.sock?db=x"), "db is not a number"));
  char longpath[200] = "unix:///";
  memset(longpath + 8, 'p', 150);
  longpath[158] = '\0';
  assert_non_null(strstr(parse_err(longpath), "longer than 107 bytes"));
}

static void test_url_bad_port_and_db(void **state) {
  (void)state;
  assert_string_equal(parse_err("redis://h:abc"), "invalid redis URL: port is not a number 1..65535");
  assert_non_null(strstr(parse_err("redis://h:0"), "port is not"));
  assert_non_null(strstr(parse_err("redis://h:65536"), "port is not"));
  assert_non_null(strstr(parse_err("redis://h:"), "port is not"));
  assert_non_null(strstr(parse_err("redis://h:-1"), "port"));
  assert_non_null(strstr(parse_err("redis://h:+1"), "port"));
  assert_non_null(strstr(parse_err("redis://h:99999999999"), "port"));
  assert_string_equal(parse_err("redis://h/x"), "invalid redis URL: db is not a number 0..2147483647");
  assert_non_null(strstr(parse_err("redis://h/-1"), "db"));
  assert_non_null(strstr(parse_err("redis://h/1/2"), "db is not"));
  assert_non_null(strstr(parse_err("redis://h/2147483648"), "db"));
  assert_int_equal(parse_ok("redis://h/2147483647").db, 2147483647);
}

static void test_url_bad_scheme_and_host(void **state) {
  (void)state;
  assert_non_null(strstr(parse_err("http://h"), "expected redis://"));
  assert_non_null(strstr(parse_err(""), "expected redis://"));
  assert_non_null(strstr(parse_err("localhost:6379"), "expected redis://"));
  assert_non_null(strstr(parse_err("rediss://h"), "TLS"));
  assert_non_null(strstr(parse_err("redis://"), "host is empty"));
  assert_non_null(strstr(parse_err("redis://:6379"), "host is empty"));
  assert_non_null(strstr(parse_err("redis://u:p@"), "host is empty"));
  assert_non_null(strstr(parse_err("redis://h ost"), "space"));
  assert_non_null(strstr(parse_err("redis://h\nx"), "control"));
  assert_non_null(strstr(parse_err("redis://h?db=1"), "query"));
  assert_non_null(strstr(parse_err("redis://h%41"), "host"));
  char longhost[300] = "redis://";
  memset(longhost + 8, 'h', 280);
  longhost[288] = '\0';
  assert_non_null(strstr(parse_err(longhost), "host is longer"));
  assert_int_equal(rtq_redis_url_parse(NULL, NULL, NULL, 0), RTQ_EINVAL);
}

static void test_url_errors_never_contain_the_password(void **state) {
  (void)state;
  const char *urls[] = {
      "redis://u:hunter2@h:bad",  "redis://u:hunter2@h/bad",  "redis://u:hunter2@",
      "redis://u:hunter2%zz@h",   "redis://u:hunter2@h?x=1",  "redis://u:hunter2@[::1",
      "unix://u:hunter2@/p?q=1",  "unix://u:hunter2@host/p",  "rediss://u:hunter2@h",
  };
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
    const char *e = parse_err(urls[i]);
    if (strstr(e, "hunter2") != NULL) fail_msg("%s -> %s", urls[i], e);
  }
}

static void test_url_long_credentials(void **state) {
  (void)state;
  char url[700] = "redis://:";
  memset(url + 9, 'p', 255);
  strcpy(url + 9 + 255, "@h");
  rtq_redis_url u = parse_ok(url);
  assert_int_equal(strlen(u.password), 255);
  strcpy(url + 9 + 255, "p@h");
  assert_non_null(strstr(parse_err(url), "password is longer than 255 bytes"));
}

static void test_url_small_errbuf_is_cut(void **state) {
  (void)state;
  rtq_redis_url u;
  char err[12];
  assert_int_equal(rtq_redis_url_parse("http://x", &u, err, sizeof err), RTQ_EINVAL);
  assert_int_equal(strlen(err), sizeof err - 1);
  assert_int_equal(rtq_redis_url_parse("http://x", &u, NULL, 0), RTQ_EINVAL);
}

/* A malformed URL can put its password in any part (a '/' in it ends the
 * host part early; a missing '@' makes it a port): no error quotes any of
 * the URL. */
static void test_url_errors_never_quote_the_url(void **state) {
  (void)state;
  static const char *const urls[] = {
      "redis://USR:se/cretPW@h",          "redis://USR:PW",          "redis://:PW",
      "redis://h/PW",                      "redis://USR:PW/x@h:1/0", "redis://[::1]PW",
      "redis://USR:PW@h:PW",              "redis://USR:PW@h/PW",    "redis://PW%zz@h",
      "unix://USR:PW/tmp/s",    "unix:///tmp/s?PW",
      "unix:///tmp/s?db=PW",               "redis://USR:P W@h",      "redis://USR:PW@h?x=1",
      "redis://USR:PW@[h",                "unix://USR:PW@host/tmp/s",
  };
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
    const char *e = parse_err(urls[i]);
    if (strstr(e, "PW") != NULL || strstr(e, "cret") != NULL || strstr(e, "USR") != NULL)
      fail_msg("%s: the error quotes the URL: %s", urls[i], e);
  }
  /* The case that used to print port "se": it now says what to do. */
  assert_string_equal(parse_err("redis://user:se/cret@h"),
                      "invalid redis URL: '@' after the first '/': a '/' in the user or password must be "
                      "percent-encoded (%2F)");
  /* Encoded, the same password parses. */
  rtq_redis_url u = parse_ok("redis://user:se%2Fcret@h");
  assert_string_equal(u.password, "se/cret");
  assert_string_equal(u.host, "h");
}

static void test_url_cluster_seeds(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("redis+cluster://127.0.0.1:7101");
  assert_int_equal(u.kind, RTQ_URL_CLUSTER);
  assert_false(u.is_unix);
  assert_int_equal(u.nseeds, 1);
  assert_string_equal(u.host, "127.0.0.1");
  assert_int_equal(u.port, 7101);
  u = parse_ok("REDIS+CLUSTER://us%3Aer:p%40ss@a:1,[::1]:2,b/0");
  assert_int_equal(u.nseeds, 3);
  assert_string_equal(u.user, "us:er");
  assert_string_equal(u.password, "p@ss");
  assert_string_equal(u.seeds[0].host, "a");
  assert_int_equal(u.seeds[0].port, 1);
  assert_string_equal(u.seeds[1].host, "::1");
  assert_int_equal(u.seeds[1].port, 2);
  assert_string_equal(u.seeds[2].host, "b");
  assert_int_equal(u.seeds[2].port, 6379);
  assert_int_equal(u.db, 0);
  assert_true(rtq_redis_url_is_cluster("redis+cluster://h:1"));
  assert_false(rtq_redis_url_is_cluster("redis://h:1"));
  assert_false(rtq_redis_url_is_cluster(NULL));
}

static void test_url_cluster_errors(void **state) {
  (void)state;
  assert_non_null(strstr(parse_err("redis+cluster://h:1/3"), "only db 0"));
  assert_non_null(strstr(parse_err("redis+cluster://h:1,,h:2"), "host is empty"));
  assert_non_null(strstr(parse_err("redis+cluster://h:1,"), "host is empty"));
  assert_non_null(strstr(parse_err("redis+cluster://h:x"), "port"));
  assert_non_null(strstr(parse_err("redis+cluster://h:1?x=1"), "query"));
  assert_non_null(strstr(parse_err("redis+cluster://a,b,c,d,e,f,g,h,i"), "more than 8"));
}

static void test_url_sentinel_master_and_db(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("redis-sentinel://s1,s2:26380/mymaster");
  assert_int_equal(u.kind, RTQ_URL_SENTINEL);
  assert_int_equal(u.nseeds, 2);
  assert_string_equal(u.seeds[0].host, "s1");
  assert_int_equal(u.seeds[0].port, 26379);
  assert_int_equal(u.seeds[1].port, 26380);
  assert_string_equal(u.master, "mymaster");
  assert_int_equal(u.db, 0);
  u = parse_ok("redis-sentinel://:pw@s1/my-master.1_x/4");
  assert_string_equal(u.password, "pw");
  assert_string_equal(u.master, "my-master.1_x");
  assert_int_equal(u.db, 4);
  assert_non_null(strstr(parse_err("redis-sentinel://s1"), "no master name"));
  assert_non_null(strstr(parse_err("redis-sentinel://s1/"), "no master name"));
  assert_non_null(strstr(parse_err("redis-sentinel://s1/m%20x"), "master name"));
  assert_non_null(strstr(parse_err("redis-sentinel://s1/m/x"), "db"));
  /* The password never shows in the error. */
  const char *e = parse_err("redis-sentinel://u:secret@s1:bad/m");
  assert_null(strstr(e, "secret"));
}

/* The sentinels' own password (sentinel requirepass) and ACL user. */
static void test_url_sentinel_password_query(void **state) {
  (void)state;
  rtq_redis_url u = parse_ok("redis-sentinel://u:dp@s1,s2/m/3?sentinel_password=s%26p%3D1&sentinel_user=sent");
  assert_string_equal(u.password, "dp");
  assert_string_equal(u.sentinel_password, "s&p=1");
  assert_string_equal(u.sentinel_user, "sent");
  assert_string_equal(u.master, "m");
  assert_int_equal(u.db, 3);
  assert_int_equal(u.nseeds, 2);
  u = parse_ok("redis-sentinel://s1/m?sentinel_password=x");
  assert_string_equal(u.sentinel_password, "x");
  assert_string_equal(u.sentinel_user, "");
  assert_non_null(strstr(parse_err("redis-sentinel://s1/m?sentinel_user=a"), "without sentinel_password"));
  assert_non_null(strstr(parse_err("redis-sentinel://s1/m?sentinel_password="), "empty"));
  assert_non_null(strstr(parse_err("redis-sentinel://s1/m?sentinel_password=a&sentinel_password=b"), "twice"));
  assert_non_null(strstr(parse_err("redis-sentinel://s1/m?sentinel_password=%zz"), "percent-escape"));
  assert_non_null(strstr(parse_err("redis-sentinel://s1/m?sentinel_password=a#f"), "fragment"));
  /* An unknown parameter is named, its value never shown. */
  const char *e = parse_err("redis-sentinel://s1/m?password=hunter2");
  assert_non_null(strstr(e, "\"password\""));
  assert_null(strstr(e, "hunter2"));
  /* Other URL kinds still take no query. */
  assert_non_null(parse_err("redis+cluster://a:1?sentinel_password=x"));
  assert_non_null(parse_err("redis://h?sentinel_password=x"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_errors_never_quote_the_url),
      cmocka_unit_test(test_url_host_only_takes_defaults),
      cmocka_unit_test(test_url_host_port_db),
      cmocka_unit_test(test_url_ipv6_host),
      cmocka_unit_test(test_url_user_and_password),
      cmocka_unit_test(test_url_percent_decoding),
      cmocka_unit_test(test_url_unix_socket),
      cmocka_unit_test(test_url_bad_port_and_db),
      cmocka_unit_test(test_url_bad_scheme_and_host),
      cmocka_unit_test(test_url_errors_never_contain_the_password),
      cmocka_unit_test(test_url_long_credentials),
      cmocka_unit_test(test_url_small_errbuf_is_cut),
      cmocka_unit_test(test_url_cluster_seeds),
      cmocka_unit_test(test_url_cluster_errors),
      cmocka_unit_test(test_url_sentinel_master_and_db),
      cmocka_unit_test(test_url_sentinel_password_query),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
