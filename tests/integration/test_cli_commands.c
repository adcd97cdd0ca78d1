/*
 * test_cli_commands.c - the `rtq` binary against a real redis-server:
 * enqueue, status, list, cancel, wait, retry, stats and workers, their JSON
 * output (parsed with jansson), exit codes and one-line errors; bad input
 * exits 2 with nothing written (DBSIZE stays 0); Redis down exits 4 fast.
 * The worker's part is played through the protocol.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "test_cli_env.h"
#include "test_client_fake_worker2.h"

static void enqueue_id(const char *name, const char *args, char *id) {
  cli_run r;
  if (args != NULL)
    RUN(&r, "enqueue", name, args);
  else
    RUN(&r, "enqueue", name);
  if (r.code != 0) fail_msg("enqueue: %s", r.err);
  assert_int_equal(strlen(r.out), 27);
  memcpy(id, r.out, 26);
  id[26] = '\0';
  cli_free(&r);
}

static int iso_ms(const char *s) {
  /* 2026-11-25T12:00:00.123Z */
  if (s == NULL || strlen(s) != 24) return 0;
  return s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' && s[16] == ':' &&
         s[19] == '.' && s[23] == 'Z';
}

static void test_cli_enqueue_prints_id(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  enqueue_id("resize", "{\"w\":640,\"tags\":[\"a\",\"b\"]}", id);
  cli_run r;
  RUN(&r, "status", id, "--json");
  assert_int_equal(r.code, 0);
  assert_string_equal(r.err, "");
  json_t *t = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(t, "id")), id);
  assert_string_equal(json_string_value(json_object_get(t, "name")), "resize");
  assert_string_equal(json_string_value(json_object_get(t, "queue")), "default");
  assert_string_equal(json_string_value(json_object_get(t, "status")), "pending");
  assert_true(iso_ms(json_string_value(json_object_get(t, "created_at"))));
  assert_true(json_is_null(json_object_get(t, "started_at")));
  assert_true(json_is_null(json_object_get(t, "result")));
  assert_true(json_is_null(json_object_get(t, "error")));
  json_t *args = json_object_get(t, "args");
  assert_int_equal(json_integer_value(json_object_get(args, "w")), 640);
  assert_int_equal(json_array_size(json_object_get(args, "tags")), 2);
  json_decref(t);
  cli_free(&r);

  /* A str holding a NUL byte: "\u0000" in JSON, escaped in the text. */
  enqueue_id("resize", "{\"v\":\"a\\u0000b\"}", id);
  RUN(&r, "status", id, "--json");
  assert_int_equal(r.code, 0);
  t = cli_json(&r);
  assert_int_equal(json_string_length(json_object_get(json_object_get(t, "args"), "v")), 3);
  json_decref(t);
  cli_free(&r);
  RUN(&r, "list", "--json");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "\"a\\u0000b\""));
  cli_free(&r);
  RUN(&r, "status", id);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "a\\u0000b"));
  cli_free(&r);
}

static void test_cli_enqueue_options_and_idempotent_id(void **state) {
  (void)state;
  cli_run r;
  RUN(&r, "--json", "enqueue", "bill", "{}", "--queue", "money", "--timeout", "2.5", "--retries",
      "2", "--id", "inv-7", "--result-ttl", "60");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "id")), "inv-7");
  assert_true(json_is_true(json_object_get(v, "created")));
  json_decref(v);
  cli_free(&r);
  /* Again: exists, nothing enqueued; --json after the command works too. */
  RUN(&r, "enqueue", "bill", "--id=inv-7", "--queue=money", "--json");
  assert_int_equal(r.code, 0);
  v = cli_json(&r);
  assert_true(json_is_false(json_object_get(v, "created")));
  json_decref(v);
  cli_free(&r);

  assert_int_equal(queue_len("money"), 1);
  char *s = cli_task_field("money", "inv-7", "timeout_ms");
  assert_string_equal(s, "2500");
  free(s);
  s = cli_task_field("money", "inv-7", "max_retries");
  assert_string_equal(s, "2");
  free(s);
  s = cli_task_field("money", "inv-7", "result_ttl");
  assert_string_equal(s, "60");
  free(s);

  RUN(&r, "enqueue", "later", "--delay", "30");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  assert_int_equal(rtq_test_cmd_int(rc_, "ZCARD", rtq_keys2_delayed(&keys2, "default").s, NULL), 1);

  /* --namespace puts it elsewhere. */
  RUN(&r, "--namespace", "other", "enqueue", "x", "--id", "n1");
  assert_int_equal(r.code, 0);
  cli_free(&r);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", "{other:default}:t:n1", NULL), 1);
}

static void write_big_args(const char *path, size_t n) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs("{\"blob\":\"", f);
  for (size_t i = 0; i < n; i++) fputc('x', f);
  fputs("\"}", f);
  fclose(f);
}

static void test_cli_bad_input_exits_2_writes_nothing(void **state) {
  (void)state;
  char big[] = "/tmp/rtq-cli-big-XXXXXX";
  int fd = mkstemp(big);
  close(fd);
  write_big_args(big, 1100 * 1024);
  char at_big[64];
  snprintf(at_big, sizeof at_big, "@%s", big);

  static const struct {
    const char *args[8];
    const char *needle;
  } cases[] = {
      {{"enqueue", "t", "{not json", NULL}, "invalid JSON"},
      {{"enqueue", "t", "[1,2]", NULL}, "JSON object"},
      {{"enqueue", "t", "\"str\"", NULL}, "JSON object"},
      {{"enqueue", "bad name", NULL}, "task name"},
      {{"enqueue", "t", "--queue", "q/1", NULL}, "queue name"},
      {{"enqueue", "t", "--id", "id with space", NULL}, "task id"},
      {{"enqueue", "t", "--timeout", "soon", NULL}, "--timeout"},
      {{"enqueue", "t", "--timeout", "-1", NULL}, "--timeout"},
      {{"enqueue", "t", "--retries", "x", NULL}, "--retries"},
      {{"enqueue", "t", "--frobnicate", NULL}, "unknown option"},
      {{"enqueue", NULL}, "NAME"},
      {{"enqueue", "t", "{}", "extra", NULL}, "unexpected"},
      {{"enqueue", "t", "@/nonexistent/args.json", NULL}, "cannot read"},
      {{"status", "bad/id", NULL}, "task id"},
      {{"status", NULL}, "ID"},
      {{"list", "--status", "sleeping", NULL}, "--status"},
      {{"list", "--limit", "0", NULL}, "--limit"},
      {{"wait", "x", "--timeout", "nan", NULL}, "--timeout"},
      {{"watch", "ok", "b d", NULL}, "task id"},
      {{"frob", NULL}, "unknown command"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    cli_run r;
    cli(&r, cases[i].args, env);
    cli_assert_error(&r, 2, cases[i].needle);
    cli_free(&r);
  }
  /* Over the payload limit: a clear error, exit 2. */
  cli_run r;
  RUN(&r, "enqueue", "t", at_big);
  cli_assert_error(&r, 2, "limit");
  cli_free(&r);
  unlink(big);
  /* Only the namespace's mark ({ns}:version), set when the client starts. */
  assert_int_equal(rtq_test_cmd_int(rc_, "DBSIZE", NULL), 1);
  assert_int_equal(rtq_test_cmd_int(rc_, "EXISTS", "{rtq}:version", NULL), 1);
}

static int dead_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  close(fd);
  return ntohs(sa.sin_port);
}

static void test_cli_redis_down_exits_4(void **state) {
  (void)state;
  char url[64], down_env[96];
  snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", dead_port());
  snprintf(down_env, sizeof down_env, "RTQ_REDIS_URL=%s", url);
  const char *denv[] = {down_env, NULL};
  const char *cmds[][3] = {{"enqueue", "t", NULL}, {"status", "x", NULL}, {"list", NULL, NULL},
                           {"stats", NULL, NULL},  {"workers", NULL, NULL}, {"wait", "x", NULL},
                           {"watch", NULL, NULL},  {"cancel", "x", NULL},   {"retry", "x", NULL}};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    cli_run r;
    cli(&r, cmds[i], denv);
    cli_assert_error(&r, 4, "connect");
    assert_true(r.ms < 3000);
    cli_free(&r);
  }
  /* Bad input still wins over a dead Redis: nothing is tried. */
  cli_run r;
  cli(&r, (const char *const[]){"enqueue", "t", "{oops", NULL}, denv);
  cli_assert_error(&r, 2, "JSON");
  cli_free(&r);
  /* A malformed URL is the user's input. */
  RUN(&r, "--redis", "tcp://nowhere", "stats");
  cli_assert_error(&r, 2, "URL");
  cli_free(&r);
  /* A server that hangs: still bounded (connect + command timeouts). */
  rtq_test_redis *srv = rtq_test_redis_start(NULL);
  assert_non_null(srv);
  assert_int_equal(rtq_test_redis_sigstop(srv), 0);
  RUN(&r, "--redis", rtq_test_redis_url_of(srv), "stats");
  cli_assert_error(&r, 4, NULL);
  assert_true(r.ms < 9000);
  cli_free(&r);
  assert_int_equal(rtq_test_redis_sigcont(srv), 0);
  rtq_test_redis_stop(srv);
}

static void test_cli_status_human_json_and_not_found(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  enqueue_id("crunch", "{\"n\":3}", id);
  fake_job2 j;
  assert_int_equal(fw2_take(rc_, &keys2, "default", "w9", &j), 0);
  assert_int_equal(fw2_progress(rc_, &keys2, &j, 70, "almost"), 0);
  char *det = NULL;
  size_t detlen = 0;
  assert_int_equal(rtq_json_to_msgpack("{\"row\":12}", &det, &detlen, NULL, 0), 0);
  rtq__finish2_task f = {.status = RTQ_STATUS_FAILED, .error_code = "E_BAD", .error_message = "bad thing",
                         .error_details = det, .error_details_len = detlen, .traceback = "at a()\nat b()"};
  assert_int_equal(fw2_finish(rc_, &keys2, &j, f), 0);
  free(det);

  cli_run r;
  RUN(&r, "status", id);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "status:           failed"));
  assert_non_null(strstr(r.out, "error:            E_BAD: bad thing"));
  assert_non_null(strstr(r.out, "error.details:    {\"row\":12}"));
  assert_non_null(strstr(r.out, "    at b()"));
  assert_non_null(strstr(r.out, "worker:           w9"));
  cli_free(&r);

  RUN(&r, "status", id, "--json");
  json_t *t = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(t, "status")), "failed");
  assert_int_equal(json_integer_value(json_object_get(t, "attempts")), 1);
  assert_true(iso_ms(json_string_value(json_object_get(t, "started_at"))));
  assert_true(iso_ms(json_string_value(json_object_get(t, "completed_at"))));
  json_t *e = json_object_get(t, "error");
  assert_string_equal(json_string_value(json_object_get(e, "code")), "E_BAD");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "details"), "row")), 12);
  assert_string_equal(json_string_value(json_object_get(e, "traceback")), "at a()\nat b()");
  json_decref(t);
  cli_free(&r);

  RUN(&r, "status", "no-such-task");
  cli_assert_error(&r, 3, "no-such-task");
  cli_free(&r);
}

static void test_cli_list_table_and_json(void **state) {
  (void)state;
  char a[RTQ_TASK_ID_SIZE], b[RTQ_TASK_ID_SIZE];
  cli_run r;
  RUN(&r, "enqueue", "alpha", "--id", "L1", "--queue", "qa");
  cli_free(&r);
  RUN(&r, "enqueue", "beta", "--id", "L2", "--queue", "qb");
  cli_free(&r);
  RUN(&r, "enqueue", "gamma", "--id", "L3", "--queue", "qa");
  cli_free(&r);
  strcpy(a, "L1");
  strcpy(b, "L2");
  assert_int_equal(fw2_run_one(rc_, &keys2, "qb", "w", "\"ok\""), 0);

  RUN(&r, "list");
  assert_int_equal(r.code, 0);
  assert_true(strncmp(r.out, "ID", 2) == 0);
  assert_non_null(strstr(r.out, "STATUS"));
  assert_non_null(strstr(r.out, "L3"));
  assert_non_null(strstr(r.out, "completed"));
  cli_free(&r);

  RUN(&r, "list", "--json");
  json_t *v = cli_json(&r);
  assert_int_equal(json_array_size(v), 3);
  /* Queue by queue, pending oldest first. */
  assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "id")), a);
  assert_string_equal(json_string_value(json_object_get(json_array_get(v, 2), "id")), b);
  json_decref(v);
  cli_free(&r);

  RUN(&r, "list", "--json", "--status", "completed,failed");
  v = cli_json(&r);
  assert_int_equal(json_array_size(v), 1);
  json_t *t0 = json_array_get(v, 0);
  assert_string_equal(json_string_value(json_object_get(t0, "id")), b);
  assert_string_equal(json_string_value(json_object_get(t0, "result")), "ok");
  json_decref(v);
  cli_free(&r);

  /* qa's two in listing order; a plain id works as the cursor in both. */
  const char *first = "L1", *second = "L3";
  char page[64];
  snprintf(page, sizeof page, "next page: --after %s", first);
  RUN(&r, "list", "--json", "--queue", "qa", "--limit", "1");
  v = cli_json(&r);
  assert_int_equal(json_array_size(v), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "id")), first);
  json_decref(v);
  assert_non_null(strstr(r.err, page));
  cli_free(&r);

  /* The next page starts after the cursor; the last one says no more. */
  RUN(&r, "list", "--json", "--queue", "qa", "--limit", "1", "--after", first);
  v = cli_json(&r);
  assert_int_equal(json_array_size(v), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(v, 0), "id")), second);
  json_decref(v);
  cli_free(&r);
  RUN(&r, "list", "--json", "--queue", "qa", "--after", second);
  v = cli_json(&r);
  assert_int_equal(json_array_size(v), 0);
  json_decref(v);
  assert_null(strstr(r.err, "next page"));
  cli_free(&r);
  RUN(&r, "list", "--after", "no-such-task");
  cli_assert_error(&r, 3, "no-such-task");
  cli_free(&r);

  RUN(&r, "list", "--json", "--name", "alpha");
  v = cli_json(&r);
  assert_int_equal(json_array_size(v), 1);
  json_decref(v);
  cli_free(&r);
}

static void test_cli_cancel(void **state) {
  (void)state;
  char p[RTQ_TASK_ID_SIZE], q[RTQ_TASK_ID_SIZE];
  enqueue_id("c1", NULL, p);
  cli_run r;
  RUN(&r, "cancel", p);
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "cancelled"));
  cli_free(&r);
  RUN(&r, "cancel", p);
  cli_assert_error(&r, 1, "already ended");
  cli_free(&r);
  /* The cancelled envelope is still queued; the worker drops it. */
  fake_job2 j;
  assert_int_equal(fw2_take(rc_, &keys2, "default", "w", &j), RTQ_ESTATE);

  enqueue_id("c2", NULL, q);
  assert_int_equal(fw2_take(rc_, &keys2, "default", "w", &j), 0);
  RUN(&r, "cancel", q, "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "outcome")), "requested");
  json_decref(v);
  cli_free(&r);

  RUN(&r, "cancel", "ghost");
  cli_assert_error(&r, 3, "ghost");
  cli_free(&r);
}

static void test_cli_wait_exit_codes(void **state) {
  (void)state;
  char ok[RTQ_TASK_ID_SIZE], bad[RTQ_TASK_ID_SIZE], slow[RTQ_TASK_ID_SIZE];
  enqueue_id("w", NULL, ok);
  assert_int_equal(fw2_run_one(rc_, &keys2, "default", "w", "{\"n\":1}"), 0);
  enqueue_id("w", NULL, bad);
  fake_job2 j;
  assert_int_equal(fw2_take(rc_, &keys2, "default", "w", &j), 0);
  rtq__finish2_task t = {.status = RTQ_STATUS_FAILED, .error_code = "X", .error_message = "no"};
  assert_int_equal(fw2_finish(rc_, &keys2, &j, t), 0);
  enqueue_id("w", NULL, slow);

  cli_run r;
  RUN(&r, "wait", ok, "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "result"), "n")), 1);
  json_decref(v);
  cli_free(&r);

  RUN(&r, "wait", bad);
  assert_int_equal(r.code, 1);
  assert_non_null(strstr(r.out, "failed"));
  cli_free(&r);

  RUN(&r, "wait", slow, "--timeout", "0.3");
  cli_assert_error(&r, 5, "did not end");
  assert_true(r.ms >= 300);
  cli_free(&r);

  RUN(&r, "wait", "ghost", "--timeout", "1");
  cli_assert_error(&r, 3, NULL);
  cli_free(&r);
}

static void test_cli_retry(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  enqueue_id("r", "{\"a\":1}", id);
  cli_run r;
  RUN(&r, "retry", id);
  cli_assert_error(&r, 1, "pending");
  cli_free(&r);
  fake_job2 j;
  assert_int_equal(fw2_take(rc_, &keys2, "default", "w", &j), 0);
  assert_int_equal(fw2_end(rc_, &keys2, &j, RTQ_STATUS_TIMEOUT), 0);
  RUN(&r, "retry", id, "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "status")), "pending");
  json_decref(v);
  cli_free(&r);
  RUN(&r, "status", id, "--json");
  v = cli_json(&r);
  assert_string_equal(json_string_value(json_object_get(v, "status")), "pending");
  json_decref(v);
  cli_free(&r);
  RUN(&r, "retry", "ghost");
  cli_assert_error(&r, 3, NULL);
  cli_free(&r);
}

static void test_cli_stats_and_workers(void **state) {
  (void)state;
  char id[RTQ_TASK_ID_SIZE];
  enqueue_id("s", NULL, id);
  enqueue_id("s", NULL, id);
  assert_int_equal(fw2_run_one(rc_, &keys2, "default", "wk-1", NULL), 0);
  assert_int_equal(fw2_heartbeat(rc_, &keys2, "wk-1", "box1", "321", "default", "0", "4"), 0);

  cli_run r;
  RUN(&r, "stats", "--json");
  assert_int_equal(r.code, 0);
  json_t *v = cli_json(&r);
  json_t *q = json_array_get(json_object_get(v, "queues"), 0);
  assert_string_equal(json_string_value(json_object_get(q, "name")), "default");
  assert_int_equal(json_integer_value(json_object_get(q, "backlog")), 1);
  json_t *ctr = json_object_get(q, "counters");
  assert_int_equal(json_integer_value(json_object_get(ctr, "enqueued")), 2);
  assert_int_equal(json_integer_value(json_object_get(ctr, "completed")), 1);
  json_t *st = json_object_get(v, "statuses");
  assert_int_equal(json_integer_value(json_object_get(st, "pending")), 1);
  assert_int_equal(json_integer_value(json_object_get(st, "completed")), 1);
  assert_int_equal(json_integer_value(json_object_get(v, "running")), 0);
  assert_int_equal(json_integer_value(json_object_get(v, "workers_alive")), 1);
  json_decref(v);
  cli_free(&r);

  RUN(&r, "stats");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "default"));
  assert_non_null(strstr(r.out, "workers alive: 1"));
  cli_free(&r);

  RUN(&r, "workers", "--json");
  v = cli_json(&r);
  assert_int_equal(json_array_size(v), 1);
  json_t *w = json_array_get(v, 0);
  assert_string_equal(json_string_value(json_object_get(w, "id")), "wk-1");
  assert_string_equal(json_string_value(json_object_get(w, "host")), "box1");
  assert_int_equal(json_integer_value(json_object_get(w, "pid")), 321);
  assert_int_equal(json_integer_value(json_object_get(w, "slots")), 4);
  assert_true(iso_ms(json_string_value(json_object_get(w, "last_heartbeat"))));
  json_decref(v);
  cli_free(&r);

  RUN(&r, "workers");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "box1"));
  assert_non_null(strstr(r.out, "0/4"));
  cli_free(&r);

  RUN(&r, "stats", "extra");
  cli_assert_error(&r, 2, NULL);
  cli_free(&r);
}

static void test_cli_usage(void **state) {
  (void)state;
  cli_run r;
  cli(&r, (const char *const[]){NULL}, env);
  assert_int_equal(r.code, 2);
  assert_non_null(strstr(r.err, "usage"));
  cli_free(&r);
  RUN(&r, "--help");
  assert_int_equal(r.code, 0);
  assert_non_null(strstr(r.out, "enqueue NAME"));
  cli_free(&r);
  RUN(&r, "--version");
  assert_int_equal(r.code, 0);
  assert_true(strncmp(r.out, "rtq ", 4) == 0);
  cli_free(&r);
}

int main(void) {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_cli_enqueue_prints_id),
      T(test_cli_enqueue_options_and_idempotent_id),
      T(test_cli_bad_input_exits_2_writes_nothing),
      T(test_cli_redis_down_exits_4),
      T(test_cli_status_human_json_and_not_found),
      T(test_cli_list_table_and_json),
      T(test_cli_cancel),
      T(test_cli_wait_exit_codes),
      T(test_cli_retry),
      T(test_cli_stats_and_workers),
      T(test_cli_usage),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
