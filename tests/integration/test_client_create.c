/*
 * test_client_create.c - rtq_client_new and enqueueing under protocol 2
 * against a real redis-server: options and failures of the handle,
 * rtq_create_task with every option, the idempotent id, bad input
 * (nothing written), Redis OOM, and rtq_create_tasks with a batch of
 * 10,000 and a NOSCRIPT mid-batch. (Where the options land in the task
 * hash, ids per queue and how batches are split: test_client_create2.)
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "argv.h"
#include "conn.h"
#include "harness.h"
#include "keys2.h"
#include "rtq/client.h"

static rtq_keys2 keys;

static int setup(void **state) {
  (void)state;
  rtq_test_redis_flush();
  rtq_keys2_init(&keys, "rtq");
  return 0;
}

static rtq_client *client_for(const char *url) {
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = url;
  o.protocol = 2;
  rtq_client *c = NULL;
  int rc = rtq_client_new(&o, &c);
  if (rc != 0) fail_msg("rtq_client_new: %s", rtq_client_errstr(NULL));
  return c;
}

static rtq_client *client(void) { return client_for(rtq_test_redis_url()); }

static long long dbsize(rtq_conn *c) { return rtq_test_cmd_int(c, "DBSIZE", NULL); }

/* A TCP port nothing listens on. */
static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t len = sizeof sa;
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  return ntohs(sa.sin_port);
}

static void test_client_new_from_env(void **state) {
  (void)state;
  setenv("RTQ_REDIS_URL", rtq_test_redis_url(), 1);
  setenv("RTQ_NAMESPACE", "envns", 1);
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(NULL, &c), 0);
  assert_string_equal(rtq_client_errstr(c), "");
  char id[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(c, "t", NULL, NULL, id, NULL), 0);
  unsetenv("RTQ_REDIS_URL");
  unsetenv("RTQ_NAMESPACE");
  rtq_client_free(c);

  rtq_conn *rc = rtq_test_conn();
  rtq_keys2 ks;
  assert_int_equal(rtq_keys2_init(&ks, "envns"), 0);
  rtq_key2 task = rtq_keys2_task(&ks, "default", id), queue = rtq_keys2_queue(&ks, "default");
  assert_int_equal(rtq_test_cmd_int(rc, "EXISTS", task.s, NULL), 1);
  assert_int_equal(rtq_test_cmd_int(rc, "LLEN", queue.s, NULL), 1);
  rtq_conn_free(rc);
}

/* The deprecated cluster option: the handle is made and works as without
 * it, and one warning line says the option is ignored. */
static void test_client_new_cluster_option_is_deprecated(void **state) {
  (void)state;
  int fd = rtq_test_log_capture_start();
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url();
  o.cluster = true;
  rtq_client *c = NULL;
  int rc = rtq_client_new(&o, &c);
  char *logged = rtq_test_log_capture_end(fd);
  assert_int_equal(rc, 0);
  char id[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(c, "job", NULL, NULL, id, NULL), 0);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(c, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);
  rtq_client_free(c);
  assert_non_null(strstr(logged, "rtq_client_options.cluster is deprecated and ignored"));
  assert_ptr_equal(strchr(logged, '\n'), logged + strlen(logged) - 1); /* one line */
  free(logged);
}

static void test_client_new_bad_options(void **state) {
  (void)state;
  rtq_client *c = (rtq_client *)1;
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = "http://nope";
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_null(c);
  assert_true(strlen(rtq_client_errstr(NULL)) > 0);

  o.redis_url = rtq_test_redis_url();
  o.ns = "bad ns";
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(NULL), "namespace"));
  o.ns = NULL;
  o.default_queue = "no spaces";
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  o.default_queue = NULL;
  o.pool_size = -1;
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_int_equal(rtq_client_new(&o, NULL), RTQ_EINVAL);
  o.pool_size = 0;
  o.reply_spin_us = 1001;
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(NULL), "spin"));
  o.reply_spin_us = -2;
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  rtq_client_free(NULL);
}

/* redis_url_file: the URL, password included, comes from a file; with
 * redis_url as well, or a missing file, rtq_client_new refuses, naming
 * the file; a URL given makes RTQ_REDIS_URL_FILE moot (not read). */
static void test_client_new_url_file(void **state) {
  (void)state;
  char path[300], url[300];
  snprintf(path, sizeof path, "%s/client-url-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
  snprintf(url, sizeof url, "redis://default:L1bSecret@%s\n", rtq_test_redis_url() + strlen("redis://"));
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(url, f);
  fclose(f);
  assert_int_equal(chmod(path, 0600), 0);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url_file = path;
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&o, &c), 0);
  char id[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(c, "file.url", NULL, NULL, id, NULL), 0);
  rtq_client_free(c);

  o.redis_url = rtq_test_redis_url();
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(NULL), "not both"));
  o.redis_url = NULL;
  unlink(path);
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(NULL), path));
  assert_non_null(strstr(rtq_client_errstr(NULL), "No such file"));

  setenv("RTQ_REDIS_URL_FILE", path, 1);
  o.redis_url_file = NULL;
  assert_int_equal(rtq_client_new(&o, &c), RTQ_EINVAL); /* the variable is read... */
  o.redis_url = rtq_test_redis_url();
  assert_int_equal(rtq_client_new(&o, &c), 0);          /* ...unless a URL is given */
  rtq_client_free(c);
  unsetenv("RTQ_REDIS_URL_FILE");
}

/* The reply spin changes how a client waits, never what it reads: with it
 * off, at its default and at its largest, the same pipelined batch and the
 * same single calls give the same answers. */
static void test_client_reply_spin_settings_read_the_same(void **state) {
  (void)state;
  int spins[3] = {-1, 0, 1000};
  for (int s = 0; s < 3; s++) {
    rtq_client_options o;
    memset(&o, 0, sizeof o);
    o.redis_url = rtq_test_redis_url();
    o.reply_spin_us = spins[s];
    rtq_client *c = NULL;
    assert_int_equal(rtq_client_new(&o, &c), 0);
    enum { N = 300 };
    rtq_task_spec specs[N];
    memset(specs, 0, sizeof specs);
    for (int i = 0; i < N; i++) specs[i].name = "spin.check";
    assert_int_equal(rtq_create_tasks(c, specs, N), 0);
    for (int i = 0; i < N; i += 37) {
      assert_int_equal(specs[i].rc, 0);
      assert_int_equal(specs[i].created, 1);
      rtq_task *t = NULL;
      assert_int_equal(rtq_get_task(c, specs[i].id, &t), 0);
      assert_string_equal(t->id, specs[i].id);
      assert_int_equal(t->status, RTQ_STATUS_PENDING);
      rtq_task_free(t);
    }
    rtq_client_free(c);
  }
}

static void test_client_new_redis_down(void **state) {
  (void)state;
  char url[64];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", dead_port());
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = url;
  o.connect_timeout_ms = 1000;
  rtq_client *c = NULL;
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_client_new(&o, &c), RTQ_ECONN);
  assert_true(rtq_test_now_ms() - t0 < 1500);
  assert_null(c);
  assert_non_null(strstr(rtq_client_errstr(NULL), "refused"));
}

/* A server that accepts but never answers (SIGSTOP) fails within the
 * timeouts instead of hanging. */
static void test_client_new_redis_stopped(void **state) {
  (void)state;
  rtq_test_redis *r = rtq_test_redis_start(NULL);
  assert_non_null(r);
  assert_int_equal(rtq_test_redis_sigstop(r), 0);
  rtq_client_options o;
  memset(&o, 0, sizeof o);
  o.redis_url = rtq_test_redis_url_of(r);
  o.connect_timeout_ms = 500;
  o.command_timeout_ms = 500;
  rtq_client *c = NULL;
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_client_new(&o, &c), RTQ_ECONN);
  assert_true(rtq_test_now_ms() - t0 < 2000);
  assert_int_equal(rtq_test_redis_sigcont(r), 0);
  rtq_test_redis_stop(r);
}

static void test_client_create_all_options(void **state) {
  (void)state;
  rtq_client *c = client();
  rtq_args *a = rtq_args_new();
  rtq_args_set_str(a, "to", "ann@example.com");
  rtq_args_set_int(a, "n", 42);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.queue = "mail";
  o.timeout_ms = 12000;
  o.result_ttl_s = 600;
  o.max_retries = 3;
  o.retry_backoff_ms = 250;
  char id[RTQ_TASK_ID_SIZE];
  int created = -1;
  assert_int_equal(rtq_create_task(c, "send_email", a, &o, id, &created), 0);
  assert_int_equal(created, 1);
  assert_int_equal(strlen(id), 26);
  rtq_args_free(a);

  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(c, id, &t), 0);
  assert_string_equal(t->id, id);
  assert_string_equal(t->name, "send_email");
  assert_string_equal(t->queue, "mail");
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  assert_int_equal(t->timeout_ms, 12000);
  assert_int_equal(t->result_ttl_s, 600);
  assert_int_equal(t->max_retries, 3);
  assert_int_equal(t->attempts, 0);
  assert_true(t->created_at > 0);
  assert_int_equal(t->started_at, 0);
  assert_null(t->result);
  assert_null(t->error_code);
  char *json = NULL;
  assert_int_equal(rtq_task_args_json(t, &json), 0);
  assert_string_equal(json, "{\"to\":\"ann@example.com\",\"n\":42}");
  free(json);
  assert_int_equal(rtq_task_result_json(t, &json), 0);
  assert_string_equal(json, "null");
  free(json);
  rtq_task_free(t);

  /* Its id is on the queue, and the queue counts it. */
  rtq_conn *rc = rtq_test_conn();
  rtq_key2 q = rtq_keys2_queue(&keys, "mail");
  char *head = rtq_test_cmd_str(rc, "LINDEX", q.s, "0", NULL);
  assert_non_null(head);
  assert_string_equal(head, id);
  free(head);
  char *backoff = rtq_test_cmd_str(rc, "HGET", rtq_keys2_task(&keys, "mail", id).s, "bo", NULL);
  assert_non_null(backoff);
  assert_string_equal(backoff, "250");
  free(backoff);
  char *n = rtq_test_cmd_str(rc, "HGET", rtq_keys2_stats(&keys, "mail").s, "enqueued", NULL);
  assert_non_null(n);
  assert_string_equal(n, "1");
  free(n);
  rtq_conn_free(rc);
  rtq_client_free(c);
}

static void test_client_create_defaults_and_null_out(void **state) {
  (void)state;
  rtq_client *c = client();
  assert_int_equal(rtq_create_task(c, "t", NULL, NULL, NULL, NULL), 0);
  rtq_conn *rc = rtq_test_conn();
  rtq_key2 q = rtq_keys2_queue(&keys, "default");
  assert_int_equal(rtq_test_cmd_int(rc, "LLEN", q.s, NULL), 1);
  rtq_conn_free(rc);
  rtq_client_free(c);
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_client_create_delayed(void **state) {
  (void)state;
  rtq_client *c = client();
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.delay_ms = 60000;
  char id[RTQ_TASK_ID_SIZE], id2[RTQ_TASK_ID_SIZE];
  assert_int_equal(rtq_create_task(c, "later", NULL, &o, id, NULL), 0);
  memset(&o, 0, sizeof o);
  uint64_t at = wall_ms() + 120000;
  o.run_at_ms = at;
  assert_int_equal(rtq_create_task(c, "at", NULL, &o, id2, NULL), 0);

  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(c, id, &t), 0);
  assert_true(t->run_at >= t->created_at + 60000);
  rtq_task_free(t);
  assert_int_equal(rtq_get_task(c, id2, &t), 0);
  assert_int_equal(t->run_at, at);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);

  rtq_conn *rc = rtq_test_conn();
  rtq_key2 q = rtq_keys2_queue(&keys, "default"), d = rtq_keys2_delayed(&keys, "default");
  assert_int_equal(rtq_test_cmd_int(rc, "LLEN", q.s, NULL), 0);
  assert_int_equal(rtq_test_cmd_int(rc, "ZCARD", d.s, NULL), 2);
  rtq_conn_free(rc);
  rtq_client_free(c);
}

static void test_client_create_idempotent_id(void **state) {
  (void)state;
  rtq_client *c = client();
  rtq_args *a = rtq_args_new();
  rtq_args_set_int(a, "v", 1);
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.id = "order-1234";
  char id[RTQ_TASK_ID_SIZE];
  int created = -1;
  assert_int_equal(rtq_create_task(c, "charge", a, &o, id, &created), 0);
  assert_string_equal(id, "order-1234");
  assert_int_equal(created, 1);

  /* Same id, other args: the first task stays as it was. (Ids are per
   * queue: test_client_create2.) */
  rtq_args_set_int(a, "v", 2);
  assert_int_equal(rtq_create_task(c, "charge", a, &o, id, &created), 0);
  assert_string_equal(id, "order-1234");
  assert_int_equal(created, 0);
  rtq_args_free(a);

  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(c, "order-1234", &t), 0);
  assert_string_equal(t->queue, "default");
  char *json = NULL;
  assert_int_equal(rtq_task_args_json(t, &json), 0);
  assert_string_equal(json, "{\"v\":1}");
  free(json);
  rtq_task_free(t);

  /* The id option may point at the output buffer itself. */
  char same[RTQ_TASK_ID_SIZE] = "order-1234";
  memset(&o, 0, sizeof o);
  o.id = same;
  assert_int_equal(rtq_create_task(c, "charge", NULL, &o, same, &created), 0);
  assert_string_equal(same, "order-1234");
  assert_int_equal(created, 0);

  rtq_conn *rc = rtq_test_conn();
  rtq_key2 q = rtq_keys2_queue(&keys, "default");
  assert_int_equal(rtq_test_cmd_int(rc, "LLEN", q.s, NULL), 1);
  rtq_conn_free(rc);
  rtq_client_free(c);
}

static void test_client_create_bad_input_writes_nothing(void **state) {
  (void)state;
  rtq_client *c = client();
  /* What the client wrote at start (the namespace's protocol mark). */
  rtq_conn *rc = rtq_test_conn();
  long long before = dbsize(rc);
  assert_true(before <= 1);
  rtq_task_options o;
  char id[RTQ_TASK_ID_SIZE] = "x";
  int created = 7;

  assert_int_equal(rtq_create_task(c, "bad name", NULL, NULL, id, &created), RTQ_EINVAL);
  assert_string_equal(id, "");
  assert_int_equal(created, 0);
  assert_non_null(strstr(rtq_client_errstr(c), "task name"));
  assert_int_equal(rtq_create_task(c, NULL, NULL, NULL, id, NULL), RTQ_EINVAL);
  char longname[200];
  memset(longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(rtq_create_task(c, longname, NULL, NULL, id, NULL), RTQ_EINVAL);

  memset(&o, 0, sizeof o);
  o.queue = "q{1}";
  assert_int_equal(rtq_create_task(c, "t", NULL, &o, id, NULL), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(c), "queue"));
  memset(&o, 0, sizeof o);
  o.id = "id\nwith newline";
  assert_int_equal(rtq_create_task(c, "t", NULL, &o, id, NULL), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(c), "task id"));
  memset(&o, 0, sizeof o);
  o.delay_ms = 1000;
  o.run_at_ms = 1;
  assert_int_equal(rtq_create_task(c, "t", NULL, &o, id, NULL), RTQ_EINVAL);
  memset(&o, 0, sizeof o);
  o.timeout_ms = RTQ_TASK_MAX_TIMEOUT_MS + 1;
  assert_int_equal(rtq_create_task(c, "t", NULL, &o, id, NULL), RTQ_ERANGE);

  rtq_args *arr = rtq_args_new_array();
  rtq_args_push_int(arr, 1);
  assert_int_equal(rtq_create_task(c, "t", arr, NULL, id, NULL), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(c), "map"));
  rtq_args_free(arr);

  /* Over the 1 MiB default payload limit. */
  rtq_args *big = rtq_args_new();
  char *blob = malloc(1100 * 1024);
  memset(blob, 'x', 1100 * 1024);
  rtq_args_set_strn(big, "blob", blob, 1100 * 1024);
  free(blob);
  assert_int_equal(rtq_create_task(c, "t", big, NULL, id, NULL), RTQ_ETOOBIG);
  assert_non_null(strstr(rtq_client_errstr(c), "limit"));
  rtq_args_free(big);

  /* Nested deeper than args may be. */
  rtq_args *deep = rtq_args_new();
  rtq_args *cur = deep;
  for (int i = 0; i < 40; i++) {
    rtq_args *child = rtq_args_new();
    rtq_args_set_child(cur, "d", child);
    const rtq_args *got;
    rtq_args_get_child(cur, "d", &got);
    cur = (rtq_args *)got;
  }
  assert_int_equal(rtq_create_task(c, "t", deep, NULL, id, NULL), RTQ_EDEPTH);
  rtq_args_free(deep);

  assert_int_equal(dbsize(rc), before);
  rtq_conn_free(rc);
  rtq_client_free(c);
}

/* rtq_create_task_json: the same task as through an rtq_args tree, and
 * bad JSON refused before anything is written. */
static void test_client_create_json_args(void **state) {
  (void)state;
  rtq_client *c = client();
  rtq_task_options o;
  memset(&o, 0, sizeof o);
  o.queue = "mail";
  o.timeout_ms = 12000;
  char id[RTQ_TASK_ID_SIZE];
  int created = -1;
  assert_int_equal(rtq_create_task_json(c, "send_email", "{\"to\":\"ann@example.com\",\"n\":42,\"f\":1.5,"
                                        "\"l\":[true,null]}", &o, id, &created), 0);
  assert_int_equal(created, 1);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(c, id, &t), 0);
  assert_string_equal(t->name, "send_email");
  assert_string_equal(t->queue, "mail");
  assert_int_equal(t->timeout_ms, 12000);
  char *json = NULL;
  assert_int_equal(rtq_task_args_json(t, &json), 0);
  assert_string_equal(json, "{\"to\":\"ann@example.com\",\"n\":42,\"f\":1.5,\"l\":[true,null]}");
  free(json);
  rtq_task_free(t);
  /* NULL args, as rtq_create_task's NULL: none stored (a handler gets an
   * empty map), so the reader says null. */
  assert_int_equal(rtq_create_task_json(c, "t", NULL, NULL, id, NULL), 0);
  assert_int_equal(rtq_get_task(c, id, &t), 0);
  assert_int_equal(rtq_task_args_json(t, &json), 0);
  assert_string_equal(json, "null");
  free(json);
  rtq_task_free(t);
  /* The idempotent id works the same. */
  o.id = "json-id-1";
  assert_int_equal(rtq_create_task_json(c, "t", "{}", &o, id, &created), 0);
  assert_int_equal(created, 1);
  assert_int_equal(rtq_create_task_json(c, "t", "{}", &o, id, &created), 0);
  assert_int_equal(created, 0);
  assert_string_equal(id, "json-id-1");

  rtq_conn *rc = rtq_test_conn();
  long long before = dbsize(rc);
  created = 7;
  strcpy(id, "x");
  assert_int_equal(rtq_create_task_json(c, "t", "{\"a\":", NULL, id, &created), RTQ_EJSON);
  assert_string_equal(id, "");
  assert_int_equal(created, 0);
  assert_non_null(strstr(rtq_client_errstr(c), "task args"));
  assert_int_equal(rtq_create_task_json(c, "t", "[1,2]", NULL, id, NULL), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(c), "map"));
  assert_int_equal(rtq_create_task_json(c, "t", "\"text\"", NULL, id, NULL), RTQ_EINVAL);
  assert_int_equal(rtq_create_task_json(c, "bad name", "{}", NULL, id, NULL), RTQ_EINVAL);
  assert_non_null(strstr(rtq_client_errstr(c), "task name"));
  assert_int_equal(rtq_create_task_json(c, "t", "{\"i\":99999999999999999999}", NULL, id, NULL), RTQ_EJSON);
  assert_int_equal(rtq_create_task_json(NULL, "t", "{}", NULL, id, NULL), RTQ_EINVAL);
  /* Without a client every spec still gets its outcome: a zeroed spec
   * would read as created with an empty id. */
  rtq_task_spec none[2];
  memset(none, 0, sizeof none);
  none[0].name = none[1].name = "t";
  none[1].created = 1;
  assert_int_equal(rtq_create_tasks(NULL, none, 2), RTQ_EINVAL);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(none[i].rc, RTQ_EINVAL);
    assert_int_equal(none[i].created, 0);
    assert_string_equal(none[i].id, "");
  }
  assert_int_equal(dbsize(rc), before);
  rtq_conn_free(rc);
  rtq_client_free(c);
}

/* A smaller max_payload is honoured. */
static void test_client_create_max_payload_option(void **state) {
  (void)state;
  rtq_client_options co;
  memset(&co, 0, sizeof co);
  co.redis_url = rtq_test_redis_url();
  co.protocol = 2;
  co.max_payload = 200;
  rtq_client *c = NULL;
  assert_int_equal(rtq_client_new(&co, &c), 0);
  rtq_args *a = rtq_args_new();
  char s[300];
  memset(s, 'y', sizeof s - 1);
  s[sizeof s - 1] = '\0';
  rtq_args_set_str(a, "s", s);
  assert_int_equal(rtq_create_task(c, "t", a, NULL, NULL, NULL), RTQ_ETOOBIG);
  rtq_args_free(a);
  assert_int_equal(rtq_create_task(c, "t", NULL, NULL, NULL, NULL), 0);
  rtq_client_free(c);
}

static void test_client_create_oom(void **state) {
  (void)state;
  rtq_test_redis_options ro;
  memset(&ro, 0, sizeof ro);
  ro.maxmemory = "3mb";
  rtq_test_redis *srv = rtq_test_redis_start(&ro);
  assert_non_null(srv);
  rtq_client *c = client_for(rtq_test_redis_url_of(srv));
  rtq_args *a = rtq_args_new();
  char *blob = malloc(200 * 1024);
  memset(blob, 'z', 200 * 1024);
  rtq_args_set_strn(a, "blob", blob, 200 * 1024);
  free(blob);
  int rc = 0;
  for (int i = 0; i < 200 && rc == 0; i++) rc = rtq_create_task(c, "fill", a, NULL, NULL, NULL);
  assert_int_equal(rc, RTQ_EOOM);
  assert_non_null(strstr(rtq_client_errstr(c), "OOM"));
  rtq_args_free(a);
  rtq_client_free(c);
  rtq_test_redis_stop(srv);
}

/* ---- batches ------------------------------------------------------------ */

#define BATCH 10000

static void test_client_create_batch_10000(void **state) {
  (void)state;
  rtq_client *c = client();
  rtq_task_spec *specs = calloc(BATCH, sizeof *specs);
  rtq_args **args = calloc(BATCH, sizeof *args);
  for (int i = 0; i < BATCH; i++) {
    args[i] = rtq_args_new();
    rtq_args_set_int(args[i], "i", i);
    specs[i].name = "batch";
    specs[i].args = args[i];
  }
  specs[17].name = "bad name"; /* fails alone */
  uint64_t t0 = rtq_test_now_ms();
  assert_int_equal(rtq_create_tasks(c, specs, BATCH), RTQ_EINVAL);
  uint64_t took = rtq_test_now_ms() - t0;
  assert_non_null(strstr(rtq_client_errstr(c), "task 17"));
  print_message("10000 tasks in one batch: %llu ms\n", (unsigned long long)took);

  assert_int_equal(specs[17].rc, RTQ_EINVAL);
  assert_string_equal(specs[17].id, "");
  rtq_conn *rc = rtq_test_conn();
  for (int i = 0; i < BATCH; i++) {
    if (i == 17) continue;
    assert_int_equal(specs[i].rc, 0);
    assert_int_equal(specs[i].created, 1);
    rtq_key2 k = rtq_keys2_task(&keys, "default", specs[i].id);
    rtq_argv a;
    rtq_argv_init(&a);
    rtq_argv_add_str(&a, "HGET");
    rtq__argv_add_key2(&a, k);
    rtq_argv_add_str(&a, "x"); /* args of up to 64 bytes stay in the task hash */
    assert_int_equal(rtq_conn_append(rc, &a), 0);
    rtq_argv_destroy(&a);
  }
  for (int i = 0; i < BATCH; i++) {
    if (i == 17) continue;
    redisReply *r = NULL;
    assert_int_equal(rtq_conn_get_reply(rc, &r), 0);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char *json = NULL;
    assert_int_equal(rtq_msgpack_to_json(r->str, r->len, &json), 0);
    char want[32];
    snprintf(want, sizeof want, "{\"i\":%d}", i);
    assert_string_equal(json, want);
    free(json);
    freeReplyObject(r);
  }
  rtq_key2 q = rtq_keys2_queue(&keys, "default");
  assert_int_equal(rtq_test_cmd_int(rc, "LLEN", q.s, NULL), BATCH - 1);

  /* The same batch again, each spec's id option pointing at its own
   * output id: every id exists, nothing is enqueued but the fixed one. */
  specs[17].name = "batch";
  rtq_task_options *ids = calloc(BATCH, sizeof *ids);
  for (int i = 0; i < BATCH; i++) {
    ids[i].id = i == 17 ? "fresh-17" : specs[i].id;
    specs[i].opts = &ids[i];
  }
  assert_int_equal(rtq_create_tasks(c, specs, BATCH), 0);
  for (int i = 0; i < BATCH; i++) {
    assert_int_equal(specs[i].rc, 0);
    assert_int_equal(specs[i].created, i == 17);
  }
  assert_int_equal(rtq_test_cmd_int(rc, "LLEN", q.s, NULL), BATCH);

  /* Listing is bounded: a filter that matches nothing stops at the cap. */
  rtq_task_filter f;
  memset(&f, 0, sizeof f);
  f.name = "no-such-name";
  rtq_task_list *l = NULL;
  assert_int_equal(rtq_create_task(c, "batch", NULL, NULL, NULL, NULL), 0);
  assert_int_equal(rtq_list_tasks(c, &f, &l), 0);
  assert_int_equal(l->count, 0);
  assert_int_equal(l->examined, RTQ_LIST_MAX_EXAMINED);
  assert_true(l->truncated);
  rtq_task_list_free(l);

  for (int i = 0; i < BATCH; i++) rtq_args_free(args[i]);
  free(args);
  free(specs);
  free(ids);
  rtq_conn_free(rc);
  rtq_client_free(c);
}

/* A server that lost its scripts mid-batch: every EVALSHA meets NOSCRIPT
 * and is sent again with EVAL. */
static void test_client_create_batch_noscript(void **state) {
  (void)state;
  rtq_client *c = client();
  rtq_conn *rc = rtq_test_conn();
  rtq_test_cmd_ok(rc, "SCRIPT", "FLUSH", NULL);
  rtq_task_spec specs[50];
  memset(specs, 0, sizeof specs);
  for (int i = 0; i < 50; i++) specs[i].name = "ns";
  assert_int_equal(rtq_create_tasks(c, specs, 50), 0);
  for (int i = 0; i < 50; i++) {
    assert_int_equal(specs[i].rc, 0);
    rtq_task *t = NULL;
    assert_int_equal(rtq_get_task(c, specs[i].id, &t), 0);
    rtq_task_free(t);
  }
  /* And a single create after another flush. */
  rtq_test_cmd_ok(rc, "SCRIPT", "FLUSH", NULL);
  assert_int_equal(rtq_create_task(c, "ns", NULL, NULL, NULL, NULL), 0);
  rtq_key2 q = rtq_keys2_queue(&keys, "default");
  assert_int_equal(rtq_test_cmd_int(rc, "LLEN", q.s, NULL), 51);
  assert_int_equal(rtq_create_tasks(c, NULL, 0), 0);
  rtq_conn_free(rc);
  rtq_client_free(c);
}

/* A Redis that went away between calls: the next call fails with
 * RTQ_ECONN and a later one, after the restart, works again. */
static void test_client_create_reconnects(void **state) {
  (void)state;
  rtq_test_redis *srv = rtq_test_redis_start(NULL);
  assert_non_null(srv);
  rtq_client *c = client_for(rtq_test_redis_url_of(srv));
  assert_int_equal(rtq_create_task(c, "a", NULL, NULL, NULL, NULL), 0);
  assert_int_equal(rtq_test_redis_kill9(srv), 0);
  assert_int_equal(rtq_create_task(c, "b", NULL, NULL, NULL, NULL), RTQ_ECONN);
  assert_true(strlen(rtq_client_errstr(c)) > 0);
  assert_int_equal(rtq_test_redis_restart(srv), 0);
  RTQ_TEST_WAIT_FOR(rtq_create_task(c, "c", NULL, NULL, NULL, NULL) == 0, 10000);
  rtq_client_free(c);
  rtq_test_redis_stop(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_client_new_from_env, setup),
      cmocka_unit_test_setup(test_client_new_cluster_option_is_deprecated, setup),
      cmocka_unit_test_setup(test_client_new_bad_options, setup),
      cmocka_unit_test_setup(test_client_new_url_file, setup),
      cmocka_unit_test_setup(test_client_new_redis_down, setup),
      cmocka_unit_test_setup(test_client_reply_spin_settings_read_the_same, setup),
      cmocka_unit_test_setup(test_client_new_redis_stopped, setup),
      cmocka_unit_test_setup(test_client_create_all_options, setup),
      cmocka_unit_test_setup(test_client_create_defaults_and_null_out, setup),
      cmocka_unit_test_setup(test_client_create_delayed, setup),
      cmocka_unit_test_setup(test_client_create_idempotent_id, setup),
      cmocka_unit_test_setup(test_client_create_bad_input_writes_nothing, setup),
      cmocka_unit_test_setup(test_client_create_json_args, setup),
      cmocka_unit_test_setup(test_client_create_max_payload_option, setup),
      cmocka_unit_test_setup(test_client_create_oom, setup),
      cmocka_unit_test_setup(test_client_create_batch_10000, setup),
      cmocka_unit_test_setup(test_client_create_batch_noscript, setup),
      cmocka_unit_test_setup(test_client_create_reconnects, setup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
