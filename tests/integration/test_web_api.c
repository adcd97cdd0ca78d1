/*
 * test_web_api.c - the real rtq-web binary over loopback HTTP against a
 * real redis-server and a real rtq-worker: every JSON endpoint, /metrics,
 * the token (missing 401, wrong 403, cookie alone 401), --read-only, the
 * loopback rule, the Host check, request limits (4xx, the server lives
 * on), and hostile strings in a task stored verbatim and served escaped.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "keys2.h"
#include "rtq/client.h"
#include "test_web_util.h"

#define AUTH "Authorization: Bearer " WEB_TOKEN "\r\n"

static void wait_done(const char *id) {
  rtq_task *t = NULL;
  assert_int_equal(rtq_wait_for_task(tw_client, id, 15000, &t), 0);
  rtq_task_free(t);
}

static int status_of(int port, const char *method, const char *path, const char *headers, const char *body) {
  http_resp r;
  http_req(port, method, path, headers, body, &r);
  int st = r.status;
  http_resp_free(&r);
  return st;
}

static json_t *queue_named(json_t *stats, const char *name) {
  size_t i;
  json_t *q;
  json_array_foreach(json_object_get(stats, "queues"), i, q) {
    if (strcmp(json_string_value(json_object_get(q, "name")), name) == 0) return q;
  }
  fail_msg("no queue %s in /api/stats", name);
  return NULL;
}

static json_int_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static int workers_alive(int port) {
  json_t *w = http_json(port, "/api/workers", NULL, 200);
  int n = (int)json_array_size(w);
  json_decref(w);
  return n;
}

static void test_web_api_reads(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  pid_t worker = web_worker_start("rtq");
  RTQ_TEST_WAIT_FOR(workers_alive(s.port) == 1, 10000);
  char ids[3][RTQ_TASK_ID_SIZE], idle[RTQ_TASK_ID_SIZE];
  for (int i = 0; i < 3; i++) tw_create("rtq.echo", NULL, "{\"n\":1}", 0, ids[i]);
  for (int i = 0; i < 3; i++) wait_done(ids[i]);
  tw_create("rtq.echo", "idle", "{}", 0, idle);

  json_t *st = http_json(s.port, "/api/stats", NULL, 200);
  json_t *d = queue_named(st, "default"), *q = queue_named(st, "idle");
  assert_int_equal(jint(json_object_get(d, "counters"), "completed"), 3);
  assert_int_equal(jint(d, "backlog"), 0);
  assert_int_equal(jint(q, "backlog"), 1);
  assert_true(json_is_string(json_object_get(q, "oldest_pending_at")));
  assert_true(jint(q, "oldest_pending_age_ms") >= 0);
  assert_int_equal(jint(json_object_get(st, "statuses"), "completed"), 3);
  assert_int_equal(jint(json_object_get(st, "statuses"), "pending"), 1);
  assert_int_equal(jint(st, "workers_alive"), 1);
  assert_int_equal(jint(st, "slots"), 4);
  json_decref(st);

  /* Paging: newest first, has_more on a full page. */
  json_t *p1 = http_json(s.port, "/api/tasks?status=completed&limit=2", NULL, 200);
  assert_int_equal(json_array_size(json_object_get(p1, "tasks")), 2);
  assert_true(json_is_true(json_object_get(p1, "has_more")));
  json_t *p2 = http_json(s.port, "/api/tasks?status=completed&limit=2&offset=2", NULL, 200);
  assert_int_equal(json_array_size(json_object_get(p2, "tasks")), 1);
  assert_true(json_is_false(json_object_get(p2, "has_more")));
  /* The two pages hold the three tasks once each (tasks created in the
   * same millisecond are ordered by id, not by creation). */
  int seen[3] = {0, 0, 0};
  for (int pg = 0; pg < 2; pg++) {
    json_t *arr = json_object_get(pg == 0 ? p1 : p2, "tasks");
    for (size_t i = 0; i < json_array_size(arr); i++)
      for (int j = 0; j < 3; j++)
        seen[j] += strcmp(json_string_value(json_object_get(json_array_get(arr, i), "id")), ids[j]) == 0;
  }
  for (int j = 0; j < 3; j++) assert_int_equal(seen[j], 1);
  /* The same by cursor: page 1's next_after is its last task; the page
   * after it holds the third task. */
  const char *cursor = json_string_value(json_object_get(p1, "next_after"));
  assert_non_null(cursor);
  assert_string_equal(cursor, json_string_value(json_object_get(json_array_get(json_object_get(p1, "tasks"), 1), "id")));
  char after_path[256];
  snprintf(after_path, sizeof after_path, "/api/tasks?status=completed&limit=2&after=%s", cursor);
  json_t *pa = http_json(s.port, after_path, NULL, 200);
  assert_int_equal(json_array_size(json_object_get(pa, "tasks")), 1);
  assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(pa, "tasks"), 0), "id")),
                      json_string_value(json_object_get(json_array_get(json_object_get(p2, "tasks"), 0), "id")));
  assert_true(json_is_false(json_object_get(pa, "has_more")));
  assert_null(json_object_get(pa, "next_after"));
  json_decref(pa);
  assert_int_equal(status_of(s.port, "GET", "/api/tasks?after=bad%20id", NULL, NULL), 400);
  json_t *pq = http_json(s.port, "/api/tasks?queue=idle", NULL, 200);
  assert_int_equal(json_array_size(json_object_get(pq, "tasks")), 1);
  json_t *pn = http_json(s.port, "/api/tasks?name=rtq.echo&status=pending,completed", NULL, 200);
  assert_int_equal(json_array_size(json_object_get(pn, "tasks")), 4);
  json_decref(p1);
  json_decref(p2);
  json_decref(pq);
  json_decref(pn);

  /* One task: exactly the library's (and so the CLI's) JSON. */
  char path[256];
  snprintf(path, sizeof path, "/api/tasks/%s", ids[1]);
  json_t *t = http_json(s.port, path, NULL, 200);
  rtq_task *rt = NULL;
  char *text = NULL;
  assert_int_equal(rtq_get_task(tw_client, ids[1], &rt), 0);
  assert_int_equal(rtq_task_to_json(rt, &text), 0);
  json_t *want = json_loads(text, 0, NULL);
  assert_true(json_equal(t, want));
  assert_int_equal(jint(json_object_get(t, "result"), "n"), 1);
  json_decref(want);
  json_decref(t);
  free(text);
  rtq_task_free(rt);
  json_t *nf = http_json(s.port, "/api/tasks/NO_SUCH_TASK", NULL, 404);
  assert_non_null(json_object_get(nf, "error"));
  json_decref(nf);

  /* The history: rtq-web records this minute's snapshot at start. */
  json_t *tp = http_json(s.port, "/api/throughput?minutes=5", NULL, 200);
  assert_int_equal(json_array_size(json_object_get(tp, "minutes")), 5);
  assert_true(json_is_string(json_object_get(json_array_get(json_object_get(tp, "minutes"), 0), "at")));
  json_decref(tp);
  assert_int_equal(status_of(s.port, "GET", "/api/throughput?minutes=0", NULL, NULL), 400);
  assert_int_equal(status_of(s.port, "GET", "/api/throughput?minutes=1441", NULL, NULL), 400);
  assert_int_equal(status_of(s.port, "GET", "/api/throughput?queue=a%20b", NULL, NULL), 400);
  rtq_keys2 k;
  rtq_keys2_init(&k, "rtq");
  rtq_conn *c = rtq_test_conn();
  rtq_key2 minute0 = rtq_keys2_throughput(&k, 0);
  minute0.s[minute0.len - 1] = '*'; /* "{rtq}:throughput:*" */
  redisReply *keys = rtq_test_command(c, "KEYS", minute0.s, NULL);
  assert_true(keys->elements >= 1); /* two when the minute turned meanwhile */
  freeReplyObject(keys);
  rtq_conn_free(c);

  json_t *w = http_json(s.port, "/api/workers", NULL, 200);
  json_t *w0 = json_array_get(w, 0);
  assert_int_equal(jint(w0, "slots"), 4);
  assert_int_equal(jint(w0, "pid"), worker);
  assert_true(json_is_string(json_object_get(w0, "last_heartbeat")));
  json_decref(w);

  /* The page and its assets come from the binary. */
  http_resp r;
  http_get(s.port, "/", &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "<script src=\"/app.js\""));
  char *csp = http_header(&r, "Content-Security-Policy");
  assert_non_null(csp);
  assert_non_null(strstr(csp, "script-src 'self'"));
  free(csp);
  http_resp_free(&r);
  assert_int_equal(status_of(s.port, "GET", "/app.js", NULL, NULL), 200);
  assert_int_equal(status_of(s.port, "GET", "/app.css", NULL, NULL), 200);

  rtq_test_terminate(worker, SIGTERM, 10000, NULL);
  web_stop(&s);
}

/* Parses the exposition line by line: every sample belongs to a family
 * announced by HELP and TYPE, and its value is a number. */
static void check_exposition(const char *text) {
  char family[128] = "";
  bool histogram = false;
  const char *p = text;
  int samples = 0;
  while (*p) {
    const char *nl = strchr(p, '\n');
    assert_non_null(nl);
    char line[1024];
    size_t n = (size_t)(nl - p);
    assert_true(n < sizeof line);
    memcpy(line, p, n);
    line[n] = '\0';
    p = nl + 1;
    if (strncmp(line, "# HELP ", 7) == 0) {
      sscanf(line + 7, "%127s", family);
      continue;
    }
    if (strncmp(line, "# TYPE ", 7) == 0) {
      char name[128], type[32];
      assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
      assert_string_equal(name, family);
      assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                  strcmp(type, "histogram") == 0);
      if (strcmp(type, "counter") == 0) assert_non_null(strstr(name, "_total"));
      histogram = strcmp(type, "histogram") == 0;
      continue;
    }
    size_t fl = strlen(family);
    if (histogram && strncmp(line, family, fl) == 0) {
      /* A histogram's samples are <name>_bucket, _sum and _count. */
      const char *sfx = line + fl;
      size_t sl = strncmp(sfx, "_bucket", 7) == 0 ? 7 : strncmp(sfx, "_sum", 4) == 0 ? 4
                  : strncmp(sfx, "_count", 6) == 0 ? 6 : 0;
      if (sl == 0) fail_msg("histogram sample without a suffix: %s", line);
      fl += sl;
    }
    if (strncmp(line, family, strlen(family)) != 0 || (line[fl] != '{' && line[fl] != ' '))
      fail_msg("sample outside its family %s: %s", family, line);
    const char *v = strrchr(line, ' ');
    char *end;
    strtod(v + 1, &end);
    assert_true(*end == '\0');
    samples++;
  }
  assert_true(samples > 10);
}

/* A queue whose key holds the wrong type of value (written by hand) is
 * left out of /api/stats with one note for it, and the other queues are
 * still shown: once for a key rtq_get_stats reads (the queue), once for
 * one only rtq_get_queue_loads reads (the hash of the next task). */
static void test_web_api_stats_skip_a_wrong_key(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  char a[RTQ_TASK_ID_SIZE], b[RTQ_TASK_ID_SIZE], c[RTQ_TASK_ID_SIZE];
  tw_create("rtq.echo", "qa", "{}", 0, a);
  tw_create("rtq.echo", "qb", "{}", 0, b);
  tw_create("rtq.echo", "qc", "{}", 0, c);
  rtq_conn *rc = rtq_test_conn();
  rtq_test_cmd_int(rc, "DEL", "{rtq:qb}:q", NULL);
  rtq_test_cmd_ok(rc, "SET", "{rtq:qb}:q", "by hand", NULL);
  char task_key[RTQ_TASK_ID_SIZE + 16];
  snprintf(task_key, sizeof task_key, "{rtq:qc}:t:%s", c);
  rtq_test_cmd_int(rc, "DEL", task_key, NULL);
  rtq_test_cmd_ok(rc, "SET", task_key, "by hand", NULL);

  json_t *st = http_json(s.port, "/api/stats", NULL, 200);
  json_t *skipped = json_object_get(st, "skipped");
  assert_true(json_is_array(skipped));
  assert_int_equal(json_array_size(skipped), 2);
  assert_string_equal(json_string_value(json_array_get(skipped, 0)),
                      "queue qb: key {rtq:qb}:q holds the wrong type of value");
  char want[RTQ_TASK_ID_SIZE + 128];
  snprintf(want, sizeof want, "queue qc: key %s holds the wrong type of value", task_key);
  assert_string_equal(json_string_value(json_array_get(skipped, 1)), want);
  /* qb is left out; qa is shown whole; qc, counted by the stats, is
   * shown without the loads' figures. */
  json_t *qs = json_object_get(st, "queues");
  size_t i;
  json_t *q;
  bool has_qb = false;
  json_array_foreach(qs, i, q) has_qb |= strcmp(json_string_value(json_object_get(q, "name")), "qb") == 0;
  assert_false(has_qb);
  assert_int_equal(jint(queue_named(st, "qa"), "backlog"), 1);
  assert_true(json_is_string(json_object_get(queue_named(st, "qa"), "oldest_pending_at")));
  assert_true(json_is_null(json_object_get(queue_named(st, "qc"), "oldest_pending_at")));
  json_decref(st);
  rtq_conn_free(rc);
  web_stop(&s);
}

static void test_web_api_metrics(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  pid_t worker = web_worker_start("rtq");
  char a[RTQ_TASK_ID_SIZE], b[RTQ_TASK_ID_SIZE], c[RTQ_TASK_ID_SIZE];
  tw_create("rtq.echo", NULL, "{}", 0, a);
  tw_create("rtq.fail", NULL, "{}", 0, b);
  wait_done(a);
  wait_done(b);
  tw_create("rtq.echo", "idle", "{}", 0, c);
  RTQ_TEST_WAIT_FOR(workers_alive(s.port) == 1, 10000);
  http_resp r;
  http_get(s.port, "/metrics", &r);
  assert_int_equal(r.status, 200);
  char *ct = http_header(&r, "Content-Type");
  assert_string_equal(ct, "text/plain; version=0.0.4; charset=utf-8");
  free(ct);
  check_exposition(r.body);
  assert_non_null(strstr(r.body, "\nrtq_up 1\n"));
  assert_non_null(strstr(r.body, "\nrtq_tasks_total{queue=\"default\",status=\"completed\"} 1\n"));
  assert_non_null(strstr(r.body, "\nrtq_tasks_total{queue=\"default\",status=\"failed\"} 1\n"));
  assert_non_null(strstr(r.body, "\nrtq_tasks_enqueued_total{queue=\"default\"} 2\n"));
  assert_non_null(strstr(r.body, "\nrtq_queue_backlog{queue=\"idle\"} 1\n"));
  assert_non_null(strstr(r.body, "\nrtq_workers_alive 1\n"));
  assert_non_null(strstr(r.body, "\nrtq_worker_slots 4\n"));
  assert_non_null(strstr(r.body, "\nrtq_tasks{status=\"pending\"} 1\n"));
  assert_non_null(strstr(r.body, "\nrtq_queue_oldest_pending_age_seconds{queue=\"idle\"} "));
  http_resp_free(&r);
  rtq_test_terminate(worker, SIGTERM, 10000, NULL);
  web_stop(&s);
}

/* The value of one sample line ("<name>{<labels>} <value>"); -1 when absent. */
static double sample(const char *body, const char *series) {
  char needle[256];
  snprintf(needle, sizeof needle, "\n%s ", series);
  const char *p = strstr(body, needle);
  return p != NULL ? strtod(p + strlen(needle), NULL) : -1;
}

static double run_bucket(const char *body, const char *queue, const char *le) {
  char series[200];
  snprintf(series, sizeof series, "rtq_task_run_seconds_bucket{queue=\"%s\",le=\"%s\"}", queue, le);
  return sample(body, series);
}

/* Tasks of known run times land in their buckets: two of 0.15 s (in
 * (0.1, 0.25]), one of 0.6 s (in (0.5, 1]), one that fails at once; the
 * buckets are cumulative and end with +Inf = _count. */
static void test_web_api_run_times(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  pid_t worker = web_worker_start("rtq");
  char id[4][RTQ_TASK_ID_SIZE];
  tw_create("rtq.sleep", NULL, "{\"seconds\":0.15,\"steps\":1}", 0, id[0]);
  tw_create("rtq.sleep", NULL, "{\"seconds\":0.15,\"steps\":1}", 0, id[1]);
  tw_create("rtq.sleep", NULL, "{\"seconds\":0.6,\"steps\":1}", 0, id[2]);
  tw_create("rtq.fail", NULL, "{}", 0, id[3]);
  for (int i = 0; i < 4; i++) wait_done(id[i]);
  http_resp r;
  http_get(s.port, "/metrics", &r);
  assert_int_equal(r.status, 200);
  check_exposition(r.body);
  assert_non_null(strstr(r.body, "\n# TYPE rtq_task_run_seconds histogram\n"));
  const char *les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",  "2.5",
                       "5",     "10",   "30",    "60",   "120", "300",  "600", "+Inf"};
  double prev = 0;
  for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
    double v = run_bucket(r.body, "default", les[i]);
    if (v < prev) fail_msg("bucket le=%s is %g, below the one before (%g)", les[i], v, prev);
    prev = v;
  }
  /* A run is never shorter than its sleep, so each sleep stays out of the
   * buckets below it; how much longer it took depends on the machine's
   * load (CI runs this under busy loops), so the upper bounds are loose. */
  assert_true(run_bucket(r.body, "default", "0.1") <= 1);  /* only the failure */
  assert_true(run_bucket(r.body, "default", "0.5") <= 3);  /* not the 0.6 s sleep */
  assert_true(run_bucket(r.body, "default", "10") == 4);
  assert_true(run_bucket(r.body, "default", "+Inf") == 4);
  assert_true(sample(r.body, "rtq_task_run_seconds_count{queue=\"default\"}") == 4);
  double sum = sample(r.body, "rtq_task_run_seconds_sum{queue=\"default\"}");
  assert_true(sum >= 0.9 && sum < 10.0);
  http_resp_free(&r);
  /* What Redis keeps: per-bucket counts named by their bound. */
  rtq_keys2 k;
  rtq_keys2_init(&k, "rtq");
  rtq_conn *c = rtq_test_conn();
  char *v = rtq_test_cmd_str(c, "HGET", rtq_keys2_runtime(&k, "default").s, "le_0.25", NULL);
  assert_non_null(v);
  assert_string_equal(v, "2");
  free(v);
  rtq_conn_free(c);
  rtq_test_terminate(worker, SIGTERM, 10000, NULL);
  web_stop(&s);
}

static void test_web_api_auth(void **state) {
  (void)state;
  web_srv s;
  const char *args[] = {"--auth-token-file", web_token_file(), NULL};
  web_start(&s, args);
  char id[RTQ_TASK_ID_SIZE], path[256];
  tw_create("rtq.echo", "idle", "{}", 0, id);
  snprintf(path, sizeof path, "/api/tasks/%s/cancel", id);

  http_resp r;
  http_get(s.port, "/api/stats", &r);
  assert_int_equal(r.status, 401);
  char *wa = http_header(&r, "WWW-Authenticate");
  assert_string_equal(wa, "Bearer");
  free(wa);
  http_resp_free(&r);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", "Authorization: Bearer wrong-token-0123456789\r\n", NULL), 403);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", "Authorization: Basic " WEB_TOKEN "\r\n", NULL), 401);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", AUTH, NULL), 200);
  assert_int_equal(status_of(s.port, "GET", "/metrics", NULL, NULL), 401);
  assert_int_equal(status_of(s.port, "GET", "/metrics", AUTH, NULL), 200);
  assert_int_equal(status_of(s.port, "GET", "/api/events", NULL, NULL), 401);
  /* A prefix of the token is not the token. */
  assert_int_equal(status_of(s.port, "GET", "/api/tasks", "Authorization: Bearer test-token-0123\r\n", NULL), 403);
  /* The page and /api/info need none (the page asks for the token). */
  assert_int_equal(status_of(s.port, "GET", "/", NULL, NULL), 200);
  json_t *info = http_json(s.port, "/api/info", NULL, 200);
  assert_true(json_is_true(json_object_get(info, "auth_required")));
  assert_true(json_is_true(json_object_get(info, "actions")));
  json_decref(info);

  /* Actions: no header, a cookie alone, a wrong token: nothing happens. */
  assert_int_equal(status_of(s.port, "POST", path, NULL, NULL), 401);
  assert_int_equal(status_of(s.port, "POST", path, "Cookie: token=" WEB_TOKEN "\r\n", NULL), 401);
  assert_int_equal(status_of(s.port, "POST", path, "Authorization: Bearer nope-nope-nope-nope\r\n", NULL), 403);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(tw_client, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);

  /* With the token: cancelled, then retried, then 409 for a second retry
   * of a pending task. GET on an action is 405. */
  http_req(s.port, "POST", path, AUTH, NULL, &r);
  assert_int_equal(r.status, 200);
  assert_non_null(strstr(r.body, "\"outcome\":\"cancelled\""));
  http_resp_free(&r);
  assert_int_equal(rtq_get_task(tw_client, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_CANCELLED);
  rtq_task_free(t);
  assert_int_equal(status_of(s.port, "POST", path, AUTH, NULL), 409);
  snprintf(path, sizeof path, "/api/tasks/%s/retry", id);
  assert_int_equal(status_of(s.port, "POST", path, AUTH, NULL), 200);
  assert_int_equal(rtq_get_task(tw_client, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);
  assert_int_equal(status_of(s.port, "POST", path, AUTH, NULL), 409);
  assert_int_equal(status_of(s.port, "GET", path, AUTH, NULL), 405);
  assert_int_equal(status_of(s.port, "POST", "/api/tasks/NO_SUCH/cancel", AUTH, NULL), 404);
  /* With a token the Host header is not restricted. */
  http_raw(s.port, "GET /api/stats HTTP/1.1\r\nHost: dash.example\r\n" AUTH "Connection: close\r\n\r\n",
           strlen("GET /api/stats HTTP/1.1\r\nHost: dash.example\r\n" AUTH "Connection: close\r\n\r\n"), &r);
  assert_int_equal(r.status, 200);
  http_resp_free(&r);
  web_stop(&s);
}

/* Pause and resume a queue: authenticated like the task actions, shown in
 * /api/stats, refused read-only and for a bad name. */
static void test_web_api_queue_pause(void **state) {
  (void)state;
  web_srv s;
  const char *args[] = {"--auth-token-file", web_token_file(), NULL};
  web_start(&s, args);
  char id[RTQ_TASK_ID_SIZE];
  tw_create("rtq.echo", "mail", "{}", 0, id);
  rtq_conn *c = rtq_test_conn();
  rtq_keys2 k;
  assert_int_equal(rtq_keys2_init(&k, "rtq"), 0);
  rtq_key2 paused = rtq_keys2_paused(&k);
  assert_int_equal(status_of(s.port, "POST", "/api/queues/mail/pause", NULL, NULL), 401);
  assert_int_equal(status_of(s.port, "POST", "/api/queues/mail/pause", AUTH, NULL), 200);
  json_t *st = http_json(s.port, "/api/stats", AUTH, 200);
  json_t *qs = json_object_get(st, "queues"), *q = NULL;
  for (size_t i = 0; i < json_array_size(qs); i++)
    if (strcmp(json_string_value(json_object_get(json_array_get(qs, i), "name")), "mail") == 0) q = json_array_get(qs, i);
  assert_non_null(q);
  assert_true(json_is_true(json_object_get(q, "paused")));
  json_decref(st);
  assert_int_equal(rtq_test_cmd_int(c, "SISMEMBER", paused.s, "mail", NULL), 1);
  assert_int_equal(status_of(s.port, "POST", "/api/queues/mail/resume", AUTH, NULL), 200);
  assert_int_equal(rtq_test_cmd_int(c, "SISMEMBER", paused.s, "mail", NULL), 0);
  rtq_conn_free(c);
  assert_int_equal(status_of(s.port, "POST", "/api/queues/mail/frobnicate", AUTH, NULL), 404);
  assert_int_equal(status_of(s.port, "POST", "/api/queues/bad%20name/pause", AUTH, NULL), 400);
  assert_int_equal(status_of(s.port, "GET", "/api/queues/mail/pause", AUTH, NULL), 405);
  web_stop(&s);
  const char *ro[] = {"--auth-token-file", web_token_file(), "--read-only", NULL};
  web_start(&s, ro);
  assert_int_equal(status_of(s.port, "POST", "/api/queues/mail/pause", AUTH, NULL), 403);
  web_stop(&s);
}

static void test_web_api_read_only(void **state) {
  (void)state;
  web_srv s;
  const char *args[] = {"--auth-token-file", web_token_file(), "--read-only", NULL};
  web_start(&s, args);
  char id[RTQ_TASK_ID_SIZE], path[256];
  tw_create("rtq.echo", "idle", "{}", 0, id);
  snprintf(path, sizeof path, "/api/tasks/%s/cancel", id);
  assert_int_equal(status_of(s.port, "POST", path, AUTH, NULL), 403);
  snprintf(path, sizeof path, "/api/tasks/%s/retry", id);
  assert_int_equal(status_of(s.port, "POST", path, AUTH, NULL), 403);
  rtq_task *t = NULL;
  assert_int_equal(rtq_get_task(tw_client, id, &t), 0);
  assert_int_equal(t->status, RTQ_STATUS_PENDING);
  rtq_task_free(t);
  assert_int_equal(status_of(s.port, "GET", "/api/tasks", AUTH, NULL), 200);
  json_t *info = http_json(s.port, "/api/info", NULL, 200);
  assert_true(json_is_true(json_object_get(info, "read_only")));
  assert_true(json_is_false(json_object_get(info, "actions")));
  json_decref(info);
  web_stop(&s);
}

static void test_web_api_no_token_no_actions(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  char id[RTQ_TASK_ID_SIZE], path[256];
  tw_create("rtq.echo", "idle", "{}", 0, id);
  snprintf(path, sizeof path, "/api/tasks/%s/cancel", id);
  assert_int_equal(status_of(s.port, "POST", path, NULL, NULL), 403);
  /* DNS rebinding: a foreign Host is refused while no token protects us. */
  http_resp r;
  const char *req = "GET /api/stats HTTP/1.1\r\nHost: attacker.example:8321\r\nConnection: close\r\n\r\n";
  http_raw(s.port, req, strlen(req), &r);
  assert_int_equal(r.status, 403);
  http_resp_free(&r);
  req = "GET /api/stats HTTP/1.1\r\nHost: localhost:8321\r\nConnection: close\r\n\r\n";
  http_raw(s.port, req, strlen(req), &r);
  assert_int_equal(r.status, 200);
  http_resp_free(&r);
  web_stop(&s);
}

static void test_web_api_listen_rules(void **state) {
  (void)state;
  char bin[512], log[512];
  assert_non_null(rtq_test_bin_path("web/rtq-web", bin, sizeof bin));
  snprintf(log, sizeof log, "%s/refused.log", rtq_test_redis_dir(rtq_test_redis_default()));
  const char *argv[] = {bin, "--listen", "0.0.0.0:0", "--redis", rtq_test_redis_url(), NULL};
  rtq_test_spawn_options o = {.path = bin, .argv = argv, .output_path = log};
  pid_t pid = rtq_test_spawn_ex(&o);
  int status = 0;
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &status), 0);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 2);
  char *text = cli_slurp(log);
  assert_non_null(strstr(text, "not a loopback address"));
  free(text);
  /* Bad flags and a short token are refused too. */
  const char *bad[][8] = {{bin, "--listen", "nonsense", NULL},
                          {bin, "--listen", "127.0.0.1:99999", NULL},
                          {bin, "--max-sse-clients", "0", NULL},
                          {bin, "--bogus", NULL}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rtq_test_spawn_options b = {.path = bin, .argv = bad[i], .output_path = log};
    pid = rtq_test_spawn_ex(&b);
    assert_int_equal(rtq_test_wait_exit(pid, 10000, &status), 0);
    assert_int_equal(WEXITSTATUS(status), 2);
  }
  char tok[512];
  snprintf(tok, sizeof tok, "%s/short.token", rtq_test_redis_dir(rtq_test_redis_default()));
  FILE *f = fopen(tok, "w");
  fputs("short\n", f);
  fclose(f);
  const char *shortv[] = {bin, "--auth-token-file", tok, NULL};
  rtq_test_spawn_options sh = {.path = bin, .argv = shortv, .output_path = log};
  pid = rtq_test_spawn_ex(&sh);
  assert_int_equal(rtq_test_wait_exit(pid, 10000, &status), 0);
  assert_int_equal(WEXITSTATUS(status), 2);
  /* With a token, any address may be served. */
  web_srv s;
  const char *args[] = {"--listen", "0.0.0.0:0", "--auth-token-file", web_token_file(), NULL};
  web_start(&s, args);
  assert_int_equal(status_of(s.port, "GET", "/api/stats", AUTH, NULL), 200);
  web_stop(&s);
}

static void test_web_api_bad_requests(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  int p = s.port;
  assert_int_equal(status_of(p, "GET", "/api/tasks?status=bogus", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks?limit=0", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks?limit=100000", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks?limit=-1", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks?offset=abc", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks?queue=a%20b", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks?name=%3Cscript%3E", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks?sort=x", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/stats?x=1", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks?a=1&a=2&a=3&a=4&a=5&a=6&a=7&a=8&a=9&a=10&a=11&a=12&a=13&a=14&a=15&a=16&a=17",
                             NULL, NULL), 400);
  char big[2048];
  memset(big, 0, sizeof big);
  strcpy(big, "/api/tasks?queue=");
  memset(big + strlen(big), 'q', 400);
  assert_int_equal(status_of(p, "GET", big, NULL, NULL), 400);
  memset(big, 0, sizeof big);
  big[0] = '/';
  memset(big + 1, 'p', 1500);
  assert_int_equal(status_of(p, "GET", big, NULL, NULL), 414);
  assert_int_equal(status_of(p, "GET", "/api/tasks/bad%20id", NULL, NULL), 400);
  assert_int_equal(status_of(p, "GET", "/api/tasks/../../etc/passwd", NULL, NULL), 404);
  assert_int_equal(status_of(p, "GET", "/api/nothing", NULL, NULL), 404);
  assert_int_equal(status_of(p, "GET", "/nothing.html", NULL, NULL), 404);
  assert_int_equal(status_of(p, "DELETE", "/api/stats", NULL, NULL), 405);
  assert_int_equal(status_of(p, "PUT", "/", NULL, NULL), 405);
  assert_int_equal(status_of(p, "POST", "/api/stats", NULL, NULL), 405);
  /* A body past the limit: 413, without the server keeping it. */
  char *body = malloc(100001);
  memset(body, 'x', 100000);
  body[100000] = '\0';
  assert_int_equal(status_of(p, "POST", "/api/tasks/abc/cancel", NULL, body), 413);
  free(body);
  /* Headers past the connection's memory limit: libmicrohttpd's 4xx. */
  char *hdr = malloc(70000);
  strcpy(hdr, "X-Big: ");
  memset(hdr + 7, 'h', 65000);
  strcpy(hdr + 65007, "\r\n");
  int st = status_of(p, "GET", "/api/info", hdr, NULL);
  assert_true(st >= 400 && st < 500);
  free(hdr);
  /* Garbage instead of HTTP gets 400 or a closed connection, never a
   * crash: the server still answers afterwards. */
  int fd = http_connect(p);
  http_send_all(fd, "\x01\x02garbage\r\n\r\n", 13);
  size_t n;
  free(http_read_all(fd, 10000, &n));
  close(fd);
  assert_int_equal(status_of(p, "GET", "/api/info", NULL, NULL), 200);
  assert_int_equal(rtq_test_wait_exit(s.pid, 0, NULL), RTQ_ETIMEDOUT);
  web_stop(&s);
}

/* Hostile strings: stored verbatim (by a producer, a handler and a raw
 * writer), returned equal after JSON decoding, and never as raw markup. */
static void test_web_api_xss(void **state) {
  (void)state;
  static const char *const payloads[] = {"<script>alert(1)</script>", "\"><img src=x onerror=alert(2)>",
                                         "javascript:alert(3)"};
  web_srv s;
  web_start(&s, NULL);
  pid_t worker = web_worker_start("rtq");
  char id[RTQ_TASK_ID_SIZE];
  /* Handlers choose the error message and details freely (codes are
   * limited to a safe alphabet by the worker). */
  json_t *args = json_pack("{s:s, s:s, s:s, s:s, s:{s:s}}", "a", payloads[0], "b", payloads[1], "c", payloads[2],
                           "message", payloads[0], "details", "x", payloads[1]);
  /* A NUL byte in a str: shown as "\u0000", not as an undecodable task. */
  json_object_set_new(args, "nul", json_stringn("a\0b", 3));
  char *args_text = json_dumps(args, JSON_COMPACT);
  tw_create("rtq.fail", NULL, args_text, 0, id);
  free(args_text);
  wait_done(id);
  /* A name no producer could give (names are validated), written raw. */
  rtq_keys2 k;
  rtq_keys2_init(&k, "rtq");
  rtq_conn *c = rtq_test_conn();
  redisReply *r = rtq_test_command(c, "HSET", rtq_keys2_task(&k, "default", id).s, "n", payloads[1], NULL);
  freeReplyObject(r);
  rtq_conn_free(c);

  char path[256];
  snprintf(path, sizeof path, "/api/tasks/%s", id);
  http_resp hr;
  http_get(s.port, path, &hr);
  assert_int_equal(hr.status, 200);
  assert_null(strchr(hr.body, '<'));
  assert_null(strchr(hr.body, '>'));
  assert_non_null(strstr(hr.body, "\"a\\u0000b\""));
  json_t *t = json_loads(hr.body, JSON_ALLOW_NUL, NULL);
  assert_non_null(t);
  assert_true(json_equal(json_object_get(t, "args"), args));
  assert_string_equal(json_string_value(json_object_get(t, "name")), payloads[1]);
  json_t *err = json_object_get(t, "error");
  assert_string_equal(json_string_value(json_object_get(err, "message")), payloads[0]);
  assert_string_equal(json_string_value(json_object_get(json_object_get(err, "details"), "x")), payloads[1]);
  json_decref(t);
  http_resp_free(&hr);
  http_get(s.port, "/api/tasks", &hr);
  assert_int_equal(hr.status, 200);
  assert_null(strchr(hr.body, '<'));
  assert_non_null(strstr(hr.body, "\\u003cscript\\u003e"));
  http_resp_free(&hr);
  json_decref(args);
  rtq_test_terminate(worker, SIGTERM, 10000, NULL);
  web_stop(&s);
}

static bool body_has(int port, const char *path, const char *needle) {
  http_resp r;
  http_get(port, path, &r);
  bool has = r.status == 200 && strstr(r.body, needle) != NULL;
  http_resp_free(&r);
  return has;
}

/* A queue entry that is no task id is dead-lettered; the API lists it
 * and shows it, its bytes escaped. */
static void test_web_api_dead_letters(void **state) {
  (void)state;
  web_srv s;
  web_start(&s, NULL);
  rtq_keys2 k;
  rtq_keys2_init(&k, "rtq");
  rtq_conn *c = rtq_test_conn();
  freeReplyObject(rtq_test_command(c, "SADD", rtq_keys2_queues(&k).s, "default", NULL));
  freeReplyObject(rtq_test_command(c, "LPUSH", rtq_keys2_queue(&k, "default").s, "<script>alert(1)</script>", NULL));
  rtq_conn_free(c);
  pid_t worker = web_worker_start("rtq");
  RTQ_TEST_WAIT_FOR(body_has(s.port, "/api/dead", "\"total\":1,"), 15000);
  json_t *l = http_json(s.port, "/api/dead?limit=5&offset=0", NULL, 200);
  assert_int_equal(jint(l, "total"), 1);
  json_t *d = json_array_get(json_object_get(l, "letters"), 0);
  assert_int_equal(jint(d, "index"), 0);
  assert_non_null(json_string_value(json_object_get(d, "code")));
  json_t *one = http_json(s.port, "/api/dead/0", NULL, 200);
  assert_true(json_equal(one, d));
  json_decref(one);
  json_decref(l);
  http_resp r;
  http_get(s.port, "/api/dead/0", &r);
  assert_null(strchr(r.body, '<'));
  http_resp_free(&r);
  assert_int_equal(status_of(s.port, "GET", "/api/dead/1", NULL, NULL), 404);
  assert_int_equal(status_of(s.port, "GET", "/api/dead/x", NULL, NULL), 400);
  assert_int_equal(status_of(s.port, "GET", "/api/dead?limit=0", NULL, NULL), 400);
  assert_int_equal(status_of(s.port, "GET", "/api/dead?limit=1001", NULL, NULL), 400);
  rtq_test_terminate(worker, SIGTERM, 10000, NULL);
  web_stop(&s);
}

/* rtq-broker --metrics-listen serves the same exposition. */
static void test_web_api_broker_metrics(void **state) {
  (void)state;
  char bin[512];
  assert_non_null(rtq_test_bin_path("broker/rtq-broker", bin, sizeof bin));
  web_srv b;
  memset(&b, 0, sizeof b);
  snprintf(b.log, sizeof b.log, "%s/broker.log", rtq_test_redis_dir(rtq_test_redis_default()));
  const char *argv[] = {bin, "--redis", rtq_test_redis_url(), "--metrics-listen=127.0.0.1:0",
                        "--sweep-interval", "100ms", NULL};
  rtq_test_spawn_options o = {.path = bin, .argv = argv, .output_path = b.log};
  b.pid = rtq_test_spawn_ex(&o);
  assert_true(b.pid > 0);
  RTQ_TEST_WAIT_FOR((b.port = web_port_from_log(b.log)) != 0 || rtq_test_wait_exit(b.pid, 0, NULL) == 0, 10000);
  assert_true(b.port > 0);
  char id[RTQ_TASK_ID_SIZE];
  tw_create("rtq.echo", "idle", "{}", 0, id);
  http_resp r;
  http_get(b.port, "/metrics", &r);
  assert_int_equal(r.status, 200);
  check_exposition(r.body);
  assert_non_null(strstr(r.body, "\nrtq_up 1\n"));
  assert_non_null(strstr(r.body, "\nrtq_queue_backlog{queue=\"idle\"} 1\n"));
  assert_non_null(strstr(r.body, "\nrtq_task_run_seconds_bucket{queue=\"idle\",le=\"+Inf\"} 0\n"));
  assert_non_null(strstr(r.body, "\nrtq_task_run_seconds_count{queue=\"idle\"} 0\n"));
  http_resp_free(&r);
  RTQ_TEST_WAIT_FOR(body_has(b.port, "/metrics", "\nrtq_broker_actions_total{action=\"sweeps\"} "), 10000);
  assert_int_equal(status_of(b.port, "GET", "/", NULL, NULL), 404);
  assert_int_equal(status_of(b.port, "POST", "/metrics", NULL, NULL), 405);
  web_stop(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_web_api_reads, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_stats_skip_a_wrong_key, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_metrics, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_run_times, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_auth, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_queue_pause, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_read_only, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_no_token_no_actions, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_listen_rules, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_bad_requests, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_xss, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_broker_metrics, tw_setup, tw_teardown),
      cmocka_unit_test_setup_teardown(test_web_api_dead_letters, tw_setup, tw_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
