/* test_config.c - settings: defaults, by name, from the environment (config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "rtq/common.h"

static const char *const env_vars[] = {
    "RTQ_MAX_CONCURRENT_TASKS", "RTQ_DEFAULT_TIMEOUT",  "RTQ_TASK_RESULT_TTL", "RTQ_ENABLE_TASK_HISTORY",
    "RTQ_LOG_LEVEL",            "RTQ_CLEANUP_INTERVAL", "RTQ_MAX_TASK_HISTORY", "RTQ_REDIS_URL",
    "RTQ_NAMESPACE",            "RTQ_PROTOCOL",
};

/* Tests start and end with no RTQ_* setting in the environment, so the
 * developer's shell cannot change their outcome. */
static int clean_env(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++) unsetenv(env_vars[i]);
  return 0;
}

static void test_config_defaults_match_the_manager(void **state) {
  (void)state;
  rtq_config c;
  rtq_config_defaults(&c);
  assert_int_equal(c.max_concurrent_tasks, 50);
  assert_int_equal(c.default_timeout, 300);
  assert_int_equal(c.task_result_ttl, 86400);
  assert_true(c.enable_task_history);
  assert_int_equal(c.log_level, RTQ_LOG_INFO);
  assert_int_equal(c.cleanup_interval, 3600);
  assert_int_equal(c.max_task_history, 10000);
  assert_string_equal(c.redis_url, "redis://127.0.0.1:6379/0");
  assert_string_equal(c.ns, "rtq");
  assert_int_equal(c.protocol, 2);
}

/* 2 is the one protocol; 1 is refused saying it is gone, from the
 * environment too, and the setting keeps its value. */
static void test_config_protocol_takes_2_only(void **state) {
  (void)state;
  rtq_config c;
  char err[256];
  rtq_config_defaults(&c);
  assert_int_equal(rtq_config_set(&c, "protocol", "2", err, sizeof err), 0);
  assert_int_equal(rtq_config_set(&c, "protocol", "1", err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "protocol 1 is no longer supported"));
  assert_non_null(strstr(err, "OPERATIONS.md"));
  assert_int_equal(rtq_config_set(&c, "protocol", "3", err, sizeof err), RTQ_EINVAL);
  assert_string_equal(err, "invalid protocol \"3\": expected an integer 2..2");
  assert_int_equal(c.protocol, 2);
  setenv("RTQ_PROTOCOL", "1", 1);
  assert_int_equal(rtq_config_from_env(&c, err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "RTQ_PROTOCOL: protocol 1 is no longer supported"));
  assert_int_equal(c.protocol, 2);
  clean_env(NULL);
}

static void test_config_set_by_name_and_dash_spelling(void **state) {
  (void)state;
  rtq_config c;
  char err[256];
  rtq_config_defaults(&c);
  assert_int_equal(rtq_config_set(&c, "max_concurrent_tasks", "8", err, sizeof err), 0);
  assert_int_equal(c.max_concurrent_tasks, 8);
  assert_int_equal(rtq_config_set(&c, "max-concurrent-tasks", "9", err, sizeof err), 0);
  assert_int_equal(c.max_concurrent_tasks, 9);
  assert_int_equal(rtq_config_set(&c, "default-timeout", "60", err, sizeof err), 0);
  assert_int_equal(c.default_timeout, 60);
  assert_int_equal(rtq_config_set(&c, "task_result_ttl", "31536000", err, sizeof err), 0);
  assert_int_equal(c.task_result_ttl, 31536000);
  assert_int_equal(rtq_config_set(&c, "enable-task-history", "off", err, sizeof err), 0);
  assert_false(c.enable_task_history);
  assert_int_equal(rtq_config_set(&c, "enable_task_history", "YES", err, sizeof err), 0);
  assert_true(c.enable_task_history);
  assert_int_equal(rtq_config_set(&c, "log-level", "warn", err, sizeof err), 0);
  assert_int_equal(c.log_level, RTQ_LOG_WARNING);
  assert_int_equal(rtq_config_set(&c, "cleanup_interval", "1", err, sizeof err), 0);
  assert_int_equal(c.cleanup_interval, 1);
  assert_int_equal(rtq_config_set(&c, "max_task_history", "0", err, sizeof err), 0);
  assert_int_equal(c.max_task_history, 0);
  assert_int_equal(rtq_config_set(&c, "redis-url", "redis://:pw@db.internal:6380/2", err, sizeof err), 0);
  assert_string_equal(c.redis_url, "redis://:pw@db.internal:6380/2");
  assert_int_equal(rtq_config_set(&c, "namespace", "my-app.prod_1", err, sizeof err), 0);
  assert_string_equal(c.ns, "my-app.prod_1");
  assert_int_equal(rtq_config_set(&c, "MAX_CONCURRENT_TASKS", "10", err, sizeof err), 0);
  assert_int_equal(c.max_concurrent_tasks, 10);
}

static void test_config_booleans(void **state) {
  (void)state;
  rtq_config c;
  rtq_config_defaults(&c);
  const char *yes[] = {"true", "1", "yes", "on", "TRUE", "On"};
  const char *no[] = {"false", "0", "no", "off", "False", "OFF"};
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(rtq_config_set(&c, "enable_task_history", no[i], NULL, 0), 0);
    assert_false(c.enable_task_history);
    assert_int_equal(rtq_config_set(&c, "enable_task_history", yes[i], NULL, 0), 0);
    assert_true(c.enable_task_history);
  }
  assert_int_equal(rtq_config_set(&c, "enable_task_history", "2", NULL, 0), RTQ_EINVAL);
  assert_int_equal(rtq_config_set(&c, "enable_task_history", "", NULL, 0), RTQ_EINVAL);
}

static void test_config_invalid_int_names_the_setting(void **state) {
  (void)state;
  rtq_config c;
  char err[256];
  rtq_config_defaults(&c);
  assert_int_equal(rtq_config_set(&c, "max_concurrent_tasks", "abc", err, sizeof err), RTQ_EINVAL);
  assert_string_equal(err, "invalid max_concurrent_tasks \"abc\": expected an integer 1..10000");
  assert_int_equal(c.max_concurrent_tasks, 50); /* unchanged */

  const char *bad[] = {"0", "10001", "-1", " 5", "5 ", "+5", "5x", "", "99999999999999999999", "1e3", "0x10"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(rtq_config_set(&c, "max_concurrent_tasks", bad[i], err, sizeof err), RTQ_EINVAL);
    assert_non_null(strstr(err, "max_concurrent_tasks"));
  }
  assert_int_equal(rtq_config_set(&c, "cleanup_interval", "86401", err, sizeof err), RTQ_EINVAL);
  assert_string_equal(err, "invalid cleanup_interval \"86401\": expected an integer 1..86400");
  assert_int_equal(rtq_config_set(&c, "max_task_history", "-1", err, sizeof err), RTQ_EINVAL);
  assert_string_equal(err, "invalid max_task_history \"-1\": expected an integer 0..100000000");
}

static void test_config_invalid_level_and_namespace(void **state) {
  (void)state;
  rtq_config c;
  char err[256];
  rtq_config_defaults(&c);
  assert_int_equal(rtq_config_set(&c, "log_level", "loud", err, sizeof err), RTQ_EINVAL);
  assert_string_equal(err, "invalid log_level \"loud\": expected DEBUG, INFO, WARNING or ERROR");
  assert_int_equal(c.log_level, RTQ_LOG_INFO);

  const char *bad[] = {"", "a:b", "{rtq}", "a b", "a*"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(rtq_config_set(&c, "namespace", bad[i], err, sizeof err), RTQ_EINVAL);
    assert_non_null(strstr(err, "invalid namespace"));
  }
  char ns[66];
  memset(ns, 'n', 65);
  ns[65] = '\0';
  assert_int_equal(rtq_config_set(&c, "namespace", ns, err, sizeof err), RTQ_EINVAL);
  ns[64] = '\0';
  assert_int_equal(rtq_config_set(&c, "namespace", ns, err, sizeof err), 0);
  assert_string_equal(c.ns, ns);
}

static void test_config_invalid_url_never_echoes_password(void **state) {
  (void)state;
  rtq_config c;
  char err[256];
  rtq_config_defaults(&c);
  assert_int_equal(rtq_config_set(&c, "redis_url", "redis://:hunter2@host:notaport", err, sizeof err), RTQ_EINVAL);
  assert_non_null(strstr(err, "invalid redis_url"));
  assert_non_null(strstr(err, "port"));
  assert_null(strstr(err, "hunter2"));
  assert_string_equal(c.redis_url, "redis://127.0.0.1:6379/0");
  assert_int_equal(rtq_config_set(&c, "redis_url", "http://x", err, sizeof err), RTQ_EINVAL);
  assert_int_equal(rtq_config_set(&c, "redis_url", "unix:///tmp/r.sock?db=3", err, sizeof err), 0);
}

static void test_config_unknown_setting(void **state) {
  (void)state;
  rtq_config c;
  char err[256];
  rtq_config_defaults(&c);
  assert_int_equal(rtq_config_set(&c, "max_tasks", "1", err, sizeof err), RTQ_ENOTFOUND);
  assert_string_equal(err, "unknown setting \"max_tasks\"");
  assert_int_equal(rtq_config_set(&c, "max_concurrent_tasks_", "1", err, sizeof err), RTQ_ENOTFOUND);
  assert_int_equal(rtq_config_set(&c, "", "1", err, sizeof err), RTQ_ENOTFOUND);
  assert_int_equal(rtq_config_set(&c, NULL, "1", err, sizeof err), RTQ_EINVAL);
  assert_int_equal(rtq_config_set(&c, "log_level", NULL, err, sizeof err), RTQ_EINVAL);
}

static void test_config_hostile_value_is_cut_and_printable(void **state) {
  (void)state;
  rtq_config c;
  char err[512];
  rtq_config_defaults(&c);
  char v[200];
  memset(v, 'x', sizeof v - 1);
  v[sizeof v - 1] = '\0';
  v[3] = '\n';
  v[4] = '\x1b';
  assert_int_equal(rtq_config_set(&c, "default_timeout", v, err, sizeof err), RTQ_EINVAL);
  assert_null(strchr(err, '\n'));
  assert_null(strchr(err, '\x1b'));
  assert_non_null(strstr(err, "xxx??xxx"));
  assert_non_null(strstr(err, "...\""));
  assert_true(strlen(err) < 150);
  /* A small errbuf is cut, not overrun. */
  char tiny[10];
  assert_int_equal(rtq_config_set(&c, "default_timeout", "zz", tiny, sizeof tiny), RTQ_EINVAL);
  assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_config_from_env(void **state) {
  (void)state;
  rtq_config c;
  char err[256];
  rtq_config_defaults(&c);
  setenv("RTQ_MAX_CONCURRENT_TASKS", "4", 1);
  setenv("RTQ_ENABLE_TASK_HISTORY", "false", 1);
  setenv("RTQ_LOG_LEVEL", "debug", 1);
  setenv("RTQ_REDIS_URL", "redis://10.0.0.5:7000/1", 1);
  setenv("RTQ_NAMESPACE", "staging", 1);
  assert_int_equal(rtq_config_from_env(&c, err, sizeof err), 0);
  assert_int_equal(c.max_concurrent_tasks, 4);
  assert_false(c.enable_task_history);
  assert_int_equal(c.log_level, RTQ_LOG_DEBUG);
  assert_string_equal(c.redis_url, "redis://10.0.0.5:7000/1");
  assert_string_equal(c.ns, "staging");
  assert_int_equal(c.default_timeout, 300); /* not in the environment */
  clean_env(NULL);
}

static void test_config_from_env_names_the_variable(void **state) {
  (void)state;
  rtq_config c;
  char err[256];
  rtq_config_defaults(&c);
  setenv("RTQ_DEFAULT_TIMEOUT", "soon", 1);
  assert_int_equal(rtq_config_from_env(&c, err, sizeof err), RTQ_EINVAL);
  assert_string_equal(err, "RTQ_DEFAULT_TIMEOUT: invalid default_timeout \"soon\": expected an integer 1..31536000");
  assert_int_equal(c.default_timeout, 300);
  clean_env(NULL);
}

static void test_config_from_env_empty_environment_changes_nothing(void **state) {
  (void)state;
  rtq_config a, b;
  rtq_config_defaults(&a);
  rtq_config_defaults(&b);
  assert_int_equal(rtq_config_from_env(&a, NULL, 0), 0);
  assert_memory_equal(&a, &b, sizeof a);
}

/* --print-config's lines: the values as a flag takes them back, the
 * password hidden whatever it holds. */
static void test_config_print_hides_the_password(void **state) {
  (void)state;
  static const struct {
    const char *url, *shown;
  } cases[] = {
      {"redis://u:p%40ss@h:1/2", "redis_url=redis://u:***@h:1/2\n"},
      {"redis://:pw@h", "redis_url=redis://:***@h\n"},
      {"redis://user@h:6379/0", "redis_url=redis://user@h:6379/0\n"},
      {"redis://h:6379", "redis_url=redis://h:6379\n"},
      {"unix:///tmp/r.sock", "redis_url=unix:///tmp/r.sock\n"},
      {"redis-sentinel://u:pw@s1,s2/m?sentinel_password=s%26p&sentinel_user=su",
       "redis_url=redis-sentinel://u:***@s1,s2/m?sentinel_password=***&sentinel_user=su\n"},
      {"redis-sentinel://s1/m?sentinel_user=su&sentinel_password=sp",
       "redis_url=redis-sentinel://s1/m?sentinel_user=su&sentinel_password=***\n"},
  };
  static const char *const names[] = {"log_level", "redis_url", "enable-task-history", "bogus", NULL};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    rtq_config c;
    rtq_config_defaults(&c);
    assert_int_equal(rtq_config_set(&c, "redis_url", cases[i].url, NULL, 0), 0);
    assert_int_equal(rtq_config_set(&c, "enable_task_history", "off", NULL, 0), 0);
    char buf[512] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(f);
    rtq_config_print(&c, names, f);
    fclose(f);
    char want[256];
    snprintf(want, sizeof want, "log_level=INFO\n%senable_task_history=false\n", cases[i].shown);
    assert_string_equal(buf, want);
  }
}

/* argv keeps its length; both passwords of a sentinel URL are starred. */
static void test_config_hide_secret_sentinel_password(void **state) {
  (void)state;
  char arg[] = "--redis=redis-sentinel://u:pw@s1/m?sentinel_password=top&sentinel_user=x";
  rtq_config_hide_secret(arg);
  assert_string_equal(arg, "--redis=redis-sentinel://u:**@s1/m?sentinel_password=***&sentinel_user=x");
  char plain[] = "redis-sentinel://s1/m?sentinel_password=only";
  rtq_config_hide_secret(plain);
  assert_string_equal(plain, "redis-sentinel://s1/m?sentinel_password=****");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_defaults_match_the_manager),
      cmocka_unit_test(test_config_protocol_takes_2_only),
      cmocka_unit_test(test_config_set_by_name_and_dash_spelling),
      cmocka_unit_test(test_config_booleans),
      cmocka_unit_test(test_config_invalid_int_names_the_setting),
      cmocka_unit_test(test_config_invalid_level_and_namespace),
      cmocka_unit_test(test_config_invalid_url_never_echoes_password),
      cmocka_unit_test(test_config_unknown_setting),
      cmocka_unit_test(test_config_hostile_value_is_cut_and_printable),
      cmocka_unit_test(test_config_print_hides_the_password),
      cmocka_unit_test(test_config_hide_secret_sentinel_password),
      cmocka_unit_test_setup(test_config_from_env, clean_env),
      cmocka_unit_test_setup(test_config_from_env_names_the_variable, clean_env),
      cmocka_unit_test_setup(test_config_from_env_empty_environment_changes_nothing, clean_env),
  };
  return cmocka_run_group_tests(tests, clean_env, NULL);
}
